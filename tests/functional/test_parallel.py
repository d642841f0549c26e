"""parallel.over_batch: chunks that cover the batch in order, BLAS on one thread meanwhile, errors raised
only after every chunk has finished, no nested splits."""
import threading
import time

import numpy as np
import pytest

from juanji.functional import parallel


@pytest.fixture
def two_threads(monkeypatch):
    before = parallel.num_threads()
    monkeypatch.setattr(parallel, "MIN_ELEMENTS", 0)
    parallel.set_num_threads(2)
    yield
    parallel.set_num_threads(before)


def test_chunks_cover_the_batch_in_order_on_different_threads(two_threads):
    seen = []

    def work(start, stop):
        seen.append(threading.get_ident())
        return (start, stop, parallel.num_threads())

    assert parallel.over_batch(7, work, elements=10 ** 6) == [(0, 3, 1), (3, 7, 1)]   # BLAS on 1 thread inside
    assert len(set(seen)) == 2
    assert parallel.num_threads() == 2                                               # and restored after


def test_small_calls_and_single_samples_stay_in_one_chunk(two_threads, monkeypatch):
    # one sample: nothing to split, so its GEMMs keep BLAS's own 2 threads (a big image's conv: 14 → 8 ms)
    assert parallel.over_batch(1, lambda a, b: (a, b, parallel.num_threads()), elements=10 ** 6) == [(0, 1, 2)]
    monkeypatch.setattr(parallel, "MIN_ELEMENTS", 1000)
    # a small batch: one chunk, BLAS on one thread (OpenBLAS's spinning threads would slow the next split)
    assert parallel.over_batch(8, lambda a, b: (a, b, parallel.num_threads()), elements=999) == [(0, 8, 1)]


def test_nested_calls_run_serially(two_threads):
    inner = parallel.over_batch(4, lambda a, b: parallel.over_batch(b - a, lambda c, d: (c, d), elements=10 ** 6),
                                elements=10 ** 6)
    assert inner == [[(0, 2)], [(0, 2)]]


def test_one_thread_runs_in_the_caller():
    before = parallel.num_threads()
    parallel.set_num_threads(1)
    try:
        assert parallel.over_batch(8, lambda a, b: threading.get_ident(), elements=10 ** 9) == [threading.get_ident()]
    finally:
        parallel.set_num_threads(before)


def test_an_error_is_raised_after_every_chunk_has_finished(two_threads):
    out = np.zeros(4)

    def work(start, stop):
        if start == 0:
            raise ValueError("first chunk failed")
        time.sleep(0.05)                    # the other chunk is still writing when the first one fails
        out[start:stop] = 1

    with pytest.raises(ValueError, match="first chunk failed"):
        parallel.over_batch(4, work, elements=10 ** 6)
    assert out.tolist() == [0, 0, 1, 1]
    assert parallel.num_threads() == 2


def test_set_num_threads_rejects_nonsense():
    with pytest.raises(ValueError, match="positive"):
        parallel.set_num_threads(0)


def test_the_package_exposes_the_thread_setting():
    import juanji
    before = juanji.get_num_threads()
    try:
        juanji.set_num_threads(1)
        assert juanji.get_num_threads() == 1 == parallel.num_threads()
    finally:
        juanji.set_num_threads(before)


def test_a_forked_child_splits_batches_with_a_pool_of_its_own(two_threads):
    """The parent's pool threads do not exist in a forked child: the child must not wait on them."""
    import multiprocessing
    parallel.over_batch(4, lambda a, b: None, elements=10 ** 6)          # the parent's pool exists now
    context = multiprocessing.get_context("fork")
    with context.Pool(1) as pool:
        assert pool.apply_async(_split_in_child).get(timeout=30) == [(0, 2), (2, 4)]


def _split_in_child():
    parallel.MIN_ELEMENTS = 0
    return parallel.over_batch(4, lambda a, b: (a, b), elements=10 ** 6)


def test_many_threads_get_no_smaller_chunks_than_half_the_threshold(monkeypatch):
    before = parallel.num_threads()
    monkeypatch.setattr(parallel, "MIN_ELEMENTS", 1000)
    parallel.set_num_threads(4)
    try:
        bounds = lambda elements: parallel.over_batch(8, lambda a, b: (a, b), elements=elements)
        assert bounds(1000) == [(0, 4), (4, 8)]                  # 2 chunks of at least 500 elements
        assert bounds(4000) == [(0, 2), (2, 4), (4, 6), (6, 8)]  # all 4 threads
    finally:
        parallel.set_num_threads(before)
