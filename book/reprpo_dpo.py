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
# # Aligning hidden states vs aligning outputs (ReprPO vs DPO)
#
# **Question.** If we train a model's preferences by moving the *hidden states* that carry them
# (Representation Preference Optimisation, ReprPO {cite:p}`wassname2024reprpo`) instead of the
# output log-probabilities (DPO {cite:p}`rafailov2023dpo`), does it generalise better under
# distribution shift {cite:p}`clymer2023genies`?
#
# **Answer (here).** On a toy GENIES, with every method given the same LoRA budget, its own
# learning rate chosen on an in-distribution validation split, {glue:text}`n_seeds` seeds and
# bootstrap intervals: DPO moves mean accuracy on the shifted splits from a base of
# {glue:text}`base_shift:.3f` to {glue:text}`dpo_shift:.3f` (95% CI {glue:text}`dpo_shift_ci`).
# The ReprPO variant that fits the validation split best, {glue:text}`best_reprpo`, reaches
# {glue:text}`reprpo_shift:.3f` ({glue:text}`reprpo_shift_ci`); its difference to DPO is
# {glue:text}`diff_shift:+.3f` ({glue:text}`diff_shift_ci`), so hidden-state alignment
# {glue:text}`verdict`. As a control, DPO on shuffled labels: real minus shuffled DPO on the
# shifted splits is {glue:text}`dpo_vs_shuffled`. On the unrelated split (collateral damage) DPO
# scores {glue:text}`dpo_unrel:.3f` and {glue:text}`best_reprpo` {glue:text}`reprpo_unrel:.3f`
# (base {glue:text}`base_unrel:.3f`). The reference's "ortho" and "hra" rows are the same method:
# both transforms are isometries, so the distance loss and its gradient cannot see them (they
# agree to {glue:text}`iso_grad_gap:.0e`), and the two trained rows differ on the shifted
# splits by {glue:text}`ortho_hra_diff` (95% CI), i.e. by seed noise.

# %% tags=["hide-input"]
import warnings

import numpy as np
import pandas as pd
import torch
from IPython.display import display
from matplotlib import pyplot as plt
from myst_nb import glue
from tqdm.auto import tqdm

from helpers import stats
from helpers.chapter import StageTimer, Verdict, format_draws, verdict_table, verdict_word
from helpers.plotting import NULL_COLOR, PALETTE, show, use_style
from helpers.reprpo import experiment as ex
from helpers.reprpo import methods as rp
from helpers.reprpo import toy_genies as tg

use_style()
warnings.filterwarnings("ignore", message=".*torch_dtype.*")
timer = StageTimer()

# %% tags=["parameters"]
scale: str = "book"  # smoke | book | full (set by helpers.run)
base_model: str = "toy"  # "toy" (pretrained here) or a hub id / local folder (full scale)
genies_local_dir: str = ""  # full scale: folder with <config>/<split>.parquet; "" reads the hub
toy_hidden: int = 128  # toy Llama width (128 -> about 1.05M parameters)
toy_layers: int = 4  # toy Llama blocks
toy_heads: int = 4  # attention heads
pretrain_steps: int = 1000  # toy pretraining optimizer steps (cached after the first run)
pretrain_batch: int = 64  # documents per pretraining step
n_train: int = 750  # preference pairs to train on
n_val: int = 200  # in-distribution validation pairs (learning-rate choice, variant choice)
n_eval: int = 200  # pairs in each evaluation split
epochs: int = 2  # passes over the training pairs: the budget every method gets
batch_size: int = 16  # pairs per optimizer step
max_prompt_len: int = 96  # tokens; the prompt is left-truncated (reference: 96)
max_len: int = 196  # tokens; the completion is right-truncated (reference: 196)
lr_grid: list = [3e-4, 1e-3, 3e-3, 1e-2, 3e-2]  # AdamW learning rates searched for every method
# always compared:
fixed_methods: list = ["dpo", "projgrad", "projbp", "side-none-mse", "hs-ortho-mse", "hs-hra-mse"]
n_best_variants: int = 2  # extra ReprPO variants: the best of the coverage grid on validation
grid_steps: int = 30  # optimizer steps per variant in the coverage grid (a reduced budget)
grid_lr: float = 1e-2  # learning rate of the coverage grid
n_seeds: int = 5  # seeds of the main comparison (data sample, LoRA init, batch order)
n_boot: int = 2000  # bootstrap draws
torch_threads: int = 1  # CPU threads (1 is fastest on a shared 2-core machine)

# %% [markdown]
# The device and thread count are fixed once; everything else reads the parameters above.

# %% tags=["hide-input"]
torch.set_num_threads(torch_threads)
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
TOY = base_model == "toy"
print(f"scale={scale}, device={DEVICE}, base model={base_model}")

# %% [markdown]
# ## A toy GENIES
#
# The toy language (`helpers/reprpo/toy_genies.py`) has 32 tokens.
# A document is a few task lines (`add`, `sort`, `rev`, `max`) written by one hidden persona:
# an **honest** one, or a **trickster** with a systematic error (sum + 1, descending sort, no
# reversal; `max` is always right).
# A model that predicts documents well must infer the persona from context, so "being correct"
# becomes a latent direction that preference training can push on.

# %% tags=["hide-input"]
for doc in tg.make_documents(3, seed=1):
    print(doc)

# %% [markdown]
# Preference pairs give a zero-shot prompt; chosen is the honest answer, rejected the
# trickster's. We train on `add` with a textbook marker and test on shifts named by GENIES
# categories: **context** (fiction marker), **difficulty** (three operands), **encoding**
# (digits as letters), **skill** (sorting, reversal), plus an **unrelated** split (`max` against
# a wrong element) where any change is collateral damage.

# %% tags=["hide-input"]
if TOY:
    example = tg.make_all_splits(seed=0, n_train=1, n_val=1, n_eval=1)
    print(pd.DataFrame([{"split": s, "category": tg.SHIFT_CATEGORY[s], **r[0]}
                        for s, r in example.items()]).to_string(index=False))

# %% [markdown]
# ## The base model
#
# We pretrain a Llama-architecture model (`transformers.LlamaConfig`) on persona documents.
# The weights are cached, so only the first run pays; the printed time is that first run's.

# %% tags=["hide-input"]
with timer.stage("load or pretrain base"):
    if TOY:
        tok = tg.ToyTokenizer()
        base, pre_info = tg.load_or_pretrain(
            dict(hidden=toy_hidden, layers=toy_layers, heads=toy_heads),
            tg.PretrainSettings(steps=pretrain_steps, batch=pretrain_batch))
        encode_prompt = encode_completion = tok.encode
        pad_id = tok.pad_id
        print(f"pretraining took {pre_info['seconds']:.0f} s when it ran "
              f"({'loaded from cache now' if pre_info['cached'] else 'computed now'})")
    else:
        from helpers.reprpo import genies as gd

        base, hf_tok = gd.load_causal_lm(base_model)
        encode_prompt, encode_completion, pad_id = gd.hf_encoders(hf_tok)
        pre_info = {"seconds": float("nan"), "cached": False, "losses": []}
    base.to(DEVICE).eval()
n_blocks = len(rp._layers(base))
print(f"{sum(p.numel() for p in base.parameters()) / 1e6:.2f}M parameters, {n_blocks} blocks; "
      f"ReprPO collects blocks {rp.collection_blocks(n_blocks)}")

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Pretraining loss of the toy Llama on persona documents (next-token cross-entropy, smoothed over 20 steps). The floor is set by the unpredictable task arguments and the persona, which must be inferred from earlier lines.", "name": "fig-reprpo_dpo-pretrain"}}
fig, ax = plt.subplots(figsize=(6, 3))
if pre_info["losses"]:
    losses = pd.Series(pre_info["losses"])
    ax.plot(losses.index, losses.rolling(20, min_periods=1).mean(), color=PALETTE[0])
ax.set_xlabel("pretraining step")
ax.set_ylabel("cross-entropy (nats per token)")
show(fig)

# %% [markdown]
# What is left at the end of the curve is the entropy the model cannot remove: the random task
# arguments, and the persona while it is still ambiguous early in a document.
# The next cell turns the records of one seed into token tensors.

# %% tags=["hide-input"]
def make_splits(seed: int) -> dict[str, dict[str, torch.Tensor]]:
    """Tokenised preference splits for one seed (toy: a fresh sample; full: the hub splits)."""
    recs = (tg.make_all_splits(seed, n_train, n_val, n_eval) if TOY else gd.load_table_era_splits(
        n_train, n_val, n_eval, local_dir=genies_local_dir or None))
    return {s: rp.tokenize_pairs(r, encode_prompt, encode_completion, pad_id, max_prompt_len,
                                 max_len) for s, r in recs.items()}


splits0 = make_splits(0)
SPLIT_NAMES = list(splits0)
SHIFTS = [s for s in SPLIT_NAMES
          if tg.SHIFT_CATEGORY.get(s, s) not in ("in-distribution", "unrelated")]
EVAL_NAMES = [s for s in SPLIT_NAMES if s != "val"]
print("splits:", SPLIT_NAMES, "| shifts:", SHIFTS)

# %% [markdown]
# Before training anything, the base model's accuracy on each split is the control every
# method is measured against (0.5 would be a coin flip; the toy's prior differs by split).

# %% tags=["hide-input"]
base_acc0 = rp.evaluate_splits(base, splits0)
pd.DataFrame({"base accuracy": {s: a.mean() for s, a in base_acc0.items()},
              "pairs": {s: len(a) for s, a in base_acc0.items()}}).round(3)

# %% [markdown]
# Does the base model carry the "correctness" latent the design relies on? A probe: prefix the
# prompt with three solved lines by one persona. A model that infers the persona in context
# should prefer the honest answer after honest lines and the trickster's after trickster lines.

# %% tags=["hide-input"]
if TOY:
    probe = {}
    for split in ("val", "skill_sort", "skill_rev"):
        for k, persona in ((0, "honest"), (3, "honest"), (3, "trickster")):
            recs = tg.make_preference_split(split, n_eval, seed=99, context_lines=k,
                                            context_persona=persona)
            data = rp.tokenize_pairs(recs, encode_prompt, encode_completion, pad_id,
                                     max_prompt_len, max_len)
            col = "zero-shot" if k == 0 else f"after 3 {persona} lines"
            probe[(split, col)] = rp.preference_correct(base, data).mean()
    probe = pd.Series(probe).unstack()
    persona_gap = float((probe["after 3 honest lines"] - probe["after 3 trickster lines"]).max())
    glue("persona_gap", persona_gap, display=False)
    display(probe.round(3))
else:
    glue("persona_gap", float("nan"), display=False)

# %% [markdown]
# If the two context columns differ little (largest gap here {glue:text}`persona_gap:.2f`), the
# base model has not learned to infer the persona, and preference training has to teach the
# tasks' correct answers rather than select a persona the model already represents. That makes
# this a harder and different test of generalisation than the one the design intended.
# Length of pretraining alone does not fix it: with `-p pretrain_steps 4000` (four times this
# budget; final loss 1.19 instead of 1.41 nats, 15 minutes on one core) the addition probe
# stayed at 0.45 after honest and 0.46 after trickster lines (sorting: 0.72 against 0.53), so
# the model still cannot tell a sum from sum + 1 well enough to infer who is writing.

# %% [markdown]
# ## One training loop, four families of methods
#
# Every method trains a LoRA adapter (rank 8 on `q_proj`/`v_proj`) {cite:p}`hu2022lora` with
# the same loop in `helpers/reprpo/methods.py`: four forward passes per step (reference and policy,
# chosen and rejected), AdamW, gradient clipping at 0.3, {glue:text}`budget_steps` optimizer
# steps. Only the loss or a gradient hook changes:
#
# - **DPO**:
#  $-\log\sigma(\beta[(\log\pi_c-\log\pi^{\mathrm{ref}}_c)-(\log\pi_r-\log\pi^{\mathrm{ref}}_r)])$,
#   $\beta=0.1$ (a unit test checks it equals `trl`'s `DPOTrainer` loss).
# - **ProjGrad / ProjBP**: DPO whose gradient is split along the preference direction of the
#   `q`/`v` outputs, after backward (ProjGrad) or during it (ProjBP).
# - **ReprPO** `{collect}-{transform}-{loss}`: activations from the residual stream (`hs`) or
#   the inputs of `o_proj`/`down_proj` (`side`), a learned map (`none`, `ortho`, `hra`,
#   `ether`), and a hidden-state loss (`mse`, `rank`, `prefvec`).

# %% tags=["hide-input"]
budget = rp.TrainSettings(epochs=epochs, batch=batch_size)
glue("budget_steps", epochs * int(np.ceil(n_train / batch_size)), display=False)


def run(method: str, lr: float, seed: int, splits: dict, settings: rp.TrainSettings = budget,
        names: list | None = None) -> dict:
    """:func:`helpers.reprpo.experiment.train_and_evaluate` with this chapter's base and sizes."""
    return ex.train_and_evaluate(base, method, lr, seed, splits, settings,
                                 names or SPLIT_NAMES, n_eval)

# %% [markdown]
# ### An isometry check
#
# The reference's "ortho" and "hra" rows apply an orthogonal map before a distance loss.
# A distance is unchanged by an orthogonal map, so the loss and its gradient with respect to
# the adapter cannot depend on the map; we compare them on one batch for a fresh adapter whose
# LoRA weights are all non-zero.

# %% tags=["hide-input"]
with timer.stage("isometry check"):
    batch0 = {k: v[:batch_size].to(DEVICE) for k, v in splits0["train"].items()}
    iso = ex.isometry_gradients(base, batch0, budget.lora_r)
iso_grad_gap = max(iso[t]["grad_gap"] for t in ("ortho", "hra"))
glue("iso_grad_gap", iso_grad_gap, display=False)
pd.DataFrame(iso).T.rename(columns={"loss": "mse loss",
                                    "grad_gap": "max |grad - grad(none)| / max |grad(none)|"})

# %% [markdown]
# Loss and gradient agree to float32 rounding. Training is chaotic enough that the rounding
# still grows into different adapters over many steps, exactly as a change of seed would; the
# main comparison below therefore runs "ortho" and "hra" as separate methods and measures
# their gap, which should be seed noise.
#
# ## Coverage grid
#
# Every ReprPO combination (3 losses x 4 transforms x 2 collection sites) runs once at a
# reduced budget ({glue:text}`grid_steps` steps, learning rate {glue:text}`grid_lr`). This
# checks that every variant trains, and picks the {glue:text}`n_best_variants` with the best
# *validation* accuracy for the full comparison (the shifted splits play no part in the choice).

# %% tags=["hide-input"]
glue("grid_steps", grid_steps, display=False)
glue("grid_lr", grid_lr, display=False)
glue("n_best_variants", n_best_variants, display=False)
grid_settings = rp.TrainSettings(**{**budget.__dict__, "max_steps": grid_steps})
variants = [f"{c}-{t}-{l}" for l in rp.LOSSES for c in rp.COLLECT for t in rp.TRANSFORMS]
grid_rows = []
with timer.stage("coverage grid"):
    for v in tqdm(variants, desc="coverage grid"):
        try:
            r = run(v, grid_lr, 0, splits0, grid_settings)
            row = {**{s: r[s].mean() for s in SPLIT_NAMES}, "final loss": r["_final_loss"]}
        except FloatingPointError as e:  # a diverged variant is a result, not a crash
            row = {"final loss": np.nan}
            print(e)
        grid_rows.append({"variant": v, **row})
grid = pd.DataFrame(grid_rows).set_index("variant")
grid["shift mean"] = grid[SHIFTS].mean(axis=1)
grid[["val", "shift mean", "unrelated", "final loss"]].round(3).sort_values("val", ascending=False)

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Coverage grid of all 24 ReprPO variants at a reduced budget, one seed. Left: in-distribution validation accuracy; right: mean accuracy over the shifted splits. Rows: loss; columns: collection site and transform. The base model's values are in the colour-bar titles.", "name": "fig-reprpo_dpo-grid"}}
fig, axes = plt.subplots(1, 2, figsize=(9, 2.8))
base_val, base_shift0 = base_acc0["val"].mean(), np.mean([base_acc0[s].mean() for s in SHIFTS])
xlabels = [f"{c}\n{t}" for c in rp.COLLECT for t in rp.TRANSFORMS]
for ax, col, ref in zip(axes, ["val", "shift mean"], [base_val, base_shift0]):
    mat = grid[col].to_numpy().reshape(len(rp.LOSSES), len(xlabels))
    im = ax.imshow(mat, vmin=0, vmax=1, cmap="viridis", aspect="auto")
    ax.set_xticks(range(mat.shape[1]), xlabels, fontsize=7)
    ax.set_yticks(range(len(rp.LOSSES)), rp.LOSSES)
    ax.grid(False)
    for (i, j), v in np.ndenumerate(mat):
        ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7,
                color="w" if v < 0.6 else "k")
    ax.set_title(f"{col} accuracy")
    fig.colorbar(im, ax=ax, shrink=0.8).ax.set_title(f"base\n{ref:.2f}", fontsize=7)
show(fig)

# %% [markdown]
# The `none`, `ortho` and `hra` columns of `mse` agree (the isometry again; at this short budget
# the rounding has not yet grown), while `ether` (not orthogonal) and the `rank`/`prefvec`
# losses (which read single coordinates) depend on the map and its random initialisation.
# Several variants move the unrelated split far from the base model's, so a single validation
# number does not describe a variant. The best variants on validation join the main comparison.

# %% tags=["hide-input"]
methods = list(fixed_methods)
seen = {rp.Method.parse(m).canonical for m in methods}
for v in grid["val"].sort_values(ascending=False, kind="stable").index:  # skip isometric twins
    full = len(methods) >= len(fixed_methods) + n_best_variants
    if not full and rp.Method.parse(v).canonical not in seen:
        methods.append(v)
        seen.add(rp.Method.parse(v).canonical)
print("compared methods:", methods)

# %% [markdown]
# ## A learning rate for every method
#
# Each method gets the same budget and its own learning rate, chosen on the in-distribution
# validation split from {glue:text}`lr_grid` (ties go to the smaller rate).

# %% tags=["hide-input"]
glue("lr_grid", ", ".join(f"{x:g}" for x in lr_grid), display=False)
lr_rows = []
with timer.stage("learning-rate search"):
    for m in tqdm(methods, desc="lr search"):
        for lr in lr_grid:
            try:
                acc = run(m, lr, 0, splits0, names=["val"])["val"].mean()
            except FloatingPointError:
                acc = np.nan
            lr_rows.append({"method": m, "lr": lr, "val accuracy": acc})
lr_table = (pd.DataFrame(lr_rows).pivot(index="method", columns="lr", values="val accuracy")
            .loc[methods])
best_lr = {m: rp.select_lr({lr: a for lr, a in lr_table.loc[m].items() if np.isfinite(a)})
           for m in methods}
lr_table.assign(chosen=pd.Series(best_lr)).round(3)

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Validation accuracy (in-distribution, held-out pairs) after the full budget as a function of learning rate, one seed. The grey line is the base model. The chosen rate of each method is its maximum.", "name": "fig-reprpo_dpo-lr"}}
fig, ax = plt.subplots(figsize=(6.4, 3.6))
for i, m in enumerate(methods):
    ax.plot(lr_table.columns, lr_table.loc[m], marker="o", color=PALETTE[i % len(PALETTE)],
            ls="-" if i < len(PALETTE) else "--", label=m)
ax.axhline(base_val, color=NULL_COLOR, ls=":", label="base model")
ax.set_xscale("log")
ax.set_xlabel("learning rate (AdamW)")
ax.set_ylabel("validation accuracy (fraction)")
ax.legend(ncol=2)
show(fig)

# %% [markdown]
# The curves differ in shape. DPO's validation accuracy falls at the larger rates (the
# log-probabilities of chosen and rejected completions collapse together), the
# gradient-projection variants tolerate larger rates, and the `mse` variants barely leave the
# base model except at the largest rates. A best rate at the edge of the grid means that
# method's tuning is incomplete; the next cell lists them.

# %% tags=["hide-input"]
edge = [m for m in methods if best_lr[m] in (min(lr_grid), max(lr_grid))]
print("best learning rate at the edge of the grid:", edge or "none")

# %% [markdown]
# ## The main comparison
#
# Each method now trains with its chosen rate on {glue:text}`n_seeds` fresh seeds (a new data
# sample, LoRA initialisation and batch order each). As a **control** for "training on anything
# moves the shifted splits", DPO is also trained with chosen and rejected swapped at random
# (`dpo-shuffled`, at DPO's rate): it sees the same texts but no preference.

# %% tags=["hide-input"]
glue("n_seeds", n_seeds, display=False)
all_methods = ["base"] + methods + ["dpo-shuffled"]
correct = {m: {s: [] for s in EVAL_NAMES} for m in all_methods}
with timer.stage("main comparison"):
    for seed in tqdm(range(1, n_seeds + 1), desc="seeds"):
        sp = make_splits(seed)
        correct["base"] = {s: correct["base"][s] + [a] for s, a in rp.evaluate_splits(
            base, ex.eval_view(sp, EVAL_NAMES, n_eval)).items()}
        jobs = [(m, m, best_lr[m], sp) for m in methods]
        jobs.append(("dpo-shuffled", "dpo", best_lr["dpo"], ex.shuffle_labels(sp, seed)))
        for name, m, lr, data in jobs:
            res = run(m, lr, seed, data, names=EVAL_NAMES)
            for s in EVAL_NAMES:
                correct[name][s].append(res[s])
correct = {m: {s: np.stack(v) for s, v in d.items()} for m, d in correct.items()}
print(f"{len(all_methods) - 1} trained methods x {n_seeds} seeds in "
      f"{timer.wall('main comparison'):.0f} s")

# %% [markdown]
# A paired hierarchical bootstrap (resample seeds, then pairs within each seed, with the same
# draws for every method) gives intervals for accuracies, ratios to the base model and
# differences to DPO. The shift summary is the mean over the shifted splits.

# %% tags=["hide-input"]
COLS = EVAL_NAMES + ["shift mean"]
draws = ex.bootstrap_splits(correct, SHIFTS, n_boot)
absolute = pd.DataFrame({m: {c: format_draws(draws[m][c]) for c in COLS} for m in all_methods}).T
absolute.index.name = "accuracy [95% CI]"
absolute

# %% [markdown]
# The table above is absolute preference accuracy. The reference reported instead the ratio of
# adapter to base accuracy per split ("increase"); here is that format, with intervals.

# %% tags=["hide-input"]
ratio = pd.DataFrame({m: {c: format_draws(draws[m][c] / draws["base"][c]) for c in COLS}
                      for m in all_methods if m != "base"}).T
ratio.index.name = "acc / base acc [95% CI]"
ratio

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Preference accuracy per split (mean over seeds and pairs, 95% paired bootstrap interval). Grey: the base model; dashed grey: the shuffled-label DPO control. Left of the dotted line: in-distribution; right: shifted and unrelated splits.", "name": "fig-reprpo_dpo-main"}}
fig, ax = plt.subplots(figsize=(8, 4))
width = 0.8 / len(all_methods)
for i, m in enumerate(all_methods):
    means = np.array([draws[m][c].mean() for c in COLS])
    lo, hi = np.array([stats.interval(draws[m][c]) for c in COLS]).T
    x = np.arange(len(COLS)) + (i - len(all_methods) / 2) * width
    color = NULL_COLOR if m in ("base", "dpo-shuffled") else PALETTE[(i - 1) % len(PALETTE)]
    ax.errorbar(x, means, yerr=[means - lo, hi - means], fmt="x" if m == "dpo-shuffled" else "o",
                ms=3, lw=1, color=color, label=m)
ax.axvline(EVAL_NAMES.index(SHIFTS[0]) - 0.5, color="k", ls=":", lw=0.8)
ax.set_xticks(range(len(COLS)), COLS, rotation=30)
ax.set_ylabel("preference accuracy (fraction)")
ax.set_xlabel("evaluation split")
ax.legend(ncol=5, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.28))
show(fig)

# %% [markdown]
# Read each column against the grey base point: in-distribution, a method that learned the
# preference sits above it; on the shifts, above means transfer; on the unrelated split, any
# drop below the base is damage. The shuffled-label control shows how far training without a
# preference moves each split.
#
# ## Is hidden-state alignment better than DPO out of distribution?
#
# The question is a difference, so we bootstrap the difference to DPO directly (paired draws).

# %% tags=["hide-input"]
reprpo_methods = [m for m in methods if m not in ("dpo", "projgrad", "projbp")]
best_reprpo = max(reprpo_methods, key=lambda m: lr_table.loc[m, best_lr[m]])  # validation only
diffs = pd.DataFrame({m: {c: format_draws(draws[m][c] - draws["dpo"][c])
                          for c in SHIFTS + ["shift mean", "unrelated"]}
                      for m in all_methods if m not in ("dpo", "base")}).T
diffs.index.name = "acc - DPO acc [95% CI]"
diffs

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Accuracy difference to DPO (95% paired bootstrap interval) on the mean of the shifted splits and on the unrelated split. Right of zero: better than DPO. Grey: the base model and the shuffled-label control.", "name": "fig-reprpo_dpo-diff"}}
others = [m for m in all_methods if m != "dpo"]
fig, axes = plt.subplots(1, 2, figsize=(8, 0.35 * len(others) + 1.2), sharey=True)
for ax, col in zip(axes, ["shift mean", "unrelated"]):
    for j, m in enumerate(others):
        d = draws[m][col] - draws["dpo"][col]
        lo, hi = stats.interval(d)
        color = NULL_COLOR if m in ("base", "dpo-shuffled") else PALETTE[0]
        ax.errorbar(d.mean(), j, xerr=[[d.mean() - lo], [hi - d.mean()]], fmt="o", ms=4,
                    color=color)
    ax.axvline(0, color="k", lw=0.8)
    ax.set_yticks(range(len(others)), others)
    ax.set_xlabel(f"{col}: accuracy minus DPO's (fraction)")
show(fig)

# %% [markdown]
# Intervals that cross zero mean the data cannot order that method and DPO on that split.
#
# ## What one seed can show
#
# The reference's table has one run per method. The spread of a *single* method across our
# seeds shows how far two runs of the same method can land apart on each split.

# %% tags=["hide-input"]
per_seed = pd.DataFrame({c: correct["dpo"][c].mean(1) / correct["base"][c].mean(1)
                         for c in EVAL_NAMES}, index=[f"seed {i + 1}" for i in range(n_seeds)])
spread = (per_seed.max() - per_seed.min()).rename("DPO ratio range over seeds")
glue("dpo_ratio_range_shift", float(spread[SHIFTS].max()), display=False)
per_seed.round(3)

# %% tags=["hide-input"] mystnb={"figure": {"caption": "DPO's ratio to the base model (the reference's 'increase') for each seed, per split. Each dot is one single-seed table entry that the reference could have reported; the grey line is ratio 1 (no change).", "name": "fig-reprpo_dpo-seeds"}}
fig, ax = plt.subplots(figsize=(6.4, 3.2))
for i, c in enumerate(EVAL_NAMES):
    ax.scatter(np.full(n_seeds, i) + np.linspace(-0.15, 0.15, n_seeds), per_seed[c], s=14,
               color=PALETTE[0])
ax.axhline(1, color=NULL_COLOR, ls="--")
ax.set_xticks(range(len(EVAL_NAMES)), EVAL_NAMES, rotation=30)
ax.set_ylabel("DPO accuracy / base accuracy")
ax.set_xlabel("evaluation split")
show(fig)

# %% [markdown]
# The reference's journal gives, on its out-of-sample split, a base accuracy of 0.675, DPO
# 0.679 and "ortho" 0.732: ratios 1.006 and 1.084, a gap of 0.078 from one run each (and a second
# DPO run gave 1.030). We compare that gap with how far a single method's ratio moves between
# our seeds.

# %% tags=["hide-input"]
REF_OOS = {"base": 0.675, "dpo": 0.679, "ortho": 0.732}  # research_journal.md at dfe6ed6 (notes)
ref_gap = REF_OOS["ortho"] / REF_OOS["base"] - REF_OOS["dpo"] / REF_OOS["base"]
seed_range = spread[SHIFTS]
glue("ref_gap", ref_gap, display=False)
glue("seed_range_median", float(seed_range.median()), display=False)
pd.DataFrame({"DPO ratio range over our seeds": seed_range,
              "exceeds the reference's row gap": seed_range > ref_gap}).round(3)

# %% [markdown]
# On the shifted splits, one method's single-seed ratio moves by up to
# {glue:text}`dpo_ratio_range_shift:.2f` between seeds (median {glue:text}`seed_range_median:.2f`),
# against the reference's row gap of {glue:text}`ref_gap:.3f`: a single run per method cannot
# rank methods unless their gap is well outside this seed-to-seed spread.

# %% tags=["hide-input"]
d_shift = draws[best_reprpo]["shift mean"] - draws["dpo"]["shift mean"]
lo, hi = stats.interval(d_shift)
verdict = ("generalised better than DPO here" if lo > 0 else
           "generalised worse than DPO here" if hi < 0 else
           "did not generalise measurably better than DPO here (the interval includes zero)")
for name, val in {"base_shift": draws["base"]["shift mean"],
                  "dpo_shift": draws["dpo"]["shift mean"],
                  "reprpo_shift": draws[best_reprpo]["shift mean"], "diff_shift": d_shift,
                  "dpo_unrel": draws["dpo"]["unrelated"],
                  "reprpo_unrel": draws[best_reprpo]["unrelated"],
                  "base_unrel": draws["base"]["unrelated"]}.items():
    glue(name, float(val.mean()), display=False)
shift = {m: draws[m]["shift mean"] for m in all_methods}
for name, x in {"ortho_hra_diff": shift["hs-ortho-mse"] - shift["hs-hra-mse"],
                "dpo_vs_shuffled": shift["dpo"] - shift["dpo-shuffled"]}.items():
    glue(name, format_draws(x, signed=True), display=False)
damaging = [m for m in methods
            if stats.interval(draws[m]["unrelated"] - draws["base"]["unrelated"])[1] < 0]
glue("damaging", ", ".join(damaging) or "none", display=False)
glue("n_damaging", f"{len(damaging)} of {len(methods)}", display=False)
rivals = [m for m in methods if m != "dpo"]
beats_dpo = [m for m in rivals
             if ex.interval_excludes_zero(draws[m]["shift mean"] - draws["dpo"]["shift mean"])]
glue("beats_dpo", ", ".join(beats_dpo) or "none", display=False)
glue("n_beats_dpo", f"{len(beats_dpo)} of {len(rivals)}", display=False)
# a 95% interval's lower end is above zero with probability 0.025 when nothing differs
glue("chance_beats_dpo", 0.025 * len(rivals), display=False)
for name, x in {"dpo_shift_ci": draws["dpo"]["shift mean"],
                "reprpo_shift_ci": draws[best_reprpo]["shift mean"],
                "diff_shift_ci": d_shift}.items():
    glue(name, "{:.3f} to {:.3f}".format(*stats.interval(x)), display=False)
glue("best_reprpo", best_reprpo, display=False)
glue("verdict", verdict, display=False)
print(f"best ReprPO on validation: {best_reprpo} (lr {best_lr[best_reprpo]:g}); {verdict}")
verdict_table([Verdict(
    claim="hidden-state alignment generalises better under shift than DPO",
    source="ReprPO README table (wassname2024reprpo)",
    number=format_draws(d_shift, signed=True) + f" ({best_reprpo} minus DPO, shift mean)",
    control="DPO minus shuffled-label DPO: " + format_draws(
        draws["dpo"]["shift mean"] - draws["dpo-shuffled"]["shift mean"], signed=True),
    threshold="95% interval of the difference above zero",
    verdict=verdict_word(True if lo > 0 else False if hi < 0 else None))])

# %% tags=["hide-input"]
timer.table()

# %% [markdown]
# ## Conclusion
#
# - **Does hidden-state alignment generalise better?** With matched budgets,
#   per-method learning rates and {glue:text}`n_seeds` seeds, the best ReprPO variant
#   ({glue:text}`best_reprpo`) {glue:text}`verdict`: shifted-split accuracy
#   {glue:text}`reprpo_shift:.3f` vs DPO's {glue:text}`dpo_shift:.3f`, difference
#   {glue:text}`diff_shift:+.3f` (95% CI {glue:text}`diff_shift_ci`). The per-split table
#   above shows where individual shifts differ.
# - **Is the shift gain about the preference at all?** DPO's shifted-split mean minus that of
#   the same training with shuffled labels is {glue:text}`dpo_vs_shuffled` (95% CI). Where that
#   interval includes zero, the average shift gain is not specific to the preference; the
#   per-split table shows which shifts (e.g. context) do carry it.
# - **Collateral damage** on the unrelated split: DPO {glue:text}`dpo_unrel:.3f`,
#   {glue:text}`best_reprpo` {glue:text}`reprpo_unrel:.3f`, base {glue:text}`base_unrel:.3f`.
#   {glue:text}`n_damaging` trained methods lowered it with an interval excluding zero
#   ({glue:text}`damaging`). A method that looks better than DPO on the shifts can pay for it
#   here, so the two columns must be read together: {glue:text}`n_beats_dpo` methods other than
#   DPO beat it on the shifted mean with an interval above zero ({glue:text}`beats_dpo`),
#   where chance alone would give about {glue:text}`chance_beats_dpo:.2f` such methods, and
#   each has to be read with its unrelated-split cost.
# - **The reference's table.** Its numbers come from `us_history_textbook`, not the datasets its
#   caption names; "increase" is a ratio to the base model, from one seed without matched
#   learning rates. Two seeds of the *same* method differ here by up to
#   {glue:text}`dpo_ratio_range_shift:.2f` in that ratio on a shifted split (median
#   {glue:text}`seed_range_median:.2f`), against a gap of {glue:text}`ref_gap:.3f` between the
#   reference's DPO and "ortho" rows, and the reference's own two DPO runs differ by 0.024. The
#   table shows that these methods train; it cannot order them. Its "ortho" and "hra" rows
#   are the same method: orthogonal maps leave the distance
#   loss and its gradient unchanged (unit-tested; here the gradients agree to
#   {glue:text}`iso_grad_gap:.0e`), and their trained rows differ by {glue:text}`ortho_hra_diff`
#   on the shifted splits.
# - **Open.** The toy base model infers the persona in context only weakly (largest probe gap
#   {glue:text}`persona_gap:.2f`), so preference training here must teach the answers rather
#   than select an existing "honest" latent; four times longer pretraining did not change that
#   on addition (see the probe above), so a base model that can add, or a task it can already
#   solve, comes first. The toy has one pretrained base (seeds vary data, LoRA
#   initialisation and order, not pretraining); the `prefvec` loss changed many times upstream
#   and we pin one version
#   (commit `0700063`); the full scale (`TinyLlama-1.1B-Chat` on GENIES from the hub, with the
#   reference's splits) runs this same notebook on a GPU and is tested here only on local fixtures.
