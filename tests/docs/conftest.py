"""The tutorial site, built once for every test of tests/docs that reads it (test_docs, test_site,
test_downloads): ``mkdocs build --strict`` takes a quarter of a minute; and served, for the browser tests."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from test_docs import ROOT, SITE_PATH
from test_site import _serving


@pytest.fixture(scope="session")
def site(tmp_path_factory) -> Path:
    """The site built with ``mkdocs build --strict`` into ``<tmp>/served`` + SITE_PATH, as a server would
    hold it under its sub-path."""
    root = tmp_path_factory.mktemp("served")
    out = root / SITE_PATH.strip("/")
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
                            cwd=ROOT, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stdout}\n{result.stderr}"
    return out


@pytest.fixture(scope="module")
def server(site):
    """The site served under its sub-path: the base URL of the site."""
    with _serving(site.parents[len(Path(SITE_PATH.strip("/")).parts) - 1], SITE_PATH) as base:
        yield base
