"""What a run's files may contain: ``TrainConfig`` (``config.json``) and the checkpoint header, validated in
this one place.  Every problem raises ``SchemaError`` naming the file and the field, e.g.
``best.npz: header field 'data.classes': 3 class names for a model with 10 outputs``.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

MAX_CLASSES = 100_000
MAX_IMAGE_SIZE = 4096           # pixels per side: 4096² × 3 float32 is 200 MB per image
MAX_NAME_LENGTH = 256           # a model, optimizer, schedule, class or augmentation name (a folder name: 255 bytes)
MAX_PATH_LENGTH = 4096          # --data, --out: Linux's PATH_MAX
MAX_LIST_LENGTH = 64            # --augment's names
# A checkpoint's zip members: its header, the model's arrays and at most MAX_OPTIMIZER_SLOTS optimizer arrays
# per parameter (Adam with amsgrad, centred RMSprop with momentum: 3).  Given the model, the bound is its own
# (checkpoint.most_members); without one, MAX_CHECKPOINT_MEMBERS: the zoo's largest, densenet121, has 727
# arrays and 364 parameters, 1 + 727 + 3 × 364 = 1,820 members.
MAX_OPTIMIZER_SLOTS = 3
MAX_CHECKPOINT_MEMBERS = 4096


class SchemaError(ValueError):
    """A config file or header that does not have the form juanji writes; the message names file and field."""


@dataclass
class TrainConfig:
    """Every choice of a run; saved as config.json.  The defaults are those of a bare ``juanji train``
    (the README explains each)."""
    model: str = "lenet5"
    epochs: int = 10
    batch_size: int = 64
    optimizer: str = "sgd"
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    schedule: str = "cosine"
    warmup_epochs: int | None = None     # None: 1 before a step, cosine or exponential decay, else 0
    init: str = "kaiming_uniform"
    normalize: bool = True
    augment: list = field(default_factory=list)
    label_smoothing: float = 0.0
    data: str | None = None
    limit: int | None = None
    image_size: int | None = None
    channels: int | None = None
    skip_bad: bool = False
    out: str = "runs/lenet5"
    seed: int = 0
    sync_bn: bool = False
    accumulate: int = 1         # micro-batches of --batch-size per optimizer step (gradients summed over them)
    lr_scaling: str = "none"    # "linear": lr × batch_size × accumulate / LR_REFERENCE_BATCH
    checkpoint_every: int | None = None     # optimizer steps between mid-epoch checkpoints; None: at epoch ends only


# field → (lowest, highest) of a number, (shortest, longest) of a string or list; None: no bound.  A config file
# is checked against these; the command line's own checks (with the option's name in the message) are in
# juanji.train.
_CONFIG_RANGES = {"epochs": (1, None), "batch_size": (1, None), "lr": (0, None), "momentum": (0, None),
                  "weight_decay": (0, None), "warmup_epochs": (0, None), "label_smoothing": (0, 1),
                  "limit": (0, None), "image_size": (1, MAX_IMAGE_SIZE), "channels": (1, 3), "accumulate": (1, None),
                  "model": (1, MAX_NAME_LENGTH), "optimizer": (1, MAX_NAME_LENGTH), "schedule": (1, MAX_NAME_LENGTH),
                  "init": (1, MAX_NAME_LENGTH), "augment": (0, MAX_LIST_LENGTH), "data": (1, MAX_PATH_LENGTH),
                  "out": (1, MAX_PATH_LENGTH), "checkpoint_every": (1, None)}
_TYPES = {"int": int, "float": float, "str": str, "bool": bool, "list": list}
LR_SCALINGS = ("none", "linear")         # --lr-scaling
# --lr-scaling linear: --lr is the rate for a batch of this many images, scaled linearly to the images of a step
# (juanji.train.scaled_lr), as Goyal et al., "Accurate, Large Minibatch SGD: Training ImageNet in 1 Hour" (2017),
# write it: η = 0.1 · kn/256 for a step of kn images.
LR_REFERENCE_BATCH = 256
_CONFIG_CHOICES = {"lr_scaling": LR_SCALINGS}     # the fields whose value is one of a few names


def _fail(source, name, problem):
    raise SchemaError(f"{source}: field '{name}': {problem}")


def check_value(value, kind, source, name, low=None, high=None, optional=False):
    """``value`` is of ``kind`` (int, float, str, bool, list, dict; an int counts as a float, a bool as
    neither), finite, and within [low, high] — for a string or a list, its length; returns it."""
    if value is None and optional:
        return value
    ok = (type(value) is bool if kind is bool else
          isinstance(value, (int, float)) and type(value) is not bool if kind is float else
          isinstance(value, int) and type(value) is not bool if kind is int else isinstance(value, kind))
    if not ok:
        _fail(source, name, f"expected {'null or ' if optional else ''}{kind.__name__}, got {value!r:.60}")
    if kind in (int, float):
        if isinstance(value, float) and not math.isfinite(value):     # an int is finite, however long
            _fail(source, name, f"must be finite, got {value}")
        if low is not None and value < low or high is not None and value > high:
            bounds = f"[{'−∞' if low is None else low}, {'∞' if high is None else high}]"
            _fail(source, name, f"must lie in {bounds}, got {value}")
    if kind in (str, list):     # checked before anything else reads it: a 50 MB name is refused, not searched
        what = "characters" if kind is str else "entries"
        if high is not None and len(value) > high:
            _fail(source, name, f"must have at most {high:,} {what}, got {len(value):,}")
        if low is not None and len(value) < low:
            _fail(source, name, "must not be empty" if low == 1 else f"must have at least {low:,} {what}")
    return value


def validate_config(config, source: str = "config.json", prefix: str = "") -> TrainConfig:
    """A ``TrainConfig`` from the parsed JSON ``config``; SchemaError names ``source`` and the field."""
    if not isinstance(config, dict):
        raise SchemaError(f"{source}: {prefix.rstrip('.') or 'the config'} must be a JSON object of options, "
                          f"got {type(config).__name__}")
    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(config) - set(fields))
    if unknown:
        _fail(source, prefix + unknown[0], f"not an option of juanji train (options: {', '.join(fields)})")
    for name, value in config.items():
        kind, optional = fields[name].type.split(" | ")[0], fields[name].type.endswith("None")
        check_value(value, _TYPES[kind], source, prefix + name, *_CONFIG_RANGES.get(name, (None, None)), optional)
        if name in _CONFIG_CHOICES and value not in _CONFIG_CHOICES[name]:
            _fail(source, prefix + name, f"must be one of {', '.join(_CONFIG_CHOICES[name])}, got {value!r:.60}")
        if name == "augment" and not all(isinstance(a, str) and 0 < len(a) <= MAX_NAME_LENGTH for a in value):
            _fail(source, prefix + name, f"expected a list of names of at most {MAX_NAME_LENGTH} characters, "
                                         f"got {value!r:.60}")
    return TrainConfig(**config)


def validate_header(meta: dict, source: str) -> None:
    """Types, ranges and consistency of the fields juanji writes into a checkpoint header (others pass)."""
    def check(name, kind, low=None, high=None, optional=True):
        value = meta
        for part in name.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        return check_value(value, kind, source, f"header.{name}", low, high, optional)

    model = check("model", dict)
    if model is not None:
        check("model.name", str, 1, MAX_NAME_LENGTH, optional=False)
        check("model.config", dict)
    if check("optimizer", dict) is not None:
        check("optimizer.type", str, 1, MAX_NAME_LENGTH, optional=False)
        check("optimizer.hyper", dict, optional=False)
        check("optimizer.step", int, 0, optional=False)
    check("epoch", int, 0)
    check("best_accuracy", float)         # in older checkpoints (the best now follows from the history)
    for name in ("metrics", "scheduler", "rng"):
        check(name, dict)
    history = check("history", list)
    if history is not None and not all(isinstance(m, dict) for m in history):
        _fail(source, "header.history", "expected a list of per-epoch objects")
    _validate_position(check, source)
    if meta.get("config") is not None:
        validate_config(meta["config"], source, "header.config.")
    if check("data", dict) is not None:
        _validate_data(meta, source)


def _validate_position(check, source):
    """A mid-epoch checkpoint (juanji.train): ``step`` optimizer steps into the epoch after ``epoch``, with that
    epoch's training metrics so far and, under MPI, every process's random generator."""
    if check("step", int, 1) is None:
        return
    check("epoch_so_far", dict, optional=False)
    for name in ("loss_sum", "correct", "seen", "seconds"):
        check(f"epoch_so_far.{name}", float, 0, optional=False)
    states = check("rng_ranks", list)
    if states is not None and not all(isinstance(state, dict) for state in states):
        _fail(source, "header.rng_ranks", "expected a list of random generator states, one per process")


def _validate_data(meta, source):
    data, model_config = meta["data"], (meta.get("model") or {}).get("config") or {}
    classes = check_value(data.get("classes"), list, source, "header.data.classes", optional=True)
    if classes is not None:
        if not classes or len(classes) > MAX_CLASSES or not all(isinstance(c, str) and len(c) <= MAX_NAME_LENGTH
                                                                for c in classes):
            _fail(source, "header.data.classes", f"expected 1 to {MAX_CLASSES:,} class names of at most "
                                                 f"{MAX_NAME_LENGTH} characters, got {classes!r:.60}")
        outputs = model_config.get("num_classes")
        if outputs is not None and outputs != len(classes):
            _fail(source, "header.data.classes", f"{len(classes)} class names for a model with {outputs!r} outputs")
    shape = check_value(data.get("input_shape"), list, source, "header.data.input_shape", optional=True)
    if shape is not None:
        for i, size in enumerate(shape):
            check_value(size, int, source, f"header.data.input_shape[{i}]", 1, MAX_IMAGE_SIZE)
        if len(shape) not in (1, 3):
            _fail(source, "header.data.input_shape", f"expected (C, H, W) or (L,), got {shape}")
        expected = {"in_channels": shape[0], "input_size": shape[-1]} if len(shape) == 3 else {"seq_len": shape[0]}
        for key, value in expected.items():
            if key in model_config and model_config[key] != value:
                _fail(source, "header.data.input_shape",
                      f"{shape} does not match the model's {key}={model_config[key]!r}")
    normalization = data.get("normalization")
    if normalization is not None:
        channels = shape[0] if shape and len(shape) == 3 else None
        if (not isinstance(normalization, list) or len(normalization) != 2
                or not all(isinstance(v, list) and len(v) == (channels or len(v)) for v in normalization)):
            _fail(source, "header.data.normalization", f"expected [mean per channel, std per channel], "
                                                       f"got {normalization!r:.60}")
        for value in normalization[0] + normalization[1]:
            check_value(value, float, source, "header.data.normalization")
        if min(normalization[1], default=1) <= 0:
            _fail(source, "header.data.normalization", f"a standard deviation must be positive, got {normalization[1]}")
    alphabet = check_value(data.get("alphabet"), str, source, "header.data.alphabet", optional=True)
    if alphabet is not None and "vocab_size" in model_config and model_config["vocab_size"] != len(alphabet) + 1:
        _fail(source, "header.data.alphabet", f"{len(alphabet)} characters for a model with vocab_size "
                                              f"{model_config['vocab_size']!r}")
