"""A refusal as the project promises it: one line (``juanji: error: ...``), exit status 2, no traceback, and
every file left byte for byte as it was (``snapshot`` before and after)."""
import os

from juanji.cli import main


def snapshot(root):
    """{relative path: bytes} of every file under ``root`` (a FIFO or socket: its kind, never opened)."""
    files = {}
    for folder, _, names in os.walk(root):
        for name in names:
            path = os.path.join(folder, name)
            if not os.path.isfile(path):
                files[os.path.relpath(path, root)] = f"not a regular file, mode {os.lstat(path).st_mode:o}"
                continue
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


def one_line_exit_2(result, *fragments):
    """The same of a finished ``juanji`` process (a ``subprocess.CompletedProcess`` run with text=True)."""
    assert result.returncode == 2, result.stderr
    err = result.stderr
    assert err.startswith("juanji: error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in err, err
    return err
