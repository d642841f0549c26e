"""A data-parallel job ends, with a line saying why, whatever befalls one of its processes: stopped (a
collective waits --timeout at most, then names the missing rank), signalled (SIGINT/SIGTERM), failing on
its own (its rank prints the error), or started by a launcher whose variables MPI does not confirm."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pytest

from juanji.cli import main
from juanji.distributed import check_launch

from mpi_run import (ROOT, environment, error_lines, juanji_command, kill_leftovers, mpirun, mpirun_each, needs_mpi,
                     rank_pid)


def long_training(data, out, *options) -> list[str]:
    """A run that lasts far longer than any of these tests waits for it."""
    return ["train", "--data", str(data), "--epochs", "500", "--batch-size", "50", "--out", str(out),
            "--no-progress", *options]


def started(job: subprocess.Popen) -> None:
    """Return once rank 0 has said it is training (the ranks are past set-up, in their steps)."""
    line = job.stdout.readline()
    assert line.startswith("training "), line + job.stderr.read()
    time.sleep(0.5)


def ended(job: subprocess.Popen, within: float) -> str:
    """The job's stderr, once it has ended by itself within ``within`` seconds."""
    _, stderr = job.communicate(timeout=within)
    return stderr


@pytest.fixture
def marker(tmp_path):
    """NAME=VALUE in the environment of this test's MPI processes; whatever is left of them at the end
    (after a failure: a stopped rank outlives mpirun) is killed."""
    yield f"JUANJI_TEST_RUN={tmp_path}"
    kill_leftovers(f"JUANJI_TEST_RUN={tmp_path}")


def start(marker: str, ranks: int, *args) -> subprocess.Popen:
    name, value = marker.split("=", 1)
    return subprocess.Popen(juanji_command(ranks, *args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=ROOT, env=environment(**{name: value}))


@needs_mpi
@pytest.mark.slow
def test_a_stopped_rank_ends_the_job_within_the_timeout_naming_it(small_fashion, tmp_path, marker):
    job = start(marker, 2, *long_training(small_fashion, tmp_path / "run", "--timeout", "5"))
    try:
        started(job)
        stopped = rank_pid(marker, 1)
        assert stopped is not None, "rank 1's process not found"
        os.kill(stopped, signal.SIGSTOP)
        at = time.monotonic()
        stderr = ended(job, within=30)
    finally:
        if job.poll() is None:
            job.kill()
    assert time.monotonic() - at < 20, stderr
    assert job.returncode == 2
    [line] = error_lines(stderr)        # rank 1, ended by Open MPI after rank 0's MPI_Abort, leaves quietly
    assert re.fullmatch(r"juanji: error: rank 0 of 2: rank 1 did not reach collective #\d+ \(allreduce\) within "
                        r"5 s \(--timeout\): stopped, hung, or slower than that; the job ends", line), stderr
    assert rank_pid(marker, 0) is None and rank_pid(marker, 1) is None          # no orphan left


@needs_mpi
@pytest.mark.slow
@pytest.mark.parametrize("stopped", [0, 1])
def test_the_lowest_rank_that_arrived_alone_reports_the_one_that_did_not(stopped, marker):
    # three ranks: the two that wait both time out; one line, from the lowest of them
    script = ("import os, signal, numpy as np; from juanji import distributed\n"
              "comm = distributed.init(timeout=2); x = np.ones(3); comm.allreduce_(x)\n"
              f"if comm.rank == {stopped}: os.kill(os.getpid(), signal.SIGSTOP)\n"
              "comm.allreduce_(x)")
    at = time.monotonic()
    name, value = marker.split("=", 1)
    run = mpirun(3, "-c", script, timeout=60, env=environment(**{name: value}))
    reporter = 1 if stopped == 0 else 0
    assert run.returncode == 1 and time.monotonic() - at < 30, run.stderr       # uncaught: MPI_Abort(1)
    assert re.search(f"CollectiveTimeout: rank {stopped} did not reach collective #\\d+ \\(allreduce\\) within 2 s",
                     run.stderr), run.stderr
    assert error_lines(run.stderr) == [f"juanji: error: rank {reporter} of 3: uncaught CollectiveTimeout "
                                       f"(traceback above)"], run.stderr


@needs_mpi
@pytest.mark.slow
def test_a_signal_to_one_rank_stops_every_rank_at_the_same_step(small_fashion, tmp_path, marker):
    """SIGINT to rank 1 alone: at the next step boundary every rank stops with it, rank 0 writes the checkpoint
    and says so, all leave with status 130 (SIGTERM to mpirun, and the resume: test_interrupt_mpi.py)."""
    job = start(marker, 2, *long_training(small_fashion, tmp_path / "run"))
    try:
        started(job)
        pid = rank_pid(marker, 1)
        assert pid is not None, "rank 1's process not found"
        os.kill(pid, signal.SIGINT)
        at = time.monotonic()
        stderr = ended(job, within=30)
    finally:
        if job.poll() is None:
            job.kill()
    assert job.returncode != 0 and time.monotonic() - at < 15, stderr
    [line] = error_lines(stderr)
    assert re.fullmatch(r"juanji: stopped by SIGINT (at epoch \d+, step \d+ of 8|after epoch \d+ of 500); checkpoint "
                        r"written to \S+; continue with: juanji train --resume --out \S+", line), stderr
    assert re.search(r"Exit code:\s+130\n", stderr), stderr                  # Open MPI names the first to leave
    assert rank_pid(marker, 0) is None and rank_pid(marker, 1) is None          # no orphan left


@needs_mpi
@pytest.mark.slow
def test_a_failure_of_one_rank_in_set_up_is_printed_by_that_rank(small_fashion, tmp_path):
    """Before any collective (here an option out of range on rank 1 only): that rank prints its error with
    its rank, the others stop without a word and without MPI_Abort."""
    out = tmp_path / "run"
    args = ["-m", "juanji.cli", "train", "--data", str(small_fashion), "--limit", "128", "--out", str(out)]
    run = mpirun_each(args, [*args, "--lr", "-1"], timeout=90)
    assert run.returncode == 2, run.stderr
    assert error_lines(run.stderr) == ["juanji: error: rank 1 of 2: --lr must lie in [0, ∞], got -1.0"], run.stderr
    assert "MPI_ABORT" not in run.stderr and not out.exists()


@needs_mpi
@pytest.mark.parametrize("variables, name, said", [
    ({"OMPI_COMM_WORLD_SIZE": "2", "OMPI_COMM_WORLD_RANK": "1"}, "OMPI_COMM_WORLD_SIZE", 2),   # set by hand
    ({"SLURM_STEP_NUM_TASKS": "4", "SLURM_PROCID": "0"}, "SLURM_STEP_NUM_TASKS", 4),          # srun without PMI
])
def test_launcher_variables_that_mpi_does_not_confirm_are_refused(tmp_path, variables, name, said):
    run = subprocess.run([sys.executable, "-m", "juanji.cli", "train", "--limit", "64", "--out",
                          str(tmp_path / "run")], capture_output=True, text=True, timeout=60, cwd=ROOT,
                         env=environment(**variables))
    assert run.returncode == 2, run.stderr
    [line] = error_lines(run.stderr)
    assert line.startswith(f"juanji: error: the launcher variable {name} says {said} processes, but MPI's "
                           f"COMM_WORLD has 1: each process started alone"), line
    assert not (tmp_path / "run").exists()


@needs_mpi
def test_launcher_variables_that_disagree_with_mpirun_are_refused_once():
    script = ("import os, sys; from juanji import distributed; os.environ['OMPI_COMM_WORLD_SIZE'] = '3'\n"
              "try: distributed.init()\n"
              "except ValueError as error: sys.exit(distributed.report_and_abort(str(error)))")
    run = mpirun(2, "-c", script, timeout=60)
    assert run.returncode == 2, run.stderr
    assert error_lines(run.stderr) == ["juanji: error: the launcher variable OMPI_COMM_WORLD_SIZE says 3 processes, "
                                       "but MPI's COMM_WORLD has 2: the launcher and the MPI library disagree (were "
                                       "these variables set by hand?)"], run.stderr


def test_a_rank_the_launcher_and_mpi_disagree_on_is_refused(monkeypatch):
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "2")
    monkeypatch.setenv("OMPI_COMM_WORLD_RANK", "1")
    check_launch(1, 2)
    with pytest.raises(ValueError, match="the launcher variable OMPI_COMM_WORLD_RANK says this is rank 1, but "
                                         "MPI's COMM_WORLD rank is 0: the launcher and the MPI library disagree"):
        check_launch(0, 2)


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf"])
def test_the_timeout_must_be_finite_and_positive(value, tmp_path, capsys):
    assert main(["train", "--timeout", value, "--out", str(tmp_path / "run")]) == 2
    assert capsys.readouterr().err == f"juanji: error: --timeout must be a finite number of seconds above 0, " \
                                      f"got {float(value)}\n"
    assert not (tmp_path / "run").exists()
