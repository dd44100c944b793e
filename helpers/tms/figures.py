"""The chapter's figures, each a function of the tables the chapter computes (returns the figure;
the chapter shows it with :func:`helpers.plotting.show`)."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from helpers.plotting import NULL_COLOR, PALETTE

__all__ = ["calibration_figure", "kgon_counts_figure", "scatter_figure", "puzzle_figure",
           "write_gif",
           "start_contrast_figure", "correlation_figure", "prune_summary_figure",
           "llc_slider_figure",
           "lmc_figure", "prune_figure", "write_animations", "basin_figure"]

SPARSITY_LABEL = "sparsity S (probability a feature is off)"


def calibration_figure(calib: pd.DataFrame, traces: dict[int, torch.Tensor],
                       theory: dict[int, float]) -> plt.Figure:
    """Left: estimate against ε per nβ and polygon (``calib``: one row per polygon, lr, nbeta with
    ``llc``; dashed: theory). Right: running LLC per chain at the chosen setting (``traces``:
    polygon -> ``[chains, draws]``)."""
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.6))
    for j, nb in enumerate(sorted(calib.nbeta.unique())):
        for k, ls in zip(sorted(theory, reverse=True), ("-", ":")):
            d = calib[(calib.polygon == k) & (calib.nbeta == nb)].sort_values("lr")
            a1.plot(d.lr, d.llc, ls=ls, marker="o", ms=3, color=PALETTE[j % len(PALETTE)],
                    label=f"{k}-gon, nβ = {nb:g}")
    for v in theory.values():
        a1.axhline(v, color=NULL_COLOR, ls="--", lw=1)
    a1.set(xscale="log", xlabel="SGLD step size ε", ylabel="estimated LLC (selection seeds)")
    a1.set_ylim(bottom=min(0, np.nanmin(calib.llc)), top=3 * max(theory.values()))
    a1.legend(ncol=2, fontsize=6)
    for k, col in zip(sorted(theory, reverse=True), PALETTE):
        for c, tr in enumerate(traces[k]):
            a2.plot(tr.numpy(), color=col, lw=0.7, alpha=0.6, label=None if c else f"{k}-gon")
        a2.axhline(theory[k], color=col, ls="--", lw=1)
    a2.set(xlabel="draw (after burn-in)", ylabel="running LLC estimate")
    a2.legend()
    return fig


def kgon_counts_figure(grid: pd.DataFrame, inits: tuple[str, ...]) -> plt.Figure:
    """Stacked bars: how many seeds reached each polygon label, per sparsity, one panel per
    start."""
    counts = grid.groupby(["init", "sparsity", "kgon"]).size().unstack(fill_value=0)
    labels = sorted(counts.columns, key=lambda s: (-int(s[0]), s))
    fig, axes = plt.subplots(1, len(inits), figsize=(9, 3.2), sharey=True)
    cmap = plt.get_cmap("tab20")
    for ax, init in zip(np.atleast_1d(axes), inits):
        c = counts.loc[init].reindex(columns=labels, fill_value=0)
        bottom = np.zeros(len(c))
        for j, lab in enumerate(labels):
            ax.bar(range(len(c)), c[lab], bottom=bottom, color=cmap(j % 20), label=lab)
            bottom += c[lab].values
        ax.set_xticks(range(len(c)), [f"{s:.3f}" for s in c.index])
        ax.set(xlabel=SPARSITY_LABEL, title=f"{init} start")
    axes = np.atleast_1d(axes)
    axes[0].set_ylabel("number of seeds")
    axes[-1].legend(title="polygon", fontsize=6, ncol=2, bbox_to_anchor=(1, 1), loc="upper left")
    return fig


def scatter_figure(long: pd.DataFrame, steps: list[int], spars: list[float],
                   inits: tuple[str, ...]) -> plt.Figure:
    """Train loss against LLC, one column per checkpoint and one row per start, coloured by
    sparsity."""
    fig, axes = plt.subplots(len(inits), len(steps), figsize=(11, 4.6), sharey="row",
                             squeeze=False)
    for r, init in enumerate(inits):
        for c, s in enumerate(steps):
            ax = axes[r, c]
            for j, S in enumerate(spars):
                d = long[(long.init == init) & (long.step == s) & np.isclose(long.sparsity, S)]
                ax.scatter(d.llc, d.loss, s=10, color=PALETTE[j % len(PALETTE)],
                           label=f"S={S:.3f}")
            ax.set_yscale("log")
            # a few large negative estimates squeeze the rest
            ax.set_xscale("symlog", linthresh=10)
            ax.axvline(0, color=NULL_COLOR, lw=1)
            if r == 0:
                ax.set_title(f"step {s}")
            if r == len(inits) - 1:
                ax.set_xlabel("estimated LLC (symlog)")
        axes[r, 0].set_ylabel(f"{init} start\ntrain loss (MSE)")
    axes[0, -1].legend(fontsize=6)
    return fig


def puzzle_figure(puzzle: pd.DataFrame, inits: tuple[str, ...]) -> plt.Figure:
    """Left: between-seed LLC variance against chain-noise variance. Right: within-cell Pearson r
    with its interval (filled) and r over positive-LLC models only (open)."""
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.3))
    for j, init in enumerate(inits):
        d = puzzle[puzzle.init == init]
        a1.scatter(d.chain_noise_var, d.between_seed_var, color=PALETTE[j], label=f"{init} start")
        off = -0.004 if j == 0 else 0.004
        err = [np.clip(d.r - d.r_lo, 0, None), np.clip(d.r_hi - d.r, 0, None)]
        a2.errorbar(d.sparsity + off, d.r, err, fmt="o", color=PALETTE[j], capsize=2,
                    label=f"{init} start, all seeds")
        a2.scatter(d.sparsity + 3 * off, d.r_llc_pos, facecolors="none", edgecolors=PALETTE[j],
                   label=f"{init} start, LLC > 0 only")
    v = pd.concat([puzzle.chain_noise_var, puzzle.between_seed_var])
    lim = [v.min() * 0.5, v.max() * 2]
    a1.plot(lim, lim, color=NULL_COLOR, ls="--")
    a1.set(xscale="log", yscale="log", xlabel="chain-noise variance of one model's LLC",
           ylabel="between-seed variance of the LLC")
    a1.legend(fontsize=7)
    a2.axhline(0, color=NULL_COLOR, ls="--")
    a2.set(ylim=(-1.05, 1.05), xlabel=SPARSITY_LABEL, ylabel="Pearson r of loss and LLC")
    a2.legend(fontsize=6)
    return fig


def lmc_figure(cross: pd.DataFrame, ctrl: pd.DataFrame, spars: list[float],
               ylabel: str = "loss barrier (MSE) + 1e-6") -> plt.Figure:
    """Barriers before (grey) and after (colour: same or different polygon) alignment, by sparsity;
    left the cross-start pairs, right the same-start control."""
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2), sharey=True)
    for ax, d, title in ((axes[0], cross, "4-gon vs 6-gon start"),
                         (axes[1], ctrl, "same start (control)")):
        for j, S in enumerate(spars):
            e = d[np.isclose(d.sparsity, S)]
            jit = (np.random.default_rng(j).random(len(e)) - 0.5) * 0.25
            ax.scatter(j + jit - 0.15, e.unaligned + 1e-6, s=8, color=NULL_COLOR)
            ax.scatter(j + jit + 0.15, e.aligned + 1e-6, s=8,
                       color=np.where(e.same_kgon, PALETTE[0], PALETTE[1]))
        ax.set_xticks(range(len(spars)), [f"{s:.3f}" for s in spars])
        ax.set(yscale="log", xlabel=SPARSITY_LABEL, title=title)
    axes[0].set_ylabel(ylabel)
    for col, lab in ((NULL_COLOR, "unaligned"), (PALETTE[0], "aligned, same polygon"),
                     (PALETTE[1], "aligned, different polygon")):
        axes[0].scatter([], [], color=col, label=lab)
    axes[0].legend(fontsize=6)
    return fig


def prune_figure(frac: pd.DataFrame, rel: pd.DataFrame) -> plt.Figure:
    """Left: fraction of models per outcome against weights left. Right: median final loss over the
    dense model's, per sparsity (``rel``: weights x sparsity)."""
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.2))
    for j, col in enumerate(["kept", "fewer corners", "changed"]):
        if col in frac:
            a1.plot(frac.index, frac[col], marker="o", color=PALETTE[j], label=col)
    a1.invert_xaxis()
    a1.set(xlabel="weights left in W (of 12)", ylabel="fraction of models")
    a1.legend()
    for j, S in enumerate(rel.columns):
        a2.plot(rel.index, rel[S], marker="o", color=PALETTE[j % len(PALETTE)], label=f"S={S:.3f}")
    a2.axhline(1, color=NULL_COLOR, ls="--")
    a2.invert_xaxis()
    a2.set(xlabel="weights left in W (of 12)", ylabel="final loss / dense model's loss")
    a2.legend(fontsize=6)
    return fig


def write_gif(anim, path: str | Path, dpi: int = 100, fps: int = 4) -> Path:
    """Save a matplotlib animation as a GIF at ``path``, atomically (a temporary ``.gif`` in the
    same folder, renamed into place), so a page never links a half-written file."""
    from matplotlib.animation import PillowWriter

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".gif")
    os.close(fd)
    try:
        anim.save(tmp, writer=PillowWriter(fps=fps), dpi=dpi)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; the site serves it
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def start_contrast_figure(contrast: pd.DataFrame) -> plt.Figure:
    """4-gon minus 6-gon start, per sparsity: mean final loss (left) and best seed (right), with
    95% bootstrap intervals; below zero the 4-gon start is better."""
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.0), sharex=True)
    for ax, col, title in ((axes[0], "mean", "mean over seeds"), (axes[1], "best", "best seed")):
        d = contrast
        err = [d[f"{col}_diff"] - d[f"{col}_lo"], d[f"{col}_hi"] - d[f"{col}_diff"]]
        ax.errorbar(range(len(d)), d[f"{col}_diff"], err, fmt="o", color=PALETTE[0], capsize=3)
        ax.axhline(0, color=NULL_COLOR, ls="--")
        ax.set_xticks(range(len(d)), [f"{s:.3f}" for s in d.sparsity])
        ax.set(xlabel=SPARSITY_LABEL, title=title)
    axes[0].set_ylabel("final loss, 4-gon start − 6-gon start")
    return fig


def correlation_figure(corr: pd.DataFrame, inits: tuple[str, ...]) -> plt.Figure:
    """Loss-LLC Spearman (filled, 95% interval) and Pearson (open) per (sparsity, polygon) cell,
    one panel per start; cells are labelled "S / polygon"."""
    fig, axes = plt.subplots(1, len(inits), figsize=(10, 3.4), sharey=True, squeeze=False)
    for ax, init in zip(axes[0], inits):
        d = corr[corr.init == init].reset_index(drop=True)
        x = np.arange(len(d))
        err = [d.spearman - d.spearman_lo, d.spearman_hi - d.spearman]
        ax.errorbar(x - 0.1, d.spearman, err, fmt="o", color=PALETTE[0], capsize=2,
                    label="Spearman")
        err = [d.pearson - d.pearson_lo, d.pearson_hi - d.pearson]
        ax.errorbar(x + 0.1, d.pearson, err, fmt="o", mfc="none", color=PALETTE[1], capsize=2,
                    label="Pearson")
        ax.axhline(0, color=NULL_COLOR, ls="--")
        ax.set_xticks(x, [f"{s:.3f} / {k}" for s, k in zip(d.sparsity, d.kgon)], rotation=60,
                      fontsize=7)
        ax.set(title=f"{init} start", ylim=(-1.05, 1.05), xlabel="sparsity / final polygon")
    axes[0, 0].set_ylabel("correlation of loss and LLC")
    axes[0, 0].legend(fontsize=7)
    return fig


def prune_summary_figure(summary: pd.DataFrame) -> plt.Figure:
    """Left: fraction of models keeping the dense model's polygon, pruned (IMP) and rewound without
    pruning (control). Right: IMP's final loss over the control's (geometric mean, 95%
    interval)."""
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.0))
    a1.plot(summary.weights, summary.kept_imp, marker="o", color=PALETTE[0],
            label="pruned and rewound")
    a1.plot(summary.weights, summary.kept_control, marker="s", color=NULL_COLOR,
            label="rewound, not pruned")
    a1.set(xlabel="weights left in W (of 12)", ylabel="fraction keeping its polygon",
           ylim=(-0.05, 1.05))
    a1.invert_xaxis()
    a1.legend(fontsize=7)
    err = [summary.loss_ratio - summary.lo, summary.hi - summary.loss_ratio]
    a2.errorbar(summary.weights, summary.loss_ratio, err, fmt="o", color=PALETTE[0], capsize=3)
    a2.axhline(1, color=NULL_COLOR, ls="--")
    a2.set(xlabel="weights left in W (of 12)", ylabel="final loss, pruned / control", yscale="log")
    a2.invert_xaxis()
    return fig


def llc_slider_figure(final: pd.DataFrame, inits: tuple[str, ...]):
    """Interactive (plotly) final train loss against LLC, one slider step per sparsity, one trace
    per start; hovering a point names its start, seed and polygon. ``final`` has columns init,
    sparsity, seed, kgon, llc, loss (NaN LLCs are left out)."""
    import plotly.graph_objects as go

    from helpers import interactive

    d = final.dropna(subset=["llc"])
    frames = {}
    for S in sorted(d.sparsity.unique()):
        traces = []
        for j, init in enumerate(inits):
            e = d[(d.sparsity == S) & (d.init == init)]
            traces.append(go.Scatter(
                x=e.llc.tolist(), y=e.loss.tolist(), mode="markers", name=f"{init} start",
                marker=dict(color=PALETTE[j], size=7), text=[f"{init} start, seed {s}, polygon {k}"
                                                             for s, k in zip(e.seed, e.kgon)],
                hovertemplate="%{text}<br>LLC %{x:.2f}, loss %{y:.4f}<extra></extra>"))
        frames[f"S = {S:.3f}"] = traces
    lo, hi = float(d.llc.quantile(0.01)), float(d.llc.quantile(0.99))
    return interactive.slider_figure(
        frames, slider_label="sparsity", title="Final train loss against LLC, every model",
        layout=dict(xaxis=dict(title="estimated LLC", range=[lo - 1, hi + 1]),
                    yaxis=dict(title="train loss (MSE)", type="log"), height=430))


def write_animations(run, grid: pd.DataFrame, s_idx: int, seed: int, sparsity: float, *,
                     frames: int, dpi: int, stem: str = "superposition_llc-anim") -> list[Path]:
    """One GIF per start of the model with sparsity index ``s_idx`` and ``seed``
    (:func:`helpers.tms.model.animate_run`), written as ``{stem}-{init}.gif``."""
    from helpers.tms import model as tms

    paths = []
    for init in tms.INITS:
        m = grid.index[(grid.init == init) & (grid.s_idx == s_idx) & (grid.seed == seed)][0]
        fig, anim = tms.animate_run(run.steps, run.W[m], run.b[m], run.train_loss[m],
                                    frames=frames, title=f"{init} start, sparsity {sparsity:.3f}")
        paths.append(write_gif(anim, f"{stem}-{init}.gif", dpi=dpi))
        plt.close(fig)
    return paths


def basin_figure(summary: pd.DataFrame, spars: list[float]) -> plt.Figure:
    """Fraction of distinct pairs whose model ends nearer the other start's solution, against
    the pull strength (log axis; the no-pull control as open squares at the left edge), one
    line per sparsity,
    one panel per direction, with 95% bootstrap intervals over pairs (from
    :func:`helpers.tms.basin.switch_summary`)."""
    dirs = sorted(summary.direction.unique())
    fig, axes = plt.subplots(1, len(dirs), figsize=(10, 3.4), sharey=True, squeeze=False)
    pulls = np.sort(summary.pull.unique())
    pos = pulls[pulls > 0]
    zero_at = pos.min() / 3 if len(pos) else 1e-3  # where the no-pull control is drawn
    for ax, d in zip(axes[0], dirs):
        for j, S in enumerate(spars):
            e = summary[(summary.direction == d)
                        & np.isclose(summary.sparsity, S)].sort_values("pull")
            if e.empty:
                continue
            color = PALETTE[j % len(PALETTE)]
            for part, style in ((e[e.pull > 0], dict(marker="o", label=f"S = {S:.2f}")),
                                (e[e.pull == 0], dict(marker="s", mfc="none", ls="none"))):
                x = np.where(part.pull > 0, part.pull, zero_at)  # the control at the left edge
                ax.errorbar(x, part.switched, [part.switched - part.lo, part.hi - part.switched],
                            ms=3, capsize=2, color=color, **style)
        ax.axvline(np.sqrt(zero_at * pos.min()) if len(pos) else zero_at, color=NULL_COLOR, ls=":")
        ax.set(xscale="log", title=d, xlabel="pull strength κ (left of the dotted line: no pull)",
               ylim=(-0.05, 1.05))
    axes[0, 0].set_ylabel("fraction ending nearer the target")
    axes[0, -1].legend(fontsize=7, ncol=2)
    return fig
