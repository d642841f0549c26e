"""The benchmark's PyTorch networks are juanji's: same parameter count, same names, and with juanji's
weights the same logits (eval and train mode) and the same gradients of every parameter, in float64."""
import numpy as np
import pytest
import torch

from closeness import assert_close
from juanji import models, nn
from juanji import random as jrandom
from juanji.bench import torch_models
from juanji.bench.rows import MODEL_INPUTS, model_args
from juanji.interop.torch import to_torch

PARAMETERS = {"lenet5": 61_706, "resnet20": 269_722, "mobilenet_v2": 2_236_682}


def randomise_buffers(model, rng):
    """Running statistics away from (0, 1), so that an eval-mode mismatch in BatchNorm would show."""
    for module in model.modules():
        for key, buffer in module.buffers.items():
            buffer[...] = rng.uniform(0.5, 1.5, buffer.shape) if "var" in key else rng.normal(0, 0.2, buffer.shape)


@pytest.mark.parametrize("name", sorted(MODEL_INPUTS))
def test_same_parameter_count_and_names(name):
    ours = models.create(name, **model_args(name))
    theirs = getattr(torch_models, name)(**model_args(name))
    assert ours.num_parameters() == sum(p.numel() for p in theirs.parameters()) == PARAMETERS[name]
    assert sorted(to_torch(ours)) == sorted(theirs.state_dict())


@pytest.mark.parametrize("name", sorted(MODEL_INPUTS))
def test_juanji_weights_give_the_same_logits_and_gradients_in_float64(name):
    jrandom.seed(0)
    rng = np.random.default_rng(0)
    ours = models.create(name, **model_args(name)).to(np.float64)
    randomise_buffers(ours, rng)
    theirs = getattr(torch_models, name)(**model_args(name)).double()
    theirs.load_state_dict({key: torch.from_numpy(value) for key, value in to_torch(ours).items()})
    channels, size = MODEL_INPUTS[name]
    x = rng.standard_normal((4, channels, size, size))
    labels = rng.integers(0, 10, 4)

    ours.eval(), theirs.eval()
    with torch.no_grad():
        assert_close(ours(x), theirs(torch.from_numpy(x)), f"{name} eval logits")

    ours.train(), theirs.train()
    for module in [*ours.modules(), *theirs.modules()]:     # the two frameworks draw different dropout masks
        if isinstance(module, (nn.Dropout, torch.nn.Dropout)):
            module.p = 0.0
    loss_fn = nn.CrossEntropyLoss()
    logits = theirs(torch.from_numpy(x))
    assert_close(ours(x), logits, f"{name} train logits")
    torch.nn.functional.cross_entropy(logits, torch.from_numpy(labels)).backward()
    loss_fn(ours(x), labels)
    ours.backward(loss_fn.backward())
    gradients = dict(theirs.named_parameters())
    for key, _, grad in ours.parameters():
        assert_close(grad, gradients[key].grad, f"{name} d{key}")
