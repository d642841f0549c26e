"""The benchmark's PyTorch networks (ResNet-18 with either stem among them) are juanji's: same parameter count,
same names, and with juanji's weights the same logits (eval and train mode) and the same gradients of every
parameter, in float64."""
import numpy as np
import pytest
import torch

from closeness import assert_close
from juanji import models, nn
from juanji import random as jrandom
from juanji.bench import torch_models
from juanji.bench.rows import MODEL_INPUTS, input_args
from juanji.interop.torch import to_torch

# case: (model, channels, input size, parameters): the benchmark's models, and --scaling's ResNet-18 with either stem
CASES = {**{name: (name, *MODEL_INPUTS[name], count)
            for name, count in (("lenet5", 61_706), ("resnet20", 269_722), ("mobilenet_v2", 2_236_682))},
         "resnet18 cifar stem": ("resnet18", 3, 32, 11_173_962), "resnet18": ("resnet18", 3, 64, 11_181_642)}


def randomise_buffers(model, rng):
    """Running statistics away from (0, 1), so that an eval-mode mismatch in BatchNorm would show."""
    for module in model.modules():
        for key, buffer in module.buffers.items():
            buffer[...] = rng.uniform(0.5, 1.5, buffer.shape) if "var" in key else rng.normal(0, 0.2, buffer.shape)


@pytest.mark.parametrize("case", CASES)
def test_same_parameter_count_and_names(case):
    name, channels, size, count = CASES[case]
    ours = models.create(name, **input_args(channels, size))
    theirs = getattr(torch_models, name)(**input_args(channels, size))
    assert ours.num_parameters() == sum(p.numel() for p in theirs.parameters()) == count
    assert sorted(to_torch(ours)) == sorted(theirs.state_dict())


# the CIFAR stem's logits are resnet20's case already (one builder): ResNet-18's cost seconds more
@pytest.mark.parametrize("case", [case for case in CASES if case != "resnet18 cifar stem"])
def test_juanji_weights_give_the_same_logits_and_gradients_in_float64(case):
    name, channels, size, _ = CASES[case]
    jrandom.seed(0)
    rng = np.random.default_rng(0)
    ours = models.create(name, **input_args(channels, size)).to(np.float64)
    randomise_buffers(ours, rng)
    theirs = getattr(torch_models, name)(**input_args(channels, size)).double()
    theirs.load_state_dict({key: torch.from_numpy(value) for key, value in to_torch(ours).items()})
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
