"""``juanji train --tensorboard DIR``: the event files read back with TensorBoard's own reader — the scalars are
metrics.jsonl's, the histograms the weights', the kernel image the first convolution's."""
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from juanji import checkpoint as ckpt
from juanji.cli import main
from disk_failures import mount_tmpfs, no_file_may_grow
from idx_data import idx_folder
from refusals import one_line_exit_2

event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator",
                                        reason="pip install tensorboard (the test extra)")
pytest.importorskip("tensorboardX", reason="pip install tensorboardX (the [tensorboard] extra)")


@pytest.mark.slow
def test_scalars_equal_metrics_jsonl_and_histograms_the_weights(tmp_path):
    run, board = tmp_path / "run", tmp_path / "board"
    assert main(["train", "--limit", "500", "--epochs", "2", "--out", str(run), "--tensorboard", str(board),
                 "--no-progress"]) == 0
    events = event_accumulator.EventAccumulator(str(board), size_guidance={"histograms": 0, "images": 0})
    events.Reload()
    with open(run / "metrics.jsonl") as f:
        metrics = [json.loads(line) for line in f]
    assert sorted(events.Tags()["scalars"]) == ["accuracy/test", "accuracy/train", "loss/test", "loss/train", "lr"]
    for tag, key in [("loss/train", "train_loss"), ("loss/test", "test_loss"), ("accuracy/train", "train_accuracy"),
                     ("accuracy/test", "test_accuracy"), ("lr", "lr")]:
        scalars = events.Scalars(tag)
        assert [s.step for s in scalars] == [1, 2]
        np.testing.assert_allclose([s.value for s in scalars], [m[key] for m in metrics], rtol=1e-6)  # float32

    weights = ckpt.load(str(run / "checkpoints" / "epoch-002.npz")).model_state
    names = [n for n in events.Tags()["histograms"] if n.startswith("weights/")]
    assert len(names) == 10 and "gradients/3.weight" in events.Tags()["histograms"]
    last = events.Histograms("weights/3.weight")[-1]
    assert last.step == 2 and last.histogram_value.num == weights["3.weight"].size == 2400
    assert last.histogram_value.sum == pytest.approx(float(weights["3.weight"].sum()), rel=1e-4, abs=1e-4)
    assert last.histogram_value.min == pytest.approx(float(weights["3.weight"].min()), rel=1e-6)

    (image,) = events.Tags()["images"]
    assert image == "kernels/0" and [i.step for i in events.Images(image)] == [1, 2]
    assert (events.Images(image)[-1].width, events.Images(image)[-1].height) == (17, 11)   # 3 × 2 kernels of 5×5



# -- a writer that dies: a full disk under the event files ends training with one line, never a hang ----------
JUANJI = [str(Path(sys.executable).with_name("juanji"))]      # the installed command, as a user runs it



@pytest.fixture
def disk(tmp_path):
    """A 64 KiB tmpfs holding one free page (the event file's first record fits, an epoch's does not); None
    where mounting is not permitted (not root)."""
    disk = tmp_path / "disk"
    if not mount_tmpfs(disk):
        yield None
        return
    try:
        (disk / "filler").write_bytes(bytes(15 * 4096))
        yield disk
    finally:
        subprocess.run(["umount", str(disk)], check=True)


def in_words(result, *fragments):
    """``one_line_exit_2``, the OS's reason in words, once (no "[Errno")."""
    err = one_line_exit_2(result, *fragments)
    assert "[Errno" not in err, err
    return err


def juanji(argv, cwd, preexec_fn=None):
    return subprocess.run(JUANJI + [str(a) for a in argv], capture_output=True, text=True, cwd=cwd, timeout=60,
                          preexec_fn=preexec_fn)


def test_a_full_disk_under_the_event_files_ends_training_with_one_line_and_the_run_resumes(tmp_path, disk):
    """tensorboardX's writer thread died on ENOSPC and training then waited forever on its queue.  Where the
    tmpfs cannot be mounted, the event file fails at its first record instead (RLIMIT_FSIZE), on a resumed run."""
    data = idx_folder(tmp_path / "data")
    train = ["train", "--data", data, "--out", "run", "--batch-size", "16", "--no-progress", "--epochs"]
    if disk is not None:
        board, result = disk / "board", juanji(train + ["2", "--tensorboard", disk / "board"], tmp_path)
        err = in_words(result, f"cannot write TensorBoard events to {board}: No space left on device; "
                               f"training stopped after epoch 1, whose checkpoint is kept:")
        command = shlex.split(re.search(r"kept: '(.*)' goes on from it$", err.strip())[1])
    else:
        assert juanji(train + ["1"], tmp_path).returncode == 0
        board = tmp_path / "board"
        result = juanji(["train", "--resume", "--out", "run", "--epochs", "2", "--tensorboard", board,
                         "--no-progress"], tmp_path, no_file_may_grow)
        in_words(result, f"cannot write TensorBoard events to {board}: File too large")
        command = ["juanji", "train", "--resume", "--out", "run", "--epochs", "2"]
    epoch_1 = tmp_path / "run" / "checkpoints" / "epoch-001.npz"
    assert ckpt.load(epoch_1).meta["epoch"] == 1 and not epoch_1.with_name("epoch-002.npz").exists()
    assert command[:2] == ["juanji", "train"]
    again = juanji(command[1:], tmp_path)                  # exactly the command the message names
    assert again.returncode == 0, again.stderr
    assert ckpt.load(epoch_1.with_name("epoch-002.npz")).meta["epoch"] == 2


def test_a_board_folder_that_cannot_be_written_refuses_before_training(tmp_path, disk):
    data = idx_folder(tmp_path / "data")
    preexec_fn = None
    if disk is not None:
        (disk / "more").write_bytes(bytes(4096))                # the last free page taken
        board = disk / "board"
    else:
        board, preexec_fn = tmp_path / "board", no_file_may_grow
    result = juanji(["train", "--data", data, "--out", "run", "--epochs", "1", "--tensorboard", board,
                     "--no-progress"], tmp_path, preexec_fn)
    in_words(result, f"cannot write TensorBoard events to {board}: ")
    assert not (tmp_path / "run").exists()                  # nothing trained, nothing written
