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
# superposition change, and does the local learning coefficient (LLC) track the loss across
# models trained at the same sparsity?
#
# **Answer.** We retrain the grid of a published capstone project (`anogassis/aisf-project`):
# 6 features, 2 hidden dimensions, binary inputs. The two starting points are a random 4-gon and
# a 6-gon. Our SGLD estimator is checked against devinterp 1.3.2 and calibrated on the exact
# optima of Chen et al.'s one-hot law. There it puts the hexagon at {glue:text}`cal_llc6:.1f`
# and the pentagon at {glue:text}`cal_llc5:.1f` (theory 8.5 and 7).
#
# At the end of training, at the least sparse setting, the 4-gon start is {glue:md}`avg_word` on
# average than the 6-gon start (mean loss {glue:text}`loss4_lowS:.3f` against
# {glue:text}`loss6_lowS:.3f`), and its best seed is {glue:md}`best_word`
# ({glue:text}`best4_lowS:.4f` against {glue:text}`best6_lowS:.4f`), so the reference's "worse
# on average, better best" {glue:md}`start_verdict`.
#
# Within one sparsity, the LLC spread across seeds is {glue:md}`spread_word` the spread between
# the SGLD chains of one model: the median ratio of the two variances is
# {glue:text}`var_ratio_median:.1f`, {glue:md}`spread_verdict`. The loss–LLC correlation within a
# sparsity is {glue:md}`r_sign` (median {glue:text}`r_median:.2f`), and {glue:text}`n_r_sig` of
# {glue:text}`n_r_cells` bootstrap intervals exclude zero. {glue:md}`r_verdict`.
# {glue:md}`neg_summary`; without them the median correlation is {glue:md}`r_median_pos_md`.
#
# After aligning the symmetries (an orthogonal map of the hidden plane plus a joint permutation
# of the features), the median loss barrier between the two starts' solutions falls from
# {glue:text}`barrier_unaligned:.1e` to {glue:text}`barrier_aligned:.1e`.

# %% tags=["hide-input"]
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from IPython.display import HTML, display
from myst_nb import glue

from helpers.cache import cached
from helpers.chapter import StageTimer, glue_text
from helpers.plotting import show, use_style
from helpers.tms import analysis, calibration, figures, grid as tgrid, llc
from helpers.tms import model as tms

use_style()
timer = StageTimer()

# %% tags=["parameters"]
scale: str = "book"  # smoke | book | full (set by helpers.run)
device: str = "cpu"  # "cpu" or "cuda"; everything below is batched tensor code
torch_threads: int = 1  # CPU threads; 1 is fastest for these tiny batched ops on a shared machine
sparsity_idx: list = [1, 2, 3, 5, 7]  # indices into 1 - exp(-linspace(0, 5, 10)): .426 .671 .811 .938 .980
n_seeds: int = 10  # seeds per sparsity and initialisation (reference: 50)
steps: int = 10000  # full-batch SGD steps (reference: 20000)
n_log: int = 50  # log-spaced snapshots (reference: 50 -> 46 unique steps at 20000)
n_train: int = 1000  # training samples per (sparsity, seed), shared by both initialisations
n_test: int = 200  # test samples
lr: float = 0.005  # SGD learning rate (reference)
momentum: float = 0.9  # SGD momentum (reference)
llc_reference_steps: list = [13, 85, 526, 3243, 20000]  # reference checkpoints; scaled by steps / 20000
llc_n: int = 5000  # fresh samples per sparsity on which SGLD runs (shared by all models there)
llc_batch: int = 500  # SGLD minibatch size
llc_chains: int = 4  # SGLD chains per model and checkpoint (reference: 5)
llc_draws: int = 300  # kept draws per chain (reference: 500)
llc_burnin: int = 300  # discarded SGLD steps before the draws
grad_tol: float = 1e-3  # a checkpoint is "flat" when its train-loss gradient norm is below this
llc_localization: float = 1.0  # gamma, pull towards the trained weights
calib_n: int = 5000  # one-hot uniform samples for the calibration at the exact 6-gon / 5-gon
calib_lrs: list = [1e-4, 3e-4, 1e-3]  # step sizes epsilon swept
calib_nbetas: list = [200.0, 587.0, 2000.0]  # inverse temperatures swept; 587 is n / ln n at 5000
calib_chains: int = 8  # chains per setting in the sweep
calib_draws: int = 500  # draws per chain in the sweep
calib_burnin: int = 500  # burn-in per chain in the sweep
calib_repeats: int = 8  # independent estimates per polygon at the grid's own sampler settings
ref_lr: float = 1e-3  # the reference project's SGLD step size
ref_n: int = 200  # the reference's fresh LLC data set size (full batch, no burn-in)
ref_chains: int = 5  # the reference's chains
ref_draws: int = 500  # the reference's draws
n_boot: int = 2000  # bootstrap resamples for correlation intervals
anim_sparsity_idx: list = [1, 3, 7]  # sparsities animated (indices as above; must be in sparsity_idx)
anim_seed: int = 0  # seed animated
anim_frames: int = 32  # frames per animation (keeps the page small)
lmc_n_eval: int = 4000  # samples for the loss along interpolation paths
lmc_alphas: int = 21  # points on each path
imp_seeds: int = 3  # seeds per (sparsity, init) pruned
imp_rounds: int = 4  # pruning rounds
imp_per_round: int = 2  # weights (of 12) removed per round
imp_rewind_frac: float = 0.01  # rewind point as a fraction of training

# %% [markdown]
# Every setting lives in the cell above. Below we derive the grid and the checkpoints from it.

# %% tags=["hide-input"]
torch.set_num_threads(torch_threads)
DEV = torch.device(device)
if DEV.type == "cuda" and not torch.cuda.is_available():
    raise ValueError("device='cuda' was requested but CUDA is not available; set device='cpu'.")
if not set(anim_sparsity_idx) <= set(sparsity_idx):
    raise ValueError(f"anim_sparsity_idx {anim_sparsity_idx} must be a subset of sparsity_idx "
                     f"{sparsity_idx}.")
S_ALL = tms.sparsities()
SPARS = [float(S_ALL[i]) for i in sparsity_idx]
ckpt_steps = tgrid.checkpoint_steps(llc_reference_steps, steps)
log_at = tms.log_steps(steps, n_log, extra=tuple(ckpt_steps))
grid = tgrid.make_grid(sparsity_idx, n_seeds)
M = len(grid)
SGLD = dict(localization=llc_localization, chains=llc_chains, draws=llc_draws, burnin=llc_burnin,
            batch=llc_batch, device=DEV)
for name, v in (("llc_chains", llc_chains), ("llc_burnin", llc_burnin), ("llc_draws", llc_draws),
                ("n_ckpt", len(ckpt_steps))):
    glue(name, int(v), display=False)
print(f"{M} models, {steps} steps, {len(log_at)} snapshots, LLC checkpoints at steps {ckpt_steps}")

# %% [markdown]
# ## The model and its known critical points
#
# The model is $f(x) = \mathrm{ReLU}(W^\top W x + b)$, with $W$ of shape 2 × 6 and one bias per
# feature: 18 parameters in all. For Chen et al.'s law (one feature on, value uniform in
# [0, 1]) the optimal regular hexagon and pentagon can be computed exactly. We fit the radius and
# bias of each by quadrature and compare them with the published values.

# %% tags=["hide-input"]
W6, b6, L6 = tms.fit_regular_kgon(6)
W5, b5, L5 = tms.fit_regular_kgon(5)
POLYGONS = {6: (W6, b6), 5: (W5, b5)}
THEORY = {6: 8.5, 5: 7.0}
crit = pd.DataFrame(
    {"radius": [W6[:, 0].norm().item(), W5[:, 0].norm().item()], "bias": [b6[0].item(), b5[0].item()],
     "loss (mean MSE)": [L6, L5], "loss x 6 (Chen et al.)": [6 * L6, 6 * L5],
     "theory LLC": [THEORY[6], THEORY[5]]},
    index=["6-gon", "5-gon"],
)
glue("hex_radius", float(crit.loc["6-gon", "radius"]), display=False)
glue("hex_bias", float(crit.loc["6-gon", "bias"]), display=False)
crit

# %% [markdown]
# Our fitted hexagon has radius {glue:text}`hex_radius:.4f` and bias {glue:text}`hex_bias:.4f`;
# the reference project quotes 1.3205 and −0.6182 from the paper. The theory learning
# coefficients (rank of the Hessian over 2) come from the project notes and were not checked
# against the paper's table.
#
# ## Calibrating the LLC estimator
#
# The estimator is SGLD localised at the trained weights,
# $\hat\lambda = n\beta\,(\bar L_{\text{draws}} - L(w^*))$. It reimplements devinterp 1.3.2's
# update, and `tests/tms/test_llc.py` checks it against that package. Following devinterp's
# advice, we first sweep the step size ε and the inverse temperature nβ at the two optima, where
# we know the answer.

# %% tags=["hide-input"]
X_CAL = tms.make_data(calib_n, None, "onehot_uniform", generator=torch.Generator().manual_seed(1))
with timer.stage("calibration sweep"):
    calib, calib_trace = cached(
        "tms_calib",
        dict(v=2, n=calib_n, lrs=calib_lrs, nbs=calib_nbetas, c=calib_chains, d=calib_draws,
             bi=calib_burnin, bs=llc_batch, gamma=llc_localization),
        lambda: calibration.sweep(POLYGONS, X_CAL, calib_lrs, calib_nbetas, localization=llc_localization,
                                  chains=calib_chains, draws=calib_draws, burnin=calib_burnin,
                                  batch=llc_batch, device=DEV),
    )
LLC_LR, LLC_NBETA, wide = calibration.choose_closest(calib, THEORY)
print(f"chosen: lr = {LLC_LR:g}, nbeta = {LLC_NBETA:g}")
wide.round(2)

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Calibration at Chen et al.'s exact optima (one-hot uniform law). Left: the LLC estimate (mean over chains, bars: chain standard deviation) against the SGLD step size, for each inverse temperature; dashed: theory (8.5 for the hexagon, 7 for the pentagon). Right: running LLC over draws, at the chosen setting, per chain.", "name": "fig-superposition_llc-calibration"}}
chosen_rows = {k: calib.index[(calib.polygon == k) & (calib.lr == LLC_LR) & (calib.nbeta == LLC_NBETA)][0]
               for k in THEORY}
show(figures.calibration_figure(calib, {k: calib_trace[i] for k, i in chosen_rows.items()}, THEORY))
row = calib[(calib.lr == LLC_LR) & (calib.nbeta == LLC_NBETA)].set_index("polygon")
glue("cal_llc6", float(row.loc[6, "llc"]), display=False)
glue("cal_llc5", float(row.loc[5, "llc"]), display=False)
glue("nbeta_used", float(LLC_NBETA), display=False)
glue("lr_used", float(LLC_LR), display=False)
up_lr, n_lr = calibration.count_rises(calib, "nbeta", "lr")
up_nb, n_nb = calibration.count_rises(calib, "lr", "nbeta")
glue_text("calib_trend", f"raising the step size raised the estimate in {up_lr} of {n_lr} neighbouring pairs"
          + (f", and raising nβ in {up_nb} of {n_nb}" if n_nb else " (only one nβ was swept at this scale)"))
glue_text("calib_sd", f"{row.loc[6, 'chain_sd']:.2f} for the hexagon and {row.loc[5, 'chain_sd']:.2f} "
          "for the pentagon")

# %% [markdown]
# Across the sweep, {glue:md}`calib_trend`: "the" LLC is defined only up to these choices. The
# chosen setting is the grid point closest to the theory values with the hexagon above the
# pentagon; the table above prints it. This choice is tuned to the answer, which is what
# calibration means. At the chosen setting the chain standard deviation is {glue:md}`calib_sd`.
#
# The sweep uses long chains. The grid below cannot afford that: it estimates every model at five
# checkpoints, so its cost is models × checkpoints × chains × (burn-in + draws) SGLD steps. So we
# check the chosen ε and nβ again at the grid's own, shorter settings: independent estimates per
# polygon, each exactly as one grid model gets it.

# %% tags=["hide-input"]
with timer.stage("calibration at grid settings"):
    rep_llc = cached(
        "tms_calib_grid",
        dict(v=1, n=calib_n, lr=float(LLC_LR), nb=float(LLC_NBETA), r=calib_repeats, c=llc_chains,
             d=llc_draws, bi=llc_burnin, bs=llc_batch, gamma=llc_localization),
        lambda: calibration.repeat_estimates(POLYGONS, X_CAL, calib_repeats, lr=LLC_LR, nbeta=LLC_NBETA,
                                             localization=llc_localization, chains=llc_chains,
                                             draws=llc_draws, burnin=llc_burnin, batch=llc_batch,
                                             device=DEV),
    )
e6, e5 = rep_llc[0].numpy(), rep_llc[1].numpy()
order_frac = float((e6[:, None] > e5[None, :]).mean())  # P(one hexagon estimate > one pentagon's)
gap_z = (e6.mean() - e5.mean()) / np.sqrt(e6.var(ddof=1) / len(e6) + e5.var(ddof=1) / len(e5))
glue("grid_llc6", float(e6.mean()), display=False)
glue("grid_llc5", float(e5.mean()), display=False)
glue("grid_order_frac", order_frac, display=False)
glue("grid_gap_z", float(gap_z), display=False)
pd.DataFrame({"mean LLC": [e6.mean(), e5.mean()], "sd over repeats": [e6.std(ddof=1), e5.std(ddof=1)],
              "theory": [THEORY[6], THEORY[5]]}, index=["6-gon", "5-gon"]).round(2)

# %% [markdown]
# At the grid's settings a single estimate puts the hexagon at {glue:text}`grid_llc6:.1f` and the
# pentagon at {glue:text}`grid_llc5:.1f` on average. A hexagon estimate exceeds a pentagon estimate
# in {glue:text}`grid_order_frac:.0%` of pairs, and the gap in means is {glue:text}`grid_gap_z:.1f`
# standard errors. We use this ε and nβ, with fresh samples, for the models trained on binary
# data below. Binary data are not the calibration law, so the absolute values there are less
# certain than their ordering.
#
# ## Training the grid
#
# Every model trains at once: full-batch SGD with momentum, with the weights stacked as
# $[M, 2, 6]$ and gradients written out by hand (the test suite checks these against a plain
# `torch.optim.SGD` loop). The two starts with the same seed see the same training data.

# %% tags=["hide-input"]
with timer.stage("training"):
    run = tms.TrainResult(**cached(
        "tms_train",
        dict(v=1, grid=grid.values.tolist(), steps=steps, log=log_at, n=n_train, nt=n_test, lr=lr,
             mom=momentum),
        lambda: tgrid.train_grid(grid, steps, log_at, n_train, n_test, lr, momentum, DEV)))
X_TRAIN = tgrid.grid_data(grid, n_train, 1)  # the training sets again (cheap)
grid["final_loss"] = run.train_loss[:, -1].numpy()
grid["test_loss"] = run.test_loss[:, -1].numpy()
grid["kgon"] = [tms.classify_kgon(run.W[m, -1], run.b[m, -1]) for m in range(M)]
grid["k"] = grid.kgon.str[0].astype(int)
print(f"trained {M} models x {steps} steps in {timer.wall('training'):.0f} s (cached runs load instantly)")

# %% [markdown]
# ## How the solutions change with sparsity
#
# The animations below show one seed from the 4-gon start at three sparsities. The arrows are
# W's columns and the dashed line is their convex hull. The bars show each feature's |bias|
# (green positive, red negative) next to its norm. The loss curve fills in as training proceeds.

# %% tags=["hide-input"]
with timer.stage("animations"):
    for si in anim_sparsity_idx:
        m = grid.index[(grid.init == "4-gon") & (grid.s_idx == si) & (grid.seed == anim_seed)][0]
        fig, anim = tms.animate_run(run.steps, run.W[m], run.b[m], run.train_loss[m], frames=anim_frames,
                                    title=f"4-gon start, sparsity {S_ALL[si]:.3f}, seed {anim_seed}",
                                    figsize=(5.6, 3.0))
        with plt.rc_context({"savefig.dpi": 70}):  # small frames keep the page light
            html = anim.to_jshtml(default_mode="once")
        plt.close(fig)
        display(HTML(html))
corners = grid.groupby(["init", "sparsity"]).k.mean()
c4, c6 = corners["4-gon"], corners["6-gon"]  # indexed by sparsity, ascending
glue_text("corners_4", f"{c4.iloc[-1]:.1f} corners on average at S = {c4.index[-1]:.3f} and "
          f"{c4.iloc[0]:.1f} at S = {c4.index[0]:.3f}")
glue_text("corners_6", f"{c6.iloc[-1]:.1f} and {c6.iloc[0]:.1f}")

# %% [markdown]
# Over all seeds, the final hull from the 4-gon start has {glue:md}`corners_4`; from the 6-gon
# start, {glue:md}`corners_6`. Sparse features rarely co-occur, so more of them can share the
# plane without interfering; dense ones cannot. The final polygons of every model are counted
# next.

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Final polygon types by sparsity and starting point. A label k counts the features on the convex hull of W's columns; each + or − marks a feature off the hull, by the sign of its bias.", "name": "fig-superposition_llc-kgons"}}
show(figures.kgon_counts_figure(grid, tms.INITS))

# %% [markdown]
# The loss tells the same story per seed. Does the 4-gon start give worse solutions on average
# but better best ones, as the reference found?

# %% tags=["hide-input"]
summary = grid.groupby(["sparsity", "init"]).final_loss.agg(["mean", "min", "max", "std"]).unstack("init")
lowS = min(SPARS)
low = summary.loc[lowS]
glue("lowS", lowS, display=False)
for name, stat, init in (("loss4_lowS", "mean", "4-gon"), ("loss6_lowS", "mean", "6-gon"),
                         ("best4_lowS", "min", "4-gon"), ("best6_lowS", "min", "6-gon")):
    glue(name, float(low[(stat, init)]), display=False)
mean_worse = low[("mean", "4-gon")] > low[("mean", "6-gon")]
best_better = low[("min", "4-gon")] < low[("min", "6-gon")]
glue_text("avg_word", "worse" if mean_worse else "no worse")
glue_text("best_word", "better" if best_better else "no better")
glue_text("start_verdict", "replicates" if (mean_worse and best_better) else (
    "replicates only in part: the average is worse, but the best seed is not better" if mean_worse else
    ("replicates only in part: the best seed is better, but the average is not worse" if best_better
     else "does not replicate")))
summary.round(4)

# %% [markdown]
# At the lowest sparsity (S = {glue:text}`lowS:.3f`) the 4-gon start is {glue:md}`avg_word` on
# average ({glue:text}`loss4_lowS:.3f` against {glue:text}`loss6_lowS:.3f`), and its best seed is
# {glue:md}`best_word` ({glue:text}`best4_lowS:.4f` against {glue:text}`best6_lowS:.4f`). The
# reference's "worse on average, better best" {glue:md}`start_verdict` here.
#
# ## LLC against loss at five checkpoints
#
# Next, the LLC of every model at the five checkpoints. The SGLD data are fresh samples per
# sparsity, shared by all models at that sparsity, so the data's own noise does not add spread
# between seeds. Each LLC is paired with the train loss **at the same checkpoint**. The
# reference's notebook indexes the loss table with the weight-snapshot index, which pairs every
# LLC with the loss of the **next** logged step; we compare the two pairings further down. We
# also record the norm of the train-loss gradient at each checkpoint, to tell models still
# descending from models at rest.
#
# **Sampler budget.** Each model gets {glue:text}`llc_chains` chains of {glue:text}`llc_burnin`
# burn-in and {glue:text}`llc_draws` kept steps at each of {glue:text}`n_ckpt` checkpoints (the
# reference used 5 chains × 500 draws). Its cost grows with models × checkpoints × chains ×
# steps, which makes it one of the costliest stages of the chapter (the time table at the end
# gives its share); these settings keep the `book` run within its time budget. The check at grid
# settings above shows the price: at these settings one hexagon estimate beats one pentagon
# estimate in {glue:text}`grid_order_frac:.0%` of pairs.

# %% tags=["hide-input"]
with timer.stage("LLC grid"):
    L = cached(
        "tms_llc",
        dict(v=2, grid=grid.values[:, :4].tolist(), steps=steps, log=log_at, n=n_train, ck=ckpt_steps,
             lr=float(LLC_LR), nb=float(LLC_NBETA), g=llc_localization, c=llc_chains, d=llc_draws,
             bi=llc_burnin, bs=llc_batch, nl=llc_n, lrt=lr, mom=momentum),
        lambda: tgrid.llc_at_checkpoints(run, grid, ckpt_steps, llc_n, lr=LLC_LR, nbeta=LLC_NBETA, **SGLD))
long = tgrid.checkpoint_table(grid, run, L, ckpt_steps, X_TRAIN)
glue("ckpt_first", int(ckpt_steps[0]), display=False)
first, last = long[long.step == ckpt_steps[0]], long[long.step == ckpt_steps[-1]]
glue_text("neg_first", f"{(first.llc < 0).sum()} of {len(first)} estimates are negative "
          f"(lowest {first.llc.min():.1f})")
glue_text("neg_last", f"{(last.llc < 0).sum()} of {len(last)} (lowest {last.llc.min():.1f})")
n_neg_last = int((last.llc <= 0).sum())
glue_text("neg_summary", f"{n_neg_last} of {len(last)} models have a non-positive LLC at the last "
          f"checkpoint (down to {last.llc.min():.1f}), so they are not at a minimum" if n_neg_last
          else "No model has a negative LLC at the last checkpoint")
neg = last[last.llc < 0]
n_neg_flat = int((neg.grad_norm < grad_tol).sum())
glue_text("neg_flat", (
    f"{n_neg_flat} of the {len(neg)} negative-LLC models at the last checkpoint have a gradient norm "
    f"below {grad_tol:g} (median {neg.grad_norm.median():.1e}, against "
    f"{last[last.llc >= 0].grad_norm.median():.1e} for the rest)"
    + (", so a small gradient alone does not certify a minimum here" if n_neg_flat else ""))
    if len(neg) else "No model has a negative LLC at the last checkpoint")
print(f"{len(long)} LLC estimates x {llc_chains} chains in {timer.wall('LLC grid'):.0f} s")
by_step = long.groupby("step")
by_step[["llc", "grad_norm"]].median().assign(negative_llc=by_step.llc.apply(lambda v: int((v < 0).sum())))

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Train loss against estimated LLC at five checkpoints (columns), for the 4-gon start (top) and the 6-gon start (bottom), coloured by sparsity. Each point is one model; the loss is from the same checkpoint as the LLC. The LLC axis is linear between −10 and 10 and logarithmic beyond; left of the grey line (LLC below 0) the sampler found lower loss nearby, so the model is not at a minimum.", "name": "fig-superposition_llc-scatter"}}
show(figures.scatter_figure(long, ckpt_steps, SPARS, tms.INITS))

# %% [markdown]
# A negative LLC means the sampler found lower loss near the checkpoint, so the checkpoint is not
# a local minimum: the model is still descending, or sits at a saddle (for example a dead feature
# that can wake up). At the first checkpoint (step {glue:text}`ckpt_first`), {glue:md}`neg_first`,
# as in the reference's plots. At the last, {glue:md}`neg_last`. {glue:md}`neg_flat`.
#
# ## Is the within-sparsity spread real?
#
# The reference saw "zero correlation between loss and LLC within a sparsity" from the 6-gon
# start. If every seed reached the same solution, the LLC spread would be pure sampler noise, and
# no correlation would be expected. We test that at the last checkpoint. The between-seed variance
# of the LLC is compared with the variance expected from chain noise alone (mean chain variance /
# number of chains). Then the loss–LLC correlation gets a bootstrap interval over seeds. Because a
# negative LLC marks a model that is not at a minimum, we also recompute the correlation on the
# models with a positive LLC and on those at rest (small gradient).

# %% tags=["hide-input"]
final = long[long.step == ckpt_steps[-1]]
puzzle = analysis.puzzle_table(final, llc_chains, n_boot, grad_tol)
puzzle["n_kgon_types"] = [grid[(grid.init == a) & np.isclose(grid.sparsity, s)].kgon.nunique()
                          for a, s in zip(puzzle.init, puzzle.sparsity)]
valid = puzzle.dropna(subset=["r_lo"])
n_sig = int(((valid.r_lo > 0) | (valid.r_hi < 0)).sum())
nan = float("nan")
glue("var_ratio_median", float(puzzle.var_ratio.median()), display=False)
glue("r_median", float(valid.r.median()) if len(valid) else nan, display=False)
glue("n_r_sig", n_sig, display=False)
glue("n_r_cells", int(len(valid)), display=False)
glue("r_ci_width", float((valid.r_hi - valid.r_lo).median()) if len(valid) else nan, display=False)
spread_big = puzzle.var_ratio.median() > 1
glue_text("spread_word", "larger than" if spread_big else "no larger than")
glue_text("spread_verdict", "so the spread is not just sampler noise" if spread_big
          else "so most of the spread could be sampler noise")
glue_text("var_above", f"{int((puzzle.var_ratio > 1).sum())} of {len(puzzle)} cells")
n_neg_r, n_pos_r = int((valid.r < 0).sum()), int((valid.r > 0).sum())
glue_text("r_sign", f"negative in {n_neg_r} and positive in {n_pos_r} of {len(valid)} cells")
six = valid[valid.init == "6-gon"]
glue_text("r_verdict", (
    "Lower loss goes with higher LLC in most cells" if n_neg_r > n_pos_r else
    "Higher loss goes with higher LLC in most cells" if n_pos_r > n_neg_r else
    "The correlation has no consistent sign")
    + f"; from the 6-gon start, where the reference saw zero correlation, r is negative in "
    f"{int((six.r < 0).sum())} of {len(six)} cells. "
    + ("This does not replicate the reference's \"zero correlation\"" if n_neg_r != n_pos_r and n_sig > 0
       else "This is consistent with the reference's \"zero correlation\" at this number of seeds"))
both = puzzle.dropna(subset=["r", "r_llc_pos"])
glue("r_median_pos", float(puzzle.r_llc_pos.median()), display=False)
glue_text("r_median_pos_md", analysis.fmt_r(float(puzzle.r_llc_pos.median())))
glue_text("r_median_flat", analysis.fmt_r(float(puzzle.r_flat.median())))
glue_text("pos_flips", f"{int((np.sign(both.r) != np.sign(both.r_llc_pos)).sum())} of {len(both)} cells")
lo_rows = puzzle[np.isclose(puzzle.sparsity, lowS)].set_index("init")
glue_text("lowS_change", "; ".join(
    f"{i} start: {analysis.fmt_r(lo_rows.loc[i, 'r'])} with all seeds, "
    f"{analysis.fmt_r(lo_rows.loc[i, 'r_llc_pos'])} with the {lo_rows.loc[i, 'n_llc_pos']} positive-LLC seeds"
    for i in tms.INITS))
glue_text("neg_lowS", f"{int((final[np.isclose(final.sparsity, lowS)].llc <= 0).sum())} of the "
          f"{int((final.llc <= 0).sum())} non-positive estimates at the last checkpoint")
glue_text("flat_kept", f"{int(puzzle.n_flat.sum())} of {int(len(final))} models")
puzzle.round(3)

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Left: between-seed variance of the final LLC against the variance that chain noise alone would give (per sparsity and start; the grey line is equality). Right: within-sparsity Pearson correlation of loss and LLC at the last checkpoint, with 95% bootstrap intervals over seeds (filled); open circles: the same correlation over only the models with a positive LLC. Below zero, lower loss goes with higher LLC.", "name": "fig-superposition_llc-puzzle"}}
show(figures.puzzle_figure(puzzle, tms.INITS))

# %% [markdown]
# Points above the grey line are cells where seeds differ in LLC by more than one model's chains
# differ from each other: {glue:md}`var_above`. Compare with the number of polygon types the seeds
# reached there (`n_kgon_types` in the table). The within-sparsity correlation is
# {glue:md}`r_sign`; the median 95% interval is {glue:text}`r_ci_width:.2f` wide.
# {glue:md}`r_verdict`.
#
# **Caveat: models that are not at a minimum.** A model with a negative LLC is not at a minimum,
# so its "LLC" is not a learning coefficient, and a few such models with a high loss can drive a
# correlation on their own. Keeping only the models with a positive LLC moves the median
# correlation from {glue:text}`r_median:.2f` to {glue:md}`r_median_pos_md` and flips its sign in
# {glue:md}`pos_flips`. At the lowest sparsity, which holds {glue:md}`neg_lowS`:
# {glue:md}`lowS_change`. Keeping only models with a small gradient ({glue:md}`flat_kept`) gives a
# median of {glue:md}`r_median_flat`.
#
# **The off-by-one pairing.** At the last checkpoint there is no next logged step, so the
# reference's pairing is the same as ours there. At the earlier checkpoints the loss is still
# moving, and the two pairings can differ; the table compares them.

# %% tags=["hide-input"]
offby = analysis.offby_table(long, ckpt_steps[:-1])
ob_table = offby.groupby("step").agg(median_r_same=("r_same_step", "median"),
                                     median_r_next=("r_next_step", "median"),
                                     max_abs_change=("change", lambda v: v.abs().max()))
worst = offby.loc[offby.change.abs().idxmax()] if offby.change.notna().any() else None
glue_text("offby_worst", "no cell has a defined correlation at the earlier checkpoints" if worst is None else (
    f"the largest change is {worst.r_same_step:+.2f} → {worst.r_next_step:+.2f} ({worst.init} start, "
    f"S = {worst.sparsity:.3f}, step {int(worst.step)}), and the median absolute change over all "
    f"{int(offby.change.notna().sum())} early cells is {offby.change.abs().median():.3f}"))
ob_table.round(3)

# %% [markdown]
# With the reference's pairing, {glue:md}`offby_worst`.
#
# The reference's own sampler settings differ from ours: ε = 10⁻³, nβ = 300 / ln 300, 200 fresh
# samples per model, full batch, no burn-in. We rerun them at the last checkpoint. This asks
# whether its "zero correlation" could come from estimator noise.

# %% tags=["hide-input"]
with timer.stage("LLC, reference protocol"):
    R = cached(
        "tms_llc_ref",
        dict(v=2, grid=grid.values[:, :4].tolist(), steps=steps, n=n_train, lr=ref_lr, rn=ref_n,
             c=ref_chains, d=ref_draws, lrt=lr),
        lambda: tgrid.reference_protocol_llc(run.W[:, -1], run.b[:, -1], grid, ref_n, lr=ref_lr,
                                             chains=ref_chains, draws=ref_draws, device=DEV))
ref_rows = []
for (init, S), d in grid.assign(llc_ref=R["mean"].numpy(), var_ref=R["var"].numpy()).groupby(["init", "sparsity"]):
    r, lo, hi = analysis.boot_corr(d.llc_ref.values, d.final_loss.values, n_boot)
    ref_rows.append(dict(init=init, sparsity=S, llc_mean=d.llc_ref.mean(),
                         var_ratio=d.llc_ref.var() / (d.var_ref.mean() / ref_chains), r=r, r_lo=lo, r_hi=hi))
ref_puzzle = pd.DataFrame(ref_rows)
ours_med, ref_med = float(puzzle.llc_mean.median()), float(ref_puzzle.llc_mean.median())
rv = ref_puzzle.dropna(subset=["r"])
glue_text("ref_level", f"{'lower' if ref_med < ours_med else 'higher'} than ours (median cell mean "
          f"{ref_med:.2f} against {ours_med:.2f})")
glue_text("ref_r", f"negative in {int((rv.r < 0).sum())} and positive in {int((rv.r > 0).sum())} of "
          f"{len(rv)} cells (median {rv.r.median():.2f}), and "
          f"{int(((rv.r_lo > 0) | (rv.r_hi < 0)).sum())} intervals exclude zero")
glue_text("ref_var", f"{int((ref_puzzle.var_ratio > 1).sum())} of {len(ref_puzzle)} cells")
glue("ref_nbeta", llc.default_nbeta(300), display=False)
ref_puzzle.round(3)

# %% [markdown]
# With the reference's settings the LLCs come out {glue:md}`ref_level`; its nβ is
# {glue:text}`ref_nbeta:.1f`, against our {glue:text}`nbeta_used:.0f`. The correlation is
# {glue:md}`ref_r`. Between-seed variance exceeds chain noise in {glue:md}`ref_var`.
#
# ## Are the two starts' solutions linearly connected?
#
# This model has no hidden-neuron permutations. Its symmetries are an orthogonal map of the 2-d
# hidden plane ($W \to RW$ keeps $W^\top W$) and a relabelling of the features. Because inputs and
# outputs are the same features, the relabelling moves W's columns and b together. We align each
# 6-gon-start model onto the 4-gon-start model with the same sparsity and seed (and the same
# data). The search tries all 720 permutations, with the best rotation or reflection for each
# from Procrustes. Then we measure the loss barrier on the straight path. As a control, we also
# align pairs from the same start (seeds s and s+1).

# %% tags=["hide-input"]
lmc = tgrid.lmc_table(grid, run.W[:, -1], run.b[:, -1], lmc_n_eval, lmc_alphas)
cross, ctrl = lmc[lmc.pair == "4-gon vs 6-gon start"], lmc[lmc.pair != "4-gon vs 6-gon start"]
glue("barrier_unaligned", float(cross.unaligned.median()), display=False)
glue("barrier_aligned", float(cross.aligned.median()), display=False)


def med(d: pd.DataFrame, col: str) -> str:
    return f"{d[col].median():.1e}" if len(d) else "n/a"


same, diff = cross[cross.same_kgon], cross[~cross.same_kgon]
glue_text("lmc_drop", f"{int((cross.aligned < cross.unaligned).sum())} of {len(cross)} pairs")
glue_text("lmc_same", (
    f"{len(same)} pairs that reached the same polygon type have a median aligned barrier of "
    f"{med(same, 'aligned')}, and the {len(diff)} pairs with different types {med(diff, 'aligned')}")
    if len(same) and len(diff) else (
    f"{len(cross)} pairs all reached {'the same' if len(same) else 'different'} polygon types "
    f"(median aligned barrier {med(cross, 'aligned')})"))
glue_text("lmc_ctrl", f"{med(ctrl, 'unaligned')} before and {med(ctrl, 'aligned')} after alignment")
by_pair = lmc.groupby(["pair", "same_kgon"])
by_pair[["unaligned", "aligned", "dist"]].median().round(4).assign(n=by_pair.size())

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Loss barrier on the straight path between two trained models, before (grey) and after (colour) aligning the symmetries, by sparsity. Left: a 4-gon-start model against the 6-gon-start model with the same data and seed. Right: the control, two seeds from the same start.", "name": "fig-superposition_llc-lmc"}}
show(figures.lmc_figure(cross, ctrl, SPARS))

# %% [markdown]
# Alignment lowers the barrier in {glue:md}`lmc_drop` across the two starts; the median falls from
# {glue:text}`barrier_unaligned:.1e` to {glue:text}`barrier_aligned:.1e`. The {glue:md}`lmc_same`.
# A pair with different polygons is two different solutions, not two relabellings of one. In the
# same-start control the median barrier is {glue:md}`lmc_ctrl`.
#
# ## Does pruning keep the polygon?
#
# Iterative magnitude pruning with rewinding works on the 12 weights in W (biases are kept). Each
# round removes the two smallest surviving weights, rewinds the survivors to their values at 1% of
# training, and retrains under the mask. A regular hexagon can lose at most two weights: at a
# suitable rotation, two of its vertices lie on an axis.

# %% tags=["hide-input"]
with timer.stage("pruning"):
    P = cached(
        "tms_imp",
        dict(v=1, grid=grid.values[:, :4].tolist(), steps=steps, n=n_train, log=log_at, s=imp_seeds,
             r=imp_rounds, p=imp_per_round, f=imp_rewind_frac, lr=lr),
        lambda: tgrid.prune_grid(run, grid, X_TRAIN, steps, n_seeds=imp_seeds, rounds=imp_rounds,
                                 per_round=imp_per_round, rewind_frac=imp_rewind_frac, lr=lr,
                                 momentum=momentum, device=DEV))
imp_df = tgrid.prune_table(grid, P)
print(f"rewound to step {P['rewind_step']}; pruning took {timer.wall('pruning'):.0f} s")
imp_df[imp_df.weights < 12].groupby("weights").outcome.value_counts().unstack(fill_value=0)

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Iterative magnitude pruning with rewinding. Left: fraction of models whose polygon type is kept, loses corners, or changes otherwise, against the number of weights left in W. Right: final loss relative to the dense model, per sparsity (median over seeds and starts).", "name": "fig-superposition_llc-imp"}}
frac = imp_df.groupby("weights").outcome.value_counts(normalize=True).unstack(fill_value=0)
rel = (imp_df.assign(ratio=imp_df.loss / imp_df.dense_loss).groupby(["sparsity", "weights"]).ratio
       .median().unstack("sparsity"))
show(figures.prune_figure(frac, rel))
w1, wl = 12 - imp_per_round, int(imp_df.weights.min())
r1, rl = frac.loc[w1], frac.loc[wl]
glue_text("imp_first", f"After the first round ({w1} weights left) the polygon type is kept in "
          f"{r1.get('kept', 0):.0%} of models, and the median loss is {rel.loc[w1].median():.2f} times "
          "the dense loss")
glue_text("imp_last", f"With {wl} weights left, {rl.get('kept', 0):.0%} keep their type and "
          f"{rl.get('fewer corners', 0):.0%} have fewer corners; the median loss ratio is highest at "
          f"S = {rel.loc[wl].idxmax():.3f} ({rel.loc[wl].max():.1f}) and lowest at "
          f"S = {rel.loc[wl].idxmin():.3f} ({rel.loc[wl].min():.1f})")

# %% [markdown]
# {glue:md}`imp_first`. {glue:md}`imp_last`.
#
# ## Time table
#
# Wall time on a shared machine is inflated by other jobs; CPU time (this process, one thread) is
# close to what 2 idle cores would take. A stage loaded from the cache shows almost no time.

# %% tags=["hide-input"]
times = timer.table()
times["share of CPU"] = (times["CPU s"] / times.loc["total", "CPU s"]).round(2)
glue("cpu_total", float(times.loc["total", "CPU s"]), display=False)
times

# %% [markdown]
# ## Conclusion
#
# - **Calibration.** The batched SGLD estimator agrees with devinterp 1.3.2 within sampling error
#   (`tests/tms/test_llc.py`). At Chen et al.'s exact optima the sweep's chosen setting
#   (ε = {glue:text}`lr_used:g`, nβ = {glue:text}`nbeta_used:.0f`) gives the hexagon
#   {glue:text}`cal_llc6:.1f` and the pentagon {glue:text}`cal_llc5:.1f` (theory 8.5 and 7). At
#   the grid's shorter settings the means are {glue:text}`grid_llc6:.1f` and
#   {glue:text}`grid_llc5:.1f`, ordered correctly in {glue:text}`grid_order_frac:.0%` of
#   single-estimate pairs. The absolute values move with ε and nβ.
# - **Solutions vs sparsity.** From the 4-gon start the final hull has {glue:md}`corners_4`; from
#   the 6-gon start, {glue:md}`corners_6`.
# - **The reference's claim about starts.** At the lowest sparsity the 4-gon start averages
#   {glue:text}`loss4_lowS:.3f` against {glue:text}`loss6_lowS:.3f`, and its best seed reaches
#   {glue:text}`best4_lowS:.4f` against {glue:text}`best6_lowS:.4f`: "worse on average, better
#   best" {glue:md}`start_verdict`.
# - **The zero-correlation puzzle.** The between-seed LLC variance is a median
#   {glue:text}`var_ratio_median:.1f` times the chain-noise variance. The within-sparsity
#   loss–LLC correlation is {glue:md}`r_sign` (median {glue:text}`r_median:.2f`;
#   {glue:text}`n_r_sig` of {glue:text}`n_r_cells` intervals exclude zero). {glue:md}`r_verdict`.
# - **Caveat.** {glue:md}`neg_summary`. Without them the median correlation is
#   {glue:md}`r_median_pos_md`, and the sign flips in {glue:md}`pos_flips`; at the lowest
#   sparsity, {glue:md}`lowS_change`. With the reference's sampler settings the correlation is
#   {glue:md}`ref_r`.
# - **Off-by-one.** The reference pairs each LLC with the loss of the next logged step. That
#   changes nothing at the last checkpoint; at the earlier ones {glue:md}`offby_worst`.
# - **Mode connectivity.** After symmetry alignment, the median barrier between the two starts'
#   solutions falls from {glue:text}`barrier_unaligned:.1e` to {glue:text}`barrier_aligned:.1e`;
#   the {glue:md}`lmc_same`.
# - **Pruning.** {glue:md}`imp_first`.
# - **Open.** The LLC values on binary data are not calibrated against a known answer. The
#   correlation intervals (median width {glue:text}`r_ci_width:.2f`) come from few seeds per cell;
#   the `full` scale has 50. The 5-gon theory value assumes its dead feature's weights are flat
#   directions, which holds only while that feature's bias stays negative. Whether the negative
#   correlation survives at 50 seeds with only models at a minimum is open.
