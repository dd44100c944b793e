"""Figures of the LIBERO chapter: demonstration frames with their actions, per-block alignment
profiles against their null bands, and success rates with intervals.

Each function returns a matplotlib figure (shown and closed by ``helpers.plotting.show``).
"""
from __future__ import annotations

import numpy as np
import matplotlib.pyplot as plt

from helpers.plotting import NULL_COLOR, PALETTE
from helpers.libero.action_alignment import ACTION_NAMES, AlignmentResult
from helpers.libero.demos import Demos

HATCHES = (None, "//", "..", "xx", "\\\\")


def plot_demo_frames(demos: Demos, n: int = 4, episode: int = 0):
    """Agentview and wrist frames at ``n`` evenly spaced steps of one demo, with the raw action
    at each (translation, rotation, gripper in three colours)."""
    rows = np.flatnonzero(demos.episode == episode)
    if len(rows) == 0:
        raise ValueError(f"episode {episode} not in the demos (0..{demos.n_episodes - 1}).")
    idx = rows[np.linspace(0, len(rows) - 1, n).astype(int)]
    size = demos.agentview.shape[1]
    fig, axes = plt.subplots(3, n, figsize=(2.4 * n, 6.4),
                             gridspec_kw=dict(height_ratios=[1, 1, 0.7]))
    colours = [PALETTE[0]] * 3 + [PALETTE[1]] * 3 + [PALETTE[2]]
    for c, i in enumerate(idx):
        axes[0, c].imshow(demos.agentview[i])
        axes[0, c].set_title(f"step {demos.step[i]}")
        axes[1, c].imshow(demos.wrist[i])
        axes[2, c].bar(range(7), demos.actions[i], color=colours)
        axes[2, c].set_xticks(range(7), ACTION_NAMES, rotation=90, fontsize=9)
        axes[2, c].set_ylim(-1.05, 1.05)
        for ax in axes[:2, c]:
            ax.axis("off")
    axes[0, 0].text(-8, size / 2, "agentview", rotation=90, va="center", ha="right")
    axes[1, 0].text(-8, size / 2, "wrist", rotation=90, va="center", ha="right")
    axes[2, 0].set_ylabel("action (raw units)")
    return fig


def plot_action_histograms(norm: dict[int, np.ndarray]):
    """Histogram of each normalised action dimension, one line colour per task."""
    fig, axes = plt.subplots(1, 7, figsize=(14, 2.6), sharey=True)
    for j, name in enumerate(ACTION_NAMES):
        for c, (k, a) in enumerate(norm.items()):
            axes[j].hist(a[:, j], bins=21, range=(-1, 1) if j < 6 else (0, 1), histtype="step",
                         color=PALETTE[c % len(PALETTE)], density=True, label=f"task {k}")
        axes[j].set_xlabel(name if j < 6 else "grip (1 = open)")
    axes[0].set_ylabel("density")
    axes[-1].legend(fontsize=8)
    return fig


def null_band(ax, x, result: AlignmentResult, colour, label: str, hatch=None) -> None:
    """The observed per-layer curve of ``result`` with its null mean +- 2 sd as a grey band."""
    ax.plot(x, result.observed, "o-", color=colour, label=label)
    ax.fill_between(x, result.null_mean - 2 * result.null_std,
                    result.null_mean + 2 * result.null_std,
                    color=NULL_COLOR, alpha=0.25, hatch=hatch, edgecolor=colour, lw=0,
                    label=f"null, {label}")
    ax.plot(x, result.null_mean, "--", color=NULL_COLOR, lw=1)


def plot_layer_profiles(panels: list[tuple[str, dict[str, AlignmentResult]]], topk: int,
                        xlabel: str = "encoder block", relative: bool = False):
    """One panel per (title, {label: result}); each curve over blocks with its null band.
    ``relative``: x is block / last block, so encoders of different depth share an axis."""
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 3.8), squeeze=False)
    for ax, (title, results) in zip(axes[0], panels):
        for c, (label, r) in enumerate(results.items()):
            x = np.arange(len(r.observed))
            x = x / max(1, len(x) - 1) if relative else x
            null_band(ax, x, r, PALETTE[c % len(PALETTE)], label, HATCHES[c % len(HATCHES)])
        if relative:
            ax.set_xticks(np.linspace(0, 1, 5))
        else:
            ax.set_xticks(x if len(x) <= 12 else x[:: max(1, len(x) // 8)])
        ax.set_xlabel(xlabel)
        ax.set_ylabel(f"mutual kNN (k = {topk})")
        ax.set_title(title)
    axes[0, 0].legend(fontsize=8)
    return fig


def plot_success(table, task_ids: list[int]):
    """Success rate with its Wilson interval per (variant, epoch) row group, one colour per task.

    ``table`` has columns variant, epoch, task, success, lo, hi (from
    :func:`helpers.libero.evaluation.success_row`)."""
    groups = list(dict.fromkeys(zip(table.variant, table.epoch)))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.75 * len(groups) + 2), 4.2))
    width = 0.8 / len(task_ids)
    for c, k in enumerate(task_ids):
        sub = table[table.task == k].set_index(["variant", "epoch"]).loc[groups]
        x = np.arange(len(groups)) + (c - (len(task_ids) - 1) / 2) * width
        ax.bar(x, sub.success, width=width, color=PALETTE[c % len(PALETTE)], label=f"task {k}")
        ax.errorbar(x, sub.success, yerr=[sub.success - sub.lo, sub.hi - sub.success], fmt="none",
                    ecolor="black", capsize=2, lw=1)
    ax.set_xticks(np.arange(len(groups)), [f"{v}, ep {e}" for v, e in groups], rotation=35,
                  ha="right", fontsize=10)
    ax.set_ylim(0, 1.02)
    # held-out test inits, except rows whose label names other inits (the training-init control)
    ax.set_ylabel("closed-loop success rate")
    ax.legend(fontsize=9)
    return fig


def plot_success_vs_alignment(points, successes: dict, names: list[str]):
    """Success (with Wilson intervals over its rollouts) against the best-block and last-block
    corrected alignment; one point per row of ``points`` (variant, epoch, task, best, fixed)."""
    from helpers.libero.evaluation import wilson_interval

    fig, axes = plt.subplots(1, 2, figsize=(10.5, 3.8), sharey=True)
    for ax, col, label in zip(axes, ("best", "fixed"), ("best block", "last block")):
        for c, name in enumerate(names):
            v = points[points.variant == name]
            if v.empty:
                continue
            s = [successes[n, e][k] for n, e, k in zip(v.variant, v.epoch, v.task)]
            ci = np.array([wilson_interval(int(a.sum()), len(a)) for a in s])
            rate = np.array([a.mean() for a in s])
            ax.errorbar(v[col], rate, yerr=[rate - ci[:, 0], ci[:, 1] - rate], fmt="o",
                        color=PALETTE[c % len(PALETTE)], label=name, capsize=2, ms=5)
        ax.axvline(0, color=NULL_COLOR, lw=1)
        ax.set_xlabel(f"corrected alignment, {label} (0 = episode null)")
    axes[0].set_ylabel("success rate (held-out inits)")
    axes[0].set_ylim(-0.03, 1.03)
    axes[0].legend(fontsize=8)
    return fig


def plot_n_curve(curve, topk: int):
    """Best-block episode-masked alignment against demonstrations per task: observed (solid) and
    the episode null's mean (dashed), one colour per checkpoint epoch.

    ``curve`` has columns epoch, episodes, observed, null (one row per epoch and sample size)."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for c, (e, v) in enumerate(curve.groupby("epoch")):
        ax.plot(v.episodes, v.observed, "o-", color=PALETTE[c], label=f"epoch {e}")
        ax.plot(v.episodes, v.null, "--", color=PALETTE[c], alpha=0.6, label=f"null, epoch {e}")
    ax.set_xticks(sorted(curve.episodes.unique()))
    ax.set_xlabel("demonstrations per task")
    ax.set_ylabel(f"mutual kNN (k = {topk})")
    ax.legend(fontsize=9)
    return fig


def profile_slider(results: dict, topk: int):
    """Interactive (plotly) per-block profile of each checkpoint's episode-masked alignment and
    its null mean, one slider step per ``(variant, epoch)`` key of ``results``."""
    import plotly.graph_objects as go

    from helpers import interactive

    def _profile(r: AlignmentResult):
        x = np.arange(len(r.observed)) / max(1, len(r.observed) - 1)
        return [go.Scatter(x=x, y=r.observed.numpy(), mode="lines+markers", name="observed"),
                go.Scatter(x=x, y=r.null_mean.numpy(), mode="lines", name="episode null",
                           line=dict(dash="dash", color="grey"))]

    return interactive.slider_figure(
        {f"{n}, epoch {e}": _profile(r) for (n, e), r in results.items()},
        slider_label="checkpoint", title="Episode-masked alignment per block",
        layout=dict(xaxis_title="relative depth (block / last block)",
                    yaxis_title=f"mutual kNN (k = {topk})", height=420))
