"""``juanji train`` under a real mpirun on Fashion-MNIST: the accuracy of one process, a complete run
directory that eval/predict/show read, resume after a SIGKILL on another number of ranks, clean failures."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from juanji import checkpoint as ckpt
from juanji.runs import Run

from mpi_run import ROOT, environment, juanji_command, mpirun, needs_mpi, rank_pid

pytestmark = [needs_mpi, pytest.mark.slow]

IMAGE = os.path.join(ROOT, "docs", "images", "ankle-boot.png")


def metrics_of(run_dir) -> list[dict]:
    return Run(run_dir).metrics()


def train_args(out, epochs, limit):
    return ["train", "--epochs", str(epochs), "--limit", str(limit), "--batch-size", "64", "--seed", "1",
            "--out", str(out), "--no-progress"]


def juanji(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "juanji.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=environment(), cwd=ROOT)


def test_two_ranks_reach_the_accuracy_of_one_process_and_write_a_complete_run(tmp_path):
    alone = juanji(*train_args(tmp_path / "one", 2, 3000))
    assert alone.returncode == 0, alone.stderr
    run = mpirun(2, "-m", "juanji.cli", *train_args(tmp_path / "two", 2, 3000), timeout=180)
    assert run.returncode == 0, run.stderr
    assert run.stdout.count("final test accuracy") == 1 and "in 2 processes" in run.stdout   # rank 0 only
    one, two = metrics_of(tmp_path / "one"), metrics_of(tmp_path / "two")
    assert [m["epoch"] for m in two] == [1, 2]
    assert abs(one[-1]["test_accuracy"] - two[-1]["test_accuracy"]) <= 0.005, (one[-1], two[-1])
    assert abs(one[-1]["train_loss"] - two[-1]["train_loss"]) <= 1e-3
    assert sorted(os.listdir(tmp_path / "two")) == ["best.npz", "checkpoints", "config.json", "curves.png",
                                                    "metrics.jsonl"]
    assert sorted(os.listdir(tmp_path / "two" / "checkpoints")) == ["epoch-001.npz", "epoch-002.npz"]
    evaluated = juanji("eval", str(tmp_path / "two"))                  # best.npz: the best epoch's model
    best = max(m["test_accuracy"] for m in two)
    assert evaluated.returncode == 0 and f"test accuracy {best:.4f}" in evaluated.stdout, \
        evaluated.stdout + evaluated.stderr
    predicted = juanji("predict", str(tmp_path / "two"), IMAGE)
    assert predicted.returncode == 0 and predicted.stdout.startswith(IMAGE + ": "), predicted.stderr
    shown = juanji("show", "curves", str(tmp_path / "two"), "--out", str(tmp_path / "curves.png"))
    assert shown.returncode == 0 and (tmp_path / "curves.png").exists(), shown.stderr


def test_a_killed_rank_ends_the_job_and_the_run_resumes_on_one_or_two_ranks(tmp_path):
    out = tmp_path / "run"
    marker = f"JUANJI_TEST_RUN={tmp_path}"
    job = subprocess.Popen(juanji_command(2, *train_args(out, 4, 4000)), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, cwd=ROOT,
                           env=environment(JUANJI_TEST_RUN=str(tmp_path)))
    try:
        deadline = time.monotonic() + 120
        while not (out / "checkpoints" / "epoch-001.npz").exists():
            assert job.poll() is None and time.monotonic() < deadline, "no first checkpoint"
            time.sleep(0.05)
        pid = rank_pid(marker, 1)                           # in epoch 2 (or still writing epoch 1's files)
        assert pid is not None, "rank 1's process not found"
        os.kill(pid, signal.SIGKILL)
        killed = time.monotonic()
        _, stderr = job.communicate(timeout=60)             # no hang: Open MPI ends the others
    finally:
        if job.poll() is None:
            job.kill()
    assert job.returncode != 0 and time.monotonic() - killed < 30
    assert "rank 1" in stderr and "signal 9" in stderr, stderr
    assert not (out / "checkpoints" / "epoch-004.npz").exists()
    ckpt.load(out / "checkpoints" / "epoch-001.npz")        # intact
    shutil.copytree(out, tmp_path / "two")
    alone = juanji("train", "--resume", "--out", str(out), "--no-progress", timeout=180)
    assert alone.returncode == 0, alone.stderr
    together = mpirun(2, "-m", "juanji.cli", "train", "--resume", "--out", str(tmp_path / "two"), "--no-progress",
                      timeout=180)
    assert together.returncode == 0, together.stderr
    assert [m["epoch"] for m in metrics_of(tmp_path / "two")] == [1, 2, 3, 4]
    # the same trajectory up to float32 summation order, which LeNet-5 at lr 0.05 amplifies (one process on
    # 1 and on 2 threads ends apart as much): compare where they arrive
    one, two = metrics_of(out)[-1], metrics_of(tmp_path / "two")[-1]
    assert abs(one["test_accuracy"] - two["test_accuracy"]) <= 0.01, (one, two)


def test_a_rank_that_raises_ends_the_job_with_one_line_naming_it():
    # rank 1 fails after the first step; rank 0 is waiting in the next step's Allreduce
    script = ("import sys; sys.path.insert(0, 'tests/distributed'); import numpy as np; "
              "from juanji import distributed; comm = distributed.init(); x = np.ones(3); comm.allreduce_(x); "
              "comm.rank == 1 and sys.exit(distributed.report_and_abort('disk full', 2)); comm.allreduce_(x)")
    started = time.monotonic()
    run = mpirun(2, "-c", script, timeout=60)
    assert run.returncode != 0 and time.monotonic() - started < 60
    assert [line for line in run.stderr.splitlines() if line.startswith("juanji:")] == \
        ["juanji: error: rank 1 of 2: disk full"], run.stderr


def test_an_uncaught_exception_ends_the_job_too():
    script = ("import numpy as np; from juanji import distributed; comm = distributed.init(); x = np.ones(3); "
              "comm.allreduce_(x)\nif comm.rank == 1: raise ZeroDivisionError('a bug')\ncomm.allreduce_(x)")
    run = mpirun(2, "-c", script, timeout=60)
    assert run.returncode != 0
    assert "ZeroDivisionError: a bug" in run.stderr
    assert "juanji: error: rank 1 of 2: uncaught ZeroDivisionError (traceback above)" in run.stderr


def test_too_few_images_per_batch_for_the_ranks_is_a_clean_error(tmp_path):
    run = mpirun(3, "-m", "juanji.cli", "train", "--limit", "100", "--batch-size", "2", "--out",
                 str(tmp_path / "run"), timeout=60)
    assert run.returncode == 2, run.stderr
    ours = [line for line in run.stderr.splitlines() if line.startswith("juanji:")]
    assert len(ours) == 1 and ours[0].startswith("juanji: error: 3 processes need at least 3 images in every "
                                                 "batch"), run.stderr      # every rank failed alike: one line
    assert not (tmp_path / "run").exists()


def test_a_set_up_error_on_one_rank_stops_every_rank_without_abort():
    script = ("import sys; from juanji import distributed; comm = distributed.init()\n"
              "def step():\n    if comm.rank == 1: raise ValueError('no such file')\n"
              "try: distributed.together(comm, step)\n"
              "except distributed.StoppedElsewhere: sys.exit(2)\n"
              "except ValueError as error: sys.exit(distributed.report_and_abort(str(error)))")
    run = mpirun(2, "-c", script, timeout=60)
    assert run.returncode == 2 and "MPI_ABORT" not in run.stderr, run.stderr
    assert [line for line in run.stderr.splitlines() if line.startswith("juanji:")] == \
        ["juanji: error: rank 1 of 2: no such file"], run.stderr


def test_sync_bn_trains_as_one_process_and_per_rank_bn_does_not(small_fashion, tmp_path):
    # a small learning rate: at 0.05 ResNet-20's first steps amplify float32 rounding so much that one
    # process on 1 and on 2 threads ends 1.0 apart; at 0.002 they stay 5e-4 apart
    args = ["train", "--model", "resnet20", "--data", str(small_fashion), "--epochs", "1", "--batch-size", "50",
            "--lr", "0.002", "--threads", "1", "--no-progress"]
    alone = juanji(*args, "--out", str(tmp_path / "one"), timeout=180)
    assert alone.returncode == 0, alone.stderr
    for name, extra in (("sync", ["--sync-bn"]), ("per-rank", [])):
        run = mpirun(2, "-m", "juanji.cli", *args, *extra, "--out", str(tmp_path / name), timeout=180)
        assert run.returncode == 0, run.stderr
    weights = {name: ckpt.load(tmp_path / name / "checkpoints" / "epoch-001.npz").model_state
               for name in ("one", "sync", "per-rank")}
    trained = [key for key in weights["one"] if "running" not in key]      # the parameters
    gap = {name: max(np.abs(weights[name][k] - weights["one"][k]).max() for k in trained)
           for name in ("sync", "per-rank")}
    assert gap["sync"] < 1e-3 and gap["per-rank"] > 4 * gap["sync"], gap


def test_each_rank_draws_dropout_masks_of_its_own(small_fashion, tmp_path):
    """Every rank starts from the same seed; were the streams not split, the ranks' shares would get the
    same dropout masks, position for position."""
    script = (f"from juanji import distributed, random as jrandom; from juanji.train import Trainer, TrainConfig\n"
              f"comm = distributed.init()\n"
              f"config = TrainConfig(model='vgg_small', data={str(small_fashion)!r}, epochs=1, batch_size=100, "
              f"out={str(tmp_path / 'run')!r})\n"
              f"trainer = Trainer(config, progress=False, comm=comm)\n"
              f"trainer.fit()\n"
              f"import pathlib\n"       # a file per rank: two ranks printing at once may interleave within a line
              f"pathlib.Path({str(tmp_path)!r}, f'rank{{comm.rank}}').write_text("
              f"str(jrandom.get_state()['state']['state']))")
    run = mpirun(2, "-c", script, timeout=180)
    assert run.returncode == 0, run.stderr
    states = [(tmp_path / f"rank{rank}").read_text() for rank in (0, 1)]
    assert all(states) and states[0] != states[1]
