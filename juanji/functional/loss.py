"""Softmax cross-entropy fused in one place, so the log never sees a zero and the gradient is exact."""
import numpy as np

from .activation import log_softmax


def cross_entropy(logits, labels, label_smoothing=0.0):
    """Mean cross-entropy of logits (N, C) against integer labels (N,).  Returns (loss, cache).

    With smoothing ε the target is (1 − ε)·onehot + ε/C, as PyTorch:
        loss = −(1/N) Σ_n Σ_c target[n, c] · log softmax(logits)[n, c]
    """
    n, c = logits.shape
    logp = log_softmax(logits, axis=1)
    target = np.full((n, c), label_smoothing / c, dtype=logits.dtype)
    target[np.arange(n), labels] += 1 - label_smoothing
    loss = -(target * logp).sum() / n if n else np.nan    # PyTorch's mean over no samples
    return logits.dtype.type(loss), (logp, target)


def cross_entropy_backward(cache):
    """d logits = (softmax(logits) − target) / N"""
    logp, target = cache
    return (np.exp(logp) - target) / logp.shape[0]
