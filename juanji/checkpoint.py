"""Checkpoints: one ``.npz`` file of arrays plus a JSON header, written atomically, never pickled.

Layout of the archive (a plain zip of ``.npy`` files, readable by ``np.load(allow_pickle=False)``):
    __meta__            0-d unicode array holding the JSON header (format, version, model name/config,
                        epoch, optimizer/scheduler hyper-parameters, RNG state, data normalisation ...)
    model/<dotted name> parameters and buffers (``model.state_dict()``)
    optim/<name>/<slot> optimizer state arrays (momentum buffers, Adam moments)

Saving goes through ``juanji.io.write_atomically``: a crash or a full disk mid-save leaves the previous
checkpoint untouched.  Loading trusts nothing in the file: sizes are checked before anything is read,
and the header is validated against ``juanji.schema``.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import struct
import zipfile
import zlib
from dataclasses import dataclass, field

import numpy as np

from . import models
from .io import write_atomically
from .limits import memory_budget, mib
from .model_memory import check_model_memory
from .schema import SchemaError, validate_header

FORMAT = "juanji-checkpoint"
VERSION = 1
MAX_HEADER_BYTES = 16 * 2 ** 20     # the JSON header: a few KB in practice (the metrics history grows it)


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


def load(path, model=None) -> Checkpoint:
    """Read a checkpoint without executing anything from it (no pickle); CheckpointError if it is not
    a complete juanji checkpoint of a version this code understands, or its header is malformed.

    Nothing is read beyond what the archive's own directory and ``.npy`` headers declare, and only after
    the declared sizes pass ``limits.memory_budget()`` — and, given the ``model`` the weights are for,
    after every ``model/`` array's declared shape matches its ``state_dict()`` and the optimizer's arrays are no
    larger than the model's (twice: Adam's two moments): a zip bomb or a lying header costs nothing."""
    path, name = os.fspath(path), os.path.basename(os.fspath(path))
    with _open(path, name) as archive:
        members = _index(archive, name)
        meta = _read_meta(archive, members, name)
        _check_sizes(members, model, name)
        arrays = _read_arrays(archive, members, name)
    return Checkpoint(meta,
                      {k[len("model/"):]: v for k, v in arrays.items() if k.startswith("model/")},
                      {k[len("optim/"):]: v for k, v in arrays.items() if k.startswith("optim/")})


def read_meta(path) -> dict:
    """Only the validated JSON header of a checkpoint (see ``load``): cheap, whatever the arrays' size."""
    path, name = os.fspath(path), os.path.basename(os.fspath(path))
    with _open(path, name) as archive:
        return _read_meta(archive, _index(archive, name), name)


# What can go wrong reading a damaged archive: zipfile's words for damaged, "encrypted" or odd entries,
# and NumPy's for a bad .npy header.
_DAMAGE = (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, zlib.error, struct.error,
           NotImplementedError, RuntimeError, ValueError, SyntaxError)


@contextlib.contextmanager
def _open(path, name):
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such checkpoint file")
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic != b"PK\x03\x04":
        what = "empty file" if not magic else "not a zip archive (a renamed pickle or other file?)"
        raise CheckpointError(f"{name}: not a juanji checkpoint: {what}")
    try:
        with zipfile.ZipFile(path) as archive:
            yield archive
    except CheckpointError:
        raise
    except _DAMAGE as error:
        raise CheckpointError(f"{name}: truncated or corrupt checkpoint ({error})") from None


def _index(archive, name) -> dict:
    """{array name: (ZipInfo, shape, dtype)} from the zip directory and each member's ``.npy`` header."""
    members = {}
    for info in archive.infolist():
        if not info.filename.endswith(".npy") or info.filename[:-4] in members:
            raise CheckpointError(f"{name}: not a juanji checkpoint (member {info.filename!r:.80})")
        with archive.open(info) as f:
            version = np.lib.format.read_magic(f)
            if version not in ((1, 0), (2, 0)):
                raise CheckpointError(f"{name}: {info.filename}: unsupported .npy format version {version}")
            read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
                np.lib.format.read_array_header_2_0
            shape, _, dtype = read_header(f)
            header_size = f.tell()
        if dtype.hasobject:
            raise CheckpointError(f"{name}: refusing to load {info.filename}: an object array would be "
                                  f"unpickled, and a checkpoint never holds one")
        size = math.prod(shape) * dtype.itemsize
        if info.file_size != header_size + size:
            raise CheckpointError(f"{name}: truncated or corrupt checkpoint ({info.filename} declares {shape} "
                                  f"{dtype} = {size:,} bytes but holds {info.file_size - header_size:,})")
        members[info.filename[:-4]] = (info, shape, dtype)
    return members


def _read_meta(archive, members, name) -> dict:
    if "__meta__" not in members:
        raise CheckpointError(f"{name}: not a juanji checkpoint (no __meta__ header)")
    info, shape, dtype = members["__meta__"]
    if shape != () or dtype.kind != "U" or info.file_size > MAX_HEADER_BYTES:
        raise CheckpointError(f"{name}: corrupt header (__meta__ is {dtype} {shape}, {info.file_size:,} bytes; "
                              f"expected one string of at most {MAX_HEADER_BYTES:,} bytes)")
    with archive.open(info) as f:
        text = str(np.lib.format.read_array(f, allow_pickle=False))
    try:
        meta = json.loads(text)
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
    try:
        validate_header(meta, name)
    except SchemaError as error:
        raise CheckpointError(str(error)) from None
    return meta


def _check_sizes(members, model, name) -> None:
    sizes = {key: math.prod(shape) * dtype.itemsize for key, (_, shape, dtype) in members.items()}
    budget = memory_budget()
    if sum(sizes.values()) > budget:
        raise CheckpointError(f"{name}: its arrays declare {mib(sum(sizes.values()))}, more than the "
                              f"{mib(budget)} this process may use; refusing to read them")
    if model is None:
        return
    fits = f"{name}: does not fit model '{getattr(model, 'name', type(model).__name__)}'"
    stored = {key[len("model/"):]: members[key][1] for key in members if key.startswith("model/")}
    wanted = {f"{prefix}.{key}" if prefix else key: value.shape            # state_dict() without its copies
              for prefix, module in model.named_modules() for key, value in {**module.params, **module.buffers}.items()}
    missing = wanted.keys() - stored.keys() - model.optional_state_names()    # older files lack those
    if missing or stored.keys() - wanted.keys():
        raise CheckpointError(f"{fits}: missing arrays {sorted(missing)[:5]}, "
                              f"unexpected arrays {sorted(stored.keys() - wanted.keys())[:5]}")
    for key, shape in wanted.items():
        if key not in stored:
            continue
        if members[f"model/{key}"][2].kind not in "fiub":
            raise CheckpointError(f"{fits}: 'model/{key}' holds {members[f'model/{key}'][2]}, not numbers")
        if tuple(stored[key]) != tuple(shape):
            raise CheckpointError(f"{fits}: 'model/{key}' declares shape {tuple(stored[key])}, the model's "
                                  f"is {tuple(shape)}")
    model_bytes = sum(sizes[key] for key in members if key.startswith("model/"))
    optimizer_bytes = sum(sizes[key] for key in members if key.startswith("optim/"))
    if optimizer_bytes > 2 * model_bytes + 2 ** 20:
        raise CheckpointError(f"{name}: its optimizer arrays declare {mib(optimizer_bytes)} for a model of "
                              f"{mib(model_bytes)}; refusing to read them")


def _read_arrays(archive, members, name) -> dict:
    arrays = {}
    for key, (info, _, _) in members.items():
        if key != "__meta__":
            with archive.open(info) as f:          # reads no more than the size the directory declares
                arrays[key] = np.lib.format.read_array(f, allow_pickle=False)
    return arrays


def build_model(meta: dict, source: str = "checkpoint"):
    """The registry model a checkpoint header names, after checking that its size fits in memory."""
    spec = meta.get("model") or {}
    if not spec.get("name"):
        raise CheckpointError(f"{source}: the checkpoint names no model; pass the model to load into")
    config = spec.get("config") or {}
    try:
        check_model_memory(spec["name"], **config)
        return models.create(spec["name"], **config)
    except (TypeError, ValueError, MemoryError) as error:
        raise CheckpointError(f"{source}: cannot build the model it names: {error}") from None


def restore_model(checkpoint: Checkpoint, model=None, source: str = "checkpoint"):
    """Load the weights into ``model``, or build the model the checkpoint names from the registry."""
    if model is None:
        model = build_model(checkpoint.meta, source)
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
