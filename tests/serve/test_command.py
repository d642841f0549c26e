"""``juanji serve`` on the command line: names of the runs, and its one-line errors (exit 2) before serving."""
import socket
import subprocess
import sys

import pytest

from juanji.cli import main
from juanji.commands.serve import run_names


def test_run_names_are_the_folder_names_made_distinct(tmp_path):
    (tmp_path / "best.npz").write_bytes(b"")
    assert run_names(["runs/lenet5", "other/lenet5/", "runs/resnet20", "runs/lenet5"]) == [
        "lenet5", "lenet5-2", "resnet20", "lenet5-3"]
    assert run_names([str(tmp_path / "best.npz")]) == ["best"]


def test_a_taken_port_or_a_folder_that_is_no_run_ends_in_one_line(tiny_run, tmp_path, capsys):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    try:
        assert main(["serve", str(tiny_run), "--port", str(taken.getsockname()[1])]) == 2
        assert capsys.readouterr().err.startswith(f"juanji: error: cannot listen on 127.0.0.1:{taken.getsockname()[1]}")
    finally:
        taken.close()
    assert main(["serve", str(tmp_path), "--port", "0"]) == 2
    assert "a folder without best.npz, not a juanji run" in capsys.readouterr().err
    assert main(["serve", str(tiny_run), "--port", "70000"]) == 2
    assert "--port must be between 0 and 65535" in capsys.readouterr().err


def test_serve_is_in_the_help():
    help_text = subprocess.run([sys.executable, "-m", "juanji.cli", "serve", "--help"], capture_output=True, text=True,
                               timeout=60).stdout
    assert "--host" in help_text and "127.0.0.1" in help_text


@pytest.mark.slow
def test_a_text_run_is_refused_in_one_line(text_run, capsys):
    assert main(["serve", str(text_run), "--port", "0"]) == 2
    assert capsys.readouterr().err == f"juanji: error: {text_run}: a text run; the page shows image models only\n"
