"""Tests for helpers.tms.llc: the batched SGLD LLC estimator, against devinterp 1.3.2 and known
critical points."""
import warnings

import pytest
import torch

from helpers.tms import llc

from helpers.tms import model as tms


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


class TiedTMS(torch.nn.Module):
    """The same model as helpers.tms.model, as a module for devinterp."""

    def __init__(self, W, b):
        super().__init__()
        self.W = torch.nn.Parameter(W.clone())
        self.b = torch.nn.Parameter(b.clone())

    def forward(self, x):
        return torch.relu(x @ self.W.T @ self.W + self.b)


def test_matches_devinterp_1_3_2():
    pytest.importorskip("devinterp")
    from importlib.metadata import version

    assert version("devinterp") == "1.3.2", (
        "the v1 API (estimate_learning_coeff_with_summary) is pinned at 1.3.2")
    from devinterp.slt.sampler import estimate_learning_coeff_with_summary
    from devinterp.optim.sgld import SGLD
    from devinterp.utils import evaluate_mse

    W, b, _ = tms.fit_regular_kgon(6)
    x = tms.make_data(400, None, "onehot_uniform", generator=gen(1))
    kw = dict(lr=3e-4, nbeta=300.0, localization=1.0)
    chains, draws, burnin, bs = 10, 250, 100, 100
    init_loss = tms.mse(W[None], b[None], x)
    ours = llc.estimate_llc(
        W[None], b[None], x, num_chains=chains, num_draws=draws, num_burnin_steps=burnin,
        batch_size=bs, seed=3, progress=False, **kw
    )
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, x), batch_size=bs,
                                         shuffle=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = estimate_learning_coeff_with_summary(
            TiedTMS(W, b), loader, evaluate=evaluate_mse, sampling_method=SGLD,
            optimizer_kwargs=dict(kw),
            num_chains=chains, num_draws=draws, num_burnin_steps=burnin,
            init_loss=init_loss.item(), seed=7, verbose=False,
        )
    theirs_chain = torch.as_tensor([float(theirs[f"llc-chain/{i}"]) for i in range(chains)])
    m1, m2 = ours.llc_mean.item(), theirs_chain.mean().item()
    se = (ours.llc_std.item() ** 2 / chains + theirs_chain.std().item() ** 2 / chains) ** 0.5
    assert m1 > 1 and m2 > 1  # a real, positive estimate at a minimum
    assert se < 0.25 * m2, "too few draws for the comparison to be able to fail"
    assert abs(m1 - m2) < 4 * se, (
        f"ours {m1:.3f} vs devinterp {m2:.3f} (se of difference {se:.3f})")
    # the chain spreads agree too (within a factor of 2.5)
    assert 0.4 < ours.llc_std.item() / theirs_chain.std().item() < 2.5


def test_hexagon_has_a_larger_llc_than_pentagon():
    W6, b6, _ = tms.fit_regular_kgon(6)
    W5, b5, _ = tms.fit_regular_kgon(5, dead_bias=-1.0)
    x = tms.make_data(5000, None, "onehot_uniform", generator=gen(2))
    res = llc.estimate_llc(
        torch.stack([W6, W5]), torch.stack([b6, b5]), x, lr=1e-3, nbeta=llc.default_nbeta(5000),
        num_chains=32, num_draws=500, num_burnin_steps=500, batch_size=500, seed=0, progress=False,
    )
    se = res.llc_std / 32**0.5
    diff = res.llc_mean[0] - res.llc_mean[1]
    assert diff > 3 * (se**2).sum().sqrt(), (
        f"6-gon {res.llc_mean[0]:.2f} vs 5-gon {res.llc_mean[1]:.2f}")
    # near the theory values 8.5 and 7 (loose: the estimate depends on the sampler settings)
    assert 7.0 < res.llc_mean[0] < 11.0 and 5.0 < res.llc_mean[1] < 9.5


def test_result_shapes_and_online_trace():
    W, b = tms.init_params(3, "6-gon", gen())
    x = tms.make_data(64, 0.7, generator=gen())
    res = llc.estimate_llc(W, b, x, lr=1e-3, nbeta=torch.tensor([10.0, 20.0, 30.0]), num_chains=2,
                           num_draws=5, num_burnin_steps=3, batch_size=20, progress=False)
    assert res.llc_per_chain.shape == (3, 2) and res.loss_trace.shape == (3, 2, 8)
    tr = res.llc_trace()
    assert tr.shape == (3, 2, 5)
    assert torch.allclose(tr[:, :, -1], res.llc_per_chain, atol=1e-5)
    assert torch.allclose(res.init_loss, tms.mse(W, b, x))
    # the first recorded loss is at the starting weights (taken before the first update)
    assert torch.equal(res.nbeta, torch.tensor([10.0, 20.0, 30.0]))


def test_first_loss_is_at_the_trained_weights_full_batch():
    W, b = tms.init_params(2, "4-gon", gen())
    x = tms.make_data(50, 0.5, generator=gen())
    res = llc.estimate_llc(W, b, x, lr=1e-3, nbeta=5.0, num_chains=3, num_draws=4, progress=False)
    assert torch.allclose(res.loss_trace[:, :, 0], tms.mse(W, b, x)[:, None].expand(2, 3),
                          atol=1e-6)


def test_errors():
    W, b = tms.init_params(2, "4-gon", gen())
    x = tms.make_data(50, 0.5, generator=gen())
    with pytest.raises(ValueError, match="lr > 0"):
        llc.estimate_llc(W, b, x, lr=0.0, nbeta=5.0, progress=False)
    with pytest.raises(ValueError, match="length M=2"):
        llc.estimate_llc(W, b, x, lr=1e-3, nbeta=torch.ones(3), progress=False)
    with pytest.raises(ValueError, match="batch_size"):
        llc.estimate_llc(W, b, x, lr=1e-3, nbeta=5.0, batch_size=51, progress=False)
    with pytest.raises(ValueError, match="num_chains >= 1"):
        llc.estimate_llc(W, b, x, lr=1e-3, nbeta=5.0, num_chains=0, progress=False)
    with pytest.raises(ValueError, match="localization >= 0"):
        llc.estimate_llc(W, b, x, lr=1e-3, nbeta=5.0, localization=-1, progress=False)
    with pytest.raises(ValueError, match="diverged"):
        llc.estimate_llc(W, b, x, lr=10.0, nbeta=1e6, num_draws=50, progress=False)
    with pytest.raises(ValueError, match="n > 1"):
        llc.default_nbeta(1)


def test_compressed_minibatches_give_the_same_estimate():
    g = gen(4)
    W = torch.randn(3, 2, 6, generator=g) * 0.5
    b = torch.randn(3, 6, generator=g) * 0.1
    x = tms.make_data(400, 0.7, "binary", generator=g)
    kw = dict(lr=1e-4, nbeta=50.0, num_chains=2, num_draws=20, num_burnin_steps=5, batch_size=100,
              seed=2,
              progress=False)
    a = llc.estimate_llc(W, b, x, compress=False, **kw)
    c = llc.estimate_llc(W, b, x, compress=True, **kw)
    assert torch.allclose(a.llc_mean, c.llc_mean, atol=1e-2, rtol=1e-3)


def test_divergence_raises_or_gives_nan():
    W, b, _ = tms.fit_regular_kgon(6, iters=30)
    x = tms.make_data(200, None, "onehot_uniform", generator=gen(0))
    kw = dict(lr=1.0, nbeta=5000.0, num_chains=2, num_draws=20, progress=False)
    with pytest.raises(ValueError, match="diverged"):
        llc.estimate_llc(W[None], b[None], x, **kw)
    res = llc.estimate_llc(torch.stack([W, W]), torch.stack([b, b]), x, on_divergence="nan",
                           **{**kw, "lr": torch.tensor([1e-4, 1.0])})
    assert torch.isfinite(res.llc_mean[0]) and torch.isnan(res.llc_mean[1])
