"""``permutation_null``'s critical value and calibrated score against the "Aristotelian" paper.

Groger, Wen and Brbic (2026) calibrate a similarity against a permutation null: ``tau`` is the
``ceil((1 - alpha)(K + 1))``-th order statistic of observed-plus-null, and the calibrated score
is ``clip((s - tau) / (1 - tau), 0, 1)``. Their package, ``calibrated-similarity``
(requirements-bench.txt, not installed in CI), is driven here with the same permutations and
our per-pair score; the formula test below writes its formulas out and runs everywhere.
"""

from __future__ import annotations

import math

import pytest
import torch

from helpers.alignment import permutation_null, prepare, score


def _related(n=60, seed=0):
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(n, 6, generator=g)
    xs = [base @ torch.randn(6, 12, generator=g) + s * torch.randn(n, 12, generator=g)
          for s in (0.5, 3.0, 8.0)]
    ys = [base @ torch.randn(6, 9, generator=g) + s * torch.randn(n, 9, generator=g)
          for s in (1.0, 6.0)]
    return prepare(xs), prepare(ys)


def _package_formulas(observed: float, null: torch.Tensor, alpha: float
                      ) -> tuple[float, float, float]:
    """``calibrated_similarity.calibrate_layers``' last step, copied from its 0.1.1 source
    (float32, sort, clamped rank, denominator floored at 1e-12, smax = 1)."""
    k = null.shape[0]
    obs = torch.tensor(observed, dtype=torch.float32)
    combined = torch.cat([obs.view(1), null.float()])
    rank = max(0, min(int(math.ceil((1.0 - alpha) * (k + 1))) - 1, k))
    tau = torch.sort(combined).values[rank]
    p = (1.0 + (null.float() >= obs).float().sum()) / float(k + 1)
    cal = torch.clamp((obs - tau) / (torch.tensor(1.0) - tau).clamp_min(1e-12), 0.0, 1.0)
    return float(cal), float(p), float(tau)


@pytest.mark.parametrize("alpha", [0.05, 0.2])
@pytest.mark.parametrize("seed_data", [0, 1])
def test_critical_value_follows_the_papers_formulas(alpha, seed_data):
    xs, ys = _related(seed=seed_data)
    r = permutation_null(xs, ys, "mutual_knn", topk=5, n_perm=39, seed=3, alpha=alpha)
    cal, p, tau = _package_formulas(r.observed, r.null, alpha)
    assert r.alpha == alpha
    assert r.critical_value == pytest.approx(tau, abs=1e-7)
    assert r.calibrated == pytest.approx(cal, abs=1e-6)
    assert r.p_value == pytest.approx(p, abs=1e-7)
    # by hand: 40 values, rank ceil(0.95 * 40) = 38 (alpha 0.05) or 32 (alpha 0.2)
    values = sorted([r.observed, *r.null.tolist()])
    assert r.critical_value == values[math.ceil((1 - alpha) * 40) - 1]


def test_calibrated_score_is_zero_below_tau_and_one_at_a_perfect_score():
    g = torch.Generator().manual_seed(5)
    x = prepare(torch.randn(120, 2, 16, generator=g))
    y = prepare(torch.randn(120, 2, 16, generator=g))
    r = permutation_null(x, y, "mutual_knn", topk=10, n_perm=19, seed=0)
    if r.observed < r.critical_value:  # derived, not assumed: independent data rarely beat tau
        assert r.calibrated == 0.0
    else:
        assert 0.0 <= r.calibrated <= 1.0
    same = permutation_null(x[:, 0], x[:, 0], "mutual_knn", topk=10, n_perm=19, seed=0)
    assert same.observed == 1.0 and same.critical_value == float(same.null.max())
    assert same.calibrated == 1.0


def test_reduce_none_gives_a_critical_value_per_pair():
    xs, ys = _related()
    r = permutation_null(xs, ys, "mutual_knn", topk=5, n_perm=24, seed=2, reduce=None)
    assert r.critical_value.shape == r.calibrated.shape == (3, 2)
    for i in range(3):
        for j in range(2):
            cal, _, tau = _package_formulas(float(r.observed[i, j]), r.null[:, i, j], 0.05)
            assert float(r.critical_value[i, j]) == pytest.approx(tau, abs=1e-7)
            assert float(r.calibrated[i, j]) == pytest.approx(cal, abs=1e-6)


def test_alpha_is_checked():
    x = prepare(torch.randn(20, 4))
    for bad in (0, 1, 1.5, -0.1, "0.05", True):
        with pytest.raises(ValueError, match=r"alpha must be a number in \(0, 1\)"):
            permutation_null(x, x, n_perm=3, alpha=bad)


def test_matches_calibrated_similarity_with_shared_permutations():
    """Their ``calibrate_layers`` (max over layer pairs) and ``calibrate`` (one pair), given our
    per-pair score and the permutations our ``seed`` draws, return our numbers."""
    cs = pytest.importorskip("calibrated_similarity",
                             reason="bench-only: pip install -r requirements-bench.txt")
    xs, ys = _related(seed=4)
    n_perm, seed = 29, 8

    def shared_perms():
        gen = torch.Generator().manual_seed(seed)  # the generator permutation_null seeds
        return lambda n, device: torch.randperm(n, generator=gen).to(device)

    def sim(a, b):
        return score(a, b, "mutual_knn", topk=5)

    for alpha in (0.05, 0.2):
        ours = permutation_null(xs, ys, "mutual_knn", topk=5, n_perm=n_perm, seed=seed,
                                alpha=alpha)
        cal, p, tau = cs.calibrate_layers(xs, ys, sim, agg="max", K=n_perm, alpha=alpha,
                                          smax=1.0, perm_fn=shared_perms())
        assert ours.critical_value == pytest.approx(float(tau), abs=1e-7)
        assert ours.calibrated == pytest.approx(float(cal), abs=1e-6)
        assert ours.p_value == pytest.approx(float(p), abs=1e-7)
    one = permutation_null(xs[0], ys[0], "mutual_knn", topk=5, n_perm=n_perm, seed=seed)
    cal, p, tau = cs.calibrate(xs[0], ys[0], sim, K=n_perm, alpha=0.05, perm_fn=shared_perms())
    assert (one.critical_value, one.p_value) == (pytest.approx(float(tau), abs=1e-7),
                                                 pytest.approx(float(p), abs=1e-7))
    assert one.calibrated == pytest.approx(float(cal), abs=1e-6)
