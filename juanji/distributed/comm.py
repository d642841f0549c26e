"""``Communicator``: the few MPI operations data parallelism needs, on NumPy arrays, over mpi4py."""
from __future__ import annotations

import os
import sys
import time

import numpy as np

from .launch import launched_rank, under_mpi

SPIN_SECONDS, SLEEP_SECONDS = 1e-3, 5e-5     # Allreduce: poll hard this long, then nap this long between polls


class MissingMPI(RuntimeError):
    """Started under an MPI launcher, but mpi4py is not installed."""


class StoppedElsewhere(RuntimeError):
    """Another process failed where this one did not (``together``); that one reports it."""


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
        self.allreduce_seconds = 0.0

    def allreduce_(self, array: np.ndarray) -> np.ndarray:
        """Replace ``array`` (contiguous) by its element-wise sum over all processes; returns it.

        Waits without hogging the core: a blocking MPI Allreduce busy-polls, which takes the core from a
        slower rank (or another job) sharing it; this polls the non-blocking one, then sleeps between polls
        once the wait exceeds SPIN_SECONDS (as long as a fast exchange takes, so that one is not delayed)."""
        started = time.perf_counter()
        request = self._comm.Iallreduce(self._mpi.IN_PLACE, array, op=self._mpi.SUM)
        while not request.Test():
            if time.perf_counter() - started > SPIN_SECONDS:
                time.sleep(SLEEP_SECONDS)
        self.allreduce_seconds += time.perf_counter() - started
        return array

    def sum(self, values) -> np.ndarray:
        """A new float64 array: the element-wise sum of ``values`` over all processes."""
        return self.allreduce_(np.array(values, dtype=np.float64))

    def weighted_mean(self, values: dict, weight: float) -> dict:
        """Each value's mean over all processes, weighted by ``weight`` (this process's sample count)."""
        sums = self.sum([value * weight for value in values.values()] + [weight])
        return {key: float(total / sums[-1]) for key, total in zip(values, sums)}

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


_world: Communicator | None = None     # set by init(): the job that an error must end as a whole
_failed_together = 0                   # set by together(): how many processes failed there, all now leaving


def init() -> Communicator | None:
    """The world communicator when started by an MPI launcher with more than one process, else None
    (and mpi4py is not imported).  ``MissingMPI`` when launched so but mpi4py is not installed.

    From then on an uncaught exception in this process prints its traceback and aborts the whole job
    (``MPI_Abort``): the other processes would otherwise wait for this one in their next collective.
    """
    global _world
    if not under_mpi():
        return None
    if _world is None:
        try:
            import mpi4py  # noqa: F401  (imported only to tell a missing install from other errors)
        except ImportError:
            raise MissingMPI("started by an MPI launcher, but mpi4py is not installed: "
                             "pip install 'juanji[mpi]'") from None
        comm = Communicator()
        if comm.size == 1:
            return None
        _world = comm
        previous = sys.excepthook

        def abort_on_uncaught(kind, value, traceback):
            previous(kind, value, traceback)
            report_and_abort(f"uncaught {kind.__name__} (traceback above)", 1)
        sys.excepthook = abort_on_uncaught
    return _world


def together(comm: Communicator | None, step):
    """``step()`` on every process, then one Allreduce tells each whether it failed anywhere.  If so, every
    process raises (the failing ones their error, the others ``StoppedElsewhere``) and, none being left
    inside a collective, all can simply exit: no abort, and when all failed alike one line from rank 0.
    For set-up (loading data, checking options) before the first collective."""
    global _failed_together
    if comm is None:
        return step()
    try:
        result, error = step(), None
    except Exception as raised:      # noqa: BLE001 (re-raised below, on this process)
        result, error = None, raised
    failed = int(comm.sum([error is not None])[0])
    if failed:
        _failed_together = failed
        raise error if error is not None else StoppedElsewhere(f"{failed} other process(es) failed")
    return result


def report_and_abort(message: str, code: int = 2) -> int:
    """Print ``juanji: error: MESSAGE`` and return ``code``; in a job of several processes the line names
    this rank and the whole job ends here (``MPI_Abort``), since the others may be waiting for this one.
    One line from rank 0 only when every process fails alike: before MPI is initialised (mpi4py missing)
    or in ``together``."""
    if _world is None or _failed_together == _world.size:
        if is_main_process():
            print(f"juanji: error: {message}", file=sys.stderr, flush=True)
        return code
    print(f"juanji: error: rank {_world.rank} of {_world.size}: {message}", file=sys.stderr, flush=True)
    if not _failed_together:
        _world.abort(code)
    return code


def is_main_process() -> bool:
    """Rank 0, or a process not started by MPI: the one that prints and writes files."""
    return (_world.rank if _world is not None else launched_rank()) == 0
