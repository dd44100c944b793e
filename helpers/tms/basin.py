"""Basin hopping: how strong an L2 pull towards another solution makes a trained model leave its
basin.

A trained model A is pulled towards a target B (the other start's model with the same data and
seed, aligned onto A's symmetry frame) by adding (κ / 2) ||θ - θ_B||² to its loss for a while;
then the pull is released and the model trains on its own loss again. It *switched* when the
released model is nearer B than A, in a distance that ignores the hidden plane's rotations
(:func:`gram_distance`). κ = 0 is the no-pull control: the same extra training, no pull.

Example:
    >>> import torch
    >>> W = torch.randn(3, 2, 6); b = torch.randn(3, 6)
    >>> R = torch.tensor([[0.0, -1.0], [1.0, 0.0]]).expand(3, 2, 2)
    >>> bool(gram_distance(W, b, R @ W, b).abs().max() < 1e-5)
    True
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from helpers import stats
from helpers.tms import grid as tgrid
from helpers.tms import model as tms

__all__ = ["gram_distance", "pull_and_release", "basin_table", "switch_summary", "critical_pull"]

DIRECTIONS = (("4-gon", "6-gon"), ("6-gon", "4-gon"))  # (pulled model's start, target's start)


def gram_distance(Wa: torch.Tensor, ba: torch.Tensor, Wb: torch.Tensor,
                  bb: torch.Tensor) -> torch.Tensor:
    """Distance between models that ignores rotations and reflections of the hidden plane:
    ``sqrt(||WaᵀWa - WbᵀWb||² + ||ba - bb||²)`` per pair, ``[M]``. The model's function depends
    on W only through WᵀW, so two models at distance 0 compute the same function."""
    tms._check_params(Wa, ba)
    tms._check_params(Wb, bb)
    if Wa.shape != Wb.shape:
        raise ValueError(f"Expected two stacks of the same shape, but got {tuple(Wa.shape)} and "
                         f"{tuple(Wb.shape)}.")
    Ga, Gb = Wa.transpose(1, 2) @ Wa, Wb.transpose(1, 2) @ Wb
    return ((Ga - Gb).square().sum((1, 2)) + (ba - bb).square().sum(1)).sqrt()


def pull_and_release(
    W: torch.Tensor, b: torch.Tensor, W_target: torch.Tensor, b_target: torch.Tensor,
    x: torch.Tensor, pulls: list[float], *, pull_steps: int, release_steps: int,
    lr: float = 0.005, momentum: float = 0.9, compress: bool | None = None,
) -> dict:
    """Pull every model towards its target with each strength, then release it.

    Args:
        W, b: trained models ``[M, 2, F]``, ``[M, F]``; W_target, b_target: their targets, in
            the same symmetry frame (see :func:`helpers.tms.model.align`).
        x: each model's training data ``[M, n, F]``.
        pulls: strengths κ >= 0 (include 0 for the no-pull control).
        pull_steps, release_steps: SGD steps with the pull on, then off.
    Returns: ``pull`` ``[P]``, and ``[P, M]`` arrays: ``d_start`` and ``d_target`` (the released
    model's :func:`gram_distance` to its start and to its target), ``switched``
    (``d_target < d_start``) and ``loss`` (the released model's train loss).
    """
    if not pulls or min(pulls) < 0 or pull_steps < 1 or release_steps < 1:
        raise ValueError(f"Expected pulls >= 0 (at least one) and pull_steps, release_steps >= 1, "
                         f"but got {pulls}, {pull_steps}, {release_steps}.")
    P, M = len(pulls), W.shape[0]
    rep = lambda t: t.repeat(P, *([1] * (t.dim() - 1)))  # noqa: E731  pull-major stacking
    kappa = torch.tensor(pulls, dtype=W.dtype, device=W.device).repeat_interleave(M)
    Ws, bs, Wt, bt, xs = rep(W), rep(b), rep(W_target), rep(b_target), rep(x)
    on = tms.train(Ws, bs, xs, pull_steps, [pull_steps], lr=lr, momentum=momentum,
                   progress=False, compress=compress, anchor=(Wt, bt), pull=kappa)
    off = tms.train(on.W[:, -1], on.b[:, -1], xs, release_steps, [release_steps], lr=lr,
                    momentum=momentum, progress=False, compress=compress)
    Wf, bf = off.W[:, -1], off.b[:, -1]
    d_start = gram_distance(Wf, bf, Ws, bs).view(P, M)
    d_target = gram_distance(Wf, bf, Wt, bt).view(P, M)
    return dict(pull=np.asarray(pulls, float), d_start=d_start.cpu().numpy(),
                d_target=d_target.cpu().numpy(), switched=(d_target < d_start).cpu().numpy(),
                loss=off.train_loss[:, -1].view(P, M).cpu().numpy())


def basin_table(
    grid: pd.DataFrame, W: torch.Tensor, b: torch.Tensor, x_train: torch.Tensor,
    pulls: list[float], *, pull_steps: int, release_steps: int, min_distance: float,
    lr: float = 0.005, momentum: float = 0.9, device: torch.device | str = "cpu",
) -> pd.DataFrame:
    """Pull each start's final models towards the other start's aligned solution (same data and
    seed), in both directions, at every strength in ``pulls``.

    Args:
        grid: the experiment grid (``init``, ``s_idx``, ``sparsity``, ``seed``); W ``[M, 2, 6]``,
            b ``[M, 6]`` its final models, x_train ``[M, n, 6]`` their training data.
        min_distance: a pair counts as two distinct solutions (``distinct``) when the aligned
            target is at least this :func:`gram_distance` from the pulled model.
    Returns: one row per (direction, pair, pull): ``direction``, ``sparsity``, ``seed``, ``pull``,
    ``distinct``, ``gap`` (the pair's aligned distance), ``switched``, ``loss``.
    """
    rows = []
    for a, t in DIRECTIONS:
        ia, it = tgrid.seed_pairs(grid, a, t)
        ta, tt = torch.as_tensor(ia), torch.as_tensor(it)
        R, perm, _ = tms.align(W[ta], b[ta], W[tt], b[tt])
        Wt, bt = tms.apply_symmetry(W[tt], b[tt], R, perm)
        gap = gram_distance(W[ta], b[ta], Wt, bt).numpy()
        res = pull_and_release(W[ta].to(device), b[ta].to(device), Wt.to(device), bt.to(device),
                               x_train[ta].to(device), pulls, pull_steps=pull_steps,
                               release_steps=release_steps, lr=lr, momentum=momentum,
                               compress=True)
        for p, kappa in enumerate(pulls):
            rows.append(pd.DataFrame(dict(
                direction=f"{a} start pulled to {t}", sparsity=grid.sparsity.to_numpy()[ia],
                seed=grid.seed.to_numpy()[ia], pull=kappa, distinct=gap >= min_distance, gap=gap,
                switched=res["switched"][p], loss=res["loss"][p])))
    return pd.concat(rows, ignore_index=True)


def switch_summary(table: pd.DataFrame, n_boot: int, seed: int = 0) -> pd.DataFrame:
    """Fraction of distinct pairs that switched, per (direction, sparsity, pull), with a 95%
    bootstrap interval over pairs (seeds); ``n`` distinct pairs (no row for a cell without)."""
    out = []
    d = table[table.distinct]
    for (direction, S, kappa), c in d.groupby(["direction", "sparsity", "pull"]):
        s = c.switched.to_numpy(float)
        lo, hi = stats.interval(stats.bootstrap(np.mean, s, n_boot=n_boot, seed=seed))
        out.append(dict(direction=direction, sparsity=S, pull=kappa, n=len(s),
                        switched=s.mean(), lo=lo, hi=hi))
    cols = ["direction", "sparsity", "pull", "n", "switched", "lo", "hi"]
    return pd.DataFrame(out, columns=cols)


def _half_pull(switched: np.ndarray, pulls: np.ndarray) -> int:
    """Index of the first pull at which at least half the pairs switched (len(pulls): never)."""
    hit = np.flatnonzero(switched.mean(0) >= 0.5)
    return int(hit[0]) if len(hit) else len(pulls)


def critical_pull(table: pd.DataFrame, n_boot: int, seed: int = 0) -> pd.DataFrame:
    """The smallest pull at which at least half of the distinct pairs switch, per (direction,
    sparsity), with a 95% bootstrap interval over pairs (a resample whose pairs never reach
    half reads as infinity); also the no-pull control's switch fraction.

    Returns columns ``direction``, ``sparsity``, ``n``, ``control`` (switched at κ = 0, or NaN
    when 0 is not among the pulls), ``half_pull``, ``lo``, ``hi`` (inf: not reached within the
    pulls tried)."""
    out = []
    for (direction, S), c in table[table.distinct].groupby(["direction", "sparsity"]):
        wide = c.pivot(index="seed", columns="pull", values="switched").sort_index(axis=1)
        pulls = wide.columns.to_numpy(float)
        sw = wide.to_numpy(float)  # [pairs, pulls]
        grid_inf = np.append(pulls, np.inf)
        rng = np.random.default_rng(seed)
        draws = np.array([_half_pull(sw[rng.integers(len(sw), size=len(sw))], pulls)
                          for _ in range(n_boot)])
        lo_i, hi_i = np.quantile(draws, [0.025, 0.975], method="inverted_cdf")
        out.append(dict(direction=direction, sparsity=S, n=len(sw),
                        control=float(sw[:, 0].mean()) if pulls[0] == 0 else np.nan,
                        half_pull=grid_inf[_half_pull(sw, pulls)], lo=grid_inf[int(lo_i)],
                        hi=grid_inf[int(hi_i)]))
    cols = ["direction", "sparsity", "n", "control", "half_pull", "lo", "hi"]
    return pd.DataFrame(out, columns=cols)
