"""The training loop behind ``juanji train``: mini-batches, metrics, checkpoints per epoch, bit-exact resume.

It writes a run directory (``juanji.runs.Run``: config, per-epoch checkpoints, best.npz, metrics, curves),
holding its lock while it trains; a checkpoint within an epoch too every ``--checkpoint-every`` steps, and at
the step where SIGINT or SIGTERM stop it (``StopSignals``, ``Stopped``).  Everything random — weight init and
dropout (``juanji.random``), shuffling and augmentation (``DataLoader``, a function of seed and epoch) — is
restored from the checkpoint, so a resumed run reaches the same weights bit for bit, from within an epoch too.
"""
from __future__ import annotations

import contextlib
import dataclasses
import inspect
import json
import math
import os
import shlex
import signal
import threading
import time
import warnings

import numpy as np

from . import checkpoint as ckpt
from . import distributed, get_num_threads, models, nn, optim
from . import random as jrandom
from .data import DataLoader, segmentation, sequences
from .data.datasets import channel_mean_std
from .data.folder import load_datasets
from .data.transforms import Compose, Normalize, RandomCrop, RandomHorizontalFlip
from .distributed.comm import leave_if_ended_elsewhere
from .init import initialize
from .metrics import evaluate, labelled_correct, mean_iou
from .model_memory import check_model_memory
from .models import did_you_mean
from .runs import Run, best_score
from .trained import eval_loader, is_folder
from .schema import LR_REFERENCE_BATCH, MAX_IMAGE_SIZE, TrainConfig, validate_config


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the message says where."""


class Stopped(Exception):
    """SIGINT or SIGTERM stopped the training at a step boundary, after a checkpoint there; the message says
    where, which file and how to go on; ``status`` is the shell's for the signal, 128 + its number."""

    def __init__(self, number: int, where: str, checkpoint: str, out: str):
        resume = shlex.join(["juanji", "train", "--resume", "--out", out])
        super().__init__(f"stopped by {signal.Signals(number).name} {where}; checkpoint written to {checkpoint}; "
                         f"continue with: {resume}")
        self.status = 128 + number


class StopSignals:
    """While installed (a ``with`` block of the main thread): the first SIGINT or SIGTERM is only noted
    (``received``: its number), for the training to stop at its next step boundary.  In one process it puts
    back the handlers there were before, so that a second one acts at once as it would have (KeyboardInterrupt,
    the end of the process); a checkpoint it interrupts stays whole, the atomic writer keeping the previous one.
    Data-parallel (``repeats_act=False``) later ones change nothing: a launcher may pass on a signal of its own
    besides (Slurm signals every process, mpirun passes its SIGTERM on), and ends the processes with SIGKILL
    after its grace period anyway; a signal it sends because another process failed ends this one quietly
    (``leave_if_ended_elsewhere``)."""

    def __init__(self, repeats_act: bool = True):
        self.received: int | None = None
        self._before: dict = {}
        self._repeats_act = repeats_act

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():      # where Python lets a handler be set
            self._before = {number: signal.signal(number, self._note) for number in (signal.SIGINT, signal.SIGTERM)}
        return self

    def __exit__(self, *exception) -> None:
        self._put_back()

    def _note(self, number, frame) -> None:
        leave_if_ended_elsewhere(number)
        self.received = self.received or number
        if self._repeats_act:
            self._put_back()

    def _put_back(self) -> None:
        for number, handler in self._before.items():
            signal.signal(number, signal.SIG_DFL if handler is None else handler)     # None: one set outside Python
        self._before = {}


@dataclasses.dataclass
class EpochSoFar:
    """The training metrics of an epoch's steps so far, which a mid-epoch checkpoint keeps so that the epoch,
    resumed, ends with the line it would have had: Σ loss × labelled elements, the correct and the labelled
    elements (every process's, summed, in a checkpoint) and the seconds it trained."""
    loss_sum: float = 0.0
    correct: float = 0
    seen: float = 0
    seconds: float = 0.0


OPTIMIZERS = ("sgd", "nesterov", "adam", "adamw", "rmsprop", "adagrad")
SCHEDULES = ("none", "step", "cosine", "exponential", "plateau")
PROGRESS_STEPS = 20         # the progress bar's loss and accuracy are brought up to date every this many steps


def make_optimizer(config: TrainConfig, parameters):
    name = config.optimizer
    if name in ("sgd", "nesterov"):
        return optim.SGD(parameters, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay,
                         nesterov=name == "nesterov")
    classes = {"adam": optim.Adam, "adamw": optim.AdamW, "rmsprop": optim.RMSprop, "adagrad": optim.Adagrad}
    if name not in classes:
        raise ValueError(f"unknown optimizer '{name}'{did_you_mean(name, OPTIMIZERS)} (known: {', '.join(OPTIMIZERS)})")
    return classes[name](parameters, lr=config.lr, weight_decay=config.weight_decay)


def scaled_lr(config: TrainConfig) -> float:
    """The learning rate the schedule starts from (a warm-up ends at it): ``--lr``, or with ``--lr-scaling
    linear`` Goyal et al.'s linear scaling rule, --lr × (--batch-size × --accumulate) / LR_REFERENCE_BATCH:
    --lr is the rate for a batch of 256 images.  The images per optimizer step decide it, never the number of
    processes (--batch-size is the global batch), so a run's trajectory stays that of one process."""
    if config.lr_scaling != "linear":
        return config.lr
    images = config.batch_size * config.accumulate
    try:
        lr = config.lr * (images / LR_REFERENCE_BATCH)
    except OverflowError:           # more images than a float can count
        lr = math.inf
    if not math.isfinite(lr):
        raise ValueError(f"--lr-scaling linear: --lr {config.lr:g} × {images:,} images per step ÷ "
                         f"{LR_REFERENCE_BATCH} is not a finite learning rate")
    return lr


def warmup_epochs(config: TrainConfig) -> int:
    """``config.warmup_epochs``, or by default one epoch before a decaying schedule (step, cosine,
    exponential): their first epochs run at the full learning rate, which on a small data set can throw the
    network into predicting one class for good (lr 0.05, momentum 0.9 on 4,000 images); none and plateau
    keep a constant start, as their users expect."""
    if config.warmup_epochs is not None:
        return config.warmup_epochs
    return 1 if config.schedule in ("step", "cosine", "exponential") else 0


def make_scheduler(config: TrainConfig, optimizer):
    """Per-epoch learning-rate schedule, after a linear warm-up of ``warmup_epochs(config)`` epochs."""
    warmup_length = warmup_epochs(config)
    decay_epochs = max(1, config.epochs - warmup_length)
    schedules = {
        "none": lambda: None,
        "step": lambda: optim.StepLR(optimizer, step_size=max(1, config.epochs // 3), gamma=0.5),
        "cosine": lambda: optim.CosineAnnealingLR(optimizer, T_max=decay_epochs),
        "exponential": lambda: optim.ExponentialLR(optimizer, gamma=0.9),
        "plateau": lambda: optim.ReduceLROnPlateau(optimizer, mode="max", factor=0.5, patience=1),
    }
    if config.schedule not in schedules:
        raise ValueError(f"unknown schedule '{config.schedule}'{did_you_mean(config.schedule, SCHEDULES)} "
                         f"(known: {', '.join(SCHEDULES)})")
    scheduler = schedules[config.schedule]()
    if warmup_length:
        if config.schedule in ("none", "plateau"):
            raise ValueError(f"warm-up combines with a step/cosine/exponential schedule, not '{config.schedule}'")
        warmup = optim.LinearLR(optimizer, start_factor=0.1, total_iters=warmup_length)
        scheduler = optim.SequentialLR(optimizer, [warmup, scheduler], milestones=[warmup_length])
    return scheduler


def absolute_data(data: str | None) -> str | None:
    """``--data`` as a run stores it: a folder by its absolute path (a relative one would later be read from
    whatever folder ``juanji eval`` or ``juanji serve`` starts in), a task name or None (the default) as given."""
    return os.path.abspath(data) if is_folder(data) else data


def train_command(config: TrainConfig, always=("out",)) -> str:
    """The ``juanji train`` command line that trains ``config``: the options ``always`` and every other one not
    at its default."""
    defaults, words = dataclasses.asdict(TrainConfig()), ["juanji", "train"]
    for name, value in dataclasses.asdict(config).items():
        flag = f"--{name.replace('_', '-')}"
        if value is None or value == defaults[name] and name not in always:
            continue
        if type(value) is bool:                 # --no-normalize, --skip-bad, --sync-bn
            words.append(flag if value else f"--no-{flag[2:]}")
        else:
            words += [flag, ",".join(value) if isinstance(value, list) else str(value)]
    return shlex.join(words)


def make_augmentation(names, image_size):
    known = {"crop": lambda: RandomCrop(image_size, padding=2), "flip": lambda: RandomHorizontalFlip()}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown augmentation {unknown} (known: {', '.join(known)})")
    return [known[n]() for n in names]


def skip_input_gradient(model) -> None:
    """Training images need no gradient: let the layer that first sees them skip computing it (as
    PyTorch does for inputs without requires_grad), which saves a col2im per step."""
    layer = model
    while isinstance(layer, nn.Sequential) and len(layer):
        layer = layer[0]
    if hasattr(layer, "input_grad"):
        layer.input_grad = False


def first_non_finite_layer(model, x) -> str:
    """Re-run a forward pass layer by layer and name the first layer whose output is not finite."""
    if not np.all(np.isfinite(x)):
        return "the input batch"
    with np.errstate(over="ignore", invalid="ignore"):
        if isinstance(model, nn.Sequential):        # only a Sequential's children run in their listed order
            for name, layer in model.named_children():
                x = layer(x)
                if not np.all(np.isfinite(x)):
                    return f"layer '{name}' ({layer!r})"
        elif not np.all(np.isfinite(model(x))):
            return f"the output of {type(model).__name__} (its layers are not checked one by one)"
    return "the loss (the logits were finite)"


@dataclasses.dataclass
class TrainingData:
    """What ``load_training_data`` reads: the two splits and how a sample enters the model."""
    train_set: object
    test_set: object
    skipped: list                   # (path, problem) of image files left out with --skip-bad
    normalization: tuple | None     # ([mean per channel], [std per channel]) of the training images
    input_shape: tuple              # one sample's shape: (C, H, W), or (L,) for token sequences
    model_kwargs: dict              # what the model is built from: channels and size, or vocabulary and length
    train_transform: object         # augmentation then normalisation, applied per training batch


# what a model reads → (what it does, the tasks that give it, the model for such data); images: the rest
READERS = {"words": ("reads words", sequences.TASKS, "a text model reads: --model text_cnn"),
           "masks": ("labels every pixel", segmentation.TASKS, "a segmentation model reads: --model unet")}


def check_model_fits_data(config: TrainConfig) -> None:
    """A text model needs a text task (``--data words``), a segmentation model a segmentation task
    (``--data fashion-masks``), and the reverse: refused before anything is loaded, naming the flag."""
    model_reads = ("words" if "vocab_size" in inspect.signature(models.builder(config.model)).parameters
                   else "masks" if models.is_segmentation(config.model) else "images")
    data_is = next((kind for kind, (_, tasks, _) in READERS.items() if config.data in tasks), "images")
    if model_reads == data_is:
        return
    if model_reads != "images":
        does, tasks, _ = READERS[model_reads]
        raise ValueError(f"--model {config.model} {does}: add --data {', '.join(tasks)}")
    raise ValueError(f"--data {config.data} is {data_is}, which only {READERS[data_is][2]}")


def load_training_data(config: TrainConfig) -> TrainingData:
    """The training and test sets of ``config.data`` (image files, IDX files, a text or a segmentation task),
    checked."""
    if config.image_size is not None and not 1 <= config.image_size <= MAX_IMAGE_SIZE:
        raise ValueError(f"--image-size must be between 1 and {MAX_IMAGE_SIZE}, got {config.image_size}")
    check_model_fits_data(config)
    if sequences.is_task(config.data):      # token sequences for text models: juanji/data/sequences.py
        train_set, test_set = sequences.load_task(config.data, config.limit)
        data = TrainingData(train_set, test_set, [], None, train_set.input_shape, train_set.model_kwargs(), None)
    else:
        if segmentation.is_task(config.data):   # images with a mask each: juanji/data/segmentation.py
            if config.augment:
                raise ValueError(f"--augment moves an image but not its mask: --data {config.data} trains "
                                 f"without it")
            train_set, test_set = segmentation.load_task(config.data, config.limit)
            skipped = []
        else:
            train_set, test_set, skipped = load_datasets(config.data, config.limit, config.image_size,
                                                         config.channels, config.skip_bad)
        for split, dataset in (("training", train_set), ("test", test_set)):
            if len(dataset) == 0:
                raise ValueError(f"the {split} set of {config.data or 'the default data'} is empty")
        input_shape = train_set.stored.shape[1:]
        normalization = None
        if config.normalize:
            normalization = channel_mean_std(train_set.stored)     # chunk by chunk: the pixels may be mapped
        normalize = [Normalize(*normalization)] if normalization else []
        transform = Compose(make_augmentation(config.augment, input_shape[1]) + normalize)
        data = TrainingData(train_set, test_set, skipped, normalization, input_shape,
                            {"in_channels": input_shape[0], "input_size": input_shape[1]}, transform)
    if config.epochs < 1:
        raise ValueError(f"--epochs must be at least 1, got {config.epochs}")
    return data


def make_loaders(config: TrainConfig, data: TrainingData, comm=None):
    """(training loader: shuffled and augmented per epoch, test loader), each process's share under MPI."""
    train_loader = DataLoader(data.train_set, config.batch_size, shuffle=True, seed=config.seed,
                              transform=data.train_transform)
    test_loader = eval_loader(data.test_set, data.normalization)
    if comm is not None:
        distributed.check_shares(len(data.train_set), config.batch_size, comm.size, len(data.test_set),
                                 config.sync_bn)
        train_loader = distributed.ShardedLoader(train_loader, comm.rank, comm.size)
        test_loader = distributed.ShardedLoader(test_loader, comm.rank, comm.size, skip_empty=True)
    return train_loader, test_loader


def make_model(config: TrainConfig, data: TrainingData, comm=None):
    """The model of ``config.model`` for the data, initialised from ``config.seed`` (its memory checked
    first), with synchronised batch norms under MPI if asked, and fused where that pays."""
    jrandom.seed(config.seed)
    model_kwargs = {**data.model_kwargs, "num_classes": len(data.train_set.classes)}
    check_model_memory(config.model, batch_size=min(config.batch_size, len(data.train_set)),
                       source="juanji train", **model_kwargs)
    model = models.create(config.model, **model_kwargs)
    initialize(model, config.init, jrandom.generator())
    skip_input_gradient(model)
    if comm is not None and config.sync_bn:
        distributed.convert_sync_batchnorm(model, comm)
    return nn.fuse_where_it_pays(model)      # the same state_dict names, fused or not


def _restore_generator(state, path: str, field: str) -> None:
    """``juanji.random``'s generator from the checkpoint header's ``field``; CheckpointError if it is none."""
    try:
        jrandom.set_state(state)
    except (KeyError, TypeError, ValueError) as error:
        raise ckpt.CheckpointError(f"{path}: header field '{field}' is not a generator state ({error})") from None


class Trainer:
    """Owns a run: model, optimizer, schedule, data, run directory.  ``fit()`` trains the remaining epochs.

    ``resume`` continues from the run's last checkpoint (of an epoch, or within one), or starts afresh when
    there is none;
    ``notes`` collects what the user should be told (a restart, a different thread count, repaired files).

    With ``comm`` (``juanji.distributed.init()``) the run is data-parallel: each process trains on its share
    of every batch, summing gradients over the processes in buckets of about ``bucket_mb`` MiB, and only
    process 0 writes the run directory and shows the ``progress`` bar; every process is given the same
    ``progress``, since the bar's loss and accuracy are summed over all of them every PROGRESS_STEPS steps.
    """

    def __init__(self, config: TrainConfig, progress: bool = True, resume: bool = False, comm=None,
                 bucket_mb: float = distributed.BUCKET_MB):
        config = dataclasses.replace(config, data=absolute_data(config.data))
        validate_config(dataclasses.asdict(config), "TrainConfig")     # config.json must read back: lr=inf never
        self.config, self.progress, self.comm = config, progress, comm
        self.bucket_mb = distributed.check_bucket_mb(bucket_mb)
        self.out = config.out
        self.run = Run(config.out)
        self.run.check_unlocked()
        self.start_epoch = 0
        self.start_step, self.so_far = 0, EpochSoFar()     # a resume mid-epoch: where, and the metrics till there
        self.history: list[dict] = []
        self.notes: list[str] = []
        self.resumed = False
        self._signals: StopSignals | None = None            # while fit(stop_on_signals=True) runs
        data = load_training_data(config)
        self.train_set, self.test_set, self.skipped = data.train_set, data.test_set, data.skipped
        self.normalization, self.input_shape = data.normalization, data.input_shape
        self.train_loader, self.test_loader = make_loaders(config, data, comm)
        self.model = make_model(config, data, comm)
        self.lr = scaled_lr(config)
        self.optimizer = make_optimizer(dataclasses.replace(config, lr=self.lr), self.model.parameters())
        self.scheduler = make_scheduler(config, self.optimizer)
        self.loss_fn = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
        if resume:
            self._resume()
        self.network = self.model   # connect() wraps it for data parallelism: process 0's weights, summed gradients

    # -- checkpoints ----------------------------------------------------------------------------
    def _save(self, epoch: int, history: list[dict], is_best: bool) -> None:
        """The epoch's checkpoint (with the whole metrics history, so a resume never depends on
        metrics.jsonl having been written), and best.npz when this epoch is the best so far; the mid-epoch
        checkpoint, now behind, goes."""
        meta = {**self._header(epoch, history), "metrics": history[-1]}
        ckpt.save(self.run.checkpoint_path(epoch), self.model, self.optimizer, **meta)
        self.run.remove_mid_epoch_checkpoint()
        if is_best:
            ckpt.save(self.run.best, self.model, **meta)

    def _save_mid_epoch(self, epoch: int, step: int, so_far: EpochSoFar) -> None:
        """checkpoints/mid-epoch.npz after optimizer step ``step`` of epoch ``epoch`` (from 0): the checkpoint of
        the ``epoch`` epochs before, which also holds the step, the epoch's metrics ``so_far`` summed over the
        processes and, data-parallel, every process's random generator (their dropout masks differ).  Every
        process calls it at the same step; process 0 writes."""
        states = None
        if self.comm is not None:
            loss_sum, correct, seen = map(float, self.comm.sum([so_far.loss_sum, so_far.correct, so_far.seen]))
            so_far = dataclasses.replace(so_far, loss_sum=loss_sum, correct=correct, seen=seen)
            mine = json.dumps(jrandom.get_state()).encode()
            states = [json.loads(state) for state in self.comm.allgather_bytes(mine)]
        if self.writes:
            meta = {**self._header(epoch, self.history), "step": step, "epoch_so_far": dataclasses.asdict(so_far)}
            if states:
                meta["rng_ranks"] = states
            ckpt.save(self.run.mid_epoch_checkpoint, self.model, self.optimizer, **meta)

    def _header(self, epoch: int, history: list[dict]) -> dict:
        """What every training checkpoint's header holds after ``epoch`` epochs of ``history``."""
        meta = {"epoch": epoch, "config": dataclasses.asdict(self.config), "history": history,
                "scheduler": self.scheduler.state_dict() if self.scheduler else None,
                "rng": jrandom.get_state(), "threads": get_num_threads(),
                "data": {"classes": self.train_set.classes, "normalization": self.normalization,
                         "input_shape": list(self.input_shape)}}
        if sequences.is_task(self.config.data):     # what `juanji predict` needs to encode a word
            meta["data"]["alphabet"] = self.train_set.alphabet
        return meta

    def _resume(self) -> None:
        path = self.run.latest_checkpoint()
        if path is None:
            self.notes.append(f"{self.out}: no epoch had completed (no checkpoint yet), so the run starts "
                              f"from the beginning")
            return
        state = ckpt.load(path, self.model)
        ckpt.check_same_run(state, path, self.run.config_path, dataclasses.asdict(self.config), self.model,
                            self.optimizer, {"classes": list(self.train_set.classes),
                                             "input_shape": list(self.input_shape)})
        ckpt.restore_model(state, self.model, path)
        ckpt.restore_optimizer(state, self.optimizer, path)
        if self.scheduler and state.meta.get("scheduler"):
            self._restore_schedule(state.meta["scheduler"], (state.meta.get("config") or {}).get("epochs"), path)
        if not isinstance(state.meta.get("rng"), dict) or not isinstance(state.meta.get("epoch"), int):
            raise ckpt.CheckpointError(f"{path}: not a training checkpoint (no epoch or RNG state to resume from)")
        _restore_generator(state.meta["rng"], path, "rng")
        self.start_epoch = state.meta["epoch"]
        self.history = state.meta.get("history", [])
        if "step" in state.meta:
            self._resume_within_epoch(state.meta, path)
        self.resumed = True
        threads = state.meta.get("threads")
        if threads is not None and threads != get_num_threads() and self.start_epoch < self.config.epochs:
            self.notes.append(f"{self.out}: trained so far with {threads} thread(s), now {get_num_threads()}: "
                              f"the results will differ from an uninterrupted run in the last bits")

    def _resume_within_epoch(self, meta: dict, path: str) -> None:
        """From a mid-epoch checkpoint: the step to go on from, the epoch's metrics so far (process 0 adds them,
        the epoch's sums being over every process) and each process's random generator.  On another number of
        processes than wrote it, process r > 0 starts its stream as at the epoch's start: with dropout the run
        then differs from an uninterrupted one, as it does for any change of their number."""
        step = meta["step"]
        if step >= self.steps_per_epoch:
            raise ckpt.CheckpointError(f"{path}: saved {step} steps into an epoch, but an epoch of this run's data "
                                       f"has {self.steps_per_epoch}")
        self.start_step = step
        if self.writes:
            self.so_far = EpochSoFar(*(meta["epoch_so_far"][f.name] for f in dataclasses.fields(EpochSoFar)))
        if self.comm is not None and self.comm.rank > 0:
            states = meta.get("rng_ranks") or []
            if len(states) == self.comm.size:
                _restore_generator(states[self.comm.rank], path, "rng_ranks")
            else:
                jrandom.seed([self.config.seed, self.start_epoch, self.comm.rank])
        if self.start_epoch < self.config.epochs:
            self.notes.append(f"{self.out}: epoch {self.start_epoch + 1} goes on after step {step} of "
                              f"{self.steps_per_epoch}")

    @property
    def steps_per_epoch(self) -> int:
        """Optimizer steps per epoch: one per --accumulate batches, and one for the batches at the end."""
        return -(-len(self.train_loader) // self.config.accumulate)

    def _restore_schedule(self, saved: dict, trained_for, path: str) -> None:
        """The schedule's state from the checkpoint; when ``--epochs`` changed and the schedule is a formula
        of the epoch over the whole run (step, cosine, warm-up), it is the one just built over the new total,
        continued at the checkpoint's step, so the learning rate does not run past the old end and rise."""
        if trained_for in (None, self.config.epochs) or not isinstance(self.scheduler, optim.ClosedFormScheduler):
            self.scheduler.load_state_dict(saved)
            return
        step, was = saved.get("last_epoch"), saved.get("last_lr")
        if type(step) is not int or step < 0 or not isinstance(was, (int, float)):
            raise ckpt.CheckpointError(f"{path}: header field 'scheduler' has no valid last_epoch and last_lr")
        self.scheduler.continue_at(step)
        self.notes.append(f"{self.out}: the {self.config.schedule} schedule was set for {trained_for} epochs and "
                          f"now runs over {self.config.epochs}: the learning rate goes on at "
                          f"{self.scheduler.last_lr:.4g} (it was {was:.4g})")

    # -- the loop ---------------------------------------------------------------------------------
    def train_epoch(self, epoch: int, first: int = 0, so_far: EpochSoFar | None = None) -> dict:
        """Train epoch ``epoch`` (from 0) from its optimizer step ``first`` on (where a mid-epoch checkpoint left
        it, with the epoch's metrics ``so_far``); its training metrics."""
        self.model.train()
        self.train_loader.set_epoch(epoch)
        if self.comm is not None and self.comm.rank > 0 and not first:    # dropout masks of its own (rank 0's
            jrandom.seed([self.config.seed, epoch, self.comm.rank])         # stream is saved; mid-epoch, every one)
        so_far = so_far or EpochSoFar()
        total_loss, correct, seen = so_far.loss_sum, so_far.correct, so_far.seen
        started = time.perf_counter() - so_far.seconds
        first_batch = first * self.config.accumulate
        bar = self._progress_bar(epoch, first_batch)
        for step, (x, y) in enumerate(self.train_loader.batches(first_batch), first_batch):
            # --accumulate N: one optimizer step per N batches (and at the epoch's end), gradients summed till then
            ends_step = (step + 1) % self.config.accumulate == 0 or step + 1 == len(self.train_loader)
            with contextlib.nullcontext() if ends_step else self.network.no_sync():
                if not len(y):          # this process's share of the epoch's short last batch is empty
                    self.network.join_empty()
                else:
                    logits = self.network(x)
                    loss = self.loss_fn(logits, y)
                    if not np.isfinite(loss):
                        raise TrainingDiverged(f"loss became {loss} at epoch {epoch + 1}, step {step + 1}: first "
                                               f"non-finite output in {first_non_finite_layer(self.model, x)}; "
                                               f"{self._after_divergence()}")
                    self.network.backward(self.loss_fn.backward())
            if ends_step:
                self.optimizer.step()
            if len(y):
                hits, labelled = labelled_correct(logits, y, self.loss_fn.ignore_index)   # samples, or pixels
                total_loss += float(loss) * labelled
                correct += hits
                seen += labelled
            if self.progress:
                self._show_progress(bar, step, total_loss, correct, seen)
            if ends_step and step + 1 < len(self.train_loader):
                stopped = self._step_boundary(epoch, (step + 1) // self.config.accumulate, lambda: EpochSoFar(
                    total_loss, correct, seen, time.perf_counter() - started))
                if stopped:
                    if bar is not None:
                        bar.close()
                    raise stopped
        if self.comm is not None:
            total_loss, correct, seen = self.comm.sum([total_loss, correct, seen])
        if bar is not None:                 # at last the epoch's figures, as its line gives them
            bar.set_postfix(loss=f"{total_loss / seen:.4f}", acc=f"{correct / seen:.4f}")
            bar.close()
        return {"train_loss": total_loss / seen, "train_accuracy": correct / seen,
                "train_seconds": time.perf_counter() - started}

    def _step_boundary(self, epoch: int, step: int, so_far) -> Stopped | None:
        """After optimizer step ``step`` of epoch ``epoch``, not its last: the mid-epoch checkpoint when
        --checkpoint-every asks for one or a signal stops the run here, and then the ``Stopped`` to raise (the
        same on every process; each waits until process 0 has written).  ``so_far()``: the epoch's metrics."""
        number, every = self._agreed_signal(), self.config.checkpoint_every
        if number is None and not (every and (epoch * self.steps_per_epoch + step) % every == 0):
            return None
        self._save_mid_epoch(epoch, step, so_far())
        if number is None:
            return None
        if self.comm is not None:
            self.comm.barrier()
        return Stopped(number, f"at epoch {epoch + 1}, step {step} of {self.steps_per_epoch}",
                       self.run.mid_epoch_checkpoint, self.out)

    def _agreed_signal(self) -> int | None:
        """The signal that stops every process at this step boundary, or None to go on (always, unless
        ``fit`` watches for signals).  Data-parallel, one small exchange: SIGTERM if any process received one,
        else SIGINT if any did."""
        if self._signals is None:
            return None
        received = self._signals.received
        if self.comm is None:
            return received
        interrupted, terminated = self.comm.sum([received == signal.SIGINT, received == signal.SIGTERM])
        return signal.SIGTERM if terminated else signal.SIGINT if interrupted else None

    def _progress_bar(self, epoch, first_batch: int = 0):
        """The epoch's bar, counting the images of the global batches (so its rate is every process's images
        per second), on the process that writes the run; None elsewhere or without ``progress``."""
        if not (self.progress and self.writes):
            return None
        from tqdm import tqdm  # an optional extra: only the command line needs it
        return tqdm(total=len(self.train_set), desc=f"epoch {epoch + 1}/{self.config.epochs}", unit="img",
                    leave=False, initial=min(first_batch * self.config.batch_size, len(self.train_set)))

    def _show_progress(self, bar, step: int, total_loss: float, correct: int, seen: int) -> None:
        """After ``step``: the bar moves on by the step's global batch, and every PROGRESS_STEPS steps shows the
        epoch's loss and accuracy so far, summed over the processes (every process takes part in the sum)."""
        if bar is not None:
            bar.update(min(self.config.batch_size, len(self.train_set) - step * self.config.batch_size))
        if step % PROGRESS_STEPS:
            return
        if self.comm is not None:
            total_loss, correct, seen = self.comm.sum([total_loss, correct, seen])
        if bar is not None and seen:
            bar.set_postfix(loss=f"{total_loss / seen:.4f}", acc=f"{correct / seen:.4f}")

    def _after_divergence(self) -> str:
        last = self.run.latest_checkpoint()
        if last is None:
            smaller = dataclasses.replace(self.config, lr=float(f"{min(self.config.lr / 10, TrainConfig.lr):.3g}"))
            return (f"try a smaller --lr. No epoch completed, so there is no checkpoint; this starts the run afresh "
                    f"with a tenth of the learning rate (at most the default): {train_command(smaller, ('out', 'lr'))}")
        return f"try a smaller --lr. The last good checkpoint, {last}, is kept"

    def fit(self, on_epoch_end=None, on_note=None, stop_on_signals: bool = False) -> list[dict]:
        """Train the remaining epochs while holding the run's lock; ``on_note(text)`` hears of repaired files.
        Data-parallel, every process calls it and process 0 alone holds the lock and writes the run.
        ``stop_on_signals``: a SIGINT or SIGTERM stops the training at its next step boundary, after a
        checkpoint there, with ``Stopped`` (``StopSignals``); without it they act where they arrive."""
        self.connect()
        watch = StopSignals(repeats_act=self.comm is None) if stop_on_signals else contextlib.nullcontext()
        with warnings.catch_warnings(), watch as signals:
            self._signals = signals
            # floating-point trouble shows as a non-finite loss, reported with its layer, not as NumPy's
            # warnings (a filter, not np.errstate: the batch's worker threads do not share the errstate)
            warnings.filterwarnings("ignore", r"(overflow|invalid value|divide by zero) encountered", RuntimeWarning)
            if not self.writes:
                return self._epochs(on_epoch_end)
            os.makedirs(self.run.checkpoint_dir, exist_ok=True)
            with self.run.lock():
                self.run.remove_stale_temporaries()
                self.run.write_config(self.config)
                if self.resumed:
                    for note in self.run.repair(self.history):
                        self.notes.append(note)
                        if on_note:
                            on_note(note)
                return self._epochs(on_epoch_end)

    def connect(self) -> None:
        """Data-parallel, the first collectives (``fit`` calls it; once is enough): ValueError on every process
        unless all were started with the same options and data (``--data`` by its contents: a machine may keep
        its copy elsewhere), then every process takes process 0's weights.  In one process, with --accumulate,
        the wrapper that sums the batches' gradients."""
        if self.network is not self.model or self.comm is None and self.config.accumulate == 1:
            return
        if self.comm is not None:
            options = {f"--{name.replace('_', '-')}": value for name, value in dataclasses.asdict(self.config).items()
                       if name != "data"}
            distributed.check_agreement(self.comm, {**options, "--bucket-mb": self.bucket_mb,
                                                    "--no-progress": not self.progress,
                                                    "epochs already trained": self.start_epoch,
                                                    "steps of the next epoch already trained": self.start_step,
                                                    **distributed.data_identity(training=self.train_set,
                                                                                test=self.test_set)})
        self.network = distributed.DistributedDataParallel(self.model, self.comm, self.bucket_mb)

    @property
    def writes(self) -> bool:
        """Whether this process writes the run directory: process 0 of a data-parallel run."""
        return self.comm is None or self.comm.rank == 0

    def _epochs(self, on_epoch_end) -> list[dict]:
        history = self.history
        for epoch in range(self.start_epoch, self.config.epochs):
            lr = self.optimizer.lr
            first, so_far = (self.start_step, self.so_far) if epoch == self.start_epoch else (0, None)
            metrics = {"epoch": epoch + 1, "lr": lr, **self.train_epoch(epoch, first, so_far)}
            test = evaluate(self.network, self.test_loader, self.loss_fn, num_classes=len(self.train_set.classes))
            confusion = test["confusion"]
            if self.comm is not None:       # each process tested its share: the mean over all of them
                confusion = self.comm.sum(confusion)
                test = self.comm.weighted_mean({"loss": test["loss"], "accuracy": test["accuracy"]}, test["count"])
            if not np.isfinite(test["loss"]):
                raise TrainingDiverged(f"test loss became {test['loss']} after epoch {epoch + 1}: the weights are "
                                       f"no longer finite; {self._after_divergence()}")
            metrics.update(test_loss=test["loss"], test_accuracy=test["accuracy"],
                           predicted_classes=int(np.count_nonzero(confusion.sum(axis=0))))
            if segmentation.is_task(self.config.data):      # accuracy is per pixel there, mostly background's
                metrics["test_mean_iou"] = mean_iou(confusion)
            metrics["images_per_second"] = len(self.train_set) / metrics["train_seconds"]
            if self.scheduler is not None:
                if isinstance(self.scheduler, optim.ReduceLROnPlateau):
                    self.scheduler.step(test["accuracy"])
                else:
                    self.scheduler.step()
            history.append(metrics)
            is_best = best_score(metrics) > max(map(best_score, history[:-1]), default=-1.0)
            if self.writes:
                self._save(epoch + 1, history, is_best)
                self.run.write_metrics(history)
            if on_epoch_end:
                on_epoch_end(metrics)
            if epoch + 1 < self.config.epochs and (number := self._agreed_signal()) is not None:
                raise Stopped(number, f"after epoch {epoch + 1} of {self.config.epochs}",
                              self.run.checkpoint_path(epoch + 1), self.out)
        return history
