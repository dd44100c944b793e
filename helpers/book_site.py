"""The book's Sphinx extension: every asset a page needs is served from the built site itself.

Listed in ``_config.yml`` (``sphinx.extra_extensions``). At the end of an HTML build it copies

- ``plotly.min.js`` from the installed ``plotly`` package to ``_static/`` (the interactive
  figures of :mod:`helpers.interactive` load it from there);
- MathJax 2 from Debian's ``libjs-mathjax`` and ``fonts-mathjax`` packages (or the folder named by
  ``$BOOK_MATHJAX_DIR``) to ``_static/mathjax/``: the loader, the TeX input, the CommonHTML output
  and its web fonts, about 1.3 MB, instead of loading MathJax from a CDN;

and it gives the site a favicon (``book/_static/favicon.svg``), so no page asks for a missing
``/favicon.ico``. It also removes the second ``const THEBE_JS_URL`` script that sphinx-thebe adds
when Sphinx reads the sources twice in one process (a ``SyntaxError`` in the console).

Without MathJax on the machine the build fails under ``-W`` with a warning that names the Debian
packages: a page that shows raw TeX is a broken page.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from helpers.interactive import copy_plotly_js

DEBIAN_MATHJAX = Path("/usr/share/javascript/mathjax")
MATHJAX_DIR = "mathjax"  # under _static/
MATHJAX_PATH = f"{MATHJAX_DIR}/MathJax.js?config=TeX-AMS_CHTML"
"""``mathjax_path`` for Sphinx: relative to ``_static``; TeX in, CommonHTML (web fonts) out."""

# What TeX-AMS_CHTML loads: the combined config, extensions (menu, zoom, AMS, ...), the TeX
# input, the CommonHTML output and its woff fonts. The rest of the package (SVG/HTML-CSS
# outputs, PNG fonts, localisations, unpacked sources) is never requested.
MATHJAX_PARTS = (
    "MathJax.js",
    "config/TeX-AMS_CHTML.js",
    "config/local",
    "extensions",
    "jax/input/TeX",
    "jax/output/CommonHTML",
    "jax/element",
    "fonts/HTML-CSS/TeX/woff",
)

_THEBE_MARKER = "const THEBE_JS_URL"


def mathjax_source() -> Path | None:
    """The MathJax 2 folder to copy: ``$BOOK_MATHJAX_DIR``, else Debian's, else None."""
    env = os.environ.get("BOOK_MATHJAX_DIR")
    for candidate in ([Path(env)] if env else []) + [DEBIAN_MATHJAX]:
        if (candidate / "MathJax.js").exists():
            return candidate
    return None


def copy_mathjax(source: Path, static_dir: Path) -> Path:
    """Copy the parts of MathJax the pages load from ``source`` into ``static_dir/mathjax``.

    Args:
        source: a MathJax 2.7 folder (holding ``MathJax.js``).
        static_dir: the built site's ``_static`` folder.

    Returns:
        The folder written.
    """
    target = static_dir / MATHJAX_DIR
    missing = [part for part in MATHJAX_PARTS if not (source / part).exists()]
    if missing:
        raise FileNotFoundError(
            f"MathJax at {source} lacks {missing}: install Debian's libjs-mathjax and "
            "fonts-mathjax"
        )
    for part in MATHJAX_PARTS:
        src, dst = source / part, target / part
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst, dirs_exist_ok=True)  # follows Debian's font symlinks
        else:
            shutil.copyfile(src, dst)
    return target


def _configure(app: Any, config: Any) -> None:
    config.mathjax_path = MATHJAX_PATH
    # MathJax 2 reads Sphinx's \( \) and \[ \] delimiters; the v3 settings other extensions set
    # would otherwise switch Sphinx to v3's loading method.
    config.mathjax2_config = {
        "tex2jax": {"inlineMath": [["\\(", "\\)"]], "displayMath": [["\\[", "\\]"]]},
        "CommonHTML": {"linebreaks": {"automatic": True}},
        "menuSettings": {"zoom": "None"},
    }
    config.mathjax3_config = None
    config.mathjax_options = {"defer": "defer"}
    # pydata-sphinx-theme writes `data-mode=""` without it and logs "Got invalid theme mode"
    config.html_context = {"default_mode": "auto", **(config.html_context or {})}
    favicon = Path(app.confdir) / "book" / "_static" / "favicon.svg"
    if favicon.exists() and not config.html_favicon:
        config.html_favicon = str(favicon)


def _drop_second_thebe_config(app: Any, pagename: str, templatename: str, context: dict,
                              doctree: Any) -> None:
    scripts = context.get("script_files") or []
    seen = False
    kept = []
    for script in scripts:
        body = getattr(script, "attributes", {}).get("body", "") or ""
        if _THEBE_MARKER in body:
            if seen:
                continue
            seen = True
        kept.append(script)
    if len(kept) != len(scripts):
        context["script_files"] = kept


def _check_mathjax(app: Any) -> None:
    # Warn while the build runs (so -W fails it), not at the end where warnings no longer count.
    if app.builder.format == "html" and mathjax_source() is None:
        from sphinx.util import logging

        logging.getLogger(__name__).warning(
            "MathJax not found (no %s/MathJax.js and no $BOOK_MATHJAX_DIR): pages would show raw "
            "TeX offline; install Debian's libjs-mathjax and fonts-mathjax (.ci/apt-packages.txt)",
            DEBIAN_MATHJAX,
        )


def _copy_assets(app: Any, exception: Exception | None) -> None:
    if exception is not None or app.builder.format != "html":
        return
    static = Path(app.outdir) / "_static"
    copy_plotly_js(static)
    source = mathjax_source()
    if source is not None:
        copy_mathjax(source, static)


def setup(app: Any) -> dict[str, Any]:
    """Sphinx entry point (``sphinx.extra_extensions: [helpers.book_site]`` in ``_config.yml``)."""
    app.connect("config-inited", _configure)
    app.connect("builder-inited", _check_mathjax)
    app.connect("html-page-context", _drop_second_thebe_config)
    app.connect("build-finished", _copy_assets)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
