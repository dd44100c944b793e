"""Tests for helpers.libero.sim: offline LIBERO env build and render, controller, recording."""
import os

import numpy as np
import pytest

from helpers.libero import sim as ls


def test_setup_offline_sets_headless_env():
    ls.setup_offline()
    assert os.environ["MUJOCO_GL"] in ("egl", "osmesa")
    assert os.path.isdir(os.environ["LIBERO_CONFIG_PATH"])


def test_get_task_and_errors():
    task = ls.get_task("libero_spatial", 0)
    assert task.language.startswith("pick up the black bowl")
    assert task.init_states.ndim == 2 and len(task.init_states) == 50
    assert os.path.exists(task.bddl_file)
    with pytest.raises(ValueError, match="suite to be one of"):
        ls.get_task("libero_spatial_v2", 0)
    with pytest.raises(ValueError, match=r"task_id in \[0, 9\]"):
        ls.get_task("libero_spatial", 10)


def test_controller_phases_on_synthetic_observations():
    """Moving the eef exactly as commanded, the script reaches the grasp phase and closes."""
    c = ls.ScriptedPickPlace("bowl", "plate", trans_noise=0.0, rot_noise=0.0)
    obs = {"robot0_eef_pos": np.array([0.0, 0.0, 1.2]),
           "robot0_eef_quat": np.array([0, 0, 0, 1.0]),
           "bowl_pos": np.array([0.1, 0.1, 0.9]), "plate_pos": np.array([0.2, 0.2, 0.9])}
    grips = []
    for _ in range(80):
        a = c.act(obs)
        assert a.shape == (7,) and np.all(np.abs(a) <= 1)
        obs["robot0_eef_pos"] = obs["robot0_eef_pos"] + 0.05 * a[:3]
        grips.append(a[6])
    assert c.phase >= 3 and max(grips) == 1.0 and grips[0] == -1.0


def test_env_builds_renders_and_records_offline():
    task = ls.get_task("libero_spatial", 0)
    env = ls.make_env(task, image_size=32)
    try:
        assert env.sim.model.vis.quality.shadowsize == 0  # fast llvmpipe settings applied
        ep = ls.run_episode(env, task, 0, max_steps=8, action_repeat=2)
        assert ep.actions.shape == (4, 7)
        assert (ep.agentview_rgb.shape == (4, 32, 32, 3)
                and ep.eye_in_hand_rgb.shape == (4, 32, 32, 3))
        assert ep.agentview_rgb.std() > 5  # a real scene, not a blank buffer
        assert ep.states.shape[0] == 4 and ep.robot_states.shape == (4, 9)
        assert not ep.success and ep.dones.sum() == 0
        with pytest.raises(ValueError, match="init_index in"):
            ls.run_episode(env, task, 99)
        with pytest.raises(ValueError, match="action_repeat >= 1"):
            ls.run_episode(env, task, 0, action_repeat=0)
    finally:
        env.close()
    with pytest.raises(ValueError, match="image_size >= 16"):
        ls.make_env(task, image_size=8)
    with pytest.raises(ValueError, match="n_demos >= 1"):
        ls.record_demos(task, 0)
    with pytest.raises(ValueError, match=r"n_init in \[1, 50\]"):
        ls.record_demos(task, 2, n_init=0)
    with pytest.raises(ValueError, match="0 <= shard < n_shards"):
        ls.record_demos(task, 2, shard=2, n_shards=2)


def test_sampled_init_states_are_fresh_reproducible_and_runnable():
    task = ls.get_task("libero_spatial", 0)
    states = ls.sample_init_states(task, 3, seed=7000)
    assert states.shape == (3, task.init_states.shape[1])
    assert np.array_equal(states, ls.sample_init_states(task, 3, seed=7000))  # same seed, scenes
    dist = np.linalg.norm(states[:, None] - task.init_states[None], axis=-1)
    assert dist.min() > 1e-3  # none is one of LIBERO's stored (test) init states
    assert np.linalg.norm(states[0] - states[1]) > 1e-3
    arm = slice(1, 8)  # qpos of the 7 arm joints (after the time entry): noisy, like LIBERO's
    assert states[:, arm].std(0).min() > 0 and task.init_states[:, arm].std(0).min() > 0
    still = ls.sample_init_states(task, 2, seed=7000, robot_noise=0.0)
    assert np.ptp(still[:, arm], axis=0).max() == 0
    val = ls.with_init_states(task, states)
    assert len(val.init_states) == 3 and len(task.init_states) == 50
    env = ls.make_env(val, image_size=32)
    try:
        ep = ls.run_episode(env, val, 2, max_steps=4, action_repeat=2, record=False)
        assert ep.decisions == 2
    finally:
        env.close()
    with pytest.raises(ValueError, match="n >= 1"):
        ls.sample_init_states(task, 0, seed=0)
    with pytest.raises(ValueError, match="init_states"):
        ls.with_init_states(task, states[:, :5])
