"""The bad-input catalogue: what a user can get wrong, through the public API and the ``juanji`` command.

Every entry must give one clear line (``juanji: error: ...``, exit status 2, no traceback unless
``--debug``) and leave every existing file byte-for-byte as it was.  Layer-level shape/dtype errors are
in tests/nn/test_bad_input.py, image files for ``predict`` in tests/cli/test_cli.py, IDX parsing and its
fuzzing in tests/data/test_idx.py, checkpoint unit cases in tests/test_checkpoint.py; this module covers
the rest end to end, and fuzzes the checkpoint reader.
"""
import errno
import json
import os
import pickle
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from juanji import checkpoint as ckpt
from juanji import models, nn
from juanji.cli import main
from juanji.data import write_idx
from juanji.train import TrainConfig, Trainer, TrainingDiverged
from mutation import mutate


# -- helpers ---------------------------------------------------------------------------------------
def snapshot(root):
    """{relative path: bytes} of every file under ``root``."""
    files = {}
    for folder, _, names in os.walk(root):
        for name in names:
            path = os.path.join(folder, name)
            with open(path, "rb") as f:
                files[os.path.relpath(path, root)] = f.read()
    return files


def fails_cleanly(capsys, argv, *fragments):
    """Run ``juanji argv`` in-process: exit status 2 and one stderr line holding every fragment."""
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("juanji: error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in err, err
    return err


def idx_folder(path, count=64, labels=None, image_dtype=np.uint8):
    """An MNIST-layout folder of ``count`` random 28×28 training and test images."""
    path.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for split in ("train", "t10k"):
        write_idx(path / f"{split}-images-idx3-ubyte", rng.integers(0, 256, (count, 28, 28)).astype(image_dtype))
        write_idx(path / f"{split}-labels-idx1-ubyte",
                  rng.integers(0, 10, count).astype(np.uint8) if labels is None else labels)
    return path


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A one-epoch run on a tiny IDX folder."""
    root = tmp_path_factory.mktemp("bad-input")
    data = idx_folder(root / "data")
    out = root / "run"
    assert main(["train", "--data", str(data), "--epochs", "1", "--out", str(out), "--no-progress"]) == 0
    return out


@pytest.fixture
def workspace(tmp_path, run_dir):
    """tmp_path holding a copy of the run's best.npz; everything in it must survive each bad command."""
    (tmp_path / "best.npz").write_bytes((run_dir / "best.npz").read_bytes())
    return tmp_path


# -- model inputs through the public API -------------------------------------------------------------
@pytest.mark.parametrize("make_input, error, fragments", [
    (lambda: np.zeros((1, 28, 28), np.float32), ValueError, ["Conv2d(1, 6", "expected input of shape (N, 1, H, W)",
                                                             "got 3-D input of shape (1, 28, 28)"]),
    (lambda: np.zeros((2, 3, 28, 28), np.float32), ValueError, ["with 1 channels", "(3 channels)"]),
    (lambda: np.zeros((2, 1, 32, 32), np.float32), ValueError, ["Linear(in_features=400", "got shape (2, 576)"]),
    (lambda: np.zeros((2, 1, 8, 8), np.float32), ValueError, ["smaller than the kernel"]),
    (lambda: np.zeros((2, 1, 28, 28), np.uint8), TypeError, ["floating-point input, got dtype uint8",
                                                             "astype(np.float32) / 255"]),
    (lambda: np.zeros((2, 1, 28, 28), np.float64), TypeError, ["parameters are float32 but the input is float64"]),
    (lambda: [[0.0] * 28] * 28, TypeError, ["expected a NumPy array", "got list"]),
])
def test_wrong_input_to_a_model_names_the_layer_and_what_it_expected(make_input, error, fragments):
    model = models.create("lenet5")
    with pytest.raises(error) as caught:
        model(make_input())
    message = str(caught.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message


@pytest.mark.parametrize("make_input, error, fragment", [
    (lambda: np.zeros((2, 16), np.float32), TypeError, "expected an integer array of token ids, got dtype float32"),
    (lambda: np.full((2, 16), 64), ValueError, "token id 64 out of range: the table has ids 0..63"),
    (lambda: np.full((2, 16), -1), ValueError, "token id -1 out of range"),
    (lambda: np.zeros((2, 3), np.int64), ValueError, "smaller than the kernel"),
])
def test_wrong_input_to_the_text_cnn(make_input, error, fragment):
    with pytest.raises(error, match=fragment.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        models.create("text_cnn", vocab_size=64)(make_input())


def test_nan_in_a_model_input_propagates_layers_do_not_scan_for_it():
    """Documented: layers do not look for NaN (it would cost a pass over every activation); the Trainer's
    loss check below is where non-finite inputs are reported."""
    x = np.zeros((2, 1, 28, 28), np.float32)
    x[1, 0, 5, 5] = np.nan
    logits = models.create("lenet5").eval()(x)
    assert np.all(np.isfinite(logits[0])) and np.all(np.isnan(logits[1]))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_training_input_is_reported_as_the_input_batch(tmp_path, bad):
    data = idx_folder(tmp_path / "data", count=32)
    trainer = Trainer(TrainConfig(data=str(data), epochs=1, batch_size=32, out=str(tmp_path / "run")),
                      progress=False)
    trainer.train_set.images[3, 0, 10, 10] = bad
    with pytest.raises(TrainingDiverged, match="at epoch 1, step 1: first non-finite output in the input batch"):
        trainer.fit()
    assert not os.listdir(tmp_path / "run" / "checkpoints")


# -- data through `juanji train --data` ----------------------------------------------------------------
@pytest.mark.parametrize("labels, fragment", [
    (np.full(64, 10, np.uint8), "label 10 out of range: 10 classes allow labels 0..9"),
    (np.full(64, 1.5, np.float32), "labels must be a 1-d integer array, got shape (64,) dtype float32"),
    (np.zeros(10, np.uint8), "image/label count mismatch"),
])
def test_bad_labels(tmp_path, capsys, labels, fragment):
    data = idx_folder(tmp_path / "data", labels=labels)
    before = snapshot(tmp_path)
    fails_cleanly(capsys, ["train", "--data", data, "--out", tmp_path / "run", "--no-progress"], fragment)
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("damage, fragment", [
    (lambda b: b[:len(b) // 2], "train-images-idx3-ubyte: truncated: header promises 64×28×28 = 50176 bytes"),
    (lambda b: b[:3], "train-images-idx3-ubyte: truncated: the 4-byte magic number is cut off"),
    (lambda b: b"\x08\x03" + b[2:], "train-images-idx3-ubyte: wrong magic number 0x08030803"),
    (lambda b: b"", "train-images-idx3-ubyte: empty file"),
])
def test_damaged_idx_files(tmp_path, capsys, damage, fragment):
    data = idx_folder(tmp_path / "data")
    path = data / "train-images-idx3-ubyte"
    path.write_bytes(damage(path.read_bytes()))
    before = snapshot(tmp_path)
    fails_cleanly(capsys, ["train", "--data", data, "--out", tmp_path / "run", "--no-progress"], fragment)
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("argv, fragment", [
    (["--limit", "0"], "the training set of"),
    (["--epochs", "0"], "--epochs must be at least 1, got 0"),
    (["--batch-size", "0"], "batch_size must be >= 1, got 0"),
    (["--lr", "-1"], "invalid lr=-1.0"),
    (["--model", "resnet-20"], "did you mean 'resnet20'?"),
    (["--optimizer", "adamm"], "unknown optimizer 'adamm'; did you mean 'adam'?"),
    (["--schedule", "cosin"], "unknown schedule 'cosin'; did you mean 'cosine'?"),
    (["--init", "kaiming"], "unknown initialisation 'kaiming'"),
    (["--augment", "crop,rotate"], "unknown augmentation ['rotate']"),
    (["--label-smoothing", "2"], "label_smoothing must be in [0, 1]"),
])
def test_bad_training_options(tmp_path, capsys, argv, fragment):
    data = idx_folder(tmp_path / "data")
    before = snapshot(tmp_path)
    fails_cleanly(capsys, ["train", "--data", data, "--out", tmp_path / "run", "--no-progress", *argv], fragment)
    assert snapshot(tmp_path) == before


def test_empty_dataset(tmp_path, capsys):
    data = idx_folder(tmp_path / "data", count=0)
    fails_cleanly(capsys, ["train", "--data", data, "--out", tmp_path / "run", "--no-progress"],
                  f"the training set of {data} is empty")


def test_an_option_that_does_not_exist(capsys):
    with pytest.raises(SystemExit) as caught:
        main(["train", "--epohcs", "3"])
    assert caught.value.code == 2
    assert "unrecognized arguments: --epohcs 3" in capsys.readouterr().err


@pytest.mark.parametrize("out", ["/proc/juanji-run", "{tmp}/a-file/run"])
def test_run_directory_that_cannot_be_created(tmp_path, capsys, out):
    data = idx_folder(tmp_path / "data", count=16)
    (tmp_path / "a-file").write_text("a regular file")
    before = snapshot(tmp_path)
    out = out.format(tmp=tmp_path)
    fails_cleanly(capsys, ["train", "--data", data, "--out", out, "--epochs", "1", "--no-progress"], out)
    assert snapshot(tmp_path) == before


def test_disk_full_while_saving_keeps_the_previous_checkpoints(tmp_path, capsys, monkeypatch):
    data = idx_folder(tmp_path / "data", count=32)
    out = tmp_path / "run"
    assert main(["train", "--data", str(data), "--epochs", "1", "--out", str(out), "--no-progress"]) == 0
    capsys.readouterr()
    before = snapshot(tmp_path)

    def disk_full(file, **arrays):
        file.write(b"PK\x03\x04 the first bytes of an archive")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "savez", disk_full)
    fails_cleanly(capsys, ["train", "--resume", "--data", data, "--epochs", "2", "--out", out, "--no-progress"],
                  "No space left on device")
    monkeypatch.undo()
    after = snapshot(tmp_path)
    assert json.loads(after.pop("run/config.json"))["epochs"] == 2      # the resumed run's config, rewritten
    del before["run/config.json"]
    assert after == before          # epoch-001.npz, best.npz, metrics: untouched; no temporary files left
    assert ckpt.load(out / "checkpoints" / "epoch-001.npz").meta["epoch"] == 1


# -- checkpoints through eval / predict / export -------------------------------------------------------
def _evil_pickle(marker):
    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))
    return pickle.dumps(Payload())


def _rewrite_meta(source, target, change):
    with np.load(source, allow_pickle=False) as archive:
        arrays = {key: archive[key] for key in archive.files}
    meta = json.loads(str(arrays["__meta__"]))
    change(meta)
    arrays["__meta__"] = np.array(json.dumps(meta))
    with open(target, "wb") as f:
        np.savez(f, **arrays)


CHECKPOINT_CASES = {
    "truncated": (lambda ws: (ws / "bad.npz").write_bytes((ws / "best.npz").read_bytes()[:5000]),
                  "bad.npz: truncated or corrupt checkpoint"),
    "zero bytes": (lambda ws: (ws / "bad.npz").write_bytes(b""), "bad.npz: not a juanji checkpoint: empty file"),
    "renamed pickle": (lambda ws: (ws / "bad.npz").write_bytes(_evil_pickle(ws / "PWNED")),
                       "bad.npz: not a juanji checkpoint: not a zip archive (a renamed pickle or other file?)"),
    "png renamed": (lambda ws: (ws / "bad.npz").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100)),
                    "not a zip archive"),
    "plain npz": (lambda ws: np.savez(ws / "bad.npz", weight=np.zeros(3)), "no __meta__ header"),
    "newer version": (lambda ws: _rewrite_meta(ws / "best.npz", ws / "bad.npz", lambda m: m.update(version=99)),
                      "written by a newer juanji (checkpoint format version 99, this juanji reads up to 1)"),
    "version not a number": (lambda ws: _rewrite_meta(ws / "best.npz", ws / "bad.npz",
                                                      lambda m: m.update(version="2")),
                             "corrupt header (version '2' is not an integer)"),
    "header not an object": (lambda ws: np.savez(ws / "bad.npz", __meta__=np.array("[1, 2]")),
                             "not a juanji checkpoint (format 'list')"),
    "another model": (lambda ws: _rewrite_meta(ws / "best.npz", ws / "bad.npz",
                                               lambda m: m.update(model={"name": "resnet20", "config": {}})),
                      "does not fit model 'resnet20'"),
    "unknown model": (lambda ws: _rewrite_meta(ws / "best.npz", ws / "bad.npz",
                                               lambda m: m.update(model={"name": "lenet6", "config": {}})),
                      "cannot build the model it names: unknown model 'lenet6'; did you mean 'lenet5'?"),
    "bad model config": (lambda ws: _rewrite_meta(ws / "best.npz", ws / "bad.npz",
                                                  lambda m: m.update(model={"name": "lenet5", "config": [3]})),
                         "bad.npz: field 'header.model.config': expected null or dict, got [3]"),
}


@pytest.mark.parametrize("command", ["eval", "predict", "export"])
@pytest.mark.parametrize("case", sorted(CHECKPOINT_CASES))
def test_bad_checkpoints(workspace, capsys, command, case):
    make, fragment = CHECKPOINT_CASES[case]
    make(workspace)
    before = snapshot(workspace)
    extra = {"eval": [], "predict": [workspace / "missing.png"], "export": [workspace / "m.onnx"]}[command]
    fails_cleanly(capsys, [command, workspace / "bad.npz", *extra], fragment)
    assert snapshot(workspace) == before
    assert not (workspace / "PWNED").exists()


def test_pickled_object_inside_an_npz_is_never_unpickled(workspace, capsys):
    marker = workspace / "PWNED"
    with zipfile.ZipFile(workspace / "bad.npz", "w") as archive:     # an .npy of dtype object = a pickle
        header = (b"\x93NUMPY\x01\x00" + (118).to_bytes(2, "little")
                  + b"{'descr': '|O', 'fortran_order': False, 'shape': (1,), }".ljust(117) + b"\n")
        archive.writestr("__meta__.npy", header + _evil_pickle(marker))
    fails_cleanly(capsys, ["eval", workspace / "bad.npz"], "bad.npz: refusing to load")
    with pytest.raises(ckpt.CheckpointError, match="refusing to load"):
        ckpt.load(workspace / "bad.npz")
    assert not marker.exists()


def test_missing_checkpoint_and_run_folder_without_one(workspace, capsys):
    fails_cleanly(capsys, ["eval", workspace / "nothing.npz"], "nothing.npz: no such checkpoint file")
    (workspace / "empty-run").mkdir()
    fails_cleanly(capsys, ["predict", workspace / "empty-run", "x.png"], "a folder without best.npz")


@pytest.mark.parametrize("target", ["/proc/juanji.onnx", "{ws}/best.npz/m.onnx"])
def test_export_to_a_place_that_cannot_be_written(workspace, capsys, target):
    before = snapshot(workspace)
    target = target.format(ws=workspace)
    fails_cleanly(capsys, ["export", workspace / "best.npz", target], f"cannot write {target}")
    assert snapshot(workspace) == before


def test_predict_of_a_missing_or_folder_image(workspace, capsys):
    fails_cleanly(capsys, ["predict", workspace / "best.npz", workspace / "nothing.png"],
                  "nothing.png: no such image file")
    fails_cleanly(capsys, ["predict", workspace / "best.npz", workspace], "no such image file")


def test_the_command_line_in_a_subprocess_prints_one_line_and_a_traceback_only_with_debug(workspace):
    bad = workspace / "bad.npz"
    bad.write_bytes(_evil_pickle(workspace / "PWNED"))
    command = [sys.executable, "-m", "juanji.cli", "export", str(bad), str(workspace / "m.onnx")]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr == ("juanji: error: bad.npz: not a juanji checkpoint: not a zip archive "
                             "(a renamed pickle or other file?)\n")
    debug = subprocess.run(command[:3] + ["--debug"] + command[3:], capture_output=True, text=True)
    assert debug.returncode == 1 and "Traceback" in debug.stderr and "CheckpointError" in debug.stderr
    assert not (workspace / "PWNED").exists() and not (workspace / "m.onnx").exists()


# -- fuzzing the checkpoint reader ------------------------------------------------------------------
def small_checkpoint_bytes():
    model = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    path = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"juanji-fuzz-{os.getpid()}.npz")
    ckpt.save(path, model, epoch=1)
    with open(path, "rb") as f:
        content = f.read()
    os.unlink(path)
    return content, model


VALID, FUZZ_MODEL = small_checkpoint_bytes()


def load_or_checkpoint_error(path):
    """Load and restore into the model: success, or CheckpointError naming the file; nothing else."""
    try:
        state = ckpt.load(path)
        ckpt.restore_model(state, FUZZ_MODEL, path.name)
    except ckpt.CheckpointError as error:
        assert str(error).startswith(path.name + ": ") and "\n" not in str(error)


fuzz_settings = settings(max_examples=1500, deadline=None, database=None,
                         suppress_health_check=[HealthCheck.function_scoped_fixture])


@fuzz_settings
@given(content=st.one_of(st.binary(max_size=200), st.binary(max_size=200).map(lambda tail: b"PK\x03\x04" + tail)))
def test_fuzz_checkpoint_random_bytes(tmp_path, content):
    path = tmp_path / "fuzz.npz"
    path.write_bytes(content)
    load_or_checkpoint_error(path)


@fuzz_settings
@given(data=st.data())
def test_fuzz_checkpoint_mutations(tmp_path, data):
    path = tmp_path / "fuzz.npz"
    path.write_bytes(mutate(VALID, data, kinds=("truncate", "set", "insert", "delete")))
    load_or_checkpoint_error(path)
