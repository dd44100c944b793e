"""The package's architecture as rules: the library never imports a world, a world imports the
library and never another world, chapters stay short, and tests mirror the tree."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "helpers"
WORLDS = sorted(p.name for p in PKG.iterdir() if p.is_dir() and (p / "__init__.py").exists())
LIBRARY = sorted(p.stem for p in PKG.glob("*.py") if p.stem != "__init__")


def imported_helpers_modules(path: Path) -> set[str]:
    """Every ``helpers...`` module a file imports (top level or inside functions), as dotted
    names."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "helpers"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative imports would hide the world boundary from this test
                found.add("<relative>")
            elif node.module and node.module.split(".")[0] == "helpers":
                found.add(node.module)
                found |= {f"{node.module}.{a.name}" for a in node.names}
    return found


def world_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in WORLDS else None


def test_the_tree_has_the_expected_worlds():
    assert set(WORLDS) == {"prh", "tms", "reprpo", "libero"}, WORLDS
    assert {"alignment", "features", "stats", "cache", "plotting", "run",
            "chapter"} <= set(LIBRARY)


@pytest.mark.parametrize("module", LIBRARY)
def test_library_never_imports_a_world(module):
    imports = imported_helpers_modules(PKG / f"{module}.py")
    assert "<relative>" not in imports, (
        f"helpers/{module}.py uses a relative import; write helpers.<module>")
    worlds = sorted({w for m in imports if (w := world_of(m))})
    assert not worlds, f"library module helpers/{module}.py imports the world(s) {worlds}"


@pytest.mark.parametrize("world", WORLDS)
def test_a_world_imports_only_the_library_and_itself(world):
    for path in sorted((PKG / world).glob("*.py")):
        imports = imported_helpers_modules(path)
        assert "<relative>" not in imports, f"{path.relative_to(ROOT)} uses a relative import"
        others = sorted({w for m in imports if (w := world_of(m)) and w != world})
        assert not others, f"{path.relative_to(ROOT)} imports another world: {others}"


def test_no_module_of_a_world_sits_at_the_top_level():
    """Top-level modules are the library; every one is imported by a chapter in more than one
    world, by another library module, or is named in the package docstring as the library."""
    import helpers

    for module in LIBRARY:
        assert module in helpers.__doc__, (
            f"helpers/{module}.py is not listed in helpers/__init__.py")


@pytest.mark.parametrize("world", WORLDS)
def test_tests_mirror_the_tree(world):
    assert (ROOT / "tests" / world).is_dir(), (
        f"tests/{world}/ is missing: tests mirror helpers/{world}/")
    modules = {p.stem for p in (PKG / world).glob("*.py") if p.stem != "__init__"}
    tested = {p.stem.removeprefix("test_") for p in (ROOT / "tests" / world).glob("test_*.py")}
    assert modules & tested, (
        f"no tests/{world}/test_<module>.py names a module of helpers/{world}/")


CHAPTERS = sorted((ROOT / "book").glob("*.py"))


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_chapters_import_worlds_through_helpers_only(chapter):
    """Chapters may use several worlds' public names, but never a world's private names."""
    for node in ast.walk(ast.parse(chapter.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("helpers"):
            private = [a.name for a in node.names if a.name.startswith("_")]
            assert not private, (
                f"{chapter.name} imports private names {private} from {node.module}")


CODE_BOX = 100  # characters a rendered code cell shows without a scroll bar


def source_files() -> list[Path]:
    """Every Python source a reader sees: the chapters, the package, its tests and benchmarks."""
    return sorted([*(ROOT / "book").glob("*.py"), *PKG.rglob("*.py"),
                   *(ROOT / "tests").rglob("*.py"), *(ROOT / "benchmarks").glob("*.py")])


def test_source_lines_fit_the_code_box():
    """Code never overflows its box: every line is under 100 characters (counted as characters,
    not bytes). A chapter's cell-marker lines (``# %%`` with figure metadata) are exempt: the
    captions they carry are not shown as code."""
    long = [f"{path.relative_to(ROOT).as_posix()}:{i} ({len(line)} chars)"
            for path in source_files()
            for i, line in enumerate(path.read_text(encoding="utf8").split("\n"), 1)
            if len(line) >= CODE_BOX and not line.startswith("# %%")]
    assert not long, (f"{len(long)} lines of {CODE_BOX}+ characters; wrap them at a comma inside "
                      "brackets or split the string/comment:\n" + "\n".join(long))
