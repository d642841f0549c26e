"""The runs ``juanji serve`` shows, followed on disk: each run's checkpoint loaded and checked whole before it is
served, loaded again when training rewrites it, and a run it cannot show (yet) listed with the reason.

``ServedModel`` is one checkpoint as loaded, never changed after: a request takes one and uses it throughout, so a
reload in the middle never mixes two models.  ``ServedRun`` is a run on disk and what is served of it now."""
from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass

import numpy as np

from . import views
from .jobs import EVALUATION_BATCH, Models
from ..metrics import confusion_matrix
from ..nn import Sequential
from ..runs import Run
from ..schema import SchemaError
from ..trained import TrainedModel, is_folder
from ..viz.chain import layer_chain

# A request looks at the checkpoint on disk at most this often (a stat); the page's poll of /api/runs always does.
RECHECK_SECONDS = 2.0
WAITING = "training, no checkpoint yet"
LONE = "no training curves for a lone checkpoint"


class Unavailable(RuntimeError):
    """What a request needs of a run cannot be had from disk now: the run has no model to serve (yet), its data
    folder is not named on the command line or cannot be read, its metrics.jsonl cannot be read or is another
    run's (HTTP 409)."""


class Unshowable(ValueError):
    """A checkpoint of a model the page cannot show: a text run's, a segmentation run's."""


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


def _metrics(run_dir) -> list[dict]:
    """The lines of ``run_dir``'s metrics.jsonl now; Unavailable when it cannot be read."""
    try:
        return Run(run_dir).metrics()
    except (OSError, SchemaError) as error:
        raise Unavailable(str(error)) from None


class ServedModel:
    """The checkpoint of ``path`` (a run directory's best.npz, or the file) as loaded for serving under ``name``:
    the model, its classes and preprocessing, the layers and convolutions the page lists (one forward pass at
    load: a model that cannot run on its input fails here, not in a request), and its test set and results,
    computed on first request; ``data`` is the folder named on the command line to read the test set from.

    A request runs a copy of the model no other thread runs (``models``, ``jobs.Models``: layers keep caches);
    ``_data_lock`` reads the test set from disk once, ``_results_lock`` evaluates it once."""

    def __init__(self, name: str, path: str, data: str | None = None):
        trained = TrainedModel.load(os.path.abspath(path))
        if trained.is_text:
            raise Unshowable(f"{path}: a text run; the page shows image models only")
        if trained.is_segmentation:
            raise Unshowable(f"{path}: a segmentation run (a class for every pixel); the page shows models that "
                             f"classify whole images (juanji show masks draws its masks)")
        self.name, self.path, self.trained, self.data = name, path, trained, data
        self.model, self.classes = trained.model, trained.classes
        self.input_shape, self.normalization = trained.input_shape, trained.normalization
        self.models, self._data_lock, self._results_lock = Models(trained), threading.Lock(), threading.Lock()
        self._test_set, self._results = None, None
        self.listing = {"layers": views.layer_list(self), "kernels": views.kernel_list(self)}

    def normalize(self, pixels) -> np.ndarray:
        """Pixels (C, H, W) in [0, 1] → the model's input, (x − mean[c]) / std[c] as in training."""
        return self.trained.normalize(pixels)

    def layers(self) -> list[tuple[str, object]]:
        """The layers the page walks through (``viz.chain.layer_chain``; none for a model that is not a Sequential)."""
        return layer_chain(self.model) if isinstance(self.model, Sequential) else []

    def describe(self) -> dict:
        """What the page lists of the model: its name, classes, input, the epoch it is from ("best": the run's
        best.npz, the best epoch so far), its layers and convolutions."""
        trained = self.trained
        return {"model": trained.config.get("model", type(self.model).__name__),
                "classes": self.classes, "input_shape": list(self.input_shape),
                "normalization": list(self.normalization) if self.normalization else None,
                "epoch": trained.epoch, "test_accuracy": trained.test_accuracy,
                "checkpoint": os.path.basename(trained.checkpoint),
                "best": os.path.abspath(trained.checkpoint) == os.path.abspath(Run(trained.run_dir).best),
                "parameters": self.model.num_parameters(), **self.listing}

    def metrics(self) -> dict:
        """{"epochs": the lines of the metrics.jsonl beside the checkpoint, "note": None}; for a checkpoint in no
        run directory, no epochs and the note ``LONE``.  Unavailable when metrics.jsonl cannot be read, or holds
        another run's epochs than the model served (the run folder was replaced)."""
        run_dir = self.trained.run_dir
        if not Run(run_dir).exists():
            return {"epochs": [], "note": LONE}
        history = _metrics(run_dir)
        if self.trained.history is not None and not _continues(history, self.trained.history):
            raise Unavailable(f"{run_dir}: metrics.jsonl is another run's than the model served (the run was "
                              f"replaced, and its checkpoint not yet)")
        return {"epochs": history, "note": None}

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

    def test_results(self, job=None) -> dict:
        """The test set, its predictions and confusion matrix (computed on first use, then kept); ``job``
        (``jobs.Job``) counts the test images done, batch by batch, and may stop the evaluation between two."""
        test_set = self.test_set()
        with self._results_lock:
            if self._results is None:
                if job is not None:
                    job.total = len(test_set)
                with self.models.borrow(job) as trained:
                    result = trained.evaluate(test_set, EVALUATION_BATCH)
                matrix = confusion_matrix(test_set.labels, result["predictions"], len(self.classes))
                self._results = {"set": test_set, "predictions": result["predictions"],
                                 "accuracy": result["accuracy"], "matrix": matrix}
            return self._results


@dataclass(frozen=True)
class Served:
    """What is served of a run at one moment, replaced whole (one assignment) when it changes.

    ``state``: "ready" (``model`` is served), "waiting" (a training whose first checkpoint is not written yet) or
    "skipped" (``reason`` says why the page cannot show it); ``notice``: why the model served is not the
    checkpoint on disk (it was replaced by a file that cannot be served); ``loads``: how many checkpoints were
    loaded (never lowered), so that a client sees a reload."""
    state: str
    model: ServedModel | None = None
    reason: str | None = None
    notice: str | None = None
    loads: int = 0


class ServedRun:
    """A run directory (or checkpoint file) served under ``name``, followed on disk: its checkpoint (a run
    directory's best.npz) is looked at on request, at most every ``RECHECK_SECONDS`` (``refresh``), and a new one
    is loaded whole and checked before it replaces the model served; one that cannot be served leaves the model
    as it was, with a notice.  ``data`` as for ``ServedModel``."""

    def __init__(self, name: str, path: str, data: str | None = None):
        self.name, self.path, self.data = name, path, data
        self.checkpoint = Run(path).best if os.path.isdir(path) else path
        self.served = Served("skipped")
        self._refresh_lock = threading.Lock()
        self._seen, self._checked = object(), 0.0       # nothing seen yet: the first look loads
        self.refresh(force=True)

    def refresh(self, force: bool = False) -> None:
        """Follow the checkpoint on disk, when it was last looked at ``RECHECK_SECONDS`` ago (or ``force``).  One
        thread looks (and loads) at a time; the others go on with what is served meanwhile."""
        if not force and time.monotonic() - self._checked < RECHECK_SECONDS:
            return
        if not self._refresh_lock.acquire(blocking=False):
            return
        try:
            self._checked = time.monotonic()
            seen = (_identity(self.checkpoint), Run(self.path).exists())   # the file, and whether a training began
            if seen != self._seen:
                self._seen = seen
                self.served = self._follow(seen[0] is not None, seen[1])
        finally:
            self._refresh_lock.release()

    def _follow(self, present: bool, training: bool) -> Served:
        """What to serve now that the checkpoint changed (or appeared, or went)."""
        before = self.served
        if not present and training:
            return Served("waiting", reason=WAITING, loads=before.loads)
        if not present and before.model is not None:
            return Served("skipped", reason=f"{self.checkpoint} was deleted after juanji serve loaded it",
                          loads=before.loads)
        try:
            model = ServedModel(self.name, self.path, self.data)
        except (OSError, ValueError, MemoryError) as error:       # CheckpointError and Unshowable among them
            if before.model is None:
                return Served("skipped", reason=str(error), loads=before.loads)
            epoch = before.model.trained.epoch
            return Served("ready", before.model, notice=f"{self.checkpoint} was replaced by a file that cannot be "
                          f"served ({error}); still serving the model loaded before"
                          f"{f', from epoch {epoch}' if epoch is not None else ''}", loads=before.loads)
        return Served("ready", model, loads=before.loads + 1)

    def current(self) -> ServedModel:
        """The model served now (looked at on disk first, see ``refresh``); Unavailable when there is none."""
        self.refresh()
        served = self.served
        if served.model is None:
            raise Unavailable(f"{self.name}: {served.reason}")
        return served.model

    def describe(self) -> dict:
        """What the page lists of the run: its name, state, reason or notice, and its model's description."""
        served = self.served
        return {"name": self.name, "state": served.state, "reason": served.reason, "notice": served.notice,
                "loads": served.loads, **(served.model.describe() if served.model else {})}

    def metrics(self) -> dict:
        """The curves of the run (``ServedModel.metrics``); of a training waiting for its first checkpoint, its
        metrics.jsonl as it is (none, until the first epoch ends)."""
        self.refresh()
        served = self.served
        if served.model is not None:
            return served.model.metrics()
        if served.state == "waiting":
            return {"epochs": _metrics(self.path), "note": None}
        raise Unavailable(f"{self.name}: {served.reason}")
