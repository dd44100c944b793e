"""Tests of helpers/prh/noise_photos.py: same-photo exclusion with pooled null draws."""
import numpy as np
import pytest
import torch

from helpers import alignment
from helpers.prh import noise_images as ni
from helpers.prh import noise_photos as nph
from helpers.prh import real_images as ri


def _grouped(seed=0, n_groups=12, size=10, d=16):
    """Rows of one group sit together in both models; the groups' places differ between them."""
    g = torch.Generator().manual_seed(seed)
    groups = np.repeat(np.arange(n_groups), size)
    feats = {m: [alignment.prepare(torch.randn(n_groups, d, generator=g)[groups] * 4
                                   + torch.randn(len(groups), d, generator=g))] for m in "abc"}
    return feats, groups


def test_rows_match_grouped_block_scores_and_pool():
    feats, groups = _grouped()
    pairs = [("a", "b"), ("a", "c"), ("b", "c")]
    rows = nph.excluded_pair_rows(feats, pairs, groups, k=5, n_perm=30, group="g", t=0.5)
    ref = ri.grouped_block_scores(feats, feats, groups, 5, n_perm=30, seed=0, pairs=pairs)
    np.testing.assert_allclose(rows.observed, ref.raw)
    # the null draws sit at the excluded chance level k / (N - group size), as the reference's
    assert rows.null_mean.to_numpy() == pytest.approx(5 / 110, abs=0.01)
    assert set(rows.group) == {"g"} and set(rows.t) == {0.5} and len(rows.null.iloc[0]) == 30
    pooled = ni.pool_pairs(rows)
    assert 0 < pooled["pooled p"] <= 1 and pooled.pairs == 3


@pytest.mark.parametrize("layer", ["last", "max"])
def test_rows_equal_one_grouped_call_per_shuffle(layer):
    feats, groups = _grouped(2)
    feats = {m: ls + [alignment.prepare(ls[0] + 0.5 * torch.randn_like(ls[0]))]
             for m, ls in feats.items()}  # two layers, so "max" searches layer pairs
    pairs = [("a", "b"), ("c", "b")]
    rows = nph.excluded_pair_rows(feats, pairs, groups, k=5, n_perm=12, layer=layer)
    pick = (lambda ls: ls) if layer == "max" else (lambda ls: ls[-1:])
    fa, fb = ({m: pick(feats[m]) for m in ms} for ms in ({"a", "c"}, {"b"}))
    slow = np.stack([ri.grouped_block_scores(fa, fb, groups, 5, n_perm=1, seed=j + 1,
                                             pairs=pairs).null_mean for j in range(12)], 1)
    np.testing.assert_array_equal(np.stack([d.numpy() for d in rows.null]), slow)
    one = ri.grouped_block_scores(fa, fb, groups, 5, n_perm=1, seed=0, pairs=pairs)
    np.testing.assert_array_equal(rows.observed, one.raw)


def test_exclusion_removes_same_photo_agreement():
    feats, groups = _grouped()
    pairs = [("a", "b")]
    plain = nph.excluded_pair_rows(feats, pairs, np.arange(len(groups)), k=5, n_perm=30)
    excl = nph.excluded_pair_rows(feats, pairs, groups, k=5, n_perm=30)
    assert plain.corrected.iloc[0] > 0.1 and plain.p_value.iloc[0] == pytest.approx(1 / 31)
    assert abs(excl.corrected.iloc[0]) < plain.corrected.iloc[0] / 2


def test_identical_models_are_at_the_floor_and_draws_share_shuffles():
    feats, groups = _grouped(1)
    feats["d"] = feats["a"]
    rows = nph.excluded_pair_rows(feats, [("a", "d"), ("b", "c")], groups, k=5, n_perm=19,
                                  layer="max")
    assert rows.observed.iloc[0] == pytest.approx(1.0)
    assert rows.p_value.iloc[0] == pytest.approx(1 / 20)
    again = nph.excluded_pair_rows(feats, [("b", "c")], groups, k=5, n_perm=19, layer="max")
    np.testing.assert_allclose(again.null.iloc[0], rows.null.iloc[1])  # draw j: one shuffle


def test_bad_arguments_are_named():
    feats, groups = _grouped()
    with pytest.raises(ValueError, match="layer"):
        nph.excluded_pair_rows(feats, [("a", "b")], groups, 5, 5, layer="first")
    with pytest.raises(ValueError, match="n_perm"):
        nph.excluded_pair_rows(feats, [("a", "b")], groups, 5, 0)


def test_photo_crops_come_with_their_photograph():
    paths = ri.photo_paths()
    x, g = nph.photo_crops(len(paths) + 3, 16, 0)
    assert x.shape == (len(paths) + 3, 3, 16, 16) and len(g) == len(x)
    assert set(g) == set(range(len(paths))) and np.all(np.diff(g) >= 0)
    assert torch.equal(nph.photos(len(paths) + 3, 16, 0), x)
    assert nph.photos.__name__ == "photos"  # names the set in the feature-cache keys
