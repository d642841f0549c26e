"""``juanji show curves / confusion / misclassified`` and the errors every show command shares."""
import json

import numpy as np
import pytest
from png_check import read_png

from juanji.cli import main
from juanji.metrics import confusion_matrix


def test_confusion_matrix_counts_true_by_predicted():
    matrix = confusion_matrix(np.array([0, 0, 1, 2, 2, 2]), np.array([0, 1, 1, 2, 0, 2]), 3)
    np.testing.assert_array_equal(matrix, [[1, 1, 0], [0, 1, 0], [1, 0, 2]])


def test_show_curves_of_two_runs_on_one_figure(tiny_run, tmp_path, capsys, monkeypatch):
    other = tmp_path / "other"
    other.mkdir()
    lines = (tiny_run / "metrics.jsonl").read_text().splitlines()
    history = [json.loads(line) for line in lines]
    history.append({**history[0], "epoch": 2, "test_accuracy": 0.7, "train_loss": 0.9, "test_loss": 1.0})
    (other / "metrics.jsonl").write_text("".join(json.dumps(m) + "\n" for m in history))
    monkeypatch.chdir(tmp_path)
    assert main(["show", "curves", str(tiny_run), str(other)]) == 0
    assert capsys.readouterr().out.strip() == "curves.png"
    read_png(tmp_path / "curves.png", min_width=800, min_height=300)


def test_show_curves_of_a_folder_without_metrics_is_an_error(tmp_path, capsys):
    assert main(["show", "curves", str(tmp_path)]) == 2
    assert "no metrics.jsonl" in capsys.readouterr().err


def test_show_confusion_and_misclassified(tiny_run, capsys):
    assert main(["show", "confusion", str(tiny_run)]) == 0
    assert capsys.readouterr().out.strip() == str(tiny_run / "confusion.png")
    read_png(tiny_run / "confusion.png", min_width=600, min_height=500)
    assert main(["show", "misclassified", str(tiny_run), "--count", "12"]) == 0
    assert capsys.readouterr().out.strip() == str(tiny_run / "misclassified.png")
    read_png(tiny_run / "misclassified.png", min_width=600, min_height=300)


def test_a_checkpoint_file_writes_into_the_current_folder(tiny_run, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["show", "kernels", str(tiny_run / "checkpoints" / "epoch-001.npz")]) == 0
    assert capsys.readouterr().out.strip() == "kernels-0.png"
    read_png(tmp_path / "kernels-0.png")


def _png_bytes():
    import io
    from PIL import Image
    buffer = io.BytesIO()
    Image.fromarray(np.arange(784, dtype=np.uint8).reshape(28, 28)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize("command", ["saliency", "features"])
@pytest.mark.parametrize("content, message", [
    (b"", "empty file"),
    (b"plain text", "not an image file"),
    (_png_bytes()[:70], "truncated or corrupt"),
], ids=["empty", "text", "truncated"])
def test_bad_image_files_are_one_line_errors(tiny_run, tmp_path, capsys, command, content, message):
    path = tmp_path / "bad.png"
    path.write_bytes(content)
    assert main(["show", command, str(tiny_run), str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"juanji: error: bad.png: {message}") and err.count("\n") == 1
    assert not (tiny_run / f"{command}-bad.png").exists()
