"""Data-parallel training over MPI (mpi4py): one process per share of every global batch.

Started plainly, ``init()`` returns None and nothing here imports mpi4py.  Under ``mpirun -n N`` / ``srun``::

    comm = distributed.init()                                 # Communicator, or None
    model = distributed.DistributedDataParallel(model, comm)  # process 0's weights everywhere
    loader = distributed.ShardedLoader(loader, comm.rank, comm.size)
    for x, y in loader:                                       # this process's share of the global batch
        loss = loss_fn(model(x), y)
        model.backward(loss_fn.backward())                    # gradients of the global batch, on every process
        optimizer.step()
"""
from .batchnorm import SyncBatchNorm, convert_sync_batchnorm
from .comm import (Communicator, MissingMPI, StoppedElsewhere, init, is_main_process, report_and_abort,
                   together)
from .data_parallel import DistributedDataParallel
from .launch import launched_rank, launched_size, under_mpi
from .loader import ShardedLoader, check_shares, shard

__all__ = ["Communicator", "DistributedDataParallel", "MissingMPI", "ShardedLoader", "SyncBatchNorm",
           "check_shares", "convert_sync_batchnorm", "init", "is_main_process", "launched_rank", "launched_size", "report_and_abort", "shard",
           "StoppedElsewhere", "together", "under_mpi"]
