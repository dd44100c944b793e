"""Tests for helpers.chapter: the bookkeeping every chapter shares."""
from __future__ import annotations

import doctest
import time

import numpy as np
import pytest

from helpers import chapter


def test_doctests():
    assert doctest.testmod(chapter).failed == 0


def test_stage_timer_accumulates_repeated_stages_and_adds_a_total():
    timer = chapter.StageTimer()
    for _ in range(2):
        with timer.stage("a"):
            time.sleep(0.01)
    table = timer.table()
    assert list(table.index) == ["a", "total"]
    assert timer.wall("a") >= 0.02 and timer.wall("never") == 0.0
    assert table.loc["total", "wall s"] >= table.loc["a", "wall s"]


def test_stage_timer_records_a_stage_that_raised():
    timer = chapter.StageTimer()
    with pytest.raises(RuntimeError):
        with timer.stage("boom"):
            raise RuntimeError("x")
    assert "boom" in timer.stages


def test_format_draws_and_undefined_values():
    draws = np.linspace(0.0, 1.0, 1001)
    assert chapter.format_draws(draws, digits=2) == "0.50 [0.03, 0.97]"
    assert chapter.format_draws([]) == "undefined"
    assert chapter.format_draws([0.1, float("nan")]) == "undefined"
    some_nan = [0.1] * 39 + [0.3] * 60 + [float("nan")]  # 1% undefined
    assert chapter.format_draws(some_nan, max_undefined=0.025, digits=1) == "0.2 [0.1, 0.3]"
    assert chapter.format_draws(some_nan, max_undefined=0.005) == "undefined"
    with pytest.raises(ValueError, match="max_undefined must be a fraction"):
        chapter.format_draws([0.1], max_undefined=1.0)


def test_format_p_writes_the_permutation_floor():
    assert chapter.format_p(1 / 1000, 999) == "p <= 1/1000"
    assert chapter.format_p(0.0312, 999) == "p = 0.0312"
    assert chapter.format_p(float("nan"), 999) == "p undefined"


def test_excludes_and_verdict_words():
    assert chapter.excludes(0.1, 0.3) is True
    assert chapter.excludes(-0.3, -0.1) is True
    assert chapter.excludes(-0.1, 0.3) is False
    assert chapter.excludes(float("nan"), 0.3) is None
    assert chapter.verdict_word(True, changed=True) == "changed"


def test_verdict_table_rejects_unknown_words_and_empty_tables():
    with pytest.raises(ValueError, match="verdict must be one of"):
        chapter.Verdict("c", "s", "1", "ctrl", "t", "probably")
    with pytest.raises(ValueError, match="at least one Verdict"):
        chapter.verdict_table([])
    row = chapter.Verdict("PRH holds OOD", "blog", "0.10 [0.05, 0.15]", "random init", "CI > 0",
                          "replicated")
    table = chapter.verdict_table([row])
    assert table.loc["PRH holds OOD", "verdict"] == "replicated"


def test_bonferroni_checks_the_permutation_floor():
    from helpers.chapter import bonferroni

    assert bonferroni(0.05, 4) == 0.0125
    with pytest.raises(ValueError, match="p floor 1/100 at or above the threshold"):
        bonferroni(0.05, 10, n_perm=99)
    with pytest.raises(ValueError, match="n_tests"):
        bonferroni(0.05, 0)


def test_glue_texts_glues_each_phrase_as_markdown(monkeypatch):
    import myst_nb
    from IPython.display import Markdown

    seen = {}
    monkeypatch.setattr(myst_nb, "glue", lambda name, value, display: seen.update({name: value}))
    chapter.glue_texts({"a_md": "one phrase", "b_md": "another"})
    assert set(seen) == {"a_md", "b_md"} and isinstance(seen["a_md"], Markdown)
    assert seen["b_md"].data == "another"


def test_glue_values_glues_each_value_undisplayed(monkeypatch):
    import myst_nb

    seen = {}
    monkeypatch.setattr(myst_nb, "glue",
                        lambda name, value, display: seen.update({name: (value, display)}))
    chapter.glue_values({"n_seeds": 50, "tol": 0.1})
    assert seen == {"n_seeds": (50, False), "tol": (0.1, False)}
