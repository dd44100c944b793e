"""Tables and figures of the PRH-OOD chapter (``book/prh_ood.py``), so the chapter keeps only
parameters, calls and prose.

* Real pretrained models: :func:`real_alignment` (every image set and view), :func:`diff_by_pair`,
  :func:`objective_gap`, :func:`pair_matrix`, :func:`caption_alignment`, :func:`init_gain`.
* Metric agreement: :func:`protocol_tables` scores one image set under the blog's protocol (last
  layer, no clamp, no layer search) and PRH's (clamp, layer-pair max), :func:`agreement_rows`
  tests every table's mean agreement (:func:`helpers.prh.metric_agreement.agreement_test`),
  :func:`plot_agreement_grid` draws the heatmaps.
* Shapes world: :func:`accuracy_table`, :func:`vv_scores`, :func:`summarise_vv`,
  :func:`competence_table`, :func:`language_alignment` and their figures.
* Chapter steps, one call per cell: :func:`make_world`, :func:`shapes_features`,
  :func:`real_agreement`, :func:`shapes_agreement`, the tables :func:`model_table`,
  :func:`zoo_table`, :func:`picked_depth`, :func:`objective_pairs`, :func:`protocol_scores`,
  :func:`agreement_view`, :func:`gaps_table`, :func:`lone_table`, the figures
  :func:`plot_real_agreement` and :func:`plot_shapes_agreement`, the glued values (``*_values``,
  :func:`shown_values`, :func:`caption_gain`, :func:`real_agreement_glue`) each section quotes,
  and the closing table's rows (:func:`verdict_claims`).

Example:
    >>> import pandas as pd
    >>> col = pd.Series({("a", "b"): 0.5})
    >>> pair_matrix(col, ["a", "b"]).tolist()
    [[nan, 0.5], [0.5, nan]]
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from helpers import alignment, stats
from helpers.chapter import Verdict, excludes, format_interval, format_p, verdict_word
from helpers.prh import metric_agreement as ma
from helpers.prh import real_images as ri
from helpers.prh.competence import probe_competence
from helpers.prh.shapes_world import FACTORS, OOD_KINDS, ShapesData
from helpers.prh.zoo import factor_accuracy

INIT = " (init)"
"""Suffix of a random-init control's label (``ri.control_name``)."""


# --------------------------------------------------------------------------- real models
def headline_views(real_sets: dict) -> dict[str, str]:
    """The view each image set is read in: same-picture neighbours excluded where crops share a
    picture, plain otherwise."""
    return {s: "plain" if d.groups is None else "same photo excluded"
            for s, d in real_sets.items()}


def real_alignment(real_sets: dict, real_feats: dict, topk: int, n_perm: int,
                   seed: int = 0) -> dict[tuple[str, str], pd.DataFrame]:
    """:func:`helpers.prh.real_images.alignment_table` for every image set and view.

    Args:
        real_sets: :func:`helpers.prh.real_images.make_image_sets` output.
        real_feats: ``feats`` of :func:`helpers.prh.real_images.pretrained_features`.
        topk, n_perm, seed: mutual-kNN k, shuffles per null, permutation seed.

    Returns:
        ``{(set, view): table}`` with ``image_set`` and ``view`` columns; the pixel baseline is
        one more model (:data:`helpers.prh.real_images.PIXELS`).
    """
    tables = {}
    for s, data in real_sets.items():
        feats = {m: alignment.prepare(ls) for m, ls in real_feats[s].items()}
        feats[ri.PIXELS] = [alignment.prepare(ri.pixel_layer(data.images))]
        views = [("plain", None)] + ([("same photo excluded", data.groups)]
                                     if data.groups is not None else [])
        for view, groups in views:
            t = ri.alignment_table(feats, topk, n_perm, seed=seed, groups=groups)
            t["image_set"], t["view"] = s, view
            tables[(s, view)] = t
    return tables


def diff_by_pair(tables: dict, views: dict[str, str]) -> pd.DataFrame:
    """Trained minus random-init corrected score ``[architecture pairs, image sets]``."""
    return pd.concat({s: ri.trained_minus_init(tables[(s, v)]).set_index(["model_a", "model_b"])
                      .difference for s, v in views.items()}, axis=1)


def objective_gap(diff_wide: pd.DataFrame, model: str = "hed_vgg16") -> tuple[float, float]:
    """Mean trained-minus-init gain of the pairs with ``model`` and of the pairs without it."""
    has = np.array([model in pair for pair in diff_wide.index])
    return float(diff_wide[has].to_numpy().mean()), float(diff_wide[~has].to_numpy().mean())


def pair_matrix(col: pd.Series, names: Sequence[str]) -> np.ndarray:
    """A symmetric ``[M, M]`` matrix from a Series indexed by (a, b) pairs (NaN elsewhere)."""
    names = list(names)
    mat = np.full((len(names), len(names)), np.nan)
    for (a, b), v in col.items():
        i, j = names.index(a), names.index(b)
        mat[i, j] = mat[j, i] = v
    return mat


def caption_alignment(real_sets: dict, real_feats: dict, encoders: Sequence[str], topk: int,
                      n_perm: int, sets: Sequence[str] = ("fashion", "shapes"),
                      seed: int = 3) -> pd.DataFrame:
    """Every model (and the pixels) against every sentence encoder on the captioned sets.

    Returns:
        :func:`helpers.prh.metric_agreement.block_scores` rows with an ``image_set`` column.
    """
    parts = []
    for s in [s for s in sets if s in real_sets]:
        data = real_sets[s]
        lang = {lm: alignment.prepare(ri.caption_features(data.captions, lm, data.key))
                for lm in encoders}
        vis = {m: alignment.prepare(ls) for m, ls in real_feats[s].items()}
        vis[ri.PIXELS] = [alignment.prepare(ri.pixel_layer(data.images))]
        t = ma.block_scores(vis, lang, "mutual_knn", topk, n_perm=n_perm, seed=seed)
        parts.append(t.assign(image_set=s))
    return pd.concat(parts, ignore_index=True)


def init_gain(by_model: pd.DataFrame, models: Sequence[str], n_boot: int,
              seed: int = 4) -> dict[str, tuple[float, float, float]]:
    """Per column of ``by_model`` (rows: models and their controls): mean over ``models`` of
    trained minus random-init, with a 95% bootstrap over the architectures."""
    out = {}
    for s in by_model.columns:
        d = np.array([by_model.loc[m, s] - by_model.loc[ri.control_name(m), s] for m in models])
        lo, hi = stats.interval(stats.bootstrap(np.mean, d, n_boot=n_boot, seed=seed))
        out[s] = (float(d.mean()), lo, hi)
    return out


# --------------------------------------------------------------------------- metric agreement
def agreement_configs(ks: Sequence[int], metrics: Sequence[str] = ("mutual_knn", "cknna"),
                      global_metrics: Sequence[str] = ("unbiased_cka",)) -> list[tuple[str, int]]:
    """The blog's configurations: each kNN metric at every k, then k-free global metrics."""
    return [(m, k) for m in metrics for k in ks] + [(m, ks[0]) for m in global_metrics]


def spaced_layers(layers: Sequence[torch.Tensor], n: int | None) -> list[torch.Tensor]:
    """``n`` layers evenly spaced from first to last (all of them if ``n`` is None or larger)."""
    layers = list(layers)
    if n is None or n >= len(layers):
        return layers
    if n < 1:
        raise ValueError(f"n must be >= 1 (or None for every layer), got {n}")
    idx = np.unique(np.round(np.linspace(0, len(layers) - 1, n)).astype(int))
    return [layers[i] for i in idx]


def protocol_tables(raw_layers: dict[str, Sequence[torch.Tensor]], configs, n_perm: int,
                    n_layers: int | None = None, seed: int = 2,
                    progress: bool = False) -> dict[str, pd.DataFrame]:
    """Score every model pair under both protocols, with the null draws kept.

    Args:
        raw_layers: model -> raw per-layer features ``[N, D_l]`` (shallow to deep).
        configs: (metric, k) pairs.
        n_perm: shuffles per configuration (the agreement null and the correction).
        n_layers: PRH protocol: evenly spaced layers per model searched (None: all).
        seed, progress: permutation seed; tqdm over configurations.

    Returns:
        ``{"blog": table, "PRH": table}``; blog: last layer L2-normalised, no clamp, no layer
        search; PRH: :func:`helpers.alignment.prepare` (clamp, normalise), layer-pair max.
    """
    blog = {m: [F.normalize(ls[-1].float(), dim=-1)] for m, ls in raw_layers.items()}
    prh = {m: alignment.prepare(spaced_layers(ls, n_layers)) for m, ls in raw_layers.items()}
    return {p: ma.score_pairs(f, configs, n_perm=n_perm, seed=seed, progress=progress,
                              keep_null=True) for p, f in (("blog", blog), ("PRH", prh))}


def agreement_rows(tables: dict[tuple, pd.DataFrame], n_boot: int, seed: int = 5) -> pd.DataFrame:
    """:func:`helpers.prh.metric_agreement.agreement_test` of every table, raw and corrected.

    Args:
        tables: ``{(image set or split, protocol): score_pairs table with null draws}``.

    Returns:
        One row per (set, protocol, value) with the test's fields.
    """
    rows = []
    for (where, protocol), t in tables.items():
        for value in ("raw", "corrected"):
            rows.append({"set": where, "protocol": protocol, "value": value,
                         **ma.agreement_test(t, value, n_boot=n_boot, seed=seed)})
    return pd.DataFrame(rows).set_index(["set", "protocol", "value"])


def plot_agreement_grid(maps: dict[tuple[str, str], pd.DataFrame], title_of=None):
    """Heatmaps of configuration-by-configuration correlations, one panel per key.

    Args:
        maps: ``{(row label, column label): [C, C] correlation DataFrame}``; rows and columns of
            the panel grid follow the first and second labels in order of appearance.
        title_of: callable (row label, column label) -> panel title (default "row, column").

    Returns:
        The figure (colour scale -1 to 1, values written in each cell).
    """
    import matplotlib.pyplot as plt

    rows = list(dict.fromkeys(r for r, _ in maps))
    cols = list(dict.fromkeys(c for _, c in maps))
    fig, axes = plt.subplots(len(rows), len(cols), figsize=(4.6 * len(cols), 4.2 * len(rows)),
                             squeeze=False, constrained_layout=True)
    for (r, c), m in maps.items():
        ax = axes[rows.index(r), cols.index(c)]
        v = m.to_numpy(dtype=float)
        im = ax.imshow(v, vmin=-1, vmax=1, cmap="RdBu_r")
        ax.set_xticks(range(len(m)), m.columns, rotation=90, fontsize=8)
        ax.set_yticks(range(len(m)), m.index, fontsize=8)
        for i in range(len(m)):
            for j in range(len(m)):
                ax.text(j, i, "" if np.isnan(v[i, j]) else f"{v[i, j]:.1f}", ha="center",
                        va="center", fontsize=7, color="w" if abs(v[i, j]) > 0.6 else "k")
        ax.set_title(title_of(r, c) if title_of else f"{r}, {c}", fontsize=9)
        ax.grid(False)
    fig.colorbar(im, ax=axes, shrink=0.6, label="Spearman correlation over model pairs")
    return fig


def plot_agreement_means(rows: pd.DataFrame, colors: Sequence[str], null_color: str):
    """Mean agreement per (set, protocol, value) with its model-bootstrap interval (bars) and
    the 95th percentile of its permutation null (thick grey ticks). Returns the figure."""
    import matplotlib.pyplot as plt

    sets = list(dict.fromkeys(rows.index.get_level_values(0)))
    labels = list(dict.fromkeys((p, v) for _, p, v in rows.index))
    fig, ax = plt.subplots(figsize=(7.2, 3.4))
    width = 0.8 / len(sets)
    xs = np.arange(len(labels))
    for i, s in enumerate(sets):
        sub = rows.loc[s].reindex(labels)
        off = xs + (i - (len(sets) - 1) / 2) * width
        err = np.array([sub["mean"] - sub.ci_low, sub.ci_high - sub["mean"]])
        ax.bar(off, sub["mean"], width=width, yerr=np.clip(err, 0, None), capsize=2,
               color=colors[i], label=s)
        ax.scatter(off, sub.null_95, marker="_", s=320, linewidths=3, color=null_color,
                   zorder=3, label="null, 95th pct" if i == 0 else None)
    ax.set_xticks(xs, [f"{p}, {v}" for p, v in labels])
    ax.axhline(0, color=null_color, lw=1)
    ax.set_ylabel("mean Spearman between configurations")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig


def mean_with_others(corr: pd.DataFrame) -> pd.Series:
    """Each configuration's mean correlation with all the others (diagonal excluded)."""
    v = corr.to_numpy(dtype=float).copy()
    np.fill_diagonal(v, np.nan)
    return pd.Series(np.nanmean(v, axis=1), index=corr.index)


# --------------------------------------------------------------------------- shapes world
def plot_world(world: dict, full: bool):
    """Six samples per row: in distribution, then each OOD kind (full: one OOD row)."""
    import matplotlib.pyplot as plt

    rows = [("id", "id"), ("ood", "ood")] if full else [("id", "id")] + [("ood", k)
                                                                          for k in OOD_KINDS]
    fig, axes = plt.subplots(len(rows), 6, figsize=(9, 1.65 * len(rows)), squeeze=False)
    for r, (split, kind) in enumerate(rows):
        idx = np.flatnonzero(world[split].factors["subset"].to_numpy() == kind)[:6]
        for c, i in enumerate(idx):
            img = world[split].images[i]
            axes[r, c].imshow(img if full else img.permute(1, 2, 0).numpy())  # full: PIL
            axes[r, c].set_title(" ".join(world[split].captions[i].split(" ")[1:4]), fontsize=8)
        for ax in axes[r]:
            ax.set_xticks([]), ax.set_yticks([])
        axes[r, 0].set_ylabel(kind.replace("_", " "), fontsize=8)
    return fig


def _subset(data: ShapesData, mask: np.ndarray) -> ShapesData:
    return ShapesData(data.images[torch.from_numpy(mask.copy())],
                      data.factors[mask].reset_index(drop=True),
                      [c for c, k in zip(data.captions, mask) if k])


def accuracy_table(zoo: Sequence, world: dict) -> pd.DataFrame:
    """Own-head accuracy of every supervised member per factor on each kind of image."""
    rows = []
    for m in [m for m in zoo if m.objective == "supervised"]:
        for split in ("id", "ood"):
            data = world[split]
            for kind in sorted(set(data.factors["subset"])):
                acc = factor_accuracy(m, _subset(data, (data.factors["subset"] == kind)
                                                 .to_numpy()))
                rows.append(dict(model=m.name, arch=m.arch, subset=kind, **acc,
                                 all_factors=float(np.mean(list(acc.values())))))
    return pd.DataFrame(rows, columns=["model", "arch", "subset", *FACTORS, "all_factors"])


def plot_accuracy(summary: pd.DataFrame, colors: Sequence[str]):
    """Grouped bars of shape, colour, texture and all-factor accuracy per kind of image."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.8, 3.4))
    shown = ["shape", "color", "texture", "all_factors"]
    x = np.arange(len(summary))
    for i, f in enumerate(shown):
        ax.bar(x + (i - 1.5) * 0.2, summary[f], width=0.2, label=f.replace("_", " "),
               color=colors[i])
    ax.set_xticks(x, [s.replace("_", " ") for s in summary.index])
    ax.set_ylabel("accuracy (fraction correct)")
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig


def vv_scores(prepared: dict, vv_models: dict[str, int], topk: int, n_perm: int,
              seed: int = 0) -> pd.DataFrame:
    """Mutual-kNN block scores between every pair of zoo models and random-init controls.

    Args:
        prepared: ``{split: {(member, step): prepared layers}}``.
        vv_models: label -> step (labels ending in :data:`INIT` are the step-0 controls).

    Returns:
        Rows of :func:`helpers.prh.metric_agreement.block_scores` with ``split`` and ``kind``
        ("trained pair", "random-init control", "init-init").
    """
    parts = []
    for split in prepared:
        f = {name: prepared[split][(name.removesuffix(INIT), step)]
             for name, step in vv_models.items()}
        pairs = [(a, b) for i, a in enumerate(f) for b in list(f)[i + 1:]]
        parts.append(ma.block_scores(f, f, "mutual_knn", topk, n_perm=n_perm, seed=seed,
                                     pairs=pairs).assign(split=split))
    t = pd.concat(parts, ignore_index=True)
    init_a, init_b = t.model_a.str.endswith(INIT), t.model_b.str.endswith(INIT)
    t["kind"] = np.where(init_a | init_b, "random-init control", "trained pair")
    t.loc[init_a & init_b, "kind"] = "init-init"
    return t


def summarise_vv(vv: pd.DataFrame, n_boot: int) -> pd.DataFrame:
    """Per (split, kind): corrected mean with a bootstrap interval, raw and null means."""
    def one(d):
        mean, lo, hi = stats.mean_ci(d.corrected, n_boot)
        return pd.Series(dict(corrected=mean, ci_low=lo, ci_high=hi, raw=d.raw.mean(),
                              null_mean=d.null_mean.mean(),
                              frac_p_below_05=(d.p_value < 0.05).mean(), pairs=len(d)))
    return vv.groupby(["split", "kind"]).apply(one, include_groups=False)


def plot_vv_matrix(vv: pd.DataFrame, names: Sequence[str]):
    """Corrected mutual kNN of every pair, in distribution and OOD, as two heatmaps."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 6.2), constrained_layout=True)
    top = max(0.05, float(np.nanmax(vv.corrected)))
    for ax, split in zip(axes, ("id", "ood")):
        col = vv[vv.split == split].set_index(["model_a", "model_b"]).corrected
        im = ax.imshow(pair_matrix(col, names), vmin=0, vmax=top, cmap="viridis")
        ax.set_xticks(range(len(names)), names, rotation=90, fontsize=8)
        ax.set_yticks(range(len(names)), names, fontsize=8)
        ax.set_title("in distribution" if split == "id" else "out of distribution")
        ax.grid(False)
    fig.colorbar(im, ax=axes, shrink=0.7, label="corrected mutual kNN (0 = chance)")
    return fig


def layer_depth(vv: pd.DataFrame, n_layers: dict[str, int], arch_of: dict[str, str]
                ) -> pd.DataFrame:
    """Mean depth (0 = first layer, 1 = last) of the layer the layer-pair max picks, trained
    pairs, per split and architecture of the first model."""
    t = vv[vv.kind == "trained pair"]
    depth = [i / max(1, n_layers[a] - 1) for a, i in zip(t.model_a, t.layer_a)]
    return (t.assign(depth=depth, arch=t.model_a.map(arch_of))
            .pivot_table(index="arch", columns="split", values="depth"))


def competence_table(zoo: Sequence, vision_id: dict, world_id: ShapesData,
                     n_params: dict | None = None) -> pd.DataFrame:
    """One row per checkpoint: its model, architecture, objective, seed, step and competence.

    Competence is :func:`helpers.prh.competence.probe_competence` on the last layer; with
    ``n_params`` (full scale, no factor labels) it is log10 of the parameter count, NaN at
    step 0.
    """
    def value(m, s):
        if n_params is not None:
            return float(np.log10(n_params[m.name])) if s else float("nan")
        return probe_competence(vision_id[(m.name, s)][-1], world_id)
    return pd.DataFrame([dict(model=m.name, arch=m.arch, objective=m.objective, seed=m.seed,
                              step=s, competence=value(m, s)) for m in zoo for s in m.steps])


def language_alignment(prepared: dict, prepared_lang: dict, comp: pd.DataFrame, topk: int,
                       n_perm: int, seed: int = 1) -> pd.DataFrame:
    """Every checkpoint against every text encoder, averaged over encoders, with competence.

    Returns:
        One row per (split, model, step) with ``raw``, ``corrected``, ``null_mean`` and the
        columns of ``comp``.
    """
    parts = []
    for split in prepared:
        feats = {f"{n}@{s}": prepared[split][(n, s)] for n, s in prepared[split]}
        t = ma.block_scores(feats, prepared_lang[split], "mutual_knn", topk, n_perm=n_perm,
                            seed=seed)
        parts.append(t.assign(split=split))
    vl = pd.concat(parts, ignore_index=True)
    vl[["model", "step"]] = vl.model_a.str.rsplit("@", n=1, expand=True)
    vl["step"] = vl.step.astype(int)
    means = vl.groupby(["split", "model", "step"])[["raw", "corrected", "null_mean"]].mean()
    return means.reset_index().merge(comp, on=["model", "step"])


def plot_competence(vl_mean: pd.DataFrame, colors: Sequence[str], null_color: str,
                    titles: dict[str, str], xlabel: str):
    """Alignment to language against competence per checkpoint, one panel per split.

    Colour: objective; marker: architecture; grey: step 0; lines join a model's checkpoints.
    """
    import matplotlib.pyplot as plt

    markers = dict(zip(sorted(vl_mean.arch.unique()), "os^Dv<>"))
    color = {o: colors[i % len(colors)]
             for i, o in enumerate(dict.fromkeys(vl_mean.objective))}
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True, constrained_layout=True)
    for ax, split in zip(axes, ("id", "ood")):
        for _, g in vl_mean[vl_mean.split == split].groupby("model"):
            g = g.sort_values("step")
            c, mk = color[g.objective.iloc[0]], markers[g.arch.iloc[0]]
            ax.plot(g.competence, g.corrected, color=c, alpha=0.35, lw=0.8)
            tr, init = g[g.step > 0], g[g.step == 0]
            ax.scatter(tr.competence, tr.corrected, color=c, marker=mk, s=18)
            ax.scatter(init.competence, init.corrected, color=null_color, marker=mk, s=14)
        ax.axhline(0, color=null_color, ls="--", lw=1)
        ax.set_xlabel(xlabel)
        ax.set_title(titles[split], fontsize=9)
    axes[0].set_ylabel("alignment to language (corrected mutual kNN)")
    handles = [plt.Line2D([], [], color=c, marker="o", ls="", label=o) for o, c in color.items()]
    handles += [plt.Line2D([], [], color="k", marker=mk, ls="", label=a)
                for a, mk in markers.items()]
    handles += [plt.Line2D([], [], color=null_color, marker="o", ls="", label="random init")]
    axes[1].legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    return fig


# --------------------------------------------------------------------------- features
def zoo_vision_features(zoo: Sequence, world: dict, key: dict) -> dict:
    """Raw per-layer features of every checkpoint on both splits, one cached pass each.

    Args:
        zoo: :class:`helpers.prh.zoo.ZooMember` list.
        world: ``{"id": ShapesData, "ood": ShapesData}``.
        key: names the images in the cache (e.g. ``{"world": "shapes", "n": 512, "seed": 1}``).

    Returns:
        ``{split: {(member name, step): [N, D_l] layers}}``.
    """
    from helpers.prh.zoo import member_features

    n = len(world["id"])
    both = torch.cat([world["id"].images, world["ood"].images])
    vision = {"id": {}, "ood": {}}
    for m in zoo:
        for step in m.steps:
            layers = member_features(m, both, step=step, cache_key={**key, "split": "id+ood"})
            vision["id"][(m.name, step)] = [x[:n] for x in layers]
            vision["ood"][(m.name, step)] = [x[n:] for x in layers]
    return vision


def pretrained_vision_features(members: Sequence, world: dict, sources: dict[str, str],
                               batch_size: int) -> tuple[dict, dict[str, int]]:
    """Full scale: per-block CLS features of each pretrained ViT (step 1) and, for members with
    a step 0, its random-init copy, on both splits, cached; and each model's parameter count.

    Args:
        members: :class:`helpers.prh.sources.PretrainedMember` list.
        world: ``{"id": ShapesData, "ood": ShapesData}`` holding PIL images.
        sources: split -> the dataset name the images came from (part of the cache key).
    """
    from helpers.cache import cached
    from helpers.features import cached_features, load_timm_model
    from helpers.prh import sources as ps

    vision, n_params = {"id": {}, "ood": {}}, {}
    for m in members:
        nets: dict = {}

        def net_for(step, m=m, nets=nets):
            if "net" not in nets:
                nets["net"] = load_timm_model(m.source)  # each model keeps its preprocessing
            return nets["net"] if step else ps.random_init_copy(nets["net"], seed=0)
        for step in m.steps:
            for split in ("id", "ood"):
                key = {"model": m.source, "init": step == 0, "split": split,
                       "source": sources[split], "n": len(world[split]), "pool": "cls"}
                feats = cached_features(key, lambda: ps.vit_features(
                    net_for(step), world[split].images, batch_size=batch_size))
                vision[split][(m.name, step)] = list(feats.unbind(1))
        n_params[m.name] = cached("prh_full_params", {"model": m.source},
                                  lambda: ps.param_count(net_for(1)))
    return vision, n_params


def text_features(name: str, captions: Sequence[str], key: dict, full: bool,
                  batch_size: int = 64) -> list[torch.Tensor]:
    """Token-mean hidden states of a text encoder (full: a Hugging Face LM) per layer, cached
    under ``key``, prepared (clamp, normalise) as one ``[N, D]`` tensor per layer."""
    from helpers.features import cached_features, extract_language_features, load_text_encoder
    from helpers.prh import sources as ps

    def compute():
        if full:
            return ps.language_features(name, list(captions), batch_size=batch_size)
        model, tok = load_text_encoder(name)
        return extract_language_features(model, tok, list(captions), batch_size=batch_size,
                                         progress=False)
    f = alignment.prepare(cached_features({"model": name, **key, "pool": "avg"}, compute))
    return [f[:, i] for i in range(f.shape[1])]


# --------------------------------------------------------------------------- verdicts
def shapes_gaps(vv: pd.DataFrame, n_boot: int) -> dict[str, tuple[float, float, float]]:
    """The shapes world's two headline differences, with 95% bootstraps over zoo members.

    Returns:
        ``"ood - id"``: paired change of trained pairs' corrected score; ``"trained - init"``:
        trained pairs minus init-init pairs OOD, among members that have a step-0 control (a
        draw resamples members, so a member's trained and random-init copies move together).
    """
    tp = vv[vv.kind == "trained pair"].pivot_table(index=["model_a", "model_b"],
                                                   columns="split", values="corrected")
    d = (tp["ood"] - tp["id"]).dropna()
    out = {"ood - id": (float(d.mean()), *stats.interval(
        stats.pair_bootstrap(d.to_numpy(), d.index, n_boot)))}
    init = vv[(vv.split == "ood") & (vv.kind == "init-init")]
    pairs = list(zip(init.model_a.str.removesuffix(INIT), init.model_b.str.removesuffix(INIT)))
    units = sorted({m for p in pairs for m in p})
    tr = tp.loc[[p for p in tp.index if p[0] in units and p[1] in units], "ood"]
    if len(tr) == 0 or len(init) == 0:
        out["trained - init"] = (float("nan"),) * 3
        return out
    draws = (stats.pair_bootstrap(tr.to_numpy(), tr.index, n_boot, seed=1, units=units)
             - stats.pair_bootstrap(init.corrected.to_numpy(), pairs, n_boot, seed=1,
                                    units=units))  # same seed and units: the same members
    out["trained - init"] = (float(tr.mean() - init.corrected.mean()), *stats.interval(draws))
    return out


def vv_phrase(lo: float, hi: float) -> str:
    """What the interval of trained minus random-init OOD alignment says, in words."""
    side = excludes(lo, hi)
    if not side:
        return "trained models are not distinguishable from random-init controls OOD"
    if lo > 0:
        return ("trained models are more aligned than random-init controls OOD, so part of the "
                "OOD alignment is learned; the random-init level is what architecture and pixels "
                "give without training")
    return ("trained models are *less* aligned than random-init controls OOD, so training does "
            "not add OOD alignment here")


def competence_phrase(comp_corr: pd.DataFrame) -> str:
    """Which splits' partial-correlation intervals (columns "id", "ood") lie above 0, in words."""
    up = {s: bool(excludes(comp_corr.loc["ci_low", s], comp_corr.loc["ci_high", s])
                  and comp_corr.loc["ci_low", s] > 0) for s in ("id", "ood")}
    if all(up.values()):
        return ("alignment to language rises with competence on both splits (both intervals "
                "above 0)")
    if any(up.values()):
        return ("alignment to language rises with competence only "
                + ("in distribution" if up["id"] else "OOD"))
    return ("alignment to language does not clearly rise with competence (neither interval lies "
            "above 0)")


def protocol_phrase(shift: dict[str, float]) -> str:
    """How much PRH's protocol (corrected) moves the mean agreement from the blog's (raw)."""
    big = max(abs(v) for v in shift.values())
    if not np.isfinite(big):
        return "so the protocols' effect on agreement is undefined here"
    if big < 0.05:
        return "so here the protocol barely changes how well the metrics agree"
    if big < 0.2:
        return ("so the protocol matters modestly: with layer search and chance correction the "
                f"configurations agree {'less' if sum(shift.values()) < 0 else 'more'}")
    return ("so the protocol changes how well the metrics agree: the blog's heatmap is largely "
            "a statement about its protocol")


def split_phrase(gap: dict[str, float]) -> str:
    """Whether mean agreement changes from in distribution to OOD (``gap``: protocol -> OOD -
    ID)."""
    if max(abs(v) for v in gap.values()) < 0.1:
        return ("the metrics agree about as well OOD as in distribution (change under 0.1 in "
                "both protocols)")
    return "the agreement changes OOD (" + ", ".join(f"{p} {v:+.2f}" for p, v in gap.items()) + ")"


def interval_claim(claim: str, source: str, mean: float, lo: float, hi: float, control: str,
                   digits: int = 3, signed: bool = True) -> Verdict:
    """A verdict row read from a 95% interval: replicated above 0, not replicated below 0."""
    side = excludes(lo, hi)
    return Verdict(claim=claim, source=source,
                   number=format_interval(mean, lo, hi, signed=signed, digits=digits),
                   control=control, threshold="interval above 0",
                   verdict=verdict_word(None if not side else bool(lo > 0)))


def agreement_claim(where: str, row: pd.Series, threshold: float, n_tests: int,
                    n_perm: int) -> Verdict:
    """A verdict row for "metric configurations agree": replicated when the p-value passes the
    (Bonferroni) ``threshold``, not replicated when the interval's top lies below the null's
    95th percentile, undecided otherwise."""
    supported = (True if row.p_value <= threshold else
                 False if row.ci_high < row.null_95 else None)
    return Verdict(
        claim=f"metric configurations agree on the pretrained models ({where})",
        source="blog: agreement heatmaps (ImageNet-O)",
        number=format_interval(row["mean"], row.ci_low, row.ci_high, digits=2)
        + f", {format_p(row.p_value, n_perm)}",
        control=f"permutation null (95th pct {row.null_95:.2f})",
        threshold=f"p <= {threshold:.4f} (Bonferroni, {n_tests} tests)",
        verdict=verdict_word(supported))


def ood_phrase(entropy: pd.Series, reference: str = "photos") -> str:
    """Which sets the classifiers are less sure on than on ``reference`` (mean entropy per set),
    and what that says about their being out of distribution."""
    others = [s for s in entropy.index if s != reference]
    up = [s for s in others if entropy[s] > entropy[reference]]
    if len(up) == len(others):
        return (f"all {len(others)} OOD sets get higher entropy than the {reference}: they are "
                "OOD in a measurable sense, though unlike ImageNet-O they are not chosen to fool "
                "the models")
    rest = [s for s in others if s not in up]
    if not up:
        return (f"none of the OOD sets gets higher entropy than the {reference}, so by this "
                "measure none is measurably OOD for these classifiers")
    return (f"only {', '.join(up)} of the OOD sets get higher entropy than the "
            f"{reference}; by this measure {', '.join(rest)} "
            f"{'is' if len(rest) == 1 else 'are'} not measurably OOD for these classifiers")


def chance_phrase(corrected: float, margin: float = 0.05) -> str:
    """"far from chance" when a corrected score exceeds ``margin``, else "close to chance"."""
    if not np.isfinite(corrected):
        return "of undefined distance from chance"
    return "far from chance" if corrected > margin else "close to chance"


# --------------------------------------------------------------------------- glued values
def real_alignment_values(summary: pd.DataFrame, views: dict[str, str]) -> dict:
    """The glued numbers of the real-model alignment section, read from
    :func:`helpers.prh.real_images.summarise` output in each set's headline ``views``.

    Returns:
        ``rv_<set>`` (trained pairs), ``rv_init_<set>`` (random-init pairs), ``rv_diff_<set>``
        (trained minus init with its interval, signed), ``rv_photos_plain`` and
        ``real_init_chance`` (:func:`chance_phrase` of the photos' random-init pairs).
    """
    out = {}
    for s, v in views.items():
        out[f"rv_{s}"] = float(summary.loc[(s, v, "trained pairs"), "mean"])
        out[f"rv_init_{s}"] = float(summary.loc[(s, v, "random-init pairs"), "mean"])
        r = summary.loc[(s, v, "trained - init")]
        out[f"rv_diff_{s}"] = format_interval(r["mean"], r.ci_low, r.ci_high, signed=True)
    if "photos" in views:
        out["rv_photos_plain"] = float(summary.loc[("photos", "plain", "trained pairs"), "mean"])
        out["real_init_chance"] = chance_phrase(out["rv_init_photos"])
    return out


def objective_phrase(gain_other: float, gain_same: float) -> str:
    """Do pairs across objectives (``gain_other``: trained-minus-init with the edge detector)
    converge less than pairs within one (``gain_same``: ImageNet classifiers only)?"""
    if not (np.isfinite(gain_other) and np.isfinite(gain_same)):
        return "whether objectives differ in convergence is undefined here"
    if gain_other < gain_same:
        return ("convergence here is weaker across objectives (edge detection vs classification) "
                "than within one")
    return ("pairs across objectives (edge detection vs classification) converge at least as "
            "much as pairs within one")


def floor_phrase(n_perm: int, threshold: float) -> str:
    """Whether the permutation floor ``1 / (n_perm + 1)`` lets a test pass ``threshold``."""
    floor = f"1/{n_perm + 1}"
    if 1 / (n_perm + 1) <= threshold:
        return f"the permutation floor {floor} lies below it."
    return (f"at this scale the permutation floor {floor} lies above it, so no test can pass "
            "(raise real_agree_perm).")


def agreement_headline(rows: pd.DataFrame, n_tests: int) -> str:
    """How many agreement means pass (``rows.passes``), naming the ones that do."""
    passing = rows[rows.passes]
    named = ", ".join(f"{s} {p} {v}" for s, p, v in passing.index)
    return (f"{len(passing)} of the {n_tests} agreement means pass the Bonferroni threshold"
            + (f" ({named})" if len(passing) else ""))


def blog_vs_null(rows: pd.DataFrame, sets: Sequence[str]) -> str:
    """The blog protocol's raw mean agreement against its null mean, per image set."""
    return "; ".join(f"{s}: {rows.loc[(s, 'blog', 'raw'), 'mean']:.2f} observed against a null "
                     f"mean of {rows.loc[(s, 'blog', 'raw'), 'null_mean']:.2f}" for s in sets)


def closing_values(gaps: dict, comp_corr: pd.DataFrame, agree_summary: pd.DataFrame,
                   vl_mean: pd.DataFrame, final: dict[str, int]) -> dict:
    """The glued numbers and phrases of the shapes world's closing paragraphs.

    Args:
        gaps: :func:`shapes_gaps` output.
        comp_corr: competence correlations, columns ``id`` and ``ood``, rows ``partial``,
            ``ci_low``, ``ci_high``.
        agree_summary: mean agreement indexed by (protocol, value), columns ``id``, ``ood``.
        vl_mean: :func:`language_alignment` output.
        final: model -> its final checkpoint step.

    Returns:
        ``vv_gap``, ``vv_gap_ci``, ``vv_above_init``, ``vv_verdict``, ``comp_verdict``,
        ``agree_delta``, ``protocol_verdict``, ``vl_rise`` and ``agree_split_verdict``.
    """
    (gap, gap_lo, gap_hi), (above, lo, hi) = gaps["ood - id"], gaps["trained - init"]
    shift = {s: agree_summary.loc[("PRH", "corrected"), s] - agree_summary.loc[("blog", "raw"), s]
             for s in ("id", "ood")}
    is_final = vl_mean.step == vl_mean.model.map(final)
    rise = {s: vl_mean[(vl_mean.split == s) & is_final].corrected.mean()
            - vl_mean[(vl_mean.split == s) & (vl_mean.step == 0)].corrected.mean()
            for s in ("id", "ood")}
    return {
        "vv_gap": gap, "vv_gap_ci": f"[{gap_lo:+.3f}, {gap_hi:+.3f}]",
        "vv_above_init": format_interval(above, lo, hi, signed=True),
        "vv_verdict": vv_phrase(lo, hi), "comp_verdict": competence_phrase(comp_corr),
        "agree_delta": f"{shift['id']:+.2f} in distribution and {shift['ood']:+.2f} OOD",
        "protocol_verdict": protocol_phrase(shift),
        "vl_rise": f"{rise['id']:+.3f} in distribution and {rise['ood']:+.3f} OOD",
        "agree_split_verdict": split_phrase(
            {p: agree_summary.loc[(p, v), "ood"] - agree_summary.loc[(p, v), "id"]
             for p, v in (("blog", "raw"), ("PRH", "corrected"))})}


def interval_claims(real_summary: pd.DataFrame, views: dict[str, str], vl_diff: dict,
                    shapes_gap: tuple[float, float, float],
                    comp_corr: pd.DataFrame) -> list[Verdict]:
    """The verdict rows read from 95% intervals (:func:`interval_claim`), in table order.

    Args:
        real_summary: :func:`helpers.prh.real_images.summarise` output; one row per image set
            of ``views`` (its headline view), trained minus random-init.
        vl_diff: :func:`init_gain` output for the captioned sets.
        shapes_gap: the shapes world's OOD trained minus init
            (``shapes_gaps()["trained - init"]``).
        comp_corr: competence correlations (columns ``id``, ``ood``).
    """
    claims = [interval_claim(
        "pretrained vision models align beyond random init on "
        + ("natural photo crops" if s == "photos" else f"OOD set {s!r}"),
        "PRH (photos); blog: 'PRH holds on ImageNet-O' (OOD sets)",
        *real_summary.loc[(s, v, "trained - init"), ["mean", "ci_low", "ci_high"]],
        "random-init pairs of the same architectures, same images") for s, v in views.items()]
    claims += [interval_claim(f"vision models align with sentence encoders on {s} captions",
                              "PRH (vision-language convergence)", *v,
                              "random-init copies of the same architectures")
               for s, v in vl_diff.items()]
    claims.append(interval_claim(
        "small models trained on the shapes world align beyond random init OOD",
        "blog: 'PRH holds OOD'", *shapes_gap, "random-init zoo members (step 0)"))
    claims += [interval_claim(
        f"alignment to language rises with competence ({'ID' if s == 'id' else 'OOD'})",
        "PRH (alignment vs competence)", *comp_corr.loc[["partial", "ci_low", "ci_high"], s],
        "partial on architecture, step 0 excluded", digits=2, signed=False)
        for s in ("id", "ood")]
    return claims


def competence_values(comp_corr: pd.DataFrame, vl_mean: pd.DataFrame, comp: pd.DataFrame,
                      final: dict[str, int]) -> dict:
    """The glued numbers of the competence section.

    Returns:
        Per split ``s`` in ``id``, ``ood``: ``comp_partial_<s>`` (partial Spearman with its
        interval), ``comp_rho_<s>`` (pooled), ``vl_init_<s>`` and ``vl_final_<s>`` (mean
        corrected alignment at step 0 and at the final checkpoints); ``comp_min`` and
        ``comp_max`` over trained checkpoints.
    """
    out = {}
    for split, r in comp_corr.items():
        out[f"comp_partial_{split}"] = format_interval(r.partial, r.ci_low, r.ci_high, digits=2)
        out[f"comp_rho_{split}"] = float(r.pooled)
        d = vl_mean[vl_mean.split == split]
        out[f"vl_init_{split}"] = float(d[d.step == 0].corrected.mean())
        out[f"vl_final_{split}"] = float(d[d.step == d.model.map(final)].corrected.mean())
    trained = comp[comp.step > 0].competence
    out["comp_min"], out["comp_max"] = float(trained.min()), float(trained.max())
    return out


def vv_values(vv_summary: pd.DataFrame) -> dict:
    """``vv_<split>`` (trained pairs) and ``vv_rand_<split>`` (init-init pairs) corrected means
    from :func:`summarise_vv`, and ``zoo_init_chance`` (:func:`chance_phrase`, in distribution)."""
    out = {}
    for split in ("id", "ood"):
        out[f"vv_{split}"] = float(vv_summary.loc[(split, "trained pair"), "corrected"])
        out[f"vv_rand_{split}"] = float(vv_summary.loc[(split, "init-init"), "corrected"])
    out["zoo_init_chance"] = chance_phrase(out["vv_rand_id"])
    return out


def lone_values(lone: pd.DataFrame) -> dict:
    """The two configurations least like the others and the most typical one, from each
    configuration's mean correlation with the others (:func:`mean_with_others` per split)."""
    order = lone.mean(axis=1).sort_values()
    return {"least_agree": f"{order.index[0]} ({order.iloc[0]:.2f}) and "
                           f"{order.index[1]} ({order.iloc[1]:.2f})",
            "most_agree": f"{order.index[-1]} ({order.iloc[-1]:.2f})"}


# --------------------------------------------------------------------------- chapter steps
def model_table(models: Sequence[str]) -> pd.DataFrame:
    """The registry rows (:func:`helpers.pretrained.describe`) of ``models``, one per model,
    without the package column."""
    from helpers import pretrained

    return pd.DataFrame([{k: v for k, v in row.items() if k != "package"}
                         for row in pretrained.describe() if row["model"] in models]
                        ).set_index("model")


def confidence_values(conf: pd.DataFrame, sets: Sequence[str]) -> tuple[pd.DataFrame, dict]:
    """Mean confidence, entropy and confident share per image set (in ``sets`` order) of
    :func:`helpers.prh.real_images.confidence_table` output, and their glued values
    ``conf_<set>``, ``ent_<set>`` and ``ood_measured`` (:func:`ood_phrase`)."""
    mean = conf.groupby("image_set")[["confidence", "entropy", "frac_confident"]].mean()
    mean = mean.reindex(list(sets))
    values = {}
    for s in sets:
        values[f"conf_{s}"] = float(mean.loc[s, "confidence"])
        values[f"ent_{s}"] = float(mean.loc[s, "entropy"])
    values["ood_measured"] = ood_phrase(mean.entropy)
    return mean, values


def objective_values(diff_wide: pd.DataFrame, model: str = "hed_vgg16") -> dict:
    """``rv_diff_hed`` and ``rv_diff_nohed`` (:func:`objective_gap`: pairs with ``model``
    against pairs without it) and ``hed_sentence`` (:func:`objective_phrase`)."""
    gain_other, gain_same = objective_gap(diff_wide, model)
    return {"rv_diff_hed": gain_other, "rv_diff_nohed": gain_same,
            "hed_sentence": objective_phrase(gain_other, gain_same)}


def pair_slider_figure(diff_wide: pd.DataFrame, models: Sequence[str]):
    """An interactive heatmap of :func:`diff_by_pair` output, one slider frame per image set,
    on a colour scale symmetric about 0 (hover names the pair)."""
    import plotly.graph_objects as go

    from helpers import interactive

    lim = float(np.nanmax(np.abs(diff_wide.to_numpy())))
    frames = {s: [go.Heatmap(z=pair_matrix(diff_wide[s], models), x=list(models), y=list(models),
                             zmin=-lim, zmax=lim, colorscale="RdBu", reversescale=True,
                             hovertemplate="%{y} vs %{x}: %{z:+.3f}<extra></extra>")]
              for s in diff_wide.columns}
    return interactive.slider_figure(
        frames, slider_label="image set",
        title="Trained minus random-init corrected mutual kNN, per architecture pair")


def picked_depth(tables: dict[tuple, pd.DataFrame]) -> pd.DataFrame:
    """Mean depth (fraction of each model's blocks) of the layer pair the max picks, per image
    set and view, for trained and random-init pairs, over :func:`real_alignment`'s tables."""
    real_all = pd.concat(tables.values(), ignore_index=True)
    picked = real_all[real_all.kind.isin(["trained", "init"])].assign(
        depth=lambda d: (d.depth_a + d.depth_b) / 2)
    return picked.pivot_table(index=["image_set", "view"], columns="kind", values="depth")


def agreement_values(rows: pd.DataFrame, prefix: str = "ragree") -> dict:
    """Per (set, protocol, value) row of :func:`agreement_rows`: ``<prefix>_<set>_<protocol>``
    (the mean agreement with its interval, two digits) and ``<prefix>_null_<set>_<protocol>``
    (the null's 95th percentile), with ``_corr`` appended for corrected scores."""
    values = {}
    for (s, p, v), r in rows.iterrows():
        tail = "" if v == "raw" else "_corr"
        values[f"{prefix}_{s}_{p}{tail}"] = format_interval(r["mean"], r.ci_low, r.ci_high,
                                                            digits=2)
        values[f"{prefix}_null_{s}_{p}{tail}"] = r.null_95
    return values


def agreement_view(rows: pd.DataFrame, n_perm: int) -> pd.DataFrame:
    """The agreement tests as shown: mean, interval, null, p (written at its floor by
    :func:`helpers.chapter.format_p`), whether it passes, and the number of pairs."""
    return rows.assign(p=[format_p(p, n_perm) for p in rows.p_value])[
        ["mean", "ci_low", "ci_high", "null_mean", "null_95", "p", "passes", "n_pairs"]]


def make_world(full: bool, n: int, seed: int, id_source: str, ood_source: str) -> dict:
    """The chapter's two splits, ``{"id": ShapesData, "ood": ShapesData}``: the shapes world's
    (``n`` images each, ``seed``), or at full scale PRH's data (WIT images and captions from
    ``id_source``, ImageNet-O from ``ood_source``) with a ``subset`` column naming the split."""
    from helpers.prh import shapes_world as sw
    from helpers.prh import sources as ps

    if not full:
        return {split: sw.make_dataset(n, split, seed=seed) for split in ("id", "ood")}
    world = {}
    for split, loader, source in (("id", ps.load_wit, id_source),
                                  ("ood", ps.load_imagenet_o, ood_source)):
        imgs, caps = loader(source, n=n)
        world[split] = ShapesData(imgs, pd.DataFrame({"subset": [split] * len(caps)}), caps)
    return world


def zoo_table(zoo: Sequence) -> pd.DataFrame:
    """One row per zoo member: name, architecture, objective, seed and the mean of its last five
    logged losses (NaN without a history)."""
    return pd.DataFrame([dict(name=m.name, arch=m.arch, objective=m.objective, seed=m.seed,
                              final_loss=np.mean([h["loss"] for h in m.history[-5:]])
                              if m.history else np.nan) for m in zoo])


def accuracy_summary(acc_table: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """Mean accuracy of :func:`accuracy_table` per image kind (in distribution first), and the
    glued ``acc_id_shape`` and ``acc_combo_shape`` (shape accuracy in distribution and on
    held-out shape-colour pairs)."""
    summary = (acc_table.groupby("subset")[["shape", "color", "texture", "all_factors"]].mean()
               .reindex(["id", *OOD_KINDS]))
    return summary, {"acc_id_shape": float(summary.loc["id", "shape"]),
                     "acc_combo_shape": float(summary.loc["held_out_combo", "shape"])}


def objective_pairs(vv: pd.DataFrame, objective_of: dict[str, str]) -> pd.DataFrame:
    """Corrected scores of trained pairs (:func:`vv_scores`) per split, for pairs that share an
    objective and pairs that do not: mean, standard deviation and count."""
    trained = vv[vv.kind == "trained pair"].copy()
    trained["same_objective"] = [objective_of[a] == objective_of[b]
                                 for a, b in zip(trained.model_a, trained.model_b)]
    return trained.groupby(["split", "same_objective"]).corrected.agg(["mean", "std", "count"])


def competence_titles(comp_corr: pd.DataFrame) -> dict[str, str]:
    """Panel titles of :func:`plot_competence`: each split with its partial Spearman."""
    return {s: f"{'in distribution' if s == 'id' else 'out of distribution'}: partial rho "
               f"{comp_corr.loc['partial', s]:.2f}" for s in ("id", "ood")}


def shapes_agreement_values(rows: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """The shapes world's mean agreement per (protocol, value) and split, and the glued
    ``agree_blog_<split>`` (blog, raw) and ``agree_corr_<split>`` (PRH, corrected)."""
    summary = rows["mean"].unstack(0)
    values = {}
    for split in ("id", "ood"):
        values[f"agree_blog_{split}"] = float(summary.loc[("blog", "raw"), split])
        values[f"agree_corr_{split}"] = float(summary.loc[("PRH", "corrected"), split])
    return summary, values


def protocol_scores(tables: dict[tuple, pd.DataFrame], config: str) -> pd.DataFrame:
    """Mean raw score, null mean and corrected score of one configuration over the pairs of
    every ``(split, protocol)`` table."""
    table = pd.concat([t.assign(split=s, protocol=p) for (s, p), t in tables.items()])
    return table[table.config == config].groupby(["protocol", "split"])[
        ["raw", "null_mean", "corrected"]].mean()


def check_full_scale(full: bool, vit_models: Sequence[str]) -> None:
    """Fail before any work when ``full`` scale has fewer than two ``vit_models`` to compare.

    Raises:
        ValueError: naming ``vit_models`` and where PRH's are listed.
    """
    if full and len(vit_models) < 2:
        raise ValueError("scale='full' needs at least two vit_models (PRH's ViTs are listed in "
                         "book/scales.yaml); hub names need network access, local folders work "
                         "offline")


def shapes_features(zoo: Sequence, world: dict, language_models: Sequence[str], *, full: bool,
                    n: int, seed: int, sources: dict[str, str],
                    batch_size: int) -> tuple[dict, dict[str, int] | None, dict]:
    """Both sides' features of the shapes world (or, at full scale, PRH's data), cached.

    Args:
        zoo: the zoo's members (full: :class:`helpers.prh.sources.PretrainedMember` list).
        world: ``{"id": ShapesData, "ood": ShapesData}``.
        language_models: text encoders (full: Hugging Face LMs).
        n, seed: the evaluation images' count and seed (part of the cache keys).
        sources: split -> dataset name (full scale; part of the cache keys).
        batch_size: full scale's images or captions per forward pass (book: 64 captions).

    Returns:
        ``vision`` (:func:`zoo_vision_features` or :func:`pretrained_vision_features`),
        ``n_params`` (full: model -> parameter count; else None) and ``prepared_lang``
        (``{split: {encoder: prepared layers}}``, :func:`text_features` of the true captions).
    """
    if full:
        vision, n_params = pretrained_vision_features(zoo, world, sources, batch_size)
    else:
        vision = zoo_vision_features(zoo, world, {"world": "shapes", "n": n, "seed": seed})
        n_params = None
    lang = {}
    for split in world:
        key = ({"world": "prh", "source": sources[split]} if full else {"world": "shapes"})
        lang[split] = {lm: text_features(lm, world[split].captions,
                                         {**key, "split": split, "n": n, "seed": seed}, full,
                                         batch_size if full else 64)
                       for lm in language_models}
    return vision, n_params, lang


def real_agreement(real_feats: dict, models: Sequence[str], sets: Sequence[str], configs,
                   n_perm: int, n_layers: int, n_boot: int,
                   threshold: float) -> tuple[dict, pd.DataFrame]:
    """Metric agreement on the real models: :func:`protocol_tables` on each image set in
    ``sets`` (``real_feats[set][model]`` the raw per-layer features), then
    :func:`agreement_rows` with ``passes`` (p-value at or below ``threshold``).

    Returns:
        ``{(set, protocol): score table}`` and the agreement rows.
    """
    tables = {(s, p): t for s in sets for p, t in protocol_tables(
        {m: real_feats[s][m] for m in models}, configs, n_perm, n_layers).items()}
    rows = agreement_rows(tables, n_boot)
    rows["passes"] = rows.p_value <= threshold
    return tables, rows


def shapes_agreement(vision: dict, final: dict[str, int], configs, n_images: int, n_perm: int,
                     n_boot: int) -> tuple[dict, pd.DataFrame, dict]:
    """Metric agreement on the zoo's final checkpoints (``vision[split][(model, step)]``), both
    splits, the first ``n_images`` images, every layer searched under PRH's protocol.

    Returns:
        ``{(split, protocol): score table}``, :func:`agreement_rows` of them, and
        ``{(split, protocol, value): configuration correlation matrix}``
        (:func:`helpers.prh.metric_agreement.agreement`).
    """
    tables = {(split, p): t for split in ("id", "ood") for p, t in protocol_tables(
        {n: [v[:n_images] for v in vision[split][(n, final[n])]] for n in final}, configs,
        n_perm, None).items()}
    corr = {(split, p, v): ma.agreement(tables[(split, p)], v)
            for split in ("id", "ood") for p in ("blog", "PRH") for v in ("raw", "corrected")}
    return tables, agreement_rows(tables, n_boot), corr


def competence_correlations(vl_mean: pd.DataFrame, n_boot: int) -> pd.DataFrame:
    """:func:`helpers.prh.competence.competence_correlation` of :func:`language_alignment`
    output per split (columns ``id``, ``ood``)."""
    from helpers.prh.competence import competence_correlation

    return pd.DataFrame({split: competence_correlation(vl_mean[vl_mean.split == split],
                                                       n_boot=n_boot)
                         for split in ("id", "ood")})


def shown_values(**params) -> dict:
    """Parameters quoted in the prose, glued as ``<name>_shown``; a list reads comma-separated.

    Example:
        >>> shown_values(topk=10, agree_ks=[10, 30])
        {'topk_shown': 10, 'agree_ks_shown': '10, 30'}
    """
    return {f"{name}_shown": ", ".join(map(str, v)) if isinstance(v, (list, tuple)) else v
            for name, v in params.items()}


def caption_gain(vl_real: pd.DataFrame, models: Sequence[str],
                 n_boot: int) -> tuple[pd.DataFrame, dict, dict]:
    """The real models' caption alignment (:func:`caption_alignment` output) per model and image
    set, mean over encoders; trained minus random-init per set (:func:`init_gain`); and the
    glued ``vl_real_diff_<set>`` (signed, with its interval)."""
    by_model = vl_real.groupby(["image_set", "model_a"]).corrected.mean().unstack(0)
    diff = init_gain(by_model, models, n_boot)
    values = {f"vl_real_diff_{s}": format_interval(*v, signed=True) for s, v in diff.items()}
    return by_model, diff, values


def agreement_threshold(alpha: float, sets: Sequence[str]) -> tuple[int, float]:
    """The real-model agreement tests' count (image sets x two protocols x raw/corrected) and
    their Bonferroni threshold at family-wise ``alpha``.

    Example:
        >>> agreement_threshold(0.05, ["photos", "fashion"])
        (8, 0.00625)
    """
    from helpers.chapter import bonferroni

    n_tests = 4 * len(sets)
    return n_tests, bonferroni(alpha, n_tests)


def real_agreement_glue(rows: pd.DataFrame, sets: Sequence[str], n_perm: int, threshold: float,
                        n_tests: int) -> tuple[dict, dict]:
    """The glued numbers (``agree_n_tests``, ``agree_threshold``, :func:`agreement_values`) and
    phrases (``agree_floor_sentence``, ``ragree_headline``, ``ragree_blog_vs_null``) of the
    real-model agreement section, from :func:`real_agreement`'s rows."""
    values = dict(agree_n_tests=n_tests, agree_threshold=threshold, **agreement_values(rows))
    texts = dict(agree_floor_sentence=floor_phrase(n_perm, threshold),
                 ragree_headline=agreement_headline(rows, n_tests),
                 ragree_blog_vs_null=blog_vs_null(rows, sets))
    return values, texts


_PROTOCOL_VALUES = [(p, v) for p in ("blog", "PRH") for v in ("raw", "corrected")]


def plot_real_agreement(tables: dict[tuple, pd.DataFrame], sets: Sequence[str]):
    """:func:`plot_agreement_grid` of the real models: one row per image set, one column per
    (protocol, raw/corrected), from :func:`real_agreement`'s ``{(set, protocol): table}``."""
    return plot_agreement_grid({(s, f"{p}, {v}"): ma.agreement(tables[(s, p)], v)
                                for s in sets for p, v in _PROTOCOL_VALUES},
                               title_of=lambda s, c: f"{s}: {c}")


def _split_name(split: str) -> str:
    return "in distribution" if split == "id" else "OOD"


def plot_shapes_agreement(corr: dict[tuple, pd.DataFrame]):
    """:func:`plot_agreement_grid` of the shapes world under PRH's protocol: rows the splits,
    columns raw and corrected scores, from :func:`shapes_agreement`'s correlation matrices."""
    return plot_agreement_grid({(split, v): corr[(split, "PRH", v)] for split in ("id", "ood")
                                for v in ("raw", "corrected")},
                               title_of=lambda s, v: f"{_split_name(s)}, {v} scores")


def lone_table(corr: dict[tuple, pd.DataFrame]) -> pd.DataFrame:
    """Each configuration's mean correlation with the others (:func:`mean_with_others`) under
    PRH's protocol on corrected scores, one column per split."""
    return pd.DataFrame({split: mean_with_others(corr[(split, "PRH", "corrected")])
                         for split in ("id", "ood")})


def prepare_vision(vision: dict) -> dict:
    """PRH's preparation (:func:`helpers.alignment.prepare`) of every checkpoint's layers,
    ``{split: {(model, step): prepared layers}}``."""
    return {split: {key: alignment.prepare(layers) for key, layers in by_key.items()}
            for split, by_key in vision.items()}


def competence_xlabel(full: bool) -> str:
    """The competence axis: probe accuracy, or at full scale the log10-parameters proxy."""
    return ("competence: log10 parameters (proxy)" if full
            else "competence (probe accuracy, fraction)")


def gaps_table(gaps: dict[str, tuple[float, float, float]]) -> pd.DataFrame:
    """:func:`shapes_gaps` written as signed intervals, one row per difference."""
    return pd.DataFrame({k: format_interval(*v, signed=True) for k, v in gaps.items()},
                        index=["value"]).T


def verdict_claims(real_summary: pd.DataFrame, views: dict[str, str], vl_diff: dict, gaps: dict,
                   comp_corr: pd.DataFrame, agree_rows: pd.DataFrame, threshold: float,
                   n_tests: int, n_perm: int) -> tuple[list[Verdict], dict]:
    """The closing table's rows: :func:`interval_claims`, then one :func:`agreement_claim` per
    image set of ``agree_rows`` (blog protocol, raw scores).

    Returns:
        The rows and their glued counts: ``n_interval_claims``, ``expected_false`` (interval
        rows expected to pass by chance, 2.5% each: one side of a 95% interval) and
        ``n_claims``.
    """
    claims = interval_claims(real_summary, views, vl_diff, gaps["trained - init"], comp_corr)
    values = dict(n_interval_claims=len(claims), expected_false=0.025 * len(claims))
    sets = dict.fromkeys(agree_rows.index.get_level_values(0))
    claims += [agreement_claim(s, agree_rows.loc[(s, "blog", "raw")], threshold, n_tests, n_perm)
               for s in sets]
    values["n_claims"] = len(claims)
    return claims, values
