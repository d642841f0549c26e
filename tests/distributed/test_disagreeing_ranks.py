"""Processes of one ``juanji train`` job started with different options or data (mpirun's MPMD form) are
refused before the first step, in one line naming what differs and each rank's value — not trained to the
end on the averaged gradients of two different things, nor left waiting forever in a collective."""
from __future__ import annotations

import pytest

from mpi_run import error_lines, mpirun, mpirun_each, needs_mpi

pytestmark = [needs_mpi, pytest.mark.slow]


def train(data, out, *options) -> list[str]:
    return ["-m", "juanji.cli", "train", "--data", str(data), "--epochs", "1", "--limit", "128",
            "--batch-size", "64", "--out", str(out), "--no-progress", *options]


def assert_refused(run, out, expected: str) -> None:
    assert run.returncode == 2, run.stderr
    assert error_lines(run.stderr) == [f"juanji: error: the processes were started differently: {expected}; every "
                                       f"process of a data-parallel job needs the same options and data"], run.stderr
    assert "epoch" not in run.stdout and not out.exists()          # refused before any step, nothing written


@pytest.mark.parametrize("first, second, expected", [
    (["--model", "lenet5"], ["--model", "lenet5_classic"],        # the same parameter shapes
     '--model differs: "lenet5" on rank 0; "lenet5_classic" on rank 1'),
    (["--epochs", "1"], ["--epochs", "2"], "--epochs differs: 1 on rank 0; 2 on rank 1"),
    (["--limit", "128"], ["--limit", "192"],
     "--limit differs: 128 on rank 0; 192 on rank 1 (also differing: training data)"),
    (["--batch-size", "64"], ["--batch-size", "32"], "--batch-size differs: 64 on rank 0; 32 on rank 1"),
    (["--sync-bn"], [], "--sync-bn differs: true on rank 0; false on rank 1"),
])
def test_ranks_started_with_different_options_are_refused_naming_the_option(small_fashion, tmp_path, first,
                                                                            second, expected):
    out = tmp_path / "run"
    run = mpirun_each(train(small_fashion, out, *first), train(small_fashion, out, *second), timeout=90)
    assert_refused(run, out, expected)


def test_each_value_is_listed_with_the_ranks_that_have_it(small_fashion, tmp_path):
    out = tmp_path / "run"
    run = mpirun_each(*(train(small_fashion, out, "--seed", seed) for seed in ("1", "2", "1")), timeout=90)
    assert_refused(run, out, "--seed differs: 1 on ranks 0, 2; 2 on rank 1")


def test_another_data_set_of_the_same_shape_is_refused(small_fashion, other_small_fashion, tmp_path):
    out = tmp_path / "run"
    run = mpirun_each(train(small_fashion, out), train(other_small_fashion, out), timeout=90)
    assert run.returncode == 2, run.stderr
    [line] = error_lines(run.stderr)
    assert line.startswith("juanji: error: the processes were started differently: training data differs: "
                           '"128 samples, digest '), line
    assert "(also differing: test data)" in line and not out.exists()


def test_the_same_data_under_another_path_is_the_same_data(small_fashion, tmp_path):
    """--data is compared by its contents: one machine may keep its copy elsewhere.  (The folder's name
    names the classes: a name with "fashion" Fashion-MNIST's, else the digits; the copy keeps them.)"""
    copy = tmp_path / "fashion-copy"
    copy.symlink_to(small_fashion, target_is_directory=True)
    script = ("import sys; from juanji import distributed; from juanji.train import Trainer, TrainConfig\n"
              "comm = distributed.init()\n"
              "config = TrainConfig(data=sys.argv[1 + comm.rank], epochs=1, limit=128, out=sys.argv[3])\n"
              "Trainer(config, progress=False, comm=comm).connect()")
    run = mpirun(2, "-c", script, str(small_fashion), str(copy), str(tmp_path / "run"), timeout=90)
    assert run.returncode == 0, run.stderr         # a refusal would be an uncaught ValueError: MPI_Abort
