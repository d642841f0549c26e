"""Arrays kept from one call to the next, so that hot kernels write into memory that is already mapped.

A fresh large NumPy array is fresh pages from the operating system: the first write to each page is a
page fault plus zeroing by the kernel, work of the same kind as a copy such as im2col, which memory that
is already mapped spares.  A ``Workspace`` hands out the same memory again when
the size allows.  The kernels take workspaces as arguments (``conv2d(..., workspace, scratch)``) and
keep no memory of their own; ``juanji.nn`` decides which to pass: a layer's own workspace for arrays that
live from its forward to its backward (conv's columns), the calling thread's ``scratch()`` workspace for
arrays used only inside a single call (one layer runs at a time in a thread; two models in two threads
use two scratch workspaces).  Nothing handed out by a workspace is ever returned to the caller of a
layer: outputs are always fresh arrays.
"""
from __future__ import annotations

import math
import threading

import numpy as np


class Workspace:
    """``get(key, shape, dtype)`` returns an uninitialised array of that shape, reusing the memory of the
    previous array under ``key`` when it is large enough, of the same dtype, and not more than
    ``SLACK`` times too large (so that training after an evaluation on bigger batches gives the memory
    back instead of keeping it)."""

    SLACK = 4

    def __init__(self):
        self._arrays: dict[str, np.ndarray] = {}

    def get(self, key: str, shape, dtype) -> np.ndarray:
        size = math.prod(shape)
        memory = self._arrays.get(key)
        if memory is None or memory.dtype != dtype or not size <= memory.size <= self.SLACK * max(size, 1):
            memory = self._arrays[key] = np.empty(size, dtype=dtype)
        return memory[:size].reshape(shape)

    def clear(self) -> None:
        """Give the memory back (it is reallocated on the next ``get``)."""
        self._arrays.clear()

    def nbytes(self) -> int:
        return sum(memory.nbytes for memory in self._arrays.values())


def array_in(workspace: Workspace | None, key: str, shape, dtype) -> np.ndarray:
    """``workspace.get(key, shape, dtype)``, or a new array where the caller passed no workspace."""
    return np.empty(shape, dtype) if workspace is None else workspace.get(key, shape, dtype)


_local = threading.local()


def scratch() -> Workspace:
    """The calling thread's scratch workspace (created on first use, freed with the thread)."""
    workspace = getattr(_local, "scratch", None)
    if workspace is None:
        workspace = _local.scratch = Workspace()
    return workspace
