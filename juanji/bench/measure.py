"""How a figure is taken: the time of a call (min and median over repeats) and the process's memory."""
from __future__ import annotations

import os
import resource
import statistics
import sys
import time


def timed(function, min_repeats=5, budget=1.0, warmup=2):
    """(min, median) seconds of ``function()`` over at least ``min_repeats`` runs or ``budget`` seconds."""
    for _ in range(warmup):
        function()
    times, started = [], time.perf_counter()
    while len(times) < min_repeats or (time.perf_counter() - started < budget and len(times) < 50):
        t0 = time.perf_counter()
        function()
        times.append(time.perf_counter() - t0)
    return min(times), statistics.median(times)


def rss_mib() -> float:
    """The resident set size of this process now, in MiB (Linux's /proc; elsewhere the peak so far)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20
    except (OSError, ValueError, IndexError):
        return peak_rss_mib()


def peak_rss_mib() -> float:
    """The highest resident set size of this process so far, in MiB (``ru_maxrss``: bytes on macOS,
    KiB elsewhere)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2 ** 20 if sys.platform == "darwin" else peak / 1024
