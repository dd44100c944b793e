"""Local learning coefficient (LLC) by SGLD, batched over models and chains, for the TMS model.

Reimplements devinterp 1.3.2's estimator (``estimate_learning_coeff_with_summary`` with its
``SGLD`` sampler) for the stacked models of :mod:`helpers.tms.model`, so hundreds of models x
chains sample in one tensor computation. Per chain, starting at the trained weights w*,

    w <- w - (ε/2) (nβ ∇L_batch(w) + γ (w - w*)) + sqrt(ε) N(0, 1),

where L_batch is the mean-MSE on a minibatch (each chain runs through a fresh permutation of the
data every epoch, like a shuffled ``DataLoader``). The loss of each step is taken *before* its
update, as devinterp does; after ``num_burnin_steps`` steps, ``num_draws`` draws are kept, and

    λ̂_chain = nβ (mean draw loss - L(w*)),    λ̂ = mean over chains.

``init_loss`` L(w*) is the full-data loss (devinterp averages the first ``num_chains`` batches;
they coincide at full batch). A test checks the estimates against devinterp 1.3.2.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from helpers.tms import model as tms


def default_nbeta(n: int) -> float:
    """devinterp's default inverse temperature ``n / ln n`` for batch size (or sample size)
    ``n``."""
    if n <= 1:
        raise ValueError(f"default_nbeta needs n > 1, but got {n}.")
    return n / math.log(n)


@dataclass
class LLCResult:
    """Estimates for M models with C chains. ``llc_mean``/``llc_std`` ``[M]`` (mean and std over
    chains); ``llc_per_chain`` ``[M, C]``; ``loss_trace`` ``[M, C, burnin + draws]`` (minibatch
    loss at every step, burn-in included); ``init_loss`` ``[M]``; ``nbeta`` ``[M]``;
    ``num_burnin_steps``."""

    llc_mean: torch.Tensor
    llc_std: torch.Tensor
    llc_per_chain: torch.Tensor
    loss_trace: torch.Tensor
    init_loss: torch.Tensor
    nbeta: torch.Tensor
    num_burnin_steps: int

    def llc_trace(self) -> torch.Tensor:
        """Running LLC after each draw, like devinterp's online ``llc/trace``:
        ``[M, C, draws]``."""
        draws = self.loss_trace[:, :, self.num_burnin_steps :]
        running = draws.cumsum(-1) / torch.arange(1, draws.shape[-1] + 1, device=draws.device)
        return self.nbeta[:, None, None] * (running - self.init_loss[:, None, None])


def _per_model(value: float | torch.Tensor, M: int, name: str) -> torch.Tensor:
    v = torch.as_tensor(value, dtype=torch.float32).flatten()
    if v.numel() == 1:
        v = v.expand(M)
    if v.numel() != M:
        raise ValueError(f"Expected {name} to be a float or a tensor of length M={M}, but got "
                         f"{v.numel()} values.")
    if (v <= 0).any():
        raise ValueError(f"Expected {name} > 0, but got {v.min().item()}.")
    return v.clone()


def estimate_llc(
    W: torch.Tensor,
    b: torch.Tensor,
    x: torch.Tensor,
    *,
    lr: float | torch.Tensor,
    nbeta: float | torch.Tensor,
    localization: float = 1.0,
    num_chains: int = 4,
    num_draws: int = 200,
    num_burnin_steps: int = 0,
    batch_size: int | None = None,
    init_loss: torch.Tensor | None = None,
    seed: int = 0,
    progress: bool = True,
    on_divergence: str = "raise",
    compress: bool | None = False,
    importance: torch.Tensor | None = None,
) -> LLCResult:
    """SGLD estimate of the LLC of every model in a stack, all chains at once.

    Args:
        W, b: trained models ``[M, 2, F]``, ``[M, F]`` (not modified).
        x: data ``[n, F]`` (shared) or ``[M, n, F]`` (one set per model); the targets are x.
        lr: step size ε, a float or ``[M]`` (one per model, e.g. for a hyperparameter sweep).
        nbeta: inverse temperature nβ, a float or ``[M]``; devinterp's default is
            :func:`default_nbeta` of the batch size.
        localization: γ, the pull back towards the trained weights.
        num_chains, num_draws, num_burnin_steps: chains per model, kept draws, discarded steps.
        batch_size: minibatch size (None: full batch).
        init_loss: ``[M]`` loss at the trained weights; None computes it on all of x.
        seed: seeds the noise and the minibatch order.
        on_divergence: ``"raise"`` (a ValueError naming the models) or ``"nan"``: a chain whose
            loss stops being finite is frozen and its model's estimate is NaN (for sweeps that
            probe where a setting breaks).
        compress: evaluate each minibatch as counts of binary patterns (the same minibatches and
            losses up to float rounding, far cheaper for binary data); None does so when x is
            binary with more rows than patterns.
        importance: ``[F]`` per-feature weights of the squared error
            (:func:`helpers.tms.model.mse`); None: all 1.
    Returns: :class:`LLCResult`.
    """
    tms._check_params(W, b)
    M, H, F = W.shape
    x = tms._batched_x(x, M)
    n = x.shape[1]
    bs = n if batch_size is None else int(batch_size)
    if not 1 <= bs <= n:
        raise ValueError(f"Expected 1 <= batch_size <= n={n}, but got {batch_size}.")
    if num_chains < 1 or num_draws < 1 or num_burnin_steps < 0:
        raise ValueError(
            f"Expected num_chains >= 1, num_draws >= 1, num_burnin_steps >= 0, but got "
            f"{num_chains}, {num_draws}, {num_burnin_steps}."
        )
    if on_divergence not in ("raise", "nan"):
        raise ValueError(f"Expected on_divergence 'raise' or 'nan', but got {on_divergence!r}.")
    if localization < 0:
        raise ValueError(f"Expected localization >= 0, but got {localization}.")
    dev = W.device
    eps = _per_model(lr, M, "lr").to(dev)
    nb = _per_model(nbeta, M, "nbeta").to(dev)
    ids = None
    if tms._should_compress(x, compress):
        patterns, ids = tms.compress_binary(x)
    with torch.no_grad():
        if init_loss is not None:
            L0 = torch.as_tensor(init_loss, dtype=W.dtype, device=dev).expand(M)
        elif ids is None:
            L0 = tms.mse(W, b, x, importance=importance)
        else:
            L0 = tms.mse(W, b, patterns, tms.pattern_weights(ids, len(patterns)), importance)
    C = num_chains
    gen = torch.Generator(device=dev).manual_seed(seed)
    # chains live on a flat [M*C] axis; each reads its model's data
    W0 = W.repeat_interleave(C, 0).clone()
    b0 = b.repeat_interleave(C, 0).clone()
    Wc, bc = W0.clone(), b0.clone()
    eps_c = eps.repeat_interleave(C)
    nb_c = nb.repeat_interleave(C)
    model_of = torch.arange(M, device=dev).repeat_interleave(C)
    n_batches = math.ceil(n / bs)
    total = num_burnin_steps + num_draws
    trace = torch.empty(M * C, total, device=dev)
    perm = None
    alive = torch.ones(M * C, dtype=torch.bool, device=dev)
    with torch.no_grad():
        for t in tqdm(range(total), desc="SGLD", disable=not progress, mininterval=15):
            j = t % n_batches
            if j == 0:
                # a fresh shuffle per epoch, like DataLoader(shuffle=True): one random permutation,
                # relabelled per chain by a random cyclic shift (still a permutation for each
                # chain, and far cheaper than sorting M*C random keys)
                perm = torch.randperm(n, generator=gen, device=dev)
                shift = torch.randint(n, (M * C, 1), generator=gen, device=dev)
            # last batch may be shorter (drop_last=False)
            idx = (perm[j * bs : (j + 1) * bs][None] + shift) % n
            if ids is None:
                xb = x[model_of[:, None], idx]  # [M*C, bs', F]
                loss, gW, gb = tms.loss_and_grad(Wc, bc, xb, importance=importance)
            else:  # the same minibatch as pattern counts
                wb = tms.pattern_weights(ids[model_of[:, None], idx], len(patterns))
                loss, gW, gb = tms.loss_and_grad(Wc, bc, patterns, weights=wb,
                                                 importance=importance)
            trace[:, t] = loss
            # devinterp SGLD: dw = nβ grad + γ (w - w0); w -= ε/2 dw; w += sqrt(ε) noise
            half = (0.5 * eps_c)
            root = eps_c.sqrt()
            dW = nb_c[:, None, None] * gW + localization * (Wc - W0)
            db = nb_c[:, None] * gb + localization * (bc - b0)
            Wc -= half[:, None, None] * dW
            bc -= half[:, None] * db
            Wc += root[:, None, None] * torch.randn(Wc.shape, generator=gen, device=dev)
            bc += root[:, None] * torch.randn(bc.shape, generator=gen, device=dev)
            bad_now = ~torch.isfinite(loss) | ~torch.isfinite(Wc).flatten(1).all(1)
            if bad_now.any():
                if on_divergence == "raise":
                    bad = model_of[bad_now].unique().tolist()
                    raise ValueError(
                        f"SGLD diverged (non-finite loss) for models {bad[:10]} at step {t}; "
                        "lower lr or nbeta for them."
                    )
                alive &= ~bad_now
                Wc[~alive], bc[~alive] = W0[~alive], b0[~alive]  # park dead chains (result is NaN)
    trace[~alive] = float("nan")
    trace = trace.view(M, C, total)
    per_chain = nb[:, None] * (trace[:, :, num_burnin_steps:].mean(-1) - L0[:, None])
    return LLCResult(
        llc_mean=per_chain.mean(1),
        llc_std=per_chain.std(1) if C > 1 else torch.zeros(M, device=dev),
        llc_per_chain=per_chain,
        loss_trace=trace,
        init_loss=L0,
        nbeta=nb,
        num_burnin_steps=num_burnin_steps,
    )
