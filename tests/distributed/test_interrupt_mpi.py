"""SIGTERM to mpirun stops a data-parallel ``juanji train`` at one step boundary on every rank, rank 0 writing the
mid-epoch checkpoint and saying so; resumed on 2 ranks the run reaches an uninterrupted run's weights and epoch lines
bit for bit, on 1 rank within float32 rounding (the gradients are summed in another order).

Open MPI's mpirun passes SIGTERM on ``odls_base_sigkill_timeout`` seconds after it got it (SIGCONT first) and ends
the ranks with SIGKILL as long after that: the default of 1 s is all a rank has to reach a step and write; here 2.
Where the signal lands is not known beforehand: almost surely within an epoch (epochs of 2,048 images, 16 tested),
else at an epoch's end, whose stop and resume are compared alike."""
from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from juanji import checkpoint as ckpt
from juanji.data import write_idx
from juanji.runs import Run

from idx_data import idx_folder
from mpi_run import ROOT, environment, error_lines, juanji_command, kill_leftovers, mpirun, needs_mpi

pytestmark = [needs_mpi, pytest.mark.slow]

STEPS = 128                     # 2,048 images in global batches of 16
TIMING = ("train_seconds", "images_per_second")


def train_args(data, out, epochs) -> list[str]:
    """No schedule: the run's length changes no step, so one started for 1000 epochs compares with a shorter one."""
    return ["train", "--data", str(data), "--batch-size", "16", "--lr", "0.01", "--schedule", "none", "--augment",
            "crop,flip", "--seed", "5", "--epochs", str(epochs), "--out", str(out), "--no-progress"]


def final_state(out, epoch) -> dict:
    state = ckpt.load(Run(out).checkpoint_path(epoch))
    return {**state.model_state, **{f"optim/{k}": v for k, v in state.optimizer_arrays.items()}}


def epoch_lines(out) -> list[dict]:
    return [{k: v for k, v in metrics.items() if k not in TIMING} for metrics in Run(out).metrics()]


def test_sigterm_to_mpirun_checkpoints_mid_epoch_and_the_run_resumes_on_two_or_one_ranks(tmp_path):
    data, out = idx_folder(tmp_path / "data", count=2048), tmp_path / "run"
    write_idx(data / "t10k-images-idx3-ubyte", np.zeros((16, 28, 28), np.uint8))     # a short test at epoch ends
    write_idx(data / "t10k-labels-idx1-ubyte", np.arange(16, dtype=np.uint8) % 10)
    marker = f"JUANJI_TEST_RUN={tmp_path}"
    job = subprocess.Popen(juanji_command(2, *train_args(data, out, 1000)), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, cwd=ROOT,
                           env=environment(JUANJI_TEST_RUN=str(tmp_path), OMPI_MCA_odls_base_sigkill_timeout="2"))
    try:
        deadline = time.monotonic() + 120
        while not (out / "config.json").exists():           # written once the ranks watch for signals
            assert job.poll() is None and time.monotonic() < deadline, job.communicate()
            time.sleep(0.01)
        job.send_signal(signal.SIGTERM)
        _, stderr = job.communicate(timeout=60)
    finally:
        if job.poll() is None:
            job.kill()
        kill_leftovers(marker)
    [line] = error_lines(stderr)                                # rank 0's, and no error from any rank
    found = re.fullmatch(rf"juanji: stopped by SIGTERM (at|after) epoch (\d+)(?:, step (\d+) of {STEPS}| of 1000); "
                         rf"checkpoint written to (\S+); continue with: juanji train --resume --out "
                         rf"{re.escape(str(out))}", line)
    assert found and job.returncode != 0, stderr
    assert found[4] == Run(out).latest_checkpoint()
    epoch = int(found[2]) + (found[1] == "after")               # the last epoch of the runs compared
    if found[1] == "at":
        header = ckpt.read_meta(found[4])
        assert header["step"] == int(found[3]) and header["rng_ranks"][0] == header["rng"] != header["rng_ranks"][1]

    whole = mpirun(2, "-m", "juanji.cli", *train_args(data, tmp_path / "whole", epoch), timeout=300)
    assert whole.returncode == 0, whole.stderr
    expected, lines = final_state(tmp_path / "whole", epoch), epoch_lines(tmp_path / "whole")
    shutil.copytree(out, tmp_path / "one")
    resume = ["train", "--resume", "--epochs", str(epoch), "--no-progress", "--out"]
    two = mpirun(2, "-m", "juanji.cli", *resume, str(out), timeout=300)
    assert two.returncode == 0, two.stderr
    assert found[1] == "after" or f"epoch {epoch} goes on after step {found[3]} of {STEPS}" in two.stdout
    got = final_state(out, epoch)
    for key, value in expected.items():
        np.testing.assert_array_equal(got[key], value, err_msg=key)
    assert epoch_lines(out) == lines

    one = subprocess.run([sys.executable, "-m", "juanji.cli", *resume, str(tmp_path / "one")], capture_output=True,
                         text=True, timeout=300, cwd=ROOT, env=environment())
    assert one.returncode == 0, one.stderr
    got = final_state(tmp_path / "one", epoch)
    for key, value in expected.items():
        np.testing.assert_allclose(got[key], value, rtol=0, atol=1e-5, err_msg=key)
    for resumed, uninterrupted in zip(epoch_lines(tmp_path / "one"), lines, strict=True):
        assert resumed == pytest.approx(uninterrupted, rel=1e-5)
