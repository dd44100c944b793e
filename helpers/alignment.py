"""Exact, batched representational-alignment metrics and their permutation null.

The eight metrics of the Platonic Representation Hypothesis code
(``minyoungg/platonic-rep``, ``metrics.py``) give the same numbers here for the same prepared
inputs, but all layer pairs of two models are scored together. Each layer's kNN lists, Gram
(its lower block triangle, of centred features) or SVCCA basis is computed once, not once per
layer pair. Pair scores then come from cheap products of those cached structures (see
``helpers/_knn.py`` and ``helpers/_kernels.py``). A permutation of one side's samples relabels
its kNN lists and bases, so the null costs no new kNN searches; kernel metrics rebuild the
shuffled side's Gram blocks (one pass of GEMMs per permutation).

Conventions (the same as the reference):

* Inputs are **prepared** features (:func:`prepare`). The kernel is the raw inner product,
  and no metric centres or normalises its inputs in a way that changes a score (``cka`` and
  ``unbiased_cka`` centre features internally, which leaves both HSIC estimators unchanged
  and keeps float32 accurate).
* The kNN lists exclude the sample itself and are ordered by similarity, equal similarities
  by the lower sample index, whatever search strategy ran (``helpers/_knn.py``). The
  reference's ``argsort`` leaves ties implementation-defined, so under exact ties it may pick
  other (equally near) neighbours; float32 rounding can also reorder near-ties, so compare
  float32 and float64 runs rather than expecting the same sets under heavy ties.
* This module never switches TF32 on, so CUDA float32 results match CPU float32 to
  rounding. The reference's CLI enables TF32, which changes float32 Grams and can change
  near-tied neighbours.

Deliberate differences from the reference, each also noted where it applies:

* ``lcs_knn`` is divided by ``topk``, so every kNN metric lies in [0, 1]. The reference
  returns the raw mean LCS length, in [0, k].
* ``cknna`` needs an explicit ``topk >= 2``. The reference's default of ``None`` crashes.
* ``svcca`` is deterministic: an exact SVD replaces ``torch.svd_lowrank``, and exact CCA
  (singular values of ``Q_xᵀ Q_y``) replaces sklearn's iterative CCA with added noise.
* :func:`best` returns an argmax even when every score is <= 0. The reference then returns
  ``None`` indices.

Example:
    >>> import torch
    >>> from helpers import alignment
    >>> g = torch.Generator().manual_seed(0)
    >>> x = alignment.prepare(torch.randn(300, 4, 64, generator=g))  # [N, L, D]
    >>> y = alignment.prepare(x[:, :2] @ torch.randn(64, 32, generator=g))  # random projections
    >>> s = alignment.layer_scores(x, y, "mutual_knn", topk=10)
    >>> s.shape
    torch.Size([4, 2])
    >>> value, (i, j) = alignment.best(s)
    >>> i in (0, 1)
    True
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
from tqdm.auto import tqdm

from helpers import _checks, _kernels, _knn

Tensor = torch.Tensor

METRICS = (
    "mutual_knn",
    "cycle_knn",
    "lcs_knn",
    "edit_distance_knn",
    "cka",
    "unbiased_cka",
    "cknna",
    "svcca",
)
KNN_METRICS = ("mutual_knn", "cycle_knn", "lcs_knn", "edit_distance_knn", "cknna")

__all__ = ["METRICS", "NullResult", "prepare", "score", "layer_scores", "best", "permutation_null"]


# --------------------------------------------------------------------------- preparation


def prepare(feats, q: float = 0.95):
    """Clamp outliers and L2-normalise every layer, as the PRH pipeline does before scoring.

    The threshold is the reference's default (``exact=False``): for each sample, take the
    ``q``-quantile of ``|x|`` over all its layers and dims (``torch.quantile``'s linear
    interpolation), then average over samples. Features are clamped to ``±threshold``, and
    each layer's feature vectors are scaled to unit L2 norm (``F.normalize``, eps 1e-12).
    Rows whose squared norm overflows (``|x|`` near 1e19 in float32 or 1e154 in float64) are
    scaled by their largest entry first, so they come back unit-norm instead of all zeros.
    A list of layers shares one threshold, computed over the concatenation. The quantile is
    taken with ``kthvalue`` in row chunks, so there is no 2**24-element limit and no full
    ``|x|`` copy.

    Args:
        feats: ``[N, L, D]`` or ``[N, D]`` tensor, or a list of ``[N, D_l]`` tensors. Integer
            and half types become float32, and float64 stays float64.
        q: quantile in (0, 1]. ``q=1`` skips clamping, as in the reference.

    Returns:
        New tensors in the same layout (the input is never modified).

    Raises:
        ValueError: wrong rank or type, empty input, NaN/inf, different N across the
            layers of a list, or ``q`` outside (0, 1].

    Example:
        >>> x = prepare(torch.tensor([[3.0, 4.0], [0.0, 2.0]]), q=1.0)
        >>> x
        tensor([[0.6000, 0.8000],
                [0.0000, 1.0000]])
    """
    _checks.check_quantile(q)
    layers = _checks.as_layers(feats, "feats")
    dtype = torch.float64 if layers[0].dtype == torch.float64 else torch.float32
    threshold = _mean_row_quantile(layers, q, dtype) if q < 1 else None

    def _one(t: Tensor) -> Tensor:
        t = t.to(dtype)
        # clamp (or clone) makes our own copy, so in-place division below never touches the input
        out = t.clamp(-threshold, threshold) if threshold is not None else t.clone()
        norm = out.norm(dim=-1, keepdim=True)
        if not bool(torch.isfinite(norm).all()):
            # The sum of squares overflowed: take those rows' norms after scaling by the largest
            # entry (exact in real arithmetic), instead of dividing by inf into zero rows.
            peak = out.abs().amax(dim=-1, keepdim=True)
            rescaled = peak * (out / peak).norm(dim=-1, keepdim=True)
            norm = torch.where(torch.isfinite(norm), norm, rescaled)
        return out.div_(norm.clamp_min(1e-12))

    if isinstance(feats, (list, tuple)):
        return [_one(t) for t in layers]
    return _one(torch.as_tensor(feats))


def _mean_row_quantile(layers: list[Tensor], q: float, dtype: torch.dtype) -> float:
    """Mean over samples of each sample's ``q``-quantile of ``|x|`` across all its features."""
    n = layers[0].shape[0]
    width = sum(t[0].numel() for t in layers)
    pos = q * (width - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, width - 1)
    rows = max(1, _knn.CHUNK_BYTES // (width * 8))
    total = 0.0
    for r0 in range(0, n, rows):
        r1 = min(n, r0 + rows)
        flat = torch.cat([t[r0:r1].reshape(r1 - r0, -1).to(dtype).abs() for t in layers], dim=1)
        v_lo = flat.kthvalue(lo + 1, dim=1).values
        v_hi = flat.kthvalue(hi + 1, dim=1).values
        total += torch.lerp(v_lo, v_hi, pos - lo).double().sum().item()
    return total / n


# --------------------------------------------------------------------------- cached structures


@dataclass
class _Cache:
    """Per-layer structures for one side; everything a metric needs for all its pairs."""

    n: int
    idx: Tensor | None = None  # [L, N, k] kNN lists, most similar first
    vals: Tensor | None = None  # [L, N, k] their inner products (cknna)
    mut: Tensor | None = None  # [L, N, k] mutual-neighbour flags (cknna)
    grams: _kernels.GramSide | None = None  # Gram block triangles (cka, unbiased_cka)
    selfsim: Tensor | None = None  # [L] HSIC of each layer with itself (cka, unbiased_cka, cknna)
    basis: Tensor | None = None  # [L, N, c] SVCCA bases

    def permuted(self, perm: Tensor) -> "_Cache":
        """The cache of ``feats[perm]``, by relabelling (self-similarities are invariant)."""
        out = replace(self)
        if self.idx is not None:
            extra = [t for t in (self.vals, self.mut) if t is not None]
            moved = _knn.permute_lists(self.idx, perm, *extra)
            out.idx = moved[0]
            if self.vals is not None:
                out.vals, out.mut = moved[1], moved[2]
        if self.grams is not None:
            out.grams = self.grams.permuted(perm)
        if self.basis is not None:
            out.basis = self.basis[:, perm]
        return out


def _build_cache(
    layers: list[Tensor] | Tensor, metric: str, topk: int, cca_dim: int, device, dtype,
    progress: bool,
    name: str = "features",
) -> _Cache:
    n, nl = layers[0].shape[0], len(layers)
    cache = _Cache(n=n)
    kw = dict(device=device, dtype=dtype)
    if metric in KNN_METRICS:
        cache.idx = torch.empty(nl, n, topk, dtype=torch.long, device=device)
        if metric == "cknna":
            cache.vals = torch.empty(nl, n, topk, **kw)
            cache.mut = torch.empty(nl, n, topk, dtype=torch.bool, device=device)
    elif metric in ("cka", "unbiased_cka"):
        cache.grams = _kernels.GramSide(n, nl, torch.device(device), dtype)
    else:
        cache.basis = torch.empty(nl, n, cca_dim, **kw)
    for a, b in tqdm(_layer_groups(layers, n, dtype), desc=f"{metric} layer groups",
                     disable=not progress):
        # Runs of equal-width layers are processed as one batch: a few large ops instead of
        # many small ones. The caller's tensors are only read.
        if isinstance(layers, Tensor):  # [L, N, D] view of an [N, L, D] input: no copy
            x = layers[a:b].to(**kw)
        elif b - a == 1:  # one layer (every layer at large N): a view, not a copy
            x = layers[a].to(**kw).unsqueeze(0)
        else:
            x = torch.stack([t.to(**kw) for t in layers[a:b]])  # [G, N, D]
        if cache.idx is not None:
            idx, vals = _knn.knn(x, topk)  # picks its strategy by N, D and device
            cache.idx[a:b] = idx
            if cache.vals is not None:
                cache.vals[a:b] = vals
                cache.mut[a:b] = _knn.mutual_flags(idx)
        elif cache.grams is not None:
            cache.grams.add(a, b, x)
        else:
            cache.basis[a:b] = _kernels.svcca_basis(x, cca_dim, name=name, first_layer=a)
    if metric == "cknna":
        cache.selfsim = _knn.masked_hsic_self(cache.idx, cache.vals, cache.mut)
    elif cache.grams is not None:
        cache.selfsim = _kernels.hsic_self(cache.grams, metric == "unbiased_cka")
    return cache


def _layer_groups(layers: list[Tensor] | Tensor, n: int, dtype) -> list[tuple[int, int]]:
    """``[a, b)`` runs of consecutive equal-width layers, each small enough for one batch."""
    item = torch.empty((), dtype=dtype).element_size()
    per_layer = max(n * n * item, n * layers[0].shape[1] * item)
    cap = max(1, _GROUP_BYTES // per_layer) if _knn.fits_full_gram(n, item) else 1
    groups, a = [], 0
    for i in range(1, len(layers) + 1):
        if i == len(layers) or layers[i].shape[1] != layers[a].shape[1] or i - a == cap:
            groups.append((a, i))
            a = i
    return groups


_GROUP_BYTES = 256 * 2**20  # a batch of layers' N x N Grams may use this much temporarily


def _cross(cx: _Cache, cy: _Cache, metric: str) -> Tensor:
    """All layer-pair scores ``[Lx, Ly]`` (float64) from two caches."""
    n = cx.n
    if metric in ("mutual_knn", "cycle_knn", "lcs_knn", "edit_distance_knn"):
        k = cx.idx.shape[2]
        if metric == "mutual_knn":
            return _knn.mutual_knn_counts(cx.idx, cy.idx).double() / (n * k)
        if metric == "cycle_knn":
            return _knn.cycle_knn_counts(cx.idx, cy.idx).double() / n
        if metric == "lcs_knn":
            return _knn.sequence_totals(cx.idx, cy.idx, "lcs").double() / (n * k)
        return 1.0 - _knn.sequence_totals(cx.idx, cy.idx, "edit").double() / (n * k)
    if metric == "svcca":
        return _kernels.svcca_all_pairs(cx.basis, cy.basis).double()
    if metric == "cknna":
        num = _knn.masked_hsic_cross(cx.idx, cx.vals, cx.mut, cy.idx, cy.vals, cy.mut)
    else:
        num = _kernels.hsic_pairs(cx.grams, cy.grams, metric == "unbiased_cka")
    # The reference's ratio, +1e-6 included (a negative product gives NaN there too).
    return num / (torch.sqrt(cx.selfsim[:, None] * cy.selfsim[None, :]) + 1e-6)


def _setup(xs, ys, metric, topk, cca_dim, device, dtype, names=("xs", "ys")):
    """Validate once at the boundary; return per-layer views, device and dtype."""
    _checks.check_metric(metric, METRICS)
    lx = _checks.as_layers(xs, names[0])
    ly = _checks.as_layers(ys, names[1])
    n = lx[0].shape[0]
    _checks.check_same_n(n, ly[0].shape[0], names)
    _checks.check_min_samples(n, metric)
    _checks.check_topk(topk, n, metric, KNN_METRICS)
    if metric == "svcca":
        _checks.check_cca_dim(cca_dim, n, [t.shape[1] for t in [*lx, *ly]])
    if dtype is None:
        dtype = torch.float64 if torch.float64 in (lx[0].dtype, ly[0].dtype) else torch.float32
    dtype = _checks.check_dtype(dtype)
    device = _checks.check_device(device) if device is not None else lx[0].device
    return lx, ly, device, dtype


# --------------------------------------------------------------------------- public API


def score(
    x: Tensor,
    y: Tensor,
    metric: str = "mutual_knn",
    topk: int = 10,
    *,
    cca_dim: int = 10,
    device=None,
    dtype: torch.dtype | None = None,
) -> float:
    """Alignment of one pair of prepared representations of the same ``N`` inputs.

    Args:
        x: ``[N, Dx]`` prepared features (see :func:`prepare`).
        y: ``[N, Dy]`` prepared features, where row ``i`` describes the same input as ``x[i]``.
        metric: one of :data:`METRICS`.
        topk: neighbours per sample for the kNN metrics and ``cknna``, with
            ``1 <= topk < N`` (``cknna``: ``topk >= 2``). Ignored by the other metrics.
        cca_dim: SVCCA directions kept per side (``svcca`` only).
        device: where to compute; defaults to ``x.device``.
        dtype: float32 or float64; defaults to float64 if an input is float64, else float32.

    Returns:
        The score as a Python float. ``lcs_knn`` is divided by ``topk``, unlike the
        reference, so it lies in [0, 1].

    Raises:
        ValueError: ``x`` or ``y`` not ``[N, D]``, different ``N``, empty, NaN/inf, bad
            ``topk``/``cca_dim``, or an unknown metric.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> x = prepare(torch.randn(100, 16, generator=g))
        >>> score(x, x, "mutual_knn", topk=5), round(score(x, x, "cka"), 4)
        (1.0, 1.0)
    """
    for t, name in ((x, "x"), (y, "y")):
        t = _checks._as_tensor(t, name)
        if t.ndim != 2:
            raise ValueError(f"{name} must have shape [N, D]; got shape {tuple(t.shape)} "
                             "(use layer_scores for [N, L, D] inputs)")
    s = layer_scores(x, y, metric, topk, device=device, dtype=dtype, cca_dim=cca_dim,
                     _names=("x", "y"))
    return float(s[0, 0])


def layer_scores(
    xs,
    ys,
    metric: str = "mutual_knn",
    topk: int = 10,
    device=None,
    dtype: torch.dtype | None = torch.float32,
    *,
    cca_dim: int = 10,
    progress: bool = False,
    _names: tuple[str, str] = ("xs", "ys"),
) -> Tensor:
    """Scores for every layer pair of two models, exactly as a per-pair loop would give.

    Each layer's kNN lists, Gram or SVCCA basis is computed once, and all pairs are
    then scored from those (for mutual kNN, ``O(N k)`` per pair). Above ``N`` of about 4,000
    the neighbour search works in square blocks and keeps only ``[L, N, k]`` index lists, so
    ``N = 20,000`` needs about 100 MB beyond the inputs. Kernel metrics (``cka``,
    ``unbiased_cka``) hold the lower block triangle of an ``[N, N]`` Gram per layer (10/16 of
    it for ``N >= 1024``): keep ``N`` in the low thousands for them.

    Args:
        xs: prepared ``[N, Lx, Dx]`` or ``[N, Dx]`` tensor, or a list of ``[N, D_l]`` tensors
            (widths may differ).
        ys: the same for the other model; same ``N``, same row order.
        metric: one of :data:`METRICS`.
        topk: neighbours per sample, ``1 <= topk < N`` (``cknna``: ``>= 2``).
        device: where to compute (``"cuda"`` works); defaults to the device of ``xs``.
            Layers are moved there one at a time.
        dtype: compute dtype, float32 (default) or float64; ``None`` picks float64 when an
            input is float64.
        cca_dim: SVCCA directions kept per side (``svcca`` only).
        progress: show a tqdm bar over layers.

    Returns:
        ``[Lx, Ly]`` tensor on the CPU in ``dtype``: ``out[i, j]`` scores layer ``i`` of
        ``xs`` against layer ``j`` of ``ys``. Unlike the reference's ``compute_alignment``,
        the indices are not swapped.

    Raises:
        ValueError: different ``N``, wrong rank, empty input, NaN/inf, bad ``topk`` or
            ``cca_dim``, an unknown metric, or an unsupported dtype.

    Example:
        >>> g = torch.Generator().manual_seed(1)
        >>> xs = prepare(torch.randn(64, 3, 8, generator=g))
        >>> layer_scores(xs, xs[:, :2], "mutual_knn", topk=4).diagonal()
        tensor([1., 1.])
    """
    lx, ly, device, dtype = _setup(xs, ys, metric, topk, cca_dim, device, dtype, _names)
    cx = _build_cache(lx, metric, topk, cca_dim, device, dtype, progress, _names[0])
    cy = _build_cache(ly, metric, topk, cca_dim, device, dtype, progress, _names[1])
    return _cross(cx, cy, metric).to(dtype).cpu()


def best(scores: Tensor) -> tuple[float, tuple[int, int]]:
    """The largest layer-pair score and its ``(i, j)``, the reference's layer search.

    Unlike the reference (which starts at 0 and returns ``None`` indices when every score
    is <= 0), this always returns the argmax. NaN scores are ignored, and ties go to the first
    pair in row-major order.

    Args:
        scores: ``[Lx, Ly]`` tensor from :func:`layer_scores`.

    Returns:
        ``(value, (i, j))``.

    Raises:
        ValueError: ``scores`` is not a non-empty 2-d tensor, or all of it is NaN.

    Example:
        >>> best(torch.tensor([[-0.3, -0.1], [-0.2, -0.5]]))
        (-0.10000000149011612, (0, 1))
    """
    s = _checks.check_scores(scores)
    filled = torch.where(torch.isnan(s), torch.full_like(s, -math.inf), s)
    if bool(torch.isnan(s).all()):
        raise ValueError("scores are all NaN; there is no best layer pair")
    flat = int(torch.argmax(filled))
    i, j = divmod(flat, s.shape[1])
    return float(s[i, j]), (i, j)


def _max_or_nan(scores: Tensor, dtype: torch.dtype) -> Tensor:
    """The largest non-NaN layer-pair score, or NaN when every pair is undefined."""
    if bool(torch.isnan(scores).all()):
        return torch.tensor(math.nan, dtype=dtype)
    return torch.tensor(best(scores)[0], dtype=dtype)


@dataclass
class NullResult:
    """Observed score(s) against a permutation null.

    With ``reduce="max"`` every field is a float (``null`` is ``[n_perm]``). With
    ``reduce=None`` the fields are ``[Lx, Ly]`` tensors (``null`` is ``[n_perm, Lx, Ly]``).

    Attributes:
        observed: the score (or the max over layer pairs).
        null: the same statistic with ``ys``'s samples shuffled, one per permutation.
        p_value: ``(1 + #(null >= observed)) / (1 + n_perm)``; NaN where the observed score is
            NaN (undefined), never the permutation floor.
        null_mean: mean of ``null``.
        null_std: sample standard deviation of ``null`` (``n - 1``; NaN when ``n_perm = 1``).
        corrected: ``(observed - null_mean) / (1 - null_mean)``, which is 0 at chance and 1 at
            a perfect score.
        z: ``(observed - null_mean) / null_std`` (inf or NaN when the null has no spread).
        critical_value: the "Aristotelian" calibration's ``tau`` (Groger, Wen and Brbic, 2026;
            package ``calibrated-similarity``): the ``ceil((1 - alpha) (n_perm + 1))``-th
            smallest of observed-plus-null, from the same permutations. NaN if any of those
            values is NaN.
        calibrated: their rescaled score ``clip((observed - tau) / (1 - tau), 0, 1)``: 0 unless
            the score beats the null at level ``alpha``, 1 at a perfect score (the
            denominator is floored at 1e-12, as in the package).
        alpha: the level used for ``critical_value``.
    """

    observed: float | Tensor
    null: Tensor
    p_value: float | Tensor
    null_mean: float | Tensor
    null_std: float | Tensor
    corrected: float | Tensor
    z: float | Tensor
    critical_value: float | Tensor = math.nan
    calibrated: float | Tensor = math.nan
    alpha: float = 0.05


def permutation_null(
    xs,
    ys,
    metric: str = "mutual_knn",
    topk: int = 10,
    n_perm: int = 100,
    seed: int = 0,
    reduce: str | None = "max",
    device=None,
    *,
    dtype: torch.dtype | None = torch.float32,
    cca_dim: int = 10,
    progress: bool = False,
    alpha: float = 0.05,
) -> NullResult:
    """Calibrate an alignment score against shuffled pairings of the samples.

    Each permutation shuffles ``ys``'s rows, breaking the pairing while keeping both
    models' geometry. Shuffling relabels the cached kNN lists and bases, so each
    permutation costs one cross-scoring pass and no new searches; for ``cka`` and
    ``unbiased_cka`` it rebuilds the shuffled side's Gram blocks. With multi-layer inputs
    and ``reduce="max"``, both the observed value and each null draw are the max over all
    layer pairs. The layer-search inflation is therefore calibrated too.

    Args:
        xs: prepared ``[N, Dx]``, ``[N, Lx, Dx]`` or list of ``[N, D_l]``.
        ys: the same for the other model (same ``N`` and row order).
        metric: one of :data:`METRICS`.
        topk: neighbours per sample (kNN metrics and ``cknna``).
        n_perm: number of permutations (>= 1).
        seed: seeds a CPU ``torch.Generator``, so the permutations match on every device.
        reduce: ``"max"`` (over layer pairs) or ``None`` (keep every pair).
        device: where to compute; defaults to the device of ``xs``.
        dtype: compute dtype (float32 or float64; ``None`` follows the inputs).
        cca_dim: SVCCA directions (``svcca`` only).
        progress: show a tqdm bar over permutations.
        alpha: level of the critical value (``NullResult.critical_value``, ``calibrated``),
            in (0, 1).

    Returns:
        :class:`NullResult`. Its ``critical_value`` and ``calibrated`` are what
        ``calibrated_similarity.calibrate_layers(..., agg="max")`` (``calibrate`` for one pair)
        returns given the same permutations and per-pair score
        (``tests/test_alignment_calibration.py`` checks this).

    Raises:
        ValueError: everything :func:`layer_scores` rejects, plus ``n_perm < 1``, an
            unknown ``reduce``, or ``alpha`` outside (0, 1).

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> x = prepare(torch.randn(100, 16, generator=g))
        >>> r = permutation_null(x, x, "mutual_knn", topk=5, n_perm=19)
        >>> r.observed, r.p_value
        (1.0, 0.05)
    """
    _checks.check_null_args(n_perm, reduce)
    _checks.check_seed(seed)
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 < alpha < 1:
        raise ValueError(f"alpha must be a number in (0, 1), e.g. 0.05; got {alpha!r}")
    lx, ly, device, dtype = _setup(xs, ys, metric, topk, cca_dim, device, dtype)
    cx = _build_cache(lx, metric, topk, cca_dim, device, dtype, False, "xs")
    cy = _build_cache(ly, metric, topk, cca_dim, device, dtype, False, "ys")
    observed = _cross(cx, cy, metric).to(dtype).cpu()
    gen = torch.Generator().manual_seed(seed)
    draws = []
    for _ in tqdm(range(n_perm), desc=f"{metric} null", disable=not progress):
        perm = torch.randperm(cx.n, generator=gen).to(device)
        draws.append(_cross(cx, cy.permuted(perm), metric).to(dtype).cpu())
    null = torch.stack(draws)  # [n_perm, Lx, Ly]
    if reduce == "max":
        observed = _max_or_nan(observed, dtype)
        null = torch.stack([_max_or_nan(d, dtype) for d in null])
    p = (1 + (null >= observed).sum(dim=0)).double() / (1 + n_perm)
    # An undefined observed score (e.g. unbiased CKA or cknna on too few samples) has no p-value;
    # NaN >= nothing, so without this it would read as the permutation floor 1 / (n_perm + 1).
    p = torch.where(torch.isnan(observed), torch.full_like(p, math.nan), p)
    mean = null.mean(dim=0)
    std = null.std(dim=0) if n_perm > 1 else torch.full_like(mean, math.nan)
    corrected = (observed - mean) / (1 - mean)
    z = (observed - mean) / std
    tau, calibrated = _critical_value(observed, null, alpha)
    if reduce == "max":
        return NullResult(float(observed), null, float(p), float(mean), float(std),
                          float(corrected), float(z), float(tau), float(calibrated), alpha)
    return NullResult(observed, null, p, mean, std, corrected, z, tau, calibrated, alpha)


def _critical_value(observed: Tensor, null: Tensor, alpha: float) -> tuple[Tensor, Tensor]:
    """The Aristotelian paper's ``tau`` and calibrated score, elementwise over ``observed``.

    ``tau`` is the ``ceil((1 - alpha)(K + 1))``-th order statistic of observed-plus-null (K
    permutations); the score is ``clip((s - tau) / max(1 - tau, 1e-12), 0, 1)``, as in
    ``calibrated_similarity.calibrate`` with ``smax = 1``. NaN anywhere gives NaN, not a rank.
    """
    n_perm = null.shape[0]
    combined = torch.cat([observed.unsqueeze(0), null], dim=0)  # [K + 1, ...]
    rank = min(max(math.ceil((1.0 - alpha) * (n_perm + 1)) - 1, 0), n_perm)
    tau = combined.sort(dim=0).values[rank]
    tau = torch.where(torch.isnan(combined).any(dim=0), torch.full_like(tau, math.nan), tau)
    calibrated = ((observed - tau) / (1 - tau).clamp_min(1e-12)).clamp(0.0, 1.0)
    return tau, calibrated
