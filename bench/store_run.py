"""Keep a finished run as a stored output: its config.json and metrics.jsonl, and a README.md that names the
command, the machine and the date, with the test accuracy and training time of every epoch.

    python bench/store_run.py RUN_DIR bench/results/zoo/NAME --command "juanji train --model NAME ..."

The checkpoints stay out (they are large and can be made again with the command).
"""
import argparse
import json
import os
import shutil
import sys
import time

from juanji.bench.report import machine_description, provenance
from juanji.runs import Run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="the run directory (config.json, metrics.jsonl)")
    parser.add_argument("out", help="the folder to keep it in, under bench/results/")
    parser.add_argument("--command", required=True, help="the command that trained the run, as typed")
    args = parser.parse_args()
    run = Run(args.run)
    metrics = run.metrics()
    if not metrics:
        parser.error(f"{args.run} has no finished epoch")
    os.makedirs(args.out, exist_ok=True)
    for name in ("config.json", "metrics.jsonl"):
        shutil.copyfile(os.path.join(args.run, name), os.path.join(args.out, name))
    config = json.loads(open(os.path.join(args.run, "config.json"), encoding="utf-8").read())
    segmentation = "test_mean_iou" in metrics[-1]      # a mask task: accuracy per pixel, and the mean IoU
    finished = time.strftime("%Y-%m-%d", time.localtime(os.path.getmtime(os.path.join(args.run, "metrics.jsonl"))))
    lines = [f"# {config['model']}: `{args.command}`", "",
             *provenance(args.command, machine_description(dict(os.environ))), "",
             f"The run's last epoch ended on {finished}. Its `config.json` and `metrics.jsonl` are the run "
             "directory's own; the checkpoints are left out.", "",
             "| epoch | test accuracy | test loss | train seconds |" + (" test mean IoU |" if segmentation else ""),
             "|---|---|---|---|" + ("---|" if segmentation else "")]
    lines += [f"| {m['epoch']} | {m['test_accuracy']:.4f} | {m['test_loss']:.4f} | {m['train_seconds']:.1f} |"
              + (f" {m['test_mean_iou']:.4f} |" if segmentation else "") for m in metrics]
    with open(os.path.join(args.out, "README.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    print(f"kept {args.run} in {args.out}: {len(metrics)} epochs, last test accuracy "
          f"{metrics[-1]['test_accuracy']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
