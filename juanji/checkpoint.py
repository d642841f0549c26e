"""Checkpoints: one ``.npz`` file of arrays plus a JSON header, written atomically, never pickled.

Layout of the archive (a plain zip of ``.npy`` files, readable by ``np.load(allow_pickle=False)``):
    __meta__            0-d unicode array holding the JSON header (format, version, model name/config,
                        epoch, optimizer/scheduler hyper-parameters, RNG state, data normalisation ...)
    model/<dotted name> parameters and buffers (``model.state_dict()``)
    optim/<name>/<slot> optimizer state arrays (momentum buffers, Adam moments)

Saving goes through ``juanji.io.write_atomically``: a crash or a full disk mid-save leaves the previous
checkpoint untouched.  Loading trusts nothing in the file: the number of members, their sizes, shapes and
dtypes are checked before anything is read, the header is validated against ``juanji.schema``, and a
resumed training checks that the checkpoint is the run its config.json describes (``check_same_run``).
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
from .schema import MAX_CHECKPOINT_MEMBERS, MAX_OPTIMIZER_SLOTS, SchemaError, validate_header

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
    the number of members passes ``most_members(model)`` and the declared sizes ``limits.memory_budget()`` —
    and, given the ``model`` the weights are for, after every ``model/`` array's declared shape and dtype
    match its ``state_dict()`` and every optimizer array is one of real numbers shaped as its parameter: a
    zip bomb, a zip of a million members or a lying header costs nothing."""
    path, name = os.fspath(path), os.path.basename(os.fspath(path))
    with _open(path, name) as archive:
        members = _index(archive, name, model)
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


def most_members(model=None) -> int:
    """The most zip members a checkpoint of ``model`` can have: its header, the model's arrays and
    ``MAX_OPTIMIZER_SLOTS`` optimizer arrays per parameter; without a model, ``schema.MAX_CHECKPOINT_MEMBERS``."""
    if model is None:
        return MAX_CHECKPOINT_MEMBERS
    return 1 + len(_model_arrays(model)) + MAX_OPTIMIZER_SLOTS * len(model.parameters())


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


def _index(archive, name, model=None) -> dict:
    """{array name: (ZipInfo, shape, dtype)} from the zip directory and each member's ``.npy`` header,
    refused before any member is opened when the directory lists more than ``most_members(model)``."""
    infos, most = archive.infolist(), most_members(model)
    if len(infos) > most:
        raise CheckpointError(f"{name}: holds {len(infos):,} members, more than the {most:,} a checkpoint "
                              f"{'' if model is None else 'of this model '}can have; refusing to read them")
    members = {}
    for info in infos:
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
    _check_model_arrays({key[len("model/"):]: (shape, dtype) for key, (_, shape, dtype) in members.items()
                         if key.startswith("model/")}, model, fits)
    model_bytes = sum(sizes[key] for key in members if key.startswith("model/"))
    optimizer_bytes = sum(sizes[key] for key in members if key.startswith("optim/"))
    if optimizer_bytes > MAX_OPTIMIZER_SLOTS * model_bytes + 2 ** 20:
        raise CheckpointError(f"{name}: its optimizer arrays declare {mib(optimizer_bytes)} for a model of "
                              f"{mib(model_bytes)}; refusing to read them")
    parameters = {key: param.shape for key, param, _ in model.parameters()}
    for key, (_, shape, dtype) in members.items():
        if not key.startswith("optim/"):
            continue
        parameter = key[len("optim/"):].rpartition("/")[0]
        if parameter not in parameters:
            problem = "names no parameter of the model"
        elif tuple(shape) != parameters[parameter]:
            problem = f"declares shape {tuple(shape)}, its parameter's is {parameters[parameter]}"
        elif dtype.kind != "f":
            problem = f"holds {dtype}, not real floating-point numbers"
        else:
            continue
        raise CheckpointError(f"{fits}: optimizer array '{key}' {problem}")


def _model_arrays(model) -> dict:
    """{dotted name: array} of the model's parameters and buffers (``state_dict()`` without its copies)."""
    return {f"{prefix}.{key}" if prefix else key: value
            for prefix, module in model.named_modules() for key, value in {**module.params, **module.buffers}.items()}


# a stored array's dtype kind → the kinds it may be loaded from: floats from floats, integers from integers
_FAMILY = {"f": "f", "i": "iu", "u": "iu", "b": "b"}


def _check_model_arrays(stored: dict, model, fits: str) -> None:
    """``stored`` ({name: (shape, dtype)}) holds every array of ``model`` (older files may lack its optional
    buffers) and no other, each of its shape and of its dtype's family: a float parameter from real floats
    (never complex, bool or a structured dtype, which a cast would silently turn into numbers)."""
    wanted = _model_arrays(model)
    missing = wanted.keys() - stored.keys() - model.optional_state_names()
    if missing or stored.keys() - wanted.keys():
        raise CheckpointError(f"{fits}: missing arrays {sorted(missing)[:5]}, "
                              f"unexpected arrays {sorted(stored.keys() - wanted.keys())[:5]}")
    for key, (shape, dtype) in stored.items():
        if dtype.kind not in _FAMILY.get(wanted[key].dtype.kind, wanted[key].dtype.kind):
            raise CheckpointError(f"{fits}: 'model/{key}' holds {dtype}, the model's is {wanted[key].dtype}")
        if tuple(shape) != wanted[key].shape:
            raise CheckpointError(f"{fits}: 'model/{key}' declares shape {tuple(shape)}, the model's "
                                  f"is {wanted[key].shape}")


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
    _check_model_arrays({key: (np.shape(value), np.asarray(value).dtype)
                         for key, value in checkpoint.model_state.items()},
                        model, f"{source}: does not fit model '{getattr(model, 'name', type(model).__name__)}'")
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


def check_same_run(checkpoint: Checkpoint, source: str, config_source: str, config: dict, model, optimizer,
                   data: dict) -> None:
    """Before a training resumes from ``checkpoint``: it holds the run that ``config`` (its ``config_source``,
    config.json) describes — the header's model (name and arguments), optimizer (type and hyper-parameters
    but the scheduled lr), copy of the options (all but out, epochs and data, which may move, and
    checkpoint_every, which changes no step) and data
    (class names, input shape) are those of ``model``, ``optimizer``, ``config`` and ``data`` — else
    CheckpointError naming both files and the first difference, instead of a run that silently changes."""
    meta, absent = checkpoint.meta, object()        # a field an older or hand-made header lacks is not compared
    stored_model, stored_optimizer = meta.get("model") or {}, meta.get("optimizer") or {}
    hyper = {key: list(value) if isinstance(value, tuple) else value
             for key, value in optimizer.state_dict()["hyper"].items() if key != "lr"}
    pairs = [("model", stored_model.get("name", absent), getattr(model, "name", None)),
             ("model's arguments", stored_model.get("config", absent), getattr(model, "config", None)),
             ("optimizer", stored_optimizer.get("type", absent), type(optimizer).__name__),
             *((f"optimizer's {key}", (stored_optimizer.get("hyper") or {}).get(key, absent), value)
               for key, value in hyper.items()),
             *((f"option '{key}'", value, config.get(key)) for key, value in (meta.get("config") or {}).items()
               if key not in ("out", "epochs", "data", "checkpoint_every")),
             *((f"data's {key}", (meta.get("data") or {}).get(key, absent), value) for key, value in data.items())]
    for what, stored, wanted in pairs:
        if stored is not absent and stored != wanted:
            raise CheckpointError(f"{source} is not a checkpoint of the run {config_source} describes: its "
                                  f"{what} is {stored!r:.60}, the run's is {wanted!r:.60}")
