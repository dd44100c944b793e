"""Every chapter executes at smoke scale and declares its parameters properly."""
from __future__ import annotations

import nbformat
import pytest

from helpers.run import BOOK_DIR, CHAPTERS, check_parameters, load_overrides, parameter_names


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_has_typed_parameters_and_known_overrides(chapter):
    import jupytext

    notebook = jupytext.read(BOOK_DIR / f"{chapter}.py")
    names = parameter_names(notebook)
    assert names[0] == "scale", "the first parameter must be `scale` (set by helpers.run)"
    for scale in ("smoke", "full"):
        check_parameters(chapter, notebook, load_overrides(chapter, scale))
    cell = next(c for c in notebook.cells if "parameters" in c.metadata.get("tags", []))
    untyped = [line for line in cell.source.splitlines()
               if "=" in line and ":" not in line.split("=")[0]]
    assert not untyped, f"parameters need type hints (papermill --help-notebook): {untyped}"


@pytest.mark.slow
@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_executes_at_smoke_scale(smoke_book, chapter):
    result = smoke_book.results[chapter]
    assert result.ok, result.error
    notebook = nbformat.read(smoke_book.root / "book" / f"{chapter}.ipynb", as_version=4)
    errors = [o for c in notebook.cells if c.cell_type == "code"
              for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors, f"{chapter}: error outputs in the executed notebook"
    images = [o for c in notebook.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if "image/png" in o.get("data", {}) or "text/html" in o.get("data", {})]
    assert images, f"{chapter}: no figure in the executed notebook"
