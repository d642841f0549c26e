"""End-to-end training on real Fashion-MNIST: accuracy floor, bit-exact resume after a kill, divergence."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from juanji import checkpoint as ckpt
from juanji.train import Trainer, TrainConfig, TrainingDiverged

pytestmark = pytest.mark.slow

# The parity configuration of bench/torch_lenet5.py: on the first 10,000 training images, 5 epochs, juanji
# must reach 75 % test accuracy, about the lowest that PyTorch's own runs of this configuration reach.
PARITY = dict(model="lenet5", optimizer="sgd", lr=0.01, momentum=0.9, weight_decay=0.0, schedule="none",
              init="torch", normalize=False, batch_size=64)


def test_lenet5_on_a_10k_subset_reaches_the_pytorch_floor(tmp_path):
    config = TrainConfig(**PARITY, epochs=5, limit=10_000, out=str(tmp_path / "run"), seed=1)
    history = Trainer(config, progress=False).fit()
    assert history[-1]["test_accuracy"] >= 0.75
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2, 3, 4, 5]
    assert (tmp_path / "run" / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    best = ckpt.load(tmp_path / "run" / "best.npz")
    assert best.meta["metrics"]["test_accuracy"] == max(m["test_accuracy"] for m in history)


def _train_command(out, epochs, *extra):
    return [sys.executable, "-m", "juanji.cli", "train", "--epochs", str(epochs), "--limit", "6000",
            "--out", str(out), "--seed", "3", "--no-progress", "--augment", "crop,flip", *extra]


def _final_arrays(run_dir, epoch):
    state = ckpt.load(os.path.join(run_dir, "checkpoints", f"epoch-{epoch:03d}.npz"))
    return {**state.model_state, **{f"optim/{k}": v for k, v in state.optimizer_arrays.items()}}


def test_killed_run_resumes_to_bit_identical_weights(tmp_path):
    uninterrupted = tmp_path / "whole"
    subprocess.run(_train_command(uninterrupted, 3), check=True, capture_output=True)

    killed = tmp_path / "killed"
    process = subprocess.Popen(_train_command(killed, 3), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first = killed / "checkpoints" / "epoch-001.npz"
    deadline = time.time() + 300
    while not first.exists() and time.time() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert first.exists()
    assert not (killed / "checkpoints" / "epoch-003.npz").exists(), "the run finished before it was killed"

    subprocess.run(_train_command(killed, 3, "--resume"), check=True, capture_output=True)
    expected, resumed = _final_arrays(uninterrupted, 3), _final_arrays(killed, 3)
    assert expected.keys() == resumed.keys()
    for key in expected:
        np.testing.assert_array_equal(resumed[key], expected[key], err_msg=key)
    epochs = [json.loads(line)["epoch"] for line in (killed / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [1, 2, 3]


@pytest.mark.filterwarnings("ignore:(overflow|invalid value) encountered:RuntimeWarning")   # it diverges on purpose
def test_divergence_stops_with_a_message_and_keeps_the_last_good_checkpoint(tmp_path):
    config = TrainConfig(epochs=1, limit=2000, out=str(tmp_path / "run"))
    trainer = Trainer(config, progress=False)
    trainer.fit()
    good = (tmp_path / "run" / "checkpoints" / "epoch-001.npz").read_bytes()
    trainer.config.epochs, trainer.start_epoch = 2, 1
    trainer.optimizer.lr = 1e30
    with pytest.raises(TrainingDiverged, match=r"epoch 2, step \d+: first non-finite output in layer"):
        trainer.fit()
    assert (tmp_path / "run" / "checkpoints" / "epoch-001.npz").read_bytes() == good
    assert not (tmp_path / "run" / "checkpoints" / "epoch-002.npz").exists()


def test_resume_restores_the_metrics_history_from_the_checkpoint(tmp_path):
    """A kill after a checkpoint is written but before metrics.jsonl is: the history lives in the
    checkpoint, so the resumed run's metrics.jsonl still lists every epoch."""
    config = TrainConfig(epochs=1, limit=1000, out=str(tmp_path / "run"))
    first = Trainer(config, progress=False).fit()
    (tmp_path / "run" / "metrics.jsonl").unlink()
    config.epochs = 2
    history = Trainer(config, progress=False, resume=True).fit()
    assert [m["epoch"] for m in history] == [1, 2] and history[0] == first[0]
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2]


@pytest.mark.parametrize("schedule, warmup", [("cosine", 0), ("step", 0), ("cosine", 1)])
def test_resuming_with_more_epochs_runs_the_schedule_over_the_new_total(tmp_path, schedule, warmup):
    """A finished 2-epoch cosine run continued to 4 epochs: the learning rate goes on along the cosine over
    4 epochs (half of the base at epoch 3, lower at 4), not past the old end where it would rise again."""
    config = TrainConfig(epochs=2, limit=256, batch_size=64, schedule=schedule, warmup_epochs=warmup,
                         out=str(tmp_path / "run"))
    trained = Trainer(config, progress=False).fit()
    config.epochs = 4
    trainer = Trainer(config, progress=False, resume=True)
    assert [note for note in trainer.notes if "schedule was set for 2 epochs and now runs over 4" in note]
    history = trainer.fit()
    assert history[:2] == trained
    fresh = TrainConfig(epochs=4, limit=256, batch_size=64, schedule=schedule, warmup_epochs=warmup,
                        out=str(tmp_path / "fresh"))
    expected = Trainer(fresh, progress=False)
    lrs = []
    for _ in range(4):
        lrs.append(expected.optimizer.lr)
        expected.scheduler.step()
    assert [m["lr"] for m in history[2:]] == pytest.approx(lrs[2:], rel=1e-12)    # 1-2 as they were trained
    if schedule == "cosine" and not warmup:
        assert history[2]["lr"] == pytest.approx(config.lr / 2) and history[3]["lr"] < history[2]["lr"]


def test_on_the_compiled_kernels_training_fuses_and_its_checkpoints_load_into_the_unfused_model(tmp_path,
                                                                                                  numba_kernels):
    from juanji import nn
    config = TrainConfig(model="resnet20", epochs=1, limit=256, batch_size=64, out=str(tmp_path / "run"))
    trainer = Trainer(config, progress=False)
    kinds = {type(layer) for layer in trainer.model.modules()}
    assert nn.BatchNormAddReLU in kinds and nn.BatchNormReLU in kinds and nn.ReLU not in kinds
    trainer.fit()
    plain = ckpt.restore_model(ckpt.load(str(tmp_path / "run" / "best.npz")))      # built from the registry
    assert nn.ReLU in {type(layer) for layer in plain.modules()}
    for name, value in trainer.model.state_dict().items():
        np.testing.assert_array_equal(plain.state_dict()[name], value)
