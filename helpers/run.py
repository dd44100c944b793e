"""The chapter runner: jupytext source -> papermill execution at a scale -> executed notebook.

Usage::

    python -m helpers.run --scale smoke|book|full [--jobs N] [chapter ...]

Each chapter is a jupytext percent-format file ``book/<stem>.py`` with a ``parameters`` cell
holding its ``book``-scale values. ``book/scales.yaml`` holds the ``smoke`` and ``full``
overrides per chapter. The runner injects ``scale`` plus those overrides, executes the
notebook with its working directory in ``book/``, writes ``book/<stem>.ipynb`` next to its
source, and prints a per-chapter time table. Unknown parameter names are an error (papermill
alone only warns), and so is a value whose type does not match the parameters cell's annotation
(``n_perm: int = 100`` rejects ``-p n_perm 1.5``). Every chapter and parameter is checked before
the first chapter runs, so a typo in the last name costs seconds, not the earlier chapters'
runtime. A failing chapter is reported with the chapter and the failing cell.

Every chapter runs one torch thread, so ``--jobs 2`` (what ``make book`` uses) runs two chapters at
a time on two cores. A chapter that reuses another's cache entries (``REUSES_CACHE_OF``) starts
only after that chapter has finished, so no entry is computed twice.
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
BOOK_DIR = REPO_ROOT / "book"
SCALES = ("smoke", "book", "full")

# Reading order; also the order of `_toc.yml`.
CHAPTERS = (
    "primer", "prh_ood", "random_images", "superposition_llc", "reprpo_dpo", "vision_action",
)

# Chapter -> chapters whose cache entries it reuses (chapter 2 reuses chapter 1's shapes zoo).
# With --jobs > 1 it waits for them, so no entry is computed twice.
REUSES_CACHE_OF: dict[str, tuple[str, ...]] = {"random_images": ("prh_ood",)}
# With --jobs > 1 these start first: the longest at book scale (cold, measured: chapter 5
# ~54 CPU minutes, chapter 4 ~17), so the short ones fill the other lane.
STARTS_FIRST: tuple[str, ...] = ("vision_action", "reprpo_dpo")


NO_PARAMETERS_CELL = ("the chapter has no cell tagged 'parameters'; "
                      "add `# %% tags=[\"parameters\"]`")


@dataclass
class ChapterResult:
    """Outcome of executing one chapter."""

    chapter: str
    seconds: float
    ok: bool
    error: str = ""
    # user + system CPU seconds of the chapter's kernel and every process it waited for (its
    # workers): the cost on quiet cores, whatever else shares the machine
    cpu_seconds: float = float("nan")


class ChapterError(RuntimeError):
    """A chapter failed to execute; the message names the chapter and the cell."""


def chapter_source(chapter: str) -> Path:
    """The jupytext source of ``chapter`` (a stem such as ``"primer"``)."""
    path = BOOK_DIR / f"{chapter}.py"
    if not path.exists():
        known = ", ".join(c for c in CHAPTERS if (BOOK_DIR / f"{c}.py").exists())
        raise ValueError(f"unknown chapter {chapter!r}: no file {path}. Known chapters: {known}")
    return path


def load_overrides(chapter: str, scale: str, scales_file: Path | None = None) -> dict[str, Any]:
    """The parameters to inject for ``chapter`` at ``scale`` (``scale`` itself included)."""
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; expected one of {SCALES}")
    scales_file = scales_file or BOOK_DIR / "scales.yaml"
    table = yaml.safe_load(scales_file.read_text()) or {}
    per_scale = table.get(chapter) or {}
    unknown_scales = set(per_scale) - {"smoke", "full"}
    if unknown_scales:
        raise ValueError(
            f"{scales_file.name}: chapter {chapter!r} has scales {sorted(unknown_scales)}; only "
            "'smoke' and 'full' belong there (the 'book' values live in the parameters cell)"
        )
    overrides = dict(per_scale.get(scale) or {}) if scale != "book" else {}
    return {"scale": scale, **overrides}


def parameter_names(notebook: Any) -> list[str]:
    """Names assigned in the notebook's ``parameters`` cell."""
    import ast

    for cell in notebook.cells:
        if cell.cell_type == "code" and "parameters" in cell.metadata.get("tags", []):
            tree = ast.parse(cell.source)
            names = []
            for node in tree.body:
                targets = (node.targets if isinstance(node, ast.Assign)
                           else [getattr(node, "target", None)])
                names += [t.id for t in targets if isinstance(t, ast.Name)]
            return names
    raise ValueError(NO_PARAMETERS_CELL)


def parameter_types(notebook: Any) -> dict[str, str]:
    """The annotation of each annotated name in the ``parameters`` cell (``{"n_perm": "int"}``)."""
    import ast

    for cell in notebook.cells:
        if cell.cell_type == "code" and "parameters" in cell.metadata.get("tags", []):
            body = ast.parse(cell.source).body
            return {node.target.id: ast.unparse(node.annotation) for node in body
                    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)}
    raise ValueError(NO_PARAMETERS_CELL)


_PLAIN_TYPES = {"int": int, "float": float, "str": str, "bool": bool, "list": list, "dict": dict}


def _matches(value: Any, annotation: str) -> tuple[bool, Any]:
    """``(ok, value)``: whether ``value`` fits ``annotation`` and the value to inject.

    Understands ``int``, ``float`` (an int fits; so does a string such as ``"1e-3"``, which YAML
    reads as text), ``str``, ``bool``, ``list``/``dict`` (also ``list[int]``-style, elements
    checked), and ``X | None`` / ``Optional[X]``. Any other annotation is not checked.
    """
    a = annotation.replace(" ", "")
    if a.startswith("Optional[") and a.endswith("]"):
        a = a[len("Optional["):-1] + "|None"
    if "|" in a:
        parts = a.split("|")
        if value is None and "None" in parts:
            return True, None
        for part in parts:  # an annotation this check does not understand matches anything
            if part != "None":
                ok, out = _matches(value, part)
                if ok:
                    return True, out
        return False, value
    outer, _, inner = a.partition("[")
    if outer not in _PLAIN_TYPES:
        return True, value  # an annotation this check does not understand: papermill decides
    if outer == "float":
        if isinstance(value, str):
            try:
                return True, float(value)
            except ValueError:
                return False, value
        return (isinstance(value, (int, float)) and not isinstance(value, bool)), value
    if outer == "int":
        return (isinstance(value, int) and not isinstance(value, bool)), value
    if not isinstance(value, _PLAIN_TYPES[outer]):
        return False, value
    if outer == "list" and inner.endswith("]") and "," not in inner:
        results = [_matches(v, inner[:-1]) for v in value]
        return all(ok for ok, _ in results), [v for _, v in results]
    return True, value


def check_parameters(chapter: str, notebook: Any, parameters: dict[str, Any]) -> dict[str, Any]:
    """Reject parameters the chapter does not declare (papermill would only warn) or whose value
    does not fit the annotation in its parameters cell.

    Returns:
        The parameters to inject (a float parameter given as text such as ``"1e-3"`` becomes a
        float).

    Raises:
        ValueError: naming the chapter, the parameter, its annotation and the value.
    """
    declared = parameter_names(notebook)
    unknown = sorted(set(parameters) - set(declared))
    if unknown:
        raise ValueError(
            f"chapter {chapter!r}: unknown parameter(s) {unknown}; its parameters cell declares "
            f"{declared}"
        )
    types = parameter_types(notebook)
    checked = dict(parameters)
    for name, value in parameters.items():
        if name not in types:
            continue
        ok, checked[name] = _matches(value, types[name])
        if not ok:
            raise ValueError(
                f"chapter {chapter!r}: parameter {name!r} is declared `{name}: {types[name]}` "
                f"but got {value!r} ({type(value).__name__}); pass a {types[name]} "
                f"(e.g. -p {name} ...)"
            )
    return checked


def parse_parameter(name: str, text: str) -> Any:
    """The value of ``-p NAME TEXT``, parsed as YAML; a ``ValueError`` naming the parameter if it
    is not YAML."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        problem = str(err).splitlines()[0]
        raise ValueError(f"-p {name} {text!r}: the value is not valid YAML ({problem}); "
                         f"quote lists as -p {name} '[1, 2]' and text as "
                         f"-p {name} \"'some text'\"") from None


def check_run(chapters: list[str], scale: str, extra: dict[str, Any]) -> None:
    """Check every chapter name, its scale overrides and ``extra`` before anything executes.

    Raises:
        ValueError: an unknown chapter, scale or parameter, a value of the wrong type, or an
            empty ``BOOK_CACHE`` (all problems of the first failing chapter are named).
    """
    import jupytext

    from helpers.cache import cache_root

    cache_root()  # an empty BOOK_CACHE fails here, not in the middle of a chapter
    for chapter in chapters:
        notebook = jupytext.read(chapter_source(chapter))
        check_parameters(chapter, notebook, {**load_overrides(chapter, scale), **extra})


def execute_chapter(
    chapter: str,
    scale: str = "book",
    extra: dict[str, Any] | None = None,
    output: Path | None = None,
    timeout: int | None = None,
) -> ChapterResult:
    """Execute one chapter at ``scale`` (plus ``extra`` overrides) into ``output``.

    Returns a :class:`ChapterResult`; a failure is reported in it (``ok=False``) with the
    chapter and the failing cell, not raised, so a run over several chapters goes on.
    """
    import jupytext
    import papermill as pm

    source = chapter_source(chapter)
    notebook = jupytext.read(source)
    requested = {**load_overrides(chapter, scale), **(extra or {})}
    parameters = check_parameters(chapter, notebook, requested)
    output = output or source.with_suffix(".ipynb")
    # The kernel imports `helpers` from the repository even without an editable install.
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in [str(REPO_ROOT), os.environ.get("PYTHONPATH", "")] if p
    )
    start, cpu_start = time.perf_counter(), _children_cpu_seconds()
    try:
        pm.execute_notebook(
            notebook,
            str(output),
            parameters=parameters,
            # files a chapter writes (its GIFs) land beside its notebook, where the book
            # build looks
            cwd=str(Path(output).parent),
            kernel_name="python3",
            progress_bar=False,
            execution_timeout=timeout,
        )
    except pm.PapermillExecutionError as err:
        message = (
            f"chapter {chapter!r} failed at cell {err.exec_count} (index {err.cell_index}): "
            f"{err.ename}: {err.evalue}"
        )
        return ChapterResult(chapter, time.perf_counter() - start, False, message,
                             _children_cpu_seconds() - cpu_start)
    return ChapterResult(chapter, time.perf_counter() - start, True,
                         cpu_seconds=_children_cpu_seconds() - cpu_start)


def _children_cpu_seconds() -> float:
    """User + system CPU seconds of this process's finished, waited-for children (the kernels)."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def execute_chapters(
    chapters: list[str],
    scale: str = "book",
    extra: dict[str, Any] | None = None,
    jobs: int = 1,
    output_dir: Path | None = None,
    timeout: int | None = None,
    execute: Any = None,
) -> list[ChapterResult]:
    """Execute ``chapters`` with up to ``jobs`` at a time; results in the order of ``chapters``.

    A chapter starts when a slot is free and every chapter it reuses the cache of
    (``REUSES_CACHE_OF``, among those requested) has finished, taking ``STARTS_FIRST`` first and
    the others in the given order.
    Each runs in its own process (papermill is not thread-safe). ``output_dir`` (default: beside
    each source) receives ``<chapter>.ipynb``. ``execute`` (default :func:`execute_chapter`, same
    signature, picklable) runs one chapter; tests pass a stand-in.

    Raises:
        ValueError: ``jobs`` below 1.
    """
    if jobs < 1:
        raise ValueError(f"jobs={jobs}: need at least 1 chapter at a time; pass --jobs 1 or more")
    execute = execute or execute_chapter

    def output(chapter: str) -> Path | None:
        return Path(output_dir) / f"{chapter}.ipynb" if output_dir else None

    def report(result: ChapterResult) -> None:
        status = "ok" if result.ok else result.error
        print(f"[helpers.run] {result.chapter}: {status} ({result.seconds:.1f} s)", flush=True)

    results: dict[str, ChapterResult] = {}
    if jobs == 1:
        for chapter in chapters:
            print(f"[helpers.run] {chapter} at scale {scale} ...", flush=True)
            results[chapter] = execute(chapter, scale, extra, output(chapter), timeout)
            report(results[chapter])
        return [results[c] for c in chapters]
    waiting = sorted(chapters, key=lambda c: STARTS_FIRST.index(c) if c in STARTS_FIRST
                     else len(STARTS_FIRST))  # a stable sort keeps the given order among the rest
    running: dict[Future, str] = {}
    context = multiprocessing.get_context("spawn")  # a fresh interpreter per chapter process
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
        while waiting or running:
            for chapter in list(waiting):
                blockers = [c for c in REUSES_CACHE_OF.get(chapter, ()) if c in chapters]
                if len(running) < jobs and all(c in results for c in blockers):
                    waiting.remove(chapter)
                    print(f"[helpers.run] {chapter} at scale {scale} ...", flush=True)
                    future = pool.submit(execute, chapter, scale, extra, output(chapter), timeout)
                    running[future] = chapter
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                chapter = running.pop(future)
                results[chapter] = future.result()
                report(results[chapter])
    return [results[c] for c in chapters]


def time_table(results: list[ChapterResult], wall: float | None = None) -> str:
    """A plain-text table of per-chapter wall seconds, CPU seconds and status (``wall``: the whole
    run's wall time, shorter than the total when chapters ran at the same time)."""
    width = max([len(r.chapter) for r in results] + [len("chapter")])
    lines = [f"{'chapter':<{width}}  {'seconds':>8}  {'cpu s':>8}  status",
             f"{'-' * width}  {'-' * 8}  {'-' * 8}  ------"]
    for r in results:
        lines.append(f"{r.chapter:<{width}}  {r.seconds:8.1f}  {r.cpu_seconds:8.1f}  "
                     f"{'ok' if r.ok else 'FAILED'}")
    lines.append(f"{'total':<{width}}  {sum(r.seconds for r in results):8.1f}  "
                 f"{sum(r.cpu_seconds for r in results):8.1f}")
    if wall is not None:
        lines.append(f"{'wall':<{width}}  {wall:8.1f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.run",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("chapters", nargs="*",
                        help=f"chapter stems (default: all of {', '.join(CHAPTERS)})")
    parser.add_argument("--scale", default="book", choices=SCALES)
    parser.add_argument(
        "-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "YAML_VALUE"),
        help="override one parameter, e.g. -p n_seeds 3 (value parsed as YAML)",
    )
    parser.add_argument("--timeout", type=int, default=None, help="per-cell timeout in seconds")
    parser.add_argument("--jobs", type=int, default=1,
                        help="chapters executed at a time (each runs one torch thread)")
    parser.add_argument("--output-dir", type=Path, default=None,
                        help="folder for the executed notebooks (default: beside the sources)")
    args = parser.parse_args(argv)
    chapters = args.chapters or [c for c in CHAPTERS if (BOOK_DIR / f"{c}.py").exists()]
    extra = {name: parse_parameter(name, value) for name, value in args.parameter}
    check_run(chapters, args.scale, extra)  # every name and value, before the first chapter runs
    if args.output_dir:
        args.output_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    results = execute_chapters(chapters, args.scale, extra, args.jobs, timeout=args.timeout,
                               output_dir=args.output_dir)
    print(time_table(results, wall=time.perf_counter() - start))
    failed = [r for r in results if not r.ok]
    for r in failed:
        print(f"FAILED: {r.error}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
