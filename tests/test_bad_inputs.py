"""Bad inputs across the library, tried as a new user would.

For every public function of ``alignment``, ``stats`` and ``cache`` and for the data readers
(``helpers.libero.demos.read_demos``, ``helpers.prh.sources.load_image_folder``,
``helpers.reprpo.genies.load_preference_records``), a table of bad or odd inputs. Each row either
expects an error of a documented type (``ValueError`` unless the row says otherwise) whose message
names the argument (or, for a file reader, the file), or a correct result checked by a predicate.
Anything else counts as worse: a result from garbage (silent), an error of another type or one
that does not name the problem (unclear). ``test_summary`` prints the counts.

The module also holds the tests of the silent-result classes that live in ``alignment`` (overflow
in ``prepare``, rank-deficient SVCCA, a NaN observed score in ``permutation_null``) and of the hub
loaders' offline behaviour.
"""
from __future__ import annotations

import math
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable

import h5py
import numpy as np
import pytest
import torch

from helpers import alignment, cache, stats
from helpers.libero import demos as ld
from helpers.prh import sources
from helpers.reprpo import genies

DemoFileError = getattr(ld, "DemoFileError", ValueError)


@dataclass
class Case:
    """One bad input: ``call(ctx)`` must raise one of ``errors`` naming one of ``names``, or, when
    ``names`` is None, return a value for which ``check`` is true."""

    id: str
    call: Callable[[SimpleNamespace], Any]
    names: tuple[str, ...] | None = None
    errors: tuple[type[BaseException], ...] = (ValueError,)
    check: Callable[[Any], bool] | None = None


def err(id, call, *names, errors=(ValueError,)):
    return Case(id, call, names, errors)


def ok(id, call, check):
    return Case(id, call, None, (), check)


def _env(name: str, value: str | None, fn: Callable[[], Any]) -> Any:
    old = os.environ.get(name)
    try:
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
        return fn()
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


# --------------------------------------------------------------------------- inputs
G = torch.Generator().manual_seed(0)
X = alignment.prepare(torch.randn(40, 8, generator=G))
Y = alignment.prepare(torch.randn(40, 6, generator=G))
X3 = alignment.prepare(torch.randn(40, 3, 8, generator=G))
WITH_NAN = X.clone()
WITH_NAN[3, 2] = math.nan
WITH_INF = X.clone()
WITH_INF[0, 0] = math.inf
RANK2 = torch.randn(40, 2, generator=G) @ torch.randn(2, 8, generator=G)
VALS = np.arange(20.0)
VALS_NAN = VALS.copy()
VALS_NAN[4] = np.nan


def _nan_observed(metric: str) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Inputs whose observed score is NaN (found by search): unbiased CKA at N=5, cknna at N=4."""
    n, d, seed = (5, 1, 1) if metric == "unbiased_cka" else (4, 8, 9)
    g = torch.Generator().manual_seed(seed)
    return (alignment.prepare(torch.randn(n, d, generator=g), q=1.0),
            alignment.prepare(torch.randn(n, d, generator=g), q=1.0), 2)


def _unit_rows(t) -> bool:
    return bool(torch.isfinite(t).all()) and torch.allclose(t.double().norm(dim=-1),
                                                            torch.ones(1, dtype=torch.float64),
                                                           atol=1e-5)


def _null(metric, **kw):
    x, y, k = _nan_observed(metric)
    return alignment.permutation_null(x, y, metric, topk=k, n_perm=9, **kw)


ALIGNMENT = [
    # prepare
    err("prepare: feats is a str", lambda c: alignment.prepare("abc"), "feats"),
    err("prepare: feats is None", lambda c: alignment.prepare(None), "feats"),
    err("prepare: empty list", lambda c: alignment.prepare([]), "feats"),
    err("prepare: N = 0", lambda c: alignment.prepare(torch.randn(0, 4)), "feats"),
    err("prepare: D = 0", lambda c: alignment.prepare(torch.randn(4, 0)), "feats"),
    err("prepare: 1-d", lambda c: alignment.prepare(torch.randn(5)), "feats"),
    err("prepare: 4-d", lambda c: alignment.prepare(torch.randn(2, 3, 4, 5)), "feats"),
    err("prepare: NaN", lambda c: alignment.prepare(WITH_NAN), "feats"),
    err("prepare: inf", lambda c: alignment.prepare(WITH_INF), "feats"),
    err("prepare: complex", lambda c: alignment.prepare(torch.randn(4, 3, dtype=torch.complex64)),
        "feats"),
    err("prepare: bool", lambda c: alignment.prepare(torch.ones(4, 3, dtype=torch.bool)), "feats"),
    err("prepare: list, different N",
        lambda c: alignment.prepare([torch.randn(4, 3), torch.randn(5, 3)]), "feats"),
    err("prepare: list with a 3-d layer", lambda c: alignment.prepare([torch.randn(4, 3, 2)]),
        "feats[0]"),
    err("prepare: q = 0", lambda c: alignment.prepare(X, q=0), "q"),
    err("prepare: q = 1.5", lambda c: alignment.prepare(X, q=1.5), "q"),
    err("prepare: q is a str", lambda c: alignment.prepare(X, q="0.9"), "q"),
    err("prepare: q = NaN", lambda c: alignment.prepare(X, q=math.nan), "q"),
    ok("prepare: float32 rows near 1e19", lambda c: alignment.prepare(torch.full((6, 4), 1e19)),
       _unit_rows),
    ok("prepare: float64 rows near 1e300",
       lambda c: alignment.prepare(torch.full((6, 4), 1e300, dtype=torch.float64)),
       _unit_rows),
    ok("prepare: float32 rows near 1e19, no clamp",
       lambda c: alignment.prepare(torch.randn(6, 4) * 1e19, q=1.0),
       _unit_rows),
    ok("prepare: integer tensor", lambda c: alignment.prepare(torch.arange(12).reshape(4, 3) + 1),
       lambda t: t.dtype == torch.float32 and _unit_rows(t)),
    ok("prepare: numpy array",
       lambda c: alignment.prepare(np.random.default_rng(0).normal(size=(5, 3))), _unit_rows),
    # score
    err("score: x is [N, L, D]", lambda c: alignment.score(X3, Y), "x"),
    err("score: x is a list", lambda c: alignment.score([1, 2], Y), "x"),
    err("score: y has NaN", lambda c: alignment.score(X, WITH_NAN), "y"),
    err("score: different N", lambda c: alignment.score(X, Y[:30]), "x and y"),
    err("score: unknown metric", lambda c: alignment.score(X, Y, "cosine"), "metric"),
    err("score: topk = 0", lambda c: alignment.score(X, Y, topk=0), "topk"),
    err("score: topk = N", lambda c: alignment.score(X, Y, topk=40), "topk"),
    err("score: topk = 2.5", lambda c: alignment.score(X, Y, topk=2.5), "topk"),
    err("score: topk is a str", lambda c: alignment.score(X, Y, topk="5"), "topk"),
    err("score: cknna with topk = 1", lambda c: alignment.score(X, Y, "cknna", topk=1), "topk"),
    err("score: unbiased_cka with N = 3", lambda c: alignment.score(X[:3], Y[:3], "unbiased_cka"),
        "N = 3"),
    err("score: cca_dim = 0", lambda c: alignment.score(X, Y, "svcca", cca_dim=0), "cca_dim"),
    err("score: cca_dim > D", lambda c: alignment.score(X, Y, "svcca", cca_dim=7), "cca_dim"),
    err("score: cca_dim above a layer's rank",
        lambda c: alignment.score(RANK2, X, "svcca", cca_dim=5), "cca_dim"),
    err("score: float16 dtype", lambda c: alignment.score(X, Y, dtype=torch.float16), "dtype"),
    err("score: unknown device", lambda c: alignment.score(X, Y, device="gpu0"), "device"),
    ok("score: identical inputs", lambda c: alignment.score(X, X, topk=5), lambda v: v == 1.0),
    # layer_scores
    err("layer_scores: xs list, different N", lambda c: alignment.layer_scores([X, X[:30]], Y),
        "xs"),
    err("layer_scores: ys is a dict", lambda c: alignment.layer_scores(X3, {"a": Y}), "ys"),
    err("layer_scores: ys layer NaN", lambda c: alignment.layer_scores(X3, [Y, WITH_NAN]),
        "ys layer 1"),
    err("layer_scores: different N", lambda c: alignment.layer_scores(X3, Y[:39]), "xs and ys"),
    ok("layer_scores: one layer as [N, D]", lambda c: alignment.layer_scores(X, X3, topk=5),
       lambda s: s.shape == (1, 3) and bool(torch.isfinite(s).all())),
    # best
    err("best: 1-d scores", lambda c: alignment.best(torch.ones(3)), "scores"),
    err("best: empty scores", lambda c: alignment.best(torch.ones(0, 2)), "scores"),
    err("best: all NaN", lambda c: alignment.best(torch.full((2, 2), math.nan)), "scores"),
    err("best: a list", lambda c: alignment.best([[1.0]]), "scores"),
    ok("best: some NaN",
       lambda c: alignment.best(torch.tensor([[math.nan, 0.2], [0.5, math.nan]])),
       lambda r: r == (0.5, (1, 0))),
    # permutation_null
    err("permutation_null: n_perm = 0", lambda c: alignment.permutation_null(X, Y, n_perm=0),
        "n_perm"),
    err("permutation_null: n_perm = 2.5", lambda c: alignment.permutation_null(X, Y, n_perm=2.5),
        "n_perm"),
    err("permutation_null: n_perm is a str",
        lambda c: alignment.permutation_null(X, Y, n_perm="9"), "n_perm"),
    err("permutation_null: reduce = 'mean'",
        lambda c: alignment.permutation_null(X, Y, reduce="mean"), "reduce"),
    err("permutation_null: seed is a str",
        lambda c: alignment.permutation_null(X, Y, n_perm=3, seed="a"), "seed"),
    err("permutation_null: seed = 1.5",
        lambda c: alignment.permutation_null(X, Y, n_perm=3, seed=1.5), "seed"),
    err("permutation_null: xs NaN", lambda c: alignment.permutation_null(WITH_NAN, Y, n_perm=3),
        "xs"),
    ok("permutation_null: NaN observed unbiased_cka", lambda c: _null("unbiased_cka"),
       lambda r: math.isnan(r.observed) and math.isnan(r.p_value)),
    ok("permutation_null: NaN observed cknna", lambda c: _null("cknna"),
       lambda r: math.isnan(r.observed) and math.isnan(r.p_value)),
    ok("permutation_null: NaN observed, reduce=None", lambda c: _null("unbiased_cka", reduce=None),
       lambda r: bool(torch.isnan(r.observed).all()) and bool(torch.isnan(r.p_value).all())),
]

STATS = [
    err("bootstrap: statistic not callable", lambda c: stats.bootstrap("mean", VALS), "statistic"),
    err("bootstrap: no samples", lambda c: stats.bootstrap(np.mean), "samples"),
    err("bootstrap: different lengths", lambda c: stats.bootstrap(np.mean, VALS, VALS[:5]),
        "samples"),
    err("bootstrap: empty", lambda c: stats.bootstrap(np.mean, []), "samples"),
    err("bootstrap: a scalar", lambda c: stats.bootstrap(np.mean, 3.0), "samples"),
    err("bootstrap: NaN", lambda c: stats.bootstrap(np.mean, VALS_NAN), "samples"),
    err("bootstrap: NaN in the second sample",
        lambda c: stats.bootstrap(np.subtract, VALS, VALS_NAN), "samples[1]"),
    err("bootstrap: n_boot = 0", lambda c: stats.bootstrap(np.mean, VALS, n_boot=0), "n_boot"),
    err("bootstrap: n_boot = 2.5", lambda c: stats.bootstrap(np.mean, VALS, n_boot=2.5), "n_boot"),
    err("bootstrap: n_boot = None", lambda c: stats.bootstrap(np.mean, VALS, n_boot=None),
        "n_boot"),
    err("bootstrap: seed is a str", lambda c: stats.bootstrap(np.mean, VALS, seed="a"), "seed"),
    err("bootstrap: seed = -1", lambda c: stats.bootstrap(np.mean, VALS, seed=-1), "seed"),
    ok("bootstrap: one row", lambda c: stats.bootstrap(np.mean, [2.0], n_boot=5),
       lambda d: np.all(d == 2.0)),
    err("hierarchical_means: not a dict", lambda c: stats.hierarchical_means(np.ones((2, 3))),
        "arrays"),
    err("hierarchical_means: empty dict", lambda c: stats.hierarchical_means({}), "arrays"),
    err("hierarchical_means: 1-d", lambda c: stats.hierarchical_means({"a": np.ones(3)}),
        "arrays"),
    err("hierarchical_means: shapes differ",
        lambda c: stats.hierarchical_means({"a": np.ones((2, 3)), "b": np.ones((3, 3))}),
        "arrays"),
    err("hierarchical_means: empty", lambda c: stats.hierarchical_means({"a": np.ones((0, 3))}),
        "arrays"),
    err("hierarchical_means: NaN",
        lambda c: stats.hierarchical_means({"a": VALS_NAN.reshape(4, 5)}), "arrays['a']"),
    err("hierarchical_means: n_boot = 0",
        lambda c: stats.hierarchical_means({"a": np.ones((2, 3))}, n_boot=0),
        "n_boot"),
    err("hierarchical_means: seed = None",
        lambda c: stats.hierarchical_means({"a": np.ones((2, 3))}, seed=None),
        "seed"),
    err("interval: level = 95", lambda c: stats.interval(VALS, level=95), "level"),
    err("interval: level is a str", lambda c: stats.interval(VALS, level="0.95"), "level"),
    err("interval: all NaN", lambda c: stats.interval([math.nan, math.nan]), "draws"),
    err("interval: no draws", lambda c: stats.interval([]), "draws"),
    err("interval: 2-d draws", lambda c: stats.interval(np.ones((3, 3))), "draws"),
    err("interval: text draws", lambda c: stats.interval(["a", "b"]), "draws"),
    ok("interval: some NaN draws (degenerate resamples)",
       lambda c: stats.interval([math.nan, 0.0, 1.0, 2.0], 0.5),
       lambda r: r == pytest.approx((0.5, 1.5))),
    err("mean_ci: NaN", lambda c: stats.mean_ci(VALS_NAN, n_boot=50), "values"),
    err("mean_ci: empty", lambda c: stats.mean_ci([], n_boot=50), "values"),
    err("mean_ci: text", lambda c: stats.mean_ci(["a", "b"], n_boot=50), "values"),
    err("mean_ci: 2-d", lambda c: stats.mean_ci(np.ones((3, 3)), n_boot=50), "values"),
    err("mean_ci: level = 2", lambda c: stats.mean_ci(VALS, n_boot=50, level=2), "level"),
    err("mean_ci: n_boot = -5", lambda c: stats.mean_ci(VALS, n_boot=-5), "n_boot"),
    ok("mean_ci: constant values", lambda c: stats.mean_ci(np.full(5, 2.0), n_boot=50),
       lambda r: r == (2.0, 2.0, 2.0)),
    err("spearman_permutation: NaN in x",
        lambda c: stats.spearman_permutation(VALS_NAN, VALS, n_perm=19), "x"),
    err("spearman_permutation: NaN in y",
        lambda c: stats.spearman_permutation(VALS, VALS_NAN, n_perm=19), "y"),
    err("spearman_permutation: lengths differ",
        lambda c: stats.spearman_permutation(VALS, VALS[:5]), "x and y"),
    err("spearman_permutation: one point", lambda c: stats.spearman_permutation([1.0], [2.0]),
        "x and y"),
    err("spearman_permutation: 2-d",
        lambda c: stats.spearman_permutation(np.ones((2, 2)), np.ones((2, 2))), "x and y"),
    err("spearman_permutation: text", lambda c: stats.spearman_permutation(["a", "b"], [1, 2]),
        "x and y"),
    err("spearman_permutation: n_perm = 0",
        lambda c: stats.spearman_permutation(VALS, VALS, n_perm=0), "n_perm"),
    err("spearman_permutation: n_perm is a str",
        lambda c: stats.spearman_permutation(VALS, VALS, n_perm="9"),
        "n_perm"),
    err("spearman_permutation: seed is a str",
        lambda c: stats.spearman_permutation(VALS, VALS, n_perm=9, seed="s"),
        "seed"),
    ok("spearman_permutation: constant x",
       lambda c: stats.spearman_permutation(np.ones(5), VALS[:5], n_perm=9),
       lambda r: math.isnan(r[0]) and math.isnan(r[1])),
]


def _save_wrong(c, blob):
    path = cache.entry_path("bad", {"k": 1})
    torch.save(blob, path)
    return cache.cached("bad", {"k": 1}, lambda: "recomputed")


def _two_keys(c, a, b):
    cache.cached("bad", {"k": a}, lambda: "first")
    return cache.cached("bad", {"k": b}, lambda: "second")


BIG = torch.zeros(5000)
BIG2 = BIG.clone()
BIG2[2500] = 1.0

CACHE = [
    err("key_digest: a list", lambda c: cache.key_digest([1, 2]), "key"),
    err("key_digest: a set", lambda c: cache.key_digest({"s": {1, 2}}), "key['s']"),
    err("key_digest: a function", lambda c: cache.key_digest({"f": print}), "key['f']"),
    err("key_digest: an object", lambda c: cache.key_digest({"o": object()}), "key['o']"),
    err("key_digest: an object array", lambda c: cache.key_digest({"a": np.array([None, 1])}),
        "key['a']"),
    err("key_digest: bytes", lambda c: cache.key_digest({"b": b"x"}), "key['b']"),
    err("key_digest: a complex number", lambda c: cache.key_digest({"z": 1j}), "key['z']"),
    err("key_digest: a reserved key", lambda c: cache.key_digest({"__cache_items__": []}),
        "__cache_items__"),
    ok("key_digest: large tensors differing in the middle",
       lambda c: (cache.key_digest({"t": BIG}), cache.key_digest({"t": BIG2})),
       lambda d: d[0] != d[1]),
    ok("key_digest: {1: ..} vs {'1': ..}",
       lambda c: (cache.key_digest({"d": {1: 0}}), cache.key_digest({"d": {"1": 0}})),
       lambda d: d[0] != d[1]),
    ok("key_digest: np.int64(3) vs '3'",
       lambda c: (cache.key_digest({"n": np.int64(3)}), cache.key_digest({"n": "3"})),
       lambda d: d[0] != d[1]),
    ok("key_digest: NaN in a key is stable",
       lambda c: (cache.key_digest({"x": math.nan}), cache.key_digest({"x": math.nan})),
       lambda d: d[0] == d[1]),
    err("entry_path: namespace escapes the root", lambda c: cache.entry_path("../outside", {}),
        "namespace"),
    err("entry_path: empty namespace", lambda c: cache.entry_path("", {}), "namespace"),
    err("entry_path: namespace None", lambda c: cache.entry_path(None, {}), "namespace"),
    err("entry_path: suffix without a dot", lambda c: cache.entry_path("ns", {}, suffix="pt/x"),
        "suffix"),
    err("atomic_write: write not callable", lambda c: cache.atomic_write(c.tmp / "f.bin", b"data"),
        "write"),
    err("atomic_write: path is a folder",
        lambda c: cache.atomic_write(c.tmp, lambda p: p.write_bytes(b"")), "path"),
    err("save_entry: a value torch.save cannot store",
        lambda c: cache.save_entry("bad", {"k": 2}, lambda: 1), "value"),
    ok("save_entry: nothing half-written after that",
       lambda c: sorted(p.name for p in (c.cache / "bad").glob(".*.tmp")),
       lambda names: names == []),
    err("cached: compute not callable", lambda c: cache.cached("bad", {"k": 3}, 5), "compute"),
    err("cached: validate not callable",
        lambda c: cache.cached("bad", {"k": 3}, lambda: 1, validate=True), "validate"),
    ok("cached: entry without a value", lambda c: _save_wrong(c, {"key": {"k": 1}}),
       lambda v: v == "recomputed"),
    ok("cached: entry that is a list", lambda c: _save_wrong(c, [1, 2]),
       lambda v: v == "recomputed"),
    ok("cached: stored key is an array",
       lambda c: _save_wrong(c, {"key": np.arange(3), "value": 1}),
       lambda v: v == "recomputed"),
    ok("cached: big tensors in keys do not collide", lambda c: _two_keys(c, BIG, BIG2),
       lambda v: v == "second"),
    ok("cached: int and str dict keys do not collide", lambda c: _two_keys(c, {1: 0}, {"1": 0}),
       lambda v: v == "second"),
    ok("load_entry: missing", lambda c: cache.load_entry("bad", {"never": "stored"}),
       lambda v: v is None),
    err("cache_root: BOOK_CACHE empty", lambda c: _env("BOOK_CACHE", "", cache.cache_root),
        "BOOK_CACHE"),
    err("cache_root: BOOK_CACHE blank", lambda c: _env("BOOK_CACHE", "  ", cache.cache_root),
        "BOOK_CACHE"),
    err("cache_root: BOOK_CACHE is a file",
        lambda c: _env("BOOK_CACHE", str(c.a_file), cache.cache_root),
        "BOOK_CACHE"),
    ok("remove_stale_temporaries: missing folder",
       lambda c: cache.remove_stale_temporaries(c.tmp / "nope"),
       lambda r: r == []),
]


def _h5(path: Path, demos: dict, problem_info: str | None = None,
        data_is_dataset: bool = False) -> Path:
    with h5py.File(path, "w") as f:
        if data_is_dataset:
            f.create_dataset("data", data=np.zeros(3))
            return path
        g = f.create_group("data")
        if problem_info is not None:
            g.attrs["problem_info"] = problem_info
        for name, datasets in demos.items():
            g.create_group(name)
            for key, value in datasets.items():
                g.create_dataset(f"{name}/{key}", data=value)
    return path


def _demo(t=3, frames=None, **extra):
    return {"actions": np.zeros((t, 7)),
            "obs/agentview_rgb": np.zeros((t if frames is None else frames, 4, 4, 3), np.uint8),
            **extra}


def _demo_files(tmp: Path) -> dict[str, Path]:
    (tmp / "empty.hdf5").write_bytes(b"")
    (tmp / "text.hdf5").write_text("hello")
    files = {"empty": tmp / "empty.hdf5", "text": tmp / "text.hdf5"}
    specs = {
        "good": ({"demo_0": _demo(), "demo_1": _demo(2)}, {}),
        "no_data": ({}, {}),
        "data_dataset": ({}, {"data_is_dataset": True}),
        "no_demos": ({"other": {"x": np.zeros(1)}}, {}),
        "demo_x": ({"demo_0": _demo(), "demo_x": _demo()}, {}),
        "no_actions": ({"demo_0": {"obs/agentview_rgb": np.zeros((3, 4, 4, 3), np.uint8)}}, {}),
        "frames_longer": ({"demo_0": _demo(), "demo_1": _demo(3, frames=4)}, {}),
        "float_frames": ({"demo_0": _demo(),
                          "demo_1": {**_demo(), "obs/agentview_rgb": np.zeros((3, 4, 4, 3))}}, {}),
        "wrist_short": ({"demo_0": {**_demo(),
                                    "obs/eye_in_hand_rgb": np.zeros((2, 4, 4, 3), np.uint8)}}, {}),
        "robot_short": ({"demo_0": {**_demo(), "robot_states": np.zeros((2, 9))}}, {}),
        "frame_size_differs": ({"demo_0": _demo(),
                                "demo_1": {**_demo(),
                                           "obs/agentview_rgb": np.zeros((3, 8, 8, 3), np.uint8)}},
                               {}),
        "action_dim_differs": ({"demo_0": _demo(),
                                "demo_1": {**_demo(), "actions": np.zeros((3, 6))}}, {}),
        "nan_actions": ({"demo_0": {**_demo(), "actions": np.full((3, 7), np.nan)}}, {}),
        "bad_json": ({"demo_0": _demo()}, {"problem_info": "{oops"}),
        "list_json": ({"demo_0": _demo()}, {"problem_info": "[1]"}),
    }
    for name, (demos, kw) in specs.items():
        files[name] = _h5(tmp / f"{name}_demo.hdf5", demos, **kw)
    return files


def _read(c, name, **kw):
    return ld.read_demos(c.demos[name], **kw)


def _demo_err(name, **kw):
    return Case(f"read_demos: {name} {kw or ''}".strip(), lambda c: _read(c, name, **kw),
                ("{path}",),
                (DemoFileError,))


READERS = [
    Case("read_demos: missing file", lambda c: ld.read_demos(c.tmp / "missing.hdf5"),
         ("missing.hdf5",),
         (FileNotFoundError,)),
    Case("read_demos: path None", lambda c: ld.read_demos(None), ("path",), (DemoFileError,)),
    Case("read_demos: a folder", lambda c: ld.read_demos(c.tmp), ("{tmp}",), (DemoFileError,)),
    *[_demo_err(name) for name in ("empty", "text", "no_data", "data_dataset", "no_demos",
                                   "demo_x", "no_actions",
                                   "frames_longer", "float_frames", "wrist_short", "robot_short",
                                   "frame_size_differs", "action_dim_differs", "nan_actions",
                                   "bad_json",
                                   "list_json")],
    *[_demo_err("good", max_demos=m) for m in (0, -1, 1.5, "2")],
    _demo_err("good", upright="no"),
    ok("read_demos: max_demos above the count", lambda c: _read(c, "good", max_demos=10),
       lambda d: len(d) == 5 and d.n_episodes == 2),
    # load_image_folder
    Case("load_image_folder: path None", lambda c: sources.load_image_folder(None), ("path",)),
    Case("load_image_folder: missing folder", lambda c: sources.load_image_folder(c.tmp / "nope"),
         ("nope",)),
    Case("load_image_folder: a file", lambda c: sources.load_image_folder(c.a_file),
         ("{a_file}",)),
    Case("load_image_folder: no images", lambda c: sources.load_image_folder(c.empty_dir),
         ("{empty_dir}",)),
    Case("load_image_folder: a corrupt .png", lambda c: sources.load_image_folder(c.images),
         ("broken.png",)),
    Case("load_image_folder: n = 0", lambda c: sources.load_image_folder(c.good_images, n=0),
         ("n ",)),
    Case("load_image_folder: n = True", lambda c: sources.load_image_folder(c.good_images, n=True),
         ("n ",)),
    Case("load_image_folder: n = 1.5", lambda c: sources.load_image_folder(c.good_images, n=1.5),
         ("n ",)),
    Case("load_image_folder: n above the count",
         lambda c: sources.load_image_folder(c.good_images, n=5), ("n=5",)),
    ok("load_image_folder: n = None", lambda c: sources.load_image_folder(c.good_images),
       lambda ims: len(ims) == 1 and ims[0].mode == "RGB"),
    # load_preference_records
    Case("load_preference_records: missing text", lambda c: genies.load_preference_records(
        "c", "missing_text", local_dir=c.prefs), ("missing_text",)),
    Case("load_preference_records: n = -1", lambda c: genies.load_preference_records(
        "c", "train", n=-1, local_dir=c.prefs), ("n ",)),
    Case("load_preference_records: n is a str", lambda c: genies.load_preference_records(
        "c", "train", n="1", local_dir=c.prefs), ("n ",)),
    Case("load_preference_records: config None", lambda c: genies.load_preference_records(
        None, "train", local_dir=c.prefs), ("config",)),
    Case("load_preference_records: split 3", lambda c: genies.load_preference_records(
        "c", 3, local_dir=c.prefs), ("split",)),
    Case("load_preference_records: local_dir 5", lambda c: genies.load_preference_records(
        "c", "train", local_dir=5), ("local_dir",)),
    Case("load_preference_records: malformed JSON lines", lambda c: genies.load_preference_records(
        "c", "broken", local_dir=c.prefs), ("broken.jsonl",)),
    Case("load_preference_records: columns missing", lambda c: genies.load_preference_records(
        "c", "columns", local_dir=c.prefs), ("prompt",)),
    Case("load_preference_records: no such split", lambda c: genies.load_preference_records(
        "c", "nosplit", local_dir=c.prefs), ("nosplit",), (FileNotFoundError,)),
    ok("load_preference_records: n = 0",
       lambda c: genies.load_preference_records("c", "train", n=0, local_dir=c.prefs),
       lambda r: r == []),
    ok("load_preference_records: n above the count", lambda c: genies.load_preference_records(
        "c", "train", n=10, local_dir=c.prefs), lambda r: len(r) == 2 and r[1]["chosen"] == "a2"),
]

def _runner_notebook():
    import jupytext

    return jupytext.reads('# %% tags=["parameters"]\nscale: str = "book"\nn_perm: int = 10\nlr: '
                          'float = 0.1\nks: list[int] = [1]\nname: str | None = None\n',
                          fmt="py:percent")


def _check(params):
    from helpers import run

    return run.check_parameters("demo", _runner_notebook(), params)


def _run_attr(name):
    from helpers import run

    return getattr(run, name)


RUNNER = [
    err("run: n_perm = 1.5", lambda c: _check({"n_perm": 1.5}), "n_perm"),
    err("run: n_perm is text", lambda c: _check({"n_perm": "ten"}), "n_perm"),
    err("run: n_perm = True", lambda c: _check({"n_perm": True}), "n_perm"),
    err("run: lr is text", lambda c: _check({"lr": "fast"}), "lr"),
    err("run: ks is a number", lambda c: _check({"ks": 5}), "ks"),
    err("run: ks holds text", lambda c: _check({"ks": [1, "a"]}), "ks"),
    err("run: name is a number", lambda c: _check({"name": 3}), "name"),
    err("run: scale is a list", lambda c: _check({"scale": ["smoke"]}), "scale"),
    err("run: unknown parameter", lambda c: _check({"n_prem": 5}), "n_prem"),
    ok("run: lr given as YAML text 1e-3", lambda c: _check({"lr": "1e-3"}),
       lambda p: p["lr"] == 0.001),
    ok("run: name None", lambda c: _check({"name": None}), lambda p: p["name"] is None),
    err("run: -p with malformed YAML", lambda c: _run_attr("parse_parameter")("ks", "[1,"), "ks"),
    err("run: -p with an unclosed quote", lambda c: _run_attr("parse_parameter")("name", "'abc"),
        "name"),
    err("run: unknown chapter last in the list",
        lambda c: _run_attr("check_run")(["primer", "nope"], "smoke", {}),
        "nope"),
    err("run: unknown scale", lambda c: _run_attr("check_run")(["primer"], "huge", {}), "huge"),
    err("run: a parameter of the wrong type for one chapter",
        lambda c: _run_attr("check_run")(["primer"], "smoke", {"n_perm": "many"}), "n_perm"),
    err("run: BOOK_CACHE empty",
        lambda c: _env("BOOK_CACHE", "", lambda: _run_attr("check_run")(["primer"], "smoke", {})),
        "BOOK_CACHE"),
]


def _hub(name):
    from helpers import hub

    return getattr(hub, name)


HUB = [
    err("hub: repo id with //", lambda c: _hub("load_language_model")("bad//id"), "bad//id"),
    err("hub: repo id with a space", lambda c: _hub("load_language_model")("a b/c"), "a b/c"),
    err("hub: repo id with three parts", lambda c: _hub("load_language_model")("org/name/extra"),
        "org/name/extra"),
    err("hub: timm hf-hub id with //", lambda c: _hub("load_timm_model")("hf-hub:bad//id"),
        "bad//id"),
    err("hub: unknown timm architecture", lambda c: _hub("load_timm_model")("not_a_model_xyz"),
        "not_a_model_xyz"),
    err("hub: missing local folder", lambda c: _hub("load_language_model")(str(c.tmp / "nope")),
        "nope"),
    err("hub: folder without config.json", lambda c: _hub("load_timm_model")(c.empty_dir),
        "config.json"),
    err("hub: unknown device", lambda c: _hub("resolve_device")("gpu0"), "device"),
]

CASES = ALIGNMENT + STATS + CACHE + READERS + RUNNER + HUB


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    import pandas as pd
    from PIL import Image

    tmp = tmp_path_factory.mktemp("bad_inputs")
    c = SimpleNamespace(tmp=tmp, cache=tmp / "cache")
    c.a_file = tmp / "a_file.txt"
    c.a_file.write_text("x")
    c.demos = _demo_files(tmp)
    c.empty_dir = tmp / "no_images"
    c.empty_dir.mkdir()
    c.good_images = tmp / "good_images"
    c.good_images.mkdir()
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(c.good_images / "a.png")
    c.images = tmp / "images"
    c.images.mkdir()
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(c.images / "a.png")
    (c.images / "broken.png").write_bytes(b"not a png")
    c.prefs = tmp / "prefs"
    (c.prefs / "c").mkdir(parents=True)
    good = [{"prompt": "p", "chosen": "a", "rejected": "b"},
            {"prompt": "p2", "chosen": "a2", "rejected": "b2"}]
    pd.DataFrame(good).to_json(c.prefs / "c" / "train.jsonl", orient="records", lines=True)
    pd.DataFrame([good[0], {"prompt": "p", "chosen": None, "rejected": "b"}]).to_json(
        c.prefs / "c" / "missing_text.jsonl", orient="records", lines=True)
    (c.prefs / "c" / "broken.jsonl").write_text('{"prompt": \n')
    pd.DataFrame([{"prompt": "p"}]).to_json(c.prefs / "c" / "columns.jsonl", orient="records",
                                            lines=True)
    old = os.environ.get("BOOK_CACHE")
    os.environ["BOOK_CACHE"] = str(c.cache)
    yield c
    if old is None:
        os.environ.pop("BOOK_CACHE", None)
    else:
        os.environ["BOOK_CACHE"] = old


def outcome(case: Case, c: SimpleNamespace) -> tuple[str, str]:
    """``("clear" | "correct" | "silent" | "unclear", detail)`` for one case."""
    names = [n.format(**{k: v for k, v in vars(c).items() if isinstance(v, Path)},
                      path=c.demos.get(case.id.split(": ")[1].split(" ")[0], ""))
             if "{" in n else n
             for n in (case.names or ())]
    try:
        value = case.call(c)
    except Exception as e:  # noqa: BLE001 - classifying every failure is the point
        text = f"{type(e).__name__}: {e}"
        if case.names is None:
            return "unclear", f"expected a result, got {text[:200]}"
        if not isinstance(e, case.errors):
            return "unclear", f"expected {[t.__name__ for t in case.errors]}, got {text[:200]}"
        if not any(n in str(e) for n in names):
            return "unclear", f"message does not name {names}: {text[:200]}"
        return "clear", text[:120]
    if case.names is not None:
        return "silent", f"expected an error naming {names}, got a result: {str(value)[:120]}"
    try:
        good = bool(case.check(value))
    except Exception as e:  # noqa: BLE001
        good, value = False, f"{type(e).__name__}: {e}"
    return ("correct", "") if good else ("silent", f"wrong result: {str(value)[:120]}")


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_gives_a_clear_error_or_a_correct_result(case, ctx):
    kind, detail = outcome(case, ctx)
    assert kind in ("clear", "correct"), f"{case.id}: {kind}: {detail}"


def test_summary(ctx, capsys):
    counts: dict[str, int] = {}
    for case in CASES:
        kind, _ = outcome(case, ctx)
        counts[kind] = counts.get(kind, 0) + 1
    with capsys.disabled():
        print(f"\nbad inputs tried: {len(CASES)}; "
              + ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())))
    assert counts.get("silent", 0) == 0 and counts.get("unclear", 0) == 0, counts


# ----------------------------------------------------------- silent-result classes in alignment
def test_prepare_does_not_zero_rows_whose_squared_norm_overflows():
    """Before: rows near 1e19 (float32) or 1e300 (float64) came back all zeros and every metric ran
    on them."""
    rng = np.random.default_rng(0)
    base = torch.tensor(rng.normal(size=(50, 8)), dtype=torch.float32)
    for scale, dtype in ((1e19, torch.float32), (1e300, torch.float64)):
        big = alignment.prepare(base.to(dtype) * scale, q=1.0)
        assert _unit_rows(big)
        torch.testing.assert_close(big, alignment.prepare(base.to(dtype), q=1.0), rtol=1e-5,
                                   atol=1e-6)
    # rows that do not overflow are normalised exactly as before
    ordinary = alignment.prepare(base)
    torch.testing.assert_close(ordinary, torch.nn.functional.normalize(
        base.clamp(-alignment._mean_row_quantile([base], 0.95, torch.float32),
                   alignment._mean_row_quantile([base], 0.95, torch.float32)), dim=-1), rtol=0,
                   atol=0)


def test_svcca_rejects_cca_dim_above_a_layers_rank():
    """Before: a rank-5 layer against its rotation scored 0.62 with cca_dim = 10 (arbitrary extra
    directions)."""
    g = torch.Generator().manual_seed(0)
    low = torch.randn(200, 5, generator=g) @ torch.randn(5, 64, generator=g)
    rotation = torch.linalg.qr(torch.randn(64, 64, generator=g))[0]
    with pytest.raises(ValueError,
                       match=r"cca_dim = 10 .* y layer 0 has rank 5 .* pass cca_dim <= 5"):
        alignment.score(torch.randn(200, 64, generator=g), low @ rotation, "svcca", cca_dim=10)
    with pytest.raises(ValueError, match=r"xs layer 1 has rank 5"):
        alignment.layer_scores([torch.randn(200, 64, generator=g), low], [low], "svcca",
                               cca_dim=10)
    assert alignment.score(low, low @ rotation, "svcca", cca_dim=5) == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize("metric", ["unbiased_cka", "cknna"])
def test_nan_observed_score_gives_nan_p_not_the_permutation_floor(metric):
    """Before: p = 1/(n_perm + 1), the most confident value possible, for an undefined score."""
    result = _null(metric)
    assert math.isnan(result.observed) and math.isnan(result.p_value)
    assert math.isnan(result.corrected)
    x = alignment.prepare(torch.randn(30, 4, generator=torch.Generator().manual_seed(1)))
    defined = alignment.permutation_null(x, x, metric, topk=5, n_perm=9)
    assert defined.p_value == pytest.approx(0.1)  # defined scores keep their p-values


# --------------------------------------------------------------------------- hub loaders offline
@pytest.fixture
def no_network(monkeypatch):
    """No network, and HF_HUB_OFFLINE unset: count every name lookup the hub client tries."""
    from helpers import hub

    lookups = []

    def refuse(host, *args, **kwargs):
        lookups.append(host)
        raise socket.gaierror(-2, "Name or service not known")

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    for var in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(hub, "_REACHABLE", {}, raising=False)
    return lookups


def test_hub_loaders_detect_no_network_once_and_fail_fast(no_network):
    """Before: every load retried the hub with back-off (47-53 s on this machine) before
    failing."""
    from helpers.hub import ModelUnavailableError, load_language_model, load_timm_model

    for load, name in ((load_language_model, "org-does-not-exist/tiny-model"),
                       # never in a local cache
                       (load_timm_model, "hf-hub:org-does-not-exist/tiny-vit")):
        with pytest.raises(ModelUnavailableError,
                           match=rf"{name}'.*no network connection.*Fix:") as info:
            load(name)
        assert isinstance(info.value, OSError)
    # one probe for the whole process; the hub client's retries (47-53 s here) never start
    assert len(no_network) <= 1, f"the network was looked up {len(no_network)} times: {no_network}"


def test_invalid_repo_id_says_so():
    from helpers.hub import load_language_model, load_timm_model

    for bad in ("bad//id", "a b/c", "org/name/extra"):
        with pytest.raises(ValueError, match="is not a valid hub repo id"):
            load_language_model(bad)
    with pytest.raises(ValueError, match="is not a valid hub repo id"):
        load_timm_model("hf-hub:bad//id")


def test_feature_cache_entries_of_the_wrong_structure_are_recomputed(tmp_path, monkeypatch):
    """Before: a stored features entry whose metadata had the wrong structure raised a
    TypeError."""
    from helpers.features import cached_features

    monkeypatch.setenv("BOOK_CACHE", str(tmp_path))
    key = {"model": "m", "n": 2}
    for wrong in ({"meta": [1], "value": torch.ones(2)},
                  {"meta": [[[2], "torch.float32"]], "value": "x"},
                  {"meta": None, "value": torch.ones(2)}, torch.ones(2)):
        cache.save_entry("features", key, wrong)
        assert torch.equal(cached_features(key, lambda: torch.zeros(2)), torch.zeros(2))
    # now a valid entry
    assert torch.equal(cached_features(key, lambda: torch.ones(2)), torch.zeros(2))
