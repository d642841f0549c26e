"""The bad-input catalogue: what a user can get wrong, through the public API and the ``juanji`` command.

Every entry must give one clear line (``juanji: error: ...``, exit status 2, no traceback unless
``--debug``) and leave every existing file byte-for-byte as it was.  Layer-level shape/dtype errors are
in tests/nn/test_bad_input.py, image files for ``predict`` in tests/cli/test_cli.py, IDX parsing and its
fuzzing in tests/data/test_idx.py, checkpoint unit cases in tests/test_checkpoint.py; this module covers
the rest end to end, and fuzzes the checkpoint reader.

The second half holds issue 15's classes, each fixed at its root and crafted here, file by file:
1. sizes from outside checked before allocation (npz and IDX headers, zip/gzip bombs, model arguments,
   --image-size; run under ``RLIMIT_AS`` so that a regression fails instead of exhausting the machine);
2. checkpoint headers, config.json and metrics.jsonl against one schema (juanji.schema);
3. images decoded only in the documented formats, decompression bombs refused, ``--skip-bad`` skipping them;
4. run directories owned (foreign folders refused), locked (a real second process), restartable, repaired;
5. one-line messages naming the file, field, argument or layer (a wrong dy shape); a batch of 0 images works.
"""
import errno
import gzip
import io
import json
import os
import pickle
import resource
import shlex
import shutil
import stat
import subprocess
import sys
import time
import zipfile
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from juanji import checkpoint as ckpt
from juanji import models, nn
from juanji.cli import main
from juanji.data import ArrayDataset
from juanji.train import TrainConfig, Trainer, TrainingDiverged
from checkpoint_edits import checkpoint_arrays, rewrite
from idx_data import idx_folder
from mutation import mutate
from refusals import fails_cleanly, one_line_exit_2, snapshot


# -- helpers ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A one-epoch run on a tiny IDX folder."""
    root = tmp_path_factory.mktemp("bad-input")
    data = idx_folder(root / "data", count=64)
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
    (lambda: np.zeros((28, 28), np.float32), ValueError, ["Conv2d(1, 6", "expected input of shape (N, 1, H, W) or "
                                                          "(1, H, W)", "got 2-D input of shape (28, 28)"]),
    # one unbatched image (C, H, W) passes the convolutions as in torch; Flatten then merges the wrong axes
    (lambda: np.zeros((1, 28, 28), np.float32), ValueError, ["Linear(in_features=400", "got shape (16, 25)"]),
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
    images = np.array(trainer.train_set.images)     # the file's pixels are mapped read-only: spoil a float copy
    images[3, 0, 10, 10] = bad
    trainer.train_loader.dataset = ArrayDataset(images, trainer.train_set.labels, trainer.train_set.classes)
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
    data = idx_folder(tmp_path / "data", count=64, labels=labels)
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
    data = idx_folder(tmp_path / "data", count=64)
    path = data / "train-images-idx3-ubyte"
    path.write_bytes(damage(path.read_bytes()))
    before = snapshot(tmp_path)
    fails_cleanly(capsys, ["train", "--data", data, "--out", tmp_path / "run", "--no-progress"], fragment)
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("argv, fragment", [
    (["--limit", "0"], "the training set of"),
    (["--epochs", "0"], "--epochs must lie in [1, ∞], got 0"),
    (["--batch-size", "0"], "--batch-size must lie in [1, ∞], got 0"),
    (["--lr", "-1"], "--lr must lie in [0, ∞], got -1.0"),
    (["--lr", "inf"], "--lr must be finite, got inf"),
    (["--momentum", "nan"], "--momentum must be finite, got nan"),
    (["--model", "resnet-20"], "did you mean 'resnet20'?"),
    (["--optimizer", "adamm"], "unknown optimizer 'adamm'; did you mean 'adam'?"),
    (["--schedule", "cosin"], "unknown schedule 'cosin'; did you mean 'cosine'?"),
    (["--init", "kaiming"], "unknown initialisation 'kaiming'"),
    (["--augment", "crop,rotate"], "unknown augmentation ['rotate']"),
    (["--label-smoothing", "2"], "--label-smoothing must lie in [0, 1], got 2.0"),
    (["--model", "text_cnn"], "--model text_cnn reads words: add --data words"),
    (["--data", "words"], "--data words is words, which only a text model reads: --model text_cnn"),
])
def test_bad_training_options(tmp_path, capsys, argv, fragment):
    data = idx_folder(tmp_path / "data", count=64)
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


def _bad_header(workspace, change):
    """The workspace's best.npz with its header changed by ``change``, as bad.npz."""
    rewrite(workspace / "best.npz", change_meta=change, to=workspace / "bad.npz")


CHECKPOINT_CASES = {
    "truncated": (lambda ws: (ws / "bad.npz").write_bytes((ws / "best.npz").read_bytes()[:5000]),
                  "bad.npz: truncated or corrupt checkpoint"),
    "zero bytes": (lambda ws: (ws / "bad.npz").write_bytes(b""), "bad.npz: not a juanji checkpoint: empty file"),
    "renamed pickle": (lambda ws: (ws / "bad.npz").write_bytes(_evil_pickle(ws / "PWNED")),
                       "bad.npz: not a juanji checkpoint: not a zip archive (a renamed pickle or other file?)"),
    "png renamed": (lambda ws: (ws / "bad.npz").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100)),
                    "not a zip archive"),
    "plain npz": (lambda ws: np.savez(ws / "bad.npz", weight=np.zeros(3)), "no __meta__ header"),
    "newer version": (lambda ws: _bad_header(ws, lambda m: m.update(version=99)),
                      "written by a newer juanji (checkpoint format version 99, this juanji reads up to 1)"),
    "version not a number": (lambda ws: _bad_header(ws, lambda m: m.update(version="2")),
                             "corrupt header (version '2' is not an integer)"),
    "header not an object": (lambda ws: np.savez(ws / "bad.npz", __meta__=np.array("[1, 2]")),
                             "not a juanji checkpoint (format 'list')"),
    "another model": (lambda ws: _bad_header(ws, lambda m: m.update(model={"name": "resnet20", "config": {}})),
                      "does not fit model 'resnet20'"),
    "unknown model": (lambda ws: _bad_header(ws, lambda m: m.update(model={"name": "lenet6", "config": {}})),
                      "cannot build the model it names: unknown model 'lenet6'; did you mean 'lenet5'?"),
    "bad model config": (lambda ws: _bad_header(ws, lambda m: m.update(model={"name": "lenet5", "config": [3]})),
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


# == issue 15: every class of outside input, at its root ============================================
# -- helpers for the classes below ------------------------------------------------------------------
MEMORY_LIMIT = 1 << 30         # ulimit -v of the subprocesses below: juanji may plan 3/4 of what is left


def juanji_under_memory_limit(argv, limit=MEMORY_LIMIT, code=None):
    """``python -m juanji.cli argv`` (or ``python -c code``) with its address space limited, so that a size
    check that regressed fails (MemoryError, a kill) instead of exhausting the machine."""
    def limit_memory():
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    command = [sys.executable, "-c", code] if code else [sys.executable, "-m", "juanji.cli", *map(str, argv)]
    return subprocess.run(command, capture_output=True, text=True, preexec_fn=limit_memory, timeout=300,
                          env={**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"})


def copy_run(run_dir, target):
    shutil.copytree(run_dir, target)
    return target


def npz_with(path, arrays, extra=()):
    """An .npz of ``arrays`` plus ``extra`` raw members [(name, bytes or (npy header dict, data size))]."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for key, value in arrays.items():
            with archive.open(f"{key}.npy", "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.asarray(value), allow_pickle=False)
        for name, content in extra:
            archive.writestr(name, content)
    return path


def npy_header(descr, shape) -> bytes:
    header = repr({"descr": descr, "fortran_order": False, "shape": shape}).encode()
    header = header.ljust(118 - 10 + 64 * (len(header) // 64), b" ") + b"\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header


def zeros_member(archive, name, descr, shape, chunk=1 << 24):
    """A member of zeros written in chunks: a compressed file of a few MB that inflates to gigabytes."""
    size = int(np.prod(shape)) * np.dtype(descr).itemsize
    with archive.open(name, "w", force_zip64=True) as f:
        f.write(npy_header(descr, shape))
        zeros = bytes(chunk)
        for start in range(0, size, chunk):
            f.write(zeros[:min(chunk, size - start)])


# -- 1. sizes from outside are checked before memory is allocated -----------------------------------
def test_npy_header_claiming_a_trillion_floats_in_300_bytes(workspace, capsys):
    arrays = checkpoint_arrays(workspace / "best.npz")
    npz_with(workspace / "bad.npz", {k: v for k, v in arrays.items() if k != "model/0.weight"},
             [("model/0.weight.npy", npy_header("<f4", (10 ** 12,)) + bytes(200))])
    before = snapshot(workspace)
    fails_cleanly(capsys, ["eval", workspace / "bad.npz"], "bad.npz: truncated or corrupt checkpoint",
                  "model/0.weight.npy declares (1000000000000,) float32 = 4,000,000,000,000 bytes but holds 200")
    assert snapshot(workspace) == before


def test_zip_bomb_in_a_model_array_is_refused_before_inflating(workspace):
    arrays = checkpoint_arrays(workspace / "best.npz")
    with zipfile.ZipFile(workspace / "bomb.npz", "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for key, value in arrays.items():
            if key != "model/0.weight":
                with archive.open(f"{key}.npy", "w") as f:
                    np.lib.format.write_array(f, value, allow_pickle=False)
        zeros_member(archive, "model/0.weight.npy", "<f4", (6, 1, 5, 5 * 1_000_000))   # 600 MB of zeros
    assert os.path.getsize(workspace / "bomb.npz") < 5_000_000
    result = juanji_under_memory_limit(["eval", workspace / "bomb.npz"])
    one_line_exit_2(result, "bomb.npz: does not fit model 'lenet5': 'model/0.weight' declares shape "
                            "(6, 1, 5, 5000000), the model's is (6, 1, 5, 5)")


def test_zip_bomb_beyond_the_budget_is_refused_even_without_a_model(tmp_path):
    with zipfile.ZipFile(tmp_path / "bomb.npz", "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        archive.writestr("__meta__.npy", _meta_npy({"format": "juanji-checkpoint", "version": 1}))
        zeros_member(archive, "model/w.npy", "<f4", (300_000_000,))                  # 1.2 GB of zeros
    code = (f"from juanji import checkpoint as c\ntry:\n    c.load({str(tmp_path / 'bomb.npz')!r})\n"
            f"except c.CheckpointError as e:\n    print(e)\n")
    result = juanji_under_memory_limit(None, code=code)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert "bomb.npz: its arrays declare 1.1 GiB, more than the " in result.stdout
    assert " MiB this process may use" in result.stdout


def _meta_npy(meta) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.array(json.dumps(meta)), allow_pickle=False)
    return buffer.getvalue()


def test_optimizer_arrays_larger_than_the_model_are_refused(run_dir, tmp_path):
    run = copy_run(run_dir, tmp_path / "run")
    last = run / "checkpoints" / "epoch-001.npz"
    arrays = checkpoint_arrays(last)
    with zipfile.ZipFile(last, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for key, value in arrays.items():
            with archive.open(f"{key}.npy", "w") as f:
                np.lib.format.write_array(f, value, allow_pickle=False)
        zeros_member(archive, "optim/bomb.npy", "<f4", (100_000_000,))
    before = snapshot(tmp_path)
    result = juanji_under_memory_limit(["train", "--resume", "--out", run, "--epochs", "2", "--no-progress"])
    one_line_exit_2(result, "epoch-001.npz: its optimizer arrays declare 382 MiB for a model of 0.2 MiB")
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("change, fragment", [
    (lambda m: m["model"]["config"].update(num_classes=10 ** 12),
     "num_classes must be an integer in 1..1,000,000, got 1000000000000"),
    (lambda m: m["model"]["config"].update(input_size=10 ** 7),
     "input_size must be an integer in 1..65,536, got 10000000"),
    (lambda m: m["model"].update(config={"num_classes": 10, "in_channels": 1, "input_size": 30_000}),
     "cannot build the model it names: lenet5 (num_classes=10, in_channels=1, input_size=30000) "
     "would need about"),
    (lambda m: m["model"].update(name="vgg16", config={"num_classes": 999_999}), "vgg16 (num_classes=999999) "
                                                                                  "would need about"),
])
def test_model_sizes_in_a_header_are_checked_before_building(workspace, change, fragment):
    def without_data(meta):
        meta.pop("data")
        change(meta)
    _bad_header(workspace, without_data)
    before = snapshot(workspace)
    one_line_exit_2(juanji_under_memory_limit(["eval", workspace / "bad.npz"]), "bad.npz: ", fragment)
    assert snapshot(workspace) == before


def test_idx_gzip_bomb_with_an_honest_header_is_refused_before_inflating(tmp_path):
    data = idx_folder(tmp_path / "data", count=16)
    with gzip.open(data / "train-images-idx3-ubyte.gz", "wb", compresslevel=1) as f:   # 196 MB of pixels
        f.write(bytes([0, 0, 8, 3]) + np.array([250_000, 28, 28], ">u4").tobytes())
        for _ in range(250):
            f.write(bytes(784 * 1000))
    (data / "train-images-idx3-ubyte").unlink()
    assert os.path.getsize(data / "train-images-idx3-ubyte.gz") < 1_000_000
    before = snapshot(tmp_path)
    result = juanji_under_memory_limit(["train", "--data", data, "--out", tmp_path / "run", "--no-progress"])
    one_line_exit_2(result, "train-images-idx3-ubyte.gz: header declares 196,000,016 bytes of data, more than "
                            "the ", " MiB this process may use")
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("header, fragment", [
    (bytes([0, 0, 8, 3]) + np.array([10 ** 9, 1000, 1000], ">u4").tobytes(), "more than the"),
    (bytes([0, 0, 8, 3]) + np.array([16, 28, 28], ">u4").tobytes(), "trailing garbage: header promises "
                                                                     "16×28×28 = 12544 bytes of data, file has more"),
])
def test_idx_gzip_whose_header_lies_is_read_no_further_than_it_declares(tmp_path, header, fragment):
    data = idx_folder(tmp_path / "data", count=16)
    with gzip.open(data / "train-images-idx3-ubyte.gz", "wb", compresslevel=1) as f:   # 400 MB inflated
        f.write(header)
        for _ in range(400):
            f.write(bytes(1 << 20))
    (data / "train-images-idx3-ubyte").unlink()
    result = juanji_under_memory_limit(["train", "--data", data, "--out", tmp_path / "run", "--no-progress"])
    one_line_exit_2(result, "train-images-idx3-ubyte.gz: ", fragment)


@pytest.mark.parametrize("argv, fragment", [
    (["summary", "lenet5", "--input", "1x100000x100000"], "input_size must be an integer in 1..65,536"),
    (["summary", "resnet18", "--input", "3x8000x8000"], "juanji summary: resnet18 (in_channels=3, input_size=8000) "
                                                        "would need about"),
    (["summary", "vgg11", "--num-classes", "1000000"], "juanji summary: vgg11 (num_classes=1000000) would need"),
    (["summary", "lenet5", "--num-classes", "0"], "num_classes must be an integer in 1..1,000,000, got 0"),
    (["summary", "text_cnn", "--num-classes", "-3"], "num_classes must be an integer in 1..1,000,000, got -3"),
])
def test_model_arguments_that_imply_terabytes(argv, fragment):
    one_line_exit_2(juanji_under_memory_limit(argv), fragment)


@pytest.mark.parametrize("size, fragment", [
    ("100000", "--image-size must lie in [1, 4096], got 100000"),
    ("0", "--image-size must lie in [1, 4096], got 0"),
    ("4000", "images of 3×4000×4000 uint8 pixels would take"),
])
def test_image_size_is_checked_before_decoding(tmp_path, size, fragment):
    folder = image_folder_with(tmp_path / "pets", {"cat": 30, "dog": 30})     # 54 for training: 2.6 GB of uint8
    before = snapshot(tmp_path)
    result = juanji_under_memory_limit(["train", "--data", folder, "--image-size", size, "--out", tmp_path / "run",
                                        "--no-progress", "--channels", "3"])
    one_line_exit_2(result, fragment)
    assert snapshot(tmp_path) == before


def test_an_allocation_that_fails_anyway_is_one_line(tmp_path):
    """The last net: past every estimate, NumPy's own MemoryError becomes one line (exit 2)."""
    folder = image_folder_with(tmp_path / "pets", {"cat": 20, "dog": 20})
    code = ("import resource, sys\nfrom juanji.cli import main\n"
            "vm = int(open('/proc/self/status').read().split('VmSize:')[1].split()[0]) * 1024\n"
            "resource.setrlimit(resource.RLIMIT_AS, (vm + (200 << 20),) * 2)\n"
            f"sys.exit(main(['train', '--data', {str(folder)!r}, '--image-size', '1024', '--channels', '3', "
            f"'--out', {str(tmp_path / 'run')!r}, '--no-progress']))\n")
    result = juanji_under_memory_limit(None, limit=resource.RLIM_INFINITY, code=code)
    # the estimate counts the 36 decoded uint8 training images once; stacking them needs them twice
    one_line_exit_2(result, "Unable to allocate 108. MiB for an array with shape (36, 3, 1024, 1024)")


def image_folder_with(root, counts, size=40):
    rng = np.random.default_rng(0)
    for name, count in counts.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(root / name / f"{i}.png")
    return root


# -- 2. headers and config files are validated against one schema -------------------------------------
HEADER_CASES = {
    "data is a list": (lambda m: m.update(data=[1, 2]),
                       "bad.npz: field 'header.data': expected null or dict, got [1, 2]"),
    "config is a list": (lambda m: m.update(config=[1, 2, 3]), "bad.npz: header.config must be a JSON object"),
    "fewer class names than outputs": (lambda m: m["data"].update(classes=["a", "b", "c"]),
                                       "field 'header.data.classes': 3 class names for a model with 10 outputs"),
    "class names not strings": (lambda m: m["data"].update(classes=list(range(10))),
                                "field 'header.data.classes': expected 1 to 100,000 class names"),
    "input shape of another model": (lambda m: m["data"].update(input_shape=[3, 28, 28]),
                                     "field 'header.data.input_shape': [3, 28, 28] does not match the model's "
                                     "in_channels=1"),
    "input shape huge": (lambda m: m["data"].update(input_shape=[1, 10 ** 7, 10 ** 7]),
                         "field 'header.data.input_shape[1]': must lie in [1, 4096], got 10000000"),
    "normalization of 3 channels": (lambda m: m["data"].update(normalization=[[0.5] * 3, [0.2] * 3]),
                                    "field 'header.data.normalization': expected [mean per channel, std per channel]"),
    "std of zero": (lambda m: m["data"].update(normalization=[[0.5], [0.0]]),
                    "field 'header.data.normalization': a standard deviation must be positive"),
    "epoch negative": (lambda m: m.update(epoch=-1), "field 'header.epoch': must lie in [0, ∞], got -1"),
    "history of numbers": (lambda m: m.update(history=[1, 2]), "field 'header.history': expected a list of per-epoch"),
    "lr in the config a string": (lambda m: m["config"].update(lr="fast"),
                                  "field 'header.config.lr': expected float, got 'fast'"),
    "model name a number": (lambda m: m["model"].update(name=5), "field 'header.model.name': expected str, got 5"),
}


@pytest.mark.parametrize("case", sorted(HEADER_CASES))
def test_checkpoint_header_against_the_schema(workspace, capsys, case):
    change, fragment = HEADER_CASES[case]
    _bad_header(workspace, change)
    before = snapshot(workspace)
    for command in (["eval"], ["show", "confusion"], ["export"]):
        extra = [workspace / "m.onnx"] if command == ["export"] else []
        fails_cleanly(capsys, [*command, workspace / "bad.npz", *extra], fragment)
    assert snapshot(workspace) == before


@pytest.mark.parametrize("content, fragment", [
    ("[1, 2, 3]", "config.json: the config must be a JSON object of options, got list"),
    ('{"model": "lenet5", "lr": "fast"}', "config.json: field 'lr': expected float, got 'fast'"),
    ('{"epochs": 1e400}', "config.json: field 'epochs': expected int, got inf"),
    ('{"batch_size": 0}', "config.json: field 'batch_size': must lie in [1, ∞], got 0"),
    ('{"channels": 7}', "config.json: field 'channels': must lie in [1, 3], got 7"),
    ("\x00\x01binary", "config.json: not a JSON file"),
])
def test_config_json_against_the_schema(run_dir, tmp_path, capsys, content, fragment):
    run = copy_run(run_dir, tmp_path / "run")
    (run / "config.json").write_text(content)
    before = snapshot(tmp_path)
    fails_cleanly(capsys, ["train", "--resume", "--out", run, "--epochs", "2", "--no-progress"], fragment)
    fails_cleanly(capsys, ["train", "--out", run, "--no-progress"], "already holds a run")
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("content, fragment", [
    ("{not json\n", "metrics.jsonl: line 1 is not JSON"),
    ('{"epoch": 1}\n[1, 2]\n', "metrics.jsonl: line 2 is not an epoch's metrics object"),
    ('{"epoch": "one"}\n', "metrics.jsonl: line 1 is not an epoch's metrics object"),
])
def test_metrics_jsonl_is_validated(run_dir, tmp_path, capsys, content, fragment):
    run = copy_run(run_dir, tmp_path / "run")
    (run / "metrics.jsonl").write_text(content)
    before = snapshot(tmp_path)
    fails_cleanly(capsys, ["show", "curves", run, "--out", tmp_path / "c.png"], fragment)
    assert snapshot(tmp_path) == before


# -- 3. images are decoded by Pillow, only in the formats juanji documents ------------------------------
EPS = (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 28 28\n"
       b"(/tmp/juanji-ghostscript-ran) (w) file closefile\nshowpage\n%%EOF\n")


def png_header(width, height) -> bytes:
    """A PNG of ``width`` × ``height`` gray pixels by its header, with a few bytes of pixel data."""
    def chunk(kind, data):
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")
    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 0, 0, 0, 0])
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(bytes(64))) + chunk(b"IEND", b"")


def tga_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(buffer, format="TGA")
    return buffer.getvalue()


BAD_IMAGES = {
    "postscript named png": (lambda: EPS,
                             "not an image file of a format juanji reads (PNG, JPEG, BMP, GIF, TIFF, WEBP)"),
    "targa named png": (tga_bytes, "not an image file of a format juanji reads"),
    "decompression bomb": (lambda: png_header(30_000, 30_000), "too large to read safely"),
    "bomb at the warning level": (lambda: png_header(10_000, 10_000), "too large to read safely"),
}


def test_the_crafted_files_are_what_pillow_would_otherwise_open():
    """Without the formats list Pillow takes the PostScript for EPS (to be rendered by Ghostscript) and the
    Targa for an image: the restriction, not luck, refuses them."""
    for case, kind in (("postscript named png", "EPS"), ("targa named png", "TGA")):
        with Image.open(io.BytesIO(BAD_IMAGES[case][0]())) as image:
            assert image.format == kind


@pytest.mark.parametrize("case", sorted(BAD_IMAGES))
def test_bad_image_files_for_predict(workspace, capsys, case):
    make, fragment = BAD_IMAGES[case]
    (workspace / "x.png").write_bytes(make())
    before = snapshot(workspace)
    fails_cleanly(capsys, ["predict", workspace / "best.npz", workspace / "x.png"], f"x.png: {fragment}")
    fails_cleanly(capsys, ["show", "features", workspace / "best.npz", workspace / "x.png",
                           "--out", workspace / "f.png"], f"x.png: {fragment}")
    assert snapshot(workspace) == before and not os.path.exists("/tmp/juanji-ghostscript-ran")


def test_skip_bad_leaves_out_every_refused_image(tmp_path, capsys):
    folder = image_folder_with(tmp_path / "pets", {"cat": 6, "dog": 6}, size=16)
    for i, case in enumerate(sorted(BAD_IMAGES)):
        (folder / "cat" / f"bad{i}.png").write_bytes(BAD_IMAGES[case][0]())
    argv = ["train", "--data", folder, "--out", tmp_path / "run", "--epochs", "1", "--image-size", "16",
            "--no-progress"]
    fails_cleanly(capsys, argv, "bad0.png: ", "--skip-bad leaves unreadable files out")
    assert main([str(a) for a in argv + ["--skip-bad"]]) == 0
    out = capsys.readouterr().out
    assert all(f"skipped {folder / 'cat' / f'bad{i}.png'}: " in out for i in range(len(BAD_IMAGES)))


# -- 4. a run directory is owned, locked and always continuable --------------------------------------
@pytest.mark.parametrize("files", [{"notes.txt": "my notes"}, {"best.npz": "not juanji's", "metrics.jsonl": "{}"},
                                   {"curves.png": "a picture of mine"}])
def test_out_on_a_folder_that_is_not_a_run_refuses(tmp_path, capsys, files):
    data = idx_folder(tmp_path / "data", count=16)
    (tmp_path / "mine").mkdir()
    for name, content in files.items():
        (tmp_path / "mine" / name).write_text(content)
    before = snapshot(tmp_path)
    fails_cleanly(capsys, ["train", "--data", data, "--out", tmp_path / "mine", "--no-progress"],
                  f"{tmp_path / 'mine'} is not a juanji run (it holds {', '.join(sorted(files))} and no config.json)")
    assert snapshot(tmp_path) == before


def _train_process(data, out, *extra):
    return subprocess.Popen([sys.executable, "-m", "juanji.cli", "train", "--data", str(data), "--out", str(out),
                             "--no-progress", "--epochs", "200", "--batch-size", "8", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_a_second_train_on_the_same_run_refuses_while_the_first_lives(tmp_path, capsys):
    data = idx_folder(tmp_path / "data", count=64)
    out = tmp_path / "run"
    first = _train_process(data, out)
    try:
        deadline = time.time() + 120
        while not (out / "checkpoints" / "epoch-001.npz").exists() and time.time() < deadline:
            time.sleep(0.05)
        assert first.poll() is None, first.communicate()
        message = f"{out} is in use by another juanji train (process {first.pid})"
        fails_cleanly(capsys, ["train", "--data", data, "--out", out, "--no-progress"], message)
        fails_cleanly(capsys, ["train", "--resume", "--out", out, "--epochs", "300", "--no-progress"], message)
        fails_cleanly(capsys, ["train", "--resume", "--out", out, "--no-progress"], message)
    finally:
        first.kill()                    # SIGKILL: no chance to release anything itself
        first.communicate()
    # the dead process's lock is no lock: the run continues where it stopped
    assert main(["train", "--resume", "--out", str(out), "--epochs", "2", "--no-progress"]) == 0
    assert (out / "checkpoints" / "epoch-002.npz").exists()


@pytest.mark.parametrize("how", ["train again", "resume"])
def test_a_run_stopped_in_its_first_epoch_restarts(tmp_path, capsys, how):
    data = idx_folder(tmp_path / "data", count=32)
    out = tmp_path / "run"
    process = _train_process(data, out, "--limit", "32")
    deadline = time.time() + 120
    while not (out / "config.json").exists() and time.time() < deadline:
        time.sleep(0.01)
    process.kill()
    process.communicate()
    shutil.rmtree(out / "checkpoints")
    (out / "checkpoints").mkdir()               # killed before its first checkpoint, whatever the timing
    (out / ".metrics.jsonl.x1y2.tmp").write_text("half a write")
    argv = ["train", "--out", out, "--epochs", "1", "--no-progress"]
    argv += ["--data", data] if how == "train again" else ["--resume"]
    assert main([str(a) for a in argv]) == 0
    printed = capsys.readouterr().out
    assert "no epoch of the run there had completed; starting it afresh" in printed if how == "train again" else \
        "no epoch had completed (no checkpoint yet), so the run starts from the beginning" in printed
    assert (out / "best.npz").exists() and not (out / ".metrics.jsonl.x1y2.tmp").exists()


def test_a_run_diverged_in_its_first_epoch_says_so_without_numpy_warnings(tmp_path):
    data = idx_folder(tmp_path / "data", count=64)
    out = tmp_path / "run"
    command = [sys.executable, "-m", "juanji.cli", "train", "--data", str(data), "--out", str(out), "--epochs", "1",
               "--batch-size", "8", "--lr", "1e30", "--no-progress"]
    result = subprocess.run(command, capture_output=True, text=True)
    err = one_line_exit_2(result, "loss became", "at epoch 1, step", "No epoch completed, so there is no checkpoint; "
                          "this starts the run afresh with a tenth of the learning rate (at most the default): ")
    promised = shlex.split(err.strip().rpartition("(at most the default): ")[2])     # exactly the command it names
    assert promised[:2] == ["juanji", "train"] and promised[promised.index("--lr") + 1] == "0.05", promised
    result = subprocess.run([sys.executable, "-m", "juanji.cli", *promised[1:]], capture_output=True, text=True)
    assert result.returncode == 0 and "starting it afresh" in result.stdout, result.stderr


@pytest.mark.filterwarnings("error")        # no NumPy warning may leak either
def test_a_run_diverged_later_points_to_its_last_checkpoint_which_exists(tmp_path):
    data = idx_folder(tmp_path / "data", count=32)
    trainer = Trainer(TrainConfig(data=str(data), epochs=1, batch_size=16, out=str(tmp_path / "run")), progress=False)
    trainer.fit()
    trainer.config.epochs, trainer.start_epoch = 2, 1
    trainer.optimizer.lr = 1e30
    with pytest.raises(TrainingDiverged) as caught:
        trainer.fit()
    last = str(tmp_path / "run" / "checkpoints" / "epoch-001.npz")
    assert f"The last good checkpoint, {last}, is kept" in str(caught.value) and os.path.isfile(last)


@pytest.mark.parametrize("lost", [["best.npz"], ["metrics.jsonl", "curves.png"], ["best.npz", "metrics.jsonl"],
                                  ["curves.png"]])
def test_a_kill_after_the_last_checkpoint_is_repaired_by_resume(run_dir, tmp_path, capsys, lost):
    run = copy_run(run_dir, tmp_path / "run")
    whole = snapshot(run)
    for name in lost:
        (run / name).unlink()
    (run / f".{lost[0]}.k1ll.tmp").write_bytes(b"half")
    assert main(["train", "--resume", "--out", str(run), "--epochs", "1", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "already trained for 1 epochs" in printed and "rewritten" in printed
    after = snapshot(run)
    assert after.keys() == whole.keys()
    assert after["best.npz"] == whole["best.npz"] and after["metrics.jsonl"] == whole["metrics.jsonl"]


def test_a_stale_best_npz_is_repaired_by_resume(tmp_path, capsys):
    """Killed after epoch 2's checkpoint but before its best.npz: best.npz still holds the other epoch."""
    data = idx_folder(tmp_path / "data", count=32)
    run = tmp_path / "run"
    assert main(["train", "--data", str(data), "--out", str(run), "--epochs", "2", "--batch-size", "8",
                 "--no-progress"]) == 0
    best = ckpt.load(run / "best.npz").meta["epoch"]
    (run / "best.npz").write_bytes((run / "checkpoints" / f"epoch-{3 - best:03d}.npz").read_bytes())
    capsys.readouterr()
    assert main(["train", "--resume", "--out", str(run), "--epochs", "2", "--no-progress"]) == 0
    assert f"best.npz rewritten from epoch {best}'s checkpoint" in capsys.readouterr().out
    assert ckpt.load(run / "best.npz").meta["epoch"] == best
    assert main(["eval", str(run)]) == 0


@pytest.mark.parametrize("target", ["fifo", "folder", "/dev/null"])
def test_output_onto_something_that_is_not_a_regular_file_refuses(run_dir, tmp_path, capsys, target):
    run = copy_run(run_dir, tmp_path / "run")
    if target == "fifo":
        os.mkfifo(tmp_path / "out.png")
    elif target == "folder":
        (tmp_path / "out.png").mkdir()
    path = target if target.startswith("/") else tmp_path / "out.png"
    before = snapshot(tmp_path)
    kind = {"fifo": "a FIFO (named pipe)", "folder": "a folder", "/dev/null": "a device"}[target]
    fails_cleanly(capsys, ["show", "curves", run, "--out", path], f"cannot write {path}: it is {kind}")
    fails_cleanly(capsys, ["show", "kernels", run, "--out", path], f"cannot write {path}: it is {kind}")
    assert snapshot(tmp_path) == before


def test_a_fifo_in_place_of_a_run_file_refuses_and_is_kept(run_dir, tmp_path, capsys):
    run = copy_run(run_dir, tmp_path / "run")
    (run / "curves.png").unlink()
    os.mkfifo(run / "curves.png")
    before = snapshot(tmp_path)
    fails_cleanly(capsys, ["train", "--resume", "--out", run, "--epochs", "2", "--no-progress"],
                  f"cannot write {run / 'curves.png'}: it is a FIFO (named pipe)")
    after = snapshot(tmp_path)
    assert json.loads(after.pop("run/config.json"))["epochs"] == 2      # the resumed run's config, rewritten
    del before["run/config.json"]
    assert after == before and stat.S_ISFIFO(os.stat(run / "curves.png").st_mode)


def test_resume_with_another_thread_count_says_so(run_dir, tmp_path, capsys):
    from juanji import get_num_threads, set_num_threads
    run = copy_run(run_dir, tmp_path / "run")
    recorded = ckpt.load(run / "checkpoints" / "epoch-001.npz").meta["threads"]
    other = 2 if recorded == 1 else 1
    before = get_num_threads()
    try:
        assert main(["train", "--resume", "--out", str(run), "--epochs", "2", "--no-progress",
                     "--threads", str(other)]) == 0
    finally:
        set_num_threads(before)
    assert (f"trained so far with {recorded} thread(s), now {other}: the results will differ from an "
            f"uninterrupted run in the last bits") in capsys.readouterr().out
    assert ckpt.load(run / "checkpoints" / "epoch-002.npz").meta["threads"] == other


# -- 5. messages: one line naming the file, field or argument ------------------------------------------
def test_data_that_is_a_file_or_missing(tmp_path, capsys):
    (tmp_path / "data.txt").write_text("not a folder")
    fails_cleanly(capsys, ["train", "--data", tmp_path / "data.txt", "--out", tmp_path / "r", "--no-progress"],
                  f"no MNIST-format data in {tmp_path / 'data.txt'}, which is a file, not a folder: looked for "
                  f"train-images-idx3-ubyte")
    fails_cleanly(capsys, ["train", "--data", tmp_path / "nope", "--out", tmp_path / "r", "--no-progress"],
                  f"{tmp_path / 'nope'}, which does not exist", "apt-get install dataset-fashion-mnist")
    assert sorted(os.listdir(tmp_path)) == ["data.txt"]


def test_show_misclassified_and_image_pictures_on_a_text_run(tmp_path, capsys):
    model = models.create("text_cnn", num_classes=5, vocab_size=27, seq_len=16)
    ckpt.save(tmp_path / "words.npz", model, epoch=1, config={"data": "words"},
              data={"classes": ["english", "german", "french", "spanish", "italian"], "normalization": None,
                    "input_shape": [16], "alphabet": "abcdefghijklmnopqrstuvwxyz"})
    (tmp_path / "x.png").write_bytes(b"")
    before = snapshot(tmp_path)
    fails_cleanly(capsys, ["show", "misclassified", tmp_path / "words.npz"], "words.npz: a text run; "
                                                                             "'show misclassified' draws images")
    fails_cleanly(capsys, ["show", "saliency", tmp_path / "words.npz", tmp_path / "x.png"],
                  "x.png: the model reads words (a text run), not images")
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("argv, fragment", [
    (["show", "saliency", "{ws}/best.npz", "{ws}/x.png", "--class", "nope"], "unknown class 'nope' (classes: 0, 1,"),
    (["show", "kernels", "{ws}/best.npz", "--layer", "9"], "no convolution layer named '9'; the convolution layers"),
    (["train", "--resume", "--no-progress"], "--resume needs --out RUN_DIR: the run to continue"),
    (["train", "--resume", "--out", "{ws}/nothing", "--no-progress"],
     "--resume: {ws}/nothing/config.json does not exist"),
    (["summary", "lenet5", "--input", "28x28"],
     "--input must look like 1x28x28 (channels x height x width), got '28x28'"),
])
def test_messages_name_the_argument(workspace, capsys, argv, fragment):
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(workspace / "x.png")
    before = snapshot(workspace)
    fails_cleanly(capsys, [a.format(ws=workspace) for a in argv], fragment.format(ws=workspace))
    assert snapshot(workspace) == before


def test_no_images_is_an_error_naming_the_call():
    from juanji.data.images import load_images
    with pytest.raises(ValueError, match="^load_images: no image files given$"):
        load_images([])


def test_a_wrong_dy_shape_names_the_layer_and_both_shapes():
    """Checked once for every layer by Module (tests/nn/test_backward_checks.py runs every layer class)."""
    model = models.create("lenet5")
    x = np.zeros((2, 1, 28, 28), np.float32)
    for dy in (np.ones((2, 9), np.float32), np.ones(10, np.float32), np.ones((2, 10, 1), np.float32)):
        model(x)
        with pytest.raises(ValueError) as caught:
            model.backward(dy)
        assert str(caught.value) == (f"Sequential: backward expected dy of shape (2, 10) (the shape of its "
                                     f"forward's output), got {dy.shape}")
    model[0](x)
    with pytest.raises(ValueError, match=r"^Conv2d\(1, 6, kernel_size=\(5, 5\).*: backward expected dy of shape "
                                         r"\(2, 6, 28, 28\) \(the shape of its forward's output\), got \(2, 6, 24, 24\)$"):
        model[0].backward(np.ones((2, 6, 24, 24), np.float32))


@pytest.mark.parametrize("name", ["lenet5", "resnet20"])
def test_a_batch_of_zero_images_gives_zero_outputs_as_in_pytorch(name):
    model = models.create(name, num_classes=10)
    x = np.zeros((0,) + tuple(model.input_shape), np.float32)
    assert model.eval()(x).shape == (0, 10)
    logits = model.train()(x)
    loss = nn.CrossEntropyLoss()
    assert np.isnan(loss(logits, np.zeros(0, np.int64)))      # PyTorch's mean over no samples
    assert model.backward(loss.backward()).shape == x.shape
