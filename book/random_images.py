# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Random images, and where the Platonic Representation Hypothesis stops
#
# **Question.** On images that mean nothing (pixel noise, coloured noise, random collages), do
# models still align, and how much real image has to be in a picture before their agreement is
# more than chance?
#
# **Answer.** {glue:text}`v_answer`. On uniform pixel noise, trained zoo pairs (different
# architectures) reach a mean chance-corrected mutual-kNN alignment of only
# {glue:text}`ans_uniform_trained:.3f` (pooled permutation p = {glue:text}`ans_uniform_trained_p:.3f`).
# On white noise with a per-image contrast, on 1/f noise and on random collages, they reach up
# to {glue:text}`ans_max_noise:.3f` ({glue:text}`ans_max_noise_family`). **Random-init** pairs
# of the same architectures reach {glue:text}`ans_uniform_init:.3f` on uniform noise, and
# training {glue:text}`v_init_uniform`. Where training adds alignment on meaningless images, that
# alignment is not shared input geometry alone: trained networks agree on global image
# statistics, such as contrast and low-frequency colour. Along blends from real
# images towards uniform noise, random-init pairs become indistinguishable from the permutation
# null at noise fraction t = {glue:text}`ans_front_init:.1f`, and alignment with the caption
# encoders at t = {glue:text}`ans_front_text:.1f` (medians over seeds). {glue:text}`v_blend_trained`
# (largest pooled p of trained pairs at t = 1: {glue:text}`ans_blend_t1_p:.3f`). The source blog
# {cite:p}`rokosbasilisk2024platonic` reported that metrics stop agreeing with each other on
# random images. The median Spearman correlation between metric configurations over model pairs
# is {glue:text}`ans_rho_uniform:.2f` on uniform noise and {glue:text}`ans_rho_id:.2f` in
# distribution, so {glue:text}`v_rho`. On noise, the raw scores' spread over model pairs is
# {glue:text}`ans_spread_ratio:.1f` times the permutation null's spread, so
# {glue:text}`v_spread`.

# %%
import math
import time
from contextlib import contextmanager

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from myst_nb import glue
from scipy import stats
from tqdm.auto import tqdm

from helpers import alignment as al
from helpers.prh import metric_agreement as ma
from helpers.prh import noise_images as ni
from helpers.cache import key_digest
from helpers.features import cached_features, extract_language_features, load_text_encoder
from helpers.plotting import NULL_COLOR, PALETTE, show, use_style
from helpers.prh.shapes_world import make_dataset

use_style()
# The alignment kernels here are many small ops; with one thread they run up to 20x faster on
# a busy 2-core machine (measured), and no slower on an idle one at these sizes.
torch.set_num_threads(1)

# %% tags=["parameters"]
scale: str = "book"  # smoke | book | full (set by helpers.run)
n_images: int = 300  # images per set (N); the kNN chance level is topk / (N - 1)
image_size: int = 64  # pixels per side; the zoo's input size (full scale: noise at each ViT's own size)
data_seed: int = 7  # first seed of the in-distribution evaluation images (the zoo trains on seed 1000)
families: list = ["uniform", "gaussian", "spectral0", "spectral1", "spectral2", "collage"]  # noise families (helpers.prh.noise_images.FAMILIES)
family_metrics: list = ["mutual_knn"]  # metrics of the per-family table (max over layer pairs, the PRH protocol)
topk: int = 10  # neighbours for the kNN metrics and cknna
n_perm: int = 40  # permutations per null (p-values are multiples of 1 / (n_perm + 1))
alpha_level: float = 0.05  # significance level: p at or below it counts as distinguishable from chance
heatmap_configs: list = ["mutual_knn@10", "mutual_knn@50", "mutual_knn@100", "cknna@10", "cknna@50", "cknna@100", "cycle_knn@10", "cka", "unbiased_cka"]  # metric@k configurations of the agreement heatmap
heatmap_perm: int = 20  # permutations per configuration and pair for the calibrated heatmap
blend_family: str = "uniform"  # noise the blends mix towards
blend_levels: int = 11  # mixing levels t in linspace(0, 1, blend_levels)
blend_metrics: list = ["mutual_knn", "unbiased_cka"]  # metrics of the blend curve
blend_layer: str = "last"  # blend-curve layers: "last" (last layer of each model, as the blog) or "max" (max over layer pairs, slower)
noise_seeds: int = 3  # independent draws (source images and noise) for the blend intervals
text_encoders: list = ["all-MiniLM-L6-v2", "all-mpnet-base-v2"]  # caption encoders (offline packages)
zoo_seed: int = 0  # seed of the trained zoo members used (one member per architecture x objective)
objectives: list = ["supervised", "simclr", "caption"]  # zoo objectives used (helpers.prh.zoo.OBJECTIVES)
batch_size: int = 256  # images per forward pass
vit_models: list = []  # full scale: timm ViT names or local folders (empty list: the trained zoo)
blend_images: str = "shapes"  # blend source: "shapes" (the shapes world) or a folder of real images (full: ImageNet-O / WIT export)

# %% [markdown]
# The chapter spends its time in the places below, which the last table adds up.

# %%
T_START = time.time()
timings: dict[str, float] = {}


@contextmanager
def timed(stage: str):
    t0 = time.time()
    yield
    timings[stage] = timings.get(stage, 0.0) + time.time() - t0


FULL = bool(vit_models)
if blend_layer not in ("last", "max"):
    raise ValueError(f"blend_layer must be 'last' or 'max', got {blend_layer!r}")
bad = [f for f in families + [blend_family] if f not in ni.FAMILIES]
if bad:
    raise ValueError(f"unknown noise families {bad}; choose from {ni.FAMILIES}")
levels = np.linspace(0.0, 1.0, blend_levels)
print(f"scale={scale}: N={n_images}, {len(families)} noise families, {blend_levels} blend levels x {noise_seeds} seeds, "
      f"{n_perm} permutations; kNN chance = {topk / (n_images - 1):.4f}")

# %% [markdown]
# ## Six kinds of nothing
#
# One seeded generator, `helpers.prh.noise_images`, makes every family. **Uniform** pixels are the
# blog's random images. **Gaussian** pixels are the blog's unused "normal" option. **Spectral**
# noise has power falling as $1/f^\alpha$: $\alpha = 0$ is white, and $\alpha = 2$ has the
# second-order statistics of natural photographs. **Collages** are random ellipses and polygons
# in random colours, with edges, flat regions and occlusion but no objects.

# %%
with timed("generate images"):
    samples = {f: ni.make_noise(f, 6, size=image_size, seed=0) for f in families}
    slope_rows = []
    for f in families:
        x = ni.make_noise(f, min(n_images, 200), size=image_size, seed=1)
        slope_rows.append({"family": f, "measured spectral slope": ni.spectral_slope(x)})
    real = make_dataset(min(n_images, 200), split="id", seed=data_seed, size=image_size).images
    slope_rows.append({"family": "shapes world (real)", "measured spectral slope": ni.spectral_slope(real)})
slopes = pd.DataFrame(slope_rows).set_index("family")
slopes

# %% mystnb={"figure": {"caption": "The noise families (one row each) and their radially averaged power spectra. Spectral noise recovers its slope of minus alpha; collages and the shapes world have steep, natural-like spectra without being noise-like.", "name": "fig-random_images-families"}}
fig = plt.figure(figsize=(9, 4.2))
grid = fig.add_gridspec(len(families), 8)
for r, f in enumerate(families):
    for c in range(5):
        ax = fig.add_subplot(grid[r, c])
        ax.imshow(samples[f][c].permute(1, 2, 0).numpy())
        ax.set_xticks([]), ax.set_yticks([])
        ax.grid(False)
        if c == 0:
            ax.set_ylabel(f, rotation=0, ha="right", va="center", fontsize=8)
ax = fig.add_subplot(grid[:, 5:])
for i, f in enumerate(families):
    fr, pw = ni.radial_power_spectrum(ni.make_noise(f, 64, size=image_size, seed=1))
    ax.loglog(fr, pw / pw[0], color=PALETTE[i % len(PALETTE)], label=f"{f} (slope {slopes.loc[f].iloc[0]:.2f})")
fr, pw = ni.radial_power_spectrum(real[:64])
ax.loglog(fr, pw / pw[0], color=NULL_COLOR, ls="--", label=f"shapes world (slope {slopes.iloc[-1, 0]:.2f})")
ax.xaxis.set_minor_formatter(plt.NullFormatter())
ax.set_xlabel("spatial frequency (cycles per pixel)")
ax.set_ylabel("power (relative to lowest frequency)")
ax.legend(fontsize=7)
show(fig)

# %% [markdown]
# The measured slopes match the design: about 0 for the white families and about minus alpha
# for spectral noise. Collages fall off as steeply as real images do, even though nothing in
# them means anything.
#
# ## The models, and their controls
#
# The zoo is the one trained in the previous chapter: ViTs, CNNs and MLPs trained with
# supervised, autoencoding, SimCLR and caption-contrastive objectives on the shapes world. It is
# loaded from the shared cache, or trained if the cache is empty. Each network's weights at step
# 0 give the **random-init control**: the same architecture, never trained. Networks of one
# architecture and seed start from the same backbone, so there is one control per
# (architecture, seed). A third control, **pixels**, treats the raw image as a one-layer model.

# %%
from helpers.prh.zoo import ZooConfig, get_zoo, member_features, weights_key  # noqa: E402

sources: dict[str, dict] = {}  # name -> {"group": trained | init | pixels | pretrained, "fn": images -> list[[N, D_l]], "key": ...}
with timed("load or train the zoo"):
    if FULL:
        from helpers.features import extract_vision_features, load_timm_model

        timm_models = {}
        for name in vit_models:
            timm_models[name] = load_timm_model(name)  # hub name (network) or local folder
            sources[name] = {"group": "pretrained", "key": str(name),
                             "fn": (lambda m: lambda x: list(extract_vision_features(m, x, batch_size=batch_size, progress=False).unbind(1)))(timm_models[name])}
        sizes = {ni.model_input_size(m) for m in timm_models.values()}
        image_size = max(s[0] for s in sizes)  # noise at the largest input size; each model's own transform resizes
        print(f"input sizes {sorted(sizes)}; noise generated at {image_size}x{image_size}")
        zoo_seconds = 0.0
    else:
        zoo_config = ZooConfig.for_scale(scale)
        t0 = time.time()
        zoo = get_zoo(zoo_config, progress=True)
        zoo_seconds = time.time() - t0
        if image_size != zoo_config.image_size:
            raise ValueError(f"image_size={image_size} but the zoo was trained at {zoo_config.image_size}; set image_size={zoo_config.image_size}")
        if zoo_seed not in zoo_config.seeds:
            raise ValueError(f"zoo_seed={zoo_seed} is not a trained seed; choose from {zoo_config.seeds}")
        for m in zoo:
            if m.seed == zoo_seed and m.objective in objectives:
                sources[m.name] = {"group": "trained", "key": m.name + f"@{m.steps[-1]}", "arch": m.arch, "objective": m.objective,
                                   "fn": (lambda mm: lambda x: member_features(mm, x, batch_size=batch_size))(m)}
        for arch in zoo_config.archs:
            for s in zoo_config.seeds:
                m = next(mm for mm in zoo if mm.arch == arch and mm.seed == s)
                sources[f"{arch}-init-s{s}"] = {"group": "init", "key": m.name + "@0", "arch": arch,
                                                "fn": (lambda mm: lambda x: member_features(mm, x, step=0, batch_size=batch_size))(m)}
        zoo_key = weights_key(zoo_config)  # changes when the zoo is retrained, so stale features are not reused
    sources["pixels"] = {"group": "pixels", "key": "pixels", "fn": lambda x: [x.flatten(1).float()]}
glue("zoo_seconds", zoo_seconds, display=False)
members = pd.DataFrame([{"name": k, "group": v["group"]} for k, v in sources.items()])
print(f"loading (or training) the zoo took {zoo_seconds:.1f} s")
members.groupby("group").name.apply(list).to_frame("models")

# %% [markdown]
# Features are cached per (model, image set), so a rerun only pays for the alignment. The
# helper below extracts, caches and prepares them with the PRH protocol: clamp at the 0.95
# quantile of |x|, then L2-normalise every layer (see {doc}`primer`).

# %%
def image_set(kind: str, seed: int, t: float | None = None) -> tuple[torch.Tensor, list[str] | None, dict]:
    """Images ``[N, 3, H, W]``, captions (or None) and a cache key for one evaluation set."""
    if kind == "id":
        if blend_images == "shapes":
            d = make_dataset(n_images, split="id", seed=data_seed + seed, size=image_size)
            imgs, caps = d.images, d.captions
        else:
            imgs, caps = ni.images_from_folder(blend_images, n_images, image_size, seed=data_seed + seed), None
        if t is None:
            return imgs, caps, {"kind": "id", "seed": seed, "source": blend_images}
        noise = ni.make_noise(blend_family, n_images, size=image_size, seed=1000 + seed)
        return ni.blend(imgs, noise, float(t)), caps, {"kind": "blend", "noise": blend_family, "seed": seed, "t": round(float(t), 4), "source": blend_images}
    return ni.make_noise(kind, n_images, size=image_size, seed=1000 + seed), None, {"kind": kind, "seed": seed}


def features(names: list[str], images: torch.Tensor, key: dict) -> dict[str, list[torch.Tensor]]:
    """Prepared per-layer features ``{name: [[N, D_l], ...]}`` of every named source."""
    out = {}
    for name in names:
        src = sources[name]
        full_key = {"chapter": "random_images", "model": src["key"], "n": n_images, "size": image_size, **key}
        if not FULL and src["group"] != "pixels":
            full_key["zoo"] = zoo_key
        if src["group"] == "pixels":
            raw = src["fn"](images)  # cheap; not worth caching
        else:
            raw = cached_features(full_key, lambda: src["fn"](images), namespace="random_images")
        out[name] = al.prepare(list(raw))
    return out


text_cache: dict[tuple[str, int], list[torch.Tensor]] = {}


def text_features(encoder: str, captions: list[str], seed: int) -> list[torch.Tensor]:
    """Prepared per-layer caption features of one text encoder (embeddings + every layer)."""
    if (encoder, seed) not in text_cache:
        def compute():
            model, tok = load_text_encoder(encoder)
            return extract_language_features(model, tok, captions, batch_size=64, progress=False)
        raw = cached_features({"chapter": "random_images", "text": encoder, "n": n_images, "captions": key_digest({"c": captions}), "seed": seed, "source": blend_images},
                              compute, namespace="random_images")
        text_cache[(encoder, seed)] = al.prepare(list(raw.unbind(1)))
    return text_cache[(encoder, seed)]

# %% [markdown]
# Every alignment below comes with its permutation null: the same two representations with the
# rows of one shuffled, so the pairing of images is broken and each model's geometry is kept.
# The **chance-corrected score** is (observed - null mean) / (1 - null mean): 0 at chance and 1
# for a perfect score. With several layers per model, the observed value and every null draw are
# the maximum over layer pairs, so the layer search is calibrated too.

# %%
def names_in(group: str) -> list[str]:
    return [n for n, s in sources.items() if s["group"] == group]


def pairs_of(group_a: str, group_b: str) -> list[tuple[str, str]]:
    """Pairs between two groups; within a zoo group only pairs of *different* architectures,
    because zoo members of one architecture and seed start from the same initial weights."""
    a, b = names_in(group_a), names_in(group_b)
    if group_a == group_b:
        pairs = [(a[i], a[j]) for i in range(len(a)) for j in range(i + 1, len(a))]
        return [(x, y) for x, y in pairs if sources[x].get("arch") is None or sources[x].get("arch") != sources[y].get("arch")]
    return [(x, y) for x in a for y in b]


def null_rows(feats: dict, pairs: list[tuple[str, str]], group: str, metric: str, k: int, perms: int,
              layer: str = "max", **extra) -> list[dict]:
    """One row per pair: observed, null mean/std, p-value, corrected score and the null draws.

    ``layer="max"`` scores the max over layer pairs (the null takes the same max); ``"last"`` the last layers.
    """
    pick = (lambda ls: ls) if layer == "max" else (lambda ls: ls[-1:])
    t = ma.block_scores({a: pick(feats[a]) for a, _ in pairs}, {b: pick(feats[b]) for _, b in pairs},
                        metric, k, n_perm=perms, seed=0, pairs=pairs, keep_null=True)
    t = t.rename(columns={"model_a": "a", "model_b": "b", "raw": "observed"}).assign(group=group, **extra)
    return t.to_dict("records")


vision_groups = ["pretrained"] if FULL else ["trained", "init"]
pair_sets = {g: pairs_of(g, g) for g in vision_groups}
pair_sets.update({f"{g}-pixels": pairs_of(g, "pixels") for g in vision_groups})
print({g: len(p) for g, p in pair_sets.items()})

# %% [markdown]
# Pairs within a zoo group are always of **different architectures**. Zoo members of one
# architecture and seed share their initial weights, so a same-architecture pair would
# "align" partly through its common starting point.
#
# ## Do models align on noise?
#
# For each family, and for in-distribution images as a reference, we score every pair within
# each group against its null.

# %%
family_rows = []
sets = ["id"] + families
with timed("alignment per family"):
    for kind in tqdm(sets, desc="families"):
        imgs, caps, key = image_set(kind, seed=0)
        feats = features(list(sources), imgs, key)
        for metric in family_metrics:
            for group, pairs in pair_sets.items():
                family_rows += null_rows(feats, pairs, group, metric, topk, n_perm, family=kind)
            if caps is not None and not FULL:
                tf = {e: text_features(e, caps, 0) for e in text_encoders}
                family_rows += null_rows({**feats, **tf}, [(a, e) for a in names_in("trained") for e in text_encoders],
                                         "trained-text", metric, topk, n_perm, family=kind)
fam = pd.DataFrame(family_rows)


def pooled(df: pd.DataFrame) -> pd.Series:
    p = ni.pooled_null(torch.tensor(df.observed.values), torch.stack(list(df.null)))
    return pd.Series({"pairs": len(df), "mean observed": p["observed"], "mean null": p["null_mean"],
                      "pooled p": p["p_value"], "mean corrected": p["corrected"],
                      "pairs with p <= alpha": float((df.p_value <= alpha_level).mean())})


fam_table = fam.groupby(["metric", "family", "group"], sort=False).apply(pooled, include_groups=False)
fam_table.round(4)

# %% [markdown]
# The table pools each group's pairs: the **pooled p** tests the mean score over pairs against the
# mean of index-aligned null draws. The figure shows every pair.

# %%
def family_value(metric, family, group, col="mean corrected"):
    try:
        return float(fam_table.loc[(metric, family, group), col])
    except KeyError:
        return float("nan")


main_group = vision_groups[0]
glue("ans_uniform_trained", family_value("mutual_knn", "uniform", main_group), display=False)
glue("ans_uniform_trained_p", family_value("mutual_knn", "uniform", main_group, "pooled p"), display=False)
glue("v_uniform_pass", "passes it" if family_value("mutual_knn", "uniform", main_group, "pooled p") <= alpha_level
     else "does not pass it", display=False)
glue("ans_uniform_init", family_value("mutual_knn", "uniform", "init") if not FULL else float("nan"), display=False)
# numbers the prose under the next figure reads (NaN where a family is not run at this scale)
fm0 = family_metrics[0]
glue("id_min_group", min(family_value(fm0, "id", g) for g in fam.group.unique()), display=False)
iid = [family_value(fm0, f, g) for f in ("uniform", "gaussian") if f in families for g in fam.group.unique() if g != "trained-text"]
glue("iid_max_abs", float(np.nanmax(np.abs(iid))) if iid else float("nan"), display=False)
for f, tag in (("spectral0", "s0"), ("spectral2", "s2"), ("collage", "col")):
    for g, gt in ((main_group, "trained"), ("init", "init"), (f"{main_group}-pixels", "pix")):
        glue(f"{tag}_{gt}", family_value(fm0, f, g), display=False)

# %% mystnb={"figure": {"caption": "Chance-corrected alignment (0 = permutation null) of every model pair, per image family. Colours are groups: trained zoo pairs, random-init pairs, each model against raw pixels, and trained models against caption encoders (in-distribution only). Black bars are group means.", "name": "fig-random_images-family-alignment"}}
groups = list(dict.fromkeys(fam.group))
fig, axes = plt.subplots(1, len(family_metrics), figsize=(4.6 * len(family_metrics), 3.8), squeeze=False)
for ax, metric in zip(axes[0], family_metrics):
    sub = fam[fam.metric == metric]
    width = 0.8 / len(groups)
    for gi, g in enumerate(groups):
        for si, s in enumerate(sets):
            vals = sub[(sub.group == g) & (sub.family == s)].corrected.values
            if len(vals) == 0:
                continue
            xpos = si + (gi - (len(groups) - 1) / 2) * width
            jitter = (np.random.default_rng(si).random(len(vals)) - 0.5) * width * 0.6
            ax.scatter(xpos + jitter, vals, s=6, alpha=0.5, color=PALETTE[gi % len(PALETTE)], label=g if si == 0 else None)
            ax.plot([xpos - width / 2, xpos + width / 2], [np.mean(vals)] * 2, color="k", lw=1)
    ax.axhline(0, color=NULL_COLOR, lw=1, ls="--")
    ax.set_xticks(range(len(sets)), sets, rotation=30)
    ax.set_xlabel("image set")
    ax.set_ylabel(f"chance-corrected {metric} (0 = null)")
    ax.set_title(metric)
axes[0][0].legend(fontsize=7, markerscale=2)
show(fig)

# %% [markdown]
# The dashed line is the permutation null. In distribution, every group's pooled mean is at
# least {glue:text}`id_min_group:.2f` above it. On i.i.d. pixel noise (uniform, Gaussian), every
# group's mean is within {glue:text}`iid_max_abs:.3f` of it. The white-noise family `spectral0`
# differs from i.i.d. noise in one global number per image, the contrast left by the per-image
# rescaling. There trained pairs reach {glue:text}`s0_trained:.3f`, random-init pairs
# {glue:text}`s0_init:.3f` and trained models against raw pixels {glue:text}`s0_pix:.3f`.
# Structured noise can give the pixel baseline and the random-init networks something to share
# too, because low-frequency blobs and flat regions make some images close in pixel space:
# on `spectral2` trained, random-init and trained-pixel pairs reach {glue:text}`s2_trained:.3f`,
# {glue:text}`s2_init:.3f` and {glue:text}`s2_pix:.3f`; on collages {glue:text}`col_trained:.3f`,
# {glue:text}`col_init:.3f` and {glue:text}`col_pix:.3f`.

# %%
contrast = []
for metric in family_metrics:
    for s in sets:
        tr = fam[(fam.metric == metric) & (fam.family == s) & (fam.group == main_group)].corrected
        row = {"metric": metric, "family": s, f"{main_group} mean": tr.mean()}
        if not FULL:
            ini = fam[(fam.metric == metric) & (fam.family == s) & (fam.group == "init")].corrected
            row.update({"init mean": ini.mean(), "difference": tr.mean() - ini.mean(),
                        "Welch p (trained > init)": stats.ttest_ind(tr, ini, equal_var=False, alternative="greater").pvalue})
        contrast.append(row)
contrast = pd.DataFrame(contrast).set_index(["metric", "family"])
if FULL:
    v_init = "cannot be compared with untrained copies here (the full scale has no random-init controls)"
else:
    w = contrast.loc[(family_metrics[0], "uniform")]
    v_init = (f"adds alignment beyond that control (difference {w['difference']:.3f}, Welch p = {w['Welch p (trained > init)']:.3f})"
              if w["Welch p (trained > init)"] <= alpha_level else
              f"adds nothing the control does not already have (difference {w['difference']:.3f}, Welch p = {w['Welch p (trained > init)']:.3f})")
glue("v_init_uniform", v_init, display=False)
u = family_value(family_metrics[0], "uniform", main_group)
structured = contrast.loc[family_metrics[0]][f"{main_group} mean"].drop(["id", "uniform", "gaussian"], errors="ignore")
parts = [f"{'Barely' if u < 0.05 else 'Yes'} on uniform pixel noise",
         f"{'clearly' if structured.max() >= 0.1 else 'barely'} on structured noise" if len(structured) else ""]
if not FULL:
    wins = [f for f in families if contrast.loc[(family_metrics[0], f), "Welch p (trained > init)"] <= alpha_level]
    parts.append(f"and trained pairs beat random-init pairs on {len(wins)} of {len(families)} noise families"
                 + (f" ({', '.join(wins)})" if wins else ""))
glue("v_answer", ", ".join(p for p in parts if p), display=False)
glue("n_train_wins", f"{len(wins)} of {len(families)}" if not FULL else "n/a", display=False)
noise_means = contrast.loc[family_metrics[0]][f"{main_group} mean"].drop("id")
glue("ans_max_noise", float(noise_means.max()), display=False)
glue("ans_max_noise_family", str(noise_means.idxmax()), display=False)
contrast.round(4)

# %% [markdown]
# This is the random-init control written as a test: is the trained-pair mean above the
# random-init-pair mean (Welch's t-test over pairs)? In distribution it should be; on noise it
# need not be.
#
# ## Do the metrics agree with each other on noise?
#
# The blog's heatmap correlates **metric configurations** (a metric at a given k) across model
# pairs: for each pair of configurations, the Spearman correlation of their scores over the
# model pairs. We compute it the blog's way, on the last layer with no layer search. We compute
# it on raw scores, on chance-corrected scores, and under the null. For the null, we take
# permutation draw j of every configuration and pair (all use the same shuffles) and correlate
# those. That gives the correlations that pure chance produces.

# %%
heat_pairs = pair_sets[main_group]
heat_sets = ["id", blend_family]
heat_cfgs = [ma.parse_config(c, topk) for c in heatmap_configs]
heat_names = [ma.config_name(*c) for c in heat_cfgs]
agree = {}
with timed("metric-agreement heatmaps"):
    for kind in heat_sets:
        imgs, caps, key = image_set(kind, seed=0)
        feats = features([n for n, s in sources.items() if s["group"] == main_group], imgs, key)
        last = {n: f[-1:] for n, f in feats.items()}  # the blog's protocol: last layer, no layer search
        sub = ma.score_pairs(last, heat_cfgs, n_perm=heatmap_perm, seed=0, pairs=heat_pairs, progress=True, keep_null=True)
        spread = sub.groupby("config").apply(lambda d: d.raw.std() / d.null_std.mean(), include_groups=False)
        agree[kind] = {"raw": ma.agreement(sub, "raw"), "calibrated": ma.agreement(sub, "corrected"),
                       "null": ma.null_agreement(sub), "spread": spread}  # null: [heatmap_perm, C, C]


def offdiag(m) -> np.ndarray:
    v = np.asarray(m, dtype=float)
    return v[~np.eye(len(v), dtype=bool)]


glue("n_heat_pairs", len(heat_pairs), display=False)
summary = pd.DataFrame({
    kind: {"median rho, raw": np.nanmedian(offdiag(a["raw"])),
           "median rho, calibrated": np.nanmedian(offdiag(a["calibrated"])),
           "median |rho| under the null": np.nanmedian(np.abs(np.stack([offdiag(m) for m in a["null"]]))),
           "95th pct |rho| under the null": np.nanpercentile(np.abs(np.stack([offdiag(m) for m in a["null"]])), 95),
           "median spread ratio (raw std over pairs / null std)": float(a["spread"].median())}
    for kind, a in agree.items()})
glue("ans_rho_uniform", float(summary.loc["median rho, raw", blend_family]), display=False)
glue("ans_rho_id", float(summary.loc["median rho, raw", "id"]), display=False)
glue("null_rho_uniform", float(summary.loc["median |rho| under the null", blend_family]), display=False)
spread_ratio = float(summary.loc["median spread ratio (raw std over pairs / null std)", blend_family])
glue("ans_spread_ratio", spread_ratio, display=False)
# A ratio near 1 means the pairs' scores differ no more than shuffled pairings do: any ranking
# of pairs, and so any correlation between configurations, is then chance.
rho_noise, rho_id = float(summary.loc["median rho, raw", blend_family]), float(summary.loc["median rho, raw", "id"])
glue("v_rho", "the blog's finding replicates: the configurations agree less on noise" if rho_noise < rho_id - 0.2 else
     "the blog's finding does not replicate here: the configurations agree nearly as well on noise as in distribution, or better", display=False)
glue("v_rho_cap", "The blog's finding replicates: metric configurations agree less on noise" if rho_noise < rho_id - 0.2 else
     "The blog's finding does not replicate here: metric configurations agree nearly as well on uniform noise as in distribution, or better", display=False)
glue("v_spread", "the blog's 'no correlation' is largely a chance-level artefact: the scores do not separate the pairs"
     if spread_ratio < 2 else "the pairs differ reliably and the correlations between configurations reflect the metrics, not chance", display=False)
summary.round(3)

# %% mystnb={"figure": {"caption": "Spearman correlation between metric configurations over trained model pairs (last layer, as in the source blog), in distribution (top) and on uniform noise (bottom): raw scores, chance-corrected scores, and the mean absolute correlation produced by the permutation null alone.", "name": "fig-random_images-agreement"}}
fig, axes = plt.subplots(len(heat_sets), 3, figsize=(11, 3.6 * len(heat_sets)), squeeze=False)
for r, kind in enumerate(heat_sets):
    a = agree[kind]
    mats = [("raw", a["raw"].values), ("chance-corrected", a["calibrated"].values), ("null: mean |rho|", np.abs(a["null"]).mean(0))]
    for c, (title, m) in enumerate(mats):
        ax = axes[r][c]
        im = ax.imshow(m, vmin=-1, vmax=1, cmap="RdBu_r")
        ax.set_xticks(range(len(heat_names)), heat_names, rotation=90, fontsize=6)
        ax.set_yticks(range(len(heat_names)), heat_names if c == 0 else [], fontsize=6)
        ax.grid(False)
        ax.set_title(f"{kind}: {title}", fontsize=9)
fig.colorbar(im, ax=axes, shrink=0.6, label="Spearman correlation over model pairs")
show(fig)

# %% [markdown]
# Compare the raw panels with the null panels. The null panel shows how strongly configurations
# correlate by chance with this many model pairs: {glue:text}`n_heat_pairs` pairs give a median
# |rho| of {glue:text}`null_rho_uniform:.2f` under the null on noise. The spread ratios in the
# table decide whether the raw correlations mean anything. A configuration whose scores vary over
# pairs no more than its null (a ratio near 1) ranks the pairs at random, and its correlations
# with other configurations are chance. A ratio far above 1 means the pairs differ reliably. Then
# a low correlation is a real disagreement between metrics and a high one a real agreement.

# %%
spread_table = pd.DataFrame({kind: a["spread"] for kind, a in agree.items()}).loc[heat_names]
spread_table.columns = [f"spread ratio, {c}" for c in spread_table.columns]
spread_table.round(2)

# %% [markdown]
# ## The frontier: how much image is enough?
#
# Now blend real in-distribution images into noise, $(1 - t)\,\text{image} + t\,\text{noise}$,
# at {glue:text}`n_levels` levels, with {glue:text}`n_seeds` independent draws of images and
# noise. Captions stay with their source images, so the text encoders can be scored as well.
# For each level we pool the pairs of each group and test them against the permutation null.
# To keep the sweep affordable, it scores each model's {glue:text}`blend_layer_words` (the
# `blend_layer` parameter).

# %%
glue("n_levels", blend_levels, display=False)
glue("blend_layer_words", "last layer, as the blog did" if blend_layer == "last" else "best layer pair (max over layer pairs)", display=False)
glue("n_seeds", noise_seeds, display=False)
blend_rows = []
with timed("blend curve"):
    for seed in range(noise_seeds):
        for t in tqdm(levels, desc=f"blend levels (seed {seed})"):
            imgs, caps, key = image_set("id", seed=seed, t=float(t))
            feats = features([n for n, s in sources.items() if s["group"] in vision_groups], imgs, key)
            for metric in blend_metrics:
                for g in vision_groups:
                    blend_rows += null_rows(feats, pair_sets[g], g, metric, topk, n_perm, layer=blend_layer, t=float(t), seed=seed)
                if caps is not None and not FULL:
                    tf = {e: text_features(e, caps, seed) for e in text_encoders}
                    vl = [(a, e) for a in names_in(main_group) for e in text_encoders]
                    blend_rows += null_rows({**feats, **tf}, vl, "trained-text", metric, topk, n_perm, layer=blend_layer, t=float(t), seed=seed)
blend = pd.DataFrame(blend_rows)
curve = blend.groupby(["metric", "group", "seed", "t"]).apply(pooled, include_groups=False).reset_index()
curve.head()

# %% [markdown]
# For each metric, group and seed, the **null frontier** is the first t at which the pooled
# p-value exceeds alpha, that is, where alignment stops differing from the permutation null
# (NaN: never, up to t = 1). The random-init control is a comparison at every level: do trained
# pairs beat random-init pairs there (Welch's test over pairs, p at or below alpha)?

# %%
front_rows, beat_rows = [], []
for metric in blend_metrics:
    for seed in range(noise_seeds):
        for g in sorted(set(curve.group)):
            c = curve[(curve.metric == metric) & (curve.group == g) & (curve.seed == seed)].sort_values("t")
            front_rows.append({"metric": metric, "group": g, "seed": seed, "frontier": "null",
                               "t*": ni.first_level_where(c.t, c["pooled p"] > alpha_level)})
        if not FULL:
            for t in levels:
                tr = blend[(blend.metric == metric) & (blend.seed == seed) & (blend.t == t) & (blend.group == "trained")].corrected
                ini = blend[(blend.metric == metric) & (blend.seed == seed) & (blend.t == t) & (blend.group == "init")].corrected
                beat_rows.append({"metric": metric, "seed": seed, "t": float(t),
                                  "trained beats init": stats.ttest_ind(tr, ini, equal_var=False, alternative="greater").pvalue <= alpha_level})
fronts = pd.DataFrame(front_rows)
front_summary = fronts.groupby(["frontier", "metric", "group"])["t*"].agg(
    median="median", low="min", high="max", never=lambda s: int(s.isna().sum()))
front_summary

# %% [markdown]
# Read "never" as the number of seeds whose alignment stays distinguishable up to pure noise.

# %%
def null_front(group: str, metric: str = blend_metrics[0]) -> float:
    f = fronts[(fronts.frontier == "null") & (fronts.metric == metric) & (fronts.group == group)]["t*"]
    return float(f.median()) if f.notna().any() else float("nan")


glue("ans_front_init", null_front("init") if not FULL else float("nan"), display=False)
glue("ans_front_text", null_front("trained-text") if not FULL else float("nan"), display=False)
glue("ans_front_trained_never", int(fronts[(fronts.frontier == "null") & (fronts.metric == blend_metrics[0]) & (fronts.group == main_group)]["t*"].isna().sum()), display=False)
end = curve[(curve.metric == blend_metrics[0]) & (curve.group == main_group) & (np.isclose(curve.t, 1.0))]
glue("ans_blend_t1_p", float(end["pooled p"].max()), display=False)
glue("ans_blend_t1_corr", float(end["mean corrected"].mean()), display=False)
n_never = int(fronts[(fronts.frontier == "null") & (fronts.metric == blend_metrics[0]) & (fronts.group == main_group)]["t*"].isna().sum())
v_blend = (f"stay above the null all the way to pure noise in all {noise_seeds} seeds" if n_never == noise_seeds else
           f"reach the null at t = {null_front(main_group):.1f} (median over seeds; {n_never} of {noise_seeds} seeds never do)")
glue("v_blend_trained", f"Trained pairs {v_blend}", display=False)
glue("v_blend_trained_lc", f"trained pairs {v_blend}", display=False)
if not FULL:
    beat = pd.DataFrame(beat_rows).groupby(["metric", "t"])["trained beats init"].all().unstack("metric")
    always = beat[beat[blend_metrics[0]]].index
    glue("ans_beat_n", int(len(always)), display=False)
    glue("ans_beat_levels", ", ".join(f"{t:.1f}" for t in always) if len(always) else "none", display=False)
    display(beat.rename(columns=lambda m: f"trained beats init in every seed ({m})"))

# %% mystnb={"figure": {"caption": "Chance-corrected alignment along the blend from in-distribution images (t = 0) to uniform noise (t = 1), per metric. Lines are the mean over seeds of the pooled score of each group's pairs; bands span the seeds (min to max). Grey dashes: the permutation null. Vertical dotted line: the median t at which random-init pairs become indistinguishable from the null.", "name": "fig-random_images-blend"}}
fig, axes = plt.subplots(1, len(blend_metrics), figsize=(4.8 * len(blend_metrics), 3.6), squeeze=False)
for ax, metric in zip(axes[0], blend_metrics):
    for gi, g in enumerate(sorted(set(curve.group))):
        c = curve[(curve.metric == metric) & (curve.group == g)].groupby("t")["mean corrected"]
        mean, lo, hi = c.mean(), c.min(), c.max()
        ax.plot(mean.index, mean.values, marker="o", ms=3, color=PALETTE[gi % len(PALETTE)], label=g)
        ax.fill_between(mean.index, lo.values, hi.values, color=PALETTE[gi % len(PALETTE)], alpha=0.2)
    ax.axhline(0, color=NULL_COLOR, ls="--", lw=1, label="permutation null")
    f = fronts[(fronts.frontier == "null") & (fronts.metric == metric) & (fronts.group == "init")]["t*"]
    if len(f) and f.notna().any():
        ax.axvline(float(f.median()), color="k", ls=":", lw=1, label="random-init null frontier")
    ax.set_xlabel("noise fraction t (0 = image, 1 = noise)")
    ax.set_ylabel(f"chance-corrected {metric}")
    ax.set_title(metric)
axes[0][0].legend(fontsize=7)
show(fig)

# %% [markdown]
# Read the figure from left to right. Random-init pairs fall to the null at the dotted line
# (t = {glue:text}`ans_front_init:.1f`, median over seeds). At t = 1 the trained pairs' mean
# corrected score is {glue:text}`ans_blend_t1_corr:.3f`, and {glue:text}`ans_front_trained_never`
# of {glue:text}`n_seeds` seeds never reach the null frontier. In every seed, trained pairs beat
# random-init pairs at {glue:text}`ans_beat_n` of {glue:text}`n_levels` levels
# (t = {glue:text}`ans_beat_levels`). The caption encoders' line (trained models against text)
# needs the image's *content*, because the captions never change along the blend. Its null
# frontier per seed is in the table below.

# %%
vl = curve[curve.group == "trained-text"]
if len(vl):
    vl_front = fronts[(fronts.group == "trained-text")]
    display(vl_front.pivot_table(index="metric", columns="seed", values="t*"))

# %% mystnb={"figure": {"caption": "Left: each pair's distance from its permutation null in units of the null's standard deviation (z-score; symmetric log scale, grey line at z = 2), per image set and group (mutual kNN, max over layer pairs). Right: the mean chance-corrected score of each group per image set.", "name": "fig-random_images-trained-vs-init"}}
fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
sub = fam[fam.metric == family_metrics[0]]
width = 0.8 / len(groups)
for gi, g in enumerate(groups):
    sg = sub[sub.group == g]
    z = (sg.observed - sg.null_mean) / sg.null_std
    xpos = np.array([sets.index(f) for f in sg.family]) + (gi - (len(groups) - 1) / 2) * width
    axes[0].scatter(xpos, z, s=6, alpha=0.5, color=PALETTE[gi % len(PALETTE)], label=g)
axes[0].set_yscale("symlog", linthresh=2)
axes[0].axhline(2, color=NULL_COLOR, ls="--", lw=1)
axes[0].set_xticks(range(len(sets)), sets, rotation=30)
axes[0].set_xlabel("image set")
axes[0].set_ylabel("z = (observed - null mean) / null std")
axes[0].set_title("distance from the null, per pair")
axes[0].legend(fontsize=7, markerscale=2)
piv = sub.groupby(["family", "group"]).corrected.mean().unstack()[groups].loc[sets]
for gi, g in enumerate(groups):
    axes[1].plot(range(len(sets)), piv[g].values, marker="o", color=PALETTE[gi % len(PALETTE)], label=g)
axes[1].axhline(0, color=NULL_COLOR, ls="--", lw=1)
axes[1].set_xticks(range(len(sets)), sets, rotation=30)
axes[1].set_xlabel("image set")
axes[1].set_ylabel(f"mean chance-corrected {family_metrics[0]}")
axes[1].set_title("group means per family")
show(fig)

# %% [markdown]
# The left panel measures each pair's distance from its null in units of the null's own spread,
# which is what the p-values test; the right panel shows the group means per image set. Trained
# pairs beat random-init pairs (Welch p at or below alpha) on {glue:text}`n_train_wins` noise
# families, and on i.i.d. pixel noise every group mean stays within {glue:text}`iid_max_abs:.3f`
# of chance.
#
# ## When is the hypothesis falsifiable here?
#
# The numbers above give three conditions, all computed in this notebook:
#
# 1. **Use a control that shares the input, not only a permutation null.** The permutation null
#    asks whether the pairing of images matters. With {glue:text}`n_heat_pairs` pairs pooled, a
#    corrected score of {glue:text}`ans_uniform_trained:.3f` on uniform noise
#    {glue:text}`v_uniform_pass` (p = {glue:text}`ans_uniform_trained_p:.3f`). The random-init comparison asks whether
#    *training* made the models agree: on uniform noise the trained-minus-random-init difference
#    in corrected mutual kNN is {glue:text}`ans_uniform_diff:.3f`, against
#    {glue:text}`ans_id_diff:.3f` in distribution.
# 2. **Say which image statistics vary.** Noise whose images differ in a global statistic
#    (contrast, spectrum, flat regions) gives trained models something to agree on without any
#    meaning, up to {glue:text}`ans_max_noise:.3f` ({glue:text}`ans_max_noise_family`). Only
#    i.i.d. pixel noise brings every score close to chance (every group mean within
#    {glue:text}`iid_max_abs:.3f` of it). On blends towards it, {glue:text}`v_blend_trained_lc`,
#    while random-init pairs reach it at
#    t = {glue:text}`ans_front_init:.1f` and vision-language alignment at
#    t = {glue:text}`ans_front_text:.1f` ({glue:text}`n_seeds` seeds; ranges in the frontier table).
#    Vision-language alignment is the falsifiable quantity on noise, because only it needs the
#    image's meaning.
# 3. **Judge metric agreement against the null's spread.** On noise the raw scores vary over
#    model pairs {glue:text}`ans_spread_ratio:.1f` times more than the null does, and the
#    configurations correlate at a median rho of {glue:text}`ans_rho_uniform:.2f`
#    ({glue:text}`ans_rho_id:.2f` in distribution). Agreement between metrics only means something
#    when the scores separate the pairs at all.
#
# **Against the source blog.** {glue:text}`v_rho_cap`. **Caveats.** Our models are tiny and
# trained on a toy world. The heatmap uses {glue:text}`n_heat_pairs` pairs, where the blog used
# 136. The blend curve scores the {glue:text}`blend_layer_words`. **What is open.** Whether
# the frontier moves with model scale. The `full` scale runs the PRH ViTs on the same generator
# at their own resolution, blended with real photographs.

# %%
for metric in family_metrics[:1]:
    glue("ans_uniform_diff", float(contrast.loc[(metric, "uniform"), "difference"]) if not FULL else float("nan"), display=False)
    glue("ans_id_diff", float(contrast.loc[(metric, "id"), "difference"]) if not FULL else float("nan"), display=False)
timings["total"] = time.time() - T_START
time_table = pd.DataFrame({"seconds": timings}).round(1)
time_table.loc["zoo training/loading (inside the total)"] = round(zoo_seconds, 1)
time_table

# %% [markdown]
# The time table splits the run. If the zoo cache was empty, the "load or train the zoo" row is
# what training cost on this machine. Otherwise that row is a few seconds of loading.
