"""The gate before any timing: the timed juanji conv paths agree with PyTorch's."""
from __future__ import annotations

import numpy as np
import torch

from .. import nn
from .rows import CONV_ROWS

TOLERANCE = 1e-4        # float32, relative to the largest magnitude of the compared arrays


def check_correctness(batch: int = 4) -> None:
    """Raise RuntimeError naming the row and array (output, dx, dW) where juanji's Conv2d differs from
    torch's on a batch of the row's configuration."""
    rng = np.random.default_rng(1)
    for row, (_, c, k, h, kernel, stride, padding, groups) in CONV_ROWS.items():
        layer = nn.Conv2d(c, k, kernel, stride=stride, padding=padding, groups=groups)
        reference = torch.nn.Conv2d(c, k, kernel, stride=stride, padding=padding, groups=groups)
        with torch.no_grad():
            reference.weight.copy_(torch.from_numpy(layer.params["weight"]))
            reference.bias.copy_(torch.from_numpy(layer.params["bias"]))
        x = rng.standard_normal((batch, c, h, h), dtype=np.float32)
        xt = torch.from_numpy(x).requires_grad_()
        expected = reference(xt)
        dy = rng.standard_normal(tuple(expected.shape), dtype=np.float32)
        expected.backward(torch.from_numpy(dy))
        got = layer(x)
        dx = layer.backward(dy)
        scale = max(1.0, float(np.abs(expected.detach().numpy()).max()))
        for what, a, b in (("output", got, expected.detach().numpy()), ("dx", dx, xt.grad.numpy()),
                           ("dW", layer.grads["weight"], reference.weight.grad.numpy())):
            error = float(np.abs(a - b).max()) / max(scale, float(np.abs(b).max()))
            if not error < TOLERANCE:
                raise RuntimeError(f"{row}: juanji's {what} differs from torch by {error:.2e}")
