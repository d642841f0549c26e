"""Every optimizer and option against torch.optim: same gradients in, same parameters out."""
import json

import numpy as np
import pytest
import torch

from juanji.optim import SGD, Adagrad, Adam, AdamW, Momentum, Nesterov, RMSprop

SHAPES = {"features.0.weight": (4, 3, 2, 2), "features.0.bias": (4,), "classifier.weight": (5, 7)}

# (juanji class, its kwargs, the torch class and kwargs it must reproduce)
CASES = {
    "sgd": (SGD, dict(lr=0.1), torch.optim.SGD, dict(lr=0.1)),
    "sgd-weight-decay": (SGD, dict(lr=0.1, weight_decay=0.05), torch.optim.SGD,
                         dict(lr=0.1, weight_decay=0.05)),
    "sgd-momentum": (SGD, dict(lr=0.05, momentum=0.9), torch.optim.SGD, dict(lr=0.05, momentum=0.9)),
    "sgd-dampening": (SGD, dict(lr=0.05, momentum=0.8, dampening=0.3, weight_decay=0.01),
                      torch.optim.SGD, dict(lr=0.05, momentum=0.8, dampening=0.3, weight_decay=0.01)),
    "sgd-nesterov": (SGD, dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01),
                     torch.optim.SGD, dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01)),
    "momentum": (Momentum, dict(lr=0.05), torch.optim.SGD, dict(lr=0.05, momentum=0.9)),
    "nesterov": (Nesterov, dict(lr=0.05, weight_decay=0.01), torch.optim.SGD,
                 dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01)),
    "adagrad": (Adagrad, dict(), torch.optim.Adagrad, dict()),
    "adagrad-options": (Adagrad, dict(lr=0.1, lr_decay=0.05, weight_decay=0.02,
                                      initial_accumulator_value=0.1, eps=1e-6),
                        torch.optim.Adagrad, dict(lr=0.1, lr_decay=0.05, weight_decay=0.02,
                                                  initial_accumulator_value=0.1, eps=1e-6)),
    "rmsprop": (RMSprop, dict(), torch.optim.RMSprop, dict()),
    "rmsprop-weight-decay": (RMSprop, dict(alpha=0.9, weight_decay=0.05), torch.optim.RMSprop,
                             dict(alpha=0.9, weight_decay=0.05)),
    "rmsprop-momentum": (RMSprop, dict(momentum=0.9), torch.optim.RMSprop, dict(momentum=0.9)),
    "rmsprop-centered": (RMSprop, dict(centered=True), torch.optim.RMSprop, dict(centered=True)),
    "rmsprop-all": (RMSprop, dict(lr=3e-3, alpha=0.95, eps=1e-6, weight_decay=0.01, momentum=0.5,
                                  centered=True),
                    torch.optim.RMSprop, dict(lr=3e-3, alpha=0.95, eps=1e-6, weight_decay=0.01,
                                              momentum=0.5, centered=True)),
    "adam": (Adam, dict(), torch.optim.Adam, dict()),
    "adam-options": (Adam, dict(lr=1e-2, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.05),
                     torch.optim.Adam, dict(lr=1e-2, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.05)),
    "adam-amsgrad": (Adam, dict(lr=1e-2, amsgrad=True, weight_decay=0.01), torch.optim.Adam,
                     dict(lr=1e-2, amsgrad=True, weight_decay=0.01)),
    "adamw": (AdamW, dict(), torch.optim.AdamW, dict()),
    "adamw-options": (AdamW, dict(lr=1e-2, betas=(0.85, 0.98), weight_decay=0.1, amsgrad=True),
                      torch.optim.AdamW, dict(lr=1e-2, betas=(0.85, 0.98), weight_decay=0.1,
                                              amsgrad=True)),
}


def make_params(rng, dtype=np.float64):
    """Model-style ``(name, param, grad)`` triples with random weights and zero grads."""
    return [(name, rng.standard_normal(shape).astype(dtype), np.zeros(shape, dtype))
            for name, shape in SHAPES.items()]


def copy_params(params):
    return [(name, param.copy(), grad.copy()) for name, param, grad in params]


def random_grads(rng, steps, dtype=np.float64):
    return [{name: rng.standard_normal(shape).astype(dtype) for name, shape in SHAPES.items()}
            for _ in range(steps)]


def run(optimizer, grads):
    """Feed each step's gradients in place into the optimizer's grad arrays, as a layer would."""
    for step_grads in grads:
        for name, _, grad in optimizer.params:
            grad[...] = step_grads[name]
        optimizer.step()


@pytest.mark.parametrize("case", CASES)
def test_matches_torch_for_20_steps(case):
    juanji_class, juanji_kwargs, torch_class, torch_kwargs = CASES[case]
    rng = np.random.default_rng(0)
    params = make_params(rng)
    tensors = {name: torch.tensor(param, requires_grad=True) for name, param, _ in params}
    ours = juanji_class(params, **juanji_kwargs)
    theirs = torch_class(list(tensors.values()), **torch_kwargs)
    original_arrays = [(param, grad) for _, param, grad in params]

    for step, step_grads in enumerate(random_grads(rng, 20)):
        if step == 10:  # a scheduler-style lr change halfway must be honoured
            ours.lr *= 0.5
            theirs.param_groups[0]["lr"] *= 0.5
        run(ours, [step_grads])
        for name, tensor in tensors.items():
            tensor.grad = torch.tensor(step_grads[name])
        theirs.step()
        for name, _, grad in params:  # the optimizer must not modify the layers' grads
            np.testing.assert_array_equal(grad, step_grads[name])

    for name, param, _ in params:
        np.testing.assert_allclose(param, tensors[name].detach().numpy(), rtol=0, atol=1e-12,
                                   err_msg=name)
    # updated in place: the model's arrays are still the optimizer's arrays
    assert all(p is q and g is h for (_, p, g), (q, h) in zip(ours.params, original_arrays))


@pytest.mark.parametrize("case", CASES)
def test_float32_stays_float32(case):
    juanji_class, juanji_kwargs, _, _ = CASES[case]
    rng = np.random.default_rng(1)
    params, grads = make_params(rng), random_grads(rng, 3)
    single = juanji_class([(name, p.astype(np.float32), g.astype(np.float32))
                           for name, p, g in params], **juanji_kwargs)
    double = juanji_class(params, **juanji_kwargs)
    run(single, [{name: g.astype(np.float32) for name, g in step.items()} for step in grads])
    run(double, grads)
    assert all(array.dtype == np.float32 for slots in single.state.values()
               for array in slots.values())
    for (name, actual, _), (_, expected, _) in zip(single.params, double.params):
        np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-5, err_msg=name)


@pytest.mark.parametrize("case", CASES)
def test_state_dict_resumes_bit_identically(case):
    juanji_class, juanji_kwargs, _, _ = CASES[case]
    rng = np.random.default_rng(2)
    first_half, second_half = random_grads(rng, 10), random_grads(rng, 10)
    original = juanji_class(make_params(rng), **juanji_kwargs)
    run(original, first_half)

    state = original.state_dict()
    assert set(state) == {"type", "hyper", "step", "arrays"}
    assert state["type"] == juanji_class.__name__ and state["step"] == 10
    hyper = json.loads(json.dumps(state["hyper"], allow_nan=False))
    resumed = juanji_class(copy_params(original.params), lr=123.0)  # lr comes from the checkpoint
    resumed.load_state_dict({**state, "hyper": hyper})
    for array in state["arrays"].values():  # loading copies: the checkpoint is not aliased
        array += 1.0

    run(original, second_half)
    run(resumed, second_half)
    for (name, expected, _), (_, actual, _) in zip(original.params, resumed.params):
        np.testing.assert_array_equal(actual, expected, err_msg=name)


def test_state_dict_keys_name_parameter_and_slot():
    optimizer = Adam(make_params(np.random.default_rng(3)), amsgrad=True)
    run(optimizer, random_grads(np.random.default_rng(4), 1))
    assert set(optimizer.state_dict()["arrays"]) == {
        f"{name}/{slot}" for name in SHAPES for slot in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")}
    assert optimizer.state_dict()["hyper"] == {"lr": 1e-3, "betas": [0.9, 0.999], "eps": 1e-8,
                                               "weight_decay": 0.0, "amsgrad": True}


def test_load_state_dict_copies_into_existing_arrays():
    rng = np.random.default_rng(5)
    optimizer = SGD(make_params(rng), lr=0.1, momentum=0.9)
    run(optimizer, random_grads(rng, 2))
    buffer = optimizer.state["classifier.weight"]["momentum_buffer"]
    state = optimizer.state_dict()
    run(optimizer, random_grads(rng, 2))
    optimizer.load_state_dict(state)
    assert optimizer.state["classifier.weight"]["momentum_buffer"] is buffer
    np.testing.assert_array_equal(buffer, state["arrays"]["classifier.weight/momentum_buffer"])
    assert optimizer.step_count == 2


def test_load_state_dict_rejects_mismatches():
    rng = np.random.default_rng(6)
    optimizer = Adam(make_params(rng))
    run(optimizer, random_grads(rng, 1))
    state = optimizer.state_dict()
    with pytest.raises(ValueError, match="AdamW"):
        AdamW(make_params(rng)).load_state_dict(state)
    wrong_shape = {**state, "arrays": {**state["arrays"], "features.0.bias/exp_avg": np.zeros(3)}}
    with pytest.raises(ValueError, match="features.0.bias/exp_avg"):
        optimizer.load_state_dict(wrong_shape)
    unknown = {**state, "arrays": {**state["arrays"], "fc.weight/exp_avg": np.zeros(3)}}
    with pytest.raises(ValueError, match="fc.weight/exp_avg"):
        optimizer.load_state_dict(unknown)
    with pytest.raises(ValueError, match="momentum"):
        optimizer.load_state_dict({**state, "hyper": {**state["hyper"], "momentum": 0.9}})


def test_zero_grad_fills_grads_with_zero():
    rng = np.random.default_rng(7)
    optimizer = SGD(make_params(rng))
    for _, _, grad in optimizer.params:
        grad[...] = 1.0
    optimizer.zero_grad()
    assert all(not grad.any() for _, _, grad in optimizer.params)


@pytest.mark.parametrize("build, message", [
    (lambda p: SGD(p, lr=-0.1), "SGD: invalid lr"),
    (lambda p: SGD(p, momentum=-0.5), "SGD: invalid momentum"),
    (lambda p: SGD(p, weight_decay=-1), "SGD: invalid weight_decay"),
    (lambda p: SGD(p, nesterov=True), "SGD: invalid nesterov"),
    (lambda p: SGD(p, momentum=0.9, dampening=0.1, nesterov=True), "SGD: invalid nesterov"),
    (lambda p: Momentum(p, momentum=-0.9), "Momentum: invalid momentum"),
    (lambda p: Nesterov(p, momentum=0), "Nesterov: invalid nesterov"),
    (lambda p: Adagrad(p, lr_decay=-1), "Adagrad: invalid lr_decay"),
    (lambda p: Adagrad(p, initial_accumulator_value=-1), "Adagrad: invalid initial_accumulator_value"),
    (lambda p: RMSprop(p, alpha=-0.1), "RMSprop: invalid alpha"),
    (lambda p: RMSprop(p, momentum=-0.1), "RMSprop: invalid momentum"),
    (lambda p: RMSprop(p, eps=-1e-8), "RMSprop: invalid eps"),
    (lambda p: Adam(p, betas=(1.0, 0.999)), r"Adam: invalid betas\[0\]"),
    (lambda p: Adam(p, betas=(0.9, -0.1)), r"Adam: invalid betas\[1\]"),
    (lambda p: AdamW(p, weight_decay=-0.01), "AdamW: invalid weight_decay"),
    (lambda p: AdamW(p, lr=-1e-3), "AdamW: invalid lr"),
])
def test_invalid_hyperparameters_name_optimizer_and_argument(build, message):
    with pytest.raises(ValueError, match=message):
        build(make_params(np.random.default_rng(8)))


def test_lr_set_later_is_checked_and_kept_a_python_float():
    optimizer = Adam(make_params(np.random.default_rng(9)))
    optimizer.lr = np.float64(0.5)  # a NumPy scalar would upcast float32 updates
    assert type(optimizer.lr) is float
    with pytest.raises(ValueError, match="Adam: invalid lr"):
        optimizer.lr = -1.0
