"""N processes under a real mpirun follow the trajectory of one process on the same global batches, augmented
(crop and flip) by each rank for its own share: float64 weights, batch-norm buffers and optimizer state agree
to 1e-12 after a few steps."""
from __future__ import annotations

import numpy as np
import pytest

from juanji import nn
from juanji.distributed import shard
from juanji.nn.normalization import _BatchNorm

from equivalence import CASES, EPOCHS, build, data_loader, make_optimizer, state, train
from mpi_run import mpirun, needs_mpi


def one_process(case: str, ranks: int, loader=None) -> dict:
    """The single-process equivalent, on ``loader``'s batches (by default ``data_loader(case)``'s).  Global
    batch norm (LeNet-5 has none, and sync BN): plain training on the global batches.  Per-rank batch norm: each
    rank's share of a batch goes through the model on its own, the gradients are combined as Σ n_r g_r / N, and
    the running statistics are rank 0's."""
    model = build(case)
    optimizer = make_optimizer(model)
    loader = data_loader(case) if loader is None else loader
    if case != "resnet-per-rank-bn":
        train(model, optimizer, loader)
        return state(model, optimizer)
    loss_fn = nn.CrossEntropyLoss()
    buffers = [b for m in model.modules() if isinstance(m, _BatchNorm) for b in m.buffers.values()]
    for epoch in range(EPOCHS):
        loader.set_epoch(epoch)
        for x, y in loader:
            total = [np.zeros_like(g) for _, _, g in model.parameters()]
            for rank in range(ranks):
                part = shard(len(y), rank, ranks)
                kept = [b.copy() for b in buffers]
                loss_fn(model(x[part]), y[part])
                model.backward(loss_fn.backward())
                for t, (_, _, g) in zip(total, model.parameters()):
                    t += (part.stop - part.start) * g
                if rank > 0:        # the other ranks' running statistics are not rank 0's
                    for b, k in zip(buffers, kept):
                        b[...] = k
            for t, (_, _, g) in zip(total, model.parameters()):
                g[...] = t / len(y)
            optimizer.step()
    return state(model, optimizer)


def assert_every_rank_saved(out, name: str, ranks: int, expected: dict) -> None:
    """Each rank's ``OUT/NAME-rankK.npz`` (``train_on_this_rank``'s) holds ``expected``'s arrays to 1e-12."""
    for rank in range(ranks):
        with np.load(out / f"{name}-rank{rank}.npz") as got:
            assert sorted(got.files) == sorted(expected), name
            for key, value in expected.items():
                np.testing.assert_allclose(got[key], value, rtol=0, atol=1e-12,
                                           err_msg=f"{name}, rank {rank} of {ranks}: {key}")


def test_the_equivalence_data_is_augmented_in_float64():
    """The trajectories below are compared on augmented batches (else shares augmented apart could not show)."""
    loader = data_loader("resnet-sync-bn")
    loader.set_epoch(1)
    x, y = next(iter(loader))
    plain = loader.dataset[np.random.default_rng([3, 1]).permutation(len(loader.dataset))[:len(y)]][0]
    assert x.dtype == np.float64 and x.shape == plain.shape
    assert not np.array_equal(x, plain)
    assert np.mean([np.array_equal(a, b) for a, b in zip(x, plain)]) < 0.5


@needs_mpi
@pytest.mark.parametrize("ranks", [1, 2, 3])
def test_ranks_follow_the_single_process_trajectory(ranks, tmp_path):
    run = mpirun(ranks, "tests/distributed/equivalence.py", str(tmp_path), timeout=120)
    assert run.returncode == 0, run.stderr
    for case in CASES:
        assert_every_rank_saved(tmp_path, case, ranks, one_process(case, ranks))


def test_per_rank_batch_norm_differs_from_global():
    """The per-rank reference is not the global one (else the test above could not tell them apart)."""
    per_rank, merged = one_process("resnet-per-rank-bn", 2), one_process("resnet-sync-bn", 2)
    assert max(np.abs(per_rank[k] - merged[k]).max() for k in merged) > 1e-6
