"""PyTorch reference for the LeNet-5 parity check: the same network, data and schedule as
``juanji train --init torch --no-normalize --optimizer sgd --lr 0.01 --momentum 0.9 --weight-decay 0
--schedule none --batch-size 64``.

    python bench/torch_lenet5.py --epochs 5 --seed 0 [--limit 10000] [--threads 2]

Prints one JSON line per epoch (test accuracy, seconds). Data comes through juanji.data, so both
frameworks see identical images in identical batch order; the network is the benchmark's
(``juanji.bench.torch_models.lenet5``).
"""
import argparse
import json
import time

import torch
from torch import nn

from juanji.bench.torch_models import lenet5
from juanji.data import DataLoader, load_mnist


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    train = load_mnist(args.data, train=True, limit=args.limit)
    test = load_mnist(args.data, train=False)
    loader = DataLoader(train, 64, shuffle=True, seed=args.seed)
    model = lenet5()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    test_x, test_y = torch.from_numpy(test.images), torch.from_numpy(test.labels)
    for epoch in range(args.epochs):
        loader.set_epoch(epoch)
        started = time.perf_counter()
        model.train()
        for x, y in loader:
            optimizer.zero_grad()
            loss = loss_fn(model(torch.from_numpy(x)), torch.from_numpy(y))
            loss.backward()
            optimizer.step()
        seconds = time.perf_counter() - started
        model.eval()
        with torch.no_grad():
            accuracy = float((model(test_x).argmax(1) == test_y).float().mean())
        print(json.dumps({"framework": "pytorch", "epoch": epoch + 1, "test_accuracy": accuracy,
                          "seconds": round(seconds, 2), "seed": args.seed}), flush=True)


if __name__ == "__main__":
    main()
