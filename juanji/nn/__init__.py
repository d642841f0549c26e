"""Layers with explicit forward and backward, holding ``params``/``grads``/cache, PyTorch's interface."""
from .activation import LeakyReLU, ReLU, Sigmoid, Softmax, Tanh
from .container import Concat, Residual, Sequential
from .conv import Conv1d, Conv2d
from .dropout import Dropout
from .embedding import Embedding
from .fused import BatchNormAddReLU, BatchNormReLU, fuse, fuse_where_it_pays
from .linear import Flatten, Identity, Linear
from .loss import CrossEntropyLoss
from .module import Module
from .normalization import BatchNorm1d, BatchNorm2d
from .permute import Permute
from .pooling import AdaptiveAvgPool2d, AvgPool2d, GlobalAvgPool2d, MaxPool2d
from .pooling1d import GlobalMaxPool1d
from ..runtime.grad_mode import is_grad_enabled, no_grad
from .spp import AdaptiveMaxPool2d, SpatialPyramidPool2d

__all__ = ["Module", "Sequential", "Residual", "Concat", "Conv1d", "Conv2d", "Linear", "Flatten", "Identity",
           "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Softmax", "Dropout", "BatchNorm1d", "BatchNorm2d",
           "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "GlobalAvgPool2d", "CrossEntropyLoss",
           "Embedding", "Permute", "GlobalMaxPool1d", "AdaptiveMaxPool2d", "SpatialPyramidPool2d",
           "no_grad", "is_grad_enabled", "fuse", "fuse_where_it_pays", "BatchNormReLU",
           "BatchNormAddReLU"]
