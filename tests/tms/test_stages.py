"""Tests for helpers.tms.stages: each cached stage equals its uncached computation, loads from the
cache on a second call without recomputing, and recomputes when a setting in its key changes."""
import pandas as pd
import pytest
import torch

from helpers.tms import basin as tbasin
from helpers.tms import grid as tgrid
from helpers.tms import model as tms
from helpers.tms import stages

TRAIN = dict(steps=30, n_train=40, lr=0.005, momentum=0.9)


@pytest.fixture
def small(tmp_path, monkeypatch):
    monkeypatch.setenv("BOOK_CACHE", str(tmp_path))
    g = tgrid.make_grid([1, 7], n_seeds=2)
    log_at = tms.log_steps(TRAIN["steps"], 6)
    run = stages.cached_training(g, log_at=log_at, n_test=20, **TRAIN)
    return g, run, log_at


def _forbid(monkeypatch, module, name):
    """Make ``module.name`` raise, so a second call can only succeed from the cache."""
    def boom(*args, **kwargs):
        raise AssertionError(f"{name} recomputed although its entry is cached")
    monkeypatch.setattr(module, name, boom)


def test_cached_training_equals_train_grid_and_hits_the_cache(small, monkeypatch):
    g, run, log_at = small
    direct = tms.TrainResult(**tgrid.train_grid(g, TRAIN["steps"], log_at, TRAIN["n_train"], 20,
                                                TRAIN["lr"], TRAIN["momentum"], compress=True))
    assert torch.equal(run.W, direct.W) and torch.equal(run.train_loss, direct.train_loss)
    annotated = tgrid.annotate(g, run.W[:, -1], run.b[:, -1], run.train_loss[:, -1])
    _forbid(monkeypatch, tgrid, "train_grid")
    again = stages.cached_training(annotated, log_at=log_at, n_test=20, **TRAIN)
    assert torch.equal(again.W, run.W)  # an annotated grid keys like the fresh one
    with pytest.raises(AssertionError, match="recomputed"):
        stages.cached_training(g, log_at=log_at, n_test=21, **TRAIN)


def test_cached_reference_llc_and_pruning_hit_the_cache(small, monkeypatch):
    g, run, log_at = small
    X = tgrid.grid_data(g, TRAIN["n_train"], 1)
    ref_kw = dict(steps=TRAIN["steps"], n_train=TRAIN["n_train"], train_lr=TRAIN["lr"], lr=1e-3,
                  n=50, chains=2, draws=5)
    R = stages.cached_reference_llc(run, g, **ref_kw)
    assert R["mean"].shape == (len(g),) and R["var"].shape == (len(g),)
    prune_kw = dict(log_at=log_at, n_seeds=1, rounds=1, per_round=2, rewind_frac=0.1, **TRAIN)
    P = stages.cached_pruning(run, g, X, **prune_kw)
    assert {"control_W", "control_loss", "W", "sel"} <= set(P)
    _forbid(monkeypatch, tgrid, "reference_protocol_llc")
    _forbid(monkeypatch, tgrid, "prune_grid")
    assert torch.equal(stages.cached_reference_llc(run, g, **ref_kw)["mean"], R["mean"])
    assert torch.equal(stages.cached_pruning(run, g, X, **prune_kw)["W"], P["W"])
    with pytest.raises(AssertionError, match="recomputed"):
        stages.cached_pruning(run, g, X, **{**prune_kw, "rounds": 2})


def test_cached_basin_table_is_a_frame_and_hits_the_cache(small, monkeypatch):
    g, run, _ = small
    X = tgrid.grid_data(g, TRAIN["n_train"], 1)
    kw = dict(pull_steps=5, release_steps=5, min_distance=0.1, **TRAIN)
    hop = stages.cached_basin_table(run, g, X, [0.0, 0.1], **kw)
    assert isinstance(hop, pd.DataFrame) and set(hop.pull) == {0.0, 0.1}
    assert len(hop) == 2 * 2 * (len(g) // 2)  # two directions x two pulls x pairs
    _forbid(monkeypatch, tbasin, "basin_table")
    pd.testing.assert_frame_equal(stages.cached_basin_table(run, g, X, [0.0, 0.1], **kw), hop)
