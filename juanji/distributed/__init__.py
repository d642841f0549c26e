"""Data-parallel training over MPI (mpi4py): one process per share of every global batch.

Started plainly, ``init()`` returns None and nothing here imports mpi4py.  Under ``mpirun -n N`` / ``srun``::

    comm = distributed.init(timeout=300)                      # Communicator, or None; collectives wait ≤ 300 s
    distributed.check_agreement(comm, {"--seed": seed, **distributed.data_identity(training=dataset)})
    model = distributed.DistributedDataParallel(model, comm)  # process 0's weights everywhere
    loader = distributed.ShardedLoader(loader, comm.rank, comm.size)
    for x, y in loader:                                       # this process's share of the global batch
        loss = loss_fn(model(x), y)
        model.backward(loss_fn.backward())                    # gradients of the global batch, on every process
        optimizer.step()
"""
from .agreement import check_agreement, data_identity
from .batchnorm import SyncBatchNorm, convert_sync_batchnorm
from .comm import (DEFAULT_TIMEOUT, CollectiveTimeout, Communicator, MissingMPI, Signalled, StoppedElsewhere,
                   check_timeout, init, is_main_process, report_and_abort, together)
from .data_parallel import BUCKET_MB, DistributedDataParallel, check_bucket_mb
from .launch import check_launch, launched_rank, launched_size, under_mpi
from .loader import ShardedLoader, check_shares, shard

__all__ = ["BUCKET_MB", "DEFAULT_TIMEOUT", "CollectiveTimeout", "Communicator", "DistributedDataParallel",
           "MissingMPI", "ShardedLoader", "Signalled", "StoppedElsewhere", "SyncBatchNorm", "check_agreement",
           "check_bucket_mb", "check_launch", "check_shares", "check_timeout", "convert_sync_batchnorm",
           "data_identity", "init", "is_main_process", "launched_rank", "launched_size", "report_and_abort", "shard",
           "together", "under_mpi"]
