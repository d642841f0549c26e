"""Gradients reduced while the backward runs, under a real mpirun: 1, 2 and 3 ranks reducing every layer's
gradients in a bucket of its own follow the single-process float64 trajectory to 1e-12 (per-rank and
synchronised batch norm, whose own Allreduces interleave with the buckets'), as do gradient accumulation
and an epoch whose last batch of 2 samples leaves one of 3 ranks without any; and the first buckets' Allreduces
start before the backward has reached the first layer."""
from __future__ import annotations

import json

import numpy as np
import pytest

from juanji import nn
from juanji.distributed import DistributedDataParallel

from equivalence import CASES, build, make_optimizer, state
from mpi_run import mpirun, needs_mpi
from overlap import TRAJECTORIES, loader_of
from test_equivalence import assert_every_rank_saved, one_process


def plain(case: str, batch: int) -> dict:
    """One process, no wrapper, batches of ``batch``: the trajectory accumulation must reproduce."""
    return one_process(case, 1, loader_of(case, batch))


def expected(name: str, ranks: int) -> dict:
    case, batch, accumulate = TRAJECTORIES[name]
    if name.startswith("overlap-"):
        return one_process(case, ranks)
    return plain(case, batch * accumulate)


@needs_mpi
@pytest.mark.parametrize("ranks", [1, 2, 3])
def test_overlapped_accumulated_and_uneven_steps_follow_one_process(ranks, tmp_path):
    run = mpirun(ranks, "tests/distributed/overlap.py", str(tmp_path), timeout=120)
    assert run.returncode == 0, run.stderr
    for name in TRAJECTORIES:
        assert_every_rank_saved(tmp_path, name, ranks, expected(name, ranks))
    for rank in range(ranks if ranks > 1 else 0):
        started = json.loads((tmp_path / f"started-rank{rank}.json").read_text())
        # LeNet-5 has 5 layers with parameters, one bucket each; all but the first layer's had started their
        # Allreduce when the backward reached the first layer, which then started the last
        assert started == {"started": 4, "buckets": 5, "all": 5}, started


def test_the_references_differ():
    """The cases test what they say: accumulation's reference is not the micro-batches' own trajectory, and
    every case's weights moved."""
    micro = plain("lenet5", TRAJECTORIES["accumulate"][1])
    whole = expected("accumulate", 1)
    assert max(np.abs(micro[k] - whole[k]).max() for k in whole) > 1e-3
    start = state(build("lenet5"), make_optimizer(build("lenet5")))
    assert min(np.abs(whole[k] - start[k]).max() for k in start if k.startswith("model/")) > 1e-4
    assert set(TRAJECTORIES) >= {f"overlap-{case}" for case in CASES}


def test_a_module_without_parameters_is_refused():
    with pytest.raises(ValueError, match="DistributedDataParallel: ReLU has no parameters whose gradients could "
                                         "be summed"):
        DistributedDataParallel(nn.ReLU(), None)
