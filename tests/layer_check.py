"""Shared helpers for the layer tests: run a juanji module and its torch.nn twin on the same state,
input and output gradient, and compare everything with the suite's closeness rule (tests/closeness.py).
"""
import numpy as np
import torch

from closeness import DTYPES, TOLERANCE, assert_close  # noqa: F401  (re-exported to the tests)

TORCH_DTYPE = {np.dtype(np.float64): torch.float64, np.dtype(np.float32): torch.float32}


def randomise_state(module, seed=0):
    """Give every parameter and buffer non-trivial values (BatchNorm starts at γ = 1, β = 0, μ = 0, σ² = 1,
    which would hide a swapped γ/β or an ignored statistic)."""
    rng = np.random.default_rng(seed)
    for _, mod in module.named_modules():
        for key, array in {**mod.params, **mod.buffers}.items():
            array[...] = rng.uniform(0.5 if key == "running_var" else -1.0, 1.5, array.shape)


def load_into_torch(module, torch_module):
    """Copy juanji's state_dict into the torch module by name; the names must be torch's own, all of them
    (BatchNorm's num_batches_tracked among them)."""
    state = {name: torch.from_numpy(value.copy()) for name, value in module.state_dict().items()}
    missing, unexpected = torch_module.load_state_dict(state, strict=False)
    assert not unexpected, f"juanji names torch does not know: {unexpected}"
    assert not missing, f"missing in juanji: {missing}"


def compare_with_torch(module, torch_module, x, steps=1, seed=0):
    """Forward + backward of ``module`` and ``torch_module`` (same state, same x and dy) ``steps`` times,
    fresh inputs each step; compares y, dx, every parameter gradient and every buffer, and checks that
    outputs, dx and the grads dicts keep x's dtype. Returns the last juanji output."""
    dtype = x.dtype
    torch_module = torch_module.to(TORCH_DTYPE[dtype]).train(module.training)
    load_into_torch(module, torch_module)
    torch_params = dict(torch_module.named_parameters())
    assert sorted(name for name, _, _ in module.parameters()) == sorted(torch_params)
    rng = np.random.default_rng(seed)
    for step in range(steps):
        if step:
            x = (rng.standard_normal(x.shape) * (1 + step) + step).astype(dtype)
        y = module(x)
        dy = rng.standard_normal(y.shape).astype(dtype)
        dx = module.backward(dy)
        x_t = torch.from_numpy(x.copy()).requires_grad_(True)
        for p in torch_params.values():
            p.grad = None
        y_t = torch_module(x_t)
        y_t.backward(torch.from_numpy(dy))
        assert y.dtype == dtype and dx.dtype == dtype, f"y {y.dtype}, dx {dx.dtype} for a {dtype} input"
        assert_close(y, y_t, f"step {step}: y")
        assert_close(dx, x_t.grad, f"step {step}: dx")
        for name, param, grad in module.parameters():
            assert param.dtype == grad.dtype == dtype, f"{name}: param {param.dtype}, grad {grad.dtype}"
            assert_close(grad, torch_params[name].grad, f"step {step}: grad of {name}")
        torch_state = torch_module.state_dict()
        for name, value in module.state_dict().items():
            if value.dtype.kind != "f":         # a count (num_batches_tracked): exactly torch's
                assert value.dtype == np.int64 and value == torch_state[name].item(), f"step {step}: {name}"
                continue
            assert value.dtype == dtype, f"{name} is {value.dtype}"
            assert_close(value, torch_state[name], f"step {step}: {name}")
    return y


class TorchResidual(torch.nn.Module):
    """y = body(x) + shortcut(x), children named as juanji's Residual names them."""

    def __init__(self, body, shortcut=None):
        super().__init__()
        self.body, self.shortcut = body, shortcut or torch.nn.Identity()

    def forward(self, x):
        return self.body(x) + self.shortcut(x)


class TorchConcat(torch.nn.Module):
    """Branches named "0", "1", … as juanji's Concat; outputs concatenated along dim."""

    def __init__(self, *branches, dim=1):
        super().__init__()
        for i, branch in enumerate(branches):
            self.add_module(str(i), branch)
        self.dim = dim

    def forward(self, x):
        return torch.cat([branch(x) for branch in self.children()], dim=self.dim)
