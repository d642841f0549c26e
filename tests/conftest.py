"""Its presence puts tests/ on sys.path (pytest's prepend import mode), so the test folders share
helper modules kept here, such as closeness.py."""

import pytest

from juanji.runtime import threads


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
