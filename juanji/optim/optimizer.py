"""The base class of every optimizer: parameters, hyperparameters, per-parameter state, checkpoints.

An optimizer holds the model's ``(name, param, grad)`` triples. ``step()`` reads each ``grad`` and
updates ``param`` *in place*, so the model sees the new weights without any re-wiring. What an
optimizer remembers between steps (momentum, running averages) lives in ``state[name][slot]``: one
array per parameter and slot, in the parameter's dtype, created on first use.
"""
from __future__ import annotations

import math

import numpy as np


def check(condition: bool, owner, argument: str, value, expected: str) -> None:
    """Unless ``condition``: raise ``ValueError("Adam: invalid eps=-1 (expected >= 0)")``."""
    if not condition:
        raise ValueError(f"{type(owner).__name__}: invalid {argument}={value!r} "
                         f"(expected {expected})")


class Optimizer:
    """Base class: subclasses implement ``update_parameter(param, grad, state)`` for one parameter.

    Keyword hyperparameters given to ``__init__`` become attributes (``self.momentum``) and are
    saved by ``state_dict``. ``lr`` is settable between steps (that is what schedulers do).
    """

    def __init__(self, params, lr: float, **hyper):
        self.params = list(params)
        names = [name for name, _, _ in self.params]
        if len(set(names)) != len(names):
            raise ValueError(f"{type(self).__name__}: parameter names must be unique, got {names}")
        for name, param, grad in self.params:
            if grad.shape != param.shape or grad.dtype != param.dtype:
                raise ValueError(f"{type(self).__name__}: '{name}' has a {param.dtype} "
                                 f"{param.shape} param but a {grad.dtype} {grad.shape} grad")
        self.lr = lr
        self.hyper_names = tuple(hyper)
        for key, value in hyper.items():
            setattr(self, key, value)
        self.step_count = 0
        self.state: dict[str, dict[str, np.ndarray]] = {name: {} for name in names}
        # Set by the first scheduler attached: the lr every schedule scales (torch's "initial_lr").
        self.initial_lr: float | None = None

    @property
    def lr(self) -> float:
        return self._lr

    @lr.setter
    def lr(self, value: float) -> None:
        check(value >= 0, self, "lr", value, ">= 0")
        # A Python float: a NumPy float64 scalar would silently upcast float32 parameters.
        self._lr = float(value)

    # -- training ----------------------------------------------------------------------------------
    def step(self) -> None:
        """Update every parameter in place from its current gradient."""
        self.step_count += 1
        for name, param, grad in self.params:
            self.update_parameter(param, grad, self.state[name])

    def update_parameter(self, param: np.ndarray, grad: np.ndarray, state: dict) -> None:
        raise NotImplementedError(f"{type(self).__name__} has no update rule")

    @staticmethod
    def slots_for(hyper: dict) -> tuple[str, ...]:
        """The state arrays every parameter has after the first step under the hyperparameters ``hyper``
        (those of ``state_dict()["hyper"]``); a checkpoint must hold exactly these, no fewer, no others."""
        return ()

    def zero_grad(self) -> None:
        for _, _, grad in self.params:
            grad.fill(0)

    @staticmethod
    def _slot(state: dict, slot: str, param: np.ndarray, fill: float = 0.0) -> np.ndarray:
        """The state array ``slot``, created full of ``fill`` in the param's dtype on first use."""
        if slot not in state:
            state[slot] = np.full_like(param, fill)
        return state[slot]

    # -- checkpoints -------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """``{"type", "hyper": {JSON-serialisable, incl. lr}, "step", "arrays": {"name/slot"}}``."""
        hyper = {key: getattr(self, key) for key in ("lr", *self.hyper_names)}
        return {
            "type": type(self).__name__,
            "hyper": {key: list(value) if isinstance(value, tuple) else value
                      for key, value in hyper.items()},
            "step": self.step_count,
            "arrays": {f"{name}/{slot}": array.copy()
                       for name, slots in self.state.items() for slot, array in slots.items()},
        }

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore hyperparameters, step count and state arrays (copied in place, in param dtype).

        Raises ``ValueError`` naming the offending key for a checkpoint of another optimizer,
        unknown or malformed hyperparameters, unknown parameters or slots, a shape mismatch, an array
        that is not of real floating-point numbers (complex, bool, integer, structured: never cast), or
        an array missing after step 1 (``slots_for``: a momentum that would silently restart at zero);
        nothing is modified unless everything fits.
        """
        kind = type(self).__name__
        if state_dict.get("type") != kind:
            raise ValueError(f"{kind}.load_state_dict: the checkpoint is for "
                             f"{state_dict.get('type')!r}")
        hyper, arrays, step = state_dict["hyper"], state_dict["arrays"], state_dict["step"]
        expected = {"lr", *self.hyper_names}
        if set(hyper) != expected:
            raise ValueError(f"{kind}.load_state_dict: missing hyperparameters "
                             f"{sorted(expected - set(hyper))}, "
                             f"unexpected {sorted(set(hyper) - expected)}")
        for key, value in hyper.items():
            self._check_hyper(key, value)
        if type(step) is not int or step < 0:
            raise ValueError(f"{kind}.load_state_dict: step must be an integer >= 0, got {step!r:.60}")
        params = {name: param for name, param, _ in self.params}
        slots = self.slots_for(hyper)
        wanted = {f"{name}/{slot}": name for name in params for slot in slots} if step else {}  # none before step 1
        for key, array in arrays.items():
            if key not in wanted:
                raise ValueError(f"{kind}.load_state_dict: unexpected key '{key}'"
                                 + ("" if step else " (a state of step 0 holds no arrays)"))
            name = wanted[key]
            if np.shape(array) != params[name].shape:
                raise ValueError(f"{kind}.load_state_dict: '{key}' expects shape "
                                 f"{params[name].shape}, got {np.shape(array)}")
            if np.asarray(array).dtype.kind != "f":
                raise ValueError(f"{kind}.load_state_dict: '{key}' holds {np.asarray(array).dtype}, "
                                 f"not real floating-point numbers")
        missing = [key for key in wanted if key not in arrays]
        if missing:
            raise ValueError(f"{kind}.load_state_dict: missing state arrays {missing[:3]}"
                             f"{' ...' if len(missing) > 3 else ''} ({len(missing)} of {len(wanted)}: every "
                             f"parameter has them after the first step, and this is the state after step {step})")

        for key, value in hyper.items():
            # JSON turns tuples (Adam's betas) into lists; give them back their original type.
            setattr(self, key, tuple(value) if isinstance(getattr(self, key), tuple) else value)
        self.step_count = step
        for name, state in self.state.items():
            # The state becomes exactly the checkpoint's: slots it lacks were not created yet there.
            for slot in [slot for slot in state if f"{name}/{slot}" not in arrays]:
                del state[slot]
            for slot in slots:
                value = arrays.get(f"{name}/{slot}")
                if value is None:
                    continue
                if slot in state:
                    state[slot][...] = value
                else:
                    state[slot] = np.array(value, dtype=params[name].dtype)

    def _check_hyper(self, key: str, value) -> None:
        """A hyperparameter from a checkpoint is of the kind of the one it replaces: a bool for a bool, as many
        finite numbers as a tuple holds (JSON makes it a list), a finite number for a number (lr >= 0)."""
        current = getattr(self, key)
        if isinstance(current, bool):
            fits, expected = type(value) is bool, "true or false"
        else:
            count = len(current) if isinstance(current, tuple) else 1
            numbers = value if isinstance(current, tuple) else [value]
            fits = (isinstance(numbers, (list, tuple)) and len(numbers) == count
                    and all(isinstance(v, (int, float)) and type(v) is not bool and math.isfinite(v) for v in numbers)
                    and not (key == "lr" and value < 0))
            expected = f"{count} finite numbers" if count > 1 else "a finite number" + (" >= 0" if key == "lr" else "")
        if not fits:
            raise ValueError(f"{type(self).__name__}.load_state_dict: hyperparameter {key} must be {expected}, "
                             f"got {value!r:.60}")

    def __repr__(self) -> str:
        hyper = ", ".join(f"{key}={getattr(self, key)!r}" for key in ("lr", *self.hyper_names))
        return f"{type(self).__name__}({hyper})"
