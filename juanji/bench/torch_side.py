"""PyTorch CPU behind the benchmark's framework interface (the same methods as ``juanji_side.JuanjiSide``)."""
from __future__ import annotations

import numpy as np
import torch

from . import torch_models
from .rows import model_args


class TorchSide:
    """Layers, models, train steps and inference of PyTorch, on tensors sharing the NumPy inputs."""
    name = "pytorch"

    def conv(self, n, c, k, h, kernel, stride, padding, groups, rng):
        """(forward, forward+backward) closures of one Conv2d on a random batch."""
        layer = torch.nn.Conv2d(c, k, kernel, stride=stride, padding=padding, groups=groups)
        x = torch.from_numpy(rng.standard_normal((n, c, h, h), dtype=np.float32))
        with torch.no_grad():
            y = layer(x)
        dy = torch.from_numpy(rng.standard_normal(tuple(y.shape), dtype=np.float32))

        def forward():
            with torch.no_grad():
                return layer(x)
        return forward, self.layer_pair(layer, x, dy)

    def conv_transpose(self, n, c, k, h, kernel, stride, padding, rng):
        """(layer, input, output gradient) of one ConvTranspose2d on a random batch."""
        layer = torch.nn.ConvTranspose2d(c, k, kernel, stride=stride, padding=padding)
        x = torch.from_numpy(rng.standard_normal((n, c, h, h), dtype=np.float32))
        with torch.no_grad():
            shape = tuple(layer(x).shape)
        return layer, x, torch.from_numpy(rng.standard_normal(shape, dtype=np.float32))

    def groupnorm(self, groups, channels):
        return torch.nn.GroupNorm(groups, channels)

    def layernorm(self, features):
        return torch.nn.LayerNorm(features)

    def as_input(self, x: np.ndarray):
        return torch.from_numpy(x)

    def layer_pair(self, layer, x, dy):
        x = x.requires_grad_()

        def step():
            x.grad = None
            for p in layer.parameters():
                p.grad = None
            layer(x).backward(dy)
        return step

    def output(self, layer, x) -> np.ndarray:
        with torch.no_grad():
            return layer(x).numpy()

    def maxpool(self, kernel, stride):
        return torch.nn.MaxPool2d(kernel, stride)

    def batchnorm(self, channels):
        return torch.nn.BatchNorm2d(channels)

    def relu(self):
        return torch.nn.ReLU()

    def model(self, name, **args):
        """``torch_models``' ``name`` built with ``args`` (by default ``rows.model_args(name)``)."""
        return getattr(torch_models, name)(**(args or model_args(name)))

    def train_step(self, model):
        """``step(x, y)``: one SGD-momentum step of ``model`` on a batch of NumPy arrays."""
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        loss_fn = torch.nn.CrossEntropyLoss()
        model.train()

        def step(x, y):
            optimizer.zero_grad()
            loss_fn(model(torch.from_numpy(x)), torch.from_numpy(y)).backward()
            optimizer.step()
        return step

    def split(self, parts):
        """A 2×2 max pool of a (1, ``parts``, 2, 2) tensor: its CPU kernel hands its (batch × channel) planes
        to ``at::parallel_for`` with grain size 0, so that 2 parts are split over the threads however little
        each holds, and 1 part runs inline.  (PyTorch has no Python call that splits nothing at all.)"""
        x = torch.zeros(1, parts, 2, 2)
        return lambda: torch.nn.functional.max_pool2d(x, 2)

    def inference(self, model, x):
        x = torch.from_numpy(x)
        model.eval()

        def run():
            with torch.no_grad():
                return model(x)
        return run
