"""What the compiled kernels cost before they pay: a fresh process's seconds from its start to the end of
its first ResNet-20 train step (batch 128, which runs the compiled batch norm and ReLU), on NumPy's kernels,
then on the compiled ones with an empty Numba cache (every kernel compiled) and once more from that cache
(what ``juanji train`` pays on every later start).  juanji only: nothing here imports torch."""
from __future__ import annotations

import subprocess
import sys
import tempfile

FIRST_STEP = """
import time
started = time.perf_counter()
import numpy as np
import juanji
from juanji.bench.juanji_side import JuanjiSide
juanji.set_kernels({kernels!r})
juanji.set_num_threads({threads})
side = JuanjiSide()
step = side.train_step(side.model("resnet20"))
rng = np.random.default_rng(0)
step(rng.random((128, 3, 32, 32), dtype=np.float32), rng.integers(0, 10, 128))
print(time.perf_counter() - started)
"""


def first_step_seconds(kernels: str, threads: int, env: dict) -> float:
    result = subprocess.run([sys.executable, "-c", FIRST_STEP.format(kernels=kernels, threads=threads)], env=env,
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"start-up worker ({kernels}) failed:\n{result.stderr}")
    return float(result.stdout.strip().splitlines()[-1])


def run_startup(threads: int, env: dict) -> dict:
    """{"numpy": s, "numba, empty cache": s, "numba, cached": s}: start to the end of the first step."""
    with tempfile.TemporaryDirectory() as cache:
        compiled_env = dict(env, NUMBA_CACHE_DIR=cache)
        return {"numpy": first_step_seconds("numpy", threads, env),
                "numba, empty cache": first_step_seconds("numba", threads, compiled_env),
                "numba, cached": first_step_seconds("numba", threads, compiled_env)}


def format_startup(seconds: dict, threads: int) -> str:
    return (f"Start-up, from a fresh process's start to the end of its first ResNet-20 train step (batch 128, "
            f"{threads} threads): NumPy's kernels {seconds['numpy']:.1f} s; compiled kernels "
            f"{seconds['numba, empty cache']:.1f} s with an empty Numba cache (compiling them), "
            f"{seconds['numba, cached']:.1f} s from the cache (every later start).")
