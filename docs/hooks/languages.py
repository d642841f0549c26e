"""The English and the Chinese pages as two sites that live in one folder: Material for MkDocs expects
each language to be a site of its own, with its own root (its base URL), search index and sitemap.

The i18n plugin builds the Chinese pages into zh/ of the English site, and so they would share the
English site's root: one search index for both languages (an English query lists Chinese pages), and
every page's <link rel="alternate"> naming the page itself, where Material looks for a sitemap.xml
(two requests that fail on every page). Here each page gets its language's root as its base, the
alternate links name the languages' roots, and after the build the search index and the sitemap are
split, one for each language, into that language's root.
"""
from __future__ import annotations

import json
import xml.etree.ElementTree as etree
from pathlib import Path

from mkdocs.plugins import event_priority
from mkdocs.utils import normalize_url

SITEMAP = "http://www.sitemaps.org/schemas/sitemap/0.9"
etree.register_namespace("", SITEMAP)
etree.register_namespace("xhtml", "http://www.w3.org/1999/xhtml")


def roots(config) -> dict[str, str]:
    """Each language's root, relative to the site's: {'en': './', 'zh': 'zh/'}."""
    return {language.locale: language.link.lstrip("/") or "./"
            for language in config.plugins["i18n"].config.languages}


def on_page_context(context, page, config, nav):
    """Runs after the i18n plugin (priority 50) has pointed the language links at this page's versions."""
    root = roots(config)
    # Material reads its base for the search index, the search results' links and the language switch.
    context["base_url"] = normalize_url(root[page.file.locale], page)
    for alternate in config.extra.alternate:
        version = getattr(page.file, "alternates", {}).get(alternate["lang"])
        # the language switch (overrides/partials/alternate.html) goes to this page in that language; the
        # <link rel="alternate"> of the page's head names the language's root, where its sitemap is
        alternate["page"] = version.url if version else root[alternate["lang"]]
        alternate["link"] = root[alternate["lang"]]
    return context


@event_priority(-200)       # after the i18n plugin (-100) has built every language and the whole index
def on_post_build(config):
    site = Path(config.site_dir)
    default = next(language.locale for language in config.plugins["i18n"].config.languages if language.default)
    others = {locale: root for locale, root in roots(config).items() if locale != default}
    split_search_index(site, others)
    split_sitemap(site, config.site_url, others)


def split_search_index(site: Path, others: dict[str, str]) -> None:
    """search/search_index.json keeps the default language's pages; each other language's pages go to
    ROOT/search/search_index.json, their locations relative to ROOT.

    Material's index puts a zero-width space between the Chinese words that jieba cut, and shows the
    titles of the results as they are in the index: the spaces become <wbr/>, an HTML word boundary
    that is neither seen nor copied. Material's search splits its text into words at tags (self-closing
    here: it counts an unclosed one as an element still open), and mkdocs.yml's search separator at
    <wbr/> too."""
    path = site / "search" / "search_index.json"
    index = json.loads(path.read_text(encoding="utf-8"))
    for doc in index["docs"]:
        for field in ("title", "text"):
            doc[field] = doc[field].replace("\u200b", "<wbr/>")
    languages = {locale: [] for locale in others}
    kept = []
    for doc in index["docs"]:
        locale = next((locale for locale, root in others.items() if doc["location"].startswith(root)), None)
        if locale is None:
            kept.append(doc)
        else:
            languages[locale].append({**doc, "location": doc["location"][len(others[locale]):]})
    for locale, docs in languages.items():
        target = site / others[locale] / "search" / "search_index.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps({"config": index["config"], "docs": docs}, ensure_ascii=False,
                                     separators=(",", ":")), encoding="utf-8")
    path.write_text(json.dumps({"config": index["config"], "docs": kept}, ensure_ascii=False,
                               separators=(",", ":")), encoding="utf-8")


def split_sitemap(site: Path, site_url: str, others: dict[str, str]) -> None:
    """ROOT/sitemap.xml for each other language: the site's entries of the pages under ROOT (a sitemap
    lists only the pages under its own folder)."""
    for root in others.values():
        tree = etree.parse(site / "sitemap.xml")
        urlset = tree.getroot()
        for url in list(urlset):
            if not url.findtext(f"{{{SITEMAP}}}loc", "").startswith(site_url + root):
                urlset.remove(url)
        tree.write(site / root / "sitemap.xml", encoding="UTF-8", xml_declaration=True)
