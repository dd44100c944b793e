"""Closed-loop evaluation in the LIBERO simulator: one rollout harness for every kind of policy,
the positive controls that check it, and binomial intervals for success rates.

Every policy runs through :func:`helpers.libero.sim.run_episode` (same reset, settle steps,
action repeat and success check), so a 0% policy and a broken harness can be told apart:

* :class:`ReplayPolicy` replays a recorded demo's actions open-loop from its own init state
  (the simulator is deterministic, so a correct harness reproduces the demo's success);
* :class:`ScriptedPolicy` runs the scripted controller (it reads object positions from the
  simulator, not pixels) through the policy branch of the harness;
* :class:`ChunkedPolicy` runs a :class:`~helpers.libero.policy.BCPolicy`: it renders a frame only
  when it needs a new action chunk and executes the first ``execute`` actions of each chunk.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np
from tqdm.auto import tqdm

from helpers.libero import sim as libero_sim
from helpers.libero.policy import BCPolicy


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (95% for z = 1.96).

    Unlike the normal approximation it stays inside [0, 1] and is not empty at 0 or n successes.

    >>> [round(v, 3) for v in wilson_interval(0, 10)]
    [0.0, 0.278]
    >>> [round(v, 3) for v in wilson_interval(5, 10)]
    [0.237, 0.763]
    """
    if n < 1 or not 0 <= successes <= n:
        raise ValueError(f"Expected 0 <= successes <= n and n >= 1, but got {successes} of {n}.")
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    # clamped to contain p: in floating point 6 of 6 gave hi = 0.9999999999999999 < p, a negative
    # error bar that matplotlib refuses
    return min(p, max(0.0, centre - half)), max(p, min(1.0, centre + half))


class ReplayPolicy:
    """Replays recorded actions ``[T, 7]`` open-loop (the last one is held if the episode runs
    on)."""

    needs_frames = staticmethod(lambda: False)

    def __init__(self, actions: np.ndarray):
        self.actions = np.asarray(actions, np.float32)
        if self.actions.ndim != 2 or self.actions.shape[1] != 7 or len(self.actions) == 0:
            raise ValueError(f"Expected actions [T >= 1, 7], but got {self.actions.shape}.")
        self.t = 0

    def __call__(self, frames, state) -> np.ndarray:
        a = self.actions[min(self.t, len(self.actions) - 1)]
        self.t += 1
        return a


class ScriptedPolicy:
    """The scripted pick-and-place controller as a harness policy (reads the simulator's obs)."""

    needs_frames = staticmethod(lambda: False)
    reads_sim_obs = True

    def __init__(self, obj: str, target: str, seed: int = 0, **options):
        self.controller = libero_sim.ScriptedPickPlace(obj, target, seed=seed, **options)

    def __call__(self, frames, state, obs) -> np.ndarray:
        return self.controller.act(obs)


class ChunkedPolicy:
    """A :class:`BCPolicy` in closed loop: a new action chunk from the current (upright) frames
    whenever the queue is empty, then its first ``execute`` actions, one per decision."""

    def __init__(self, policy: BCPolicy, task_index: int, execute: int | None = None):
        chunk = policy.cfg.chunk
        self.execute = chunk if execute is None else execute
        if not 1 <= self.execute <= chunk:
            raise ValueError(f"Expected 1 <= execute <= chunk = {chunk}, but got {self.execute}.")
        self.policy, self.task_index, self.queue = policy, task_index, []

    def needs_frames(self) -> bool:
        return not self.queue

    @property
    def cameras(self) -> tuple[str, ...]:
        return libero_sim.CAMERAS if self.policy.cfg.wrist else ("agentview",)

    def __call__(self, frames, state) -> np.ndarray:
        if not self.queue:
            wrist = frames["robot0_eye_in_hand"][::-1] if self.policy.cfg.wrist else None
            chunk = self.policy.act_chunk(frames["agentview"][::-1], state, self.task_index, wrist)
            self.queue = list(chunk[: self.execute])
        return self.queue.pop(0)


def run_rollouts(task: libero_sim.TaskInfo, make_policy: Callable[[int], Callable],
                 init_indices: Sequence[int], *, image_size: int, max_steps: int = 220,
                 action_repeat: int = 2, seed: int = 0, cameras: tuple[str, ...] = ("agentview",),
                 env=None, progress: bool = True, desc: str = "rollouts") -> dict[str, np.ndarray]:
    """Closed-loop episodes of ``make_policy(init_index)`` (a fresh policy per episode) from
    each init state, in one environment (each episode is the same as in a fresh one:
    :func:`helpers.libero.sim.reset_to`).

    Returns:
        ``{"success": [n] bool, "progress": [n] float, "steps": [n] int}`` (progress: how much
        closer the picked object got to its target, 1 on success; steps: decisions taken).
    """
    own_env = env is None
    env = libero_sim.make_env(task, image_size=image_size, seed=seed) if own_env else env
    out = {"success": np.zeros(len(init_indices), bool),
           "progress": np.zeros(len(init_indices), np.float32),
           "steps": np.zeros(len(init_indices), np.int64)}
    try:
        for j, i in enumerate(tqdm(init_indices, desc=desc, disable=not progress)):
            ep = libero_sim.run_episode(env, task, int(i), policy=make_policy(int(i)),
                                        max_steps=max_steps, action_repeat=action_repeat,
                                        record=False, cameras=cameras)
            out["success"][j], out["progress"][j] = ep.success, ep.progress
            out["steps"][j] = ep.decisions
    finally:
        if own_env:
            env.close()
    return out



def success_row(successes: np.ndarray) -> dict:
    """Successes, rollouts, rate and its 95% Wilson interval for one set of rollouts."""
    s = np.asarray(successes, bool)
    lo, hi = wilson_interval(int(s.sum()), len(s))
    return dict(successes=int(s.sum()), rollouts=len(s), success=float(s.mean()), lo=lo, hi=hi)


def spearman_over_rollouts(x: Sequence[float], successes: Sequence[np.ndarray], n_boot: int = 1000,
                           seed: int = 0) -> np.ndarray:
    """Bootstrap draws of Spearman's rho between ``x`` (one value per point) and each point's
    success rate, resampling every point's rollouts with replacement (the rollouts are the
    independent units; ``x`` is held fixed). Draws where the resampled rates are constant are NaN.

    Returns:
        ``[n_boot]`` draws.
    """
    from scipy.stats import spearmanr

    x = np.asarray(x, float)
    if len(x) != len(successes) or len(x) < 3:
        raise ValueError(f"Expected one rollout array per point and >= 3 points, but got {len(x)} "
                         f"values and {len(successes)} arrays.")
    rng = np.random.default_rng(seed)
    arrays = [np.asarray(s, float) for s in successes]
    draws = np.full(n_boot, np.nan)
    for b in range(n_boot):
        rate = np.array([a[rng.integers(0, len(a), len(a))].mean() for a in arrays])
        if np.ptp(rate) > 0 and np.ptp(x) > 0:
            draws[b] = spearmanr(x, rate).statistic
    return draws


def correlation_table(points, successes: Sequence[np.ndarray], *, n_perm: int = 2000,
                      n_boot: int = 1000, seed: int = 0,
                      pairs: Sequence[tuple[str, str]] = (
                          ("best", "success"), ("fixed", "success"), ("best", "error"),
                          ("fixed", "error"), ("error", "success"))):
    """Spearman's rho for each (x, y) column pair of ``points`` with a permutation p-value, and
    for pairs with ``y == "success"`` a bootstrap interval that resamples every point's
    rollouts (``successes``: one rollout array per row of ``points``).

    Returns:
        DataFrame with columns x, y, rho, p, lo, hi (NaN where undefined).
    """
    import pandas as pd

    from helpers import stats

    rows = []
    for x, y in pairs:
        rho, p = stats.spearman_permutation(points[x], points[y], n_perm=n_perm, seed=seed)
        lo = hi = float("nan")
        if y == "success" and len(points) >= 3:
            draws = spearman_over_rollouts(points[x], successes, n_boot=n_boot, seed=seed)
            if np.isfinite(draws).any():
                lo, hi = stats.interval(draws)
        rows.append(dict(x=x, y=y, rho=rho, p=p, lo=lo, hi=hi))
    return pd.DataFrame(rows)


def rate_difference(a: np.ndarray, b: np.ndarray, n_boot: int = 1000,
                    seed: int = 0) -> tuple[float, float, float]:
    """Success(a) - success(b) with a 95% bootstrap interval over the rollouts of each."""
    from helpers import stats

    a, b = np.asarray(a, float), np.asarray(b, float)
    rng = np.random.default_rng(seed)
    draws = [rng.choice(a, len(a)).mean() - rng.choice(b, len(b)).mean() for _ in range(n_boot)]
    lo, hi = stats.interval(draws)
    return float(a.mean() - b.mean()), lo, hi


def select_checkpoint(validation: dict) -> tuple:
    """The candidate with the highest validation success rate, ties broken by mean progress
    (how much closer the bowl got to the plate), then by order.

    Args:
        validation: ``{candidate: {"success": [n] bool, "progress": [n] float}}`` (rollouts pooled
            over tasks), e.g. ``{(variant, epoch): ...}``.

    Returns:
        The chosen candidate key.
    """
    if not validation:
        raise ValueError("select_checkpoint needs at least one candidate; pass {key: rollouts}.")
    empty = [k for k, v in validation.items() if len(v["success"]) == 0]
    if empty:
        raise ValueError(f"candidates {empty} have no rollouts; give each validation rollouts.")
    return max(validation, key=lambda k: (float(np.mean(validation[k]["success"])),
                                          float(np.mean(validation[k]["progress"]))))


def _primary(corr):
    return corr[(corr.x == "best") & (corr.y == "success")].iloc[0]


def alignment_tracks_success(corr, alpha: float = 0.05) -> bool | None:
    """The verdict on "alignment rises with success" from :func:`correlation_table`'s
    best/success row: True at p < alpha with rho > 0, False at p < alpha with rho < 0, None
    (undecided) when p >= alpha or rho is undefined: a correlation we cannot detect is not
    evidence that there is none."""
    main = _primary(corr)
    if not (np.isfinite(main.rho) and np.isfinite(main.p)) or main.p >= alpha:
        return None
    return bool(main.rho > 0)


def _reading(corr, n_perm: int, alpha: float) -> str:
    from helpers.chapter import format_interval, format_p

    main = _primary(corr)
    if not np.isfinite(main.rho):
        return "undefined (success does not vary across these points)"
    verdict = {True: "alignment tracks success", False: "alignment tracks failure",
               None: "alignment does not detectably track success"}[
        alignment_tracks_success(corr, alpha)]
    return (f"{format_interval(main.rho, main.lo, main.hi, signed=True, digits=2)} "
            f"({format_p(main.p, n_perm)}): {verdict}")


def rho_sentence(corr, n_perm: int, alpha: float = 0.05, within=None, family: str = "") -> str:
    """The chapter's answer in words, from :func:`correlation_table`'s rows ``best``/``success``
    (the primary test, read at ``alpha``) and ``best``/``error`` (alignment against fit), and
    optionally the same test ``within`` one encoder family (``family`` names it).

    >>> import pandas as pd
    >>> corr = pd.DataFrame([dict(x="best", y="success", rho=0.6, p=0.01, lo=0.2, hi=0.8),
    ...                      dict(x="best", y="error", rho=-0.3, p=0.3, lo=None, hi=None)])
    >>> rho_sentence(corr, 1000).split(":")[1].strip()
    'alignment tracks success; against offline action error it is -0.30 (p = 0.3)'
    """
    from helpers.chapter import format_p

    main = _primary(corr)
    if not np.isfinite(main.rho):
        text = ("the correlation between alignment and success is undefined (success does not "
                "vary across points)")
    else:
        fit = corr[(corr.x == "best") & (corr.y == "error")].iloc[0]
        text = (f"Spearman's rho between best-block alignment and success is "
                f"{_reading(corr, n_perm, alpha)}; against offline action error it is "
                f"{fit.rho:+.2f} ({format_p(fit.p, n_perm)})")
    if within is not None:
        text += f"; within the {family} points alone it is {_reading(within, n_perm, alpha)}"
    return text


# (variant compared with "MobileNetV2 ImageNet", claim, source, control) for the verdict table
PRETRAINING_CLAIMS = (
    ("MobileNetV2 ImageNet frozen", "Freezing the vision encoder costs success",
     "Kim et al. 2024 (OpenVLA)", "same architecture and data"),
    ("MobileNetV2 random init", "ImageNet pretraining helps the policy",
     "Burns et al. 2024 (mixed)", "same architecture from random init"),
)


def chapter_verdicts(tables: dict, last_success: dict, untrained_plain_p: float, *,
                     n_perm: int, n_perm_corr: int, n_boot: int = 1000, seed: int = 0,
                     alpha: float = 0.05) -> list:
    """The chapter's closing rows (:class:`helpers.chapter.Verdict`).

    Args:
        tables: label (e.g. "13 points") -> :func:`correlation_table`; each gives one
            "alignment rises with competence" row, read by :func:`alignment_tracks_success`.
        last_success: variant name -> pooled test rollouts of its last checkpoint; the
            :data:`PRETRAINING_CLAIMS` rows need "MobileNetV2 ImageNet" and the other variant
            (a claim whose variants are absent is left out).
        untrained_plain_p: layer-max p of the untrained main encoder's plain score against the
            row shuffle (the "row shuffle is too weak" row).
        alpha: family-wise level, split evenly (Bonferroni) over the correlation ``tables``.
    """
    from helpers.chapter import (Verdict, above_zero, bonferroni, format_interval, format_p,
                                 verdict_word)

    rows = []
    level = bonferroni(alpha, max(1, len(tables)))
    for label, corr in tables.items():
        r = _primary(corr)
        rows.append(Verdict("Alignment rises with competence", "Huh et al. 2024 (PRH)",
                            f"rho {format_interval(r.rho, r.lo, r.hi, signed=True, digits=2)}, "
                            f"{format_p(r.p, n_perm_corr)} ({label})",
                            "episode-masked score, episode null", f"p < {level:.3g}, rho > 0",
                            verdict_word(alignment_tracks_success(corr, level))))
    base = last_success.get("MobileNetV2 ImageNet")
    for other, claim, source, control in PRETRAINING_CLAIMS:
        if base is not None and other in last_success:
            d, lo, hi = rate_difference(base, last_success[other], n_boot=n_boot, seed=seed)
            rows.append(Verdict(claim, source, format_interval(d, lo, hi, signed=True, digits=2),
                                control, "interval > 0", verdict_word(above_zero(lo, hi))))
    rows.append(Verdict("A row shuffle is too weak a null for frames", "design note",
                        f"untrained plain {format_p(untrained_plain_p, n_perm)}",
                        "row-shuffle null", "p < 0.05 untrained",
                        verdict_word(bool(untrained_plain_p < 0.05))))
    return rows


def success_table(groups: dict) -> "pd.DataFrame":
    """One :func:`success_row` per (variant, epoch) group and task.

    Args:
        groups: ``{(variant label, epoch): {task: [n] bool successes}}``.

    Returns:
        DataFrame with columns variant, epoch, task, successes, rollouts, success, lo, hi.
    """
    import pandas as pd

    return pd.DataFrame([dict(variant=name, epoch=epoch, task=k, **success_row(s))
                         for (name, epoch), per_task in groups.items()
                         for k, s in per_task.items()])


def replay_sentence(controls) -> str:
    """What the replay control says, from :func:`helpers.libero.pipeline.harness_controls`'s
    table: all replayed demos succeed (the harness reproduces the recording) or not."""
    replay = controls[controls.control.str.startswith("replay")]
    ok, n = int(replay.successes.sum()), int(replay.rollouts.sum())
    return f"{ok} of {n} replayed demos succeed" + (
        ": reset, action repeat and the success check reproduce the recording" if ok == n
        else ", so the harness does not reproduce every recording and its numbers need care")
