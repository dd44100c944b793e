"""Other data laws for the same grid: power-law feature frequencies or importances, and how the
k-gon picture and the loss-LLC relation compare with the uniform law.

:func:`run_variant` trains a grid under a variant law, estimates each final model's LLC and
checks whether it sits at a minimum, as one cacheable computation; :func:`variant_frame` turns
the result into one row per model; :func:`polygon_shift` compares two laws sparsity by sparsity
with bootstrap intervals over models, and :func:`corner_share` counts how often each feature
is a corner of the hull.

Example:
    >>> from helpers.tms.model import kgon
    >>> corner_share(kgon(4, radius=1.0)[None]).tolist()
    [1.0, 1.0, 1.0, 1.0, 0.0, 0.0]
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from helpers import stats
from helpers.tms import grid as tgrid
from helpers.tms import model as tms

__all__ = ["run_variant", "variant_frame", "polygon_shift", "corner_share", "significant_cells",
           "compare_laws", "powerlaw_laws"]


def powerlaw_laws(alpha: float) -> dict[str, dict]:
    """The two power-law variants of :func:`compare_laws`, feature i's weight ∝ (i + 1)^-alpha:
    ``frequency`` (how often it is on, at the same mean density) and ``importance`` (its
    squared error's weight, mean 1)."""
    return {"frequency": dict(alpha=alpha),
            "importance": dict(importance=tms.powerlaw_importance(alpha))}


def run_variant(
    grid: pd.DataFrame, *, steps: int, log_at: list[int], n_train: int, n_test: int, lr: float,
    momentum: float, llc_n: int, llc_kwargs: dict, descent_steps: int, alpha: float = 0.0,
    importance: torch.Tensor | None = None, device: torch.device | str = "cpu",
) -> dict:
    """Train ``grid`` under a variant law, then estimate every final model's LLC on its
    sparsity's fresh data and run :func:`helpers.tms.grid.minimum_check` there.

    Args:
        alpha: power-law exponent of the features' frequencies (0: uniform).
        importance: ``[6]`` per-feature loss weights (None: all 1), in training, SGLD and checks.
        llc_kwargs: the sampler's settings for :func:`helpers.tms.grid.llc_at_checkpoints`
            (``lr``, ``nbeta``, ``localization``, ``chains``, ``draws``, ``burnin``, ``batch``...).
    Returns: a dict of tensors and lists (cacheable): ``W`` ``[M, 2, 6]``, ``b`` ``[M, 6]``,
    ``loss`` ``[M]`` (final train loss), ``llc`` ``[M]``, and the minimum check's columns.
    """
    run = tms.TrainResult(**tgrid.train_grid(grid, steps, log_at, n_train, n_test, lr, momentum,
                                             device, compress=True, alpha=alpha,
                                             importance=importance))
    L = tgrid.llc_at_checkpoints(run, grid, [steps], llc_n, alpha=alpha, importance=importance,
                                 **{"device": device, **llc_kwargs})
    chk = tgrid.minimum_check(run.W[:, -1], run.b[:, -1], tgrid.llc_data(grid, llc_n, alpha),
                              llc_kwargs["nbeta"], descent_steps=descent_steps,
                              importance=importance)
    return dict(W=run.W[:, -1], b=run.b[:, -1], loss=run.train_loss[:, -1], llc=L["mean"][:, 0],
                **{c: chk[c].tolist() for c in chk.columns})


def variant_frame(grid: pd.DataFrame, res: dict) -> pd.DataFrame:
    """One row per model of a :func:`run_variant` result: the grid's columns, the columns of
    :func:`helpers.tms.grid.annotate`, ``loss``, ``llc``, the minimum check and ``at_min``
    (status "minimum" and a positive LLC)."""
    cols = ["init", "s_idx", "sparsity", "seed"]
    out = tgrid.annotate(grid[cols], res["W"], res["b"], res["loss"])
    out["loss"], out["llc"] = res["loss"].numpy(), res["llc"].numpy()
    for c in ("grad_norm_llc", "rank", "lam_hessian", "min_eig_rel", "descent", "status"):
        out[c] = res[c]
    out["at_min"] = (out.status == "minimum") & (out.llc > 0)
    return out


def corner_share(W: torch.Tensor) -> np.ndarray:
    """Fraction of models ``[M, 2, F]`` in which each feature is a corner of the hull: ``[F]``."""
    share = np.zeros(W.shape[2])
    for m in range(W.shape[0]):
        share[tms.hull_vertices(W[m].double().T.numpy())] += 1 / W.shape[0]
    return share


def polygon_shift(base: pd.DataFrame, variant: pd.DataFrame, n_boot: int, seed: int = 0,
                  columns: tuple[str, ...] = ("k", "features_per_dim")) -> pd.DataFrame:
    """Per sparsity and column, the variant's mean minus the base law's, with a 95% bootstrap
    interval (models resampled within each law; the two grids' models are independent).
    Both frames have ``sparsity`` and the ``columns``; NaN values are left out."""
    rows = []
    for S in sorted(set(base.sparsity) & set(variant.sparsity)):
        for col in columns:
            a = base.loc[base.sparsity == S, col].dropna().to_numpy(float)
            v = variant.loc[variant.sparsity == S, col].dropna().to_numpy(float)
            if len(a) < 2 or len(v) < 2:
                continue
            rng = np.random.default_rng(seed)
            draws = [rng.choice(v, len(v)).mean() - rng.choice(a, len(a)).mean()
                     for _ in range(n_boot)]
            lo, hi = stats.interval(np.asarray(draws))
            rows.append(dict(sparsity=S, measure=col, base=a.mean(), variant=v.mean(),
                             diff=v.mean() - a.mean(), lo=lo, hi=hi))
    return pd.DataFrame(rows,
                        columns=["sparsity", "measure", "base", "variant", "diff", "lo", "hi"])


def significant_cells(corr: pd.DataFrame) -> tuple[int, int]:
    """Cells of :func:`helpers.tms.analysis.correlations_by_type` whose Spearman interval
    excludes zero, and the number of cells."""
    sig = (corr.spearman_lo > 0) | (corr.spearman_hi < 0)
    return int(sig.sum()), len(corr)


def compare_laws(
    grid: pd.DataFrame, base: pd.DataFrame, base_corr: pd.DataFrame, laws: dict[str, dict], *,
    key: dict, min_cell: int, n_boot: int, timer=None, **run_kwargs,
) -> dict:
    """Run every variant law in ``laws`` (name -> keyword arguments of :func:`run_variant`, e.g.
    ``alpha`` or ``importance``) on ``grid``, cached under ``key`` plus the law's name, and
    compare each with the base law's annotated grid ``base`` and its within-cell correlations
    ``base_corr`` (:func:`helpers.tms.analysis.correlations_by_type`).

    Args:
        timer: an optional :class:`helpers.chapter.StageTimer`; each law is one stage.
        run_kwargs: the rest of :func:`run_variant`'s arguments.
    Returns: ``text`` (law -> :func:`helpers.tms.readings.variant_text`), ``table`` (the
    :func:`polygon_shift` rows of every law) and ``corners`` (law -> :func:`corner_share`)."""
    from contextlib import nullcontext

    from helpers.cache import cached
    from helpers.tms import analysis, readings

    base_sig = significant_cells(base_corr)
    text, tables, corners = {}, {}, {}
    for law, kw in laws.items():
        with timer.stage(f"power-law {law} grid") if timer else nullcontext():
            res = cached("tms_variant", dict(key, law=law),
                         lambda: run_variant(grid, **run_kwargs, **kw))
        vf = variant_frame(grid, res)
        shift = polygon_shift(base, vf, n_boot)
        sig = significant_cells(analysis.correlations_by_type(vf[vf.at_min], min_cell, n_boot))
        text[law] = readings.variant_text(shift, int(vf.at_min.sum()), len(vf), sig, base_sig)
        tables[law] = shift.set_index(["measure", "sparsity"])
        corners[law] = corner_share(res["W"])
    return dict(text=text, table=pd.concat(tables, names=["law"]), corners=corners)
