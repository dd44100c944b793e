"""The chapter's experiment grid: which models train, on which data, and what is measured on them.

A grid is a DataFrame with one row per model (``init``, ``s_idx``, ``sparsity``, ``seed``); the
row order is the model axis of every stacked tensor. The functions here build the grid, draw its
data sets (the two starts with the same seed and sparsity share their data), train it, estimate
the LLC at checkpoints, align pairs of models and prune them, each as one batched computation.

Example:
    >>> g = make_grid([1, 7], n_seeds=2)
    >>> len(g), list(g.columns)
    (8, ['init', 's_idx', 'sparsity', 'seed'])
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from helpers.tms import llc
from helpers.tms import model as tms

__all__ = [
    "make_grid", "grid_data", "init_grid", "train_grid", "checkpoint_steps", "llc_at_checkpoints",
    "checkpoint_table", "reference_protocol_llc", "seed_pairs", "lmc_table", "prune_grid",
    "prune_table", "llc_data", "minimum_check", "features_per_dimension", "annotate",
    "resolve_device", "check_parameters", "llc_tables", "check_final",
]


def make_grid(sparsity_idx: list[int], n_seeds: int,
              inits: tuple[str, ...] = tms.INITS) -> pd.DataFrame:
    """One row per (init, sparsity, seed), init-major; ``sparsity_idx`` indexes :func:`sparsities`.

    Raises:
        ValueError: an index outside the 10-point reference grid, or ``n_seeds < 1``.
    """
    spars = tms.sparsities()
    bad = [i for i in sparsity_idx if not 0 <= int(i) < len(spars)]
    if bad or n_seeds < 1:
        raise ValueError(f"Expected sparsity_idx in 0..{len(spars) - 1} and n_seeds >= 1, but got "
                         f"{sparsity_idx} and {n_seeds}.")
    rows = [(init, int(si), float(spars[si]), seed)
            for init in inits for si in sparsity_idx for seed in range(n_seeds)]
    return pd.DataFrame(rows, columns=["init", "s_idx", "sparsity", "seed"])


def _law(S: float, alpha: float) -> float | torch.Tensor:
    return float(S) if alpha == 0 else tms.powerlaw_sparsity(float(S), alpha)


def grid_data(grid: pd.DataFrame, n: int, salt: int, alpha: float = 0.0) -> torch.Tensor:
    """One binary data set per model ``[M, n, 6]``, seeded by (salt, sparsity index, seed) only,
    so models that differ only in their start see the same data. ``alpha`` > 0 makes the
    features' frequencies a power law (:func:`helpers.tms.model.powerlaw_sparsity`)."""
    xs = []
    for si, S, seed in zip(grid.s_idx, grid.sparsity, grid.seed):
        g = torch.Generator().manual_seed(100_000 * salt + 1000 * int(si) + int(seed))
        xs.append(tms.make_data(n, _law(S, alpha), "binary", generator=g))
    return torch.stack(xs)


def init_grid(grid: pd.DataFrame) -> tuple[torch.Tensor, torch.Tensor]:
    """Starting points for every model, in grid order: W ``[M, 2, 6]``, b ``[M, 6]``.

    Each start draws its rotations and noise from its own generator (seed 7 for the 4-gon,
    8 for the 6-gon), in the order its models appear in the grid."""
    W = torch.empty(len(grid), tms.N_HIDDEN, tms.N_FEATURES)
    b = torch.empty(len(grid), tms.N_FEATURES)
    for init in tms.INITS:
        rows = np.flatnonzero(grid.init.to_numpy() == init)
        if len(rows):
            g = torch.Generator().manual_seed(7 if init == "4-gon" else 8)
            W[rows], b[rows] = tms.init_params(len(rows), init, g)
    return W, b


def train_grid(
    grid: pd.DataFrame, steps: int, log_at: list[int], n_train: int, n_test: int,
    lr: float, momentum: float, device: torch.device | str = "cpu", compress: bool = False,
    alpha: float = 0.0, importance: torch.Tensor | None = None,
) -> dict:
    """Train every model of the grid at once; returns :class:`TrainResult`'s fields on the CPU
    (a dict, so :func:`helpers.cache.cached` can store it). ``compress`` and ``importance``
    (per-feature loss weights): as in :func:`helpers.tms.model.train`."""
    W0, b0 = init_grid(grid)
    res = tms.train(W0.to(device), b0.to(device), grid_data(grid, n_train, 1, alpha).to(device),
                    steps,
                    log_at, x_test=grid_data(grid, n_test, 2, alpha).to(device), lr=lr,
                    momentum=momentum,
                    compress=compress, importance=importance)
    return {k: (v.cpu() if torch.is_tensor(v) else v) for k, v in vars(res).items()}


def checkpoint_steps(reference_steps: list[int], steps: int,
                     reference_total: int = 20000) -> list[int]:
    """The reference's LLC checkpoints rescaled from ``reference_total`` to ``steps`` (sorted, >=
    1)."""
    return sorted({max(1, round(s * steps / reference_total)) for s in reference_steps})


def llc_data(grid: pd.DataFrame, n: int, alpha: float = 0.0) -> torch.Tensor:
    """The fresh SGLD data ``[M, n, 6]``: one set per sparsity (seeded by its index), shared by all
    models at that sparsity, so the data's own noise adds no spread between seeds."""
    sets = {int(si): tms.make_data(n, _law(S, alpha), "binary",
                                   generator=torch.Generator().manual_seed(50_000 + int(si)))
            for si, S in zip(grid.s_idx.unique(), grid.sparsity.unique())}
    return torch.stack([sets[int(si)] for si in grid.s_idx])


def llc_at_checkpoints(
    run: tms.TrainResult, grid: pd.DataFrame, ckpt: list[int], n: int, *, lr: float, nbeta: float,
    localization: float, chains: int, draws: int, burnin: int, batch: int,
    device: torch.device | str = "cpu", seed: int = 5, rows: np.ndarray | None = None,
    compress: bool = False, on_divergence: str = "raise", alpha: float = 0.0,
    importance: torch.Tensor | None = None,
) -> dict:
    """LLC of the models ``rows`` (default: all) at every checkpoint, on :func:`llc_data`
    (``on_divergence="nan"``: a model whose chains diverge gets NaN instead of an error).

    Returns ``mean`` ``[m, K]``, ``chains`` ``[m, K, C]`` and ``init_loss`` ``[m, K]`` on the
    CPU."""
    rows = np.arange(len(grid)) if rows is None else np.array(rows)
    X = llc_data(grid, n, alpha)[torch.as_tensor(rows)]
    cols = [run.at(s) for s in ckpt]
    M, K = len(rows), len(cols)
    sel = torch.as_tensor(rows)
    W = run.W[sel][:, cols].reshape(-1, tms.N_HIDDEN, tms.N_FEATURES)  # [m * K, 2, 6], model-major
    b = run.b[sel][:, cols].reshape(-1, tms.N_FEATURES)
    res = llc.estimate_llc(
        W.to(device), b.to(device), X.repeat_interleave(K, 0).to(device), lr=lr, nbeta=nbeta,
        localization=localization, num_chains=chains, num_draws=draws, num_burnin_steps=burnin,
        batch_size=batch, seed=seed, compress=compress, on_divergence=on_divergence,
        importance=importance,
    )
    return dict(mean=res.llc_mean.view(M, K).cpu(), chains=res.llc_per_chain.view(M, K, -1).cpu(),
                init_loss=res.init_loss.view(M, K).cpu())


def minimum_check(
    W: torch.Tensor, b: torch.Tensor, x: torch.Tensor, nbeta: float, *, descent_steps: int = 1000,
    descent_tol: float = 1.0, lr: float = 0.005, momentum: float = 0.9, rel_tol: float = 1e-3,
    importance: torch.Tensor | None = None,
) -> pd.DataFrame:
    """Is each model ``[M, 2, 6]``/``[M, 6]`` at a minimum of the loss on ``x`` ``[M, n, 6]``
    (the SGLD data)? Per model: the gradient norm; the Hessian's rank, rank / 2 and its smallest
    eigenvalue over its largest (below ``-rel_tol``: a saddle); and ``descent``, nβ times the
    loss that plain gradient descent from the model finds below it, in LLC units (at least
    ``descent_tol``: there is lower loss within reach, so a low or negative LLC is the sampler
    reporting it); and ``status``, the first that applies of "descends", "saddle", "flat" (no
    curvature at all, e.g. a model whose every ReLU is off) and "minimum"."""
    patterns, ids = tms.compress_binary(x)
    w = tms.pattern_weights(ids, len(patterns))
    with torch.no_grad():
        L0, gW, gb = tms.loss_and_grad(W, b, patterns, weights=w, importance=importance)
    H = tms.hessian(W, b, patterns, weights=w, importance=importance)
    rank, min_eig, ev = tms.hessian_rank(H, rel_tol)
    res = tms.train(W, b, x, descent_steps, [descent_steps], lr=lr, momentum=momentum,
                    progress=False,
                    compress=True, importance=importance)
    top = ev[:, -1]
    out = pd.DataFrame(dict(
        grad_norm_llc=(gW.square().sum((1, 2)) + gb.square().sum(1)).sqrt().numpy(),
        rank=rank.numpy(),
        lam_hessian=rank.numpy() / 2, min_eig_rel=(min_eig / top.clamp_min(1e-300)).numpy(),
        descent=(nbeta * (L0 - res.train_loss[:, -1]).clamp_min(0)).numpy()))
    out["status"] = np.select(
        [out.descent >= descent_tol, out.min_eig_rel < -rel_tol, top.numpy() <= 1e-12],
        ["descends", "saddle", "flat"], "minimum")
    return out


def checkpoint_table(grid: pd.DataFrame, run: tms.TrainResult, L: dict, ckpt: list[int],
                     x_train: torch.Tensor) -> pd.DataFrame:
    """One row per (model, checkpoint): the LLC, its chain variance, the train loss at the same
    step and at the next logged step (the reference's pairing), and the train-loss gradient
    norm."""
    out = []
    for k, s in enumerate(ckpt):
        j = run.at(s)
        nxt = min(j + 1, len(run.steps) - 1)  # at the last step there is no next one
        _, gW, gb = tms.loss_and_grad(run.W[:, j], run.b[:, j], x_train, need_loss=False)
        out.append(grid[["init", "sparsity", "seed"]].assign(
            step=s, llc=L["mean"][:, k].numpy(), chain_var=L["chains"][:, k].var(-1).numpy(),
            loss=run.train_loss[:, j].numpy(), loss_next=run.train_loss[:, nxt].numpy(),
            grad_norm=(gW.square().sum((1, 2)) + gb.square().sum(1)).sqrt().numpy()))
    return pd.concat(out, ignore_index=True)


def reference_protocol_llc(
    W: torch.Tensor, b: torch.Tensor, grid: pd.DataFrame, n: int, *, lr: float, chains: int,
    draws: int, device: torch.device | str = "cpu", compress: bool = False,
) -> dict:
    """The reference project's LLC protocol on final weights ``[M, 2, 6]``/``[M, 6]``: a fresh
    ``n``-sample set per model, full batch, nβ = 300 / ln 300, γ = 1, no burn-in.
    Returns ``mean`` ``[M]`` and the chain variance ``var`` ``[M]``."""
    X = torch.stack([tms.make_data(n, float(S), "binary",
                                   generator=torch.Generator().manual_seed(70_000 + i))
                     for i, S in enumerate(grid.sparsity)])
    res = llc.estimate_llc(W.to(device), b.to(device), X.to(device), lr=lr,
                           nbeta=llc.default_nbeta(300),
                           localization=1.0, num_chains=chains, num_draws=draws,
                           num_burnin_steps=0, seed=9,
                           compress=compress)
    return dict(mean=res.llc_mean.cpu(), var=res.llc_per_chain.var(-1).cpu())


def seed_pairs(grid: pd.DataFrame, a: str, b: str,
               shift: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Row indices (ia, ib) pairing each ``a``-start model with the ``b``-start model at the same
    sparsity and seed ``+ shift`` (mod the number of seeds); shift 1 with a == b is the
    same-start control."""
    n_seeds = int(grid.seed.max()) + 1
    key = {(i, s, e): r for r, (i, s, e) in enumerate(zip(grid.init, grid.s_idx, grid.seed))}
    ia = np.flatnonzero(grid.init.to_numpy() == a)
    ib = np.array([key[(b, grid.s_idx[r], (grid.seed[r] + shift) % n_seeds)] for r in ia],
                  dtype=int)
    return ia, ib


def lmc_table(grid: pd.DataFrame, W: torch.Tensor, b: torch.Tensor, n_eval: int,
              n_alpha: int) -> pd.DataFrame:
    """Loss barriers, before and after symmetry alignment, for the cross-start pairs and the
    same-start controls; one row per pair, with ``same_kgon`` and the aligned distance ``dist``.
    ``grid`` needs a ``kgon`` column; each pair is evaluated on ``n_eval`` fresh samples of its
    sparsity."""
    XE = torch.stack([tms.make_data(n_eval, float(S), "binary",
                                    generator=torch.Generator().manual_seed(90_000 + int(si)))
                      for si, S in zip(grid.s_idx, grid.sparsity)])
    pairs = [("4-gon vs 6-gon start", *seed_pairs(grid, "4-gon", "6-gon"))]
    pairs += [(f"{i} vs {i} start", *seed_pairs(grid, i, i, shift=1)) for i in tms.INITS]
    rows = []
    for name, ia, ib in pairs:
        ta, tb = torch.as_tensor(ia), torch.as_tensor(ib)
        R, perm, cost = tms.align(W[ta], b[ta], W[tb], b[tb])
        Wb_al, bb_al = tms.apply_symmetry(W[tb], b[tb], R, perm)
        raw, _ = tms.interpolation_barrier(W[ta], b[ta], W[tb], b[tb], XE[ta], n_alpha)
        al, path = tms.interpolation_barrier(W[ta], b[ta], Wb_al, bb_al, XE[ta], n_alpha)
        rows.append(pd.DataFrame(dict(
            pair=name, sparsity=grid.sparsity.to_numpy()[ia], seed=grid.seed.to_numpy()[ia],
            unaligned=raw.numpy(), aligned=al.numpy(),
            same_kgon=grid.kgon.to_numpy()[ia] == grid.kgon.to_numpy()[ib],
            dist=cost.sqrt().numpy(),
            endpoint_loss=(0.5 * (path[:, 0] + path[:, -1])).numpy())))
    return pd.concat(rows, ignore_index=True)


def prune_grid(
    run: tms.TrainResult, grid: pd.DataFrame, x_train: torch.Tensor, steps: int, *, n_seeds: int,
    rounds: int, per_round: int, rewind_frac: float, lr: float, momentum: float,
    device: torch.device | str = "cpu", compress: bool = False, control: bool = False,
) -> dict:
    """Iterative magnitude pruning with rewinding on the first ``n_seeds`` seeds of every cell.

    The rewind point is the logged step nearest ``rewind_frac * steps``. Returns the selected rows
    ``sel``, ``rewind_step``, and :class:`PruneResult`'s ``n_weights``, ``W``, ``b``, ``loss``."""
    sel = np.flatnonzero(grid.seed.to_numpy() < n_seeds)
    r_step = min(run.steps[1:], key=lambda s: abs(s - rewind_frac * steps))
    j = run.at(r_step)
    pr = tms.prune_and_retrain(
        run.W[sel, j].to(device), run.b[sel, j].to(device), run.W[sel, -1].to(device),
        run.b[sel, -1].to(device), x_train[torch.as_tensor(sel)].to(device), steps=steps - r_step,
        rounds=rounds, per_round=per_round, lr=lr, momentum=momentum, compress=compress)
    out = dict(sel=sel, rewind_step=r_step, n_weights=pr.n_weights, W=pr.W.cpu(), b=pr.b.cpu(),
               loss=pr.loss.cpu())
    if control:  # rewind to the same step and retrain as long, without pruning
        ctrl = tms.train(run.W[sel, j].to(device), run.b[sel, j].to(device),
                         x_train[torch.as_tensor(sel)].to(device),
                         steps - r_step, [steps - r_step], lr=lr, momentum=momentum,
                         compress=compress)
        out.update(control_W=ctrl.W[:, -1].cpu(), control_b=ctrl.b[:, -1].cpu(),
                   control_loss=ctrl.train_loss[:, -1].cpu())
    return out


def features_per_dimension(D: torch.Tensor) -> torch.Tensor:
    """Represented features per hidden dimension, n_rep / Σ D_i, from
    :func:`helpers.tms.model.feature_dimensionality` ``[M, F]``: 1 when every represented
    feature has a direction to itself, k/2 on a regular k-gon (more: more polysemantic); NaN
    when nothing is represented."""
    rep = torch.isfinite(D)
    total = torch.where(rep, D, torch.zeros_like(D)).sum(1)
    return torch.where(rep.any(1), rep.sum(1) / total.clamp_min(1e-12),
                       torch.full_like(total, float("nan")))


def prune_table(grid: pd.DataFrame, P: dict) -> pd.DataFrame:
    """One row per (pruned model, round): weights left, polygon, loss, the dense model's polygon
    and loss, and the outcome: ``kept`` (same polygon), ``fewer corners`` or ``changed``."""
    rows = []
    for r, nw in enumerate(P["n_weights"]):
        for c, m in enumerate(P["sel"]):
            rows.append(dict(init=grid.init[m], sparsity=grid.sparsity[m], seed=grid.seed[m],
                             weights=nw,
                             kgon=tms.classify_kgon(P["W"][r, c], P["b"][r, c]),
                             loss=float(P["loss"][r, c])))
    df = pd.DataFrame(rows)
    dense = df[df.weights == df.weights.max()].set_index(["init", "sparsity", "seed"])
    key = list(zip(df.init, df.sparsity, df.seed))
    df["dense_kgon"] = [dense.loc[k, "kgon"] for k in key]
    df["dense_loss"] = [dense.loc[k, "loss"] for k in key]
    if "control_loss" in P:  # rewound and retrained without pruning
        n = len(P["sel"])
        ctrl = {k: (float(P["control_loss"][c]),
                    tms.classify_kgon(P["control_W"][c], P["control_b"][c]))
                for c, k in enumerate(key[:n])}
        df["control_loss"] = [ctrl[k][0] for k in key]
        df["control_kgon"] = [ctrl[k][1] for k in key]
        D = tms.feature_dimensionality(P["W"].flatten(0, 1))  # [rounds * models, F]
        df["features_per_dim"] = features_per_dimension(D).numpy()
    fewer = df.kgon.str[0].astype(int) < df.dense_kgon.str[0].astype(int)
    df["outcome"] = np.select([df.kgon == df.dense_kgon, fewer], ["kept", "fewer corners"],
                              "changed")
    return df


def annotate(grid: pd.DataFrame, W: torch.Tensor, b: torch.Tensor,
             loss: torch.Tensor) -> pd.DataFrame:
    """The grid with each final model's ``final_loss``, polygon label ``kgon``, corner count
    ``k`` and ``features_per_dim`` (:func:`features_per_dimension`); W ``[M, 2, 6]``,
    b ``[M, 6]``, loss ``[M]`` in grid order. Returns a new frame."""
    if not len(grid) == W.shape[0] == b.shape[0] == loss.shape[0]:
        raise ValueError(f"Expected one model per grid row ({len(grid)}), but got W "
                         f"{tuple(W.shape)}, b {tuple(b.shape)}, loss {tuple(loss.shape)}.")
    out = grid.copy()
    out["final_loss"] = loss.numpy()
    out["kgon"] = [tms.classify_kgon(W[m], b[m]) for m in range(len(out))]
    out["k"] = out.kgon.str[0].astype(int)
    out["features_per_dim"] = features_per_dimension(tms.feature_dimensionality(W)).numpy()
    return out


def resolve_device(device: str) -> torch.device:
    """``torch.device(device)``, refusing CUDA when it is not available (ValueError, with the
    fix)."""
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' was requested but CUDA is not available; "
                         "set device='cpu'.")
    return dev


def check_parameters(sparsity_idx: list[int], anim_sparsity_idx: int, n_seeds: int,
                     n_seeds_early: int) -> None:
    """The chapter's cross-parameter rules: the animated sparsity is in the grid and the seeds
    with early checkpoints are among the grid's seeds (ValueError naming both otherwise)."""
    if anim_sparsity_idx not in sparsity_idx or n_seeds_early > n_seeds:
        raise ValueError(f"anim_sparsity_idx ({anim_sparsity_idx}) must be in sparsity_idx "
                         f"({sparsity_idx}) and n_seeds_early ({n_seeds_early}) at most n_seeds "
                         f"({n_seeds}).")


def llc_tables(
    run: tms.TrainResult, grid: pd.DataFrame, x_train: torch.Tensor, ckpt: list[int], *,
    n_early: int, n: int, key: dict, **llc_kwargs,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The LLC of every model at the last checkpoint and of the first ``n_early`` seeds at the
    earlier ones (:func:`llc_at_checkpoints`, cached under ``key`` in namespace "tms_llc").

    Returns ``final`` (one row per model, :func:`checkpoint_table` plus ``kgon``) and ``long``
    (every checkpoint of the first seeds)."""
    from helpers.cache import cached

    early = np.flatnonzero(grid.seed.to_numpy() < n_early)
    L_fin = cached("tms_llc", dict(key, ck=[ckpt[-1]]),
                   lambda: llc_at_checkpoints(run, grid, [ckpt[-1]], n, **llc_kwargs))
    L_early = cached("tms_llc", dict(key, ck=ckpt[:-1], rows=early.tolist()),
                     lambda: llc_at_checkpoints(run, grid, ckpt[:-1], n, rows=early, seed=6,
                                                **llc_kwargs))
    final = checkpoint_table(grid, run, L_fin, [ckpt[-1]], x_train).assign(kgon=grid.kgon.values)
    sub = tms.TrainResult(run.steps, run.W[early], run.b[early], run.train_loss[early],
                          run.test_loss[early])
    long_early = checkpoint_table(grid.iloc[early].reset_index(drop=True), sub, L_early,
                                  ckpt[:-1], x_train[early])
    return final, pd.concat([long_early, final[final.seed < n_early]], ignore_index=True)


def check_final(
    final: pd.DataFrame, run: tms.TrainResult, grid: pd.DataFrame, n: int, *,
    descent_steps: int, descent_tol: float, llc_kwargs: dict, rechain: int = 4,
) -> tuple[pd.DataFrame, np.ndarray]:
    """:func:`minimum_check` of every final model on its SGLD data, joined to ``final`` with
    ``at_min`` (status "minimum"); models at a minimum whose LLC is not positive are
    re-estimated with ``rechain`` times the chains. Returns the joined frame and the
    re-estimates."""
    chk = minimum_check(run.W[:, -1], run.b[:, -1], llc_data(grid, n), llc_kwargs["nbeta"],
                        descent_steps=descent_steps, descent_tol=descent_tol)
    out = pd.concat([final, chk], axis=1).assign(at_min=chk.status.eq("minimum").to_numpy())
    odd = out.index[out.at_min & (out.llc <= 0)].to_numpy()
    kw = {**llc_kwargs, "chains": rechain * llc_kwargs["chains"]}
    redo = (llc_at_checkpoints(run, grid, [run.steps[-1]], n, rows=odd, seed=7, **kw)["mean"][:, 0]
            .numpy() if len(odd) else np.array([]))
    return out, redo
