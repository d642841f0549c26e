"""threads.over_batch: chunks that cover the batch in order, BLAS on one thread meanwhile (and back to its
setting only when the last of several callers' splits ends), errors raised only after every chunk has
finished, no nested splits; splits and set_num_threads from any thread; set_num_threads says when it cannot
set the BLAS."""
import threading
import time

import os
import signal
import subprocess
import sys

import numpy as np
import pytest
import threadpoolctl

from juanji.runtime import threads as parallel


def blas_threads() -> int:
    """The thread count NumPy's BLAS has in force now, read by threadpoolctl.  NumPy's is the library juanji
    controls, not the first listed: once Numba has compiled a kernel, SciPy's OpenBLAS is loaded too."""
    numpy_blas = parallel._blas_controller().filepath
    return [info for info in threadpoolctl.threadpool_info() if info["filepath"] == numpy_blas][0]["num_threads"]


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
        return (start, stop, blas_threads(), parallel.num_threads())

    # BLAS on 1 thread inside, while the setting kept (and reported) is 2
    assert parallel.over_batch(7, work, elements=10 ** 6) == [(0, 3, 1, 2), (3, 7, 1, 2)]
    assert len(set(seen)) == 2
    assert blas_threads() == parallel.num_threads() == 2                             # and restored after


def test_small_calls_and_single_samples_stay_in_one_chunk(two_threads, monkeypatch):
    # one sample: nothing to split, so its GEMMs keep BLAS's own 2 threads (a big image's conv is one large GEMM)
    assert parallel.over_batch(1, lambda a, b: (a, b, blas_threads()), elements=10 ** 6) == [(0, 1, 2)]
    monkeypatch.setattr(parallel, "MIN_ELEMENTS", 1000)
    # a small batch: one chunk, BLAS on one thread (OpenBLAS's spinning threads would slow the next split)
    assert parallel.over_batch(8, lambda a, b: (a, b, blas_threads()), elements=999) == [(0, 8, 1)]


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


def test_two_callers_splitting_at_once_leave_blas_on_one_thread_until_the_last_split_ends(two_threads):
    """Each split holds BLAS at one thread; when one caller's split ends while another's runs, BLAS must
    stay at one thread (a caller restoring it then would hand the running chunks BLAS's spinning threads),
    and go back to its setting when the last split ends."""
    first_inside, second_done = threading.Event(), threading.Event()
    seen = {}

    def long_work(start, stop):
        if start == 0:
            first_inside.set()
            assert second_done.wait(10)
            seen["after the other split ended"] = blas_threads()
        return start

    def short_call():
        assert first_inside.wait(10)
        parallel.over_batch(4, lambda a, b: a, elements=10 ** 6)
        seen["reported meanwhile"] = parallel.num_threads()
        second_done.set()

    other = threading.Thread(target=short_call)
    other.start()
    parallel.over_batch(4, long_work, elements=10 ** 6)
    other.join()
    assert seen == {"after the other split ended": 1, "reported meanwhile": 2}
    assert blas_threads() == parallel.num_threads() == 2


def test_set_num_threads_during_a_split_applies_when_it_ends(two_threads):
    def work(start, stop):
        if start == 0:
            parallel.set_num_threads(1)
        return blas_threads()

    assert parallel.over_batch(4, work, elements=10 ** 6) == [1, 1]
    assert blas_threads() == parallel.num_threads() == 1


def in_a_thread(function, *args):
    """``function(*args)`` run to its end in a new thread (as `juanji serve` runs a job), its result."""
    result = []
    thread = threading.Thread(target=lambda: result.append(function(*args)))
    thread.start()
    thread.join()
    return result[0]


def test_a_split_started_in_a_worker_thread_holds_blas_at_one_thread(two_threads):
    """threadpoolctl 3.8 lets only the first thread that set a pthreads OpenBLAS set it again and ignores
    the others silently: a job run on a worker thread split its batch with BLAS's 2 threads in each chunk."""
    parallel._blas_controller().set_num_threads(2)      # the main thread holds threadpoolctl's control
    split = lambda: parallel.over_batch(4, lambda a, b: blas_threads(), elements=10 ** 6)
    assert in_a_thread(split) == [1, 1]
    assert blas_threads() == parallel.num_threads() == 2                             # and restored after


def test_set_num_threads_in_a_worker_thread_takes_effect(two_threads):
    in_a_thread(parallel.set_num_threads, 1)
    assert blas_threads() == parallel.num_threads() == 1


def test_threadpool_limits_works_while_a_thread_that_set_the_count_lives_on(two_threads):
    """juanji hands threadpoolctl's control back after each setting: a thread that set the count and lives
    on (a server's worker) must not leave ``threadpool_limits`` in another thread silently ignored."""
    done, leave = threading.Event(), threading.Event()

    def worker():
        parallel.set_num_threads(1)
        done.set()
        leave.wait(10)

    thread = threading.Thread(target=worker)
    thread.start()
    try:
        assert done.wait(10)
        with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
            assert blas_threads() == 2
    finally:
        leave.set()
        thread.join()


NO_THREADPOOLCTL = """
import sys, warnings
sys.modules["threadpoolctl"] = None          # as if it were not installed: importing it raises ImportError
import juanji
from juanji.runtime import threads
threads.MIN_ELEMENTS = 0
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    juanji.set_num_threads(2)
print(juanji.get_num_threads(), len(threads.over_batch(4, lambda a, b: (a, b), elements=10 ** 6)))
print(caught[0].category.__name__, caught[0].message)
"""


def test_set_num_threads_warns_when_it_cannot_set_the_blas():
    out = subprocess.run([sys.executable, "-c", NO_THREADPOOLCTL], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONWARNINGS": "default"}).stdout.splitlines()
    assert out[0] == "2 2"                       # juanji's own split still follows the setting
    assert out[1].startswith("RuntimeWarning") and "cannot set the BLAS's threads" in out[1]


def test_a_failing_chunk_on_a_worker_is_raised_and_the_worker_serves_the_next_split(two_threads):
    """A chunk's error on a kept worker reaches the caller; the worker lives on and takes the next split's chunk."""
    def work(start, stop):
        if start:
            raise KeyError("second chunk failed")
        return start

    with pytest.raises(KeyError, match="second chunk failed"):
        parallel.over_batch(4, work, elements=10 ** 6)
    chunk_threads = lambda: parallel.over_batch(4, lambda a, b: threading.get_ident(), elements=10 ** 6)
    first = chunk_threads()
    assert first[0] == threading.get_ident() != first[1]
    assert chunk_threads() == first                 # the same worker again: kept, not a thread per split
    assert blas_threads() == parallel.num_threads() == 2


def test_many_threads_splitting_at_once_each_get_their_own_chunks(two_threads):
    """Callers splitting at the same moment each get their own workers: every result is their own, in order."""
    callers, splits, start_together = 4, 25, threading.Barrier(4)
    outcomes = {}

    def caller(tag):
        start_together.wait(10)
        outcomes[tag] = [parallel.over_batch(6, lambda a, b: (tag, a, b, blas_threads()), elements=10 ** 6)
                         for _ in range(splits)]

    threads = [threading.Thread(target=caller, args=(tag,)) for tag in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert outcomes == {tag: [[(tag, 0, 3, 1), (tag, 3, 6, 1)]] * splits for tag in range(callers)}
    assert blas_threads() == parallel.num_threads() == 2


def test_a_caller_interrupted_while_waiting_does_not_hand_its_busy_worker_a_chunk(two_threads):
    """A signal (Ctrl-C) while the caller waits for a worker's chunk: the error comes out, BLAS goes back to its
    setting, and the next split does not wait on (or take the result of) the worker still busy."""
    release, finished = threading.Event(), threading.Event()

    def slow(start, stop):
        if start:
            assert release.wait(10)
            finished.set()
        return start

    def interrupt(signum, frame):
        raise InterruptedError("interrupted while waiting")

    previous = signal.signal(signal.SIGALRM, interrupt)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.2)
        with pytest.raises(InterruptedError):
            parallel.over_batch(4, slow, elements=10 ** 6)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert blas_threads() == parallel.num_threads() == 2
    assert parallel.over_batch(4, lambda a, b: (a, b), elements=10 ** 6) == [(0, 2), (2, 4)]
    assert not finished.is_set()                    # the busy worker was left alone
    release.set()
    assert finished.wait(10)
    assert parallel.over_batch(4, lambda a, b: (a, b), elements=10 ** 6) == [(0, 2), (2, 4)]
