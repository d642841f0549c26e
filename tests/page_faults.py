"""Page faults of a loop that allocates, writes and frees 4 MiB arrays, in a fresh process: under 100 where
malloc keeps freed memory (``juanji.runtime.allocator``), over 20,000 where glibc's defaults unmap it."""
import os
import subprocess
import sys

# Run SETUP, then allocate, write and free a 4 MiB array 50 times; print the page faults of the last 40 rounds.
SCRIPT = """
import contextlib, io, resource, numpy as np
{setup}
def rounds(k):
    for _ in range(k):
        a = np.empty(1 << 20, np.float32); a.fill(1); b = np.empty(1 << 20, np.float32); b.fill(2); del a, b
rounds(10)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
rounds(40)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def run(setup: str, setting: str = "1") -> list[str]:
    """The words SETUP and the loop print, with ``JUANJI_KEEP_FREED_MEMORY=setting``; the last is the faults."""
    env = {**os.environ, "JUANJI_KEEP_FREED_MEMORY": setting}
    return subprocess.run([sys.executable, "-c", SCRIPT.format(setup=setup)], env=env, capture_output=True,
                          text=True, check=True).stdout.split()
