"""Tests for helpers.libero.demos: LIBERO-layout HDF5 round trip and reading a raw LIBERO-style
file."""
import json
from types import SimpleNamespace

import h5py
import numpy as np
import pytest

from helpers.libero import demos as ld


def _episode(t, seed, size=8):
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 255, (t, size, size, 3), dtype=np.uint8)
    return SimpleNamespace(
        actions=rng.uniform(-1, 1, (t, 7)).astype(np.float32), agentview_rgb=frames,
        eye_in_hand_rgb=frames[:, ::-1].copy(), states=rng.normal(size=(t, 20)),
        robot_states=rng.normal(size=(t, 9)).astype(np.float32), ee_states=rng.normal(size=(t, 6)),
        gripper_states=rng.normal(size=(t, 2)), joint_states=rng.normal(size=(t, 7)),
        rewards=np.r_[np.zeros(t - 1), 1.0], dones=np.r_[np.zeros(t - 1), 1].astype(np.uint8),
        success=True, init_state=rng.normal(size=20))


def test_round_trip_keeps_layout_and_flips_frames(tmp_path):
    eps = [_episode(5, 0), _episode(3, 1)]
    path = ld.write_demos(tmp_path / "task_demo.hdf5", eps, language="pick up the bowl",
                          task_name="t")
    with h5py.File(path) as f:
        g = f["data"]
        assert g.attrs["num_demos"] == 2 and g.attrs["total"] == 8
        assert json.loads(g.attrs["problem_info"])["language_instruction"] == "pick up the bowl"
        for key in ("actions", "states", "robot_states", "rewards", "dones", "obs/agentview_rgb",
                    "obs/eye_in_hand_rgb", "obs/gripper_states", "obs/joint_states",
                    "obs/ee_states"):
            assert key in g["demo_0"], key
        assert g["demo_1"].attrs["num_samples"] == 3
    d = ld.read_demos(path)
    assert len(d) == 8 and d.n_episodes == 2 and d.language == "pick up the bowl"
    np.testing.assert_array_equal(d.episode, [0] * 5 + [1] * 3)
    np.testing.assert_array_equal(d.step, [0, 1, 2, 3, 4, 0, 1, 2])
    np.testing.assert_allclose(d.actions[5:], eps[1].actions, atol=1e-6)
    np.testing.assert_array_equal(d.agentview[0], eps[0].agentview_rgb[0][::-1])  # upright
    raw = ld.read_demos(path, upright=False, max_demos=1)
    assert len(raw) == 5
    np.testing.assert_array_equal(raw.agentview[0], eps[0].agentview_rgb[0])


def test_reads_minimal_real_libero_file(tmp_path):
    """Real LIBERO files order demos as demo_0, demo_1, ..., demo_10 and may lack wrist/robot
    states."""
    path = tmp_path / "real_demo.hdf5"
    with h5py.File(path, "w") as f:
        g = f.create_group("data")
        g.attrs["problem_info"] = json.dumps({"language_instruction": "open the drawer"})
        for i in (0, 1, 10, 2):
            d = g.create_group(f"demo_{i}")
            d.create_dataset("actions", data=np.full((2, 7), i, np.float64))
            d.create_dataset("obs/agentview_rgb", data=np.zeros((2, 4, 4, 3), np.uint8))
    d = ld.read_demos(path)
    assert d.wrist is None and d.robot_states is None and d.language == "open the drawer"
    np.testing.assert_array_equal(d.actions[::2, 0], [0, 1, 2, 10])


def test_errors(tmp_path):
    with pytest.raises(ValueError, match="at least one episode"):
        ld.write_demos(tmp_path / "x.hdf5", [], language="")
    bad = _episode(4, 0)
    bad.states = bad.states[:3]
    with pytest.raises(ValueError, match="states has 3 steps"):
        ld.write_demos(tmp_path / "x.hdf5", [bad], language="")
    assert not (tmp_path / "x.hdf5").exists()
    with pytest.raises(FileNotFoundError, match="No LIBERO demo file"):
        ld.read_demos(tmp_path / "missing.hdf5")
    with h5py.File(tmp_path / "empty.hdf5", "w") as f:
        f.create_group("other")
    with pytest.raises(ValueError, match="no 'data' group"):
        ld.read_demos(tmp_path / "empty.hdf5")
    with h5py.File(tmp_path / "nodemo.hdf5", "w") as f:
        f.create_group("data")
    with pytest.raises(ValueError, match="no data/demo_i groups"):
        ld.read_demos(tmp_path / "nodemo.hdf5")
    with h5py.File(tmp_path / "noobs.hdf5", "w") as f:
        f.create_dataset("data/demo_0/actions", data=np.zeros((2, 7)))
    with pytest.raises(ValueError, match="lacks actions or obs/agentview_rgb"):
        ld.read_demos(tmp_path / "noobs.hdf5")


def test_demo_file_keys_and_init_states(tmp_path, monkeypatch):
    monkeypatch.setenv("BOOK_CACHE", str(tmp_path))
    base = ld.demo_file("libero_spatial", 0, 3, 32, seed=1)
    assert base == ld.demo_file("libero_spatial", 0, 3, 32, seed=1, n_init=None)
    assert base != ld.demo_file("libero_spatial", 0, 3, 32, seed=1, n_init=2)
    eps = [_episode(4, 0), _episode(3, 1)]
    path = ld.write_demos(tmp_path / "t_demo.hdf5", eps, language="x")
    inits = ld.demo_init_states(path)
    assert inits.shape == (2, 20)
    np.testing.assert_allclose(inits[1], eps[1].init_state)


def _raw_file(path, demos, problem_info=None):
    """A LIBERO-style file from ``{name: {dataset: array}}`` without going through write_demos."""
    with h5py.File(path, "w") as f:
        g = f.create_group("data")
        if problem_info is not None:
            g.attrs["problem_info"] = problem_info
        for name, datasets in demos.items():
            for key, value in datasets.items():
                g.create_dataset(f"{name}/{key}", data=value)
    return path


def _demo(t=3, frames=None, **extra):
    return {"actions": np.zeros((t, 7)),
            "obs/agentview_rgb": np.zeros((t if frames is None else frames, 4, 4, 3),
                                                                        np.uint8), **extra}


def test_inconsistent_demos_are_rejected_naming_the_demo(tmp_path):
    """Before, a demo with 4 frames and 3 actions, or float frames, was read silently and shifted
    every later row's frame against its action."""
    cases = [
        ({"demo_0": _demo(), "demo_1": _demo(3, frames=4)},
         r"data/demo_1: obs/agentview_rgb has 4 frames but actions has 3"),
        ({"demo_0": _demo(),
          "demo_1": {**_demo(), "obs/agentview_rgb": np.zeros((3, 4, 4, 3), np.float32)}},
         r"data/demo_1/obs/agentview_rgb has dtype float32; LIBERO frames are uint8"),
        ({"demo_0": _demo(),
          "demo_1": {**_demo(), "obs/eye_in_hand_rgb": np.zeros((2, 4, 4, 3), np.uint8)}},
         r"data/demo_1: obs/eye_in_hand_rgb has 2 frames but actions has 3"),
        ({"demo_0": {**_demo(), "robot_states": np.zeros((5, 9))}},
         r"data/demo_0: robot_states has shape \(5, 9\)"),
        ({"demo_0": _demo(),
          "demo_1": {**_demo(), "obs/agentview_rgb": np.zeros((3, 8, 8, 3), np.uint8)}},
         r"data/demo_1 has obs/agentview_rgb of shape \[T, 8, 8, 3\] but data/demo_0 has "
         r"\[T, 4, 4, 3\]"),
        ({"demo_0": _demo(), "demo_1": {**_demo(), "actions": np.zeros((3, 6))}},
         r"data/demo_1 has actions of shape \[T, 6\]"),
        ({"demo_0": {**_demo(), "actions": np.full((3, 7), np.nan)}},
         r"data/demo_0/actions holds NaN"),
        ({"demo_0": {**_demo(), "actions": np.zeros(3)}}, r"data/demo_0/actions has shape \(3,\)"),
    ]
    for i, (demos, message) in enumerate(cases):
        path = _raw_file(tmp_path / f"case{i}_demo.hdf5", demos)
        with pytest.raises(ld.DemoFileError, match=message) as info:
            ld.read_demos(path)
        assert str(path) in str(info.value)


def test_malformed_files_give_one_error_type_naming_the_file(tmp_path):
    empty = tmp_path / "empty_demo.hdf5"
    empty.write_bytes(b"")
    text = tmp_path / "text_demo.hdf5"
    text.write_text("not hdf5")
    not_group = tmp_path / "data_is_dataset.hdf5"
    with h5py.File(not_group, "w") as f:
        f.create_dataset("data", data=np.zeros(3))
    odd_name = _raw_file(tmp_path / "odd_demo.hdf5", {"demo_0": _demo(), "demo_x": _demo()})
    bad_json = _raw_file(tmp_path / "json_demo.hdf5", {"demo_0": _demo()},
                         problem_info="{not json")
    list_json = _raw_file(tmp_path / "list_demo.hdf5", {"demo_0": _demo()}, problem_info="[1, 2]")
    good = _raw_file(tmp_path / "good_demo.hdf5", {"demo_0": _demo()})
    cases = [
        (empty, {}, r"is not a readable HDF5 file \(0 bytes"),
        (text, {}, "is not a readable HDF5 file"),
        (tmp_path, {}, "is a folder; pass one"),
        (not_group, {}, "has 'data' that is not a group"),
        (odd_name, {}, "data/demo_x is not named demo_<integer>"),
        (bad_json, {}, "problem_info is not JSON"), (list_json, {}, "problem_info is a JSON list"),
        (good, {"max_demos": 0}, "max_demos must be None"),
        (good, {"max_demos": -1}, "max_demos must be None"),
        (good, {"max_demos": 1.5}, "max_demos must be None"),
        (good, {"upright": "yes"}, "upright must be True or False"),
    ]
    for path, kwargs, message in cases:
        with pytest.raises(ld.DemoFileError, match=message) as info:
            ld.read_demos(path, **kwargs)
        assert str(path) in str(info.value)
        assert isinstance(info.value, ValueError)  # callers that catch ValueError keep working
    assert len(ld.read_demos(good, max_demos=5)) == 3
