"""LIBERO demonstration files: write and read HDF5 in LIBERO's layout.

One ``{task}_demo.hdf5`` per task (LIBERO ``scripts/create_dataset.py``)::

    data/                       attrs: env_name, problem_info (JSON with language_instruction),
                                       bddl_file_name, bddl_file_content, env_args,
                                       macros_image_convention, num_demos, total
    data/demo_i/                attrs: num_samples, model_file, init_state
        actions [T, 7]  states [T, S]  robot_states [T, 9]  rewards [T]  dones [T]
        obs/agentview_rgb [T, H, W, 3] uint8   obs/eye_in_hand_rgb [T, H, W, 3] uint8
        obs/gripper_states [T, 2]  obs/joint_states [T, 7]  obs/ee_states [T, 6]
        obs/ee_pos [T, 3]  obs/ee_ori [T, 3]

:func:`read_demos` reads both our files and real LIBERO downloads (which may lack some of the
optional datasets and attrs); frames come back upright (LIBERO's own vertical flip of
robosuite's OpenGL convention) unless ``upright=False``.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import h5py
import numpy as np

from helpers import parallel
from helpers.cache import atomic_write


@dataclass
class Demos:
    """Demonstrations of one task, concatenated over episodes (N = total steps).

    ``episode[i]`` and ``step[i]`` say where row i came from, so episode-aware baselines can
    exclude neighbours from the same episode.
    """

    actions: np.ndarray  # [N, 7] float32
    agentview: np.ndarray  # [N, H, W, 3] uint8 (upright unless read with upright=False)
    wrist: np.ndarray | None  # [N, H, W, 3] uint8, or None if the file has no wrist camera
    robot_states: np.ndarray | None  # [N, R] or None
    episode: np.ndarray  # [N] int64, demo index
    step: np.ndarray  # [N] int64, step within the demo
    language: str
    attrs: dict

    @property
    def n_episodes(self) -> int:
        return int(self.episode.max()) + 1 if len(self.episode) else 0

    def __len__(self) -> int:
        return len(self.actions)


def _problem_info(language: str, name: str) -> str:
    return json.dumps({"problem_name": "libero_tabletop_manipulation", "domain_name": "robosuite",
                       "language_instruction": language, "task_name": name})


def write_demos(path: str | Path, episodes: Sequence, *, language: str, task_name: str = "",
                bddl_file: str = "", bddl_content: str = "", env_args: dict | None = None) -> Path:
    """Write episodes (objects with the fields of :class:`helpers.libero.sim.Episode`) as a
    LIBERO-layout HDF5 file, atomically (a temporary file renamed into place).

    Raises:
        ValueError: no episodes, or an episode whose arrays disagree in length.
    """
    if len(episodes) == 0:
        raise ValueError("Expected at least one episode to write, but got none.")
    for i, ep in enumerate(episodes):
        t = len(ep.actions)
        for name in ("agentview_rgb", "eye_in_hand_rgb", "states", "robot_states"):
            if len(getattr(ep, name)) != t:
                raise ValueError(f"Episode {i}: {name} has {len(getattr(ep, name))} steps but "
                                 f"actions has {t}; record every field at every step.")

    def _write(tmp: Path) -> None:
        with h5py.File(tmp, "w") as f:
            g = f.create_group("data")
            g.attrs["env_name"] = "libero_tabletop_manipulation"
            g.attrs["problem_info"] = _problem_info(language, task_name)
            g.attrs["bddl_file_name"] = bddl_file
            g.attrs["bddl_file_content"] = bddl_content
            g.attrs["env_args"] = json.dumps(env_args or {})
            g.attrs["macros_image_convention"] = "opengl"
            g.attrs["num_demos"] = len(episodes)
            g.attrs["total"] = int(sum(len(ep.actions) for ep in episodes))
            for i, ep in enumerate(episodes):
                d = g.create_group(f"demo_{i}")
                d.attrs["num_samples"] = len(ep.actions)
                d.attrs["model_file"] = ""
                d.attrs["init_state"] = np.asarray(ep.init_state)
                d.create_dataset("actions", data=np.asarray(ep.actions, np.float64))
                d.create_dataset("states", data=np.asarray(ep.states))
                d.create_dataset("robot_states", data=np.asarray(ep.robot_states))
                d.create_dataset("rewards", data=np.asarray(ep.rewards, np.uint8))
                d.create_dataset("dones", data=np.asarray(ep.dones, np.uint8))
                o = d.create_group("obs")
                for name, frames in (("agentview_rgb", ep.agentview_rgb),
                                     ("eye_in_hand_rgb", ep.eye_in_hand_rgb)):
                    o.create_dataset(name, data=frames, compression="gzip", compression_opts=4)
                o.create_dataset("gripper_states", data=ep.gripper_states)
                o.create_dataset("joint_states", data=ep.joint_states)
                o.create_dataset("ee_states", data=ep.ee_states)
                o.create_dataset("ee_pos", data=np.asarray(ep.ee_states)[:, :3])
                o.create_dataset("ee_ori", data=np.asarray(ep.ee_states)[:, 3:])

    path = Path(path)
    atomic_write(path, _write)
    return path


class DemoFileError(ValueError):
    """A LIBERO demo file that cannot be read as LIBERO's layout; the message names the file,
    the demo (when one is at fault) and what is wrong."""


_DEMO_NAME = re.compile(r"demo_(\d+)")


def _demo_keys(group: h5py.Group, path: Path | str = "<file>") -> list[str]:
    """The ``demo_<i>`` groups of ``data``, in index order (demo_2 before demo_10).

    Raises:
        DemoFileError: a ``demo_*`` name whose suffix is not an integer (e.g. ``demo_x``).
    """
    keys = [k for k in group.keys() if k.startswith("demo_")]
    odd = [k for k in keys if not _DEMO_NAME.fullmatch(k)]
    if odd:
        raise DemoFileError(f"{path}: data/{odd[0]} is not named demo_<integer>; LIBERO names "
                            "demos demo_0, demo_1, ...; rename or remove it")
    return sorted(keys, key=lambda k: int(k[len("demo_"):]))


def _check_read_args(path: Path, max_demos, upright) -> None:
    if max_demos is not None and (isinstance(max_demos, bool)
                                  or not isinstance(max_demos, (int, np.integer))
                                  or max_demos < 1):
        raise DemoFileError(f"{path}: max_demos must be None (all demos) or an integer >= 1; got "
                            f"{max_demos!r}")
    if not isinstance(upright, (bool, np.bool_)):
        raise DemoFileError(f"{path}: upright must be True or False; got {upright!r}")


def _read_demo(path: Path, k: str, d
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """``(actions, agentview, wrist, robot_states)`` of one demo group, checked for one length."""
    where = f"{path}: data/{k}"
    if not isinstance(d, h5py.Group):
        raise DemoFileError(f"{where} is a {type(d).__name__}, not a group; expected "
                            f"data/{k}/actions, ...")
    obs = d.get("obs")
    if not isinstance(d.get("actions"), h5py.Dataset) or not isinstance(obs, h5py.Group) \
            or not isinstance(obs.get("agentview_rgb"), h5py.Dataset):
        raise DemoFileError(f"{where} lacks actions or obs/agentview_rgb; not a LIBERO demo file.")
    if not np.issubdtype(d["actions"].dtype, np.number):
        raise DemoFileError(f"{where}/actions has dtype {d['actions'].dtype}; expected numbers")
    actions = np.asarray(d["actions"], np.float32)
    if actions.ndim != 2:
        raise DemoFileError(f"{where}/actions has shape {actions.shape}; expected [T, action_dim]")
    if not np.isfinite(actions).all():
        raise DemoFileError(f"{where}/actions holds NaN or inf; repair or drop this demo")
    frames = {"agentview": np.asarray(obs["agentview_rgb"])}
    if isinstance(obs.get("eye_in_hand_rgb"), h5py.Dataset):
        frames["wrist"] = np.asarray(obs["eye_in_hand_rgb"])
    for name, f in frames.items():
        dataset = "obs/agentview_rgb" if name == "agentview" else "obs/eye_in_hand_rgb"
        if f.dtype != np.uint8:
            raise DemoFileError(f"{where}/{dataset} has dtype {f.dtype}; LIBERO frames are uint8 "
                                "[T, H, W, 3] (convert with (x * 255).round().astype(np.uint8))")
        if f.ndim != 4 or f.shape[-1] != 3:
            raise DemoFileError(f"{where}/{dataset} has shape {f.shape}; expected [T, H, W, 3]")
        if len(f) != len(actions):
            raise DemoFileError(f"{where}: {dataset} has {len(f)} frames but actions has "
                                f"{len(actions)} steps; every step needs one frame and one action")
    robot = None
    if isinstance(d.get("robot_states"), h5py.Dataset):
        robot = np.asarray(d["robot_states"], np.float32)
        if robot.ndim != 2 or len(robot) != len(actions):
            raise DemoFileError(f"{where}: robot_states has shape {robot.shape} but actions has "
                                f"{len(actions)} steps; expected [T, R]")
    return actions, frames["agentview"], frames.get("wrist"), robot


def _same_across_demos(path: Path, keys: list[str], arrays: list, what: str) -> None:
    shapes = [None if a is None else a.shape[1:] for a in arrays]
    present = [s for s in shapes if s is not None]
    for k, s in zip(keys, shapes):
        if s is not None and s != present[0]:
            raise DemoFileError(f"{path}: data/{k} has {what} of shape "
                                f"[T, {', '.join(map(str, s))}] but data/{keys[0]} has "
                                f"[T, {', '.join(map(str, present[0]))}]; one file holds one "
                                "camera size and one action size")


def _read_demo_groups(path: Path, f: h5py.File, max_demos, acts, av, wr,
                      rs) -> tuple[list[str], dict]:
    """Append each demo's arrays to the lists; return the demo names and the ``data`` attrs."""
    if not isinstance(f.get("data"), h5py.Group):
        what = "no 'data' group" if "data" not in f else "'data' that is not a group"
        raise DemoFileError(f"{path} has {what}; expected LIBERO's layout data/demo_i/...")
    g = f["data"]
    keys = _demo_keys(g, path)[:max_demos]
    if not keys:
        raise DemoFileError(f"{path} has no data/demo_i groups; expected LIBERO's layout.")
    attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in g.attrs.items()}
    for k in keys:
        a, agent, wrist, robot = _read_demo(path, k, g[k])
        acts.append(a)
        av.append(agent)
        wr.append(wrist)
        rs.append(robot)
    return keys, attrs


def read_demos(path: str | Path, max_demos: int | None = None, upright: bool = True) -> Demos:
    """Read a LIBERO-layout HDF5 file (ours or a real LIBERO download) into :class:`Demos`.

    Every demo is checked before anything is concatenated: its frames, wrist frames and robot
    states have one entry per action, frames are uint8 ``[T, H, W, 3]`` of one size across demos,
    and actions are finite, so a bad demo cannot shift the rows of the demos after it.

    Args:
        path: ``*_demo.hdf5`` file.
        max_demos: read only the first demos (in index order); None (all) or an integer >= 1.
        upright: flip frames vertically (robosuite renders upside-down; LIBERO's code flips).

    Raises:
        FileNotFoundError: no such file.
        DemoFileError: (a ``ValueError``) the file is not HDF5 (empty, truncated, another format)
            or not LIBERO's layout: no ``data`` group, no ``data/demo_<i>`` groups, a demo named
            other than ``demo_<integer>``, a demo lacking ``actions`` or ``obs/agentview_rgb``, a
            demo whose arrays differ in length or dtype, a ``problem_info`` attr that is not JSON,
            or a bad ``max_demos``/``upright``. The message names the file and the demo.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise DemoFileError(f"path must be the path of a *_demo.hdf5 file (str or Path); got "
                            f"{type(path).__name__}")
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"No LIBERO demo file at {path}; record demos or download "
                                "LIBERO's HDF5 files.")
    if path.is_dir():
        raise DemoFileError(f"{path} is a folder; pass one *_demo.hdf5 file")
    _check_read_args(path, max_demos, upright)
    acts, av, wr, rs = [], [], [], []
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        size = path.stat().st_size if path.is_file() else 0
        raise DemoFileError(f"{path} is not a readable HDF5 file ({size} bytes; {err}); record "
                            "the demos again or download the file again") from err
    with f:
        try:
            keys, attrs = _read_demo_groups(path, f, max_demos, acts, av, wr, rs)
        except OSError as err:  # a truncated or corrupt dataset behind a valid header
            raise DemoFileError(f"{path}: reading failed ({err}); the file is truncated or "
                                "corrupt, record or download it again") from err
    _same_across_demos(path, keys, acts, "actions")
    _same_across_demos(path, keys, av, "obs/agentview_rgb")
    _same_across_demos(path, keys, wr, "obs/eye_in_hand_rgb")
    _same_across_demos(path, keys, rs, "robot_states")
    ep_idx = [np.full(len(a), i, np.int64) for i, a in enumerate(acts)]
    step = [np.arange(len(a), dtype=np.int64) for a in acts]
    agent = np.concatenate(av)
    wrist = np.concatenate(wr) if all(w is not None for w in wr) else None
    if upright and str(attrs.get("macros_image_convention", "opengl")) == "opengl":
        agent = agent[:, ::-1].copy()
        wrist = wrist[:, ::-1].copy() if wrist is not None else None
    language = ""
    if "problem_info" in attrs:
        try:
            info = json.loads(attrs["problem_info"])
        except (TypeError, ValueError) as err:
            raise DemoFileError(f"{path}: the data attr problem_info is not JSON ({err}); "
                                'expected {"language_instruction": ...}') from None
        if not isinstance(info, dict):
            raise DemoFileError(f"{path}: the data attr problem_info is a JSON "
                                f"{type(info).__name__}; expected an object "
                                '{"language_instruction": ...}')
        language = str(info.get("language_instruction", ""))
    return Demos(np.concatenate(acts), agent, wrist,
                 np.concatenate(rs) if all(r is not None for r in rs) else None,
                 np.concatenate(ep_idx), np.concatenate(step), language, attrs)


_VERSION = 3  # 3: resets pin fixture placement and the gripper command (sim.reset_to)


def demo_file(suite: str, task_id: int, n_demos: int, image_size: int, *, seed: int = 0,
              action_repeat: int = 2, max_steps: int = 300, n_init: int | None = None,
              workers: int = 1) -> Path:
    """Where :func:`load_or_record` caches these demos (the file may not exist yet)."""
    from helpers.cache import entry_path

    key = dict(suite=suite, task_id=task_id, n_demos=n_demos, image_size=image_size, seed=seed,
               action_repeat=action_repeat, max_steps=max_steps, version=_VERSION)
    if n_init is not None:  # only when set, so earlier files keep their names
        key["n_init"] = n_init
    if workers > 1:  # parallel recording interleaves attempts: other demos
        key["workers"] = workers
    return entry_path("libero_demos", key, suffix=".hdf5")


def demo_init_states(path: str | Path) -> np.ndarray:
    """``[n_demos, S]``: the simulator state each demo of a LIBERO-layout file starts from
    (the ``init_state`` attr of ``data/demo_i``, in demo order)."""
    with h5py.File(path, "r") as f:
        keys = sorted((k for k in f["data"] if k.startswith("demo_")), key=lambda k: int(k[5:]))
        return np.stack([np.asarray(f["data"][k].attrs["init_state"]) for k in keys])


def _record_shard(args: tuple) -> tuple[list, int]:
    """One worker of :func:`load_or_record`: ``(suite, task_id, n_demos, image_size, options)``."""
    from helpers.libero import sim as libero_sim

    suite, task_id, n_demos, image_size, options = args
    return libero_sim.record_demos(libero_sim.get_task(suite, task_id), n_demos, image_size,
                                   **options)


def load_or_record(suite: str, task_id: int, n_demos: int, image_size: int, *, seed: int = 0,
                   action_repeat: int = 2, max_steps: int = 300, progress: bool = True,
                   n_init: int | None = None, workers: int = 1) -> Demos:
    """Scripted LIBERO demos of one task, cached as a LIBERO-layout HDF5 file.

    The file lives in ``<cache>/libero_demos/<hash>.hdf5`` (hash of every argument, see
    :func:`demo_file`), written atomically, so a second run reads it instead of simulating. The
    controller's success count is stored in the ``env_args`` attr (``scripted_attempts``,
    ``scripted_successes``). ``n_init`` limits the init states demos start from
    (:func:`helpers.libero.sim.record_demos`). ``workers > 1`` records in that many processes
    (one simulator each, attempts interleaved): about 1/workers of the wall time for the same CPU
    time. ``workers`` is part of the cache key, since interleaving changes which attempts run.
    """
    if workers < 1:
        raise ValueError(f"Expected workers >= 1, but got {workers}.")
    path = demo_file(suite, task_id, n_demos, image_size, seed=seed, action_repeat=action_repeat,
                     max_steps=max_steps, n_init=n_init, workers=workers)
    key = dict(suite=suite, task_id=task_id, n_demos=n_demos, image_size=image_size, seed=seed,
               action_repeat=action_repeat, max_steps=max_steps, version=_VERSION)
    if path.exists():
        try:
            return read_demos(path)
        except (OSError, ValueError):  # unreadable: record again
            pass
    from helpers.libero import sim as libero_sim

    task = libero_sim.get_task(suite, task_id)
    options = dict(seed=seed, max_steps=max_steps, action_repeat=action_repeat,
                   progress=progress, n_init=n_init)
    quotas = [n_demos // workers + (j < n_demos % workers) for j in range(workers)]
    jobs = [(suite, task_id, q, image_size, dict(options, shard=j, n_shards=workers))
            for j, q in enumerate(quotas) if q > 0]
    shards = parallel.map_jobs(_record_shard, jobs, workers)  # in the shared pool if workers > 1
    episodes = [ep for kept, _ in shards for ep in kept]
    attempts = sum(a for _, a in shards)
    if not episodes:
        raise ValueError(f"The scripted controller solved none of {attempts} episodes of "
                         f"{task.name}; pick another task (the drawer and on-the-ramekin tasks "
                         "need a better script).")
    write_demos(path, episodes, language=task.language, task_name=task.name,
                bddl_file=task.bddl_file, bddl_content=task.bddl_content,
                env_args=dict(key, n_init=n_init, workers=workers, scripted_attempts=attempts,
                              scripted_successes=len(episodes)))
    return read_demos(path)
