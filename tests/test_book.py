"""The smoke notebooks build into a warning-free Jupyter Book, and every page renders in a browser.

Two checks of the HTML: a browser-free parse that always runs (each chapter page exists, has
one title and image files that exist), and a headless Chromium check through playwright that
loads every page from a loopback server with all other requests blocked, and asserts its
title, decoded figures and the absence of error output. The browser check needs Debian's
``chromium`` (``.ci/run`` installs it); without it the test is skipped locally and fails in CI.
"""
from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import threading
from html.parser import HTMLParser
from pathlib import Path

import pytest

from helpers.run import CHAPTERS

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ERROR_MARKERS = ("Traceback (most recent call last)", "An Exception was encountered", "PapermillExecutionError")

pytestmark = pytest.mark.slow


def test_book_builds_without_warnings(built_book):
    build = built_book.build
    assert build.returncode == 0, f"jupyter-book build -W failed:\n{build.stdout[-4000:]}\n{build.stderr[-4000:]}"
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
            pytest.fail(f"Chromium not found at {CHROMIUM}: CI must install Debian's `chromium` (.ci/apt-packages.txt)")
        pytest.skip(f"Chromium not found at {CHROMIUM}; install Debian's `chromium` to run the browser check")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        )
        yield browser
        browser.close()


def _loopback_only(route):
    url = route.request.url
    if re.match(r"^(https?://(127\.0\.0\.1|localhost)(:\d+)?/|data:|blob:|about:)", url):
        route.continue_()
    else:
        route.abort()


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_page_renders_in_browser(served_book, browser, chapter):
    page = browser.new_page()
    page.route("**/*", _loopback_only)
    response = page.goto(f"{served_book}/book/{chapter}.html", wait_until="load", timeout=60_000)
    assert response is not None and response.ok, f"{chapter}: HTTP {response and response.status}"
    titles = page.locator("article h1")
    assert titles.count() == 1 and titles.first.inner_text().strip(), f"{chapter}: no title"
    decoded = page.evaluate(
        "() => Array.from(document.querySelectorAll('article img')).map(i => i.complete && i.naturalWidth > 0)"
    )
    assert decoded and any(decoded), f"{chapter}: no figure decoded"
    assert all(decoded), f"{chapter}: {decoded.count(False)} of {len(decoded)} images failed to decode"
    body = page.locator("article").inner_text()
    for marker in ERROR_MARKERS:
        assert marker not in body, f"{chapter}: error output on the page ({marker!r})"
    page.close()
