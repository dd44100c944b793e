"""The chapter's pipeline over several LIBERO tasks: demos pooled into one training set, cached
behaviour cloning with checkpoints, cached closed-loop rollouts, per-checkpoint features and
per-task alignment scores.

:class:`TaskSet` holds the demos of several tasks of one suite, concatenated in task order
(``per_task[k]`` is the slice of task k's rows), with the actions OpenVLA-normalised by
quantiles pooled over tasks. Every function here takes a :class:`TaskSet`, so the chapter holds
only parameters, calls, tables and figures.
"""
from __future__ import annotations

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
        return {k: va.normalize_actions(d.actions, self.q01, self.q99) for k, d in self.demos.items()}

    @property
    def moving(self) -> dict[int, np.ndarray]:
        return {k: va.moving_mask(d.actions, self.move_threshold) for k, d in self.demos.items()}


def load_task_set(suite: str, task_ids: list[int], n_demos: int, image_size: int, *, seed: int,
                  action_repeat: int, max_steps: int, move_threshold: float = 0.1,
                  **record_options) -> TaskSet:
    """Scripted demos of each task (recorded once, then read from the cache) as a :class:`TaskSet`.

    ``record_options`` go to :func:`helpers.libero.demos.load_or_record` unchanged.
    """
    demos = {k: load_or_record(suite, k, n_demos, image_size, seed=seed, action_repeat=action_repeat,
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


def train_checkpoints(data: TaskSet, cfg: bc.PolicyConfig, checkpoints: list[int],
                      key: dict) -> dict:
    """Behaviour cloning on every row of ``data``, cached under ``("vla_bc_policy", key)``.

    Returns:
        ``{"checkpoints": {epoch: state_dict}, "history": [loss per epoch]}``.
    """
    def _train() -> dict:
        _, ckpts, hist = bc.train_bc(data.frames, data.states, data.actions, data.task_index, cfg,
                                     tuple(checkpoints))
        return dict(checkpoints=ckpts, history=hist)

    return cached("vla_bc_policy", key, _train)


def rollout_checkpoints(data: TaskSet, policies: list, n_rollouts: int, *, image_size: int,
                        max_steps: int, action_repeat: int, seed: int, key: dict) -> dict:
    """Closed-loop rollouts of each policy on each task from the last ``n_rollouts`` init states
    (scenes the demos never start from), cached under ``("vla_bc_rollouts", key)``.

    Returns:
        ``{task: {"success": [P, n] bool, "progress": [P, n] float}}``.
    """
    from helpers.libero import sim as libero_sim

    def _rollouts() -> dict:
        out = {}
        for i, k in enumerate(data.task_ids):
            task = libero_sim.get_task(data.suite, k)
            n_init = len(task.init_states)
            succ, prog = bc.rollout_success(policies, task, i, list(range(n_init - n_rollouts, n_init)),
                                            image_size=image_size, max_steps=max_steps,
                                            action_repeat=action_repeat, seed=seed)
            out[k] = dict(success=succ, progress=prog)
        return out

    return cached("vla_bc_rollouts", key, _rollouts)


def policy_features(policy: bc.BCPolicy, frames: np.ndarray) -> dict[str, torch.Tensor]:
    """Every encoder block's CLS and mean-patch token on the policy's own input scaling:
    ``{"cls": [N, L, D], "mean": [N, L, D]}``."""
    x = bc.to_input(torch.as_tensor(frames))
    out = extract_vision_features(policy.encoder, x, pool="both", transform=False, batch_size=128,
                                  progress=False)
    return {p: out[p] for p in ("cls", "mean")}


def task_alignment(data: TaskSet, feats: torch.Tensor, *, exclude=None, mode: str = "rows",
                   horizon: int = 1, filt: bool = False, episodes: int | None = None,
                   topk: int = 10, n_perm: int = 50, seed: int = 0) -> list[va.AlignmentResult]:
    """Per task, :func:`~helpers.libero.action_alignment.alignment_null` of pooled features
    ``feats [N, L, D]`` against dims 0-5 of the normalised actions.

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
        f = feats[per_task[k]]
        a, ep, st = norm[k][:, :6], d.episode, d.step
        keep = np.ones(len(d), bool)
        if filt:
            keep &= moving[k]
        if episodes is not None:
            keep &= d.episode < episodes
        if horizon > 1:
            a, start = va.action_windows(a, ep, horizon)
            keep = keep[start]
            f, ep, st = f[start], ep[start], st[start]
        res.append(va.alignment_null(f[keep], a[keep], ep[keep], st[keep], mode=mode, exclude=exclude,
                                     topk=topk, n_perm=n_perm, seed=seed))
    return res
