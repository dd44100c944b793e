"""Tests for helpers.libero.evaluation: intervals, harness policies, rollout statistics
(the harness itself runs in the simulator test below)."""
import numpy as np
import pytest

from helpers.libero import evaluation as ev
from helpers.libero import policy as bc
from helpers.libero import sim as ls


def test_wilson_interval_matches_the_formula_and_edges():
    lo, hi = ev.wilson_interval(0, 10)
    assert lo == 0 and 0.27 < hi < 0.28
    lo, hi = ev.wilson_interval(10, 10)
    assert 0.72 < lo < 0.73 and hi == 1
    lo, hi = ev.wilson_interval(30, 100)
    assert lo < 0.3 < hi and abs((lo + hi) / 2 - 0.3) < 0.01
    with pytest.raises(ValueError, match="successes <= n"):
        ev.wilson_interval(3, 2)
    row = ev.success_row(np.array([1, 0, 0, 1], bool))
    assert row["successes"] == 2 and row["rollouts"] == 4 and row["success"] == 0.5


def test_replay_and_chunked_policies():
    acts = np.arange(14, dtype=np.float32).reshape(2, 7)
    rep = ev.ReplayPolicy(acts)
    assert not rep.needs_frames()
    np.testing.assert_array_equal(rep({}, None), acts[0])
    rep({}, None)
    np.testing.assert_array_equal(rep({}, None), acts[1])  # held after the end
    with pytest.raises(ValueError, match=r"\[T >= 1, 7\]"):
        ev.ReplayPolicy(np.zeros((0, 7)))
    cfg = bc.PolicyConfig(image_size=16, patch_size=8, embed_dim=16, depth=1, num_heads=2, chunk=4)
    policy = bc.BCPolicy(cfg, -np.ones(7), np.ones(7))
    chunked = ev.ChunkedPolicy(policy, 0, execute=2)
    frame = {"agentview": np.zeros((16, 16, 3), np.uint8)}
    state = np.zeros(9, np.float32)
    assert chunked.needs_frames()
    first = chunked(frame, state)
    assert not chunked.needs_frames()  # the second action of the chunk needs no new frame
    second = chunked(frame, state)
    assert chunked.needs_frames()
    np.testing.assert_allclose(np.stack([first, second]), policy.act_chunk(frame["agentview"][::-1],
                                                                           state, 0)[:2])
    with pytest.raises(ValueError, match="execute <= chunk"):
        ev.ChunkedPolicy(policy, 0, execute=5)


def test_spearman_over_rollouts_resamples_rollouts():
    x = [0.1, 0.2, 0.3, 0.4]
    succ = [np.zeros(6, bool), np.r_[np.ones(2), np.zeros(4)].astype(bool),
            np.r_[np.ones(4), np.zeros(2)].astype(bool), np.ones(6, bool)]
    draws = ev.spearman_over_rollouts(x, succ, n_boot=200, seed=0)
    assert draws.shape == (200,) and np.nanmean(draws) > 0.7 and np.nanmax(draws) <= 1
    constant = ev.spearman_over_rollouts(x, [np.zeros(3, bool)] * 4, n_boot=10)
    assert np.isnan(constant).all()
    with pytest.raises(ValueError, match=">= 3 points"):
        ev.spearman_over_rollouts(x[:2], succ[:2])


def test_harness_replays_a_scripted_episode_and_runs_the_controller():
    """Positive control: a recorded scripted episode replayed open-loop reproduces its outcome."""
    task = ls.get_task("libero_spatial", 0)
    env = ls.make_env(task, image_size=32)
    try:
        ep = ls.run_episode(env, task, 0, seed=3, max_steps=40, action_repeat=2)
        out = ev.run_rollouts(task, lambda i: ev.ReplayPolicy(ep.actions), [0], image_size=32,
                              max_steps=40, env=env, progress=False)
        assert out["progress"][0] == pytest.approx(ep.progress, abs=1e-4)
        assert out["steps"][0] == len(ep.actions)
        obj, target = env.obj_of_interest[0], env.obj_of_interest[-1]
        scripted = ev.run_rollouts(task, lambda i: ev.ScriptedPolicy(obj, target, seed=3), [0],
                                   image_size=32, max_steps=40, env=env, progress=False)
        assert scripted["progress"][0] == pytest.approx(ep.progress, abs=1e-4)
    finally:
        env.close()


def test_correlation_table_and_rate_difference():
    import pandas as pd

    pts = pd.DataFrame(dict(best=[0.1, 0.2, 0.3, 0.4], fixed=[0.4, 0.3, 0.2, 0.1],
                            error=[0.9, 0.8, 0.7, 0.6], success=[0.0, 0.33, 0.67, 1.0]))
    succ = [np.zeros(3, bool), np.r_[1, 0, 0].astype(bool), np.r_[1, 1, 0].astype(bool),
            np.ones(3, bool)]
    t = ev.correlation_table(pts, succ, n_perm=200, n_boot=100)
    row = t[(t.x == "best") & (t.y == "success")].iloc[0]
    assert row.rho == pytest.approx(1.0) and row.lo <= row.rho <= row.hi
    assert t[(t.x == "fixed") & (t.y == "success")].iloc[0].rho == pytest.approx(-1.0)
    d, lo, hi = ev.rate_difference(np.ones(10), np.zeros(10), n_boot=50)
    assert d == 1.0 and lo == hi == 1.0


def test_rollouts_split_over_workers_equal_one_worker(tmp_path, monkeypatch):
    """Two worker processes run the same episodes as one process (each init state's episode is
    deterministic), concatenated in init-state order."""
    import torch

    from helpers.libero import pipeline
    from helpers.libero import policy as bc
    from tests.libero.test_pipeline import _demos

    monkeypatch.setenv("BOOK_CACHE", str(tmp_path))
    data = pipeline.TaskSet("libero_spatial", {0: _demos()})
    torch.manual_seed(0)
    cfg = bc.PolicyConfig(image_size=32, patch_size=8, embed_dim=16, depth=1, num_heads=2,
                          n_tasks=len(data.task_ids), chunk=2)
    policy = bc.BCPolicy(cfg, np.full(7, -1.0), np.ones(7)).eval()
    inits = {k: [0, 1, 2] for k in data.task_ids}
    runs = [pipeline.rollout_policy(data, policy, inits, execute=1, image_size=32, max_steps=6,
                                    action_repeat=2, seed=0, key=dict(w=w), progress=False,
                                    workers=w) for w in (1, 2)]
    for k in data.task_ids:
        for name in ("success", "progress", "steps"):
            np.testing.assert_array_equal(runs[0][k][name], runs[1][k][name])
        assert len(runs[1][k]["steps"]) == 3
    with pytest.raises(ValueError, match="workers >= 1"):
        pipeline.rollout_policy(data, policy, inits, execute=1, image_size=32, max_steps=6,
                                action_repeat=2, seed=0, key=dict(w=0), workers=0)


def test_rho_sentence_reads_every_outcome():
    import pandas as pd

    def corr(rho, p):
        return pd.DataFrame([dict(x="best", y="success", rho=rho, p=p, lo=rho - 0.2, hi=rho + 0.1),
                             dict(x="best", y="error", rho=-0.1, p=0.5, lo=np.nan, hi=np.nan)])

    assert ": alignment tracks success;" in ev.rho_sentence(corr(0.6, 0.01), 1000)
    assert ": alignment tracks failure;" in ev.rho_sentence(corr(-0.6, 0.01), 1000)
    assert "does not detectably track" in ev.rho_sentence(corr(0.2, 0.3), 1000)
    assert "undefined" in ev.rho_sentence(corr(np.nan, np.nan), 1000)
    assert "p <= 1/1001" in ev.rho_sentence(corr(0.9, 1 / 1001), 1000)
