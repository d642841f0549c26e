"""``juanji train --tensorboard DIR``: the event files read back with TensorBoard's own reader — the scalars are
metrics.jsonl's, the histograms the weights', the kernel image the first convolution's."""
import json

import numpy as np
import pytest

from juanji import checkpoint as ckpt
from juanji.cli import main

event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator",
                                        reason="pip install tensorboard (the test extra)")
pytest.importorskip("tensorboardX", reason="pip install tensorboardX (the [tensorboard] extra)")


@pytest.mark.slow
def test_scalars_equal_metrics_jsonl_and_histograms_the_weights(tmp_path):
    run, board = tmp_path / "run", tmp_path / "board"
    assert main(["train", "--limit", "500", "--epochs", "2", "--out", str(run), "--tensorboard", str(board),
                 "--no-progress"]) == 0
    events = event_accumulator.EventAccumulator(str(board), size_guidance={"histograms": 0, "images": 0})
    events.Reload()
    with open(run / "metrics.jsonl") as f:
        metrics = [json.loads(line) for line in f]
    assert sorted(events.Tags()["scalars"]) == ["accuracy/test", "accuracy/train", "loss/test", "loss/train", "lr"]
    for tag, key in [("loss/train", "train_loss"), ("loss/test", "test_loss"), ("accuracy/train", "train_accuracy"),
                     ("accuracy/test", "test_accuracy"), ("lr", "lr")]:
        scalars = events.Scalars(tag)
        assert [s.step for s in scalars] == [1, 2]
        np.testing.assert_allclose([s.value for s in scalars], [m[key] for m in metrics], rtol=1e-6)  # float32

    weights = ckpt.load(str(run / "checkpoints" / "epoch-002.npz")).model_state
    names = [n for n in events.Tags()["histograms"] if n.startswith("weights/")]
    assert len(names) == 10 and "gradients/3.weight" in events.Tags()["histograms"]
    last = events.Histograms("weights/3.weight")[-1]
    assert last.step == 2 and last.histogram_value.num == weights["3.weight"].size == 2400
    assert last.histogram_value.sum == pytest.approx(float(weights["3.weight"].sum()), rel=1e-4, abs=1e-4)
    assert last.histogram_value.min == pytest.approx(float(weights["3.weight"].min()), rel=1e-6)

    (image,) = events.Tags()["images"]
    assert image == "kernels/0" and [i.step for i in events.Images(image)] == [1, 2]
    assert (events.Images(image)[-1].width, events.Images(image)[-1].height) == (17, 11)   # 3 × 2 kernels of 5×5

