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
# # The Platonic Representation Hypothesis beyond in-distribution data
#
# **Question.** The Platonic Representation Hypothesis (PRH) {cite:p}`huh2024platonic` says that
# models trained with different objectives converge to similar representations. Does that hold
# only on the data they were trained on, or also out of distribution (OOD),
# and do alignment metrics agree with one another about which model pairs are most alike?
#
# **Answer.** On five real pretrained CNNs that install offline, trained minus random-init
# mutual-kNN alignment (chance-corrected, layer-pair max, 95% intervals over models) is
# {glue:text}`rv_diff_photos` on photo crops (same-photo neighbours excluded) and
# {glue:text}`rv_diff_fashion`, {glue:text}`rv_diff_abstract` and {glue:text}`rv_diff_shapes` on
# three OOD sets (Fashion-MNIST, abstract art, shapes renders). Metric configurations agree at
# {glue:text}`ragree_photos_blog` on photos under the blog's protocol, against a null 95th
# percentile of {glue:text}`ragree_null_photos_blog:.2f`: {glue:md}`ragree_headline`. A small
# procedural world with known factors and a zoo of tiny models under four objectives is the
# controlled experiment: there {glue:text}`vv_verdict`, and within architecture the partial
# Spearman correlation between competence and alignment to two sentence encoders is
# {glue:text}`comp_partial_id` in distribution and {glue:text}`comp_partial_ood` OOD. The
# verdicts are in the closing table.

# %% tags=["hide-input"]
import time

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import torch
from myst_nb import glue

from helpers import alignment, interactive, pretrained
from helpers.chapter import StageTimer, bonferroni, format_interval, format_p, glue_text
from helpers.chapter import verdict_table
from helpers.plotting import NULL_COLOR, PALETTE, show, use_style
from helpers.prh import competence as cp
from helpers.prh import metric_agreement as ma
from helpers.prh import ood_report as rep
from helpers.prh import real_images as ri
from helpers.prh import shapes_world as sw
from helpers.prh import sources as ps
from helpers.prh import zoo as zoo_lib
from helpers.text_encoders import TEXT_ENCODERS

use_style()
torch.set_num_threads(1)  # the build machine is shared; CPU seconds are the cost proxy
T0 = time.time()

# %% tags=["parameters"]
# Other values: edit them here, then run all cells; or in a shell
#   python -m helpers.run prh_ood -p n_eval 256
scale: str = "book"  # smoke | book | full (set by helpers.run)
n_eval: int = 512  # evaluation images per split (in distribution and OOD); also the probe data
eval_seed: int = 1  # seed of the evaluation images (the zoo trains on seed 1000)
topk: int = 10  # k of the headline mutual-kNN metric (PRH's default)
n_perm: int = 30  # shuffled pairings per permutation null (headline measurements)
n_agree: int = 256  # images (first of the eval set) for the metric-agreement heatmaps
# k of mutual kNN and CKNNA in the agreement heatmaps: the blog's 10 and 30; its k = 100 (39%
# of a 256-image set, about half of the agreement stage's CPU time) is left out
agree_ks: list = [10, 30]
n_perm_agree: int = 5  # shapes world: shuffles per configuration for the corrected agreement
n_boot: int = 1000  # bootstrap resamples (over models) for confidence intervals
# offline text encoders (book); full: PRH's LLMs
language_models: list = ["all-MiniLM-L6-v2", "all-mpnet-base-v2"]
vit_models: list = []  # full only: timm ViT names or local folders (PRH's 17 ViTs in scales.yaml)
# full only: in-distribution images + captions (WIT, revision wit_1024, or a local folder)
id_source: str = "minhuh/prh"
# full only: OOD images (ImageNet-O, or a local folder of label sub-folders)
ood_source: str = "cais/imagenet-o"
n_init_controls: int = 3  # full only: random-init copies of the first n ViTs (the controls)
batch_size: int = 32  # full only: images or captions per forward pass
# offline pretrained CNNs (helpers.pretrained.REGISTRY)
real_models: list = ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2",
                     "mobilenet_v2", "hed_vgg16"]
# images per real image set (photo crops, Fashion-MNIST, abstract, shapes); 320 cost ~25% more
real_n: int = 256
real_input: int = 96  # pixels fed to every CNN (their own 224-260 px would cost ~6x more)
real_perm: int = 50  # shuffles per real-model null (p floor 1/51, below the 0.05 we read)
real_agree_sets: list = ["photos", "fashion"]  # real image sets of the agreement heatmaps
real_agree_layers: int = 4  # PRH protocol on real models: evenly spaced blocks searched per model
real_agree_perm: int = 199  # shuffles per agreement test (p floor 0.005 < 0.05 / 8 tests)
alpha: float = 0.05  # family-wise error rate of the agreement tests (Bonferroni)
workers: int = 2  # processes that train the zoo and extract features (CPU: all cores)

# %% [markdown]
# ## Real pretrained models on real images
#
# The blog's claims are about real pretrained networks, so we start with the five that install
# offline from the package registries (`helpers.pretrained`): EfficientNet-Lite0, -Lite1 and
# -Lite2 and a MobileNetV2 trunk (ImageNet classifiers), and a VGG16 trunk trained for edge
# detection (HED), a different objective. Each also gets a **random-init copy** of its
# architecture, the control every number below is read against.
#
# The images (`helpers.prh.real_images`) are one in-distribution set and three OOD sets:
# - **photos**: random square crops, at several scales, of the Debian wallpaper photographs
#   and the sample photos of sklearn and matplotlib;
# - **fashion**: Fashion-MNIST (grey product shots on black);
# - **abstract**: random crops of abstract wallpapers (gradients, flat shapes);
# - **shapes**: the shapes world's OOD renders (below).
#
# Every image is fed at {glue:text}`real_input_shown` px, below the models' own 224-260 px,
# to keep the chapter within minutes on two CPU cores; each model keeps its own normalisation.
# Each set holds {glue:text}`real_n_shown` images. What the book scale's choices save, in CPU
# seconds of one thread: 256 images instead of 320 save about a fifth of the feature and
# alignment cost (the edge detector's VGG16 trunk is three quarters of the features); leaving
# the blog's k = 100 out of the agreement heatmaps (39% of a 256-image set) saves about half of
# that stage (measured at 320 images).
# Features are every block's output, averaged over space (CNNs have no CLS token).

# %% tags=["hide-input"]
FULL = scale == "full"
if FULL and len(vit_models) < 2:  # checked before any work
    raise ValueError("scale='full' needs at least two vit_models (PRH's ViTs are listed in "
                     "book/scales.yaml); hub names need network access, local folders work "
                     "offline")
timer = StageTimer()
shown = dict(real_input=real_input, real_n=real_n, real_perm=real_perm, topk=topk, alpha=alpha,
             agree_ks=", ".join(map(str, agree_ks)), real_agree_layers=real_agree_layers,
             real_agree_perm=real_agree_perm, n_agree=n_agree, n_perm_agree=n_perm_agree)
for name, value in shown.items():  # parameters quoted in the prose
    glue(f"{name}_shown", value, display=False)
with timer.stage("real: images"):
    real_sets = ri.make_image_sets(real_n, real_input, seed=eval_seed)
with timer.stage("real: features"):
    real_feats, real_logits = ri.pretrained_features(real_sets, real_models, input_size=real_input,
                                                     workers=workers)
pd.DataFrame([{k: v for k, v in row.items() if k != "package"} for row in pretrained.describe()
              if row["model"] in real_models]).set_index("model")

# %% [markdown]
# ### Are the OOD sets out of distribution for these models?
#
# ImageNet-O was built from images that ImageNet classifiers label wrongly and confidently. We
# cannot check correctness on sets with no ImageNet labels, but we can measure how the three
# classifiers respond: their mean top-1 softmax **confidence** and the **entropy** of the
# prediction (nats; a uniform guess over 1000 classes is 6.9).

# %% tags=["hide-input"]
conf = ri.confidence_table(real_logits)
conf_mean = conf.groupby("image_set")[["confidence", "entropy", "frac_confident"]].mean()
conf_mean = conf_mean.reindex(list(real_sets))
for s in real_sets:
    glue(f"conf_{s}", float(conf_mean.loc[s, "confidence"]), display=False)
    glue(f"ent_{s}", float(conf_mean.loc[s, "entropy"]), display=False)
glue("ood_measured", rep.ood_phrase(conf_mean.entropy), display=False)
conf.pivot_table(index="image_set", columns="model", values=["confidence", "entropy"]).round(2)

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Top-1 softmax confidence (left) and prediction entropy in nats (right) of the three EfficientNet-Lite classifiers on each image set; bars are the mean over images, one colour per classifier.", "name": "fig-prh_ood-real-confidence"}}
fig = ri.plot_confidence(conf, list(real_sets), PALETTE)
show(fig)

# %% [markdown]
# On the photos the classifiers' mean top-1 confidence is {glue:text}`conf_photos:.2f`
# (entropy {glue:text}`ent_photos:.2f`); on Fashion-MNIST, abstract art and shapes it is
# {glue:text}`conf_fashion:.2f`, {glue:text}`conf_abstract:.2f` and {glue:text}`conf_shapes:.2f`
# ({numref}`fig-prh_ood-real-confidence`). So {glue:text}`ood_measured`.
#
# ### Vision-vision alignment of the real models
#
# For every pair of models we take mutual kNN at k = {glue:text}`topk_shown`, the max over
# layer pairs, calibrated by a permutation null of that same max ({glue:text}`real_perm_shown`
# shuffles), and report the **corrected** score (0 at chance, 1 identical neighbourhoods).
# Crops of one picture resemble each other, so on the photo and abstract crops each image's
# neighbours from its own picture are **excluded** on both sides (plain scores are shown
# too). A **pixel baseline** (the images averaged down to 24 x 24) is scored as one more model.
#
# The claim is read from **trained minus random-init** within architecture pairs: the same two
# architectures, untrained, on the same images. Intervals resample models, not pairs
# (pairs share models), so with five models they are wide.

# %% tags=["hide-input"]
with timer.stage("real: alignment"):
    real_tables = rep.real_alignment(real_sets, real_feats, topk, real_perm)
real_all = pd.concat(real_tables.values(), ignore_index=True)
headline_view = rep.headline_views(real_sets)
real_key = ri.summarise(real_tables, n_boot=n_boot)
for name, value in rep.real_alignment_values(real_key, headline_view).items():
    glue(name, value, display=False)
real_key["mean"].unstack("quantity").round(3)

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Chance-corrected mutual-kNN alignment (layer-pair max) of the real pretrained models on each image set: trained pairs, their random-init controls, and each model against pixels; right, trained minus random-init within architecture pairs. Error bars: 95% bootstrap over models. Photos and abstract crops: same-picture neighbours excluded.", "name": "fig-prh_ood-real-alignment"}}
fig = ri.plot_alignment(real_key, headline_view, PALETTE, NULL_COLOR)
show(fig)

# %% [markdown]
# On the photos, with same-photo neighbours excluded, trained pairs have a corrected score of
# {glue:text}`rv_photos:.3f` (plain: {glue:text}`rv_photos_plain:.3f`) and their random-init
# controls {glue:text}`rv_init_photos:.3f`; the differences on every set are in the answer above
# and in {numref}`fig-prh_ood-real-alignment`. The per-pair differences show which pairs carry
# the mean (rows: architecture pairs; columns: image sets).

# %% tags=["hide-input"]
diff_wide = rep.diff_by_pair(real_tables, headline_view)
gain_hed, gain_imagenet = rep.objective_gap(diff_wide, "hed_vgg16")
glue("rv_diff_hed", gain_hed, display=False)
glue("rv_diff_nohed", gain_imagenet, display=False)
glue("hed_sentence", rep.objective_phrase(gain_hed, gain_imagenet), display=False)
diff_wide.round(3)

# %% [markdown]
# The same differences as an interactive matrix: move the slider to change the image set
# (hover names the pair; the static figure above stays the reference).

# %% tags=["hide-input"]
lim = float(np.nanmax(np.abs(diff_wide.to_numpy())))
frames = {s: [go.Heatmap(z=rep.pair_matrix(diff_wide[s], real_models), x=real_models,
                         y=real_models, zmin=-lim, zmax=lim, colorscale="RdBu", reversescale=True,
                         hovertemplate="%{y} vs %{x}: %{z:+.3f}<extra></extra>")]
          for s in diff_wide.columns}
interactive.show(interactive.slider_figure(
    frames, slider_label="image set",
    title="Trained minus random-init corrected mutual kNN, per architecture pair"),
    "fig-prh_ood-real-interactive")

# %% [markdown]
# Which layers does the layer-pair max pick? The table gives the mean depth of the chosen
# layers as a fraction of each model's blocks (0 = first block, 1 = last), for trained pairs
# and for random-init pairs. Trained pairs among the ImageNet models (without HED) gain
# {glue:text}`rv_diff_nohed:+.3f` on average over the four sets; pairs with HED gain
# {glue:text}`rv_diff_hed:+.3f`.

# %% tags=["hide-input"]
picked = real_all[real_all.kind.isin(["trained", "init"])].assign(
    depth=lambda d: (d.depth_a + d.depth_b) / 2)
picked.pivot_table(index=["image_set", "view"], columns="kind", values="depth").round(2)

# %% [markdown]
# ### The language side: captions of Fashion-MNIST and of the shapes world
#
# Fashion-MNIST has one caption per class ("a photo of a sneaker."), so the caption space has
# only ten distinct points: each image ties with about a tenth of the set, and which tied rows
# a kNN returns is arbitrary. The permutation null keeps the same ties, so the corrected score
# is still 0 at chance; its ceiling is lower than 1. The shapes world's captions are all
# different. Each model is scored against the two sentence encoders (layer-pair max, mean over
# the encoders).

# %% tags=["hide-input"]
with timer.stage("real: language"):
    vl_real = rep.caption_alignment(real_sets, real_feats, TEXT_ENCODERS, topk, real_perm)
vl_by_model = vl_real.groupby(["image_set", "model_a"]).corrected.mean().unstack(0)
vl_diff = rep.init_gain(vl_by_model, real_models, n_boot)
for s, (m, lo, hi) in vl_diff.items():
    glue(f"vl_real_diff_{s}", format_interval(m, lo, hi, signed=True), display=False)
vl_by_model.round(3)

# %% [markdown]
# Trained minus random-init alignment to the sentence encoders, averaged over the five
# architectures (95% bootstrap over architectures), is {glue:text}`vl_real_diff_fashion` on
# Fashion-MNIST and {glue:text}`vl_real_diff_shapes` on the shapes world's captions.
#
# ### Do the metrics agree on the real models?
#
# The blog scored every pair of pretrained models under several **metric configurations**, a
# metric and a neighbourhood size k: mutual kNN and **CKNNA** (CKA restricted to mutual
# neighbours) at k = {glue:text}`agree_ks_shown`, and here also unbiased CKA (CKNNA's large-k
# limit). It then Spearman-correlated the configurations, with model pairs as observations.
# We do the same on the pretrained models under two protocols:
# - **blog**: last layer, L2-normalised, no clamp, no layer search;
# - **PRH**: clamp, then the max over layer pairs ({glue:text}`real_agree_layers_shown`
#   evenly spaced blocks per model, first to last, to keep the cost in seconds).
#
# Each protocol gives raw scores and scores corrected by a permutation null of the same
# statistic. Metrics computed on the same images agree partly by chance, so the mean agreement
# gets its own **null**: every pair scored on the same shuffle, correlated as if observed
# ({glue:text}`real_agree_perm_shown` shuffles). Its interval resamples **models** (pairs share
# models). **Threshold, fixed before the numbers:** {glue:text}`agree_n_tests` tests (image
# sets x protocols x raw/corrected), Bonferroni at family-wise {glue:text}`alpha_shown`, so a
# test passes at p <= {glue:text}`agree_threshold:.4f`; {glue:md}`agree_floor_sentence`

# %% tags=["hide-input"]
configs = rep.agreement_configs(agree_ks)
agree_sets = [s for s in real_agree_sets if s in real_sets]
n_tests = 4 * len(agree_sets)
threshold = bonferroni(alpha, n_tests)
glue("agree_n_tests", n_tests, display=False)
glue("agree_threshold", threshold, display=False)
glue_text("agree_floor_sentence", rep.floor_phrase(real_agree_perm, threshold))
with timer.stage("real: metric agreement"):
    real_agree = {(s, p): t for s in agree_sets for p, t in rep.protocol_tables(
        {m: real_feats[s][m] for m in real_models}, configs, real_agree_perm,
        real_agree_layers).items()}
    real_agree_rows = rep.agreement_rows(real_agree, n_boot)
real_agree_rows["passes"] = real_agree_rows.p_value <= threshold
for (s, p, v), r in real_agree_rows.iterrows():
    glue(f"ragree_{s}_{p}" + ("" if v == "raw" else "_corr"),
         format_interval(r["mean"], r.ci_low, r.ci_high, digits=2), display=False)
    glue(f"ragree_null_{s}_{p}" + ("" if v == "raw" else "_corr"), r.null_95, display=False)
real_agree_rows.assign(p=[format_p(p, real_agree_perm) for p in real_agree_rows.p_value])[
    ["mean", "ci_low", "ci_high", "null_mean", "null_95", "p", "passes", "n_pairs"]].round(3)

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Spearman correlation between metric configurations over the pairs of pretrained models, per image set (rows) and protocol and score (columns: blog raw, blog corrected, PRH raw, PRH corrected).", "name": "fig-prh_ood-real-agreement"}}
fig = rep.plot_agreement_grid(
    {(s, f"{p}, {v}"): ma.agreement(real_agree[(s, p)], v)
     for s in agree_sets for p in ("blog", "PRH") for v in ("raw", "corrected")},
    title_of=lambda s, c: f"{s}: {c}")
show(fig)

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Mean agreement between configurations on the real models, per protocol and score; bars: observed, with 95% bootstrap over models; thick grey ticks: 95th percentile of the permutation null of the same mean. One colour per image set.", "name": "fig-prh_ood-real-agreement-means"}}
fig = rep.plot_agreement_means(real_agree_rows, PALETTE, NULL_COLOR)
show(fig)

# %% tags=["hide-input"]
glue_text("ragree_headline", rep.agreement_headline(real_agree_rows, n_tests))
glue_text("ragree_blog_vs_null", rep.blog_vs_null(real_agree_rows, agree_sets))

# %% [markdown]
# {numref}`fig-prh_ood-real-agreement` shows the matrices and
# {numref}`fig-prh_ood-real-agreement-means` their means against the null. Under the blog's
# protocol the mean agreement is {glue:md}`ragree_blog_vs_null`. Chance agreement is far from
# zero, because every configuration sees the same images, so a heatmap without its null
# overstates agreement. In all, {glue:md}`ragree_headline`.
#
# The rest of the chapter is the controlled experiment: a world whose factors are known, with
# small models trained from scratch, where "out of distribution" is defined by construction.

# %% [markdown]
# ## A world with known structure
#
# Every image is one coloured shape on a textured background. Seven factors generate it: shape,
# colour, size, row, column, background colour and texture. Each image gets a caption written
# from those factors.
#
# The **OOD split** mimics ImageNet-O {cite:p}`hendrycks2021natural` in three equal thirds:
# - (shape, colour) pairs that never occur in training;
# - novel shapes (star, ring, cross);
# - novel textures (dots, waves).
#
# At `full` scale the same analysis runs on PRH's data instead: WIT images with their captions
# in distribution, ImageNet-O with "a photo of a <label>" captions OOD (`helpers.prh.sources`).

# %% tags=["hide-input"]
if FULL:
    world = {}
    for split, loader, source in (("id", ps.load_wit, id_source),
                                  ("ood", ps.load_imagenet_o, ood_source)):
        imgs, caps = loader(source, n=n_eval)
        world[split] = sw.ShapesData(imgs, pd.DataFrame({"subset": [split] * len(caps)}), caps)
else:
    world = {split: sw.make_dataset(n_eval, split, seed=eval_seed) for split in ("id", "ood")}
world["ood"].factors["subset"].value_counts()

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Samples of the shapes world. Top row: in distribution. Rows 2-4: the three kinds of OOD image (held-out shape-colour pairs, novel shapes, novel textures). Titles are the start of each caption.", "name": "fig-prh_ood-world"}}
show(rep.plot_world(world, FULL))

# %% [markdown]
# Every OOD image still has a true caption ({numref}`fig-prh_ood-world`), so the language side
# can describe what the vision side has never seen.
#
# ## The model zoo
#
# The zoo holds three architectures: a timm ViT, a timm ResNet and an MLP. Each trains from
# scratch under four objectives:
# - supervised classification of all seven factors;
# - reconstruction (autoencoder);
# - SimCLR-style contrast between two augmented views;
# - caption contrast against frozen all-MiniLM-L6-v2 embeddings (CLIP-style).
#
# Each trains for {glue:text}`zoo_steps` steps (batch {glue:text}`zoo_batch`, one seed, to fit
# two CPU cores). Every model keeps checkpoints, and step 0 is its **random-init control**.
# Trained weights are cached, so a second run loads them.
#
# At `full` scale the zoo is PRH's pretrained ViTs instead. Each is one "checkpoint" (step 1);
# the first `n_init_controls` also get a random-init copy (step 0) as the control.

# %% tags=["hide-input"]
with timer.stage("shapes: zoo"):
    if FULL:
        zoo_config = zoo_lib.ZooConfig(seeds=(0,))
        zoo = ps.pretrained_members(vit_models, n_init_controls)
    else:
        zoo_config = zoo_lib.ZooConfig.for_scale(scale)
        zoo = zoo_lib.get_zoo(zoo_config, progress=True, workers=workers)
glue("zoo_steps", zoo_config.total_steps, display=False)
glue("zoo_batch", zoo_config.batch_size, display=False)
print(f"{len(zoo)} models, checkpoints at steps {zoo[0].steps}")
pd.DataFrame([dict(name=m.name, arch=m.arch, objective=m.objective, seed=m.seed,
                   final_loss=np.mean([h["loss"] for h in m.history[-5:]])
                   if m.history else np.nan) for m in zoo])

# %% [markdown]
# ### Do the classifiers fail OOD?
#
# ImageNet-O holds images that ImageNet classifiers get wrong. We check the same for our
# supervised models: the accuracy of their own factor heads on each kind of image.

# %% tags=["hide-input"]
acc_table = rep.accuracy_table([] if FULL else zoo, world)  # full: no factor labels
acc_summary = (acc_table.groupby("subset")[["shape", "color", "texture", "all_factors"]].mean()
               .reindex(["id", *sw.OOD_KINDS]))
glue("acc_id_shape", float(acc_summary.loc["id", "shape"]), display=False)
glue("acc_combo_shape", float(acc_summary.loc["held_out_combo", "shape"]), display=False)
acc_table.groupby(["arch", "subset"])[["shape", "all_factors"]].mean().unstack(1).round(2)

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Accuracy of the supervised models' own heads, averaged over architectures, on in-distribution images and on each OOD kind. Novel shapes and textures have no correct class, so their shape and texture accuracy is zero by construction.", "name": "fig-prh_ood-accuracy"}}
show(rep.plot_accuracy(acc_summary, PALETTE))

# %% [markdown]
# The classifiers name the shape of in-distribution images with accuracy
# {glue:text}`acc_id_shape:.2f`, and that of held-out shape-colour pairs with
# {glue:text}`acc_combo_shape:.2f`. On novel shapes and textures they must be wrong, as on
# ImageNet-O.
#
# ## Features
#
# The vision side gives one feature per layer, from every checkpoint on both splits: each ViT
# block's output at the CLS token (PRH's choice), the ResNet's stem and stages averaged over
# space, the MLP's hidden layers. The language side gives every hidden state of the two
# sentence encoders, averaged over tokens, for the true captions. Before any metric sees
# features, PRH's preparation clamps each layer at the 0.95 quantile of |x| and L2-normalises
# each row (`alignment.prepare`); the blog skipped the clamp.

# %% tags=["hide-input"]
with timer.stage("shapes: features"):
    if FULL:
        vision, n_params = rep.pretrained_vision_features(
            zoo, world, {"id": id_source, "ood": ood_source}, batch_size)
    else:
        vision, n_params = rep.zoo_vision_features(
            zoo, world, {"world": "shapes", "n": n_eval, "seed": eval_seed}), None
    text_key = {split: {"world": "prh", "source": id_source if split == "id" else ood_source}
                if FULL else {"world": "shapes"} for split in world}
    prepared_lang = {split: {lm: rep.text_features(
        lm, world[split].captions, {**text_key[split], "split": split, "n": n_eval,
                                    "seed": eval_seed}, FULL, batch_size if FULL else 64)
        for lm in language_models} for split in world}
prepared = {split: {key: alignment.prepare(layers) for key, layers in vision[split].items()}
            for split in vision}
final = {m.name: m.steps[-1] for m in zoo}
members = {m.name: m for m in zoo}
{lm: len(prepared_lang["id"][lm]) for lm in language_models}

# %% [markdown]
# ## Vision-vision alignment, in distribution and OOD
#
# **Mutual kNN** at k = {glue:text}`topk_shown` is the average fraction of each image's k nearest
# neighbours that two models share (see the {doc}`primer`). For each model pair we take the
# max over layer pairs, as PRH does. We calibrate it with a **permutation null**: the same max,
# recomputed after shuffling which image is which on one side.
#
# The **corrected** score (observed - null mean) / (1 - null mean) is 0 at chance and 1 when
# the neighbourhoods are identical.

# %% tags=["hide-input"]
vv_models = {**final, **{n + rep.INIT: 0 for n in final if 0 in members[n].steps}}
with timer.stage("shapes: vision-vision"):
    vv_all = rep.vv_scores(prepared, vv_models, topk, n_perm)
vv_summary = rep.summarise_vv(vv_all, n_boot)
for name, value in rep.vv_values(vv_summary).items():
    glue(name, value, display=False)
vv_summary.round(3)

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Chance-corrected mutual-kNN alignment (layer-pair max, permutation-null corrected) between every pair of trained models and random-init controls, in distribution (left) and OOD (right). 0 is chance.", "name": "fig-prh_ood-vv-matrix"}}
show(rep.plot_vv_matrix(vv_all, list(vv_models)))

# %% [markdown]
# In {numref}`fig-prh_ood-vv-matrix`, trained pairs have corrected scores of
# {glue:text}`vv_id:.2f` in distribution and {glue:text}`vv_ood:.2f` OOD; pairs of random-init
# controls (the last rows) score {glue:text}`vv_rand_id:.2f` and {glue:text}`vv_rand_ood:.2f`.
# Random networks are {glue:text}`zoo_init_chance` (corrected score above 0.05 or not), and a
# raw score is not evidence of learning; the trained-minus-init difference is. By objective:
# trained pairs that share an objective and pairs that do not.

# %% tags=["hide-input"]
trained = vv_all[vv_all.kind == "trained pair"].copy()
trained["same_objective"] = [members[a].objective == members[b].objective
                             for a, b in zip(trained.model_a, trained.model_b)]
trained.groupby(["split", "same_objective"]).corrected.agg(["mean", "std", "count"]).round(3)

# %% [markdown]
# Which layers does the layer search choose? The table gives the depth of the chosen layer as
# a fraction of the model's layers (1 = last), in distribution and OOD.

# %% tags=["hide-input"]
rep.layer_depth(vv_all, {n: len(vision["id"][(n, final[n])]) for n in final},
                {n: m.arch for n, m in members.items()}).round(2)

# %% [markdown]
# ## Vision-language alignment against competence
#
# PRH's main figure plots a vision model's alignment to language models against its
# competence. Here **competence** is the mean accuracy, over the seven factors, of a two-fold
# linear (ridge) probe on the model's last layer (in-distribution eval images). Alignment is
# mutual kNN, the max over the layer pairs of the vision model and the text encoder, corrected
# by the permutation null, averaged over the two encoders.
#
# Pooled over architectures, a correlation mostly says which architecture aligns more, and
# random-init checkpoints make any trend look strong. So we read the **partial Spearman
# correlation on architecture** (ranks centred within each architecture) over trained
# checkpoints (step 0 excluded), with a 95% interval that resamples whole models within
# architecture; the pooled correlation is printed beside it. At `full` scale, with no factor
# labels, competence is a documented proxy: log10 of the parameter count (larger models of a
# family are better in PRH); random-init copies get none.

# %% tags=["hide-input"]
comp = rep.competence_table(zoo, vision["id"], world["id"], n_params)
with timer.stage("shapes: vision-language"):
    vl_mean = rep.language_alignment(prepared, prepared_lang, comp, topk, n_perm)
comp_corr = pd.DataFrame({split: cp.competence_correlation(vl_mean[vl_mean.split == split],
                                                           n_boot=n_boot)
                          for split in ("id", "ood")})
for name, value in rep.competence_values(comp_corr, vl_mean, comp, final).items():
    glue(name, value, display=False)
comp_corr.round(3)

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Alignment to the two sentence encoders (mutual kNN, layer-pair max, chance-corrected, mean over encoders) against competence (linear-probe accuracy over the seven factors), for every checkpoint of every model, in distribution (left) and OOD (right). Colour: objective; marker: architecture; grey: step 0 (random init). Lines join the checkpoints of one model. Titles: partial Spearman on architecture, step 0 excluded.", "name": "fig-prh_ood-competence"}}
titles = {s: f"{'in distribution' if s == 'id' else 'out of distribution'}: partial rho "
             f"{comp_corr.loc['partial', s]:.2f}" for s in ("id", "ood")}
show(rep.plot_competence(vl_mean, PALETTE, NULL_COLOR, titles,
                         "competence: log10 parameters (proxy)" if FULL
                         else "competence (probe accuracy, fraction)"))

# %% [markdown]
# In numbers ({numref}`fig-prh_ood-competence`): trained checkpoints span competence
# {glue:text}`comp_min:.2f` to {glue:text}`comp_max:.2f`, and within architecture
# {glue:text}`comp_verdict`. Random-init checkpoints (grey) have a mean corrected alignment of
# {glue:text}`vl_init_id:.3f` in distribution, against {glue:text}`vl_final_id:.3f` for the
# final checkpoints ({glue:text}`vl_init_ood:.3f` and {glue:text}`vl_final_ood:.3f` OOD).
# The pooled Spearman correlation, which mixes architectures, is {glue:text}`comp_rho_id:.2f`
# in distribution and {glue:text}`comp_rho_ood:.2f` OOD.
# The OOD panel differs in one respect: competence is measured in distribution, so it is a
# property of the model, and the alignment is measured on images it has never seen.
#
# ## Do the metrics agree on the shapes world?
#
# The same configurations and protocols as on the real models, over the trained zoo models
# (one per architecture and objective), on the first {glue:text}`n_agree_shown` images. The
# zoo's layers are few, so the PRH protocol searches all of them. These means get model
# intervals; their corrections use only {glue:text}`n_perm_agree_shown` shuffles, so they are
# read descriptively, not tested (the tests are the real models' above).

# %% tags=["hide-input"]
with timer.stage("shapes: metric agreement"):
    tables = {(split, p): t for split in ("id", "ood") for p, t in rep.protocol_tables(
        {n: [v[:n_agree] for v in vision[split][(n, final[n])]] for n in final}, configs,
        n_perm_agree, None).items()}
    agree_rows = rep.agreement_rows(tables, n_boot)
corr = {(split, p, v): ma.agreement(tables[(split, p)], v)
        for split in ("id", "ood") for p in ("blog", "PRH") for v in ("raw", "corrected")}
agree_summary = agree_rows["mean"].unstack(0)
for split in ("id", "ood"):
    glue(f"agree_blog_{split}", float(agree_summary.loc[("blog", "raw"), split]), display=False)
    glue(f"agree_corr_{split}", float(agree_summary.loc[("PRH", "corrected"), split]),
         display=False)
agree_rows[["mean", "ci_low", "ci_high", "null_mean", "n_pairs"]].round(3)

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Spearman correlation between metric configurations over pairs of the zoo's trained models, under PRH's protocol (clamp, layer-pair max). Rows: in distribution, OOD. Columns: raw scores, chance-corrected scores.", "name": "fig-prh_ood-agreement"}}
show(rep.plot_agreement_grid({(split, v): corr[(split, "PRH", v)] for split in ("id", "ood")
                              for v in ("raw", "corrected")},
                             title_of=lambda s, v: f"{'in distribution' if s == 'id' else 'OOD'}"
                                                   f", {v} scores"))

# %% [markdown]
# Which configurations go their own way? For each, its mean correlation with all the others
# (PRH protocol, corrected scores, in distribution and OOD):

# %% tags=["hide-input"]
lone = pd.DataFrame({split: rep.mean_with_others(corr[(split, "PRH", "corrected")])
                     for split in ("id", "ood")})
for name, value in rep.lone_values(lone).items():
    glue(name, value, display=False)
lone.round(2)

# %% [markdown]
# The configurations that agree least with the rest are {glue:text}`least_agree` (mean
# correlation with the others, averaged over the two splits); the most typical one is
# {glue:text}`most_agree`. {numref}`fig-prh_ood-agreement-summary` compares the protocols.

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Shapes world: mean off-diagonal Spearman correlation between metric configurations, by protocol (blog: last layer, no clamp, no layer search; PRH: clamp and layer-pair max) and by score (raw or chance-corrected), in distribution and OOD; 95% bootstrap over models, thick grey ticks the 95th percentile of the (few-draw) null.", "name": "fig-prh_ood-agreement-summary"}}
show(rep.plot_agreement_means(agree_rows, PALETTE, NULL_COLOR))

# %% [markdown]
# The blog's protocol also changes the scores themselves, not only their agreement. The table
# gives the mean raw and corrected mutual kNN at the smallest k over the agreement pairs, per
# protocol and split.

# %% tags=["hide-input"]
headline = ma.config_name("mutual_knn", agree_ks[0])
agree_table = pd.concat([t.assign(split=s, protocol=p) for (s, p), t in tables.items()])
agree_table[agree_table.config == headline].groupby(["protocol", "split"])[
    ["raw", "null_mean", "corrected"]].mean().round(3)

# %% [markdown]
# ## Verdicts
#
# The shapes world's two differences: in distribution to OOD, paired by model pair; trained
# minus random-init pairs of the same members on the same images. Their intervals are 95%
# bootstraps over zoo members (a member's trained and random-init copies move together).

# %% tags=["hide-input"]
gaps = rep.shapes_gaps(vv_all, n_boot)
for name, value in rep.closing_values(gaps, comp_corr, agree_summary, vl_mean, final).items():
    glue(name, value, display=False)
pd.DataFrame({k: format_interval(*v, signed=True) for k, v in gaps.items()}, index=["value"]).T

# %% [markdown]
# Each row states the source's claim, our number with its 95% interval, the control it is read
# against, and the threshold fixed before the numbers. Interval rows: **replicated** when the
# interval of trained minus control lies above 0, **not replicated** when it lies below 0,
# **undecided** when it straddles 0. Metric-agreement rows: **replicated** when the p-value
# passes the Bonferroni threshold {glue:text}`agree_threshold:.4f`, **not replicated** when
# the interval's top lies below the null's 95th percentile, **undecided** otherwise.
# **Multiple comparisons:** there are {glue:text}`n_claims` rows; the
# {glue:text}`n_interval_claims` interval rows are each read at 95% without correction, so
# about {glue:text}`expected_false:.2f` of them could pass by chance; the agreement rows are
# corrected as above.

# %% tags=["hide-input"]
claims = rep.interval_claims(real_key, headline_view, vl_diff, gaps["trained - init"],
                             comp_corr)
glue("n_interval_claims", len(claims), display=False)
glue("expected_false", 0.025 * len(claims), display=False)
claims += [rep.agreement_claim(s, real_agree_rows.loc[(s, "blog", "raw")], threshold, n_tests,
                               real_agree_perm) for s in agree_sets]
glue("n_claims", len(claims), display=False)
verdict_table(claims)

# %% [markdown]
# ## Conclusion
#
# **Real pretrained models.** Trained CNNs minus their random-init copies score
# {glue:text}`rv_diff_photos` on photo crops (same-photo neighbours excluded), and on the OOD
# sets Fashion-MNIST {glue:text}`rv_diff_fashion`, abstract art {glue:text}`rv_diff_abstract`
# and shapes {glue:text}`rv_diff_shapes` ({numref}`fig-prh_ood-real-alignment`). On the
# confidence check ({numref}`fig-prh_ood-real-confidence`), {glue:text}`ood_measured`.
# Random-init networks are {glue:text}`real_init_chance` ({glue:text}`rv_init_photos:.3f` on
# photos): what architecture and pixel statistics give without training, which is why the
# difference is the number to read. The edge detector's pairs gain
# {glue:text}`rv_diff_hed:+.3f`, against {glue:text}`rv_diff_nohed:+.3f` for pairs of ImageNet
# models: {glue:text}`hed_sentence`, which bears on PRH's claim that different objectives
# converge.
#
# **Metric agreement on real models.** Against a permutation null of the same mean, and with
# intervals over models, {glue:md}`ragree_headline`
# ({numref}`fig-prh_ood-real-agreement-means`). The blog's heatmaps had no null, and chance
# agreement is high: metrics computed on the same images co-vary even when nothing is shared.
#
# **Vision-vision alignment OOD (shapes world).** The corrected mutual kNN between trained
# models is {glue:text}`vv_id:.3f` in distribution and {glue:text}`vv_ood:.3f` OOD. The paired
# change is {glue:text}`vv_gap:+.3f` {glue:text}`vv_gap_ci`. Random-init pairs score
# {glue:text}`vv_rand_id:.3f` and {glue:text}`vv_rand_ood:.3f`. Trained minus random-init OOD
# is {glue:text}`vv_above_init`: {glue:text}`vv_verdict`.
#
# **Vision-language alignment and competence.** Within architecture, with step 0 excluded, the
# partial Spearman correlation is {glue:text}`comp_partial_id` in distribution and
# {glue:text}`comp_partial_ood` OOD: {glue:text}`comp_verdict`. Final checkpoints sit
# {glue:text}`vl_rise` above their random-init starting points in corrected alignment. This is
# the part of "PRH holds OOD" that a small world can test, and it does not depend on the
# classifiers being right: they are wrong on every novel shape ({numref}`fig-prh_ood-accuracy`).
#
# **Metric agreement on the shapes world.** Under the blog's protocol the mean Spearman
# correlation between configurations is {glue:text}`agree_blog_id:.2f` in distribution and
# {glue:text}`agree_blog_ood:.2f` OOD; under PRH's protocol with chance correction it is
# {glue:text}`agree_corr_id:.2f` and {glue:text}`agree_corr_ood:.2f`, a change of
# {glue:text}`agree_delta`, {glue:text}`protocol_verdict`. Across splits,
# {glue:text}`agree_split_verdict`. The configurations that rank pairs least like the others
# are {glue:text}`least_agree` ({numref}`fig-prh_ood-agreement`,
# {numref}`fig-prh_ood-agreement-summary`).
#
# **Why the protocol matters.** Raw scores of different metrics and k carry different chance
# levels, and the layer-pair max lifts the chance level further. A permutation null of the same
# statistic removes both effects. The blog also fed CLIP models ImageNet normalisation. Our
# `full`-scale loaders use each model's own preprocessing (`helpers.prh.sources`).
#
# **Open.** The real models are five ImageNet-era CNNs (no self-supervised or language-supervised
# vision model ships offline) fed at {glue:text}`real_input_shown` px, and five models give
# wide intervals. The shapes world is a small world with tiny models trained for
# {glue:text}`zoo_steps` steps on two CPU cores; OOD there means new combinations, shapes and
# textures, not new domains. The `full` scale runs this same notebook on PRH's 17 ViTs (each
# with its own preprocessing), WIT captions and ImageNet-O, with PRH's language models and
# parameter count as the competence proxy. It needs a GPU and network access, so here it has
# only run on local fixtures (two tiny ViTs, an image folder and a tiny text model).

# %% [markdown]
# Stage times, wall and CPU seconds of this process (one torch thread; the CPU column is what a
# quiet machine would see, since the build machine is shared):

# %% tags=["hide-input"]
print(f"chapter ran in {time.time() - T0:.0f} s at scale {scale!r}")
timer.table()
