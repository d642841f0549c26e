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


def check_launch(rank: int, size: int) -> None:
    """ValueError unless the launcher's variables (those ``launched_size`` reads) agree with MPI's own
    ``rank`` and ``size`` of COMM_WORLD.  They disagree when ``srun`` starts processes whose MPI library
    cannot reach Slurm's PMI (each then initialises alone: N trainings into one run), or when the
    variables were set by hand; training on would average nothing, or wait forever."""
    for size_name, rank_name in _SIZE_RANK:
        said_size, said_rank = _integer(size_name), _integer(rank_name)
        if said_size is None:
            continue
        why = ("each process started alone: srun needs an MPI that reaches its PMI (srun --mpi=pmix, or use "
               "mpirun), and these variables must not be set by hand" if size == 1 else
               "the launcher and the MPI library disagree (were these variables set by hand?)")
        if said_size != size:
            raise ValueError(f"the launcher variable {size_name} says {said_size} processes, but MPI's "
                             f"COMM_WORLD has {size}: {why}")
        if said_rank is not None and said_rank != rank:
            raise ValueError(f"the launcher variable {rank_name} says this is rank {said_rank}, but MPI's "
                             f"COMM_WORLD rank is {rank}: {why}")
        return
