"""A CJK font installed after matplotlib cached its font list is still found (juanji.viz.fonts), and Chinese
labels are drawn with it rather than as boxes."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from juanji.viz.fonts import CJK, font_families

# In a fresh process whose matplotlib cache is the stale one: the CJK families matplotlib knows by itself,
# those juanji finds, and the glyph warnings of a figure with a Chinese title drawn by `juanji show`'s code.
PROBE = """
import json, warnings
from matplotlib import font_manager
from juanji.viz.fonts import CJK, font_families
from juanji.viz.plots import plot_panels
import numpy as np
cached = sorted({font.name for font in font_manager.fontManager.ttflist} & set(CJK))
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    plot_panels([("卷积", np.zeros((4, 4)))], "labels.png", title="特征图")
print(json.dumps([cached, font_families(), [str(w.message) for w in caught if "Glyph" in str(w.message)]]))
"""


def test_a_cjk_font_is_installed():
    assert set(font_families()) & set(CJK), \
        "no CJK font for Chinese labels: apt-get install fonts-wqy-zenhei (the Makefile's apt list)"


def test_a_font_missing_from_matplotlibs_stale_cache_is_found_and_draws_chinese(tmp_path):
    env = dict(os.environ, MPLCONFIGDIR=str(tmp_path))
    subprocess.run([sys.executable, "-c", "from matplotlib import font_manager"], env=env, check=True)
    # The cache as matplotlib leaves it on a machine where the CJK font was installed after the first plot.
    [cache] = tmp_path.glob("fontlist-*.json")
    fonts = json.loads(cache.read_text(encoding="utf-8"))
    cjk_files = {font["fname"] for font in fonts["ttflist"] if font["name"] in CJK}
    fonts["ttflist"] = [font for font in fonts["ttflist"] if font["fname"] not in cjk_files]
    cache.write_text(json.dumps(fonts), encoding="utf-8")

    result = subprocess.run([sys.executable, "-c", PROBE], env=env, cwd=tmp_path, capture_output=True,
                            text=True, check=True)
    cached, families, glyph_warnings = json.loads(result.stdout.splitlines()[-1])
    assert cached == [], "the cache was not stale: the test proves nothing"
    assert set(families) & set(CJK), f"no CJK family found past the stale cache: {families}"
    assert glyph_warnings == []
    assert "findfont" not in result.stderr      # no word about the CJK font's weight on every plot
    assert (tmp_path / "labels.png").stat().st_size > 0
