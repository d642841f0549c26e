"""The Playground's app (docs/playground.md embeds it): the page of ``juanji serve``, answered in the reader's
browser by onnxruntime-web, as ``juanji export RUN --web`` writes it.

docs/playground/app/ holds the run's part of that folder (static.json and run/, made by
docs/playground/make_playground.py), which the build copies as it copies images. The page itself and
onnxruntime-web (34 MB: not kept in the repository) are added to the built site here, by juanji's own writer:
the page's files from juanji/serve/static, onnxruntime-web from juanji's pinned, hash-checked npm tarball
(downloaded once into $XDG_CACHE_HOME/juanji/ where it is not there yet).
"""
from __future__ import annotations

from pathlib import Path

from juanji.interop import web

APP = "playground/app"      # in docs/ and in the built site


def on_post_build(config):
    # Runs again in the i18n plugin's build of the Chinese pages, into the same folder: the page is the same, and
    # written over.
    web.write_page(Path(config.site_dir) / APP, web.runtime_tarball())
