"""Chapter 4's figure pieces: bootstrap intervals per split for several methods side by side, and
the per-seed frames of its interactive view."""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from helpers import stats
from helpers.plotting import NULL_COLOR, PALETTE


def plot_intervals(ax, series: Mapping[str, Sequence[np.ndarray]], labels: Sequence[str],
                   controls: Sequence[str] = (), width: float = 0.8) -> None:
    """One point per column and series at the mean of its bootstrap draws, with the 95%
    percentile interval as error bar; series sit side by side within a column.

    Args:
        ax: a matplotlib Axes.
        series: name -> one draws array per column (``len(labels)`` of them).
        labels: the column tick labels.
        controls: series drawn in grey (the base model and control runs); a name containing
            ``shuffled`` gets a cross instead of a dot.
        width: the share of a column the series spread over.

    Raises:
        ValueError: a series without one draws array per column.
    """
    names = list(series)
    step = width / max(len(names), 1)
    colour = 0
    for i, name in enumerate(names):
        if len(series[name]) != len(labels):
            raise ValueError(f"series {name!r} has {len(series[name])} columns; labels has "
                             f"{len(labels)}: pass one draws array per column")
        mu = np.array([np.mean(d) for d in series[name]])
        lo, hi = np.array([stats.interval(d) for d in series[name]]).T
        x = np.arange(len(labels)) + (i - (len(names) - 1) / 2) * step
        if name in controls:
            color = NULL_COLOR
        else:
            color, colour = PALETTE[colour % len(PALETTE)], colour + 1
        ax.errorbar(x, mu, yerr=[mu - lo, hi - mu], fmt="x" if "shuffled" in name else "o",
                    ms=4, lw=1, color=color, label=name)
    ax.set_xticks(range(len(labels)), labels, rotation=30)


def seed_frames(correct: Mapping[str, Mapping[str, np.ndarray]], methods: Sequence[str],
                splits: Sequence[str], base: str = "base") -> dict[str, list]:
    """Frames for :func:`helpers.interactive.slider_figure`: per method, the base model's
    accuracy per split and the method's accuracy per split and seed, with hover text.

    Args:
        correct: method -> split -> ``[seeds, pairs]`` correct flags.
        methods: the methods to step through (each a slider step).
        splits: the x axis.
        base: the row drawn as the reference in every frame.
    """
    import plotly.graph_objects as go

    frames = {}
    for i, m in enumerate(methods):
        n_seeds = correct[m][splits[0]].shape[0]
        frames[m] = [
            go.Scatter(x=list(splits), y=[float(correct[base][c].mean()) for c in splits],
                       mode="markers", name=base,
                       marker=dict(color=NULL_COLOR, size=11, symbol="line-ew-open"),
                       hovertemplate=base + ", %{x}: %{y:.3f}<extra></extra>"),
            go.Scatter(x=[c for c in splits for _ in range(n_seeds)],
                       y=[float(correct[m][c][k].mean()) for c in splits for k in range(n_seeds)],
                       mode="markers", name=f"{m}, one seed",
                       marker=dict(color=PALETTE[i % len(PALETTE)], size=7, opacity=0.6),
                       text=[f"seed {k}" for _ in splits for k in range(n_seeds)],
                       hovertemplate=m + ", %{x}, %{text}: %{y:.3f}<extra></extra>")]
    return frames
