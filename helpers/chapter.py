"""Bookkeeping every chapter shares: stage timing, interval and verdict formatting, glued prose.

A chapter times its stages with one :class:`StageTimer`, formats every interval with
:func:`format_interval` (or :func:`format_draws` for bootstrap draws), glues computed phrases
with :func:`glue_text`, and closes with :func:`verdict_table`, built from :class:`Verdict` rows
whose words come from :func:`verdict_word`, so the table and the prose read from one place.

Example:
    >>> format_interval(0.5, 0.41, 0.62)
    '0.500 [0.410, 0.620]'
    >>> format_interval(0.02, -0.01, 0.05, signed=True, digits=2)
    '+0.02 [-0.01, +0.05]'
    >>> format_interval(float("nan"), 0.1, 0.2)
    'undefined'
    >>> verdict_word(supported=True), verdict_word(supported=False), verdict_word(None)
    ('replicated', 'not replicated', 'undecided')
    >>> above_zero(0.1, 0.3), above_zero(-0.3, -0.1), above_zero(-0.1, 0.3)
    (True, False, None)
"""
from __future__ import annotations

import math
import os
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Iterator, Sequence

import numpy as np
import pandas as pd

from helpers import stats

VERDICTS = ("replicated", "not replicated", "changed", "undecided")
"""The words a verdict table may use: the source's claim holds, fails, holds in a changed form, or
the data cannot decide (an undefined statistic or an interval that straddles the threshold)."""


def _cpu_seconds() -> float:
    """CPU seconds of this process, its joined child processes and the live workers of the
    shared pool (:func:`helpers.parallel.worker_cpu_seconds`)."""
    from helpers.parallel import worker_cpu_seconds

    t = os.times()
    return time.process_time() + t.children_user + t.children_system + worker_cpu_seconds()


class StageTimer:
    """Wall and CPU seconds per named stage of a chapter; stages may repeat and accumulate.

    CPU seconds are this process's (``time.process_time``) plus those of its child processes:
    finished ones and the shared pool's live workers (:mod:`helpers.parallel`). That is what a
    quiet machine would spend on the chapter, even if the wall clock was shared with other work.
    """

    def __init__(self) -> None:
        self._t0 = (time.time(), _cpu_seconds())
        self.stages: dict[str, list[float]] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time the ``with`` block under ``name`` (added to earlier blocks of the same name)."""
        wall, cpu = time.time(), _cpu_seconds()
        try:
            yield
        finally:
            rec = self.stages.setdefault(name, [0.0, 0.0])
            rec[0] += time.time() - wall
            rec[1] += _cpu_seconds() - cpu

    def wall(self, name: str) -> float:
        """Wall seconds recorded for ``name`` so far (0 if it never ran)."""
        return self.stages.get(name, [0.0, 0.0])[0]

    def table(self) -> pd.DataFrame:
        """Every stage and a ``total`` row since the timer was made, rounded to 0.1 s."""
        rows = dict(self.stages)
        rows["total"] = [time.time() - self._t0[0], _cpu_seconds() - self._t0[1]]
        return pd.DataFrame(rows, index=["wall s", "CPU s"]).T.round(1)


def format_interval(mean: float, lo: float, hi: float, *, signed: bool = False,
                    digits: int = 3) -> str:
    """``"mean [lo, hi]"`` with a fixed number of decimals; ``"undefined"`` if any part is NaN."""
    if any(not math.isfinite(float(v)) for v in (mean, lo, hi)):
        return "undefined"
    spec = f"{'+' if signed else ''}.{digits}f"
    return f"{mean:{spec}} [{lo:{spec}}, {hi:{spec}}]"


def format_draws(draws: Sequence[float] | np.ndarray, *, signed: bool = False, digits: int = 3,
                 level: float = 0.95, max_undefined: float = 0.0) -> str:
    """The mean of bootstrap ``draws`` with their percentile interval, as :func:`format_interval`.

    Args:
        max_undefined: the largest fraction of NaN draws (degenerate resamples, e.g. a ratio
            whose denominator was not positive) tolerated; up to it, the defined draws are
            summarised, beyond it (or with no draws) the result is ``"undefined"``.

    Example:
        >>> format_draws([0.2, 0.4, float("nan")], max_undefined=0.5, digits=1)
        '0.3 [0.2, 0.4]'
        >>> format_draws([0.2, 0.4, float("nan")])
        'undefined'
    """
    x = np.asarray(draws, dtype=float)
    if not 0.0 <= max_undefined < 1.0:
        raise ValueError(f"max_undefined must be a fraction in [0, 1); got {max_undefined}")
    defined = np.isfinite(x)
    if x.size == 0 or 1.0 - defined.mean() > max_undefined:
        return "undefined"
    x = x[defined]
    lo, hi = stats.interval(x, level=level)
    return format_interval(float(x.mean()), lo, hi, signed=signed, digits=digits)


def format_p(p: float, n_perm: int) -> str:
    """A permutation p-value; at its floor it is written ``p <= 1/(n+1)``, as the data allow no
    less."""
    if not math.isfinite(p):
        return "p undefined"
    floor = 1.0 / (n_perm + 1)
    if p <= floor * (1 + 1e-9):
        return f"p <= 1/{n_perm + 1}"
    return f"p = {p:.3g}"


def bonferroni(alpha: float, n_tests: int, n_perm: int | None = None) -> float:
    """The per-test threshold ``alpha / n_tests`` for a family of ``n_tests`` comparisons.

    With ``n_perm``, also checks that a permutation p-value can reach it: the floor
    ``1 / (n_perm + 1)`` must lie below the threshold, or no test in the family could pass.

    Example:
        >>> bonferroni(0.05, 10, n_perm=999)
        0.005
    """
    if not 0 < alpha < 1 or n_tests < 1:
        raise ValueError(f"need 0 < alpha < 1 and n_tests >= 1, got alpha={alpha}, "
                         f"n_tests={n_tests}")
    threshold = alpha / n_tests
    if n_perm is not None and 1 / (n_perm + 1) >= threshold:
        raise ValueError(f"n_perm={n_perm} puts the p floor 1/{n_perm + 1} at or above the "
                         f"threshold {threshold:.4g} ({n_tests} tests); use n_perm >= "
                         f"{int(1 / threshold)}")
    return threshold


def excludes(lo: float, hi: float, value: float = 0.0) -> bool | None:
    """Whether the interval [lo, hi] lies wholly above or below ``value``; None if undefined."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return None
    return lo > value or hi < value


def above_zero(lo: float, hi: float) -> bool | None:
    """For a claim "the difference is positive": True if [lo, hi] lies above 0, False if below,
    None (undecided) if it straddles 0 or is undefined."""
    side = excludes(lo, hi)
    return None if not side else bool(lo > 0)


def verdict_word(supported: bool | None, changed: bool = False) -> str:
    """The verdict for a source claim: ``supported`` True/False/None (undecided); ``changed`` marks
    a claim that holds only in a different form than the source stated."""
    if supported is None:
        return "undecided"
    if changed:
        return "changed"
    return "replicated" if supported else "not replicated"


@dataclass(frozen=True)
class Verdict:
    """One row of a chapter's closing table: the claim, our number with its interval and control,
    the threshold stated before the number was seen, and the verdict word."""

    claim: str
    source: str
    number: str
    control: str
    threshold: str
    verdict: str

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")


def verdict_table(rows: Sequence[Verdict]) -> pd.DataFrame:
    """The chapter's closing table: one row per claim, the source's claim first, the verdict
    last."""
    if not rows:
        raise ValueError("verdict_table needs at least one Verdict row; pass the chapter's claims")
    df = pd.DataFrame([asdict(r) for r in rows])
    df.columns = ["claim", "source", "our number [95% CI]", "control", "threshold (stated first)",
                  "verdict"]
    return df.set_index("claim")


def glue_text(name: str, text: str) -> None:
    """Glue a computed phrase (words chosen from the numbers) for ``{glue:md}`name``` in the
    prose."""
    from IPython.display import Markdown
    from myst_nb import glue

    glue(name, Markdown(text), display=False)


def glue_texts(texts: dict[str, str]) -> None:
    """Glue several computed phrases at once, ``{name: text}``, each as :func:`glue_text` does."""
    for name, text in texts.items():
        glue_text(name, text)


def glue_values(values: dict[str, object]) -> None:
    """Glue several values at once, ``{name: value}``, for ``{glue:text}`name``` in the prose
    (as ``myst_nb.glue(name, value, display=False)``; formats such as ``:.3f`` apply there)."""
    from myst_nb import glue

    for name, value in values.items():
        glue(name, value, display=False)
