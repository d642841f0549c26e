"""The tutorial site cannot drift from the code: every page's examples run, their printed output is checked,
every command line names a real ``juanji`` command, and ``mkdocs build --strict`` passes.

Pages are ``docs/**/NAME.md`` (English) and ``NAME.zh.md`` (简体中文). A page's code blocks are
```` ```pycon ```` (doctest: ``>>>`` lines and the output they print, compared with NORMALIZE_WHITESPACE and
ELLIPSIS; all blocks of one page share a namespace, run in a fresh temporary directory), ```` ```sh ````
(shell commands, not run: each ``juanji ...`` line must parse with the CLI's own parser) or
```` ```text ```` (shown only). The two languages of a page must show the same examples with the same output.
"""
from __future__ import annotations

import argparse
import doctest
import importlib.util
import re
import shlex
import sys
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest

from juanji import random as jrandom
from juanji.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PAGES = sorted(p for p in DOCS.rglob("*.md") if "images" not in p.relative_to(DOCS).parts)
KINDS = {"pycon", "sh", "text"}
FLAGS = doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS
SITE_URL = re.search(r"^site_url:\s*(\S+)", (ROOT / "mkdocs.yml").read_text(encoding="utf-8"), re.M).group(1)
SITE_PATH = urlsplit(SITE_URL).path            # /docs/


def hook(name: str):
    """A module of docs/hooks, loaded by its path and registered as mkdocs loads it (they are no package)."""
    spec = importlib.util.spec_from_file_location(f"hooks.{name}", DOCS / "hooks" / f"{name}.py")
    module = sys.modules[spec.name] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# The site's own reading of a page's code blocks: the blocks tested are those the downloads are made of.
downloads_hook = hook("downloads")


def page_id(path: Path) -> str:
    return str(path.relative_to(DOCS))


def blocks(path: Path):
    """(kind, first line number of the body (0-based), body) of every fenced block of a page."""
    text = path.read_text(encoding="utf-8")
    for match, kind, body in downloads_hook.fenced_blocks(text):
        yield kind, text.count("\n", 0, match.start(3)), body


def examples(path: Path) -> list[doctest.Example]:
    """The doctest examples of all pycon blocks of a page, with line numbers in the page."""
    parser, found = doctest.DocTestParser(), []
    for kind, line, body in blocks(path):
        if kind == "pycon":
            for example in parser.get_examples(body, str(path)):
                example.lineno += line
                found.append(example)
    return found


def built_folder(page: Path) -> Path:
    """The folder of the built site that holds ``page``: concepts/pooling.zh.md → zh/concepts/pooling."""
    relative = page.relative_to(DOCS)
    zh = page.name.endswith(".zh.md")
    stem = relative.name[:-len(".zh.md")] if zh else relative.stem
    return Path("zh" if zh else "") / (relative.parent if stem == "index" else relative.parent / stem)


def english(path: Path) -> Path:
    return path.with_name(path.name.replace(".zh.md", ".md"))


def test_pages_exist_in_both_languages():
    assert PAGES, f"no pages under {DOCS}"
    english_pages = {p for p in PAGES if not p.name.endswith(".zh.md")}
    chinese_pages = {english(p) for p in PAGES if p.name.endswith(".zh.md")}
    assert not english_pages - chinese_pages, f"pages without a .zh.md: {sorted(map(page_id, english_pages - chinese_pages))}"
    assert not chinese_pages - english_pages, f".zh.md without an English page: {sorted(map(page_id, chinese_pages - english_pages))}"


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_blocks_are_of_a_checked_kind(page):
    unchecked = [(line + 1, kind or "(none)") for kind, line, _ in blocks(page) if kind not in KINDS]
    assert not unchecked, f"{page_id(page)}: code blocks of kinds {sorted(KINDS)} only (line, kind): {unchecked}"


@pytest.mark.parametrize("page", [p for p in PAGES if examples(p)], ids=page_id)
def test_examples_run_and_print_what_the_page_says(page, tmp_path, monkeypatch):
    found = examples(page)
    monkeypatch.chdir(tmp_path)
    print_options, random_state = np.get_printoptions(), jrandom.get_state()
    test = doctest.DocTest(found, {"__name__": "__main__"}, page_id(page), str(page), 0, None)
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    report = []
    try:
        runner.run(test, out=report.append)
    finally:
        np.set_printoptions(**print_options)
        jrandom.set_state(random_state)
    if runner.failures:
        pytest.fail(f"{runner.failures} of {len(found)} examples failed:\n" + "".join(report), pytrace=False)


@pytest.mark.parametrize("page", [p for p in PAGES if p.name.endswith(".zh.md")], ids=page_id)
def test_both_languages_show_the_same_examples(page):
    ours = [e.want.strip() for e in examples(page)]
    theirs = [e.want.strip() for e in examples(english(page))]
    assert ours == theirs, f"{page_id(page)}: the examples or their output differ from {page_id(english(page))}"


def command_lines(path: Path):
    """(line number, words) of every ``juanji ...`` command in the page's sh blocks."""
    for kind, start, body in blocks(path):
        if kind != "sh":
            continue
        lines = body.splitlines()
        for offset, line in enumerate(lines):
            if offset and lines[offset - 1].endswith("\\"):
                continue                            # read with the line it continues
            while line.endswith("\\") and offset + 1 < len(lines):
                offset += 1
                line = line[:-1] + " " + lines[offset]
            words = shlex.split(line, comments=True)
            for i, word in enumerate(words):        # also after `&&`, `;` or `|`
                if word == "juanji" and (i == 0 or words[i - 1] in ("&&", ";", "|", "||")):
                    end = next((j for j in range(i + 1, len(words)) if words[j] in ("&&", ";", "|", "||")),
                               len(words))
                    yield start + offset + 1, words[i + 1:end]


def inline_commands(path: Path):
    """(line number, words) of every inline `juanji ...` code span in the page's prose."""
    text = downloads_hook.FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), path.read_text(encoding="utf-8"))
    for number, line in enumerate(text.splitlines(), 1):
        for span in re.findall(r"`(juanji [^`]+)`", line):
            yield number, shlex.split(span)[1:]


def subcommand_path(words) -> list[str]:
    """The leading words of ``words`` that name (sub-)commands, e.g. ['show', 'features'];
    LookupError for a word where a command is expected that the parser does not know."""
    parser, path = build_parser(), []
    while len(path) < len(words) and not words[len(path)].startswith("-"):
        commands = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not commands:
            break
        word = words[len(path)]
        if word not in commands[0].choices:
            raise LookupError(f"`{' '.join(['juanji', *path, word])}` is not a command; "
                              f"`{' '.join(['juanji', *path])}` has {', '.join(commands[0].choices)}")
        parser = commands[0].choices[word]
        path.append(word)
    return path


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_shell_commands_parse(page, capsys):
    problems = []
    for number, words in command_lines(page):
        try:
            build_parser().parse_args(words)
        except SystemExit as exit:
            if exit.code in (0, None):          # --help
                continue
            problems.append(f"line {number}: juanji {' '.join(words)}\n    {capsys.readouterr().err.strip()}")
    for number, words in inline_commands(page):
        try:
            if not subcommand_path(words):
                problems.append(f"line {number}: `juanji {' '.join(words)}` names no command")
        except LookupError as error:
            problems.append(f"line {number}: {error}")
    assert not problems, f"{page_id(page)}:\n" + "\n".join(problems)


# One Chinese word per concept, the one docs/glossary.zh.md gives (which also lists the others, as the
# textbooks write them): English word → (our word, words the Chinese pages do not use for it).
ONE_WORD = {"stride": ("步幅", ["步长"]),
            "dilation, dilated convolution": ("空洞率、空洞卷积", ["膨胀", "扩张率", "扩张卷积"]),
            "batch normalisation": ("批归一化", ["批量归一化", "批标准化", "批量规范化"]),
            "kernel": ("卷积核", ["滤波器", "过滤器"])}
# Where one of those words means something else: the size of a gradient step is 步长 (not the stride), and
# the convolution page names 滤波器 once as the kernel's other name, and for the classic image filters.
ELSEWHERE = {"步长": {"concepts/optimization.zh.md"}, "滤波器": {"concepts/convolution.zh.md"}}


def test_the_chinese_pages_use_one_word_per_concept():
    glossary = DOCS / "glossary.zh.md"
    rows = dict(re.findall(r"^\| ([^|]+?) \| ([^|]+?) \|", glossary.read_text(encoding="utf-8"), re.M))
    for english, (ours, others) in ONE_WORD.items():
        assert rows.get(ours) == english, f"{page_id(glossary)} does not give {ours} for {english}"
    used = []
    for page in PAGES:
        if page.name.endswith(".zh.md") and page != glossary:
            text = page.read_text(encoding="utf-8")
            used += [f"{page_id(page)}: {word} (for {english}, write {ours})"
                     for english, (ours, others) in ONE_WORD.items() for word in others
                     if word in text and page_id(page) not in ELSEWHERE.get(word, ())]
    assert not used, "another word than the glossary's:\n" + "\n".join(used)


def test_reference_lists_every_layer_with_the_torch_class_it_matches():
    import torch

    import juanji.nn
    for page in (DOCS / "reference" / "nn.md", DOCS / "reference" / "nn.zh.md"):
        listed = set(re.findall(r"^::: juanji\.nn\.(\w+)$", page.read_text(encoding="utf-8"), re.M))
        assert not set(juanji.nn.__all__) - listed, f"{page_id(page)} lacks {sorted(set(juanji.nn.__all__) - listed)}"
        matches = dict(re.findall(r"^\| `(\w+)` \| (.+?) \|$", page.read_text(encoding="utf-8"), re.M))
        for name in listed - {"fuse", "fuse_where_it_pays", "BatchNormReLU", "BatchNormAddReLU", "BatchNormReLU6",
                              "FusedBatchNorm", "FoldedConv2d", "no_grad", "is_grad_enabled"}:
            expected = f"`torch.nn.{name}`" if hasattr(torch.nn, name) else None
            assert name in matches and (matches[name] == expected or expected is None and "juanji" in matches[name]), \
                f"{page_id(page)}: the table gives {matches.get(name)!r} for {name}"


def test_mkdocs_build_strict(site):
    """The ``site`` fixture (conftest.py) builds with ``mkdocs build --strict``: every page is built."""
    for page in PAGES:
        html = site / built_folder(page) / "index.html"
        assert html.exists(), f"{page_id(page)} was not built to {html}"
