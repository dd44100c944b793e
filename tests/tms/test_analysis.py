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
            rows += [dict(init=init, sparsity=S, llc=v, chain_var=0.5, loss=0.1 - 0.01 * v,
                          grad_norm=1e-4)
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


def test_correlations_by_type_keeps_only_big_enough_cells():
    rng = np.random.default_rng(5)
    rows = [dict(init="6-gon", sparsity=0.4, kgon="6", llc=v, loss=-v + 0.1 * rng.normal())
            for v in rng.normal(size=12)]
    rows += [dict(init="6-gon", sparsity=0.4, kgon="5-", llc=v, loss=v) for v in range(3)]
    t = analysis.correlations_by_type(pd.DataFrame(rows), min_n=8, n_boot=200)
    assert list(t.kgon) == ["6"] and t.n.iloc[0] == 12
    assert t.spearman.iloc[0] < -0.8 and t.spearman_hi.iloc[0] < 0 and t.pearson_hi.iloc[0] < 0


def test_start_contrast_is_paired_and_reads_a_planted_pattern():
    rows = []
    for seed in range(20):
        rows.append(dict(init="4-gon", sparsity=0.4, seed=seed, final_loss=0.3 if seed else 0.05))
        rows.append(dict(init="6-gon", sparsity=0.4, seed=seed, final_loss=0.15 + 0.001 * seed))
    t = analysis.start_contrast(pd.DataFrame(rows), n_boot=300)
    r = t.iloc[0]
    assert r.mean_diff > 0 and r.mean_lo > 0  # worse on average
    assert r.best_diff == pytest.approx(0.05 - 0.15)
    assert r.best_lo <= r.best_diff  # the interval of a minimum reaches the observed one


def test_barrier_summary_leaves_out_zero_loss_endpoints():
    lmc = pd.DataFrame(dict(pair=["4-gon vs 6-gon start"] * 3 + ["4-gon vs 4-gon start"] * 3,
                            sparsity=0.4,
                            aligned=[0.01, 0.02, 0.0, 0.0, 0.0, 0.0],
                            endpoint_loss=[1.0, 1.0, 0.0, 1.0, 0.0, 0.0]))
    t = analysis.barrier_summary(lmc, n_boot=100).set_index("kind")
    assert (t.loc["cross-start", "left_out"] == 1
            and t.loc["cross-start", "median_ratio"] == pytest.approx(0.015))
    assert np.isnan(t.loc["same-start control", "median_ratio"])  # too few pairs left


def test_prune_summary_ratio_against_the_control():
    imp = pd.DataFrame(dict(weights=[12] * 4 + [10] * 4, loss=[1.0] * 4 + [2.0] * 4,
                            control_loss=1.0,
                            kgon=["6"] * 4 + ["5-"] * 4, dense_kgon="6", control_kgon="6",
                            features_per_dim=3.0))
    t = analysis.prune_summary(imp, n_boot=100).set_index("weights")
    assert (t.loc[10, "loss_ratio"] == pytest.approx(2.0)
            and t.loc[12, "loss_ratio"] == pytest.approx(1.0))
    assert t.loc[10, "kept_imp"] == 0 and t.loc[10, "kept_control"] == 1


def test_polygon_table_per_sparsity_and_start():
    g = pd.DataFrame(dict(sparsity=[0.1] * 4, init=["4-gon", "4-gon", "6-gon", "6-gon"],
                          k=[4, 5, 6, 6], features_per_dim=[1.5, 2.0, 3.0, 3.0],
                          kgon=["4-gon", "5-gon", "6-gon", "6-gon"]))
    t = analysis.polygon_table(g)
    assert t.loc[0.1, ("corners", "4-gon")] == 4.5 and t.loc[0.1, ("corners", "6-gon")] == 6
    assert t.loc[0.1, ("polygon_types", "4-gon")] == 2
    assert t.loc[0.1, ("polygon_types", "6-gon")] == 1
    assert t.loc[0.1, ("features_per_dim", "4-gon")] == 1.75
