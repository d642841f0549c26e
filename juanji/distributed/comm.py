"""``Communicator``: the few MPI operations data parallelism needs, on NumPy arrays, over mpi4py."""
from __future__ import annotations

import os
import sys
import time

import numpy as np

from .launch import launched_rank, under_mpi


class MissingMPI(RuntimeError):
    """Started under an MPI launcher, but mpi4py is not installed."""


class Communicator:
    """A group of processes (MPI's COMM_WORLD by default): rank, size, and in-place collectives.

    ``local_size`` is the number of processes on this machine (MPI's shared-memory split), which
    divides the machine's cores among them.  ``allreduce_seconds`` adds up the time spent in Allreduce.
    """

    def __init__(self, mpi_comm=None):
        from mpi4py import MPI
        self._mpi = MPI
        self._comm = MPI.COMM_WORLD if mpi_comm is None else mpi_comm
        self.rank, self.size = self._comm.Get_rank(), self._comm.Get_size()
        node = self._comm.Split_type(MPI.COMM_TYPE_SHARED)
        self.local_size = node.Get_size()
        node.Free()
        self.allreduce_seconds, self.allreduce_calls = 0.0, 0

    def allreduce_(self, array: np.ndarray) -> np.ndarray:
        """Replace ``array`` (contiguous) by its element-wise sum over all processes; returns it."""
        started = time.perf_counter()
        self._comm.Allreduce(self._mpi.IN_PLACE, array, op=self._mpi.SUM)
        self.allreduce_seconds += time.perf_counter() - started
        self.allreduce_calls += 1
        return array

    def sum(self, values) -> np.ndarray:
        """A new float64 array: the element-wise sum of ``values`` over all processes."""
        return self.allreduce_(np.array(values, dtype=np.float64))

    def broadcast_(self, array: np.ndarray, root: int = 0) -> np.ndarray:
        """Overwrite ``array`` (contiguous) with process ``root``'s; returns it."""
        self._comm.Bcast(array, root=root)
        return array

    def barrier(self) -> None:
        self._comm.Barrier()

    def abort(self, code: int = 1) -> None:
        """End every process of the job now (what a failing process does so that none waits forever)."""
        self._comm.Abort(code)

    def default_threads(self) -> int:
        """This machine's cores divided among the processes running on it (at least 1)."""
        return max(1, (os.cpu_count() or 1) // self.local_size)


def init() -> Communicator | None:
    """The world communicator when started by an MPI launcher with more than one process, else None
    (and mpi4py is not imported).  ``MissingMPI`` when launched so but mpi4py is not installed."""
    if not under_mpi():
        return None
    try:
        import mpi4py  # noqa: F401  (imported only to tell a missing install from other errors)
    except ImportError:
        raise MissingMPI(f"started by an MPI launcher (rank {launched_rank()}), but mpi4py is not installed: "
                         f"pip install 'juanji[mpi]'") from None
    comm = Communicator()
    return comm if comm.size > 1 else None


def report_and_abort(comm: Communicator | None, message: str, code: int = 2) -> int:
    """Print ``juanji: error: ...`` (naming the rank when there are several) and end the whole job:
    the other processes may be waiting for this one in a collective.  Without MPI, return ``code``."""
    if comm is None:
        if launched_rank() == 0:        # e.g. mpi4py missing: every rank fails alike, one of them says so
            print(f"juanji: error: {message}", file=sys.stderr, flush=True)
        return code
    print(f"juanji: error: rank {comm.rank} of {comm.size}: {message}", file=sys.stderr, flush=True)
    comm.abort(code)
    return code
