"""Checkpoints: one ``.npz`` file of arrays plus a JSON header, written atomically, never pickled.

Layout of the archive (a plain zip of ``.npy`` files, readable by ``np.load(allow_pickle=False)``):
    __meta__            0-d unicode array holding the JSON header (format, version, model name/config,
                        epoch, optimizer/scheduler hyper-parameters, RNG state, data normalisation ...)
    model/<dotted name> parameters and buffers (``model.state_dict()``)
    optim/<name>/<slot> optimizer state arrays (momentum buffers, Adam moments)

Saving writes a temporary file beside the target, fsyncs it and renames it over the target with
``os.replace``: a crash or a full disk mid-save leaves the previous checkpoint untouched.
"""
from __future__ import annotations

import json
import os
import struct
import zipfile
import zlib
from dataclasses import dataclass, field

import numpy as np

from .io import write_atomically
from .models import create

FORMAT = "juanji-checkpoint"
VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or does not fit; the message names the file and the problem."""


@dataclass
class Checkpoint:
    meta: dict
    model_state: dict = field(default_factory=dict)
    optimizer_arrays: dict = field(default_factory=dict)


def save(path, model, optimizer=None, **meta) -> None:
    """Write ``model`` (and ``optimizer``'s state) with the JSON-serialisable ``meta`` to ``path``."""
    header = {"format": FORMAT, "version": VERSION,
              "model": {"name": getattr(model, "name", None), "config": getattr(model, "config", {})},
              **meta}
    arrays = {f"model/{k}": v for k, v in model.state_dict().items()}
    if optimizer is not None:
        state = optimizer.state_dict()
        header["optimizer"] = {k: v for k, v in state.items() if k != "arrays"}
        arrays.update({f"optim/{k}": v for k, v in state["arrays"].items()})
    arrays["__meta__"] = np.array(json.dumps(header))
    write_atomically(path, lambda f: np.savez(f, **arrays))


def load(path) -> Checkpoint:
    """Read a checkpoint without executing anything from it (no pickle); CheckpointError if it is not
    a complete juanji checkpoint of a version this code understands."""
    path = os.fspath(path)
    name = os.path.basename(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such checkpoint file")
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic != b"PK\x03\x04":
        what = "empty file" if not magic else "not a zip archive (a renamed pickle or other file?)"
        raise CheckpointError(f"{name}: not a juanji checkpoint: {what}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except (zipfile.BadZipFile, EOFError, OSError, zlib.error, struct.error,
            NotImplementedError, RuntimeError) as error:    # zipfile's words for damaged, "encrypted" or
        raise CheckpointError(f"{name}: truncated or corrupt checkpoint ({error})") from None   # odd entries
    except ValueError as error:
        raise CheckpointError(f"{name}: refusing to load: {error}") from None
    if "__meta__" not in arrays:
        raise CheckpointError(f"{name}: not a juanji checkpoint (no __meta__ header)")
    try:
        meta = json.loads(str(arrays.pop("__meta__")))
    except json.JSONDecodeError as error:
        raise CheckpointError(f"{name}: corrupt header ({error})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise CheckpointError(f"{name}: not a juanji checkpoint (format {found!r})")
    if type(meta.get("version", 0)) is not int:
        raise CheckpointError(f"{name}: corrupt header (version {meta['version']!r} is not an integer)")
    if meta.get("version", 0) > VERSION:
        raise CheckpointError(f"{name}: written by a newer juanji (checkpoint format version "
                              f"{meta['version']}, this juanji reads up to {VERSION}); upgrade juanji")
    return Checkpoint(meta,
                      {k[len("model/"):]: v for k, v in arrays.items() if k.startswith("model/")},
                      {k[len("optim/"):]: v for k, v in arrays.items() if k.startswith("optim/")})


def restore_model(checkpoint: Checkpoint, model=None, source: str = "checkpoint"):
    """Load the weights into ``model``, or build the model the checkpoint names from the registry."""
    if model is None:
        spec = checkpoint.meta.get("model", {})
        if not isinstance(spec, dict) or not spec.get("name"):
            raise CheckpointError(f"{source}: the checkpoint names no model; pass the model to load into")
        if not isinstance(spec["name"], str) or not isinstance(spec.get("config", {}), dict):
            raise CheckpointError(f"{source}: corrupt header (model {spec!r})")
        try:
            model = create(spec["name"], **spec.get("config", {}))
        except (TypeError, ValueError) as error:
            raise CheckpointError(f"{source}: cannot build the model it names: {error}") from None
    try:
        model.load_state_dict(checkpoint.model_state)
    except (KeyError, ValueError) as error:
        raise CheckpointError(f"{source}: does not fit model "
                              f"'{getattr(model, 'name', type(model).__name__)}': {error}") from None
    return model


def restore_optimizer(checkpoint: Checkpoint, optimizer, source: str = "checkpoint") -> None:
    state = dict(checkpoint.meta.get("optimizer") or {}, arrays=checkpoint.optimizer_arrays)
    try:
        optimizer.load_state_dict(state)
    except (KeyError, ValueError) as error:
        raise CheckpointError(f"{source}: optimizer state does not fit: {error}") from None
