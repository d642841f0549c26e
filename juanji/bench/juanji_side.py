"""juanji behind the benchmark's framework interface (the same methods as ``torch_side.TorchSide``)."""
from __future__ import annotations

import numpy as np

from .. import models, nn, optim
from ..runtime import threads
from ..train import skip_input_gradient
from .rows import model_args


def _nothing(start, stop):
    return None


class JuanjiSide:
    """Layers, models, train steps and inference of juanji, on NumPy arrays."""
    name = "juanji"

    def conv(self, n, c, k, h, kernel, stride, padding, groups, rng):
        """(forward, forward+backward) closures of one Conv2d on a random batch."""
        layer = nn.Conv2d(c, k, kernel, stride=stride, padding=padding, groups=groups)
        x = rng.standard_normal((n, c, h, h), dtype=np.float32)
        dy = rng.standard_normal(layer(x).shape, dtype=np.float32)
        return (lambda: layer(x)), self.layer_pair(layer, x, dy)

    def conv_transpose(self, n, c, k, h, kernel, stride, padding, rng):
        """(layer, input, output gradient) of one ConvTranspose2d on a random batch."""
        layer = nn.ConvTranspose2d(c, k, kernel, stride=stride, padding=padding)
        x = rng.standard_normal((n, c, h, h), dtype=np.float32)
        return layer, x, rng.standard_normal(layer(x).shape, dtype=np.float32)

    def groupnorm(self, groups, channels):
        return nn.GroupNorm(groups, channels)

    def layernorm(self, features):
        return nn.LayerNorm(features)

    def as_input(self, x: np.ndarray):
        return x

    def layer_pair(self, layer, x, dy):
        return lambda: (layer(x), layer.backward(dy))

    def output(self, layer, x) -> np.ndarray:
        return layer(x)

    def maxpool(self, kernel, stride):
        return nn.MaxPool2d(kernel, stride)

    def batchnorm(self, channels):
        return nn.BatchNorm2d(channels)

    def relu(self):
        return nn.ReLU()

    def model(self, name, **args):
        """The zoo's ``name`` built with ``args`` (by default ``rows.model_args(name)``), as juanji trains it."""
        model = models.create(name, **(args or model_args(name)))
        skip_input_gradient(model)      # as juanji's Trainer does, and as PyTorch skips it for the input
        return nn.fuse_where_it_pays(model)                # as juanji's Trainer does

    def train_step(self, model):
        """``step(x, y)``: one SGD-momentum step of ``model`` on a batch of NumPy arrays."""
        optimizer = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        loss_fn = nn.CrossEntropyLoss()
        model.train()

        def step(x, y):
            loss_fn(model(x), y)
            model.backward(loss_fn.backward())
            optimizer.step()
        return step

    def split(self, parts):
        """One call of ``over_batch`` on work that does nothing, ``parts`` samples large enough to split: at 2
        threads and more 2 parts are one chunk per thread (BLAS set to one thread and back, as every split
        does), 1 part runs inline."""
        return lambda: threads.over_batch(parts, _nothing, elements=threads.MIN_ELEMENTS)

    def inference(self, model, x):
        model.eval()

        def run():
            with nn.no_grad():
                return model(x)
        return run
