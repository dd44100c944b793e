"""Tests for helpers.tms.analysis: correlations within cells and their bootstrap intervals."""
import numpy as np
import pandas as pd
import pytest

from helpers.tms import analysis


def test_pearson_and_spearman_against_numpy_and_ranks():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=30), rng.normal(size=30)
    assert analysis.pearson(x, y) == pytest.approx(np.corrcoef(x, y)[0, 1])
    # Spearman is invariant to a monotone map and sees a monotone curve as 1
    assert analysis.spearman(x, np.exp(3 * x)) == pytest.approx(1.0)
    assert analysis.spearman(x, y) == pytest.approx(analysis.spearman(np.exp(x), y))
    assert analysis.pearson(x, np.exp(3 * x)) < 0.99


def test_undefined_correlations_are_nan_not_numbers():
    assert np.isnan(analysis.pearson([1, 2], [3, 4]))
    assert np.isnan(analysis.pearson([1, 1, 1], [1, 2, 3]))
    r, lo, hi = analysis.boot_corr([1, 1, 1, 1], [1, 2, 3, 4], n_boot=50)
    assert np.isnan(r) and np.isnan(lo) and np.isnan(hi)
    assert analysis.fmt_r(float("nan")).startswith("undefined")
    assert analysis.fmt_r(-0.5) == "-0.50"


def test_boot_corr_interval_covers_a_strong_correlation():
    rng = np.random.default_rng(1)
    x = rng.normal(size=40)
    y = -x + 0.3 * rng.normal(size=40)
    r, lo, hi = analysis.boot_corr(x, y, n_boot=300)
    assert lo <= r <= hi < 0


def _final(n=6):
    rng = np.random.default_rng(2)
    rows = []
    for init in ("4-gon", "6-gon"):
        for S in (0.4, 0.9):
            llc = rng.normal(5, 1, n)
            rows += [dict(init=init, sparsity=S, llc=v, chain_var=0.5, loss=0.1 - 0.01 * v, grad_norm=1e-4)
                     for v in llc]
    return pd.DataFrame(rows)


def test_puzzle_table_reads_a_planted_negative_correlation():
    t = analysis.puzzle_table(_final(), chains=4, n_boot=200, grad_tol=1e-3)
    assert len(t) == 4
    assert (t.r < -0.99).all() and (t.r_hi < 0).all()
    assert np.allclose(t.chain_noise_var, 0.5 / 4)
    assert (t.n_flat == 6).all()


def test_offby_table_change_is_next_minus_same():
    d = _final().assign(step=10)
    d["loss_next"] = d.loss[::-1].to_numpy()
    t = analysis.offby_table(d, [10])
    assert np.allclose(t.change, t.r_next_step - t.r_same_step, equal_nan=True)
