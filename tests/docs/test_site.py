"""The built tutorial site as a reader meets it: code that fits a laptop screen, formulas typeset by a KaTeX
the site serves itself, Chinese text without stray spaces, one search index per language (the Chinese one
cut into words), anchors, language links and sitemaps that resolve under the sub-path of ``site_url`` and
at a server's root — and, in headless Chromium, pages read and used for real, with no request that fails:
every copy button's code pasted into the interactive prompt, and the formulas fitted to a phone's screen.

The browser test drives Debian's /usr/bin/chromium through Python's playwright (never a downloaded
browser); it is skipped where either is missing.
"""
from __future__ import annotations

import contextlib
import doctest
import json
import os
import pty
import re
import select
import socket
import subprocess
import sys
import threading
import time
import unicodedata
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import quote, unquote, urljoin, urlsplit

import pytest

from test_docs import DOCS, PAGES, SITE_PATH, SITE_URL, blocks, built_folder, examples, page_id

CODE_COLUMNS = 80       # a code block's width at a 1280 px wide window, both sidebars shown (measured: 80.2)
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
# Words a Chinese reader searches for, and the page that teaches each (in the Chinese site, zh/).
CHINESE_TERMS = {"反向传播": "concepts/conv-backprop/", "掩码": "concepts/pooling/",
                 "感受野": "concepts/receptive-field/", "权值共享": "concepts/weight-sharing/",
                 "批量归一化": "glossary/"}
LANGUAGE_ROOTS = {"en": "", "zh": "zh/"}
# Han characters, CJK punctuation and full-width forms: between two of them a space is a stray one.
CJK = "\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uff00-\uffef"


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
                # relative, so that they work wherever the site is served (404.html is served at any depth)
                absolute = attrs["href"].startswith("/") and html.name != "404.html"
                if absolute or not path.startswith(SITE_PATH) or not target.exists():
                    broken.append(f"{html.relative_to(site)}: {attrs['href']} → {path}")
    assert not broken, "language links that lead nowhere:\n" + "\n".join(broken)


def search_index(site: Path, language: str) -> dict:
    return json.loads((site / LANGUAGE_ROOTS[language] / "search/search_index.json").read_text(encoding="utf-8"))


def test_chinese_search_index_is_cut_into_words(site):
    index = search_index(site, "zh")
    separator = re.compile(index["config"]["separator"])
    for term, page in CHINESE_TERMS.items():
        found = {doc["location"].split("#")[0] for doc in index["docs"]
                 if term in separator.split(doc["title"] + " " + doc["text"])}
        assert page in found, f"the search index has {term} as a word in {sorted(found)}, not in {page}"


def test_each_language_searches_its_own_pages(site):
    """Each language's search index (in its root, where Material's search reads it) holds all of that
    language's pages and no other's, and its titles carry no zero-width space (they are shown as written)."""
    for language, root in LANGUAGE_ROOTS.items():
        index = search_index(site, language)
        # not the tutorial's pages: the search page, and the Playground's app (added by docs/hooks/playground.py)
        pages = {html.parent.relative_to(site / root).as_posix() + "/" for html in (site / root).rglob("index.html")
                 if not any(html.is_relative_to(site / other) for other in LANGUAGE_ROOTS.values()
                            if len(other) > len(root))} - {"./", "search/", "playground/app/"}
        indexed = {doc["location"].split("#")[0] for doc in index["docs"]}
        assert indexed <= pages | {""}, f"{language}: the index lists pages of another language: {indexed - pages}"
        assert pages <= indexed, f"{language}: pages missing from the index: {sorted(pages - indexed)}"
        spaced = [doc["title"] for doc in index["docs"] if "\u200b" in doc["title"]]
        assert not spaced, f"{language}: titles with zero-width spaces: {spaced[:5]}"
    english = search_index(site, "en")
    assert not [doc for doc in english["docs"] if re.search(f"[{CJK}]", doc["title"])]


class _Text(HTMLParser):
    """A page's text as it is shown, outside code, scripts and styles: runs of inline text, each block
    element (where line breaks show as nothing) ending one."""
    INLINE = {"a", "abbr", "b", "del", "em", "i", "img", "ins", "mark", "s", "small", "span", "strong", "sub",
              "sup", "u", "wbr"}
    HIDDEN = {"code", "kbd", "pre", "script", "style", "svg", "textarea"}

    def __init__(self):
        super().__init__()
        self.parts, self.hidden = [], 0

    def handle_starttag(self, tag, attrs):
        self.hidden += tag in self.HIDDEN
        self.parts.append("" if tag in self.INLINE else "\0")

    def handle_endtag(self, tag):
        self.hidden -= tag in self.HIDDEN
        self.parts.append("" if tag in self.INLINE else "\0")

    def handle_data(self, data):
        self.parts.append("\0" if self.hidden else data)


def test_chinese_text_has_no_stray_spaces(site):
    """A line break in the Markdown source between two Chinese characters shows as a space ("输出与 输入");
    docs/hooks/cjk.py drops it when the site is built."""
    joins = re.compile(f"[{CJK}][ \t\r\n]+[{CJK}]")
    found = []
    for html in sorted((site / "zh").rglob("*.html")):
        parser = _Text()
        parser.feed(html.read_text(encoding="utf-8"))
        text = "".join(parser.parts)
        found += [f"{html.relative_to(site)}: {text[m.start() - 8:m.end() + 8]!r}" for m in joins.finditer(text)]
    assert not found, f"{len(found)} spaces between Chinese characters:\n" + "\n".join(found[:30])


def test_alternate_links_name_the_language_roots_and_their_sitemaps(site):
    """Material fetches ROOT/sitemap.xml for each <link rel="alternate">: each names a language's root,
    where that language's sitemap is, and the sitemap lists that language's pages, all built."""
    wrong = []
    for html in site.rglob("*.html"):
        if html.name == "404.html":
            continue
        folder = html.parent.relative_to(site).as_posix()
        url = SITE_PATH + ("" if folder == "." else folder + "/")
        for tag, attrs in tags(html):
            if tag == "link" and attrs.get("rel") == "alternate" and "hreflang" in attrs:
                target = urlsplit(urljoin(url, attrs["href"])).path
                if attrs["href"].startswith("/") or target != SITE_PATH + LANGUAGE_ROOTS[attrs["hreflang"]]:
                    wrong.append(f"{html.relative_to(site)}: {attrs['href']} → {target}")
    assert not wrong, "alternate links that are not their language's root:\n" + "\n".join(sorted(wrong)[:20])
    for language, root in LANGUAGE_ROOTS.items():
        sitemap = site / root / "sitemap.xml"
        assert sitemap.exists(), f"no {root}sitemap.xml for the {language} pages"
        locations = re.findall(r"<loc>([^<]+)</loc>", sitemap.read_text(encoding="utf-8"))
        assert locations and all(loc.startswith(SITE_URL + root) for loc in locations), locations[:5]
        missing = [loc for loc in locations if not (site / unquote(loc.removeprefix(SITE_URL)) / "index.html").exists()]
        assert not missing, f"{root}sitemap.xml lists pages that were not built: {missing}"


def test_the_glossary_is_in_both_languages_in_the_navigation(site):
    for language, root in LANGUAGE_ROOTS.items():
        assert (site / root / "glossary/index.html").exists()
        home = (site / root / "index.html").read_text(encoding="utf-8")
        assert 'href="glossary/"' in home, f"the {language} navigation does not list the glossary"
        assert any(doc["location"].startswith("glossary/") for doc in search_index(site, language)["docs"])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def _serving(directory: Path, path: str):
    """``python -m http.server`` serving ``directory`` on 127.0.0.1: the URL of ``path`` on it."""
    port = _free_port()
    process = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                                "--directory", str(directory)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}{path}"
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


@pytest.fixture(scope="module")
def root_server(site):
    """The same site served at a server's root, as `python -m http.server -d build/site` would."""
    with _serving(site, "/") as base:
        yield base


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


def _chromium(playwright):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no {CHROMIUM} (Debian's chromium package)")
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


@pytest.mark.slow
@pytest.mark.parametrize("served", ["server", "root_server"], ids=["under the site path", "at the root"])
def test_no_request_fails_and_the_language_switch_keeps_the_page(served, request):
    """The home page and a concept page in each language: every request they make succeeds (Material
    fetches ROOT/sitemap.xml for each <link rel="alternate">), and their language switches lead to the same
    page in each language — under the site path as at a server's root."""
    playwright = pytest.importorskip("playwright.sync_api")
    base = request.getfixturevalue(served)
    failed, sitemaps = [], []
    with playwright.sync_playwright() as p:
        browser = _chromium(p)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.on("response", lambda response: response.status >= 400 and
                    failed.append(f"{response.status} {response.url} (from {page.url})"))
            page.on("requestfinished", lambda request: request.url.endswith("/sitemap.xml") and
                    sitemaps.append(request.url))
            for language, root in LANGUAGE_ROOTS.items():
                for path in ("", "concepts/pooling/"):
                    sitemaps.clear()
                    page.goto(base + root + path)
                    # one sitemap per <link rel="alternate">, fetched by Material's script after the load
                    page.wait_for_load_state("load")
                    for _ in range(200):
                        if len(sitemaps) >= len(LANGUAGE_ROOTS) or failed:
                            break
                        page.wait_for_timeout(50)
                    assert sorted(sitemaps) == sorted(base + r + "sitemap.xml" for r in LANGUAGE_ROOTS.values()) \
                        or failed, (root + path, sitemaps)
                    for other, other_root in LANGUAGE_ROOTS.items():
                        href = page.locator(f"a.md-select__link[hreflang={other}]").get_attribute("href")
                        target = urljoin(page.url, href)
                        assert target == base + other_root + path, (root + path, href)
                        urllib.request.urlopen(target, timeout=10).close()      # raises on a 404
        finally:
            browser.close()
    assert not failed, "requests that failed:\n" + "\n".join(failed)


@pytest.mark.slow
def test_search_stays_in_its_language(server):
    """An English query lists English pages, a Chinese one Chinese pages; the results' titles carry no
    zero-width space; 批量归一化, the textbooks' word, finds the glossary (the pages say 批归一化)."""
    playwright = pytest.importorskip("playwright.sync_api")
    queries = [("", "kernel", lambda href: "/zh/" not in href), ("zh/", "卷积核", lambda href: "/zh/" in href),
               ("zh/", "批量归一化", lambda href: "/zh/glossary/" in href)]
    with playwright.sync_playwright() as p:
        browser = _chromium(p)
        try:
            for root, query, belongs in queries:
                page = browser.new_page(viewport={"width": 1280, "height": 800})
                page.goto(server + root)
                page.locator("input.md-search__input").click()
                page.locator("input.md-search__input").fill(query)
                page.wait_for_selector(".md-search-result__link", timeout=15000)
                results = page.evaluate("""() => [...document.querySelectorAll('.md-search-result__link')].map(a =>
                    [a.href, a.querySelector('h1, h2') ? a.querySelector('h1, h2').textContent : ''])""")
                assert results and all(belongs(href) for href, _ in results), (query, results[:5])
                assert not [title for _, title in results if "\u200b" in title], (query, results[:5])
                page.close()
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


PHONE = {"width": 375, "height": 800}       # an iPhone SE or mini, the narrowest screen readers commonly use
PASTE_WORKERS = 2                           # prompts run at once: CI's cores


@pytest.mark.slow
def test_display_formulas_fit_a_phone(server, site):
    """At 375 px every display formula of every page fits its box, solutions open: KaTeX does not
    break lines, so docs/javascripts/math.js scales down the ones wider than the screen (conv-backprop has
    seven: sums over four indices). Each box lies inside the screen."""
    playwright = pytest.importorskip("playwright.sync_api")
    folders = [built_folder(page).as_posix() for page in PAGES if "$$" in page.read_text(encoding="utf-8")]
    problems, checked = [], 0
    with playwright.sync_playwright() as p:
        browser = _chromium(p)
        try:
            page = browser.new_page(viewport=PHONE)
            for folder in folders:
                page.goto(server + ("" if folder == "." else folder + "/"))
                page.wait_for_load_state("load")
                found = page.evaluate("""async () => {
                    document.querySelectorAll('details').forEach(d => d.open = true);
                    await document.fonts.ready;
                    await new Promise(resolve => requestAnimationFrame(() => requestAnimationFrame(resolve)));
                    const displays = [...document.querySelectorAll('.katex-display')];
                    return {count: displays.length, wide: displays.filter(e => {
                        const box = e.getBoundingClientRect();
                        return e.scrollWidth > e.clientWidth + 1 || box.left < -1 || box.right > innerWidth + 1;
                    }).map(e => e.textContent.slice(0, 60))};
                }""")
                checked += found["count"]
                if found["wide"]:
                    problems.append(f"{folder}: {found['wide']}")
                if folder in ("concepts/conv-backprop", "zh/concepts/conv-backprop"):
                    assert found["count"] >= 7, (folder, found)
        finally:
            browser.close()
    assert not problems, "display formulas wider than their box at 375 px:\n" + "\n".join(problems)
    assert checked > 40, f"only {checked} display formulas on all pages"


def _typed(terminal: int, data: bytes) -> None:
    """Write ``data`` to the terminal as a paste does, all at once (the write waits while the terminal's
    input is full); stop if the prompt has gone."""
    try:
        while data:
            data = data[os.write(terminal, data):]
    except OSError:
        pass


def _pasted(texts: list[str], cwd: Path, timeout: float = 300) -> str:
    """What ``python -i`` shows in a terminal (a pty: the interactive prompt, GNU readline and all) when each
    text is pasted at it and Enter pressed twice — the second ends a compound statement that a text ends
    with, as a reader does on seeing the ``...`` prompt — and then ``exit()`` typed."""
    terminal, prompt_side = pty.openpty()
    env = {**os.environ, "TERM": "dumb",
           "PYTHON_BASIC_REPL": "1"}        # Python ≥ 3.13: the classic prompt, which indents nothing itself
    env.pop("PYTHONSTARTUP", None)
    process = subprocess.Popen([sys.executable, "-q", "-i"], stdin=prompt_side, stdout=prompt_side,
                               stderr=prompt_side, cwd=cwd, env=env, start_new_session=True)
    os.close(prompt_side)
    typed = "".join(text + "\n\n" for text in texts) + "exit()\n"
    threading.Thread(target=_typed, args=(terminal, typed.encode()), daemon=True).start()
    shown, deadline = bytearray(), time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if select.select([terminal], [], [], 1)[0]:
                try:
                    chunk = os.read(terminal, 1 << 16)
                except OSError:             # EIO: the prompt has exited, its side of the terminal is closed
                    break
                if not chunk:
                    break
                shown += chunk
        else:
            shown += b"\n(timed out)"
    finally:
        process.kill()
        process.wait(timeout=10)
        os.close(terminal)
    return shown.decode("utf-8", errors="replace")


@pytest.mark.slow
def test_copied_code_pastes_into_the_interactive_prompt(server, tmp_path):
    """Every page's copy buttons give code that pastes into ``python`` in a terminal, block after block as a
    reader goes down the page: no SyntaxError (a statement after a for/def/with block needs a blank line
    before it there) and no error but those the page shows. What a button copies is read as Material reads
    it, its block's data-copy attribute without trailing blanks (clicking each button, as
    test_a_page_in_headless_chromium does on one page, takes a minute for all of them)."""
    playwright = pytest.importorskip("playwright.sync_api")
    pages = [page for page in PAGES if examples(page)]
    copied = {}
    with playwright.sync_playwright() as p:
        browser = _chromium(p)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            for doc in pages:
                folder = built_folder(doc).as_posix()
                page.goto(server + ("" if folder == "." else folder + "/"))
                copied[doc] = page.evaluate("""() => [...document.querySelectorAll('.language-pycon pre > code')]
                    .map(code => code.closest('[data-copy]').getAttribute('data-copy').trimEnd())""")
                assert len(copied[doc]) == sum(kind == "pycon" for kind, _, _ in blocks(doc)), page_id(doc)
        finally:
            browser.close()

    def paste(doc: Path) -> str:
        folder = tmp_path / page_id(doc).replace("/", "-")
        folder.mkdir()
        return _pasted(copied[doc], folder)

    with ThreadPoolExecutor(PASTE_WORKERS) as pool:
        shown = dict(zip(pages, pool.map(paste, pages)))
    problems = []
    for doc, output in shown.items():
        expected = sum(e.exc_msg is not None for e in examples(doc))       # the errors the page shows
        tracebacks = output.count("Traceback (most recent call last):")
        syntax = re.findall(r"^\s*(?:SyntaxError|IndentationError|TabError)\b.*$", output, re.M)
        if syntax or tracebacks != expected or "(timed out)" in output:
            problems.append(f"{page_id(doc)}: {syntax or ''} {tracebacks} tracebacks, the page shows {expected}:\n"
                            + output[-3000:])
    assert not problems, "copied code that does not paste into python:\n" + "\n\n".join(problems)
