"""``Communicator``: the few MPI operations data parallelism needs, on NumPy arrays, over mpi4py; each
collective bounded by a timeout, and a job that ends as a whole when one of its processes fails."""
from __future__ import annotations

import math
import os
import signal
import sys
import threading
import time
from typing import NamedTuple

import numpy as np

from .launch import check_launch, launched_rank, launched_size, under_mpi

SPIN_SECONDS, SLEEP_SECONDS = 1e-3, 5e-5     # a wait polls hard this long, then naps this long between polls
DEFAULT_TIMEOUT = 300.0         # seconds a collective may wait for the last process (juanji train --timeout)
ROLL_CALL_SECONDS = 1.0         # how long a process that timed out waits for the others to say where they are
NOTICE_SECONDS = 0.2            # how long a signalled process looks for another's notice that it ends the job
LISTEN_SECONDS = 0.01           # how often a wait looks for roll calls (well within ROLL_CALL_SECONDS)
# tags of the messages on the communicator's private duplicate: the roll call, its answers, "I end the job"
_ROLL_CALL, _HERE, _ENDING = 1, 2, 3


class MissingMPI(RuntimeError):
    """Started under an MPI launcher, but mpi4py is not installed."""


class StoppedElsewhere(RuntimeError):
    """Another process failed where this one did not (``together``); that one reports it."""


class CollectiveTimeout(RuntimeError):
    """A collective did not complete within the communicator's timeout; the message names the processes
    that had not reached it."""


class Signalled(KeyboardInterrupt):
    """SIGINT or SIGTERM reached one process of a job (``init`` installs the handler): the job must end."""


def check_timeout(seconds) -> float:
    """``seconds`` as a float: a finite number above 0 (ValueError otherwise)."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not (math.isfinite(seconds)
                                                                                  and seconds > 0):
        raise ValueError(f"--timeout must be a finite number of seconds above 0, got {seconds}")
    return float(seconds)


class Communicator:
    """A group of processes (MPI's COMM_WORLD by default): rank, size, and in-place collectives.

    ``local_size`` is the number of processes on this machine (MPI's shared-memory split), which
    divides the machine's cores among them.  ``allreduce_seconds`` adds up the time spent waiting for
    Allreduces (for one started early, only the part that the work meanwhile did not hide).  A collective
    that has not completed ``timeout`` seconds after this process began waiting for it raises
    ``CollectiveTimeout`` naming the processes that had not reached it (see ``_call_the_roll``).

    Every collective is non-blocking: ``start_allreduce`` returns it started, ``progress`` moves it on while
    this process computes (Open MPI advances a non-blocking collective only inside MPI calls), ``wait``
    ends it; the others start and wait at once.
    """

    def __init__(self, mpi_comm=None, timeout: float = DEFAULT_TIMEOUT):
        self.timeout = check_timeout(timeout)
        from mpi4py import MPI
        self._mpi = MPI
        self._comm = MPI.COMM_WORLD if mpi_comm is None else mpi_comm
        self.rank, self.size = self._comm.Get_rank(), self._comm.Get_size()
        node = self._comm.Split_type(MPI.COMM_TYPE_SHARED)
        self.local_size = node.Get_size()
        node.Free()
        self._roll = self._comm.Dup()       # roll calls never match a collective's own messages
        self._sending: list = []            # (request, buffer) of roll-call messages still in flight
        self._deferred = 0                  # the collective whose report this process left to a lower rank
        self.collectives = 0                # collectives started: the same sequence on every process
        self.allreduce_seconds = 0.0

    # -- the collectives ----------------------------------------------------------------------------
    def allreduce_(self, array: np.ndarray) -> np.ndarray:
        """Replace ``array`` (contiguous) by its element-wise sum over all processes; returns it."""
        total = np.empty_like(array)
        self.wait(self.start_allreduce(array, total))
        array[...] = total
        return array

    def start_allreduce(self, send: np.ndarray, receive: np.ndarray) -> "Started":
        """Start summing ``send`` over all processes into ``receive`` (contiguous, of one shape, two arrays);
        neither may be touched until ``wait`` returns.  Not in place: Open MPI 4.1's Iallreduce(IN_PLACE)
        took 1.2 to 2.3 times as long (best of 30 to 60, 2 ranks sharing memory, 1 and 4 MiB of float32)."""
        return self._start(self._comm.Iallreduce(send, receive, op=self._mpi.SUM), "allreduce")

    def progress(self, collectives) -> None:
        """Let MPI move the ``collectives`` started here on (between layers of a backward, say)."""
        for collective in collectives:
            collective.request.Test()

    def sum(self, values) -> np.ndarray:
        """A new float64 array: the element-wise sum of ``values`` over all processes."""
        return self.allreduce_(np.array(values, dtype=np.float64))

    def weighted_mean(self, values: dict, weight: float) -> dict:
        """Each value's mean over all processes, weighted by ``weight`` (this process's sample count)."""
        sums = self.sum([value * weight for value in values.values()] + [weight])
        return {key: float(total / sums[-1]) for key, total in zip(values, sums)}

    def broadcast_(self, array: np.ndarray, root: int = 0) -> np.ndarray:
        """Overwrite ``array`` (contiguous) with process ``root``'s; returns it."""
        self.wait(self._start(self._comm.Ibcast(array, root=root), "broadcast"))
        return array

    def allgather_bytes(self, data: bytes) -> list[bytes]:
        """Every process's ``data``, in rank order (two collectives: the lengths, then the bytes)."""
        length = np.array([len(data)], dtype=np.int64)
        lengths = np.empty(self.size, dtype=np.int64)
        self.wait(self._start(self._comm.Iallgather(length, lengths), "allgather"))
        offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        gathered = np.empty(int(lengths.sum()), dtype=np.uint8)
        mine = np.frombuffer(data, dtype=np.uint8).copy()
        self.wait(self._start(self._comm.Iallgatherv(mine, [gathered, lengths.tolist(), offsets.tolist(),
                                                            self._mpi.BYTE]), "allgather"))
        return [gathered[start:start + count].tobytes() for start, count in zip(offsets, lengths)]

    def barrier(self) -> None:
        self.wait(self._start(self._comm.Ibarrier(), "barrier"))

    def abort(self, code: int = 1) -> None:
        """End every process of the job now (what a failing process does so that none waits forever).

        First a notice to the others: the launcher ends them with SIGTERM, which they then know to be no
        news of their own (``ending_elsewhere``), so that the job's one message is this process's."""
        for rank in range(self.size):
            if rank != self.rank:
                self._send(np.zeros(1, dtype=np.int64), rank, _ENDING)
        given_up = time.perf_counter() + NOTICE_SECONDS
        while not all(request.Test() for request, _ in self._sending) and time.perf_counter() < given_up:
            time.sleep(SLEEP_SECONDS)
        self._comm.Abort(code)

    def ending_elsewhere(self) -> bool:
        """Whether another process's ``abort`` notice arrives within NOTICE_SECONDS."""
        given_up = time.perf_counter() + NOTICE_SECONDS
        while not self._roll.Iprobe(self._mpi.ANY_SOURCE, _ENDING):
            if time.perf_counter() > given_up:
                return False
            time.sleep(1e-3)
        return True

    def default_threads(self) -> int:
        """This machine's cores divided among the processes running on it (at least 1)."""
        return max(1, (os.cpu_count() or 1) // self.local_size)

    # -- waiting, bounded ---------------------------------------------------------------------------
    def _start(self, request, name: str) -> "Started":
        self.collectives += 1
        return Started(request, self.collectives, name)

    def wait(self, collective: "Started") -> None:
        """Wait for a collective started here without hogging the core: a blocking MPI call busy-polls,
        which takes the core from a slower rank (or another job) sharing it, and cannot be interrupted.
        This polls, then sleeps between polls once the wait exceeds SPIN_SECONDS (as long as a fast
        exchange takes, so that one is not delayed); every LISTEN_SECONDS it answers other processes'
        roll calls and, past the timeout, calls the roll itself."""
        started = time.perf_counter()
        deadline, listen = started + self.timeout, started + LISTEN_SECONDS
        while not collective.request.Test():
            now = time.perf_counter()
            if now > listen:
                self._answer_roll_calls()
                listen = now + LISTEN_SECONDS
                if now > deadline:
                    deadline = self._call_the_roll(collective)
            if now - started > SPIN_SECONDS:
                time.sleep(SLEEP_SECONDS)
        if collective.name == "allreduce":
            self.allreduce_seconds += time.perf_counter() - started

    def _call_the_roll(self, collective: "Started") -> float:
        """Past the deadline of ``collective``: ask every other process which collective it has reached (the
        last it started), and listen ROLL_CALL_SECONDS for the answers (a process stopped, hung or busy
        elsewhere gives none).  The lowest rank among those that reached it raises ``CollectiveTimeout``
        naming the others; any other process waits one more timeout for that one's report, then raises
        itself.  Returns the new deadline when every process has arrived meanwhile."""
        current, name = collective.number, collective.name
        others = [rank for rank in range(self.size) if rank != self.rank]
        for rank in others:
            self._send(np.array([current], dtype=np.int64), rank, _ROLL_CALL)
        where, answer, status = {}, np.empty(2, dtype=np.int64), self._mpi.Status()
        listen_until = time.perf_counter() + min(ROLL_CALL_SECONDS, self.timeout)
        while len(where) < len(others) and time.perf_counter() < listen_until:
            self._answer_roll_calls()           # two processes may call the roll at once
            while self._roll.Iprobe(self._mpi.ANY_SOURCE, _HERE, status):
                self._roll.Recv(answer, status.Get_source(), _HERE)
                if answer[0] == current:        # not a late answer to an earlier roll call
                    where[status.Get_source()] = int(answer[1])
            time.sleep(SLEEP_SECONDS)
        missing = [rank for rank in others if where.get(rank, 0) < current]
        if not missing:
            return time.perf_counter() + self.timeout
        if min(set(range(self.size)) - set(missing)) == self.rank or self._deferred == current:
            ranks = f"rank {missing[0]}" if len(missing) == 1 else f"ranks {', '.join(map(str, missing))}"
            raise CollectiveTimeout(f"{ranks} did not reach collective #{current} ({name}) within {self.timeout:g} s "
                                    f"(--timeout): stopped, hung, or slower than that; the job ends")
        self._deferred = current
        return time.perf_counter() + self.timeout + ROLL_CALL_SECONDS

    def _answer_roll_calls(self) -> None:
        """Tell each process that called the roll which collective this one has reached."""
        status, asked = self._mpi.Status(), np.empty(1, dtype=np.int64)
        while self._roll.Iprobe(self._mpi.ANY_SOURCE, _ROLL_CALL, status):
            self._roll.Recv(asked, status.Get_source(), _ROLL_CALL)
            self._send(np.array([asked[0], self.collectives], dtype=np.int64), status.Get_source(), _HERE)

    def _send(self, message: np.ndarray, rank: int, tag: int) -> None:
        """Send without waiting (the receiver may be stopped); the buffer lives until the send completes."""
        self._sending = [(request, buffer) for request, buffer in self._sending if not request.Test()]
        self._sending.append((self._roll.Isend(message, rank, tag), message))


class Started(NamedTuple):
    """A collective this process started (``number`` in the sequence every process follows) and has not waited
    for yet: ``Communicator.wait`` ends it."""
    request: object
    number: int
    name: str


_world: Communicator | None = None     # set by init(): the job that an error must end as a whole
_left_together = False                 # set by together(): every process is leaving set-up, none waits
_failed_alike = False                  # every process failed with the same error: rank 0 alone says it


def init(timeout: float = DEFAULT_TIMEOUT) -> Communicator | None:
    """The world communicator when started by an MPI launcher with more than one process, else None
    (and mpi4py is not imported).  ``MissingMPI`` when launched so but mpi4py is not installed;
    ValueError when the launcher's variables disagree with MPI (``launch.check_launch``).  ``timeout``
    (seconds) bounds every collective; the first call's stays.

    From then on an uncaught exception in this process prints its traceback and aborts the whole job
    (``MPI_Abort``): the other processes would otherwise wait for this one in their next collective.
    SIGINT and SIGTERM raise ``Signalled`` (a KeyboardInterrupt), which ends the job the same way, unless
    another process has just ended the job (``Communicator.ending_elsewhere``): then this one leaves quietly.
    """
    global _world, _failed_alike
    check_timeout(timeout)
    if not under_mpi():
        return None
    if _world is None:
        try:
            import mpi4py  # noqa: F401  (imported only to tell a missing install from other errors)
        except ImportError:
            _failed_alike = True            # the processes of a job share one installation
            raise MissingMPI("started by an MPI launcher, but mpi4py is not installed: "
                             "pip install 'juanji[mpi]'") from None
        comm = Communicator(timeout=timeout)
        if comm.size == 1 and launched_size() == 0:    # PMIx alone says no size, and MPI says one process
            return None
        _world = comm
        together(comm, lambda: check_launch(comm.rank, comm.size))
        _end_the_job_on_failure()
    return _world


def _end_the_job_on_failure() -> None:
    previous = sys.excepthook

    def abort_on_uncaught(kind, value, traceback):
        previous(kind, value, traceback)
        report_and_abort(f"uncaught {kind.__name__} (traceback above)", 1)
    sys.excepthook = abort_on_uncaught
    if threading.current_thread() is threading.main_thread():      # where Python lets a handler be set
        for number in (signal.SIGINT, signal.SIGTERM):
            signal.signal(number, _raise_signalled)


def _raise_signalled(number, frame):
    leave_if_ended_elsewhere(number)
    raise Signalled(f"stopped by {signal.Signals(number).name}")


def leave_if_ended_elsewhere(number: int) -> None:
    """For a handler of signal ``number`` under MPI: exit at once, quietly (status 128 + number), when the
    launcher sent it to end this process for another's failure, which that one reports (``ending_elsewhere``)."""
    if _world is not None and _world.ending_elsewhere():
        os._exit(128 + number)


def together(comm: Communicator | None, step):
    """``step()`` on every process, then one exchange tells each which processes failed and how.  If any
    did, every process raises (the failing ones their error, the others ``StoppedElsewhere``) and, none
    being left inside a collective, all can simply exit: no abort; one line from rank 0 when all failed
    with the same error, else one from each that failed.  For set-up (reading options, loading data)
    before the first collective; ``step`` itself must not communicate."""
    global _left_together, _failed_alike
    if comm is None:
        return step()
    try:
        result, error = step(), None
    except Exception as raised:      # noqa: BLE001 (re-raised below, on this process)
        result, error = None, raised
    failures = [text for text in comm.allgather_bytes(b"" if error is None else
                                                      f"{type(error).__name__}: {error}".encode()) if text]
    if failures:
        _left_together = True
        _failed_alike = len(failures) == comm.size and len(set(failures)) == 1
        raise error if error is not None else StoppedElsewhere(f"{len(failures)} other process(es) failed")
    return result


def report_and_abort(message: str, code: int = 2) -> int:
    """Print ``juanji: error: MESSAGE`` and return ``code``; under an MPI launcher the line names this
    process's rank and, unless every process is leaving set-up (``together``), the whole job ends here
    (``MPI_Abort``), since the others may be waiting for this one.  One line from rank 0 only when every
    process fails alike: mpi4py missing, or the same error on every process in ``together``."""
    if not under_mpi() or _failed_alike:
        if is_main_process():
            print(f"juanji: error: {message}", file=sys.stderr, flush=True)
        return code
    rank, size = (_world.rank, _world.size) if _world is not None else (launched_rank(), launched_size())
    print(f"juanji: error: rank {rank}{f' of {size}' if size else ''}: {message}", file=sys.stderr, flush=True)
    if _world is not None and not _left_together:
        _world.abort(code)
    return code


def is_main_process() -> bool:
    """Rank 0, or a process not started by MPI: the one that prints and writes files."""
    return (_world.rank if _world is not None else launched_rank()) == 0
