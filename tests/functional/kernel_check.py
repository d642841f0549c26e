"""Shared helpers for the kernel tests: the tolerance rule and torch autograd as the oracle.

A result agrees with torch when  max|a − b| ≤ tol · max(1, max|b|),  tol = 1e-10 in float64 and 1e-4 in
float32: an error bound relative to the output's scale, absolute for outputs of order one or less.
"""
import numpy as np
import torch

TOLERANCE = {np.dtype(np.float64): 1e-10, np.dtype(np.float32): 1e-4}
DTYPES = [np.float64, np.float32]


def assert_close(actual, expected, what="", dtype=None):
    """The suite's one closeness rule (see the module docstring); ``expected`` may be a torch tensor."""
    if isinstance(expected, torch.Tensor):
        expected = expected.detach().numpy()
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != torch's {expected.shape}"
    tol = TOLERANCE[np.dtype(dtype or expected.dtype)]
    finite = np.isfinite(expected)       # torch's ±inf (a max-pool window entirely in padding) must be ours
    assert np.array_equal(actual[~finite], expected[~finite]) and np.isfinite(actual[finite]).all(), \
        f"{what}: non-finite values differ from torch's"
    actual, expected = actual[finite].astype(np.float64), expected[finite].astype(np.float64)
    scale = max(1.0, float(np.abs(expected).max(initial=0.0)))
    error = float(np.abs(actual - expected).max(initial=0.0))
    assert error <= tol * scale, f"{what}: max abs error {error:.3g} exceeds {tol:g} · {scale:.3g}"


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
