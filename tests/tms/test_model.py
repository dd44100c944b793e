"""Tests for helpers.tms.model: model, data laws, batched training, k-gons, symmetries, pruning."""
import math

import numpy as np
import pytest
import torch

from helpers.tms import model as tms


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_forward_matches_hand_computation():
    W = torch.tensor([[1.0, 0.0, -1.0, 0.5, 0.0, 0.0], [0.0, 1.0, 0.0, 0.5, 0.0, 2.0]])
    b = torch.tensor([0.1, -0.2, 0.0, -1.0, 0.3, -5.0])
    x = torch.tensor([[1.0, 0.0, 0.0, 0.0, 0.0, 1.0]])
    # by hand: h = W x = (1, 2); z_j = h . W[:, j] + b_j
    z = [1 + 0.1, 2 - 0.2, -1 + 0.0, 0.5 + 1.0 - 1.0, 0 + 0.3, 4 - 5.0]
    expected = torch.tensor([[max(v, 0.0) for v in z]])
    out = tms.forward(W[None], b[None], x)
    assert torch.allclose(out[0], expected, atol=1e-6)
    assert torch.allclose(tms.mse(W[None], b[None], x), ((expected - x) ** 2).mean()[None])


def test_hand_gradient_matches_autograd():
    W, b = tms.init_params(4, "4-gon", gen(1))
    x = torch.stack([tms.make_data(50, 0.3, generator=gen(i)) for i in range(4)])
    Wr, br = W.clone().requires_grad_(), b.clone().requires_grad_()
    tms.mse(Wr, br, x).sum().backward()
    loss, gW, gb = tms.loss_and_grad(W, b, x)
    assert torch.allclose(loss, tms.mse(W, b, x), atol=1e-6)
    assert torch.allclose(gW, Wr.grad, atol=1e-5) and torch.allclose(gb, br.grad, atol=1e-5)


def test_sparsity_grid_is_the_reference_grid():
    s = tms.sparsities()
    assert s.shape == (10,) and s[0] == 0
    assert np.allclose(s[[1, 4, 9]].numpy(), [0.426, 0.892, 0.993], atol=1e-3)


def test_binary_law_statistics():
    x = tms.make_data(200_000, 0.8, "binary", generator=gen())
    assert set(x.unique().tolist()) == {0.0, 1.0}
    assert abs(x.mean().item() - 0.2) < 0.003
    # independence: the covariance between features is ~0
    c = torch.cov(x.T)
    assert (c - torch.diag(torch.diag(c))).abs().max() < 0.005


def test_onehot_uniform_law_statistics():
    x = tms.make_data(120_000, None, "onehot_uniform", generator=gen())
    assert ((x > 0).sum(1) == 1).all()  # exactly one feature on (values > 0 almost surely)
    active = x.sum(1)
    assert abs(active.mean().item() - 0.5) < 0.005 and abs(active.var().item() - 1 / 12) < 0.002
    assert ((x > 0).float().mean(0) - 1 / 6).abs().max() < 0.005


def test_data_law_errors():
    with pytest.raises(ValueError, match="law to be one of"):
        tms.make_data(10, 0.5, "gaussian")
    with pytest.raises(ValueError, match="needs a sparsity"):
        tms.make_data(10, None, "binary")
    with pytest.raises(ValueError, match="pass sparsity=None"):
        tms.make_data(10, 0.5, "onehot_uniform")
    with pytest.raises(ValueError, match="n >= 1"):
        tms.make_data(0, 0.5)
    with pytest.raises(ValueError, match="count >= 1"):
        tms.sparsities(0)


def test_shape_errors_name_the_fix():
    W, b = tms.init_params(2, "6-gon", gen())
    with pytest.raises(ValueError, match="add a leading model axis"):
        tms.forward(W[0], b[0], torch.zeros(3, 6))
    with pytest.raises(ValueError, match="M=2"):
        tms.forward(W, b, torch.zeros(3, 3, 6))
    with pytest.raises(ValueError, match="init to be one of"):
        tms.init_params(2, "5-gon")
    with pytest.raises(ValueError, match="1 <= k"):
        tms.kgon(7)


def test_inits_follow_the_reference():
    W, b = tms.init_params(50, "4-gon", gen())
    norms = W.norm(dim=1)
    assert torch.allclose(norms[:, :4], torch.full((50, 4), 0.9), atol=0.05)
    assert norms[:, 4:].max() < 0.06
    assert 0.7 < b.std() < 1.3
    W6, b6 = tms.init_params(5, "6-gon", gen())
    assert torch.allclose(W6.norm(dim=1), torch.full((5, 6), 0.9), atol=0.05)
    assert torch.all(b6 == -0.9999)


def test_log_steps():
    steps = tms.log_steps(20_000, 50)
    assert steps[0] == 0 and steps[-1] == 20_000 and len(steps) == 47  # 46 logged steps + step 0
    assert {13, 85, 526, 3243} <= set(steps)
    assert 777 in tms.log_steps(1000, 10, extra=(777,))
    with pytest.raises(ValueError, match="outside"):
        tms.log_steps(100, 10, extra=(101,))


def test_batched_training_equals_a_single_model_torch_loop():
    M, steps = 3, 25
    W0, b0 = tms.init_params(M, "4-gon", gen(2))
    x = torch.stack([tms.make_data(64, 0.5, generator=gen(10 + i)) for i in range(M)])
    res = tms.train(W0, b0, x, steps, [0, 10, steps], progress=False)
    for m in range(M):
        W = W0[m].clone().requires_grad_()
        b = b0[m].clone().requires_grad_()
        opt = torch.optim.SGD([W, b], lr=0.005, momentum=0.9)
        for _ in range(steps):
            opt.zero_grad()
            out = torch.relu(x[m] @ W.T @ W + b)
            torch.nn.functional.mse_loss(out, x[m]).backward()
            opt.step()
        assert torch.allclose(res.W[m, -1], W.detach(), atol=1e-5)
        assert torch.allclose(res.b[m, -1], b.detach(), atol=1e-5)
    assert res.W.shape == (M, 3, 2, 6) and res.train_loss.shape == (M, 3)
    assert res.at(10) == 1
    with pytest.raises(ValueError, match="was not logged"):
        res.at(11)


def test_training_with_a_mask_keeps_pruned_weights_at_zero():
    W0, b0 = tms.init_params(2, "6-gon", gen())
    mask = torch.ones_like(W0)
    mask[:, 0, :3] = 0
    res = tms.train(W0, b0, tms.make_data(64, 0.5, generator=gen()), 20, [20], mask=mask,
                    progress=False)
    assert (res.W[:, -1, 0, :3] == 0).all() and (res.W[:, -1, 1] != 0).all()


def test_optimal_hexagon_matches_chen_et_al():
    W, b, loss = tms.fit_regular_kgon(6)
    assert abs(W[:, 0].norm().item() - 1.32054) < 1e-3 and abs(b[0].item() + 0.61816) < 1e-3
    assert abs(loss * 6 - 0.04819) < 1e-4  # Chen et al. sum over coordinates
    _, _, loss5 = tms.fit_regular_kgon(5)
    assert abs(loss5 * 6 - 0.06874) < 1e-4
    # Monte Carlo agrees with the quadrature
    x = tms.make_data(200_000, None, "onehot_uniform", generator=gen())
    assert abs(tms.mse(W[None], b[None], x).item() - loss) < 3e-4
    with pytest.raises(ValueError, match="dead_bias must be negative"):
        tms.fit_regular_kgon(5, dead_bias=0.1)


@pytest.mark.parametrize(
    "k, extra_bias, label",
    [(6, [], "6"), (5, [-0.5], "5-"), (5, [0.3], "5+"), (4, [0.2, -0.3], "4+-"),
     (4, [-0.1, -0.2], "4--")],
)
def test_classify_constructed_polygons(k, extra_bias, label):
    W = tms.kgon(k, 1.2, rotation=0.3)
    # non-corner features: tiny, or inside the polygon
    if k < 6:
        W[:, k] = torch.tensor([0.05, 0.0]) if len(extra_bias) == 1 else torch.tensor([0.2, 0.1])
    b = torch.cat([torch.full((k,), -0.4), torch.tensor(extra_bias)])
    assert tms.classify_kgon(W, b) == label


def test_classify_degenerate_polygons():
    # antipodal pair (2-gon) with the rest zero, and an edge midpoint that is not a corner
    W = torch.zeros(2, 6)
    W[:, 0], W[:, 1] = torch.tensor([1.0, 0.0]), torch.tensor([-1.0, 0.0])
    assert tms.classify_kgon(W, -torch.ones(6)) == "2----"
    W = tms.kgon(4, 1.0)
    W[:, 4] = (W[:, 0] + W[:, 1]) / 2
    assert tms.classify_kgon(W, torch.tensor([0, 0, 0, 0, -1.0, 1.0])).startswith("4")
    with pytest.raises(ValueError, match="Expected one model"):
        tms.classify_kgon(W[None], torch.zeros(1, 6))


def _random_symmetry(M, seed):
    g = gen(seed)
    ang = torch.rand(M, generator=g) * 2 * math.pi
    R = torch.stack([torch.stack([ang.cos(), -ang.sin()], -1),
                     torch.stack([ang.sin(), ang.cos()], -1)], -2)
    R[0] = R[0] @ torch.diag(torch.tensor([1.0, -1.0]))  # include a reflection
    perm = torch.stack([torch.randperm(6, generator=g) for _ in range(M)])
    return R, perm


def test_symmetry_keeps_the_loss_and_alignment_recovers_it_exactly():
    M = 4
    W, b = tms.init_params(M, "4-gon", gen(3))
    W = W + 0.3 * torch.randn(W.shape, generator=gen(4))  # break the k-gon's own symmetries
    R, perm = _random_symmetry(M, 5)
    W2, b2 = tms.apply_symmetry(W, b, R, perm)
    x = tms.make_data(4000, 0.5, generator=gen(6))
    assert torch.allclose(tms.mse(W, b, x), tms.mse(W2, b2, x), rtol=2e-2)  # exchangeable features
    Ra, pa, cost = tms.align(W, b, W2, b2)
    Wb, bb = tms.apply_symmetry(W2, b2, Ra, pa)
    assert cost.max() < 1e-8
    assert torch.allclose(Wb, W, atol=1e-5) and torch.allclose(bb, b, atol=1e-6)
    barrier, path = tms.interpolation_barrier(W, b, Wb, bb, x)
    assert barrier.abs().max() < 1e-6 and path.shape == (M, 21)
    # unaligned, the same models have a real barrier
    unaligned, _ = tms.interpolation_barrier(W, b, W2, b2, x)
    assert unaligned.max() > 1e-3


def test_alignment_needs_same_shapes():
    W, b = tms.init_params(2, "4-gon", gen())
    with pytest.raises(ValueError, match="same shape"):
        tms.align(W, b, W[:1], b[:1])


def test_prune_and_retrain_masks_smallest_weights():
    W0, b0 = tms.init_params(3, "4-gon", gen(7))
    x = tms.make_data(128, 0.8, generator=gen(8))
    res = tms.train(W0, b0, x, 50, [5, 50], progress=False)
    pr = tms.prune_and_retrain(res.W[:, 0], res.b[:, 0], res.W[:, -1], res.b[:, -1], x, steps=30,
                               rounds=3, per_round=2, progress=False)
    assert pr.n_weights == [12, 10, 8, 6]
    assert pr.masks.shape == (4, 3, 2, 6)
    assert (pr.masks.flatten(2).sum(-1) == torch.tensor([12.0, 10, 8, 6])[:, None]).all()
    assert ((pr.W == 0) | (pr.masks == 1)).all()
    # round 1 removes the two smallest final weights
    first = res.W[:, -1].abs().flatten(1).argsort(1)[:, :2]
    assert (pr.masks[1].flatten(1).gather(1, first) == 0).all()
    with pytest.raises(ValueError, match="would prune all"):
        tms.prune_and_retrain(res.W[:, 0], res.b[:, 0], res.W[:, -1], res.b[:, -1], x, steps=5,
                              rounds=6)


def test_compressed_binary_data_give_the_same_loss_gradient_and_training():
    g = torch.Generator().manual_seed(3)
    W = torch.randn(4, 2, 6, generator=g) * 0.6
    b = torch.randn(4, 6, generator=g) * 0.2
    x = tms.make_data(300, 0.6, "binary", generator=g).expand(4, -1, -1).contiguous()
    patterns, ids = tms.compress_binary(x)
    w = tms.pattern_weights(ids, len(patterns))
    assert patterns.shape == (64, 6) and torch.allclose(w.sum(1), torch.ones(4))
    assert torch.equal(patterns[ids], x)
    l1, gW1, gb1 = tms.loss_and_grad(W, b, x)
    l2, gW2, gb2 = tms.loss_and_grad(W, b, patterns, weights=w)
    assert torch.allclose(l1, l2, atol=1e-6) and torch.allclose(gW1, gW2, atol=1e-5)
    assert torch.allclose(gb1, gb2, atol=1e-6)
    assert torch.allclose(tms.mse(W, b, x), tms.mse(W, b, patterns, w), atol=1e-6)
    a = tms.train(W, b, x, 50, [50], compress=False, progress=False)
    c = tms.train(W, b, x, 50, [50], compress=True, progress=False)
    assert torch.allclose(a.W, c.W, atol=1e-4) and torch.allclose(a.train_loss, c.train_loss,
                                                                  atol=1e-5)
    with pytest.raises(ValueError, match="0/1 data"):
        tms.compress_binary(torch.rand(5, 6))


def test_hessian_rank_of_chen_et_al_kgons_is_17_and_14():
    """Rotation is the hexagon's one flat direction; the pentagon adds its dead feature's w (2) and
    b."""
    W6, b6, _ = tms.fit_regular_kgon(6)
    W5, b5, _ = tms.fit_regular_kgon(5)
    n = 2000
    mu = (torch.arange(n, dtype=torch.float64) + 0.5) / n
    x = (torch.eye(6, dtype=torch.float64)[:, None, :] * mu[None, :, None]).reshape(6 * n, 6)
    H = tms.hessian(torch.stack([W6, W5]), torch.stack([b6, b5]), x)
    rank, min_eig, ev = tms.hessian_rank(H)
    assert rank.tolist() == [17, 14]
    assert (min_eig > -1e-3 * ev[:, -1]).all()  # minima, not saddles (to the rank tolerance)
    # a saddle: the origin with zero bias has negative curvature along W
    _, m0, _ = tms.hessian_rank(tms.hessian(torch.zeros(1, 2, 6), torch.full((1, 6), 0.3), x))
    assert m0.item() < 0


def test_feature_dimensionality_of_regular_polygons():
    square_half = tms.kgon(4, 1.0)
    square_half[:, 2:] = 0  # features 0 and 1 at right angles, the rest off
    W = torch.stack([tms.kgon(6, 1.0), tms.kgon(5, 1.0), square_half, tms.kgon(2, 1.0)])
    D = tms.feature_dimensionality(W)
    assert torch.allclose(D[0], torch.full((6,), 1 / 3), atol=1e-5)
    assert torch.allclose(D[1, :5], torch.full((5,), 0.4), atol=1e-5) and torch.isnan(D[1, 5])
    # orthogonal features: a dimension each
    assert torch.allclose(D[2, :2], torch.ones(2), atol=1e-5)
    assert torch.allclose(D[3, :2], torch.full((2,), 0.5), atol=1e-5)  # antipodal pair shares one


def test_powerlaw_sparsity_keeps_the_mean_density_and_orders_features():
    for S, a in ((0.8, 1.0), (0.4, 2.0), (0.95, 0.5)):
        s = tms.powerlaw_sparsity(S, a)
        assert torch.all((s >= 0) & (s <= 1)) and torch.all(s[1:] >= s[:-1])
        assert (1 - s).mean().item() == pytest.approx(1 - S, abs=1e-5)
    x = tms.make_data(20000, tms.powerlaw_sparsity(0.8, 1.0), "binary",
                      generator=torch.Generator().manual_seed(0))
    assert torch.allclose(x.mean(0), 1 - tms.powerlaw_sparsity(0.8, 1.0), atol=0.02)
    with pytest.raises(ValueError, match="alpha"):
        tms.powerlaw_sparsity(0.5, -1.0)
    with pytest.raises(ValueError, match="one per"):
        tms.make_data(10, torch.tensor([0.5, 0.5]), "binary")


def test_importance_weighted_loss_and_gradient_match_autograd():
    W, b = tms.init_params(3, "4-gon", gen(2))
    x = torch.stack([tms.make_data(40, 0.4, generator=gen(10 + i)) for i in range(3)])
    imp = tms.powerlaw_importance(1.0)
    assert torch.isclose(imp.mean(), torch.tensor(1.0)) and bool((imp.diff() < 0).all())
    Wr, br = W.clone().requires_grad_(), b.clone().requires_grad_()
    tms.mse(Wr, br, x, importance=imp).sum().backward()
    loss, gW, gb = tms.loss_and_grad(W, b, x, importance=imp)
    sq = (tms.forward(W, b, x) - x) ** 2
    assert torch.allclose(loss, (sq * imp).mean((1, 2)), atol=1e-6)
    assert torch.allclose(gW, Wr.grad, atol=1e-5) and torch.allclose(gb, br.grad, atol=1e-5)
    ones = tms.loss_and_grad(W, b, x, importance=torch.ones(6))
    assert all(torch.allclose(u, v) for u, v in zip(ones, tms.loss_and_grad(W, b, x)))
    with pytest.raises(ValueError, match="importance"):
        tms.mse(W, b, x, importance=torch.ones(5))
    with pytest.raises(ValueError, match="alpha"):
        tms.powerlaw_importance(-1.0)


def test_pull_towards_an_anchor_reaches_it_and_zero_pull_changes_nothing():
    W, b = tms.init_params(2, "4-gon", gen(3))
    Wa, ba = tms.init_params(2, "6-gon", gen(4))
    x = torch.stack([tms.make_data(64, 0.5, generator=gen(20 + i)) for i in range(2)])
    free = tms.train(W, b, x, 200, [200], progress=False)
    zero = tms.train(W, b, x, 200, [200], progress=False, anchor=(Wa, ba), pull=0.0)
    assert torch.equal(free.W, zero.W) and torch.equal(free.b, zero.b)
    strong = tms.train(W, b, x, 2000, [2000], progress=False, anchor=(Wa, ba), pull=50.0)
    assert (strong.W[:, -1] - Wa).abs().max() < 0.02 and (strong.b[:, -1] - ba).abs().max() < 0.02
    with pytest.raises(ValueError, match="pull >= 0"):
        tms.train(W, b, x, 10, [10], progress=False, anchor=(Wa, ba), pull=-1.0)
