"""Figures of the random-images chapter, one function per figure, one colour per group.

Every function takes the chapter's tables, draws one figure and returns it (the chapter ends the
cell with :func:`helpers.plotting.show`). Colours come from :func:`group_color`, so a group keeps
its colour in every figure of the chapter.
"""
from __future__ import annotations

import warnings
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from helpers.plotting import NULL_COLOR, PALETTE
from helpers.prh import noise_images as ni

GROUP_ORDER = ("trained", "init", "trained-pixels", "init-pixels", "trained-text")
"""Groups in the order of :data:`helpers.plotting.PALETTE`; others follow in order of first use."""

ALIASES = {"pretrained": "trained", "random-init": "init", "pretrained-pixels": "trained-pixels",
           "random-init-pixels": "init-pixels"}
"""Groups that play the same role share a colour (real pretrained networks and trained zoo
members; their random-init copies and the zoo's step-0 controls)."""

_extra_groups: list[str] = []


def group_color(group: str) -> str:
    """The one colour of ``group`` (or of the role it shares) in every figure of the chapter."""
    group = ALIASES.get(group, group)
    if group not in GROUP_ORDER and group not in _extra_groups:
        _extra_groups.append(group)
    i = (GROUP_ORDER.index(group) if group in GROUP_ORDER
         else len(GROUP_ORDER) + _extra_groups.index(group))
    return PALETTE[i % len(PALETTE)]


def _check_columns(table: pd.DataFrame, columns: Sequence[str], name: str) -> None:
    missing = set(columns) - set(table.columns)
    if missing:
        raise ValueError(f"{name} lacks columns {sorted(missing)}; "
                         f"pass the chapter's {name} table")


def plot_families(samples: dict, spectra: dict, slopes: pd.Series, reference: str | None = None,
                  n_show: int = 5) -> plt.Figure:
    """Sample images of each noise family (rows) and their radially averaged power spectra.

    Args:
        samples: family -> images ``[>= n_show, 3, H, W]`` to show.
        spectra: name -> images whose spectrum is drawn (families and a real reference set).
        slopes: name -> measured spectral slope (legend labels).
        reference: the key of ``spectra`` drawn as the grey dashed reference (real images).
        n_show: images per row.
    """
    fig = plt.figure(figsize=(9.5, 4.4))
    grid = fig.add_gridspec(len(samples), n_show + 3)
    for r, (family, imgs) in enumerate(samples.items()):
        for c in range(n_show):
            ax = fig.add_subplot(grid[r, c])
            ax.imshow(imgs[c].permute(1, 2, 0).numpy())
            ax.set_xticks([]), ax.set_yticks([])
            ax.grid(False)
            if c == 0:
                ax.set_ylabel(family, rotation=0, ha="right", va="center", fontsize=8)
    ax = fig.add_subplot(grid[:, n_show:])
    # image sets get a sequential colour map, not the palette, which belongs to model groups
    shades = plt.cm.viridis(np.linspace(0.0, 0.9, max(1, len(spectra))))
    for i, (name, imgs) in enumerate(spectra.items()):
        fr, pw = ni.radial_power_spectrum(imgs)
        style = dict(color=NULL_COLOR, ls="--") if name == reference else dict(color=shades[i])
        ax.loglog(fr, pw / pw[0], label=f"{name} (slope {float(slopes[name]):.2f})", **style)
    ax.xaxis.set_minor_formatter(plt.NullFormatter())
    ax.set_xlabel("spatial frequency (cycles per pixel)")
    ax.set_ylabel("power (relative to lowest frequency)")
    ax.legend(fontsize=8, loc="lower left")
    return fig


def plot_pair_scores(table: pd.DataFrame, sets: Sequence[str], metric: str, ax=None,
                     title: str | None = None, legend: bool = True) -> plt.Figure:
    """Chance-corrected score of every pair per image set (dots), group means (black bars).

    Args:
        table: pair rows with ``group``, ``family``, ``metric``, ``corrected``.
        sets: image sets on the x axis, in order.
        metric: which metric's rows to draw.
        ax: draw into this axis (default: a new figure).
        title: axis title (default: the metric).
        legend: draw the legend (outside the axis, on the right).
    """
    _check_columns(table, ["group", "family", "metric", "corrected"], "pair")
    sub = table[table.metric == metric]
    groups = list(dict.fromkeys(sub.group))
    if ax is None:
        fig, ax = plt.subplots(figsize=(max(5.0, 0.75 * len(sets) + 2.5), 3.8))
    fig = ax.figure
    width = 0.8 / max(len(groups), 1)
    labelled: set[str] = set()
    for gi, g in enumerate(groups):
        for si, s in enumerate(sets):
            vals = sub[(sub.group == g) & (sub.family == s)].corrected.values
            if len(vals) == 0:
                continue
            xpos = si + (gi - (len(groups) - 1) / 2) * width
            jitter = (np.random.default_rng(si).random(len(vals)) - 0.5) * width * 0.6
            ax.scatter(xpos + jitter, vals, s=8, alpha=0.6, color=group_color(g),
                       label=None if g in labelled else g)
            labelled.add(g)
            ax.plot([xpos - width / 2, xpos + width / 2], [np.mean(vals)] * 2, color="k", lw=1)
    ax.axhline(0, color=NULL_COLOR, lw=1, ls="--")
    ax.set_xticks(range(len(sets)), sets, rotation=30)
    ax.set_xlabel("image set")
    ax.set_ylabel(f"chance-corrected {metric} (0 = null)")
    ax.set_title(title or metric)
    if legend:
        ax.legend(fontsize=8, markerscale=2, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return fig


def plot_real_families(table: pd.DataFrame, sets: Sequence[str], metric: str) -> plt.Figure:
    """Two panels of :func:`plot_pair_scores`: the last layer (left) and the max over layer
    pairs (right), from pair rows with a ``layer`` column (``"last"`` / ``"max"``)."""
    _check_columns(table, ["layer"], "pair")
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.9), sharey=True)
    for ax, layer in zip(axes, ("last", "max")):
        plot_pair_scores(table[table.layer == layer], sets, metric, ax=ax, legend=ax is axes[1],
                         title="last layer" if layer == "last" else "max over layer pairs")
    return fig


def plot_exclusion(plain: pd.DataFrame, excluded: pd.DataFrame, metric: str = "mutual_knn"
                   ) -> plt.Figure:
    """One group colour per line: pooled chance-corrected score along the blend with all
    neighbours (solid) and with same-photo neighbours excluded (dashed).

    Args:
        plain, excluded: :func:`helpers.prh.noise_probe.pooled_curve` outputs (``metric``,
            ``group``, ``t``, ``mean corrected``; the first seed is drawn).
        metric: which metric of ``plain`` to draw (``excluded`` is mutual kNN).
    """
    for name, curve in (("plain", plain), ("excluded", excluded)):
        _check_columns(curve, ["metric", "group", "seed", "t", "mean corrected"], name)
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    styles = ((plain, "-", "all neighbours"), (excluded, "--", "same photo excluded"))
    for curve, ls, what in styles:
        sub = curve[(curve.metric == metric) & (curve.seed == curve.seed.min())]
        for g in dict.fromkeys(sub.group):
            c = sub[sub.group == g].sort_values("t")
            ax.plot(c.t, c["mean corrected"], ls=ls, marker="o", ms=3, color=group_color(g),
                    label=f"{g}, {what}")
    ax.axhline(0, color=NULL_COLOR, ls=":", lw=1, label="permutation null")
    ax.set_xlabel("noise fraction t (0 = photo crop, 1 = noise)")
    ax.set_ylabel(f"chance-corrected {metric}")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return fig


def plot_null_distance(table: pd.DataFrame, sets: Sequence[str], metric: str) -> plt.Figure:
    """Left: each pair's z-score against its null (symlog); right: group means per image set."""
    _check_columns(table, ["group", "family", "metric", "corrected", "observed", "null_mean",
                           "null_std"], "pair")
    sub = table[table.metric == metric]
    groups = list(dict.fromkeys(sub.group))
    fig, axes = plt.subplots(1, 2, figsize=(10.5, 3.8))
    width = 0.8 / max(len(groups), 1)
    for gi, g in enumerate(groups):
        sg = sub[sub.group == g]
        z = (sg.observed - sg.null_mean) / sg.null_std
        offset = (gi - (len(groups) - 1) / 2) * width
        xpos = np.array([list(sets).index(f) for f in sg.family]) + offset
        axes[0].scatter(xpos, z, s=8, alpha=0.6, color=group_color(g), label=g)
    axes[0].set_yscale("symlog", linthresh=2)
    axes[0].axhline(2, color=NULL_COLOR, ls="--", lw=1)
    axes[0].set_ylabel("z = (observed - null mean) / null std")
    axes[0].set_title("distance from the null, per pair")
    piv = sub.groupby(["family", "group"]).corrected.mean().unstack()[groups].reindex(list(sets))
    for g in groups:
        axes[1].plot(range(len(sets)), piv[g].values, marker="o", color=group_color(g), label=g)
    axes[1].axhline(0, color=NULL_COLOR, ls="--", lw=1)
    axes[1].set_ylabel(f"mean chance-corrected {metric}")
    axes[1].set_title("group means per image set")
    axes[1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    for ax in axes:
        ax.set_xticks(range(len(sets)), sets, rotation=30)
        ax.set_xlabel("image set")
    return fig


def plot_agreement(maps: dict, names: Sequence[str],
                   panels: Sequence[tuple[str, str]] | None = None) -> plt.Figure:
    """Heatmaps of configuration-by-configuration Spearman correlation, one row per image set.

    Args:
        maps: image set -> :func:`helpers.prh.metric_agreement.agreement_maps` output.
        names: configuration names (tick labels), in matrix order.
        panels: (key, title) per column; ``"null"`` draws the null's mean |rho|.
    """
    panels = panels or [("raw", "raw"), ("calibrated", "chance-corrected"),
                        ("null", "null: mean |rho|")]
    fig, axes = plt.subplots(len(maps), len(panels), figsize=(3.3 * len(panels), 3.4 * len(maps)),
                             squeeze=False)
    im = None
    for r, (kind, a) in enumerate(maps.items()):
        for c, (key, title) in enumerate(panels):
            if key == "null":  # a draw where a configuration is constant has NaN entries
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    m = np.nanmean(np.abs(a["null"]), 0)
            else:
                m = np.asarray(a[key], dtype=float)
            ax = axes[r][c]
            im = ax.imshow(m, vmin=-1, vmax=1, cmap="RdBu_r")
            ax.set_xticks(range(len(names)), names, rotation=90, fontsize=8)
            ax.set_yticks(range(len(names)), names if c == 0 else [], fontsize=8)
            ax.grid(False)
            ax.set_title(f"{kind}: {title}", fontsize=9)
    fig.colorbar(im, ax=axes, shrink=0.6, label="Spearman correlation over model pairs")
    return fig


def plot_blend(curve: pd.DataFrame, fronts: pd.DataFrame, metrics: Sequence[str],
               frontier_group: str | None = "init", title_prefix: str = "",
               gain: pd.DataFrame | None = None) -> plt.Figure:
    """Chance-corrected alignment along the blend: mean over seeds (line), seed range (band).

    Args:
        curve: rows per (metric, group, seed, t) with ``mean corrected`` (pooled over pairs).
        fronts: :func:`helpers.prh.noise_images.null_frontiers` output (``metric``, ``group``,
            ``t*``).
        metrics: one panel per metric.
        frontier_group: whose median null frontier is drawn as a dotted line (None: none).
        title_prefix: words before the metric in each panel title.
        gain: optional :func:`helpers.prh.noise_probe.paired_contrast` output indexed by
            (metric, t), drawn below each panel as trained minus control with its interval.
    """
    _check_columns(curve, ["metric", "group", "seed", "t", "mean corrected"], "curve")
    rows = 1 if gain is None else 2
    fig, axes = plt.subplots(rows, len(metrics),
                             figsize=(4.9 * len(metrics), 3.7 + 1.9 * (rows - 1)),
                             squeeze=False, sharex=True,
                             gridspec_kw={"height_ratios": [2, 1][:rows]})
    for col, metric in enumerate(metrics):
        ax = axes[0][col]
        sub = curve[curve.metric == metric]
        for g in dict.fromkeys(sub.group):
            c = sub[sub.group == g].groupby("t")["mean corrected"]
            mean, lo, hi = c.mean(), c.min(), c.max()
            ax.plot(mean.index, mean.values, marker="o", ms=3, color=group_color(g), label=g)
            ax.fill_between(mean.index, lo.values, hi.values, color=group_color(g), alpha=0.2)
        ax.axhline(0, color=NULL_COLOR, ls="--", lw=1, label="permutation null")
        f = fronts[(fronts.metric == metric) & (fronts.group == frontier_group)]["t*"]
        if frontier_group and f.notna().any():
            ax.axvline(float(f.median()), color="k", ls=":", lw=1,
                       label=f"{frontier_group} null frontier")
        ax.set_ylabel(f"chance-corrected {metric}")
        ax.set_title(f"{title_prefix}{metric}")
        if gain is not None:
            g = gain.loc[metric]
            axes[1][col].plot(g.index, g["difference"], marker="o", ms=3, color="k")
            axes[1][col].fill_between(g.index, g["low"], g["high"], color="k", alpha=0.15)
            axes[1][col].axhline(0, color=NULL_COLOR, ls="--", lw=1)
            axes[1][col].set_ylabel("trained minus init")
        axes[-1][col].set_xlabel("noise fraction t (0 = image, 1 = noise)")
    axes[0][-1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return fig


def blend_slider(blend: pd.DataFrame, metric: str, groups: Sequence[str]):
    """An interactive figure (plotly, for :func:`helpers.interactive.show`): a slider over the
    blend's noise fraction t, drawing every pair's chance-corrected score at that t.

    Args:
        blend: pair rows along the blend (``metric``, ``group``, ``t``, ``a``, ``b``,
            ``corrected``, ``p_value``; seed 0 is drawn).
        metric: which metric.
        groups: the groups drawn, one bar trace each, in their chapter colours.
    """
    import plotly.graph_objects as go

    from helpers import interactive

    _check_columns(blend, ["metric", "group", "t", "a", "b", "corrected", "p_value"], "blend")
    sub = blend[(blend.metric == metric) & blend.group.isin(groups)]
    if "seed" in sub.columns:
        sub = sub[sub.seed == sub.seed.min()]
    if sub.empty:
        raise ValueError(f"no rows of metric {metric!r} in groups {list(groups)}")
    frames = {}
    for t, at_t in sub.groupby("t"):
        traces = []
        for g in groups:
            rows = at_t[at_t.group == g]
            names = [f"{a} / {b}".replace("-init", "") for a, b in zip(rows.a, rows.b)]
            traces.append(go.Bar(x=names, y=rows.corrected, name=g, marker_color=group_color(g),
                                 customdata=rows.p_value,
                                 hovertemplate="%{x}: %{y:.3f} (pair p = %{customdata:.3g})"
                                               f"<extra>{g}</extra>"))
        frames[f"t = {t:.2f}"] = traces
    low = float(min(0.0, sub.corrected.min())) - 0.02
    high = float(sub.corrected.max()) + 0.05
    return interactive.slider_figure(
        frames, slider_label="noise fraction",
        title=f"Every pair's chance-corrected {metric} along the blend",
        layout=dict(barmode="group", height=430, yaxis=dict(range=[low, high],
                    title=f"chance-corrected {metric} (0 = null)"),
                    xaxis=dict(title="model pair (architectures)", tickangle=-30)))
