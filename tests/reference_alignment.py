"""Straightforward per-pair reference for ``helpers.alignment``, written from the PRH notes.

Each function recomputes everything for one pair the way ``platonic-rep``'s ``metrics.py``
does: dense ``N x N`` Grams, full ``argsort`` neighbour lists, dense 0/1 masks, ``N^3``
HSIC products and Python dynamic programs. It is slow on purpose. The tests use it as the
oracle, and the benchmark uses it as the baseline. Two outputs follow our documented
conventions instead of the reference's: ``lcs_knn`` is divided by ``topk``, and ``svcca``
uses an exact SVD (sklearn's iterative CCA is kept), so it is deterministic.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def nearest_neighbors(feats: torch.Tensor, topk: int) -> torch.Tensor:
    """``[N, topk]`` neighbours by inner product; self pushed last with -1e8; full argsort."""
    sims = (feats @ feats.T).fill_diagonal_(-1e8)
    return sims.argsort(dim=1, descending=True)[:, :topk]


def _mask(knn: torch.Tensor, n: int, dtype: torch.dtype) -> torch.Tensor:
    m = torch.zeros(n, n, dtype=dtype)
    m[torch.arange(n).unsqueeze(1), knn] = 1.0
    return m


def mutual_knn(a, b, topk):
    ka, kb = nearest_neighbors(a, topk), nearest_neighbors(b, topk)
    n = a.shape[0]
    return ((_mask(ka, n, a.dtype) * _mask(kb, n, a.dtype)).sum(dim=1) / topk).mean().item()


def cycle_knn(a, b, topk):
    ka, kb = nearest_neighbors(a, topk), nearest_neighbors(b, topk)
    n = a.shape[0]
    hops = ka[kb]  # [N, k, k]: neighbours (in A) of each neighbour (in B) of i
    hit = hops == torch.arange(n).view(-1, 1, 1)
    return hit.to(a.dtype).view(n, -1).max(dim=1).values.mean().item()


def _lcs(x, y):
    dp = [[0] * (len(y) + 1) for _ in range(len(x) + 1)]
    for i in range(1, len(x) + 1):
        for j in range(1, len(y) + 1):
            dp[i][j] = (dp[i - 1][j - 1] + 1 if x[i - 1] == y[j - 1]
                        else max(dp[i - 1][j], dp[i][j - 1]))
    return dp[-1][-1]


def _levenshtein(x, y):
    prev = list(range(len(y) + 1))
    for i in range(1, len(x) + 1):
        cur = [i] + [0] * len(y)
        for j in range(1, len(y) + 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x[i - 1] != y[j - 1]))
        prev = cur
    return prev[-1]


def lcs_knn(a, b, topk):
    ka, kb = nearest_neighbors(a, topk).tolist(), nearest_neighbors(b, topk).tolist()
    return float(np.mean([_lcs(x, y) for x, y in zip(ka, kb)])) / topk  # our /k convention


def edit_distance_knn(a, b, topk):
    ka, kb = nearest_neighbors(a, topk).tolist(), nearest_neighbors(b, topk).tolist()
    return 1.0 - float(np.mean([_levenshtein(x, y) for x, y in zip(ka, kb)])) / topk


def hsic_unbiased(K, L):
    m = K.shape[0]
    Kt = K.clone().fill_diagonal_(0)
    Lt = L.clone().fill_diagonal_(0)
    value = (
        torch.sum(Kt * Lt.T)
        + torch.sum(Kt) * torch.sum(Lt) / ((m - 1) * (m - 2))
        - 2 * torch.sum(Kt @ Lt) / (m - 2)
    )
    return value / (m * (m - 3))


def hsic_biased(K, L):
    H = torch.eye(K.shape[0], dtype=K.dtype) - 1 / K.shape[0]
    return torch.trace(K @ H @ L @ H)


def cka(a, b, unbiased=False):
    K, L = a @ a.T, b @ b.T
    fn = hsic_unbiased if unbiased else hsic_biased
    return (fn(K, L) / (torch.sqrt(fn(K, K) * fn(L, L)) + 1e-6)).item()


def unbiased_cka(a, b):
    return cka(a, b, unbiased=True)


def cknna(a, b, topk):
    n = a.shape[0]
    K, L = a @ a.T, b @ b.T

    def sim(K, L):
        Kh = K.clone().fill_diagonal_(float("-inf"))
        Lh = L.clone().fill_diagonal_(float("-inf"))
        mk = torch.zeros(n, n, dtype=K.dtype).scatter_(1, torch.topk(Kh, topk, dim=1)[1], 1)
        ml = torch.zeros(n, n, dtype=K.dtype).scatter_(1, torch.topk(Lh, topk, dim=1)[1], 1)
        mask = mk * ml  # not symmetrised, as in the reference
        return hsic_unbiased(mask * K, mask * L)

    return sim(K, L).item() / (torch.sqrt(sim(K, K) * sim(L, L)) + 1e-6).item()


def svcca(a, b, cca_dim=10):
    from sklearn.cross_decomposition import CCA

    def basis(x):
        x = x - x.mean(dim=0)
        x = x / (x.std(dim=0) + 1e-8)
        return torch.linalg.svd(x, full_matrices=False)[0][:, :cca_dim].double().numpy()

    u1, u2 = basis(a), basis(b)
    cca = CCA(n_components=cca_dim, max_iter=5000, tol=1e-12)
    cca.fit(u1, u2)
    c1, c2 = cca.transform(u1, u2)
    return float(np.mean([np.corrcoef(c1[:, i], c2[:, i])[0, 1] for i in range(cca_dim)]))


def score(a, b, metric, topk=10):
    if metric in ("cka", "unbiased_cka", "svcca"):
        return globals()[metric](a, b)
    return globals()[metric](a, b, topk)


def layer_scores(xs, ys, metric, topk=10, pairs=None):
    """Per-pair loop over ``[N, L, D]`` tensors or lists; ``pairs`` limits it to some (i, j)."""
    xl = list(xs) if isinstance(xs, (list, tuple)) else [xs[:, i] for i in range(xs.shape[1])]
    yl = list(ys) if isinstance(ys, (list, tuple)) else [ys[:, j] for j in range(ys.shape[1])]
    out = torch.full((len(xl), len(yl)), float("nan"), dtype=torch.float64)
    for i, j in pairs or [(i, j) for i in range(len(xl)) for j in range(len(yl))]:
        out[i, j] = score(xl[i], yl[j], metric, topk)
    return out


def prepare(feats, q=0.95):
    """Per-sample ``torch.quantile`` of |x| averaged over samples, clamp, then L2 per layer."""
    if isinstance(feats, (list, tuple)):
        flat = torch.cat([f.float().flatten(1) for f in feats], dim=1)
        t = torch.quantile(flat.abs(), q, dim=1).mean()
        return [F.normalize(f.float().clamp(-t, t), dim=-1) for f in feats]
    f = feats.float()
    t = torch.quantile(f.abs().flatten(1), q, dim=1).mean()
    return F.normalize(f.clamp(-t, t), dim=-1)
