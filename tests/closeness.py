"""The test suite's one closeness rule against torch, shared by the kernel and the layer tests.

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
