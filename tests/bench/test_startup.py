"""The benchmark's columns include the compiled kernels where Numba is installed; the start-up figure
compiles them in an empty Numba cache of its own, then loads them from it, and the cached start is the
shorter."""
import os

import pytest

from juanji.bench.conductor import sides
from juanji.bench.startup import format_startup, run_startup
from juanji.runtime.kernels import numba_available


def test_sides_time_juanji_on_both_kernels_where_numba_is_installed():
    expected = ["juanji numpy", *(["juanji numba"] if numba_available() else []), "PyTorch"]
    assert list(sides()) == expected


@pytest.mark.slow
def test_startup_compiles_once_then_loads_from_the_cache():
    if not numba_available():
        pytest.skip("needs the fast extra (Numba)")
    seconds = run_startup(1, dict(os.environ))
    assert seconds["numba, cached"] < seconds["numba, empty cache"]
    assert all(value > 0 for value in seconds.values())
    line = format_startup(seconds, 1)
    assert f"{seconds['numba, empty cache']:.1f} s with an empty Numba cache" in line
