"""Running a command under a real ``mpirun`` from the tests: root allowed, more ranks than cores allowed,
a timeout so that a hang fails the test instead of stalling CI."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MPIRUN = ["mpirun", "--allow-run-as-root", "--oversubscribe", "--bind-to", "none"]

needs_mpi = pytest.mark.skipif(shutil.which("mpirun") is None, reason="Open MPI's mpirun is not installed "
                                                                      "(apt-get install openmpi-bin)")


def environment(**extra) -> dict:
    # in containers (CI) ptrace is often denied, which Open MPI's zero-copy shared memory (CMA) needs
    # the test process itself was not launched by MPI: no launcher's variables but those in ``extra``
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("OMPI_COMM_WORLD", "PMI_", "PMIX_", "SLURM_", "MV2_"))}
    return dict(env, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
                OMPI_MCA_rmaps_base_oversubscribe="1", OMPI_MCA_btl_vader_single_copy_mechanism="none",
                PYTHONPATH=ROOT, **extra)


def mpirun(ranks: int, *args, timeout: float = 120, env=None, **popen) -> subprocess.CompletedProcess:
    """``mpirun -n RANKS python ARGS...`` (or a command when ``args[0]`` is not a .py file/``-m``)."""
    command = [*MPIRUN, "-n", str(ranks), sys.executable, *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=popen.pop("cwd", ROOT),
                          env=env or environment(), **popen)


def mpirun_each(*per_rank: list, timeout: float = 120) -> subprocess.CompletedProcess:
    """``mpirun -n 1 python ARGS0 : -n 1 python ARGS1 ...``: rank i runs ``python *per_rank[i]`` (MPMD, as a
    job whose processes were started with different arguments)."""
    command = list(MPIRUN)
    for rank, args in enumerate(per_rank):
        command += ([":"] if rank else []) + ["-n", "1", sys.executable, *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=environment())


def juanji_command(ranks: int, *args) -> list[str]:
    return [*MPIRUN, "-n", str(ranks), sys.executable, "-m", "juanji.cli", *args]


def rank_pids(marker: str) -> dict[int, int]:
    """{rank: pid} of the MPI processes whose environment holds ``marker`` (NAME=VALUE: one test's job,
    started with ``environment(NAME=VALUE)``)."""
    found = {}
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                variables = f.read().split(b"\0")
        except (OSError, ValueError):
            continue
        ranks = [v for v in variables if v.startswith(b"OMPI_COMM_WORLD_RANK=")]
        if marker.encode() in variables and ranks:
            found[int(ranks[0].split(b"=")[1])] = int(entry)
    return found


def rank_pid(marker: str, rank: int) -> int | None:
    """The pid of the MPI process of ``rank`` in the job marked ``marker`` (see ``rank_pids``)."""
    return rank_pids(marker).get(rank)


def kill_leftovers(marker: str) -> None:
    """SIGKILL what is left of the job marked ``marker`` (after a failed test: a stopped rank outlives mpirun)."""
    for pid in rank_pids(marker).values():
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def error_lines(stderr: str) -> list[str]:
    """juanji's own lines (``juanji: ...``) among Open MPI's banners."""
    return [line for line in stderr.splitlines() if line.startswith("juanji:")]
