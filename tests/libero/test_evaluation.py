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


def test_wilson_interval_contains_the_rate_for_every_count():
    # 6 of 6 (the book's rollouts per checkpoint) once gave hi = 0.9999999999999999 < 1.0, and the
    # success figure's error bar came out negative
    for n in range(1, 61):
        for k in range(n + 1):
            lo, hi = ev.wilson_interval(k, n)
            assert 0 <= lo <= k / n <= hi <= 1, (k, n, lo, hi)
        assert ev.wilson_interval(0, n)[0] == 0 and ev.wilson_interval(n, n)[1] == 1


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
    np.testing.assert_allclose(np.stack([first, second]),
                               policy.act_chunk(frame["agentview"][::-1],
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


def test_rollouts_in_workers_and_reused_envs_equal_one_fresh_env(tmp_path, monkeypatch):
    """Two worker processes, one episode per job, run the same episodes as this process (each
    init state's episode is deterministic), in init-state order; so does this process's
    simulator when reused after other episodes, and a batch of checkpoints equals each alone."""
    import torch

    from helpers import parallel
    from helpers.libero import pipeline
    from helpers.libero import policy as bc
    from tests.libero.test_pipeline import _demos

    monkeypatch.setenv("BOOK_CACHE", str(tmp_path))
    pipeline._ENVS.clear()
    data = pipeline.TaskSet("libero_spatial", {0: _demos()})
    torch.manual_seed(0)
    cfg = bc.PolicyConfig(image_size=32, patch_size=8, embed_dim=16, depth=1, num_heads=2,
                          n_tasks=len(data.task_ids), chunk=2)
    policy = bc.BCPolicy(cfg, np.full(7, -1.0), np.ones(7)).eval()
    inits = {k: [0, 1, 2] for k in data.task_ids}
    options = dict(image_size=32, max_steps=6, action_repeat=2, seed=0, progress=False)
    runs = [pipeline.rollout_checkpoint(data, policy, 0, inits, execute=1, workers=w,
                                        base_key=dict(run=run), **options)
            for run, w in (("fresh", 1), ("workers", 2), ("reused", 1))]
    batch = pipeline.rollout_checkpoints(data, [(policy, 0, {0: [2]}, 1), (policy, 0, inits, 1)],
                                         base_key=dict(run="batch"), workers=2, **options)
    parallel.close()
    assert len(pipeline._ENVS) == 1  # this process built one simulator for all its runs
    for run in runs[1:] + batch[1:]:
        for name in ("success", "progress", "steps"):
            np.testing.assert_array_equal(runs[0][0][name], run[0][name])
    np.testing.assert_array_equal(batch[0][0]["progress"], runs[0][0]["progress"][2:])
    assert len(runs[1][0]["steps"]) == 3
    with pytest.raises(ValueError, match="workers >= 1"):
        pipeline.rollout_checkpoint(data, policy, 0, inits, execute=1, workers=0,
                                    base_key=dict(run="none"), **options)


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


def test_rollouts_from_given_states_equal_rollouts_from_those_stored_inits(tmp_path, monkeypatch):
    """``states`` replaces LIBERO's stored init states: indices 0, 1 of stored states 5, 6 run
    the same episodes as stored init states 5, 6."""
    import torch

    from helpers.libero import pipeline
    from tests.libero.test_pipeline import _demos

    monkeypatch.setenv("BOOK_CACHE", str(tmp_path))
    data = pipeline.TaskSet("libero_spatial", {0: _demos()})
    torch.manual_seed(1)
    cfg = bc.PolicyConfig(image_size=32, patch_size=8, embed_dim=16, depth=1, num_heads=2,
                          chunk=2)
    policy = bc.BCPolicy(cfg, np.full(7, -1.0), np.ones(7)).eval()
    stored = ls.get_task("libero_spatial", 0).init_states
    options = dict(execute=1, image_size=32, max_steps=8, action_repeat=2, seed=0,
                   progress=False)

    def run(inits, label, **given):
        return pipeline.rollout_checkpoint(data, policy, 0, {0: inits}, base_key=dict(run=label),
                                           **options, **given)[0]

    direct = run([5, 6], "stored")
    given = run([0, 1], "given", states={0: stored[[5, 6]]}, states_key=dict(stored=[5, 6]))
    for name in ("success", "progress", "steps"):
        np.testing.assert_array_equal(direct[name], given[name])
    assert not np.array_equal(direct["progress"], run([0, 1], "stored 0 1")["progress"])
    with pytest.raises(ValueError, match="states and states_key together"):
        run([0, 1], "no key", states={0: stored[[5, 6]]})


def test_select_checkpoint_takes_best_validation_rate_then_progress():
    def runs(success, progress):
        return dict(success=np.array(success, bool), progress=np.array(progress, float))

    val = {("a", 5): runs([1, 0, 0, 0], [1, .2, .2, .2]),
           ("a", 15): runs([1, 1, 0, 0], [1, 1, 0, 0]),
           ("b", 15): runs([0, 1, 1, 0], [.5, 1, 1, .5]),
           ("b", 30): runs([1, 0, 0, 0], [1, .9, .9, .9])}
    assert ev.select_checkpoint(val) == ("b", 15)  # ties on rate broken by mean progress
    val[("a", 30)] = dict(success=np.ones(4, bool), progress=np.ones(4))
    assert ev.select_checkpoint(val) == ("a", 30)
    with pytest.raises(ValueError, match="at least one candidate"):
        ev.select_checkpoint({})
    with pytest.raises(ValueError, match="no rollouts"):
        ev.select_checkpoint({("a", 1): dict(success=np.zeros(0, bool), progress=np.zeros(0))})


def test_within_family_reading_and_verdict_for_every_outcome():
    import pandas as pd

    def corr(rho, p):
        return pd.DataFrame([dict(x="best", y="success", rho=rho, p=p, lo=rho - 0.2, hi=rho + 0.1),
                             dict(x="best", y="error", rho=-0.1, p=0.5, lo=np.nan, hi=np.nan)])

    assert ev.alignment_tracks_success(corr(0.6, 0.01)) is True
    assert ev.alignment_tracks_success(corr(-0.6, 0.01)) is False
    assert ev.alignment_tracks_success(corr(0.6, 0.2)) is None  # not detected: undecided
    assert ev.alignment_tracks_success(corr(np.nan, np.nan)) is None
    text = ev.rho_sentence(corr(-0.4, 0.2), 1000, within=corr(0.7, 0.004), family="ViT")
    assert "does not detectably track success; against" in text
    assert text.endswith("within the ViT points alone it is +0.70 [+0.50, +0.80] (p = 0.004): "
                         "alignment tracks success")
    text = ev.rho_sentence(corr(0.6, 0.01), 1000, within=corr(np.nan, np.nan), family="ViT")
    assert "tracks success;" in text and text.endswith("alone it is undefined (success does not "
                                                       "vary across these points)")
    text = ev.rho_sentence(corr(np.nan, np.nan), 1000, within=corr(-0.8, 0.001), family="CNN")
    assert text.startswith("the correlation between alignment and success is undefined")
    assert text.endswith("alignment tracks failure")


def test_chapter_verdicts_read_each_outcome():
    import pandas as pd

    def corr(rho, p):
        return pd.DataFrame([dict(x="best", y="success", rho=rho, p=p, lo=rho - 0.1,
                                  hi=rho + 0.1)])

    rows = ev.chapter_verdicts(
        {"13 points": corr(-0.4, 0.2), "9 ViT points": corr(0.7, 0.004)},
        {"MobileNetV2 ImageNet": np.ones(6), "MobileNetV2 random init": np.zeros(6)},
        untrained_plain_p=1 / 101, n_perm=100, n_perm_corr=2000, n_boot=50)
    assert [r.verdict for r in rows] == ["undecided", "replicated", "replicated", "replicated"]
    assert rows[0].number == "rho -0.40 [-0.50, -0.30], p = 0.2 (13 points)"
    assert rows[3].number == "untrained plain p <= 1/101"
    assert rows[0].threshold == "p < 0.025, rho > 0"  # 0.05 split over the two tests
    rows = ev.chapter_verdicts({"a": corr(0.7, 0.03), "b": corr(0.7, 0.004)}, {}, 0.01,
                               n_perm=100, n_perm_corr=2000)
    assert [r.verdict for r in rows[:2]] == ["undecided", "replicated"]
    rows = ev.chapter_verdicts({"all": corr(-0.8, 0.001)},
                               {"MobileNetV2 ImageNet": np.zeros(6),
                                "MobileNetV2 ImageNet frozen": np.array([1, 0, 1, 0, 1, 0.])},
                               untrained_plain_p=0.4, n_perm=100, n_perm_corr=2000, n_boot=200)
    assert [r.claim for r in rows][1] == "Freezing the vision encoder costs success"
    assert [r.verdict for r in rows] == ["not replicated", "not replicated", "not replicated"]
    assert len(ev.chapter_verdicts({}, {}, 0.01, n_perm=10, n_perm_corr=10)) == 1


def test_success_table_and_replay_sentence():
    import pandas as pd

    table = ev.success_table({("ViT", 5): {0: np.array([1, 0], bool), 3: np.ones(4, bool)},
                              ("ViT, selected", 15): {0: np.zeros(3, bool)}})
    assert table[["variant", "epoch", "task", "successes", "rollouts"]].values.tolist() == [
        ["ViT", 5, 0, 1, 2], ["ViT", 5, 3, 4, 4], ["ViT, selected", 15, 0, 0, 3]]
    controls = pd.DataFrame(dict(control=["replay recorded demo", "scripted controller"],
                                 successes=[2, 1], rollouts=[2, 8]))
    assert ev.replay_sentence(controls).endswith("reproduce the recording")
    controls.loc[0, "successes"] = 1
    assert ev.replay_sentence(controls).startswith("1 of 2 replayed demos succeed, so the harness")


def test_reset_after_an_episode_equals_a_fresh_environment():
    """robosuite's reset carries over the gripper command and redraws the fixed fixtures'
    placement from NumPy's global generator; reset_to pins both, so the state and the frames an
    episode starts from do not depend on what the environment ran before."""
    task = ls.get_task("libero_spatial", 0)

    def start_state(env):
        np.random.rand(7)  # whatever ran before drew from the global generator
        ls.reset_to(env, task.init_states[0])
        d, robot = env.sim.data._data, env.robots[0]
        return [np.array(d.qpos), np.array(d.qvel), np.array(d.qacc_warmstart),
                np.array(env.sim.model._model.body_pos),
                np.array(robot.gripper.current_action), np.array(robot.controller.goal_pos),
                *ls.render_cameras(env).values()]

    assert ls.scene_seed(task.init_states[0]) != ls.scene_seed(task.init_states[1])
    fresh, used = (ls.make_env(task, image_size=32) for _ in range(2))
    try:
        ls.reset_to(used, task.init_states[3])
        for _ in range(30):  # close the gripper while moving
            used.step(np.r_[np.random.default_rng(0).uniform(-1, 1, 6), 1.0])
        for a, b in zip(start_state(fresh), start_state(used)):
            np.testing.assert_array_equal(a, b)
    finally:
        fresh.close()
        used.close()
