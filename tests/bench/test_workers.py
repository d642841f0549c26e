"""A worker is set up as its framework's users run it: juanji's keeps freed memory (as juanji's command
line) and never imports torch, PyTorch's leaves malloc alone; an epoch worker reports an RSS after import
below its peak and the time of each of its epochs (a few batches of Fashion-MNIST here; the benchmark
runs full epochs)."""
import json
import platform
import subprocess
import sys

import pytest

from juanji.bench.workers import FRAMEWORKS
from page_faults import run

CODE = ("import json, sys; from juanji.bench.workers import run_epoch; "
        "result = run_epoch({framework!r}, 1, limit=640, epochs=2); result['torch imported'] = 'torch' in sys.modules; "
        "print(json.dumps(result))")


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_epoch_worker_reports_time_and_memory_of_its_own_process(framework):
    run = subprocess.run([sys.executable, "-c", CODE.format(framework=framework)], capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["torch imported"] == (framework == "pytorch")
    assert len(result["epoch seconds"]) == 2 and min(result["epoch seconds"]) > 0
    assert 10 < result["import RSS MiB"] < result["peak RSS MiB"]


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_juanji_workers_keep_freed_memory_and_pytorch_workers_leave_malloc_alone():
    setup = "from juanji.bench.workers import start_worker; start_worker({!r}, 1)"
    assert int(run(setup.format("juanji"))[-1]) < 100         # 80 arrays of 1,024 pages: none faulted again
    assert int(run(setup.format("pytorch"))[-1]) > 20_000     # glibc's default unmaps and faults them in
