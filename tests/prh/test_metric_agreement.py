"""Tests of helpers/prh/metric_agreement.py: block-max scores with a null, and Spearman
agreement."""
import numpy as np
import pandas as pd
import pytest
import torch

from helpers import alignment
from helpers.prh import metric_agreement as ma


def _planted(n=120, seed=0):
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(n, 8, generator=g)
    noise = lambda d: torch.randn(n, d, generator=g)
    return {
        # model a: layer 1 carries the shared structure; model b: layer 0 does; c is unrelated
        # noise
        "a": alignment.prepare([noise(16), base @ torch.randn(8, 16, generator=g)]),
        "b": alignment.prepare([base @ torch.randn(8, 24, generator=g) + 0.1 * noise(24),
                                noise(24)]),
        "c": alignment.prepare([noise(12), noise(12)]),
    }


def test_block_scores_find_planted_layer_and_calibrate():
    feats = _planted()
    t = ma.block_scores(feats, feats, "mutual_knn", k=5, n_perm=20, pairs=[("a", "b"), ("a", "c")])
    ab, ac = t.set_index("model_b").loc["b"], t.set_index("model_b").loc["c"]
    assert (ab.layer_a, ab.layer_b) == (1, 0)
    assert ab.corrected > 0.3 and ab.p_value <= 1 / 21 + 1e-9
    assert abs(ac.corrected) < 0.1 and ac.p_value > 0.05
    # the null of the layer-pair max sits above the single-pair chance level k / (N - 1)
    assert ac.null_mean > 5 / 119
    # same numbers as alignment.permutation_null on the pair alone (same seed, same permutations)
    r = alignment.permutation_null(feats["a"], feats["b"], "mutual_knn", topk=5, n_perm=20, seed=0)
    assert ab.raw == pytest.approx(r.observed) and ab.null_mean == pytest.approx(r.null_mean)


def test_score_pairs_and_agreement():
    feats = _planted()
    # a copy of a, wider, still unit norm
    feats["d"] = [torch.cat([f, f], 1) / 2**0.5 for f in feats["a"]]
    configs = [("mutual_knn", 5), ("mutual_knn", 10), ("cka", 0)]
    t = ma.score_pairs(feats, configs, n_perm=3)
    assert len(t) == 6 * len(configs) and set(t.config) == {"mutual_knn@5", "mutual_knn@10", "cka"}
    raw = t.set_index(["model_a", "model_b", "config"]).raw
    assert raw[("a", "d", "mutual_knn@5")] == pytest.approx(1.0)
    c = ma.agreement(t, "raw")
    assert list(c.columns) == ["mutual_knn@5", "mutual_knn@10", "cka"]
    assert c.loc["mutual_knn@5", "mutual_knn@5"] == pytest.approx(1.0)
    assert c.loc["mutual_knn@5", "mutual_knn@10"] > 0.5
    assert -1 <= ma.mean_off_diagonal(c) <= 1
    assert ma.agreement(t, "corrected").shape == (3, 3)
    # no permutations: raw only, NaN corrections
    t0 = ma.score_pairs(feats, configs[:1], n_perm=0)
    assert t0.corrected.isna().all() and t0.raw.notna().all()


def test_mean_off_diagonal():
    c = pd.DataFrame([[1.0, 0.5, float("nan")], [0.5, 1.0, -0.5], [float("nan"), -0.5, 1.0]])
    assert ma.mean_off_diagonal(c) == pytest.approx(0.0)


def test_errors():
    feats = _planted()
    with pytest.raises(ValueError, match="at least 2 model"):
        ma.score_pairs({"a": feats["a"]}, [("mutual_knn", 5)])
    with pytest.raises(ValueError, match="unknown metric"):
        ma.score_pairs(feats, [("jaccard", 5)])
    with pytest.raises(ValueError, match="non-empty list"):
        ma.score_pairs(feats, [])
    with pytest.raises(ValueError, match="same number of rows"):
        ma.score_pairs({**feats, "e": [torch.randn(7, 3)]}, [("cka", 0)])
    with pytest.raises(ValueError, match="pairs name models not in feats"):
        ma.block_scores(feats, feats, pairs=[("a", "zz")])
    with pytest.raises(ValueError, match="n_perm must be >= 0"):
        ma.block_scores(feats, feats, n_perm=-1)
    t = ma.score_pairs(feats, [("cka", 0)], n_perm=0)
    with pytest.raises(ValueError, match="value must be 'raw' or 'corrected'"):
        ma.agreement(t, "z")
    with pytest.raises(ValueError, match="at least 3 model pairs"):
        ma.agreement(t.iloc[:2], "raw")
    with pytest.raises(ValueError, match="lacks columns"):
        ma.agreement(t.drop(columns="raw"), "raw")


def test_keep_null_and_null_agreement():
    feats = _planted()
    t = ma.score_pairs(feats, [("mutual_knn", 5), ("cka", 0)], n_perm=4, keep_null=True)
    assert all(len(d) == 4 for d in t["null"])
    row = t.iloc[0]
    assert row.null_mean == pytest.approx(float(row.null.mean()))
    # the same shuffle j for every pair: a pair's draws match a direct block_scores call
    direct = ma.block_scores(feats, feats, "mutual_knn", 5, n_perm=4, pairs=[("a", "b")],
                             keep_null=True)
    torch.testing.assert_close(
        direct.null[0],
        t.set_index(["config", "model_a", "model_b"]).loc[("mutual_knn@5", "a", "b")].null)
    null = ma.null_agreement(t)
    assert null.shape == (4, 2, 2)
    assert ma.parse_config("cknna@50") == ("cknna", 50) and ma.parse_config("cka", 7) == ("cka", 7)
    with pytest.raises(ValueError, match="unknown metric 'foo'"):
        ma.parse_config("foo@3")
    with pytest.raises(ValueError, match="integer k"):
        ma.parse_config("mutual_knn@x")
    with pytest.raises(ValueError, match="keep_null=True"):
        ma.null_agreement(t.drop(columns="null"))


def test_pair_rows_layers_and_extra_columns():
    feats = _planted()
    rows = ma.pair_rows(feats, [("a", "b"), ("a", "c")], "mutual_knn", 5, n_perm=6, group="g",
                        seed=3)
    assert list(rows.a) == ["a", "a"] and set(rows.group) == {"g"} and set(rows.seed) == {3}
    assert rows.set_index("b").loc["b", "corrected"] > 0.3 and all(len(d) == 6 for d in rows.null)
    last = ma.pair_rows(feats, [("a", "b")], "mutual_knn", 5, n_perm=6, layer="last")
    # a's structure is in its last layer and b's in its first: the last-layer pair misses it
    assert last.corrected.iloc[0] < 0.1 and (last.layer_a.iloc[0], last.layer_b.iloc[0]) == (0, 0)
    with pytest.raises(ValueError, match="layer must be 'max' or 'last'"):
        ma.pair_rows(feats, [("a", "b")], "mutual_knn", 5, n_perm=2, layer="first")


def test_off_diagonal_and_agreement_summary():
    assert sorted(ma.off_diagonal([[1, 2], [3, 4]])) == [2.0, 3.0]
    with pytest.raises(ValueError, match="square"):
        ma.off_diagonal([[1, 2, 3]])
    feats = _planted()
    feats["d"] = [torch.cat([f, f], 1) / 2**0.5 for f in feats["a"]]
    t = ma.score_pairs(feats, [("mutual_knn", 5), ("mutual_knn", 10), ("cka", 0)], n_perm=5,
                       keep_null=True)
    maps = ma.agreement_maps(t)
    assert (maps["null"].shape == (5, 3, 3)
            and list(maps["spread"].index) == list(maps["raw"].index))
    s = ma.agreement_summary(maps)
    assert -1 <= s["median rho, raw"] <= 1 and 0 <= s["median |rho| under the null"] <= 1
    # the pairs differ far more than shuffles do (a-d is a copy, a-c unrelated)
    assert s["median spread ratio (raw std over pairs / null std)"] > 3


def _null_maps(n_pairs=12, n_perm=30, signal=0.0, seed=0):
    """score_pairs-like table of 2 configs over n_pairs pairs with planted signal and chance
    levels."""
    g = torch.Generator().manual_seed(seed)
    rows = []
    for p in range(n_pairs):
        chance = 0.1 + 0.05 * p  # pairs differ in chance level only
        truth = signal * p / n_pairs
        for c, noise in (("m@5", 0.01), ("m@10", 0.01)):
            null = chance + noise * torch.randn(n_perm, generator=g, dtype=torch.float64)
            raw = chance + truth + noise * float(torch.randn(1, generator=g))
            rows.append({"model_a": f"a{p}", "model_b": f"b{p}", "config": c, "raw": raw,
                         "null": null, "null_mean": float(null.mean()),
                         "null_std": float(null.std()),
                         "corrected": raw - float(null.mean())})
    return pd.DataFrame(rows)


def test_centered_spread_ignores_chance_level_differences():
    flat = _null_maps(signal=0.0)
    # the raw spread over pairs is large (chance levels differ), the centred one is not
    assert (flat.groupby("config").raw.std() / flat.groupby("config").null_std.mean()).min() > 5
    s = ma.centered_spread(flat)
    assert (s["spread ratio"] < 2).all() and (s.p_value > 0.05).all()
    planted = ma.centered_spread(_null_maps(signal=0.5))
    assert (planted["spread ratio"] > 5).all() and (planted.p_value <= 1 / 31 + 1e-9).all()
    with pytest.raises(ValueError, match="keep_null=True"):
        ma.centered_spread(flat.drop(columns="null"))


def test_median_rho_test_against_the_shared_shuffle_null():
    planted = ma.agreement_maps(_null_maps(signal=0.5).assign(raw=lambda d: d.raw))
    r = ma.median_rho_test(planted)
    assert r["observed"] > 0.9 and r["n_perm"] == 30
    # the null keeps the chance-level ordering of pairs, which both configs share: it is high too
    assert r["null median"] > 0.5
    noise = ma.median_rho_test(ma.agreement_maps(_null_maps(signal=0.0)))
    assert 0 < noise["p_value"] <= 1


def _graded_models(n_models=6, n=100, seed=0):
    """Models that share a common signal to different degrees: pairs differ in alignment, so
    every configuration ranks the pairs alike (agreement well above the null)."""
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(n, 8, generator=g)
    feats = {}
    for i in range(n_models):
        w = i / (n_models - 1)
        x = (1 - w) * base @ torch.randn(8, 16, generator=g) \
            + 2 * w * torch.randn(n, 16, generator=g)
        feats[f"m{i}"] = alignment.prepare([x])
    return feats


def test_agreement_test_null_bootstrap_and_p_value():
    feats = _graded_models()
    configs = [("mutual_knn", 5), ("mutual_knn", 10), ("cknna", 10), ("unbiased_cka", 0)]
    t = ma.score_pairs(feats, configs, n_perm=19, keep_null=True)
    r = ma.agreement_test(t, "raw", n_boot=200)
    assert r["n_pairs"] == 15 and r["n_models"] == 6 and r["n_perm"] == 19
    # matches agreement(): the mean off-diagonal Spearman of the observed scores
    assert r["mean"] == pytest.approx(ma.mean_off_diagonal(ma.agreement(t, "raw")))
    assert r["mean"] > 0.5 and r["mean"] > r["null_95"]
    assert r["p_value"] == pytest.approx(1 / 20)  # at the floor: every null draw lies below
    assert r["ci_low"] <= r["mean"] <= r["ci_high"] and r["ci_low"] > 0
    c = ma.agreement_test(t, "corrected", n_boot=50)
    assert c["mean"] == pytest.approx(ma.mean_off_diagonal(ma.agreement(t, "corrected")))


def test_agreement_test_on_unrelated_models_is_not_significant():
    # independent models: the observed pairs are one more draw of the null, so the p-value is
    # uniform (seed 1 happens to land in its lowest 5%); chance agreement itself is far above 0
    g = torch.Generator().manual_seed(2)
    feats = {f"m{i}": alignment.prepare([torch.randn(100, 16, generator=g)]) for i in range(6)}
    t = ma.score_pairs(feats, [("mutual_knn", 5), ("cknna", 5), ("unbiased_cka", 0)], n_perm=19,
                       keep_null=True, seed=2)
    r = ma.agreement_test(t, "raw", n_boot=50)
    assert r["p_value"] > 0.05 and r["null_mean"] > 0.2


def test_model_bootstrap_resamples_models_and_checks_arguments():
    feats = _graded_models(n_models=4)
    t = ma.score_pairs(feats, [("mutual_knn", 5), ("cka", 0)], n_perm=0)
    draws = ma.model_bootstrap_agreement(t, "raw", n_boot=300, seed=0)
    assert draws.shape == (300,)
    # with 4 models a draw of 2 distinct models has 1 pair: undefined, NaN, never a number
    assert np.isnan(draws).any() and np.isfinite(draws).any()
    with pytest.raises(ValueError, match="value must be"):
        ma.model_bootstrap_agreement(t, "calibrated")
    with pytest.raises(ValueError, match="n_boot"):
        ma.model_bootstrap_agreement(t, "raw", n_boot=0)
    with pytest.raises(ValueError, match="keep_null"):
        ma.agreement_test(t, "raw")


@pytest.mark.parametrize("metric, tol", [("mutual_knn", 0.0), ("cknna", 0.0),
                                         ("unbiased_cka", 1e-5)])
def test_block_scores_of_some_pairs_equal_the_full_product(metric, tol):
    # unordered pairs are scored model by model against their partners only; the rows, null
    # draws included, are those of the full product (same shuffles), up to float32 Gram sums
    feats = _planted()
    pairs = [("a", "b"), ("a", "c"), ("b", "c")]
    part = ma.block_scores(feats, feats, metric, k=5, n_perm=6, seed=4, pairs=pairs,
                           keep_null=True)
    full = ma.block_scores(feats, feats, metric, k=5, n_perm=6, seed=4, keep_null=True)
    full = full.set_index(["model_a", "model_b"]).loc[pairs].reset_index()
    cols = ["raw", "layer_a", "layer_b", "null_mean", "p_value", "corrected"]
    np.testing.assert_allclose(part[cols].to_numpy(float), full[cols].to_numpy(float), atol=tol)
    for x, y in zip(part.null, full.null):
        np.testing.assert_allclose(x.numpy(), y.numpy(), atol=tol)
