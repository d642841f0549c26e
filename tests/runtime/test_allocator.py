"""juanji.runtime.allocator: an explicit choice — after ``keep_freed_memory()`` (which the command line
makes) freed arrays are reused instead of page-faulted in again; a library import leaves malloc alone."""
import platform

import pytest

from juanji.runtime import allocator
from page_faults import run as _run

LIBRARY = "import juanji, juanji.nn, juanji.models, juanji.optim, juanji.train"
EXPLICIT = "from juanji.runtime.allocator import keep_freed_memory; print(keep_freed_memory())"
COMMAND_LINE = "from juanji.cli import main\nwith contextlib.redirect_stdout(io.StringIO()): main(['models'])"

glibc = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")


@glibc
def test_freed_arrays_are_reused_after_keep_freed_memory_and_not_after_a_library_import():
    returned, kept = _run(EXPLICIT)
    assert returned == "True" and int(kept) < 100, kept     # 80 arrays of 1,024 pages each: nothing faults again
    library = int(_run(LIBRARY)[0])
    assert library > 20_000, library             # glibc's default unmaps and faults them in every round


@glibc
def test_the_command_line_turns_the_policy_on_and_the_environment_off():
    assert int(_run(COMMAND_LINE)[0]) < 100
    assert int(_run(COMMAND_LINE, setting="0")[0]) > 20_000
    returned, faults = _run(EXPLICIT, setting="0")
    assert returned == "False" and int(faults) > 20_000


@glibc
def test_keep_freed_memory_reports_success(monkeypatch):
    monkeypatch.delenv("JUANJI_KEEP_FREED_MEMORY", raising=False)
    assert allocator.keep_freed_memory() is True


@pytest.mark.parametrize("value, enabled", [("1", True), ("0", False), ("off", False), ("no", False), ("", True)])
def test_the_environment_switch(monkeypatch, value, enabled):
    monkeypatch.setenv("JUANJI_KEEP_FREED_MEMORY", value)
    assert allocator.enabled_by_environment() is enabled
