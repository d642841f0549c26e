"""The model zoo: networks composed of juanji.nn layers, created by name through a registry."""
from __future__ import annotations

import difflib
import inspect

from .lenet import lenet5, lenet5_classic
from .text_cnn import text_cnn

_REGISTRY = {
    "lenet5": lenet5,
    "lenet5-classic": lenet5_classic,
    "text_cnn": text_cnn,
}


def names() -> list[str]:
    return sorted(_REGISTRY)


def create(name: str, **kwargs):
    """Build a registered model: ``create("lenet5", num_classes=10, in_channels=1)``.

    The returned model remembers ``name`` and ``config`` (the keyword arguments) so a checkpoint can
    rebuild it, and ``input_shape`` (C, H, W) it expects.
    """
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, _REGISTRY, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise ValueError(f"unknown model '{name}'{hint} (known: {', '.join(names())})")
    builder = _REGISTRY[name]
    accepted = inspect.signature(builder).parameters
    unknown = [k for k in kwargs if k not in accepted]
    if unknown:
        raise TypeError(f"model '{name}' takes no argument(s) {unknown}; it takes {list(accepted)}")
    model = builder(**kwargs)
    model.name, model.config = name, dict(kwargs)
    return model


def describe(name: str) -> str:
    """The first line of a model's docstring."""
    return (inspect.getdoc(_REGISTRY[name]) or "").splitlines()[0]
