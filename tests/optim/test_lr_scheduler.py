"""Every learning-rate schedule against torch.optim.lr_scheduler over 100 steps, and checkpoints."""
import json

import numpy as np
import pytest
import torch

from juanji.optim import (SGD, CosineAnnealingLR, ExponentialLR, LinearLR, MultiStepLR,
                          ReduceLROnPlateau, SequentialLR, StepLR)
from juanji.optim import lr_scheduler as juanji_lib

torch_lib = torch.optim.lr_scheduler

BASE_LR = 0.1
STEPS = 100


def juanji_optimizer():
    return SGD([("weight", np.zeros(3), np.zeros(3))], lr=BASE_LR)


def torch_optimizer():
    return torch.optim.SGD([torch.zeros(3, requires_grad=True)], lr=BASE_LR)


def warmup_then_cosine(library, optimizer):
    return library.SequentialLR(optimizer, [library.LinearLR(optimizer, start_factor=0.01, total_iters=10),
                                            library.CosineAnnealingLR(optimizer, T_max=90, eta_min=1e-4)],
                                milestones=[10])


def three_phases(library, optimizer):
    return library.SequentialLR(optimizer, [library.LinearLR(optimizer, start_factor=0.2, total_iters=8),
                                            library.ExponentialLR(optimizer, gamma=0.97),
                                            library.StepLR(optimizer, step_size=6, gamma=0.5)],
                                milestones=[5, 40])


# Each builder takes the module holding the scheduler classes, so one recipe builds both sides.
SCHEDULES = {
    "step": lambda lib, opt: lib.StepLR(opt, step_size=7, gamma=0.5),
    "step-default-gamma": lambda lib, opt: lib.StepLR(opt, step_size=30),
    "multistep": lambda lib, opt: lib.MultiStepLR(opt, milestones=[10, 25, 25, 60], gamma=0.3),
    "exponential": lambda lib, opt: lib.ExponentialLR(opt, gamma=0.95),
    "cosine": lambda lib, opt: lib.CosineAnnealingLR(opt, T_max=STEPS),
    "cosine-restarts-past-T_max": lambda lib, opt: lib.CosineAnnealingLR(opt, T_max=30, eta_min=1e-3),
    "linear-default": lambda lib, opt: lib.LinearLR(opt),
    "linear-warmup": lambda lib, opt: lib.LinearLR(opt, start_factor=0.1, total_iters=20),
    "linear-decay": lambda lib, opt: lib.LinearLR(opt, start_factor=1.0, end_factor=0.05,
                                                  total_iters=80),
    "warmup-then-cosine": warmup_then_cosine,
    "three-phases": three_phases,
}


def torch_lrs(build, steps):
    """torch's lr right after construction and after each step."""
    optimizer = torch_optimizer()
    scheduler = build(torch_lib, optimizer)
    lrs = [optimizer.param_groups[0]["lr"]]
    for _ in range(steps):
        optimizer.step()  # torch warns when a scheduler steps before its optimizer
        scheduler.step()
        lrs.append(optimizer.param_groups[0]["lr"])
    return lrs


def juanji_lrs(scheduler, steps):
    lrs = [scheduler.get_last_lr()[0]] if steps else []
    for _ in range(steps):
        scheduler.step()
        assert scheduler.optimizer.lr == scheduler.get_last_lr()[0]
        lrs.append(scheduler.optimizer.lr)
    return lrs


@pytest.mark.parametrize("name", SCHEDULES)
def test_matches_torch_over_100_steps(name):
    build = SCHEDULES[name]
    expected = torch_lrs(build, STEPS)
    optimizer = juanji_optimizer()
    actual = juanji_lrs(build(juanji_lib, optimizer), STEPS)
    assert optimizer.lr == actual[-1]
    np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", SCHEDULES)
def test_state_dict_resumes_midway(name):
    build = SCHEDULES[name]
    scheduler = build(juanji_lib, juanji_optimizer())
    juanji_lrs(scheduler, 50)
    state = json.loads(json.dumps(scheduler.state_dict(), allow_nan=False))

    resumed = build(juanji_lib, juanji_optimizer())
    resumed.load_state_dict(state)
    assert resumed.optimizer.lr == scheduler.optimizer.lr  # restored before the next step
    assert juanji_lrs(resumed, 50)[1:] == juanji_lrs(scheduler, 50)[1:]


# (keyword arguments, metric sequence): plateaus, noise, improvements below the threshold
PLATEAU_CASES = {
    "min-rel": (dict(patience=3),
                [1 / (1 + t) if t < 30 else 0.03 + 0.001 * np.sin(t) for t in range(STEPS)]),
    "min-abs-cooldown": (dict(factor=0.5, patience=2, threshold=0.01, threshold_mode="abs",
                              cooldown=3, min_lr=1e-3),
                         [1.0 - 0.005 * t if t % 7 else 1.0 for t in range(STEPS)]),
    "max-rel": (dict(mode="max", factor=0.3, patience=0, threshold=0.05),
                [np.tanh(t / 20) + 0.01 * np.cos(3 * t) for t in range(STEPS)]),
    "max-abs-eps": (dict(mode="max", factor=0.9, patience=1, threshold_mode="abs", min_lr=0.05,
                         eps=1e-3),
                    [float(t % 5) for t in range(STEPS)]),
}


@pytest.mark.parametrize("name", PLATEAU_CASES)
def test_reduce_on_plateau_matches_torch(name):
    kwargs, metrics = PLATEAU_CASES[name]
    torch_opt = torch_optimizer()
    theirs = torch_lib.ReduceLROnPlateau(torch_opt, **kwargs)
    ours = ReduceLROnPlateau(juanji_optimizer(), **kwargs)
    for metric in metrics:
        theirs.step(metric)
        ours.step(metric)
        assert ours.get_last_lr()[0] == pytest.approx(theirs.get_last_lr()[0], rel=0, abs=1e-12)
        assert ours.num_bad_epochs == theirs.num_bad_epochs
        assert ours.cooldown_counter == theirs.cooldown_counter
    assert ours.optimizer.lr < BASE_LR  # the metric sequence did trigger reductions


@pytest.mark.parametrize("name", PLATEAU_CASES)
def test_reduce_on_plateau_state_dict_resumes_midway(name):
    kwargs, metrics = PLATEAU_CASES[name]
    scheduler = ReduceLROnPlateau(juanji_optimizer(), **kwargs)
    json.dumps(scheduler.state_dict(), allow_nan=False)  # even before the first metric
    for metric in metrics[:50]:
        scheduler.step(metric)
    resumed = ReduceLROnPlateau(juanji_optimizer(), **kwargs)
    resumed.load_state_dict(json.loads(json.dumps(scheduler.state_dict(), allow_nan=False)))
    assert resumed.optimizer.lr == scheduler.optimizer.lr
    for metric in metrics[50:]:
        scheduler.step(metric)
        resumed.step(metric)
        assert resumed.get_last_lr() == scheduler.get_last_lr()


def test_load_state_dict_rejects_another_scheduler():
    state = StepLR(juanji_optimizer(), step_size=5).state_dict()
    with pytest.raises(ValueError, match="StepLR"):
        ExponentialLR(juanji_optimizer(), gamma=0.9).load_state_dict(state)
    with pytest.raises(ValueError, match="step_size"):
        StepLR(juanji_optimizer(), step_size=5).load_state_dict(
            {key: value for key, value in state.items() if key != "step_size"})


@pytest.mark.parametrize("build, message", [
    (lambda opt: StepLR(opt, step_size=0), "StepLR: invalid step_size"),
    (lambda opt: CosineAnnealingLR(opt, T_max=0), "CosineAnnealingLR: invalid T_max"),
    (lambda opt: LinearLR(opt, start_factor=0), "LinearLR: invalid start_factor"),
    (lambda opt: LinearLR(opt, end_factor=1.5), "LinearLR: invalid end_factor"),
    (lambda opt: SequentialLR(opt, [StepLR(opt, 5), StepLR(opt, 5)], milestones=[]),
     "SequentialLR: invalid milestones"),
    (lambda opt: SequentialLR(opt, [StepLR(opt, 5), ReduceLROnPlateau(opt)], milestones=[3]),
     "SequentialLR: invalid schedulers"),
    (lambda opt: ReduceLROnPlateau(opt, mode="lowest"), "ReduceLROnPlateau: invalid mode"),
    (lambda opt: ReduceLROnPlateau(opt, factor=1.0), "ReduceLROnPlateau: invalid factor"),
    (lambda opt: ReduceLROnPlateau(opt, threshold_mode="pct"),
     "ReduceLROnPlateau: invalid threshold_mode"),
])
def test_invalid_arguments_name_scheduler_and_argument(build, message):
    with pytest.raises(ValueError, match=message):
        build(juanji_optimizer())


def test_multistep_accepts_unsorted_milestones():
    scheduler = MultiStepLR(juanji_optimizer(), milestones=[8, 3], gamma=0.5)
    assert [scheduler.lr_at(epoch) for epoch in (2, 3, 8)] == [0.1, 0.05, 0.025]
