"""Calibrating the SGLD LLC estimator on critical points whose learning coefficient is known.

:func:`sweep` estimates the LLC of given models over a grid of step sizes ε and inverse
temperatures nβ; :func:`choose_closest` picks the setting nearest the theory values;
:func:`count_rises` summarises how the estimate moves along one knob; :func:`repeat_estimates`
draws independent estimates at one setting.

Example:
    >>> t = pd.DataFrame(dict(polygon=[6, 6, 5, 5], lr=[1e-4, 1e-3] * 2, nbeta=[100.0] * 4,
    ...                       llc=[8.0, 9.0, 6.0, 7.5]))
    >>> count_rises(t, by="nbeta", along="lr")
    (2, 2)
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from helpers import stats
from helpers.tms import llc

__all__ = ["sweep", "choose_closest", "choose_on", "count_rises", "repeat_estimates", "is_interior",
           "theory_free_choice", "bias_interval"]


def sweep(
    models: dict[int, tuple[torch.Tensor, torch.Tensor]], x: torch.Tensor, lrs: list[float],
    nbetas: list[float], *, localization: float, chains: int, draws: int, burnin: int, batch: int,
    repeats: int = 1, seed: int = 11, device: torch.device | str = "cpu",
) -> tuple[pd.DataFrame, torch.Tensor]:
    """LLC of each polygon at every (ε, nβ), ``repeats`` independent estimates each, all in one
    batched run on data ``x`` ``[n, 6]``. A setting whose chains diverge gets NaN.

    Args:
        models: polygon label -> (W ``[2, 6]``, b ``[6]``), e.g. ``{6: hexagon, 5: pentagon}``.
    Returns:
        table (``polygon``, ``lr``, ``nbeta``, ``rep``, ``llc``, ``chain_sd``, ``drift``,
        ``min_chain``; one row per estimate) and the running LLC per chain
        ``[rows, chains, draws]`` (CPU). ``drift`` is the mean LLC contribution of the second half
        of the draws minus the first half's, over the estimate: near 0 when the chains have
        settled within the draws. ``min_chain`` is the lowest chain's estimate.
    """
    combos = [(k, e, nb, r) for k in models for e in lrs for nb in nbetas for r in range(repeats)]
    W = torch.stack([models[c[0]][0] for c in combos]).to(device)
    b = torch.stack([models[c[0]][1] for c in combos]).to(device)
    res = llc.estimate_llc(
        W, b, x.to(device), lr=torch.tensor([c[1] for c in combos]),
        nbeta=torch.tensor([c[2] for c in combos]), localization=localization, num_chains=chains,
        num_draws=draws, num_burnin_steps=burnin, batch_size=batch, seed=seed, on_divergence="nan",
    )
    trace = res.llc_trace().cpu()
    half = draws // 2
    first = trace[:, :, half - 1]  # running mean over the first half of the draws
    second = (trace[:, :, -1] * draws - first * half) / (draws - half)
    table = pd.DataFrame(combos, columns=["polygon", "lr", "nbeta", "rep"])
    table["llc"] = res.llc_mean.cpu().numpy()
    table["chain_sd"] = res.llc_std.cpu().numpy()
    table["drift"] = ((second - first).mean(1) / res.llc_mean.cpu().abs()).numpy()
    table["min_chain"] = res.llc_per_chain.min(1).values.cpu().numpy()
    return table, trace


def choose_closest(table: pd.DataFrame, theory: dict[int, float]) -> tuple[float, float, pd.DataFrame]:
    """The (ε, nβ) whose estimates are closest to ``theory`` (squared error summed over polygons),
    among settings that order the polygons as theory does (the larger λ estimated larger).

    Returns ε, nβ and the wide table (one column per polygon plus the squared error).

    Raises:
        ValueError: no setting orders the polygons correctly.
    """
    wide = table.pivot_table(index=["lr", "nbeta"], columns="polygon", values="llc")
    err = sum((wide[k] - v) ** 2 for k, v in theory.items())
    hi, lo = max(theory, key=theory.get), min(theory, key=theory.get)
    err[wide[hi] <= wide[lo]] = np.inf
    if not np.isfinite(err).any():
        raise ValueError("No swept (lr, nbeta) orders the polygons as theory does; widen the sweep.")
    e, nb = err.idxmin()
    wide.columns = [f"{c}-gon" for c in wide.columns]
    wide["sq. error vs theory"] = err
    return float(e), float(nb), wide


def count_rises(table: pd.DataFrame, by: str, along: str) -> tuple[int, int]:
    """How often the estimate rises between neighbouring values of ``along``, per polygon and
    value of ``by``: (rises, neighbouring pairs)."""
    ups = tot = 0
    for _, d in table.groupby(["polygon", by]):
        v = d.sort_values(along).llc.to_numpy()
        ups, tot = ups + int((np.diff(v) > 0).sum()), tot + len(v) - 1
    return ups, tot


def repeat_estimates(
    models: dict[int, tuple[torch.Tensor, torch.Tensor]], x: torch.Tensor, repeats: int, *, lr: float,
    nbeta: float, localization: float, chains: int, draws: int, burnin: int, batch: int,
    seed: int = 12, device: torch.device | str = "cpu",
) -> torch.Tensor:
    """``repeats`` independent estimates per polygon at one setting: ``[polygons, repeats]`` (CPU)."""
    W = torch.stack([models[k][0] for k in models for _ in range(repeats)]).to(device)
    b = torch.stack([models[k][1] for k in models for _ in range(repeats)]).to(device)
    res = llc.estimate_llc(W, b, x.to(device), lr=lr, nbeta=nbeta, localization=localization,
                           num_chains=chains, num_draws=draws, num_burnin_steps=burnin, batch_size=batch, seed=seed)
    return res.llc_mean.view(len(models), repeats).cpu()


def choose_on(table: pd.DataFrame, theory: dict[int, float], reps: list[int]) -> tuple[float, float, pd.DataFrame]:
    """:func:`choose_closest` on the mean of the estimates with ``rep`` in ``reps`` only (the
    selection seeds), so that the other repeats can report the chosen setting unbiased."""
    sel = table[table.rep.isin(reps)].groupby(["polygon", "lr", "nbeta"], as_index=False).llc.mean()
    return choose_closest(sel, theory)


def is_interior(values: list[float], chosen: float) -> bool:
    """Whether ``chosen`` lies strictly inside the swept ``values`` (not at either end)."""
    v = sorted(values)
    return len(v) >= 3 and v[0] < chosen < v[-1]


def theory_free_choice(table: pd.DataFrame, nbeta: float, drift_tol: float = 0.1) -> float | None:
    """A rule that uses no theory value (after devinterp's advice that the chains settle within the
    draws and never dip below zero): at the default inverse temperature ``nbeta``, the smallest
    step size at which every estimate of every polygon is finite, no chain is negative and the
    chains have settled (|drift| below ``drift_tol``); smaller steps have not yet equilibrated
    and larger ones only add discretisation bias. None if no step size passes."""
    d = table[np.isclose(table.nbeta, nbeta)]
    good = np.isfinite(d.llc) & (d.min_chain > 0) & (d.drift.abs() < drift_tol)
    ok = good.groupby(d.lr).all()
    passing = ok.index[ok.to_numpy()]
    return float(min(passing)) if len(passing) else None


def bias_interval(estimates, theory: float, n_boot: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """Mean of ``estimates`` minus ``theory``, with a 95% bootstrap interval over the estimates
    (independent SGLD runs); NaN estimates (diverged) are dropped, all-NaN gives NaNs."""
    v = np.asarray(estimates, float)
    v = v[np.isfinite(v)]
    if len(v) < 2:
        return float("nan"), float("nan"), float("nan")
    m, lo, hi = stats.mean_ci(v - theory, n_boot=n_boot, seed=seed)
    return m, lo, hi
