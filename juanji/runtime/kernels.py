"""Which kernels run: NumPy's (the default) or compiled loops (Numba, the ``juanji[fast]`` extra).

The compiled kernels are the textbook loops of ``juanji.functional.compiled`` compiled by Numba; they
replace the NumPy kernels only where they were measured faster (depthwise convolution, 3×3 stride-1
convolutions by Winograd's F(2×2, 3×3), max pooling (its forward on small maps), batch norm,
ReLU, and a batch norm with the ReLU after it, or with a residual block's sum and ReLU, in one sweep:
the layers of ``nn.fuse``).  The backend is chosen here and only here: ``set_kernels("numba")``, or
``JUANJI_KERNELS=numba`` in the environment (read at the first kernel call).  Without Numba installed,
``"numba"`` is an error, and the default stays ``"numpy"``.  Which kernel each call runs on that backend,
and from which sizes on the compiled loops pay, is ``juanji.functional.plan``'s to say.

Numba runs its own thread pool.  A compiled kernel uses ``num_threads()`` of its threads (juanji's one
setting) and a single one inside a chunk of ``over_batch`` (the batch split already took the other cores),
so the two never oversubscribe the cores.  Calls from several Python threads take turns (each uses every
core anyway, and Numba's workqueue pool must not be entered by two threads at once).
"""
from __future__ import annotations

import contextlib
import importlib.util
import os
import threading

from . import threads

BACKENDS = ("numpy", "numba")
_chosen: str | None = None          # None: not chosen yet, JUANJI_KERNELS decides at the first call
_lock = threading.Lock()


def numba_available() -> bool:
    """True where Numba can be imported (without importing it: that takes a while)."""
    return importlib.util.find_spec("numba") is not None


def set_kernels(name: str) -> None:
    """Run NumPy's kernels (``"numpy"``) or the compiled ones (``"numba"``), process-wide."""
    global _chosen
    if name not in BACKENDS:
        raise ValueError(f"kernels must be one of {', '.join(BACKENDS)}, got {name!r}")
    if name == "numba" and not numba_available():
        raise ValueError("kernels 'numba' need Numba: pip install 'juanji[fast]'")
    _chosen = name


def get_kernels() -> str:
    """The kernels in use: ``set_kernels``'s choice, else ``JUANJI_KERNELS``, else ``"numpy"``."""
    if _chosen is None:
        name = os.environ.get("JUANJI_KERNELS", "numpy").strip().lower() or "numpy"
        try:
            set_kernels(name)
        except ValueError as error:
            raise ValueError(f"JUANJI_KERNELS: {error}") from None
    return _chosen


@contextlib.contextmanager
def compiled_call():
    """The section around one compiled kernel call: Numba's thread count set from juanji's (one thread
    inside a batch chunk), one calling thread at a time."""
    wanted = 1 if getattr(threads._state, "inside", False) else threads.num_threads()
    with _lock:
        if numba_available():       # else the loops run as Python (the tests of a plain install)
            import numba
            numba.set_num_threads(max(1, min(wanted, numba.config.NUMBA_NUM_THREADS)))
        yield
