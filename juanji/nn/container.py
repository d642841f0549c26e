"""Containers: Sequential chains, and the two graph blocks CNNs need — a residual sum and a channel concat.

Where a tensor fans out to several branches, backward sums the branches' input gradients.
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np

from .linear import Identity
from .module import Module


class Sequential(Module):
    """y = f_n(…f_2(f_1(x))); backward runs the layers in reverse.  Children are named "0", "1", … or
    by an OrderedDict's keys, as ``torch.nn.Sequential``."""

    def __init__(self, *args):
        super().__init__()
        _add_children(self, args)

    def forward(self, x):
        for layer in self._modules.values():
            x = layer(x)
        return x

    def backward(self, dy):
        for layer in reversed(self._modules.values()):
            dy = layer.backward(dy)
        return dy

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __getitem__(self, index):
        layers = list(self._modules.values())
        if isinstance(index, slice):
            return Sequential(OrderedDict(list(self._modules.items())[index]))
        return layers[index]

    def append(self, layer: Module) -> "Sequential":
        setattr(self, str(len(self)), layer)
        return self


def _add_children(parent: Module, modules) -> None:
    """Register ``modules`` — positional (named "0", "1", …) or one OrderedDict of names — as children."""
    if len(modules) == 1 and isinstance(modules[0], OrderedDict):
        items = modules[0].items()
    else:
        items = ((str(i), module) for i, module in enumerate(modules))
    for name, module in items:
        if not isinstance(module, Module):
            raise TypeError(f"{type(parent).__name__}: element {name} is a {type(module).__name__}, not a Module")
        setattr(parent, name, module)


class Residual(Module):
    """y = body(x) + shortcut(x) (identity shortcut by default) — He et al.'s residual connection.
    dX = body.backward(dY) + shortcut.backward(dY): the gradient reaches x along both paths."""

    def __init__(self, body: Module, shortcut: Module | None = None):
        super().__init__()
        self.body = body
        self.shortcut = shortcut or Identity()

    def forward(self, x):
        main, skip = self.body(x), self.shortcut(x)
        if main.shape != skip.shape:
            raise ValueError(f"Residual: body output {main.shape} and shortcut output {skip.shape} differ; "
                             f"give the shortcut a projection (e.g. a 1×1 Conv2d with the body's stride)")
        return main + skip

    def backward(self, dy):
        return self.body.backward(dy) + self.shortcut.backward(dy)


class Concat(Module):
    """Runs every branch on the same input and concatenates their outputs along ``dim`` (channels):
    Inception's parallel branches, DenseNet's [x, F(x)].  Backward splits dY and sums the branches' dX.
    Branches are named "0", "1", … or by an OrderedDict's keys, as in Sequential."""

    def __init__(self, *branches: Module, dim: int = 1):
        super().__init__()
        if not branches:
            raise ValueError("Concat needs at least one branch")
        _add_children(self, branches)
        self.dim = dim

    def forward(self, x):
        outputs = [branch(x) for branch in self._modules.values()]
        shapes = [tuple(np.delete(o.shape, self.dim)) for o in outputs]
        if len(set(shapes)) > 1:
            raise ValueError(f"Concat: branch outputs {[o.shape for o in outputs]} differ outside dim {self.dim}")
        self.save_for_backward([o.shape[self.dim] for o in outputs])
        return np.concatenate(outputs, axis=self.dim)

    def backward(self, dy):
        sizes, = self.saved_for_backward()
        pieces = np.split(dy, np.cumsum(sizes)[:-1], axis=self.dim)
        dx = None
        for branch, piece in zip(self._modules.values(), pieces):
            grad = branch.backward(piece)
            dx = grad if dx is None else dx + grad
        return dx

    def extra_repr(self):
        return f"dim={self.dim}"
