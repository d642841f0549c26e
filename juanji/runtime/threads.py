"""Batch-parallel kernels: the samples of a batch cut into one chunk per thread.

NumPy runs every copy and elementwise pass on one core, and OpenBLAS splits each GEMM over its threads,
which pays only for large GEMMs: a convolution's per-sample GEMMs are small (LeNet-5's train step runs no
faster on 2 BLAS threads than on 1). So a kernel writes its work for a slice of the batch,
``work(start, stop)``, and ``over_batch`` runs one slice per thread, each slice's copies and GEMMs in its own
Python thread (NumPy and BLAS release the GIL), with BLAS on one thread meanwhile. Chunks write disjoint
slices of arrays allocated before the split, so no locks are needed.

The thread count is BLAS's own setting (``threadpoolctl.threadpool_limits``, ``OPENBLAS_NUM_THREADS``,
``juanji.set_num_threads``): one knob, as ``torch.set_num_threads``.  BLAS's setting is process-wide while
splits may run in several calling threads at once: the first split to start sets BLAS to one thread, the
last one to end sets it back (a counted section), and meanwhile ``num_threads`` reports the setting being
kept, not the 1 in force.  Any thread may split and set the count (``juanji serve`` runs each job on a worker
thread).  Where threadpoolctl finds no BLAS it can set, ``set_num_threads`` warns and sets the split alone.
"""
from __future__ import annotations

import os
import threading
import warnings

import numpy as np

# Below this many elements per call, handing a chunk to a thread (dearer still when its core sleeps)
# costs about what the split saves (LeNet-5 at batch 64: ReLU, pooling and the FC layers stay whole).
MIN_ELEMENTS = 1 << 19
# A convolution counts its multiply-adds, this many to an element: its GEMMs and compiled loops do about as
# many in the time a copy or an elementwise kernel takes per element.  LeNet-5 at 2 threads: its convolutions at
# batch 8 (0.9 and 1.9 M multiply-adds) split at a loss (the step 3.0 ms against 2.4 ms whole, 2.2 ms at 1
# thread; inference 1.05 against 0.71 ms), from batch 64 (7.5 and 15 M) at a gain.
MULTIPLY_ADDS_PER_ELEMENT = 8

_state = threading.local()          # .inside: this thread runs a chunk already (no nested splits)
_blas = None                        # threadpoolctl's controller of NumPy's BLAS, looked up once
_idle: list[_Worker] = []           # workers waiting for a chunk, from every split that has ended
_lock = threading.Lock()            # guards the idle workers and the counted section below
_splits = 0                         # splits running now, in any calling thread
_kept = 1                           # the thread setting while BLAS is held at one thread by the splits
_without_blas = 1                   # the thread setting where no BLAS can be controlled


def _after_fork_in_child():
    """A forked child has only the forking thread: no worker threads and no other thread's split, whose
    lock and one-thread BLAS setting would otherwise stay as the fork left them."""
    global _idle, _lock, _splits
    _idle, _lock = [], threading.Lock()
    if _splits and _blas:
        _set_blas(_kept)
    _splits = 0


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _blas_controller():
    global _blas
    if _blas is None:
        try:
            from threadpoolctl import ThreadpoolController
            controllers = ThreadpoolController().select(user_api="blas").lib_controllers
        except ImportError:
            controllers = []
        # NumPy's own BLAS first: once SciPy or Numba has loaded another OpenBLAS, it may be listed first
        numpy_folder = os.path.dirname(np.__file__)        # wheels keep theirs in numpy.libs beside it
        controllers.sort(key=lambda controller: not os.path.realpath(controller.filepath).startswith(numpy_folder))
        _blas = controllers[0] if controllers else False
    return _blas


def _set_blas(threads: int) -> None:
    """Set NumPy's BLAS to ``threads`` threads from whichever thread calls; callers hold ``_lock`` (or are
    a fresh fork), which orders juanji's own settings.

    OpenBLAS built on pthreads (NumPy's wheels) takes the setting from any thread: one process-wide pool.
    threadpoolctl 3.8's public setter lets only the first thread that set it set it again (until that
    thread ends or a ``threadpool_limits`` block closes) and silently ignores the rest, so a split started
    in a worker thread once ran BLAS's threads inside each of its chunks (3–10× slower jobs on 2 cores).
    juanji calls the setter behind that check, ``_real_set_num_threads`` (a private name, so the tests
    check the effect from a worker thread): it takes no control, and the next thread to set BLAS through
    threadpoolctl takes it as on a fresh start.  Taking threadpoolctl's control and handing it back cost
    ~4 µs a split (two settings), about what the rest of a split that stays whole costs.  Before 3.8,
    and for other BLAS libraries, the public setter has no check.  (OpenBLAS's
    ``openblas_set_num_threads_local`` is no way round: built on pthreads it sets the same process-wide
    count.)"""
    getattr(_blas, "_real_set_num_threads", _blas.set_num_threads)(threads)


def num_threads() -> int:
    """Threads a batch is split over: NumPy's BLAS setting (the one kept while a split holds BLAS at one
    thread), or the last ``set_num_threads`` where no BLAS can be controlled (1 by default)."""
    blas = _blas_controller()
    if not blas:
        return _without_blas
    with _lock:
        return _kept if _splits else max(1, blas.get_num_threads())


def set_num_threads(threads: int) -> None:
    """Use ``threads`` threads for BLAS and for juanji's batch-parallel kernels (process-wide).

    Warns (``RuntimeWarning``) where threadpoolctl is missing or finds no BLAS it can set: the kernels
    then split over ``threads`` threads while BLAS keeps its own setting."""
    global _kept, _without_blas
    if int(threads) < 1:
        raise ValueError(f"set_num_threads needs a positive number of threads, got {threads!r}")
    blas = _blas_controller()
    if not blas:
        _without_blas = int(threads)
        warnings.warn("juanji.set_num_threads: cannot set the BLAS's threads (threadpoolctl is not installed "
                      "or finds no BLAS library it can control); only juanji's batch split uses "
                      f"{int(threads)} thread(s)", RuntimeWarning, stacklevel=2)
        return
    with _lock:
        if _splits:
            _kept = int(threads)        # applied when the running splits end
        else:
            _set_blas(int(threads))


class _Worker:
    """A thread kept for the chunks of splits, one chunk at a time: ``start`` hands it one, ``finish`` waits
    for its outcome.  A bare lock each way is the cheapest wake-up Python has (an executor's queue, future
    and condition doubled the hand-off).  No spinning before the wait: a Python poll needs the GIL the chunk
    needs, and polling with ``os.sched_yield`` gave the core away (LeNet-5's step up to 2× slower)."""

    def __init__(self):
        self._go, self._done = threading.Lock(), threading.Lock()
        self._go.acquire()
        self._done.acquire()
        self._task = self._outcome = None
        self.busy = False           # handed a chunk whose outcome has not been taken yet
        threading.Thread(target=self._serve, name="juanji-chunks", daemon=True).start()

    def _serve(self):
        _state.inside = True        # this thread runs nothing but chunks: splits nested in them run inline
        while True:
            self._go.acquire()
            work, start, stop = self._task
            try:
                self._outcome = (work(start, stop), None)
            except BaseException as exception:          # handed to the caller, raised there
                self._outcome = (None, exception)
            self._task = None
            self._done.release()

    def start(self, work, start: int, stop: int) -> None:
        self.busy = True
        self._task = (work, start, stop)
        self._go.release()

    def finish(self) -> tuple:
        """(result, exception) of the chunk handed to it, once it has run."""
        self._done.acquire()
        outcome, self._outcome, self.busy = self._outcome, None, False
        return outcome


def _enter_split(threads: int, helpers: int) -> list[_Worker]:
    """Enter the counted section (BLAS to one thread if no split runs yet) and take up to ``helpers`` idle
    workers (the caller makes any more it needs)."""
    global _splits, _kept
    blas = _blas_controller()
    with _lock:
        if blas and not _splits:
            _kept = threads
            _set_blas(1)
        _splits += 1
        keep = len(_idle) - min(helpers, len(_idle))
        taken = _idle[keep:]
        del _idle[keep:]
        return taken


def _leave_split(helpers: list[_Worker]) -> None:
    """Leave the counted section (BLAS back to its setting after the last split) and keep the helpers that
    are done for the next split: one still busy (its caller interrupted while waiting) is dropped."""
    global _splits
    blas = _blas_controller()
    with _lock:
        if helpers:
            _idle.extend([worker for worker in helpers if not worker.busy])
        _splits -= 1
        if blas and not _splits:
            _set_blas(_kept)


def _run_chunk(work, start, stop):
    _state.inside = True
    try:
        return work(start, stop)
    finally:
        _state.inside = False


def over_batch(n: int, work, elements: int = 0, multiply_adds: int = 0) -> list:
    """``[work(start, stop) for each chunk]``, the chunks covering range(n) in order, one per thread.

    ``elements``: how many array elements the whole call touches, plus ``multiply_adds`` (a convolution's)
    counted ``MULTIPLY_ADDS_PER_ELEMENT`` to an element; a small call runs as one chunk, and no
    chunk gets fewer than MIN_ELEMENTS / 2 (on many cores a mid-sized call uses fewer threads).  With
    more than one thread BLAS is set to one thread during the call, even for a single chunk: OpenBLAS's
    threads spin for a while after each multi-threaded GEMM and would take the cores from the chunks.
    A batch of one sample (nothing to split) and nested calls run ``work(0, n)`` directly, BLAS untouched.
    Results come back in chunk order (for partial sums).  Any number of threads may call it at once: each
    split takes workers of its own (kept between splits, made as more are needed at once).
    """
    # a single sample keeps BLAS's own threads for its GEMMs; asked first, as the thread count takes a lock and a
    # call into BLAS (about 1 µs, and a LeNet-5 step at batch 1 makes some twenty calls here)
    if n < 2 or getattr(_state, "inside", False):
        return [work(0, n)]
    threads = num_threads()
    if threads < 2:
        return [work(0, n)]
    elements += multiply_adds // MULTIPLY_ADDS_PER_ELEMENT
    # at least half of MIN_ELEMENTS per chunk: many cores get fewer, larger chunks of a small call
    chunks = min(threads, n, max(1, elements // max(1, MIN_ELEMENTS // 2))) if elements >= MIN_ELEMENTS else 1
    bounds = [n * i // chunks for i in range(chunks + 1)]
    helpers = _enter_split(threads, chunks - 1)
    try:
        while len(helpers) < chunks - 1:
            helpers.append(_Worker())
        for chunk, worker in enumerate(helpers, 1):
            worker.start(work, bounds[chunk], bounds[chunk + 1])
        results, error = [], None
        try:
            results.append(_run_chunk(work, bounds[0], bounds[1]))
        except BaseException as exception:      # the other chunks still write into shared arrays: wait
            error = exception
        for worker in helpers:
            result, exception = worker.finish()
            results.append(result)
            error = error or exception
        if error is not None:
            raise error
        return results
    finally:
        _leave_split(helpers)


def map_batch(function, *arrays) -> np.ndarray:
    """A new array shaped as ``arrays[0]``, filled chunk by chunk: ``function(*chunks, out=chunk of it)``.
    For elementwise kernels: ``map_batch(lambda x, out: np.maximum(x, 0, out=out), x)``."""
    first = arrays[0]
    out = np.empty_like(first)
    if first.ndim == 0:
        function(*arrays, out=out)
        return out
    over_batch(len(first), lambda start, stop: function(*(a[start:stop] for a in arrays), out=out[start:stop]),
               elements=first.size * len(arrays))
    return out
