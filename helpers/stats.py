"""Bootstrap intervals and permutation tests: the one place where the chapters resample their observations.

Every interval the book shows comes from here. :func:`bootstrap` resamples rows (rows of
several arrays together, so paired observations stay paired) and recomputes a statistic;
:func:`hierarchical_means` resamples seeds and then items within each seed, the right
unit when items are shared across seeds; :func:`interval` turns draws into a percentile
interval, and :func:`mean_ci` does all of it for the common case of a mean.
:func:`spearman_permutation` tests a rank correlation on few points, where scipy's
asymptotic p-value is not to be trusted.

Example:
    >>> import numpy as np
    >>> x = np.arange(10.0)
    >>> mean, lo, hi = mean_ci(x, n_boot=500, seed=0)
    >>> mean, lo < mean < hi
    (4.5, True)
"""

from __future__ import annotations

from typing import Callable

import numpy as np

__all__ = ["bootstrap", "hierarchical_means", "interval", "mean_ci", "spearman_permutation"]


def bootstrap(statistic: Callable[..., float], *samples, n_boot: int = 1000, seed: int = 0) -> np.ndarray:
    """Bootstrap draws of ``statistic(*samples)``, resampling rows with replacement.

    All ``samples`` are resampled with the same row indices, so ``bootstrap(f, x, y)`` keeps
    each ``(x[i], y[i])`` pair together (use it for correlations and paired differences).

    Args:
        statistic: maps resampled arrays to a number; it may return NaN for a degenerate
            draw (e.g. a correlation of a constant), which :func:`interval` ignores.
        samples: one or more arrays with the same first dimension (at least one row).
        n_boot: number of draws (>= 1).
        seed: seeds NumPy's default generator.

    Returns:
        ``[n_boot]`` float array of the statistic on each resample.

    Raises:
        ValueError: no samples, an empty sample, samples of different lengths, ``n_boot < 1``.
    """
    if not samples:
        raise ValueError("bootstrap needs at least one sample array")
    arrays = [np.asarray(s) for s in samples]
    lengths = {len(a) for a in arrays}
    if len(lengths) != 1:
        raise ValueError(f"bootstrap resamples rows together, so the samples need one length; got {sorted(lengths)}")
    n = lengths.pop()
    if n == 0:
        raise ValueError("bootstrap got an empty sample; there is nothing to resample")
    _check_n_boot(n_boot)
    idx = np.random.default_rng(seed).integers(0, n, (n_boot, n))
    return np.array([statistic(*(a[i] for a in arrays)) for i in idx], dtype=float)


def hierarchical_means(arrays: dict[str, np.ndarray], n_boot: int = 2000, seed: int = 0) -> dict[str, np.ndarray]:
    """Paired two-level bootstrap of the mean of ``[seeds, items]`` arrays.

    Each draw resamples seeds, then items within each drawn seed, with the same indices for
    every name, so differences between names are paired.

    Args:
        arrays: name -> ``[S, N]`` array (seeds x items); all of one shape.
        n_boot: number of draws (>= 1).
        seed: seeds NumPy's default generator.

    Returns:
        name -> ``[n_boot]`` bootstrap means.

    Raises:
        ValueError: no arrays, arrays that are not 2-d of one non-empty shape, ``n_boot < 1``.
    """
    shapes = {k: np.shape(v) for k, v in arrays.items()}
    if not shapes or len(set(shapes.values())) != 1 or len(next(iter(shapes.values()))) != 2:
        raise ValueError(f"hierarchical_means needs [seeds, items] arrays of one shape; got {shapes}")
    n_seeds, n_items = next(iter(shapes.values()))
    if n_seeds == 0 or n_items == 0:
        raise ValueError(f"hierarchical_means got empty [seeds, items] arrays of shape {(n_seeds, n_items)}")
    _check_n_boot(n_boot)
    rng = np.random.default_rng(seed)
    si = rng.integers(0, n_seeds, (n_boot, n_seeds))
    ii = rng.integers(0, n_items, (n_boot, n_seeds, n_items))
    return {k: np.asarray(v, dtype=float)[si[..., None], ii].mean(axis=(1, 2)) for k, v in arrays.items()}


def interval(draws, level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of bootstrap draws, ignoring NaN draws.

    Raises:
        ValueError: ``level`` outside (0, 1), or no finite draw.
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1); got {level}")
    d = np.asarray(draws, dtype=float)
    if not np.isfinite(d).any():
        raise ValueError("interval got no finite bootstrap draw (every resample was degenerate)")
    a = (1 - level) / 2
    lo, hi = np.nanquantile(d, [a, 1 - a])
    return float(lo), float(hi)


def mean_ci(values, n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> tuple[float, float, float]:
    """``(mean, low, high)``: the mean of ``values`` and its percentile bootstrap interval."""
    v = np.asarray(values, dtype=float)
    draws = bootstrap(np.mean, v, n_boot=n_boot, seed=seed)
    return (float(v.mean()), *interval(draws, level))


def spearman_permutation(x, y, n_perm: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Spearman's rho of ``x`` and ``y`` and its two-sided permutation p-value.

    The null shuffles ``y`` against ``x`` ``n_perm`` times; the p-value is
    ``(1 + #{|rho_null| >= |rho|}) / (1 + n_perm)``, so it is never below ``1 / (1 + n_perm)``.
    With few points this is exact in spirit where scipy's asymptotic p-value is not.

    Returns:
        ``(rho, p)``; both NaN when ``x`` or ``y`` is constant (rho is undefined then).

    Raises:
        ValueError: ``x`` and ``y`` of different lengths, fewer than 2 points, ``n_perm < 1``.
    """
    from scipy.stats import spearmanr

    xa, ya = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if xa.shape != ya.shape or xa.ndim != 1:
        raise ValueError(f"spearman_permutation needs two 1-d arrays of one length; got {xa.shape} and {ya.shape}")
    if len(xa) < 2:
        raise ValueError(f"spearman_permutation needs at least 2 points; got {len(xa)}")
    if int(n_perm) != n_perm or n_perm < 1:
        raise ValueError(f"n_perm must be a positive integer; got {n_perm}")
    if np.ptp(xa) == 0 or np.ptp(ya) == 0:
        return float("nan"), float("nan")
    rho = spearmanr(xa, ya).statistic
    rng = np.random.default_rng(seed)
    null = np.array([spearmanr(xa, rng.permutation(ya)).statistic for _ in range(n_perm)])
    return float(rho), float((1 + np.sum(np.abs(np.nan_to_num(null)) >= abs(rho))) / (1 + n_perm))


def _check_n_boot(n_boot: int) -> None:
    if int(n_boot) != n_boot or n_boot < 1:
        raise ValueError(f"n_boot must be a positive integer; got {n_boot}")
