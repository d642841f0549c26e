"""Textbook loops, compiled by Numba where it is installed (``pip install 'juanji[fast]'``).

Each kernel here is one plain-Python loop written like the formula it computes: it is the slow, readable
reference the tests run, and, decorated with ``jit``, the fast kernel ``juanji.set_kernels("numba")``
selects (``prange`` spreads the outer loop over Numba's threads), or with ``serial`` where the batch
split calls it from its own threads.  Without Numba ``jit`` and ``serial`` leave the loop as it is and
``prange`` is ``range``: the loops still run, slowly, and the library uses the NumPy kernels.
``kernel.py_func`` is the uncompiled loop in both cases.

The wrappers beside the loops allocate the outputs and return what the NumPy kernels return (the same
caches too, so a forward on one backend and its backward on the other agree; Winograd's forward keeps its
input and transformed weights instead, which only its own backward reads).  Loops accumulate sums in
float64 whatever the dtype, as NumPy's pairwise sums keep float32 sums accurate.
"""
from __future__ import annotations

import os
import warnings

import numpy as np

try:
    import numba
except ImportError:         # a plain install: the loops run as Python (tests only)
    numba = None

if numba is not None and "NUMBA_THREADING_LAYER" not in os.environ:
    # Numba's own pool, whose threads sleep between kernels.  Its default here, GNU OpenMP, keeps its threads
    # spinning after each kernel, on the cores juanji's batch split needs next, which turns the compiled
    # kernels' gain on a multi-threaded train step into a loss.  It must not be entered by
    # two threads at once: ``runtime.kernels.compiled_call`` lets one in at a time.
    numba.config.THREADING_LAYER = "workqueue"



def private_cache_dir() -> str | None:
    """Where compiled loops are cached: ``$XDG_CACHE_HOME/juanji/numba`` (``~/.cache/juanji/numba``), made
    readable and writable by this user only.  Numba's cache index is a pickle, so whoever can write the
    folder could make juanji run their code: a folder another user owns, or that others may write, is not
    used (None: every process then compiles afresh).  ``NUMBA_CACHE_DIR``, where set, is the user's choice."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    folder = os.path.join(base, "juanji", "numba")
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
        info = os.stat(folder)
    except OSError:
        return None
    return folder if info.st_uid == os.getuid() and not info.st_mode & 0o022 else None


if numba is not None and "NUMBA_CACHE_DIR" not in os.environ:
    numba.config.CACHE_DIR = private_cache_dir() or ""
CACHE = numba is not None and bool(numba.config.CACHE_DIR)     # compiled loops cached on disk, in that folder only

prange = range if numba is None else numba.prange

if numba is not None:
    from numba.core.caching import CompileResultCacheImpl, FunctionCache, UserProvidedCacheLocator

    class _InTheFolder(CompileResultCacheImpl):
        """Cache files in ``numba.config.CACHE_DIR`` only: where it cannot be written, Numba would cache in the
        package's ``__pycache__`` or in ``~/.cache/numba`` instead, folders juanji did not choose."""
        _locator_classes = [UserProvidedCacheLocator]

    class GuardedCache(FunctionCache):
        """Numba's on-disk cache of one compiled loop (what ``cache=True`` sets up), except that a cache that
        cannot be read or written — a full disk, an index or data file cut short or garbled — costs a
        compilation and a warning naming its folder, not the program: it is only a cache.  A damaged cache
        file is a damaged pickle, which can raise any exception: hence ``except Exception``."""
        _impl_class = _InTheFolder

        def load_overload(self, sig, target_context):
            try:
                return super().load_overload(sig, target_context)
            except Exception as error:
                self._give_up(error)
                return None         # Numba compiles it

        def save_overload(self, sig, data):
            try:
                super().save_overload(sig, data)
            except Exception as error:
                self._give_up(error)

        def _give_up(self, error):
            self.disable()          # this loop's cache is left alone from now on
            cache_failed(self.cache_path, f"{type(error).__name__}: {error}")


_told = False       # whether cache_failed has warned in this process


def cache_failed(folder: str, problem: str) -> None:
    """Warn that Numba's cache in ``folder`` cannot be used and the loops are compiled: once in a process (a
    full disk fails every loop's cache in turn)."""
    global _told
    if not _told:
        _told = True
        warnings.warn(f"Numba's cache {folder} cannot be used ({problem}); juanji compiles without it (free space "
                      f"there, make it writable, or remove it)", RuntimeWarning, stacklevel=3)


def cached(dispatcher):
    """``dispatcher`` (a ``numba.njit`` function) cached on disk by a ``GuardedCache`` where ``CACHE``: set as
    its ``_cache``, the attribute Numba's own ``cache=True`` (``Dispatcher.enable_caching``) sets."""
    if CACHE:
        try:
            dispatcher._cache = GuardedCache(dispatcher.py_func)
        except RuntimeError:        # Numba's "no locator available": the folder cannot be made or written
            cache_failed(numba.config.CACHE_DIR, "it cannot be written")
    return dispatcher


def jit(function=None, **options):
    """The loop compiled with ``numba.njit(parallel=True, cache=True, nogil=True, **options)`` (cached on
    disk in ``private_cache_dir()``, so a later process loads it instead of compiling; other Python threads
    run meanwhile); the loop itself without Numba.
    ``fastmath={"reassoc"}`` lets a loop's sums run in SIMD lanes (their order then differs from the loop's)."""
    def decorate(function):
        if numba is None:
            function.py_func = function
            return function
        return cached(numba.njit(parallel=True, nogil=True, **options)(function))
    return decorate if function is None else decorate(function)


def serial(function=None, **options):
    """A loop compiled without threads of its own and run without the GIL (``numba.njit(cache=True,
    nogil=True, **options)``): ``over_batch`` calls it from its threads, one slice of the batch each, beside
    NumPy's BLAS; Numba's pool (and ``compiled_call``'s turn-taking) stays out of it.  The loop itself without
    Numba.  ``fastmath={"reassoc"}`` as for ``jit``."""
    def decorate(function):
        if numba is None:
            function.py_func = function
            return function
        return cached(numba.njit(nogil=True, **options)(function))
    return decorate if function is None else decorate(function)


def inline(function=None, **options):
    """A small helper called from compiled loops (compiled without threads of its own); ``options`` go to
    ``numba.njit`` (``fastmath`` for a sum that may be reordered into SIMD lanes)."""
    def decorate(function):
        if numba is None:
            function.py_func = function
            return function
        return cached(numba.njit(**options)(function))
    return decorate if function is None else decorate(function)


@inline
def inside(offset: int, stride: int, size: int, out: int):
    """(first, stop): the outputs o in [first, stop) whose read position o·stride + offset lies in
    [0, size) — the window positions that fall on the input rather than on its padding."""
    first = max(0, (-offset + stride - 1) // stride)
    stop = min(out, (size - 1 - offset) // stride + 1)
    return first, max(first, stop)


@inline
def add_scaled(out, scale, values):
    """out[j] += scale · values[j] for every j of ``out`` (SIMD where both rows are contiguous)."""
    for j in range(out.shape[0]):
        out[j] += scale * values[j]


@inline(fastmath={"reassoc"})
def dot(a, b):
    """Σ_j a[j] · b[j] over the length of ``a``, summed in float64 (in SIMD lanes: order not kept)."""
    total = 0.0
    for j in range(a.shape[0]):
        total += np.float64(a[j]) * np.float64(b[j])
    return total
