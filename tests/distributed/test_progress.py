"""The progress bar of ``juanji train`` counts the images of the global batches and shows the loss and accuracy
of all processes: on 2 ranks its last state per epoch is every training image, with the epoch's train loss and
accuracy as metrics.jsonl has them (rank 0's share alone would give others)."""
from __future__ import annotations

import re

import pytest

from juanji.cli import main
from juanji.runs import Run

from mpi_run import mpirun, needs_mpi

IMAGES = 100


def train_args(data, out) -> list[str]:
    # 100 images in batches of 30: a short last batch of 10, and a bar brought up to date at step 0 only
    return ["train", "--data", str(data), "--limit", str(IMAGES), "--batch-size", "30", "--epochs", "2",
            "--out", str(out)]


def last_bar_per_epoch(stderr: str) -> dict[int, str]:
    """{epoch: the bar's last state in it} from tqdm's output (its states apart by carriage returns, or by
    new lines where mpirun forwards them)."""
    last = {}
    for state in re.split(r"[\r\n]", stderr):
        found = re.match(r"epoch (\d+)/\d+:", state)
        if found:
            last[int(found[1])] = state
    return last


def check_bars(stderr: str, out) -> None:
    bars = last_bar_per_epoch(stderr)
    metrics = Run(out).metrics()
    assert sorted(bars) == [1, 2], stderr
    for m in metrics:
        bar = bars[m["epoch"]]
        assert f"| {IMAGES}/{IMAGES} [" in bar and "img/s" in bar, bar
        assert f"acc={m['train_accuracy']:.4f}, loss={m['train_loss']:.4f}]" in bar, (bar, m)


def test_one_process_bar_counts_the_images(small_fashion, tmp_path, capsys):
    assert main(train_args(small_fashion, tmp_path / "run")) == 0
    check_bars(capsys.readouterr().err, tmp_path / "run")


@needs_mpi
@pytest.mark.slow
def test_two_ranks_bar_counts_every_rank_s_images_and_their_loss(small_fashion, tmp_path):
    run = mpirun(2, "-m", "juanji.cli", *train_args(small_fashion, tmp_path / "run"), timeout=120)
    assert run.returncode == 0, run.stderr
    check_bars(run.stderr, tmp_path / "run")
    assert len(re.findall(r"epoch 1/2:", run.stderr)) >= 2       # one bar (rank 0's), more than one state
