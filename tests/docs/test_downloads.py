"""Each page's examples as a script and a notebook (docs/hooks/downloads.py), as a reader downloads them from
the built site: every page with examples offers both under its title, every script runs with ``python`` and
prints the values the page shows, and every notebook runs with nbclient and shows, cell by cell, the output
the page shows. A Chinese page's script and notebook are run too unless they are the same program as the
English page's (the same code, comments and words aside), which has run.
"""
from __future__ import annotations

import ast
import copy
import doctest
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from test_docs import FLAGS, PAGES, built_folder, english, examples, page_id

CODE_PAGES = [page for page in PAGES if examples(page)]
WORKERS = 2                             # scripts and notebooks run at once: CI's cores


def downloads(site: Path, page: Path) -> tuple[Path, Path]:
    """The script and the notebook the built site has for ``page``."""
    stem = page.name.removesuffix(".md").removesuffix(".zh")
    stem = "home" if stem == "index" else stem
    folder = site / built_folder(page)
    return folder / f"{stem}.py", folder / f"{stem}.ipynb"


def test_pages_with_examples_offer_a_script_and_a_notebook_under_their_title(site):
    for page in PAGES:
        html = (site / built_folder(page) / "index.html").read_text(encoding="utf-8")
        offer = re.search(r"</h1>\s*<p class=\"code-downloads\"[^>]*>(.*?)</p>", html, re.S)
        if not examples(page):
            assert "code-downloads" not in html, f"{page_id(page)} has no examples, yet offers them"
            continue
        assert offer, f"{page_id(page)}: no script and notebook offered right under the title"
        links = re.findall(r'<a class="md-button" href="([^"]+)" download>', offer.group(1))
        assert links == [path.name for path in downloads(site, page)], (page_id(page), links)
        for path in downloads(site, page):
            assert path.is_file(), f"{page_id(page)} offers {path.name}, which the site lacks"


def printed_as_written(example: doctest.Example) -> bool:
    """Whether print() writes the example's value as the page does (the interactive prompt writes repr(),
    which differs for arrays and strings); an error, and output with an ellipsis, aside."""
    want = example.want
    return bool(want) and example.exc_msg is None and "..." not in want and "array(" not in want \
        and "dtype" not in want and want.lstrip()[:1] not in "'\""


def run_script(script: Path, folder: Path) -> subprocess.CompletedProcess:
    folder.mkdir()
    return subprocess.run([sys.executable, str(script)], cwd=folder, capture_output=True, text=True, timeout=600)


def same_program(ours: Path, theirs: Path) -> bool:
    """Whether two scripts are one program: the same syntax tree (comments are not in it)."""
    return ast.dump(ast.parse(ours.read_text(encoding="utf-8"))) == ast.dump(ast.parse(theirs.read_text(encoding="utf-8")))


def run_each_page(site: Path, tmp_path: Path, which: int, same, run) -> dict:
    """{page: ``run(download, folder)``} for each page's script (``which`` 0) or notebook (1), ``WORKERS`` at a
    time, each in a folder of its own; a Chinese page's is left out where ``same(it, the English page's)``."""
    files = {page: downloads(site, page)[which] for page in CODE_PAGES}
    pages = [page for page in CODE_PAGES
             if not (page.name.endswith(".zh.md") and same(files[page], files[english(page)]))]
    assert pages, "no page's download runs"
    with ThreadPoolExecutor(WORKERS) as pool:
        return dict(zip(pages, pool.map(lambda page: run(files[page], tmp_path / page_id(page).replace("/", "-")),
                                        pages)))


@pytest.mark.slow
def test_every_script_runs_and_prints_what_the_page_shows(site, tmp_path):
    runs = run_each_page(site, tmp_path, 0, same_program, run_script)
    problems = []
    for page, run in runs.items():
        if run.returncode or run.stderr.strip():
            problems.append(f"{page_id(page)}: exit status {run.returncode}\n{run.stderr[-2000:]}")
            continue
        # the values the page shows, in its order, in what the script printed
        printed, position = " ".join(run.stdout.split()), 0
        for example in filter(printed_as_written, examples(page)):
            found = printed.find(" ".join(example.want.split()), position)
            if found < 0:
                problems.append(f"{page_id(page)}: the script does not print {example.want!r} (line {example.lineno})")
                break
            position = found
    assert not problems, "\n\n".join(problems)


def shown(cell) -> str:
    """A code cell's output as the page writes it: what it printed, its value, its error."""
    parts = []
    for output in cell.outputs:
        if output.output_type == "stream" and output.name == "stdout":
            parts.append(output.text)
        elif output.output_type == "execute_result":
            parts.append(output.data["text/plain"] + "\n")
        elif output.output_type == "error":
            parts.append(f"{output.ename}: {output.evalue}\n")
    return "".join(parts)


def run_notebook(path: Path, folder: Path) -> list[str]:
    """Run the notebook in ``folder``; for each code cell whose output differs from the one stored (the
    page's), a line saying so. nbclient raises on an error in a cell not tagged raises-exception."""
    folder.mkdir()
    stored = nbformat.read(path, as_version=4)
    ran = copy.deepcopy(stored)
    NotebookClient(ran, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(folder)}}).execute()
    checker = doctest.OutputChecker()
    return [f"cell {number}:\n{cell.source}\nshows\n{shown(cell)}the page shows\n{shown(page_cell)}"
            for number, (page_cell, cell) in enumerate(zip(stored.cells, ran.cells))
            if cell.cell_type == "code" and not checker.check_output(shown(page_cell), shown(cell), FLAGS)]


def same_notebook(ours: Path, theirs: Path) -> bool:
    """Whether two notebooks are one program with the same stored outputs, cell by cell."""
    cells = [[cell for cell in nbformat.read(path, as_version=4).cells if cell.cell_type == "code"]
             for path in (ours, theirs)]
    return len(cells[0]) == len(cells[1]) and all(
        ast.dump(ast.parse(a.source)) == ast.dump(ast.parse(b.source)) and shown(a) == shown(b)
        for a, b in zip(*cells))


@pytest.mark.slow
def test_every_notebook_runs_and_shows_what_the_page_shows(site, tmp_path):
    differences = run_each_page(site, tmp_path, 1, same_notebook, run_notebook)
    problems = [f"{page_id(page)}, {lines[0]}" for page, lines in differences.items() if lines]
    assert not problems, "notebooks that do not show what their page shows:\n\n" + "\n\n".join(problems)
