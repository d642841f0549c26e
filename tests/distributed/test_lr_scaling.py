"""``juanji train --lr-scaling linear``: --lr is the rate for a batch of 256 images and the rate used is
--lr × --batch-size × --accumulate ÷ 256 (Goyal et al.'s linear scaling rule), whatever the number of processes,
warmed up to from a tenth of it; stored in config.json, refused when it is not a known rule, and a run trained so
resumes on any number of processes."""
from __future__ import annotations

import json

import pytest

from juanji.cli import main
from juanji.runs import Run
from juanji.schema import SchemaError, TrainConfig, validate_config
from juanji.train import Trainer, scaled_lr

from mpi_run import mpirun, needs_mpi


def train_args(data, out, *options) -> list[str]:
    """A short run of 32 images per step at --lr 0.08 per 256 images: 0.01 with --lr-scaling linear."""
    return ["train", "--data", str(data), "--limit", "100", "--batch-size", "32", "--lr", "0.08", "--out", str(out),
            "--no-progress", *options]


def test_the_optimizer_starts_at_the_rate_for_its_images_per_step(small_fashion, tmp_path):
    config = TrainConfig(data=str(small_fashion), limit=60, lr=0.1, batch_size=32, accumulate=4,
                         lr_scaling="linear", schedule="none", out=str(tmp_path / "run"))
    assert Trainer(config, progress=False).optimizer.lr == pytest.approx(0.05, rel=1e-15)    # 128 of 256 images
    assert Trainer(TrainConfig(**{**config.__dict__, "lr_scaling": "none"}), progress=False).optimizer.lr == 0.1
    assert scaled_lr(TrainConfig(lr=0.1, batch_size=1024, lr_scaling="linear")) == pytest.approx(0.4, rel=1e-15)


def test_accumulating_two_batches_doubles_the_lr_after_the_warm_up(small_fashion, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(train_args(small_fashion, out, "--epochs", "3", "--accumulate", "2", "--lr-scaling", "linear",
                           "--schedule", "step", "--warmup-epochs", "2")) == 0
    printed = capsys.readouterr().out
    assert ("learning rate 0.02: --lr 0.08 × 64 images per step ÷ 256 (--lr-scaling linear), reached after a "
            "warm-up of 2 epochs from a tenth of it") in printed
    # warm-up from a tenth of the scaled lr over 2 epochs, then the step schedule from the scaled lr itself
    assert [m["lr"] for m in Run(out).metrics()] == pytest.approx([0.002, 0.011, 0.02], rel=1e-12)
    assert json.loads((out / "config.json").read_text())["lr_scaling"] == "linear"
    assert "lr 0.011" in printed


def test_an_unknown_rule_is_refused_on_the_command_line_and_in_config_json(small_fashion, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit:
        main(train_args(small_fashion, tmp_path / "run", "--lr-scaling", "sqrt"))
    assert exit.value.code == 2 and "--lr-scaling: invalid choice: 'sqrt'" in capsys.readouterr().err
    with pytest.raises(SchemaError, match="config.json: field 'lr_scaling': must be one of none, linear, got 'sqrt'"):
        validate_config({"lr_scaling": "sqrt"})


@pytest.mark.parametrize("options, images", [(("--lr", "1e308", "--accumulate", "20"), "640"),
                                             (("--batch-size", "1" + "0" * 200, "--accumulate", "1" + "0" * 200),
                                              f"{10 ** 400:,}")],      # more images than a float can count
                         ids=["large-lr", "countless-images"])
def test_a_learning_rate_that_scales_past_the_floats_is_refused(small_fashion, tmp_path, capsys, options, images):
    assert main(train_args(small_fashion, tmp_path / "run", *options, "--lr-scaling", "linear")) == 2
    lr = "1e+308" if "1e308" in options else "0.08"
    assert capsys.readouterr().err == (f"juanji: error: --lr-scaling linear: --lr {lr} × {images} images per step "
                                       f"÷ 256 is not a finite learning rate\n")
    assert not (tmp_path / "run" / "config.json").exists()


@needs_mpi
@pytest.mark.slow
def test_one_and_two_ranks_train_at_the_same_rate_and_the_run_resumes_on_one(small_fashion, tmp_path, capsys):
    options, two, one = ("--epochs", "1", "--schedule", "none", "--lr-scaling", "linear"), tmp_path / "2", tmp_path / "1"
    line = "learning rate 0.01: --lr 0.08 × 32 images per step ÷ 256 (--lr-scaling linear)\n"
    run = mpirun(2, "-m", "juanji.cli", *train_args(small_fashion, two, *options), timeout=120)
    assert run.returncode == 0, run.stderr
    assert line in run.stdout
    assert main(train_args(small_fashion, one, *options)) == 0
    assert line in capsys.readouterr().out
    on_two, on_one = Run(two).metrics(), Run(one).metrics()
    assert [m["lr"] for m in on_two] == [m["lr"] for m in on_one] == pytest.approx([0.01], rel=1e-15)
    # the same steps: the two trajectories part only by float32 sums taken in another order
    assert on_two[0]["test_loss"] == pytest.approx(on_one[0]["test_loss"], rel=1e-4)
    assert main(["train", "--resume", "--out", str(two), "--epochs", "2", "--no-progress"]) == 0
    assert line in capsys.readouterr().out
    assert [m["lr"] for m in Run(two).metrics()] == pytest.approx([0.01, 0.01], rel=1e-15)
