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
# **Question.** As inputs become less sparse, how do the solutions of the toy model of superposition change, and does the local learning coefficient (LLC) track the loss across models trained at the same sparsity?
#
# **Answer.** We retrain the grid of a published capstone project (`anogassis/aisf-project`): 6 features, 2 hidden dimensions, binary inputs. The two starting points are a random 4-gon and a 6-gon. Our SGLD estimator is checked against devinterp 1.3.2 and calibrated on the exact optima of Chen et al.'s one-hot law. There it puts the hexagon at {glue:text}`cal_llc6:.1f` and the pentagon at {glue:text}`cal_llc5:.1f` (theory 8.5 and 7).
#
# At the end of training, at the least sparse setting, the 4-gon start is {glue:md}`avg_word` on average than the 6-gon start (mean loss {glue:text}`loss4_lowS:.3f` against {glue:text}`loss6_lowS:.3f`), and its best seed is {glue:md}`best_word` ({glue:text}`best4_lowS:.4f` against {glue:text}`best6_lowS:.4f`), so the reference's "worse on average, better best" {glue:md}`start_verdict`.
#
# Within one sparsity, the LLC spread across seeds is {glue:md}`spread_word` the spread between the SGLD chains of one model: the median ratio of the two variances is {glue:text}`var_ratio_median:.1f`, {glue:md}`spread_verdict`. The loss–LLC correlation within a sparsity is {glue:md}`r_sign` (median {glue:text}`r_median:.2f`), and {glue:text}`n_r_sig` of {glue:text}`n_r_cells` bootstrap intervals exclude zero. {glue:md}`r_verdict`.
# {glue:md}`neg_summary`; without them the median correlation is {glue:md}`r_median_pos_md`.
#
# After aligning the symmetries (an orthogonal map of the hidden plane plus a joint permutation of the features), the median loss barrier between the two starts' solutions falls from {glue:text}`barrier_unaligned:.1e` to {glue:text}`barrier_aligned:.1e`.

# %%
import time
from contextlib import contextmanager

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from IPython.display import HTML, Markdown, display
from myst_nb import glue

from helpers import stats

from helpers.tms import llc

from helpers.tms import model as tms
from helpers.cache import cached
from helpers.plotting import NULL_COLOR, PALETTE, show, use_style

use_style()
T0, C0 = time.time(), time.process_time()
TIMES: dict[str, tuple[float, float]] = {}  # stage -> (wall seconds, CPU seconds of this process)


@contextmanager
def timed(stage: str):
    """Record the wall and CPU time of a stage; CPU time is what 2 idle cores would see (we use 1 thread)."""
    w, c = time.time(), time.process_time()
    yield
    TIMES[stage] = (time.time() - w, time.process_time() - c)


def say(name: str, text: str) -> None:
    """Glue a computed phrase (words chosen from the numbers) for {glue:md} in the prose."""
    glue(name, Markdown(text), display=False)


def fmt_r(r: float) -> str:
    """A correlation for the prose; NaN (too few models, or a constant) spelled out."""
    return "undefined (too few models)" if np.isnan(r) else f"{r:+.2f}"


def pearson(x, y) -> float:
    """Pearson r, or NaN when there are fewer than 3 points or a constant variable."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 3 or x.std() == 0 or y.std() == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])

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
llc_n: int = 5000  # fresh samples per sparsity on which SGLD runs (one set shared by all models there)
llc_batch: int = 500  # SGLD minibatch size
llc_chains: int = 4  # SGLD chains per model and checkpoint (reference: 5); the LLC stage costs chains x (burnin + draws)
llc_draws: int = 300  # kept draws per chain (reference: 500)
llc_burnin: int = 300  # discarded SGLD steps before the draws
grad_tol: float = 1e-3  # a checkpoint counts as "flat" when the norm of its train-loss gradient is below this
llc_localization: float = 1.0  # gamma, pull towards the trained weights
calib_n: int = 5000  # one-hot uniform samples for the calibration at the exact 6-gon / 5-gon
calib_lrs: list = [1e-4, 3e-4, 1e-3]  # step sizes epsilon swept
calib_nbetas: list = [200.0, 587.0, 2000.0]  # inverse temperatures swept; 587 is n / ln n for n of 5000
calib_chains: int = 8  # chains per setting in the sweep
calib_draws: int = 500  # draws per chain in the sweep
calib_burnin: int = 500  # burn-in per chain in the sweep
calib_repeats: int = 8  # independent estimates per polygon at the grid's own settings (llc_chains, llc_draws, llc_burnin)
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

# %%
torch.set_num_threads(torch_threads)
DEV = torch.device(device)
if DEV.type == "cuda" and not torch.cuda.is_available():
    raise ValueError("device='cuda' was requested but CUDA is not available; set device='cpu'.")
S_ALL = tms.sparsities()
if not set(anim_sparsity_idx) <= set(sparsity_idx):
    raise ValueError(f"anim_sparsity_idx {anim_sparsity_idx} must be a subset of sparsity_idx {sparsity_idx}.")
SPARS = [float(S_ALL[i]) for i in sparsity_idx]
ckpt_steps = sorted({max(1, round(s * steps / 20000)) for s in llc_reference_steps})
log_at = tms.log_steps(steps, n_log, extra=tuple(ckpt_steps))
grid = pd.DataFrame(
    [(init, si, S, seed) for init in tms.INITS for si, S in zip(sparsity_idx, SPARS) for seed in range(n_seeds)],
    columns=["init", "s_idx", "sparsity", "seed"],
)
M = len(grid)
for name, v in (("llc_chains", llc_chains), ("llc_burnin", llc_burnin), ("llc_draws", llc_draws), ("n_ckpt", len(ckpt_steps))):
    glue(name, int(v), display=False)
print(f"{M} models, {steps} steps, {len(log_at)} snapshots, LLC checkpoints at steps {ckpt_steps}")

# %% [markdown]
# ## The model and its known critical points
#
# The model is $f(x) = \mathrm{ReLU}(W^\top W x + b)$, with $W$ of shape 2 × 6 and one bias per feature: 18 parameters in all.
# For Chen et al.'s law (one feature on, value uniform in [0, 1]) the optimal regular hexagon and pentagon can be computed exactly.
# We fit the radius and bias of each by quadrature and compare them with the published values.

# %%
W6, b6, L6 = tms.fit_regular_kgon(6)
W5, b5, L5 = tms.fit_regular_kgon(5)
crit = pd.DataFrame(
    {
        "radius": [W6[:, 0].norm().item(), W5[:, 0].norm().item()],
        "bias": [b6[0].item(), b5[0].item()],
        "loss (mean MSE)": [L6, L5],
        "loss x 6 (Chen et al.)": [6 * L6, 6 * L5],
        "theory LLC": [8.5, 7.0],
    },
    index=["6-gon", "5-gon"],
)
glue("hex_radius", float(crit.loc["6-gon", "radius"]), display=False)
glue("hex_bias", float(crit.loc["6-gon", "bias"]), display=False)
crit

# %% [markdown]
# Our fitted hexagon has radius {glue:text}`hex_radius:.4f` and bias {glue:text}`hex_bias:.4f`; the reference project quotes 1.3205 and −0.6182 from the paper.
# The theory learning coefficients (rank of the Hessian over 2) come from the project notes and were not checked against the paper's table.
#
# ## Calibrating the LLC estimator
#
# The estimator is SGLD localised at the trained weights, $\hat\lambda = n\beta\,(\bar L_{\text{draws}} - L(w^*))$.
# It reimplements devinterp 1.3.2's update, and `tests/test_llc.py` checks it against that package.
# Following devinterp's advice, we first sweep the step size ε and the inverse temperature nβ at the two optima, where we know the answer.

# %%
def calibrate():
    x = tms.make_data(calib_n, None, "onehot_uniform", generator=torch.Generator().manual_seed(1)).to(DEV)
    combos = [(k, e, nb) for k in (6, 5) for e in calib_lrs for nb in calib_nbetas]
    W = torch.stack([(W6 if k == 6 else W5) for k, _, _ in combos]).to(DEV)
    b = torch.stack([(b6 if k == 6 else b5) for k, _, _ in combos]).to(DEV)
    res = llc.estimate_llc(
        W, b, x, lr=torch.tensor([c[1] for c in combos]), nbeta=torch.tensor([c[2] for c in combos]),
        localization=llc_localization, num_chains=calib_chains, num_draws=calib_draws,
        num_burnin_steps=calib_burnin, batch_size=llc_batch, seed=11,
    )
    table = pd.DataFrame(combos, columns=["polygon", "lr", "nbeta"])
    table["llc"] = res.llc_mean.cpu().numpy()
    table["chain_sd"] = res.llc_std.cpu().numpy()
    return table, res.llc_trace().cpu()


with timed("calibration sweep"):
    calib, calib_trace = cached(
        "tms_calib",
        dict(v=2, n=calib_n, lrs=calib_lrs, nbs=calib_nbetas, c=calib_chains, d=calib_draws, bi=calib_burnin, bs=llc_batch, gamma=llc_localization),
        calibrate,
    )
wide = calib.pivot_table(index=["lr", "nbeta"], columns="polygon", values="llc")
wide.columns = [f"{c}-gon" for c in wide.columns]
# rule: closest to theory (squared error summed over the two polygons), hexagon above pentagon
err = (wide["6-gon"] - 8.5) ** 2 + (wide["5-gon"] - 7.0) ** 2
err[wide["6-gon"] <= wide["5-gon"]] = np.inf
LLC_LR, LLC_NBETA = err.idxmin()
wide["sq. error vs theory"] = err
print(f"chosen: lr = {LLC_LR:g}, nbeta = {LLC_NBETA:g}")
wide.round(2)

# %% mystnb={"figure": {"caption": "Calibration at Chen et al.'s exact optima (one-hot uniform law). Left: the LLC estimate (mean over chains, bars: chain standard deviation) against the SGLD step size, for each inverse temperature; dashed: theory (8.5 for the hexagon, 7 for the pentagon). Right: running LLC over draws, at the chosen setting, per chain.", "name": "fig-superposition_llc-calibration"}}
fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.4))
for j, nb in enumerate(calib_nbetas):
    for k, ls in ((6, "-"), (5, ":")):
        d = calib[(calib.polygon == k) & (calib.nbeta == nb)]
        a1.errorbar(d.lr * (1.04 if k == 5 else 1), d.llc, d.chain_sd, ls=ls, marker="o", color=PALETTE[j], label=f"{k}-gon, nβ={nb:g}", ms=3, capsize=2)
for v in (8.5, 7.0):
    a1.axhline(v, color=NULL_COLOR, ls="--", lw=1)
a1.set_xscale("log")
a1.set_xlabel("SGLD step size ε")
a1.set_ylabel("estimated LLC")
a1.legend(ncol=2, fontsize=6)
for k, col in ((6, PALETTE[0]), (5, PALETTE[1])):
    i = calib.index[(calib.polygon == k) & (calib.lr == LLC_LR) & (calib.nbeta == LLC_NBETA)][0]
    for c in range(calib_chains):
        a2.plot(calib_trace[i, c].numpy(), color=col, lw=0.7, alpha=0.6, label=f"{k}-gon" if c == 0 else None)
    a2.axhline(8.5 if k == 6 else 7.0, color=col, ls="--", lw=1)
a2.set_xlabel("draw (after burn-in)")
a2.set_ylabel("running LLC estimate")
a2.legend()
show(fig)
row = calib[(calib.lr == LLC_LR) & (calib.nbeta == LLC_NBETA)].set_index("polygon")
glue("cal_llc6", float(row.loc[6, "llc"]), display=False)
glue("cal_llc5", float(row.loc[5, "llc"]), display=False)
glue("nbeta_used", float(LLC_NBETA), display=False)
glue("lr_used", float(LLC_LR), display=False)


def count_rises(by: str, along: str) -> tuple[int, int]:
    """How often the estimate rises between neighbouring values of `along`, the other knobs fixed."""
    ups = tot = 0
    for _, d in calib.groupby(["polygon", by]):
        v = d.sort_values(along).llc.to_numpy()
        ups, tot = ups + int((np.diff(v) > 0).sum()), tot + len(v) - 1
    return ups, tot


up_lr, n_lr = count_rises("nbeta", "lr")
up_nb, n_nb = count_rises("lr", "nbeta")
say("calib_trend", f"raising the step size raised the estimate in {up_lr} of {n_lr} neighbouring pairs"
    + (f", and raising nβ in {up_nb} of {n_nb}" if n_nb else " (only one nβ was swept at this scale)"))
say("calib_sd", f"{row.loc[6, 'chain_sd']:.2f} for the hexagon and {row.loc[5, 'chain_sd']:.2f} for the pentagon")

# %% [markdown]
# Across the sweep, {glue:md}`calib_trend`: "the" LLC is defined only up to these choices.
# The chosen setting is the grid point closest to the theory values with the hexagon above the pentagon; the table above prints it.
# This choice is tuned to the answer, which is what calibration means. At the chosen setting the chain standard deviation is {glue:md}`calib_sd`.
#
# The sweep uses long chains (`calib_burnin` + `calib_draws` steps, `calib_chains` chains). The grid below cannot afford that: it estimates every model at five checkpoints, so its cost is models × checkpoints × `llc_chains` × (`llc_burnin` + `llc_draws`) SGLD steps on minibatches of `llc_batch`.
# So we check the chosen ε and nβ again at the grid's own, shorter settings: `calib_repeats` independent estimates per polygon, each exactly as one grid model gets it.

# %%
def calibrate_grid_settings():
    x = tms.make_data(calib_n, None, "onehot_uniform", generator=torch.Generator().manual_seed(1)).to(DEV)
    W = torch.stack([W6] * calib_repeats + [W5] * calib_repeats).to(DEV)
    b = torch.stack([b6] * calib_repeats + [b5] * calib_repeats).to(DEV)
    res = llc.estimate_llc(W, b, x, lr=float(LLC_LR), nbeta=float(LLC_NBETA), localization=llc_localization, num_chains=llc_chains,
                           num_draws=llc_draws, num_burnin_steps=llc_burnin, batch_size=llc_batch, seed=12)
    return res.llc_mean.view(2, calib_repeats).cpu()


with timed("calibration at grid settings"):
    rep_llc = cached("tms_calib_grid", dict(v=1, n=calib_n, lr=float(LLC_LR), nb=float(LLC_NBETA), r=calib_repeats, c=llc_chains, d=llc_draws,
                                            bi=llc_burnin, bs=llc_batch, gamma=llc_localization), calibrate_grid_settings)
e6, e5 = rep_llc[0].numpy(), rep_llc[1].numpy()
order_frac = float((e6[:, None] > e5[None, :]).mean())  # P(one hexagon estimate > one pentagon estimate)
gap_z = (e6.mean() - e5.mean()) / np.sqrt(e6.var(ddof=1) / len(e6) + e5.var(ddof=1) / len(e5))
glue("grid_llc6", float(e6.mean()), display=False)
glue("grid_llc5", float(e5.mean()), display=False)
glue("grid_order_frac", order_frac, display=False)
glue("grid_gap_z", float(gap_z), display=False)
pd.DataFrame({"mean LLC": [e6.mean(), e5.mean()], "sd over repeats": [e6.std(ddof=1), e5.std(ddof=1)], "theory": [8.5, 7.0]},
             index=["6-gon", "5-gon"]).round(2)

# %% [markdown]
# At the grid's settings a single estimate puts the hexagon at {glue:text}`grid_llc6:.1f` and the pentagon at {glue:text}`grid_llc5:.1f` on average. A hexagon estimate exceeds a pentagon estimate in {glue:text}`grid_order_frac:.0%` of pairs, and the gap in means is {glue:text}`grid_gap_z:.1f` standard errors.
# We use this ε and nβ, with $n$ = `llc_n` fresh samples, for the models trained on binary data below. Binary data are not the calibration law, so the absolute values there are less certain than their ordering.
#
# ## Training the grid
#
# Every model trains at once: full-batch SGD with momentum, with the weights stacked as $[M, 2, 6]$ and gradients written out by hand (the test suite checks these against a plain `torch.optim.SGD` loop).
# The two starts with the same seed see the same training data.

# %%
def make_sets(n, salt):
    xs = []
    for _, r in grid.iterrows():
        g = torch.Generator().manual_seed(100_000 * salt + 1000 * int(r.s_idx) + int(r.seed))
        xs.append(tms.make_data(n, float(r.sparsity), "binary", generator=g))
    return torch.stack(xs)


def train_grid():
    Ws, bs = [], []
    for init in tms.INITS:
        sub = grid[grid.init == init]
        g = torch.Generator().manual_seed(7 if init == "4-gon" else 8)
        W0, b0 = tms.init_params(len(sub), init, g)
        Ws.append(W0)
        bs.append(b0)
    W0, b0 = torch.cat(Ws).to(DEV), torch.cat(bs).to(DEV)
    res = tms.train(W0, b0, make_sets(n_train, 1).to(DEV), steps, log_at, x_test=make_sets(n_test, 2).to(DEV), lr=lr, momentum=momentum)
    return {k: (v.cpu() if torch.is_tensor(v) else v) for k, v in vars(res).items()}


with timed("training"):
    run = tms.TrainResult(**cached("tms_train", dict(v=1, grid=grid.values.tolist(), steps=steps, log=log_at, n=n_train, nt=n_test, lr=lr, mom=momentum), train_grid))
X_TRAIN = make_sets(n_train, 1)  # the training sets again (cheap), for gradient norms and pruning
grid["final_loss"] = run.train_loss[:, -1].numpy()
grid["test_loss"] = run.test_loss[:, -1].numpy()
grid["kgon"] = [tms.classify_kgon(run.W[m, -1], run.b[m, -1]) for m in range(M)]
grid["k"] = grid.kgon.str[0].astype(int)
print(f"trained {M} models x {steps} steps in {TIMES['training'][0]:.0f} s (cached runs load instantly)")

# %% [markdown]
# ## How the solutions change with sparsity
#
# The animations below show seed `anim_seed` from the 4-gon start at the sparsities in `anim_sparsity_idx`. The arrows are W's columns and the dashed line is their convex hull. The bars show each feature's |bias| (green positive, red negative) next to its norm. The loss curve fills in as training proceeds.

# %%
t_anim = time.time(), time.process_time()
for si in anim_sparsity_idx:
    m = grid.index[(grid.init == "4-gon") & (grid.s_idx == si) & (grid.seed == anim_seed)][0]
    fig, anim = tms.animate_run(run.steps, run.W[m], run.b[m], run.train_loss[m], title=f"4-gon start, sparsity {S_ALL[si]:.3f}, seed {anim_seed}", frames=anim_frames, figsize=(5.6, 3.0))
    with plt.rc_context({"savefig.dpi": 70}):  # small frames keep the page light
        html = anim.to_jshtml(default_mode="once")
    plt.close(fig)
    display(HTML(html))
TIMES["animations"] = (time.time() - t_anim[0], time.process_time() - t_anim[1])
corners = grid.groupby(["init", "sparsity"]).k.mean()
c4 = corners["4-gon"]  # indexed by sparsity, ascending
say("corners_4", f"{c4.iloc[-1]:.1f} corners on average at S = {c4.index[-1]:.3f} and {c4.iloc[0]:.1f} at S = {c4.index[0]:.3f}")
say("corners_6", f"{corners['6-gon'].iloc[-1]:.1f} and {corners['6-gon'].iloc[0]:.1f}")

# %% [markdown]
# Over all seeds, the final hull from the 4-gon start has {glue:md}`corners_4`; from the 6-gon start, {glue:md}`corners_6`.
# Sparse features rarely co-occur, so more of them can share the plane without interfering; dense ones cannot.
# The final polygons of every model are counted next.

# %% mystnb={"figure": {"caption": "Final polygon types by sparsity and starting point. A label k counts the features on the convex hull of W's columns; each + or − marks a feature off the hull, by the sign of its bias.", "name": "fig-superposition_llc-kgons"}}
counts = grid.groupby(["init", "sparsity", "kgon"]).size().unstack(fill_value=0)
labels = sorted(counts.columns, key=lambda s: (-int(s[0]), s))
fig, axes = plt.subplots(1, 2, figsize=(9, 3.2), sharey=True)
cmap = plt.get_cmap("tab20")
for ax, init in zip(axes, tms.INITS):
    c = counts.loc[init].reindex(columns=labels, fill_value=0)
    bottom = np.zeros(len(c))
    for j, lab in enumerate(labels):
        ax.bar(range(len(c)), c[lab], bottom=bottom, color=cmap(j % 20), label=lab)
        bottom += c[lab].values
    ax.set_xticks(range(len(c)), [f"{s:.3f}" for s in c.index])
    ax.set_xlabel("sparsity S (probability a feature is off)")
    ax.set_title(f"{init} start")
axes[0].set_ylabel("number of seeds")
axes[1].legend(title="polygon", fontsize=6, ncol=2, bbox_to_anchor=(1, 1), loc="upper left")
show(fig)

# %% [markdown]
# The loss tells the same story per seed. Does the 4-gon start give worse solutions on average but better best ones, as the reference found?

# %%
summary = grid.groupby(["sparsity", "init"]).final_loss.agg(["mean", "min", "max", "std"]).unstack("init")
lowS = min(SPARS)
glue("lowS", lowS, display=False)
glue("loss4_lowS", float(summary.loc[lowS, ("mean", "4-gon")]), display=False)
glue("loss6_lowS", float(summary.loc[lowS, ("mean", "6-gon")]), display=False)
glue("best4_lowS", float(summary.loc[lowS, ("min", "4-gon")]), display=False)
glue("best6_lowS", float(summary.loc[lowS, ("min", "6-gon")]), display=False)
mean_worse = summary.loc[lowS, ("mean", "4-gon")] > summary.loc[lowS, ("mean", "6-gon")]
best_better = summary.loc[lowS, ("min", "4-gon")] < summary.loc[lowS, ("min", "6-gon")]
say("avg_word", "worse" if mean_worse else "no worse")
say("best_word", "better" if best_better else "no better")
say("start_verdict", "replicates" if (mean_worse and best_better) else
    ("replicates only in part: the average is worse, but the best seed is not better" if mean_worse else
     ("replicates only in part: the best seed is better, but the average is not worse" if best_better else "does not replicate")))
summary.round(4)

# %% [markdown]
# At the lowest sparsity (S = {glue:text}`lowS:.3f`) the 4-gon start is {glue:md}`avg_word` on average ({glue:text}`loss4_lowS:.3f` against {glue:text}`loss6_lowS:.3f`), and its best seed is {glue:md}`best_word` ({glue:text}`best4_lowS:.4f` against {glue:text}`best6_lowS:.4f`). The reference's "worse on average, better best" {glue:md}`start_verdict` here.
#
# ## LLC against loss at five checkpoints
#
# Next, the LLC of every model at the five checkpoints. The SGLD data are `llc_n` fresh samples per sparsity, shared by all models at that sparsity, so the data's own noise does not add spread between seeds.
# Each LLC is paired with the train loss **at the same checkpoint**. The reference's notebook indexes the loss table with the weight-snapshot index, which pairs every LLC with the loss of the **next** logged step; we compare the two pairings further down.
# We also record the norm of the train-loss gradient at each checkpoint, to tell models still descending from models at rest.
#
# **Sampler budget.** Each model gets {glue:text}`llc_chains` chains of {glue:text}`llc_burnin` burn-in and {glue:text}`llc_draws` kept steps at each of {glue:text}`n_ckpt` checkpoints (the reference used 5 chains × 500 draws). Its cost grows with models × checkpoints × chains × steps, which makes it one of the costliest stages of the chapter (the time table at the end gives its share); these settings keep the `book` run within its time budget. The check at grid settings above shows the price: at these settings one hexagon estimate beats one pentagon estimate in {glue:text}`grid_order_frac:.0%` of pairs.

# %%
def llc_grid():
    sets = {}
    for si, S in zip(sparsity_idx, SPARS):
        sets[si] = tms.make_data(llc_n, S, "binary", generator=torch.Generator().manual_seed(50_000 + si))
    X = torch.stack([sets[si] for si in grid.s_idx])
    cols = [run.at(s) for s in ckpt_steps]
    W = run.W[:, cols].reshape(-1, 2, 6)  # [M * K, 2, 6], model-major
    b = run.b[:, cols].reshape(-1, 6)
    Xk = X.repeat_interleave(len(cols), 0)
    res = llc.estimate_llc(
        W.to(DEV), b.to(DEV), Xk.to(DEV), lr=LLC_LR, nbeta=LLC_NBETA, localization=llc_localization,
        num_chains=llc_chains, num_draws=llc_draws, num_burnin_steps=llc_burnin, batch_size=llc_batch, seed=5,
    )
    K = len(cols)
    return dict(mean=res.llc_mean.view(M, K).cpu(), chains=res.llc_per_chain.view(M, K, -1).cpu(), init_loss=res.init_loss.view(M, K).cpu())


with timed("LLC grid"):
    L = cached(
        "tms_llc",
        dict(v=2, grid=grid.values[:, :4].tolist(), steps=steps, log=log_at, n=n_train, ck=ckpt_steps, lr=float(LLC_LR), nb=float(LLC_NBETA),
             g=llc_localization, c=llc_chains, d=llc_draws, bi=llc_burnin, bs=llc_batch, nl=llc_n, lrt=lr, mom=momentum),
        llc_grid,
    )
long = []
for k, s in enumerate(ckpt_steps):
    j = run.at(s)
    nxt = min(j + 1, len(run.steps) - 1)  # the reference's pairing; at the last step there is no next one
    _, gW, gb = tms.loss_and_grad(run.W[:, j], run.b[:, j], X_TRAIN, need_loss=False)
    long.append(grid[["init", "sparsity", "seed"]].assign(
        step=s, llc=L["mean"][:, k].numpy(), chain_var=L["chains"][:, k].var(-1).numpy(),
        loss=run.train_loss[:, j].numpy(), loss_next=run.train_loss[:, nxt].numpy(),
        grad_norm=(gW.square().sum((1, 2)) + gb.square().sum(1)).sqrt().numpy()))
long = pd.concat(long, ignore_index=True)
glue("ckpt_first", int(ckpt_steps[0]), display=False)
first, last = long[long.step == ckpt_steps[0]], long[long.step == ckpt_steps[-1]]
say("neg_first", f"{(first.llc < 0).sum()} of {len(first)} estimates are negative (lowest {first.llc.min():.1f})")
say("neg_last", f"{(last.llc < 0).sum()} of {len(last)} (lowest {last.llc.min():.1f})")
n_neg_last = int((last.llc <= 0).sum())
say("neg_summary", f"{n_neg_last} of {len(last)} models have a non-positive LLC at the last checkpoint (down to {last.llc.min():.1f}), so they are not at a minimum"
    if n_neg_last else "No model has a negative LLC at the last checkpoint")
neg = last[last.llc < 0]
n_neg_flat = int((neg.grad_norm < grad_tol).sum())
say("neg_flat", (f"{n_neg_flat} of the {len(neg)} negative-LLC models at the last checkpoint have a gradient norm below "
                 f"`grad_tol` = {grad_tol:g} (median {neg.grad_norm.median():.1e}, against {last[last.llc >= 0].grad_norm.median():.1e} "
                 "for the rest)" + (", so a small gradient alone does not certify a minimum here" if n_neg_flat else ""))
    if len(neg) else "No model has a negative LLC at the last checkpoint")
print(f"{len(long)} LLC estimates x {llc_chains} chains in {TIMES['LLC grid'][0]:.0f} s")
long.groupby("step")[["llc", "grad_norm"]].median().assign(negative_llc=long.groupby("step").llc.apply(lambda v: int((v < 0).sum())))

# %% mystnb={"figure": {"caption": "Train loss against estimated LLC at five checkpoints (columns), for the 4-gon start (top) and the 6-gon start (bottom), coloured by sparsity. Each point is one model; the loss is from the same checkpoint as the LLC. The LLC axis is linear between −10 and 10 and logarithmic beyond; left of the grey line (LLC below 0) the sampler found lower loss nearby, so the model is not at a minimum.", "name": "fig-superposition_llc-scatter"}}
fig, axes = plt.subplots(2, len(ckpt_steps), figsize=(11, 4.6), sharey="row")
axes = np.atleast_2d(axes)
for r, init in enumerate(tms.INITS):
    for c, s in enumerate(ckpt_steps):
        ax = axes[r, c]
        for j, S in enumerate(SPARS):
            d = long[(long.init == init) & (long.step == s) & np.isclose(long.sparsity, S)]
            ax.scatter(d.llc, d.loss, s=10, color=PALETTE[j % len(PALETTE)], label=f"S={S:.3f}")
        ax.set_yscale("log")
        ax.set_xscale("symlog", linthresh=10)  # a few large negative estimates would squeeze the rest
        ax.axvline(0, color=NULL_COLOR, lw=1)
        if r == 0:
            ax.set_title(f"step {s}")
        if r == 1:
            ax.set_xlabel("estimated LLC (symlog)")
    axes[r, 0].set_ylabel(f"{init} start\ntrain loss (MSE)")
axes[0, -1].legend(fontsize=6)
show(fig)

# %% [markdown]
# A negative LLC means the sampler found lower loss near the checkpoint, so the checkpoint is not a local minimum: the model is still descending, or sits at a saddle (for example a dead feature that can wake up).
# At the first checkpoint (step {glue:text}`ckpt_first`), {glue:md}`neg_first`, as in the reference's plots. At the last, {glue:md}`neg_last`.
# {glue:md}`neg_flat`.
#
# ## Is the within-sparsity spread real?
#
# The reference saw "zero correlation between loss and LLC within a sparsity" from the 6-gon start.
# If every seed reached the same solution, the LLC spread would be pure sampler noise, and no correlation would be expected.
# We test that at the last checkpoint. The between-seed variance of the LLC is compared with the variance expected from chain noise alone (mean chain variance / number of chains). Then the loss–LLC correlation gets a bootstrap interval over seeds.
# Because a negative LLC marks a model that is not at a minimum, we also recompute the correlation on the models with a positive LLC (`r_llc_pos`) and on those with a gradient norm below `grad_tol` (`r_flat`).

# %%
def boot_r(x, y) -> tuple[float, float, float]:
    """Pearson r and its 95% bootstrap interval over the seeds (all NaN when r is undefined)."""
    r = pearson(x, y)
    if np.isnan(r):
        return r, np.nan, np.nan
    return (r, *stats.interval(stats.bootstrap(pearson, np.asarray(x), np.asarray(y), n_boot=n_boot)))


final = long[long.step == ckpt_steps[-1]]
rows = []
for (init, S), d in final.groupby(["init", "sparsity"]):
    noise_var = d.chain_var.mean() / llc_chains
    r, lo, hi = boot_r(d.llc.values, d.loss.values)
    pos, flat = d[d.llc > 0], d[d.grad_norm < grad_tol]
    rows.append(dict(init=init, sparsity=S, llc_mean=d.llc.mean(), between_seed_var=d.llc.var(), chain_noise_var=noise_var,
                     var_ratio=d.llc.var() / noise_var, r=r, r_lo=lo, r_hi=hi, n_neg=int((d.llc <= 0).sum()),
                     r_llc_pos=pearson(pos.llc, pos.loss), n_llc_pos=len(pos), r_flat=pearson(flat.llc, flat.loss), n_flat=len(flat)))
puzzle = pd.DataFrame(rows)
puzzle["n_kgon_types"] = [grid[(grid.init == a) & np.isclose(grid.sparsity, s)].kgon.nunique() for a, s in zip(puzzle.init, puzzle.sparsity)]
valid = puzzle.dropna(subset=["r_lo"])
n_sig = int(((valid.r_lo > 0) | (valid.r_hi < 0)).sum())
glue("var_ratio_median", float(puzzle.var_ratio.median()), display=False)
glue("r_median", float(valid.r.median()) if len(valid) else float("nan"), display=False)
glue("n_r_sig", n_sig, display=False)
glue("n_r_cells", int(len(valid)), display=False)
glue("r_ci_width", float((valid.r_hi - valid.r_lo).median()) if len(valid) else float("nan"), display=False)
n_above = int((puzzle.var_ratio > 1).sum())
say("spread_word", "larger than" if puzzle.var_ratio.median() > 1 else "no larger than")
say("spread_verdict", "so the spread is not just sampler noise" if puzzle.var_ratio.median() > 1 else "so most of the spread could be sampler noise")
say("var_above", f"{n_above} of {len(puzzle)} cells")
n_neg_r, n_pos_r = int((valid.r < 0).sum()), int((valid.r > 0).sum())
say("r_sign", f"negative in {n_neg_r} and positive in {n_pos_r} of {len(valid)} cells")
six = valid[valid.init == "6-gon"]
say("r_verdict", ("Lower loss goes with higher LLC in most cells" if n_neg_r > n_pos_r else
                  "Higher loss goes with higher LLC in most cells" if n_pos_r > n_neg_r else "The correlation has no consistent sign")
    + f"; from the 6-gon start, where the reference saw zero correlation, r is negative in {int((six.r < 0).sum())} of {len(six)} cells. "
    + ("This does not replicate the reference's \"zero correlation\"" if n_neg_r != n_pos_r and n_sig > 0
       else "This is consistent with the reference's \"zero correlation\" at this number of seeds"))
# what changes when only models at a minimum (positive LLC) or at rest (small gradient) are kept
both = puzzle.dropna(subset=["r", "r_llc_pos"])
flips = int((np.sign(both.r) != np.sign(both.r_llc_pos)).sum())
glue("r_median_pos", float(puzzle.r_llc_pos.median()), display=False)
say("r_median_pos_md", fmt_r(float(puzzle.r_llc_pos.median())))
say("r_median_flat", fmt_r(float(puzzle.r_flat.median())))
say("pos_flips", f"{flips} of {len(both)} cells")
lo_rows = puzzle[np.isclose(puzzle.sparsity, lowS)].set_index("init")
say("lowS_change", "; ".join(f"{i} start: {fmt_r(lo_rows.loc[i, 'r'])} with all seeds, {fmt_r(lo_rows.loc[i, 'r_llc_pos'])} with the "
                             f"{lo_rows.loc[i, 'n_llc_pos']} positive-LLC seeds" for i in tms.INITS))
say("neg_lowS", f"{int((final[np.isclose(final.sparsity, lowS)].llc <= 0).sum())} of the {int((final.llc <= 0).sum())} non-positive estimates at the last checkpoint")
say("flat_kept", f"{int(puzzle.n_flat.sum())} of {int(len(final))} models")
puzzle.round(3)

# %% mystnb={"figure": {"caption": "Left: between-seed variance of the final LLC against the variance that chain noise alone would give (per sparsity and start; the grey line is equality). Right: within-sparsity Pearson correlation of loss and LLC at the last checkpoint, with 95% bootstrap intervals over seeds (filled); open circles: the same correlation over only the models with a positive LLC. Below zero, lower loss goes with higher LLC.", "name": "fig-superposition_llc-puzzle"}}
fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.3))
for j, init in enumerate(tms.INITS):
    d = puzzle[puzzle.init == init]
    a1.scatter(d.chain_noise_var, d.between_seed_var, color=PALETTE[j], label=f"{init} start")
    off = -0.004 if j == 0 else 0.004
    a2.errorbar(d.sparsity + off, d.r, [np.clip(d.r - d.r_lo, 0, None), np.clip(d.r_hi - d.r, 0, None)], fmt="o", color=PALETTE[j], capsize=2, label=f"{init} start, all seeds")
    a2.scatter(d.sparsity + 3 * off, d.r_llc_pos, facecolors="none", edgecolors=PALETTE[j], label=f"{init} start, LLC > 0 only")
lim = [min(puzzle.chain_noise_var.min(), puzzle.between_seed_var.min()) * 0.5, max(puzzle.chain_noise_var.max(), puzzle.between_seed_var.max()) * 2]
a1.plot(lim, lim, color=NULL_COLOR, ls="--")
a1.set_xscale("log")
a1.set_yscale("log")
a1.set_xlabel("chain-noise variance of one model's LLC")
a1.set_ylabel("between-seed variance of the LLC")
a1.legend(fontsize=7)
a2.axhline(0, color=NULL_COLOR, ls="--")
a2.set_ylim(-1.05, 1.05)
a2.set_xlabel("sparsity S (probability a feature is off)")
a2.set_ylabel("Pearson r of loss and LLC")
a2.legend(fontsize=6)
show(fig)

# %% [markdown]
# Points above the grey line are cells where seeds differ in LLC by more than one model's chains differ from each other: {glue:md}`var_above`. Compare with `n_kgon_types`, the number of polygon types the seeds reached there.
# The within-sparsity correlation is {glue:md}`r_sign`; the median 95% interval is {glue:text}`r_ci_width:.2f` wide. {glue:md}`r_verdict`.
#
# **Caveat: models that are not at a minimum.** A model with a negative LLC is not at a minimum, so its "LLC" is not a learning coefficient, and a few such models with a high loss can drive a correlation on their own. Keeping only the models with a positive LLC moves the median correlation from {glue:text}`r_median:.2f` to {glue:md}`r_median_pos_md` and flips its sign in {glue:md}`pos_flips`. At the lowest sparsity, which holds {glue:md}`neg_lowS`: {glue:md}`lowS_change`.
# Keeping only models with a gradient norm below `grad_tol` ({glue:md}`flat_kept`) gives a median of {glue:md}`r_median_flat`.
#
# **The off-by-one pairing.** At the last checkpoint there is no next logged step, so the reference's pairing is the same as ours there. At the earlier checkpoints the loss is still moving, and the two pairings can differ; the table compares them.

# %%
ob_rows = []
for s in ckpt_steps[:-1]:
    for (init, S), d in long[long.step == s].groupby(["init", "sparsity"]):
        ob_rows.append(dict(step=s, init=init, sparsity=S, r_same_step=pearson(d.llc, d.loss), r_next_step=pearson(d.llc, d.loss_next)))
offby = pd.DataFrame(ob_rows)
offby["change"] = offby.r_next_step - offby.r_same_step
ob_table = offby.groupby("step").agg(median_r_same=("r_same_step", "median"), median_r_next=("r_next_step", "median"),
                                     max_abs_change=("change", lambda v: v.abs().max()))
worst = offby.loc[offby.change.abs().idxmax()] if offby.change.notna().any() else None
say("offby_worst", "no cell has a defined correlation at the earlier checkpoints" if worst is None else
    (f"the largest change is {worst.r_same_step:+.2f} → {worst.r_next_step:+.2f} ({worst.init} start, S = {worst.sparsity:.3f}, step {int(worst.step)}), "
     f"and the median absolute change over all {int(offby.change.notna().sum())} early cells is {offby.change.abs().median():.3f}"))
ob_table.round(3)

# %% [markdown]
# With the reference's pairing, {glue:md}`offby_worst`.
#
# The reference's own sampler settings differ from ours: ε = `ref_lr`, nβ = 300 / ln 300, `ref_n` fresh samples per model, full batch, no burn-in.
# We rerun them at the last checkpoint. This asks whether its "zero correlation" could come from estimator noise.

# %%
def llc_reference_protocol():
    X = torch.stack([
        tms.make_data(ref_n, float(r.sparsity), "binary", generator=torch.Generator().manual_seed(70_000 + i)) for i, r in grid.iterrows()
    ])
    res = llc.estimate_llc(run.W[:, -1].to(DEV), run.b[:, -1].to(DEV), X.to(DEV), lr=ref_lr, nbeta=llc.default_nbeta(300),
                           localization=1.0, num_chains=ref_chains, num_draws=ref_draws, num_burnin_steps=0, seed=9)
    return dict(mean=res.llc_mean.cpu(), var=res.llc_per_chain.var(-1).cpu())


with timed("LLC, reference protocol"):
    R = cached("tms_llc_ref", dict(v=2, grid=grid.values[:, :4].tolist(), steps=steps, n=n_train, lr=ref_lr, rn=ref_n, c=ref_chains, d=ref_draws, lrt=lr), llc_reference_protocol)
ref_rows = []
for (init, S), d in grid.assign(llc_ref=R["mean"].numpy(), var_ref=R["var"].numpy()).groupby(["init", "sparsity"]):
    r, lo, hi = boot_r(d.llc_ref.values, d.final_loss.values)
    ref_rows.append(dict(init=init, sparsity=S, llc_mean=d.llc_ref.mean(), var_ratio=d.llc_ref.var() / (d.var_ref.mean() / ref_chains), r=r, r_lo=lo, r_hi=hi))
ref_puzzle = pd.DataFrame(ref_rows)
ours_med, ref_med = float(puzzle.llc_mean.median()), float(ref_puzzle.llc_mean.median())
ref_valid = ref_puzzle.dropna(subset=["r"])
say("ref_level", f"{'lower' if ref_med < ours_med else 'higher'} than ours (median cell mean {ref_med:.2f} against {ours_med:.2f})")
say("ref_r", f"negative in {int((ref_valid.r < 0).sum())} and positive in {int((ref_valid.r > 0).sum())} of {len(ref_valid)} cells "
    f"(median {ref_valid.r.median():.2f}), and {int(((ref_valid.r_lo > 0) | (ref_valid.r_hi < 0)).sum())} intervals exclude zero")
say("ref_var", f"{int((ref_puzzle.var_ratio > 1).sum())} of {len(ref_puzzle)} cells")
glue("ref_nbeta", llc.default_nbeta(300), display=False)
ref_puzzle.round(3)

# %% [markdown]
# With the reference's settings the LLCs come out {glue:md}`ref_level`; its nβ is {glue:text}`ref_nbeta:.1f`, against our {glue:text}`nbeta_used:.0f`. The correlation is {glue:md}`ref_r`. Between-seed variance exceeds chain noise in {glue:md}`ref_var`.
#
# ## Are the two starts' solutions linearly connected?
#
# This model has no hidden-neuron permutations. Its symmetries are an orthogonal map of the 2-d hidden plane ($W \to RW$ keeps $W^\top W$) and a relabelling of the features. Because inputs and outputs are the same features, the relabelling moves W's columns and b together.
# We align each 6-gon-start model onto the 4-gon-start model with the same sparsity and seed (and the same data). The search tries all 720 permutations, with the best rotation or reflection for each from Procrustes. Then we measure the loss barrier on the straight path.
# As a control, we also align pairs from the same start (seeds s and s+1).

# %%
def eval_sets():
    return torch.stack([tms.make_data(lmc_n_eval, float(S), "binary", generator=torch.Generator().manual_seed(90_000 + int(si)))
                        for si, S in zip(grid.s_idx, grid.sparsity)])


XE = eval_sets()
Wf, bf = run.W[:, -1], run.b[:, -1]
a_idx = grid.index[grid.init == "4-gon"].to_numpy()
b_idx = np.array([grid.index[(grid.init == "6-gon") & (grid.s_idx == grid.s_idx[i]) & (grid.seed == grid.seed[i])][0] for i in a_idx])
pairs = [("4-gon vs 6-gon start", a_idx, b_idx)]
for init in tms.INITS:  # same-start control: seed s against seed s+1 at the same sparsity
    idx = grid.index[grid.init == init].to_numpy()
    nxt = np.array([grid.index[(grid.init == init) & (grid.s_idx == grid.s_idx[i]) & (grid.seed == (grid.seed[i] + 1) % n_seeds)][0] for i in idx])
    pairs.append((f"{init} vs {init} start", idx, nxt))
lmc_rows = []
for name, ia, ib in pairs:
    ia, ib = torch.tensor(ia), torch.tensor(ib)
    Rm, perm, cost = tms.align(Wf[ia], bf[ia], Wf[ib], bf[ib])
    Wb_al, bb_al = tms.apply_symmetry(Wf[ib], bf[ib], Rm, perm)
    bar_raw, _ = tms.interpolation_barrier(Wf[ia], bf[ia], Wf[ib], bf[ib], XE[ia], lmc_alphas)
    bar_al, _ = tms.interpolation_barrier(Wf[ia], bf[ia], Wb_al, bb_al, XE[ia], lmc_alphas)
    same_kgon = (grid.kgon[ia.numpy()].values == grid.kgon[ib.numpy()].values)
    lmc_rows.append(pd.DataFrame(dict(pair=name, sparsity=grid.sparsity[ia.numpy()].values, unaligned=bar_raw.numpy(), aligned=bar_al.numpy(), same_kgon=same_kgon, dist=cost.sqrt().numpy())))
lmc = pd.concat(lmc_rows, ignore_index=True)
cross = lmc[lmc.pair == "4-gon vs 6-gon start"]
glue("barrier_unaligned", float(cross.unaligned.median()), display=False)
glue("barrier_aligned", float(cross.aligned.median()), display=False)


def med(d, col):
    return f"{d[col].median():.1e}" if len(d) else "n/a"


same, diff = cross[cross.same_kgon], cross[~cross.same_kgon]
say("lmc_drop", f"{int((cross.aligned < cross.unaligned).sum())} of {len(cross)} pairs")
say("lmc_same", f"{len(same)} pairs that reached the same polygon type have a median aligned barrier of {med(same, 'aligned')}, "
    f"and the {len(diff)} pairs with different types {med(diff, 'aligned')}" if len(same) and len(diff) else
    f"{len(cross)} pairs all reached {'the same' if len(same) else 'different'} polygon types (median aligned barrier {med(cross, 'aligned')})")
ctrl = lmc[lmc.pair != "4-gon vs 6-gon start"]
say("lmc_ctrl", f"{med(ctrl, 'unaligned')} before and {med(ctrl, 'aligned')} after alignment")
lmc.groupby(["pair", "same_kgon"])[["unaligned", "aligned", "dist"]].median().round(4).assign(n=lmc.groupby(["pair", "same_kgon"]).size())

# %% mystnb={"figure": {"caption": "Loss barrier on the straight path between two trained models, before (grey) and after (colour) aligning the symmetries, by sparsity. Left: a 4-gon-start model against the 6-gon-start model with the same data and seed. Right: the control, two seeds from the same start.", "name": "fig-superposition_llc-lmc"}}
fig, axes = plt.subplots(1, 2, figsize=(9, 3.2), sharey=True)
for ax, d, title in ((axes[0], cross, "4-gon vs 6-gon start"), (axes[1], ctrl, "same start (control)")):
    for j, S in enumerate(SPARS):
        e = d[np.isclose(d.sparsity, S)]
        jit = (np.random.default_rng(j).random(len(e)) - 0.5) * 0.25
        ax.scatter(j + jit - 0.15, e.unaligned + 1e-6, s=8, color=NULL_COLOR)
        ax.scatter(j + jit + 0.15, e.aligned + 1e-6, s=8, color=np.where(e.same_kgon, PALETTE[0], PALETTE[1]))
    ax.set_xticks(range(len(SPARS)), [f"{s:.3f}" for s in SPARS])
    ax.set_yscale("log")
    ax.set_xlabel("sparsity S (probability a feature is off)")
    ax.set_title(title)
axes[0].set_ylabel("loss barrier (MSE) + 1e-6")
axes[0].scatter([], [], color=NULL_COLOR, label="unaligned")
axes[0].scatter([], [], color=PALETTE[0], label="aligned, same polygon")
axes[0].scatter([], [], color=PALETTE[1], label="aligned, different polygon")
axes[0].legend(fontsize=6)
show(fig)

# %% [markdown]
# Alignment lowers the barrier in {glue:md}`lmc_drop` across the two starts; the median falls from {glue:text}`barrier_unaligned:.1e` to {glue:text}`barrier_aligned:.1e`.
# The {glue:md}`lmc_same`. A pair with different polygons is two different solutions, not two relabellings of one. In the same-start control the median barrier is {glue:md}`lmc_ctrl`.
#
# ## Does pruning keep the polygon?
#
# Iterative magnitude pruning with rewinding works on the 12 weights in W (biases are kept). Each round removes the `imp_per_round` smallest surviving weights, rewinds the survivors to their values at `imp_rewind_frac` of training, and retrains under the mask.
# A regular hexagon can lose at most two weights: at a suitable rotation, two of its vertices lie on an axis.

# %%
def imp():
    sel = grid.index[grid.seed < imp_seeds].to_numpy()
    r_step = min(log_at[1:], key=lambda s: abs(s - imp_rewind_frac * steps))
    j = run.at(r_step)
    X = X_TRAIN[torch.tensor(sel)]
    pr = tms.prune_and_retrain(run.W[sel, j].to(DEV), run.b[sel, j].to(DEV), run.W[sel, -1].to(DEV), run.b[sel, -1].to(DEV), X.to(DEV),
                               steps=steps - r_step, rounds=imp_rounds, per_round=imp_per_round, lr=lr, momentum=momentum)
    return dict(sel=sel, rewind_step=r_step, n_weights=pr.n_weights, W=pr.W.cpu(), b=pr.b.cpu(), loss=pr.loss.cpu())


with timed("pruning"):
    P = cached("tms_imp", dict(v=1, grid=grid.values[:, :4].tolist(), steps=steps, n=n_train, log=log_at, s=imp_seeds, r=imp_rounds, p=imp_per_round, f=imp_rewind_frac, lr=lr), imp)
imp_rows = []
for r, nw in enumerate(P["n_weights"]):
    for c, m in enumerate(P["sel"]):
        imp_rows.append(dict(init=grid.init[m], sparsity=grid.sparsity[m], seed=grid.seed[m], weights=nw,
                             kgon=tms.classify_kgon(P["W"][r, c], P["b"][r, c]), loss=float(P["loss"][r, c])))
imp_df = pd.DataFrame(imp_rows)
dense = imp_df[imp_df.weights == 12].set_index(["init", "sparsity", "seed"])
imp_df["dense_kgon"] = [dense.loc[(a, s, e), "kgon"] for a, s, e in zip(imp_df.init, imp_df.sparsity, imp_df.seed)]
imp_df["dense_loss"] = [dense.loc[(a, s, e), "loss"] for a, s, e in zip(imp_df.init, imp_df.sparsity, imp_df.seed)]
imp_df["outcome"] = np.select(
    [imp_df.kgon == imp_df.dense_kgon, imp_df.kgon.str[0].astype(int) < imp_df.dense_kgon.str[0].astype(int)],
    ["kept", "fewer corners"], "changed")
print(f"rewound to step {P['rewind_step']}; pruning took {TIMES['pruning'][0]:.0f} s")
imp_df[imp_df.weights < 12].groupby("weights").outcome.value_counts().unstack(fill_value=0)

# %% mystnb={"figure": {"caption": "Iterative magnitude pruning with rewinding. Left: fraction of models whose polygon type is kept, loses corners, or changes otherwise, against the number of weights left in W. Right: final loss relative to the dense model, per sparsity (median over seeds and starts).", "name": "fig-superposition_llc-imp"}}
fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.2))
frac = imp_df.groupby("weights").outcome.value_counts(normalize=True).unstack(fill_value=0)
for j, col in enumerate(["kept", "fewer corners", "changed"]):
    if col in frac:
        a1.plot(frac.index, frac[col], marker="o", color=PALETTE[j], label=col)
a1.invert_xaxis()
a1.set_xlabel("weights left in W (of 12)")
a1.set_ylabel("fraction of models")
a1.legend()
rel = imp_df.assign(ratio=imp_df.loss / imp_df.dense_loss).groupby(["sparsity", "weights"]).ratio.median().unstack("sparsity")
for j, S in enumerate(rel.columns):
    a2.plot(rel.index, rel[S], marker="o", color=PALETTE[j % len(PALETTE)], label=f"S={S:.3f}")
a2.axhline(1, color=NULL_COLOR, ls="--")
a2.invert_xaxis()
a2.set_xlabel("weights left in W (of 12)")
a2.set_ylabel("final loss / dense model's loss")
a2.legend(fontsize=6)
show(fig)
w1, wl = 12 - imp_per_round, int(imp_df.weights.min())
r1, rl = frac.loc[w1], frac.loc[wl]
say("imp_first", f"After the first round ({w1} weights left) the polygon type is kept in {r1.get('kept', 0):.0%} of models, "
    f"and the median loss is {rel.loc[w1].median():.2f} times the dense loss")
say("imp_last", f"With {wl} weights left, {rl.get('kept', 0):.0%} keep their type and {rl.get('fewer corners', 0):.0%} have fewer corners; "
    f"the median loss ratio is highest at S = {rel.loc[wl].idxmax():.3f} ({rel.loc[wl].max():.1f}) and lowest at S = {rel.loc[wl].idxmin():.3f} ({rel.loc[wl].min():.1f})")

# %% [markdown]
# {glue:md}`imp_first`. {glue:md}`imp_last`.
#
# ## Time table
#
# Wall time on a shared machine is inflated by other jobs; CPU time (this process, one thread) is close to what 2 idle cores would take. A stage loaded from the cache shows almost no time.

# %%
TIMES["total"] = (time.time() - T0, time.process_time() - C0)
times = pd.DataFrame(TIMES, index=["wall s", "CPU s"]).T.round(1)
times["share of CPU"] = (times["CPU s"] / times.loc["total", "CPU s"]).round(2)
glue("cpu_total", float(times.loc["total", "CPU s"]), display=False)
times

# %% [markdown]
# ## Conclusion
#
# - **Calibration.** The batched SGLD estimator agrees with devinterp 1.3.2 within sampling error (`tests/test_llc.py`). At Chen et al.'s exact optima the sweep's chosen setting (ε = {glue:text}`lr_used:g`, nβ = {glue:text}`nbeta_used:.0f`) gives the hexagon {glue:text}`cal_llc6:.1f` and the pentagon {glue:text}`cal_llc5:.1f` (theory 8.5 and 7). At the grid's shorter settings the means are {glue:text}`grid_llc6:.1f` and {glue:text}`grid_llc5:.1f`, ordered correctly in {glue:text}`grid_order_frac:.0%` of single-estimate pairs. The absolute values move with ε and nβ.
# - **Solutions vs sparsity.** From the 4-gon start the final hull has {glue:md}`corners_4`; from the 6-gon start, {glue:md}`corners_6`.
# - **The reference's claim about starts.** At the lowest sparsity the 4-gon start averages {glue:text}`loss4_lowS:.3f` against {glue:text}`loss6_lowS:.3f`, and its best seed reaches {glue:text}`best4_lowS:.4f` against {glue:text}`best6_lowS:.4f`: "worse on average, better best" {glue:md}`start_verdict`.
# - **The zero-correlation puzzle.** The between-seed LLC variance is a median {glue:text}`var_ratio_median:.1f` times the chain-noise variance. The within-sparsity loss–LLC correlation is {glue:md}`r_sign` (median {glue:text}`r_median:.2f`; {glue:text}`n_r_sig` of {glue:text}`n_r_cells` intervals exclude zero). {glue:md}`r_verdict`.
# - **Caveat.** {glue:md}`neg_summary`. Without them the median correlation is {glue:md}`r_median_pos_md`, and the sign flips in {glue:md}`pos_flips`; at the lowest sparsity, {glue:md}`lowS_change`. With the reference's sampler settings the correlation is {glue:md}`ref_r`.
# - **Off-by-one.** The reference pairs each LLC with the loss of the next logged step. That changes nothing at the last checkpoint; at the earlier ones {glue:md}`offby_worst`.
# - **Mode connectivity.** After symmetry alignment, the median barrier between the two starts' solutions falls from {glue:text}`barrier_unaligned:.1e` to {glue:text}`barrier_aligned:.1e`; the {glue:md}`lmc_same`.
# - **Pruning.** {glue:md}`imp_first`.
# - **Open.** The LLC values on binary data are not calibrated against a known answer. The correlation intervals (median width {glue:text}`r_ci_width:.2f`) come from `n_seeds` seeds per cell; the `full` scale has 50. The 5-gon theory value assumes its dead feature's weights are flat directions, which holds only while that feature's bias stays negative. Whether the negative correlation survives at 50 seeds with only models at a minimum is open.
