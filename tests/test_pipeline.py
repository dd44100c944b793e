"""The runner, the cache and the primer's data world: fast unit tests."""
from __future__ import annotations

import jupytext
import pytest
import torch

from helpers import cache
from helpers.run import check_parameters, load_overrides, main, parameter_names, time_table, ChapterResult
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
    table = time_table([ChapterResult("a", 1.0, True), ChapterResult("b", 2.5, False, "boom")])
    assert "FAILED" in table and "3.5" in table


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
