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
from helpers.chapter import format_interval
from helpers.tms import llc
from helpers.tms import model as tms

__all__ = ["sweep", "choose_closest", "choose_on", "count_rises", "repeat_estimates",
           "is_interior",
           "theory_free_choice", "bias_interval", "known_critical_points", "calibration_reading",
           "calibrate", "crossover_n"]


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


def choose_closest(table: pd.DataFrame,
                   theory: dict[int, float]) -> tuple[float, float, pd.DataFrame]:
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
        raise ValueError("No swept (lr, nbeta) orders the polygons as theory does; widen the "
                         "sweep.")
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
    models: dict[int, tuple[torch.Tensor, torch.Tensor]], x: torch.Tensor, repeats: int, *,
    lr: float,
    nbeta: float, localization: float, chains: int, draws: int, burnin: int, batch: int,
    seed: int = 12, device: torch.device | str = "cpu",
) -> torch.Tensor:
    """``repeats`` independent estimates per polygon at one setting: ``[polygons, repeats]``
    (CPU)."""
    W = torch.stack([models[k][0] for k in models for _ in range(repeats)]).to(device)
    b = torch.stack([models[k][1] for k in models for _ in range(repeats)]).to(device)
    res = llc.estimate_llc(W, b, x.to(device), lr=lr, nbeta=nbeta, localization=localization,
                           num_chains=chains, num_draws=draws, num_burnin_steps=burnin,
                           batch_size=batch, seed=seed)
    return res.llc_mean.view(len(models), repeats).cpu()


def choose_on(table: pd.DataFrame, theory: dict[int, float],
              reps: list[int]) -> tuple[float, float, pd.DataFrame]:
    """:func:`choose_closest` on the mean of the estimates with ``rep`` in ``reps`` only (the
    selection seeds), so that the other repeats can report the chosen setting unbiased."""
    sel = table[table.rep.isin(reps)].groupby(["polygon", "lr", "nbeta"],
                                              as_index=False).llc.mean()
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


def bias_interval(estimates, theory: float, n_boot: int = 2000,
                  seed: int = 0) -> tuple[float, float, float]:
    """Mean of ``estimates`` minus ``theory``, with a 95% bootstrap interval over the estimates
    (independent SGLD runs); NaN estimates (diverged) are dropped, all-NaN gives NaNs."""
    v = np.asarray(estimates, float)
    v = v[np.isfinite(v)]
    if len(v) < 2:
        return float("nan"), float("nan"), float("nan")
    m, lo, hi = stats.mean_ci(v - theory, n_boot=n_boot, seed=seed)
    return m, lo, hi


def known_critical_points(n_quad: int = 4000) -> dict:
    """Chen et al.'s regular hexagon and pentagon at their exact optima under the one-hot uniform
    law, and their learning coefficients as half the Hessian rank (minimal singularity assumed).

    Returns ``polygons`` (k -> (W ``[2, 6]``, b ``[6]``)), ``theory`` (k -> rank / 2), ``rank``
    ``[2]`` and ``table`` (radius, bias, loss x 6, rank, rank / 2 per polygon)."""
    fits = {k: tms.fit_regular_kgon(k) for k in (6, 5)}
    mu = (torch.arange(n_quad, dtype=torch.float64) + 0.5) / n_quad
    x = (torch.eye(6, dtype=torch.float64)[:, None, :] * mu[None, :, None]).reshape(-1, 6)
    H = tms.hessian(torch.stack([f[0] for f in fits.values()]),
                    torch.stack([f[1] for f in fits.values()]), x)
    rank, _, _ = tms.hessian_rank(H)
    theory = {k: float(r) / 2 for k, r in zip(fits, rank.tolist())}
    table = pd.DataFrame({"radius": [f[0][:, 0].norm().item() for f in fits.values()],
                          "bias": [f[1][0].item() for f in fits.values()],
                          "loss x 6 (Chen et al.'s sum)": [6 * f[2] for f in fits.values()],
                          "Hessian rank": rank.tolist(), "rank / 2": list(theory.values())},
                         index=[f"{k}-gon" for k in fits])
    return dict(polygons={k: f[:2] for k, f in fits.items()}, theory=theory, rank=rank,
                table=table)


def calibration_reading(
    sel_mean: pd.DataFrame, held: torch.Tensor, held_free: torch.Tensor | None,
    theory: dict[int, float], chosen: tuple[float, float], free: tuple[float | None, float],
    lrs: list[float], nbetas: list[float], n_boot: int,
) -> dict:
    """What the calibration says: held-out bias per polygon at the chosen setting and at the
    theory-free one, whether the choice is interior, how often a hexagon estimate exceeds a
    pentagon one, and how the estimate moves along each knob of the sweep.

    Args:
        sel_mean: mean sweep estimate per (polygon, lr, nbeta) on the selection chains.
        held, held_free: ``[polygons, repeats]`` held-out estimates (in ``theory``'s order) at
            ``chosen`` = (ε, nβ) and at ``free`` = (ε or None, nβ).
    Returns: ``bias`` and ``free_bias`` (k -> (mean, lo, hi)), ``order_frac`` and the phrases
    ``chosen_md``, ``free_md`` and ``trend_md``."""
    ks = list(theory)
    bias = {k: bias_interval(held[i].numpy(), theory[k], n_boot) for i, k in enumerate(ks)}
    nan3 = (float("nan"),) * 3
    free_bias = {k: bias_interval(held_free[i].numpy(), theory[k], n_boot)
                 if held_free is not None else nan3 for i, k in enumerate(ks)}
    lr, nb = chosen
    inside = is_interior(lrs, lr) and is_interior(nbetas, nb)
    chosen_md = (f"ε = {lr:g} and nβ = {nb:g}, "
                 + ("inside the swept grid on both axes" if inside
                    else "at an edge of the swept grid"))
    free_md = ("no step size passes the theory-free rule" if held_free is None else
               f"the theory-free rule picks ε = {free[0]:g} at nβ = {free[1]:.0f}; there the "
               "held-out bias is " + " and ".join(
                   f"{format_interval(*free_bias[k], signed=True, digits=2)} ({k}-gon)"
                   for k in ks))
    up_lr, n_lr = count_rises(sel_mean, "nbeta", "lr")
    up_nb, n_nb = count_rises(sel_mean, "lr", "nbeta")
    trend = (f"raising ε raises the estimate in {up_lr} of {n_lr} neighbouring pairs of settings "
             f"and raising nβ in {up_nb} of {n_nb}")
    order = float((held[0][:, None] > held[1][None, :]).float().mean())
    return dict(bias=bias, free_bias=free_bias, order_frac=order, chosen_md=chosen_md,
                free_md=free_md, trend_md=trend)


def calibrate(
    polygons: dict[int, tuple[torch.Tensor, torch.Tensor]], theory: dict[int, float], *, n: int,
    lrs: list[float], nbetas: list[float], chains: int, draws: int, burnin: int,
    select_reps: int, heldout: int, grid_chains: int, grid_draws: int, grid_burnin: int,
    batch: int, localization: float, drift_tol: float, n_boot: int,
    device: torch.device | str = "cpu",
) -> dict:
    """The whole calibration, cached: sweep (ε, nβ) at the known polygons on ``n`` one-hot uniform
    samples (nβ = n / ln n added to ``nbetas``), choose the setting closest to ``theory`` on the
    ``select_reps`` selection repeats, pick the theory-free step size (:func:`theory_free_choice`)
    and draw ``heldout`` fresh estimates per polygon at both, with the grid's own chain settings
    (``grid_chains``, ``grid_draws``, ``grid_burnin``).

    Returns: ``calib`` (the sweep table), ``sel_mean``, ``lr``, ``nbeta`` (chosen), ``wide``
    (the sweep per polygon), ``lr_free``, ``nb_free``, ``traces`` (k -> running traces at the
    chosen setting) and the keys of :func:`calibration_reading`."""
    from helpers.cache import cached

    nb_free = round(llc.default_nbeta(n), 1)
    nbs = sorted(set(nbetas) | {nb_free})
    x = tms.make_data(n, None, "onehot_uniform", generator=torch.Generator().manual_seed(1))
    kw = dict(localization=localization, batch=batch, device=device)
    calib, trace = cached(
        "tms_calib", dict(v=3, n=n, lrs=lrs, nbs=nbs, c=chains, d=draws, bi=burnin, bs=batch,
                          gamma=localization, r=select_reps),
        lambda: sweep(polygons, x, lrs, nbs, chains=chains, draws=draws, burnin=burnin,
                      repeats=select_reps, **kw))
    sel_mean = calib.groupby(["polygon", "lr", "nbeta"], as_index=False).llc.mean()
    lr, nb, wide = choose_closest(sel_mean, theory)
    lr_free = theory_free_choice(calib, nb_free, drift_tol)

    def held(lr_: float | None, nb_: float, seed: int) -> torch.Tensor | None:
        if lr_ is None:
            return None
        key = dict(v=1, n=n, lr=lr_, nb=nb_, r=heldout, c=grid_chains, d=grid_draws,
                   bi=grid_burnin, bs=batch, s=seed)
        return cached("tms_calib_heldout", key, lambda: repeat_estimates(
            polygons, x, heldout, lr=lr_, nbeta=nb_, chains=grid_chains, draws=grid_draws,
            burnin=grid_burnin, seed=seed, **kw))

    reading = calibration_reading(sel_mean, held(lr, nb, 12), held(lr_free, nb_free, 13), theory,
                                  (lr, nb), (lr_free, nb_free), lrs, nbs, n_boot)
    chosen = (calib.lr == lr) & (calib.nbeta == nb) & (calib.rep == 0)
    traces = {k: trace[calib.index[chosen & (calib.polygon == k)][0]] for k in polygons}
    return dict(calib=calib, sel_mean=sel_mean, lr=lr, nbeta=nb, wide=wide, lr_free=lr_free,
                nb_free=nb_free, traces=traces, **reading)


def crossover_n(d_lambda: float, d_loss: float) -> float:
    """Sample size at which the leading terms of the free energy, n L + λ ln n, of two critical
    points cross: the larger root of n ΔL = Δλ ln n (ΔL > 0 the higher-loss point's excess, Δλ > 0
    the lower-loss point's extra learning coefficient). Below it the simpler point wins.

    Example:
        >>> round(crossover_n(1.5, 0.02055))
        445
    """
    from scipy.optimize import brentq

    if not (d_lambda > 0 and d_loss > 0):
        raise ValueError(f"Expected d_lambda > 0 and d_loss > 0, but got {d_lambda} and {d_loss}.")
    c = d_lambda / d_loss
    if c <= np.e:  # n / ln n >= e for every n > 1: the lower-loss point wins at every n
        return 1.0
    return float(brentq(lambda n: n - c * np.log(n), c, 100 * c))
