"""The run directory as a type: layout, free names, checkpoints, metrics, lock, repair."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from juanji import checkpoint as ckpt
from juanji.runs import Run, RunLocked, best_score
from juanji.schema import SchemaError, TrainConfig
from juanji.train import Trainer
from idx_data import idx_folder



@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    config = TrainConfig(data=str(idx_folder(root / "data")), epochs=2, batch_size=16, out=str(root / "run"))
    Trainer(config, progress=False).fit()
    return Run(root / "run")


def test_the_layout_of_a_trained_run(trained):
    assert trained.exists() and trained.config.epochs == 2
    assert [epoch for epoch, _ in trained.checkpoints()] == [1, 2]
    assert trained.latest_checkpoint() == os.path.join(trained.path, "checkpoints", "epoch-002.npz")
    assert [m["epoch"] for m in trained.metrics()] == [1, 2]
    assert os.path.isfile(trained.best) and trained.foreign_entries() == []


def test_a_free_run_name_skips_taken_ones(tmp_path):
    assert Run.free("lenet5", tmp_path).path == str(tmp_path / "lenet5")
    for name in ("lenet5", "lenet5-2"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.json").write_text("{}")
    assert Run.free("lenet5", tmp_path).path == str(tmp_path / "lenet5-3")


def test_a_folder_that_is_not_a_run(tmp_path):
    (tmp_path / "best.npz").write_text("the user's own file")
    assert Run(tmp_path).foreign_entries() == ["best.npz"]
    assert not Run(tmp_path).exists() and Run(tmp_path).latest_checkpoint() is None


@pytest.mark.parametrize("content, fragment", [
    ("[1, 2, 3]", "the config must be a JSON object"),
    ('{"epochs": "ten"}', "field 'epochs': expected int, got 'ten'"),
    ('{"lr": -1}', "field 'lr': must lie in [0, ∞], got -1"),
    ('{"image_size": 100000}', "field 'image_size': must lie in [1, 4096]"),
    ('{"epocs": 3}', "field 'epocs': not an option of juanji train"),
    ('{"augment": [1]}', "field 'augment': expected a list of names"),
    ("{not json", "not a JSON file"),
])
def test_config_json_is_validated(tmp_path, content, fragment):
    (tmp_path / "config.json").write_text(content)
    with pytest.raises(SchemaError) as caught:
        Run(tmp_path).config
    assert str(caught.value).startswith(str(tmp_path / "config.json")) and fragment in str(caught.value)


def test_the_lock_refuses_a_second_holder_and_frees_when_its_process_dies(tmp_path):
    holder = ("import sys, time\nfrom juanji.runs import Run\n"
              f"with Run({str(tmp_path)!r}).lock():\n    print('locked', flush=True)\n    time.sleep(60)\n")
    process = subprocess.Popen([sys.executable, "-c", holder], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline() == "locked\n"
        with pytest.raises(RunLocked, match=f"in use by another juanji train \\(process {process.pid}\\)"):
            Run(tmp_path).check_unlocked()
    finally:
        process.kill()
        process.wait()
    assert (tmp_path / ".lock").exists()        # a killed holder leaves its file ...
    with Run(tmp_path).lock():                  # ... but a dead process's lock is no lock
        assert (tmp_path / ".lock").read_text() == f"{os.getpid()}\n"
    assert not (tmp_path / ".lock").exists()    # removed when its holder ends normally


def test_repair_rewrites_what_a_kill_after_the_checkpoint_left_stale(trained, tmp_path):
    run = Run(tmp_path / "copy")
    subprocess.run(["cp", "-a", trained.path, run.path], check=True)
    history = ckpt.load(run.latest_checkpoint()).meta["history"]
    best = max(history, key=lambda m: m["test_accuracy"])["epoch"]
    (tmp_path / "copy" / "best.npz").write_bytes(open(run.checkpoint_path(3 - best), "rb").read())
    (tmp_path / "copy" / "metrics.jsonl").write_text(json.dumps(history[0]) + "\n")
    notes = run.repair(history)
    assert len(notes) == 2 and "best.npz rewritten from epoch" in notes[0]
    assert ckpt.load(run.best).meta["epoch"] == best and run.metrics() == history
    assert run.repair(history) == []


def test_the_best_epoch_of_a_segmentation_is_the_one_of_the_best_mean_iou(trained, tmp_path):
    """Per-pixel accuracy of a mask is mostly the background's: an all-background epoch can have the higher
    accuracy and the worse masks. best.npz follows the mean IoU where a history has it."""
    assert best_score({"test_accuracy": 0.9}) == 0.9
    assert best_score({"test_accuracy": 0.9, "test_mean_iou": 0.4}) == 0.4
    run = Run(tmp_path / "copy")
    subprocess.run(["cp", "-a", trained.path, run.path], check=True)
    history = ckpt.load(run.latest_checkpoint()).meta["history"]
    history[0].update(test_accuracy=0.95, test_mean_iou=0.30)
    history[1].update(test_accuracy=0.90, test_mean_iou=0.60)
    run.repair(history)
    assert ckpt.load(run.best).meta["epoch"] == 2
    history[0]["test_mean_iou"] = 0.70
    assert "best.npz rewritten from epoch 1" in run.repair(history)[0]


def test_claim_says_who_may_write_into_a_folder(trained, tmp_path):
    assert Run(tmp_path / "new").claim() is None                          # nothing there yet
    with pytest.raises(ValueError, match="already holds a run; add --resume"):
        Run(trained.path).claim()
    assert Run(trained.path).claim(resume=True) is None
    with pytest.raises(FileNotFoundError, match="--resume: .*config.json does not exist"):
        Run(tmp_path / "new").claim(resume=True)
    (tmp_path / "unfinished").mkdir()
    (tmp_path / "unfinished" / "config.json").write_text("{}")
    assert "starting it afresh" in Run(tmp_path / "unfinished").claim()
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "photo.jpg").write_text("")
    with pytest.raises(ValueError, match="mine is not a juanji run \\(it holds photo.jpg and no config.json\\)"):
        Run(tmp_path / "mine").claim()


def test_juanjis_own_outputs_beside_a_run_leave_it_resumable(tmp_path):
    """`juanji show` (pictures into the run by default), `juanji export` into the run folder and
    `--tensorboard RUN` write there; the run still resumes. A file of the user's still stops it."""
    from juanji.cli import main
    out = tmp_path / "run"
    argv = ["train", "--data", str(idx_folder(tmp_path / "data")), "--batch-size", "16", "--out", str(out),
            "--no-progress"]
    assert main([*argv, "--epochs", "1", "--tensorboard", str(out)]) == 0
    assert main(["show", "kernels", str(out)]) == 0
    assert main(["export", str(out), str(out / "model.onnx")]) == 0
    written = sorted(os.listdir(out))
    assert "kernels-0.png" in written and "model.onnx" in written
    assert any(name.startswith("events.out.tfevents.") for name in written)
    assert Run(out).foreign_entries() == []
    assert main([*argv, "--epochs", "2", "--resume"]) == 0
    assert [m["epoch"] for m in Run(out).metrics()] == [1, 2]
    (out / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match=r"holds files a juanji run does not write \(notes.txt\); move them out"):
        Run(out).claim(resume=True)
