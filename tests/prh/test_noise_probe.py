"""Tests of helpers/prh/noise_probe.py: the chapter's experiments on a planted model set."""
import numpy as np
import pandas as pd
import pytest
import torch

from helpers.prh import model_sets as ms
from helpers.prh import noise_images as ni
from helpers.prh import noise_probe as npr


def _linear(seed: int, width: int = 32):
    """A model that shares one random projection (seed 0) and adds its own small one."""
    shared = torch.randn(3 * 8 * 8, width, generator=torch.Generator().manual_seed(0))
    own = torch.randn(3 * 8 * 8, width, generator=torch.Generator().manual_seed(seed))
    w = shared + 0.2 * own
    return lambda x: [x.flatten(1) @ w, torch.tanh(x.flatten(1) @ w)]


def _probe(tmp_path, monkeypatch):
    monkeypatch.setenv("BOOK_CACHE", str(tmp_path))
    sources = {f"m{i}": ms.Source("trained", f"m{i}", _linear(i), arch=f"a{i}") for i in range(4)}
    sources.update({f"m{i}-init": ms.Source("init", f"m{i}-init", _linear(100 + i), arch=f"a{i}")
                    for i in range(4)})
    sources["pixels"] = ms.pixel_source()
    pairs = {g: ms.group_pairs(sources, g, g) for g in ("trained", "init")}
    pairs["trained-pixels"] = ms.group_pairs(sources, "trained", "pixels")

    def image_set(kind, seed, t=None):
        return ni.evaluation_images(kind, 40, 8, seed, source=lambda n, s, sd: ni.make_noise(
            "spectral2", n, size=s, seed=sd), blend_family="uniform", t=t)
    return npr.NoiseProbe(sources, pairs, image_set, {"n": 40, "size": 8}, k=5)


def test_families_blend_and_agreement_run_every_pair(tmp_path, monkeypatch):
    probe = _probe(tmp_path, monkeypatch)
    fam = probe.families(["id", "uniform"], ["mutual_knn"], n_perm=9, layer="last")
    assert len(fam) == 2 * (6 + 6 + 4) and set(fam.family) == {"id", "uniform"}
    # near-identical projections of the same images align far above chance on any image set
    means = fam.groupby(["family", "group"]).corrected.mean()
    assert means[("id", "trained")] > 0.3 and means[("uniform", "trained")] > 0.3
    blend = probe.blend([0.0, 1.0], 2, ["mutual_knn"], n_perm=9, groups=["trained"])
    assert len(blend) == 2 * 2 * 6 and set(blend.seed) == {0, 1}
    # t = 0 of seed 0 is the id set itself (same images, same features)
    a = blend[(blend.t == 0.0) & (blend.seed == 0)].observed.to_numpy()
    b = fam[(fam.family == "id") & (fam.group == "trained")].observed.to_numpy()
    np.testing.assert_allclose(a, b)
    maps = probe.agreement(["id"], "trained", [("mutual_knn", 5), ("cka", 5)], n_perm=5)
    assert maps["id"]["null"].shape == (5, 2, 2) and len(maps["id"]["table"]) == 12


def test_probe_checks_its_pairs():
    with pytest.raises(ValueError, match="not in sources"):
        npr.NoiseProbe({}, {"g": [("a", "b")]}, lambda *a, **k: None, {})
    with pytest.raises(ValueError, match="caption_features"):
        npr.NoiseProbe({}, {}, lambda *a, **k: None, {}, text_pairs=[("a", "enc")])


def test_caption_encoder_features_key_each_seed(monkeypatch):
    calls = []
    monkeypatch.setattr(ms, "caption_features",
                        lambda e, caps, key: calls.append((e, list(caps), key)) or [e])
    feats = npr.caption_encoder_features(["enc1", "enc2"], {"n": 2, "source": "shapes"})
    assert feats(["a cat", "a dog"], 3) == {"enc1": ["enc1"], "enc2": ["enc2"]}
    assert calls == [(e, ["a cat", "a dog"], {"n": 2, "source": "shapes", "seed": 3})
                     for e in ("enc1", "enc2")]


def test_row_space_keeps_every_metric_of_the_chapter():
    from helpers import alignment
    from helpers.prh import metric_agreement as ma

    g = torch.Generator().manual_seed(0)
    base = torch.randn(30, 6, generator=g)
    wide = {m: [alignment.prepare(base @ torch.randn(6, 200, generator=g)
                                  + 0.3 * torch.randn(30, 200, generator=g))] for m in "ab"}
    narrow = {m: [npr.row_space(x) for x in ls] for m, ls in wide.items()}
    assert narrow["a"][0].shape == (30, 30)
    torch.testing.assert_close(narrow["a"][0] @ narrow["a"][0].T, wide["a"][0] @ wide["a"][0].T,
                               atol=1e-5, rtol=1e-5)
    for metric in ("mutual_knn", "cknna", "cka", "unbiased_cka"):
        before = ma.block_scores(wide, wide, metric, 5, n_perm=20, pairs=[("a", "b")])
        after = ma.block_scores(narrow, narrow, metric, 5, n_perm=20, pairs=[("a", "b")])
        for col in ("raw", "null_mean", "p_value", "corrected"):
            assert after[col].iloc[0] == pytest.approx(before[col].iloc[0], abs=1e-5), (
                metric, col)
    x = torch.randn(30, 8, generator=g)
    assert npr.row_space(x) is x  # narrower than N: unchanged
    with pytest.raises(ValueError, match=r"x must be \[N, D\]"):
        npr.row_space(torch.zeros(3, 4, 5))


def test_group_means_and_paired_contrast_bootstrap_over_models():
    arch = {"p1": "A", "p2": "B", "p3": "C", "i1": "A", "i2": "B", "i3": "C"}
    rows = pd.DataFrame({
        "family": "x", "group": ["pre"] * 3 + ["init"] * 3,
        "a": ["p1", "p1", "p2", "i1", "i1", "i2"], "b": ["p2", "p3", "p3", "i2", "i3", "i3"],
        "corrected": [0.5, 0.6, 0.55, 0.1, 0.1, 0.12]})
    m = npr.group_means(rows, ["family", "group"], n_boot=300)
    assert m.loc[("x", "pre"), "mean"] == pytest.approx(0.55)
    assert m.loc[("x", "pre"), "low"] <= 0.55 <= m.loc[("x", "pre"), "high"]
    c = npr.paired_contrast(rows, ["family"], "pre", "init", arch, n_boot=300).loc["x"]
    assert c.pairs == 3 and c.difference == pytest.approx(0.55 - 0.1067, abs=1e-3)
    assert c.low > 0.3 and c.high < 0.6
    with pytest.raises(ValueError, match="same architectures"):
        npr.paired_contrast(rows, ["family"], "pre", "init", {**arch, "i1": "Z", "i2": "Y",
                                                              "i3": "X"}, n_boot=10)


def test_lookup_and_median_frontier():
    t = pd.DataFrame({"v": [1.0]}, index=pd.MultiIndex.from_tuples([("a", "b")]))
    assert npr.lookup(t, ("a", "b"), "v") == 1.0 and np.isnan(npr.lookup(t, ("a", "c"), "v"))
    f = pd.DataFrame({"metric": "m", "group": "g", "t*": [0.4, 0.6, np.nan]})
    assert npr.median_frontier(f, "g", "m") == pytest.approx(0.6)  # never = beyond t = 1
    assert np.isnan(npr.median_frontier(f.iloc[1:], "g", "m"))  # half the seeds never reach it
    assert npr.median_frontier(f.iloc[:2], "g", "m") == pytest.approx(0.5)
    assert np.isnan(npr.median_frontier(f.assign(**{"t*": np.nan}), "g", "m"))


def test_agreement_tests_table(tmp_path, monkeypatch):
    probe = _probe(tmp_path, monkeypatch)
    maps = probe.agreement(["id"], "trained", [("mutual_knn", 5), ("mutual_knn", 8), ("cka", 5)],
                           n_perm=19)
    t = npr.agreement_tests(maps, "toy", alpha=0.05)
    row = t.loc[("toy", "id")]
    assert row.configs == 3 and 0 < row.p <= 1 and row["null 95th pct"] >= row["null median"]
    assert 0 <= row["configs whose spread beats null"] <= 3


def test_blend_excluded_matches_blend_when_every_row_is_its_own_group(tmp_path, monkeypatch):
    probe = _probe(tmp_path, monkeypatch)
    plain = probe.blend([0.0, 0.5], 1, ["mutual_knn"], n_perm=9, groups=["trained"])
    excl = probe.blend_excluded([0.0, 0.5], np.arange(40), n_perm=9, groups=["trained"])
    assert len(excl) == len(plain) and set(excl.t) == {0.0, 0.5}
    np.testing.assert_allclose(excl.observed, plain.observed)
    curve = npr.pooled_curve(excl, alpha=0.05)
    assert set(curve.columns) >= {"metric", "group", "seed", "t", "pooled p", "mean corrected"}
    table = npr.pooled(excl, ["group", "t"], alpha=0.05, n_boot=50)
    assert {"low", "high", "pooled p"} <= set(table.columns) and len(table) == 2


def test_zoo_model_set_checks_the_image_size():
    with pytest.raises(ValueError, match="set image_size="):
        npr.zoo_model_set("smoke", 10, 7, 0, ["supervised"])
