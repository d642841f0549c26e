"""Embedding: a learned vector per token id, ``torch.nn.Embedding`` (the first layer of a text model)."""
from __future__ import annotations

import numpy as np

from .. import random as jrandom
from ..functional import embedding as F
from .module import Module


class Embedding(Module):
    """x (…) integer ids in [0, num_embeddings) → y (…, embedding_dim) = weight[x].

    params: weight (num_embeddings, embedding_dim), initialised N(0, 1) as PyTorch.
    dW[v] = Σ dY over the positions holding id v.  The ids get no gradient: backward returns None.
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, dtype=np.float32, rng=None):
        super().__init__()
        for name, value in (("num_embeddings", num_embeddings), ("embedding_dim", embedding_dim)):
            if not isinstance(value, (int, np.integer)) or value <= 0:
                raise ValueError(f"Embedding: {name} must be a positive int, got {value!r}")
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        rng = rng or jrandom.generator()
        self.params["weight"] = rng.standard_normal((num_embeddings, embedding_dim)).astype(dtype)
        self.grads["weight"] = np.zeros_like(self.params["weight"])

    def forward(self, x):
        if not isinstance(x, np.ndarray) or x.dtype.kind not in "iu":
            got = f"dtype {x.dtype}" if isinstance(x, np.ndarray) else type(x).__name__
            raise TypeError(f"{self!r}: expected an integer array of token ids, got {got}")
        if x.size and (x.min() < 0 or x.max() >= self.num_embeddings):
            bad = x.min() if x.min() < 0 else x.max()
            raise ValueError(f"{self!r}: token id {bad} out of range: the table has ids "
                             f"0..{self.num_embeddings - 1}")
        self.save_for_backward(x)
        return F.embedding(x, self.params["weight"])

    def backward(self, dy):
        indices, = self.saved_for_backward()
        np.copyto(self.grads["weight"], F.embedding_backward(dy, indices, self.num_embeddings))
        return None

    def extra_repr(self):
        return f"{self.num_embeddings}, {self.embedding_dim}"
