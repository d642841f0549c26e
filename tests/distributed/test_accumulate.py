"""Gradient accumulation (``juanji train --accumulate N``, ``DistributedDataParallel.no_sync``): N micro-batches
of B samples take the optimizer step of one batch of N·B, in one process (float64, to 1e-12; then the command,
float32) and over 3 ranks whose last batch of 2 samples leaves rank 0 without any; the new options refused
with one line when out of range."""
from __future__ import annotations

import json

import numpy as np
import pytest

from juanji import checkpoint as ckpt
from juanji.cli import main
from juanji.distributed import DistributedDataParallel

from equivalence import build, make_optimizer, state
from mpi_run import mpirun, needs_mpi
from overlap import loader_of, train
from test_overlap import plain


@pytest.mark.parametrize("micro, accumulate", [(4, 3), (6, 2)])
def test_micro_batches_step_as_one_batch_in_one_process(micro, accumulate):
    """26 samples: micro-batches of 4 (steps on 12, 12, 2 samples) or 6 (12, 12, 2 as well)."""
    model = build("lenet5")
    optimizer = make_optimizer(model)
    train(DistributedDataParallel(model, None), optimizer, loader_of("lenet5", micro), accumulate)
    reference = plain("lenet5", micro * accumulate)
    for key, value in state(model, optimizer).items():
        np.testing.assert_allclose(value, reference[key], rtol=0, atol=1e-12, err_msg=key)


def final_state(run_dir) -> dict:
    state = ckpt.load(run_dir / "checkpoints" / "epoch-001.npz")
    return {**state.model_state, **{f"optim/{k}": v for k, v in state.optimizer_arrays.items()}}


def train_args(data, out, *options) -> list[str]:
    """One epoch of LeNet-5 on 42 images: batches of 40 and 2, or micro-batches of 20, 20 and 2."""
    return ["train", "--data", str(data), "--limit", "42", "--epochs", "1", "--out", str(out), "--no-progress",
            "--seed", "2", *options]


@pytest.fixture(scope="module")
def one_batch_of_40(small_fashion, tmp_path_factory):
    out = tmp_path_factory.mktemp("accumulate") / "whole"
    assert main(train_args(small_fashion, out, "--batch-size", "40")) == 0
    return final_state(out)


def test_the_command_accumulates_in_one_process(small_fashion, one_batch_of_40, tmp_path):
    assert main(train_args(small_fashion, tmp_path / "run", "--batch-size", "20", "--accumulate", "2")) == 0
    assert json.loads((tmp_path / "run" / "config.json").read_text())["accumulate"] == 2
    got = final_state(tmp_path / "run")
    assert got.keys() == one_batch_of_40.keys()
    for key, value in one_batch_of_40.items():          # float32, summed in another order
        np.testing.assert_allclose(got[key], value, rtol=0, atol=2e-6, err_msg=key)


@needs_mpi
@pytest.mark.slow
def test_three_ranks_accumulate_and_join_with_an_empty_share(small_fashion, one_batch_of_40, tmp_path):
    run = mpirun(3, "-m", "juanji.cli", *train_args(small_fashion, tmp_path / "run", "--batch-size", "20",
                                                   "--accumulate", "2", "--bucket-mb", "0.01"), timeout=120)
    assert run.returncode == 0, run.stderr
    got = final_state(tmp_path / "run")
    for key, value in one_batch_of_40.items():
        np.testing.assert_allclose(got[key], value, rtol=0, atol=2e-6, err_msg=key)


@pytest.mark.parametrize("option, value, message", [
    ("--accumulate", "0", "--accumulate must lie in [1, ∞], got 0"),
    ("--bucket-mb", "0", "--bucket-mb must be a number of MiB above 0 and at most 1024, got 0.0"),
    ("--bucket-mb", "nan", "--bucket-mb must be a number of MiB above 0 and at most 1024, got nan"),
    ("--bucket-mb", "2000", "--bucket-mb must be a number of MiB above 0 and at most 1024, got 2000.0")])
def test_out_of_range_options_are_refused_in_one_line(option, value, message, small_fashion, tmp_path, capsys):
    assert main(train_args(small_fashion, tmp_path / "run", option, value)) == 2
    assert capsys.readouterr().err == f"juanji: error: {message}\n"
    assert not (tmp_path / "run" / "checkpoints").exists()
