"""Kim (2014, "Convolutional Neural Networks for Sentence Classification")'s CNN for token sequences:
embedding → parallel Conv1d of several widths → ReLU → max over time → concatenate → dropout → linear.

Each filter of width k is an n-gram detector; max-over-time pooling keeps its strongest response
anywhere in the sequence, so the classifier sees *which* n-grams occur, not where.
x (N, L) int64 token ids in [0, vocab_size) → logits (N, num_classes).
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np

from .. import nn
from ..nn.embedding import Embedding
from ..nn.permute import Permute
from ..nn.pooling1d import GlobalMaxPool1d


def text_cnn(num_classes: int = 5, vocab_size: int = 64, seq_len: int = 16, embedding_dim: int = 32,
             kernel_sizes=(2, 3, 4, 5), channels: int = 64, dropout: float = 0.5) -> nn.Sequential:
    """Text CNN (Kim 2014) over token ids: embedding, Conv1d widths 2-5 with max-over-time pooling."""
    kernel_sizes = tuple(kernel_sizes)
    if not kernel_sizes or max(kernel_sizes) > seq_len:
        raise ValueError(f"text_cnn: kernel sizes {kernel_sizes} must be non-empty and at most "
                         f"seq_len ({seq_len})")
    branches = [nn.Sequential(OrderedDict(conv=nn.Conv1d(embedding_dim, channels, k), relu=nn.ReLU(),
                                          pool=GlobalMaxPool1d()))
                for k in kernel_sizes]
    model = nn.Sequential(OrderedDict(
        embedding=Embedding(vocab_size, embedding_dim),      # (N, L) → (N, L, E)
        permute=Permute(0, 2, 1),                            # → (N, E, L): channels first, for Conv1d
        convs=nn.Concat(*branches, dim=1),                   # → (N, channels · len(kernel_sizes))
        dropout=nn.Dropout(dropout),
        fc=nn.Linear(channels * len(kernel_sizes), num_classes)))
    model.input_shape = (seq_len,)
    model.input_dtype = np.int64
    return model
