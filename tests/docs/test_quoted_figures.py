"""Every measured figure the README and the docs quote comes from a stored output that holds it.

``bench/results/quoted.toml`` registers each quoted figure: the words as the page writes them (``quote``),
the pages that write them, and the stored output they come from (``source``; ``found``: how the source
writes it, when not as the page does). A stored output under ``bench/results/`` names the command that made
it, the machine and the date (``Command:``, ``Machine:``, ``Date:`` lines, in the file or in the README.md
of its folder); a figure computed by a docs page's own code cites that page, and must be printed by one of
its code blocks (tests/docs/test_docs.py runs them); a limit set in the code cites the module defining it.
And no page quotes a measurement the registry does not know: a number with a unit of time, size, speed,
a percentage or a ratio, outside code, formulas and links, must lie inside a registered quote.
"""
from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from test_docs import downloads_hook

ROOT = Path(__file__).resolve().parents[2]
REGISTRY = ROOT / "bench" / "results" / "quoted.toml"
PAGES = [ROOT / "README.md", ROOT / "CHANGELOG.md",
         *sorted(p for p in (ROOT / "docs").rglob("*.md") if "images" not in p.relative_to(ROOT / "docs").parts)]
PROVENANCE = ("Command:", "Machine:", "Date:")

NOT_PROSE = re.compile(r"<!--.*?-->|\$\$.*?\$\$|\$[^$\n]+\$|`[^`\n]*`|\]\([^)\s]*\)|<[^>\n]+>", re.S)
# A measurement: a number (a range a–b, a list a / b) and its unit; "3×3" is a size, not a ratio.
MEASURED = re.compile(r"(?<![\w.])\d[\d,]*(?:\.\d+)?(?:\s?(?:–|-|/)\s?\d[\d,]*(?:\.\d+)?)*\s?"
                      r"(?:%|ms\b|µs\b|s\b|×(?!\s?\d)|[KMG]i?B\b|img/s|GFLOP/s|(?:minute|second|hour)s?\b(?!-))")


def one_spaced(text: str) -> str:
    return " ".join(text.split())


def figures() -> list[dict]:
    return tomllib.loads(REGISTRY.read_text(encoding="utf-8"))["figure"]


def relative(path: Path) -> str:
    return str(path.relative_to(ROOT))


def prose(text: str) -> str:
    """The page with code blocks, inline code, formulas, comments, tags and link targets blanked out
    (replaced by as many spaces, so that positions stay those of the page)."""
    blank = lambda match: re.sub(r"[^\n]", " ", match.group(0))
    return NOT_PROSE.sub(blank, downloads_hook.FENCE.sub(blank, text))


def code_blocks(text: str) -> str:
    return "\n".join(match.group(0) for match in downloads_hook.FENCE.finditer(text))


def test_the_registry_is_well_formed():
    entries = figures()
    assert entries, f"{REGISTRY} registers no figure"
    for entry in entries:
        assert set(entry) <= {"quote", "pages", "source", "found"} and {"quote", "pages", "source"} <= set(entry), entry
        assert entry["pages"], entry


@pytest.mark.parametrize("entry", figures(), ids=lambda e: f"{e['quote']} ({e['source']})")
def test_each_quoted_figure_is_on_its_pages_and_in_its_source(entry):
    for page in entry["pages"]:
        text = one_spaced((ROOT / page).read_text(encoding="utf-8"))
        assert one_spaced(entry["quote"]) in text, f"{page} does not quote {entry['quote']!r}"
    source = ROOT / entry["source"]
    assert source.is_file(), f"no stored output {entry['source']}"
    found = one_spaced(entry.get("found", entry["quote"]))
    text = source.read_text(encoding="utf-8")
    if source.is_relative_to(ROOT / "docs"):
        assert found in one_spaced(code_blocks(text)), f"no code block of {entry['source']} prints {found!r}"
    else:
        assert found in one_spaced(text), f"{entry['source']} does not hold {found!r}"


@pytest.mark.parametrize("source", sorted({e["source"] for e in figures() if e["source"].startswith("bench/results/")}))
def test_each_stored_output_names_its_command_machine_and_date(source):
    path = ROOT / source
    header = path.read_text(encoding="utf-8") if path.suffix in (".md", ".txt") else ""
    about = path.parent / "README.md"
    header += about.read_text(encoding="utf-8") if about.is_file() else ""
    lines = [line.strip() for line in header.splitlines()]
    for field in PROVENANCE:
        assert any(line.startswith(field) and line[len(field):].strip() for line in lines), \
            f"{source} (or the README.md beside it) has no {field} line"


@pytest.mark.parametrize("page", PAGES, ids=relative)
def test_every_measured_figure_on_a_page_is_registered(page):
    text = page.read_text(encoding="utf-8")
    name = relative(page)
    # Where the page's registered quotes lie, as spans of the whitespace-normalised prose.
    flat_text, positions = [], []
    for index, char in enumerate(text):
        if char.isspace():
            if flat_text and flat_text[-1] == " ":
                continue
            char = " "
        flat_text.append(char)
        positions.append(index)
    flat = "".join(flat_text)
    covered = []
    for entry in figures():
        if name in entry["pages"]:
            quote = one_spaced(entry["quote"])
            for match in re.finditer(re.escape(quote), flat):
                covered.append((positions[match.start()], positions[match.end() - 1] + 1))
    loose = [match.group(0) for match in MEASURED.finditer(prose(text))
             if not any(start <= match.start() and match.end() <= end for start, end in covered)]
    assert not loose, (f"{name} quotes measurements that bench/results/quoted.toml does not register "
                       f"(each needs the stored output it comes from): {loose}")
