"""The juanji command: eval, predict, models, and its one-line errors (exit 2) on bad input."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from juanji import checkpoint as ckpt
from juanji.cli import main
from juanji.data import load_mnist


@pytest.fixture(scope="module")
def test_images(tmp_path_factory):
    """The first 5 Fashion-MNIST test images as PNG, JPG and BMP files, with their labels."""
    folder = tmp_path_factory.mktemp("images")
    test = load_mnist(train=False, limit=5)
    paths = []
    for i, (image, label) in enumerate(zip(test.images, test.labels)):
        pixels = (image[0] * 255).round().astype(np.uint8)
        suffix = ("png", "jpg", "bmp")[i % 3]
        path = folder / f"{i}.{suffix}"
        Image.fromarray(pixels).save(path)
        paths.append((path, test.classes[label]))
    return paths


def test_train_writes_the_run_directory(lenet5_run, capsys):
    names = {p.name for p in lenet5_run.iterdir()}
    assert {"config.json", "metrics.jsonl", "curves.png", "best.npz", "checkpoints"} <= names
    assert (lenet5_run / "checkpoints" / "epoch-001.npz").exists()


def test_a_collapsed_model_is_reported_and_the_advice_given_trains(tmp_path, capsys):
    """lr 0.05 with momentum 0.9 and no warm-up on 4,000 images, seed 0: every test image one class (the
    defaults, with one epoch of warm-up before the cosine, train)."""
    collapse = ["train", "--epochs", "1", "--limit", "4000", "--lr", "0.05", "--momentum", "0.9", "--seed", "0",
                "--no-progress"]
    assert main([*collapse, "--out", str(tmp_path / "default")]) == 0       # the defaults warm up: no collapse
    assert "it has collapsed" not in capsys.readouterr().out
    collapse.insert(1, "--warmup-epochs=0")
    assert main([*collapse, "--out", str(tmp_path / "collapsed")]) == 0
    out = capsys.readouterr().out
    assert "epoch 1: the model predicts one class for every test sample: it has collapsed" in out
    assert "acc 0.1000" in out
    assert main([*collapse, "--warmup-epochs=1", "--out", str(tmp_path / "warm")]) == 0
    out = capsys.readouterr().out
    assert "it has collapsed" not in out
    history = [json.loads(line) for line in (tmp_path / "warm" / "metrics.jsonl").read_text().splitlines()]
    assert history[-1]["predicted_classes"] == 10 and history[-1]["test_accuracy"] > 0.5


def test_eval_prints_accuracy_and_confusion_matrix(lenet5_run, capsys):
    assert main(["eval", str(lenet5_run)]) == 0
    out = capsys.readouterr().out
    accuracy = float(out.split("test accuracy ")[1].split()[0])
    saved = ckpt.load(lenet5_run / "best.npz").meta["metrics"]["test_accuracy"]
    assert accuracy == pytest.approx(saved, abs=1e-9)
    lines = out.splitlines()
    rows = lines[lines.index("confusion matrix (rows: true class, columns: predicted class)") + 2:]
    assert len(rows) == 10 and rows[9].split()[:3] == ["9", "Ankle", "boot"]
    counts = np.array([[int(v) for v in row.split()[-10:]] for row in rows])
    assert counts.sum() == 10_000 and np.trace(counts) == round(accuracy * 10_000)


def test_predict_ranks_classes_of_png_jpg_bmp_files(lenet5_run, test_images, capsys):
    assert main(["predict", str(lenet5_run / "best.npz"), *[str(p) for p, _ in test_images]]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == len(test_images)
    hits = 0
    for line, (path, label) in zip(lines, test_images):
        assert line.startswith(f"{path}: ")
        ranked = line.split(": ", 1)[1].split(", ")
        probabilities = [float(item.rsplit(" ", 1)[1]) for item in ranked]
        assert len(ranked) == 3 and probabilities == sorted(probabilities, reverse=True)
        assert sum(probabilities) <= 1.0 + 1e-6
        hits += any(item.rsplit(" ", 1)[0] == label for item in ranked)
    assert hits >= 4          # a model trained for 1 epoch on 3,000 images has nearly all of them in its top 3


def test_models_lists_the_zoo(capsys):
    assert main(["models"]) == 0
    assert "lenet5" in capsys.readouterr().out


def test_threads_option_sets_blas_and_kernel_threads(capsys):
    from juanji import get_num_threads, set_num_threads
    before = get_num_threads()
    try:
        assert main(["models", "--threads", "1"]) == 0
        assert get_num_threads() == 1
        assert main(["models", "--threads", "0"]) == 2
        assert "positive number of threads" in capsys.readouterr().err
    finally:
        set_num_threads(before)


def test_kernels_option_and_environment_choose_the_backend_and_version_reports_it(capsys, monkeypatch):
    from juanji.runtime import kernels
    monkeypatch.setattr(kernels, "_chosen", None)
    assert main(["models", "--kernels", "numpy"]) == 0 and kernels.get_kernels() == "numpy"
    monkeypatch.setattr(kernels, "_chosen", None)
    monkeypatch.setenv("JUANJI_KERNELS", "fortran")
    capsys.readouterr()
    assert main(["models"]) == 2
    assert capsys.readouterr().err == ("juanji: error: JUANJI_KERNELS: kernels must be one of numpy, numba, "
                                       "got 'fortran'\n")
    for environment, shown in (("numpy", "numpy"), ("numba", "numba" if kernels.numba_available() else "need Numba")):
        version = subprocess.run([sys.executable, "-m", "juanji.cli", "--version"], capture_output=True, text=True,
                                 env={**os.environ, "JUANJI_KERNELS": environment})
        assert version.returncode == 0 and version.stdout.startswith("juanji 0.1.0 (kernels: ")
        # the plans of typical layers on those kernels (none where the kernels cannot be had)
        assert ("| conv 64→64 @8 3×3 | winograd |" in version.stdout) == (shown == "numba")
        assert ("| conv 16→16 @32 3×3 | direct | winograd | winograd |" in version.stdout) == (shown == "numba")
        assert ("| conv 64→64 @8 3×3 | im2col |" in version.stdout) == (shown == "numpy")
        assert shown in version.stdout


@pytest.mark.parametrize("make_file, message", [
    (lambda p: p.write_bytes(b""), "empty file"),
    (lambda p: p.write_text("not an image"), "not an image file"),
    (lambda p: p.write_bytes(_png_bytes()[:60]), "truncated or corrupt"),
])
def test_predict_rejects_bad_image_files(lenet5_run, tmp_path, capsys, make_file, message):
    path = tmp_path / "bad.png"
    make_file(path)
    assert main(["predict", str(lenet5_run), str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("juanji: error: bad.png: ") and message in err and "\n" not in err


def _png_bytes():
    import io
    buffer = io.BytesIO()
    Image.fromarray(np.arange(784, dtype=np.uint8).reshape(28, 28)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_existing_run_is_never_overwritten(lenet5_run, capsys):
    before = (lenet5_run / "best.npz").read_bytes()
    assert main(["train", "--out", str(lenet5_run), "--epochs", "1", "--no-progress"]) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert (lenet5_run / "best.npz").read_bytes() == before


def test_unknown_model_suggests_the_closest(capsys):
    assert main(["train", "--model", "lenet-5", "--no-progress"]) == 2
    assert "did you mean 'lenet5'" in capsys.readouterr().err


def test_missing_data_names_the_files_looked_for(tmp_path, capsys):
    assert main(["train", "--data", str(tmp_path), "--out", str(tmp_path / "r"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "train-images-idx3-ubyte" in err and "apt-get install dataset-fashion-mnist" in err


def test_errors_exit_2_without_traceback_unless_debug(tmp_path):
    bad = tmp_path / "model.npz"
    bad.write_bytes(b"\x80\x04pickled")
    result = subprocess.run([sys.executable, "-m", "juanji.cli", "eval", str(bad)], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip() == "juanji: error: model.npz: not a juanji checkpoint: not a zip archive " \
                                    "(a renamed pickle or other file?)"
    debug = subprocess.run([sys.executable, "-m", "juanji.cli", "--debug", "eval", str(bad)],
                           capture_output=True, text=True)
    assert debug.returncode == 1 and "Traceback" in debug.stderr


@pytest.mark.parametrize("subcommand, option, value, message", [
    ("class-model", "--steps", "-1", "must be at least 1, got '-1'"),
    ("class-model", "--lr", "nan", "must be finite, got 'nan'"),
    ("class-model", "--l2", "-0.5", "must be at least 0, got '-0.5'"),
    ("occlusion", "--size", "inf", "expected an integer, got 'inf'"),
    ("occlusion", "--stride", "0", "must be at least 1, got '0'"),
    ("misclassified", "--count", "0", "must be at least 1, got '0'"),
    ("masks", "--count", "1e9", "expected an integer, got '1e9'"),
])
def test_every_numeric_option_of_show_is_checked_before_any_work(lenet5_run, tmp_path, capsys, subcommand, option,
                                                                  value, message):
    """Out-of-range numbers once reached a traceback (class-model --steps -1) or a picture of NaNs (--lr nan)."""
    boot = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "images", "ankle-boot.png")
    image = [boot] if subcommand == "occlusion" else []
    with pytest.raises(SystemExit) as ended:
        main(["show", subcommand, str(lenet5_run), *image, option, value, "--out", str(tmp_path / "x.png")])
    assert ended.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == f"juanji show {subcommand}: error: argument {option}: {message}"
    assert not (tmp_path / "x.png").exists()
