"""The data-parallel benchmark runs end to end (tiny sizes: the timings themselves are not checked)."""
from __future__ import annotations

import pytest

from juanji.bench import distributed as bench

from mpi_run import environment, needs_mpi


def on_two_ranks(monkeypatch, framework: str, limit: int) -> dict:
    """The benchmark's ``framework`` row ("juanji", "pytorch", "loader") of 2 processes × 1 thread, one step on
    ``limit`` images, its own mpirun started in the environment the tests' mpirun gets."""
    for name, value in environment().items():
        monkeypatch.setenv(name, value)
    return bench._spawn(framework, 2, 1, limit=limit, steps=1)


@needs_mpi
@pytest.mark.slow
def test_two_ranks_report_the_time_in_allreduce(monkeypatch):
    result = on_two_ranks(monkeypatch, "juanji", 256)
    assert result["lenet5 images"] == 256 and result["lenet5 epoch s"] > 0
    assert 0 < result["lenet5 allreduce ms/step"] < 1e3 * result["lenet5 epoch s"] / 4
    assert 0 < result["resnet20 allreduce ms/step"] < result["resnet20 step ms"]
    assert 0 < result["allreduce 61,706 float32 µs"] < 1e5
    table = bench.format_table({("juanji", 2, 1): result})
    assert "| juanji DDP MPI, 2 processes × 1 thread |" in table


@needs_mpi
@pytest.mark.slow
def test_pytorch_ddp_over_gloo_runs_on_the_same_global_batches(monkeypatch):
    result = on_two_ranks(monkeypatch, "pytorch", 256)
    assert result["lenet5 images"] == 256 and result["resnet20 step ms"] > 0
    assert "lenet5 allreduce ms/step" not in result     # not measured inside PyTorch


def test_the_loader_row_in_one_process():
    result = bench.time_loader(None, limit=300, steps=2)        # 128-image batches: the epochs roll over
    assert result["ranks"] == 1 and result["images per rank"] == 128
    assert 0 < result["share ms/step"] < 1e4 and 0 < result["global batch ms/step"] < 1e4
    assert "| 1 | " in bench.format_loader_table({1: result})


@needs_mpi
@pytest.mark.slow
def test_the_loader_row_takes_the_slowest_of_the_ranks(monkeypatch):
    result = on_two_ranks(monkeypatch, "loader", 600)
    assert result["ranks"] == 2 and result["images per rank"] == 128
    assert 0 < result["share ms/step"] and 0 < result["global batch ms/step"]
    table = bench.format_loader_table({2: result})
    assert table.splitlines()[0].startswith("| ranks | loader ms per step") and "| 2 | " in table

