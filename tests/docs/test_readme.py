"""The README's Python examples run as shown: every ```` ```python ```` block of README.md is executed
(each in its own namespace, in a fresh temporary directory), and a ``print(...)`` whose line ends in
a comment must print that comment's text (compared with runs of whitespace made one space)."""
from __future__ import annotations

import ast
import contextlib
import io
import re
import tokenize
from pathlib import Path

import numpy as np
import pytest

from juanji import random as jrandom

README = Path(__file__).resolve().parents[2] / "README.md"
FENCE = re.compile(r"^```python[^\n]*\n(.*?)^```[ \t]*$", re.M | re.S)


def python_blocks() -> list[tuple[int, str]]:
    """(first line number of the body in README.md, body) of every python block."""
    text = README.read_text(encoding="utf-8")
    return [(text.count("\n", 0, m.start(1)) + 1, m.group(1)) for m in FENCE.finditer(text)]


def comments(source: str) -> dict[int, str]:
    """Line number → text of the comment that ends that line."""
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    return {t.start[0]: t.string.lstrip("#").strip() for t in tokens if t.type == tokenize.COMMENT}


def is_print(statement: ast.stmt) -> bool:
    return (isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Call)
            and isinstance(statement.value.func, ast.Name) and statement.value.func.id == "print")


def one_spaced(text: str) -> str:
    return " ".join(text.split())


def test_readme_has_python_examples_with_their_output():
    blocks = python_blocks()
    assert blocks, f"no ```python block in {README}"
    shown = [line for first, body in blocks for statement in ast.parse(body).body if is_print(statement)
             for line in [statement.end_lineno] if line in comments(body)]
    assert shown, "no print(...) in the README's examples shows its output in a trailing comment"


@pytest.mark.parametrize("first, body", python_blocks(), ids=[f"line {first}" for first, _ in python_blocks()])
def test_readme_example_runs_and_prints_what_it_shows(first, body, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    expected = comments(body)
    namespace = {"__name__": "__main__"}
    print_options, random_state = np.get_printoptions(), jrandom.get_state()
    try:
        for statement in ast.parse(body).body:
            where = f"README.md line {first + statement.lineno - 1}"
            printed = io.StringIO()
            with contextlib.redirect_stdout(printed):
                exec(compile(ast.Module([statement], type_ignores=[]), where, "exec"), namespace)
            if is_print(statement) and statement.end_lineno in expected:
                assert one_spaced(printed.getvalue()) == one_spaced(expected[statement.end_lineno]), where
    finally:
        np.set_printoptions(**print_options)
        jrandom.set_state(random_state)
