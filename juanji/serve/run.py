"""One trained run as the server holds it: the model, its classes and preprocessing, a lock (layers keep
caches, so one request at a time uses a model), and the test-set results computed once on first request."""
from __future__ import annotations

import os
import threading

import numpy as np

from ..data.transforms import Normalize
from ..metrics import confusion_matrix
from ..nn import Sequential
from ..runs import Run, class_names, is_text_run, load_test_set, load_trained, predict_test_set
from ..viz.chain import layer_chain


class ServedRun:
    """A run directory (or checkpoint file) opened for serving under ``name``."""

    def __init__(self, name: str, path: str):
        self.name, self.path = name, path
        self.model, self.state = load_trained(path)
        data = self.state.meta.get("data", {})
        if is_text_run(self.state):
            raise ValueError(f"{path}: a text run; the page shows image models only")
        self.classes = class_names(self.state)
        self.input_shape = tuple(data.get("input_shape") or getattr(self.model, "input_shape", (1, 28, 28)))
        self.normalization = data.get("normalization")
        self.lock = threading.Lock()
        self._test = None

    @property
    def run_dir(self) -> str:
        return self.path if os.path.isdir(self.path) else os.path.dirname(self.path)

    def normalize(self, pixels) -> np.ndarray:
        """Pixels (C, H, W) in [0, 1] → the model's input, (x − mean[c]) / std[c] as in training."""
        if not self.normalization:
            return pixels.astype(np.float32)
        return Normalize(*self.normalization)(pixels[None].astype(np.float32))[0]

    def layers(self) -> list[tuple[str, object]]:
        """The layers the page walks through (``viz.chain.layer_chain``; none for a model that is not a Sequential)."""
        return layer_chain(self.model) if isinstance(self.model, Sequential) else []

    def metrics(self) -> list[dict]:
        return Run(self.run_dir).metrics()

    def describe(self) -> dict:
        config = self.state.meta.get("config", {})
        return {"name": self.name, "model": config.get("model", type(self.model).__name__),
                "classes": self.classes, "input_shape": list(self.input_shape),
                "normalization": self.normalization, "epoch": self.state.meta.get("epoch"),
                "test_accuracy": self.state.meta.get("metrics", {}).get("test_accuracy"),
                "parameters": self.model.num_parameters()}

    def test_results(self) -> dict:
        """The test set, its predictions and confusion matrix (computed on first use, then kept)."""
        with self.lock:
            if self._test is None:
                test_set = load_test_set(self.state)
                result = predict_test_set(self.model, self.state, test_set)
                matrix = confusion_matrix(test_set.labels, result["predictions"], len(self.classes))
                self._test = {"set": test_set, "predictions": result["predictions"],
                              "accuracy": result["accuracy"], "matrix": matrix}
            return self._test
