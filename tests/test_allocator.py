"""juanji.allocator: after ``import juanji`` freed arrays are reused instead of page-faulted in again."""
import os
import platform
import subprocess
import sys

import pytest

from juanji import allocator

# Allocate, write and free a 4 MiB array 50 times; report the page faults of the last 40 rounds.
FAULTS = """
import resource, numpy as np
import juanji
def rounds(k):
    for _ in range(k):
        a = np.empty(1 << 20, np.float32); a.fill(1); b = np.empty(1 << 20, np.float32); b.fill(2); del a, b
rounds(10)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
rounds(40)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""

glibc = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")


def _faults(setting: str) -> int:
    env = {**os.environ, "JUANJI_KEEP_FREED_MEMORY": setting}
    return int(subprocess.run([sys.executable, "-c", FAULTS], env=env, capture_output=True, text=True,
                              check=True).stdout)


@glibc
def test_freed_arrays_are_reused_instead_of_faulted_in_again():
    kept, default = _faults("1"), _faults("0")
    assert kept < 100, kept                      # 80 arrays of 1,024 pages each: nothing faults again
    assert default > 20_000, default             # glibc's default unmaps and faults them in every round


@glibc
def test_keep_freed_memory_reports_success():
    assert allocator.keep_freed_memory() is True


@pytest.mark.parametrize("value, enabled", [("1", True), ("0", False), ("off", False), ("no", False), ("", True)])
def test_the_environment_switch(monkeypatch, value, enabled):
    monkeypatch.setenv("JUANJI_KEEP_FREED_MEMORY", value)
    assert allocator.enabled_by_environment() is enabled
