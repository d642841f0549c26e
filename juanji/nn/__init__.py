"""Layers with explicit forward and backward, holding ``params``/``grads``/cache, PyTorch's interface."""
from .activation import (ELU, GELU, SELU, SiLU, Hardsigmoid, Hardswish, Hardtanh, LeakyReLU, LogSoftmax, Mish,
                         PReLU, ReLU, ReLU6, Sigmoid, Softmax, Softmin, Softplus, Tanh)
from .container import Concat, Residual, Sequential
from .conv import Conv1d, Conv2d
from .conv_transpose import ConvTranspose1d, ConvTranspose2d
from .dropout import Dropout, Dropout1d, Dropout2d, Dropout3d
from .stochastic_depth import StochasticDepth
from .embedding import Embedding
from . import functional          # torch.nn.functional's losses, softmax and log_softmax, as nn.functional
from .fused import (BatchNormAddReLU, BatchNormReLU, BatchNormReLU6, FoldedConv2d, FusedBatchNorm, fuse,
                    fuse_where_it_pays)
from .linear import Flatten, Identity, Linear, Unflatten
from .loss import (BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, HuberLoss, KLDivLoss, L1Loss, MSELoss, NLLLoss,
                   SmoothL1Loss)
from .module import Module
from .instance_norm import InstanceNorm1d, InstanceNorm2d
from .layer_norm import GroupNorm, LayerNorm
from .local_response_norm import LocalResponseNorm
from .normalization import BatchNorm1d, BatchNorm2d
from .padding import (CircularPad1d, CircularPad2d, ConstantPad1d, ConstantPad2d, ReflectionPad1d, ReflectionPad2d,
                      ReplicationPad1d, ReplicationPad2d, ZeroPad1d, ZeroPad2d)
from .permute import Permute
from .pooling import AdaptiveAvgPool2d, AvgPool2d, GlobalAvgPool2d, MaxPool2d, MaxUnpool2d
from .pooling1d import (AdaptiveAvgPool1d, AdaptiveMaxPool1d, AvgPool1d, GlobalMaxPool1d, MaxPool1d,
                        MaxUnpool1d)
from ..runtime.grad_mode import is_grad_enabled, no_grad
from .shuffle import PixelShuffle, PixelUnshuffle
from .spp import AdaptiveMaxPool2d, SpatialPyramidPool2d
from .upsample import Upsample, UpsamplingBilinear2d, UpsamplingNearest2d

__all__ = ["Module", "Sequential", "Residual", "Concat", "Conv1d", "Conv2d", "Linear", "Flatten", "Identity",
           "Unflatten", "ZeroPad1d", "ZeroPad2d", "ConstantPad1d", "ConstantPad2d", "ReflectionPad1d",
           "ReflectionPad2d", "ReplicationPad1d", "ReplicationPad2d", "CircularPad1d", "CircularPad2d",
           "PixelShuffle", "PixelUnshuffle",
           "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Softmax", "LogSoftmax", "Softmin", "ReLU6", "Hardswish",
           "Hardsigmoid", "Hardtanh", "SiLU", "GELU", "ELU", "SELU", "PReLU", "Mish", "Softplus",
           "Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "StochasticDepth", "BatchNorm1d", "BatchNorm2d",
           "GroupNorm", "LayerNorm", "InstanceNorm1d", "InstanceNorm2d", "LocalResponseNorm",
           "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "GlobalAvgPool2d", "CrossEntropyLoss",
           "NLLLoss", "MSELoss", "L1Loss", "SmoothL1Loss", "HuberLoss", "BCELoss", "BCEWithLogitsLoss", "KLDivLoss",
           "Embedding", "Permute", "GlobalMaxPool1d", "AdaptiveMaxPool2d", "SpatialPyramidPool2d",
           "ConvTranspose1d", "ConvTranspose2d", "MaxPool1d", "AvgPool1d", "AdaptiveAvgPool1d", "AdaptiveMaxPool1d",
           "MaxUnpool1d", "MaxUnpool2d", "Upsample", "UpsamplingNearest2d", "UpsamplingBilinear2d",
           "no_grad", "is_grad_enabled", "fuse", "fuse_where_it_pays", "BatchNormReLU",
           "BatchNormAddReLU", "BatchNormReLU6", "FusedBatchNorm", "FoldedConv2d"]
