"""Bootstrap intervals and permutation tests: the one place where the chapters resample their
observations.

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

from helpers._checks import check_int, check_no_nan, check_seed

__all__ = ["bootstrap", "hierarchical_means", "interval", "mean_ci", "pair_bootstrap",
           "spearman_permutation"]


def bootstrap(statistic: Callable[..., float], *samples, n_boot: int = 1000,
              seed: int = 0) -> np.ndarray:
    """Bootstrap draws of ``statistic(*samples)``, resampling rows with replacement.

    All ``samples`` are resampled with the same row indices, so ``bootstrap(f, x, y)`` keeps
    each ``(x[i], y[i])`` pair together (use it for correlations and paired differences).

    Args:
        statistic: maps resampled arrays to a number; it may return NaN for a degenerate
            draw (e.g. a correlation of a constant), which :func:`interval` ignores.
        samples: one or more arrays with the same first dimension (at least one row), without
            NaN (a NaN row would be skipped by the resamples that miss it and give a finite,
            wrong interval).
        n_boot: number of draws (>= 1).
        seed: seeds NumPy's default generator (an integer >= 0).

    Returns:
        ``[n_boot]`` float array of the statistic on each resample.

    Raises:
        ValueError: no samples, an empty or 0-d sample, a sample holding NaN (the message names
            it), samples of different lengths, ``n_boot < 1``, a bad ``seed``.
    """
    if not samples:
        raise ValueError("samples: bootstrap needs at least one sample array")
    if not callable(statistic):
        raise ValueError(f"statistic must be a function of the resampled arrays; got "
                         f"{type(statistic).__name__}")
    arrays = [np.asarray(s) for s in samples]
    for i, a in enumerate(arrays):
        label = "samples" if len(arrays) == 1 else f"samples[{i}]"
        if a.ndim == 0:
            raise ValueError(f"{label} is a scalar ({a!r}); bootstrap resamples rows of an array")
        check_no_nan(a, label)
    lengths = {len(a) for a in arrays}
    if len(lengths) != 1:
        raise ValueError(f"bootstrap resamples rows together, so the samples need one length; got "
                         f"{sorted(lengths)}")
    n = lengths.pop()
    if n == 0:
        raise ValueError("samples are empty (0 rows); there is nothing to resample")
    _check_n_boot(n_boot)
    check_seed(seed)
    idx = np.random.default_rng(seed).integers(0, n, (n_boot, n))
    return np.array([statistic(*(a[i] for a in arrays)) for i in idx], dtype=float)


def hierarchical_means(arrays: dict[str, np.ndarray], n_boot: int = 2000,
                       seed: int = 0) -> dict[str, np.ndarray]:
    """Paired two-level bootstrap of the mean of ``[seeds, items]`` arrays.

    Each draw resamples seeds, then items within each drawn seed, with the same indices for
    every name, so differences between names are paired.

    Args:
        arrays: name -> ``[S, N]`` array (seeds x items); all of one shape, without NaN.
        n_boot: number of draws (>= 1).
        seed: seeds NumPy's default generator (an integer >= 0).

    Returns:
        name -> ``[n_boot]`` bootstrap means.

    Raises:
        ValueError: no arrays, arrays that are not 2-d of one non-empty shape, an array holding
            NaN (the message names it), ``n_boot < 1``, a bad ``seed``.
    """
    if not isinstance(arrays, dict):
        raise ValueError(f"arrays must be a dict of name -> [seeds, items] array; got "
                         f"{type(arrays).__name__}")
    shapes = {k: np.shape(v) for k, v in arrays.items()}
    if not shapes or len(set(shapes.values())) != 1 or len(next(iter(shapes.values()))) != 2:
        raise ValueError(f"hierarchical_means needs [seeds, items] arrays of one shape; got "
                         f"{shapes}")
    n_seeds, n_items = next(iter(shapes.values()))
    if n_seeds == 0 or n_items == 0:
        raise ValueError(f"hierarchical_means got empty [seeds, items] arrays of shape "
                         f"{(n_seeds, n_items)}")
    _check_n_boot(n_boot)
    check_seed(seed)
    values = {k: np.asarray(v, dtype=float) for k, v in arrays.items()}
    for k, v in values.items():
        check_no_nan(v, f"arrays[{k!r}]")
    rng = np.random.default_rng(seed)
    si = rng.integers(0, n_seeds, (n_boot, n_seeds))
    ii = rng.integers(0, n_items, (n_boot, n_seeds, n_items))
    return {k: v[si[..., None], ii].mean(axis=(1, 2)) for k, v in values.items()}


def interval(draws, level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of bootstrap draws, ignoring NaN draws.

    NaN draws are the degenerate resamples of a statistic that can be undefined (a correlation
    of a resample that is constant); NaN *data* is rejected earlier, by :func:`bootstrap`.

    Raises:
        ValueError: ``level`` outside (0, 1), draws that are not a 1-d array of numbers, or
            no finite draw.
    """
    if (isinstance(level, bool) or not isinstance(level, (int, float, np.floating))
        or not 0 < level < 1):
        raise ValueError(f"level must be a number in (0, 1), e.g. 0.95; got {level!r}")
    try:
        d = np.asarray(draws, dtype=float)
    except (TypeError, ValueError) as err:
        raise ValueError(f"draws must be an array of numbers; got {type(draws).__name__} "
                         f"({err})") from None
    if d.ndim != 1:
        raise ValueError(f"draws must be a 1-d array of bootstrap draws; got shape {d.shape}")
    if not np.isfinite(d).any():
        raise ValueError(f"draws hold no finite value ({d.size} draws; every resample was "
                         f"degenerate, or "
                         "there were none); check the statistic on the full data")
    a = (1 - level) / 2
    lo, hi = np.nanquantile(d, [a, 1 - a])
    return float(lo), float(hi)


def mean_ci(values, n_boot: int = 1000, seed: int = 0,
            level: float = 0.95) -> tuple[float, float, float]:
    """``(mean, low, high)``: the mean of ``values`` and its percentile bootstrap interval.

    Raises:
        ValueError: ``values`` empty, not numbers, or holding NaN (see :func:`bootstrap`), or a
            bad ``n_boot``, ``seed`` or ``level``.
    """
    try:
        v = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as err:
        raise ValueError(f"values must be an array of numbers; got {type(values).__name__} "
                         f"({err})") from None
    if v.ndim != 1 or v.size == 0:
        raise ValueError(f"values must be a non-empty 1-d array; got shape {v.shape}")
    check_no_nan(v, "values")
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
        ValueError: ``x`` and ``y`` of different lengths, fewer than 2 points, NaN in ``x`` or
            ``y`` (ranks of NaN are undefined; the message names the input), ``n_perm < 1``, a
            bad ``seed``.
    """
    from scipy.stats import spearmanr

    try:
        xa, ya = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    except (TypeError, ValueError) as err:
        raise ValueError(f"x and y must be arrays of numbers ({err})") from None
    if xa.shape != ya.shape or xa.ndim != 1:
        raise ValueError(f"x and y must be two 1-d arrays of one length; got shapes {xa.shape} "
                         f"and {ya.shape}")
    if len(xa) < 2:
        raise ValueError(f"x and y need at least 2 points; got {len(xa)}")
    check_int(n_perm, "n_perm", minimum=1)
    check_seed(seed)
    check_no_nan(xa, "x")
    check_no_nan(ya, "y")
    if np.ptp(xa) == 0 or np.ptp(ya) == 0:
        return float("nan"), float("nan")
    rho = spearmanr(xa, ya).statistic
    rng = np.random.default_rng(seed)
    null = np.array([spearmanr(xa, rng.permutation(ya)).statistic for _ in range(n_perm)])
    return float(rho), float((1 + np.sum(np.abs(np.nan_to_num(null)) >= abs(rho))) / (1 + n_perm))


def pair_bootstrap(values, pairs, n_boot: int = 2000, seed: int = 0, units=None) -> np.ndarray:
    """Bootstrap draws of a mean over model pairs, resampling **models**, not pairs.

    Pairs that share a model are not independent, so each draw resamples the models (the
    ``units``) with replacement and weights pair ``(a, b)`` by ``count(a) * count(b)``; a name
    outside ``units`` (e.g. "pixels", a caption encoder) is held fixed with weight 1. A draw in
    which no pair survives is NaN (:func:`interval` ignores it).

    Args:
        values: ``[P]`` one number per pair (e.g. a corrected score, or a paired difference).
        pairs: ``P`` pairs of model names.
        n_boot: number of draws (>= 1).
        seed: seeds NumPy's default generator.
        units: the names to resample (default: every name in ``pairs``).

    Returns:
        ``[n_boot]`` float array of weighted means.

    Example:
        >>> d = pair_bootstrap([1.0, 1.0, 1.0], [("a", "b"), ("a", "c"), ("b", "c")], n_boot=50)
        >>> bool(np.all((d == 1.0) | np.isnan(d)))
        True
    """
    v = np.asarray(values, dtype=float)
    pairs = [tuple(p) for p in pairs]
    if v.ndim != 1 or len(v) != len(pairs) or len(v) == 0:
        raise ValueError(f"values must be 1-d with one entry per pair, got {v.shape} for "
                         f"{len(pairs)} pairs")
    if np.isnan(v).any():
        raise ValueError("values contain NaN; drop undefined pairs before bootstrapping")
    _check_n_boot(n_boot)
    names = sorted({m for p in pairs for m in p})
    units = names if units is None else [u for u in names if u in set(units)]
    if not units:
        raise ValueError("units names no model in pairs; pass the model names to resample")
    col = {u: i for i, u in enumerate(units)}
    counts = np.random.default_rng(seed).multinomial(len(units), [1 / len(units)] * len(units),
                                                     n_boot)
    w = np.ones((n_boot, len(pairs)))
    for j, (a, b) in enumerate(pairs):
        for m in (a, b):
            if m in col:
                w[:, j] *= counts[:, col[m]]
    total = w.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, (w * v).sum(1) / total, np.nan)


def _check_n_boot(n_boot: int) -> None:
    check_int(n_boot, "n_boot", minimum=1)
