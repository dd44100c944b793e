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


def test_llc_and_variant_keys_are_the_chapters_keys():
    """The keys equal the literal dicts the chapter used to write (so its cache entries still
    load), read only the settings they name, and change when a sampler setting changes."""
    g = tgrid.make_grid([1, 7], n_seeds=2)
    log_at = [1, 5, 30]
    train = dict(TRAIN, device="cpu")
    sampler = dict(lr=torch.tensor(3e-4).item(), nbeta=300.0, localization=1.0, chains=4,
                   draws=300, burnin=300, batch=500, compress=True, on_divergence="nan")
    key = stages.llc_key(g, log_at=log_at, llc_n=5000, train=train, sampler=sampler)
    literal = dict(v=3, grid=g.values[:, :4].tolist(), steps=30, log=log_at, n=40,
                   lr=sampler["lr"], nb=300.0, g=1.0, c=4, d=300, bi=300, bs=500, nl=5000,
                   lrt=0.005, mom=0.9)
    assert key == literal and list(key) == list(literal)
    annotated = g.assign(kgon=4)
    assert stages.llc_key(annotated, log_at=log_at, llc_n=5000, train=train,
                          sampler=sampler) == key
    changed = stages.llc_key(g, log_at=log_at, llc_n=5000, train=train,
                             sampler=dict(sampler, chains=5))
    assert changed["c"] == 5 and changed != key
    power = tgrid.make_grid([1, 7], n_seeds=3)
    vkey = stages.variant_key(power, key, n_test=200, descent_steps=1000, alpha=1.0)
    assert vkey == dict(v=1, grid=power.values.tolist(), steps=30, log=log_at, n=40, nt=200,
                        lr=0.005, mom=0.9, nl=5000, ds=1000, a=1.0,
                        llc={k: literal[k] for k in ("lr", "nb", "g", "c", "d", "bi", "bs")})
