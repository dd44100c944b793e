"""The toy model of superposition (TMS): model, data laws, batched training, k-gons, symmetries.

The model is the tied ReLU autoencoder of Elhage et al. (2022) and Chen et al. (2023),

    f(x) = ReLU(Wᵀ W x + b),    W: [2, 6],  b: [6]   (18 parameters),

with 6 features squeezed through 2 hidden dimensions. Every function here works on a *stack*
of models at once: ``W`` is ``[M, 2, 6]`` and ``b`` is ``[M, 6]``, so a grid of sparsities x
seeds x initialisations trains as one batched computation (gradients are written out by hand,
which is several times faster than autograd for a model this small; a test checks them against
autograd).

Contents:
    sparsities, make_data          the sparsity grid and the two data laws (binary, one-hot
                                   uniform)
    forward, mse, loss_and_grad    the model, its mean-squared error per model, and its gradient
    kgon, init_params              regular k-gons and the reference project's two initialisations
    log_steps, train               full-batch SGD with momentum, snapshots at log-spaced steps
    onehot_population_loss, fit_regular_kgon   exact loss, one-hot uniform law (Chen et al.)
    hull_vertices, classify_kgon   which features form the convex hull; labels like "5", "4+-"
    align, apply_symmetry, interpolation_barrier   O(2) x feature-permutation alignment and LMC
    prune_and_retrain              iterative magnitude pruning with rewinding
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

N_FEATURES = 6
N_HIDDEN = 2
LAWS = ("binary", "onehot_uniform")
INITS = ("4-gon", "6-gon")


# ----------------------------------------------------------------------------- data
def sparsities(count: int = 10, scale: float = 5.0) -> torch.Tensor:
    """The reference grid ``1 - exp(-linspace(0, scale, count))``: ``[count]`` (0, .426, .671,
    ...)."""
    if count < 1:
        raise ValueError(f"Expected count >= 1 sparsity values, but got {count}.")
    return 1.0 - torch.exp(-torch.linspace(0.0, scale, count, dtype=torch.float64))


def make_data(
    n: int,
    sparsity: float | torch.Tensor | None = None,
    law: str = "binary",
    n_features: int = N_FEATURES,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Draw ``n`` inputs ``[n, n_features]`` from one of the two data laws.

    ``"binary"`` (the reference project's ``SyntheticBinaryValued``): each feature is 1 with
    probability ``1 - sparsity``, else 0, independently; ``sparsity`` may hold one value per
    feature (see :func:`powerlaw_sparsity`). ``"onehot_uniform"`` (Chen et al. 2023,
    the high-sparsity limit): exactly one feature, chosen uniformly, is on, with a value drawn
    from U[0, 1]; ``sparsity`` is not used and must be None.
    """
    if law not in LAWS:
        raise ValueError(f"Expected law to be one of {LAWS}, but got {law!r}.")
    if n < 1:
        raise ValueError(f"Expected n >= 1 samples, but got {n}.")
    if law == "binary":
        S = torch.as_tensor(sparsity if sparsity is not None else float("nan"),
                            dtype=torch.float32)
        if (S.dim() > 1 or (S.dim() == 1 and len(S) != n_features)
            or not bool(((S >= 0) & (S <= 1)).all())):
            raise ValueError(
                "The binary law needs a sparsity in [0, 1] (probability a feature is off), or "
                f"one per feature, but got {sparsity}."
            )
        return (torch.rand(n, n_features, generator=generator) >= S).float()
    if sparsity is not None:
        raise ValueError("The onehot_uniform law has exactly one feature on; pass sparsity=None.")
    which = torch.randint(n_features, (n,), generator=generator)
    value = torch.rand(n, generator=generator)
    x = torch.zeros(n, n_features)
    x[torch.arange(n), which] = value
    return x


def powerlaw_sparsity(sparsity: float, alpha: float, n_features: int = N_FEATURES) -> torch.Tensor:
    """Per-feature sparsities ``[n_features]`` whose activation probabilities fall as a power law,
    p_i ∝ (i + 1)^-alpha, with the same mean probability 1 - ``sparsity`` as the uniform law
    (probabilities above 1 are capped, the excess spread over the others). alpha = 0 is uniform.

    Example:
        >>> powerlaw_sparsity(0.5, 0.0).tolist()
        [0.5, 0.5, 0.5, 0.5, 0.5, 0.5]
    """
    if not 0.0 <= sparsity <= 1.0 or alpha < 0:
        raise ValueError(f"Expected sparsity in [0, 1] and alpha >= 0, but got {sparsity} and "
                         f"{alpha}.")
    w = (torch.arange(n_features, dtype=torch.float64) + 1) ** -alpha
    total = (1 - sparsity) * n_features
    p = torch.zeros(n_features, dtype=torch.float64)
    free = torch.ones(n_features, dtype=torch.bool)
    for _ in range(n_features):  # cap at 1 and hand the excess to the uncapped features
        p[free] = (total - p[~free].sum()) * w[free] / w[free].sum()
        over = free & (p > 1)
        if not over.any():
            break
        p[over], free = 1.0, free & ~over
    return (1 - p.clamp(0, 1)).float()


# ----------------------------------------------------------------------------- model
def _check_params(W: torch.Tensor, b: torch.Tensor) -> None:
    if W.dim() != 3 or b.dim() != 2 or W.shape[0] != b.shape[0] or W.shape[2] != b.shape[1]:
        raise ValueError(
            f"Expected a stack of models, W [M, hidden, features] and b [M, features], but got "
            f"W {tuple(W.shape)} and b {tuple(b.shape)}; add a leading model axis with W[None], "
            f"b[None]."
        )


def _batched_x(x: torch.Tensor, M: int) -> torch.Tensor:
    if x.dim() == 2:
        return x.unsqueeze(0).expand(M, *x.shape)
    if x.dim() != 3 or x.shape[0] != M:
        raise ValueError(f"Expected inputs [n, features] or [M={M}, n, features], but got "
                         f"{tuple(x.shape)}.")
    return x


def forward(W: torch.Tensor, b: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``ReLU(x Wᵀ W + b)`` for every model: W ``[M, 2, F]``, b ``[M, F]``, x ``[n, F]`` or ``[M,
    n, F]`` -> ``[M, n, F]``."""
    _check_params(W, b)
    x = _batched_x(x, W.shape[0])
    return torch.relu(torch.matmul(torch.matmul(x, W.transpose(1, 2)), W) + b.unsqueeze(1))


def mse(W: torch.Tensor, b: torch.Tensor, x: torch.Tensor, weights: torch.Tensor | None = None,
        importance: torch.Tensor | None = None) -> torch.Tensor:
    """Mean squared reconstruction error per model (``nn.MSELoss``: mean over samples and
    features): ``[M]``. ``weights`` ``[M, n]`` (rows summing to 1) weight the samples instead,
    e.g. the counts of distinct patterns from :func:`compress_binary`; ``importance`` ``[F]``
    weighs each feature's squared error (Elhage et al.'s I_i; None: all 1)."""
    sq = (forward(W, b, x) - _batched_x(x, W.shape[0])) ** 2
    if importance is not None:
        sq = sq * _check_importance(importance, W.shape[2]).to(sq)
    return sq.mean(dim=(1, 2)) if weights is None else (sq.mean(dim=2) * weights).sum(dim=1)


def _check_importance(importance: torch.Tensor, F: int) -> torch.Tensor:
    imp = torch.as_tensor(importance)
    if imp.shape != (F,) or not bool(torch.isfinite(imp).all() and (imp >= 0).all()):
        raise ValueError(f"Expected importance to be {F} finite non-negative weights, one per "
                         f"feature, but got {imp.tolist()}; pass None for equal importance.")
    return imp


def powerlaw_importance(alpha: float, n_features: int = N_FEATURES) -> torch.Tensor:
    """Feature importances ``[n_features]`` falling as a power law, I_i ∝ (i + 1)^-alpha,
    scaled to mean 1 so the loss stays on the uniform law's scale (alpha = 0: all 1).

    Example:
        >>> [round(v, 3) for v in powerlaw_importance(1.0, 2).tolist()]
        [1.333, 0.667]
    """
    if not alpha >= 0:
        raise ValueError(f"Expected alpha >= 0, but got {alpha}.")
    w = (torch.arange(n_features, dtype=torch.float64) + 1) ** -alpha
    return (w / w.mean()).float()


def compress_binary(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Distinct rows of binary data: with F features there are at most 2^F patterns, so a data
    set of n >> 2^F rows is exactly its pattern counts. Returns the patterns ``[2^F, F]`` (all of
    them, in binary order) and each row's pattern id (``x``'s shape without the feature axis).

    Raises:
        ValueError: ``x`` has entries other than 0 and 1.
    """
    if not bool(((x == 0) | (x == 1)).all()):
        raise ValueError("compress_binary needs 0/1 data; pass binary-law inputs or do not "
                         "compress.")
    F = x.shape[-1]
    powers = 2 ** torch.arange(F, device=x.device)
    ids = (x.long() * powers).sum(-1)
    patterns = ((torch.arange(2**F, device=x.device)[:, None] // powers) % 2).to(x.dtype)
    return patterns, ids


def pattern_weights(ids: torch.Tensor, n_patterns: int) -> torch.Tensor:
    """Weights ``[M, n_patterns]`` (each row sums to 1) from pattern ids ``[M, n]``."""
    counts = torch.zeros(ids.shape[0], n_patterns, device=ids.device)
    counts.scatter_add_(1, ids, torch.ones_like(ids, dtype=counts.dtype))
    return counts / ids.shape[1]


def loss_and_grad(
    W: torch.Tensor, b: torch.Tensor, x: torch.Tensor, need_loss: bool = True,
    weights: torch.Tensor | None = None, importance: torch.Tensor | None = None,
) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor]:
    """Per-model mean-MSE and its exact gradient, by hand (no autograd).

    Args: W ``[M, H, F]``, b ``[M, F]``, x ``[n, F]`` or ``[M, n, F]``; ``need_loss=False`` skips
        the loss; ``weights`` ``[M, n]`` (rows summing to 1) replace the mean over samples;
        ``importance`` ``[F]`` weighs each feature's squared error (as in :func:`mse`).
    Returns: loss ``[M]`` (or None), dL/dW ``[M, H, F]``, dL/db ``[M, F]``.
    """
    _check_params(W, b)
    x = _batched_x(x, W.shape[0])
    h = torch.bmm(x, W.transpose(1, 2))  # [M, n, H]
    z = torch.bmm(h, W).add_(b.unsqueeze(1))  # [M, n, F]
    # relu(z) - x on the active units; dL/dz up to a constant
    err = (z - x).masked_fill_(z <= 0, 0.0)
    loss = None
    if need_loss:
        sq = torch.where(z > 0, err, -x).pow_(2)
        if importance is not None:
            sq = sq * importance.to(sq)
        loss = sq.mean(dim=(1, 2)) if weights is None else (sq.mean(2) * weights).sum(1)
    if importance is not None:
        err = err * _check_importance(importance, W.shape[2]).to(err)
    if weights is None:
        scale = 2.0 / (x.shape[1] * x.shape[2])
    else:
        err = err * weights.unsqueeze(2)
        scale = 2.0 / x.shape[2]
    gb = err.sum(dim=1) * scale
    # z = (x Wᵀ) W: W appears twice, once as the decoder and once inside h
    gW = ((torch.bmm(h.transpose(1, 2), err) + torch.bmm(W, torch.bmm(err.transpose(1, 2), x)))
          * scale)
    return loss, gW, gb


def _should_compress(x: torch.Tensor, compress: bool | None) -> bool:
    if compress is not None:
        return compress
    return x.shape[-2] > 2 ** x.shape[-1] and bool(((x == 0) | (x == 1)).all())


# ----------------------------------------------------------------------------- initialisation
def kgon(k: int, radius: float = 0.9, rotation: float = 0.0,
         n_features: int = N_FEATURES) -> torch.Tensor:
    """A regular k-gon in the first ``k`` columns, zeros after: ``[2, n_features]``."""
    if not 1 <= k <= n_features:
        raise ValueError(f"Expected 1 <= k <= n_features={n_features}, but got k={k}.")
    theta = torch.arange(k, dtype=torch.float64) * (2 * math.pi / k) + rotation
    W = torch.zeros(2, n_features, dtype=torch.float64)
    W[0, :k], W[1, :k] = torch.cos(theta), torch.sin(theta)
    return (W * radius).float()


def init_params(
    n_models: int,
    init: str,
    generator: torch.Generator | None = None,
    radius: float = 0.9,
    noise_std: float = 0.01,
    bias_std: float = 1.0,
    bias_6gon: float = -0.9999,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The reference project's two starting points, one per model: W ``[M, 2, 6]``, b ``[M, 6]``.

    ``"4-gon"``: a radius-0.9 square at a random rotation in features 0-3, features 4-5 at zero,
    plus N(0, noise_std²) on every weight, and b ~ N(0, bias_std²) (config 1.8/1.9).
    ``"6-gon"``: a radius-0.9 hexagon at a random rotation plus the same noise, and every bias at
    -0.9999 (what its ``train.py`` does with ``use_optimal_solution``: only the bias is
    overridden).
    """
    if init not in INITS:
        raise ValueError(f"Expected init to be one of {INITS}, but got {init!r}.")
    k = int(init[0])
    rot = torch.rand(n_models, generator=generator, dtype=torch.float64) * 2 * math.pi
    W = torch.stack([kgon(k, radius, float(r)) for r in rot])
    W = W + noise_std * torch.randn(W.shape, generator=generator)
    if init == "4-gon":
        b = bias_std * torch.randn(n_models, N_FEATURES, generator=generator)
    else:
        b = torch.full((n_models, N_FEATURES), bias_6gon)
    return W, b


# ----------------------------------------------------------------------------- training
def log_steps(steps: int, n_log: int = 50, extra: tuple[int, ...] = ()) -> list[int]:
    """Unique integers among ``n_log`` log-spaced points in [1, steps], plus ``extra``, sorted,
    with 0 first.

    For 20,000 steps and 50 points this is the reference's 46 logged steps (plus step 0).
    """
    if steps < 1:
        raise ValueError(f"Expected steps >= 1, but got {steps}.")
    pts = np.unique(np.logspace(0, np.log10(steps), n_log).astype(int))
    bad = [e for e in extra if not 0 <= e <= steps]
    if bad:
        raise ValueError(f"Extra log steps {bad} lie outside [0, {steps}].")
    return sorted({0, *map(int, pts), *map(int, extra)})


@dataclass
class TrainResult:
    """Snapshots of a batched run. ``steps`` ``[T]``; ``W`` ``[M, T, 2, 6]``; ``b`` ``[M, T, 6]``;
    ``train_loss``/``test_loss`` ``[M, T]`` (mean-MSE at each logged step, test is NaN without a
    test set)."""

    steps: list[int]
    W: torch.Tensor
    b: torch.Tensor
    train_loss: torch.Tensor
    test_loss: torch.Tensor

    def at(self, step: int) -> int:
        """Index of ``step`` among the logged steps."""
        if step not in self.steps:
            raise ValueError(f"Step {step} was not logged; logged steps are {self.steps}.")
        return self.steps.index(step)


def train(
    W0: torch.Tensor,
    b0: torch.Tensor,
    x_train: torch.Tensor,
    steps: int,
    log_at: list[int],
    x_test: torch.Tensor | None = None,
    lr: float = 0.005,
    momentum: float = 0.9,
    mask: torch.Tensor | None = None,
    progress: bool = True,
    compress: bool | None = False,
    importance: torch.Tensor | None = None,
    anchor: tuple[torch.Tensor, torch.Tensor] | None = None,
    pull: float | torch.Tensor = 0.0,
) -> TrainResult:
    """Full-batch SGD with momentum (``torch.optim.SGD`` semantics) on every model at once.

    Args:
        W0, b0: starting points ``[M, 2, F]``, ``[M, F]`` (not modified).
        x_train: ``[n, F]`` shared or ``[M, n, F]`` per model; x_test likewise (optional).
        steps: number of SGD steps; log_at: steps (0..steps) at which to snapshot and evaluate.
        mask: optional 0/1 ``[M, 2, F]``; masked weights are held at zero (for pruning).
        compress: train on the pattern counts of binary data (:func:`compress_binary`), the same
            loss and gradient at a fraction of the cost (equal up to float rounding); None does so
            when the data are binary and have more rows than patterns.
        importance: ``[F]`` per-feature weights of the squared error (:func:`mse`); None: all 1.
        anchor, pull: optional target weights (W ``[M, 2, F]``, b ``[M, F]``) and a strength
            κ (a float or ``[M]``): the objective gains (κ / 2) ||θ - θ_anchor||², an L2 pull
            towards the anchor (the logged losses stay the data loss).
    """
    _check_params(W0, b0)
    M = W0.shape[0]
    if anchor is not None:
        _check_params(*anchor)
        kappa = torch.as_tensor(pull, dtype=W0.dtype, device=W0.device).expand(M)
        if anchor[0].shape != W0.shape or not bool((kappa >= 0).all()):
            raise ValueError(f"Expected an anchor shaped like W0 {tuple(W0.shape)} and pull >= 0, "
                             f"but got {tuple(anchor[0].shape)} and min pull "
                             f"{kappa.min().item()}.")
    wtr = wte = None
    if _should_compress(x_train, compress):
        patterns, ids = compress_binary(_batched_x(x_train, M))
        x_train, wtr = patterns, pattern_weights(ids, len(patterns))
        if x_test is not None:
            p2, ids2 = compress_binary(_batched_x(x_test, M))
            x_test, wte = p2, pattern_weights(ids2, len(p2))
    if any(not 0 <= s <= steps for s in log_at):
        raise ValueError(f"log_at must lie in [0, steps={steps}], but got {sorted(log_at)}.")
    W, b = W0.clone(), b0.clone()
    if mask is not None:
        W = W * mask
    vW, vb = torch.zeros_like(W), torch.zeros_like(b)
    log_set = sorted(set(log_at))
    Ws, bs, tr, te = [], [], [], []

    def snap():
        Ws.append(W.clone())
        bs.append(b.clone())
        tr.append(mse(W, b, x_train, wtr, importance))
        te.append(mse(W, b, x_test, wte, importance) if x_test is not None
                  else torch.full((W.shape[0],), float("nan")))

    if 0 in log_set:
        snap()
    with torch.no_grad():
        for step in tqdm(range(1, steps + 1), desc="train", disable=not progress, mininterval=15):
            _, gW, gb = loss_and_grad(W, b, x_train, need_loss=False, weights=wtr,
                                      importance=importance)
            if anchor is not None:
                gW = gW + kappa[:, None, None] * (W - anchor[0])
                gb = gb + kappa[:, None] * (b - anchor[1])
            if mask is not None:
                gW = gW * mask
            # torch.optim.SGD: v <- mu v + g (plain g on the first step, v starts at 0), p <- p -
            # lr v
            vW.mul_(momentum).add_(gW)
            vb.mul_(momentum).add_(gb)
            W.sub_(lr * vW)
            b.sub_(lr * vb)
            if step in log_set:
                snap()
    return TrainResult(log_set, torch.stack(Ws, 1), torch.stack(bs, 1), torch.stack(tr, 1),
                       torch.stack(te, 1))


# ---------------------------------------------------------------------- exact loss, one-hot law
def onehot_population_loss(W: torch.Tensor, b: torch.Tensor, n_grid: int = 2000) -> torch.Tensor:
    """Exact mean-MSE under the one-hot uniform law, by midpoint quadrature over the value:
    ``[M]``.

    E over feature i ~ U{1..F} and value μ ~ U[0, 1] of mean_j (ReLU(μ (WᵀW)_ji + b_j) - μ δ_ij)².
    Multiply by F to get Chen et al.'s loss (summed over coordinates).
    """
    _check_params(W, b)
    F = W.shape[2]
    mu = (torch.arange(n_grid, dtype=W.dtype) + 0.5) / n_grid
    # inputs: every feature at every grid value, [F * n_grid, F]; the law weights them equally
    x = (torch.eye(F, dtype=W.dtype)[:, None, :] * mu[None, :, None]).reshape(F * n_grid, F)
    return mse(W, b, x)


def fit_regular_kgon(k: int, dead_bias: float = -1.0,
                     iters: int = 300) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Best regular k-gon (radius l, shared bias b on its features) under the one-hot uniform law.

    Features k..5 are dead: zero column and bias ``dead_bias`` (< 0 keeps their ReLU off).
    Returns W ``[2, 6]``, b ``[6]`` (float32) and the exact mean-MSE at the optimum.
    """
    if dead_bias >= 0 and k < N_FEATURES:
        raise ValueError(f"dead_bias must be negative so the dead features stay off, but got "
                         f"{dead_bias}.")
    base = kgon(k, 1.0).double()
    params = torch.tensor([1.0, -0.3], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([params], lr=0.5, max_iter=iters, line_search_fn="strong_wolfe")

    def build(p):
        bias = torch.full((N_FEATURES,), dead_bias, dtype=torch.float64)
        bias = torch.cat([p[1].expand(k), bias[k:]])
        return (base * p[0])[None], bias[None]

    def closure():
        opt.zero_grad()
        loss = onehot_population_loss(*build(params), n_grid=4000).sum()
        loss.backward()
        return loss

    opt.step(closure)
    W, b = build(params.detach())
    return W[0].float(), b[0].float(), float(onehot_population_loss(W, b, n_grid=4000))


# ----------------------------------------------------------------------------- k-gons
def hull_vertices(points: np.ndarray, min_norm: float = 0.1) -> list[int]:
    """Indices of the columns that are corners of the convex hull of the (non-tiny) points.

    points ``[F, 2]``; points with norm below ``min_norm`` are ignored; collinear points on an
    edge are not corners. Andrew's monotone chain, so degenerate cases (1-2 points, a line) work.
    """
    idx = [i for i in range(len(points)) if np.linalg.norm(points[i]) >= min_norm]
    if len(idx) <= 2:
        return sorted(idx)
    order = sorted(idx, key=lambda i: (points[i][0], points[i][1]))

    def cross(o, a, c):
        return (points[a][0] - points[o][0]) * (points[c][1] - points[o][1]) - (
            points[a][1] - points[o][1]
        ) * (points[c][0] - points[o][0])

    def half(seq):
        out: list[int] = []
        for i in seq:
            while len(out) >= 2 and cross(out[-2], out[-1], i) <= 1e-9:
                out.pop()
            out.append(i)
        return out

    lower, upper = half(order), half(order[::-1])
    return sorted(set(lower[:-1] + upper[:-1]))


def classify_kgon(W: torch.Tensor, b: torch.Tensor, min_norm: float = 0.1) -> str:
    """Label one model by its polygon: ``"k"`` plus one ``+``/``-`` per non-corner feature, by its
    bias sign.

    W ``[2, F]``, b ``[F]``. E.g. a hexagon is ``"6"``; a pentagon whose sixth feature has a
    negative (dead) bias is ``"5-"``; a square with two features inside, biases + and -, ``"4+-"``
    (Chen et al.'s 4⁺⁻ notation). A single model; use a loop or list comprehension for stacks.
    """
    if W.dim() != 2 or b.dim() != 1:
        raise ValueError(f"Expected one model, W [2, F] and b [F], but got {tuple(W.shape)} and "
                         f"{tuple(b.shape)}.")
    corners = hull_vertices(W.detach().double().T.cpu().numpy(), min_norm)
    rest = [i for i in range(W.shape[1]) if i not in corners]
    signs = sorted(("+" if float(b[i]) > 0 else "-") for i in rest)  # "+" sorts before "-"
    return f"{len(corners)}" + "".join(signs)


# ----------------------------------------------------------------------------- symmetries, LMC
_PERMS: dict[int, torch.Tensor] = {}


def _all_perms(F: int) -> torch.Tensor:
    if F not in _PERMS:
        _PERMS[F] = torch.tensor(list(itertools.permutations(range(F))))
    return _PERMS[F]


def apply_symmetry(W: torch.Tensor, b: torch.Tensor, R: torch.Tensor,
                   perm: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(R W[:, perm], b[perm])`` for stacks W ``[M, 2, F]``, b ``[M, F]``, R ``[M, 2, 2]``, perm
    ``[M, F]``.

    R orthogonal keeps WᵀW; relabelling features moves W's columns *and* b together with the same
    permutation (inputs and outputs are the same features), so for exchangeable features the
    loss is unchanged.
    """
    _check_params(W, b)
    idx = perm.unsqueeze(1).expand(-1, W.shape[1], -1)
    return torch.matmul(R, torch.gather(W, 2, idx)), torch.gather(b, 1, perm)


def align(
    Wa: torch.Tensor, ba: torch.Tensor, Wb: torch.Tensor, bb: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Best symmetry taking model B onto model A, for each pair in the stacks.

    Searches all F! feature permutations; for each, the best orthogonal R (rotation or reflection)
    is the closed-form Procrustes solution R = U Vᵀ from the SVD of W_A (W_B P)ᵀ. The cost is
    ||R W_B P - W_A||² + ||b_B P - b_A||².
    Args: stacks ``[M, 2, F]``, ``[M, F]``. Returns R ``[M, 2, 2]``, perm ``[M, F]``, cost ``[M]``.
    """
    _check_params(Wa, ba)
    _check_params(Wb, bb)
    if Wa.shape != Wb.shape:
        raise ValueError(f"Expected two stacks of the same shape, but got {tuple(Wa.shape)} and "
                         f"{tuple(Wb.shape)}.")
    M, H, F = Wa.shape
    perms = _all_perms(F).to(Wa.device)  # [P, F]
    Wp = Wb[:, :, perms].permute(0, 2, 1, 3)  # [M, P, H, F]
    bp = bb[:, perms]  # [M, P, F]
    C = torch.matmul(Wa.unsqueeze(1).double(), Wp.double().transpose(-1, -2))  # [M, P, H, H]
    U, _, Vh = torch.linalg.svd(C)
    R = torch.matmul(U, Vh)  # maximises tr(Rᵀ C)
    resid = torch.matmul(R, Wp.double()) - Wa.unsqueeze(1).double()
    cost = (resid**2).sum(dim=(-1, -2)) + ((bp.double() - ba.unsqueeze(1).double()) ** 2).sum(-1)
    best = cost.argmin(dim=1)
    ar = torch.arange(M, device=Wa.device)
    return R[ar, best].to(Wa.dtype), perms[best], cost[ar, best].to(Wa.dtype)


def interpolation_barrier(
    Wa: torch.Tensor, ba: torch.Tensor, Wb: torch.Tensor, bb: torch.Tensor, x: torch.Tensor,
    n_alpha: int = 21
) -> tuple[torch.Tensor, torch.Tensor]:
    """Loss barrier on the straight path between models A and B, pair by pair.

    Returns barrier ``[M]`` = max over α of L((1-α)θ_A + αθ_B) - ((1-α)L_A + αL_B), and the path
    losses ``[M, n_alpha]`` (α = linspace(0, 1, n_alpha)). x ``[n, F]`` or ``[M, n, F]``.
    """
    _check_params(Wa, ba)
    alphas = torch.linspace(0, 1, n_alpha, dtype=Wa.dtype, device=Wa.device)
    path = torch.stack([mse((1 - a) * Wa + a * Wb, (1 - a) * ba + a * bb, x) for a in alphas], 1)
    chord = (1 - alphas)[None] * path[:, :1] + alphas[None] * path[:, -1:]
    return (path - chord).max(dim=1).values, path


# ----------------------------------------------------------------------------- pruning
@dataclass
class PruneResult:
    """Iterative magnitude pruning with rewinding, per round r = 0 (dense) .. rounds.

    ``n_weights`` ``[R+1]`` weights kept; ``masks`` ``[R+1, M, 2, F]``; ``W``/``b`` final weights
    ``[R+1, M, 2, F]`` / ``[R+1, M, F]``; ``loss`` ``[R+1, M]`` final train mean-MSE."""

    n_weights: list[int]
    masks: torch.Tensor
    W: torch.Tensor
    b: torch.Tensor
    loss: torch.Tensor


def prune_and_retrain(
    W_rewind: torch.Tensor,
    b_rewind: torch.Tensor,
    W_final: torch.Tensor,
    b_final: torch.Tensor,
    x_train: torch.Tensor,
    steps: int,
    rounds: int = 4,
    per_round: int = 2,
    lr: float = 0.005,
    momentum: float = 0.9,
    progress: bool = True,
    compress: bool | None = False,
) -> PruneResult:
    """Prune the ``per_round`` smallest surviving |W| entries of each model, rewind, retrain;
    repeat.

    Biases are never pruned. Rewind point (``W_rewind``, ``b_rewind``, ``[M, 2, F]``/``[M, F]``)
    is an early checkpoint of the same run; each round retrains ``steps`` steps under the mask.
    """
    _check_params(W_final, b_final)
    n_total = W_final[0].numel()
    if rounds * per_round >= n_total:
        raise ValueError(f"rounds * per_round = {rounds * per_round} would prune all {n_total} "
                         f"weights; lower one.")
    mask = torch.ones_like(W_final)
    Ws, bs, masks, losses, kept = ([W_final], [b_final], [mask.clone()],
                                   [mse(W_final, b_final, x_train)], [n_total])
    W_cur = W_final
    for r in range(rounds):
        # +1 keeps already-pruned (score 0) below every survivor
        score = (W_cur.abs() + 1.0) * mask
        flat = score.flatten(1)
        drop = flat.argsort(dim=1)[:, : (r + 1) * per_round]
        mask = torch.ones_like(flat).scatter_(1, drop, 0.0).view_as(W_final)
        res = train(W_rewind, b_rewind, x_train, steps, [steps], lr=lr, momentum=momentum,
                    mask=mask,
                    progress=progress, compress=compress)
        W_cur, b_cur = res.W[:, -1], res.b[:, -1]
        Ws.append(W_cur)
        bs.append(b_cur)
        masks.append(mask.clone())
        losses.append(res.train_loss[:, -1])
        kept.append(n_total - (r + 1) * per_round)
    return PruneResult(kept, torch.stack(masks), torch.stack(Ws), torch.stack(bs),
                       torch.stack(losses))


# ----------------------------------------------------------------------------- drawing
def draw_model(ax_poly, ax_bars, W: torch.Tensor, b: torch.Tensor, lim: float = 1.8) -> list:
    """Draw one model: W's columns as arrows with their convex hull (dashed) on ``ax_poly``, and
    |b| (green: b > 0, red: b < 0) next to each column's norm (black) on ``ax_bars``. W ``[2, F]``,
    b ``[F]``. Returns the artists drawn (for animations)."""
    import matplotlib.pyplot as plt

    pts = W.detach().double().T.cpu().numpy()
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    artists = []
    for i, (u, v) in enumerate(pts):
        artists.append(ax_poly.annotate("", (u, v), (0, 0),
                                        arrowprops=dict(arrowstyle="->",
                                                        color=colors[i % len(colors)], lw=1.5)))
    corners = hull_vertices(pts)
    if len(corners) >= 2:
        ang = np.arctan2(pts[corners, 1], pts[corners, 0])
        ring = [corners[i] for i in np.argsort(ang)]
        ring = ring + ring[:1]
        artists += ax_poly.plot(pts[ring, 0], pts[ring, 1], "k--", lw=0.8)
    ax_poly.set_xlim(-lim, lim)
    ax_poly.set_ylim(-lim, lim)
    ax_poly.set_aspect("equal")
    F = W.shape[1]
    bias = b.detach().cpu().numpy()
    artists += list(ax_bars.bar(np.arange(F) - 0.2, np.abs(bias), 0.4,
                                color=["#009E73" if v > 0 else "#D55E00" for v in bias]))
    artists += list(ax_bars.bar(np.arange(F) + 0.2, np.linalg.norm(pts, axis=1), 0.4, color="k"))
    ax_bars.set_xticks(range(F))
    return artists


def animate_run(
    steps: list[int], W: torch.Tensor, b: torch.Tensor, loss: torch.Tensor, title: str = "",
    frames: int = 36, figsize=(6.0, 3.4)
):
    """A small ``FuncAnimation`` of one run: polygon, bias/norm bars and the loss curve up to each
    snapshot.

    steps ``[T]`` logged steps, W ``[T, 2, F]``, b ``[T, F]``, loss ``[T]``; at most ``frames``
    snapshots, evenly spaced over the logged (log-spaced) steps.
    """
    import matplotlib.pyplot as plt
    from matplotlib.animation import FuncAnimation

    T = len(steps)
    pick = sorted(set(np.linspace(0, T - 1, min(frames, T)).round().astype(int).tolist()))
    fig = plt.figure(figsize=figsize, constrained_layout=True)
    grid = fig.add_gridspec(2, 2, width_ratios=[1, 1.3])
    ax_poly, ax_bars, ax_loss = (fig.add_subplot(grid[:, 0]), fig.add_subplot(grid[0, 1]),
                                 fig.add_subplot(grid[1, 1]))
    x_steps = np.maximum(np.asarray(steps), 1)
    top = float(max(torch.linalg.norm(W, dim=1).max(), b.abs().max())) * 1.1

    def frame(k):
        t = pick[k]
        for ax in (ax_poly, ax_bars, ax_loss):
            ax.clear()
        draw_model(ax_poly, ax_bars, W[t], b[t])
        ax_poly.set_title(f"step {steps[t]}: {classify_kgon(W[t], b[t])}", fontsize=9)
        ax_bars.set_ylim(0, top)
        ax_bars.set_ylabel("|b| (colour: sign), ‖W_i‖ (black)", fontsize=7)
        ax_bars.set_xlabel("feature", fontsize=7)
        ax_loss.loglog(x_steps, loss.numpy(), color="#BBBBBB", lw=1)
        ax_loss.loglog(x_steps[: t + 1], loss[: t + 1].numpy(), color="k", lw=1.5)
        ax_loss.set_xlabel("training step", fontsize=7)
        ax_loss.set_ylabel("train loss (MSE)", fontsize=7)
        fig.suptitle(title, fontsize=9)
        return []

    anim = FuncAnimation(fig, frame, frames=len(pick), interval=250, blit=False)
    return fig, anim


# ----------------------------------------------------------------------------- curvature, features
def hessian(W: torch.Tensor, b: torch.Tensor, x: torch.Tensor, step: float = 1e-3,
            weights: torch.Tensor | None = None,
            importance: torch.Tensor | None = None) -> torch.Tensor:
    """Hessian of the mean-MSE on ``x`` (optionally ``weights`` ``[M, n]``, as in
    :func:`loss_and_grad`) in all 3F parameters (W row-major, then b), per model:
    ``[M, 3F, 3F]``, by central differences of the exact gradient, in float64.

    Differencing the gradient (rather than autograd's second derivative) also sees curvature
    that comes from ReLUs switching on inside the data, e.g. under the one-hot uniform law.
    """
    _check_params(W, b)
    M, H, F = W.shape
    W, b, x = W.double(), b.double(), x.double()
    weights = None if weights is None else weights.double()
    P = H * F + F
    rows = []
    for k in range(P):
        e = torch.zeros(P, dtype=torch.float64, device=W.device)
        e[k] = step
        eW, eb = e[: H * F].view(H, F), e[H * F :]
        _, gWp, gbp = loss_and_grad(W + eW, b + eb, x, False, weights, importance)
        _, gWm, gbm = loss_and_grad(W - eW, b - eb, x, False, weights, importance)
        rows.append(torch.cat([(gWp - gWm).flatten(1), gbp - gbm], 1) / (2 * step))
    Hm = torch.stack(rows, 1)
    return 0.5 * (Hm + Hm.transpose(1, 2))


def hessian_rank(H: torch.Tensor, rel_tol: float = 1e-3) -> tuple[torch.Tensor, torch.Tensor,
                                                                  torch.Tensor]:
    """Rank of each Hessian ``[M, P, P]`` (eigenvalues above ``rel_tol`` x the largest) and its
    smallest eigenvalue (negative: a saddle, not a minimum). Returns rank ``[M]``, min eig
    ``[M]`` and all eigenvalues ``[M, P]`` (ascending). rank / 2 is the learning coefficient of a
    minimum whose flat directions are exactly flat (minimally singular), a lower bound
    otherwise."""
    ev = torch.linalg.eigvalsh(H)
    top = ev.abs().max(dim=1, keepdim=True).values.clamp_min(1e-300)
    return (ev > rel_tol * top).sum(1), ev[:, 0], ev


def feature_dimensionality(W: torch.Tensor, min_norm: float = 0.5) -> torch.Tensor:
    """Elhage et al.'s dimensions per feature, D_i = |W_i|² / Σ_j (Ŵ_i · W_j)², per column:
    ``[M, F]``; NaN for features not represented (norm below ``min_norm``). D = 1 for a feature
    with a direction to itself, 1/3 on a regular hexagon (its neighbours and its antipode
    interfere), 2/k on a regular k-gon."""
    if W.dim() != 3:
        raise ValueError(f"Expected a stack W [M, hidden, features], but got {tuple(W.shape)}.")
    Wd = W.double()
    norms = Wd.norm(dim=1)  # [M, F]
    unit = Wd / norms.clamp_min(1e-12)[:, None, :]
    proj = torch.matmul(unit.transpose(1, 2), Wd)  # [M, F, F]: Ŵ_i · W_j
    rep = norms >= min_norm
    proj = proj * rep[:, None, :]  # only represented features interfere
    D = norms**2 / proj.pow(2).sum(-1).clamp_min(1e-12)
    return torch.where(rep, D, torch.full_like(D, float("nan"))).to(W.dtype)
