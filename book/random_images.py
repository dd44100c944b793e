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

# %% tags=["hide-input"]
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from myst_nb import glue
from tqdm.auto import tqdm

from helpers.chapter import StageTimer
from helpers.plotting import show, use_style
from helpers.prh import metric_agreement as ma
from helpers.prh import model_sets as ms
from helpers.prh import noise_figures as nf
from helpers.prh import noise_images as ni

use_style()
# The alignment kernels here are many small ops; with one thread they run up to 20x faster on
# a busy 2-core machine (measured), and no slower on an idle one at these sizes.
torch.set_num_threads(1)

# %% tags=["parameters"]
scale: str = "book"  # smoke | book | full (set by helpers.run)
n_images: int = 300  # images per set (N); the kNN chance level is topk / (N - 1)
image_size: int = 64  # pixels per side; the zoo's input size (full: each ViT's own size)
data_seed: int = 7  # first seed of the in-distribution images (the zoo trains on seed 1000)
# noise families (helpers.prh.noise_images.FAMILIES)
families: list = ["uniform", "gaussian", "spectral0", "spectral1", "spectral2", "collage"]
family_metrics: list = ["mutual_knn"]  # metrics of the per-family table (max over layer pairs)
topk: int = 10  # neighbours for the kNN metrics and cknna
n_perm: int = 40  # permutations per null (p-values are multiples of 1 / (n_perm + 1))
alpha_level: float = 0.05  # significance level: p at or below it is distinguishable from chance
# metric@k configurations of the agreement heatmap
heatmap_configs: list = ["mutual_knn@10", "mutual_knn@50", "mutual_knn@100", "cknna@10",
                         "cknna@50", "cknna@100", "cycle_knn@10", "cka", "unbiased_cka"]
heatmap_perm: int = 20  # permutations per configuration and pair for the calibrated heatmap
blend_family: str = "uniform"  # noise the blends mix towards
blend_levels: int = 11  # mixing levels t in linspace(0, 1, blend_levels)
blend_metrics: list = ["mutual_knn", "unbiased_cka"]  # metrics of the blend curve
blend_layer: str = "last"  # "last" (last layer of each model, as the blog) or "max" (slower)
noise_seeds: int = 3  # independent draws (source images and noise) for the blend intervals
text_encoders: list = ["all-MiniLM-L6-v2", "all-mpnet-base-v2"]  # caption encoders (offline)
zoo_seed: int = 0  # seed of the trained zoo members used (one per architecture x objective)
objectives: list = ["supervised", "simclr", "caption"]  # zoo objectives used
batch_size: int = 256  # images per forward pass
vit_models: list = []  # full scale: timm ViT names or local folders (empty: the trained zoo)
blend_images: str = "shapes"  # blend source: "shapes" or a folder of real images (full scale)

# %% [markdown]
# The chapter spends its time in the places below, which the last table adds up.

# %% tags=["hide-input"]
timer = StageTimer()
FULL = bool(vit_models)
if blend_layer not in ("last", "max"):
    raise ValueError(f"blend_layer must be 'last' or 'max', got {blend_layer!r}")
bad = [f for f in families + [blend_family] if f not in ni.FAMILIES]
if bad:
    raise ValueError(f"unknown noise families {bad}; choose from {ni.FAMILIES}")
levels = np.linspace(0.0, 1.0, blend_levels)
print(f"scale={scale}: N={n_images}, {len(families)} noise families, {blend_levels} blend levels"
      f" x {noise_seeds} seeds, {n_perm} permutations; kNN chance = {topk / (n_images - 1):.4f}")

# %% [markdown]
# ## Six kinds of nothing
#
# One seeded generator, `helpers.prh.noise_images`, makes every family. **Uniform** pixels are the
# blog's random images. **Gaussian** pixels are the blog's unused "normal" option. **Spectral**
# noise has power falling as $1/f^\alpha$: $\alpha = 0$ is white, and $\alpha = 2$ has the
# second-order statistics of natural photographs. **Collages** are random ellipses and polygons
# in random colours, with edges, flat regions and occlusion but no objects.

# %% tags=["hide-input"]
with timer.stage("generate images"):
    samples = {f: ni.make_noise(f, 6, size=image_size, seed=0) for f in families}
    n_slope = min(n_images, 200)
    slope_sets = {f: ni.make_noise(f, n_slope, size=image_size, seed=1) for f in families}
    real, _, _ = ni.evaluation_images("id", n_slope, image_size, 0, data_seed=data_seed)
    slope_sets["shapes world (real)"] = real
    slopes = pd.DataFrame({"measured spectral slope": {
        f: ni.spectral_slope(x) for f, x in slope_sets.items()}}).rename_axis("family")
slopes

# %% tags=["hide-input"] mystnb={"figure": {"caption": "The noise families (one row each) and their radially averaged power spectra. Spectral noise recovers its slope of minus alpha; collages and the shapes world have steep, natural-like spectra without being noise-like.", "name": "fig-random_images-families"}}
spectra = {f: ni.make_noise(f, 64, size=image_size, seed=1) for f in families}
spectra["shapes world (real)"] = real[:64]
show(nf.plot_families(samples, spectra, slopes.iloc[:, 0], reference="shapes world (real)"))

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

# %% tags=["hide-input"]
from helpers.prh.zoo import ZooConfig, get_zoo, weights_key  # noqa: E402

feature_key = {"n": n_images, "size": image_size}  # every image set's cache key starts here
with timer.stage("load or train the zoo"):
    if FULL:
        sources, image_size = ms.timm_sources(vit_models, batch_size)
        feature_key["size"] = image_size
        print(f"noise generated at {image_size}x{image_size}; each model's transform resizes")
    else:
        zoo_config = ZooConfig.for_scale(scale)
        if image_size != zoo_config.image_size:
            raise ValueError(f"image_size={image_size} but the zoo was trained at "
                             f"{zoo_config.image_size}; set image_size={zoo_config.image_size}")
        zoo = get_zoo(zoo_config, progress=True)
        sources = ms.zoo_sources(zoo, zoo_seed, objectives, batch_size)
        feature_key["zoo"] = weights_key(zoo_config)  # new weights, new features
    sources["pixels"] = ms.pixel_source()
zoo_seconds = 0.0 if FULL else timer.wall("load or train the zoo")
glue("zoo_seconds", zoo_seconds, display=False)
print(f"loading (or training) the zoo took {zoo_seconds:.1f} s")
members = pd.DataFrame([{"name": k, "group": v.group} for k, v in sources.items()])
members.groupby("group").name.apply(list).to_frame("models")

# %% [markdown]
# Features are cached per (model, image set), so a rerun only pays for the alignment.
# `helpers.prh.model_sets` extracts, caches and prepares them with the PRH protocol: clamp at the
# 0.95 quantile of |x|, then L2-normalise every layer (see {doc}`primer`).

# %% tags=["hide-input"]
def image_set(kind: str, seed: int, t: float | None = None):
    """Images, captions (or None) and cache key of one evaluation set, at this scale."""
    return ni.evaluation_images(kind, n_images, image_size, seed, source=blend_images,
                                data_seed=data_seed, blend_family=blend_family, t=t)


def features(names: list[str], images: torch.Tensor, key: dict) -> dict[str, list[torch.Tensor]]:
    return ms.prepared_features(sources, names, images, {**feature_key, **key})


def caption_feats(captions: list[str], seed: int) -> dict[str, list[torch.Tensor]]:
    key = {"n": n_images, "seed": seed, "source": blend_images}
    return {e: ms.caption_features(e, captions, key) for e in text_encoders}

# %% [markdown]
# Every alignment below comes with its permutation null: the same two representations with the
# rows of one shuffled, so the pairing of images is broken and each model's geometry is kept.
# The **chance-corrected score** is (observed - null mean) / (1 - null mean): 0 at chance and 1
# for a perfect score. With several layers per model, the observed value and every null draw are
# the maximum over layer pairs, so the layer search is calibrated too.

# %% tags=["hide-input"]
vision_groups = ["pretrained"] if FULL else ["trained", "init"]
main_group = vision_groups[0]
pair_sets = {g: ms.group_pairs(sources, g, g) for g in vision_groups}
pair_sets.update({f"{g}-pixels": ms.group_pairs(sources, g, "pixels") for g in vision_groups})
text_pairs = [(a, e) for a in ms.names_in(sources, main_group) for e in text_encoders]
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

# %% tags=["hide-input"]
family_tables = []
sets = ["id"] + families
with timer.stage("alignment per family"):
    for kind in tqdm(sets, desc="families"):
        imgs, caps, key = image_set(kind, seed=0)
        feats = features(list(sources), imgs, key)
        if caps is not None and not FULL:
            feats.update(caption_feats(caps, 0))
        for metric in family_metrics:
            for group, pairs in pair_sets.items():
                family_tables.append(ma.pair_rows(feats, pairs, metric, topk, n_perm,
                                                  group=group, family=kind))
            if caps is not None and not FULL:
                family_tables.append(ma.pair_rows(feats, text_pairs, metric, topk, n_perm,
                                                  group="trained-text", family=kind))
fam = pd.concat(family_tables, ignore_index=True)
fam_table = fam.groupby(["metric", "family", "group"], sort=False).apply(
    ni.pool_pairs, alpha=alpha_level, include_groups=False)
fam_table.round(4)

# %% [markdown]
# The table pools each group's pairs: the **pooled p** tests the mean score over pairs against the
# mean of index-aligned null draws. The figure shows every pair.

# %% tags=["hide-input"]
def family_value(family: str, group: str, col: str = "mean corrected") -> float:
    key = (family_metrics[0], family, group)
    return float(fam_table.loc[key, col]) if key in fam_table.index else float("nan")


uniform_p = family_value("uniform", main_group, "pooled p")
glue("ans_uniform_trained", family_value("uniform", main_group), display=False)
glue("ans_uniform_trained_p", uniform_p, display=False)
glue("v_uniform_pass", "passes it" if uniform_p <= alpha_level else "does not pass it",
     display=False)
glue("ans_uniform_init", family_value("uniform", "init") if not FULL else float("nan"),
     display=False)
# numbers the prose under the next figure reads (NaN where a family is not run at this scale)
glue("id_min_group", min(family_value("id", g) for g in fam.group.unique()), display=False)
iid = [family_value(f, g) for f in ("uniform", "gaussian") if f in families
       for g in fam.group.unique() if g != "trained-text"]
glue("iid_max_abs", float(np.nanmax(np.abs(iid))) if iid else float("nan"), display=False)
for f, tag in (("spectral0", "s0"), ("spectral2", "s2"), ("collage", "col")):
    for g, gt in ((main_group, "trained"), ("init", "init"), (f"{main_group}-pixels", "pix")):
        glue(f"{tag}_{gt}", family_value(f, g), display=False)

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Chance-corrected alignment (0 = permutation null) of every model pair, per image family. Colours are groups: trained zoo pairs, random-init pairs, each model against raw pixels, and trained models against caption encoders (in-distribution only). Black bars are group means.", "name": "fig-random_images-family-alignment"}}
show(nf.plot_pair_scores(fam, sets, family_metrics[0]))

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

# %% tags=["hide-input"]
main_fam = fam[fam.group.isin([main_group] if FULL else [main_group, "init"])]
contrast = ni.group_contrast(main_fam, ["metric", "family"], main_group, "init")
if FULL:
    v_init = ("cannot be compared with untrained copies here (the full scale has no random-init"
              " controls)")
    wins, contrast = [], contrast[[f"{main_group} mean"]]
else:
    contrast = contrast.rename(columns={"Welch p (trained > init)": "welch_p"})
    w = contrast.loc[(family_metrics[0], "uniform")]
    verb = ("adds alignment beyond that control" if w.welch_p <= alpha_level else
            "adds nothing the control does not already have")
    v_init = f"{verb} (difference {w.difference:.3f}, Welch p = {w.welch_p:.3f})"
    wins = [f for f in families if contrast.loc[(family_metrics[0], f), "welch_p"] <= alpha_level]
    contrast = contrast.rename(columns={"welch_p": "Welch p (trained > init)"})
glue("v_init_uniform", v_init, display=False)
u = family_value("uniform", main_group)
structured = contrast.loc[family_metrics[0]][f"{main_group} mean"].drop(
    ["id", "uniform", "gaussian"], errors="ignore")
parts = [f"{'Barely' if u < 0.05 else 'Yes'} on uniform pixel noise",
         f"{'clearly' if structured.max() >= 0.1 else 'barely'} on structured noise"
         if len(structured) else ""]
if not FULL:
    parts.append(f"and trained pairs beat random-init pairs on {len(wins)} of {len(families)} "
                 "noise families" + (f" ({', '.join(wins)})" if wins else ""))
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

# %% tags=["hide-input"]
heat_pairs = pair_sets[main_group]
heat_sets = ["id", blend_family]
heat_cfgs = [ma.parse_config(c, topk) for c in heatmap_configs]
heat_names = [ma.config_name(*c) for c in heat_cfgs]
agree = {}
with timer.stage("metric-agreement heatmaps"):
    for kind in heat_sets:
        imgs, caps, key = image_set(kind, seed=0)
        feats = features(ms.names_in(sources, main_group), imgs, key)
        last = {n: f[-1:] for n, f in feats.items()}  # the blog's protocol: last layer only
        sub = ma.score_pairs(last, heat_cfgs, n_perm=heatmap_perm, seed=0, pairs=heat_pairs,
                             progress=True, keep_null=True)
        agree[kind] = ma.agreement_maps(sub)  # null: [heatmap_perm, C, C]
glue("n_heat_pairs", len(heat_pairs), display=False)
summary = pd.DataFrame({kind: ma.agreement_summary(a) for kind, a in agree.items()})
rho_noise = float(summary.loc["median rho, raw", blend_family])
rho_id = float(summary.loc["median rho, raw", "id"])
glue("ans_rho_uniform", rho_noise, display=False)
glue("ans_rho_id", rho_id, display=False)
glue("null_rho_uniform", float(summary.loc["median |rho| under the null", blend_family]),
     display=False)
spread_ratio = float(summary.loc["median spread ratio (raw std over pairs / null std)",
                                 blend_family])
glue("ans_spread_ratio", spread_ratio, display=False)
# A ratio near 1 means the pairs' scores differ no more than shuffled pairings do: any ranking
# of pairs, and so any correlation between configurations, is then chance.
replicates = rho_noise < rho_id - 0.2
glue("v_rho", "the blog's finding replicates: the configurations agree less on noise"
     if replicates else "the blog's finding does not replicate here: the configurations agree"
     " nearly as well on noise as in distribution, or better", display=False)
glue("v_rho_cap", "The blog's finding replicates: metric configurations agree less on noise"
     if replicates else "The blog's finding does not replicate here: metric configurations agree"
     " nearly as well on uniform noise as in distribution, or better", display=False)
glue("v_spread", "the blog's 'no correlation' is largely a chance-level artefact: the scores do"
     " not separate the pairs" if spread_ratio < 2 else "the pairs differ reliably and the"
     " correlations between configurations reflect the metrics, not chance", display=False)
summary.round(3)

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Spearman correlation between metric configurations over trained model pairs (last layer, as in the source blog), in distribution (top) and on uniform noise (bottom): raw scores, chance-corrected scores, and the mean absolute correlation produced by the permutation null alone.", "name": "fig-random_images-agreement"}}
show(nf.plot_agreement(agree, heat_names))

# %% [markdown]
# Compare the raw panels with the null panels. The null panel shows how strongly configurations
# correlate by chance with this many model pairs: {glue:text}`n_heat_pairs` pairs give a median
# |rho| of {glue:text}`null_rho_uniform:.2f` under the null on noise. The spread ratios in the
# table decide whether the raw correlations mean anything. A configuration whose scores vary over
# pairs no more than its null (a ratio near 1) ranks the pairs at random, and its correlations
# with other configurations are chance. A ratio far above 1 means the pairs differ reliably. Then
# a low correlation is a real disagreement between metrics and a high one a real agreement.

# %% tags=["hide-input"]
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

# %% tags=["hide-input"]
glue("n_levels", blend_levels, display=False)
glue("blend_layer_words", "last layer, as the blog did" if blend_layer == "last" else
     "best layer pair (max over layer pairs)", display=False)
glue("n_seeds", noise_seeds, display=False)
blend_tables = []
vision_names = [n for n, s in sources.items() if s.group in vision_groups]
with timer.stage("blend curve"):
    for seed in range(noise_seeds):
        for t in tqdm(levels, desc=f"blend levels (seed {seed})"):
            imgs, caps, key = image_set("id", seed=seed, t=float(t))
            feats = features(vision_names, imgs, key)
            with_text = caps is not None and not FULL
            if with_text:
                feats.update(caption_feats(caps, seed))
            for metric in blend_metrics:
                cells = [(g, pair_sets[g]) for g in vision_groups]
                cells += [("trained-text", text_pairs)] if with_text else []
                blend_tables += [ma.pair_rows(feats, pairs, metric, topk, n_perm,
                                              layer=blend_layer, group=g, t=float(t), seed=seed)
                                 for g, pairs in cells]
blend = pd.concat(blend_tables, ignore_index=True)
curve = blend.groupby(["metric", "group", "seed", "t"]).apply(
    ni.pool_pairs, alpha=alpha_level, include_groups=False).reset_index()
curve.head()

# %% [markdown]
# For each metric, group and seed, the **null frontier** is the first t at which the pooled
# p-value exceeds alpha, that is, where alignment stops differing from the permutation null
# (NaN: never, up to t = 1). The random-init control is a comparison at every level: do trained
# pairs beat random-init pairs there (Welch's test over pairs, p at or below alpha)?

# %% tags=["hide-input"]
fronts = ni.null_frontiers(curve, alpha_level).assign(frontier="null")
front_summary = fronts.groupby(["frontier", "metric", "group"])["t*"].agg(
    median="median", low="min", high="max", never=lambda s: int(s.isna().sum()))
front_summary

# %% [markdown]
# Read "never" as the number of seeds whose alignment stays distinguishable up to pure noise.

# %% tags=["hide-input"]
def null_front(group: str, metric: str = blend_metrics[0]) -> float:
    f = fronts[(fronts.metric == metric) & (fronts.group == group)]["t*"]
    return float(f.median()) if f.notna().any() else float("nan")


glue("ans_front_init", null_front("init") if not FULL else float("nan"), display=False)
glue("ans_front_text", null_front("trained-text") if not FULL else float("nan"), display=False)
main_fronts = fronts[(fronts.metric == blend_metrics[0]) & (fronts.group == main_group)]["t*"]
n_never = int(main_fronts.isna().sum())
glue("ans_front_trained_never", n_never, display=False)
end = curve[(curve.metric == blend_metrics[0]) & (curve.group == main_group)
            & (np.isclose(curve.t, 1.0))]
glue("ans_blend_t1_p", float(end["pooled p"].max()), display=False)
glue("ans_blend_t1_corr", float(end["mean corrected"].mean()), display=False)
v_blend = (f"stay above the null all the way to pure noise in all {noise_seeds} seeds"
           if n_never == noise_seeds else f"reach the null at t = {null_front(main_group):.1f}"
           f" (median over seeds; {n_never} of {noise_seeds} seeds never do)")
glue("v_blend_trained", f"Trained pairs {v_blend}", display=False)
glue("v_blend_trained_lc", f"trained pairs {v_blend}", display=False)
if not FULL:
    beat = ni.group_contrast(blend[blend.group.isin(["trained", "init"])], ["metric", "seed", "t"],
                             "trained", "init")["Welch p (trained > init)"] <= alpha_level
    beat = beat.groupby(["metric", "t"]).all().unstack("metric")
    always = beat[beat[blend_metrics[0]]].index
    glue("ans_beat_n", int(len(always)), display=False)
    glue("ans_beat_levels", ", ".join(f"{t:.1f}" for t in always) if len(always) else "none",
         display=False)
    display(beat.rename(columns=lambda m: f"trained beats init in every seed ({m})"))

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Chance-corrected alignment along the blend from in-distribution images (t = 0) to uniform noise (t = 1), per metric. Lines are the mean over seeds of the pooled score of each group's pairs; bands span the seeds (min to max). Grey dashes: the permutation null. Vertical dotted line: the median t at which random-init pairs become indistinguishable from the null.", "name": "fig-random_images-blend"}}
show(nf.plot_blend(curve, fronts, blend_metrics, frontier_group=None if FULL else "init"))

# %% [markdown]
# Read the figure from left to right. Random-init pairs fall to the null at the dotted line
# (t = {glue:text}`ans_front_init:.1f`, median over seeds). At t = 1 the trained pairs' mean
# corrected score is {glue:text}`ans_blend_t1_corr:.3f`, and {glue:text}`ans_front_trained_never`
# of {glue:text}`n_seeds` seeds never reach the null frontier. In every seed, trained pairs beat
# random-init pairs at {glue:text}`ans_beat_n` of {glue:text}`n_levels` levels
# (t = {glue:text}`ans_beat_levels`). The caption encoders' line (trained models against text)
# needs the image's *content*, because the captions never change along the blend. Its null
# frontier per seed is in the table below.

# %% tags=["hide-input"]
vl_front = fronts[fronts.group == "trained-text"]
if len(vl_front):
    display(vl_front.pivot_table(index="metric", columns="seed", values="t*"))

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Left: each pair's distance from its permutation null in units of the null's standard deviation (z-score; symmetric log scale, grey line at z = 2), per image set and group (mutual kNN, max over layer pairs). Right: the mean chance-corrected score of each group per image set.", "name": "fig-random_images-trained-vs-init"}}
show(nf.plot_null_distance(fam, sets, family_metrics[0]))

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

# %% tags=["hide-input"]
for f, name in (("uniform", "ans_uniform_diff"), ("id", "ans_id_diff")):
    diff = float("nan") if FULL else float(contrast.loc[(family_metrics[0], f), "difference"])
    glue(name, diff, display=False)
time_table = timer.table()
time_table.loc["zoo training/loading (inside the total)"] = [round(zoo_seconds, 1), float("nan")]
time_table

# %% [markdown]
# The time table splits the run. If the zoo cache was empty, the "load or train the zoo" row is
# what training cost on this machine. Otherwise that row is a few seconds of loading.
