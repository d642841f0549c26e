"""from_torch / to_torch: torch state_dicts into juanji models and back, with clear errors."""
import numpy as np
import pytest
import torch

from juanji import nn
from juanji.interop import from_torch, to_torch


def juanji_net():
    return nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                         nn.Linear(4 * 5 * 5, 3))


def torch_net():
    return torch.nn.Sequential(torch.nn.Conv2d(2, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
                               torch.nn.Flatten(), torch.nn.Linear(4 * 5 * 5, 3)).double()


def randomize_statistics(net):
    with torch.no_grad():
        net[1].running_mean.uniform_(-0.5, 0.5)
        net[1].running_var.uniform_(0.5, 1.5)


def test_torch_weights_give_torch_outputs():
    torch.manual_seed(0)
    reference = torch_net().eval()
    randomize_statistics(reference)
    model = from_torch(juanji_net().to(np.float64).eval(), reference.state_dict())
    x = np.random.default_rng(0).standard_normal((2, 2, 5, 5))
    np.testing.assert_allclose(model(x), reference(torch.tensor(x)).detach().numpy(), rtol=0, atol=1e-12)


def test_tensors_with_grad_and_arrays_are_accepted_and_cast():
    reference = torch_net()
    state = {k: (v.float().requires_grad_() if v.is_floating_point() else v)
             for k, v in reference.state_dict().items()}
    state["4.bias"] = state["4.bias"].detach().numpy()
    model = from_torch(juanji_net(), state)
    assert model[0].params["weight"].dtype == np.float32
    np.testing.assert_allclose(model[4].params["bias"], reference[4].bias.detach().numpy(), rtol=1e-6)


def test_missing_and_unexpected_keys_are_named():
    state = torch_net().state_dict()
    del state["4.weight"]
    state["5.weight"] = torch.zeros(3)
    model = juanji_net()
    before = model[0].params["weight"].copy()
    with pytest.raises(KeyError, match=r"1 missing key\(s\) \[4.weight\], 1 unexpected key\(s\) \[5.weight\]"):
        from_torch(model, state)
    np.testing.assert_array_equal(model[0].params["weight"], before)


def test_shape_mismatch_is_named():
    state = torch_net().state_dict()
    state["0.weight"] = torch.zeros(4, 2, 5, 5)
    with pytest.raises(ValueError, match="'0.weight' expects shape"):
        from_torch(juanji_net(), state)


def test_non_strict_loads_the_common_keys():
    state = {"4.bias": torch.ones(3), "extra": torch.zeros(1)}
    model = from_torch(juanji_net(), state, strict=False)
    np.testing.assert_array_equal(model[4].params["bias"], np.ones(3, np.float32))


def test_to_torch_round_trip():
    model = juanji_net().to(np.float64).eval()
    model[1].buffers["running_var"][:] = [0.5, 1.0, 1.5, 2.0]
    reference = torch_net().eval()
    reference.load_state_dict({k: torch.from_numpy(v) for k, v in to_torch(model).items()})
    x = np.random.default_rng(1).standard_normal((3, 2, 5, 5))
    np.testing.assert_allclose(model(x), reference(torch.tensor(x)).detach().numpy(), rtol=0, atol=1e-12)
