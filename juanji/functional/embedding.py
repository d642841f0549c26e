"""Embedding lookup and its backward: rows of a table picked by integer ids, gradients summed per row; and
the in-place renormalisation of the rows looked up (``max_norm``), as ``torch.nn.functional.embedding``.

indices (…) int → y (…, E) = weight[indices];  weight (V, E).
"""
from __future__ import annotations

import numpy as np


def embedding(indices: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """y[…, :] = weight[indices[…], :]  (a gather; a copy)."""
    return weight[indices]


def embedding_renorm_(weight: np.ndarray, indices: np.ndarray, max_norm: float, norm_type: float = 2.0) -> None:
    """In place, as torch's ``embedding_renorm_``: each row looked up whose p-norm (p = ``norm_type``) exceeds
    ``max_norm`` is scaled to it:  W[v] ← W[v] · max_norm / (‖W[v]‖_p + 1e−7)  for the ids v in ``indices``.
    No gradient flows through it (torch runs it under no_grad): it changes the table, not the lookup."""
    rows = np.unique(indices)
    norms = np.linalg.norm(weight[rows], ord=norm_type, axis=1)
    over = norms > max_norm
    scale = max_norm / (norms[over].astype(np.float64) + 1e-7)
    weight[rows[over]] *= scale.astype(weight.dtype)[:, None]


def embedding_backward(dy: np.ndarray, indices: np.ndarray, num_embeddings: int, padding_idx: int | None = None,
                       scale_grad_by_freq: bool = False) -> np.ndarray:
    """dW[v] = Σ dY[p] over the positions p with indices[p] = v  (rows of unused ids stay 0), divided by the
    number of those positions with ``scale_grad_by_freq``; the row of ``padding_idx`` gets none.

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
    sums = np.add.reduceat(rows[order], starts, axis=0)
    if scale_grad_by_freq:
        sums /= np.diff(np.append(starts, flat.size)).astype(dy.dtype)[:, None]
    dw[ids[starts]] = sums
    if padding_idx is not None:
        dw[padding_idx] = 0
    return dw


def embedding_backward_reference(dy, indices, num_embeddings, padding_idx=None, scale_grad_by_freq=False):
    """Slow and obvious (unbuffered ``np.add.at``, then the per-id division and the padding row); for tests only."""
    dw = np.zeros((num_embeddings, dy.shape[-1]), dtype=dy.dtype)
    np.add.at(dw, indices.reshape(-1), dy.reshape(-1, dy.shape[-1]))
    if scale_grad_by_freq:
        counts = np.bincount(indices.reshape(-1), minlength=num_embeddings)
        dw /= np.maximum(counts, 1).astype(dy.dtype)[:, None]
    if padding_idx is not None:
        dw[padding_idx] = 0
    return dw
