"""Natural-photo crops for the random-images chapter, and alignment with same-photo neighbours out.

The chapter's in-distribution set, and the start of every blend, is random crops of a few dozen
photographs (:mod:`helpers.prh.real_images`). Crops of one photograph share its colours and
texture, so a crop's nearest neighbours are often crops of the same photograph in *any* model,
trained or not, and the plain mutual-kNN score counts that as agreement.
:func:`excluded_pair_rows` scores mutual kNN with every same-photo row barred from both
neighbour sets (:func:`helpers.prh.real_images.grouped_block_scores`, reused, not copied) and
keeps each pair's null draws, so the rows pool exactly like
:func:`helpers.prh.metric_agreement.pair_rows`.

Example:
    >>> import torch
    >>> from helpers import alignment
    >>> g = torch.Generator().manual_seed(0)
    >>> x = alignment.prepare([torch.randn(40, 8, generator=g)])
    >>> rows = excluded_pair_rows({"a": x, "b": x}, [("a", "b")], [i // 4 for i in range(40)],
    ...                           k=3, n_perm=9, group="toy")
    >>> float(rows.observed.iloc[0]), len(rows.null.iloc[0]), rows.group.iloc[0]
    (1.0, 9, 'toy')
"""
from __future__ import annotations

import functools
from typing import Sequence

import numpy as np
import pandas as pd
import torch

from helpers.prh import real_images as ri


@functools.lru_cache(maxsize=8)
def photo_crops(n: int, size: int, seed: int) -> tuple[torch.Tensor, np.ndarray]:
    """``n`` random crops of the installed photographs at ``size`` pixels, with their photo.

    Returns:
        ``(images [n, 3, size, size] in [0, 1], photo index [n])``, ordered by photograph
        (:func:`helpers.prh.real_images.random_crops`; at least one crop per photograph).
        Cached: callers must not modify the tensor in place.
    """
    return ri.random_crops(ri.photo_paths(), n, size=size, seed=seed)


def photos(n: int, size: int, seed: int) -> torch.Tensor:
    """The crops of :func:`photo_crops` alone: a ``source`` for
    :func:`helpers.prh.noise_images.evaluation_images` (its name, ``photos``, names the set in
    feature-cache keys)."""
    return photo_crops(n, size, seed)[0]


def excluded_pair_rows(feats: dict[str, list[torch.Tensor]], pairs: Sequence[tuple[str, str]],
                       row_groups: Sequence[int], k: int, n_perm: int, layer: str = "last",
                       **extra) -> pd.DataFrame:
    """Mutual kNN of each pair with same-group neighbours excluded, null draws kept.

    Draw j shuffles the rows with the same permutation for every pair (the first shuffle of
    seed j + 1 in :func:`~helpers.prh.real_images.grouped_block_scores`'s ``perm_seeds``, one
    call for all draws), so the draws pool over pairs as
    :func:`helpers.prh.noise_images.pool_pairs` needs.

    Args:
        feats: model name -> prepared layers ``[N, D_l]``.
        pairs: (a, b) model pairs.
        row_groups: ``[N]`` photograph of each row; rows of one photograph are never neighbours.
        k: neighbours per row.
        n_perm: null draws (>= 1); the p floor is ``1 / (n_perm + 1)``.
        layer: ``"last"`` (last layers only) or ``"max"`` (max over layer pairs, as the null).
        extra: constant columns to add (e.g. ``group="pretrained"``, ``t=0.5``).

    Returns:
        One row per pair: ``a``, ``b``, ``metric`` (``mutual_knn``), ``observed``, ``null``
        (``[n_perm]`` float64), ``null_mean``, ``null_std``, ``p_value``, ``corrected`` and the
        ``extra`` columns.
    """
    if layer not in ("last", "max"):
        raise ValueError(f"layer must be 'last' or 'max', got {layer!r}")
    if n_perm < 1:
        raise ValueError(f"n_perm must be >= 1 (the p floor is 1 / (n_perm + 1)), got {n_perm}")
    pairs = list(pairs)
    pick = (lambda ls: list(ls)) if layer == "max" else (lambda ls: list(ls[-1:]))
    fa = {a: pick(feats[a]) for a, _ in pairs}
    fb = {b: pick(feats[b]) for _, b in pairs}
    groups = np.asarray(row_groups)

    # Draw j: the first shuffle of seed j + 1; one call builds the neighbour lists once for all.
    scored = ri.grouped_block_scores(fa, fb, groups, k, n_perm=n_perm, pairs=pairs,
                                     perm_seeds=range(1, n_perm + 1), keep_null=True)
    observed = scored.raw.to_numpy(dtype=float)
    draws = np.stack([d.numpy() for d in scored.null])
    mean = draws.mean(1)
    std = draws.std(1, ddof=1) if n_perm > 1 else np.full(len(pairs), np.nan)
    p = (1 + (draws >= observed[:, None]).sum(1)) / (1 + n_perm)
    return pd.DataFrame({
        "a": [a for a, _ in pairs], "b": [b for _, b in pairs], "metric": "mutual_knn",
        "observed": observed, "null": [torch.from_numpy(d) for d in draws], "null_mean": mean,
        "null_std": std, "p_value": p, "corrected": (observed - mean) / (1 - mean),
    }).assign(**extra)
