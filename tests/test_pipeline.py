"""The runner, the cache and the primer's data world: fast unit tests."""
from __future__ import annotations

import jupytext
import pytest
import torch

from helpers import cache
from helpers.run import (check_parameters, load_overrides, main, parameter_names, time_table,
                         ChapterResult)
from helpers.toy_views import make_noise_layers, make_two_views

NOTEBOOK = """\
# %% tags=["parameters"]
scale: str = "book"
n_samples: int = 10  # comment
"""


def test_parameter_names_and_unknown_parameters_rejected():
    notebook = jupytext.reads(NOTEBOOK, fmt="py:percent")
    assert parameter_names(notebook) == ["scale", "n_samples"]
    check_parameters("demo", notebook, {"scale": "smoke", "n_samples": 3})
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) \['n_sample'\]"):
        check_parameters("demo", notebook, {"n_sample": 3})


def test_missing_parameters_cell_is_an_error():
    notebook = jupytext.reads("# %%\nx = 1\n", fmt="py:percent")
    with pytest.raises(ValueError, match="no cell tagged 'parameters'"):
        parameter_names(notebook)


def test_overrides_per_scale(tmp_path):
    scales = tmp_path / "scales.yaml"
    scales.write_text("demo:\n  smoke: {n_samples: 3}\n  full: {n_samples: 99}\n")
    assert load_overrides("demo", "smoke", scales) == {"scale": "smoke", "n_samples": 3}
    assert load_overrides("demo", "book", scales) == {"scale": "book"}
    assert load_overrides("other", "smoke", scales) == {"scale": "smoke"}
    with pytest.raises(ValueError, match="unknown scale 'huge'"):
        load_overrides("demo", "huge", scales)
    scales.write_text("demo:\n  book: {n_samples: 3}\n")
    with pytest.raises(ValueError, match="only 'smoke' and 'full' belong there"):
        load_overrides("demo", "smoke", scales)


def test_unknown_chapter_is_named():
    with pytest.raises(ValueError, match="unknown chapter 'nope'"):
        main(["nope"])


def test_time_table_lists_failures():
    table = time_table([ChapterResult("a", 1.0, True, cpu_seconds=0.75),
                        ChapterResult("b", 2.5, False, "boom", 1.5)], wall=2.6)
    assert "FAILED" in table and "3.5" in table and "2.2" in table  # 0.75 + 1.5 CPU s
    assert table.splitlines()[-1].split() == ["wall", "2.6"]


def test_chapter_cpu_counts_the_waited_for_child_processes():
    import subprocess
    import sys

    from helpers.run import _children_cpu_seconds

    before = _children_cpu_seconds()
    burn = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.3: pass"
    subprocess.run([sys.executable, "-c", burn], check=True)
    assert _children_cpu_seconds() - before >= 0.3


def test_cache_roundtrip_mismatch_and_corruption(tmp_path, monkeypatch):
    monkeypatch.setenv("BOOK_CACHE", str(tmp_path))
    calls = []

    def compute():
        calls.append(1)
        return torch.arange(3)

    key = {"model": "m", "n": 3}
    assert torch.equal(cache.cached("demo", key, compute), torch.arange(3))
    assert torch.equal(cache.cached("demo", key, compute), torch.arange(3))
    assert len(calls) == 1, "second call must come from the cache"
    path = cache.entry_path("demo", key)
    path.write_bytes(b"garbage")  # a corrupt entry is recomputed, never trusted
    assert torch.equal(cache.cached("demo", key, compute), torch.arange(3))
    assert len(calls) == 2
    assert cache.load_entry("demo", {"model": "other", "n": 3}) is None


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "entry.pt"

    def failing_writer(tmp):
        tmp.write_bytes(b"half")
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError, match="interrupted"):
        cache.atomic_write(target, failing_writer)
    assert list(tmp_path.iterdir()) == []


def test_two_views_share_a_latent_and_noise_scales():
    clean = make_two_views(200, noise=0.0, seed=3)
    again = make_two_views(200, noise=0.0, seed=3)
    assert clean.x.shape == (200, 64) and clean.y.shape == (200, 48) and clean.z.shape == (200, 3)
    assert torch.equal(clean.x, again.x), "seeded draws must be reproducible"
    noisy = make_two_views(200, noise=2.0, seed=3)
    assert torch.allclose(noisy.z, clean.z)
    residual = (noisy.x - clean.x).std()
    assert 1.8 < residual < 2.2, "noise std is relative to the unit-variance signal"
    with pytest.raises(ValueError, match="noise must be >= 0"):
        make_two_views(10, noise=-1)
    with pytest.raises(ValueError, match="n must be at least 2"):
        make_two_views(1)
    assert make_noise_layers(20, 3, 5).shape == (20, 3, 5)


def _old_digest(key):
    """The digest before keys were hashed exactly: plain keys must keep it (the warm cache stays
    valid)."""
    import hashlib
    import json

    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]


def test_plain_keys_keep_their_digest():
    for key in [{"model": "m", "n": 3},
                {"grid": [[0.1, 2.0], [3, None]], "flag": True, "nested": {"a": [1, "x"]}},
                {"seeds": (0, 1, 2), "lr": 1e-3, "inf": float("inf")}, {}]:
        assert cache.key_digest(key) == _old_digest(key), key


def test_keys_are_hashed_exactly_and_do_not_collide():
    """str() abbreviates large tensors and arrays, and JSON turns {1: ...} into {"1": ...}: both
    collided."""
    import numpy as np

    a = torch.zeros(10_000)
    b = a.clone()
    b[5000] = 1.0  # the middle of a tensor str() prints as "..."
    assert str(a) == str(b)
    assert cache.key_digest({"x": a}) != cache.key_digest({"x": b})
    assert cache.key_digest({"x": a}) == cache.key_digest({"x": a.clone()})
    assert cache.key_digest({"x": a}) != cache.key_digest({"x": a.double()})  # dtype counts
    # shape counts
    assert cache.key_digest({"x": a}) != cache.key_digest({"x": a.reshape(100, 100)})
    arr = np.zeros(5000)
    arr2 = arr.copy()
    arr2[2500] = 1e-9
    assert cache.key_digest({"x": arr}) != cache.key_digest({"x": arr2})
    assert (cache.key_digest({"t": torch.tensor([0.12345678])})
            != cache.key_digest({"t": torch.tensor([0.1234568])}))
    assert cache.key_digest({"d": {1: "a"}}) != cache.key_digest({"d": {"1": "a"}})
    assert (cache.key_digest({"n": np.int64(3)}) == cache.key_digest({"n": 3})
            != cache.key_digest({"n": "3"}))
    assert cache.key_digest({"d": {1: "a", 2: "b"}}) == cache.key_digest({"d": {2: "b", 1: "a"}})


def test_keys_the_hash_cannot_represent_are_rejected_naming_where():
    import numpy as np

    with pytest.raises(ValueError, match=r"key\['s'\] is a set.*sorted"):
        cache.key_digest({"s": {1, 2}})
    with pytest.raises(ValueError, match=r"key\['f'\] is a function"):
        cache.key_digest({"f": lambda: 1})
    with pytest.raises(ValueError, match=r"key\['a'\]\[1\] is an object array"):
        cache.key_digest({"a": [1, np.array([object()])]})
    with pytest.raises(ValueError, match="key must be a dict"):
        cache.key_digest([1, 2])
    with pytest.raises(ValueError, match="reserved key"):
        cache.key_digest({"__cache_tensor__": 1})


def test_colliding_keys_get_separate_entries(tmp_path, monkeypatch):
    monkeypatch.setenv("BOOK_CACHE", str(tmp_path))
    a = torch.zeros(10_000)
    b = a.clone()
    b[5000] = 1.0
    assert cache.cached("demo", {"x": a}, lambda: "from a") == "from a"
    assert cache.cached("demo", {"x": b}, lambda: "from b") == "from b"  # not the stale "from a"
    assert cache.cached("demo", {"k": {1: 0}}, lambda: "int") == "int"
    assert cache.cached("demo", {"k": {"1": 0}}, lambda: "str") == "str"
    assert cache.cached("demo", {"k": {1: 0}}, lambda: "again") == "int"


def test_empty_book_cache_is_rejected(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    for value in ("", "  "):
        monkeypatch.setenv("BOOK_CACHE", value)
        with pytest.raises(ValueError, match="BOOK_CACHE is set but empty"):
            cache.cache_root()
    assert list(tmp_path.iterdir()) == []  # nothing was written into the current directory


def test_entries_of_the_wrong_structure_are_recomputed(tmp_path, monkeypatch):
    import numpy as np

    monkeypatch.setenv("BOOK_CACHE", str(tmp_path))
    key = {"model": "m"}
    path = cache.entry_path("demo", key)
    for wrong in [{"key": key}, {"key": np.arange(3), "value": 1},
                  {"key": key, "value": 1, "x": 2}, [key, 1]]:
        torch.save(wrong, path)
        assert cache.load_entry("demo", key) is None
        assert cache.cached("demo", key, lambda: {"weights": 1}) == {"weights": 1}
    # a value of the wrong structure for its reader: validate says so and it is recomputed
    cache.save_entry("demo", key, ["not", "a", "dict"])
    # raises AttributeError on a list: counts as invalid
    has_weights = lambda v: "weights" in v.keys()
    assert cache.cached("demo", key, lambda: {"weights": 2},
                        validate=has_weights) == {"weights": 2}
    assert cache.cached("demo", key, lambda: {"weights": 3},
                        validate=has_weights) == {"weights": 2}
    with pytest.raises(ValueError, match="fails validate"):
        cache.cached("demo", {"model": "n"}, lambda: [], validate=has_weights)


def test_stale_temporaries_are_removed_on_the_next_write(tmp_path):
    import os
    import time

    old_file = tmp_path / ".entry.pt.abc123.tmp"
    old_file.write_bytes(b"half")
    old_dir = tmp_path / ".folder.xyz.tmp"
    old_dir.mkdir()
    (old_dir / "part").write_bytes(b"half")
    fresh = tmp_path / ".other.pt.def456.tmp"  # a writer at work in another process
    fresh.write_bytes(b"busy")
    keep = tmp_path / "notes.tmp"  # not a writer's temporary
    keep.write_text("x")
    hours_ago = time.time() - 2 * 3600
    for p in (old_file, old_dir, old_dir / "part", keep):
        os.utime(p, (hours_ago, hours_ago))
    cache.atomic_write(tmp_path / "entry.pt", lambda tmp: tmp.write_bytes(b"done"))
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.pt.def456.tmp", "entry.pt",
                                                          "notes.tmp"]


def test_parameter_values_are_checked_against_the_annotations():
    notebook = jupytext.reads(NOTEBOOK + 'lr: float = 0.1\nks: list[int] = [1]\n'
                                         'name: str | None = None\n'
                                         'where: Path | None = None\n', fmt="py:percent")
    # not understood: not checked
    assert check_parameters("demo", notebook, {"where": "/x"}) == {"where": "/x"}
    assert (check_parameters("demo", notebook, {"n_samples": 3, "lr": "1e-3"})
            == {"n_samples": 3, "lr": 0.001})
    assert check_parameters("demo", notebook,
                            {"lr": 1, "ks": [1, 2], "name": None})["ks"] == [1, 2]
    for name, value in [("n_samples", "ten"), ("n_samples", 2.5), ("n_samples", True),
                        ("lr", "fast"), ("ks", 5), ("ks", [1, "a"]), ("scale", 3), ("name", 4)]:
        with pytest.raises(ValueError, match=rf"parameter '{name}' is declared `{name}: "):
            check_parameters("demo", notebook, {name: value})


def test_every_chapter_and_parameter_is_checked_before_the_first_chapter_runs(monkeypatch):
    import helpers.run as run

    started = []
    monkeypatch.setattr(run, "execute_chapter", lambda chapter, *a, **k: started.append(chapter))
    with pytest.raises(ValueError, match="unknown chapter 'nope'"):
        run.main(["primer", "prh_ood", "nope"])
    with pytest.raises(ValueError, match=r"parameter 'n_perm' is declared `n_perm: int`"):
        run.main(["primer", "-p", "n_perm", "1.5"])
    with pytest.raises(ValueError, match=r"-p n_perm '\[1,': the value is not valid YAML"):
        run.main(["primer", "-p", "n_perm", "[1,"])
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) \['n_prem'\]"):
        run.main(["primer", "-p", "n_prem", "5"])
    monkeypatch.setenv("BOOK_CACHE", "")
    with pytest.raises(ValueError, match="BOOK_CACHE is set but empty"):
        run.main(["primer"])
    assert started == [], "nothing may run before every chapter and parameter is checked"


def test_the_book_scales_fit_the_parameter_annotations():
    """Every chapter's smoke and full overrides in book/scales.yaml pass the type check."""
    import helpers.run as run

    chapters = [c for c in run.CHAPTERS if (run.BOOK_DIR / f"{c}.py").exists()]
    for scale in run.SCALES:
        run.check_run(chapters, scale, {})


def test_chapters_run_two_at_a_time_and_a_reuser_waits_for_its_source(tmp_path, monkeypatch):
    import json

    import helpers.run as run
    from run_stand_in import stand_in_chapter  # a light module: each spawned process imports it

    monkeypatch.setenv("RUN_TEST_LOG", str(tmp_path))
    chapters = ["primer", "random_images", "prh_ood", "reprpo_dpo"]
    results = run.execute_chapters(chapters, "smoke", jobs=2, output_dir=tmp_path / "out",
                                   execute=stand_in_chapter)
    assert [r.chapter for r in results] == chapters
    # a failure is reported, not raised
    assert [r.ok for r in results] == [True, True, True, False]
    times = {c: json.loads((tmp_path / f"{c}.json").read_text()) for c in chapters}
    # the long chapter first, then reading order
    first, second = times["reprpo_dpo"], times["primer"]
    assert first["start"] < second["end"] and second["start"] < first["end"], "two at a time"
    assert times["random_images"]["start"] >= times["prh_ood"]["end"], (
        "chapter 2 reuses chapter 1's cache")
    assert times["prh_ood"]["start"] >= min(first["end"], second["end"]), "never three at a time"
    assert times["primer"]["output"] == str(tmp_path / "out" / "primer.ipynb")
    with pytest.raises(ValueError, match="jobs=0: need at least 1"):
        run.execute_chapters(chapters, jobs=0)
