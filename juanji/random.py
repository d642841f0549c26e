"""The library's one source of randomness for weight initialisation and dropout.

``juanji.random.seed(n)`` makes model construction and dropout masks reproducible; its state is a plain
dict (``get_state``/``set_state``) so checkpoints can store it as JSON.
"""
import numpy as np

_generator = np.random.default_rng()


def seed(value: int) -> None:
    """Reseed the global generator used by initialisers and dropout."""
    global _generator
    _generator = np.random.default_rng(value)


def generator() -> np.random.Generator:
    """The global generator (a layer may also be given its own)."""
    return _generator


def get_state() -> dict:
    """JSON-serialisable state of the global generator."""
    return _generator.bit_generator.state


def set_state(state: dict) -> None:
    _generator.bit_generator.state = state
