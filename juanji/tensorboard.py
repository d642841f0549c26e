"""``juanji train --tensorboard DIR``: a run as TensorBoard event files, written by tensorboardX with NumPy
alone (the ``[tensorboard]`` extra), so that runs can be watched and compared in TensorBoard."""
from __future__ import annotations

import numpy as np

from .viz.kernels import conv_layers, kernel_grid

# TensorBoard tag → key of a metrics.jsonl line
SCALARS = {"loss/train": "train_loss", "loss/test": "test_loss", "accuracy/train": "train_accuracy",
           "accuracy/test": "test_accuracy", "lr": "lr"}


class TensorBoardWriter:
    """After each epoch: the scalars of its metrics.jsonl line, a histogram of every parameter and of its
    gradient (from the epoch's last training step: the grads arrays keep the last backward), and the first
    convolution's kernels as an image (``viz.kernels.kernel_grid``, 0 mid-gray, one scale for the layer)."""

    def __init__(self, log_dir: str):
        try:
            from tensorboardX import SummaryWriter
        except ImportError:
            raise RuntimeError("--tensorboard needs the [tensorboard] extra: "
                               "pip install 'juanji[tensorboard]'") from None
        self.writer = SummaryWriter(log_dir)

    def write_epoch(self, metrics: dict, model) -> None:
        step = metrics["epoch"]
        for tag, key in SCALARS.items():
            self.writer.add_scalar(tag, metrics[key], step)
        for name, param, grad in model.parameters():
            self.writer.add_histogram(f"weights/{name}", param, step)
            self.writer.add_histogram(f"gradients/{name}", grad, step)
        convolutions = conv_layers(model)
        if convolutions:
            name, layer = convolutions[0]
            rgb = layer.params["weight"].shape[1] == 3
            grid = np.nan_to_num(kernel_grid(layer.params["weight"], rgb=rgb), nan=1.0)   # borders white
            self.writer.add_image(f"kernels/{name}", grid, step, dataformats="HWC" if rgb else "HW")
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
