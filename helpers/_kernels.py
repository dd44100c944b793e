"""Gram-matrix plumbing for :mod:`helpers.alignment`: HSIC terms and SVCCA bases.

HSIC of a layer pair only needs the Frobenius inner product of the two Grams plus a few
per-sample sums (Song et al.'s estimator), so each layer's Gram is formed once and all layer
pairs are a handful of ``[Lx, ·] @ [·, Ly]`` GEMMs instead of ``N^3`` products per pair.
Two facts make this cheap and accurate:

* Both estimators are unchanged when the features are centred first (``HKH`` is the Gram of
  centred features, and U-centring removes any ``a 1ᵀ + 1 aᵀ`` term). Centred features give a
  Gram whose rows sum to zero, so the correction terms are small and float32 does not
  cancel large, nearly equal numbers.
* A Gram is symmetric: only its lower block triangle is formed and stored, and a strictly
  lower block counts twice in a Frobenius inner product. With 4 row blocks that is 10/16 of
  the products and memory of full Grams.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

Tensor = torch.Tensor


def block_edges(n: int) -> list[int]:
    """Row-block boundaries: 4 blocks from ``N = 1024`` down to 1 below ``N = 512``."""
    blocks = max(1, min(4, n // 256))
    return [round(i * n / blocks) for i in range(blocks + 1)]


@dataclass
class GramSide:
    """What one model contributes to HSIC, for all its layers.

    Attributes:
        n: samples.
        n_layers: layers.
        device, dtype: where and in what the blocks are computed.
        edges: row-block boundaries (:func:`block_edges`).
        blocks: ``blocks[(i, j)]`` is ``[L, b_i, b_j]``, rows of block ``i`` against columns of
            block ``j <= i``, of each layer's Gram of centred features.
        diag: ``[L, N]`` the Gram's diagonal.
        rows: ``[L, N]`` row sums of the Gram with its diagonal zeroed.
        groups: ``(a, b, x)`` runs of layers ``a..b-1`` and their features ``[G, N, D]`` as
            given (usually views), kept so that a permutation of the samples can rebuild the
            blocks.
    """

    n: int
    n_layers: int
    device: torch.device
    dtype: torch.dtype
    edges: list[int] = field(init=False)
    blocks: dict[tuple[int, int], Tensor] = field(init=False)
    diag: Tensor = field(init=False)
    rows: Tensor = field(init=False)
    groups: list[tuple[int, int, Tensor]] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        e = self.edges = block_edges(self.n)
        kw = dict(device=self.device, dtype=self.dtype)
        self.blocks = {
            (i, j): torch.empty(self.n_layers, e[i + 1] - e[i], e[j + 1] - e[j], **kw)
            for i in range(len(e) - 1)
            for j in range(i + 1)
        }
        self.diag = torch.empty(self.n_layers, self.n, **kw)
        self.rows = torch.empty(self.n_layers, self.n, **kw)

    def add(self, a: int, b: int, x: Tensor) -> None:
        """Fill layers ``a..b-1`` from their features ``x`` ``[b - a, N, D]`` (only read)."""
        e = self.edges
        mean = x.mean(dim=-2, keepdim=True)
        parts = []  # centred row blocks, contiguous; small enough for malloc to reuse across calls
        for i in range(len(e) - 1):
            part = torch.empty(x.shape[0], e[i + 1] - e[i], x.shape[2], device=self.device,
                               dtype=self.dtype)
            parts.append(torch.sub(x[:, e[i]:e[i + 1]], mean, out=part))
        for (i, j), blk in self.blocks.items():
            torch.matmul(parts[i], parts[j].mT, out=blk[a:b])
            if i == j:
                self.diag[a:b, e[i]:e[i + 1]] = blk[a:b].diagonal(dim1=-2, dim2=-1)
        # [G, D, 1], ~0 up to rounding
        total = sum(part.sum(dim=-2) for part in parts).unsqueeze(-1)
        for i, part in enumerate(parts):  # rows = K 1 - diag, exactly, without a pass over K
            torch.sub((part @ total).squeeze(-1), self.diag[a:b, e[i]:e[i + 1]],
                      out=self.rows[a:b, e[i]:e[i + 1]])
        self.groups.append((a, b, x))

    def permuted(self, perm: Tensor) -> "GramSide":
        """The side of ``feats[perm]``: its blocks are rebuilt from the permuted features."""
        out = GramSide(self.n, self.n_layers, self.device, self.dtype)
        for a, b, x in self.groups:
            out.add(a, b, x[:, perm])
        return out


def frobenius_all_pairs(sx: GramSide, sy: GramSide) -> Tensor:
    """``<K_a, L_b>_F`` for every layer pair, ``[Lx, Ly]`` float64, from the block triangles."""
    out = torch.zeros(sx.n_layers, sy.n_layers, dtype=torch.float64, device=sx.device)
    for (i, j), bx in sx.blocks.items():
        weight = 1.0 if i == j else 2.0  # a strictly lower block stands for its mirror too
        out += weight * (bx.flatten(1) @ sy.blocks[(i, j)].flatten(1).T).double()
    return out


def frobenius_self(s: GramSide) -> Tensor:
    """``||K_a||_F^2`` for every layer, ``[L]`` float64, without ``N^2`` temporaries."""
    out = torch.zeros(s.n_layers, dtype=torch.float64, device=s.device)
    for (i, j), blk in s.blocks.items():
        weight = 1.0 if i == j else 2.0
        out += weight * torch.linalg.vector_norm(blk.flatten(1), dim=1).double().square()
    return out


def hsic_pairs(sx: GramSide, sy: GramSide, unbiased: bool) -> Tensor:
    """HSIC of every layer pair, ``[Lx, Ly]`` float64 (see :func:`_song` for the estimator)."""
    frob = frobenius_all_pairs(sx, sy)
    if not unbiased:
        return frob
    dx, rx, dy, ry = sx.diag.double(), sx.rows.double(), sy.diag.double(), sy.rows.double()
    totals = rx.sum(dim=1)[:, None] * ry.sum(dim=1)[None, :]
    return _song(frob, dx @ dy.T, rx @ ry.T, totals, sx.n)


def hsic_self(s: GramSide, unbiased: bool) -> Tensor:
    """HSIC of every layer with itself, ``[L]`` float64."""
    frob = frobenius_self(s)
    if not unbiased:
        return frob
    d, r = s.diag.double(), s.rows.double()
    return _song(frob, (d * d).sum(dim=1), (r * r).sum(dim=1), r.sum(dim=1).square(), s.n)


def _song(frob: Tensor, diag_dot: Tensor, rows_dot: Tensor, totals: Tensor, n: int) -> Tensor:
    """Song et al.'s (2012) unbiased HSIC, the reference's ``hsic_unbiased``.

    ``[tr(K̃ L̃) + 1ᵀK̃1 · 1ᵀL̃1 / ((N-1)(N-2)) - 2 · 1ᵀK̃L̃1 / (N-2)] / (N (N-3))``,
    where ``K̃`` is the Gram with a zeroed diagonal, ``tr(K̃ L̃) = <K, L>_F - diag·diag`` and
    ``1ᵀK̃L̃1 = rows·rows``. The biased estimator ``tr(K H L H)`` is ``<K, L>_F`` itself for
    centred features.
    """
    return ((frob - diag_dot + totals / ((n - 1) * (n - 2)) - 2.0 * rows_dot / (n - 2))
            / (n * (n - 3)))


def svcca_basis(x: Tensor, cca_dim: int, *, name: str = "features",
                first_layer: int = 0) -> Tensor:
    """Orthonormal ``[(G,) N, cca_dim]`` basis of the top singular directions of z-scored ``x``.

    As in the reference: centre each feature and divide by its std + 1e-8, then keep the
    top ``cca_dim`` left singular vectors. We use an exact SVD (deterministic, up to sign,
    which CCA ignores) instead of the randomised ``torch.svd_lowrank``, then re-centre and
    re-orthonormalise so the basis spans centred directions only. ``x``: ``[(G,) N, D]``.

    Raises:
        ValueError: a layer's numerical rank (NumPy's ``matrix_rank`` tolerance) is below
            ``cca_dim``. Its extra singular directions would be arbitrary (a layer and a rotation
            of it would score well below 1), so the message names the layer (``name`` and
            ``first_layer`` + its index in the batch) and its rank.
    """
    z = x - x.mean(dim=-2, keepdim=True)
    z = z / (z.std(dim=-2, keepdim=True) + 1e-8)
    u, s, _ = torch.linalg.svd(z, full_matrices=False)
    tol = s[..., :1] * max(z.shape[-2:]) * torch.finfo(z.dtype).eps
    ranks = (s > tol).sum(dim=-1).reshape(-1)
    if bool((ranks < cca_dim).any()):
        g = int(torch.nonzero(ranks < cca_dim)[0])
        rank = int(ranks[g])
        raise ValueError(
            f"svcca keeps cca_dim = {cca_dim} directions, but {name} layer {first_layer + g} has "
            f"rank {rank} after z-scoring (its features span only {rank} directions, so the rest "
            f"would be arbitrary); pass cca_dim <= {rank} or drop that layer"
        )
    u = u[..., :cca_dim]
    u = u - u.mean(dim=-2, keepdim=True)
    return torch.linalg.qr(u)[0]


def svcca_all_pairs(qx: Tensor, qy: Tensor) -> Tensor:
    """Mean canonical correlation between bases ``qx`` ``[Lx, N, c]`` and ``qy`` ``[Ly, N, c]``.

    For orthonormal, centred bases the canonical correlations are the singular values of
    ``Qxᵀ Qy``; sklearn's iterative CCA in the reference converges to the same values.
    """
    cross = torch.einsum("anc,bnd->abcd", qx, qy)
    return torch.linalg.svdvals(cross).clamp(max=1.0).mean(dim=-1)
