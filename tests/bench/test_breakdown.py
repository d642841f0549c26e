"""The benchmark's breakdown of a juanji train step: every leaf layer type is accounted for, and the
command runs where torch cannot be imported (the timing table itself runs from the README, not here)."""
import os
import subprocess
import sys

from threadpoolctl import threadpool_limits

from juanji.bench.breakdown import format_breakdown, run_breakdown


def test_breakdown_accounts_for_every_leaf_layer_type_and_the_step():
    with threadpool_limits(1):
        result = run_breakdown("lenet5", batch=8, steps=2)
    parts = result["parts"]
    for label in ("Conv2d forward", "Conv2d backward", "MaxPool2d forward", "ReLU backward", "Linear forward",
                  "loss forward+backward", "SGD momentum step"):
        assert parts[label] > 0, label
    assert sum(parts.values()) <= result["step"] * 1.01
    table = format_breakdown("lenet5", 8, 1, result)
    assert table.splitlines()[0].startswith("juanji train step, lenet5 at batch 8, 1 thread(s)")
    assert "| Conv2d backward |" in table


def test_breakdown_command_needs_no_torch(tmp_path):
    # sitecustomize runs at the start of every Python process with tmp_path on its path, the worker
    # that the command spawns included: importing torch there fails.
    (tmp_path / "sitecustomize.py").write_text("import sys\nsys.modules['torch'] = None\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")])))
    check = subprocess.run([sys.executable, "-c", "import torch"], env=env, capture_output=True, text=True)
    assert check.returncode != 0 and "import of torch halted" in check.stderr
    result = subprocess.run([sys.executable, "-m", "juanji.bench", "--breakdown", "resnet20", "--batch", "2",
                             "--threads", "1"], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("juanji train step, resnet20 at batch 2, 1 thread(s)")
    assert "| PadShortcut forward |" in result.stdout
