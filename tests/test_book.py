"""The smoke notebooks build into a warning-free Jupyter Book, and every page renders in a browser.

Browser-free checks of the HTML that always run: each chapter page exists, has one title and
image files that exist, stays under 1 MB, shows no markdown heading inside a code cell, and every
launch button (Binder, Colab) opens a notebook that exists in the tree the Pages workflow
publishes (``binder/publish_notebooks.py``, built here from the smoke notebooks; no network).
A headless Chromium check through playwright loads every page from a loopback server, fails on
any request that leaves it, on console errors and on failed local requests, drives each
interactive figure (a control must change what is drawn), and reports each page's transfer size
and load time. It needs Debian's ``chromium`` (``.ci/run`` installs it); without it the test is
skipped locally and fails in CI.
"""
from __future__ import annotations

import functools
import http.server
import importlib.util
import os
import re
import shutil
import threading
import time
from html import unescape
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import nbformat
import pytest
import yaml

from helpers.interactive import CSS_CLASS
from helpers.run import CHAPTERS, REPO_ROOT

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ERROR_MARKERS = ("Traceback (most recent call last)", "An Exception was encountered",
                 "PapermillExecutionError")
MAX_PAGE_BYTES = 1_000_000  # HTML of one page; figures and scripts are separate files
PAGES = ("intro", *CHAPTERS, "bibliography")
# a markdown heading that leaked into a code cell, where jupytext writes it as a comment
LEAKED_HEADING = re.compile(r"^[ \t]*#[ \t]*#{1,6}[ \t]+\S", re.M)

pytestmark = pytest.mark.slow


def test_book_builds_without_warnings(built_book):
    build = built_book.build
    assert build.returncode == 0, (
        f"jupyter-book build -W failed:\n{build.stdout[-4000:]}\n{build.stderr[-4000:]}"
    )
    for chapter in CHAPTERS:
        assert (built_book.html / "book" / f"{chapter}.html").exists(), f"no page for {chapter}"


class _ArticleParser(HTMLParser):
    """Collects the h1 titles and <img src> inside <article>."""

    def __init__(self):
        super().__init__()
        self.depth = 0
        self.h1 = 0
        self.images: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "article":
            self.depth += 1
        elif self.depth and tag == "h1":
            self.h1 += 1
        elif self.depth and tag == "img":
            self.images.append(dict(attrs).get("src", ""))

    def handle_endtag(self, tag):
        if tag == "article":
            self.depth -= 1


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_html_has_title_and_existing_images(built_book, chapter):
    page = built_book.html / "book" / f"{chapter}.html"
    assert page.exists(), f"{chapter}: page missing (did the build fail?)"
    text = page.read_text()
    parser = _ArticleParser()
    parser.feed(text)
    assert parser.h1 == 1, f"{chapter}: expected one <h1> in the article, found {parser.h1}"
    assert parser.images, f"{chapter}: no <img> in the article"
    for src in parser.images:
        if src.startswith("data:"):
            continue
        assert (page.parent / src).resolve().exists(), f"{chapter}: image {src} missing"
    for marker in ERROR_MARKERS:
        assert marker not in text, f"{chapter}: error output on the page ({marker!r})"
    assert f'class="{CSS_CLASS}"' in text, (
        f"{chapter}: no interactive figure (helpers.interactive.show) by its key result"
    )


@pytest.mark.parametrize("page_name", PAGES)
def test_page_is_under_1_mb_and_has_no_heading_inside_code(built_book, page_name):
    page = built_book.html / "book" / f"{page_name}.html"
    assert page.exists(), f"{page_name}: page missing (did the build fail?)"
    size = page.stat().st_size
    assert size < MAX_PAGE_BYTES, (
        f"{page_name}: {size / 1e6:.2f} MB of HTML (limit 1 MB): serve animations and large "
        "figures as files (GIF/MP4 next to the page) instead of inline"
    )
    text = page.read_text()
    for block in re.findall(r'<div class="cell_input[^"]*".*?<pre>(.*?)</pre>', text, re.S):
        code = unescape(re.sub(r"<[^>]+>", "", block))
        leaked = LEAKED_HEADING.search(code)
        assert not leaked, (
            f"{page_name}: a markdown heading sits in a code cell ({leaked.group(0).strip()!r}): "
            "put it in a `# %% [markdown]` cell"
        )


def _publisher():
    script = REPO_ROOT / "binder" / "publish_notebooks.py"
    spec = importlib.util.spec_from_file_location("publish_notebooks", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _launch_links(page: Path) -> list[str]:
    hrefs = re.findall(r'href="([^"]+)"', page.read_text())
    return [unescape(h) for h in hrefs if "mybinder.org" in h or "colab.research.google.com" in h]


def _link_target(url: str) -> tuple[str, str, str]:
    """``(owner/repo, branch, path)`` that a Binder or Colab launch link opens."""
    parsed = urlparse(url)
    if "mybinder.org" in parsed.netloc:
        match = re.match(r"^/v2/gh/([^/]+/[^/]+)/([^/?]+)$", parsed.path)
        assert match, f"unexpected Binder link {url}"
        urlpath = parse_qs(parsed.query)["urlpath"][0]
        assert urlpath.startswith("lab/tree/"), f"Binder link does not open a file: {url}"
        return match.group(1), match.group(2), urlpath.removeprefix("lab/tree/")
    match = re.match(r"^/github/([^/]+/[^/]+)/blob/([^/]+)/(.+)$", parsed.path)
    assert match, f"unexpected Colab link {url}"
    return match.group(1), match.group(2), match.group(3)


def test_launch_links_open_notebooks_that_the_workflow_publishes(built_book, tmp_path):
    publisher = _publisher()
    url, branch = publisher.repository(REPO_ROOT / "_config.yml")
    repo = urlparse(url).path.strip("/")
    workflow = (REPO_ROOT / ".github" / "workflows" / "book.yml").read_text()
    assert "binder/publish_notebooks.py" in workflow, "the Pages workflow must publish the tree"
    published = tmp_path / "published"
    publisher.publish(built_book.root / "book", published)
    for required in ("binder/requirements.txt", "binder/postBuild", "helpers/__init__.py",
                     "pyproject.toml", "requirements-weights.txt", "book/scales.yaml"):
        assert (published / required).exists(), f"the launch tree lacks {required}"
    for chapter in CHAPTERS:
        links = _launch_links(built_book.html / "book" / f"{chapter}.html")
        kinds = {"binder" if "mybinder" in link else "colab" for link in links}
        assert kinds == {"binder", "colab"}, f"{chapter}: launch buttons found: {sorted(kinds)}"
        for link in links:
            link_repo, link_branch, path = _link_target(link)
            assert (link_repo, link_branch) == (repo, branch), (
                f"{chapter}: {link} is not {repo}@{branch}"
            )
            target = published / path
            assert target.exists(), f"{chapter}: {link} opens {path}, which is not published"
            first = nbformat.read(target, as_version=4).cells[0]
            assert {publisher.INSTALL_TAG, "remove-cell"} <= set(first.metadata["tags"])
            assert f'"{url}", "{branch}"' in first.source, "the install cell clones another repo"
            compile(first.source, f"{path}:install-cell", "exec")


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep the test log readable
        pass


@pytest.fixture(scope="module")
def served_book(built_book):
    handler = functools.partial(_QuietHandler, directory=str(built_book.html))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"Chromium not found at {CHROMIUM}: CI must install Debian's `chromium` "
                        "(.ci/apt-packages.txt)")
        pytest.skip(f"Chromium not found at {CHROMIUM}; install Debian's `chromium` to run the "
                    "browser check")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync"],
        )
        yield browser
        browser.close()


_LOCAL = re.compile(r"^(https?://(127\.0\.0\.1|localhost)(:\d+)?/|data:|blob:|about:)")

# What an interactive figure draws (not its controls, which move when used).
_DRAWN_JS = """el => Array.from(el.querySelectorAll(
    '.cartesianlayer, .polarlayer, .ternarylayer, .imagelayer, .shapelayer, .annotation-text'))
    .map(n => n.innerHTML).join('|')"""

# Moves the first control of a figure to another value; returns what it did, or null.
_DRIVE_JS = """el => {
  const gd = el.querySelector('.js-plotly-plot') || el;
  const rail = gd.querySelector('.slider-rail-touch-rect');
  if (rail) {
    const steps = gd._fullLayout.sliders[0].steps.length;
    const active = gd._fullLayout.sliders[0].active;
    const box = rail.getBoundingClientRect();
    const frac = active === steps - 1 ? 0.02 : 0.98;
    return {kind: 'slider', x: box.left + frac * box.width, y: box.top + box.height / 2};
  }
  const header = gd.querySelector('.updatemenu-header');
  if (header) {
    const box = header.getBoundingClientRect();
    return {kind: 'dropdown', x: box.left + box.width / 2, y: box.top + box.height / 2};
  }
  const buttons = gd.querySelectorAll('.updatemenu-button');
  if (buttons.length > 1) {
    const box = buttons[buttons.length - 1].getBoundingClientRect();
    return {kind: 'buttons', x: box.left + box.width / 2, y: box.top + box.height / 2};
  }
  return null;
}"""


def _drive_interactive_figures(page, chapter: str) -> int:
    figures = page.locator(f"div.{CSS_CLASS}")
    for i in range(figures.count()):
        figure = figures.nth(i)
        name = figure.get_attribute("data-name")
        figure.scroll_into_view_if_needed()
        plot = figure.locator(f".{CSS_CLASS}-plot")
        try:
            page.wait_for_function("el => el.getAttribute('data-ready') === '1'",
                                   arg=plot.element_handle(), timeout=30_000)
        except Exception as error:  # noqa: BLE001 - re-raised with the figure's name
            raise AssertionError(f"{chapter}: figure {name!r} never finished drawing") from error
        before = plot.evaluate(_DRAWN_JS)
        assert before, f"{chapter}: interactive figure {name!r} draws nothing"
        control = plot.evaluate(_DRIVE_JS)
        assert control, f"{chapter}: interactive figure {name!r} has no slider or menu to drive"
        page.mouse.click(control["x"], control["y"])
        if control["kind"] == "dropdown":  # open the menu, then pick its last entry
            page.wait_for_timeout(300)
            options = plot.locator(".updatemenu-dropdown-button")
            assert options.count() > 1, f"{chapter}: dropdown of {name!r} has no other entry"
            options.last.click()
        page.wait_for_timeout(800)
        after = plot.evaluate(_DRAWN_JS)
        assert after != before, (
            f"{chapter}: moving the {control['kind']} of {name!r} changed nothing drawn"
        )
    return figures.count()


def test_figure_driver_tells_responsive_figures_from_dead_ones(browser, tmp_path):
    """The figure check itself: a slider and a menu that redraw pass, a dead slider fails."""
    import plotly.graph_objects as go

    from helpers import interactive

    def steps(values):
        return {f"{v}": [go.Scatter(x=[1, 2, 3], y=[v, 2 * v, v], hovertext=[f"run {v}"] * 3)]
                for v in values}

    menu = go.Figure([go.Bar(y=[1, 2, 3]), go.Bar(y=[3, 1, 2], visible=False)])
    menu.update_layout(updatemenus=[dict(buttons=[
        dict(label="first", method="update", args=[{"visible": [True, False]}]),
        dict(label="second", method="update", args=[{"visible": [False, True]}]),
    ])])
    figures = {
        "live-slider": interactive.slider_figure(steps([1, 2, 3]), slider_label="v"),
        "live-menu": menu,
        "dead-slider": interactive.slider_figure({"a": steps([1])["1"], "b": steps([1])["1"]},
                                                 slider_label="v"),
    }
    interactive.copy_plotly_js(tmp_path / "_static")
    for name, fig in figures.items():
        (tmp_path / f"{name}.html").write_text(
            '<!doctype html><html data-content_root="./"><body><article>'
            f"{interactive.figure_html(fig, name)}</article></body></html>"
        )
    handler = functools.partial(_QuietHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        for name in figures:
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{server.server_address[1]}/{name}.html",
                      wait_until="load")
            if name.startswith("live"):
                assert _drive_interactive_figures(page, name) == 1
            else:
                with pytest.raises(AssertionError, match="changed nothing drawn"):
                    _drive_interactive_figures(page, name)
            page.close()
    finally:
        server.shutdown()


@pytest.fixture(scope="module")
def page_report(request):
    """Collects each page's size and load time; printed at the end of the module."""
    rows: list[str] = []
    yield rows
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if rows and reporter and capture:
        with capture.global_and_fixture_disabled():  # print past pytest's output capture
            reporter.write_line("")
            reporter.write_sep("-", "book pages in headless Chromium (loopback server)")
            reporter.write_line(f"{'page':20s} {'HTML kB':>8s} {'load kB':>10s} "
                                f"{'+figures kB':>13s} {'load s':>7s} {'interactive':>12s}")
            for row in rows:
                reporter.write_line(row)


@pytest.mark.parametrize("page_name", PAGES)
def test_page_renders_offline_in_browser(served_book, browser, page_report, page_name):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    external: list[str] = []
    errors: list[str] = []
    failed: list[str] = []

    def loopback_only(route):
        if _LOCAL.match(route.request.url):
            route.continue_()
        else:
            external.append(route.request.url)
            route.abort()

    page.route("**/*", loopback_only)
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    page.on("pageerror", lambda error: errors.append(f"uncaught: {error}"))
    page.on("response", lambda r: r.status >= 400 and failed.append(f"{r.status} {r.url}"))
    start = time.perf_counter()
    response = page.goto(f"{served_book}/book/{page_name}.html", wait_until="load",
                         timeout=120_000)
    load_s = time.perf_counter() - start
    assert response is not None and response.ok, (
        f"{page_name}: HTTP {response and response.status}")
    titles = page.locator("article h1")
    assert titles.count() == 1 and titles.first.inner_text().strip(), f"{page_name}: no title"
    # lazily loaded images (animations served as files) load when asked to
    decoded = page.evaluate(
        """async () => {
          const images = Array.from(document.querySelectorAll('article img'));
          await Promise.all(images.map(i => {
            i.loading = 'eager';
            return i.decode().catch(() => null);
          }));
          return images.map(i => i.complete && i.naturalWidth > 0);
        }"""
    )
    if page_name in CHAPTERS:
        assert decoded and any(decoded), f"{page_name}: no figure decoded"
    assert all(decoded), (
        f"{page_name}: {decoded.count(False)} of {len(decoded)} images failed to decode"
    )
    # MathJax (served from _static) has typeset the page: no raw TeX delimiters left
    if page.locator("article .math").count():
        page.wait_for_function(
            "() => document.querySelectorAll('article .MathJax_CHTML, mjx-container').length",
            timeout=60_000,
        )
    body = page.locator("article").inner_text()
    for marker in ERROR_MARKERS:
        assert marker not in body, f"{page_name}: error output on the page ({marker!r})"
    transferred = """() => performance.getEntriesByType('navigation')
        .concat(performance.getEntriesByType('resource'))
        .reduce((total, e) => total + (e.transferSize || e.encodedBodySize || 0), 0)"""
    at_load = page.evaluate(transferred)
    n_interactive = _drive_interactive_figures(page, page_name)
    page.wait_for_timeout(300)
    in_all = page.evaluate(transferred)  # plotly.js loads once a figure nears the screen
    html_bytes = len(response.body())
    page_report.append(f"{page_name:20s} {html_bytes / 1e3:8.0f} {at_load / 1e3:10.0f} "
                       f"{in_all / 1e3:13.0f} {load_s:7.2f} {n_interactive:12d}")
    page.close()
    assert not external, f"{page_name}: requests leaving the local server: {sorted(set(external))}"
    assert not failed, f"{page_name}: failed local requests: {failed}"
    assert not errors, f"{page_name}: console errors: {errors}"
    assert html_bytes < MAX_PAGE_BYTES, (
        f"{page_name}: {html_bytes / 1e6:.2f} MB of HTML (max 1 MB)")
