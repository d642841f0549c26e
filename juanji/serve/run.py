"""One trained run as the server holds it: the model, its classes and preprocessing, the test set and its
results computed once on first request, and the checks that what it shows is still the run on disk.

Two locks, so that reading files never waits behind the model: ``model_lock`` (layers keep caches, so one
forward or backward at a time uses a model) and ``_data_lock`` (the test set is read from disk once)."""
from __future__ import annotations

import json
import os
import threading

import numpy as np

from ..checkpoint import read_meta
from ..metrics import confusion_matrix
from ..nn import Sequential
from ..runs import Run
from ..schema import SchemaError
from ..trained import TrainedModel, is_folder
from ..viz.chain import layer_chain

RESTART = "restart juanji serve to show the run there now"


class Unavailable(RuntimeError):
    """What a request needs of a run cannot be had from disk now: its data folder is not named on the command
    line or cannot be read, its metrics.jsonl cannot be read, the run was replaced or deleted (HTTP 409)."""


def _identity(path) -> tuple | None:
    """What tells a file apart from the one that replaced it: (device, inode, size, modification time), or None
    when it is gone."""
    try:
        found = os.stat(path)
    except OSError:
        return None
    return found.st_dev, found.st_ino, found.st_size, found.st_mtime_ns


def _continues(history, earlier) -> bool:
    """True when the metrics ``history`` and ``earlier`` agree on the epochs both hold: the same run's."""
    return all(json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True) for a, b in zip(history, earlier))


class ServedRun:
    """A run directory (or checkpoint file) opened for serving under ``name``; ``data`` is the folder named on
    the command line to read its test set from (else the data it was trained on, see ``data_source``)."""

    def __init__(self, name: str, path: str, data: str | None = None):
        self.name, self.path = name, path
        self.trained = TrainedModel.load(os.path.abspath(path))
        if self.trained.is_text:
            raise ValueError(f"{path}: a text run; the page shows image models only")
        self.model, self.classes = self.trained.model, self.trained.classes
        self.input_shape, self.normalization = self.trained.input_shape, self.trained.normalization
        self.data = data
        self.model_lock, self._data_lock, self._check_lock = threading.Lock(), threading.Lock(), threading.Lock()
        self._test_set, self._results = None, None
        self._loaded = self._seen = _identity(self.trained.checkpoint)
        self._change = None

    def normalize(self, pixels) -> np.ndarray:
        """Pixels (C, H, W) in [0, 1] → the model's input, (x − mean[c]) / std[c] as in training."""
        return self.trained.normalize(pixels)

    def layers(self) -> list[tuple[str, object]]:
        """The layers the page walks through (``viz.chain.layer_chain``; none for a model that is not a Sequential)."""
        return layer_chain(self.model) if isinstance(self.model, Sequential) else []

    def describe(self) -> dict:
        trained = self.trained
        return {"name": self.name, "model": trained.config.get("model", type(self.model).__name__),
                "classes": self.classes, "input_shape": list(self.input_shape),
                "normalization": list(self.normalization) if self.normalization else None,
                "epoch": trained.epoch, "test_accuracy": trained.test_accuracy,
                "parameters": self.model.num_parameters()}

    # -- is it still the run on disk -------------------------------------------------------------------
    def check(self) -> None:
        """Unavailable when the checkpoint served is no longer the run's on disk: deleted, or replaced by the
        checkpoint of another run.  A checkpoint of the same run trained further (``juanji train`` rewrites
        best.npz while the page watches) is no change.  A stat per request; the header is read once per change."""
        identity = _identity(self.trained.checkpoint)
        with self._check_lock:
            if identity != self._seen:
                self._seen, self._change = identity, self._compare(identity)
        if self._change:
            raise Unavailable(self._change)

    def _compare(self, identity) -> str | None:
        checkpoint = self.trained.checkpoint
        if identity is None:
            return f"{checkpoint} was deleted after juanji serve loaded it; {RESTART}"
        if identity == self._loaded:
            return None
        try:
            history = read_meta(checkpoint).get("history")
        except (OSError, ValueError) as error:
            return f"{checkpoint} was replaced by a file juanji cannot read ({error}); {RESTART}"
        ours = self.trained.history
        if ours is None or history is None or not _continues(history, ours):
            return f"{checkpoint} was replaced by another run's after juanji serve loaded it; {RESTART}"
        return None

    def metrics(self) -> list[dict]:
        """The lines of metrics.jsonl now; Unavailable when it cannot be read, or holds another run's epochs
        than the model served (the run folder was replaced)."""
        try:
            history = Run(self.trained.run_dir).metrics()
        except (OSError, SchemaError) as error:
            raise Unavailable(str(error)) from None
        if self.trained.history is not None and not _continues(history, self.trained.history):
            raise Unavailable(f"{self.trained.run_dir}: metrics.jsonl is another run's than the model served "
                              f"(the run was replaced after juanji serve loaded it); {RESTART}")
        return history

    # -- its test set ----------------------------------------------------------------------------------
    def data_source(self) -> str | None:
        """Where the test set is read from: the folder named on the command line; else the data the run was
        trained on when that is no folder (the default data set, a task) or a folder inside the run directory.
        A folder named only by the checkpoint is never read: a header must not choose what the server reads."""
        if self.data is not None:
            return self.data
        stored = self.trained.data
        if not is_folder(stored):
            return stored
        inside = os.path.realpath(self.trained.run_dir)
        if os.path.commonpath([os.path.realpath(stored), inside]) == inside:
            return stored
        raise Unavailable(f"{self.name} was trained on {stored}, a folder its checkpoint names; the server reads "
                          f"data only from folders named on its command line: juanji serve {self.path} --data "
                          f"{stored}")

    def test_set(self):
        """The test set (``data_source``), read once; Unavailable when it cannot be read (tried again next time)."""
        with self._data_lock:
            if self._test_set is None:
                try:
                    self._test_set = self.trained.test_set(self.data_source())
                except (OSError, ValueError, MemoryError) as error:
                    raise Unavailable(f"the test set of {self.name} cannot be read: {error}") from None
            return self._test_set

    def test_results(self) -> dict:
        """The test set, its predictions and confusion matrix (computed on first use, then kept)."""
        test_set = self.test_set()
        with self.model_lock:
            if self._results is None:
                result = self.trained.evaluate(test_set)
                matrix = confusion_matrix(test_set.labels, result["predictions"], len(self.classes))
                self._results = {"set": test_set, "predictions": result["predictions"],
                                 "accuracy": result["accuracy"], "matrix": matrix}
            return self._results
