"""Two different conv models trained step by step in two Python threads at once give exactly the outputs and
gradients they give run one after the other: each thread has its own scratch memory and grad mode, and the
BLAS thread setting is shared correctly (kernels split over 2 threads however small, as ``batch_threads``)."""
import threading

import numpy as np
import pytest

from juanji import nn

pytestmark = pytest.mark.usefixtures("kernels", "batch_threads")     # both backends


def conv_net(seed, widths):
    rng = np.random.default_rng(seed)
    a, b = widths
    return nn.Sequential(nn.Conv2d(3, a, 3, padding=1, rng=rng), nn.BatchNorm2d(a), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(a, b, 3, stride=2, padding=1, groups=1, rng=rng), nn.ReLU(),
                         nn.Conv2d(b, b, 3, padding=1, groups=b, rng=rng), nn.AvgPool2d(2),
                         nn.Flatten(), nn.Linear(b * 2 * 2, 5, rng=rng))


def run(model, batches, evaluate):
    """Forward + backward on each batch (an evaluation under no_grad between steps when ``evaluate``):
    every output, input gradient and weight gradient, copied."""
    loss_fn, record = nn.CrossEntropyLoss(), []
    for x, labels in batches:
        logits = model(x)
        record.append(loss_fn(logits, labels))
        record.append(model.backward(loss_fn.backward()))
        record += [grad.copy() for _, _, grad in model.parameters()]
        if evaluate:
            with nn.no_grad():
                record.append(model(x[::-1].copy()))
    return record


def batches(seed, n):
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal((n, 3, 16, 16)), rng.integers(0, 5, n)) for _ in range(4)]


def test_two_models_in_two_threads_match_running_them_one_after_the_other():
    specs = [(0, (6, 8), batches(10, 3), True), (1, (4, 12), batches(11, 5), False)]   # uneven batch splits
    serial = [run(conv_net(seed, widths).to(np.float64), data, evaluate) for seed, widths, data, evaluate in specs]
    models = [conv_net(seed, widths).to(np.float64) for seed, widths, _, _ in specs]
    results, errors = [None, None], []
    start = threading.Barrier(2)

    def worker(i):
        try:
            start.wait()
            results[i] = run(models[i], specs[i][2], specs[i][3])
        except BaseException as error:          # reported by the main thread
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    for expected, got in zip(serial, results):
        assert len(expected) == len(got)
        for a, b in zip(expected, got):
            np.testing.assert_array_equal(a, b)
