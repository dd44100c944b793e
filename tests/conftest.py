"""Shared fixtures: the smoke-scale book (every chapter executed once per session, then built).

The executed smoke notebooks and the HTML go into a temporary copy of the book's sources, so
`make test` never overwrites the book-scale notebooks that `make book` wrote into ``book/``.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from helpers.run import CHAPTERS, BOOK_DIR, REPO_ROOT, ChapterResult, execute_chapters, time_table

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("PYOPENGL_PLATFORM", "egl")


def pytest_collection_modifyitems(config, items):
    import torch

    if not torch.cuda.is_available():
        skip_gpu = pytest.mark.skip(reason="needs CUDA; no GPU on this machine")
        for item in items:
            if "gpu" in item.keywords:
                item.add_marker(skip_gpu)


_SMOKE_TABLE: list[str] = []


def pytest_terminal_summary(terminalreporter):
    """Print the per-chapter smoke time table (captured during the fixture) at the end of the
    run."""
    if _SMOKE_TABLE:
        terminalreporter.write_sep("-", "chapters at smoke scale")
        terminalreporter.write_line(_SMOKE_TABLE[0])


@dataclass
class SmokeBook:
    root: Path  # a copy of the book sources holding the executed smoke notebooks
    results: dict[str, ChapterResult]
    build: subprocess.CompletedProcess | None = None

    @property
    def html(self) -> Path:
        return self.root / "_build" / "html"


@pytest.fixture(scope="session")
def smoke_book(tmp_path_factory) -> SmokeBook:
    """Execute every chapter at smoke scale into a temporary copy of the book."""
    root = tmp_path_factory.mktemp("smoke_book")
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy(REPO_ROOT / name, root / name)
    shutil.copytree(BOOK_DIR, root / "book",
                    ignore=shutil.ignore_patterns("*.ipynb", "*.py", ".*"))
    # two at a time: each chapter runs one torch thread, and CI has two cores
    results = {r.chapter: r for r in execute_chapters(list(CHAPTERS), "smoke", jobs=2,
                                                      output_dir=root / "book")}
    _SMOKE_TABLE.append(time_table(list(results.values())))
    return SmokeBook(root, results)


@pytest.fixture(scope="session")
def built_book(smoke_book: SmokeBook) -> SmokeBook:
    """Build the smoke notebooks into HTML with ``jupyter-book build --all -W -n --keep-going``."""
    jb = Path(sys.executable).parent / "jupyter-book"
    smoke_book.build = subprocess.run(
        [str(jb), "build", "--all", "-W", "-n", "--keep-going", str(smoke_book.root)],
        capture_output=True, text=True,
    )
    return smoke_book
