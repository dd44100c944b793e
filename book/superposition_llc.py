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
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from myst_nb import glue
from scipy.stats import binom

from helpers import interactive, stats
from helpers.cache import cached
from helpers.chapter import StageTimer, Verdict, format_interval, glue_text, verdict_table
from helpers.plotting import show, use_style
from helpers.tms import analysis, calibration, figures, grid as tgrid, llc
from helpers.tms import model as tms

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
imp_seeds: int = 10  # seeds per (sparsity, start) pruned (reference: none)
imp_rounds: int = 4  # pruning rounds
imp_per_round: int = 2  # weights (of 12) removed per round
imp_rewind_frac: float = 0.01  # rewind point as a fraction of training
imp_tol: float = 1.1  # pruned loss within this factor of the control's counts as matching
powerlaw_alpha: float = 1.0  # feature i is on with probability proportional to (i + 1)^-alpha
powerlaw_seeds: int = 20  # seeds per sparsity and start in the power-law grid

# %% [markdown]
# Every setting lives in the cell above; to re-run with others, pass them to
# `python -m helpers.run superposition_llc -p NAME VALUE`. Below we derive the grid from them.

# %% tags=["hide-input"]
torch.set_num_threads(torch_threads)
DEV = torch.device(device)
if DEV.type == "cuda" and not torch.cuda.is_available():
    raise ValueError("device='cuda' was requested but CUDA is not available; set device='cpu'.")
if anim_sparsity_idx not in sparsity_idx or n_seeds_early > n_seeds:
    raise ValueError(f"anim_sparsity_idx ({anim_sparsity_idx}) must be in sparsity_idx "
                     f"({sparsity_idx}) and n_seeds_early ({n_seeds_early}) at most n_seeds "
                     f"({n_seeds}).")
SPARS = [float(tms.sparsities()[i]) for i in sparsity_idx]
ckpt_steps = tgrid.checkpoint_steps(llc_reference_steps, steps)
log_at = tms.log_steps(steps, n_log, extra=tuple(ckpt_steps))
grid = tgrid.make_grid(sparsity_idx, n_seeds)
M = len(grid)
SGLD = dict(localization=llc_localization, chains=llc_chains, draws=llc_draws, burnin=llc_burnin,
            batch=llc_batch, device=DEV)
for name, v in (("n_seeds_used", n_seeds), ("calib_heldout", calib_heldout),
                ("min_cell", min_cell), ("n_seeds_early", n_seeds_early), ("imp_seeds", imp_seeds),
                ("llc_n", llc_n),
                ("powerlaw_seeds", powerlaw_seeds)):
    glue(name, int(v), display=False)
print(f"{M} models, {steps} steps, {len(log_at)} snapshots, LLC checkpoints at steps {ckpt_steps}")

# %% [markdown]
# ## The model and its known critical points
#
# The model is $f(x) = \mathrm{ReLU}(W^\top W x + b)$, with $W$ of shape 2 × 6 and one bias per
# feature: 18 parameters. For Chen et al.'s law (one feature on, its value uniform in [0, 1])
# the best regular hexagon and pentagon can be computed exactly: we fit radius and bias by
# quadrature. Their learning coefficients are 8.5 and 7 in the project notes, as half the rank of
# the Hessian. Chen et al.'s own table was not available to us offline, so we check the ranks
# themselves, by finite differences of the exact gradient.

# %% tags=["hide-input"]
W6, b6, L6 = tms.fit_regular_kgon(6)
W5, b5, L5 = tms.fit_regular_kgon(5)
POLYGONS = {6: (W6, b6), 5: (W5, b5)}
NOTES = {6: 8.5, 5: 7.0}  # the project notes' values (rank / 2, minimal singularity assumed)
mu = (torch.arange(4000, dtype=torch.float64) + 0.5) / 4000
X_QUAD = (torch.eye(6, dtype=torch.float64)[:, None, :] * mu[None, :, None]).reshape(-1, 6)
H_k = tms.hessian(torch.stack([W6, W5]), torch.stack([b6, b5]), X_QUAD)
rank, min_eig, ev = tms.hessian_rank(H_k)
THEORY = {6: float(rank[0]) / 2, 5: float(rank[1]) / 2}
crit = pd.DataFrame({"radius": [W6[:, 0].norm().item(), W5[:, 0].norm().item()],
                     "bias": [b6[0].item(), b5[0].item()],
                     "loss x 6 (Chen et al.'s sum)": [6 * L6, 6 * L5],
                     "Hessian rank": rank.tolist(), "rank / 2": list(THEORY.values()),
                     "notes": list(NOTES.values())}, index=["6-gon", "5-gon"])
glue("hex_radius", float(crit.loc["6-gon", "radius"]), display=False)
glue("hex_bias", float(crit.loc["6-gon", "bias"]), display=False)
glue_text("rank_check", "agree with the notes" if THEORY == NOTES else
          f"differ from the notes ({THEORY[6]:g} and {THEORY[5]:g})")
crit.round(4)

# %% [markdown]
# Our fitted hexagon has radius {glue:text}`hex_radius:.4f` and bias {glue:text}`hex_bias:.4f`;
# the reference project quotes 1.3205 and −0.6182 from the paper. The computed ranks
# {glue:md}`rank_check`: the hexagon has one flat direction (rotating the plane), the pentagon four
# (rotation, and the dead feature's two weights and bias). Half the rank is the learning
# coefficient if nothing flatter than quadratic hides in the other directions; we use it as the
# theory value below.
#
# ## Calibrating the LLC estimator on seeds it is not judged on
#
# The estimator is SGLD localised at the trained weights,
# $\hat\lambda = n\beta\,(\bar L_{\text{draws}} - L(w^*))$; `tests/tms/test_llc.py` checks it
# against devinterp 1.3.2. We sweep the step size ε and the inverse temperature nβ at the two
# optima on two independent sets of chains, choose the setting closest to theory on those, and
# then judge it on {glue:text}`calib_heldout` fresh estimates per polygon with the grid's own,
# shorter chains. A second
# rule uses no theory at all: at nβ = n / ln n, the smallest ε whose chains are finite, never
# negative, and settled within the draws (the mean of their second half within 15% of their
# first half's), after devinterp's advice.

# %% tags=["hide-input"]
NB_FREE = round(llc.default_nbeta(calib_n), 1)  # n / ln n, the theory-free inverse temperature
NBETAS = sorted(set(calib_nbetas) | {NB_FREE})
X_CAL = tms.make_data(calib_n, None, "onehot_uniform", generator=torch.Generator().manual_seed(1))
CAL = dict(localization=llc_localization, batch=llc_batch, device=DEV)
with timer.stage("calibration sweep"):
    calib, calib_trace = cached(
        "tms_calib", dict(v=3, n=calib_n, lrs=calib_lrs, nbs=NBETAS, c=calib_chains,
                          d=calib_draws, bi=calib_burnin, bs=llc_batch, gamma=llc_localization,
                          r=calib_select_reps),
        lambda: calibration.sweep(POLYGONS, X_CAL, calib_lrs, NBETAS, chains=calib_chains,
                                  draws=calib_draws, burnin=calib_burnin,
                                  repeats=calib_select_reps, **CAL))
sel_mean = calib.groupby(["polygon", "lr", "nbeta"], as_index=False).llc.mean()
LLC_LR, LLC_NBETA, wide = calibration.choose_closest(sel_mean, THEORY)
LR_FREE = calibration.theory_free_choice(calib, NB_FREE, drift_tol)
with timer.stage("calibration, held-out"):
    def heldout(lr_: float, nb: float, seed: int) -> torch.Tensor:
        key = dict(v=1, n=calib_n, lr=lr_, nb=nb, r=calib_heldout, c=llc_chains, d=llc_draws,
                   bi=llc_burnin, bs=llc_batch, s=seed)
        return cached("tms_calib_heldout", key, lambda: calibration.repeat_estimates(
            POLYGONS, X_CAL, calib_heldout, lr=lr_, nbeta=nb, chains=llc_chains, draws=llc_draws,
            burnin=llc_burnin, seed=seed, **CAL))
    held = heldout(LLC_LR, LLC_NBETA, 12)
    held_free = heldout(LR_FREE, NB_FREE, 13) if LR_FREE is not None else None
bias = {k: calibration.bias_interval(held[i].numpy(), THEORY[k], n_boot)
        for i, k in enumerate(POLYGONS)}
for k in POLYGONS:
    glue_text(f"bias{k}_md", format_interval(*bias[k], signed=True, digits=2))
interior = (calibration.is_interior(calib_lrs, LLC_LR)
            and calibration.is_interior(NBETAS, LLC_NBETA))
glue_text("chosen_md", f"ε = {LLC_LR:g} and nβ = {LLC_NBETA:g}, "
          + ("inside the swept grid on both axes" if interior else "at an edge of the swept grid"))
free = {k: calibration.bias_interval(held_free[i].numpy(), THEORY[k], n_boot)
        if held_free is not None else (np.nan,) * 3 for i, k in enumerate(POLYGONS)}
glue_text("free_md", "no step size passes the theory-free rule" if held_free is None else
          f"the theory-free rule picks ε = {LR_FREE:g} at nβ = {NB_FREE:.0f}; there the "
          "held-out bias is " + " and ".join(
              f"{format_interval(*free[k], signed=True, digits=2)} ({k}-gon)" for k in POLYGONS))
order_frac = float((held[0][:, None] > held[1][None, :]).float().mean())
up_lr, n_lr = calibration.count_rises(sel_mean, "nbeta", "lr")
up_nb, n_nb = calibration.count_rises(sel_mean, "lr", "nbeta")
glue_text("calib_trend", f"raising ε raises the estimate in {up_lr} of {n_lr} neighbouring pairs "
          f"of settings and raising nβ in {up_nb} of {n_nb}")
glue("grid_order_frac", order_frac, display=False)
wide.round(2)

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Calibration at Chen et al.'s exact optima (one-hot uniform law). Left: the LLC estimate on the selection chains against the SGLD step size, per inverse temperature, for the hexagon (solid) and pentagon (dotted); dashed grey: theory. Missing points diverged. Right: running LLC per chain at the chosen setting; dashed: theory.", "name": "fig-superposition_llc-calibration"}}
pick = {k: calib.index[(calib.polygon == k) & (calib.lr == LLC_LR) & (calib.nbeta == LLC_NBETA)
                       & (calib.rep == 0)][0] for k in POLYGONS}
show(figures.calibration_figure(sel_mean, {k: calib_trace[i] for k, i in pick.items()}, THEORY))

# %% [markdown]
# The setting closest to theory on the selection chains is {glue:md}`chosen_md`. On held-out
# chains at the grid's settings, the estimate minus theory is {glue:md}`bias6_md` for the hexagon
# and {glue:md}`bias5_md` for the pentagon (mean over {glue:text}`calib_heldout` estimates, 95%
# bootstrap interval); one
# hexagon estimate exceeds one pentagon estimate in {glue:text}`grid_order_frac:.0%` of pairs. By
# comparison, {glue:md}`free_md`. Across the sweep, {glue:md}`calib_trend`
# ({numref}`fig-superposition_llc-calibration`): "the" LLC is defined only up to these choices,
# and a bias that survives held-out chains is a property of the estimator at this setting.
#
# ## Training the grid
#
# Every model trains at once: full-batch SGD with momentum on stacked weights, with gradients
# written out by hand (tested against `torch.optim.SGD`). Binary data with 6 features take at most
# 64 distinct values, so each training set is stored as its pattern counts: the same loss and
# gradient at a twenty-fifth of the cost. The two starts with the same seed see the same data.

# %% tags=["hide-input"]
with timer.stage("training"):
    run = tms.TrainResult(**cached(
        "tms_train", dict(v=2, grid=grid.values.tolist(), steps=steps, log=log_at, n=n_train,
                          nt=n_test, lr=lr, mom=momentum),
        lambda: tgrid.train_grid(grid, steps, log_at, n_train, n_test, lr, momentum, DEV,
                                 compress=True)))
X_TRAIN = tgrid.grid_data(grid, n_train, 1)  # the training sets again (cheap)
grid["final_loss"] = run.train_loss[:, -1].numpy()
grid["kgon"] = [tms.classify_kgon(run.W[m, -1], run.b[m, -1]) for m in range(M)]
grid["k"] = grid.kgon.str[0].astype(int)
D_final = tms.feature_dimensionality(run.W[:, -1])
grid["features_per_dim"] = tgrid.features_per_dimension(D_final).numpy()
ANIM_S = SPARS[sparsity_idx.index(anim_sparsity_idx)]
with timer.stage("animations"):
    for init in tms.INITS:
        m = grid.index[(grid.init == init) & (grid.s_idx == anim_sparsity_idx)
                       & (grid.seed == anim_seed)][0]
        fig, anim = tms.animate_run(run.steps, run.W[m], run.b[m], run.train_loss[m],
                                    frames=anim_frames,
                                    title=f"{init} start, sparsity {ANIM_S:.3f}")
        figures.write_gif(anim, f"superposition_llc-anim-{init}.gif", dpi=anim_dpi)
        plt.close(fig)
glue("anim_S", ANIM_S, display=False)
poly = grid.groupby(["sparsity", "init"]).agg(
    corners=("k", "mean"), features_per_dim=("features_per_dim", "mean"),
    polygon_types=("kgon", "nunique")).unstack("init")
poly.round(2)

# %% [markdown]
# ## How the solutions change with sparsity
#
# {numref}`fig-superposition_llc-anim-4` and {numref}`fig-superposition_llc-anim-6` follow one
# seed from each start at sparsity {glue:text}`anim_S:.3f`. The arrows are W's columns and the
# dashed line is their convex hull; the bars show each feature's |bias| (green for a positive
# bias, red for a negative one) next to its column's norm (black); the loss curve fills in.
#
# ```{figure} superposition_llc-anim-4-gon.gif
# :name: fig-superposition_llc-anim-4
# :alt: Animation of one model trained from the 4-gon start
# :loading: lazy
# :width: 100%
#
# Training from the 4-gon start (one seed). Left: W's columns and their hull; top right: |bias|
# (green positive, red negative) and column norm (black) per feature; bottom right: train loss.
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
# The table above counts corners over all seeds and a measure of polysemanticity: represented
# features per hidden dimension, $n_{\text{rep}} / \sum_i D_i$ with Elhage et al.'s feature
# dimensionality $D_i$; it is 1 when each feature has a direction to itself and $k/2$ on a regular
# $k$-gon. Sparse features rarely co-occur, so more of them can share the plane.

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Final polygon types by sparsity and start. A label k counts the features on the convex hull of W's columns; each + or − marks a feature off the hull, by the sign of its bias.", "name": "fig-superposition_llc-kgons"}}
show(figures.kgon_counts_figure(grid, tms.INITS))
fpd = grid.groupby("sparsity").features_per_dim.mean()
glue_text("fpd_md", f"from {fpd.min():.2f} (S = {fpd.idxmin():.3f}) to {fpd.max():.2f} "
          f"(S = {fpd.idxmax():.3f}) across sparsities, {fpd.iloc[-1]:.2f} at the sparsest")

# %% [markdown]
# Averaged over both starts, features per dimension range {glue:md}`fpd_md`
# ({numref}`fig-superposition_llc-kgons`).
#
# ## "Worse on average, better best" for the 4-gon start
#
# The reference found the 4-gon start worse on average but with a better best seed. We judge it
# at every non-sparse setting (S below 0.85). It holds at a setting when the 4-gon minus 6-gon
# difference of the mean loss has a 95% interval above zero and that of the best seed's loss an
# interval below zero (seeds resampled jointly for both starts, which share their data).

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Final train loss, 4-gon start minus 6-gon start, per sparsity: the mean over seeds (left) and the best seed (right), with 95% bootstrap intervals over seeds. The reference's claim is left above zero and right below zero.", "name": "fig-superposition_llc-starts"}}
contrast = analysis.start_contrast(grid, n_boot)
ns = contrast[contrast.sparsity < nonsparse_max].copy()
ns["holds"] = (ns.mean_lo > 0) & (ns.best_hi < 0)
ns["fails"] = (ns.mean_hi < 0) | (ns.best_lo > 0)
n_hold, n_fail, n_ns = int(ns.holds.sum()), int(ns.fails.sum()), len(ns)
start_v = ("replicated" if n_hold == n_ns else "changed" if n_hold else
           "not replicated" if n_fail == n_ns else "undecided") if n_ns else "undecided"
held_at = ", ".join(f"{s:.3f}" for s in ns.sparsity[ns.holds])
glue_text("start_verdict_md", f"holds at {n_hold} of {n_ns} non-sparse settings"
          + (f" (S = {held_at})" if n_hold else "") + f", so it is {start_v}")
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
# The LLC of every model at the end of training, and of the first {glue:text}`n_seeds_early`
# seeds at the four earlier checkpoints, on {glue:text}`llc_n` fresh samples per sparsity shared
# by all its models. Each LLC is paired
# with the train loss at the same step. (The reference pairs each LLC with the next logged
# step's loss; at the last checkpoint, where every verdict below is read, there is no next step.)

# %% tags=["hide-input"]
early = np.flatnonzero(grid.seed.to_numpy() < n_seeds_early)
run_early = tms.TrainResult(run.steps, run.W[early], run.b[early], run.train_loss[early],
                            run.test_loss[early])
LKEY = dict(v=3, grid=grid.values[:, :4].tolist(), steps=steps, log=log_at, n=n_train,
            lr=float(LLC_LR), nb=float(LLC_NBETA), g=llc_localization, c=llc_chains, d=llc_draws,
            bi=llc_burnin, bs=llc_batch, nl=llc_n, lrt=lr, mom=momentum)
LLC_AT = dict(lr=LLC_LR, nbeta=LLC_NBETA, compress=True, on_divergence="nan", **SGLD)
with timer.stage("LLC grid"):
    L_fin = cached("tms_llc", dict(LKEY, ck=[steps]),
                   lambda: tgrid.llc_at_checkpoints(run, grid, [steps], llc_n, **LLC_AT))
    L_early = cached("tms_llc", dict(LKEY, ck=ckpt_steps[:-1], rows=early.tolist()),
                     lambda: tgrid.llc_at_checkpoints(run, grid, ckpt_steps[:-1], llc_n,
                                                      rows=early, seed=6, **LLC_AT))
final = tgrid.checkpoint_table(grid, run, L_fin, [steps], X_TRAIN).assign(kgon=grid.kgon.values)
g_early = grid.iloc[early].reset_index(drop=True)
long_early = tgrid.checkpoint_table(g_early, run_early, L_early, ckpt_steps[:-1], X_TRAIN[early])
long = pd.concat([long_early, final[final.seed < n_seeds_early]], ignore_index=True)

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Train loss against estimated LLC at five checkpoints (columns) for the first seeds (see text), 4-gon start (top) and 6-gon start (bottom), coloured by sparsity. The LLC axis is linear between −10 and 10 and logarithmic beyond; left of the grey line the sampler found lower loss nearby.", "name": "fig-superposition_llc-scatter"}}
show(figures.scatter_figure(long, ckpt_steps, SPARS, tms.INITS))

# %% [markdown]
# A negative LLC means the sampler found lower loss near the checkpoint. Before reading the final
# LLCs we ask of every model whether it sits at a minimum of the loss the sampler sees, with two
# checks that do not use the LLC: gradient descent from the model on the SGLD data (does it find
# more than one LLC unit, nβ × loss, below?) and the Hessian's smallest eigenvalue (a saddle?).
# A non-positive LLC at a model that passes both would be a sampler failure; those we re-estimate
# with four times the chains. At the models that pass, half the Hessian rank is a known answer
# under the binary law too.

# %% tags=["hide-input"]
with timer.stage("minimum checks"):
    chk = tgrid.minimum_check(run.W[:, -1], run.b[:, -1], tgrid.llc_data(grid, llc_n), LLC_NBETA,
                              descent_steps=descent_steps, descent_tol=descent_tol)
final = pd.concat([final, chk], axis=1)
final["at_min"] = final.status == "minimum"
nonpos = final[final.llc <= 0]
odd = nonpos.index[nonpos.at_min].to_numpy()
with timer.stage("minimum checks"):
    redo = (tgrid.llc_at_checkpoints(run, grid, [steps], llc_n, rows=odd, seed=7,
                                     **{**LLC_AT, "chains": 4 * llc_chains})["mean"][:, 0].numpy()
            if len(odd) else np.array([]))
n_div = int(final.llc.isna().sum())
st = nonpos.status.value_counts()
glue_text("nonpos_md", (f"SGLD diverged at {n_div} models (left out below); " if n_div else "")
          + f"{len(nonpos)} of {M} models have a non-positive final LLC. Of these, "
          f"{st.get('descends', 0)} have lower loss within reach of gradient descent, "
          f"{st.get('saddle', 0)} sit at a saddle and {st.get('flat', 0)} on a flat region with "
          f"no curvature at all (every ReLU off), so the sampler is right about them; "
          f"{len(odd)} pass both checks, and re-estimated with four times the chains "
          f"{int((redo > 0).sum())} of those turn positive")
at_min = final[final.at_min & (final.llc > 0)]
kb = at_min.assign(bias=at_min.llc - at_min.lam_hessian).groupby("kgon").bias
known = pd.DataFrame({"n": kb.size(), "rank / 2": at_min.groupby("kgon").lam_hessian.median(),
                      "mean LLC - rank / 2": kb.mean()})
bin_bias = calibration.bias_interval(at_min.llc - at_min.lam_hessian, 0.0, n_boot)
glue_text("bin_bias_md", format_interval(*bin_bias, signed=True, digits=2))
overlap = bin_bias[1] <= bias[6][2] and bias[6][1] <= bin_bias[2]
glue_text("bin_vs_cal", "and cannot be compared with the calibration"
          if not np.isfinite(bin_bias[1]) else
          "an interval that overlaps the one-hot hexagon's, so the calibration offset carries "
          "over to the binary law" if overlap else
          "an interval apart from the one-hot hexagon's, so the offset measured at the "
          "calibration optima does not carry over to the binary law's minima; absolute LLC values "
          "below are read with this gap in mind")
glue("n_at_min", len(at_min), display=False)
known.round(2)

# %% [markdown]
# {glue:md}`nonpos_md`. A non-positive LLC at a model that passes both checks is a failure of
# the sampler at this setting, not evidence that the model is off a minimum; we leave those
# models out below. At the {glue:text}`n_at_min` models at a minimum with a positive LLC, the
# estimate minus half the Hessian rank of the binary-law loss is {glue:md}`bin_bias_md` (mean over
# models, 95% interval; per polygon in the table), {glue:md}`bin_vs_cal`.
#
# ## "Zero correlation between loss and LLC within a sparsity"
#
# The reference saw no correlation between loss and LLC within a sparsity from the 6-gon start.
# Seeds that reach different polygons differ in both, so we correlate within one start, one
# sparsity and one final polygon type, over models at a minimum only, in every cell with at
# least {glue:text}`min_cell` such models; Spearman's ρ (robust to a few outliers) and
# Pearson's r, each with a 95% bootstrap interval over models. If the correlation is zero, about
# 5% of cells exclude zero by chance; the claim fails when more cells exclude zero than the
# 95th percentile of that binomial count.

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Within-cell correlation of final loss and LLC over models at a minimum, per start, sparsity and final polygon (cells with enough models, see text): Spearman's ρ (filled) and Pearson's r (open) with 95% bootstrap intervals over models.", "name": "fig-superposition_llc-corr"}}
corr = analysis.correlations_by_type(at_min, min_cell, n_boot)
zero_rows = {}
for init in tms.INITS:
    c = corr[corr.init == init]
    sig = int(((c.spearman_lo > 0) | (c.spearman_hi < 0)).sum())
    chance = int(binom.ppf(0.95, len(c), 0.05)) if len(c) else 0
    zero_rows[init] = dict(cells=len(c), sig=sig, chance=chance, neg=int((c.spearman < 0).sum()),
                           sig_p=int(((c.pearson_lo > 0) | (c.pearson_hi < 0)).sum()),
                           median=float(c.spearman.median()) if len(c) else np.nan)
z6 = zero_rows["6-gon"]
zero_v = ("undecided" if z6["cells"] == 0 else
          "replicated" if z6["sig"] <= z6["chance"] else "not replicated")
glue_text("zero_r_verdict_md", f"is {zero_v}: from the 6-gon start, {z6['sig']} of {z6['cells']} "
          f"cells have a Spearman interval that excludes zero, against at most {z6['chance']} by "
          "chance")
glue_text("zero_detail_md", "; ".join(
    f"{i} start: {z['sig']} of {z['cells']} cells by Spearman, {z['sig_p']} by Pearson, "
    f"ρ negative in {z['neg']}, median ρ {analysis.fmt_r(z['median'])}"
    for i, z in zero_rows.items()))
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
# batch and no burn-in. Rerun at the last checkpoint, its between-seed spread can be compared
# with its own chain noise: if chain noise swamps the spread, its "zero" was estimator noise.

# %% tags=["hide-input"]
with timer.stage("LLC, reference protocol"):
    R = cached("tms_llc_ref", dict(v=3, grid=grid.values[:, :4].tolist(), steps=steps, n=n_train,
                                   lr=ref_lr, rn=ref_n, c=ref_chains, d=ref_draws, lrt=lr),
               lambda: tgrid.reference_protocol_llc(run.W[:, -1], run.b[:, -1], grid, ref_n,
                                                    lr=ref_lr, chains=ref_chains, draws=ref_draws,
                                                    device=DEV, compress=True))
ref = final.assign(llc=R["mean"].numpy(), chain_var=R["var"].numpy())
ref_cells = ref.groupby(["init", "sparsity", "kgon"]).filter(lambda d: len(d) >= min_cell)
ratio = pd.Series([d.llc.var() / (d.chain_var.mean() / ref_chains)
                   for _, d in ref_cells.groupby(["init", "sparsity", "kgon"])], dtype=float)
glue_text("ref_md", f"between-seed variance over chain-noise variance has median "
          f"{ratio.median():.1f} over {len(ratio)} cells, and is below 1 in "
          f"{int((ratio < 1).sum())}")

# %% [markdown]
# With the reference's protocol, {glue:md}`ref_md`.
#
# ## Are the two starts' solutions linearly connected?
#
# The model's symmetries are an orthogonal map of the hidden plane ($W \to RW$ keeps $W^\top W$)
# and a relabelling of the features, which moves W's columns and b together. We align each
# 6-gon-start model onto the 4-gon-start model with the same data and seed (all 720 relabellings,
# the best rotation or reflection for each by Procrustes), in the spirit of re-basin
# {cite:p}`ainsworth2023gitrebasin`, and measure the loss barrier on the straight path, divided
# by the endpoints' mean loss. The control aligns two seeds from the same start. A pair counts as
# connected when its aligned barrier is below 1% of its endpoints' loss.

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Loss barrier on the straight path between two trained models, before (grey) and after (colour: same or different final polygon) aligning the symmetries, over the endpoints' mean loss, by sparsity. Left: 4-gon-start model against the 6-gon-start model with the same data and seed. Right: control, two seeds of one start.", "name": "fig-superposition_llc-lmc"}}
with timer.stage("mode connectivity"):
    lmc = tgrid.lmc_table(grid, run.W[:, -1], run.b[:, -1], lmc_n_eval, lmc_alphas)
ok = lmc[lmc.endpoint_loss > 1e-6].copy()
ok[["unaligned", "aligned"]] = ok[["unaligned", "aligned"]].div(ok.endpoint_loss, axis=0)
cross, ctrl = ok[ok.pair == "4-gon vs 6-gon start"], ok[ok.pair != "4-gon vs 6-gon start"]
bar = {name: (float(d.aligned.median()), *stats.interval(stats.bootstrap(
    np.median, d.aligned.to_numpy(), n_boot=n_boot)))
    for name, d in (("cross", cross), ("ctrl", ctrl))}
same_frac = float(cross.same_kgon.mean())
conn = {n: float((d.aligned < barrier_tol).mean()) for n, d in (("cross", cross), ("ctrl", ctrl))}
lmc_v = ("replicated" if bar["cross"][2] < barrier_tol else
         "not replicated" if bar["cross"][1] > barrier_tol else "undecided")
for n in bar:
    glue_text(f"bar_{n}_md", format_interval(*bar[n], digits=3))
glue_text("lmc_md", f"{conn['cross']:.0%} of cross-start pairs and {conn['ctrl']:.0%} of control "
          f"pairs are connected; {same_frac:.0%} of cross-start pairs reached the same polygon "
          f"type; pairs left out for an endpoint loss below 10⁻⁶: {len(lmc) - len(ok)}")
show(figures.lmc_figure(cross, ctrl, SPARS, ylabel="barrier / endpoints' loss + 10⁻⁶"))

# %% tags=["hide-input"]
analysis.barrier_summary(lmc, n_boot).round(3)

# %% [markdown]
# After alignment the median barrier is {glue:md}`bar_cross_md` of the endpoints' loss across
# starts and {glue:md}`bar_ctrl_md` in the same-start control; {glue:md}`lmc_md`
# ({numref}`fig-superposition_llc-lmc`). A pair with different polygons is two solutions, not two
# relabellings of one, so alignment alone cannot make it one solution.
#
# ## Does pruning keep the polygon, and the polysemanticity?
#
# Iterative magnitude pruning with rewinding {cite:p}`frankle2019lottery` on the 12 weights in W
# (biases are kept), on {glue:text}`imp_seeds` seeds per cell: each round removes the two
# smallest surviving weights, rewinds the survivors to 1% of training and retrains under the
# mask. The control rewinds to the
# same step and retrains as long without pruning, so it separates pruning from rewinding. Pruned
# networks match when their loss is within 10% of the control's.

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Iterative magnitude pruning against rewinding without pruning. Left: fraction of models whose final polygon is the dense model's. Right: pruned over control final loss (geometric mean over models, 95% bootstrap interval).", "name": "fig-superposition_llc-imp"}}
with timer.stage("pruning"):
    P = cached("tms_imp", dict(v=2, grid=grid.values[:, :4].tolist(), steps=steps, n=n_train,
                               log=log_at, s=imp_seeds, r=imp_rounds, p=imp_per_round,
                               f=imp_rewind_frac, lr=lr),
               lambda: tgrid.prune_grid(run, grid, X_TRAIN, steps, n_seeds=imp_seeds,
                                        rounds=imp_rounds, per_round=imp_per_round,
                                        rewind_frac=imp_rewind_frac, lr=lr, momentum=momentum,
                                        device=DEV, compress=True, control=True))
imp = tgrid.prune_table(grid, P)
D_ctrl = tms.feature_dimensionality(P["control_W"])
ctrl_fpd = tgrid.features_per_dimension(D_ctrl).nanmean().item()
psum = analysis.prune_summary(imp, n_boot)
p1, pl = psum[psum.weights == 12 - imp_per_round].iloc[0], psum.iloc[-1]
imp_v = "replicated" if p1.hi <= imp_tol else "not replicated" if p1.lo > imp_tol else "undecided"
glue_text("imp_md", f"With {12 - imp_per_round} weights left the pruned loss is "
          f"{format_interval(p1.loss_ratio, p1.lo, p1.hi, digits=2)} times the control's, and "
          f"{p1.kept_imp:.0%} keep the dense polygon (control: {p1.kept_control:.0%}); with "
          f"{int(pl.weights)} left, {format_interval(pl.loss_ratio, pl.lo, pl.hi, digits=2)} "
          f"times and {pl.kept_imp:.0%}")
glue_text("imp_fpd_md", f"from {psum.features_per_dim.iloc[0]:.2f} (dense) to "
          f"{pl.features_per_dim:.2f} ({int(pl.weights)} weights), against {ctrl_fpd:.2f} for the "
          "control")
show(figures.prune_summary_figure(psum[psum.weights < 12]))

# %% tags=["hide-input"]
psum.round(3)

# %% [markdown]
# {glue:md}`imp_md` ({numref}`fig-superposition_llc-imp`). Features per hidden dimension go
# {glue:md}`imp_fpd_md`.
#
# ## Power-law feature frequencies
#
# Elhage et al. weigh features unequally. Here feature $i$ is on with probability proportional
# to $(i+1)^{-1}$ at the same mean density, the first feature most often, and we retrain both
# starts ({glue:text}`powerlaw_seeds` seeds per setting) and repeat the minimum checks and the
# within-cell correlations.

# %% tags=["hide-input"]
pgrid = tgrid.make_grid(sparsity_idx, powerlaw_seeds)
PKEY = dict(v=2, grid=pgrid.values.tolist(), steps=steps, log=log_at, n=n_train, nt=n_test, lr=lr,
            mom=momentum, alpha=powerlaw_alpha)
with timer.stage("power-law grid"):
    prun = tms.TrainResult(**cached("tms_train", PKEY, lambda: tgrid.train_grid(
        pgrid, steps, log_at, n_train, n_test, lr, momentum, DEV, compress=True,
        alpha=powerlaw_alpha)))
    PL = cached("tms_llc", dict(LKEY, grid=PKEY["grid"], ck=[steps], alpha=powerlaw_alpha),
                lambda: tgrid.llc_at_checkpoints(prun, pgrid, [steps], llc_n, alpha=powerlaw_alpha,
                                                 **LLC_AT))
    pchk = tgrid.minimum_check(prun.W[:, -1], prun.b[:, -1],
                               tgrid.llc_data(pgrid, llc_n, powerlaw_alpha), LLC_NBETA,
                               descent_steps=descent_steps)
pgrid["kgon"] = [tms.classify_kgon(prun.W[m, -1], prun.b[m, -1]) for m in range(len(pgrid))]
pgrid["k"] = pgrid.kgon.str[0].astype(int)
pgrid["features_per_dim"] = tgrid.features_per_dimension(
    tms.feature_dimensionality(prun.W[:, -1])).numpy()
corner = np.zeros(6)  # how often each feature is a hull corner
for m in range(len(pgrid)):
    corner[tms.hull_vertices(prun.W[m, -1].double().T.numpy())] += 1 / len(pgrid)
pfin = pd.concat([pgrid.assign(llc=PL["mean"][:, 0].numpy(), loss=prun.train_loss[:, -1].numpy()),
                  pchk], axis=1)
p_at = pfin[(pfin.descent < descent_tol) & (pfin.min_eig_rel > -1e-3) & (pfin.llc > 0)]
pcorr = analysis.correlations_by_type(p_at, min_cell, n_boot)
p_sig = int(((pcorr.spearman_lo > 0) | (pcorr.spearman_hi < 0)).sum())
u_sig = sum(z["sig"] for z in zero_rows.values())
u_cells = sum(z["cells"] for z in zero_rows.values())
cmp = pd.concat({"uniform": grid.groupby("sparsity")[["k", "features_per_dim"]].mean(),
                 "power law": pgrid.groupby("sparsity")[["k", "features_per_dim"]].mean()}, axis=1)
glue_text("powerlaw_md", f"mean corners {cmp['uniform', 'k'].mean():.2f} (uniform) against "
          f"{cmp['power law', 'k'].mean():.2f} (power law) and features per dimension "
          f"{cmp['uniform', 'features_per_dim'].mean():.2f} against "
          f"{cmp['power law', 'features_per_dim'].mean():.2f}, averaged over sparsities; "
          f"{len(p_at)} of {len(pfin)} power-law models are at a minimum, and {p_sig} of "
          f"{len(pcorr)} cells have a Spearman interval excluding zero (uniform: {u_sig} of "
          f"{u_cells})")
glue_text("corner_md", f"the most frequent feature is a corner of the hull in {corner[0]:.0%} of "
          f"models and the rarest in {corner[-1]:.0%}")
cmp.round(2)

# %% [markdown]
# With power-law frequencies: {glue:md}`powerlaw_md`. Across all power-law models,
# {glue:md}`corner_md`.
#
# ## Time table
#
# CPU seconds of this process with one thread are what two quiet cores would take (the machine
# this ran on was shared, so its wall clock is inflated); a stage loaded from the cache shows
# almost no time.

# %% tags=["hide-input"]
times = timer.table()
glue("cpu_total", float(times.loc["total", "CPU s"]), display=False)
times

# %% [markdown]
# ## Verdicts
#
# Each row states its threshold before its number; intervals are 95% bootstrap intervals over
# independent units (SGLD runs, seeds or models).

# %% tags=["hide-input"]
def band(b: tuple) -> str:
    if not np.isfinite(b[1]):
        return "undecided"
    if -calib_band < b[1] and b[2] < calib_band:
        return "replicated"
    return "not replicated" if b[1] > calib_band or b[2] < -calib_band else "undecided"


cal_v = band(bias[6]) if band(bias[6]) == band(bias[5]) else "undecided"
rows = [
    Verdict("Hexagon and pentagon have learning coefficients 8.5 and 7",
            "project notes on Chen et al. 2023",
            f"Hessian ranks {int(rank[0])} and {int(rank[1])}",
            "exact optima of the one-hot law", "ranks 17 and 14",
            "replicated" if THEORY == NOTES else "not replicated"),
    Verdict("SGLD recovers the known LLC (calibration)", "Lau et al. 2023",
            f"bias {format_interval(*bias[6], signed=True, digits=2)} (6-gon), "
            f"{format_interval(*bias[5], signed=True, digits=2)} (5-gon)", "held-out chains",
            f"|bias| < {calib_band:g}", cal_v),
    Verdict("The calibration carries over to the binary law", "this chapter",
            f"LLC − rank / 2 = {format_interval(*bin_bias, signed=True, digits=2)}",
            "models at a minimum", f"|bias| < {calib_band:g}", band(bin_bias)),
    Verdict("4-gon start: worse on average, better best", "anogassis/aisf-project",
            f"holds at {n_hold} of {n_ns} settings", "6-gon start, same data and seeds",
            "both intervals on the claimed side", start_v),
    Verdict("Zero loss-LLC correlation within a sparsity (6-gon start)", "anogassis/aisf-project",
            f"{z6['sig']} of {z6['cells']} cells exclude 0", "chance count, binomial at 5%",
            f"at most {z6['chance']} cells", zero_v),
    Verdict("Aligned solutions are linearly connected", "Ainsworth et al. 2023",
            f"median barrier {format_interval(*bar['cross'], digits=3)} of endpoint loss",
            f"same-start pairs: {format_interval(*bar['ctrl'], digits=3)}", f"< {barrier_tol:g}",
            lmc_v),
    Verdict("A pruned, rewound network matches the dense one", "Frankle and Carbin 2019",
            f"loss ratio {format_interval(p1.loss_ratio, p1.lo, p1.hi, digits=2)}",
            "rewound without pruning", f"< {imp_tol:g}", imp_v),
]
verdict_table(rows)

# %% [markdown]
# ## What remains open
#
# - The estimator's offset against theory is measured at two optima of one law and at the
#   trained minima of the binary law; whether it is the same offset at other critical points,
#   or at other sparsities, is not.
# - Half the Hessian rank is the learning coefficient only if the flat directions are exactly
#   flat; directions flat to fourth order would raise it, and we did not test for them.
# - Basin hopping is not measured: how strong a pull towards the other start's aligned solution
#   (an L2 term) makes a model leave its basin, as a function of sparsity.
# - Power-law feature importance (weights in the loss, as in Elhage et al.) rather than
#   frequency is not tried.
