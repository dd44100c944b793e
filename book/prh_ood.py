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
# only on the data they were trained on, or also out of distribution (OOD), and do alignment
# metrics agree with one another about which model pairs are most alike?
#
# **Answer.** On five real pretrained CNNs that install offline, trained minus random-init
# mutual-kNN alignment (chance-corrected, layer-pair max, 95% intervals over models) is
# {glue:text}`rv_diff_photos` on photo crops (same-photo neighbours excluded) and
# {glue:text}`rv_diff_fashion`, {glue:text}`rv_diff_abstract` and {glue:text}`rv_diff_shapes` on
# three OOD sets (Fashion-MNIST, abstract art, shapes renders). Metric configurations agree at
# {glue:text}`ragree_photos_blog` on photos under the blog's protocol, against a null 95th
# percentile of {glue:text}`ragree_null_photos_blog:.2f`: {glue:md}`ragree_headline`. In the
# controlled experiment, a procedural world with known factors and tiny models under four
# objectives, {glue:text}`vv_verdict`, and within architecture the partial Spearman correlation
# between competence and alignment to two sentence encoders is {glue:text}`comp_partial_id` in
# distribution and {glue:text}`comp_partial_ood` OOD (verdicts: the closing table).

# %% tags=["hide-input"]
import time

import torch
from IPython.display import display

from helpers import interactive
from helpers.chapter import StageTimer, glue_texts, glue_values, verdict_table
from helpers.plotting import NULL_COLOR, PALETTE, show, use_style
from helpers.prh import metric_agreement as ma
from helpers.prh import ood_report as rep
from helpers.prh import real_images as ri
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
language_models: list = ["all-MiniLM-L6-v2", "all-mpnet-base-v2"]  # offline; full: PRH's LLMs
vit_models: list = []  # full only: timm ViT names or local folders (PRH's 17 ViTs in scales.yaml)
id_source: str = "minhuh/prh"  # full only: WIT images + captions (revision wit_1024) or a folder
ood_source: str = "cais/imagenet-o"  # full only: OOD images (ImageNet-O, or label folders)
n_init_controls: int = 3  # full only: random-init copies of the first n ViTs (the controls)
batch_size: int = 32  # full only: images or captions per forward pass
real_models: list = ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2",
                     "mobilenet_v2", "hed_vgg16"]  # offline (helpers.pretrained.REGISTRY)
real_n: int = 256  # images per real set (photos, fashion, abstract, shapes); 320: ~25% more
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
# offline (`helpers.pretrained`): EfficientNet-Lite0, -Lite1 and -Lite2 and a MobileNetV2 trunk
# (ImageNet classifiers), and a VGG16 trunk trained for edge detection (HED), a different
# objective, each with a **random-init copy** of its architecture as the control. The images
# (`helpers.prh.real_images`): in distribution, **photos** (multi-scale crops of the Debian
# wallpaper photographs and the sklearn and matplotlib samples); OOD, **fashion** (Fashion-MNIST),
# **abstract** (crops of abstract wallpapers) and **shapes** (the shapes world's OOD renders). Each
# holds {glue:text}`real_n_shown` images, fed at {glue:text}`real_input_shown` px (a sixth of the
# cost of the models' own 224-260 px) with each model's own normalisation. Features are every
# block's output, averaged over space (CNNs have no CLS token).
#
# Are the OOD sets out of distribution for these models? ImageNet-O holds images that ImageNet
# classifiers label wrongly and confidently. Our sets have no ImageNet labels, but the three
# classifiers' mean top-1 softmax **confidence** and prediction **entropy** (nats; uniform over
# 1000 classes: 6.9) can be measured (the table after the models').

# %% tags=["hide-input"]
FULL = scale == "full"
rep.check_full_scale(FULL, vit_models)  # before any work
timer = StageTimer()
glue_values(rep.shown_values(
    real_input=real_input, real_n=real_n, real_perm=real_perm, topk=topk, alpha=alpha,
    agree_ks=agree_ks, real_agree_layers=real_agree_layers, real_agree_perm=real_agree_perm,
    n_agree=n_agree, n_perm_agree=n_perm_agree))
with timer.stage("real: images"):
    real_sets = ri.make_image_sets(real_n, real_input, seed=eval_seed)
with timer.stage("real: features"):
    real_feats, real_logits = ri.pretrained_features(real_sets, real_models, input_size=real_input,
                                                     workers=workers)
rep.model_table(real_models)

# %% tags=["hide-input"]
conf = ri.confidence_table(real_logits)
glue_values(rep.confidence_values(conf, real_sets)[1])
conf.pivot_table(index="image_set", columns="model", values=["confidence", "entropy"]).round(2)

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Top-1 softmax confidence (left) and prediction entropy in nats (right) of the three EfficientNet-Lite classifiers on each image set; bars are the mean over images, one colour per classifier.", "name": "fig-prh_ood-real-confidence"}}
show(ri.plot_confidence(conf, list(real_sets), PALETTE))

# %% [markdown]
# Mean top-1 confidence is {glue:text}`conf_photos:.2f` on the photos (entropy
# {glue:text}`ent_photos:.2f`) and {glue:text}`conf_fashion:.2f`, {glue:text}`conf_abstract:.2f`
# and {glue:text}`conf_shapes:.2f` on Fashion-MNIST, abstract art and shapes
# ({numref}`fig-prh_ood-real-confidence`): {glue:text}`ood_measured`.
#
# ### Vision-vision alignment of the real models
#
# Each model pair gets mutual kNN at k = {glue:text}`topk_shown`, the max over layer pairs, and a
# **corrected** score (0 at chance, 1 identical neighbourhoods) against a permutation null of that
# max ({glue:text}`real_perm_shown` shuffles). On photo and abstract crops each image's neighbours
# from its own picture are **excluded** on both sides (plain scores shown too); a **pixel
# baseline** (images averaged to 24 x 24) is one more model. The claim is read from **trained minus
# random-init** within architecture pairs, with intervals over models (pairs share models), wide
# with five.

# %% tags=["hide-input"]
with timer.stage("real: alignment"):
    real_tables = rep.real_alignment(real_sets, real_feats, topk, real_perm)
headline_view = rep.headline_views(real_sets)
real_key = ri.summarise(real_tables, n_boot=n_boot)
glue_values(rep.real_alignment_values(real_key, headline_view))
real_key["mean"].unstack("quantity").round(3)

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Chance-corrected mutual-kNN alignment (layer-pair max) of the real pretrained models on each image set: trained pairs, their random-init controls, and each model against pixels; right, trained minus random-init within architecture pairs. Error bars: 95% bootstrap over models. Photos and abstract crops: same-picture neighbours excluded.", "name": "fig-prh_ood-real-alignment"}}
show(ri.plot_alignment(real_key, headline_view, PALETTE, NULL_COLOR))

# %% [markdown]
# On the photos trained pairs score {glue:text}`rv_photos:.3f` (plain:
# {glue:text}`rv_photos_plain:.3f`) and their random-init controls {glue:text}`rv_init_photos:.3f`,
# {glue:text}`real_init_chance` (architecture and pixels alone): read the difference
# ({numref}`fig-prh_ood-real-alignment`). Per architecture pair (interactive matrix over image
# sets, and table), pairs with the edge detector gain {glue:text}`rv_diff_hed:+.3f` on average,
# pairs of ImageNet models {glue:text}`rv_diff_nohed:+.3f`: {glue:text}`hed_sentence`. Last table:
# the picked layers' mean depth (0 first block, 1 last).

# %% tags=["hide-input"]
diff_wide = rep.diff_by_pair(real_tables, headline_view)
glue_values(rep.objective_values(diff_wide, "hed_vgg16"))
interactive.show(rep.pair_slider_figure(diff_wide, real_models), "fig-prh_ood-real-interactive")
display(diff_wide.round(3))
rep.picked_depth(real_tables).round(2)

# %% [markdown]
# ### The language side: captions of Fashion-MNIST and of the shapes world
#
# Each model is scored against the two sentence encoders (layer-pair max, mean over encoders).
# Fashion-MNIST's one caption per class ("a photo of a sneaker.") ties each image with a tenth of
# the set: the null keeps the ties (0 is still chance) but the ceiling is below 1.

# %% tags=["hide-input"]
with timer.stage("real: language"):
    vl_real = rep.caption_alignment(real_sets, real_feats, TEXT_ENCODERS, topk, real_perm)
vl_by_model, vl_diff, vl_values = rep.caption_gain(vl_real, real_models, n_boot)
glue_values(vl_values)
vl_by_model.round(3)

# %% [markdown]
# Trained minus random-init alignment to the sentence encoders (mean over the five
# architectures, 95% bootstrap over them) is {glue:text}`vl_real_diff_fashion` on Fashion-MNIST
# and {glue:text}`vl_real_diff_shapes` on the shapes world's (all distinct) captions.
#
# ### Do the metrics agree on the real models?
#
# The blog Spearman-correlated **metric configurations** (mutual kNN and **CKNNA**, CKA restricted
# to mutual neighbours, at k = {glue:text}`agree_ks_shown`; here also unbiased CKA, CKNNA's large-k
# limit) over pairs of pretrained models; we do so under two protocols, **blog** (last layer,
# L2-normalised, no clamp, no layer search) and **PRH** (clamp, then the max over
# {glue:text}`real_agree_layers_shown` evenly spaced blocks per model), raw and null-corrected.
# Metrics on the same images agree partly by chance, so the mean agreement gets its own **null**
# (all pairs scored on one shuffle, {glue:text}`real_agree_perm_shown` shuffles) and an interval
# over **models**. **Threshold, fixed before the numbers:** {glue:text}`agree_n_tests` tests (sets
# x protocols x raw/corrected), Bonferroni at family-wise {glue:text}`alpha_shown`: p <=
# {glue:text}`agree_threshold:.4f` passes; {glue:md}`agree_floor_sentence`

# %% tags=["hide-input"]
configs = rep.agreement_configs(agree_ks)
agree_sets = [s for s in real_agree_sets if s in real_sets]
n_tests, threshold = rep.agreement_threshold(alpha, agree_sets)
with timer.stage("real: metric agreement"):
    real_agree, real_agree_rows = rep.real_agreement(real_feats, real_models, agree_sets, configs,
                                                     real_agree_perm, real_agree_layers, n_boot,
                                                     threshold)
ragree_values, ragree_texts = rep.real_agreement_glue(real_agree_rows, agree_sets,
                                                      real_agree_perm, threshold, n_tests)
glue_values(ragree_values)
glue_texts(ragree_texts)
rep.agreement_view(real_agree_rows, real_agree_perm).round(3)

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Spearman correlation between metric configurations over the pairs of pretrained models, per image set (rows) and protocol and score (columns: blog raw, blog corrected, PRH raw, PRH corrected).", "name": "fig-prh_ood-real-agreement"}}
show(rep.plot_real_agreement(real_agree, agree_sets))

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Mean agreement between configurations on the real models, per protocol and score; bars: observed, with 95% bootstrap over models; thick grey ticks: 95th percentile of the permutation null of the same mean. One colour per image set.", "name": "fig-prh_ood-real-agreement-means"}}
show(rep.plot_agreement_means(real_agree_rows, PALETTE, NULL_COLOR))

# %% [markdown]
# Under the blog's protocol the mean agreement is {glue:md}`ragree_blog_vs_null`
# ({numref}`fig-prh_ood-real-agreement`, {numref}`fig-prh_ood-real-agreement-means`). Chance
# agreement is far from zero, as every configuration sees the same images, so a heatmap without
# its null (as the blog's) overstates agreement. In all, {glue:md}`ragree_headline`.
#
# ## A world with known structure
#
# The controlled experiment: small models trained from scratch, known factors and OOD by
# construction. Each image is one coloured shape on a textured background, generated by seven
# factors (shape, colour, size, row, column, background colour, texture) and captioned from them.
# The **OOD split** mimics ImageNet-O {cite:p}`hendrycks2021natural` in three equal thirds: (shape,
# colour) pairs unseen in training, novel shapes (star, ring, cross) and novel textures (dots,
# waves). At `full` scale the analysis runs on PRH's data instead: WIT images and captions in
# distribution, ImageNet-O with "a photo of a <label>" captions OOD (`helpers.prh.sources`).

# %% tags=["hide-input"]
world = rep.make_world(FULL, n_eval, eval_seed, id_source, ood_source)
world["ood"].factors["subset"].value_counts()

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Samples of the shapes world. Top row: in distribution. Rows 2-4: the three kinds of OOD image (held-out shape-colour pairs, novel shapes, novel textures). Titles are the start of each caption.", "name": "fig-prh_ood-world"}}
show(rep.plot_world(world, FULL))

# %% [markdown]
# Every OOD image still has a true caption ({numref}`fig-prh_ood-world`), so the language side
# can describe what the vision side has never seen.
#
# ## The model zoo
#
# A timm ViT, a timm ResNet and an MLP train from scratch under four objectives: supervised
# classification of the seven factors, reconstruction (autoencoder), SimCLR-style contrast of two
# augmented views, and CLIP-style caption contrast against frozen all-MiniLM-L6-v2 embeddings;
# {glue:text}`zoo_steps` steps, batch {glue:text}`zoo_batch`, one seed, cached. Step 0 is each
# model's **random-init control**. At `full` scale the zoo is PRH's pretrained ViTs (step 1), the
# first `n_init_controls` with a random-init copy (step 0). Do ours fail OOD, as ImageNet
# classifiers fail on ImageNet-O? The second table gives their factor heads' accuracy.

# %% tags=["hide-input"]
with timer.stage("shapes: zoo"):
    zoo_config = zoo_lib.ZooConfig(seeds=(0,)) if FULL else zoo_lib.ZooConfig.for_scale(scale)
    zoo = (ps.pretrained_members(vit_models, n_init_controls) if FULL
           else zoo_lib.get_zoo(zoo_config, progress=True, workers=workers))
glue_values(dict(zoo_steps=zoo_config.total_steps, zoo_batch=zoo_config.batch_size))
print(f"{len(zoo)} models, checkpoints at steps {zoo[0].steps}")
rep.zoo_table(zoo)

# %% tags=["hide-input"]
acc_table = rep.accuracy_table([] if FULL else zoo, world)  # full: no factor labels
acc_summary, acc_values = rep.accuracy_summary(acc_table)
glue_values(acc_values)
acc_table.groupby(["arch", "subset"])[["shape", "all_factors"]].mean().unstack(1).round(2)

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Accuracy of the supervised models' own heads, averaged over architectures, on in-distribution images and on each OOD kind. Novel shapes and textures have no correct class, so their shape and texture accuracy is zero by construction.", "name": "fig-prh_ood-accuracy"}}
show(rep.plot_accuracy(acc_summary, PALETTE))

# %% [markdown]
# They name the shape with accuracy {glue:text}`acc_id_shape:.2f` in distribution and
# {glue:text}`acc_combo_shape:.2f` on held-out shape-colour pairs, and must be wrong on novel
# shapes and textures ({numref}`fig-prh_ood-accuracy`).
#
# ## Features
#
# Vision: every layer of every checkpoint on both splits (ViT blocks at the CLS token, as in PRH;
# the ResNet's stem and stages averaged over space; the MLP's hidden layers). Language: every
# hidden state of the two sentence encoders, averaged over tokens, for the true captions. PRH's
# preparation (`alignment.prepare`) clamps each layer at the 0.95 quantile of |x| and
# L2-normalises each row; the blog skipped the clamp.

# %% tags=["hide-input"]
with timer.stage("shapes: features"):
    vision, n_params, prepared_lang = rep.shapes_features(
        zoo, world, language_models, full=FULL, n=n_eval, seed=eval_seed,
        sources={"id": id_source, "ood": ood_source}, batch_size=batch_size)
prepared = rep.prepare_vision(vision)
final = {m.name: m.steps[-1] for m in zoo}
members = {m.name: m for m in zoo}
{lm: len(prepared_lang["id"][lm]) for lm in language_models}

# %% [markdown]
# ## Vision-vision alignment, in distribution and OOD
#
# Mutual kNN at k = {glue:text}`topk_shown` (the mean share of each image's k nearest neighbours
# that two models have in common; see the {doc}`primer`), max over layer pairs, corrected as
# above: (observed - null mean) / (1 - null mean).

# %% tags=["hide-input"]
vv_models = {**final, **{n + rep.INIT: 0 for n in final if 0 in members[n].steps}}
with timer.stage("shapes: vision-vision"):
    vv_all = rep.vv_scores(prepared, vv_models, topk, n_perm)
vv_summary = rep.summarise_vv(vv_all, n_boot)
glue_values(rep.vv_values(vv_summary))
vv_summary.round(3)

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Chance-corrected mutual-kNN alignment (layer-pair max, permutation-null corrected) between every pair of trained models and random-init controls, in distribution (left) and OOD (right). 0 is chance.", "name": "fig-prh_ood-vv-matrix"}}
show(rep.plot_vv_matrix(vv_all, list(vv_models)))

# %% [markdown]
# Trained pairs score {glue:text}`vv_id:.3f` in distribution and {glue:text}`vv_ood:.3f` OOD
# ({numref}`fig-prh_ood-vv-matrix`), a paired change of {glue:text}`vv_gap:+.3f`
# {glue:text}`vv_gap_ci`; random-init pairs (last rows) score {glue:text}`vv_rand_id:.3f` and
# {glue:text}`vv_rand_ood:.3f`, {glue:text}`zoo_init_chance`. Trained minus random-init OOD,
# over zoo members, is {glue:text}`vv_above_init`: {glue:text}`vv_verdict`. Below: pairs that do
# and do not share an objective, then the chosen layer's depth (fraction of layers, 1 = last).

# %% tags=["hide-input"]
display(rep.objective_pairs(vv_all, {n: m.objective for n, m in members.items()}).round(3))
rep.layer_depth(vv_all, {n: len(vision["id"][(n, final[n])]) for n in final},
                {n: m.arch for n, m in members.items()}).round(2)

# %% [markdown]
# ## Vision-language alignment against competence
#
# PRH plots alignment to language models against competence. Here **competence** is the mean
# accuracy over the seven factors of a two-fold ridge probe on the last layer (in-distribution
# images); alignment is corrected mutual kNN (layer-pair max) to each text encoder, averaged. A
# pooled correlation mostly says which architecture aligns more, and random-init checkpoints make
# any trend look strong, so we read the **partial Spearman correlation on architecture** (ranks
# centred within architecture) over trained checkpoints, with a 95% interval resampling whole
# models within architecture. At `full` scale competence is a proxy, log10 of the parameter count
# (larger models of a family are better in PRH; random-init copies get none).

# %% tags=["hide-input"]
comp = rep.competence_table(zoo, vision["id"], world["id"], n_params)
with timer.stage("shapes: vision-language"):
    vl_mean = rep.language_alignment(prepared, prepared_lang, comp, topk, n_perm)
comp_corr = rep.competence_correlations(vl_mean, n_boot)
glue_values(rep.competence_values(comp_corr, vl_mean, comp, final))
comp_corr.round(3)

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Alignment to the two sentence encoders (mutual kNN, layer-pair max, chance-corrected, mean over encoders) against competence (linear-probe accuracy over the seven factors), for every checkpoint of every model, in distribution (left) and OOD (right). Colour: objective; marker: architecture; grey: step 0 (random init). Lines join the checkpoints of one model. Titles: partial Spearman on architecture, step 0 excluded.", "name": "fig-prh_ood-competence"}}
show(rep.plot_competence(vl_mean, PALETTE, NULL_COLOR, rep.competence_titles(comp_corr),
                         rep.competence_xlabel(FULL)))

# %% [markdown]
# Trained checkpoints span competence {glue:text}`comp_min:.2f` to {glue:text}`comp_max:.2f`;
# within architecture {glue:text}`comp_verdict` ({numref}`fig-prh_ood-competence`; pooled
# Spearman, mixing architectures: {glue:text}`comp_rho_id:.2f` in distribution,
# {glue:text}`comp_rho_ood:.2f` OOD). Random-init checkpoints (grey) average
# {glue:text}`vl_init_id:.3f` against {glue:text}`vl_final_id:.3f` for final ones in distribution
# ({glue:text}`vl_init_ood:.3f` and {glue:text}`vl_final_ood:.3f` OOD), a rise of
# {glue:text}`vl_rise`. OOD, competence is a property of the model measured in distribution,
# alignment one measured on unseen images: no classifier needs to be right there.
#
# ## Do the metrics agree on the shapes world?
#
# The same configurations and protocols over the trained zoo models (one per architecture and
# objective) on the first {glue:text}`n_agree_shown` images; PRH's protocol searches all of the
# zoo's few layers. With {glue:text}`n_perm_agree_shown` shuffles per correction these means are
# descriptive (the tests are the real models').

# %% tags=["hide-input"]
with timer.stage("shapes: metric agreement"):
    tables, agree_rows, corr = rep.shapes_agreement(vision, final, configs, n_agree, n_perm_agree,
                                                    n_boot)
agree_summary, agree_values = rep.shapes_agreement_values(agree_rows)
glue_values(agree_values)
agree_rows[["mean", "ci_low", "ci_high", "null_mean", "n_pairs"]].round(3)

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Spearman correlation between metric configurations over pairs of the zoo's trained models, under PRH's protocol (clamp, layer-pair max). Rows: in distribution, OOD. Columns: raw scores, chance-corrected scores.", "name": "fig-prh_ood-agreement"}}
show(rep.plot_shapes_agreement(corr))

# %% tags=["hide-input"]
lone = rep.lone_table(corr)
glue_values(rep.lone_values(lone))
lone.round(2)

# %% [markdown]
# Above: each configuration's mean correlation with the others (PRH protocol, corrected scores).
# Least like the rest: {glue:text}`least_agree`; most typical: {glue:text}`most_agree` (mean over
# splits; {numref}`fig-prh_ood-agreement`). The mean correlation between configurations is
# {glue:text}`agree_blog_id:.2f` in distribution and {glue:text}`agree_blog_ood:.2f` OOD under the
# blog's protocol, {glue:text}`agree_corr_id:.2f` and {glue:text}`agree_corr_ood:.2f` under PRH's
# with chance correction: a change of {glue:text}`agree_delta`, {glue:text}`protocol_verdict`.
# Across splits, {glue:text}`agree_split_verdict` ({numref}`fig-prh_ood-agreement-summary`). The
# protocol also moves the scores themselves (the table after the figure: mean raw and corrected
# mutual kNN at the smallest k): metrics and k carry different chance levels, the layer-pair max
# lifts them, and a null of the same statistic removes both. (The blog also fed CLIP models
# ImageNet normalisation; our `full` loaders keep each model's own.)

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Shapes world: mean off-diagonal Spearman correlation between metric configurations, by protocol (blog: last layer, no clamp, no layer search; PRH: clamp and layer-pair max) and by score (raw or chance-corrected), in distribution and OOD; 95% bootstrap over models, thick grey ticks the 95th percentile of the (few-draw) null.", "name": "fig-prh_ood-agreement-summary"}}
show(rep.plot_agreement_means(agree_rows, PALETTE, NULL_COLOR))

# %% tags=["hide-input"]
rep.protocol_scores(tables, ma.config_name("mutual_knn", agree_ks[0])).round(3)

# %% [markdown]
# ## Verdicts
#
# The shapes world's two differences, in distribution to OOD (paired by model pair) and trained
# minus random-init, with 95% bootstraps over zoo members, then the closing table. Interval rows:
# **replicated** when trained minus control lies above 0, **not replicated** below, **undecided**
# when it straddles 0. Agreement rows: **replicated** when p passes
# {glue:text}`agree_threshold:.4f`, **not replicated** when the interval's top lies below the
# null's 95th percentile, else **undecided**. Of the {glue:text}`n_claims` rows, the
# {glue:text}`n_interval_claims` interval rows are read at 95% uncorrected (about
# {glue:text}`expected_false:.2f` could pass by chance).

# %% tags=["hide-input"]
gaps = rep.shapes_gaps(vv_all, n_boot)
glue_values(rep.closing_values(gaps, comp_corr, agree_summary, vl_mean, final))
display(rep.gaps_table(gaps))
claims, claim_values = rep.verdict_claims(real_key, headline_view, vl_diff, gaps, comp_corr,
                                          real_agree_rows, threshold, n_tests, real_agree_perm)
glue_values(claim_values)
verdict_table(claims)

# %% [markdown]
# ## Conclusion
#
# Across objectives {glue:text}`hed_sentence`, which bears on PRH's claim that different objectives
# converge; the shapes world tests the OOD gap and the within-architecture trend.
#
# **Open.** The real models are five ImageNet-era CNNs (no self-supervised or language-supervised
# vision model ships offline) at {glue:text}`real_input_shown` px, with wide intervals. The shapes
# world is small, its models tiny ({glue:text}`zoo_steps` steps); OOD there means new combinations,
# shapes and textures, not new domains. The `full` scale (PRH's 17 ViTs, WIT captions, ImageNet-O
# and PRH's language models) needs a GPU and network access, so it has run only on local fixtures
# (two tiny ViTs, an image folder, a tiny text model).
#
# Stage times (wall, and CPU seconds of this kernel and its workers, one torch thread each: what a
# quiet machine would spend):

# %% tags=["hide-input"]
print(f"chapter ran in {time.time() - T0:.0f} s at scale {scale!r}")
timer.table()
