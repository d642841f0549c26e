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
from concurrent.futures import ThreadPoolExecutor

import numpy as np

# Below this many elements per call, handing a chunk to a thread (dearer still when its core sleeps)
# costs about what the split saves (LeNet-5 at batch 64: ReLU, pooling and the FC layers stay whole).
MIN_ELEMENTS = 1 << 19

_state = threading.local()          # .inside: this thread runs a chunk already (no nested splits)
_blas = None                        # threadpoolctl's controller of NumPy's BLAS, looked up once
_pool: ThreadPoolExecutor | None = None
_pool_workers = 0
_lock = threading.Lock()            # guards the pool and the counted section below
_splits = 0                         # splits running now, in any calling thread
_kept = 1                           # the thread setting while BLAS is held at one thread by the splits
_without_blas = 1                   # the thread setting where no BLAS can be controlled


def _after_fork_in_child():
    """A forked child has only the forking thread: no pool threads and no other thread's split, whose
    lock and one-thread BLAS setting would otherwise stay as the fork left them."""
    global _pool, _pool_workers, _lock, _splits
    _pool, _pool_workers, _lock = None, 0, threading.Lock()
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
    threadpoolctl 3.8 lets only the first thread that set it set it again (until that thread ends or a
    ``threadpool_limits`` block closes) and silently ignores the rest, so a split started in a worker
    thread once ran BLAS's threads inside each of its chunks (3–10× slower jobs on 2 cores).  juanji
    takes that control for one call and hands it back: afterwards no thread holds it, and the next
    thread to set BLAS through threadpoolctl takes it as on a fresh start.  (OpenBLAS's
    ``openblas_set_num_threads_local`` is no way round: built on pthreads it sets the same process-wide
    count.)"""
    release = getattr(type(_blas), "clear_controlling_thread", None)      # threadpoolctl >= 3.8, OpenBLAS
    if release:
        release(force=True)
    _blas.set_num_threads(threads)
    if release:
        release()


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


def _enter_split(threads: int) -> None:
    global _splits, _kept
    blas = _blas_controller()
    with _lock:
        if blas and not _splits:
            _kept = threads
            _set_blas(1)
        _splits += 1


def _leave_split() -> None:
    global _splits
    blas = _blas_controller()
    with _lock:
        _splits -= 1
        if blas and not _splits:
            _set_blas(_kept)


def _executor(workers: int) -> ThreadPoolExecutor:
    global _pool, _pool_workers
    with _lock:
        if _pool is None or _pool_workers < workers:
            _pool, _pool_workers = ThreadPoolExecutor(workers, thread_name_prefix="juanji"), workers
        return _pool


def _run_chunk(work, start, stop):
    _state.inside = True
    try:
        return work(start, stop)
    finally:
        _state.inside = False


def over_batch(n: int, work, elements: int) -> list:
    """``[work(start, stop) for each chunk]``, the chunks covering range(n) in order, one per thread.

    ``elements``: how many array elements the whole call touches; a small call runs as one chunk, and no
    chunk gets fewer than MIN_ELEMENTS / 2 (on many cores a mid-sized call uses fewer threads).  With
    more than one thread BLAS is set to one thread during the call, even for a single chunk: OpenBLAS's
    threads spin for a while after each multi-threaded GEMM and would take the cores from the chunks.
    A batch of one sample (nothing to split) and nested calls run ``work(0, n)`` directly, BLAS untouched.
    Results come back in chunk order (for partial sums).  Any number of threads may call it at once.
    """
    threads = num_threads()
    if threads < 2 or n < 2 or getattr(_state, "inside", False):
        return [work(0, n)]         # a single sample keeps BLAS's own threads for its GEMMs
    # at least half of MIN_ELEMENTS per chunk: many cores get fewer, larger chunks of a small call
    chunks = min(threads, n, max(1, elements // max(1, MIN_ELEMENTS // 2))) if elements >= MIN_ELEMENTS else 1
    bounds = [n * i // chunks for i in range(chunks + 1)]
    _enter_split(threads)
    try:
        futures = [_executor(threads - 1).submit(_run_chunk, work, bounds[i], bounds[i + 1])
                   for i in range(1, chunks)]
        results, error = [], None
        try:
            results.append(_run_chunk(work, bounds[0], bounds[1]))
        except BaseException as exception:      # the other chunks still write into shared arrays: wait
            error = exception
        for future in futures:
            try:
                results.append(future.result())
            except BaseException as exception:
                error = error or exception
        if error is not None:
            raise error
        return results
    finally:
        _leave_split()


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
