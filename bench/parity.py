"""LeNet-5 parity on Fashion-MNIST: juanji and PyTorch in the same configuration (the issue's reference:
SGD lr 0.01 momentum 0.9, batch 64, PyTorch default init, inputs in [0, 1], 5 epochs), 3 seeds each.

    python bench/parity.py [--epochs 5] [--seeds 0 1 2] [--threads 2] [--out bench/results/parity.md]

Prints per-epoch test accuracy for each run and the mean final accuracy of each framework (and with
--out writes them, under the command, machine and date, as a stored output).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

from threadpoolctl import threadpool_limits

from juanji.bench.report import machine_description, provenance
from juanji.schema import TrainConfig
from juanji.train import Trainer

HERE = os.path.dirname(os.path.abspath(__file__))


def juanji_run(seed, epochs, threads):
    with tempfile.TemporaryDirectory() as out:
        config = TrainConfig(model="lenet5", optimizer="sgd", lr=0.01, momentum=0.9, weight_decay=0.0,
                             schedule="none", init="torch", normalize=False, batch_size=64, epochs=epochs,
                             out=out, seed=seed)
        with threadpool_limits(threads):
            history = Trainer(config, progress=False).fit()
    return [m["test_accuracy"] for m in history], [m["train_seconds"] for m in history]


def torch_run(seed, epochs, threads):
    result = subprocess.run([sys.executable, os.path.join(HERE, "torch_lenet5.py"), "--epochs", str(epochs),
                             "--seed", str(seed), "--threads", str(threads)], capture_output=True, text=True,
                            check=True)
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    return [line["test_accuracy"] for line in lines], [line["seconds"] for line in lines]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", help="also write the lines to this Markdown file")
    args = parser.parse_args()
    lines, finals = [], {"juanji": [], "pytorch": []}
    for seed in args.seeds:
        for name, run in (("pytorch", torch_run), ("juanji", juanji_run)):
            accuracies, seconds = run(seed, args.epochs, args.threads)
            finals[name].append(accuracies[-1])
            lines.append(f"{name:<8} seed {seed}: test accuracy per epoch "
                         f"{' '.join(f'{a:.4f}' for a in accuracies)}; seconds per epoch "
                         f"{' '.join(f'{s:.1f}' for s in seconds)}")
            print(lines[-1], flush=True)
    for name, values in finals.items():
        lines.append(f"{name:<8} mean final test accuracy {sum(values) / len(values):.4f} over seeds {args.seeds}")
        print(lines[-1])
    if args.out:
        command = " ".join(["python bench/parity.py", *sys.argv[1:]])
        with open(args.out, "w") as f:
            f.write("# LeNet-5 parity: juanji and PyTorch, same configuration\n\n"
                    + "\n".join(provenance(command, machine_description(dict(os.environ)))) + "\n\n```text\n"
                    + "\n".join(lines) + "\n```\n")


if __name__ == "__main__":
    main()
