"""Input validation for :mod:`helpers.alignment` and :mod:`helpers.stats`.

Every check lives here so that each message has one shape: it names the
argument, says what was expected, what arrived, and how to fix it.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

Tensor = torch.Tensor


def check_metric(metric: str, metrics: Sequence[str]) -> None:
    """Raise ``ValueError`` unless ``metric`` is one of ``metrics``."""
    if metric not in metrics:
        raise ValueError(f"unknown metric {metric!r}; choose one of: {', '.join(metrics)}")


def check_int(value, name: str, minimum: int | None = None) -> int:
    """``value`` as an ``int``; ``ValueError`` naming ``name`` unless it is an integer >=
    ``minimum``.

    Booleans and floats are rejected (``n_perm=2.5`` or ``True`` is a mistake, not a count).
    """
    kind = {None: "an integer", 0: "a non-negative integer", 1: "a positive integer"}.get(
        minimum, f"an integer >= {minimum}")
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be {kind}; got {value!r} ({type(value).__name__})")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be {kind}; got {value}")
    return int(value)


def check_seed(seed, name: str = "seed") -> int:
    """A seed for NumPy or torch generators: a non-negative integer."""
    return check_int(seed, name, minimum=0)


def check_no_nan(values: np.ndarray, name: str) -> None:
    """``ValueError`` naming ``name`` and the first NaN positions if a float array holds NaN.

    A NaN observation must never turn into a confident interval or p-value, so it is rejected
    where it enters instead of being skipped by the resamples that happen to miss it.
    """
    if values.dtype.kind in "fc" and np.isnan(values).any():
        where = np.argwhere(np.isnan(values))[:3].tolist()
        count = int(np.isnan(values).sum())
        raise ValueError(
            f"{name} contains {count} NaN value(s) (first at index {where}); drop or impute "
            "those observations first, so the statistic is not computed from garbage"
        )


def _as_tensor(t, name: str) -> Tensor:
    if isinstance(t, np.ndarray):
        t = torch.from_numpy(t)
    if not isinstance(t, Tensor):
        raise ValueError(
            f"{name} must be a torch.Tensor of shape [N, D] or [N, L, D], or a list of "
            f"[N, D_l] tensors; got {type(t).__name__}"
        )
    if t.is_complex() or t.dtype == torch.bool:
        raise ValueError(f"{name} must hold real numbers; got dtype {t.dtype}")
    return t


def _check_finite(t: Tensor, name: str) -> None:
    # Checked one layer-sized slab at a time so a 2 GB input does not need a 0.5 GB bool mask.
    # A finite sum implies finite entries (inf or NaN anywhere makes the sum inf or NaN), so one
    # allocation-free reduction settles the common case; only an overflowing sum needs the mask.
    if (t.is_floating_point() and not bool(torch.isfinite(t.sum()))
        and not bool(torch.isfinite(t).all())):
        raise ValueError(f"{name} contains NaN or inf values; drop or repair those samples first")


def as_layers(feats, name: str) -> list[Tensor] | Tensor:
    """Split features into per-layer ``[N, D_l]`` views (no copies).

    Returns a list of ``[N, D_l]`` tensors, or for a ``[N, L, D]`` input its ``[L, N, D]``
    transposed view (which indexes and iterates like that list). Accepts a ``[N, D]`` tensor (one
    layer), a ``[N, L, D]`` tensor, or a list/tuple of ``[N, D_l]`` tensors. Checks rank,
    emptiness, equal N across layers and finiteness.
    """
    if isinstance(feats, (list, tuple)):
        if len(feats) == 0:
            raise ValueError(f"{name} is an empty list; pass at least one [N, D] layer")
        layers = [_as_tensor(f, f"{name}[{i}]") for i, f in enumerate(feats)]
        for i, f in enumerate(layers):
            if f.ndim != 2:
                raise ValueError(
                    f"{name}[{i}] must have shape [N, D]; got shape {tuple(f.shape)}"
                )
    else:
        t = _as_tensor(feats, name)
        if t.ndim == 2:
            layers = [t]
        elif t.ndim == 3:
            # an [L, N, D] view: indexing gives [N, D] layers, slicing gives batches, no copy
            layers = t.transpose(0, 1)
            if len(layers) == 0:
                raise ValueError(f"{name} is empty (shape {tuple(t.shape)}); it has no layers")
        else:
            raise ValueError(
                f"{name} must have shape [N, D] or [N, L, D] (or be a list of [N, D_l]); "
                f"got a {t.ndim}-d tensor of shape {tuple(t.shape)}"
            )
    n = layers[0].shape[0]
    for i, f in enumerate(layers):
        label = name if len(layers) == 1 else f"{name} layer {i}"
        if f.numel() == 0:
            raise ValueError(
                f"{label} is empty (shape {tuple(f.shape)}); need N >= 2 samples and D >= 1 "
                f"features"
            )
        if f.shape[0] != n:
            raise ValueError(
                f"all layers of {name} must have the same number of samples N; "
                f"layer 0 has {n}, layer {i} has {f.shape[0]}"
            )
        _check_finite(f, label)
    return layers


def check_same_n(nx: int, ny: int, names: tuple[str, str] = ("xs", "ys")) -> None:
    if nx != ny:
        raise ValueError(
            f"{names[0]} and {names[1]} must have the same number of samples N (dim 0); got "
            f"{nx} and {ny}. Row i of both must describe the same input."
        )


def check_topk(topk, n: int, metric: str, knn_metrics: Sequence[str]) -> None:
    """Check ``topk`` for kNN-based metrics (``1 <= topk < N``; ``cknna`` needs ``topk >= 2``)."""
    if metric not in knn_metrics:
        return
    if isinstance(topk, bool) or not isinstance(topk, (int, np.integer)):
        raise ValueError(f"topk must be an integer; got {topk!r}")
    if topk < 1:
        raise ValueError(f"topk must be >= 1; got {topk}")
    if metric == "cknna" and topk < 2:
        raise ValueError(f"cknna needs topk >= 2 (as in the reference); got {topk}")
    if topk >= n:
        raise ValueError(
            f"topk must be < N = {n} (self is excluded, so at most N - 1 neighbours exist); got "
            f"{topk}"
        )


def check_min_samples(n: int, metric: str) -> None:
    """Unbiased HSIC divides by N(N-3) and (N-2): it needs N >= 4."""
    need = 4 if metric in ("unbiased_cka", "cknna") else 2
    if n < need:
        raise ValueError(f"metric {metric!r} needs at least N = {need} samples; got N = {n}")


def check_cca_dim(cca_dim, n: int, widths: Sequence[int]) -> None:
    if isinstance(cca_dim, bool) or not isinstance(cca_dim, (int, np.integer)) or cca_dim < 1:
        raise ValueError(f"cca_dim must be a positive integer; got {cca_dim!r}")
    narrow = min(widths)
    if cca_dim > min(n - 1, narrow):
        raise ValueError(
            f"svcca keeps cca_dim = {cca_dim} directions, but the narrowest layer has "
            f"D = {narrow} features and N - 1 = {n - 1}; pass cca_dim <= {min(n - 1, narrow)}"
        )


def check_dtype(dtype) -> torch.dtype:
    if dtype not in (torch.float32, torch.float64):
        raise ValueError(f"dtype must be torch.float32 or torch.float64; got {dtype}")
    return dtype


def check_device(device) -> torch.device:
    """``device`` as a ``torch.device``; ``ValueError`` naming it if torch does not know it."""
    try:
        return torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"device must be a torch device such as 'cpu' or 'cuda'; got {device!r} "
                         f"({err})") from None


def check_quantile(q) -> None:
    if isinstance(q, bool) or not isinstance(q, (int, float)) or not (0.0 < q <= 1.0):
        raise ValueError(f"q must be a number in (0, 1]; got {q!r} (use q=1 to skip clamping)")


def check_null_args(n_perm, reduce) -> None:
    if isinstance(n_perm, bool) or not isinstance(n_perm, (int, np.integer)) or n_perm < 1:
        raise ValueError(f"n_perm must be a positive integer; got {n_perm!r}")
    if reduce not in ("max", None):
        raise ValueError(f"reduce must be 'max' or None; got {reduce!r}")


def check_scores(scores) -> Tensor:
    s = _as_tensor(scores, "scores")
    if s.ndim != 2 or s.numel() == 0:
        raise ValueError(f"scores must be a non-empty [Lx, Ly] tensor; got shape {tuple(s.shape)}")
    return s
