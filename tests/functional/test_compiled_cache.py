"""Compiled loops are cached in a folder only the user can write (Numba's cache index is a pickle: a folder
others can write would let them choose what juanji runs); a folder others may write is not used."""
import os
import stat
import subprocess
import sys

import pytest

pytest.importorskip("numba", reason="pip install 'juanji[fast]'")

RUN_A_KERNEL = ("import numpy as np; from juanji.functional.compiled import CACHE, activation; "
                "activation.relu(np.ones(10, np.float32)); print(CACHE)")


def run(home):
    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_CACHE_DIR", "XDG_CACHE_HOME")}
    result = subprocess.run([sys.executable, "-c", RUN_A_KERNEL], env={**env, "HOME": str(home)},
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_the_cache_is_a_folder_of_the_users_own(tmp_path):
    assert run(tmp_path) == "True"
    folder = tmp_path / ".cache" / "juanji" / "numba"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700 and folder.stat().st_uid == os.getuid()
    assert any(name.endswith(".nbi") for _, _, names in os.walk(folder) for name in names)


def test_a_folder_others_may_write_is_not_used(tmp_path):
    folder = tmp_path / ".cache" / "juanji" / "numba"
    folder.mkdir(parents=True)
    folder.chmod(0o777)
    assert run(tmp_path) == "False"            # compiled, not cached
    assert list(folder.iterdir()) == []
