"""Tests for helpers.libero.pipeline: pooled task sets, tables, features and per-task alignment
(synthetic demos; no simulator)."""
import json

import numpy as np
import pytest
import torch

from helpers.libero import action_alignment as va
from helpers.libero import pipeline
from helpers.libero import policy as bc
from helpers.libero.demos import Demos


def _demos(n_ep=4, t=12, size=16, seed=0, attempts=5):
    rng = np.random.default_rng(seed)
    n = n_ep * t
    frames = rng.integers(0, 255, (n, size, size, 3), dtype=np.uint8)
    actions = rng.uniform(-1, 1, (n, 7)).astype(np.float32)
    actions[: n // 3, :3] = 0.01  # some near-zero translation steps
    args = json.dumps(dict(scripted_attempts=attempts, scripted_successes=n_ep))
    return Demos(actions, frames, frames[:, ::-1].copy(),
                 rng.normal(size=(n, 9)).astype(np.float32),
                 np.repeat(np.arange(n_ep), t), np.tile(np.arange(t), n_ep), f"task {seed}",
                 dict(env_args=args))


def test_task_set_pools_in_task_order():
    a, b = _demos(seed=0), _demos(n_ep=3, seed=1)
    data = pipeline.TaskSet("libero_spatial", {3: a, 1: b})
    assert data.task_ids == [3, 1]
    assert data.frames.shape == (len(a) + len(b), 16, 16, 3)
    np.testing.assert_array_equal(data.task_index, [0] * len(a) + [1] * len(b))
    assert data.per_task[1] == slice(len(a), len(a) + len(b))
    np.testing.assert_array_equal(data.frames[data.per_task[1]], b.agentview)
    q01, q99 = va.action_quantiles(np.concatenate([a.actions, b.actions]))
    np.testing.assert_allclose(data.q01, q01)
    np.testing.assert_allclose(data.norm[3], va.normalize_actions(a.actions, q01, q99))
    assert data.moving[3][: len(a) // 3].sum() == 0 and data.moving[3].any()
    with pytest.raises(ValueError, match="at least one task"):
        pipeline.TaskSet("libero_spatial", {})


def test_demo_and_action_tables():
    data = pipeline.TaskSet("libero_spatial",
                            {0: _demos(attempts=5), 2: _demos(seed=2, attempts=4)})
    t = pipeline.demo_table(data)
    assert list(t.task) == [0, 2] and list(t.controller_success) == [0.8, 1.0]
    assert list(t.mean_steps) == [12.0, 12.0]
    s = pipeline.action_summary(data)
    assert list(s.index) == list(va.ACTION_NAMES) and (s["std (normalised)"] > 0).all()


def test_task_alignment_equals_direct_alignment_null_per_task():
    data = pipeline.TaskSet("libero_spatial", {0: _demos(seed=0), 1: _demos(seed=1)})
    feats = torch.randn(len(data.actions), 2, 5, generator=torch.Generator().manual_seed(0))
    res = pipeline.task_alignment(data, feats, exclude="episode", mode="episodes", topk=3,
                                  n_perm=4, seed=1)
    assert len(res) == 2
    d = data.demos[1]
    direct = va.alignment_null(feats[data.per_task[1]], data.norm[1][:, :6], d.episode, d.step,
                               mode="episodes", exclude="episode", topk=3, n_perm=4, seed=1)
    torch.testing.assert_close(res[1].observed, direct.observed)
    torch.testing.assert_close(res[1].null, direct.null)
    # windows, the moving filter and fewer episodes each shrink the rows scored
    win = pipeline.task_alignment(data, feats, horizon=3, topk=3, n_perm=2, filt=True, episodes=3)
    assert all(r.observed.shape == (2,) for r in win)


def test_policy_features_have_every_block():
    cfg = bc.PolicyConfig(image_size=16, patch_size=8, embed_dim=16, depth=2, num_heads=2)
    policy = bc.BCPolicy(cfg, np.zeros(7), np.ones(7))
    f = pipeline.policy_features(policy, _demos().agentview[:5])
    assert f["cls"].shape == (5, 2, 16) and f["mean"].shape == (5, 2, 16)
    assert not torch.allclose(f["cls"], f["mean"])


def test_layer_lists_score_like_stacked_layers():
    data = pipeline.TaskSet("libero_spatial", {0: _demos(seed=0)})
    feats = torch.randn(len(data.actions), 3, 4, generator=torch.Generator().manual_seed(1))
    stacked = pipeline.task_alignment(data, feats, exclude="episode", mode="episodes", topk=3,
                                      n_perm=5, horizon=2, filt=True)[0]
    listed = pipeline.task_alignment(data, [feats[:, i] for i in range(3)], exclude="episode",
                                     mode="episodes", topk=3, n_perm=5, horizon=2, filt=True)[0]
    torch.testing.assert_close(stacked.observed, listed.observed)
    torch.testing.assert_close(stacked.null, listed.null)


def test_variant_config_and_unknown_keys():
    cfg = pipeline.variant_config(dict(name="v", encoder="vit", chunk=4, epochs=3,
                                       checkpoints=[3]),
                                  image_size=32, n_tasks=2, seed=5)
    assert (cfg.chunk, cfg.epochs, cfg.image_size, cfg.n_tasks, cfg.seed) == (4, 3, 32, 2, 5)
    assert bc.config_dict(cfg)["chunk"] == 4 and "wrist" not in bc.config_dict(cfg)
    with pytest.raises(ValueError, match="unknown keys"):
        pipeline.variant_config(dict(name="v", chunks=4), image_size=32, n_tasks=1, seed=0)


def test_offline_error_and_encoder_features():
    data = pipeline.TaskSet("libero_spatial", {0: _demos(seed=0)})
    cfg = bc.PolicyConfig(image_size=16, patch_size=8, embed_dim=16, depth=2, num_heads=2, chunk=2)
    policy = bc.BCPolicy(cfg, data.q01, data.q99)
    err = pipeline.offline_error(policy, data)
    assert 0 < err < 2
    layers = pipeline.encoder_features(policy, data.frames[:6])
    assert len(layers) == 2 and layers[0].shape == (6, 16)


def test_layer_table_and_curve_sentence():
    import pandas as pd

    a = va.AlignmentResult(torch.tensor([0.2, 0.4]), torch.zeros(20, 2))
    b = va.AlignmentResult(torch.tensor([0.3, 0.1]), torch.full((20, 2), 0.1))
    table = pipeline.layer_table({("ViT", 0): a}, {("ViT", 0): b}, n_perm=20)
    assert table.score.tolist() == ["episode-masked", "plain"]
    assert table.best_block.tolist() == [1, 0]
    expected = [float(a.corrected.max()), float(b.corrected.max())]
    np.testing.assert_allclose(table.corrected, expected)
    curve = pd.DataFrame(dict(epoch=[5, 5, 0], episodes=[6, 3, 3], corrected=[0.05, 0.02, 0.0],
                              null=[0.04, 0.08, 0.08]))
    text = pipeline.curve_sentence(curve, 5)
    assert text.startswith("from 3 to 6 demos") and "+0.030" in text and "0.080 to 0.040" in text
    assert "no curve" in pipeline.curve_sentence(curve, 0)


def test_train_variants_in_workers_equal_training_in_process(tmp_path, monkeypatch):
    """Variants trained in two worker processes have the same weights and losses as variants
    trained one after another in this process."""
    data = pipeline.TaskSet("libero_spatial", {0: _demos(seed=0)})
    cfgs = [bc.PolicyConfig(image_size=16, patch_size=8, embed_dim=16, depth=1, num_heads=2,
                            epochs=2, chunk=2, seed=s) for s in (0, 1)]
    jobs = [(cfg, [0, 2], dict(seed=cfg.seed)) for cfg in cfgs]
    runs = []
    for w in (1, 2):
        monkeypatch.setenv("BOOK_CACHE", str(tmp_path / f"w{w}"))
        runs.append(pipeline.train_variants(data, jobs, workers=w))
    for serial, parallel in zip(*runs):
        assert serial["history"] == parallel["history"]
        for epoch in (0, 2):
            for name, value in serial["checkpoints"][epoch].items():
                torch.testing.assert_close(value, parallel["checkpoints"][epoch][name])
    assert runs[0][0]["history"] != runs[0][1]["history"]  # the two seeds differ
    with pytest.raises(ValueError, match="workers >= 1"):
        pipeline.train_variants(data, jobs, workers=0)


def test_variant_table_reads_the_configs_and_loss_histories():
    specs = [{"name": "ViT", "encoder": "vit", "epochs": 3},
             {"name": "MN frozen", "encoder": "mobilenet_v2", "pretrained": True,
              "freeze_encoder": True, "epochs": 2}]
    configs = {s["name"]: pipeline.variant_config(s, image_size=32, n_tasks=1, seed=4)
               for s in specs}
    table = pipeline.variant_table(specs, configs, {"ViT": [3.0, 2.0, 1.0], "MN frozen": [5, 4]})
    assert list(table.variant) == ["ViT", "MN frozen"] and list(table.frozen) == [False, True]
    assert list(table.last_loss) == [1.0, 4] and list(table.seed) == [4, 4]


def test_task_alignments_in_workers_equal_task_alignment_here():
    from helpers import parallel

    data = pipeline.TaskSet("libero_spatial", {0: _demos(seed=0), 1: _demos(seed=1)})
    assert len(data.without_frames().frames) == 0
    np.testing.assert_array_equal(data.without_frames().q99, data.q99)
    feats = torch.randn(len(data.actions), 2, 5, generator=torch.Generator().manual_seed(0))
    options = [dict(topk=3, n_perm=4, seed=1),
               dict(exclude="episode", mode="episodes", topk=3, n_perm=4, seed=2, horizon=2)]
    runs = pipeline.task_alignments(data, [(feats, o) for o in options], workers=2)
    parallel.close()
    for o, run in zip(options, runs):
        for here, there in zip(pipeline.task_alignment(data, feats, **o), run):
            torch.testing.assert_close(here.observed, there.observed, rtol=0, atol=0)
            torch.testing.assert_close(here.null, there.null, rtol=0, atol=0)


def test_checkpoint_features_in_workers_equal_encoder_features_and_are_cached(tmp_path,
                                                                                monkeypatch):
    from helpers import cache, parallel

    monkeypatch.setenv("BOOK_CACHE", str(tmp_path))
    data = pipeline.TaskSet("libero_spatial", {0: _demos(size=32)})
    torch.manual_seed(0)
    cfg = bc.PolicyConfig(image_size=32, patch_size=8, embed_dim=16, depth=2, num_heads=2)
    policies = {("ViT", e): bc.BCPolicy(cfg, np.full(7, -1.0), np.ones(7)).eval() for e in (0, 1)}
    feats = pipeline.checkpoint_features(data, policies, dict(run=1), workers=2)
    parallel.close()
    for p, policy in policies.items():
        here = pipeline.encoder_features(policy, data.frames)
        assert len(feats[p]) == len(here) == cfg.depth  # one per block
        for a, b in zip(here, feats[p]):
            torch.testing.assert_close(a, b, rtol=0, atol=0)
    key = dict(bc.config_dict(cfg), epoch=1, n=len(data.actions), run=1)
    assert cache.load_entry("vla_bc_variant_features", key) is not None


def test_init_splits_follow_the_parameters_and_name_what_is_wrong():
    s = pipeline.init_splits([0, 3], n_init=10, n_rollouts=2, n_rollouts_best=5,
                             n_train_rollouts=12, n_scripted=4, n_val=3)
    assert s.held_out == {0: [10, 11], 3: [10, 11]} and s.extra[3] == [12, 13, 14]
    assert s.train[0] == list(range(10))  # capped at the demo starts
    assert s.scripted[0] == [10, 11, 12, 13] and s.val[3] == [0, 1, 2]
    with pytest.raises(ValueError, match="must be <= 50.*n_scripted=41"):
        pipeline.init_splits([0], n_init=10, n_rollouts=2, n_rollouts_best=5,
                             n_train_rollouts=1, n_scripted=41, n_val=1)
    with pytest.raises(ValueError, match="n_rollouts_best >= n_rollouts"):
        pipeline.init_splits([0], n_init=10, n_rollouts=6, n_rollouts_best=5,
                             n_train_rollouts=1, n_scripted=1, n_val=1)


_SPECS = [{"name": "ViT", "encoder": "vit", "chunk": 4, "epochs": 2, "checkpoints": [0, 2]},
          {"name": "MN", "encoder": "mobilenet_v2", "chunk": 8, "epochs": 1, "checkpoints": [1],
           "execute": 3},
          {"name": "ViT seed 1", "chunk": 2, "epochs": 2, "seed": 1, "checkpoints": [0, 1, 2]}]


def _variants(policies=None):
    configs = {s["name"]: pipeline.variant_config(s, image_size=16, n_tasks=2, seed=0)
               for s in _SPECS}
    points = [(s["name"], e) for s in _SPECS for e in s["checkpoints"]]
    return pipeline.TrainedVariants(_SPECS, configs, {n: [2.0, 1.0] for n in configs},
                                    policies or {p: f"policy {p}" for p in points})


def test_trained_variants_read_points_and_families_from_the_specs():
    v = _variants()
    assert (v.main, v.family) == ("ViT", "ViT")
    assert v.encoder == {"ViT": "vit", "MN": "mobilenet_v2", "ViT seed 1": "vit"}
    assert [v.in_family(n) for n in v.encoder] == [True, False, True]
    assert v.points == [("ViT", 2), ("MN", 1), ("ViT seed 1", 1), ("ViT seed 1", 2)]
    assert v.last == {"ViT": ("ViT", 2), "MN": ("MN", 1), "ViT seed 1": ("ViT seed 1", 2)}
    assert v.untrained == {"ViT": ("ViT", 0), "ViT seed 1": ("ViT seed 1", 0)}
    assert v.execute == {"ViT": 2, "MN": 3, "ViT seed 1": 1}  # half the chunk unless given
    assert list(v.table().chunk) == [4, 8, 2]


def test_train_variant_specs_equals_train_variants_and_rejects_shared_names(tmp_path,
                                                                            monkeypatch):
    monkeypatch.setenv("BOOK_CACHE", str(tmp_path))
    data = pipeline.TaskSet("libero_spatial", {0: _demos(seed=0)})
    tiny = dict(encoder="vit", patch_size=8, embed_dim=16, depth=1, num_heads=2, chunk=2,
                epochs=2)
    specs = [dict(tiny, name="a", checkpoints=[0, 2]), dict(tiny, name="b", seed=1,
                                                            checkpoints=[2])]
    v = pipeline.train_variant_specs(data, specs, image_size=16, seed=0, base_key=dict(run=1))
    assert list(v.policies) == [("a", 0), ("a", 2), ("b", 2)]
    cfg = pipeline.variant_config(specs[1], image_size=16, n_tasks=1, seed=0)
    direct = pipeline.train_variants(
        data, [(cfg, [2], dict(bc.config_dict(cfg), checkpoints=[2], run=1))])[0]
    assert v.histories["b"] == direct["history"] and v.configs["b"] == cfg
    for name, value in v.policies["b", 2].state_dict().items():
        torch.testing.assert_close(value, direct["checkpoints"][2][name])
    with pytest.raises(ValueError, match="distinct names"):
        pipeline.train_variant_specs(data, specs[:1] * 2, image_size=16, seed=0, base_key={})


def _fake_rollouts(monkeypatch, calls):
    """Replace rollout_checkpoints by one that records its call and returns, per item, success
    = (epoch + init) odd and progress = init / 10 for every task."""
    def fake(data, items, **kwargs):
        calls.append((items, kwargs))
        return [{k: dict(success=(np.array(inits[k]) + epoch) % 2 == 1,
                         progress=np.array(inits[k]) / 10.0) for k in data.task_ids}
                for _, epoch, inits, _ in items]

    monkeypatch.setattr(pipeline, "rollout_checkpoints", fake)


def test_validation_rollouts_sample_states_per_task_and_pool_over_tasks(monkeypatch):
    from helpers.libero import sim

    calls, sampled = [], []
    _fake_rollouts(monkeypatch, calls)
    monkeypatch.setattr(sim, "get_task", lambda suite, k: (suite, k))
    monkeypatch.setattr(sim, "sample_init_states",
                        lambda task, n, seed: sampled.append((task, n, seed)) or np.zeros((n, 2)))
    data = pipeline.TaskSet("libero_spatial", {0: _demos(seed=0), 2: _demos(seed=1)})
    pooled = pipeline.validation_rollouts(data, _variants(), [("ViT", 2), ("ViT seed 1", 1)],
                                          n_val=3, val_seed=70, base_key={}, seed=0)
    assert sampled == [(("libero_spatial", 0), 3, 70), (("libero_spatial", 2), 3, 270)]
    items, kwargs = calls[0]
    assert [(i[0], i[1], i[3]) for i in items] == [("policy ('ViT', 2)", 2, 2),
                                                  ("policy ('ViT seed 1', 1)", 1, 1)]
    assert items[0][2] == {0: [0, 1, 2], 2: [0, 1, 2]}
    assert kwargs["states_key"] == dict(val_seed=70, n_val=3, robot_noise=sim.ROBOT_INIT_NOISE)
    assert set(kwargs["states"]) == {0, 2} and kwargs["seed"] == 0
    np.testing.assert_array_equal(pooled["ViT", 2]["success"], [False, True, False] * 2)
    np.testing.assert_array_equal(pooled["ViT seed 1", 1]["success"], [True, False, True] * 2)
    np.testing.assert_allclose(pooled["ViT", 2]["progress"], [0, 0.1, 0.2] * 2)


def test_held_out_rollouts_add_the_selected_checkpoints_extra_and_training_inits(monkeypatch):
    calls = []
    _fake_rollouts(monkeypatch, calls)
    data = pipeline.TaskSet("libero_spatial", {0: _demos(seed=0), 2: _demos(seed=1)})
    inits = pipeline.init_splits([0, 2], n_init=4, n_rollouts=2, n_rollouts_best=3,
                                 n_train_rollouts=2, n_scripted=1, n_val=1)
    test = pipeline.held_out_rollouts(data, _variants(), ("ViT seed 1", 1), inits, seed=0)
    items = calls[0][0]
    assert len(items) == 4 + 2 and items[-2][2] == inits.extra and items[-1][2] == inits.train
    assert set(test.success) == set(_variants().points)
    np.testing.assert_array_equal(test.success["MN", 1][2], [True, False])  # inits 4, 5 + 1
    np.testing.assert_array_equal(test.pooled(("MN", 1)), [True, False, True, False])
    rows = test.table[test.table.variant == test.selected_label]
    assert test.selected_label == "ViT seed 1, selected (all test inits)"
    assert list(rows.rollouts) == [3, 3] and list(rows.successes) == [2, 2]  # 4, 5, 6 + 1
    train = test.table[test.table.variant == "ViT seed 1, selected (training inits)"]
    assert list(train.successes) == [1, 1]  # inits 0, 1 + 1


def test_point_alignments_equal_task_alignment_per_option():
    data = pipeline.TaskSet("libero_spatial", {0: _demos(seed=0), 1: _demos(seed=1)})
    gen = torch.Generator().manual_seed(0)
    feats = {("v", e): torch.randn(len(data.actions), 2, 5, generator=gen) for e in (0, 1)}
    options = [dict(topk=3, n_perm=3, seed=1), dict(exclude="episode", mode="episodes", topk=3,
                                                    n_perm=3, seed=1)]
    runs = pipeline.point_alignments(data, feats, options)
    assert len(runs) == 2 and list(runs[1]) == [("v", 0), ("v", 1)]
    for o, run in zip(options, runs):
        for p, f in feats.items():
            for here, there in zip(pipeline.task_alignment(data, f, **o), run[p]):
                torch.testing.assert_close(here.observed, there.observed, rtol=0, atol=0)
