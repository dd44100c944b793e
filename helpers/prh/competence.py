"""Competence of shapes-world models and its correlation with alignment, within architecture.

PRH plots alignment to language against competence. Pooled over architectures, such a
correlation mostly says which architecture aligns more; random-init checkpoints (step 0) add
points with near-chance competence that make any trend look strong. :func:`partial_spearman`
removes architecture (ranks centred within each architecture) and :func:`competence_correlation`
excludes step 0 and resamples whole models within architecture for the interval.

Example:
    >>> import pandas as pd
    >>> d = pd.DataFrame({"arch": ["a"] * 4 + ["b"] * 4, "x": [1, 2, 3, 4] * 2,
    ...                   "y": [1, 2, 3, 4, 11, 12, 13, 14]})
    >>> round(partial_spearman(d.x, d.y, d.arch), 3)
    1.0
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
import torch
from scipy.stats import rankdata, spearmanr

from helpers.prh.shapes_world import FACTORS, ShapesData
from helpers.prh.zoo import probe_accuracy


def probe_competence(features: torch.Tensor, data: ShapesData,
                     factors: Sequence[str] = FACTORS) -> float:
    """Mean two-fold linear-probe accuracy over ``factors`` of ``features`` ``[N, D]`` on ``data``.

    A ridge probe is fitted on one half of the rows and tested on the other, then the halves
    swap; the competence is the mean accuracy over folds and factors.
    """
    if features.shape[0] != len(data):
        raise ValueError(f"features has {features.shape[0]} rows but data has {len(data)} images; "
                         "pass the features of these images")
    if len(data) < 4:
        raise ValueError(f"need at least 4 images for a two-fold probe, got {len(data)}")
    half = len(data) // 2
    accs = []
    for f in factors:
        y = data.labels(f)
        accs.append(probe_accuracy(features[:half], y[:half], features[half:], y[half:]))
        accs.append(probe_accuracy(features[half:], y[half:], features[:half], y[:half]))
    return float(np.mean(accs))


def partial_spearman(x: Sequence[float], y: Sequence[float], groups: Sequence) -> float:
    """Spearman correlation of ``x`` and ``y`` with ``groups`` partialled out.

    Both are ranked over all rows, each group's mean rank is subtracted, and the residual ranks
    are Pearson-correlated: the correlation that remains within groups. NaN when a residual is
    constant (e.g. one row per group).
    """
    x, y, g = np.asarray(x, float), np.asarray(y, float), np.asarray(groups)
    if not len(x) == len(y) == len(g):
        raise ValueError(f"x, y and groups must have the same length, got {len(x)}, {len(y)}, "
                         f"{len(g)}")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("x and y must be finite; drop rows without a competence value first")
    rx, ry = rankdata(x), rankdata(y)
    for v in np.unique(g):
        m = g == v
        rx[m] -= rx[m].mean()
        ry[m] -= ry[m].mean()
    if rx.std() == 0 or ry.std() == 0:
        return float("nan")
    return float(np.corrcoef(rx, ry)[0, 1])


def competence_correlation(table: pd.DataFrame, x: str = "competence", y: str = "corrected",
                           group: str = "arch", unit: str = "model", step: str = "step",
                           n_boot: int = 1000, seed: int = 0) -> dict[str, float]:
    """Correlation of competence and alignment within architecture, step 0 excluded.

    Args:
        table: one row per checkpoint with columns ``x``, ``y``, ``group``, ``unit`` (the
            model a checkpoint belongs to) and ``step`` (0 = random init, excluded).
        n_boot: resamples of the models within each group (a model brings all its
            checkpoints), so checkpoints of one model are not counted as independent.
        seed: seed of the resampling.

    Returns:
        ``partial`` (:func:`partial_spearman`), ``ci_low``, ``ci_high`` (95% bootstrap),
        ``pooled`` (plain Spearman of the same rows), ``n_checkpoints``, ``n_models`` and
        ``rho <group>`` (Spearman within each group); all NaN with under 4 trained checkpoints.
    """
    missing = {x, y, group, unit, step} - set(table.columns)
    if missing:
        raise ValueError(f"table lacks columns {sorted(missing)}")
    d = table[(table[step] != 0) & table[x].notna() & table[y].notna()]
    if len(d) < 4:  # e.g. the full scale's few pretrained ViTs: undefined, never a number
        nan = float("nan")
        return {"partial": nan, "pooled": nan, "ci_low": nan, "ci_high": nan,
                "n_checkpoints": len(d), "n_models": int(d[unit].nunique())}
    out = {"partial": partial_spearman(d[x], d[y], d[group]),
           "pooled": float(spearmanr(d[x], d[y]).statistic),
           "n_checkpoints": len(d), "n_models": int(d[unit].nunique())}
    for g, dg in d.groupby(group):
        out[f"rho {g}"] = float(spearmanr(dg[x], dg[y]).statistic) if len(dg) > 2 else np.nan
    rng = np.random.default_rng(seed)
    units = {g: list(dg[unit].unique()) for g, dg in d.groupby(group)}
    rows = {u: du for u, du in d.groupby(unit)}
    draws = np.full(n_boot, np.nan)
    for b in range(n_boot):
        parts = []
        for g, us in units.items():
            parts += [rows[us[i]] for i in rng.integers(0, len(us), len(us))]
        s = pd.concat(parts)
        draws[b] = partial_spearman(s[x], s[y], s[group])
    lo, hi = (np.nanpercentile(draws, [2.5, 97.5]) if np.isfinite(draws).any()
              else (np.nan, np.nan))
    out.update(ci_low=float(lo), ci_high=float(hi))
    return out
