"""A tiny real run trained by the real command line, and ``juanji serve`` started on it as a real process."""
import contextlib
import re
import subprocess
import sys
import threading

import pytest


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """A LeNet-5 run directory: ``juanji train`` for 1 epoch on 500 Fashion-MNIST images (a few seconds)."""
    out = tmp_path_factory.mktemp("serve") / "lenet5"
    subprocess.run([sys.executable, "-m", "juanji.cli", "train", "--limit", "500", "--epochs", "1", "--out", str(out),
                    "--no-progress"], check=True, timeout=300, capture_output=True)
    return out


@contextlib.contextmanager
def serving(*arguments):
    """Run ``juanji serve ARGUMENTS --port 0`` and yield its base URL (``http://127.0.0.1:PORT``); stop it after."""
    process = subprocess.Popen([sys.executable, "-m", "juanji.cli", "serve", *map(str, arguments), "--port", "0"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    watchdog = threading.Timer(120, process.kill)          # a server that never says where it listens
    watchdog.start()
    try:
        line = process.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        assert match, f"juanji serve did not start: {line!r} {process.stderr.read() if not line else ''}"
        yield f"http://127.0.0.1:{match.group(1)}"
    finally:
        watchdog.cancel()
        process.terminate()
        process.wait(timeout=20)


@pytest.fixture(scope="module")
def server(tiny_run):
    with serving(tiny_run) as url:
        yield url
