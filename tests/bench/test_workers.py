"""A worker is set up as its framework's users run it: juanji's keeps freed memory (as juanji's command
line) and never imports torch, PyTorch's leaves malloc alone; an epoch worker reports an RSS after import
below its peak and the time of each of its epochs (a few batches of Fashion-MNIST here; the benchmark
runs full epochs); a rows worker times LeNet-5 at batch 1 and the hand-off of one split; a scaling worker
reports its point's time and memory."""
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


ROWS = ("import json; import numpy as np; from juanji.bench.workers import handoff_rows, model_rows, start_worker; "
        "side = start_worker({framework!r}, 2); rows = model_rows(side, 'lenet5', np.random.default_rng(0), 0.01); "
        "rows.update(handoff_rows(side, 0.01)); print(json.dumps(rows))")


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_a_worker_times_lenet5_at_batch_1_and_one_split_over_two_threads_against_the_same_call_unsplit(framework):
    run = subprocess.run([sys.executable, "-c", ROWS.format(framework=framework)], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    rows = json.loads(run.stdout)
    assert list(rows) == ["train step lenet5 b1", "train step lenet5 b64", "train step lenet5 b256",
                          "inference lenet5 b1", "inference lenet5 b256", "split in 2", "not split"]
    assert all(0 < best <= median for best, median in rows.values())
    assert rows["split in 2"][0] > rows["not split"][0]     # handing work to a second thread is never free


def test_a_scaling_worker_reports_the_time_and_memory_of_its_point():
    run = subprocess.run([sys.executable, "-m", "juanji.bench", "--worker", "juanji", "--scaling", "--series",
                          "resnet18-train", "--at", "64", "--threads", "1", "--quick"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    point = json.loads(run.stdout.splitlines()[-1])
    assert 0 < point["seconds"][0] <= point["seconds"][1]
    # ResNet-18's 11 M parameters alone, with their gradients and momentum, take over 100 MiB
    assert 100 < point["peak RSS MiB"] - point["import RSS MiB"]
