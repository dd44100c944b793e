"""Benchmark helpers.alignment against the per-pair reference (tests/reference_alignment.py).

Run (``make bench`` calls the first form)::

    python benchmarks/bench_alignment.py                 # CPU cases 1 and 2, 2 threads
    python benchmarks/bench_alignment.py --skip-large    # case 1 only
    python benchmarks/bench_alignment.py --grid --device cuda      # PRH paper grid on a GPU
    python benchmarks/bench_alignment.py --grid --grid-scale 0.05  # the same, shrunk, on CPU
    python benchmarks/bench_alignment.py --peers-only    # case 4 only (--full-peers: every row)

Cases:
  1. CPU, N = 1024, 12 layers of width 768 vs 13 of width 384, float32. Batched
     ``layer_scores`` against the per-pair reference for every metric. The reference is
     timed on a few pairs and extrapolated to all 156 (the table says how many). Also: the
     max |difference| on those pairs in float32 and float64, and the time of the bare
     Gram products (``x @ x.T`` per layer), which bound any exact method from below.
  2. CPU, N = 20,000, 24 layers of width 1024 vs one 7-wide layer, mutual_knn, run in a
     fresh subprocess so that ``ru_maxrss`` is its own peak memory.
  3. ``--grid``: the PRH paper's 12 language models (454 hidden states) vs 17 vision models
     (352 blocks), N = 1024, mutual_knn on random features, end to end, max per model pair.
  4. The peers table (``benchmarks/peers.py``; needs ``requirements-bench.txt``): faiss exact
     kNN and mutual kNN, ckatorch and rsatoolbox CKA, calibrated-similarity's permutation null,
     one thread each, interleaved, medians, as ratios with the load average; writes
     ``benchmarks/results/peers.json``.

Prints a table and writes ``benchmarks/results/alignment.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))

import reference_alignment as ref  # noqa: E402
from helpers import alignment  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "alignment.json"
# Floors from the issue: batched must beat the per-pair reference by at least this much.
FLOORS = {"mutual_knn": 20.0, "cknna": 20.0, "unbiased_cka": 50.0}

# PRH paper grid: (name, width, layers). Vision: block outputs; language: hidden states.
VISION = [
    ("vit_tiny_augreg", 192, 12), ("vit_small_augreg", 384, 12), ("vit_base_augreg", 768, 12),
    ("vit_large_augreg", 1024, 24), ("vit_base_mae", 768, 12), ("vit_large_mae", 1024, 24),
    ("vit_huge_mae", 1280, 32), ("dinov2_small", 384, 12), ("dinov2_base", 768, 12),
    ("dinov2_large", 1024, 24), ("dinov2_giant", 1536, 40), ("clip_base", 768, 12),
    ("clip_large", 1024, 24), ("clip_huge", 1280, 32), ("clip_base_ft", 768, 12),
    ("clip_large_ft", 1024, 24), ("clip_huge_ft", 1280, 32),
]
LANGUAGE = [
    ("bloomz-560m", 1024, 25), ("bloomz-1b1", 1536, 25), ("bloomz-1b7", 2048, 25),
    ("bloomz-3b", 2560, 31), ("bloomz-7b1", 4096, 31), ("open_llama_3b", 3200, 27),
    ("open_llama_7b", 4096, 33), ("open_llama_13b", 5120, 41), ("llama-7b", 4096, 33),
    ("llama-13b", 5120, 41), ("llama-30b", 6656, 61), ("llama-65b", 8192, 81),
]


def _timed(fn, repeat=1):
    """Best wall time over ``repeat`` runs, and the output of the last run."""
    best = math.inf
    out = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def _related_models(n, shapes, seed, dtype=torch.float32):
    """Random layers sharing a low-dimensional signal, so scores are not all at chance."""
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(n, 64, generator=g, dtype=dtype)
    out = []
    for width, count in shapes:
        for _ in range(count):
            w = torch.randn(64, width, generator=g, dtype=dtype)
            out.append(base @ w + 4.0 * torch.randn(n, width, generator=g, dtype=dtype))
    return out


def case_small(ref_pairs: int, repeat: int) -> list[dict]:
    """Case 1: batched vs per-pair reference at N = 1024."""
    n, k = 1024, 10
    xs = torch.stack(alignment.prepare(_related_models(n, [(768, 12)], seed=1)), dim=1)
    ys = torch.stack(alignment.prepare(_related_models(n, [(384, 13)], seed=2)), dim=1)
    lx, ly = xs.shape[1], ys.shape[1]
    n_pairs = lx * ly
    # Reference pairs spread over the grid (both diagonals-ish), the same for every metric.
    pairs = [(i * lx // ref_pairs, (i * 5 + 3) % ly) for i in range(ref_pairs)]
    gram_floor, _ = _timed(lambda: [xs[:, i].contiguous() @ xs[:, i].contiguous().T
                                    for i in range(lx)]
                           + [ys[:, j].contiguous() @ ys[:, j].contiguous().T for j in range(ly)],
                           repeat)
    rows = []
    for metric in alignment.METRICS:
        # svcca's batched SVDs are slow on a busy CPU: time it once
        t_b, got = _timed(lambda: alignment.layer_scores(xs, ys, metric, topk=k),
                          1 if metric == "svcca" else repeat)
        # sklearn's iterative CCA (tight tolerance, for a precise oracle) is slow: fewer pairs
        m_pairs = pairs[:2] if metric == "svcca" else pairs
        # Every pair has the same shapes, hence the same cost: like best-of-repeat for the
        # batched call, take the fastest pair (the least disturbed by other processes).
        want = torch.full((lx, ly), math.nan, dtype=torch.float64)
        t_pairs, c_pairs = [], []
        for i, j in m_pairs:
            t0, c0 = time.perf_counter(), time.process_time()
            want[i, j] = ref.score(xs[:, i], ys[:, j], metric, k)
            t_pairs.append(time.perf_counter() - t0)
            c_pairs.append(time.process_time() - c0)
        t_ref_pair, c_ref_pair = min(t_pairs), min(c_pairs)
        c0 = time.process_time()
        alignment.layer_scores(xs, ys, metric, topk=k)
        c_b = time.process_time() - c0  # CPU seconds (all threads): less sensitive to contention
        sel = torch.tensor(m_pairs)
        diff32 = (got.double()[sel[:, 0], sel[:, 1]]
                  - want[sel[:, 0], sel[:, 1]]).abs().max().item()
        # float64 check on a 2 x 2 corner of the grid
        x64, y64 = xs[:, :2].double(), ys[:, :2].double()
        got64 = alignment.layer_scores(x64, y64, metric, topk=k, dtype=torch.float64)
        diff64 = (got64 - ref.layer_scores(x64, y64, metric, topk=k)).abs().max().item()
        t_ref_all = t_ref_pair * n_pairs
        row = dict(
            case="1: N=1024, 12x768 vs 13x384", metric=metric, batched_s=t_b,
            ref_s_per_pair=t_ref_pair, ref_pairs_timed=len(m_pairs),
            ref_s_all_pairs_extrapolated=t_ref_all,
            speedup=t_ref_all / t_b, floor=FLOORS.get(metric), gram_floor_s=gram_floor,
            x_gram_floor=t_b / gram_floor, batched_cpu_s=c_b, ref_cpu_s_per_pair=c_ref_pair,
            speedup_cpu_time=c_ref_pair * n_pairs / c_b, max_abs_diff_f32=diff32,
            max_abs_diff_f64=diff64,
        )
        rows.append(row)
        print(f"  {metric:18s} batched {t_b:7.3f} s | ref {t_ref_pair:6.3f} s/pair x {n_pairs} "
              f"= {t_ref_all:7.1f} s | {row['speedup']:7.1f}x | {t_b / gram_floor:5.2f}x Gram "
              f"floor | CPU-time speedup {row['speedup_cpu_time']:6.1f}x | diff f32 {diff32:.1e} "
              f"f64 {diff64:.1e}", flush=True)
    return rows


def _large_child() -> None:
    """Case 2 body, run in a fresh subprocess; prints one JSON line."""
    torch.set_num_threads(int(sys.argv[sys.argv.index("--threads") + 1]))
    n = 20_000
    g = torch.Generator().manual_seed(0)
    t0 = time.perf_counter()
    raw = [torch.randn(n, 1024, generator=g) for _ in range(24)]
    xs = alignment.prepare(raw)
    del raw
    y = alignment.prepare(torch.randn(n, 7, generator=g))
    t_prep = time.perf_counter() - t0
    t0 = time.perf_counter()
    s = alignment.layer_scores(xs, y, "mutual_knn", topk=10, progress=True)
    t_knn = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB
    print(json.dumps(dict(generate_and_prepare_s=t_prep, mutual_knn_s=t_knn,
                          peak_rss_gib=peak / 2**30,
                          shape=list(s.shape), mean_score=s.mean().item())))


def case_large(threads: int) -> dict:
    cmd = [sys.executable, __file__, "--_large-child", "--threads", str(threads)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    res = json.loads(out.strip().splitlines()[-1])
    res["case"] = "2: N=20000, 24x1024 vs 1x7, mutual_knn"
    print(f"  mutual_knn {res['mutual_knn_s']:.1f} s (+ {res['generate_and_prepare_s']:.1f} s to "
          f"generate and prepare), peak RSS {res['peak_rss_gib']:.2f} GiB (limit 6)", flush=True)
    return res


def case_grid(scale: float, device: str) -> dict:
    """Case 3: the paper grid for mutual_knn, end to end on random features."""
    n = max(32, round(1024 * scale))

    def shrink(models):
        return [(name, max(8, round(w * scale)), max(1, round(nl * scale)))
                for name, w, nl in models]

    vis, lang = shrink(VISION), shrink(LANGUAGE)
    g = torch.Generator(device=device).manual_seed(0)
    t0 = time.perf_counter()
    lang_layers = [torch.randn(n, w, generator=g, device=device) for _, w, nl in lang
                   for _ in range(nl)]
    vis_layers = [torch.randn(n, w, generator=g, device=device) for _, w, nl in vis
                  for _ in range(nl)]
    lang_layers = alignment.prepare(lang_layers)  # one threshold for all: random data, same scale
    vis_layers = alignment.prepare(vis_layers)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t_gen = time.perf_counter() - t0
    t0 = time.perf_counter()
    scores = alignment.layer_scores(lang_layers, vis_layers, "mutual_knn", topk=10, device=device)
    bounds = lambda models: torch.cumsum(  # noqa: E731
        torch.tensor([0] + [nl for *_, nl in models]), 0).tolist()
    lb, vb = bounds(lang), bounds(vis)
    table = torch.stack([torch.stack([scores[lb[i]:lb[i + 1], vb[j]:vb[j + 1]].max()
                                      for j in range(len(vis))]) for i in range(len(lang))])
    t_score = time.perf_counter() - t0
    res = dict(case=f"3: paper grid x{scale}", device=device, n=n,
               language_layers=len(lang_layers),
               vision_layers=len(vis_layers), layer_pairs=len(lang_layers) * len(vis_layers),
               generate_and_prepare_s=t_gen, mutual_knn_all_pairs_s=t_score,
               model_table_shape=list(table.shape), mean_best_score=table.mean().item())
    print(f"  {res['language_layers']} x {res['vision_layers']} layers at N = {n} on {device}: "
          f"{t_score:.2f} s for all {res['layer_pairs']} layer pairs (+ {t_gen:.2f} s random "
          "features)", flush=True)
    return res


def main() -> None:
    if "--_large-child" in sys.argv:
        return _large_child()
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    p.add_argument("--ref-pairs", type=int, default=6,
                   help="reference layer pairs timed per metric")
    p.add_argument("--repeat", type=int, default=3, help="batched timings: best of this many")
    p.add_argument("--skip-large", action="store_true", help="skip case 2 (N = 20,000)")
    p.add_argument("--skip-small", action="store_true", help="skip case 1")
    p.add_argument("--grid", action="store_true", help="run case 3, the PRH paper grid")
    p.add_argument("--skip-peers", action="store_true", help="skip case 4, the peers table")
    p.add_argument("--peers-only", action="store_true", help="run case 4 only")
    p.add_argument("--full-peers", action="store_true",
                   help="case 4 with every row (N = 20,000 x 6 layers of widths 384 and 1024 too)")
    p.add_argument("--grid-scale", type=float, default=1.0,
                   help="shrink N, layers and widths (CPU tests)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                   help="case 3 device")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    with open("/proc/loadavg") as f:
        load = f.read().split()[:3]
    meta = dict(torch=torch.__version__, machine=platform.machine(), threads=args.threads,
                loadavg_at_start=load, cpu_count=torch.get_num_threads())
    print(f"torch {torch.__version__}, {args.threads} threads, load average at start "
          f"{' '.join(load)}")
    results = dict(meta=meta)
    if args.grid:
        print("case 3: PRH paper grid, mutual_knn")
        results["grid"] = case_grid(args.grid_scale, args.device)
    elif args.peers_only:
        pass
    else:
        if not args.skip_small:
            print("case 1: CPU, N = 1024, 12 x 768 vs 13 x 384, float32")
            results["small"] = case_small(args.ref_pairs, args.repeat)
        if not args.skip_large:
            print("case 2: CPU, N = 20,000, 24 x 1024 vs 1 x 7, mutual_knn (fresh subprocess)")
            results["large"] = case_large(args.threads)
    if not args.grid and not args.skip_peers:
        import peers  # benchmarks/peers.py, next to this file

        print("case 4: peers, one thread each (ratios are theirs / ours)")
        cases = peers.full_cases() if args.full_peers else None
        results["peers"] = peers.run(RESULTS.parent / "peers.json", cases,
                                     peers.WIDTHS if args.full_peers else (7, 1024))
        torch.set_num_threads(args.threads)
    with open("/proc/loadavg") as f:
        meta["loadavg_at_end"] = f.read().split()[:3]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
