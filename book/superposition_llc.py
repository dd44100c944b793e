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
# # Superposition and the local learning coefficient
#
# **Question.** As inputs become less sparse, how do the solutions of the toy model of
# superposition {cite:p}`elhage2022superposition` change, and does the local learning
# coefficient (LLC) {cite:p}`lau2023quantifying` track the loss across models trained at the
# same sparsity?
#
# **Answer.** We retrain the grid of a published capstone project (`anogassis/aisf-project`,
# 6 features, 2 hidden dimensions, binary inputs) from its two starts, a random 4-gon and a
# 6-gon, with {glue:text}`n_seeds_used` seeds per setting. Our SGLD estimator, calibrated on
# seeds other than those it is judged on, overestimates the exact hexagon of Chen et al.
# {cite:p}`chen2023dynamical` by {glue:md}`bias6_md` and the pentagon by {glue:md}`bias5_md`.
# The reference's "worse on average, better best" for the 4-gon start {glue:md}`start_verdict_md`.
# Its "zero correlation between loss and LLC" within a sparsity {glue:md}`zero_r_verdict_md`.
# The closing table lists every claim with its number and verdict.

# %% tags=["hide-input"]
import numpy as np
import pandas as pd
import torch
from myst_nb import glue

from helpers import interactive
from helpers.cache import cached
from helpers.chapter import StageTimer, format_interval, glue_text, glue_texts, verdict_table
from helpers.plotting import show, use_style
from helpers.tms import analysis, basin, calibration, figures, grid as tgrid, readings
from helpers.tms import model as tms, stages, variants

use_style()
timer = StageTimer()

# %% tags=["parameters"]
# Other values: edit them here, then run all cells; or in a shell
#   python -m helpers.run superposition_llc -p n_seeds 20
scale: str = "book"  # smoke | book | full (set by helpers.run)
device: str = "cpu"  # "cpu" or "cuda"; everything below is batched tensor code
torch_threads: int = 1  # CPU threads; 1 is fastest for these tiny batched ops on a shared machine
sparsity_idx: list = [0, 1, 2, 3, 5, 7]  # of 1 - exp(-linspace(0, 5, 10)): 0 .43 .67 .81 .94 .98
n_seeds: int = 50  # seeds per sparsity and start (reference: 50)
n_seeds_early: int = 10  # of these, seeds whose LLC is also estimated at the 4 earlier checkpoints
steps: int = 10000  # full-batch SGD steps (reference: 20000)
n_log: int = 50  # log-spaced snapshots (reference: 50 -> 46 unique steps at 20000)
n_train: int = 1000  # training samples per (sparsity, seed), shared by both starts
n_test: int = 200  # test samples
lr: float = 0.005  # SGD learning rate (reference)
momentum: float = 0.9  # SGD momentum (reference)
llc_reference_steps: list = [13, 85, 526, 3243, 20000]  # reference checkpoints, x steps / 20000
llc_n: int = 5000  # fresh samples per sparsity on which SGLD runs (shared by all models there)
llc_batch: int = 500  # SGLD minibatch size
llc_chains: int = 4  # SGLD chains per model and checkpoint (reference: 5)
llc_draws: int = 300  # kept draws per chain (reference: 500)
llc_burnin: int = 300  # discarded SGLD steps before the draws
llc_localization: float = 1.0  # gamma, pull towards the trained weights
calib_n: int = 5000  # one-hot uniform samples for the calibration at the exact 6-gon / 5-gon
calib_lrs: list = [3e-5, 1e-4, 3e-4, 1e-3, 3e-3]  # step sizes swept
calib_nbetas: list = [100.0, 300.0, 1500.0, 4000.0]  # inverse temperatures swept (plus n / ln n)
calib_chains: int = 4  # chains per estimate in the sweep
calib_draws: int = 400  # draws per chain in the sweep
calib_burnin: int = 300  # burn-in per chain in the sweep
calib_select_reps: int = 2  # independent sweep estimates per setting used to choose it
calib_heldout: int = 16  # held-out estimates per polygon, at the grid's own sampler settings
calib_band: float = 0.5  # |bias| (LLC units) that still counts as calibrated
drift_tol: float = 0.15  # theory-free rule: settled chains drift less than this fraction
nonsparse_max: float = 0.85  # sparsities below this are "non-sparse" for the starts' claim
min_cell: int = 8  # fewest models in a (start, sparsity, polygon) cell for a correlation
descent_steps: int = 1000  # gradient steps that test whether lower loss is within reach
descent_tol: float = 1.0  # a model is at a minimum if descent finds less than this (LLC units)
ref_lr: float = 1e-3  # the reference project's SGLD step size
ref_n: int = 200  # the reference's fresh LLC data set size (full batch, no burn-in)
ref_chains: int = 5  # the reference's chains
ref_draws: int = 500  # the reference's draws
n_boot: int = 2000  # bootstrap resamples for every interval
anim_sparsity_idx: int = 7  # sparsity animated, for both starts (must be in sparsity_idx)
anim_seed: int = 0  # seed animated
anim_frames: int = 24  # frames per animation
anim_dpi: int = 100  # GIF resolution (pixels per inch of a 6.4 x 3.4 inch figure)
lmc_n_eval: int = 4000  # samples for the loss along interpolation paths
lmc_alphas: int = 21  # points on each path
barrier_tol: float = 0.01  # aligned barrier below this fraction of the endpoints' loss: connected
basin_pulls: list = [0.0, 0.003, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2, 0.3, 1.0]  # κ; 0: no pull
basin_pull_steps: int = 1000  # SGD steps with the pull on
basin_release_steps: int = 1000  # SGD steps after the pull is released
basin_min_distance: float = 0.1  # pairs nearer than this (WᵀW, b distance) are one solution
imp_seeds: int = 10  # seeds per (sparsity, start) pruned (reference: none)
imp_rounds: int = 4  # pruning rounds
imp_per_round: int = 2  # weights (of 12) removed per round
imp_rewind_frac: float = 0.01  # rewind point as a fraction of training
imp_tol: float = 1.1  # pruned loss within this factor of the control's counts as matching
powerlaw_alpha: float = 1.0  # feature i's frequency or importance proportional to (i + 1)^-alpha
powerlaw_seeds: int = 20  # seeds per sparsity and start in each power-law grid

# %% tags=["hide-input"]
torch.set_num_threads(torch_threads)
DEV = tgrid.resolve_device(device)
tgrid.check_parameters(sparsity_idx, anim_sparsity_idx, n_seeds, n_seeds_early)
SPARS = [float(tms.sparsities()[i]) for i in sparsity_idx]
ckpt_steps = tgrid.checkpoint_steps(llc_reference_steps, steps)
log_at = tms.log_steps(steps, n_log, extra=tuple(ckpt_steps))
grid = tgrid.make_grid(sparsity_idx, n_seeds)
TRAIN = dict(steps=steps, n_train=n_train, lr=lr, momentum=momentum, device=DEV)
SGLD = dict(localization=llc_localization, chains=llc_chains, draws=llc_draws, burnin=llc_burnin,
            batch=llc_batch, device=DEV)
for name, v in dict(n_seeds_used=n_seeds, calib_heldout=calib_heldout, min_cell=min_cell,
                    n_seeds_early=n_seeds_early, imp_seeds=imp_seeds, llc_n=llc_n,
                    powerlaw_seeds=powerlaw_seeds, basin_pull_steps=basin_pull_steps,
                    basin_release_steps=basin_release_steps).items():
    glue(name, int(v), display=False)
glue("basin_min", basin_min_distance, display=False)
print(f"{len(grid)} models, {steps} steps, {len(log_at)} snapshots, LLC checkpoints {ckpt_steps}")

# %% [markdown]
# Every interval below is a 95% bootstrap interval over independent units (SGLD runs, seeds or
# models), and every verdict's threshold is stated before its number.
#
# ## The model and its known critical points
#
# The model is $f(x) = \mathrm{ReLU}(W^\top W x + b)$, with $W$ of shape 2 × 6 and one bias per
# feature: 18 parameters. For Chen et al.'s law (one feature on, its value uniform in [0, 1]) we
# fit the best regular hexagon and pentagon by quadrature. The project notes give their learning
# coefficients as 8.5 and 7, half the Hessian rank; we check the ranks by finite differences of
# the exact gradient.

# %% tags=["hide-input"]
KNOWN = calibration.known_critical_points()
POLYGONS, THEORY, rank = KNOWN["polygons"], KNOWN["theory"], KNOWN["rank"]
NOTES = {6: 8.5, 5: 7.0}  # the project notes' values (rank / 2, minimal singularity assumed)
CP = readings.critical_point_reading(KNOWN, NOTES)
for name in ("hex_radius", "hex_bias", "n_cross"):
    glue(name, CP[name], display=False)
glue_text("rank_check", CP["rank_text"])
CP["table"].round(4)

# %% [markdown]
# Our hexagon has radius {glue:text}`hex_radius:.4f` and bias {glue:text}`hex_bias:.4f` (the
# reference project quotes 1.3205 and −0.6182 from the paper). The ranks {glue:md}`rank_check`:
# the hexagon has one flat direction (rotating the plane), the pentagon four (rotation, and the
# dead feature's two weights and bias); half the rank is our theory value. Chen et al.'s own
# table could not be read offline (the stored copies of arXiv 2310.06301 hold only its abstract
# and introduction). One cross-check: a secondary summary (emergentmind.com/papers/2310.06301)
# puts the pentagon-to-hexagon Bayesian transition near 600 samples; the leading-order crossover
# $n\,\Delta L = \Delta\lambda \ln n$ falls at n ≈ {glue:text}`n_cross:.0f`, the same order (the
# leading terms drop everything below ln n, so no closer agreement is expected).
#
# ## Calibrating the LLC estimator on seeds it is not judged on
#
# The estimator is SGLD localised at the trained weights,
# $\hat\lambda = n\beta\,(\bar L_{\text{draws}} - L(w^*))$, checked against devinterp 1.3.2 in
# `tests/tms/test_llc.py`. We sweep the step size ε and inverse temperature nβ at the two optima
# on two independent sets of chains, choose the setting closest to theory, and judge it on
# {glue:text}`calib_heldout` fresh estimates per polygon with the grid's own, shorter chains. A
# theory-free rule (devinterp's advice): at nβ = n / ln n, the smallest ε whose chains are
# finite, never negative and settled (second-half mean within 15% of the first half's).

# %% tags=["hide-input"]
with timer.stage("calibration"):
    CR = calibration.calibrate(
        POLYGONS, THEORY, n=calib_n, lrs=calib_lrs, nbetas=calib_nbetas, chains=calib_chains,
        draws=calib_draws, burnin=calib_burnin, select_reps=calib_select_reps,
        heldout=calib_heldout, grid_chains=llc_chains, grid_draws=llc_draws,
        grid_burnin=llc_burnin, batch=llc_batch, localization=llc_localization,
        drift_tol=drift_tol, n_boot=n_boot, device=DEV)
LLC_LR, LLC_NBETA, bias = CR["lr"], CR["nbeta"], CR["bias"]
glue_texts({f"bias{k}_md": format_interval(*bias[k], signed=True, digits=2) for k in POLYGONS})
glue_texts({name: CR[name] for name in ("chosen_md", "free_md", "trend_md")})
glue("grid_order_frac", CR["order_frac"], display=False)
CR["wide"].round(2)

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Calibration at Chen et al.'s exact optima (one-hot uniform law). Left: the LLC estimate on the selection chains against the SGLD step size, per inverse temperature, for the hexagon (solid) and pentagon (dotted); dashed grey: theory. Missing points diverged. Right: running LLC per chain at the chosen setting; dashed: theory.", "name": "fig-superposition_llc-calibration"}}
show(figures.calibration_figure(CR["sel_mean"], CR["traces"], THEORY))

# %% [markdown]
# The setting closest to theory on the selection chains is {glue:md}`chosen_md`. On held-out
# chains at the grid's settings, the estimate minus theory is {glue:md}`bias6_md` for the hexagon
# and {glue:md}`bias5_md` for the pentagon (mean of {glue:text}`calib_heldout` estimates); one
# hexagon estimate exceeds one pentagon estimate in {glue:text}`grid_order_frac:.0%` of pairs.
# By comparison, {glue:md}`free_md`. Across the sweep, {glue:md}`trend_md`
# ({numref}`fig-superposition_llc-calibration`): "the" LLC is defined only up to these choices,
# and a bias that survives held-out chains is a property of the estimator at this setting.
#
# ## Training the grid
#
# All models train at once (full-batch SGD with momentum, hand-written gradients tested against
# `torch.optim.SGD`), each training set stored as counts of its at most 64 binary patterns: the
# same loss and gradient at a 25th of the cost. Both starts with the same seed see the same data.

# %% tags=["hide-input"]
with timer.stage("training"):
    run = stages.cached_training(grid, log_at=log_at, n_test=n_test, **TRAIN)
X_TRAIN = tgrid.grid_data(grid, n_train, 1)  # the training sets again (cheap)
grid = tgrid.annotate(grid, run.W[:, -1], run.b[:, -1], run.train_loss[:, -1])
ANIM_S = SPARS[sparsity_idx.index(anim_sparsity_idx)]
with timer.stage("animations"):
    figures.write_animations(run, grid, anim_sparsity_idx, anim_seed, ANIM_S,
                             frames=anim_frames, dpi=anim_dpi)
glue("anim_S", ANIM_S, display=False)
analysis.polygon_table(grid).round(2)

# %% [markdown]
# ## How the solutions change with sparsity
#
# {numref}`fig-superposition_llc-anim-4` and {numref}`fig-superposition_llc-anim-6` follow one
# seed from each start at sparsity {glue:text}`anim_S:.3f`.
#
# ```{figure} superposition_llc-anim-4-gon.gif
# :name: fig-superposition_llc-anim-4
# :alt: Animation of one model trained from the 4-gon start
# :loading: lazy
# :width: 100%
#
# Training from the 4-gon start (one seed). Left: W's columns (arrows) and their convex hull
# (dashed); top right: |bias| (green positive, red negative) and column norm (black) per
# feature; bottom right: train loss.
# ```
#
# ```{figure} superposition_llc-anim-6-gon.gif
# :name: fig-superposition_llc-anim-6
# :alt: Animation of one model trained from the 6-gon start
# :loading: lazy
# :width: 100%
#
# The same for the 6-gon start, same seed and data.
# ```
#
# The table above counts corners over all seeds and, as polysemanticity, represented features
# per hidden dimension, $n_{\text{rep}} / \sum_i D_i$ with Elhage et al.'s feature dimensionality
# $D_i$: 1 when each feature has its own direction, $k/2$ on a regular $k$-gon.

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Final polygon types by sparsity and start. A label k counts the features on the convex hull of W's columns; each + or − marks a feature off the hull, by the sign of its bias.", "name": "fig-superposition_llc-kgons"}}
show(figures.kgon_counts_figure(grid, tms.INITS))
glue_text("fpd_md", readings.features_per_dim_text(grid))

# %% [markdown]
# Averaged over both starts, features per dimension range {glue:md}`fpd_md`
# ({numref}`fig-superposition_llc-kgons`): sparse features rarely co-occur, so more share the plane.
#
# ## "Worse on average, better best" for the 4-gon start
#
# The reference found the 4-gon start worse on average but with a better best seed. At each
# non-sparse setting (S < 0.85) it holds when the 4-gon minus 6-gon mean-loss difference has an
# interval above zero and the best-seed difference one below (seeds resampled jointly).

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Final train loss, 4-gon start minus 6-gon start, per sparsity: the mean over seeds (left) and the best seed (right), with 95% bootstrap intervals over seeds. The reference's claim is left above zero and right below zero.", "name": "fig-superposition_llc-starts"}}
contrast = analysis.start_contrast(grid, n_boot)
SR = readings.start_reading(contrast, nonsparse_max)
glue_text("start_verdict_md", SR["text"])
show(figures.start_contrast_figure(contrast))

# %% tags=["hide-input"]
contrast.round(4)

# %% [markdown]
# The claim {glue:md}`start_verdict_md` ({numref}`fig-superposition_llc-starts`). The interval on
# a best-of-{glue:text}`n_seeds_used` difference is wide: a minimum over seeds moves with the one
# or two seeds that found the better polygon.
#
# ## LLC against loss
#
# The LLC of every final model, and of the first {glue:text}`n_seeds_early` seeds at four earlier
# checkpoints, on {glue:text}`llc_n` fresh samples per sparsity, paired with the train loss at
# the same step (the reference takes the next logged step's; the last checkpoint has none).

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Train loss against estimated LLC at five checkpoints (columns) for the first seeds (see text), 4-gon start (top) and 6-gon start (bottom), coloured by sparsity. The LLC axis is linear between −10 and 10 and logarithmic beyond; left of the grey line the sampler found lower loss nearby.", "name": "fig-superposition_llc-scatter"}}
LKEY = dict(v=3, grid=grid.values[:, :4].tolist(), steps=steps, log=log_at, n=n_train,
            lr=float(LLC_LR), nb=float(LLC_NBETA), g=llc_localization, c=llc_chains, d=llc_draws,
            bi=llc_burnin, bs=llc_batch, nl=llc_n, lrt=lr, mom=momentum)
LLC_AT = dict(lr=LLC_LR, nbeta=LLC_NBETA, compress=True, on_divergence="nan", **SGLD)
with timer.stage("LLC grid"):
    final, long = tgrid.llc_tables(run, grid, X_TRAIN, ckpt_steps, n_early=n_seeds_early,
                                   n=llc_n, key=LKEY, **LLC_AT)
show(figures.scatter_figure(long, ckpt_steps, SPARS, tms.INITS))

# %% [markdown]
# A negative LLC ({numref}`fig-superposition_llc-scatter`) means the sampler found lower loss
# nearby. Two checks that do not use the LLC ask whether a final model sits at a minimum of the
# sampler's loss: gradient descent on the SGLD data (more than one LLC unit, nβ × loss, below?)
# and the Hessian's smallest eigenvalue (a saddle?). A non-positive LLC at a model passing both is
# a sampler failure, not evidence against a minimum: we re-estimate it with four times the chains
# and leave it out below. At models that pass, half the Hessian rank is a known answer here too.

# %% tags=["hide-input"]
with timer.stage("minimum checks"):
    final, redo = tgrid.check_final(final, run, grid, llc_n, descent_steps=descent_steps,
                                    descent_tol=descent_tol, llc_kwargs=LLC_AT)
glue_text("nonpos_md", readings.nonpositive_text(final, redo))
at_min = final[final.at_min & (final.llc > 0)]
known, bin_bias = readings.known_case(at_min, n_boot)
glue_text("bin_bias_md", format_interval(*bin_bias, signed=True, digits=2))
glue_text("bin_vs_cal", readings.offset_text(bin_bias, bias[6]))
glue("n_at_min", len(at_min), display=False)
known.round(2)

# %% [markdown]
# {glue:md}`nonpos_md`. At the {glue:text}`n_at_min` models at a minimum with a positive LLC,
# the estimate minus half the Hessian rank of the binary-law loss is {glue:md}`bin_bias_md`
# (mean over models; per polygon in the table), {glue:md}`bin_vs_cal`.
#
# ## "Zero correlation between loss and LLC within a sparsity"
#
# The reference saw no loss-LLC correlation within a sparsity from the 6-gon start. Polygons
# differ in both, so we correlate within a start, sparsity and final polygon, over models at a
# minimum, in cells of at least {glue:text}`min_cell`: Spearman's ρ (robust to outliers) and
# Pearson's r. Under zero correlation about 5% of cells exclude zero by chance; the claim fails
# when more do than the 95th percentile of that binomial count.

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Within-cell correlation of final loss and LLC over models at a minimum, per start, sparsity and final polygon (cells with enough models, see text): Spearman's ρ (filled) and Pearson's r (open) with 95% bootstrap intervals over models.", "name": "fig-superposition_llc-corr"}}
corr = analysis.correlations_by_type(at_min, min_cell, n_boot)
ZR = readings.zero_correlation_reading(corr, tms.INITS)
glue_texts(dict(zero_r_verdict_md=ZR["text"], zero_detail_md=ZR["detail"]))
show(figures.correlation_figure(corr, tms.INITS))

# %% tags=["hide-input"]
corr.round(2)

# %% [markdown]
# {glue:md}`zero_detail_md` ({numref}`fig-superposition_llc-corr`). The reference's claim
# {glue:md}`zero_r_verdict_md`. Below, every model's final loss and LLC: the slider sets the
# sparsity, and hovering a point names its start, seed and polygon.

# %% tags=["hide-input"]
interactive.show(figures.llc_slider_figure(final, tms.INITS), "fig-superposition_llc-interactive")

# %% [markdown]
# The reference estimated with ε = 10⁻³, nβ = 300 / ln 300, 200 fresh samples per model, full
# batch, no burn-in. Rerun at the last checkpoint: if its chain noise swamps the between-seed
# spread, its "zero" was estimator noise.

# %% tags=["hide-input"]
with timer.stage("LLC, reference protocol"):
    R = stages.cached_reference_llc(run, grid, steps=steps, n_train=n_train, train_lr=lr,
                                    lr=ref_lr, n=ref_n, chains=ref_chains, draws=ref_draws,
                                    device=DEV)
ref = final.assign(llc=R["mean"].numpy(), chain_var=R["var"].numpy())
glue_text("ref_md", readings.chain_noise_text(ref, min_cell, ref_chains))

# %% [markdown]
# With the reference's protocol, {glue:md}`ref_md`.
#
# ## Are the two starts' solutions linearly connected?
#
# The symmetries are an orthogonal map of the hidden plane ($W \to RW$ keeps $W^\top W$) and a
# relabelling of the features (W's columns and b together). As in re-basin
# {cite:p}`ainsworth2023gitrebasin`, we align each 6-gon-start model onto the 4-gon-start one
# with the same data and seed (720 relabellings, each with its Procrustes rotation or reflection)
# and measure the straight-path loss barrier over the endpoints' mean loss; the control aligns
# two seeds of one start. A pair is connected when its aligned barrier is below 1% of that loss.

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Loss barrier on the straight path between two trained models, before (grey) and after (colour: same or different final polygon) aligning the symmetries, over the endpoints' mean loss, by sparsity. Left: 4-gon-start model against the 6-gon-start model with the same data and seed. Right: control, two seeds of one start.", "name": "fig-superposition_llc-lmc"}}
with timer.stage("mode connectivity"):
    lmc = tgrid.lmc_table(grid, run.W[:, -1], run.b[:, -1], lmc_n_eval, lmc_alphas)
LM = readings.lmc_reading(lmc, n_boot, barrier_tol)
glue_texts({f"bar_{n}_md": format_interval(*bar, digits=3) for n, bar in LM["bar"].items()})
glue_text("lmc_md", LM["text"])
show(figures.lmc_figure(LM["cross"], LM["ctrl"], SPARS,
                        ylabel="barrier / endpoints' loss + 10⁻⁶"))

# %% tags=["hide-input"]
analysis.barrier_summary(lmc, n_boot).round(3)

# %% [markdown]
# After alignment the median barrier is {glue:md}`bar_cross_md` of the endpoints' loss across
# starts and {glue:md}`bar_ctrl_md` in the same-start control; {glue:md}`lmc_md`
# ({numref}`fig-superposition_llc-lmc`). A pair with different polygons is two solutions, not two
# relabellings of one, so alignment alone cannot make it one solution.
#
# ## How strong a pull makes a model leave its basin?
#
# We pull each final model towards the other start's aligned solution (same data and seed),
# adding $\frac{\kappa}{2}\lVert\theta - \theta_{\text{target}}\rVert^2$ to its loss for
# {glue:text}`basin_pull_steps` steps, release it for {glue:text}`basin_release_steps`, and ask
# which solution it ends nearer, in a distance on $(W^\top W, b)$ blind to rotations. κ = 0 is the
# control (the same extra training, no pull); pairs within {glue:text}`basin_min` of each other
# are one solution and left out. The reading: the smallest κ at which half the pairs switch.

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Basin hopping. Fraction of pairs whose pulled model ends nearer the other start's aligned solution, against the pull strength κ (log axis; open squares left of the dotted line: the no-pull control), per sparsity, with 95% bootstrap intervals over pairs. Left: 4-gon-start models pulled towards the 6-gon start's solution; right: the reverse.", "name": "fig-superposition_llc-basin"}}
with timer.stage("basin hopping"):
    hop = stages.cached_basin_table(run, grid, X_TRAIN, basin_pulls, pull_steps=basin_pull_steps,
                                    release_steps=basin_release_steps,
                                    min_distance=basin_min_distance, **TRAIN)
hop_crit = basin.critical_pull(hop, n_boot)
BH = readings.basin_reading(hop_crit)
glue_texts(dict(basin_md=BH["text"], basin_ctrl_md=f"{BH['control']:.0%}",
                basin_apart_md=f"{BH['n_apart']} of {BH['n']}", basin_where_md=BH["stronger"]))
show(figures.basin_figure(basin.switch_summary(hop, n_boot), SPARS))

# %% tags=["hide-input"]
hop_crit.round(3)

# %% [markdown]
# The pull at which half the pairs switch, per sparsity and the pulled model's start:
# {glue:md}`basin_md`. Without a pull, at most {glue:md}`basin_ctrl_md` of a cell's pairs end
# nearer the other solution ({numref}`fig-superposition_llc-basin`). The two directions'
# intervals are disjoint at {glue:md}`basin_apart_md` sparsities: {glue:md}`basin_where_md`.
#
# ## Does pruning keep the polygon, and the polysemanticity?
#
# Iterative magnitude pruning with rewinding {cite:p}`frankle2019lottery` of W's 12 weights
# (biases kept; {glue:text}`imp_seeds` seeds per cell): each round removes the two smallest,
# rewinds the rest to 1% of training and retrains under the mask. The control rewinds and
# retrains as long without pruning. Pruned networks match when their loss is within 10% of the
# control's.

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Iterative magnitude pruning against rewinding without pruning. Left: fraction of models whose final polygon is the dense model's. Right: pruned over control final loss (geometric mean over models, 95% bootstrap interval).", "name": "fig-superposition_llc-imp"}}
with timer.stage("pruning"):
    P = stages.cached_pruning(run, grid, X_TRAIN, log_at=log_at, n_seeds=imp_seeds,
                              rounds=imp_rounds, per_round=imp_per_round,
                              rewind_frac=imp_rewind_frac, **TRAIN)
psum = analysis.prune_summary(tgrid.prune_table(grid, P), n_boot)
ctrl_fpd = tgrid.features_per_dimension(tms.feature_dimensionality(P["control_W"])).nanmean()
PR = readings.prune_reading(psum, 12 - imp_per_round, imp_tol, ctrl_fpd.item())
glue_texts(dict(imp_md=PR["text"], imp_fpd_md=PR["fpd_text"]))
show(figures.prune_summary_figure(psum[psum.weights < 12]))

# %% tags=["hide-input"]
psum.round(3)

# %% [markdown]
# {glue:md}`imp_md` ({numref}`fig-superposition_llc-imp`). Features per hidden dimension go
# {glue:md}`imp_fpd_md`.
#
# ## Power-law feature frequencies and importances
#
# Elhage et al. weigh features unequally. We retrain both starts ({glue:text}`powerlaw_seeds`
# seeds per setting) with feature $i$ on with probability $\propto (i+1)^{-1}$ at the same mean
# density (frequency), and with feature $i$'s squared error weighted $\propto (i+1)^{-1}$, mean 1
# (importance: training, SGLD and minimum checks). Against the uniform grid, per sparsity: the
# change in mean corners and features per dimension, and the loss-LLC correlations.

# %% tags=["hide-input"]
pgrid = tgrid.make_grid(sparsity_idx, powerlaw_seeds)
VKEY = dict(v=1, grid=pgrid.values.tolist(), steps=steps, log=log_at, n=n_train, nt=n_test,
            lr=lr, mom=momentum, nl=llc_n, ds=descent_steps, a=powerlaw_alpha,
            llc={k: LKEY[k] for k in ("lr", "nb", "g", "c", "d", "bi", "bs")})
LAWS = {"frequency": dict(alpha=powerlaw_alpha),
        "importance": dict(importance=tms.powerlaw_importance(powerlaw_alpha))}
VR = variants.compare_laws(pgrid, grid, corr, LAWS, key=VKEY, min_cell=min_cell, n_boot=n_boot,
                           timer=timer, log_at=log_at, n_test=n_test, llc_n=llc_n,
                           llc_kwargs=LLC_AT, descent_steps=descent_steps, **TRAIN)
glue_texts({f"law_{law}_md": text for law, text in VR["text"].items()})
glue_text("corner_md", readings.corner_text(
    {"the uniform law": variants.corner_share(run.W[:, -1]),
     **{f"power-law {law}": c for law, c in VR["corners"].items()}}))
VR["table"][["base", "variant", "diff", "lo", "hi"]].round(2)

# %% [markdown]
# With power-law frequencies: {glue:md}`law_frequency_md`. With power-law importances:
# {glue:md}`law_importance_md`. The first and the last feature are corners of the hull
# {glue:md}`corner_md` of models. The uniform law is the control for this count: the 4-gon
# start places the first four features on the square and the last two at zero.
#
# ## Time table and verdicts
#
# CPU seconds with one thread are what two quiet cores would take (this machine was shared); a
# stage loaded from the cache shows almost no time. Then the closing table.

# %% tags=["hide-input"]
times = timer.table()
glue("cpu_total", float(times.loc["total", "CPU s"]), display=False)
times

# %% tags=["hide-input"]
rows = readings.verdict_rows(
    theory=THEORY, notes=NOTES, rank=rank, bias=bias, bin_bias=bin_bias, band=calib_band,
    start=SR, zero=ZR, lmc=LM, basin=BH, prune=PR, laws=VR["table"], barrier_tol=barrier_tol,
    imp_tol=imp_tol)
verdict_table(rows)

# %% [markdown]
# ## What remains open
#
# - The estimator's offset is measured at two optima of one law and at the binary law's trained
#   minima, not at other critical points or sparsities.
# - Half the Hessian rank is the learning coefficient only if the flat directions are exactly
#   flat; directions flat to fourth order would raise it, and we did not test for them.
# - The basin pull is read after a fixed number of steps (a longer pull lowers the threshold), so
#   it compares the two starts with each other, not with a time-free barrier height.
# - Chen et al.'s table of k-gon learning coefficients was not readable offline; the values
#   used here are computed from Hessian ranks, not copied from the paper.
