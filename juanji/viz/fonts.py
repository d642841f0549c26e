"""Fonts for labels in any script: Latin, and Chinese (class names from a folder of images, the docs' figures).

matplotlib knows the system's fonts through a list it builds once and caches (``fontlist-*.json`` in its
cache folder, e.g. ``~/.cache/matplotlib``). A font installed after that list was made — ``apt-get install
fonts-wqy-zenhei`` after the first plot — stays unknown to it, and every Chinese character becomes a box.
So where the list knows no CJK family, the font folders are walked again and each font file the list lacks
is added by its path: the font is found wherever it is installed, whatever the cache says.
"""
from __future__ import annotations

import contextlib
import functools
import logging

import matplotlib
from matplotlib import font_manager

LATIN = "DejaVu Sans"    # matplotlib's own font: always there
CJK = ("WenQuanYi Zen Hei", "Noto Sans CJK SC", "Noto Sans CJK JP", "Droid Sans Fallback")


def _known() -> set[str]:
    return {font.name for font in font_manager.fontManager.ttflist}


@functools.cache
def font_families() -> list[str]:
    """The font families to draw labels with, in order of preference: matplotlib's Latin font, then every
    CJK family installed (Debian's fonts-wqy-zenhei, Noto CJK …), found even where matplotlib's cached
    font list predates them."""
    if not _known() & set(CJK):
        listed = {font.fname for font in font_manager.fontManager.ttflist}
        for path in font_manager.findSystemFonts():
            if path not in listed:
                try:
                    font_manager.fontManager.addfont(path)
                except (OSError, RuntimeError, ValueError):   # a file FreeType cannot read: not a font for us
                    continue
    known = _known()
    return [LATIN] + [family for family in CJK if family in known]


def label_fonts() -> dict:
    """matplotlib settings (for ``rc_context``) that draw Chinese labels as well as Latin ones."""
    return {"font.family": font_families(), "axes.unicode_minus": False}


@contextlib.contextmanager
def drawing_with_label_fonts():
    """Draw under :func:`label_fonts`. matplotlib logs a warning for each family it finds in no "normal"
    weight (WenQuanYi Zen Hei has only "medium") and takes the nearest: that choice is the one wanted, so
    its font manager's log is quieted meanwhile."""
    log = logging.getLogger("matplotlib.font_manager")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        with matplotlib.rc_context(label_fonts()):
            yield
    finally:
        log.setLevel(level)


def with_label_fonts(draw):
    """Run a drawing function under :func:`drawing_with_label_fonts` (a text takes its font when it is
    created, so the whole drawing runs inside)."""
    @functools.wraps(draw)
    def drawing(*args, **kwargs):
        with drawing_with_label_fonts():
            return draw(*args, **kwargs)
    return drawing
