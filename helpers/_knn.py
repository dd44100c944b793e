"""Nearest-neighbour plumbing for :mod:`helpers.alignment`.

* :func:`gram` builds ``X Xᵀ`` from its lower block triangle (about 56% of the flops).
* :func:`knn` finds each row's ``k`` most similar rows (inner product, self excluded).
  Above a memory budget it works in square blocks, multiplying each block pair once
  (about half the flops of ``X Xᵀ``) and merging running top-k lists.
* The ``*_scores`` functions turn cached neighbour lists ``[L, N, k]`` of two models into
  ``[Lx, Ly]`` score tables. They never build an ``N x N`` float matrix per pair: one side's
  neighbour lists are scattered into a small row-chunk buffer (all its layers at once), and
  the other side's lists gather from it, so each layer pair costs ``O(N k)``. Few, large
  tensor ops are used on purpose: on a busy CPU every multi-threaded op pays a barrier.
"""

from __future__ import annotations

import torch

Tensor = torch.Tensor

# Largest temporary buffer (bytes) a row chunk may use; N = 20,000 -> ~800 rows per chunk.
CHUNK_BYTES = 64 * 2**20
# A full N x N Gram is kept (and built from symmetric blocks) only up to this size.
FULL_GRAM_BYTES = 256 * 2**20


def _rows_per_chunk(n: int, per_row_bytes: int) -> int:
    return max(1, min(n, CHUNK_BYTES // max(1, per_row_bytes)))


def gram(x: Tensor, out: Tensor | None = None) -> Tensor:
    """``x @ x.mT`` for ``x`` ``[(G,) N, D]``, computing only the lower block triangle.

    Row block ``i`` is multiplied with column blocks ``0..i`` in one product and mirrored,
    so 8 blocks cost 36/64 of a full GEMM. On one idle core this measured ~1.4x faster than
    ``x @ x.mT`` at N = 1024, D = 768. Values are bit-identical to a full product only up
    to rounding; the Gram is exactly symmetric.
    """
    n = x.shape[-2]
    if out is None:
        out = x.new_empty(x.shape[:-1] + (n,))
    blocks = min(8, n // 128)
    if blocks < 2:
        return torch.matmul(x, x.mT, out=out)
    edges = [round(i * n / blocks) for i in range(blocks + 1)]
    for bi in range(blocks):
        a0, a1 = edges[bi], edges[bi + 1]
        blk = x[..., a0:a1, :] @ x[..., :a1, :].mT  # [(G,) b, a1]
        out[..., a0:a1, :a1] = blk
        if a0:
            out[..., :a0, a0:a1] = blk[..., :a0].mT
    return out


def knn(x: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """Top-``k`` neighbours of every row by inner product, self excluded.

    Args:
        x: ``[N, D]``, or a batch of layers ``[G, N, D]`` (the full-Gram path only; see
            :func:`fits_full_gram`).

    Returns:
        ``(idx, vals)``: ``idx`` ``[(G,) N, k]`` int64, neighbours in descending similarity;
        ``vals`` the matching inner products. Ties are broken by ``torch.topk``
        (implementation-defined), as the reference's ``argsort`` also leaves them.
    """
    n = x.shape[-2]
    if fits_full_gram(n, x.element_size()):
        g = gram(x)
        g.diagonal(dim1=-2, dim2=-1).fill_(float("-inf"))  # self ranks last (reference: -1e8)
        vals, idx = g.topk(k, dim=-1)
        return idx, vals
    return _knn_blocked(x, k)


def fits_full_gram(n: int, item: int) -> bool:
    """Whether one ``N x N`` Gram fits the budget (else kNN runs in blocks, one layer at a time)."""
    return n * n * item <= FULL_GRAM_BYTES


def _merge_topk(vals: Tensor, idx: Tensor, s: Tensor, offset: int, k: int, dim: int) -> None:
    """Merge candidates ``s`` (rows along ``1 - dim``, columns ``offset..`` along ``dim``)
    into the running top-k ``vals``/``idx`` ``[B, k]``."""
    v, i = s.topk(min(k, s.shape[dim]), dim=dim)
    if dim == 0:
        v, i = v.T, i.T
    v = torch.cat([vals, v], dim=1)
    i = torch.cat([idx, i + offset], dim=1)
    top_v, pos = v.topk(k, dim=1)
    vals.copy_(top_v)
    idx.copy_(i.gather(1, pos))


def _knn_blocked(x: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """Row-blocked kNN for large ``N``: each block pair ``(I, J >= I)`` is multiplied once and
    feeds the running top-k of both ``I`` (rows) and ``J`` (columns): half the GEMM flops,
    ``O(block^2)`` memory."""
    n = x.shape[0]
    block = max(k + 1, int((CHUNK_BYTES / x.element_size()) ** 0.5))
    vals = torch.full((n, k), float("-inf"), dtype=x.dtype, device=x.device)
    idx = torch.zeros(n, k, dtype=torch.long, device=x.device)
    starts = list(range(0, n, block))
    for a0 in starts:
        a1 = min(n, a0 + block)
        for b0 in starts:
            if b0 < a0:
                continue
            b1 = min(n, b0 + block)
            s = x[a0:a1] @ x[b0:b1].T
            if a0 == b0:
                s.fill_diagonal_(float("-inf"))
            _merge_topk(vals[a0:a1], idx[a0:a1], s, b0, k, dim=1)
            if b0 != a0:
                _merge_topk(vals[b0:b1], idx[b0:b1], s, a0, k, dim=0)
    return idx, vals


def mutual_flags(idx: Tensor) -> Tensor:
    """``mut[..., i, m]`` is True when ``i`` is also a neighbour of ``j = idx[..., i, m]``.

    ``idx`` is ``[(G,) N, k]``. Sort-based (``torch.isin`` on ``(g, i, j)`` keys),
    ``O(N k log(N k))``, no ``N x N`` buffer.
    """
    n, k = idx.shape[-2:]
    lead = idx.reshape(-1, n, k)
    rows = torch.arange(n, device=idx.device).view(1, n, 1)
    layer = torch.arange(lead.shape[0], device=idx.device).view(-1, 1, 1) * (n * n)
    keys = (layer + rows * n + lead).flatten()
    rev = (layer + lead * n + rows).flatten()
    return torch.isin(rev, keys).view(idx.shape)


def permute_lists(idx: Tensor, perm: Tensor, *others: Tensor) -> tuple[Tensor, ...]:
    """Neighbour lists of ``y[perm]`` from those of ``y`` (``idx`` ``[L, N, k]``).

    Row ``i`` of the permuted data is old row ``perm[i]``; old index ``j`` is new index
    ``inv[j]``. Per-entry values (similarities, mutual flags) just move with their rows.
    """
    inv = torch.empty_like(perm)
    inv[perm] = torch.arange(perm.numel(), device=perm.device)
    out = (inv[idx[:, perm]],)
    return out + tuple(o[:, perm] for o in others)


def _probe(idx: Tensor, r0: int, r1: int) -> Tensor:
    """``idx[:, r0:r1]`` ``[L, B, k]`` laid out as ``[B, L * k]`` for one gather per chunk."""
    sub = idx[:, r0:r1]
    return sub.permute(1, 0, 2).reshape(r1 - r0, -1)


def mutual_knn_counts(idx_x: Tensor, idx_y: Tensor) -> Tensor:
    """``out[a, b] = sum_i |NN_a(i) ∩ NN_b(i)|`` as int64 ``[Lx, Ly]``.

    The side with fewer layers is scattered into boolean row buffers ``[L, B, N]``;
    the other side gathers from them.
    """
    if idx_y.shape[0] > idx_x.shape[0]:
        return mutual_knn_counts(idx_y, idx_x).T
    lx, n, k = idx_x.shape
    ly = idx_y.shape[0]
    out = torch.zeros(ly, lx, dtype=torch.long, device=idx_x.device)
    rows = _rows_per_chunk(n, ly * (n + lx * k))  # buffer + gathered hits
    for r0 in range(0, n, rows):
        r1 = min(n, r0 + rows)
        buf = torch.zeros(ly, r1 - r0, n, dtype=torch.bool, device=idx_x.device)
        buf.scatter_(2, idx_y[:, r0:r1], True)
        probe = _probe(idx_x, r0, r1).expand(ly, -1, -1)  # [Ly, B, Lx * k]
        out += buf.gather(2, probe).view(ly, r1 - r0, lx, k).sum(dim=(1, 3))
    return out.T


def cycle_knn_counts(idx_x: Tensor, idx_y: Tensor) -> Tensor:
    """``out[a, b] = #{i : exists j in NN_b(i) with i in NN_a(j)}`` as int64 ``[Lx, Ly]``.

    The x side is scattered transposed (``T[a, i, j] = [i in NN_a(j)]``); the y side gathers.
    """
    lx, n, k = idx_x.shape
    ly = idx_y.shape[0]
    out = torch.zeros(lx, ly, dtype=torch.long, device=idx_x.device)
    rows = _rows_per_chunk(n, lx * (n + ly * k))
    for r0 in range(0, n, rows):
        r1 = min(n, r0 + rows)
        buf = torch.zeros(lx, r1 - r0, n, dtype=torch.bool, device=idx_x.device)
        a, j, m = ((idx_x >= r0) & (idx_x < r1)).nonzero(as_tuple=True)
        buf[a, idx_x[a, j, m] - r0, j] = True
        probe = _probe(idx_y, r0, r1).expand(lx, -1, -1)  # [Lx, B, Ly * k]
        out += buf.gather(2, probe).view(lx, r1 - r0, ly, k).any(dim=3).sum(dim=1)
    return out


def _lcs(eq: Tensor) -> Tensor:
    """LCS lengths from ``eq`` ``[P, k, k]`` (``eq[p, i, j] = x_p[i] == y_p[j]``) -> ``[P]``."""
    p, k, _ = eq.shape
    prev = torch.zeros(p, k + 1, dtype=torch.int32, device=eq.device)
    for i in range(k):
        cur = torch.zeros_like(prev)
        for j in range(k):
            cur[:, j + 1] = torch.where(
                eq[:, i, j], prev[:, j] + 1, torch.maximum(prev[:, j + 1], cur[:, j])
            )
        prev = cur
    return prev[:, k]


def _levenshtein(eq: Tensor) -> Tensor:
    """Levenshtein distances (unit costs) from ``eq`` ``[P, k, k]`` -> ``[P]``."""
    p, k, _ = eq.shape
    prev = torch.arange(k + 1, dtype=torch.int32, device=eq.device).expand(p, k + 1).clone()
    for i in range(k):
        cur = torch.empty_like(prev)
        cur[:, 0] = i + 1
        for j in range(k):
            sub = prev[:, j] + (~eq[:, i, j]).to(torch.int32)
            cur[:, j + 1] = torch.minimum(torch.minimum(prev[:, j + 1], cur[:, j]) + 1, sub)
        prev = cur
    return prev[:, k]


def sequence_totals(idx_x: Tensor, idx_y: Tensor, kind: str) -> Tensor:
    """Sum over samples of LCS length (``kind='lcs'``) or Levenshtein distance (``'edit'``)
    between the ordered neighbour lists, for all layer pairs -> int64 ``[Lx, Ly]``."""
    fn = _lcs if kind == "lcs" else _levenshtein
    lx, n, k = idx_x.shape
    ly = idx_y.shape[0]
    out = torch.zeros(lx, ly, dtype=torch.long, device=idx_x.device)
    rows = _rows_per_chunk(n, lx * ly * k * (k + 12))
    for r0 in range(0, n, rows):
        r1 = min(n, r0 + rows)
        xa = idx_x[:, None, r0:r1, :, None]  # [Lx, 1, B, k, 1]
        yb = idx_y[None, :, r0:r1, None, :]  # [1, Ly, B, 1, k]
        eq = (xa == yb).reshape(-1, k, k)
        out += fn(eq).view(lx, ly, r1 - r0).sum(dim=2)
    return out


def masked_hsic_self(idx: Tensor, vals: Tensor, mut: Tensor) -> Tensor:
    """Unbiased HSIC of ``M ⊙ K`` with itself (cknna's ``sim_KK``) per layer -> ``[L]`` float64.

    ``M`` is the (unsymmetrised) kNN mask; the entries of ``M ⊙ K`` are ``vals`` at ``idx``.
    """
    _, n, _ = idx.shape
    v = vals.double()
    total = v.sum(dim=(1, 2))
    rowsum = v.sum(dim=2)
    colsum = torch.zeros_like(rowsum).scatter_add_(1, idx.flatten(1), v.flatten(1))
    trace = (v * v * mut).sum(dim=(1, 2))  # sum_ij A_ij A_ji: only mutual neighbours count
    return _hsic_u_terms(trace, total, total, (colsum * rowsum).sum(dim=1), n)


def _hsic_u_terms(trace: Tensor, sum_a: Tensor, sum_b: Tensor, sum_ab: Tensor, m: int) -> Tensor:
    """Song et al. (2012) Eq. 5 from its four sufficient statistics."""
    return (trace + sum_a * sum_b / ((m - 1) * (m - 2)) - 2 * sum_ab / (m - 2)) / (m * (m - 3))


def masked_hsic_cross(
    idx_x: Tensor, vals_x: Tensor, mut_x: Tensor, idx_y: Tensor, vals_y: Tensor, mut_y: Tensor
) -> Tensor:
    """cknna's ``sim_KL = HSIC_u(M ⊙ K, M ⊙ L)`` with ``M = M_K ⊙ M_L``, all pairs -> ``[Lx, Ly]``.

    Entries of the masked matrices live on ``S = {(i, j): j in NN_a(i) ∩ NN_b(i)}``, so every
    term of Eq. 5 is a sum over ``S``: the trace ``sum_ij A_ij B_ji`` keeps pairs in ``S`` both
    ways; ``1ᵀAB1`` = column sums of ``A`` dotted with row sums of ``B``.
    """
    lx, n, k = idx_x.shape
    ly = idx_y.shape[0]
    dev = idx_x.device
    f64 = dict(dtype=torch.float64, device=dev)
    sum_a, sum_b, trace = (torch.zeros(ly, lx, **f64) for _ in range(3))
    colsum_a = torch.zeros(ly, lx, n, **f64)
    rowsum_b = torch.zeros(ly, lx, n, **f64)
    per_row = ly * n * (1 + vals_y.element_size()) + ly * lx * k * 40
    rows = _rows_per_chunk(n, per_row)
    for r0 in range(0, n, rows):
        r1 = min(n, r0 + rows)
        bsz = r1 - r0
        nb = idx_y[:, r0:r1]
        code = torch.zeros(ly, bsz, n, dtype=torch.int8, device=dev)
        code.scatter_(2, nb, 1 + mut_y[:, r0:r1].to(torch.int8))  # 1: neighbour, 2: both ways
        lbuf = torch.zeros(ly, bsz, n, dtype=vals_y.dtype, device=dev)
        lbuf.scatter_(2, nb, vals_y[:, r0:r1])
        probe = _probe(idx_x, r0, r1).expand(ly, -1, -1)  # [Ly, B, Lx * k]
        c = code.gather(2, probe).view(ly, bsz, lx, k)
        hit = c > 0
        lv = lbuf.gather(2, probe).view(ly, bsz, lx, k).double() * hit
        kv = vals_x[:, r0:r1].permute(1, 0, 2).double() * hit  # [Ly, B, Lx, k]
        both_ways = (c == 2) & mut_x[:, r0:r1].permute(1, 0, 2)
        sum_a += kv.sum(dim=(1, 3))
        sum_b += lv.sum(dim=(1, 3))
        trace += (kv * lv * both_ways).sum(dim=(1, 3))
        rowsum_b[:, :, r0:r1] = lv.sum(dim=3).permute(0, 2, 1)
        cols = idx_x[:, r0:r1].reshape(lx, -1).expand(ly, -1, -1)  # [Ly, Lx, B * k]
        colsum_a.scatter_add_(2, cols, kv.permute(0, 2, 1, 3).reshape(ly, lx, -1))
    sum_ab = (colsum_a * rowsum_b).sum(dim=2)
    return _hsic_u_terms(trace, sum_a, sum_b, sum_ab, n).T
