"""A training stopped within an epoch goes on exactly: SIGTERM or SIGINT stop ``juanji train`` at the next step
boundary with a mid-epoch checkpoint, one line and the shell's status (143, 130); ``--checkpoint-every`` writes one
every few steps, which a SIGKILL cannot half-write; ``--resume`` from either reaches the weights and epoch lines of an
uninterrupted run bit for bit (VGG-small: its dropout draws from the saved generator; crop and flip augmentation).
(Data-parallel, SIGTERM to mpirun: tests/distributed/test_interrupt_mpi.py.)"""
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from juanji import checkpoint as ckpt
from juanji import models, optim
from juanji.cli import main
from juanji.io import write_atomically
from juanji.runs import Run
from juanji.schema import SchemaError, validate_header
from juanji.train import StopSignals
from idx_data import idx_folder
from mpi_run import ROOT

EPOCHS, STEPS = 2, 8            # 64 images in batches of 8
TIMING = ("train_seconds", "images_per_second")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return idx_folder(tmp_path_factory.mktemp("interrupt") / "data", count=64)


def command(data, out, *options) -> list[str]:
    """``juanji train`` of VGG-small (dropout) on ``data``; no schedule, so the run's length changes no step and a
    run started for 1000 epochs and resumed with ``--epochs 2`` is comparable to one of 2 epochs."""
    return [sys.executable, "-m", "juanji.cli", "train", "--data", str(data), "--model", "vgg_small", "--batch-size",
            "8", "--lr", "0.01", "--schedule", "none", "--augment", "crop,flip", "--seed", "3", "--no-progress",
            "--out", str(out), *options]


def resume(out):
    done = subprocess.run([sys.executable, "-m", "juanji.cli", "train", "--resume", "--out", str(out), "--epochs",
                           str(EPOCHS), "--no-progress"], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    return done.stdout


def final_state(out) -> dict:
    state = ckpt.load(Run(out).checkpoint_path(EPOCHS))
    return {**state.model_state, **{f"optim/{k}": v for k, v in state.optimizer_arrays.items()}}


def epoch_lines(out) -> list[dict]:
    return [{k: v for k, v in metrics.items() if k not in TIMING} for metrics in Run(out).metrics()]


@pytest.fixture(scope="module")
def uninterrupted(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("uninterrupted") / "run"
    subprocess.run(command(data, out, "--epochs", str(EPOCHS)), check=True, capture_output=True, timeout=300, cwd=ROOT)
    return final_state(out), epoch_lines(out)


def assert_same_run(out, uninterrupted):
    expected, lines = uninterrupted
    got = final_state(out)
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        np.testing.assert_array_equal(got[key], value, err_msg=key)
    assert epoch_lines(out) == lines


def started(data, out, *options) -> subprocess.Popen:
    """A run for 1000 epochs, once it trains: its config.json is written after the handlers are set."""
    process = subprocess.Popen(command(data, out, "--epochs", "1000", *options), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, cwd=ROOT)
    wait_for(out / "config.json", process)
    return process


def wait_for(path, process, seconds=120):
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert process.poll() is None, process.communicate()[1]
        assert time.monotonic() < deadline, f"no {path} after {seconds} s"
        time.sleep(0.005)


def stop(process, number) -> str:
    """Send signal ``number`` to the training ``process``; the one line it leaves with."""
    try:
        process.send_signal(number)
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    lines = [line for line in stderr.splitlines() if line.startswith("juanji:")]
    assert len(lines) == 1, stderr
    return lines[0]


def stopped_line(name, out) -> str:
    """The line of a stop within an epoch (its epoch and step: groups 1 and 2)."""
    return (rf"juanji: stopped by {name} at epoch (\d+), step (\d+) of {STEPS}; checkpoint written to "
            rf"{re.escape(Run(out).mid_epoch_checkpoint)}; continue with: juanji train --resume --out "
            rf"{re.escape(str(out))}")


def test_sigterm_stops_at_the_next_step_and_the_run_resumes_exactly(data, tmp_path, uninterrupted):
    out = tmp_path / "run"
    process = started(data, out)
    found = re.fullmatch(stopped_line("SIGTERM", out), stop(process, signal.SIGTERM))
    assert found and process.returncode == 143
    assert int(found[1]) <= EPOCHS, "stopped too late for the comparison"
    assert Run(out).latest_checkpoint() == Run(out).mid_epoch_checkpoint
    assert f"epoch {found[1]} goes on after step {found[2]} of {STEPS}" in resume(out)
    assert_same_run(out, uninterrupted)
    assert sorted(os.listdir(out / "checkpoints")) == ["epoch-001.npz", "epoch-002.npz"]     # the mid-epoch one went


def test_sigint_stops_alike_with_status_130(data, tmp_path):
    out = tmp_path / "run"
    process = started(data, out)
    assert re.fullmatch(stopped_line("SIGINT", out), stop(process, signal.SIGINT)) and process.returncode == 130
    assert ckpt.read_meta(Run(out).latest_checkpoint())["step"] >= 1


def test_a_run_killed_after_a_mid_epoch_checkpoint_resumes_from_it_exactly(data, tmp_path, uninterrupted):
    out = tmp_path / "run"
    process = started(data, out, "--checkpoint-every", "3")
    try:
        wait_for(out / "checkpoints" / "mid-epoch.npz", process)
    finally:
        process.kill()
        process.communicate(timeout=60)
    latest = Run(out).latest_checkpoint()       # the mid-epoch one, or an epoch's written since
    assert latest is not None and ckpt.read_meta(latest)["epoch"] < EPOCHS, "killed too late for the comparison"
    resume(out)
    assert_same_run(out, uninterrupted)


def test_a_second_signal_acts_at_once_and_the_file_being_written_stays_whole(tmp_path):
    """The first SIGINT is only noted; the second raises KeyboardInterrupt where it lands, here in the middle of a
    write, which leaves the previous file as it was and no temporary file."""
    path = tmp_path / "mid-epoch.npz"
    path.write_bytes(b"the previous checkpoint")
    # Python's own handler before, as a program starts with, whatever an earlier test in this process left there
    outside = signal.signal(signal.SIGINT, signal.default_int_handler)

    def interrupt():
        """SIGINT to this (the main) thread: sent to the process, it may land on another of its threads (an earlier
        test's pool) and reach Python's handler only after the write has ended."""
        signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)

    def interrupted_write(f):
        f.write(b"half of the new one")
        interrupt()
        f.write(b"the other half")

    try:
        with StopSignals() as signals:
            interrupt()
            assert signals.received == signal.SIGINT
            with pytest.raises(KeyboardInterrupt):
                write_atomically(path, interrupted_write)
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    except KeyboardInterrupt:
        pytest.fail("the first SIGINT was not caught")
    finally:
        signal.signal(signal.SIGINT, outside)
    assert path.read_bytes() == b"the previous checkpoint" and os.listdir(tmp_path) == ["mid-epoch.npz"]


def checkpoint(path, **meta):
    model = models.create("lenet5")
    ckpt.save(path, model, optim.SGD(model.parameters(), lr=0.1), **meta)


def test_a_mid_epoch_checkpoint_is_resumed_from_only_while_it_is_ahead_of_the_epochs(tmp_path):
    run = Run(tmp_path)
    os.makedirs(run.checkpoint_dir)
    within = {"rng": {}, "step": 2, "epoch_so_far": {"loss_sum": 9.5, "correct": 3, "seen": 16, "seconds": 0.5}}
    checkpoint(run.mid_epoch_checkpoint, epoch=0, **within)
    assert run.latest_checkpoint() == run.mid_epoch_checkpoint and run.checkpoints() == []
    checkpoint(run.checkpoint_path(1), epoch=1)         # killed before the mid-epoch one was removed
    assert run.latest_checkpoint() == run.checkpoint_path(1)
    checkpoint(run.mid_epoch_checkpoint, epoch=1, **within)
    assert run.latest_checkpoint() == run.mid_epoch_checkpoint
    run.remove_mid_epoch_checkpoint()
    assert run.latest_checkpoint() == run.checkpoint_path(1)


@pytest.mark.parametrize("change, fragment", [
    (lambda meta: meta.pop("epoch_so_far"), "field 'header.epoch_so_far': expected dict, got None"),
    (lambda meta: meta["epoch_so_far"].pop("seen"), "field 'header.epoch_so_far.seen': expected float, got None"),
    (lambda meta: meta["epoch_so_far"].update(loss_sum=-1.0), "'header.epoch_so_far.loss_sum': must lie in [0, ∞]"),
    (lambda meta: meta.update(step=0), "field 'header.step': must lie in [1, ∞], got 0"),
    (lambda meta: meta.update(rng_ranks=[{}, 3]), "'header.rng_ranks': expected a list of random generator states")])
def test_the_header_of_a_mid_epoch_checkpoint_is_validated(change, fragment):
    meta = {"epoch": 1, "step": 2, "epoch_so_far": {"loss_sum": 9.5, "correct": 3, "seen": 16, "seconds": 0.5},
            "rng_ranks": [{}, {}]}
    validate_header(json.loads(json.dumps(meta)), "mid-epoch.npz")
    change(meta)
    with pytest.raises(SchemaError, match=re.escape(fragment)):
        validate_header(meta, "mid-epoch.npz")


def test_checkpoint_every_must_be_a_positive_number_of_steps(data, tmp_path, capsys):
    assert main(["train", "--data", str(data), "--checkpoint-every", "0", "--out", str(tmp_path / "run")]) == 2
    assert capsys.readouterr().err == "juanji: error: --checkpoint-every must lie in [1, ∞], got 0\n"
    assert not (tmp_path / "run").exists()
