"""A run directory as a type: ``Run(path)`` is the one place that knows its layout, names a free run, owns
its lock, repairs what a kill left behind, and loads what was trained in it.

    runs/lenet5/                    (Run("runs/lenet5"))
        config.json                 the TrainConfig (juanji.schema)              Run.config
        checkpoints/epoch-001.npz   one checkpoint per epoch, with the whole     Run.checkpoints(),
                                    metrics history                              Run.latest_checkpoint()
        checkpoints/mid-epoch.npz   the last one within an epoch (--checkpoint-  Run.mid_epoch_checkpoint
                                    every, or a stop by SIGINT/SIGTERM), until
                                    that epoch's own
        best.npz                    the epoch with the best score (best_score)   Run.best
        metrics.jsonl               one JSON object per epoch                    Run.metrics()
        curves.png                  loss and accuracy per epoch
        .lock                       held (flock) by the training that owns the run, while it runs

What was trained in a run is read by ``juanji.trained.TrainedModel.load``.
"""
from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import re

from . import checkpoint as ckpt
from .io import (check_writable_target, held_lock, read_small_file, remove_stale_temporaries, write_atomically,
                 write_text)
from .schema import SchemaError, TrainConfig, validate_config

ROOT = "runs"           # where juanji train puts a run without --out, and where juanji serve looks without arguments
CONFIG, CHECKPOINTS, BEST, METRICS, CURVES, LOCK = (
    "config.json", "checkpoints", "best.npz", "metrics.jsonl", "curves.png", ".lock")
MID_EPOCH = "mid-epoch.npz"         # in CHECKPOINTS
_CHECKPOINT_NAME = re.compile(r"epoch-(\d{3,})\.npz")
_TEMPORARY = re.compile(r"\..*\.tmp")         # what a killed atomic write leaves (juanji.io)
# The most read of each file (``juanji.io.read_small_file``): a config is a few hundred bytes, an epoch's
# metrics line about 400, so 16 MiB holds some 40,000 epochs and parses in well under a second.
MAX_CONFIG_BYTES, MAX_METRICS_BYTES = 2 ** 20, 16 * 2 ** 20
# What juanji's own commands may write beside a run, none of it read back by training: the pictures of
# `juanji show` (*.png), `juanji export`'s ONNX files, TensorBoard's event files (`--tensorboard RUN`).
OUTPUTS = re.compile(r"[^/]+\.(png|onnx)|events\.out\.tfevents\.[^/]+")


def best_score(metrics: dict) -> float:
    """What best.npz maximises over the epochs of a metrics history: the test mean IoU of a segmentation
    run (its per-pixel accuracy is mostly the background's), the test accuracy otherwise."""
    return metrics.get("test_mean_iou", metrics["test_accuracy"])


class RunLocked(RuntimeError):
    """Another live process is training in the run directory."""


class Run:
    """The run directory at ``path`` (which need not exist yet)."""

    def __init__(self, path):
        self.path = os.fspath(path)

    def __repr__(self):
        return f"Run({self.path!r})"

    def file(self, name: str) -> str:
        return os.path.join(self.path, name)

    @property
    def config_path(self) -> str:
        return self.file(CONFIG)

    @property
    def best(self) -> str:
        """Path of best.npz (which may not exist yet)."""
        return self.file(BEST)

    @property
    def checkpoint_dir(self) -> str:
        return self.file(CHECKPOINTS)

    def checkpoint_path(self, epoch: int) -> str:
        return os.path.join(self.checkpoint_dir, f"epoch-{epoch:03d}.npz")

    @property
    def mid_epoch_checkpoint(self) -> str:
        """Path of the checkpoint written within an epoch (which may not exist): the same format as an epoch's,
        its header also saying how far into the next epoch it is (``step``, ``epoch_so_far``: juanji.schema)."""
        return os.path.join(self.checkpoint_dir, MID_EPOCH)

    def remove_mid_epoch_checkpoint(self) -> None:
        """Once an epoch's checkpoint is written, the one from within that epoch is behind it: it goes."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.mid_epoch_checkpoint)

    @classmethod
    def free(cls, model: str, root: str = ROOT) -> "Run":
        """``root/model``, or the first of ``root/model-2``, ``root/model-3`` ... that holds no run."""
        base = os.path.join(root, model)
        candidate, index = base, 1
        while os.path.exists(os.path.join(candidate, CONFIG)):
            index += 1
            candidate = f"{base}-{index}"
        return cls(candidate)

    # -- what is in it -----------------------------------------------------------------------------
    def exists(self) -> bool:
        """True when the folder holds a run (its config.json)."""
        return os.path.isfile(self.config_path)

    def foreign_entries(self) -> list[str]:
        """Entries of an existing folder that a juanji run does not write: a folder holding any, or holding
        juanji's file names without a config.json, is not a run and must not be written into.  Beside a run,
        what juanji's own commands leave there (``OUTPUTS``) is not foreign."""
        if not os.path.isdir(self.path):
            return []
        names = sorted(os.listdir(self.path))
        if not self.exists():
            return [n for n in names if n not in {CONFIG, CHECKPOINTS, LOCK} and not _TEMPORARY.fullmatch(n)]
        ours = {CONFIG, CHECKPOINTS, LOCK, BEST, METRICS, CURVES}
        return [n for n in names if n not in ours and not _TEMPORARY.fullmatch(n) and not OUTPUTS.fullmatch(n)]

    @property
    def config(self) -> TrainConfig:
        """The run's TrainConfig, read from config.json and validated (SchemaError names the field)."""
        try:
            return validate_config(json.loads(read_small_file(self.config_path, MAX_CONFIG_BYTES)), self.config_path)
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as error:
            raise SchemaError(f"{self.config_path}: not a JSON file ({error})") from None

    def write_config(self, config: TrainConfig) -> None:
        write_text(self.config_path, json.dumps(dataclasses.asdict(config), indent=2))

    def checkpoints(self) -> list[tuple[int, str]]:
        """[(epoch, path)] of the per-epoch checkpoints, in epoch order."""
        if not os.path.isdir(self.checkpoint_dir):
            return []
        found = [(int(m.group(1)), os.path.join(self.checkpoint_dir, name)) for name in os.listdir(self.checkpoint_dir)
                 if (m := _CHECKPOINT_NAME.fullmatch(name))]
        return sorted(found)

    def latest_checkpoint(self) -> str | None:
        """Path of the checkpoint a resume goes on from: the mid-epoch one when it is further on than the last
        epoch's (a kill between writing an epoch's checkpoint and removing the mid-epoch one leaves it behind),
        else the last epoch's; None before either was written."""
        found = self.checkpoints()
        if os.path.isfile(self.mid_epoch_checkpoint):
            within = ckpt.read_meta(self.mid_epoch_checkpoint).get("epoch")
            if within is not None and (not found or within >= found[-1][0]):
                return self.mid_epoch_checkpoint
        return found[-1][1] if found else None

    def metrics(self) -> list[dict]:
        """The per-epoch metrics of metrics.jsonl ([] when there is none yet); OSError when it is not a regular
        file or larger than ``MAX_METRICS_BYTES``, SchemaError naming a line that is not an epoch's object."""
        path = self.file(METRICS)
        try:
            text = read_small_file(path, MAX_METRICS_BYTES).decode("utf-8", errors="replace")
        except FileNotFoundError:
            return []
        history = []
        for number, line in enumerate(text.split("\n"), 1):
            if not line.strip():
                continue
            try:
                history.append(json.loads(line))
            except (json.JSONDecodeError, RecursionError) as error:
                raise SchemaError(f"{path}: line {number} is not JSON ({error})") from None
            if not isinstance(history[-1], dict) or not isinstance(history[-1].get("epoch"), int):
                raise SchemaError(f"{path}: line {number} is not an epoch's metrics object")
        return history

    def write_metrics(self, history: list[dict]) -> None:
        """metrics.jsonl and curves.png, both rewritten whole (atomically)."""
        write_text(self.file(METRICS), "".join(json.dumps(m) + "\n" for m in history))
        from .viz.curves import plot_curves  # matplotlib is an optional extra
        runs = {os.path.basename(os.path.normpath(self.path)): history}
        write_atomically(self.file(CURVES), lambda f: plot_curves(runs, f))

    # -- ownership and repair ----------------------------------------------------------------------
    def claim(self, resume: bool = False) -> str | None:
        """Check that a new training (or, with ``resume``, a continued one) may write here, before anything
        is loaded: the run is not locked by a live process, the folder holds nothing that is not juanji's,
        ``resume`` finds a run and a new training none that completed an epoch.  Returns a note when a run
        that never completed an epoch is started afresh."""
        self.check_unlocked()
        foreign = self.foreign_entries()
        if foreign:
            listed = f"{', '.join(foreign[:3])}{' ...' if len(foreign) > 3 else ''}"
            if self.exists():
                raise ValueError(f"{self.path} holds files a juanji run does not write ({listed}); move them out of "
                                 f"the run folder, or choose another --out")
            raise ValueError(f"{self.path} is not a juanji run (it holds {listed} and no config.json); "
                             f"choose another --out")
        if resume:
            if not self.exists():
                raise FileNotFoundError(f"--resume: {self.config_path} does not exist")
            return None
        if not self.exists():
            return None
        if self.latest_checkpoint() is not None:
            raise ValueError(f"{self.path} already holds a run; add --resume to continue it, or choose another --out")
        self.config         # started afresh only if its config.json is juanji's
        return f"{self.path}: no epoch of the run there had completed; starting it afresh"

    @contextlib.contextmanager
    def lock(self):
        """Hold the run's lock file for the ``with`` block: RunLocked if another live process holds it.

        The lock is an ``flock`` on ``.lock``: the kernel drops it when its process dies, however it dies,
        so a lock left by a killed run is never in the way; the file holds the process id for the message
        and is removed when the block ends."""
        path = self.file(LOCK)
        check_writable_target(path)
        with held_lock(path, self._take) as fd:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            yield self

    def check_unlocked(self) -> None:
        """RunLocked if a live process holds the lock now (an early, friendlier check than failing later).
        The check takes a shared lock for a moment: the processes of one data-parallel run check at once."""
        try:
            fd = os.open(self.file(LOCK), os.O_RDONLY)
        except (FileNotFoundError, NotADirectoryError):
            return
        try:
            self._take(fd, fcntl.LOCK_SH)
        finally:
            os.close(fd)

    def _take(self, fd, kind=fcntl.LOCK_EX) -> None:
        try:
            fcntl.flock(fd, kind | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            raise RunLocked(f"{self.path} is in use by another juanji train (process {holder}); "
                            f"wait for it to finish or choose another --out") from None

    def remove_stale_temporaries(self) -> list[str]:
        """Delete the temporary files that killed writes left in the run and its checkpoints folder."""
        return remove_stale_temporaries(self.path) + remove_stale_temporaries(self.checkpoint_dir)

    def repair(self, history: list[dict]) -> list[str]:
        """Bring best.npz, metrics.jsonl and curves.png in line with ``history`` (the last checkpoint's),
        after a kill or a full disk between the checkpoint and them; one note per file rewritten."""
        notes = []
        if history:
            best_epoch = max(history, key=best_score)["epoch"]    # the first of equals
            try:
                best_now = ckpt.load(self.best).meta.get("epoch")
            except (OSError, ValueError):
                best_now = None
            if best_now != best_epoch:
                state = ckpt.load(self.checkpoint_path(best_epoch))
                meta = {k: v for k, v in state.meta.items() if k not in ("format", "version", "model", "optimizer")}
                ckpt.save(self.best, ckpt.restore_model(state, source=self.checkpoint_path(best_epoch)), **meta)
                notes.append(f"{self.best} rewritten from epoch {best_epoch}'s checkpoint")
        try:
            stale = self.metrics() != history
        except (SchemaError, OSError):      # not JSON, too large: rewritten (a FIFO is refused by the writer)
            stale = True
        if history and (stale or not os.path.isfile(self.file(CURVES))):   # none: stopped within epoch 1
            self.write_metrics(history)
            notes.append(f"{self.file(METRICS)} and {CURVES} rewritten from the last checkpoint")
        return notes
