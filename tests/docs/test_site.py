"""The built tutorial site as a reader meets it: code that fits a laptop screen, formulas typeset by a KaTeX
the site serves itself, a Chinese search index cut into words, anchors and language links that resolve
under the sub-path of ``site_url`` — and, in headless Chromium, one page read and used for real.

The browser test drives Debian's /usr/bin/chromium through Python's playwright (never a downloaded
browser); it is skipped where either is missing.
"""
from __future__ import annotations

import doctest
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import unicodedata
import urllib.request
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import quote, unquote, urljoin, urlsplit

import pytest

from test_docs import DOCS, PAGES, ROOT, blocks, page_id

CODE_COLUMNS = 80       # a code block's width at a 1280 px wide window, both sidebars shown (measured: 80.2)
SITE_PATH = urlsplit(re.search(r"^site_url:\s*(\S+)", (ROOT / "mkdocs.yml").read_text(encoding="utf-8"),
                               re.M).group(1)).path            # /docs/
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
# Words a Chinese reader searches for, and the page that teaches each.
CHINESE_TERMS = {"反向传播": "zh/concepts/conv-backprop/", "掩码": "zh/concepts/pooling/",
                 "感受野": "zh/concepts/receptive-field/", "权值共享": "zh/concepts/weight-sharing/"}


def columns(line: str) -> int:
    """Screen columns of a line in a monospace font: CJK characters take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in line)


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_code_lines_fit_a_laptop_screen(page):
    long = [(line + offset + 1, columns(text)) for kind, line, body in blocks(page)
            for offset, text in enumerate(body.splitlines()) if columns(text) > CODE_COLUMNS]
    assert not long, (f"{page_id(page)}: code lines wider than {CODE_COLUMNS} columns are cut off in a "
                      f"1280 px window (line, columns): {long}")


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_formulas_are_math_not_indented_code(page):
    """Formulas go in $...$ / $$...$$; an indented block would show them as code, unchecked by any test."""
    text = re.sub(r"^ *```.*?^ *```", lambda m: "\n" * m.group(0).count("\n"), page.read_text(encoding="utf-8"),
                  flags=re.M | re.S)
    indented, last, blank = [], "", False
    for number, line in enumerate(text.splitlines(), 1):
        # an indented line after a blank line is a code block, unless it continues a list item, an
        # admonition or an indented line before it (a list item's own wrapped lines are indented too)
        if line.strip() and line.startswith("    ") and blank and not (
                last[:1].isspace() or re.match(r"\s*([-*+]|\d+\.) |\s*(!!!|\?\?\?)", last)):
            indented.append(number)
        blank = not line.strip()
        last = line if line.strip() else last
    assert not indented, f"{page_id(page)}: indented code blocks (use $$...$$ or a fenced block): {indented}"


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The site built with ``mkdocs build --strict`` into ``<tmp>/root`` + SITE_PATH, as a server would
    hold it under its sub-path."""
    root = tmp_path_factory.mktemp("served")
    out = root / SITE_PATH.strip("/")
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
                            cwd=ROOT, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stdout}\n{result.stderr}"
    return out


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def tags(html: Path):
    parser = _Tags()
    parser.feed(html.read_text(encoding="utf-8"))
    return parser.tags


def test_pages_load_nothing_from_other_servers(site):
    """KaTeX, its fonts and the theme's fonts come from the site itself: no CDN, works offline."""
    external = sorted({f"{html.relative_to(site)}: {attrs.get('src') or attrs.get('href')}"
                       for html in site.rglob("*.html") for tag, attrs in tags(html)
                       if (tag == "script" and "://" in attrs.get("src", "")) or
                       (tag == "link" and attrs.get("rel") in ("stylesheet", "preconnect")
                        and "://" in attrs.get("href", ""))})
    assert not external, "pages load from other servers:\n" + "\n".join(external)
    assert (site / "javascripts/katex/katex.min.js").exists() and (site / "stylesheets/katex/katex.min.css").exists()
    fonts = re.findall(r"url\((fonts/[^)]+)\)", (site / "stylesheets/katex/katex.min.css").read_text())
    missing = [f for f in fonts if not (site / "stylesheets/katex" / f).exists()]
    assert fonts and not missing, f"KaTeX fonts the stylesheet names but the site lacks: {missing}"


def test_formulas_reach_the_page_as_math(site):
    html = (site / "concepts/padding-stride/index.html").read_text(encoding="utf-8")
    assert r'<div class="arithmatex">\[H' in html and r"\lfloor" in html


def test_anchors_resolve_and_chinese_headings_have_readable_ones(site):
    ids = {html: set(re.findall(r'\sid="([^"]+)"', html.read_text(encoding="utf-8"))) for html in site.rglob("*.html")}
    broken = []
    for html in ids:
        for tag, attrs in tags(html):
            href = attrs.get("href", "") if tag == "a" else ""
            parts = urlsplit(href)
            if not parts.fragment or parts.scheme or parts.netloc or href.startswith("/"):
                continue
            target = (html.parent / unquote(parts.path)).resolve() if parts.path else html
            target = target / "index.html" if target.is_dir() else target
            if target in ids and unquote(parts.fragment) not in ids[target]:
                broken.append(f"{html.relative_to(site)}: {href}")
    assert not broken, "links to anchors that do not exist:\n" + "\n".join(sorted(set(broken)))
    assert "卷积层的反向传播" in ids[site / "zh/concepts/conv-backprop/index.html"]


def test_language_links_resolve_under_the_site_path(site):
    broken = []
    for html in site.rglob("*.html"):
        folder = html.parent.relative_to(site).as_posix()
        url = SITE_PATH + ("" if folder == "." else folder + "/")
        for tag, attrs in tags(html):
            if tag == "a" and "md-select__link" in attrs.get("class", ""):
                path = urlsplit(urljoin(url, attrs["href"])).path
                target = site / unquote(path).removeprefix(SITE_PATH) / "index.html"
                if not path.startswith(SITE_PATH) or not target.exists():
                    broken.append(f"{html.relative_to(site)}: {attrs['href']} → {path}")
    assert not broken, "language links that lead nowhere:\n" + "\n".join(broken)


def test_chinese_search_index_is_cut_into_words(site):
    index = json.loads((site / "search/search_index.json").read_text(encoding="utf-8"))
    separator = re.compile(index["config"]["separator"])
    for term, page in CHINESE_TERMS.items():
        found = {doc["location"].split("#")[0] for doc in index["docs"]
                 if term in separator.split(doc["title"] + " " + doc["text"])}
        assert page in found, f"the search index has {term} as a word in {sorted(found)}, not in {page}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(site):
    """``python -m http.server`` serving the site under its sub-path: the base URL of the site."""
    port = _free_port()
    process = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                                "--directory", str(site.parents[len(Path(SITE_PATH.strip("/")).parts) - 1])],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}{SITE_PATH}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(base, timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)


def _code(source: str) -> list[str]:
    return [line for line in source.splitlines() if line.strip() and not line.strip().startswith("#")]


def _session_sources(page: Path) -> list[list[str]]:
    """The code lines (comments aside) of each ``pycon`` block: its statements, as doctest reads them."""
    parser = doctest.DocTestParser()
    return [_code("".join(e.source for e in parser.get_examples(body)))
            for kind, _, body in blocks(page) if kind == "pycon"]


@pytest.mark.slow
def test_a_page_in_headless_chromium(server, tmp_path):
    """conv-backprop read in Chromium at 1280 px: formulas typeset, the copy buttons give code that runs,
    the language switch and the Chinese anchors work under the sub-path, and Chinese search finds 掩码."""
    playwright = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no {CHROMIUM} (Debian's chromium package)")
    page_url = server + "concepts/conv-backprop/"
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 800})
            context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.split(SITE_PATH)[0])
            page = context.new_page()
            page.goto(page_url)

            page.wait_for_function("document.querySelectorAll('.arithmatex .katex').length > 0")
            math = page.evaluate("""() => ({
                formulas: document.querySelectorAll('.arithmatex').length,
                typeset: document.querySelectorAll('.arithmatex .katex').length,
                errors: document.querySelectorAll('.katex-error').length,
                raw: /\\$\\$|\\\\\\[|\\\\frac/.test(document.querySelector('article').innerText),
                katexFont: document.fonts.check('16px KaTeX_Main')})""")
            assert math["formulas"] >= 8 and math["typeset"] == math["formulas"], math
            assert not math["errors"] and not math["raw"] and math["katexFont"], math
            wide = page.evaluate("""() => [...document.querySelectorAll('.highlight pre > code, div.arithmatex')]
                .filter(e => e.scrollWidth > e.clientWidth + 1).map(e => e.textContent.slice(0, 60))""")
            assert not wide, f"code blocks or formulas that are cut off at 1280 px: {wide}"

            expected = _session_sources(DOCS / "concepts/conv-backprop.md")
            page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")   # the solutions
            buttons = page.locator(".language-pycon button[data-md-type=copy]")
            assert buttons.count() == len(expected)
            copied = []
            for i in range(buttons.count()):
                buttons.nth(i).click()
                copied.append(page.evaluate("navigator.clipboard.readText()"))
            assert [_code(text) for text in copied] == expected
            run = subprocess.run([sys.executable, "-"], input="\n".join(copied), text=True, capture_output=True,
                                 cwd=tmp_path, timeout=120)
            assert run.returncode == 0, f"the copied code does not run:\n{run.stderr}"

            zh_link = page.locator("a.md-select__link[hreflang=zh]").get_attribute("href")
            response = page.goto(urljoin(page_url, zh_link))
            assert response.ok and page.url == server + "zh/concepts/conv-backprop/"
            assert page.evaluate("document.documentElement.lang") == "zh"
            toc = page.evaluate("[...document.querySelectorAll('.md-nav--secondary a')].map(a => a.hash)")
            assert toc and all(re.search(r"[\u4e00-\u9fff]", unquote(h)) for h in toc), toc
            for hash_ in toc:
                assert page.evaluate("h => document.getElementById(decodeURIComponent(h.slice(1))) !== null", hash_)
            page.goto(server + "zh/concepts/conv-backprop/#" + quote("有步幅时"))
            assert page.evaluate("document.getElementById(decodeURIComponent(location.hash.slice(1))).tagName") == "H3"
            en_link = page.locator("a.md-select__link[hreflang=en]").get_attribute("href")
            assert page.goto(urljoin(page.url, en_link)).ok and page.url.split("#")[0] == page_url

            page.goto(server + "zh/")
            assert page.goto(urljoin(page.url, page.locator("a.md-select__link[hreflang=zh]")
                                     .get_attribute("href"))).ok and page.url == server + "zh/"
            page.locator("input.md-search__input").click()
            page.locator("input.md-search__input").fill("掩码")
            page.wait_for_selector(".md-search-result__link[href*='concepts/pooling']", timeout=15000)
        finally:
            browser.close()


@pytest.mark.slow
def test_every_page_typesets_its_formulas_and_cuts_nothing_off(server, site):
    """Every tutorial page at 1280 px, its solutions open: each formula typeset by KaTeX without error, no
    formula and no code block wider than its box."""
    playwright = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no {CHROMIUM} (Debian's chromium package)")
    folders = sorted({html.parent.relative_to(site).as_posix() for html in site.rglob("index.html")} -
                     {"search"})
    problems, typeset = [], 0
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            for folder in folders:
                if "reference" in folder:           # generated from docstrings: no formulas, long signatures
                    continue
                page.goto(server + ("" if folder == "." else folder + "/"))
                page.wait_for_load_state("load")
                found = page.evaluate("""() => {
                    document.querySelectorAll('details').forEach(d => d.open = true);
                    const math = [...document.querySelectorAll('.arithmatex')];
                    const bad = e => !e.querySelector('.katex') || e.querySelector('.katex-error');
                    return {typeset: document.querySelectorAll('.arithmatex .katex').length,
                            untypeset: math.filter(bad).map(e => e.textContent.slice(0, 60)),
                            cut: [...document.querySelectorAll('.highlight pre > code, div.arithmatex')]
                                 .filter(e => e.scrollWidth > e.clientWidth + 1).map(e => e.textContent.slice(0, 60))};
                }""")
                typeset += found.pop("typeset")
                if found["untypeset"] or found["cut"]:
                    problems.append(f"{folder}: {found}")
        finally:
            browser.close()
    assert not problems, "\n".join(problems)
    assert typeset > 100, f"only {typeset} formulas typeset in all pages"
