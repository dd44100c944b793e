"""The peers table (issue 17): ``helpers.alignment`` side by side with other libraries.

Everything runs in one process with one thread per library (``torch.set_num_threads(1)``,
``faiss.omp_set_num_threads(1)``, and ``threadpoolctl`` for numpy's BLAS), and every comparison
is interleaved (ours, theirs, ours, theirs, ...) so that both see the same machine load; the
table reports medians as ratios (theirs / ours, > 1 means we are faster), with the load
average (``os.getloadavg``) at the start and end of each row. Peak memory at N = 20,000 is
measured in fresh subprocesses (``VmHWM`` after a reset, minus ``VmRSS`` before the call).

Peers (``requirements-bench.txt``):

* **faiss** ``IndexFlatIP`` (exact inner-product search, the same kNN definition: ``k + 1``
  neighbours, self dropped). "faiss mutual kNN" is faiss's lists for every layer, then the
  same overlap count as ours (:func:`helpers._knn.mutual_knn_counts`), so the comparison is
  the neighbour search plus everything around it.
* **ckatorch** ``cka_base`` (linear, biased; float64, one call per layer pair) and
  **rsatoolbox** (Euclidean RDMs, then ``compare(..., method="cosine_cov")``, which equals
  linear CKA) against ``layer_scores(..., "cka", dtype=float64)``.
* **calibrated-similarity** ``calibrate_layers(..., agg="max")`` given our per-pair score
  (:func:`helpers.alignment.score`) and the same permutations, against
  :func:`helpers.alignment.permutation_null`.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from helpers import _knn, alignment  # noqa: E402

K = 10
SIZES = (1024, 4096, 20000)
WIDTHS = (7, 64, 384, 1024)
LAYERS = (1, 6)
REPEATS = {1024: 5, 4096: 3, 20000: 1}  # interleaved pairs of runs; N = 20,000 kept short


@contextmanager
def one_thread():
    """One thread for torch, faiss and any BLAS/OpenMP pool numpy or faiss loaded."""
    import faiss
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    faiss.omp_set_num_threads(1)
    with threadpool_limits(limits=1):
        yield
    torch.set_num_threads(before)


def load() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def interleaved(fns: dict, repeat: int, cpu: dict | None = None) -> dict[str, float]:
    """Median wall time of each function, run in turn ``repeat`` times. With ``cpu`` given,
    it also receives the median process CPU time of each: with one thread, that is the work
    done, much less sensitive than wall time to other processes sharing the cores."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    cpus: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            t0, c0 = time.perf_counter(), time.process_time()
            fn()
            times[name].append(time.perf_counter() - t0)
            cpus[name].append(time.process_time() - c0)
    if cpu is not None:
        cpu.update({name: statistics.median(ts) for name, ts in cpus.items()})
    return {name: statistics.median(ts) for name, ts in times.items()}


def layers(n: int, width: int, count: int, seed: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [F.normalize(torch.randn(n, width, generator=g), dim=1) for _ in range(count)]


def faiss_knn(x: torch.Tensor, k: int) -> torch.Tensor:
    """``[N, k]`` neighbour lists from faiss ``IndexFlatIP`` (``k + 1`` found, self dropped)."""
    import faiss

    xn = x.contiguous().numpy()
    index = faiss.IndexFlatIP(xn.shape[1])
    index.add(xn)
    _, found = index.search(xn, k + 1)
    found = torch.from_numpy(found)
    is_self = found == torch.arange(x.shape[0]).unsqueeze(1)
    # Drop self where faiss returned it, else the last entry (self tied outside the list).
    key = torch.arange(k + 1).expand_as(found) + is_self.long() * (k + 1)
    keep = key.argsort(dim=1)[:, :k].sort(dim=1).values
    return found.gather(1, keep)


def faiss_mutual_knn(xs: list[torch.Tensor], ys: list[torch.Tensor], k: int) -> torch.Tensor:
    n = xs[0].shape[0]
    idx_x = torch.stack([faiss_knn(x, k) for x in xs])
    idx_y = torch.stack([faiss_knn(y, k) for y in ys])
    return _knn.mutual_knn_counts(idx_x, idx_y).double() / (n * k)


def ours_mutual_knn(xs, ys, k):
    return alignment.layer_scores(xs, ys, "mutual_knn", topk=k)


def default_cases() -> list[tuple[int, int, int]]:
    """``(N, width, layers per side)`` of the issue's table, cheapest first. At N = 20,000 the
    6-layer rows of widths 384 and 1024 (12 searches of up to 0.8 TFLOP each) are left to
    ``--full`` runs: on a 2-core machine shared with other work they take most of an hour."""
    cases = [(n, w, c) for n in (1024, 4096) for w in WIDTHS for c in LAYERS]
    cases += [(20000, w, 1) for w in WIDTHS] + [(20000, w, 6) for w in (7, 64)]
    return cases


def full_cases() -> list[tuple[int, int, int]]:
    return [(n, w, c) for n in SIZES for w in WIDTHS for c in LAYERS]


def knn_rows(cases, repeats=None) -> list[dict]:
    """Mutual kNN (all layer pairs) and, where cheap, single-layer kNN: ours against faiss."""
    repeats = repeats or REPEATS
    for n, width, count in cases:
        if n not in repeats:  # other sizes: as many repeats as the nearest listed size
            repeats = {**repeats, n: repeats[min(repeats, key=lambda m: abs(m - n))]}
        xs, ys = layers(n, width, count, 1), layers(n, width, count, 2)
        if n <= 4096:  # warm both up (allocator, code paths); too costly at N = 20,000
            ours_mutual_knn(xs, ys, K), faiss_mutual_knn(xs, ys, K)
        else:  # at least load the libraries and compiled kernels (numba's selection scan)
            head = [t[:1024] for t in xs[:1]]
            ours_mutual_knn(head, head, K), faiss_mutual_knn(head, head, K)
        start = load()
        c: dict = {}
        t = interleaved({"ours": lambda: ours_mutual_knn(xs, ys, K),
                         "faiss": lambda: faiss_mutual_knn(xs, ys, K)}, repeats[n], c)
        row = dict(n=n, width=width, layers_per_side=count, strategy=_knn.strategy(n, width),
                   ours_s=t["ours"], faiss_s=t["faiss"], ratio=t["faiss"] / t["ours"],
                   ours_cpu_s=c["ours"], faiss_cpu_s=c["faiss"], ratio_cpu=c["faiss"] / c["ours"],
                   repeats=repeats[n], load_start=start)
        row["floor_met"] = row["ratio"] >= 1.0
        row["floor_met_cpu"] = row["ratio_cpu"] >= 1.0
        if n <= 4096:  # same scores (exact search both; ties are measure-zero on random data)
            diff = (ours_mutual_knn(xs, ys, K).double() - faiss_mutual_knn(xs, ys, K)).abs()
            row["max_abs_score_diff"] = float(diff.max())
        if count == 1 and (n <= 4096 or width <= 64):  # the bare search of one layer
            c = {}
            s = interleaved({"ours": lambda: _knn.knn(xs[0], K),
                             "faiss": lambda: faiss_knn(xs[0], K)}, repeats[n], c)
            row["knn_ratio"] = s["faiss"] / s["ours"]
            row["knn_ratio_cpu"] = c["faiss"] / c["ours"]
        row["load_end"] = load()
        print(f"  N={n:6d} width {width:5d} x{count}: mutual kNN {row['ratio']:5.2f}x "
              f"(CPU time {row['ratio_cpu']:5.2f}x)"
              + (f", kNN {row['knn_ratio']:5.2f}x (CPU {row['knn_ratio_cpu']:5.2f}x)"
                 if "knn_ratio" in row else "")
              + f" (faiss / ours; ours {t['ours']:.2f} s, {row['strategy']}), load {start[0]}",
              flush=True)
        yield row
        del xs, ys


def _memory_child(impl: str, n: int, width: int) -> None:
    """Peak extra memory of one mutual kNN call (1 layer per side), printed as JSON."""
    with one_thread():
        x, y = layers(n, width, 1, 1), layers(n, width, 1, 2)
        fn = {"ours": ours_mutual_knn, "faiss": faiss_mutual_knn,
              "ours_knn": lambda a, b, k: _knn.knn(a[0], k),  # the search alone, one layer
              "faiss_knn": lambda a, b, k: faiss_knn(a[0], k)}[impl]
        fn([t[:64] for t in x], [t[:64] for t in y], K)  # load libraries before measuring
        rss = _status("VmRSS")
        Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
        t0 = time.perf_counter()
        fn(x, y, K)
        wall = time.perf_counter() - t0
        peak = _status("VmHWM")
    print(json.dumps(dict(impl=impl, n=n, width=width, extra_mib=(peak - rss) / 2**20,
                          wall_s=wall)))


def _status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def memory_rows(n: int = 20000, widths=(7, 1024)):
    """Peak extra memory of ours and faiss's mutual kNN, each in a fresh subprocess."""
    for width in widths:
        row = dict(n=n, width=width, load_start=load())
        for impl in ("ours", "faiss", "ours_knn", "faiss_knn"):
            cmd = [sys.executable, __file__, "--_memory", impl, str(n), str(width)]
            # A fixed mmap threshold: every large block is mapped on allocation and unmapped on
            # free, so earlier frees leave no resident heap holes that would hide a peak.
            env = {**os.environ, "OMP_NUM_THREADS": "1", "MALLOC_MMAP_THRESHOLD_": "131072"}
            out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
            res = json.loads(out.strip().splitlines()[-1])
            row[f"{impl}_extra_mib"] = res["extra_mib"]
        row["ratio"] = row["ours_extra_mib"] / row["faiss_extra_mib"]
        row["knn_ratio"] = row["ours_knn_extra_mib"] / row["faiss_knn_extra_mib"]
        row["floor_met"] = (row["ours_extra_mib"] <= 1.10 * row["faiss_extra_mib"]
                            and row["ours_knn_extra_mib"] <= 1.10 * row["faiss_knn_extra_mib"])
        print(f"  N={n} width {width:5d}: peak extra memory, mutual kNN: ours "
              f"{row['ours_extra_mib']:.1f} MiB, faiss {row['faiss_extra_mib']:.1f} MiB "
              f"({row['ratio']:.2f}x); one search: ours {row['ours_knn_extra_mib']:.1f} MiB, "
              f"faiss {row['faiss_knn_extra_mib']:.1f} MiB ({row['knn_ratio']:.2f}x)", flush=True)
        yield row


def cka_rows(n: int = 1024, shapes=((768, 6), (384, 6)), repeat: int = 3) -> list[dict]:
    """Linear CKA for all layer pairs: ours (float64) against ckatorch and rsatoolbox."""
    import ckatorch
    import rsatoolbox

    xs = layers(n, shapes[0][0], shapes[0][1], 3)
    ys = layers(n, shapes[1][0], shapes[1][1], 4)

    def ours():
        return alignment.layer_scores(xs, ys, "cka", dtype=torch.float64)

    def cka_torch():
        return torch.tensor([[float(ckatorch.cka_base(a, b, kernel="linear")) for b in ys]
                             for a in xs])

    def rsa():
        def rdms(ls):
            return rsatoolbox.rdm.concat([rsatoolbox.rdm.calc_rdm(
                rsatoolbox.data.Dataset(t.double().numpy()), method="euclidean") for t in ls])
        return torch.from_numpy(rsatoolbox.rdm.compare(rdms(xs), rdms(ys), method="cosine_cov"))

    start = load()
    t = interleaved({"ours": ours, "ckatorch": cka_torch, "rsatoolbox": rsa}, repeat)
    want = ours()
    rows = []
    for peer, fn in (("ckatorch", cka_torch), ("rsatoolbox", rsa)):
        diff = float((fn().double() - want).abs().max())
        rows.append(dict(peer=peer, n=n, pairs=len(xs) * len(ys), ours_s=t["ours"], peer_s=t[peer],
                         ratio=t[peer] / t["ours"], max_abs_diff=diff, repeats=repeat,
                         load_start=start, load_end=load()))
        print(f"  CKA, N={n}, {len(xs)}x{len(ys)} layer pairs: {peer} / ours = "
              f"{t[peer] / t['ours']:.1f}x (ours {t['ours']:.3f} s), |diff| {diff:.0e}",
              flush=True)
    return rows


def null_row(n: int = 1024, n_perm: int = 200, shapes=((768, 4), (384, 4)), seed: int = 0) -> dict:
    """Permutation null of the layer-max mutual kNN: ours against calibrated-similarity."""
    import calibrated_similarity as cs

    g = torch.Generator().manual_seed(5)
    base = torch.randn(n, 32, generator=g)
    xs = alignment.prepare([base @ torch.randn(32, shapes[0][0], generator=g)
                            + 6 * torch.randn(n, shapes[0][0], generator=g)
                            for _ in range(shapes[0][1])])
    ys = alignment.prepare([base @ torch.randn(32, shapes[1][0], generator=g)
                            + 6 * torch.randn(n, shapes[1][0], generator=g)
                            for _ in range(shapes[1][1])])
    out = {}

    def ours():
        out["ours"] = alignment.permutation_null(xs, ys, "mutual_knn", topk=K, n_perm=n_perm,
                                                 seed=seed)

    def theirs():
        gen = torch.Generator().manual_seed(seed)  # the permutations permutation_null draws
        out["theirs"] = cs.calibrate_layers(
            xs, ys, lambda a, b: alignment.score(a, b, "mutual_knn", topk=K), agg="max",
            K=n_perm, alpha=0.05, smax=1.0,
            perm_fn=lambda m, dev: torch.randperm(m, generator=gen))

    start = load()
    times = {"ours": [], "theirs": []}
    for fn, name in ((ours, "ours"), (theirs, "theirs"), (ours, "ours")):  # interleaved
        t0 = time.perf_counter()
        fn()
        times[name].append(time.perf_counter() - t0)
    r, (cal, p, tau) = out["ours"], out["theirs"]
    row = dict(n=n, n_perm=n_perm, layers=f"{shapes[0][1]}x{shapes[1][1]}",
               ours_s=statistics.median(times["ours"]), theirs_s=times["theirs"][0],
               ours_tau=r.critical_value, theirs_tau=float(tau), ours_p=r.p_value,
               theirs_p=float(p), ours_calibrated=r.calibrated, theirs_calibrated=float(cal),
               observed=r.observed, load_start=start, load_end=load())
    row["ratio"] = row["theirs_s"] / row["ours_s"]
    row["floor_met"] = row["ratio"] >= 50.0
    row["same_numbers"] = (abs(row["ours_tau"] - row["theirs_tau"]) < 1e-6
                           and abs(row["ours_p"] - row["theirs_p"]) < 1e-6
                           and abs(row["ours_calibrated"] - row["theirs_calibrated"]) < 1e-6)
    print(f"  null, N={n}, {row['layers']} layers, {n_perm} permutations: calibrated-similarity / "
          f"ours = {row['ratio']:.1f}x (ours {row['ours_s']:.2f} s, theirs {row['theirs_s']:.1f} "
          f"s); same tau/p/calibrated: {row['same_numbers']} (tau {row['ours_tau']:.4f}, "
          f"calibrated {row['ours_calibrated']:.4f})", flush=True)
    return row


def run(out_path: Path | None = None, cases=None, memory_widths=(7, 1024),
        sections=("null", "cka", "knn", "memory")) -> dict:
    """The peers rows of ``sections``, written to ``out_path`` (JSON) after every row."""
    res: dict = dict(date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), load_start=load(),
                     torch=torch.__version__, threads=1)

    def save():
        res["load_end"] = load()
        if out_path is not None:
            out_path.parent.mkdir(parents=True, exist_ok=True)
            out_path.write_text(json.dumps(res, indent=2))

    with one_thread():
        print(f"peers: one thread each, load average {' '.join(map(str, load()))}", flush=True)
        if "null" in sections:
            res["null"] = null_row()
            save()
        if "cka" in sections:
            res["cka"] = cka_rows()
            save()
        for name, rows in (("knn", lambda: knn_rows(cases or default_cases())),
                           ("memory", lambda: memory_rows(widths=memory_widths))):
            if name in sections:
                res[name] = []
                for row in rows():
                    res[name].append(row)
                    save()
    return res


def markdown(res: dict) -> str:
    """The peers tables of one or more merged results, as Markdown (for benchmarks/README.md)."""
    out = []

    def ld(row):
        return f"{row['load_start'][0]:.1f} / {row['load_end'][0]:.1f}"

    if res.get("knn"):
        out += ["| N | width | layers per side | strategy | mutual kNN, faiss / ours: CPU time | "
                "wall | one-layer kNN, faiss / ours: CPU | wall | floor (>= 1, CPU / wall) | "
                "repeats | load (1 min, start / end) |",
                "|---|---|---|---|---|---|---|---|---|---|---|"]

        def met(ok):
            return "met" if ok else "**not met**"

        def num(r, key):
            return f"{r[key]:.2f}" if key in r else "-"

        for r in res["knn"]:
            cpu_floor = met(r["floor_met_cpu"]) if "floor_met_cpu" in r else "-"
            out.append(f"| {r['n']} | {r['width']} | {r['layers_per_side']} | {r['strategy']} | "
                       f"{num(r, 'ratio_cpu')} | {num(r, 'ratio')} | {num(r, 'knn_ratio_cpu')} | "
                       f"{num(r, 'knn_ratio')} | {cpu_floor} / {met(r['ratio'] >= 1.0)} | "
                       f"{r['repeats']} | {ld(r)} |")
        out.append("")
    if res.get("memory"):
        out += ["| N | width | mutual kNN, ours (MiB) | faiss (MiB) | ours / faiss | "
                "one search, ours (MiB) | faiss (MiB) | ours / faiss | floor (<= 1.10) |",
                "|---|---|---|---|---|---|---|---|---|"]
        for r in res["memory"]:
            out.append(f"| {r['n']} | {r['width']} | {r['ours_extra_mib']:.1f} | "
                       f"{r['faiss_extra_mib']:.1f} | {r['ratio']:.2f} | "
                       f"{r['ours_knn_extra_mib']:.1f} | {r['faiss_knn_extra_mib']:.1f} | "
                       f"{r['knn_ratio']:.2f} | {'met' if r['floor_met'] else '**not met**'} |")
        out.append("")
    if res.get("cka"):
        out += ["| peer | N | layer pairs | peer / ours | max abs diff | repeats | load |",
                "|---|---|---|---|---|---|---|"]
        for r in res["cka"]:
            out.append(f"| {r['peer']} | {r['n']} | {r['pairs']} | {r['ratio']:.1f} | "
                       f"{r['max_abs_diff']:.0e} | {r['repeats']} | {ld(r)} |")
        out.append("")
    if res.get("null"):
        r = res["null"]
        out += ["| N | layers | permutations | calibrated-similarity / ours | floor (>= 50) | "
                "same tau, p, calibrated | tau | calibrated | load |",
                "|---|---|---|---|---|---|---|---|---|",
                f"| {r['n']} | {r['layers']} | {r['n_perm']} | {r['ratio']:.1f} | "
                f"{'met' if r['floor_met'] else '**not met**'} | {r['same_numbers']} | "
                f"{r['ours_tau']:.4f} | {r['ours_calibrated']:.4f} | {ld(r)} |", ""]
    return "\n".join(out)


def _main(argv: list[str]) -> None:
    import argparse

    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--full", action="store_true", help="every row of the issue's table")
    p.add_argument("--cases", help="kNN rows as NxWIDTHxLAYERS,... (e.g. 20000x7x1,20000x64x6)")
    p.add_argument("--sections", default="null,cka,knn,memory")
    p.add_argument("--memory-widths", default=None, help="e.g. 7,64 (default 7,1024; --full: all)")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "peers.json")
    p.add_argument("--markdown", nargs="+", type=Path, metavar="JSON",
                   help="print the tables of these results (merged in order) and exit")
    args = p.parse_args(argv)
    if args.markdown:
        merged: dict = {}
        for path in args.markdown:
            for key, val in json.loads(path.read_text()).items():
                if isinstance(val, list) and isinstance(merged.get(key), list):
                    merged[key] = merged[key] + val
                else:
                    merged[key] = val
        print(markdown(merged))
        return
    cases = full_cases() if args.full else None
    if args.cases:
        cases = [tuple(int(v) for v in c.split("x")) for c in args.cases.split(",")]
    widths = (WIDTHS if args.full else (7, 1024)) if args.memory_widths is None else tuple(
        int(w) for w in args.memory_widths.split(","))
    run(args.out, cases, widths, tuple(args.sections.split(",")))


if __name__ == "__main__":
    if "--_memory" in sys.argv:
        i = sys.argv.index("--_memory")
        _memory_child(sys.argv[i + 1], int(sys.argv[i + 2]), int(sys.argv[i + 3]))
    else:
        _main(sys.argv[1:])
