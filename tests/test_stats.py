"""Tests for helpers.stats: bootstrap draws and intervals, the Spearman permutation test."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

from helpers import stats


def test_mean_ci_covers_the_true_mean_at_about_the_nominal_rate():
    """95% intervals of normal samples of 40 cover the true mean in roughly 95% of 200 trials."""
    rng = np.random.default_rng(0)
    hits = 0
    for trial in range(200):
        x = rng.normal(3.0, 2.0, 40)
        mean, lo, hi = stats.mean_ci(x, n_boot=400, seed=trial)
        assert lo <= mean <= hi and mean == pytest.approx(x.mean())
        hits += lo <= 3.0 <= hi
    assert 0.88 <= hits / 200 <= 0.99  # percentile intervals undercover a little at n = 40


def test_interval_shrinks_like_one_over_sqrt_n():
    rng = np.random.default_rng(1)
    widths = []
    for n in (25, 400):
        lo, hi = stats.mean_ci(rng.normal(size=n), n_boot=1000)[1:]
        widths.append(hi - lo)
    assert 2.5 < widths[0] / widths[1] < 6.5  # sqrt(400 / 25) = 4


def test_bootstrap_keeps_pairs_together_and_is_seeded():
    x = np.random.default_rng(2).normal(size=30)
    diffs = stats.bootstrap(lambda a, b: float(np.mean(a - b)), x, x + 1.0, n_boot=50)
    np.testing.assert_allclose(diffs, -1.0)  # a paired difference has no resampling spread
    a = stats.bootstrap(np.mean, x, n_boot=50, seed=7)
    np.testing.assert_array_equal(a, stats.bootstrap(np.mean, x, n_boot=50, seed=7))
    assert not np.array_equal(a, stats.bootstrap(np.mean, x, n_boot=50, seed=8))


def test_interval_ignores_degenerate_draws():
    draws = np.array([np.nan, 0.0, 1.0, 2.0, np.nan])
    assert stats.interval(draws, level=0.5) == pytest.approx((0.5, 1.5))
    with pytest.raises(ValueError, match="no finite"):
        stats.interval([np.nan, np.nan])
    with pytest.raises(ValueError, match="level"):
        stats.interval([1.0, 2.0], level=95)


def test_hierarchical_means_are_paired_over_seeds_and_items():
    a = np.ones((3, 10))
    b = np.zeros((3, 10))
    b[:, :5] = 1
    d = stats.hierarchical_means({"a": a, "b": b}, n_boot=300)
    assert np.all(d["a"] == 1.0) and 0.3 < d["b"].mean() < 0.7
    # same indices for every name: the difference of a name with itself plus 1 is exactly 1
    d2 = stats.hierarchical_means({"b": b, "b+1": b + 1}, n_boot=100)
    np.testing.assert_allclose(d2["b+1"] - d2["b"], 1.0)
    # seeds are a level: a seed-level effect widens the interval beyond item noise alone
    rng = np.random.default_rng(3)
    items = rng.normal(size=(4, 50))
    with_seed_effect = items + np.array([[-2.0], [-1.0], [1.0], [2.0]])
    narrow = np.subtract(*stats.interval(stats.hierarchical_means({"x": items})["x"])[::-1])
    draws = stats.hierarchical_means({"x": with_seed_effect})["x"]
    wide = np.subtract(*stats.interval(draws)[::-1])
    assert wide > 3 * narrow


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="one length"):
        stats.bootstrap(np.mean, np.ones(3), np.ones(4))
    with pytest.raises(ValueError, match="empty"):
        stats.bootstrap(np.mean, np.array([]))
    with pytest.raises(ValueError, match="at least one"):
        stats.bootstrap(np.mean)
    with pytest.raises(ValueError, match="n_boot"):
        stats.mean_ci(np.ones(3), n_boot=0)
    with pytest.raises(ValueError, match="one shape"):
        stats.hierarchical_means({"a": np.ones((3, 10)), "b": np.ones((2, 10))})
    with pytest.raises(ValueError, match="one shape"):
        stats.hierarchical_means({"a": np.ones(10)})
    with pytest.raises(ValueError, match="empty"):
        stats.hierarchical_means({"a": np.ones((0, 10))})


def test_docstring_examples_run():
    assert doctest.testmod(stats).failed == 0


def test_spearman_permutation_detects_monotone_and_not_noise():
    x = np.arange(12.0)
    rho, p = stats.spearman_permutation(x, x ** 3, n_perm=999, seed=0)
    assert rho == pytest.approx(1.0)
    assert p == pytest.approx(1 / 1000)  # no shuffle of 12 points reaches |rho| = 1 in 999 tries
    rho, p = stats.spearman_permutation(x, -x, n_perm=999, seed=0)
    assert rho == pytest.approx(-1.0) and p == pytest.approx(1 / 1000)  # two-sided
    rng = np.random.default_rng(3)
    ps = [stats.spearman_permutation(rng.normal(size=12), rng.normal(size=12), n_perm=199,
                                     seed=s)[1]
          for s in range(60)]
    assert np.mean(np.array(ps) < 0.05) <= 0.15  # false positives near the 5% level
    assert 0.35 < np.mean(ps) < 0.65  # p-values of independent data are about uniform


def test_spearman_permutation_constant_and_bad_input():
    assert all(np.isnan(stats.spearman_permutation(np.zeros(5), np.arange(5.0))))
    with pytest.raises(ValueError, match="one length"):
        stats.spearman_permutation(np.arange(4.0), np.arange(5.0))
    with pytest.raises(ValueError, match="at least 2 points"):
        stats.spearman_permutation([1.0], [2.0])
    with pytest.raises(ValueError, match="n_perm must be a positive integer"):
        stats.spearman_permutation(np.arange(4.0), np.arange(4.0), n_perm=0)


def test_nan_data_never_gives_a_confident_interval_or_p_value():
    """A NaN observation is rejected where it enters, naming the input; before, resamples that
    missed it gave a finite interval, and a Spearman test on NaN data gave the smallest possible
    p-value."""
    x = np.arange(20.0)
    x[7] = np.nan
    with pytest.raises(ValueError,
                       match=r"values contains 1 NaN value\(s\) \(first at index \[\[7\]\]\)"):
        stats.mean_ci(x, n_boot=200)
    with pytest.raises(ValueError, match=r"samples\[1\] contains 1 NaN"):
        stats.bootstrap(lambda a, b: float(np.mean(a - b)), np.arange(20.0), x, n_boot=50)
    with pytest.raises(ValueError, match="y contains 1 NaN"):
        stats.spearman_permutation(np.arange(20.0), x, n_perm=99)
    with pytest.raises(ValueError, match="x contains 1 NaN"):
        stats.spearman_permutation(x, np.arange(20.0), n_perm=99)
    with pytest.raises(ValueError, match=r"arrays\['b'\] contains 1 NaN"):
        stats.hierarchical_means({"a": np.ones((2, 10)), "b": x.reshape(2, 10)}, n_boot=20)


def test_counts_and_seeds_of_the_wrong_type_name_the_argument():
    x = np.arange(10.0)
    for kwargs, name in [({"seed": "a"}, "seed"), ({"seed": -1}, "seed"), ({"seed": 1.5}, "seed"),
                         ({"n_boot": 2.5}, "n_boot"), ({"n_boot": None}, "n_boot"),
                         ({"n_boot": True}, "n_boot")]:
        with pytest.raises(ValueError, match=name):
            stats.bootstrap(np.mean, x, **kwargs)
    with pytest.raises(ValueError, match="n_perm must be a positive integer"):
        stats.spearman_permutation(x, x, n_perm="9")
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        stats.spearman_permutation(x, x ** 2, n_perm=9, seed=None)
    with pytest.raises(ValueError, match="level must be a number in"):
        stats.mean_ci(x, n_boot=10, level="0.95")


def test_pair_bootstrap_resamples_models_not_pairs():
    from helpers.stats import pair_bootstrap

    pairs = [("a", "b"), ("a", "c"), ("b", "c"), ("a", "pix"), ("b", "pix"), ("c", "pix")]
    # every pair with model "a" is high: resampling models moves all of them together
    v = np.array([1.0, 1.0, 0.0, 1.0, 0.0, 0.0])
    d = pair_bootstrap(v, pairs, n_boot=4000, seed=0, units=["a", "b", "c"])
    assert np.nanmean(d) == pytest.approx(v.mean(), abs=0.06)
    naive = stats.bootstrap(np.mean, v, n_boot=4000, seed=0)
    assert np.nanstd(d) > np.std(naive)  # clustered pairs: wider than the pair bootstrap
    assert pair_bootstrap(v[:3], pairs[:3], n_boot=200, seed=1).shape == (200,)
    with pytest.raises(ValueError, match="one entry per pair"):
        pair_bootstrap(v[:2], pairs, n_boot=10)
    with pytest.raises(ValueError, match="NaN"):
        pair_bootstrap([np.nan], [("a", "b")], n_boot=10)
    with pytest.raises(ValueError, match="units names no model"):
        pair_bootstrap(v, pairs, n_boot=10, units=["zz"])
