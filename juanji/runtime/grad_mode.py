"""``no_grad()``: forward passes that no backward will follow (evaluation, prediction), as PyTorch's
``torch.no_grad()``.  Layers then keep no cache for backward; a convolution's columns go to the thread's
scratch memory instead of the layer's own, so a network's inference holds one layer's columns at a time
instead of all of them (what matters for a training run that evaluates on large batches).

The mode belongs to the calling thread, as PyTorch's: ``no_grad`` in one thread leaves another thread's
forward passes (and a new thread's) with grad enabled.
"""
from __future__ import annotations

import contextlib
import threading

_state = threading.local()          # .enabled, unset (True) until a no_grad in this thread


def is_grad_enabled() -> bool:
    """False inside ``no_grad()`` of the calling thread."""
    return getattr(_state, "enabled", True)


@contextlib.contextmanager
def no_grad():
    """``with juanji.nn.no_grad(): logits = model(x)`` — backward is unavailable for these passes."""
    previous, _state.enabled = is_grad_enabled(), False
    try:
        yield
    finally:
        _state.enabled = previous
