"""Every juanji.nn class a PyTorch user reaches for takes exactly torch's constructor signature: the same
parameter names in the same order with the same defaults, so a positional call means what it means in torch.
juanji's own extras (``rng``, …) may follow, keyword-only."""
import inspect

import pytest
import torch

from juanji import nn

# The torch.nn classes a PyTorch user porting a CNN reaches for: juanji.nn must have every one of them.
REQUIRED = [
    "Conv1d", "Conv2d", "ConvTranspose1d", "ConvTranspose2d", "Linear", "Flatten", "Unflatten", "Identity",
    "Embedding", "Dropout",
    "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Softmax", "LogSoftmax", "Softmin", "ReLU6", "Hardswish",
    "Hardsigmoid", "Hardtanh", "SiLU", "GELU", "ELU", "SELU", "PReLU", "Mish", "Softplus",
    "BatchNorm1d", "BatchNorm2d", "GroupNorm", "LayerNorm", "InstanceNorm2d", "LocalResponseNorm",
    "MaxPool1d", "MaxPool2d", "AvgPool1d", "AvgPool2d", "AdaptiveAvgPool1d", "AdaptiveAvgPool2d",
    "AdaptiveMaxPool1d", "AdaptiveMaxPool2d", "MaxUnpool2d",
    "ZeroPad2d", "ConstantPad2d", "ReflectionPad2d", "ReplicationPad2d", "PixelShuffle", "Upsample",
    "CrossEntropyLoss", "NLLLoss", "MSELoss", "L1Loss", "SmoothL1Loss", "HuberLoss", "BCELoss",
    "BCEWithLogitsLoss", "KLDivLoss",
]
# Every class juanji.nn exports under a torch.nn name takes exactly torch's signature (Module, the base class,
# is built by its subclasses' constructors).
CLASSES = sorted(name for name in nn.__all__ if inspect.isclass(getattr(nn, name)) and hasattr(torch.nn, name)
                 and name != "Module")


def test_every_class_a_porting_user_reaches_for_is_there():
    assert not set(REQUIRED) - set(CLASSES), f"juanji.nn lacks {sorted(set(REQUIRED) - set(CLASSES))}"


def torch_parameters(cls):
    return [p for p in inspect.signature(cls.__init__).parameters.values() if p.name != "self"]


@pytest.mark.parametrize("name", CLASSES)
def test_the_constructor_signature_is_torchs(name):
    assert hasattr(nn, name), f"juanji.nn has no {name}"
    theirs = torch_parameters(getattr(torch.nn, name))
    ours = torch_parameters(getattr(nn, name))
    described = [(p.name, p.kind, p.default) for p in theirs]
    assert [(p.name, p.kind, p.default) for p in ours[:len(theirs)]] == described, \
        f"{name}: juanji's signature {inspect.signature(getattr(nn, name))} is not torch's " \
        f"{inspect.signature(getattr(torch.nn, name))}"
    extras = ours[len(theirs):]
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in extras), \
        f"{name}: juanji's own parameters {[p.name for p in extras]} must be keyword-only"

