"""helpers.prh.real_images: photo lists, crops with groups, Fashion-MNIST, grouped mutual kNN."""
import numpy as np
import pytest
import torch
from PIL import Image

from helpers import alignment
from helpers.prh import metric_agreement as ma
from helpers.prh import real_images as ri

torch.set_num_threads(1)


@pytest.fixture
def pictures(tmp_path):
    """Two tiny generated pictures (a JPEG and an RGBA PNG), stand-ins for the wallpapers."""
    rng = np.random.default_rng(0)
    a = tmp_path / "a.jpg"
    Image.fromarray(rng.integers(0, 255, (60, 90, 3), dtype=np.uint8)).save(a)
    b = tmp_path / "b.png"
    Image.fromarray(rng.integers(0, 255, (80, 50, 4), dtype=np.uint8), "RGBA").save(b)
    return [a, b]


def test_random_crops_shapes_groups_and_seed(pictures):
    x, g = ri.random_crops(pictures, 7, size=16, seed=1)
    assert x.shape == (7, 3, 16, 16) and x.min() >= 0 and x.max() <= 1
    assert g.tolist() == [0, 0, 0, 0, 1, 1, 1]
    y, _ = ri.random_crops(pictures, 7, size=16, seed=1)
    z, _ = ri.random_crops(pictures, 7, size=16, seed=2)
    assert torch.equal(x, y) and not torch.equal(x, z)


def test_random_crops_rejects_bad_arguments(pictures):
    with pytest.raises(ValueError, match="n >= 2"):
        ri.random_crops(pictures, 1)
    with pytest.raises(ValueError, match=r"scales in \(0, 1\]"):
        ri.random_crops(pictures, 4, scales=(1.5,))
    with pytest.raises(ValueError, match="paths is empty"):
        ri.random_crops([], 4)


def test_missing_wallpapers_name_the_debian_package(monkeypatch):
    monkeypatch.setattr(ri, "_resolve", lambda _e: None)
    with pytest.raises(FileNotFoundError, match="apt-get install mate-backgrounds"):
        ri.photo_paths()


@pytest.mark.skipif(not ri.MATE_NATURE.is_dir(), reason="mate-backgrounds not installed")
def test_installed_photos_and_abstract_sets_are_disjoint():
    photos, abstract = set(ri.photo_paths()), set(ri.abstract_paths())
    assert len(photos) >= 12 and len(abstract) >= 8 and not photos & abstract


@pytest.mark.skipif(not ri.FASHION_DIR.is_dir(), reason="dataset-fashion-mnist not installed")
def test_fashion_mnist_and_captions():
    x, y = ri.load_fashion_mnist(20, seed=0)
    assert x.shape == (20, 3, 28, 28) and 0 <= x.min() and x.max() <= 1 and x.max() > 0.5
    assert set(y.tolist()) <= set(range(10))
    caps = ri.fashion_captions(y)
    assert caps[0] == f"a photo of a {ri.FASHION_CLASSES[y[0]].lower()}."
    with pytest.raises(ValueError, match="split"):
        ri.load_fashion_mnist(5, split="val")


def _feats(seed, n=120, d=16, layers=2):
    g = torch.Generator().manual_seed(seed)
    return [alignment.prepare(torch.randn(n, d, generator=g)) for _ in range(layers)]


def test_plain_grouped_scores_match_block_scores():
    fa, fb = {"a": _feats(0)}, {"b": _feats(1)}
    fb["b"][1] = fa["a"][0] + 0.05 * fb["b"][1]  # a shared layer, so the score is far above chance
    mine = ri.grouped_block_scores(fa, fb, None, k=5, n_perm=10, seed=0)
    ref = ma.block_scores(fa, fb, "mutual_knn", 5, n_perm=10, seed=0)
    assert mine.raw.iloc[0] == pytest.approx(ref.raw.iloc[0])
    assert (mine.layer_a.iloc[0], mine.layer_b.iloc[0]) == (0, 1)
    assert mine.p_value.iloc[0] == pytest.approx(1 / 11)  # at the floor


def _one_shuffle_at_a_time(fa, fb, groups, k, perms, pairs):
    """The unbatched null: one overlap table per shuffle, its layer-pair max."""
    n = len(next(iter(fa.values()))[0])
    g = torch.as_tensor(groups)
    blocked = (g[:, None] == g[None, :]) | torch.eye(n, dtype=torch.bool)
    out = []
    for a, b in pairs:
        la, lb = ri._knn_lists(fa[a], blocked, k), ri._knn_lists(fb[b], blocked, k)
        mask = torch.zeros(len(la), n * n, dtype=torch.bool)
        for layer, li in enumerate(la):
            mask[layer, (torch.arange(n)[:, None] * n + li).reshape(-1)] = True
        out.append([float(ri._overlaps(mask, torch.argsort(p)[lb[:, p]], k).max()) for p in perms])
    return np.array(out)


# one chunk; several chunks; more than 8 layers (a's layers packed into two bytes)
@pytest.mark.parametrize("chunk_elements, layers", [(1 << 24, 3), (3000, 3), (1 << 24, 11)])
def test_batched_null_equals_one_shuffle_at_a_time(monkeypatch, chunk_elements, layers):
    monkeypatch.setattr(ri, "_DRAW_ELEMENTS", chunk_elements)
    feats = {m: _feats(s, n=60, layers=layers - s) for s, m in enumerate("abc")}
    groups = np.repeat(np.arange(10), 6)
    pairs = [("a", "b"), ("c", "a")]
    t = ri.grouped_block_scores(feats, feats, groups, k=4, n_perm=13, seed=5, pairs=pairs,
                                keep_null=True)
    gen = torch.Generator().manual_seed(5)
    perms = [torch.randperm(60, generator=gen) for _ in range(13)]
    slow = _one_shuffle_at_a_time(feats, feats, groups, 4, perms, pairs)
    np.testing.assert_array_equal(np.stack([d.numpy() for d in t.null]), slow)
    np.testing.assert_array_equal(t.null_mean, slow.mean(1))
    # perm_seeds: draw j equals the null of a one-shuffle call with that seed
    seeded = ri.grouped_block_scores(feats, feats, groups, 4, n_perm=3, pairs=pairs,
                                     perm_seeds=[7, 1, 4], keep_null=True)
    for j, s in enumerate([7, 1, 4]):
        one = ri.grouped_block_scores(feats, feats, groups, 4, n_perm=1, seed=s, pairs=pairs)
        np.testing.assert_array_equal([float(d[j]) for d in seeded.null], one.null_mean)
    with pytest.raises(ValueError, match="perm_seeds has 3 seeds but n_perm=4"):
        ri.grouped_block_scores(feats, feats, groups, 4, n_perm=4, pairs=pairs,
                                perm_seeds=[1, 2, 3])


def test_excluding_groups_removes_within_group_agreement():
    # 12 groups of 10 rows: rows of one group sit together in both models (a shared "photo"),
    # but the groups' positions are independent between the models, as is the within-group noise.
    n_groups, size, d = 12, 10, 16
    g = torch.Generator().manual_seed(0)
    groups = np.repeat(np.arange(n_groups), size)
    xa, xb = (alignment.prepare(torch.randn(n_groups, d, generator=g)[groups] * 4
                                + torch.randn(len(groups), d, generator=g)) for _ in range(2))
    plain = ri.grouped_block_scores({"a": [xa]}, {"b": [xb]}, None, k=5, n_perm=20)
    excl = ri.grouped_block_scores({"a": [xa]}, {"b": [xb]}, groups, k=5, n_perm=20)
    assert plain.corrected.iloc[0] > 0.1
    assert abs(excl.corrected.iloc[0]) < plain.corrected.iloc[0] / 2
    assert excl.null_mean.iloc[0] == pytest.approx(5 / (len(groups) - size), abs=0.02)


def test_identical_models_score_one_with_groups():
    x = _feats(3, n=60, layers=1)
    groups = np.repeat(np.arange(6), 10)
    t = ri.grouped_block_scores({"a": x}, {"b": x}, groups, k=5, n_perm=5)
    assert t.raw.iloc[0] == pytest.approx(1.0)


def test_grouped_scores_reject_bad_input():
    x = _feats(0, n=30, layers=1)
    with pytest.raises(ValueError, match="groups has 29"):
        ri.grouped_block_scores({"a": x}, {"b": x}, np.zeros(29), k=3)
    with pytest.raises(ValueError, match="largest group"):
        ri.grouped_block_scores({"a": x}, {"b": x}, np.repeat([0, 1], 15), k=20)
    with pytest.raises(ValueError, match="n_perm >= 1"):
        ri.grouped_block_scores({"a": x}, {"b": x}, None, k=3, n_perm=0)


def test_pair_kind_and_trained_minus_init():
    assert ri.pair_kind("a", "b") == "trained"
    assert ri.pair_kind(ri.control_name("a"), ri.control_name("b")) == "init"
    assert ri.pair_kind("a", ri.control_name("b")) == "mixed"
    assert ri.pair_kind("a", ri.PIXELS) == "pixels"
    import pandas as pd

    t = pd.DataFrame(dict(model_a=["a", "a (init)", "a"], model_b=["b", "b (init)", "pixels"],
                          corrected=[0.5, 0.2, 0.1]))
    d = ri.trained_minus_init(t)
    assert len(d) == 1 and d.difference.iloc[0] == pytest.approx(0.3)


def test_alignment_table_kinds_depths_and_last_layer():
    fa = _feats(0, n=60, layers=3)
    feats = {"a": fa, "b": [fa[0], _feats(1, n=60, layers=1)[0], fa[2]],
             "a (init)": _feats(2, n=60, layers=2), "b (init)": _feats(3, n=60, layers=2)}
    t = ri.alignment_table(feats, k=5, n_perm=5)
    ab = t[(t.model_a == "a") & (t.model_b == "b")].iloc[0]
    assert ab.kind == "trained" and ab.raw == pytest.approx(1.0)
    assert ab.depth_a in (0.0, 1.0) and ab.last_corrected > 0.9  # last layers are identical too
    assert set(t.kind) == {"trained", "init", "mixed"}


def test_confidence_table_reads_logits():
    logits = {"s": {"efficientnet_lite0": torch.tensor([[10.0] + [0.0] * 999, [0.0] * 1000])}}
    c = ri.confidence_table(logits).iloc[0]
    assert c.frac_confident == pytest.approx(0.5)
    assert c.confidence == pytest.approx((np.exp(10) / (np.exp(10) + 999) + 1e-3) / 2)
    assert c.entropy > 3


def test_make_image_sets_shapes_and_unknown_name():
    sets = ri.make_image_sets(8, size=32, seed=0, names=("shapes",))
    s = sets["shapes"]
    assert s.images.shape == (8, 3, 32, 32) and len(s.captions) == 8 and s.groups is None
    with pytest.raises(ValueError, match="names from"):
        ri.make_image_sets(8, names=("imagenet",))


def test_summarise_resamples_models_and_plots():
    import matplotlib

    matplotlib.use("Agg")
    fa = _feats(0, n=60, layers=2)
    feats = {"a": fa, "b": [fa[1], _feats(1, n=60, layers=1)[0]], "c": _feats(4, n=60, layers=2),
             "a (init)": _feats(2, n=60, layers=2), "b (init)": _feats(3, n=60, layers=2),
             "c (init)": _feats(5, n=60, layers=2), ri.PIXELS: _feats(6, n=60, layers=1)}
    t = ri.alignment_table(feats, k=5, n_perm=5)
    summary = ri.summarise({("s", "plain"): t}, n_boot=50)
    assert set(summary.index.get_level_values("quantity")) == set(ri.SUMMARY_QUANTITIES)
    row = summary.loc[("s", "plain", "trained - init")]
    assert row.pairs == 3 and row.ci_low <= row["mean"] <= row.ci_high
    fig = ri.plot_alignment(summary, {"s": "plain"}, ["C0", "C1", "C2", "C3", "C4"], "grey")
    assert len(fig.axes) == 2
    conf = ri.confidence_table({"s": {"m": torch.randn(4, 1000)}})
    assert len(ri.plot_confidence(conf, ["s"], ["C0"]).axes) == 2


def test_pretrained_features_in_workers_equal_in_process(tmp_path, monkeypatch):
    """Two worker processes (one job per model and control) give the in-process features, and
    a second call reads them from the cache without any job."""
    gen = torch.Generator().manual_seed(0)
    sets = {name: ri.ImageSet(name, torch.rand(3, 3, 32, 32, generator=gen), None, None, None,
                              {"test_set": name, "n": 3})
            for name in ("a", "b")}
    monkeypatch.setenv("BOOK_CACHE", str(tmp_path / "one"))
    feats1, logits1 = ri.pretrained_features(sets, ["efficientnet_lite0"], input_size=32,
                                             progress=False, workers=1)
    monkeypatch.setenv("BOOK_CACHE", str(tmp_path / "two"))
    feats2, logits2 = ri.pretrained_features(sets, ["efficientnet_lite0"], input_size=32,
                                             progress=False, workers=2)
    assert len(list((tmp_path / "two" / "pretrained_features").glob("*.pt"))) == 4
    for s in sets:
        assert list(feats1[s]) == list(feats2[s]) == ["efficientnet_lite0",
                                                      ri.control_name("efficientnet_lite0")]
        assert torch.equal(logits1[s]["efficientnet_lite0"], logits2[s]["efficientnet_lite0"])
        assert logits1[s]["efficientnet_lite0"].shape == (3, 1000)
        for label, layers in feats1[s].items():
            assert len(layers) == len(feats2[s][label]) > 1
            assert all(torch.equal(a, b) for a, b in zip(layers, feats2[s][label]))
    # trained and random-init features differ (the control is a different network)
    assert not torch.equal(feats1["a"]["efficientnet_lite0"][-1],
                           feats1["a"][ri.control_name("efficientnet_lite0")][-1])
    monkeypatch.setattr(ri, "_model_features", lambda job: pytest.fail("recomputed"))
    again, _ = ri.pretrained_features(sets, ["efficientnet_lite0"], input_size=32, progress=False)
    assert all(torch.equal(a, b) for a, b in zip(again["b"]["efficientnet_lite0"],
                                                 feats2["b"]["efficientnet_lite0"]))
