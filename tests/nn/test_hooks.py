"""Forward and backward hooks with torch's semantics: the same hooks on a juanji layer and on torch's twin
are called in the same order, with the same arguments, and what they return replaces the same values."""
import numpy as np
import pytest
import torch

from juanji import nn


def twins():
    layer, twin = nn.Linear(3, 2).to(np.float64), torch.nn.Linear(3, 2).double()
    with torch.no_grad():
        twin.weight.copy_(torch.from_numpy(layer.params["weight"]))
        twin.bias.copy_(torch.from_numpy(layer.params["bias"]))
    return layer, twin


def as_numpy(value):
    if isinstance(value, tuple):
        return tuple(as_numpy(v) for v in value)
    return value.detach().numpy() if isinstance(value, torch.Tensor) else value


def install(module, log, torch_side: bool):
    """Two hooks of each kind (the second prepended, so it runs first), each logging what it saw; some return
    a replacement."""
    wrap = (lambda a: torch.from_numpy(a)) if torch_side else (lambda a: a)
    handles = [
        module.register_forward_pre_hook(lambda m, args: log.append(("pre", as_numpy(args)))),
        module.register_forward_pre_hook(lambda m, args: (args[0] * 2,), prepend=True),
        module.register_forward_hook(lambda m, args, out: log.append(("fwd", as_numpy(args), as_numpy(out)))),
        module.register_forward_hook(lambda m, args, out: out + wrap(np.ones(2))),
        module.register_full_backward_pre_hook(lambda m, grad_out: (grad_out[0] * 3,)),
        module.register_full_backward_pre_hook(lambda m, grad_out: log.append(("bpre", as_numpy(grad_out)))),
        module.register_full_backward_hook(
            lambda m, grad_in, grad_out: log.append(("bwd", as_numpy(grad_in), as_numpy(grad_out)))),
        module.register_full_backward_hook(lambda m, grad_in, grad_out: (grad_in[0] - 1,), prepend=True),
    ]
    return handles


def run(layer, twin, x, dy):
    ours, theirs = [], []
    install(layer, ours, torch_side=False)
    install(twin, theirs, torch_side=True)
    y = layer(x)
    dx = layer.backward(dy)
    x_t = torch.from_numpy(x.copy()).requires_grad_(True)
    y_t = twin(x_t)
    y_t.backward(torch.from_numpy(dy))
    return (y, dx, ours), (y_t.detach().numpy(), x_t.grad.numpy(), theirs)


def same(a, b):
    if isinstance(a, tuple):
        return len(a) == len(b) and all(same(u, v) for u, v in zip(a, b))
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.allclose(a, b, rtol=1e-12, atol=1e-12)
    return a == b


def test_hooks_run_in_torchs_order_and_replace_what_torch_replaces():
    layer, twin = twins()
    rng = np.random.default_rng(0)
    x, dy = rng.standard_normal((4, 3)), rng.standard_normal((4, 2))
    (y, dx, ours), (y_t, dx_t, theirs) = run(layer, twin, x, dy)
    np.testing.assert_allclose(y, y_t, rtol=1e-12)
    # torch's autograd differentiates through the pre-hook's ×2 too; juanji's backward is the layer's, with
    # respect to the input its forward received (the backward hook's −1 applies to it on both sides).
    np.testing.assert_allclose(dx * 2, dx_t, rtol=1e-12)
    assert [entry[0] for entry in ours] == [entry[0] for entry in theirs] == ["pre", "fwd", "bpre", "bwd"]
    for mine, torchs in zip(ours, theirs):
        assert same(mine, torchs), (mine[0], mine, torchs)
    np.testing.assert_allclose(y, x * 2 @ layer.params["weight"].T + layer.params["bias"] + 1)


def test_a_removed_hook_is_not_called_and_a_handle_is_a_context_manager():
    layer = nn.ReLU()
    calls = []
    handle = layer.register_forward_hook(lambda m, args, out: calls.append("kept"))
    with layer.register_forward_hook(lambda m, args, out: calls.append("scoped")):
        layer(np.ones(2))
    layer(np.ones(2))
    handle.remove()
    handle.remove()
    layer(np.ones(2))
    assert calls == ["kept", "scoped", "kept"]


def test_a_pre_hook_returning_one_array_replaces_the_input():
    layer = nn.ReLU()
    layer.register_forward_pre_hook(lambda m, args: -args[0])
    np.testing.assert_array_equal(layer(np.array([1.0, -2.0])), [0.0, 2.0])


@pytest.mark.parametrize("kind", ["forward", "backward"])
def test_a_container_and_its_layers_all_run_their_hooks(kind):
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    seen = []
    for name, module in model.named_modules():
        if kind == "forward":
            module.register_forward_hook(lambda m, args, out, name=name: seen.append(name))
        else:
            module.register_full_backward_hook(lambda m, grad_in, grad_out, name=name: seen.append(name))
    y = model(np.ones((2, 3), np.float32))
    model.backward(np.ones_like(y))
    assert seen == (["0", "1", "2", ""] if kind == "forward" else ["2", "1", "0", ""])
