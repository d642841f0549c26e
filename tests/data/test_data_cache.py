"""The data cache's lock (juanji/data/cache.py over ``juanji.io.held_lock``): one process at a time holds a
source, the source is built once however many processes ask for it at once, and no ``.lock`` file stays
behind, although each holder removes the lock file that others are waiting on."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from juanji.data import cache

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Each process enters the same source ROUNDS times; inside, it claims a marker file that must not exist
# (O_EXCL: another holder inside at the same time fails it), the first one in builds and stores the array.
CONTENDER = textwrap.dedent("""
    import os, sys, time
    import numpy as np
    from juanji.data import cache

    folder, rounds = sys.argv[1], int(sys.argv[2])
    while not os.path.exists(os.path.join(folder, "go")):     # all start together
        time.sleep(0.001)
    for _ in range(rounds):
        with cache.entry("contended", "v1") as cached:
            inside = os.open(os.path.join(folder, "inside"), os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            if cached.array is None:
                with open(os.path.join(folder, f"built-by-{os.getpid()}"), "w"):
                    pass
                cached.store(np.arange(1000))
            time.sleep(0.0005)
            os.close(inside)
            os.unlink(os.path.join(folder, "inside"))
""")


@pytest.fixture
def cache_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "juanji" / "data"


def test_no_lock_file_stays_after_building_or_mapping(cache_home):
    for _ in range(2):                  # built, then mapped
        with cache.entry("source", "v1") as cached:
            assert (cache_home / "source.lock").exists()        # held while inside
            array = cached.array if cached.array is not None else cached.store(np.arange(5))
        assert isinstance(array, np.memmap)
        assert sorted(os.listdir(cache_home)) == ["source-v1.npy"]


def test_no_lock_file_stays_after_an_error_inside(cache_home):
    with pytest.raises(ZeroDivisionError):
        with cache.entry("source", "v1"):
            1 / 0
    assert os.listdir(cache_home) == []


def test_a_stale_lock_file_of_an_older_juanji_is_taken_and_removed(cache_home):
    cache_home.mkdir(parents=True)
    (cache_home / "source.lock").write_bytes(b"")          # what earlier versions left behind
    with cache.entry("source", "v1") as cached:
        cached.store(np.arange(3))
    assert sorted(os.listdir(cache_home)) == ["source-v1.npy"]


def test_processes_asking_at_once_take_turns_and_build_once(tmp_path, cache_home):
    processes, rounds = 4, 40
    env = dict(os.environ, PYTHONPATH=ROOT)
    workers = [subprocess.Popen([sys.executable, "-c", CONTENDER, str(tmp_path), str(rounds)], env=env,
                                stderr=subprocess.PIPE, text=True) for _ in range(processes)]
    (tmp_path / "go").touch()
    try:
        errors = [worker.communicate(timeout=60)[1] for worker in workers]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
    assert [worker.returncode for worker in workers] == [0] * processes, "\n".join(errors)   # never two inside
    assert len(list(tmp_path.glob("built-by-*"))) == 1
    assert sorted(os.listdir(cache_home)) == ["contended-v1.npy"]
    np.testing.assert_array_equal(np.load(cache_home / "contended-v1.npy"), np.arange(1000))
