"""One trained run as the server holds it: the model, its classes and preprocessing, a lock (layers keep
caches, so one request at a time uses a model), and the test-set results computed once on first request."""
from __future__ import annotations

import threading

import numpy as np

from ..metrics import confusion_matrix
from ..nn import Sequential
from ..runs import Run
from ..trained import TrainedModel
from ..viz.chain import layer_chain


class ServedRun:
    """A run directory (or checkpoint file) opened for serving under ``name``."""

    def __init__(self, name: str, path: str):
        self.name, self.path = name, path
        self.trained = TrainedModel.load(path)
        if self.trained.is_text:
            raise ValueError(f"{path}: a text run; the page shows image models only")
        self.model, self.classes = self.trained.model, self.trained.classes
        self.input_shape, self.normalization = self.trained.input_shape, self.trained.normalization
        self.lock = threading.Lock()
        self._test = None

    def normalize(self, pixels) -> np.ndarray:
        """Pixels (C, H, W) in [0, 1] → the model's input, (x − mean[c]) / std[c] as in training."""
        return self.trained.normalize(pixels)

    def layers(self) -> list[tuple[str, object]]:
        """The layers the page walks through (``viz.chain.layer_chain``; none for a model that is not a Sequential)."""
        return layer_chain(self.model) if isinstance(self.model, Sequential) else []

    def metrics(self) -> list[dict]:
        return Run(self.trained.run_dir).metrics()

    def describe(self) -> dict:
        trained = self.trained
        return {"name": self.name, "model": trained.config.get("model", type(self.model).__name__),
                "classes": self.classes, "input_shape": list(self.input_shape),
                "normalization": list(self.normalization) if self.normalization else None,
                "epoch": trained.epoch, "test_accuracy": trained.test_accuracy,
                "parameters": self.model.num_parameters()}

    def test_results(self) -> dict:
        """The test set, its predictions and confusion matrix (computed on first use, then kept)."""
        with self.lock:
            if self._test is None:
                test_set = self.trained.test_set()
                result = self.trained.evaluate(test_set)
                matrix = confusion_matrix(test_set.labels, result["predictions"], len(self.classes))
                self._test = {"set": test_set, "predictions": result["predictions"],
                              "accuracy": result["accuracy"], "matrix": matrix}
            return self._test
