"""The page's files without a browser: ES modules that import only each other (no CDN, no build step), every
module file used, and index.html loading the entry module."""
import re
from pathlib import Path

STATIC = Path(__file__).resolve().parents[2] / "juanji" / "serve" / "static"
IMPORT = re.compile(r'^import\s.*?\sfrom\s+"([^"]+)";', re.M | re.S)


def modules() -> dict[str, list[str]]:
    """Every module file of the page and the files it imports."""
    return {path.name: IMPORT.findall(path.read_text(encoding="utf-8")) for path in sorted(STATIC.glob("*.js"))}


def test_index_loads_the_entry_module_only():
    page = (STATIC / "index.html").read_text(encoding="utf-8")
    assert re.findall(r"<script[^>]*>", page) == ['<script type="module" src="/static/app.js">']


def test_modules_import_only_modules_of_the_page_and_each_is_used():
    found = modules()
    imported = {"app.js"}
    for name, imports in found.items():
        for target in imports:
            assert target.startswith("./") and target[2:] in found, f"{name} imports {target}: not a file of the page"
            imported.add(target[2:])
    assert imported == set(found), f"module files nothing imports: {sorted(set(found) - imported)}"


def test_every_module_says_what_it_is_for_and_reaches_nothing_outside_juanji():
    for path in STATIC.glob("*.js"):
        text = path.read_text(encoding="utf-8")
        assert text.startswith("// "), f"{path.name} does not begin with a comment saying what it is for"
        assert "use strict" not in text, f"{path.name}: modules are strict already"
        outside = re.findall(r"https?://[^\s\"'`]+", text)
        assert set(outside) <= {"http://www.w3.org/2000/svg"} and "cdn" not in text.lower(), (path.name, outside)
