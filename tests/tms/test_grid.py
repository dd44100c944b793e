"""Tests for helpers.tms.grid: the experiment grid, its data, training, LLC, alignment and pruning."""
import numpy as np
import pytest
import torch

from helpers.tms import grid as tgrid
from helpers.tms import model as tms


@pytest.fixture(scope="module")
def small():
    g = tgrid.make_grid([1, 7], n_seeds=2)
    log_at = tms.log_steps(40, 8)
    run = tms.TrainResult(**tgrid.train_grid(g, 40, log_at, 50, 20, lr=0.005, momentum=0.9))
    g["kgon"] = [tms.classify_kgon(run.W[m, -1], run.b[m, -1]) for m in range(len(g))]
    return g, run, log_at


def test_make_grid_rows_and_errors():
    g = tgrid.make_grid([1, 3], n_seeds=3)
    assert len(g) == 2 * 2 * 3 and list(g.init.unique()) == ["4-gon", "6-gon"]
    assert g.sparsity.iloc[0] == pytest.approx(float(tms.sparsities()[1]))
    with pytest.raises(ValueError, match="sparsity_idx"):
        tgrid.make_grid([12], n_seeds=3)


def test_both_starts_share_their_data_and_seeds_differ():
    g = tgrid.make_grid([1], n_seeds=2)
    X = tgrid.grid_data(g, 30, salt=1)
    assert torch.equal(X[0], X[2]) and not torch.equal(X[0], X[1])


def test_init_grid_matches_init_params_per_start():
    g = tgrid.make_grid([1, 7], n_seeds=2)
    W, b = tgrid.init_grid(g)
    W4, b4 = tms.init_params(4, "4-gon", torch.Generator().manual_seed(7))
    assert torch.equal(W[:4], W4) and torch.equal(b[:4], b4)
    assert torch.all(b[4:] == -0.9999)


def test_checkpoint_steps_rescale():
    assert tgrid.checkpoint_steps([13, 85, 20000], 10000) == [6, 42, 10000]
    assert tgrid.checkpoint_steps([1], 100) == [1]


def test_llc_and_checkpoint_table(small):
    g, run, log_at = small
    ck = [log_at[-1]]
    L = tgrid.llc_at_checkpoints(run, g, ck, 100, lr=1e-4, nbeta=50.0, localization=1.0, chains=2,
                                 draws=10, burnin=5, batch=50)
    assert L["mean"].shape == (len(g), 1) and L["chains"].shape == (len(g), 1, 2)
    long = tgrid.checkpoint_table(g, run, L, ck, tgrid.grid_data(g, 50, 1))
    assert len(long) == len(g)
    assert np.allclose(long.loss, run.train_loss[:, -1].numpy())
    assert (long.loss == long.loss_next).all()  # no next step after the last one
    assert (long.grad_norm >= 0).all() and (long.grad_norm > 0).any()


def test_seed_pairs_and_lmc_control(small):
    g, run, _ = small
    ia, ib = tgrid.seed_pairs(g, "4-gon", "6-gon")
    assert (g.seed.to_numpy()[ia] == g.seed.to_numpy()[ib]).all()
    assert (g.init.to_numpy()[ib] == "6-gon").all()
    ja, jb = tgrid.seed_pairs(g, "4-gon", "4-gon", shift=1)
    assert (g.seed.to_numpy()[jb] == (g.seed.to_numpy()[ja] + 1) % 2).all()
    lmc = tgrid.lmc_table(g, run.W[:, -1], run.b[:, -1], 200, 5)
    assert set(lmc.pair) == {"4-gon vs 6-gon start", "4-gon vs 4-gon start", "6-gon vs 6-gon start"}
    assert (lmc.aligned >= -1e-6).all()


def test_prune_table_outcomes(small):
    g, run, _ = small
    P = tgrid.prune_grid(run, g, tgrid.grid_data(g, 50, 1), 40, n_seeds=1, rounds=2, per_round=2,
                         rewind_frac=0.1, lr=0.005, momentum=0.9)
    t = tgrid.prune_table(g, P)
    assert sorted(t.weights.unique()) == [8, 10, 12]
    assert (t[t.weights == 12].outcome == "kept").all()
    assert set(t.outcome) <= {"kept", "fewer corners", "changed"}
