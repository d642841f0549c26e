"""Each page's examples to take away: a script (NAME.py) and a notebook (NAME.ipynb) made from the page's own
```pycon blocks when the site is built, written beside the page and offered under its title.

Pasted into a file, the examples would print almost nothing: the interactive prompt shows the value of each
expression typed at it, a script does not. So in the script each expression whose value the page shows is
printed, as the prompt would show it, an error the page shows is caught and printed, and the page's section
headings become ``# %%`` cell markers (editors such as VS Code and Spyder run a script cell by cell at them).
In the notebook, which shows the value of the last expression of each cell, a cell ends after every example
that shows output, and holds that output as the page shows it (as a notebook saved after running); the
section headings are its Markdown cells. tests/docs/test_downloads.py runs both from the built site.
"""
from __future__ import annotations

import ast
import html
import re
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

# A fence may be indented, as inside a collapsible ``??? note "Solution"`` block: its body is dedented.
# tests/docs reads the pages' code blocks by this pattern too (``fenced_blocks``).
FENCE = re.compile(r"^( *)```(\w*)[^\n]*\n(.*?)^\1```[ \t]*$", re.M | re.S)
TRACEBACK = ("Traceback (most recent call last):", "Traceback (innermost last):")
HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t]*(?:\{[^}\n]*\})?[ \t]*$", re.M)
WORDS = {
    "en": {"offer": "This page's examples to run yourself:", "script": "script", "notebook": "notebook",
           "header": "The examples of the page, in order; each value the page shows is printed.\n"
                     "Run it in an empty folder: some examples write files.",
           "introduction": "The examples of [the page]({url}), in order."},
    "zh": {"offer": "本页的示例，下载后自己运行：", "script": "脚本", "notebook": "笔记本",
           "header": "本页的示例，按页面上的顺序；页面上显示的每个值都用 print 打印出来。\n"
                     "请在一个空文件夹里运行：有些示例会写文件。",
           "introduction": "[本页]({url})的示例，按页面上的顺序。"},
}


def fenced_blocks(markdown: str):
    """(match, kind, body) of every fenced block of the page: the ``FENCE`` match, the kind the fence names
    ("pycon", "sh"...; "" for none) and the body, dedented by the fence's indentation."""
    for match in FENCE.finditer(markdown):
        indent = len(match.group(1))
        yield match, match.group(2), "".join(line[indent:] for line in match.group(3).splitlines(keepends=True))


@dataclass
class Example:
    """One statement typed at the prompt: its source, without the prompts, and the output the page shows."""
    source: str
    want: str = ""

    @property
    def error(self) -> tuple[str, str] | None:
        """(name, message) of the exception the page shows it raising, else None. The page writes it as
        doctest reads it: the traceback's header, indented lines, then the exception's line(s)."""
        if not self.want.startswith(TRACEBACK):
            return None
        lines = self.want.splitlines()
        start = next(i for i, line in enumerate(lines) if i and line[:1].strip())
        name, _, message = "\n".join(lines[start:]).partition(":")
        return name, message.strip()


def console_examples(body: str) -> list[Example]:
    """The statements of a pycon block, read as docs/javascripts/copy.js reads them (and doctest, which
    runs them): ">>> " starts a statement, "... " lines right after it continue it, and the lines after
    those, up to the next prompt or a blank line, are its output. Comment lines are statements too."""
    found, state = [], None                 # state: in a statement's "source", its "output", or neither
    for line in body.splitlines():
        if line == ">>>" or line.startswith(">>> "):
            found.append(Example(line[4:]))
            state = "source"
        elif state == "source" and (line == "..." or line.startswith("... ")):
            found[-1].source += "\n" + line[4:]
        elif state and line.strip():
            found[-1].want += line + "\n"
            state = "output"
        else:
            state = None
    return found


@dataclass
class Section:
    """The examples under one heading: the statements of each ```pycon block under it."""
    level: int
    title: str
    blocks: list[list[Example]] = field(default_factory=list)


def sections(markdown: str) -> list[Section]:
    """The page's headings in order, each with the examples of the pycon blocks under it (before the next
    heading); headings inside code blocks are not headings."""
    found, position = [Section(0, "")], 0

    def headings(text: str) -> None:
        found.extend(Section(len(m.group(1)), m.group(2)) for m in HEADING.finditer(text))

    for match, kind, body in fenced_blocks(markdown):
        headings(markdown[position:match.start()])
        position = match.end()
        examples = console_examples(body) if kind == "pycon" else []
        if examples:
            found[-1].blocks.append(examples)
    headings(markdown[position:])
    return found


def with_code(found: list[Section]) -> list[Section]:
    """The sections with examples, each kept with the headings above it (an ``##`` above a ``###``) that
    have none of their own, so that every run of code comes under its whole chain of headings."""
    kept, chain = [], []
    for section in found:
        chain = [s for s in chain if s.level < section.level] + [section]
        if section.blocks:
            kept.extend(s for s in chain if s not in kept)
    return kept


def shown(example: Example) -> str:
    """The example's source as a script runs it: an expression whose value the page shows (the last
    statement, when it is an expression other than a call to print) wrapped in print(), as the interactive
    prompt would show it (a tuple written without parentheses keeps them); an example the page shows raising
    an error is run in a try statement that prints the error, as the prompt does, and goes on."""
    source = example.source.rstrip("\n")
    if example.error:                                           # the prompt prints the error and goes on
        name = example.error[0]
        return "\n".join(["try:", *("    " + line for line in source.split("\n")),
                          f"except {name} as error:", f'    print(f"{name}: {{error}}")'])
    if not example.want:
        return source
    body = ast.parse(source).body
    last = body[-1] if body else None
    if not isinstance(last, ast.Expr) or (isinstance(last.value, ast.Call) and
                                          isinstance(last.value.func, ast.Name) and last.value.func.id == "print"):
        return source
    segment = ast.get_source_segment(source, last.value)
    opening, closing = ("print((", "))") if isinstance(last.value, ast.Tuple) and not segment.startswith("(") \
        else ("print(", ")")
    lines = [line.encode() for line in source.split("\n")]     # ast's columns count UTF-8 bytes
    for row, column, text in ((last.end_lineno, last.end_col_offset, closing),      # the closing first: it
                              (last.lineno, last.col_offset, opening)):             # may be on the same line
        lines[row - 1] = lines[row - 1][:column] + text.encode() + lines[row - 1][column:]
    return "\n".join(line.decode() for line in lines)


COMPOUND = re.compile(r"^(?:async\s+)?(?:for|while|if|with|def|class|try|match)\b|^@")


def statements(examples: list[Example], show=lambda example: example.source.rstrip("\n")) -> str:
    """The examples' sources one after another, a blank line after each compound statement (where the
    interactive prompt needs one to end it)."""
    parts = []
    for example in examples:
        parts.append(show(example))
        if COMPOUND.match(parts[-1]) and example is not examples[-1]:
            parts.append("")
    return "\n".join(parts)


def script(title: str, url: str, words: dict, found: list[Section]) -> str:
    lines = [f"# {title}", f"# {url}", "#", *(f"# {line}" for line in words["header"].split("\n"))]
    for section in found:
        if section.level > 1:                                   # the title is the header's
            lines += ["", "", f"# %% {section.title}"]
        for examples in section.blocks:
            lines += ["", statements(examples, shown)]
    return "\n".join(lines) + "\n"


def cells(examples: list[Example]) -> list[list[Example]]:
    """The examples of one block cut into notebook cells: a cell ends after each example that shows output."""
    found = [[]]
    for example in examples:
        found[-1].append(example)
        if example.want:
            found.append([])
    return [cell for cell in found if cell]


def code_cell(examples: list[Example]):
    """A notebook cell of examples, holding the output the page shows after them (as a notebook saved after
    running: the reader sees it before running the cell, and tests/docs compares the two). A cell that ends
    in an example raising an error is tagged so: notebook runners go on after it."""
    last = examples[-1]
    if last.error:
        name, message = last.error
        return nbformat.v4.new_code_cell(statements(examples), metadata={"tags": ["raises-exception"]}, outputs=[
            nbformat.v4.new_output("error", ename=name, evalue=message, traceback=last.want.splitlines())])
    outputs = [nbformat.v4.new_output("stream", name="stdout", text=last.want)] if last.want else []
    return nbformat.v4.new_code_cell(statements(examples), outputs=outputs)


def notebook(title: str, url: str, words: dict, found: list[Section]) -> str:
    introduction = f"# {title}\n\n" + words["introduction"].format(url=url)
    book = nbformat.v4.new_notebook(metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"}})
    book.cells.append(nbformat.v4.new_markdown_cell(introduction))
    for section in found:
        if section.level > 1:
            book.cells.append(nbformat.v4.new_markdown_cell(f"{'#' * section.level} {section.title}"))
        for examples in section.blocks:
            book.cells += [code_cell(cell) for cell in cells(examples)]
    for number, cell in enumerate(book.cells):
        cell.id = f"cell-{number}"          # the same notebook from the same page: no random ids
    nbformat.validate(book)
    return nbformat.writes(book)


def file_stem(page) -> str:
    """``concepts/conv-backprop.zh.md`` → ``conv-backprop``; the home page's files are ``home``
    (``juanji.py`` would hide the package from the script, which imports it)."""
    stem = Path(page.file.src_uri).name.removesuffix(".md").removesuffix(".zh")
    return "home" if stem == "index" else stem


def language(page) -> str:
    return getattr(page.file, "locale", None) or "en"


def on_page_markdown(markdown, page, config, files):
    """Make the page's script and notebook, and offer them under its title."""
    found = sections(markdown)
    title = next((s.title for s in found if s.level == 1), page.title or "juanji")
    found = with_code(found)
    if not found:
        return markdown
    url = config.site_url + page.url if config.site_url else page.url
    stem, words = file_stem(page), WORDS[language(page)]
    page.downloads = {f"{stem}.py": script(title, url, words, found),
                      f"{stem}.ipynb": notebook(title, url, words, found)}
    # no blank between the words and the buttons (CSS spaces them): a Chinese sentence has none
    links = "".join(f'<a class="md-button" href="{html.escape(name)}" download>{words[kind]} {html.escape(name)}</a>'
                    for name, kind in zip(page.downloads, ("script", "notebook")))
    offer = f'<p class="code-downloads" data-search-exclude><span>{words["offer"]}</span>{links}</p>'
    heading = HEADING.search(markdown)
    if heading and len(heading.group(1)) == 1:
        return markdown[:heading.end()] + "\n\n" + offer + "\n" + markdown[heading.end():]
    return offer + "\n\n" + markdown


def on_post_page(output, page, config):
    """Write the page's files into its folder of the built site."""
    folder = Path(config.site_dir) / page.url
    for name, text in getattr(page, "downloads", {}).items():
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text, encoding="utf-8")
    return output
