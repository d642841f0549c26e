"""A line break between two Chinese characters is no space: the paragraphs of the Chinese pages are
joined there when the site is built.

A browser shows the line break of a wrapped Markdown line as a space, and Chinese text has none between
its words ("输出与 输入"). So the sources may wrap anywhere, and a Markdown tree processor drops each
line break (with the blanks around it) whose neighbours on both sides are Chinese characters or
punctuation, in the text of every block — across inline markup such as **bold** and links, never inside
code or math. English text, and a break between Chinese and Latin letters, keep their space.
"""
from __future__ import annotations

import re
import xml.etree.ElementTree as etree

from markdown import Extension, Markdown
from markdown.treeprocessors import Treeprocessor
from markdown.util import AtomicString

# Han characters, CJK punctuation and full-width forms, and the dashes, ellipsis and quotes Chinese text
# writes with them.
CJK = "\u2e80-\u2fff\u3000-\u303f\u3040-\u30ff\u3100-\u312f\u3200-\u9fff\uf900-\ufaff\ufe30-\ufe4f" \
      "\uff00-\uffef\u2014\u2018\u2019\u201c\u201d\u2026"
BREAK = re.compile(rf"(?<=[{CJK}])[ \t]*\n\s*(?=[{CJK}])")
# Inline elements: text flows through them. Any other element ends the run of text it is in.
INLINE = {"a", "abbr", "b", "code", "del", "em", "i", "img", "ins", "kbd", "mark", "s", "small", "span",
          "strong", "sub", "sup", "u"}
# Elements whose text is shown as written (their characters still count as neighbours).
VERBATIM = {"code", "kbd", "pre", "script", "style"}


class JoinChineseLines(Treeprocessor):
    def run(self, root: etree.Element) -> None:
        self._block(root)

    def _block(self, block: etree.Element) -> None:
        """Join the lines of each run of inline text in ``block`` and, recursively, in its inner blocks."""
        runs: list[list[tuple[etree.Element, str, bool]]] = [[]]

        def visit(element: etree.Element, verbatim: bool) -> None:
            runs[-1].append((element, "text", verbatim))
            for child in element:
                if child.tag in INLINE:
                    visit(child, verbatim or child.tag in VERBATIM)
                elif child.tag in VERBATIM:
                    runs.append([])
                else:
                    runs.append([])
                    self._block(child)
                    runs.append([])
                runs[-1].append((child, "tail", verbatim))

        if block.tag in VERBATIM:
            return
        visit(block, False)
        for run in runs:
            _join(run)


def _join(run: list[tuple[etree.Element, str, bool]]) -> None:
    """Drop the line breaks between Chinese characters in one run of text, given as (element, "text" or
    "tail", verbatim) pieces in reading order; verbatim pieces and atomic strings (code, math) are read
    but not changed."""
    pieces = [getattr(element, attribute) or "" for element, attribute, _ in run]
    text = "".join(pieces)
    drop = {i for match in BREAK.finditer(text) for i in range(*match.span())}
    if not drop:
        return
    start = 0
    for (element, attribute, verbatim), piece in zip(run, pieces):
        end = start + len(piece)
        if piece and not verbatim and not isinstance(piece, AtomicString):
            kept = "".join(c for i, c in enumerate(piece, start) if i not in drop)
            if kept != piece:
                setattr(element, attribute, kept)
        start = end


class ChineseLines(Extension):
    def extendMarkdown(self, md: Markdown) -> None:
        # after the inline patterns (20) have made <strong>, <a> and <code> of the text, before prettify (10)
        md.treeprocessors.register(JoinChineseLines(md), "join_chinese_lines", 15)


def on_config(config):
    if not any(isinstance(extension, ChineseLines) for extension in config.markdown_extensions):
        config.markdown_extensions.append(ChineseLines())
    return config
