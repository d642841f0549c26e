"""Embedding lookup and its backward: rows of a table picked by integer ids, gradients summed per row.

indices (…) int → y (…, E) = weight[indices];  weight (V, E).
"""
from __future__ import annotations

import numpy as np


def embedding(indices: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """y[…, :] = weight[indices[…], :]  (a gather; a copy)."""
    return weight[indices]


def embedding_backward(dy: np.ndarray, indices: np.ndarray, num_embeddings: int) -> np.ndarray:
    """dW[v] = Σ dY[p] over the positions p with indices[p] = v  (rows of unused ids stay 0).

    Vectorised: a stable sort groups equal ids, ``np.add.reduceat`` sums each group's rows in one call.
    """
    flat = indices.reshape(-1)
    rows = dy.reshape(flat.size, dy.shape[-1])
    dw = np.zeros((num_embeddings, rows.shape[1]), dtype=dy.dtype)
    if flat.size == 0:
        return dw
    order = np.argsort(flat, kind="stable")
    ids = flat[order]
    starts = np.flatnonzero(np.concatenate(([True], ids[1:] != ids[:-1])))
    dw[ids[starts]] = np.add.reduceat(rows[order], starts, axis=0)
    return dw


def embedding_backward_reference(dy, indices, num_embeddings):
    """Slow and obvious (unbuffered ``np.add.at``); for tests only."""
    dw = np.zeros((num_embeddings, dy.shape[-1]), dtype=dy.dtype)
    np.add.at(dw, indices.reshape(-1), dy.reshape(-1, dy.shape[-1]))
    return dw
