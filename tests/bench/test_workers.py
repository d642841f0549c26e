"""An epoch worker measures its own process: juanji's never imports torch, and both report an RSS after
import below their peak (a few batches of Fashion-MNIST here; the benchmark runs the full epoch)."""
import json
import subprocess
import sys

import pytest

from juanji.bench.workers import FRAMEWORKS

CODE = ("import json, sys; from juanji.bench.workers import run_epoch; "
        "result = run_epoch({framework!r}, 1, limit=640); result['torch imported'] = 'torch' in sys.modules; "
        "print(json.dumps(result))")


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_epoch_worker_reports_time_and_memory_of_its_own_process(framework):
    run = subprocess.run([sys.executable, "-c", CODE.format(framework=framework)], capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["torch imported"] == (framework == "pytorch")
    assert result["epoch seconds"] > 0
    assert 10 < result["import RSS MiB"] < result["peak RSS MiB"]
