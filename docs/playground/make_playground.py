"""The model of the Playground (docs/playground.md): LeNet-5 trained on Fashion-MNIST, exported as the run's part of
a static page (``juanji.interop.web``: static.json and run/, no page, no onnxruntime-web) into docs/playground/app/.
The site's build adds the page and onnxruntime-web beside it (docs/hooks/playground.py).

    python docs/playground/make_playground.py [--quick --out DIR]

It trains as ``juanji train --epochs 4`` does, on the data of ``make train`` (Debian's dataset-fashion-mnist, or
$JUANJI_DATA), with the compiled kernels where numba is installed (``juanji[fast]``): about a minute on 2 cores.
The folder's made-by.json records this command, the training command, juanji's version, the date and the seconds
it took; the folder it replaces is kept until the new one is complete.
--quick   a few hundred images, one epoch: checks that the script runs (the tests do); it must write elsewhere.
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import juanji
from juanji.interop import web
from juanji.io import write_text
from juanji.runtime.kernels import numba_available
from juanji.schema import TrainConfig
from juanji.train import Trainer, train_command

OUT = Path(__file__).resolve().parent / "app"
TRAINING = TrainConfig(epochs=4)
QUICK = TrainConfig(epochs=1, limit=300)
# Misclassified test images bundled: one page of the page's list (MISTAKES_PER_PAGE of serve/static/training.js),
# enough to click through without making the committed folder large.
MISTAKES = 60


def make(out: Path, config: TrainConfig, command: str) -> dict:
    """Train ``config`` in a temporary run folder and write the run's part of its page as ``out``, replacing the
    folder there only once the new one is complete; made-by.json's content."""
    started = time.perf_counter()
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{out.name}.", dir=out.parent) as staging:
        run = os.path.join(staging, "lenet5")          # the run's name on the page
        Trainer(dataclasses.replace(config, out=run), progress=False).fit()
        new = Path(staging, "app")
        content = web.write_web(run, new, page=False, mistakes=MISTAKES)
        made_by = {"command": command, "training": train_command(config, always=()), "juanji": juanji.__version__,
                   "date": datetime.date.today().isoformat(), "kernels": juanji.get_kernels(),
                   "threads": juanji.get_num_threads(), "seconds": round(time.perf_counter() - started),
                   "test_accuracy": content["runs"][0]["listing"]["test_accuracy"]}
        write_text(new / "made-by.json", json.dumps(made_by, indent=2) + "\n")
        old = Path(staging, "old")
        if out.exists():
            os.rename(out, old)
        try:
            os.rename(new, out)
        except OSError:
            if old.exists():
                os.rename(old, out)
            raise
    return made_by


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few hundred images, one epoch: a check, not the model")
    parser.add_argument("--out", type=Path, default=OUT, help="the folder to write (default: docs/playground/app)")
    args = parser.parse_args(argv)
    if args.quick and args.out.resolve() == OUT:
        parser.error("--quick makes no model worth showing: give --out DIR, the Playground's folder is kept")
    if numba_available():
        juanji.set_kernels("numba")
    command = " ".join(["python", os.path.relpath(__file__, OUT.parents[2]), *(sys.argv[1:] if argv is None else argv)])
    made_by = make(args.out, QUICK if args.quick else TRAINING, command)
    print(f"wrote {args.out}: test accuracy {made_by['test_accuracy']}, {made_by['seconds']} s")


if __name__ == "__main__":
    main()
