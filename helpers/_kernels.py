"""Gram-matrix plumbing for :mod:`helpers.alignment`: centred Grams and SVCCA bases.

Each layer's Gram is centred once; a layer pair's HSIC is then a Frobenius inner product,
so all pairs are one ``[Lx, N^2] @ [N^2, Ly]`` GEMM instead of ``N^3`` products per pair.
"""

from __future__ import annotations

import torch

from ._knn import gram

Tensor = torch.Tensor


def centred_gram(x: Tensor, unbiased: bool, out: Tensor | None = None) -> Tensor:
    """``H K H`` (biased) or the U-centred ``K`` (unbiased) for ``K = x xᵀ``.

    ``x`` is ``[N, D]`` or a batch of layers ``[G, N, D]``; the result is ``[(G,) N, N]``,
    written into ``out`` when given. With these, ``tr(K H L H) = <HKH, HLH>_F``, and Song
    et al.'s unbiased HSIC equals ``<U(K), U(L)>_F / (N (N - 3))``. ``U`` zeroes the diagonal,
    subtracts row and column sums / (N - 2) and adds the total / ((N - 1)(N - 2)).
    """
    n = x.shape[-2]
    g = gram(x, out=out)
    diag = g.diagonal(dim1=-2, dim2=-1)
    if unbiased:
        diag.zero_()
        r = g.sum(dim=-1, keepdim=True)  # [..., N, 1]; K symmetric, so column sums too
        total = r.sum(dim=-2, keepdim=True)
        g -= r / (n - 2)
        g -= r.mT / (n - 2)
        g += total / ((n - 1) * (n - 2))
        diag.zero_()
    else:
        r = g.mean(dim=-1, keepdim=True)
        g -= r
        g -= r.mT
        g += r.mean(dim=-2, keepdim=True)
    return g


def hsic_all_pairs(gx: Tensor, gy: Tensor) -> Tensor:
    """Frobenius inner products of centred Grams ``gx`` ``[Lx, N, N]``, ``gy`` ``[Ly, N, N]``."""
    return gx.flatten(1) @ gy.flatten(1).T


def permute_grams(g: Tensor, perm: Tensor) -> Tensor:
    """Centred Grams of ``y[perm]``: centring commutes with a permutation of the samples."""
    return g[:, perm][:, :, perm]


def svcca_basis(x: Tensor, cca_dim: int) -> Tensor:
    """Orthonormal ``[(G,) N, cca_dim]`` basis of the top singular directions of z-scored ``x``.

    As in the reference: centre each feature and divide by its std + 1e-8, then keep the
    top ``cca_dim`` left singular vectors. We use an exact SVD (deterministic, up to sign,
    which CCA ignores) instead of the randomised ``torch.svd_lowrank``, then re-centre and
    re-orthonormalise so the basis spans centred directions only. ``x``: ``[(G,) N, D]``.
    """
    z = x - x.mean(dim=-2, keepdim=True)
    z = z / (z.std(dim=-2, keepdim=True) + 1e-8)
    u = torch.linalg.svd(z, full_matrices=False)[0][..., :cca_dim]
    u = u - u.mean(dim=-2, keepdim=True)
    return torch.linalg.qr(u)[0]


def svcca_all_pairs(qx: Tensor, qy: Tensor) -> Tensor:
    """Mean canonical correlation between bases ``qx`` ``[Lx, N, c]`` and ``qy`` ``[Ly, N, c]``.

    For orthonormal, centred bases the canonical correlations are the singular values of
    ``Qxᵀ Qy``; sklearn's iterative CCA in the reference converges to the same values.
    """
    cross = torch.einsum("anc,bnd->abcd", qx, qy)
    return torch.linalg.svdvals(cross).clamp(max=1.0).mean(dim=-1)
