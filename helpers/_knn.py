"""Nearest-neighbour plumbing for :mod:`helpers.alignment`.

* :func:`gram` builds ``X Xᵀ`` from its lower block triangle (about 56% of the flops).
* :func:`knn` finds each row's ``k`` most similar rows (inner product, self excluded), with a
  strategy picked by shape and device (:func:`strategy`; described above ``PANEL_BYTES``)
  under a memory cap on the ``N x N`` working set. Every strategy returns the same lists, in
  descending similarity with ties broken by the lower index.
* The ``*_scores`` functions turn cached neighbour lists ``[L, N, k]`` of two models into
  ``[Lx, Ly]`` score tables. They never build an ``N x N`` float matrix per pair: one side's
  neighbour lists are scattered into a small row-chunk buffer (all its layers at once), and
  the other side's lists gather from it, so each layer pair costs ``O(N k)``. Few, large
  tensor ops are used on purpose: on a busy CPU every multi-threaded op pays a barrier.
"""

from __future__ import annotations

import math

import numpy as np
import torch

Tensor = torch.Tensor

# Largest temporary buffer (bytes) a scoring row chunk may use; N = 20,000 with 6 layers on the
# scattered side -> ~140 rows per chunk.
CHUNK_BYTES = 16 * 2**20
# A batch of full N x N Grams (built from symmetric blocks) is kept only up to this size:
# N <= 2048 in float32 on a CPU; above it the large-N strategies bound the working set.
FULL_GRAM_BYTES = 16 * 2**20


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


# ----------------------------------------------------------------------------- neighbour search
#
# Every strategy returns the same lists: the ``k`` largest inner products of each row (self
# excluded), ordered by similarity, **ties broken by the lower index** (see ``_top_rule``).
# Strategies differ only in which products they form and how they select:
#
# * ``gram``: small ``N`` (a batch of full Grams fits ``FULL_GRAM_BYTES``): full Grams of
#   several layers at once (block-triangle products from width ``NARROW``), one selection.
# * ``tri`` (large ``N``, CPU, width >= ``TRI_WIDTH``): row panels of the lower triangle only,
#   so half the products and half the selection of a full search; each row's entries above the
#   diagonal are read back from later panels' columns, only where they can reach the row's k-th
#   value (``_knn_tri``). It pays where the product is the cost (wide layers).
# * ``panel`` (large ``N``: GPU, or CPU below ``TRI_WIDTH``): full row panels ``[B, N]``; one
#   product and one selection per panel, no column pass. For narrow layers on a CPU the
#   product is cheap and the column pass costs more than the halved product saves (measured
#   at N = 20,000, width 7: 0.41 s against 0.51 s; width 64: 1.06 s against 0.80 s).
#
# ``PANEL_BYTES`` caps each product block, so the working set above the ``[N, k]`` outputs
# stays near 10 MB on a CPU at any ``N`` (a full Gram at N = 20,000 would be 1.6 GB).
#
# The selection (``_panel_topk``): on a CPU a compiled scan per row (``_scan_rows``, numba),
# which skips blocks of ``SCAN_BLOCK`` entries below a bound of the k-th value; on a GPU a
# tournament of chunk maxima (``_top_sure``) in a few large tensor ops. Both follow the tie rule.

# Below this width a full Gram is formed by one plain product (see ``_knn_gram``).
NARROW = 256
# From this width the large-N CPU search is ``tri``; below it ``panel``.
TRI_WIDTH = 32
# Panel (one product block) budget: bounds the N x N working set of the large-N strategies.
PANEL_BYTES = 8 * 2**20
# Tournament (``_top_sure``): entries per chunk at each level, and the row length at which
# ``torch.topk`` runs directly.
SPLIT = 8
BASE = 128
# Entries per block of the CPU scan (``_scan_rows``): blocks whose maximum is below a bound of
# the k-th value are skipped.
SCAN_BLOCK = 16
# Early lower-triangle panels take at most this many times the rows of a full-width panel.
TRI_GROWTH = 2
# Rows per group when a lower-triangle panel is read column-wise (see ``_knn_tri``).
GROUP = 8
# Lower-triangle blocks whose extra candidates are merged together (fewer, larger merges).
MERGE_EVERY = 8
# ... or as soon as this many extra candidates are pending (bounds their memory, ~20 B each).
MERGE_HITS = 2**16


def _budget(device: torch.device, cpu_bytes: int) -> int:
    """A GPU has the memory and bandwidth for panels 32x larger."""
    return cpu_bytes * (32 if device.type == "cuda" else 1)


def _top_rule(vals: Tensor, idx: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """Top-``k`` of candidate rows ``vals``/``idx`` ``[R, m]`` by (value desc, index asc).

    ``torch.topk`` orders ties arbitrarily, so rows whose k-th value ties with the next one, or
    with equal values inside the top-k, are re-selected with two stable sorts.
    """
    m = vals.shape[1]
    k = min(k, m)
    tv, tp = vals.topk(min(k + 1, m), dim=1)
    ti = idx.gather(1, tp[:, :k])
    tied = (tv[:, 1:] == tv[:, :-1]).any(dim=1)  # ties inside the top-k or at its boundary
    tv = tv[:, :k]
    if bool(tied.any()):
        rows = tied.nonzero().squeeze(1)
        v, i = vals[rows], idx[rows]
        order = i.argsort(dim=1, stable=True)
        v, i = v.gather(1, order), i.gather(1, order)
        order = v.argsort(dim=1, descending=True, stable=True)[:, :k]
        tv[rows], ti[rows] = v.gather(1, order), i.gather(1, order)
    return tv, ti


def _top_sure(v: Tensor, m: int) -> tuple[Tensor, Tensor, Tensor]:
    """The ``m`` largest entries of each row of ``v`` ``[R, L]`` (``m < L``) by a tournament.

    Columns ``j, j + H, ..., j + (SPLIT - 1) H`` (``H = L // SPLIT``) form chunk ``j``; the
    chunk maxima (one fast elementwise max of ``SPLIT`` contiguous slices) are a row of length
    ``H``, whose top ``m`` are found the same way, down to rows of at most ``BASE`` entries,
    where ``torch.topk`` runs. If the ``m``-th chunk maximum is strictly above every other
    chunk's, the top ``m`` entries lie in the top ``m`` chunks (plus the ``< SPLIT`` tail
    columns): ``m * SPLIT`` candidates. So each level costs one ``topk`` over ``~m * SPLIT``
    entries instead of one over the whole row (``torch.topk`` costs ~11 ns per entry).

    Returns:
        ``(vals, pos, sure)``: ``[R, m]`` values in descending order (equal values in any
        order) and their columns; ``sure[r]`` is True when the ``m``-th value is strictly
        greater than every entry left out, i.e. the set is the unique top-``m`` set.
    """
    r, length = v.shape
    h = length // SPLIT
    if length <= BASE or h <= m + 1:
        tv, tp = v.topk(min(m + 1, length), dim=1)
        sure = tv[:, m - 1] > tv[:, m] if length > m else torch.ones(r, dtype=torch.bool,
                                                                      device=v.device)
        return tv[:, :m], tp[:, :m], sure
    body = SPLIT * h
    head = v[:, :body].unflatten(1, (SPLIT, h)).amax(dim=1)  # [R, H] chunk maxima
    hv, hp, sure = _top_sure(head, m)
    pos = (hp.unsqueeze(2) + h * torch.arange(SPLIT, device=v.device)).flatten(1)
    if body < length:  # the tail columns belong to no chunk: always candidates
        tail = torch.arange(body, length, device=v.device).expand(r, -1)
        pos = torch.cat([pos, tail], dim=1)
    cand = v.gather(1, pos)  # [R, m * SPLIT (+ tail)]
    tv, tq = cand.topk(m + 1, dim=1)
    # Left-out entries: in other chunks, below the m-th chunk maximum (when ``sure``), which
    # is a candidate, so at most the m-th value; or candidates, at most the (m+1)-th.
    sure &= tv[:, m - 1] > tv[:, m]
    return tv[:, :m], pos.gather(1, tq[:, :m]), sure


def _scan_rows(s, k, out_v, out_i):
    """Top-``k`` of each row of ``s`` ``[R, L]`` into ``out_v``/``out_i`` ``[R, k]`` (numpy).

    Two passes per row. (1) The maxima of its blocks of ``SCAN_BLOCK`` entries (one vectorised
    max each), and ``lo``, the k-th largest of them: ``k`` blocks hold an entry ``>= lo``, so
    ``lo`` is a lower bound of the row's k-th value and nothing below it can be a neighbour.
    (2) The blocks whose maximum reaches ``lo`` (about ``k`` of them), plus the ``< SCAN_BLOCK``
    tail entries, are scanned in ascending column order into a sorted list of the best ``k``:
    an entry enters only if strictly greater than the list's k-th value and goes after equal
    values, so ties go to the lower index. Measured (one thread): 1.3, 2.4 and 7.6 us per row of
    1024, 4096 and 20,000 entries, against 3.3-3.6, 5.1-9.2 and 10-36 us for the tournament and
    ``torch.topk``.
    """
    rows, length = s.shape
    nb = length // SCAN_BLOCK
    block_max = np.empty(max(nb, 1), s.dtype)
    for r in range(rows):
        row, vals, idx = s[r], out_v[r], out_i[r]
        for b in range(nb):
            m = row[b * SCAN_BLOCK]
            for u in range(1, SCAN_BLOCK):
                m = max(m, row[b * SCAN_BLOCK + u])
            block_max[b] = m
        lo = -np.inf
        if nb >= k:  # the k largest block maxima, values only, in ``vals`` for now
            n = 0
            for b in range(nb):
                v = block_max[b]
                if n == k and not v > vals[k - 1]:
                    continue
                n += n < k
                p = n - 1
                while p > 0 and vals[p - 1] < v:
                    vals[p] = vals[p - 1]
                    p -= 1
                vals[p] = v
            lo = vals[k - 1]
        n = 0
        for b in range(nb + 1):  # block nb is the tail
            if b < nb:
                if block_max[b] < lo or (n == k and not block_max[b] > vals[k - 1]):
                    continue
                j0, j1 = b * SCAN_BLOCK, (b + 1) * SCAN_BLOCK
            else:
                j0, j1 = nb * SCAN_BLOCK, length
            for j in range(j0, j1):
                v = row[j]
                if v < lo or (n == k and not v > vals[k - 1]):
                    continue
                n += n < k
                p = n - 1  # the last slot; when the list is full its entry drops out
                while p > 0 and vals[p - 1] < v:
                    vals[p] = vals[p - 1]
                    idx[p] = idx[p - 1]
                    p -= 1
                vals[p] = v
                idx[p] = j


_SCAN_DTYPES = (torch.float32, torch.float64)
_SCAN = None  # the compiled _scan_rows; False where numba cannot be imported


def _scan_kernel():
    """:func:`_scan_rows` compiled by numba on first use (cached on disk), or False.

    numba is pinned in ``requirements.txt`` (robosuite depends on it too); without
    it the tournament runs on CPU too (same lists, slower: benchmarks/README.md).
    """
    global _SCAN
    if _SCAN is None:
        try:
            import numba
        except ImportError:
            _SCAN = False
        else:
            _SCAN = numba.njit(cache=True, nogil=True, boundscheck=False)(_scan_rows)
    return _SCAN


def _panel_topk(s: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """Top-``k`` of each row of a score panel ``s`` ``[B, C]`` by (value desc, column asc).

    On a CPU (float32/float64, numba available) one compiled pass per row (:func:`_scan_rows`)
    keeps a sorted top-k list and follows the rule itself. Elsewhere (a GPU) the tournament
    (:func:`_top_sure`) finds the set with a few large tensor ops; rows where it is not sure (a
    tie at the k-th value) or whose top-k holds equal values are redone over the whole row by
    the exact rule (:func:`_top_rule`). On continuous data that is almost no row; on heavily
    tied data (integer features) it is most, and the result is the same.

    Args:
        s: scores; entries to exclude (self) already ``-inf``.
        k: neighbours kept (fewer when the panel has fewer columns).

    Returns:
        ``(vals, idx)``: ``[B, k]`` values and column indices.
    """
    b, length = s.shape
    k = min(k, length)
    if length <= k:
        every = torch.arange(length, device=s.device).expand(b, length)
        return _top_rule(s, every, k)
    scan = _scan_kernel() if s.device.type == "cpu" and s.dtype in _SCAN_DTYPES else None
    if scan:
        vals = torch.empty(b, k, dtype=s.dtype)
        idx = torch.empty(b, k, dtype=torch.long)
        scan(s.contiguous().numpy(), k, vals.numpy(), idx.numpy())
        return vals, idx
    vals, idx, sure = _top_sure(s, k)
    redo = ~sure
    if k > 1:
        redo |= (vals[:, 1:] == vals[:, :-1]).any(dim=1)
    if bool(redo.any()):
        rows = redo.nonzero().squeeze(1)
        every = torch.arange(length, device=s.device).expand(len(rows), length)
        vals[rows], idx[rows] = _top_rule(s[rows], every, k)
    return vals, idx


def knn(x: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """Top-``k`` neighbours of every row by inner product, self excluded.

    The strategy is picked from ``N``, ``D`` and the device (see the comment above); all give
    the same lists.

    Args:
        x: ``[N, D]`` or a batch of layers ``[G, N, D]``.
        k: neighbours per row, ``1 <= k < N``.

    Returns:
        ``(idx, vals)``: ``idx`` ``[(G,) N, k]`` int64, neighbours in descending similarity,
        equal similarities in ascending index; ``vals`` the matching inner products.
    """
    if x.ndim == 2:
        idx, vals = knn(x.unsqueeze(0), k)
        return idx[0], vals[0]
    g, n, d = x.shape
    if fits_full_gram(n, x.element_size(), x.device):
        per = max(1, _budget(x.device, FULL_GRAM_BYTES) // (n * n * x.element_size()))
        out = [_knn_gram(x[a:a + per], k) for a in range(0, g, per)]
        if len(out) == 1:  # no copy of the [N, k] outputs (they count at N = 20,000)
            return out[0]
        return torch.cat([o[0] for o in out]), torch.cat([o[1] for o in out])
    out = [_knn_large(x[a], k) for a in range(g)]
    if g == 1:
        return out[0][0].unsqueeze(0), out[0][1].unsqueeze(0)
    return torch.stack([o[0] for o in out]), torch.stack([o[1] for o in out])


def strategy(n: int, d: int, item: int = 4, device: torch.device | str = "cpu") -> str:
    """The neighbour-search strategy :func:`knn` uses for one ``[N, D]`` layer.

    ``"gram"`` while a full Gram fits :data:`FULL_GRAM_BYTES`; above it ``"tri"`` on a CPU
    for layers of width ``>= TRI_WIDTH`` (half the products), else ``"panel"`` (narrow layers
    on a CPU, where the product is cheap, and every width on a GPU). All three are exact for
    every width (benchmarks/README.md has the measurements).
    """
    device = torch.device(device)
    if fits_full_gram(n, item, device):
        return "gram"
    return "tri" if device.type == "cpu" and d >= TRI_WIDTH else "panel"


def fits_full_gram(n: int, item: int, device: torch.device | str = "cpu") -> bool:
    """Whether one ``N x N`` Gram fits the budget (else a large-``N`` strategy runs)."""
    return n * n * item <= _budget(torch.device(device), FULL_GRAM_BYTES)


def _knn_gram(x: Tensor, k: int) -> tuple[Tensor, Tensor]:
    g, n, d = x.shape
    # The block-triangle Gram saves flops but adds a mirroring pass: it wins only where the
    # product is compute-bound (measured at N = 1024, one thread: 1.6 against 0.6 ms at
    # width 7, 2.3 against 1.5 ms at 64, 7.3 against 9.3 ms at 384).
    s = gram(x) if d >= NARROW else torch.matmul(x, x.mT)
    s.diagonal(dim1=-2, dim2=-1).fill_(float("-inf"))
    vals, idx = _panel_topk(s.view(g * n, n), k)
    return idx.view(g, n, k), vals.view(g, n, k)


def _knn_large(x: Tensor, k: int) -> tuple[Tensor, Tensor]:
    if strategy(x.shape[0], x.shape[1], x.element_size(), x.device) == "tri":
        return _knn_tri(x, k)
    return _knn_panel(x, k)


def _knn_panel(x: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """Row panels over all columns: one product and one selection per panel, no merging."""
    n = x.shape[0]
    rows = max(1, min(n, _budget(x.device, PANEL_BYTES) // (n * x.element_size())))
    idx = torch.empty(n, k, dtype=torch.long, device=x.device)
    vals = torch.empty(n, k, dtype=x.dtype, device=x.device)
    buf = torch.empty(rows, n, dtype=x.dtype, device=x.device)
    xt = x.T
    for r0 in range(0, n, rows):
        r1 = min(n, r0 + rows)
        s = buf[: r1 - r0]
        torch.mm(x[r0:r1], xt, out=s)
        s.diagonal(offset=r0).fill_(float("-inf"))
        vals[r0:r1], idx[r0:r1] = _panel_topk(s, k)
    return idx, vals


def _knn_tri(x: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """Lower-triangle row panels: half the products and half the selection of a full search.

    Row block ``J`` is multiplied with columns ``0 .. end(J)`` only. Its rows get their top-k
    over those columns (``low``, whose k-th value is a lower bound of the final one). The rest
    of row ``r``'s columns lie in later blocks, as *column* ``r`` of their panels: there, groups
    of ``GROUP`` rows whose maximum reaches ``r``'s bound are read out, and entries at or above
    it are kept as extra candidates for ``r`` (measured: about ``k N`` of them on random data
    at N = 20,000, merged every ``MERGE_EVERY`` blocks so that later bounds are tighter).
    Nothing outside ``low`` and these candidates can enter ``r``'s top-k.
    """
    n = x.shape[0]
    dev, dt = x.device, x.dtype
    entries = _budget(dev, PANEL_BYTES) // x.element_size()
    least = -(-(2 * k + 2) // GROUP) * GROUP  # the first panel's rows need > k columns
    low_v = torch.empty(n, k, dtype=dt, device=dev)
    low_i = torch.empty(n, k, dtype=torch.long, device=dev)
    buf = torch.empty(max(entries, least * n), dtype=dt, device=dev)
    hit_r, hit_c, hit_v, pending = [], [], [], 0
    r0, panel = 0, 0
    while r0 < n:
        # Panel J is [rows, r0 + rows]: early panels are short, so they take more rows within
        # the same budget (rows * (r0 + rows) <= entries), about half as many panels (and
        # per-panel op costs) as fixed [budget / N]-row panels at N = 20,000.
        rows = int((math.sqrt(r0 * r0 + 4 * entries) - r0) / 2) // GROUP * GROUP
        rows = min(rows, TRI_GROWTH * entries // n)
        r1 = min(n, r0 + max(least, rows))
        b = r1 - r0
        p = buf[: b * r1].view(b, r1)
        torch.mm(x[r0:r1], x[:r1].T, out=p)
        p.diagonal(offset=r0).fill_(float("-inf"))
        low_v[r0:r1], low_i[r0:r1] = _panel_topk(p, k)
        if r0 == 0:
            r0, panel = r1, panel + 1
            continue
        bound = low_v[:r0, -1]  # final k-th values of the earlier rows are at least this
        whole = GROUP * (b // GROUP)
        for g0, g1, size in ((0, whole, GROUP), (whole, b, b - whole)):  # groups, then the rest
            if g1 == g0:
                continue
            q = p[g0:g1, :r0]
            gmax = q.unflatten(0, (-1, size)).amax(dim=1)  # [groups, r0]
            grp, col = (gmax >= bound).nonzero(as_tuple=True)
            if len(grp) == 0:
                continue
            row = (g0 + grp * size).unsqueeze(1) + torch.arange(size, device=dev)  # [h, size]
            v = p[row, col.unsqueeze(1)]
            keep = v >= bound[col].unsqueeze(1)
            h, t = keep.nonzero(as_tuple=True)
            hit_r.append(col[h])
            hit_c.append(r0 + row[h, t])
            hit_v.append(v[h, t])
            pending += len(h)
        last = r1 == n
        # Merge for tighter bounds in later blocks, and before the pending hits outgrow a panel.
        if hit_r and (last or panel % MERGE_EVERY == 0 or pending > MERGE_HITS):
            _merge_hits(low_v, low_i, torch.cat(hit_r), torch.cat(hit_c), torch.cat(hit_v), k, n)
            hit_r, hit_c, hit_v, pending = [], [], [], 0
        r0, panel = r1, panel + 1
    return low_i, low_v


def _merge_hits(run_v: Tensor, run_i: Tensor, target: Tensor, nbr: Tensor, val: Tensor, k: int,
                pad: int) -> None:
    """Merge candidate triples ``(target row, neighbour, value)`` into running lists."""
    order = target.argsort(stable=True)
    target, nbr, val = target[order], nbr[order], val[order]
    rows, counts = torch.unique_consecutive(target, return_counts=True)
    slot = torch.repeat_interleave(torch.arange(len(rows), device=target.device), counts)
    start = torch.cumsum(counts, 0) - counts
    pos = torch.arange(len(target), device=target.device) - start[slot]
    width = int(counts.max())
    pv = torch.full((len(rows), width), float("-inf"), dtype=val.dtype, device=val.device)
    pi = torch.full((len(rows), width), pad, dtype=torch.long, device=val.device)
    pv[slot, pos] = val
    pi[slot, pos] = nbr
    mv, mi = _top_rule(torch.cat([run_v[rows], pv], dim=1), torch.cat([run_i[rows], pi], dim=1), k)
    run_v[rows] = mv
    run_i[rows] = mi


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
    # One buffer, cleared per chunk: a fresh one per chunk would briefly coexist with the last
    # (twice the chunk's memory at the peak).
    whole = torch.empty(ly, rows, n, dtype=torch.bool, device=idx_x.device)
    for r0 in range(0, n, rows):
        r1 = min(n, r0 + rows)
        buf = whole[:, : r1 - r0].zero_()
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
    whole = torch.empty(lx, rows, n, dtype=torch.bool, device=idx_x.device)  # one, reused
    for r0 in range(0, n, rows):
        r1 = min(n, r0 + rows)
        buf = whole[:, : r1 - r0].zero_()
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
