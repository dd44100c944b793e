"""Reading the grid: loss-LLC correlations within a cell, with bootstrap intervals over seeds.

Example:
    >>> pearson([1, 2, 3], [2, 4, 7]) > 0.9
    True
    >>> fmt_r(float("nan"))
    'undefined (too few models)'
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from helpers import stats

__all__ = ["pearson", "spearman", "fmt_r", "boot_corr", "puzzle_table", "offby_table",
           "correlations_by_type", "start_contrast", "barrier_summary", "prune_summary",
           "polygon_table"]


def pearson(x, y) -> float:
    """Pearson r, or NaN when there are fewer than 3 points or a constant variable."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 3 or x.std() == 0 or y.std() == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


def spearman(x, y) -> float:
    """Spearman's rho (Pearson r of the ranks, ties averaged), NaN as :func:`pearson`."""
    x, y = pd.Series(np.asarray(x, float)), pd.Series(np.asarray(y, float))
    return pearson(x.rank().to_numpy(), y.rank().to_numpy())


def fmt_r(r: float) -> str:
    """A correlation for the prose; NaN (too few models, or a constant) spelled out."""
    return "undefined (too few models)" if np.isnan(r) else f"{r:+.2f}"


def boot_corr(x, y, n_boot: int, corr=pearson, seed: int = 0) -> tuple[float, float, float]:
    """``corr(x, y)`` and its 95% bootstrap interval over the (x, y) pairs (all NaN if
    undefined)."""
    r = corr(x, y)
    if np.isnan(r):
        return r, np.nan, np.nan
    draws = stats.bootstrap(corr, np.asarray(x), np.asarray(y), n_boot=n_boot, seed=seed)
    if not np.isfinite(draws).any():
        return r, np.nan, np.nan
    return (r, *stats.interval(draws))


def puzzle_table(final: pd.DataFrame, chains: int, n_boot: int, grad_tol: float) -> pd.DataFrame:
    """Per (init, sparsity) cell at the last checkpoint: the between-seed LLC variance against
    chain noise (mean chain variance / ``chains``), the loss-LLC Pearson r with its bootstrap
    interval, and r over only the models with a positive LLC and only those with gradient norm <
    ``grad_tol``.

    ``final`` has columns init, sparsity, llc, chain_var, loss, grad_norm."""
    rows = []
    for (init, S), d in final.groupby(["init", "sparsity"]):
        noise_var = d.chain_var.mean() / chains
        r, lo, hi = boot_corr(d.llc.values, d.loss.values, n_boot)
        pos, flat = d[d.llc > 0], d[d.grad_norm < grad_tol]
        rows.append(dict(init=init, sparsity=S, llc_mean=d.llc.mean(),
                         between_seed_var=d.llc.var(),
                         chain_noise_var=noise_var, var_ratio=d.llc.var() / noise_var, r=r,
                         r_lo=lo, r_hi=hi,
                         n_neg=int((d.llc <= 0).sum()), r_llc_pos=pearson(pos.llc, pos.loss),
                         n_llc_pos=len(pos),
                         r_flat=pearson(flat.llc, flat.loss), n_flat=len(flat)))
    return pd.DataFrame(rows)


def offby_table(long: pd.DataFrame, steps: list[int]) -> pd.DataFrame:
    """Per (checkpoint, init, sparsity): loss-LLC r with the loss at the same step and at the next
    logged step (the reference's off-by-one pairing), and the change."""
    rows = []
    for s in steps:
        for (init, S), d in long[long.step == s].groupby(["init", "sparsity"]):
            rows.append(dict(step=s, init=init, sparsity=S, r_same_step=pearson(d.llc, d.loss),
                             r_next_step=pearson(d.llc, d.loss_next)))
    out = pd.DataFrame(rows, columns=["step", "init", "sparsity", "r_same_step", "r_next_step"])
    out["change"] = out.r_next_step - out.r_same_step
    return out


def correlations_by_type(final: pd.DataFrame, min_n: int, n_boot: int) -> pd.DataFrame:
    """Loss-LLC Spearman and Pearson correlations with 95% bootstrap intervals over models, per
    (init, sparsity, polygon type) cell with at least ``min_n`` models. ``final`` has columns
    init, sparsity, kgon, llc, loss (filter it to models at a minimum first)."""
    rows = []
    for (init, S, k), d in final.groupby(["init", "sparsity", "kgon"]):
        if len(d) < min_n:
            continue
        rho, rlo, rhi = boot_corr(d.llc.values, d.loss.values, n_boot, corr=spearman)
        r, lo, hi = boot_corr(d.llc.values, d.loss.values, n_boot, corr=pearson)
        rows.append(dict(init=init, sparsity=S, kgon=k, n=len(d), spearman=rho, spearman_lo=rlo,
                         spearman_hi=rhi, pearson=r, pearson_lo=lo, pearson_hi=hi))
    cols = ["init", "sparsity", "kgon", "n", "spearman", "spearman_lo", "spearman_hi", "pearson",
            "pearson_lo", "pearson_hi"]
    return pd.DataFrame(rows, columns=cols)


def polygon_table(grid: pd.DataFrame) -> pd.DataFrame:
    """Per sparsity (rows) and start (column level ``init``): the mean number of hull corners
    ``k``, the mean ``features_per_dim`` and how many distinct polygon types (``kgon``) the seeds
    reach. ``grid`` has one row per model with those columns plus ``sparsity`` and ``init``."""
    return grid.groupby(["sparsity", "init"]).agg(
        corners=("k", "mean"), features_per_dim=("features_per_dim", "mean"),
        polygon_types=("kgon", "nunique")).unstack("init")


def start_contrast(grid: pd.DataFrame, n_boot: int, seed: int = 0) -> pd.DataFrame:
    """Per sparsity, the 4-gon start minus the 6-gon start in final loss: the mean and the best
    (minimum over seeds), each with a 95% bootstrap interval. Seeds are resampled jointly for both
    starts (seed s of either start trains on the same data), so the difference is paired.
    ``grid`` has columns init, sparsity, seed, final_loss."""
    rows = []
    for S, d in grid.groupby("sparsity"):
        wide = d.pivot_table(index="seed", columns="init", values="final_loss").dropna()
        a, c = wide["4-gon"].to_numpy(), wide["6-gon"].to_numpy()
        mean_d = stats.bootstrap(lambda x, y: x.mean() - y.mean(), a, c, n_boot=n_boot, seed=seed)
        best_d = stats.bootstrap(lambda x, y: x.min() - y.min(), a, c, n_boot=n_boot,
                                 seed=seed + 1)
        rows.append(dict(sparsity=S, n=len(a), mean_4=a.mean(), mean_6=c.mean(), best_4=a.min(),
                         best_6=c.min(),
                         mean_diff=a.mean() - c.mean(), mean_lo=stats.interval(mean_d)[0],
                         mean_hi=stats.interval(mean_d)[1], best_diff=a.min() - c.min(),
                         best_lo=stats.interval(best_d)[0], best_hi=stats.interval(best_d)[1]))
    return pd.DataFrame(rows)


def barrier_summary(lmc: pd.DataFrame, n_boot: int, floor: float = 1e-6) -> pd.DataFrame:
    """Per pair type and sparsity: the aligned barrier over the endpoints' mean loss (pairs whose
    endpoints have loss below ``floor`` are left out: a ratio to zero means nothing), its median
    and the 95% bootstrap interval of the median over pairs; and the count left out."""
    rows = []
    kind = np.where(lmc.pair.str.startswith("4-gon vs 6-gon"), "cross-start", "same-start control")
    for (k, S), d in lmc.assign(kind=kind).groupby(["kind", "sparsity"]):
        ok = d[d.endpoint_loss > floor]
        ratio = (ok.aligned / ok.endpoint_loss).to_numpy()
        lo = hi = med = float("nan")
        if len(ratio) >= 2:
            med = float(np.median(ratio))
            lo, hi = stats.interval(stats.bootstrap(np.median, ratio, n_boot=n_boot))
        rows.append(dict(kind=k, sparsity=S, n=len(ok), left_out=len(d) - len(ok),
                         median_ratio=med, lo=lo, hi=hi,
                         frac_above_1pct=float((ratio > 0.01).mean()) if len(ratio) else np.nan))
    return pd.DataFrame(rows)


def prune_summary(imp: pd.DataFrame, n_boot: int) -> pd.DataFrame:
    """Per number of weights left: IMP's final loss against the rewind-without-pruning control
    (geometric mean ratio with a 95% bootstrap interval over models), and the fraction of models
    whose polygon matches the dense model's, for IMP and for the control."""
    rows = []
    for nw, d in imp.groupby("weights"):
        ok = d[(d.control_loss > 1e-8) & (d.loss > 1e-8)]
        lr_ = np.log(ok.loss.to_numpy() / ok.control_loss.to_numpy())
        lo = hi = float("nan")
        if len(lr_) >= 2:
            lo, hi = np.exp(stats.interval(stats.bootstrap(np.mean, lr_, n_boot=n_boot)))
        rows.append(dict(weights=nw, n=len(d),
                         loss_ratio=float(np.exp(lr_.mean())) if len(lr_) else np.nan,
                         lo=lo, hi=hi, kept_imp=float((d.kgon == d.dense_kgon).mean()),
                         kept_control=float((d.control_kgon == d.dense_kgon).mean()),
                         features_per_dim=float(d.features_per_dim.mean())))
    return pd.DataFrame(rows).sort_values("weights", ascending=False, ignore_index=True)
