"""helpers.book_site: the Sphinx extension serving MathJax, plotly.js and a favicon locally."""
from __future__ import annotations

import types
from pathlib import Path

import pytest

from helpers import book_site


def _fake_mathjax(root: Path) -> Path:
    for part in book_site.MATHJAX_PARTS:
        path = root / part
        if part.endswith(".js"):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("// js")
        else:
            path.mkdir(parents=True, exist_ok=True)
            (path / "x.js").write_text("// part")
    return root


def test_copy_mathjax_copies_every_part_the_pages_load(tmp_path):
    source = _fake_mathjax(tmp_path / "mj")
    (source / "unpacked").mkdir()
    (source / "unpacked" / "big.js").write_text("// never requested")
    target = book_site.copy_mathjax(source, tmp_path / "_static")
    assert target == tmp_path / "_static" / "mathjax"
    for part in book_site.MATHJAX_PARTS:
        assert (target / part).exists(), part
    assert not (target / "unpacked").exists()


def test_copy_mathjax_names_the_debian_packages_when_parts_are_missing(tmp_path):
    source = tmp_path / "mj"
    source.mkdir()
    (source / "MathJax.js").write_text("// js")
    with pytest.raises(FileNotFoundError, match="libjs-mathjax and fonts-mathjax"):
        book_site.copy_mathjax(source, tmp_path / "_static")


def test_mathjax_source_prefers_the_environment_folder(tmp_path, monkeypatch):
    source = _fake_mathjax(tmp_path / "mj")
    monkeypatch.setenv("BOOK_MATHJAX_DIR", str(source))
    assert book_site.mathjax_source() == source
    monkeypatch.setenv("BOOK_MATHJAX_DIR", str(tmp_path / "nowhere"))
    monkeypatch.setattr(book_site, "DEBIAN_MATHJAX", tmp_path / "nowhere-either")
    assert book_site.mathjax_source() is None


def test_configure_points_mathjax_at_the_site_and_sets_favicon_and_theme_mode(tmp_path):
    (tmp_path / "book" / "_static").mkdir(parents=True)
    (tmp_path / "book" / "_static" / "favicon.svg").write_text("<svg/>")
    config = types.SimpleNamespace(mathjax_path="https://cdn", mathjax2_config=None,
                                   mathjax3_config={"x": 1}, mathjax_options={}, html_favicon=None,
                                   html_context={"github_user": "u"})
    book_site._configure(types.SimpleNamespace(confdir=str(tmp_path)), config)
    assert config.mathjax_path.startswith("mathjax/MathJax.js")
    assert config.mathjax3_config is None and config.mathjax2_config
    assert config.html_favicon.endswith("favicon.svg")
    assert config.html_context == {"default_mode": "auto", "github_user": "u"}


def test_second_thebe_config_script_is_dropped():
    def script(body):
        return types.SimpleNamespace(attributes={"body": body})

    thebe = 'const THEBE_JS_URL = "x"; const thebe_selector = ".cell"'
    scripts = [script(""), script(thebe), script("other"), script(thebe)]
    context = {"script_files": scripts}
    book_site._drop_second_thebe_config(None, "page", "page.html", context, None)
    assert context["script_files"] == scripts[:3]
