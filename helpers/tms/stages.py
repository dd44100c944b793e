"""The chapter's cached stages: training the grid, the reference project's LLC protocol, basin
hopping and pruning, each stored in :mod:`helpers.cache` under a key of everything that
determines it, so a rerun loads it and a changed setting recomputes it.

The keys are the chapter's own (namespaces ``tms_train``, ``tms_llc_ref``, ``tms_basin`` and
``tms_imp``; :func:`llc_key` and :func:`variant_key` build those of the LLC grid, ``tms_llc``,
and of the power-law grids, ``tms_variant``); the grid enters a key as its first four columns
(``init``, ``s_idx``, ``sparsity``, ``seed``), so an annotated grid and a fresh one key alike.

Example:
    >>> from helpers.tms.grid import make_grid
    >>> [row[:2] + row[3:] for row in _grid_key(make_grid([1], n_seeds=1))]
    [['4-gon', 1, 0], ['6-gon', 1, 0]]
"""
from __future__ import annotations

import pandas as pd
import torch

from helpers.cache import cached
from helpers.tms import basin as tbasin
from helpers.tms import grid as tgrid
from helpers.tms import model as tms

__all__ = ["cached_training", "cached_reference_llc", "cached_basin_table", "cached_pruning",
           "llc_key", "variant_key"]

_SAMPLER_KEYS = dict(lr="lr", nb="nbeta", g="localization", c="chains", d="draws", bi="burnin",
                     bs="batch")
"""Short key names of the SGLD settings -> their names in the sampler's keyword arguments."""


def _grid_key(grid: pd.DataFrame) -> list:
    """The grid's identifying columns as a JSON-ready list of rows."""
    return grid.values[:, :4].tolist()


def cached_training(
    grid: pd.DataFrame, *, steps: int, log_at: list[int], n_train: int, n_test: int, lr: float,
    momentum: float, device: torch.device | str = "cpu",
) -> tms.TrainResult:
    """:func:`helpers.tms.grid.train_grid` on pattern counts, cached.

    Args:
        grid: the experiment grid (one row per model); steps, log_at, n_train, n_test, lr,
            momentum: as in :func:`helpers.tms.grid.train_grid`.
    Returns: the :class:`helpers.tms.model.TrainResult` of every model.
    """
    key = dict(v=2, grid=_grid_key(grid), steps=steps, log=log_at, n=n_train, nt=n_test, lr=lr,
               mom=momentum)
    return tms.TrainResult(**cached("tms_train", key, lambda: tgrid.train_grid(
        grid, steps, log_at, n_train, n_test, lr, momentum, device, compress=True)))


def cached_reference_llc(
    run: tms.TrainResult, grid: pd.DataFrame, *, steps: int, n_train: int, train_lr: float,
    lr: float, n: int, chains: int, draws: int, device: torch.device | str = "cpu",
) -> dict:
    """The reference project's LLC protocol (:func:`helpers.tms.grid.reference_protocol_llc`) at
    the final weights of ``run``, cached.

    Args:
        steps, n_train, train_lr: the training settings behind ``run`` (part of the key).
        lr, n, chains, draws: the protocol's step size, fresh samples, chains and draws.
    Returns: ``mean`` ``[M]`` and the chain variance ``var`` ``[M]``.
    """
    key = dict(v=3, grid=_grid_key(grid), steps=steps, n=n_train, lr=lr, rn=n, c=chains,
               d=draws, lrt=train_lr)
    return cached("tms_llc_ref", key, lambda: tgrid.reference_protocol_llc(
        run.W[:, -1], run.b[:, -1], grid, n, lr=lr, chains=chains, draws=draws, device=device,
        compress=True))


def cached_basin_table(
    run: tms.TrainResult, grid: pd.DataFrame, x_train: torch.Tensor, pulls: list[float], *,
    steps: int, n_train: int, lr: float, momentum: float, pull_steps: int, release_steps: int,
    min_distance: float, device: torch.device | str = "cpu",
) -> pd.DataFrame:
    """:func:`helpers.tms.basin.basin_table` at the final weights of ``run``, cached.

    Args:
        x_train: ``[M, n, 6]`` the models' training sets; pulls, pull_steps, release_steps,
            min_distance, lr, momentum: as in :func:`helpers.tms.basin.basin_table`.
        steps, n_train: the training settings behind ``run`` (part of the key).
    Returns: the basin table, one row per (direction, pair, pull).
    """
    key = dict(v=1, grid=_grid_key(grid), steps=steps, n=n_train, lr=lr, p=pulls, ps=pull_steps,
               rs=release_steps, d=min_distance)
    table = cached("tms_basin", key, lambda: tbasin.basin_table(
        grid, run.W[:, -1], run.b[:, -1], x_train, pulls, pull_steps=pull_steps,
        release_steps=release_steps, min_distance=min_distance, lr=lr, momentum=momentum,
        device=device).to_dict("list"))
    return pd.DataFrame(table)


def cached_pruning(
    run: tms.TrainResult, grid: pd.DataFrame, x_train: torch.Tensor, *, steps: int,
    log_at: list[int], n_train: int, n_seeds: int, rounds: int, per_round: int,
    rewind_frac: float, lr: float, momentum: float, device: torch.device | str = "cpu",
) -> dict:
    """:func:`helpers.tms.grid.prune_grid` with its no-pruning control, cached.

    Args:
        x_train: ``[M, n, 6]`` the models' training sets; n_seeds, rounds, per_round,
            rewind_frac, lr, momentum: as in :func:`helpers.tms.grid.prune_grid`.
        steps, log_at, n_train: the training settings behind ``run`` (part of the key).
    Returns: :func:`helpers.tms.grid.prune_grid`'s dict, control included.
    """
    key = dict(v=2, grid=_grid_key(grid), steps=steps, n=n_train, log=log_at, s=n_seeds,
               r=rounds, p=per_round, f=rewind_frac, lr=lr)
    return cached("tms_imp", key, lambda: tgrid.prune_grid(
        run, grid, x_train, steps, n_seeds=n_seeds, rounds=rounds, per_round=per_round,
        rewind_frac=rewind_frac, lr=lr, momentum=momentum, device=device, compress=True,
        control=True))


def llc_key(grid: pd.DataFrame, *, log_at: list[int], llc_n: int, train: dict,
            sampler: dict) -> dict:
    """The cache key of the grid's LLC estimates (:func:`helpers.tms.grid.llc_tables`, namespace
    ``tms_llc``): the grid, its training and the sampler's settings.

    Args:
        grid: the experiment grid (fresh or annotated); log_at: the logged training steps.
        llc_n: fresh samples per sparsity on which SGLD runs.
        train: the training settings (``steps``, ``n_train``, ``lr``, ``momentum``; others
            ignored). sampler: the SGLD settings (``lr``, ``nbeta``, ``localization``,
            ``chains``, ``draws``, ``burnin``, ``batch``; others ignored).
    Returns: the key, a JSON-ready dict.
    """
    sgld = {short: sampler[name] for short, name in _SAMPLER_KEYS.items()}
    sgld["lr"], sgld["nb"] = float(sgld["lr"]), float(sgld["nb"])
    return dict(v=3, grid=_grid_key(grid), steps=train["steps"], log=log_at, n=train["n_train"],
                **sgld, nl=llc_n, lrt=train["lr"], mom=train["momentum"])


def variant_key(grid: pd.DataFrame, llc: dict, *, n_test: int, descent_steps: int,
                alpha: float) -> dict:
    """The cache key of a power-law grid (:func:`helpers.tms.variants.compare_laws` adds the
    law's name; namespace ``tms_variant``), trained and sampled as the uniform grid.

    Args:
        grid: the power-law experiment grid; llc: the uniform grid's :func:`llc_key` (its
            training and sampler settings are taken from there).
        n_test, descent_steps, alpha: as in :func:`helpers.tms.variants.run_variant`.
    Returns: the key, a JSON-ready dict.
    """
    return dict(v=1, grid=_grid_key(grid), steps=llc["steps"], log=llc["log"], n=llc["n"],
                nt=n_test, lr=llc["lrt"], mom=llc["mom"], nl=llc["nl"], ds=descent_steps,
                a=alpha, llc={k: llc[k] for k in _SAMPLER_KEYS})
