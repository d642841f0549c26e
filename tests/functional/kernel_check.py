"""Shared helpers for the kernel tests: torch autograd as the oracle, and the suite's closeness rule
(tests/closeness.py)."""
import numpy as np
import torch

from closeness import DTYPES, TOLERANCE, assert_close  # noqa: F401  (re-exported to the tests)


def leaf(array):
    """A torch leaf tensor holding a copy of ``array`` that records its gradient."""
    return torch.from_numpy(np.array(array)).requires_grad_(True)


def torch_vjp(fn, dy, *arrays):
    """Run ``fn`` on torch copies of ``arrays`` (None passes through), back-propagate ``dy``.
    Returns (y, [gradient of each array, None for None])."""
    tensors = [None if a is None else leaf(a) for a in arrays]
    y = fn(*tensors)
    y.backward(torch.from_numpy(np.array(dy)))
    return y.detach().numpy(), [None if t is None else t.grad.numpy() for t in tensors]
