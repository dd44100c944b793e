"""Tests for helpers.tms.grid: the experiment grid, its data, training, LLC, alignment and
pruning."""
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
    assert set(lmc.pair) == {"4-gon vs 6-gon start", "4-gon vs 4-gon start",
                             "6-gon vs 6-gon start"}
    assert (lmc.aligned >= -1e-6).all()


def test_prune_table_outcomes(small):
    g, run, _ = small
    P = tgrid.prune_grid(run, g, tgrid.grid_data(g, 50, 1), 40, n_seeds=1, rounds=2, per_round=2,
                         rewind_frac=0.1, lr=0.005, momentum=0.9)
    t = tgrid.prune_table(g, P)
    assert sorted(t.weights.unique()) == [8, 10, 12]
    assert (t[t.weights == 12].outcome == "kept").all()
    assert set(t.outcome) <= {"kept", "fewer corners", "changed"}


def test_minimum_check_tells_a_minimum_from_a_saddle_and_a_slope():
    x = tms.make_data(400, 0.7, "binary", generator=torch.Generator().manual_seed(0))
    W0, b0 = tms.kgon(4, 0.9)[None], torch.zeros(1, 6)
    trained = tms.train(W0, b0, x, 3000, [10, 3000], progress=False, compress=True)
    # a trained model, the same run after 10 steps, and the origin (a saddle: W = 0 has no
    # gradient)
    W = torch.stack([trained.W[0, -1], trained.W[0, 0], torch.zeros(2, 6)])
    b = torch.stack([trained.b[0, -1], trained.b[0, 0], torch.full((6,), 0.3)])
    chk = tgrid.minimum_check(W, b, x.expand(3, -1, -1), nbeta=1000.0, descent_steps=1000)
    # lower loss is within reach only of the early model
    assert chk.descent[0] < 1 < chk.descent[1]
    assert chk.min_eig_rel[0] > -1e-3 and chk.min_eig_rel[2] < -1e-3
    assert chk.lam_hessian[0] == chk["rank"][0] / 2
    assert list(chk.status) == ["minimum", "descends", "saddle"]
    dead = tgrid.minimum_check(torch.zeros(1, 2, 6), torch.full((1, 6), -1.0), x[None],
                               nbeta=1000.0,
                               descent_steps=10)
    assert dead.status[0] == "flat"  # every ReLU off: no gradient, no curvature


def test_features_per_dimension():
    W = torch.stack([tms.kgon(6, 1.0), tms.kgon(5, 1.0), torch.zeros(2, 6)])
    fpd = tgrid.features_per_dimension(tms.feature_dimensionality(W))
    assert (fpd[0].item() == pytest.approx(3.0, abs=1e-4)
            and fpd[1].item() == pytest.approx(2.5, abs=1e-4))
    assert torch.isnan(fpd[2])


def test_prune_grid_control_rewinds_without_pruning(small):
    g, run, _ = small
    P = tgrid.prune_grid(run, g, tgrid.grid_data(g, 50, 1), 40, n_seeds=1, rounds=1, per_round=2,
                         rewind_frac=0.1, lr=0.005, momentum=0.9, compress=True, control=True)
    assert P["control_W"].shape == (len(P["sel"]), 2, 6) and (P["control_W"] != 0).all()
    t = tgrid.prune_table(g, P)
    assert {"control_loss", "control_kgon", "features_per_dim"} <= set(t.columns)


def test_annotate_and_parameter_checks():
    import pytest
    import torch

    from helpers.tms import model as tms

    g = tgrid.make_grid([7], n_seeds=1)
    W = torch.stack([tms.kgon(4, 1.0), tms.kgon(5, 1.0)])
    b = torch.zeros(2, 6)
    out = tgrid.annotate(g, W, b, torch.tensor([0.1, 0.2]))
    assert out.k.tolist() == [4, 5] and np.allclose(out.features_per_dim, [2.0, 2.5], atol=1e-4)
    assert "kgon" not in g.columns  # a new frame
    with pytest.raises(ValueError, match="one model per grid row"):
        tgrid.annotate(g, W[:1], b[:1], torch.tensor([0.1]))
    with pytest.raises(ValueError, match="anim_sparsity_idx"):
        tgrid.check_parameters([1, 7], 3, 10, 2)
    with pytest.raises(ValueError, match="n_seeds_early"):
        tgrid.check_parameters([1, 7], 7, 10, 20)
    assert tgrid.resolve_device("cpu").type == "cpu"


def test_llc_tables_and_check_final_on_a_small_grid(tmp_path, monkeypatch):
    from helpers.tms import model as tms

    monkeypatch.setenv("BOOK_CACHE", str(tmp_path))
    g = tgrid.make_grid([7], n_seeds=3)
    run = tms.TrainResult(**tgrid.train_grid(g, 400, [0, 20, 400], 200, 50, 0.005, 0.9,
                                             compress=True))
    run_W = run.W[:, -1]
    g = tgrid.annotate(g, run_W, run.b[:, -1], run.train_loss[:, -1])
    x = tgrid.grid_data(g, 200, 1)
    kw = dict(lr=1e-4, nbeta=100.0, localization=1.0, chains=2, draws=20, burnin=10, batch=100,
              compress=True, on_divergence="nan")
    final, long = tgrid.llc_tables(run, g, x, [20, 400], n_early=1, n=300, key=dict(t=1), **kw)
    assert len(final) == len(g) and set(final.step) == {400} and "kgon" in final
    assert sorted(long.step.unique()) == [20, 400] and (long.seed == 0).all()
    again, _ = tgrid.llc_tables(run, g, x, [20, 400], n_early=1, n=300, key=dict(t=1), **kw)
    assert np.array_equal(again.llc, final.llc)  # read back from the cache
    checked, redo = tgrid.check_final(final, run, g, 300, descent_steps=20, descent_tol=1.0,
                                      llc_kwargs=kw)
    assert (checked.at_min == (checked.status == "minimum")).all()
    assert len(redo) == int((checked.at_min & (checked.llc <= 0)).sum())
