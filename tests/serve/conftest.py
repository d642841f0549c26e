"""A tiny real run trained by the real command line, and ``juanji serve`` started on it as a real process."""
import subprocess
import sys

import pytest
from live_server import serving


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """A LeNet-5 run directory: ``juanji train`` for 1 epoch on 500 Fashion-MNIST images (a few seconds)."""
    out = tmp_path_factory.mktemp("serve") / "lenet5"
    subprocess.run([sys.executable, "-m", "juanji.cli", "train", "--limit", "500", "--epochs", "1", "--out", str(out),
                    "--no-progress"], check=True, timeout=300, capture_output=True)
    return out


@pytest.fixture(scope="module")
def server(tiny_run):
    with serving(tiny_run) as url:
        yield url
