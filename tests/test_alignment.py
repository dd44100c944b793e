"""Tests for helpers.alignment against the per-pair reference in tests/reference_alignment.py."""

from __future__ import annotations

import doctest

import pytest
import torch

import reference_alignment as ref
from helpers import _kernels, _knn, alignment
from helpers.alignment import METRICS, best, layer_scores, permutation_null, prepare, score

TOL = {torch.float32: 1e-5, torch.float64: 1e-9}


def _models(n=48, dtype=torch.float32, seed=0):
    """Two related models: x has 2 layers of width 24, y is a list of 3 layers of other widths."""
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(n, 12, generator=g, dtype=dtype)
    xs = torch.stack(
        [base @ torch.randn(12, 24, generator=g, dtype=dtype)
         + s * torch.randn(n, 24, generator=g, dtype=dtype) for s in (0.5, 2.0)], dim=1)
    ys = [base @ torch.randn(12, d, generator=g, dtype=dtype)
          + s * torch.randn(n, d, generator=g, dtype=dtype)
          for d, s in ((16, 0.3), (30, 1.0), (20, 3.0))]
    return prepare(xs), prepare(ys)


@pytest.fixture(scope="module")
def models32():
    return _models()


@pytest.fixture(scope="module")
def models64():
    return _models(dtype=torch.float64)


# --------------------------------------------------------------------------- exactness


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("metric", METRICS)
def test_layer_scores_match_per_pair_reference(metric, dtype, models32, models64):
    xs, ys = models32 if dtype == torch.float32 else models64
    got = layer_scores(xs, ys, metric, topk=6, dtype=dtype)
    want = ref.layer_scores(xs, ys, metric, topk=6)
    assert got.shape == (2, 3) and got.dtype == dtype
    torch.testing.assert_close(got.double(), want, atol=TOL[dtype], rtol=0)
    # and in the other orientation (the side with fewer layers changes)
    got_t = layer_scores(ys, xs, metric, topk=6, dtype=dtype)
    want_t = ref.layer_scores(ys, xs, metric, topk=6)
    torch.testing.assert_close(got_t.double(), want_t, atol=TOL[dtype], rtol=0)


@pytest.mark.parametrize("metric", METRICS)
def test_score_equals_layer_scores_entry(metric, models64):
    xs, ys = models64
    table = layer_scores(xs, ys, metric, topk=5, dtype=torch.float64)
    assert score(xs[:, 1], ys[2], metric, topk=5) == pytest.approx(table[1, 2].item(), abs=1e-12)


@pytest.mark.parametrize("metric",
                         ["mutual_knn", "cycle_knn", "lcs_knn", "edit_distance_knn", "cknna"])
def test_row_chunked_paths_agree(metric, models64, monkeypatch):
    """Force the N = 20,000 code path (row-chunked search and buffers) at small N."""
    xs, ys = models64
    whole = layer_scores(xs, ys, metric, topk=5, dtype=torch.float64)
    monkeypatch.setattr(_knn, "CHUNK_BYTES", 7 * 48 * 8)
    monkeypatch.setattr(_knn, "FULL_GRAM_BYTES", 0)
    chunked = layer_scores(xs, ys, metric, topk=5, dtype=torch.float64)
    torch.testing.assert_close(chunked, whole, atol=1e-12, rtol=0)


@pytest.mark.parametrize("metric", ["cka", "unbiased_cka"])
def test_kernel_block_triangle_with_shared_offset(metric):
    """Uneven Gram row blocks (N = 777 gives 3) and features dominated by a common offset.

    Every raw Gram entry is then close to 1 while the centred signal is small: a float32
    formula that subtracted uncentred sums would miss the float64 reference by far more
    than 1e-5. The shuffled-pairing path rebuilds the same blocks.
    """
    assert len(_kernels.block_edges(777)) - 1 == 3
    g = torch.Generator().manual_seed(3)
    base = torch.randn(777, 8, generator=g, dtype=torch.float64)
    offset = 6.0 * torch.randn(1, 1, 40, generator=g, dtype=torch.float64)
    xs = prepare(offset + torch.stack([base @ torch.randn(8, 40, generator=g, dtype=torch.float64)
                                       + torch.randn(777, 40, generator=g, dtype=torch.float64)
                                       for _ in range(2)], dim=1))
    ys = prepare(offset[:, 0, :30] + base @ torch.randn(8, 30, generator=g, dtype=torch.float64))
    want = ref.layer_scores(xs, ys[:, None], metric)
    assert float((xs[:, 0] @ xs[:, 0].T).mean()) > 0.8  # the offset dominates every Gram entry
    for dtype in (torch.float32, torch.float64):
        got = layer_scores(xs.to(dtype), ys.to(dtype), metric, dtype=dtype)
        torch.testing.assert_close(got.double(), want, atol=TOL[dtype], rtol=0)
    r = permutation_null(xs, ys, metric, n_perm=1, seed=5, reduce=None, dtype=torch.float64)
    perm = torch.randperm(777, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(r.null[0], layer_scores(xs, ys[perm], metric, dtype=torch.float64),
                               atol=1e-12, rtol=0)


def test_block_gram_equals_matmul():
    x = torch.randn(3, 1000, 9, dtype=torch.float64)
    torch.testing.assert_close(_knn.gram(x), x @ x.mT)


def test_inputs_not_modified(models32):
    xs, ys = models32
    xs0, ys0 = xs.clone(), [y.clone() for y in ys]
    for metric in ("mutual_knn", "unbiased_cka", "cknna"):
        layer_scores(xs, ys, metric, topk=5)
    assert torch.equal(xs, xs0) and all(torch.equal(a, b) for a, b in zip(ys, ys0))


# --------------------------------------------------------------------------- invariances


@pytest.mark.parametrize("metric", METRICS)
def test_identical_and_rotated_reps_score_one(metric):
    g = torch.Generator().manual_seed(3)
    x = prepare(torch.randn(80, 20, generator=g, dtype=torch.float64))
    q, _ = torch.linalg.qr(torch.randn(20, 20, generator=g, dtype=torch.float64))
    # A rotation keeps inner products, so neighbours and Grams; svcca z-scores each feature,
    # so it is invariant to per-feature scaling and reordering instead.
    other = x @ q if metric != "svcca" else 3.0 * x[:, torch.randperm(20, generator=g)]
    for y in (x, other):
        # the reference's +1e-6 in the denominator costs unbiased CKA ~2e-5 here
        assert score(x, y, metric, topk=8) == pytest.approx(1.0, abs=1e-4)


def test_independent_reps_near_chance():
    g = torch.Generator().manual_seed(4)
    n, k = 400, 10
    x = prepare(torch.randn(n, 32, generator=g))
    y = prepare(torch.randn(n, 32, generator=g))
    s = score(x, y, "mutual_knn", topk=k)
    assert abs(s - k / (n - 1)) < 0.015  # chance 0.025; sd of the mean is ~0.003
    assert abs(score(x, y, "unbiased_cka")) < 0.05


def test_cknna_with_all_neighbours_is_unbiased_cka(models64):
    xs, ys = models64
    n = xs.shape[0]
    got = layer_scores(xs, ys, "cknna", topk=n - 1, dtype=torch.float64)
    torch.testing.assert_close(got, layer_scores(xs, ys, "unbiased_cka", dtype=torch.float64),
                               atol=1e-9, rtol=0)


# --------------------------------------------------------------------------- permutation null


@pytest.mark.parametrize("metric", METRICS)
def test_null_draws_equal_scores_of_shuffled_inputs(metric, models64):
    """The cached relabelling must give what re-scoring the shuffled features gives."""
    xs, ys = models64
    r = permutation_null(xs, ys, metric, topk=5, n_perm=2, seed=7, reduce=None,
                         dtype=torch.float64)
    gen = torch.Generator().manual_seed(7)
    for draw in r.null:
        perm = torch.randperm(xs.shape[0], generator=gen)
        want = layer_scores(xs, [y[perm] for y in ys], metric, topk=5, dtype=torch.float64)
        torch.testing.assert_close(draw, want, atol=1e-9, rtol=0)
    torch.testing.assert_close(r.observed,
                               layer_scores(xs, ys, metric, topk=5, dtype=torch.float64))


def test_null_independent_and_identical():
    g = torch.Generator().manual_seed(5)
    x = prepare(torch.randn(200, 3, 16, generator=g))
    y = prepare(torch.randn(200, 2, 16, generator=g))
    r = permutation_null(x, y, "mutual_knn", topk=10, n_perm=50, seed=0)
    assert r.p_value > 0.01 and abs(r.corrected) < 0.03
    assert r.null.shape == (50,) and r.observed == best(layer_scores(x, y))[0]
    same = permutation_null(x[:, 0], x[:, 0], "mutual_knn", topk=10, n_perm=30)
    assert same.observed == 1.0 and same.p_value == pytest.approx(1 / 31) and same.corrected == 1.0
    assert same.z > 10


def test_null_is_seeded_and_reduce_none_shapes():
    g = torch.Generator().manual_seed(6)
    x = prepare(torch.randn(60, 2, 8, generator=g))
    y = prepare(torch.randn(60, 3, 8, generator=g))
    a = permutation_null(x, y, "cknna", topk=5, n_perm=4, seed=1, reduce=None)
    b = permutation_null(x, y, "cknna", topk=5, n_perm=4, seed=1, reduce=None)
    c = permutation_null(x, y, "cknna", topk=5, n_perm=4, seed=2, reduce=None)
    assert torch.equal(a.null, b.null) and not torch.equal(a.null, c.null)
    assert a.null.shape == (4, 2, 3) and a.p_value.shape == a.z.shape == (2, 3)
    assert torch.all((a.p_value > 0) & (a.p_value <= 1))


# --------------------------------------------------------------------------- prepare and best


@pytest.mark.parametrize("shape", [(30, 4, 10), (30, 10)])
def test_prepare_matches_direct_computation(shape):
    feats = torch.randn(*shape) * torch.rand(*shape) ** 3 * 10  # heavy-tailed
    before = feats.clone()
    out = prepare(feats)
    torch.testing.assert_close(out, ref.prepare(feats), atol=1e-6, rtol=1e-5)
    assert torch.equal(feats, before)
    torch.testing.assert_close(out.norm(dim=-1), torch.ones(shape[:-1]))
    # q = 1 skips clamping: only the L2 normalisation is left
    torch.testing.assert_close(prepare(feats, q=1.0), torch.nn.functional.normalize(feats, dim=-1))


def test_prepare_list_uses_one_threshold_over_the_concatenation():
    g = torch.Generator().manual_seed(8)
    layers = [torch.randn(25, d, generator=g, dtype=torch.float64) ** 3 for d in (5, 40)]
    out = prepare(layers, q=0.9)
    assert [o.dtype for o in out] == [torch.float64] * 2
    for got, want in zip(out, ref.prepare([t.float() for t in layers], q=0.9)):
        torch.testing.assert_close(got.float(), want, atol=1e-6, rtol=1e-5)


def test_best_handles_non_positive_and_nan():
    assert best(torch.tensor([[-3.0, -1.0], [-2.0, -5.0]])) == (-1.0, (0, 1))
    assert best(torch.tensor([[float("nan"), 0.2], [0.7, 0.1]])) == (pytest.approx(0.7), (1, 0))


# --------------------------------------------------------------------------- errors


def test_errors_name_the_problem():
    x = prepare(torch.randn(20, 8))
    with pytest.raises(ValueError, match="same number of samples N"):
        layer_scores(x, prepare(torch.randn(21, 8)))
    with pytest.raises(ValueError, match=r"topk must be < N = 20"):
        score(x, x, "mutual_knn", topk=20)
    with pytest.raises(ValueError, match="topk must be >= 1"):
        score(x, x, "mutual_knn", topk=0)
    with pytest.raises(ValueError, match="topk must be an integer"):
        score(x, x, "mutual_knn", topk=2.5)
    with pytest.raises(ValueError, match="cknna needs topk >= 2"):
        score(x, x, "cknna", topk=1)
    bad = x.clone()
    bad[3, 2] = float("nan")
    with pytest.raises(ValueError, match="NaN or inf"):
        score(bad, x)
    bad[3, 2] = float("inf")
    with pytest.raises(ValueError, match="NaN or inf"):
        layer_scores(x, bad)
    with pytest.raises(ValueError, match="is empty"):
        layer_scores(torch.zeros(0, 8), torch.zeros(0, 8))
    with pytest.raises(ValueError, match="is empty"):
        prepare(torch.zeros(5, 0))
    with pytest.raises(ValueError, match="empty list"):
        prepare([])
    with pytest.raises(ValueError, match="unknown metric 'knn'.*mutual_knn, cycle_knn"):
        score(x, x, "knn")
    with pytest.raises(ValueError, match=r"must have shape \[N, D\] or \[N, L, D\]"):
        layer_scores(torch.randn(2, 3, 4, 5), x)
    with pytest.raises(ValueError, match=r"x must have shape \[N, D\]"):
        score(torch.randn(20, 2, 8), x)
    with pytest.raises(ValueError, match=r"feats\[1\] must have shape \[N, D\]"):
        prepare([torch.randn(5, 3), torch.randn(5, 3, 2)])
    with pytest.raises(ValueError, match="same number of samples N; layer 0 has 5, layer 1 has 6"):
        prepare([torch.randn(5, 3), torch.randn(6, 3)])
    with pytest.raises(ValueError, match="must be a torch.Tensor"):
        prepare("features")
    with pytest.raises(ValueError, match="must hold real numbers"):
        prepare(torch.ones(4, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"q must be a number in \(0, 1\]"):
        prepare(x, q=1.5)
    with pytest.raises(ValueError, match="needs at least N = 4 samples"):
        score(x[:3], x[:3], "unbiased_cka")
    with pytest.raises(ValueError, match="cca_dim <= 7"):
        score(x, x[:, :7], "svcca")
    with pytest.raises(ValueError, match="cca_dim must be a positive integer"):
        score(x, x, "svcca", cca_dim=0)
    with pytest.raises(ValueError, match="dtype must be torch.float32 or torch.float64"):
        layer_scores(x, x, dtype=torch.float16)
    with pytest.raises(ValueError, match="n_perm must be a positive integer"):
        permutation_null(x, x, n_perm=0)
    with pytest.raises(ValueError, match="reduce must be 'max' or None"):
        permutation_null(x, x, n_perm=2, reduce="mean")
    with pytest.raises(ValueError, match=r"scores must be a non-empty \[Lx, Ly\] tensor"):
        best(torch.tensor([1.0, 2.0]))
    with pytest.raises(ValueError, match="all NaN"):
        best(torch.full((2, 2), float("nan")))


# --------------------------------------------------------------------------- docs and devices


def test_docstring_examples_run():
    result = doctest.testmod(alignment, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 5 and result.failed == 0


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("metric", METRICS)
def test_cuda_matches_cpu(metric, models32):
    xs, ys = models32
    cpu = layer_scores(xs, ys, metric, topk=5)
    gpu = layer_scores(xs, ys, metric, topk=5, device="cuda")
    torch.testing.assert_close(gpu, cpu, atol=1e-5, rtol=0)
    r = permutation_null(xs, ys, metric, topk=5, n_perm=3, device="cuda", reduce=None)
    r_cpu = permutation_null(xs, ys, metric, topk=5, n_perm=3, reduce=None)
    torch.testing.assert_close(r.null, r_cpu.null, atol=1e-5, rtol=0)


def test_benchmark_grid_runs_at_tiny_scale():
    """The paper-grid benchmark (GPU-sized) must at least run end to end when shrunk."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_alignment.py"
    spec = importlib.util.spec_from_file_location("bench_alignment", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    res = bench.case_grid(0.03, "cpu")
    assert res["model_table_shape"] == [12, 17] and 0 < res["mean_best_score"] <= 1


# --------------------------------------------------------------------------- neighbour search


def _rule_knn(x: torch.Tensor, k: int) -> torch.Tensor:
    """Reference lists: float64 inner products, descending, ties to the lower index."""
    s = (x.double() @ x.double().T).fill_diagonal_(float("-inf"))
    return s.argsort(dim=1, descending=True, stable=True)[:, :k]


def _force(monkeypatch, kind: str, n: int, rows: int = 40, select: str = "scan") -> None:
    """Make :func:`_knn.knn` take strategy ``kind`` at small ``N``, with several panels, and
    the CPU scan or (``select="tournament"``, the GPU selection) the tournament."""
    if select == "tournament":
        monkeypatch.setattr(_knn, "_SCAN", False)
    else:
        assert _knn._scan_kernel(), "numba (a robosuite dependency) should be installed"
    if kind == "gram":
        return
    monkeypatch.setattr(_knn, "FULL_GRAM_BYTES", 0)
    monkeypatch.setattr(_knn, "PANEL_BYTES", rows * n * 8)
    monkeypatch.setattr(_knn, "strategy", lambda *a, **kw: kind)


@pytest.mark.parametrize("select", ["scan", "tournament"])
@pytest.mark.parametrize("kind", ["gram", "tri", "panel"])
@pytest.mark.parametrize("width", [3, 20, 300])
def test_knn_strategies_give_the_reference_lists(kind, width, select, monkeypatch):
    """Continuous float64 data, N not a multiple of the block (8, 16) or group (8) sizes."""
    n = 997
    x = torch.randn(n, width, generator=torch.Generator().manual_seed(width), dtype=torch.float64)
    want = {k: _rule_knn(x, k) for k in (1, 10, 40)}
    _force(monkeypatch, kind, n, select=select)
    for k, lists in want.items():
        idx, vals = _knn.knn(x, k)
        assert torch.equal(idx, lists), (kind, k)
        torch.testing.assert_close(vals, (x @ x.T).gather(1, lists), atol=1e-12, rtol=0)


@pytest.mark.parametrize("select", ["scan", "tournament"])
@pytest.mark.parametrize("kind", ["gram", "tri", "panel"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_knn_ties_go_to_the_lower_index(kind, dtype, select, monkeypatch):
    """Few distinct values: integer features have exact (so heavily tied) inner products."""
    n = 1601  # > BASE * SPLIT, so the tournament has two levels of chunk maxima
    g = torch.Generator().manual_seed(11)
    x = torch.randint(-2, 3, (n, 3), generator=g).to(dtype)
    x[:50] = x[50:100]  # duplicate rows too
    assert len(torch.unique(x, dim=0)) <= 125
    want = _rule_knn(x, 10)
    _force(monkeypatch, kind, n, rows=24, select=select)
    idx, _ = _knn.knn(x, 10)
    assert torch.equal(idx, want)


def test_knn_batches_layers_like_single_calls(monkeypatch):
    x = torch.randn(3, 500, 16, generator=torch.Generator().manual_seed(2))
    idx, vals = _knn.knn(x, 7)
    for g in range(3):
        assert torch.equal(idx[g], _knn.knn(x[g], 7)[0])
    _force(monkeypatch, "tri", 500)
    assert torch.equal(_knn.knn(x, 7)[0], idx)


@pytest.mark.parametrize("kind", ["tri", "panel"])
@pytest.mark.parametrize("metric", ["mutual_knn", "cycle_knn", "lcs_knn", "cknna"])
def test_layer_scores_match_reference_on_every_strategy(kind, metric, models64, monkeypatch):
    xs, ys = models64
    want = ref.layer_scores(xs, ys, metric, topk=6)
    _force(monkeypatch, kind, xs.shape[0], rows=16)
    got = layer_scores(xs, ys, metric, topk=6, dtype=torch.float64)
    torch.testing.assert_close(got, want, atol=TOL[torch.float64], rtol=0)


def test_strategy_by_shape_and_device():
    assert _knn.strategy(1024, 7) == "gram" and _knn.strategy(1024, 1024) == "gram"
    assert _knn.strategy(4096, 7) == "panel" and _knn.strategy(20000, 7) == "panel"  # narrow
    assert _knn.strategy(4096, 64) == "tri" and _knn.strategy(20000, 1024) == "tri"
    assert _knn.strategy(4096, 64, device="cuda") == "gram"  # a GPU keeps larger Grams
    assert _knn.strategy(20000, 7, device="cuda") == "panel"


def test_knn_working_set_is_capped(monkeypatch):
    """No product block of the large-N search exceeds ``PANEL_BYTES`` (plus one row group)."""
    n, k = 3000, 10
    x = torch.randn(n, 8, generator=torch.Generator().manual_seed(4))
    monkeypatch.setattr(_knn, "FULL_GRAM_BYTES", 0)
    monkeypatch.setattr(_knn, "PANEL_BYTES", 100 * n * 4)
    sizes = []
    real_mm = torch.mm

    def spy(a, b, *, out=None):
        sizes.append(a.shape[0] * b.shape[1] * a.element_size())
        return real_mm(a, b, out=out)

    monkeypatch.setattr(torch, "mm", spy)
    idx, _ = _knn.knn(x, k)
    assert len(sizes) > 10 and max(sizes) <= 104 * n * 4
    monkeypatch.setattr(torch, "mm", real_mm)
    assert torch.equal(idx, _rule_knn(x, k))


def test_peers_benchmark_agrees_with_its_peers_at_tiny_scale():
    """The peers table computes the same numbers as the libraries it times (bench-only deps)."""
    for name in ("faiss", "ckatorch", "rsatoolbox", "calibrated_similarity", "threadpoolctl"):
        pytest.importorskip(name, reason="bench-only: pip install -r requirements-bench.txt")
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "peers.py"
    spec = importlib.util.spec_from_file_location("peers", path)
    peers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(peers)
    with peers.one_thread():
        rows = list(peers.knn_rows([(300, 7, 1), (300, 40, 2)], repeats={300: 1}))
        assert [r["max_abs_score_diff"] < 1e-6 for r in rows] == [True, True]
        assert "knn_ratio" in rows[0] and rows[1]["layers_per_side"] == 2
        assert peers.null_row(n=120, n_perm=4, shapes=((16, 2), (8, 2)))["same_numbers"]
        cka = peers.cka_rows(n=64, shapes=((16, 2), (8, 2)), repeat=1)
        assert [r["max_abs_diff"] < 1e-6 for r in cka] == [True, True]
