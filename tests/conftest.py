"""Its presence puts tests/ on sys.path (pytest's prepend import mode), so the test folders share
helper modules kept here, such as closeness.py."""

import os
import subprocess
import sys

import pytest

from juanji.functional import plan
from juanji.runtime import kernels as backend
from juanji.runtime import threads


@pytest.fixture(scope="session")
def lenet5_run(tmp_path_factory):
    """A LeNet-5 run directory, trained once a session by ``juanji train`` for 1 epoch on 3,000 Fashion-MNIST images
    (about 2 s of training): 69 % on the test set, and it calls the README's ankle boot an ankle boot.  Shared by the
    tests of the command line and of the web export, which only read it (a test that changes a run copies it first)."""
    out = tmp_path_factory.mktemp("lenet5_run") / "lenet5"
    result = subprocess.run([sys.executable, "-m", "juanji.cli", "train", "--limit", "3000", "--epochs", "1", "--out",
                             str(out), "--no-progress"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return out


@pytest.fixture(params=[1, 2], ids=["1 thread", "2 threads"])
def batch_threads(request, monkeypatch):
    """Run a test serially, then with the batch split over 2 threads however small the arrays
    (``threads.over_batch`` otherwise keeps small calls in one chunk)."""
    before = threads.num_threads()
    if request.param > 1:
        monkeypatch.setattr(threads, "MIN_ELEMENTS", 0)
    threads.set_num_threads(request.param)
    yield request.param
    threads.set_num_threads(before)


@pytest.fixture(params=list(backend.BACKENDS))
def kernels(request, monkeypatch):
    """Run a test on NumPy's kernels, then on the compiled ones (skipped where Numba is not installed), these
    also on the small arrays and maps for which the library keeps NumPy's."""
    if request.param == "numba" and not backend.numba_available():
        pytest.skip("Numba is not installed (pip install 'juanji[fast]')")
    monkeypatch.setattr(backend, "_chosen", request.param)
    monkeypatch.setattr(plan, "COMPILED_MIN_ELEMENTS", 0)
    monkeypatch.setattr(plan, "DEPTHWISE_MIN_PIXELS", 0)
    yield request.param


@pytest.fixture
def numba_kernels(monkeypatch):
    """The compiled kernels alone (skipped where Numba is not installed), on every array and map size."""
    if not backend.numba_available():
        pytest.skip("Numba is not installed (pip install 'juanji[fast]')")
    monkeypatch.setattr(backend, "_chosen", "numba")
    monkeypatch.setattr(plan, "COMPILED_MIN_ELEMENTS", 0)
    monkeypatch.setattr(plan, "DEPTHWISE_MIN_PIXELS", 0)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """In CI (``CI`` set, as ``.ci/run`` does) a skip is a failure: ``make test`` installs everything the tests
    need (Numba, Open MPI, Chromium, Playwright...), so a skipped comparison there means a missing part, and a
    test that is skipped proves nothing."""
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("CI") and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, where `make test` installs everything the tests need: {reason}"
