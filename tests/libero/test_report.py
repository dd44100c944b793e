"""Tests for helpers.libero.report: the chapter's glued sentences and tables, for each outcome."""
import numpy as np
import pandas as pd
import pytest
import torch

from helpers.libero import action_alignment as va
from helpers.libero import report


def _result(best: float, null: float = 0.1, layers: int = 3, n_perm: int = 9):
    observed = torch.full((layers,), null)
    observed[1] = best
    return va.AlignmentResult(observed, torch.full((n_perm, layers), null))


def test_training_gain_bootstraps_over_seeds_and_says_when_it_cannot():
    masked = {("a", 0): _result(0.2), ("a", 30): _result(0.4), ("b", 0): _result(0.2),
              ("b", 30): _result(0.3)}
    gains, text = report.training_gain(masked, [(("a", 0), ("a", 30)), (("b", 0), ("b", 30))],
                                       n_boot=200)
    np.testing.assert_allclose(gains, [0.2 / 0.9, 0.1 / 0.9], rtol=1e-5)
    assert text.startswith("+0.167 [")  # mean with an interval over the two seeds
    assert report.training_gain(masked, [(("a", 0), ("a", 30))])[1] == (
        "+0.222 (one seed, no interval)")
    assert report.training_gain(masked, [])[1] == "an unmeasured amount"
    text = report.masked_sentence("ViT", masked[("a", 30)], gains[:1], "+0.222", n_perm=9)
    assert "p <= 1/10 against the layer-max episode null" in text
    assert "(bootstrap over 1 seed)" in text


def test_plain_sentence_reads_a_score_below_its_null():
    r = va.AlignmentResult(torch.tensor([0.05, 0.08]), torch.full((99, 2), 0.1))
    assert report.plain_sentence(r, 99) == (
        "best block 0.080 against a row-shuffle null of 0.100, p = 1")


def test_best_task_sentence_picks_the_best_task_and_names_a_missing_variant():
    table = pd.DataFrame([dict(variant="v", task=0, successes=2, rollouts=10, success=0.2,
                               lo=0.06, hi=0.51),
                          dict(variant="v", task=1, successes=6, rollouts=10, success=0.6,
                               lo=0.31, hi=0.83)])
    top, text = report.best_task_sentence(table, "v")
    assert top.task == 1 and text == "0.60 [0.31, 0.83] (task 1, 6 of 10 test rollouts)"
    with pytest.raises(ValueError, match="'w' is not in the success table"):
        report.best_task_sentence(table, "w")


def test_budget_sentence_plurals():
    assert report.budget_sentence(2, [1], 1, 1) == (
        "2 ViT seeds, MobileNetV2 variants trained for 1 epoch, 1 test rollout per task and "
        "checkpoint, 1 validation rollout per task and candidate")
    assert "trained for 2, 6 epochs" in report.budget_sentence(1, [2, 6], 6, 5)


def test_filter_window_sweep_rows_equal_the_direct_scores():
    from helpers.libero import pipeline
    from tests.libero.test_pipeline import _demos

    data = pipeline.TaskSet("libero_spatial", {0: _demos(seed=0), 1: _demos(seed=1)})
    feats = {("v", 0): torch.randn(len(data.actions), 2, 5,
                                   generator=torch.Generator().manual_seed(0))}
    masked = dict(exclude="episode", mode="episodes", topk=3, seed=1)
    table, curve = report.filter_window_sweep(data, feats, [("v", 0)], window=3,
                                              n_sweep=[1, 3, 9], n_perm=4, **masked)
    assert len(table) == 4 and list(curve.episodes) == [3]  # 1 and 9 lie outside 2..4 demos
    direct = va.mean_result(pipeline.task_alignment(data, feats[("v", 0)], horizon=3, filt=True,
                                                    n_perm=4, **masked))
    row = table[(table.window == 3) & table["filter"]].iloc[0]
    assert row.corrected == pytest.approx(float(direct.corrected.max()))


def test_success_points_read_each_task_and_the_offline_error():
    from helpers.libero import pipeline
    from helpers.libero import policy as bc
    from tests.libero.test_pipeline import _demos

    data = pipeline.TaskSet("libero_spatial", {0: _demos(seed=0), 4: _demos(seed=1)})
    spec = dict(name="ViT", patch_size=8, embed_dim=16, depth=1, num_heads=2, chunk=2,
                checkpoints=[0, 3])
    cfg = pipeline.variant_config(spec, image_size=16, n_tasks=2, seed=0)
    torch.manual_seed(0)
    policies = {("ViT", e): bc.BCPolicy(cfg, data.q01, data.q99) for e in (0, 3)}
    variants = pipeline.TrainedVariants([spec], {"ViT": cfg}, {"ViT": [1.0]}, policies)
    masked_tasks = {("ViT", 3): [_result(0.5), _result(0.3, layers=4)]}
    success = {("ViT", 3): {0: np.array([True, False]), 4: np.array([True, True, True, False])}}
    pts = report.success_points(data, variants, masked_tasks, success)
    assert list(pts.task) == [0, 4] and list(pts.encoder) == ["vit", "vit"]
    np.testing.assert_allclose(pts.best, [(0.5 - 0.1) / 0.9, (0.3 - 0.1) / 0.9], rtol=1e-5)
    np.testing.assert_allclose(pts.fixed, [0.0, 0.0], atol=1e-6)  # the last block sits at null
    assert list(pts.success) == [0.5, 0.75]
    assert pts.error[1] == pytest.approx(
        pipeline.offline_error(policies["ViT", 3], data, data.per_task[4]))


def test_correlation_tables_split_by_family_and_rho_summary_reads_both():
    from helpers.libero import evaluation as ev

    rng = np.random.default_rng(0)
    pts = pd.DataFrame(dict(variant=[f"v{i // 2}" for i in range(8)], epoch=[1] * 8,
                            task=[0, 1] * 4, encoder=["vit"] * 6 + ["mobilenet_v2"] * 2,
                            best=rng.normal(size=8), fixed=rng.normal(size=8),
                            success=rng.uniform(size=8), error=rng.normal(size=8)))
    success = {(n, e): {k: rng.uniform(size=5) < 0.5 for k in (0, 1)}
               for n, e in zip(pts.variant, pts.epoch)}
    tables = report.correlation_tables(pts, success, "vit", "ViT", n_perm=50, n_boot=20, seed=3)
    assert list(tables) == ["8 points", "6 ViT points"]
    lists = [success[n, e][k] for n, e, k in zip(pts.variant, pts.epoch, pts.task)]
    pd.testing.assert_frame_equal(tables["8 points"],
                                  ev.correlation_table(pts, lists, n_perm=50, n_boot=20, seed=3))
    pd.testing.assert_frame_equal(tables["6 ViT points"], ev.correlation_table(
        pts[:6], lists[:6], n_perm=50, n_boot=20, seed=3))
    assert report.rho_summary(tables, 50, 0.025) == ev.rho_sentence(
        tables["8 points"], 50, 0.025, within=tables["6 ViT points"], family="6 ViT")
    with pytest.raises(ValueError, match="Expected the two tables"):
        report.rho_summary({"8 points": tables["8 points"]}, 50, 0.025)
