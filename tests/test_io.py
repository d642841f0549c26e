"""The one atomic writer: replaces only regular files, leaves nothing half-written, cleans after kills."""
import os
import signal
import subprocess
import sys

import pytest

from juanji.io import remove_stale_temporaries, write_atomically, write_text


def test_write_replaces_a_regular_file_whole(tmp_path):
    path = tmp_path / "a.txt"
    write_text(path, "one")
    write_text(path, "two")
    assert path.read_text() == "two" and os.listdir(tmp_path) == ["a.txt"]


@pytest.mark.parametrize("kind", ["fifo", "folder", "device"])
def test_refuses_to_replace_what_is_not_a_regular_file(tmp_path, kind):
    path = tmp_path / "target"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "folder":
        path.mkdir()
        (path / "keep").write_text("kept")
    else:
        path = "/dev/null"
    with pytest.raises(OSError, match=f"cannot write {path}: it is a .*, not a regular file"):
        write_text(path, "x")
    assert sorted(os.listdir(tmp_path)) == ([] if kind == "device" else ["target"])
    if kind == "folder":
        assert (tmp_path / "target" / "keep").read_text() == "kept"


def test_a_killed_write_leaves_a_temporary_that_the_next_run_removes(tmp_path):
    target = tmp_path / "big.bin"
    target.write_bytes(b"previous")
    writer = ("import sys, time\nfrom juanji.io import write_atomically\n"
              "def slow(f):\n    f.write(b'half'); f.flush(); print('writing', flush=True); time.sleep(60)\n"
              f"write_atomically({str(target)!r}, slow)\n")
    process = subprocess.Popen([sys.executable, "-c", writer], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline() == "writing\n"
    process.send_signal(signal.SIGKILL)
    process.wait()
    left = [name for name in os.listdir(tmp_path) if name != "big.bin"]
    assert len(left) == 1 and left[0].startswith(".big.bin.") and left[0].endswith(".tmp")
    assert target.read_bytes() == b"previous"
    (tmp_path / ".hidden-but-mine.txt").write_text("not a temporary")
    assert remove_stale_temporaries(tmp_path) == [str(tmp_path / left[0])]
    assert sorted(os.listdir(tmp_path)) == [".hidden-but-mine.txt", "big.bin"]


def test_an_error_while_writing_leaves_the_target_and_no_temporary(tmp_path):
    path = tmp_path / "a.bin"
    path.write_bytes(b"old")

    def failing(f):
        f.write(b"new")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        write_atomically(path, failing)
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["a.bin"]
