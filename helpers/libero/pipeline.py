"""The chapter's pipeline over several LIBERO tasks: demos pooled into one training set, cached
behaviour cloning with checkpoints, cached closed-loop rollouts, per-checkpoint features and
per-task alignment scores.

:class:`TaskSet` holds the demos of several tasks of one suite, concatenated in task order
(``per_task[k]`` is the slice of task k's rows), with the actions OpenVLA-normalised by
quantiles pooled over tasks. Every function here takes a :class:`TaskSet`, so the chapter holds
only parameters, calls, tables and figures.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from helpers.cache import cached
from helpers.features import extract_vision_features
from helpers.libero import action_alignment as va
from helpers.libero.demos import Demos, load_or_record
from helpers.libero import policy as bc


@dataclass
class TaskSet:
    """Demonstrations of several tasks of one suite, pooled in task order.

    ``norm[k]`` is task k's actions normalised with the pooled ``q01``/``q99``; ``moving[k]`` marks
    its steps whose translation-action norm reaches ``move_threshold``.
    """

    suite: str
    demos: dict[int, Demos]
    move_threshold: float = 0.1
    q01: np.ndarray = field(init=False)
    q99: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        if not self.demos:
            raise ValueError("TaskSet needs demos of at least one task; pass {task_id: Demos}.")
        self.q01, self.q99 = va.action_quantiles(self.actions)

    @property
    def task_ids(self) -> list[int]:
        return list(self.demos)

    @property
    def actions(self) -> np.ndarray:
        """Raw actions ``[N, 7]`` of every task, in task order."""
        return np.concatenate([d.actions for d in self.demos.values()])

    @property
    def frames(self) -> np.ndarray:
        """Upright agentview frames ``[N, H, W, 3]`` uint8."""
        return np.concatenate([d.agentview for d in self.demos.values()])

    @property
    def wrist(self) -> np.ndarray:
        """Upright wrist-camera frames ``[N, H, W, 3]`` uint8."""
        return np.concatenate([d.wrist for d in self.demos.values()])

    @property
    def states(self) -> np.ndarray:
        """Robot states ``[N, 9]``."""
        return np.concatenate([d.robot_states for d in self.demos.values()])

    @property
    def task_index(self) -> np.ndarray:
        """``[N]`` position of each row's task in ``task_ids`` (the policy's task embedding)."""
        return np.concatenate([np.full(len(d), i) for i, d in enumerate(self.demos.values())])

    @property
    def per_task(self) -> dict[int, slice]:
        """Task id -> slice of its rows in the pooled arrays."""
        offsets = np.cumsum([0] + [len(d) for d in self.demos.values()])
        return {k: slice(int(offsets[i]), int(offsets[i + 1])) for i, k in enumerate(self.demos)}

    @property
    def norm(self) -> dict[int, np.ndarray]:
        return {k: va.normalize_actions(d.actions, self.q01, self.q99)
                for k, d in self.demos.items()}

    @property
    def moving(self) -> dict[int, np.ndarray]:
        return {k: va.moving_mask(d.actions, self.move_threshold) for k, d in self.demos.items()}

    def without_frames(self) -> "TaskSet":
        """A copy without camera frames (actions, states, episodes kept): what the alignment
        needs, small enough to send to worker processes."""
        empty = np.zeros((0, 1, 1, 3), np.uint8)
        return TaskSet(self.suite, {k: dataclasses.replace(d, agentview=empty, wrist=None)
                                    for k, d in self.demos.items()}, self.move_threshold)


def load_task_set(suite: str, task_ids: list[int], n_demos: int, image_size: int, *, seed: int,
                  action_repeat: int, max_steps: int, move_threshold: float = 0.1,
                  **record_options) -> TaskSet:
    """Scripted demos of each task (recorded once, then read from the cache) as a :class:`TaskSet`.

    ``record_options`` go to :func:`helpers.libero.demos.load_or_record` unchanged.
    """
    demos = {k: load_or_record(suite, k, n_demos, image_size, seed=seed,
                               action_repeat=action_repeat,
                               max_steps=max_steps, **record_options) for k in task_ids}
    return TaskSet(suite, demos, move_threshold)


def demo_table(data: TaskSet) -> pd.DataFrame:
    """Per task: instruction, controller attempts and successes, frames, mean decisions per demo,
    and the controller's success rate over the episodes it attempted."""
    rows = []
    for k, d in data.demos.items():
        args = json.loads(d.attrs["env_args"])
        rows.append(dict(task=k, instruction=d.language, attempts=args["scripted_attempts"],
                         successes=args["scripted_successes"], frames=len(d),
                         mean_steps=len(d) / d.n_episodes))
    table = pd.DataFrame(rows)
    table["controller_success"] = table.successes / table.attempts
    return table


def action_summary(data: TaskSet) -> pd.DataFrame:
    """q01, q99, the std of each normalised dimension and the fraction of moving steps."""
    norm = np.concatenate(list(data.norm.values()))
    moving = np.concatenate(list(data.moving.values()))
    return pd.DataFrame({"q01": data.q01, "q99": data.q99, "std (normalised)": norm.std(0),
                         "fraction moving": [np.mean(moving)] * 7}, index=list(va.ACTION_NAMES))


def policy_features(policy: bc.BCPolicy, frames: np.ndarray) -> dict[str, torch.Tensor]:
    """Every encoder block's CLS and mean-patch token on the policy's own input scaling:
    ``{"cls": [N, L, D], "mean": [N, L, D]}``."""
    x = bc.to_input(torch.as_tensor(frames))
    out = extract_vision_features(policy.encoder, x, pool="both", transform=False, batch_size=128,
                                  progress=False)
    return {p: out[p] for p in ("cls", "mean")}


def _layer_rows(feats, rows) -> torch.Tensor | list[torch.Tensor]:
    return [f[rows] for f in feats] if isinstance(feats, list) else feats[rows]


def task_alignment(data: TaskSet, feats: torch.Tensor | list[torch.Tensor], *, exclude=None,
                   mode: str = "rows",
                   horizon: int = 1, filt: bool = False, episodes: int | None = None,
                   topk: int = 10, n_perm: int = 50, seed: int = 0) -> list[va.AlignmentResult]:
    """Per task, :func:`~helpers.libero.action_alignment.alignment_null` of pooled features
    ``feats [N, L, D]`` (or a list of per-layer ``[N, D_l]``, for CNN stages of different widths)
    against dims 0-5 of the normalised actions.

    Args:
        exclude, mode: as in ``alignment_null`` (``None``/``"rows"``: plain score and row
            shuffle; ``"episode"``/``"episodes"``: episode-masked score and episode null).
        horizon: action window length T (a_t..a_{t+T-1} within an episode).
        filt: drop near-zero translation steps (``TaskSet.moving``).
        episodes: use only the first ``episodes`` demos of each task.

    Returns:
        One :class:`~helpers.libero.action_alignment.AlignmentResult` per task, in task order.
    """
    norm, moving, per_task = data.norm, data.moving, data.per_task
    res = []
    for k, d in data.demos.items():
        f = _layer_rows(feats, per_task[k])
        a, ep, st = norm[k][:, :6], d.episode, d.step
        keep = np.ones(len(d), bool)
        if filt:
            keep &= moving[k]
        if episodes is not None:
            keep &= d.episode < episodes
        if horizon > 1:
            a, start = va.action_windows(a, ep, horizon)
            keep = keep[start]
            f, ep, st = _layer_rows(f, start), ep[start], st[start]
        f = _layer_rows(f, torch.as_tensor(keep))
        res.append(va.alignment_null(f, a[keep], ep[keep], st[keep], mode=mode, exclude=exclude,
                                     topk=topk, n_perm=n_perm, seed=seed))
    return res


def _alignment_job(args: tuple) -> list[va.AlignmentResult]:
    data, feats, options = args
    return task_alignment(data, feats, **options)


def task_alignments(data: TaskSet, requests: list[tuple], workers: int = 1,
                    progress: bool = True) -> list[list[va.AlignmentResult]]:
    """:func:`task_alignment` for each ``(feats, options)`` request, over ``workers`` processes of
    the shared pool (:mod:`helpers.parallel`; the frames stay in this process). Each result is
    the same as in this process: the permutations are seeded by ``options``."""
    from helpers import parallel

    light = data.without_frames()
    return parallel.map_jobs(_alignment_job, [(light, f, o) for f, o in requests], workers,
                             desc="alignment", progress=progress)


def variant_config(spec: dict, *, image_size: int, n_tasks: int, seed: int) -> bc.PolicyConfig:
    """A :class:`~helpers.libero.policy.PolicyConfig` from a chapter variant spec: the spec's
    ``PolicyConfig`` fields (e.g. ``encoder``, ``pretrained``, ``freeze_encoder``, ``chunk``,
    ``epochs``, ``seed``) over the chapter's image size, task count and seed. Other spec keys
    (``name``, ``checkpoints``, ``execute``) are the chapter's and are ignored here."""
    fields = set(bc.PolicyConfig.__dataclass_fields__)
    chapter_keys = {"name", "checkpoints", "execute"}
    unknown = set(spec) - fields - chapter_keys
    if unknown:
        raise ValueError(f"variant {spec.get('name', spec)!r} has unknown keys {sorted(unknown)}; "
                         f"use PolicyConfig fields or {sorted(chapter_keys)}.")
    options = {k: v for k, v in spec.items() if k in fields}
    base = dict(image_size=image_size, n_tasks=n_tasks, seed=seed)
    return bc.PolicyConfig(**dict(base, **options))


def variant_table(variants: list[dict], configs: dict[str, bc.PolicyConfig],
                  histories: dict[str, list[float]]) -> pd.DataFrame:
    """One row per variant spec: encoder, pretrained, frozen, chunk, epochs, seed and the first
    and last epoch's training loss."""
    return pd.DataFrame([dict(variant=s["name"], encoder=configs[s["name"]].encoder,
                              pretrained=configs[s["name"]].pretrained,
                              frozen=configs[s["name"]].freeze_encoder,
                              chunk=configs[s["name"]].chunk, epochs=configs[s["name"]].epochs,
                              seed=configs[s["name"]].seed, first_loss=histories[s["name"]][0],
                              last_loss=histories[s["name"]][-1]) for s in variants])


def train_variant(data: TaskSet, cfg: bc.PolicyConfig, checkpoints: list[int], key: dict) -> dict:
    """Behaviour cloning of one variant on every row of ``data`` (chunks need episode ids, the
    wrist variant the wrist frames), cached under ``("vla_bc_variant", key)``; rows are in task
    order and each task's episodes are numbered apart.

    Returns:
        ``{"checkpoints": {epoch: state_dict}, "history": [loss per epoch]}``.
    """
    episodes = np.concatenate([d.episode + 10_000 * i for i, d in enumerate(data.demos.values())])

    def _train() -> dict:
        _, ckpts, hist = bc.train_bc(data.frames, data.states, data.actions, data.task_index, cfg,
                                     tuple(checkpoints), episodes=episodes,
                                     wrist=data.wrist if cfg.wrist else None)
        return dict(checkpoints=ckpts, history=hist)

    return cached("vla_bc_variant", key, _train)


def _train_job(args: tuple) -> None:
    """One job of :func:`train_variants`: train one variant into the cache."""
    train_variant(*args)


def _training_cost(cfg: bc.PolicyConfig) -> float:
    """Relative CPU cost of training ``cfg``, to hand out the longest jobs first. Per epoch at
    64 px, one thread, batch 64 (measured): MobileNetV2 fine-tuned ~3x the small ViT, frozen
    ~0.7x (no encoder backward)."""
    per_epoch = 1.0 if cfg.encoder == "vit" else 0.7 if cfg.freeze_encoder else 3.0
    return cfg.epochs * per_epoch


def train_variants(data: TaskSet, jobs: list[tuple[bc.PolicyConfig, list[int], dict]], *,
                   workers: int = 1) -> list[dict]:
    """:func:`train_variant` for each ``(cfg, checkpoints, key)`` in ``jobs``; the uncached ones
    train in ``workers`` processes of the shared pool (:mod:`helpers.parallel`, one torch thread
    each), longest first, then every entry is read back from the cache. Training is the same in
    any process, so ``workers`` is not in the keys.

    Returns:
        One ``{"checkpoints": {epoch: state_dict}, "history": [loss per epoch]}`` per job.
    """
    from helpers import parallel
    from helpers.cache import entry_path

    if workers < 1:
        raise ValueError(f"Expected workers >= 1, but got {workers}.")
    missing = [job for job in jobs if not entry_path("vla_bc_variant", job[2]).exists()]
    if workers > 1 and len(missing) > 1:
        missing.sort(key=lambda job: -_training_cost(job[0]))
        parallel.map_jobs(_train_job, [(data, *job) for job in missing], workers,
                          desc="BC variants")
    return [train_variant(data, *job) for job in jobs]


_ENVS: dict[tuple, tuple] = {}  # per process: (suite, task, size, seed, states) -> (task, env)


def task_env(suite: str, task_id: int, image_size: int, seed: int,
             states: np.ndarray | None = None) -> tuple:
    """``(task, env)`` for one task, built once per process and reused by every later rollout.

    Building a LIBERO environment costs ~6 s of CPU; a rollout resets the simulator to its init
    state, so one environment serves any number of episodes (of any policy) with the same
    results as a fresh one. ``states`` replaces the task's stored init states (as
    :func:`helpers.libero.sim.with_init_states`).
    """
    from helpers.libero import sim as libero_sim

    digest = None if states is None else hashlib.sha1(np.ascontiguousarray(states)).hexdigest()
    key = (suite, int(task_id), int(image_size), int(seed), digest)
    if key not in _ENVS:
        task = libero_sim.get_task(suite, task_id)
        if states is not None:
            task = libero_sim.with_init_states(task, states)
        _ENVS[key] = (task, libero_sim.make_env(task, image_size=image_size, seed=seed))
    return _ENVS[key]


def _rollout_job(args: tuple) -> dict:
    """One job of :func:`rollout_checkpoints`: closed-loop episodes of one policy on one task,
    in this process's cached environment for that task."""
    from helpers.libero import evaluation

    suite, task_id, policy, task_index, execute, inits, options, states = args
    task, env = task_env(suite, task_id, options["image_size"], options["seed"], states)
    cameras = evaluation.ChunkedPolicy(policy, task_index, execute).cameras
    return evaluation.run_rollouts(
        task, lambda _init: evaluation.ChunkedPolicy(policy, task_index, execute), inits,
        cameras=cameras, env=env, progress=False, **options)


def rollout_checkpoints(data: TaskSet, items: list[tuple[bc.BCPolicy, int, dict[int, list[int]],
                                                         int]], *,
                        base_key: dict, image_size: int, max_steps: int, action_repeat: int,
                        seed: int, workers: int = 1, states: dict[int, np.ndarray] | None = None,
                        states_key: dict | None = None, progress: bool = True,
                        desc: str = "rollouts") -> list[dict]:
    """Closed-loop rollouts of several checkpoints, each cached under ``("vla_bc_rollout",
    key)``; the uncached ones run together, one episode per job, over ``workers`` processes of
    the shared pool (:mod:`helpers.parallel`), so the workers stay busy across checkpoints.

    Each item is ``(policy, epoch, init_states, execute)``: ``init_states`` maps a task to its
    init-state indices, ``execute`` is how many actions of each predicted chunk run before the
    policy looks again. The key holds the policy's config, the epoch, the init states, the
    rollout settings and ``base_key`` (the demos), plus ``states_key`` (what the ``states``
    are, e.g. their sampling seed) when ``states`` (``{task: [n, S]}``, e.g. from
    :func:`helpers.libero.sim.sample_init_states`) replaces LIBERO's stored init states.
    Every episode depends only on its policy and init state, so ``workers`` is not in the key.

    Returns:
        Per item ``{task: {"success": [n] bool, "progress": [n] float, "steps": [n] int}}``.
    """
    from helpers import cache, parallel

    if workers < 1:
        raise ValueError(f"Expected workers >= 1, but got {workers}.")
    if (states is None) != (states_key is None):
        raise ValueError("Pass states and states_key together (the key says which states they "
                         "are), or neither.")
    keys = []
    for policy, epoch, inits, execute in items:
        key = dict(bc.config_dict(policy.cfg), epoch=epoch, inits=inits, max_steps=max_steps,
                   execute=execute, **base_key)
        if states_key is not None:
            key["states"] = states_key
        keys.append(key)
    results = [cache.load_entry("vla_bc_rollout", key) for key in keys]
    options = dict(image_size=image_size, max_steps=max_steps, action_repeat=action_repeat,
                   seed=seed)
    jobs, where = [], []
    for i, (policy, _, inits, execute) in enumerate(items):
        if results[i] is not None:
            continue
        for t, k in enumerate(data.task_ids):
            for j in inits[k]:
                jobs.append((data.suite, k, policy, t, execute, [int(j)], options,
                             None if states is None else states[k]))
                where.append((i, k))
    episodes = parallel.map_jobs(_rollout_job, jobs, workers, desc=desc, progress=progress)
    for i in sorted({i for i, _ in where}):
        out = {}
        for k in data.task_ids:
            mine = [ep for ep, w in zip(episodes, where) if w == (i, k)]
            out[k] = {name: np.concatenate([ep[name] for ep in mine]) if mine else
                      np.zeros(0, dict(success=bool, progress=np.float32, steps=np.int64)[name])
                      for name in ("success", "progress", "steps")}
        cache.save_entry("vla_bc_rollout", keys[i], out)
        results[i] = out
    return results


def rollout_checkpoint(data: TaskSet, policy: bc.BCPolicy, epoch: int,
                       init_states: dict[int, list[int]], *, execute: int, **options) -> dict:
    """:func:`rollout_checkpoints` of one checkpoint (same keyword options)."""
    return rollout_checkpoints(data, [(policy, epoch, init_states, execute)], **options)[0]


def _harness_job(args: tuple) -> bool:
    """One episode of :func:`harness_controls`: a replayed demo (``actions`` given) or the
    scripted controller (``actions`` None) from one init state; returns its success."""
    from helpers.libero import evaluation

    suite, task_id, init, actions, options = args
    task, env = task_env(suite, task_id, options["image_size"], options["seed"])
    if actions is not None:
        policy = evaluation.ReplayPolicy(actions)
    else:
        policy = evaluation.ScriptedPolicy(env.obj_of_interest[0], env.obj_of_interest[-1],
                                           seed=options["seed"] + init)
    return bool(evaluation.run_rollouts(task, lambda _i: policy, [init], env=env, progress=False,
                                        **options)["success"][0])


def harness_controls(data: TaskSet, held_out: dict[int, list[int]], n_replay: int, *,
                     image_size: int, max_steps: int, action_repeat: int, seed: int,
                     key: dict, replay_max_steps: int | None = None,
                     workers: int = 1) -> pd.DataFrame:
    """The rollout harness's positive controls per task, cached under ``("vla_harness", key)``:
    the first ``n_replay`` demos replayed open-loop from their own init states (within
    ``replay_max_steps``, the demos' own limit; default ``max_steps``), and the scripted
    controller (through the policy branch of the harness) from the held-out init states. The
    episodes run over ``workers`` processes of the shared pool (:mod:`helpers.parallel`).

    Returns:
        One row per (task, control): successes, rollouts, the success rate and its 95% Wilson
        interval.
    """
    from helpers import parallel
    from helpers.chapter import format_interval
    from helpers.libero import evaluation
    from helpers.libero import sim as libero_sim
    from helpers.libero.demos import demo_init_states

    def _run() -> list[dict]:
        options = dict(image_size=image_size, action_repeat=action_repeat, seed=seed)
        jobs, labels = [], []
        for k, d in data.demos.items():
            stored = libero_sim.get_task(data.suite, k).init_states
            inits = _init_indices(stored, demo_init_states(_demo_path(d)))
            for e in range(min(n_replay, d.n_episodes)):
                jobs.append((data.suite, k, inits[e], d.actions[d.episode == e],
                             dict(options, max_steps=replay_max_steps or max_steps)))
                labels.append((k, "replay recorded demo (its own init)"))
            for i in held_out[k]:
                jobs.append((data.suite, k, int(i), None, dict(options, max_steps=max_steps)))
                labels.append((k, "scripted controller (held-out inits)"))
        done = parallel.map_jobs(_harness_job, jobs, workers, desc="harness controls")
        return [dict(task=k, control=c, successes=int(sum(s for s, l in zip(done, labels)
                                                          if l == (k, c))),
                     rollouts=labels.count((k, c)))
                for k, c in dict.fromkeys(labels)]

    table = pd.DataFrame(cached("vla_harness", key, _run))
    table["success"] = table.successes / table.rollouts
    table["95% interval"] = [format_interval(r.success, *evaluation.wilson_interval(
        r.successes, r.rollouts), digits=2) for r in table.itertuples()]
    return table


def _demo_path(demos: Demos):
    """The cache file a :func:`load_task_set` demo set was read from (its key is in env_args)."""
    from helpers.libero.demos import demo_file

    args = json.loads(demos.attrs["env_args"])
    return demo_file(args["suite"], args["task_id"], args["n_demos"], args["image_size"],
                     seed=args["seed"], action_repeat=args["action_repeat"],
                     max_steps=args["max_steps"], n_init=args.get("n_init"),
                     workers=args.get("workers", 1))


def _init_indices(init_states: np.ndarray, starts: np.ndarray) -> list[int]:
    """Index into ``init_states`` of each demo's start state (nearest; demos start exactly
    there)."""
    d = np.linalg.norm(starts[:, None, :] - init_states[None, :, :], axis=-1)
    return [int(i) for i in d.argmin(1)]


@torch.no_grad()
def offline_error(policy: bc.BCPolicy, data: TaskSet, rows: slice | None = None,
                  batch_size: int = 256) -> float:
    """Mean L1 error of the policy's first predicted action (normalised dims 0-5) on the demo
    frames it was trained on (``rows`` of the pooled arrays, default all): how well it fits,
    without closing the loop."""
    policy.eval()
    rows = slice(0, len(data.actions)) if rows is None else rows
    norm = torch.as_tensor(np.concatenate(list(data.norm.values())))[rows]
    frames, states, tasks = data.frames[rows], data.states[rows], data.task_index[rows]
    wrist = data.wrist[rows] if policy.cfg.wrist else None
    errs = []
    for s in range(0, len(norm), batch_size):
        sl = slice(s, s + batch_size)
        x = bc.to_input(torch.as_tensor(frames[sl]))
        w = bc.to_input(torch.as_tensor(wrist[sl])) if wrist is not None else None
        out = policy(x, torch.as_tensor(states[sl]), torch.as_tensor(tasks[sl]), w)[:, :6]
        errs.append((out.clamp(-1, 1) - norm[sl, :6]).abs().mean(1))
    return float(torch.cat(errs).mean())


def encoder_features(policy: bc.BCPolicy, frames: np.ndarray) -> list[torch.Tensor]:
    """Every block's pooled output of the policy's encoder on the agentview frames: ViT blocks
    as CLS tokens, MobileNetV2 stages spatially averaged. Returns one ``[N, D_l]`` per block."""
    from helpers.features import extract_module_outputs

    if policy.cfg.encoder == "vit":
        f = policy_features(policy, frames)["cls"]
        return [f[:, i] for i in range(f.shape[1])]
    x = bc.to_input(torch.as_tensor(frames))
    return extract_module_outputs(policy.encoder, x, policy.encoder.stage_names, pool="gap",
                                  batch_size=128, progress=False)


def _features_job(args: tuple) -> list[torch.Tensor]:
    policy, frames = args
    return encoder_features(policy, frames)


def checkpoint_features(data: TaskSet, policies: dict[tuple, bc.BCPolicy], base_key: dict,
                        workers: int = 1) -> dict[tuple, list[torch.Tensor]]:
    """:func:`encoder_features` of every ``(variant, epoch) -> policy`` on all the demo frames,
    cached under ``("vla_bc_variant_features", key)`` (the policy's config, the epoch, the
    frame count and ``base_key``); the uncached ones run over ``workers`` processes of the
    shared pool (:mod:`helpers.parallel`)."""
    from helpers import cache, parallel

    keys = {p: dict(bc.config_dict(policy.cfg), epoch=p[1], n=len(data.actions), **base_key)
            for p, policy in policies.items()}
    feats = {p: cache.load_entry("vla_bc_variant_features", key) for p, key in keys.items()}
    missing = [p for p, f in feats.items() if f is None]
    frames = data.frames
    done = parallel.map_jobs(_features_job, [(policies[p], frames) for p in missing], workers,
                             desc="encoder features")
    for p, f in zip(missing, done):
        cache.save_entry("vla_bc_variant_features", keys[p], f)
        feats[p] = f
    return feats


def layer_table(masked: dict, plain: dict, n_perm: int) -> pd.DataFrame:
    """One row per (checkpoint, score): best block by corrected score, its raw and corrected
    value and the layer-max p-value, for the episode-masked and the plain results
    (``{(variant, epoch): AlignmentResult}`` each)."""
    from helpers.chapter import format_p

    rows = []
    for (name, epoch), r in masked.items():
        for score, res in (("episode-masked", r), ("plain", plain[name, epoch])):
            rows.append(dict(variant=name, epoch=epoch, score=score,
                             best_block=int(res.corrected.argmax()),
                             best=float(res.observed.max()), corrected=float(res.corrected.max()),
                             p=format_p(res.p_best, n_perm)))
    return pd.DataFrame(rows)


def curve_sentence(curve: pd.DataFrame, epoch: int) -> str:
    """The result over N in words: how the corrected score and the raw null of checkpoint
    ``epoch`` move from the smallest to the largest number of demos in ``curve`` (columns epoch,
    episodes, corrected, null)."""
    end = curve[curve.epoch == epoch].sort_values("episodes")
    if len(end) < 2:
        return "only one sample size fits these settings, so there is no curve"
    change = float(end.corrected.iloc[-1] - end.corrected.iloc[0])
    return (f"from {int(end.episodes.iloc[0])} to {int(end.episodes.iloc[-1])} demos per task the "
            f"trained encoder's corrected score moves by {change:+.3f} while the raw null falls "
            f"from {end.null.iloc[0]:.3f} to {end.null.iloc[-1]:.3f}")


def openvla_report(libero_dir: str, *, model: str, max_demos: int | None, topk: int,
                   n_perm: int, seed: int, towers: tuple | None = None, size: int = 224):
    """The ``full`` scale in one call: OpenVLA's DINOv2 and SigLIP towers (or stand-in
    ``towers``) on every LIBERO file in ``libero_dir``, frames rotated 180 degrees, then the
    plain and episode-masked scores with their nulls for every block.

    Returns:
        (number of files, per-block profile figure, one row per (tower, score): best block, its
        score, the score at OpenVLA's block, corrected best and layer-max p).
    """
    from helpers.libero import figures, openvla

    demos, feats = openvla.libero_folder_features(libero_dir, towers=towers, model=model,
                                                  max_demos=max_demos, size=size)
    res = va.encoder_alignment(feats, [d.actions for d in demos], [d.episode for d in demos],
                               [d.step for d in demos], topk=topk, n_perm=n_perm, seed=seed)
    fig = figures.plot_layer_profiles(
        [(title, {name: r[score] for name, r in res.items()})
         for score, title in (("plain", "plain, row-shuffle null"),
                              ("masked", "episode-masked, episode null"))],
        topk, xlabel="ViT block (OpenVLA reads the second-to-last)")
    table = pd.DataFrame([dict(encoder=n, score=s, best_block=int(r[s].observed.argmax()),
                               best=float(r[s].observed.max()),
                               used_block=float(r[s].observed[openvla.USED_BLOCK]),
                               corrected=float(r[s].corrected.max()), p=r[s].p_best)
                          for n, r in res.items() for s in r])
    return len(demos), fig, table


N_STORED_INITS = 50  # init states LIBERO stores per task


@dataclass(frozen=True)
class InitSplits:
    """Init-state indices per task for each set of episodes. Demos start from ``0..n_init-1``;
    ``held_out`` (every checkpoint's test rollouts), ``extra`` (the selected checkpoint's further
    test rollouts) and ``scripted`` (the scripted control) start from the others; ``train``
    are demo starts; ``val`` indexes the sampled validation states, not LIBERO's stored ones."""

    held_out: dict[int, list[int]]
    extra: dict[int, list[int]]
    train: dict[int, list[int]]
    scripted: dict[int, list[int]]
    val: dict[int, list[int]]


def init_splits(task_ids: list[int], *, n_init: int, n_rollouts: int, n_rollouts_best: int,
                n_train_rollouts: int, n_scripted: int, n_val: int) -> InitSplits:
    """The chapter's :class:`InitSplits` from its parameters.

    Raises:
        ValueError: the held-out episodes need more than LIBERO's 50 stored init states, or
            ``n_rollouts_best < n_rollouts``.

    >>> s = init_splits([0], n_init=30, n_rollouts=6, n_rollouts_best=20, n_train_rollouts=2,
    ...                 n_scripted=8, n_val=5)
    >>> s.held_out[0][0], s.extra[0][0], s.extra[0][-1], s.train[0], s.val[0][-1]
    (30, 36, 49, [0, 1], 4)
    """
    if n_init + max(n_rollouts_best, n_scripted) > N_STORED_INITS or n_rollouts_best < n_rollouts:
        raise ValueError(f"n_init + n_rollouts_best (or n_scripted) must be <= {N_STORED_INITS} "
                         f"and n_rollouts_best >= n_rollouts, but got n_init={n_init}, "
                         f"n_rollouts={n_rollouts}, n_rollouts_best={n_rollouts_best}, "
                         f"n_scripted={n_scripted}; lower them.")

    def each(indices: range) -> dict[int, list[int]]:
        return {k: list(indices) for k in task_ids}

    return InitSplits(held_out=each(range(n_init, n_init + n_rollouts)),
                      extra=each(range(n_init + n_rollouts, n_init + n_rollouts_best)),
                      train=each(range(min(n_train_rollouts, n_init))),
                      scripted=each(range(n_init, n_init + n_scripted)), val=each(range(n_val)))


ENCODER_FAMILY = {"vit": "ViT", "mobilenet_v2": "MobileNetV2"}  # encoder -> name in the prose


@dataclass
class TrainedVariants:
    """The chapter's behaviour-cloned variants: its variant ``specs`` (the first is the main
    one), their configs and loss histories, and one policy per point ``(name, epoch)``."""

    specs: list[dict]
    configs: dict[str, bc.PolicyConfig]
    histories: dict[str, list[float]]
    policies: dict[tuple, bc.BCPolicy]

    @property
    def main(self) -> str:
        """Name of the main variant (the first spec)."""
        return self.specs[0]["name"]

    @property
    def encoder(self) -> dict[str, str]:
        """Variant name -> encoder ("vit" or "mobilenet_v2")."""
        return {n: cfg.encoder for n, cfg in self.configs.items()}

    @property
    def family(self) -> str:
        """The main variant's encoder family as the prose names it, e.g. "ViT"."""
        return ENCODER_FAMILY[self.encoder[self.main]]

    def in_family(self, name: str) -> bool:
        """Whether variant ``name`` has the main variant's encoder."""
        return self.encoder[name] == self.encoder[self.main]

    @property
    def points(self) -> list[tuple]:
        """Every trained checkpoint (epoch > 0), in spec order: the ones rolled out."""
        return [(s["name"], e) for s in self.specs for e in s["checkpoints"] if e > 0]

    @property
    def last(self) -> dict[str, tuple]:
        """Variant name -> its last checkpoint."""
        return {s["name"]: (s["name"], s["checkpoints"][-1]) for s in self.specs}

    @property
    def untrained(self) -> dict[str, tuple]:
        """Variant name -> its epoch-0 (random-init) checkpoint, for variants that keep one."""
        return {s["name"]: (s["name"], 0) for s in self.specs if 0 in s["checkpoints"]}

    @property
    def execute(self) -> dict[str, int]:
        """Variant name -> actions executed per predicted chunk (default: half the chunk)."""
        return {s["name"]: s.get("execute", max(1, self.configs[s["name"]].chunk // 2))
                for s in self.specs}

    def table(self) -> pd.DataFrame:
        """:func:`variant_table` of these variants."""
        return variant_table(self.specs, self.configs, self.histories)


def train_variant_specs(data: TaskSet, specs: list[dict], *, image_size: int, seed: int,
                        base_key: dict, workers: int = 1) -> TrainedVariants:
    """Build each spec's config (:func:`variant_config`), train every variant with its
    checkpoints (:func:`train_variants`, cached under the config, the checkpoints and
    ``base_key``) and load one policy per checkpoint.

    Args:
        specs: the chapter's variant dicts (``name``, ``checkpoints`` and PolicyConfig fields).
        base_key: what the demos are (their cache key).

    Raises:
        ValueError: no specs, or two specs share a name.
    """
    names = [s["name"] for s in specs]
    if not names or len(set(names)) != len(names):
        raise ValueError(f"Expected at least one variant and distinct names, but got {names}; "
                         f"give each variant its own name.")
    configs = {s["name"]: variant_config(s, image_size=image_size, n_tasks=len(data.task_ids),
                                         seed=seed) for s in specs}
    trained = train_variants(
        data, [(configs[s["name"]], s["checkpoints"],
                dict(bc.config_dict(configs[s["name"]]), checkpoints=s["checkpoints"], **base_key))
               for s in specs], workers=workers)
    return TrainedVariants(
        specs, configs, {s["name"]: t["history"] for s, t in zip(specs, trained)},
        {(s["name"], e): bc.load_policy(configs[s["name"]], sd)
         for s, t in zip(specs, trained) for e, sd in t["checkpoints"].items()})


def pool_tasks(per_task: dict[int, dict[str, np.ndarray]],
               names: tuple[str, ...] = ("success", "progress")) -> dict[str, np.ndarray]:
    """One rollout result ``{task: {name: [n]}}`` with each ``name`` pooled over tasks.

    >>> pool_tasks({0: dict(success=np.array([1, 0])), 3: dict(success=np.array([1]))},
    ...            ("success",))
    {'success': array([1, 0, 1])}
    """
    return {m: np.concatenate([r[m] for r in per_task.values()]) for m in names}


def validation_rollouts(data: TaskSet, variants: TrainedVariants, candidates: list[tuple], *,
                        n_val: int, val_seed: int, **options) -> dict[tuple, dict]:
    """Closed-loop rollouts of each candidate point from ``n_val`` validation scenes per task,
    sampled with seed ``val_seed + 100 * task`` from the task's placement initializer
    (:func:`helpers.libero.sim.sample_init_states`), none of them a stored LIBERO init state.

    Args:
        options: :func:`rollout_checkpoints` options (base_key, image_size, max_steps,
            action_repeat, seed, workers).

    Returns:
        Candidate -> :func:`pool_tasks` of its rollouts (success and progress over tasks).
    """
    from helpers.libero import sim as libero_sim

    states = {k: libero_sim.sample_init_states(libero_sim.get_task(data.suite, k), n_val,
                                               seed=val_seed + 100 * k) for k in data.task_ids}
    inits = {k: list(range(n_val)) for k in data.task_ids}
    runs = rollout_checkpoints(
        data, [(variants.policies[p], p[1], inits, variants.execute[p[0]]) for p in candidates],
        states=states, desc="validation rollouts",
        states_key=dict(val_seed=val_seed, n_val=n_val, robot_noise=libero_sim.ROBOT_INIT_NOISE),
        **options)
    return {p: pool_tasks(r) for p, r in zip(candidates, runs)}


@dataclass
class HeldOutRollouts:
    """Test-scene success of every trained point and of the selected one.

    ``success``: point -> {task: [n] bool} from the held-out init states; ``table``:
    :func:`~helpers.libero.evaluation.success_table` of those points plus the selected point
    over all its test rollouts (label ``selected_label``) and from training init states."""

    success: dict[tuple, dict[int, np.ndarray]]
    table: pd.DataFrame
    selected_label: str

    def pooled(self, point: tuple) -> np.ndarray:
        """The held-out successes of ``point`` pooled over tasks."""
        return np.concatenate(list(self.success[point].values()))


def held_out_rollouts(data: TaskSet, variants: TrainedVariants, selected: tuple,
                      inits: InitSplits, **options) -> HeldOutRollouts:
    """Roll out every trained point from ``inits.held_out``, and the ``selected`` one also from
    ``inits.extra`` and ``inits.train`` (:func:`rollout_checkpoints` ``options``)."""
    from helpers.libero.evaluation import success_table

    points, ex = variants.points, variants.execute
    *held_out, extra, on_train = rollout_checkpoints(
        data, [(variants.policies[p], p[1], inits.held_out, ex[p[0]]) for p in points]
        + [(variants.policies[selected], selected[1], i, ex[selected[0]])
           for i in (inits.extra, inits.train)], desc="test rollouts", **options)
    success = {p: {k: r[k]["success"] for k in data.task_ids} for p, r in zip(points, held_out)}
    name = f"{selected[0]}, selected"
    label = f"{name} (all test inits)"
    table = success_table({
        **success,
        (label, selected[1]): {k: np.r_[success[selected][k], extra[k]["success"]]
                               for k in data.task_ids},
        (f"{name} (training inits)", selected[1]): {k: on_train[k]["success"]
                                                    for k in data.task_ids}})
    return HeldOutRollouts(success, table, label)


def point_alignments(data: TaskSet, feats: dict[tuple, list[torch.Tensor]],
                     options: list[dict], workers: int = 1) -> list[dict[tuple, list]]:
    """:func:`task_alignment` of every point's features under each of ``options`` (e.g. the
    plain and the episode-masked score), all over ``workers`` processes
    (:func:`task_alignments`).

    Returns:
        Per option, point -> per-task results (task order).
    """
    runs = task_alignments(data, [(feats[p], o) for o in options for p in feats], workers)
    n = len(feats)
    return [dict(zip(feats, runs[i * n:(i + 1) * n])) for i in range(len(options))]
