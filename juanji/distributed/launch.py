"""Was this process started by an MPI launcher (mpirun, mpiexec, srun)?  Read from the environment the
launcher sets, so that a plain ``juanji train`` never imports mpi4py."""
from __future__ import annotations

import os

# (size, rank) variables of Open MPI, MPICH/Hydra and Intel MPI (PMI), MVAPICH, and Slurm's srun steps
# (SLURM_STEP_NUM_TASKS, unlike SLURM_NTASKS, is set for an srun step only, not in the batch script itself).
_SIZE_RANK = (("OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK"), ("PMI_SIZE", "PMI_RANK"),
              ("MV2_COMM_WORLD_SIZE", "MV2_COMM_WORLD_RANK"), ("SLURM_STEP_NUM_TASKS", "SLURM_PROCID"))


def _integer(name: str) -> int | None:
    try:
        return int(os.environ[name])
    except (KeyError, ValueError):
        return None


def launched_size() -> int:
    """The number of processes the launcher started (1 when started plainly); 0 when a launcher is
    there but does not say (PMIx sets only PMIX_RANK: then MPI itself must be asked)."""
    for size, _ in _SIZE_RANK:
        if _integer(size) is not None:
            return _integer(size)
    return 0 if "PMIX_RANK" in os.environ else 1


def launched_rank() -> int:
    """This process's rank as the launcher set it (0 when started plainly)."""
    for name in [rank for _, rank in _SIZE_RANK] + ["PMIX_RANK"]:
        if _integer(name) is not None:
            return _integer(name)
    return 0


def under_mpi() -> bool:
    """True when this process is one of several started by an MPI launcher."""
    return launched_size() != 1
