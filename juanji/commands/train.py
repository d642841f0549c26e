"""``juanji train``, ``juanji eval``, ``juanji predict``: the training run and what uses its checkpoints."""
from __future__ import annotations

import dataclasses
import re
import shlex
import sys

import numpy as np

from .. import distributed
from ..data import sequences
from ..metrics import confusion_matrix, mean_iou
from ..runs import Run
from ..trained import TrainedModel
from . import add_photo_options
from ..schema import LR_REFERENCE_BATCH, LR_SCALINGS, SchemaError, TrainConfig, validate_config


def register(sub):
    """Add train, eval and predict to the ``juanji`` argument parser."""
    defaults = TrainConfig()
    p = sub.add_parser("train", help="train a model (default: LeNet-5 on Fashion-MNIST)",
                       description="Train a model; every option defaults to the README's recommended run.")
    p.add_argument("--model", help=f"model name (default {defaults.model}); see 'juanji models'")
    p.add_argument("--epochs", type=int, help=f"(default {defaults.epochs})")
    p.add_argument("--batch-size", type=int, help=f"(default {defaults.batch_size})")
    p.add_argument("--accumulate", type=int, metavar="N", help="one optimizer step per N batches, their gradients "
                                                               "summed: the step of one batch N times as large "
                                                               f"(default {defaults.accumulate})")
    p.add_argument("--optimizer", help=f"sgd, nesterov, adam, adamw, rmsprop, adagrad (default {defaults.optimizer})")
    p.add_argument("--lr", type=float, help=f"learning rate (default {defaults.lr})")
    p.add_argument("--momentum", type=float, help=f"for sgd/nesterov (default {defaults.momentum})")
    p.add_argument("--weight-decay", type=float, help=f"(default {defaults.weight_decay})")
    p.add_argument("--schedule", help=f"none, step, cosine, exponential, plateau (default {defaults.schedule})")
    p.add_argument("--warmup-epochs", type=int, help="linear warm-up epochs before the schedule, from lr/10 "
                                                     "(default: 1 before step, cosine and exponential, else 0)")
    p.add_argument("--lr-scaling", choices=LR_SCALINGS,
                   help=f"linear: --lr is the rate for a batch of {LR_REFERENCE_BATCH} images, and the rate used is "
                        f"--lr × --batch-size × --accumulate ÷ {LR_REFERENCE_BATCH}, whatever the number of MPI "
                        "processes (Goyal et al.'s linear scaling rule; default none)")
    p.add_argument("--init", help=f"torch, kaiming_uniform, kaiming_normal, xavier_uniform, xavier_normal, "
                                  f"lecun_uniform, lecun_normal (default {defaults.init})")
    p.add_argument("--no-normalize", dest="normalize", action="store_const", const=False,
                   help="feed pixels in [0, 1] instead of standardising by the training set's mean/std")
    p.add_argument("--augment", help="comma-separated: crop (random crop, padding 2), flip (horizontal)")
    p.add_argument("--label-smoothing", type=float, help="(default 0)")
    p.add_argument("--data", help="folder with MNIST-format IDX files (default: Fashion-MNIST of the Debian "
                                  "package dataset-fashion-mnist), or of images with one sub-folder per class "
                                  "(optionally inside train/ and test/ or val/; else 10 %% are held out for testing)")
    p.add_argument("--limit", type=int, help="train on the first N training images only")
    p.add_argument("--image-size", type=int, help="image folders: shorter side scaled to N, centre square cut "
                                                  "out (default 32)")
    p.add_argument("--channels", type=int, choices=(1, 3),
                   help="image folders: 1 grayscale, 3 RGB (default: 1 if every image is gray, else 3)")
    p.add_argument("--skip-bad", action="store_const", const=True,
                   help="image folders: leave out (and list) files that cannot be read instead of stopping")
    p.add_argument("--out", help="run directory (default runs/MODEL, or runs/MODEL-2 ... if taken)")
    p.add_argument("--seed", type=int, help=f"(default {defaults.seed})")
    p.add_argument("--sync-bn", action="store_const", const=True,
                   help="under mpirun/srun: batch-norm statistics over the whole global batch, not each "
                        "process's share (no effect in one process)")
    p.add_argument("--timeout", type=float, default=distributed.DEFAULT_TIMEOUT, metavar="SECONDS",
                   help=f"under mpirun/srun: end the job, naming the process, when one has not reached an exchange "
                        f"SECONDS after another (default {distributed.DEFAULT_TIMEOUT:g}; time loading data counts)")
    p.add_argument("--bucket-mb", type=float, default=distributed.BUCKET_MB, metavar="MIB",
                   help=f"under mpirun/srun: gradients summed over the processes in parts of about MIB MiB, each "
                        f"while the backward goes on (default {distributed.BUCKET_MB:g})")
    p.add_argument("--checkpoint-every", type=int, metavar="STEPS",
                   help="also checkpoint every STEPS optimizer steps within an epoch (checkpoints/mid-epoch.npz, "
                        "replaced each time), so that --resume loses less than an epoch (default: at epoch ends "
                        "only; SIGINT and SIGTERM always stop the training at a step with a checkpoint)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint, of "
                                                         "an epoch or within one, exactly where it stopped (also "
                                                         "with another number of MPI processes)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    p.add_argument("--tensorboard", metavar="DIR", help="also write TensorBoard event files into DIR (scalars, "
                                                        "weight/gradient histograms, kernels; the [tensorboard] extra)")
    p.set_defaults(run=cmd_train)
    p = sub.add_parser("eval", help="test accuracy and confusion matrix of a run or checkpoint")
    p.add_argument("checkpoint", metavar="RUN_OR_CHECKPOINT")
    p.add_argument("--data", help="folder with IDX files or class image folders (default: the one trained on)")
    p.set_defaults(run=cmd_eval)
    p = sub.add_parser("predict", help="top-3 classes of image files (PNG, JPG, BMP, GIF), or of words for a "
                                       "text run (--data words)")
    p.add_argument("checkpoint", metavar="RUN_OR_CHECKPOINT")
    p.add_argument("images", nargs="+", metavar="INPUT", help="image files, or words for a text run")
    add_photo_options(p)
    p.set_defaults(run=cmd_predict)


def _resolve_train_config(args) -> TrainConfig:
    """The run's configuration: the options given, on top of the saved config.json with --resume."""
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)
             if getattr(args, f.name, None) is not None}
    if isinstance(given.get("augment"), str):
        given["augment"] = [a for a in given["augment"].split(",") if a]
    if "data" in given:             # as the run stores it, so that --resume compares like with like
        from ..train import absolute_data
        given["data"] = absolute_data(given["data"])
    if args.resume and "out" not in given:
        raise ValueError("--resume needs --out RUN_DIR: the run to continue")
    run = Run(given["out"]) if "out" in given else Run.free(TrainConfig(**given).model)
    note = run.claim(args.resume)
    if note and distributed.is_main_process():
        print(note)
    if args.resume:
        saved = dataclasses.asdict(run.config)
        changed = {k: v for k, v in given.items()
                   if k not in ("out", "epochs", "checkpoint_every") and saved.get(k) != v}
        if changed:
            raise ValueError(f"--resume continues a run as it was configured; these options differ from "
                             f"{run.config_path}: {sorted(changed)}")
        return _checked({**saved, **given})
    return _checked({**dataclasses.asdict(TrainConfig(**given)), "out": run.path})


def _checked(options: dict) -> TrainConfig:
    """The options through the config's schema (finite, in range), a problem named by its flag."""
    try:
        return validate_config(options, "the options")
    except SchemaError as error:
        found = re.fullmatch(r"the options: field '(\w+)': (.*)", str(error))
        if not found:
            raise
        raise ValueError(f"--{found[1].replace('_', '-')} {found[2]}") from None


def cmd_train(args):
    from .. import set_num_threads
    from ..train import Stopped, Trainer, warmup_epochs
    comm = distributed.init(args.timeout)       # None when started plainly: mpi4py is not even imported
    # Every process resolves the same run directory: process 0 creates it only in fit(), after `together`.
    config = distributed.together(comm, lambda: _resolve_train_config(args))
    if comm is not None and args.threads is None:
        set_num_threads(comm.default_threads())
    main_process = comm is None or comm.rank == 0
    say = print if main_process else (lambda *_, **__: None)        # one process speaks
    trainer = distributed.together(comm, lambda: Trainer(config, progress=args.progress, resume=args.resume,
                                                         comm=comm, bucket_mb=args.bucket_mb))
    trainer.connect()                   # every process started alike (else one line naming what differs)
    for note in trainer.notes:
        say(note)
    if trainer.start_epoch >= config.epochs:
        trainer.fit(on_note=say)            # repairs best.npz, metrics.jsonl, curves.png if a kill left them stale
        say(f"{config.out}: already trained for {trainer.start_epoch} epochs; pass a larger --epochs to go on")
        return 0
    for path, problem in trainer.skipped:
        say(f"skipped {path}: {problem}")
    processes = f" in {comm.size} processes" if comm is not None else ""
    say(f"training {config.model} ({trainer.model.num_parameters():,} parameters) on "
        f"{len(trainer.train_set):,} images{processes}, testing on {len(trainer.test_set):,}; "
        f"run directory {config.out}")
    if config.lr_scaling == "linear":
        warmup = warmup_epochs(config)
        say(f"learning rate {trainer.lr:.4g}: --lr {config.lr:g} × {config.batch_size * config.accumulate:,} images "
            f"per step ÷ {LR_REFERENCE_BATCH} (--lr-scaling linear)"
            + (f", reached after a warm-up of {warmup} epoch{'s' * (warmup > 1)} from a tenth of it" if warmup else ""))

    board = None
    if args.tensorboard and main_process:
        from ..tensorboard import TensorBoardWriter
        board = TensorBoardWriter(args.tensorboard)

    def report(m):
        say(f"epoch {m['epoch']:>2}/{config.epochs}  lr {m['lr']:.4g}  train loss {m['train_loss']:.4f} "
            f"acc {m['train_accuracy']:.4f}  test loss {m['test_loss']:.4f} acc {m['test_accuracy']:.4f}  "
            f"{m['train_seconds']:.1f} s ({m['images_per_second']:.0f} img/s)"
            + (f"  test mean IoU {m['test_mean_iou']:.4f}" if "test_mean_iou" in m else ""), flush=True)
        if m["predicted_classes"] == 1 < len(trainer.train_set.classes):
            say(f"epoch {m['epoch']}: the model predicts one class for every test sample: it has collapsed "
                f"(often a learning rate too large for the data: try a smaller --lr, or --warmup-epochs 1)")
        if board:
            try:
                board.write_epoch(m, trainer.model)
            except OSError as error:        # after the epoch's checkpoint: the run goes on from it
                resume = shlex.join(["juanji", "train", "--resume", "--out", config.out])
                raise OSError(f"{error}; training stopped after epoch {m['epoch']}, whose checkpoint is kept: "
                              f"'{resume}' goes on from it") from None

    try:
        history = trainer.fit(on_epoch_end=report, on_note=say, stop_on_signals=True)
    except Stopped as stopped:          # every process alike, after process 0 wrote the checkpoint
        if main_process:
            print(f"juanji: {stopped}", file=sys.stderr, flush=True)
        return stopped.status
    finally:
        if board:
            board.close()
    best = max(history, key=lambda m: m["test_accuracy"])
    iou = f", mean IoU {history[-1]['test_mean_iou']:.4f}" if "test_mean_iou" in history[-1] else ""
    say(f"final test accuracy {history[-1]['test_accuracy']:.4f}{iou} (best {best['test_accuracy']:.4f} at epoch "
        f"{best['epoch']}); checkpoints, metrics.jsonl and curves.png in {config.out}")
    return 0


def cmd_eval(args):
    trained = TrainedModel.load(args.checkpoint)
    test_set = trained.test_set(args.data)
    result = trained.evaluate(test_set)
    classes = trained.classes
    matrix = confusion_matrix(test_set.labels, result["predictions"], len(classes))
    kind = "sequences" if isinstance(test_set, sequences.SequenceDataset) else "images"
    print(f"test accuracy {result['accuracy']:.4f}  loss {result['loss']:.4f}  ({len(test_set)} {kind})")
    if trained.is_segmentation:
        print(f"(accuracy and confusion matrix per pixel) mean IoU {mean_iou(matrix):.4f}")
    width = max(len(c) for c in classes) + 4
    print("confusion matrix (rows: true class, columns: predicted class)")
    print(" " * width + "".join(f"{i:>6}" for i in range(len(classes))))
    for i, (name, row) in enumerate(zip(classes, matrix)):
        print(f"{i:>2}  {name:<{width - 4}}" + "".join(f"{v:>6}" for v in row))
    return 0


def cmd_predict(args):
    from ..functional.activation import softmax
    trained = TrainedModel.load(args.checkpoint)
    classes = trained.classes
    if trained.is_segmentation:
        raise ValueError(f"{args.checkpoint}: a segmentation run labels every pixel, not whole images: "
                         f"see 'juanji show masks'")
    for item in args.images:
        if trained.is_text:             # a text run: the arguments are words
            x = trained.encode([item])
        else:
            x = trained.prepare(item, args.invert, args.center)[1][None]
        probabilities = softmax(trained.model(x), axis=1)[0]
        top = np.argsort(probabilities)[::-1][:3]
        ranked = ", ".join(f"{classes[i]} {probabilities[i]:.3f}" for i in top)
        print(f"{item}: {ranked}")
    return 0
