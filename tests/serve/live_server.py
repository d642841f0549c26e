"""``juanji serve`` started as a real process on a free port, for the API and browser tests."""
import contextlib
import re
import subprocess
import sys
import threading


@contextlib.contextmanager
def serving(*arguments):
    """Run ``juanji serve ARGUMENTS --port 0`` and yield its base URL (``http://127.0.0.1:PORT``); stop it after."""
    with serving_process(*arguments) as (url, _):
        yield url


@contextlib.contextmanager
def serving_process(*arguments):
    """``serving``, yielding (base URL, the server's ``Popen``) for a test that watches the process itself."""
    process = subprocess.Popen([sys.executable, "-m", "juanji.cli", "serve", *map(str, arguments), "--port", "0"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    watchdog = threading.Timer(120, process.kill)          # a server that never says where it listens
    watchdog.start()
    try:
        line = process.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        assert match, f"juanji serve did not start: {line!r} {process.stderr.read() if not line else ''}"
        yield f"http://127.0.0.1:{match.group(1)}", process
    finally:
        watchdog.cancel()
        process.terminate()
        process.wait(timeout=20)
