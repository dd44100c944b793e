"""binder/publish_notebooks.py: the tree the launch buttons open (fast; the built-book check that
every launch link lands in it is in tests/test_book.py)."""
from __future__ import annotations

import importlib.util
import subprocess
import sys

import nbformat
import pytest

from helpers.run import CHAPTERS, REPO_ROOT

SCRIPT = REPO_ROOT / "binder" / "publish_notebooks.py"
spec = importlib.util.spec_from_file_location("publish_notebooks", SCRIPT)
publisher = importlib.util.module_from_spec(spec)
spec.loader.exec_module(publisher)


@pytest.fixture
def executed(tmp_path):
    folder = tmp_path / "executed"
    folder.mkdir()
    for chapter in CHAPTERS:
        notebook = nbformat.v4.new_notebook()
        notebook.cells = [nbformat.v4.new_markdown_cell(f"# {chapter}"),
                          nbformat.v4.new_code_cell("x = 1")]
        nbformat.write(notebook, folder / f"{chapter}.ipynb")
    return folder


def test_published_notebooks_start_with_one_install_cell(executed, tmp_path):
    out = tmp_path / "out"
    written = publisher.publish(executed, out)
    assert [p.name for p in written] == [f"{c}.ipynb" for c in CHAPTERS]
    url, branch = publisher.repository(REPO_ROOT / "_config.yml")
    for path in written:
        cells = nbformat.read(path, as_version=4).cells
        first = cells[0]
        assert {publisher.INSTALL_TAG, "remove-cell"} <= set(first.metadata["tags"])
        assert first.metadata["jupyter"]["source_hidden"] and first.metadata["cellView"] == "form"
        assert f'"{url}", "{branch}"' in first.source
        compile(first.source, "install-cell", "exec")
        assert [c.source for c in cells[1:]] == [f"# {path.stem}", "x = 1"]
    for needed in ("helpers/__init__.py", "binder/requirements.txt", "binder/postBuild",
                   "pyproject.toml", "book/scales.yaml", "book/primer.py"):
        assert (out / needed).exists(), needed
    assert not list(out.rglob("__pycache__"))
    # publishing a published notebook again keeps a single install cell
    again = publisher.publish(out / "book", tmp_path / "again")
    cells = nbformat.read(again[0], as_version=4).cells
    assert sum(publisher.INSTALL_TAG in c.metadata.get("tags", []) for c in cells) == 1


def test_install_cell_does_nothing_where_helpers_is_installed(tmp_path):
    cell = publisher.install_cell("https://example.invalid/book", "notebooks")
    run = subprocess.run([sys.executable, "-c", cell.source], cwd=tmp_path,
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "nothing to set up" in run.stdout
    assert not (tmp_path / "book-source").exists()


def test_publish_refuses_missing_notebooks_and_configs_without_a_branch(executed, tmp_path):
    (executed / f"{CHAPTERS[0]}.ipynb").unlink()
    with pytest.raises(ValueError, match="make book"):
        publisher.publish(executed, tmp_path / "out")
    config = tmp_path / "_config.yml"
    config.write_text("repository:\n  url: https://example.invalid/book\n")
    with pytest.raises(ValueError, match="repository.branch"):
        publisher.repository(config)


def _pins(path):
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-") and "==" in line:
            name, version = line.split("==")
            pins[name.strip().lower()] = version.strip()
    return pins


def test_binder_pins_match_the_tested_set_with_cpu_torch():
    binder = _pins(REPO_ROOT / "binder" / "requirements.txt")
    tested = _pins(REPO_ROOT / "requirements.txt")
    for name in ("torch", "torchvision"):
        assert binder[name] == f"{tested[name]}+cpu", f"binder pins {name}=={binder[name]}"
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in (
        REPO_ROOT / "binder" / "requirements.txt").read_text()
    shared = set(binder) & set(tested) - {"torch", "torchvision"}
    assert {"numpy", "timm", "plotly", "transformers", "jupytext"} <= shared
    differ = {name: (binder[name], tested[name])
              for name in shared if binder[name] != tested[name]}
    assert not differ, f"binder/requirements.txt and requirements.txt disagree: {differ}"
