"""CrossEntropyLoss: log-softmax and negative log-likelihood fused, on logits and integer labels."""
from __future__ import annotations

import numpy as np

from ..functional import loss as F
from .module import Module


class CrossEntropyLoss(Module):
    """``torch.nn.CrossEntropyLoss`` (mean reduction): loss = −mean_n log softmax(logits)[n, label_n],
    with optional label smoothing.  logits (N, C), labels (N,) integers in [0, C).
    ``backward()`` returns d loss / d logits = (softmax − target) / N."""

    def __init__(self, label_smoothing: float = 0.0):
        super().__init__()
        if not 0 <= label_smoothing <= 1:
            raise ValueError(f"CrossEntropyLoss: label_smoothing must be in [0, 1], got {label_smoothing}")
        self.label_smoothing = label_smoothing

    def forward(self, logits, labels):
        self._check_input(logits, "(N, C) logits", 2)
        labels = np.asarray(labels)
        if labels.dtype.kind not in "iu":
            raise TypeError(f"{self!r}: labels must be integers (class indices), got dtype {labels.dtype}")
        if labels.shape != logits.shape[:1]:
            raise ValueError(f"{self!r}: expected labels of shape ({logits.shape[0]},) for logits of shape "
                             f"{logits.shape}, got {labels.shape}")
        if labels.size and (labels.min() < 0 or labels.max() >= logits.shape[1]):
            bad = labels[(labels < 0) | (labels >= logits.shape[1])][0]
            raise ValueError(f"{self!r}: label {bad} is out of range for {logits.shape[1]} classes "
                             f"(expected 0..{logits.shape[1] - 1})")
        loss, cache = F.cross_entropy(logits, labels, self.label_smoothing)
        self.save_for_backward(cache)
        return loss

    def backward(self, dy=None):
        """d loss/d logits; ``dy`` scales it (default 1, as when the loss is the final output)."""
        cache, = self.saved_for_backward()
        dlogits = F.cross_entropy_backward(cache)
        return dlogits if dy is None else dlogits * dy

    def extra_repr(self):
        return f"label_smoothing={self.label_smoothing}" if self.label_smoothing else ""
