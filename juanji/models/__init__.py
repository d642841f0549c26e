"""The model zoo: networks composed of juanji.nn layers, created by name through a registry.

Every builder takes ``num_classes``, ``in_channels`` and ``input_size`` (the H = W of its images) and
sets ``model.input_shape = (C, H, W)``.  Names are torchvision's where torchvision has the model
(``vgg16_bn``, ``resnet50``); ``create`` also accepts ``-`` for ``_`` and the reverse (``vgg16-bn``,
``lenet5_classic``).  At ``input_size=224``, ``in_channels=3`` the torchvision models are exactly
torchvision's (same layers, same ``state_dict`` names, see ``juanji.interop.from_torch``); below 64 pixels
they use a CIFAR-style stem, described in each module's docstring.
"""
from __future__ import annotations

import difflib
import inspect


from .alexnet import alexnet, zfnet
from .convnext import convnext_tiny
from .densenet import densenet121, densenet_bc_40, densenet_bc_100
from .efficientnet import efficientnet_b0
from .googlenet import googlenet
from .lenet import lenet5, lenet5_classic
from .mobilenet import mobilenet_v1
from .mobilenet_v2 import mobilenet_v2
from .mobilenet_v3 import mobilenet_v3_small
from .resnet import resnet18, resnet20, resnet34, resnet50, resnet56
from .sppnet import spp_net
from .text_cnn import text_cnn
from .unet import unet
from .vgg import vgg11, vgg11_bn, vgg13, vgg13_bn, vgg16, vgg16_bn, vgg19, vgg19_bn, vgg_small

_REGISTRY = {
    "lenet5": lenet5,
    "lenet5-classic": lenet5_classic,
    "alexnet": alexnet,
    "zfnet": zfnet,
    "vgg11": vgg11, "vgg13": vgg13, "vgg16": vgg16, "vgg19": vgg19,
    "vgg11_bn": vgg11_bn, "vgg13_bn": vgg13_bn, "vgg16_bn": vgg16_bn, "vgg19_bn": vgg19_bn,
    "vgg_small": vgg_small,
    "googlenet": googlenet,
    "resnet18": resnet18, "resnet34": resnet34, "resnet50": resnet50,
    "resnet20": resnet20, "resnet56": resnet56,
    "densenet121": densenet121, "densenet_bc_100": densenet_bc_100, "densenet_bc_40": densenet_bc_40,
    "mobilenet_v1": mobilenet_v1, "mobilenet_v2": mobilenet_v2, "mobilenet_v3_small": mobilenet_v3_small,
    "efficientnet_b0": efficientnet_b0, "convnext_tiny": convnext_tiny,
    "spp_net": spp_net,
    "text_cnn": text_cnn,
    "unet": unet,
}

SEGMENTATION = {"unet"}      # models that give logits per pixel (N, K, H, W): they train on masks


def is_segmentation(name: str) -> bool:
    """True for a model that classifies every pixel (a segmentation task's model), not whole images."""
    return _lookup(name) in SEGMENTATION


def did_you_mean(name: str, known) -> str:
    """``"; did you mean 'resnet20'?"`` for the closest of ``known`` to ``name``, or ``""`` when none is close:
    the hint of every error about an unknown name (model here; optimizer, schedule ... in juanji.train)."""
    close = difflib.get_close_matches(str(name), list(known), n=1)
    return f"; did you mean '{close[0]}'?" if close else ""


def names() -> list[str]:
    return sorted(_REGISTRY)


def _lookup(name: str) -> str:
    """The registered spelling of ``name``, where '-' and '_' count as the same character."""
    spellings = {key.replace("-", "_"): key for key in _REGISTRY}
    key = spellings.get(name.replace("-", "_"))
    if key is None:
        raise ValueError(f"unknown model '{name}'{did_you_mean(name, _REGISTRY)} (known: {', '.join(names())})")
    return key


def create(name: str, **kwargs):
    """Build a registered model: ``create("resnet18", num_classes=10, in_channels=1, input_size=28)``.

    The returned model remembers ``name`` and ``config`` (the keyword arguments) so a checkpoint can
    rebuild it, and ``input_shape`` (C, H, W) it expects.
    """
    name = _lookup(name)
    builder = _REGISTRY[name]
    accepted = inspect.signature(builder).parameters
    unknown = [k for k in kwargs if k not in accepted]
    if unknown:
        raise TypeError(f"model '{name}' takes no argument(s) {unknown}; it takes {list(accepted)}")
    model = builder(**kwargs)
    model.name, model.config = name, dict(kwargs)
    return model


def builder(name: str):
    """The registered function that builds ``name`` (its signature gives the arguments and defaults)."""
    return _REGISTRY[_lookup(name)]


def describe(name: str) -> str:
    """The first line of a model's docstring."""
    return (inspect.getdoc(_REGISTRY[_lookup(name)]) or "").splitlines()[0]
