"""Running a command under a real ``mpirun`` from the tests: root allowed, more ranks than cores allowed,
a timeout so that a hang fails the test instead of stalling CI."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

needs_mpi = pytest.mark.skipif(shutil.which("mpirun") is None, reason="Open MPI's mpirun is not installed "
                                                                      "(apt-get install openmpi-bin)")


def environment(**extra) -> dict:
    # in containers (CI) ptrace is often denied, which Open MPI's zero-copy shared memory (CMA) needs
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMPI_MCA_rmaps_base_oversubscribe="1", OMPI_MCA_btl_vader_single_copy_mechanism="none",
               PYTHONPATH=ROOT, **extra)
    for name in [n for n in env if n.startswith(("OMPI_COMM_WORLD", "PMI_", "PMIX_"))]:
        del env[name]       # the test process itself was not launched by MPI
    return env


def mpirun(ranks: int, *args, timeout: float = 120, env=None, **popen) -> subprocess.CompletedProcess:
    """``mpirun -n RANKS python ARGS...`` (or a command when ``args[0]`` is not a .py file/``-m``)."""
    command = ["mpirun", "--allow-run-as-root", "--oversubscribe", "--bind-to", "none", "-n", str(ranks),
               sys.executable, *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=popen.pop("cwd", ROOT),
                          env=env or environment(), **popen)


def juanji_command(ranks: int, *args) -> list[str]:
    return ["mpirun", "--allow-run-as-root", "--oversubscribe", "--bind-to", "none", "-n", str(ranks),
            sys.executable, "-m", "juanji.cli", *args]
