"""``juanji train --tensorboard DIR``: a run as TensorBoard event files, written with tensorboardX's summaries
and record writer and NumPy alone (the ``[tensorboard]`` extra), so that runs can be watched and compared in
TensorBoard.

The events are written in the training's own thread, and each epoch's are flushed to disk before it goes on:
tensorboardX's ``SummaryWriter`` writes from a thread of its own, which a full disk kills, after which its
queue fills and the training waits forever.  Here a failed write (ENOSPC, EFBIG, EIO ...) is an ``OSError``
naming the folder, raised where juanji's error handling sees it."""
from __future__ import annotations

import contextlib
import os
import socket
import time

import numpy as np

from .viz.kernels import conv_layers, kernel_grid

# TensorBoard tag → key of a metrics.jsonl line
SCALARS = {"loss/train": "train_loss", "loss/test": "test_loss", "accuracy/train": "train_accuracy",
           "accuracy/test": "test_accuracy", "lr": "lr"}

# TensorBoard's histogram buckets (tensorboardX's SummaryWriter.default_bins): 0 and ±1e-12 · 1.1^k up to 1e20,
# the same edges for every array and step, which values outside them (an inf) do not break
_POSITIVE = 1e-12 * 1.1 ** np.arange(int(np.ceil(np.log(1e32) / np.log(1.1))))
BUCKETS = np.concatenate([-_POSITIVE[::-1], [0.0], _POSITIVE])


class TensorBoardWriter:
    """After each epoch: the scalars of its metrics.jsonl line, a histogram of every parameter and of its
    gradient (from the epoch's last training step: the grads arrays keep the last backward), and the first
    convolution's kernels as an image (``viz.kernels.kernel_grid``, 0 mid-gray, one scale for the layer).

    The event file is created and its first record flushed at once, so a folder that cannot be written
    stops the command before training; a write that fails later raises an ``OSError`` naming the folder."""

    def __init__(self, log_dir: str):
        try:
            from tensorboardX import summary
            from tensorboardX.proto.event_pb2 import Event
            from tensorboardX.record_writer import RecordWriter, directory_check
        except ImportError:
            raise RuntimeError("--tensorboard needs the [tensorboard] extra: "
                               "pip install 'juanji[tensorboard]'") from None
        self.log_dir, self.summary, self.event = os.fspath(log_dir), summary, Event
        self.records = None
        # the name TensorBoard looks for, as tensorboardX's EventsWriter gives it, and the process: a run resumed
        # within the same second writes a file of its own instead of replacing the last one
        path = os.path.join(self.log_dir, f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}."
                                          f"{os.getpid()}")
        with self._failures_named():
            directory_check(self.log_dir)
            self.records = RecordWriter(path)
            self._write([Event(wall_time=time.time(), file_version="brain.Event:2")])

    def write_epoch(self, metrics: dict, model) -> None:
        step, summary = metrics["epoch"], self.summary
        summaries = [summary.scalar(tag, metrics[key]) for tag, key in SCALARS.items()]
        for name, param, grad in model.parameters():
            summaries.append(summary.histogram(f"weights/{name}", param, BUCKETS))
            summaries.append(summary.histogram(f"gradients/{name}", grad, BUCKETS))
        convolutions = conv_layers(model)
        if convolutions:
            name, layer = convolutions[0]
            rgb = layer.params["weight"].shape[1] == 3
            grid = np.nan_to_num(kernel_grid(layer.params["weight"], rgb=rgb), nan=1.0)   # borders white
            summaries.append(summary.image(f"kernels/{name}", grid, dataformats="HWC" if rgb else "HW"))
        with self._failures_named():
            self._write([self.event(wall_time=time.time(), step=step, summary=s) for s in summaries])

    def close(self) -> None:
        """Close the event file: quietly, as every write was flushed already (or failed, and was reported)."""
        records, self.records = self.records, None
        if records is not None:
            with contextlib.suppress(OSError):
                records.close()         # closes the file even when its last flush fails

    def _write(self, events) -> None:
        """Append ``events`` to the event file and flush them to disk (fsync)."""
        if self.records is None:
            raise OSError(f"cannot write TensorBoard events to {self.log_dir}: an earlier write failed")
        for event in events:
            self.records.write(event.SerializeToString())
        self.records.flush()

    @contextlib.contextmanager
    def _failures_named(self):
        """An ``OSError`` inside becomes one naming the folder, and the writer stops writing."""
        try:
            yield
        except OSError as error:
            self.close()
            raise OSError(f"cannot write TensorBoard events to {self.log_dir}: {error.strerror or error}") from None
