"""The runs the tests of this folder serve, each trained once a session (a tiny LeNet-5 and a text CNN by the real
command line, a small ResNet-20), ``juanji serve`` started on the LeNet-5 as a real process, and one Chromium for all
the browser tests."""
import os
import shutil
import subprocess
import sys

import pytest
from idx_data import idx_folder
from live_server import CHROMIUM, launch, serving

from juanji.schema import TrainConfig
from juanji.train import Trainer


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """A LeNet-5 run directory: ``juanji train`` for 1 epoch on 500 Fashion-MNIST images (a few seconds)."""
    out = tmp_path_factory.mktemp("serve") / "lenet5"
    subprocess.run([sys.executable, "-m", "juanji.cli", "train", "--limit", "500", "--epochs", "1", "--out", str(out),
                    "--no-progress"], check=True, timeout=300, capture_output=True)
    return out


@pytest.fixture(scope="session")
def resnet20_run(tmp_path_factory):
    """A ResNet-20 run directory (BasicBlocks, option-A shortcuts, batch norm, a 64×1×1 global pooling), trained 2
    epochs on 40 random 28×28 images; its data folder names no test set the server may read."""
    root = tmp_path_factory.mktemp("resnet20")
    Trainer(TrainConfig(model="resnet20", data=str(idx_folder(root / "data", 40)), epochs=2, batch_size=20,
                        out=str(root / "resnet20")), progress=False).fit()
    return root / "resnet20"


@pytest.fixture(scope="session")
def text_run(tmp_path_factory):
    """A text CNN's run (the page shows image models only): ``juanji train`` for 1 epoch on 300 words (seconds)."""
    out = tmp_path_factory.mktemp("text") / "words"
    subprocess.run([sys.executable, "-m", "juanji.cli", "train", "--model", "text_cnn", "--data", "words", "--limit",
                    "300", "--epochs", "1", "--out", str(out), "--no-progress"], check=True, timeout=300,
                   capture_output=True)
    return out


@pytest.fixture(scope="module")
def server(tiny_run):
    with serving(tiny_run) as url:
        yield url


class Chromium:
    """Debian's chromium driven by Playwright, started when a test first asks for it and kept for the tests of this
    folder that follow: stopped after the last of them, as Playwright's sync API runs once at a time in a thread
    and tests of other folders (tests/docs) start their own."""

    def __init__(self):
        self.playwright = self.browser = None

    def start(self):
        if self.browser is None:
            os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
            sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (the test extra)")
            if not shutil.which(CHROMIUM):
                pytest.skip("apt-get install chromium (see the Makefile)")
            playwright = sync_api.sync_playwright().start()
            try:
                self.browser = launch(playwright)
            except BaseException:
                playwright.stop()                  # else the next start would be a second Playwright at once
                raise
            self.playwright = playwright
        return self.browser

    def stop(self):
        if self.browser is not None:
            try:
                self.browser.close()
            finally:
                self.playwright.stop()
                self.playwright = self.browser = None


CHROMIUM_HERE = Chromium()


@pytest.fixture(scope="module")
def browser():
    """The Chromium of this folder's tests: each page of a test is a browser context of its own (``new_page``)."""
    return CHROMIUM_HERE.start()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item, nextitem):
    """After a test of this folder and its fixtures, Chromium is stopped if the next test is in another folder."""
    try:
        return (yield)
    finally:
        if nextitem is None or nextitem.path.parent != item.path.parent:
            CHROMIUM_HERE.stop()
