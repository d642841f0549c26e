"""The measurements the concept pages quote but cannot run in their own examples (they train networks for
minutes): each experiment writes one JSON beside this script, with its command, seeds, date and machine, and
tests/docs/test_experiments.py checks every number the pages quote against it.

    python docs/experiments/experiments.py [--quick] [--out DIR] [NAME ...]     # NAME: pooling, heads

pooling   LeNet-5 with max pooling, with average pooling, with stride-2 convolutions in place of the
          poolings (the same 61,706 weights) and with no downsampling at all, each trained alike (the recipe of
          ``juanji train``, 10 epochs) on the first 6,000 Fashion-MNIST training images, with seeds 0, 1 and 2:
          accuracy on those images and on the 10,000 test images (overfitting shows as the gap), and how much
          moving 2,000 test images by 1–3 pixels changes the features and the predicted class (the pooling page).
heads     LeNet-5 trained by ``juanji train --epochs 5 --limit 10000``; scikit-learn's linear SVM, logistic
          regression and decision tree trained on the same 10,000 images' pixels, conv features (the 400 numbers
          the fully connected layers read) and penultimate features (the 84 the last layer reads), against the
          network's own head, on the 10,000 test images (the classifier page).
--quick   a few hundred images, one epoch, one seed: checks that the script runs (the tests do); its numbers mean
          nothing, and it must write elsewhere (--out).

The JSON records the seconds each took. The committed run took 13 minutes (pooling 586 s, heads 216 s; 7 minutes
of CPU time) on 2 cores shared with other work, with the compiled kernels (``juanji[fast]``; NumPy's without it).
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import sklearn
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC
from sklearn.tree import DecisionTreeClassifier

import juanji
import juanji.nn as nn
from juanji import random as jrandom
from juanji.data import DataLoader, load_mnist
from juanji.data.datasets import as_float, channel_mean_std
from juanji.data.transforms import Normalize
from juanji.init import initialize
from juanji.io import write_text
from juanji.runtime.kernels import numba_available
from juanji.schema import TrainConfig
from juanji.train import Trainer, make_optimizer, make_scheduler, skip_input_gradient, train_command
from juanji.trained import EVAL_BATCH_SIZE, TrainedModel

OUT = Path(__file__).resolve().parent
NAMES = ("pooling", "heads")
SHIFTS = (1, 2, 3)                                         # pixels
DIRECTIONS = {"right": (0, 1), "left": (0, -1), "down": (1, 0), "up": (-1, 0)}     # (rows down, columns right)


# -- the networks ------------------------------------------------------------------------------------------
def lenet(downsampling: str) -> nn.Sequential:
    """LeNet-5 (ReLU) whose two 2×2 downsamplings are max pooling ("max"), average pooling ("avg"), the
    convolution before them taking stride 2 instead ("stride": 28 → 14 → 5, the same maps and weights as
    with pooling), or none at all ("none": 28 → 28 → 24, and a first fully connected layer 23 times larger)."""
    pool = {"max": nn.MaxPool2d, "avg": nn.AvgPool2d}.get(downsampling)
    if pool is not None:
        features, side = [nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), pool(2),
                          nn.Conv2d(6, 16, 5), nn.ReLU(), pool(2)], 5
    elif downsampling == "stride":
        features, side = [nn.Conv2d(1, 6, 5, stride=2, padding=2), nn.ReLU(),
                          nn.Conv2d(6, 16, 5, stride=2), nn.ReLU()], 5
    else:
        features, side = [nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.Conv2d(6, 16, 5), nn.ReLU()], 24
    return nn.Sequential(*features, nn.Flatten(), nn.Linear(16 * side * side, 120), nn.ReLU(),
                         nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))


def split_at(model: nn.Sequential, index: int):
    """(the layers up to and including ``index``, the rest): features and the head that reads them."""
    return model[:index + 1], model[index + 1:]


def flatten_index(model: nn.Sequential) -> int:
    return next(i for i, layer in enumerate(model) if isinstance(layer, nn.Flatten))


def train(model, train_set, config: TrainConfig, normalization):
    """``model`` trained on ``train_set`` as ``juanji train`` trains (its initialisation, optimizer, schedule and
    shuffling, from ``config``), in place."""
    jrandom.seed(config.seed)
    initialize(model, config.init, jrandom.generator())
    skip_input_gradient(model)
    optimizer = make_optimizer(config, model.parameters())
    scheduler = make_scheduler(config, optimizer)
    loss_fn = nn.CrossEntropyLoss()
    loader = DataLoader(train_set, config.batch_size, shuffle=True, seed=config.seed,
                        transform=Normalize(*normalization))
    model.train()
    for epoch in range(config.epochs):
        loader.set_epoch(epoch)
        for x, y in loader:
            loss_fn(model(x), y)
            model.backward(loss_fn.backward())
            optimizer.step()
        if scheduler is not None:
            scheduler.step()
    return model.eval()


def run_through(layers, images: np.ndarray, normalization) -> np.ndarray:
    """``layers``' output for stored images (N, C, H, W), normalised as in training, in batches, no cache."""
    normalize = Normalize(*normalization)
    with nn.no_grad():
        return np.concatenate([layers(normalize(as_float(images[start:start + EVAL_BATCH_SIZE])))
                               for start in range(0, len(images), EVAL_BATCH_SIZE)])


def shifted(images: np.ndarray, down: int, right: int) -> np.ndarray:
    """``images`` (N, C, H, W) moved ``down`` rows and ``right`` columns (negative: up, left); what comes in at
    the edge is background (0)."""
    out = np.zeros_like(images)
    h, w = images.shape[-2:]
    out[..., max(down, 0):h + min(down, 0), max(right, 0):w + min(right, 0)] = \
        images[..., max(-down, 0):h + min(-down, 0), max(-right, 0):w + min(-right, 0)]
    return out


def mean_over(runs: list[dict]) -> dict:
    """The mean of every number of ``runs`` (dicts alike, numbers nested in dicts), rounded to 4 digits."""
    first = runs[0]
    return {key: mean_over([run[key] for run in runs]) if isinstance(first[key], dict)
            else round(float(np.mean([run[key] for run in runs])), 4) for key in first}


# -- pooling: what it buys -----------------------------------------------------------------------------------
DOWNSAMPLINGS = ("max", "avg", "stride", "none")
POOLING = {"train_images": 6000, "test_images": 10000, "shift_images": 2000, "epochs": 10}
POOLING_QUICK = {"train_images": 300, "test_images": 300, "shift_images": 100, "epochs": 1}
SEEDS, SEEDS_QUICK = [0, 1, 2], [0]


def accuracy(model, dataset, normalization) -> float:
    return float(np.mean(run_through(model, dataset.stored, normalization).argmax(axis=1) == dataset.labels))


def shift_measures(model, images: np.ndarray, labels: np.ndarray, normalization) -> dict:
    """For each shift of SHIFTS pixels, averaged over the four DIRECTIONS: how often the predicted class
    changes, the accuracy, and how much the features the fully connected layers read (the Flatten's output f)
    change, Σ|f(shifted) − f| / Σ|f|."""
    features, head = split_at(model, flatten_index(model))
    still = run_through(features, images, normalization)
    with nn.no_grad():
        predicted = head(still).argmax(axis=1)
    measures = {"changed": {}, "shifted_accuracy": {}, "feature_change": {}}
    for pixels in SHIFTS:
        changed, correct, change = [], [], []
        for down, right in DIRECTIONS.values():
            moved = run_through(features, shifted(images, pixels * down, pixels * right), normalization)
            with nn.no_grad():
                now = head(moved).argmax(axis=1)
            changed.append(np.mean(now != predicted))
            correct.append(np.mean(now == labels))
            change.append(np.abs(moved - still).sum() / np.abs(still).sum())
        for key, values in zip(measures, (changed, correct, change)):
            measures[key][str(pixels)] = round(float(np.mean(values)), 4)
    measures["unshifted_accuracy"] = round(float(np.mean(predicted == labels)), 4)
    return measures


def pooling(quick: bool) -> dict:
    setup, seeds = (POOLING_QUICK, SEEDS_QUICK) if quick else (POOLING, SEEDS)
    train_set = load_mnist(train=True, limit=setup["train_images"])
    test_set = load_mnist(train=False, limit=setup["test_images"])
    normalization = channel_mean_std(train_set.stored)
    probe = slice(0, setup["shift_images"])        # the first test images, moved
    results = {}
    for downsampling in DOWNSAMPLINGS:
        runs = []
        for seed in seeds:
            config = TrainConfig(epochs=setup["epochs"], seed=seed)
            model = train(lenet(downsampling), train_set, config, normalization)
            train_accuracy = accuracy(model, train_set, normalization)
            test_accuracy = accuracy(model, test_set, normalization)
            runs.append({"seed": seed, "train_accuracy": round(train_accuracy, 4),
                         "test_accuracy": round(test_accuracy, 4), "gap": round(train_accuracy - test_accuracy, 4),
                         **shift_measures(model, test_set.stored[probe], test_set.labels[probe], normalization)})
        spread = {key: round(max(run[key] for run in runs) - min(run[key] for run in runs), 4)
                  for key in ("test_accuracy", "gap")}
        results[downsampling] = {"parameters": model.num_parameters(), "runs": runs,
                                 "mean": mean_over([{k: v for k, v in run.items() if k != "seed"} for run in runs]),
                                 "spread": spread}
    recipe = {key: value for key, value in dataclasses.asdict(TrainConfig(epochs=setup["epochs"])).items()
              if key in ("epochs", "batch_size", "optimizer", "lr", "momentum", "weight_decay", "schedule", "init")}
    setup = {**setup, **recipe, "shifts": list(SHIFTS), "directions": list(DIRECTIONS)}
    return {"seeds": seeds, "setup": setup, "results": results}


# -- heads: an SVM or a tree in place of the fully connected layers -------------------------------------------
HEADS = {"epochs": 5, "limit": 10000, "test_images": 10000}
HEADS_QUICK = {"epochs": 1, "limit": 300, "test_images": 300}


def classifiers() -> dict:
    """scikit-learn's classifiers, by the names the JSON uses; the linear ones on standardised features, with
    C = 0.01 (strong regularisation, which converges in seconds; not tuned), the tree grown to the end."""
    return {"linear_svm": make_pipeline(StandardScaler(), LinearSVC(C=0.01, random_state=0)),
            "logistic_regression": make_pipeline(StandardScaler(), LogisticRegression(C=0.01, max_iter=1000)),
            "decision_tree": DecisionTreeClassifier(random_state=0)}


def heads(quick: bool) -> dict:
    setup = HEADS_QUICK if quick else HEADS
    with tempfile.TemporaryDirectory() as folder:
        config = TrainConfig(epochs=setup["epochs"], limit=setup["limit"], out=os.path.join(folder, "run"))
        Trainer(config, progress=False).fit()
        trained = TrainedModel.load(config.out)
    model, normalization = trained.model, trained.normalization
    train_set = load_mnist(train=True, limit=setup["limit"])
    test_set = load_mnist(train=False, limit=setup["test_images"])
    results = {"network": {"train_accuracy": round(accuracy(model, train_set, normalization), 4),
                           "test_accuracy": round(accuracy(model, test_set, normalization), 4)}}
    # the pixels; the Flatten's output, which the three fully connected layers read; the last ReLU's, which the
    # last layer reads
    for name, features in (("pixels", nn.Flatten()), ("conv", split_at(model, flatten_index(model))[0]),
                           ("penultimate", split_at(model, len(model) - 2)[0])):
        x_train = run_through(features, train_set.stored, normalization)
        x_test = run_through(features, test_set.stored, normalization)
        results[name] = {"size": x_train.shape[1]}
        for classifier_name, classifier in classifiers().items():
            started = time.perf_counter()
            classifier.fit(x_train, train_set.labels)
            results[name][classifier_name] = {
                "train_accuracy": round(float(classifier.score(x_train, train_set.labels)), 4),
                "test_accuracy": round(float(classifier.score(x_test, test_set.labels)), 4),
                "seconds": round(time.perf_counter() - started, 1)}
    network = train_command(dataclasses.replace(config, out=TrainConfig.out), always=())
    return {"seeds": [config.seed], "setup": {**setup, "network": network},
            "results": results}


# ------------------------------------------------------------------------------------------------------------
EXPERIMENTS = {"pooling": pooling, "heads": heads}


def machine() -> str:
    """The processor, its cores and the versions the numbers came from."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            cpu = next(line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name"))
    except (OSError, StopIteration):
        cpu = platform.machine()
    return (f"{cpu}, {os.cpu_count()} cores; Python {platform.python_version()}, NumPy {np.__version__}, "
            f"scikit-learn {sklearn.__version__}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"the experiments to run: {', '.join(NAMES)} "
                                                                 f"(default: all)")
    parser.add_argument("--quick", action="store_true", help="a few hundred images, one epoch: a check, not results")
    parser.add_argument("--out", type=Path, default=OUT, help="the folder of the JSON files (default: beside this "
                                                              "script)")
    args = parser.parse_args(argv)
    unknown = [name for name in args.names if name not in NAMES]
    if unknown:
        parser.error(f"unknown experiment {unknown[0]!r} (known: {', '.join(NAMES)})")
    if args.quick and args.out.resolve() == OUT:
        parser.error("--quick numbers mean nothing: give --out DIR, the pages' JSON files are kept")
    if numba_available():
        juanji.set_kernels("numba")
    args.out.mkdir(parents=True, exist_ok=True)
    command = ["python", os.path.relpath(__file__, OUT.parents[1]), *(sys.argv[1:] if argv is None else argv)]
    for name in args.names or NAMES:
        started = time.perf_counter()
        measured = EXPERIMENTS[name](args.quick)
        record = {"experiment": name, "command": " ".join(command), "date": datetime.date.today().isoformat(),
                  "machine": machine(), "kernels": juanji.get_kernels(), "threads": juanji.get_num_threads(),
                  "seconds": round(time.perf_counter() - started), "quick": args.quick, **measured}
        path = args.out / f"{name}.json"
        write_text(path, json.dumps(record, indent=2, ensure_ascii=False) + "\n")
        print(f"{path}: {record['seconds']} s")


if __name__ == "__main__":
    main()
