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
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import h5py
import numpy as np

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
                o.create_dataset("agentview_rgb", data=ep.agentview_rgb, compression="gzip", compression_opts=4)
                o.create_dataset("eye_in_hand_rgb", data=ep.eye_in_hand_rgb, compression="gzip", compression_opts=4)
                o.create_dataset("gripper_states", data=ep.gripper_states)
                o.create_dataset("joint_states", data=ep.joint_states)
                o.create_dataset("ee_states", data=ep.ee_states)
                o.create_dataset("ee_pos", data=np.asarray(ep.ee_states)[:, :3])
                o.create_dataset("ee_ori", data=np.asarray(ep.ee_states)[:, 3:])

    path = Path(path)
    atomic_write(path, _write)
    return path


def _demo_keys(group: h5py.Group) -> list[str]:
    keys = [k for k in group.keys() if k.startswith("demo_")]
    return sorted(keys, key=lambda k: int(k.split("_")[1]))


def read_demos(path: str | Path, max_demos: int | None = None, upright: bool = True) -> Demos:
    """Read a LIBERO-layout HDF5 file (ours or a real LIBERO download) into :class:`Demos`.

    Args:
        path: ``*_demo.hdf5`` file.
        max_demos: read only the first demos (in index order).
        upright: flip frames vertically (robosuite renders upside-down; LIBERO's code flips).

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file lacks ``data/demo_*/actions`` or ``obs/agentview_rgb``.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"No LIBERO demo file at {path}; record demos or download LIBERO's HDF5 files.")
    acts, av, wr, rs, ep_idx, step = [], [], [], [], [], []
    with h5py.File(path, "r") as f:
        if "data" not in f:
            raise ValueError(f"{path} has no 'data' group; expected LIBERO's layout data/demo_i/...")
        g = f["data"]
        keys = _demo_keys(g)[:max_demos]
        if not keys:
            raise ValueError(f"{path} has no data/demo_i groups; expected LIBERO's layout.")
        attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in g.attrs.items()}
        for i, k in enumerate(keys):
            d = g[k]
            if "actions" not in d or "obs" not in d or "agentview_rgb" not in d["obs"]:
                raise ValueError(f"{path}:{k} lacks actions or obs/agentview_rgb; not a LIBERO demo file.")
            a = np.asarray(d["actions"], np.float32)
            acts.append(a)
            av.append(np.asarray(d["obs/agentview_rgb"]))
            wr.append(np.asarray(d["obs/eye_in_hand_rgb"]) if "eye_in_hand_rgb" in d["obs"] else None)
            rs.append(np.asarray(d["robot_states"], np.float32) if "robot_states" in d else None)
            ep_idx.append(np.full(len(a), i, np.int64))
            step.append(np.arange(len(a), dtype=np.int64))
    agent = np.concatenate(av)
    wrist = np.concatenate(wr) if all(w is not None for w in wr) else None
    if upright and str(attrs.get("macros_image_convention", "opengl")) == "opengl":
        agent = agent[:, ::-1].copy()
        wrist = wrist[:, ::-1].copy() if wrist is not None else None
    language = ""
    if "problem_info" in attrs:
        language = json.loads(attrs["problem_info"]).get("language_instruction", "")
    return Demos(np.concatenate(acts), agent, wrist,
                 np.concatenate(rs) if all(r is not None for r in rs) else None,
                 np.concatenate(ep_idx), np.concatenate(step), language, attrs)


def load_or_record(suite: str, task_id: int, n_demos: int, image_size: int, *, seed: int = 0,
                   action_repeat: int = 2, max_steps: int = 300, progress: bool = True) -> Demos:
    """Scripted LIBERO demos of one task, cached as a LIBERO-layout HDF5 file.

    The file lives in ``<cache>/libero_demos/<hash>.hdf5`` (hash of every argument), written
    atomically, so a second run reads it instead of simulating. The controller's success count
    is stored in the ``env_args`` attr (``scripted_attempts``, ``scripted_successes``).
    """
    from helpers.libero import sim as libero_sim
    from helpers.cache import entry_path

    key = dict(suite=suite, task_id=task_id, n_demos=n_demos, image_size=image_size, seed=seed,
               action_repeat=action_repeat, max_steps=max_steps, version=1)
    path = entry_path("libero_demos", key, suffix=".hdf5")
    if path.exists():
        try:
            return read_demos(path)
        except (OSError, ValueError):  # unreadable: record again
            pass
    task = libero_sim.get_task(suite, task_id)
    episodes, attempts = libero_sim.record_demos(task, n_demos, image_size, seed=seed, max_steps=max_steps,
                                                 action_repeat=action_repeat, progress=progress)
    if not episodes:
        raise ValueError(f"The scripted controller solved none of {attempts} episodes of {task.name}; "
                         "pick another task (the drawer and on-the-ramekin tasks need a better script).")
    write_demos(path, episodes, language=task.language, task_name=task.name, bddl_file=task.bddl_file,
                bddl_content=task.bddl_content,
                env_args=dict(key, scripted_attempts=attempts, scripted_successes=len(episodes)))
    return read_demos(path)
