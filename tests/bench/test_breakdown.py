"""The benchmark's breakdown of a train step (the timing table itself runs from the README, not here)."""
from juanji import bench


def test_breakdown_accounts_for_every_leaf_layer_type_and_the_step():
    result = bench.run_breakdown_worker("lenet5", batch=8, threads=1, steps=2)
    parts = result["parts"]
    for label in ("Conv2d forward", "Conv2d backward", "MaxPool2d forward", "ReLU backward", "Linear forward",
                  "loss forward+backward", "SGD momentum step"):
        assert parts[label] > 0, label
    assert sum(parts.values()) <= result["step"] * 1.01
    table = bench.format_breakdown("lenet5", 8, 1, result)
    assert table.splitlines()[0].startswith("juanji train step, lenet5 at batch 8, 1 thread(s)")
    assert "| Conv2d backward |" in table
