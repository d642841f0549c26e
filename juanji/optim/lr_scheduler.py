"""Learning-rate schedules: each ``step()`` (once per epoch, or per batch) sets ``optimizer.lr``.

Every schedule except ReduceLROnPlateau is a closed-form function of its step counter,
``lr_at(epoch)``, so it can be resumed, inspected or plotted without replaying it. torch updates
most of them recursively instead (``lr ← lr·γ`` at each step); the two agree up to rounding (the
tests check 1e-12 over 100 steps). One consequence differs: torch's recursive schedulers can be
*chained* (two schedulers stepping one optimizer multiply their effects), whereas a closed-form
schedule overwrites the lr; combine schedules with SequentialLR instead.
"""
from __future__ import annotations

import copy
import math
from bisect import bisect_right

from .optimizer import check


class LRScheduler:
    """Shared bookkeeping: the optimizer, the step counter, the last lr set, JSON checkpoints."""

    _not_saved = ("optimizer",)  # attributes that are not part of the checkpoint

    def __init__(self, optimizer):
        self.optimizer = optimizer
        self.last_epoch = 0
        self.last_lr = optimizer.lr

    def get_last_lr(self) -> list[float]:
        """The lr set by the latest step, as a one-element list (torch: one per param group)."""
        return [self.last_lr]

    def _set_lr(self, lr: float) -> None:
        self.last_lr = lr
        self.optimizer.lr = lr

    def state_dict(self) -> dict:
        """``{"type": ..., **attributes}``: plain numbers, strings and lists (JSON-serialisable)."""
        state = {key: copy.deepcopy(value) for key, value in vars(self).items()
                 if key not in self._not_saved}
        return {"type": type(self).__name__, **state}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore all attributes; ``ValueError`` for another scheduler's state or a partial one."""
        kind = type(self).__name__
        if state_dict.get("type") != kind:
            raise ValueError(f"{kind}.load_state_dict: the state is for {state_dict.get('type')!r}")
        state = {key: value for key, value in state_dict.items() if key != "type"}
        expected = {key for key in vars(self) if key not in self._not_saved}
        if set(state) != expected:
            raise ValueError(f"{kind}.load_state_dict: missing keys "
                             f"{sorted(expected - set(state))}, "
                             f"unexpected keys {sorted(set(state) - expected)}")
        vars(self).update(copy.deepcopy(state))
        # Restore the optimizer's lr too: then it does not matter which of the two is loaded first.
        self.optimizer.lr = self.last_lr


class ClosedFormScheduler(LRScheduler):
    """A schedule given by a formula of the step counter: ``lr = lr_at(last_epoch)``.

    Subclasses set their attributes, then call ``super().__init__`` (which applies ``lr_at(0)``).
    """

    def __init__(self, optimizer):
        super().__init__(optimizer)
        # The first scheduler records the base lr that every later schedule scales (torch's
        # "initial_lr"), so schedulers built one after another for SequentialLR agree on it.
        if optimizer.initial_lr is None:
            optimizer.initial_lr = optimizer.lr
        self.base_lr = optimizer.initial_lr
        self._set_lr(self.lr_at(0))

    def lr_at(self, epoch: int) -> float:
        raise NotImplementedError(f"{type(self).__name__} has no formula")

    def step(self) -> None:
        self.last_epoch += 1
        self._set_lr(self.lr_at(self.last_epoch))

    def continue_at(self, epoch: int) -> None:
        """Go on from step ``epoch`` of this schedule (``last_epoch = epoch``, its lr set): how a resumed
        training keeps its place when the schedule was rebuilt over another number of epochs."""
        self.last_epoch = int(epoch)
        self._set_lr(self.lr_at(self.last_epoch))


class StepLR(ClosedFormScheduler):
    """lr = base_lr · γ^⌊epoch / step_size⌋."""

    def __init__(self, optimizer, step_size, gamma=0.1):
        check(step_size >= 1, self, "step_size", step_size, "an integer >= 1")
        self.step_size = int(step_size)
        self.gamma = float(gamma)
        super().__init__(optimizer)

    def lr_at(self, epoch):
        return self.base_lr * self.gamma ** (epoch // self.step_size)


class MultiStepLR(ClosedFormScheduler):
    """lr = base_lr · γ^(number of milestones ≤ epoch)  (a repeated milestone counts twice)."""

    def __init__(self, optimizer, milestones, gamma=0.1):
        self.milestones = sorted(int(milestone) for milestone in milestones)
        self.gamma = float(gamma)
        super().__init__(optimizer)

    def lr_at(self, epoch):
        return self.base_lr * self.gamma ** bisect_right(self.milestones, epoch)


class ExponentialLR(ClosedFormScheduler):
    """lr = base_lr · γ^epoch."""

    def __init__(self, optimizer, gamma):
        self.gamma = float(gamma)
        super().__init__(optimizer)

    def lr_at(self, epoch):
        return self.base_lr * self.gamma ** epoch


class CosineAnnealingLR(ClosedFormScheduler):
    """lr = η_min + (base_lr − η_min) · (1 + cos(π·epoch/T_max)) / 2  (rises again past T_max)."""

    def __init__(self, optimizer, T_max, eta_min=0):
        check(T_max >= 1, self, "T_max", T_max, "an integer >= 1")
        self.T_max = int(T_max)
        self.eta_min = float(eta_min)
        super().__init__(optimizer)

    def lr_at(self, epoch):
        cosine = math.cos(math.pi * epoch / self.T_max)
        return self.eta_min + (self.base_lr - self.eta_min) * (1 + cosine) / 2


class LinearLR(ClosedFormScheduler):
    """lr = base_lr · (s + (e − s) · min(epoch, T)/T), T = total_iters, s/e = start/end_factor."""

    def __init__(self, optimizer, start_factor=1.0 / 3, end_factor=1.0, total_iters=5):
        check(0 < start_factor <= 1, self, "start_factor", start_factor, "0 < start_factor <= 1")
        check(0 <= end_factor <= 1, self, "end_factor", end_factor, "0 <= end_factor <= 1")
        check(total_iters >= 1, self, "total_iters", total_iters, "an integer >= 1")
        self.start_factor = float(start_factor)
        self.end_factor = float(end_factor)
        self.total_iters = int(total_iters)
        super().__init__(optimizer)

    def lr_at(self, epoch):
        progress = min(epoch, self.total_iters) / self.total_iters
        return self.base_lr * (self.start_factor + (self.end_factor - self.start_factor) * progress)


class SequentialLR(ClosedFormScheduler):
    """In phase i (from start = milestones[i−1], or 0): lr = schedulers[i].lr_at(epoch − start).

    Each schedule starts from its own epoch 0 at its milestone (e.g. warm-up, then cosine). The
    inner schedulers only provide their formulas: step the SequentialLR, not them.
    """

    _not_saved = ("optimizer", "schedulers")  # the inner schedulers save their own state

    def __init__(self, optimizer, schedulers, milestones):
        check(len(schedulers) >= 1, self, "schedulers", schedulers, "at least one scheduler")
        check(len(milestones) == len(schedulers) - 1, self, "milestones", milestones,
              f"{len(schedulers) - 1} milestones for {len(schedulers)} schedulers")
        check(list(milestones) == sorted(milestones), self, "milestones", milestones, "increasing")
        for scheduler in schedulers:
            check(isinstance(scheduler, ClosedFormScheduler), self, "schedulers", scheduler,
                  "epoch-based schedulers (not ReduceLROnPlateau)")
            check(scheduler.optimizer is optimizer, self, "schedulers", scheduler,
                  "schedulers of this same optimizer")
        self.schedulers = list(schedulers)
        self.milestones = [int(milestone) for milestone in milestones]
        super().__init__(optimizer)

    def lr_at(self, epoch):
        index = bisect_right(self.milestones, epoch)
        start = self.milestones[index - 1] if index > 0 else 0
        return self.schedulers[index].lr_at(epoch - start)

    def state_dict(self):
        return {**super().state_dict(), "schedulers": [s.state_dict() for s in self.schedulers]}

    def load_state_dict(self, state_dict):
        state = dict(state_dict)
        inner_states = state.pop("schedulers", [])
        if len(inner_states) != len(self.schedulers):
            raise ValueError(f"SequentialLR.load_state_dict: 'schedulers' holds "
                             f"{len(inner_states)} states for {len(self.schedulers)} schedulers")
        for scheduler, inner_state in zip(self.schedulers, inner_states):
            scheduler.load_state_dict(inner_state)
        super().load_state_dict(state)


class ReduceLROnPlateau(LRScheduler):
    """lr ← max(lr · factor, min_lr) after more than `patience` steps without improvement."""

    def __init__(self, optimizer, mode="min", factor=0.1, patience=10, threshold=1e-4,
                 threshold_mode="rel", cooldown=0, min_lr=0, eps=1e-8):
        check(mode in ("min", "max"), self, "mode", mode, "'min' or 'max'")
        check(threshold_mode in ("rel", "abs"), self, "threshold_mode", threshold_mode,
              "'rel' or 'abs'")
        check(0 <= factor < 1, self, "factor", factor, "0 <= factor < 1")
        check(patience >= 0, self, "patience", patience, ">= 0")
        check(cooldown >= 0, self, "cooldown", cooldown, ">= 0")
        check(min_lr >= 0, self, "min_lr", min_lr, ">= 0")
        super().__init__(optimizer)
        self.mode = mode
        self.factor = float(factor)
        self.patience = int(patience)
        self.threshold = float(threshold)
        self.threshold_mode = threshold_mode
        self.cooldown = int(cooldown)
        self.min_lr = float(min_lr)
        self.eps = float(eps)
        self.best = None  # None until the first metric: torch uses ±inf, which is not valid JSON
        self.num_bad_epochs = 0
        self.cooldown_counter = 0

    def step(self, metric) -> None:
        """Record this epoch's ``metric`` (e.g. validation loss) and reduce the lr if it stalled."""
        current = float(metric)
        self.last_epoch += 1
        if self._improves(current):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0  # right after a reduction, give the new lr time to work
        if self.num_bad_epochs > self.patience:
            self._reduce_lr()
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        self.last_lr = self.optimizer.lr

    def _improves(self, current: float) -> bool:
        """Whether ``current`` beats the best so far by more than the threshold."""
        if self.best is None:
            best = math.inf if self.mode == "min" else -math.inf
        else:
            best = self.best
        relative = self.threshold_mode == "rel"
        if self.mode == "min":
            return current < (best * (1 - self.threshold) if relative else best - self.threshold)
        return current > (best * (1 + self.threshold) if relative else best + self.threshold)

    def _reduce_lr(self) -> None:
        old_lr = self.optimizer.lr
        new_lr = max(old_lr * self.factor, self.min_lr)
        if old_lr - new_lr > self.eps:  # skip negligible changes (e.g. already at min_lr)
            self.optimizer.lr = new_lr
