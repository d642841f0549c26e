"""Stochastic gradient descent with (Nesterov) momentum and weight decay, as torch.optim.SGD."""
from __future__ import annotations

from .optimizer import Optimizer, check


class SGD(Optimizer):
    """g = ∇ + λp;  b ← μb + (1−τ)g (b ← g at step 1);  p ← p − lr·(g + μb if nesterov else b)."""

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False):
        check(momentum >= 0, self, "momentum", momentum, ">= 0")
        check(weight_decay >= 0, self, "weight_decay", weight_decay, ">= 0")
        check(not nesterov or (momentum > 0 and dampening == 0), self, "nesterov", nesterov,
              "nesterov=True only with momentum > 0 and dampening = 0")
        super().__init__(params, lr, momentum=float(momentum), dampening=float(dampening),
                         weight_decay=float(weight_decay), nesterov=bool(nesterov))

    @staticmethod
    def slots_for(hyper):
        return ("momentum_buffer",) if hyper["momentum"] else ()

    def update_parameter(self, param, grad, state):
        if self.weight_decay:
            grad = grad + self.weight_decay * param  # a new array: the layer's grad stays untouched
        if self.momentum:
            buffer = state.get("momentum_buffer")
            if buffer is None:
                # As torch: the buffer starts at the first gradient, not at zero (no damped step 1).
                buffer = state["momentum_buffer"] = grad.copy()
            else:
                buffer *= self.momentum
                buffer += (1 - self.dampening) * grad
            grad = grad + self.momentum * buffer if self.nesterov else buffer
        param -= self.lr * grad


class Momentum(SGD):
    """Heavy-ball momentum: b ← μb + (1−τ)g;  p ← p − lr·b  (SGD with momentum=0.9 by default)."""

    def __init__(self, params, lr=1e-3, momentum=0.9, dampening=0, weight_decay=0):
        super().__init__(params, lr, momentum=momentum, dampening=dampening,
                         weight_decay=weight_decay)


class Nesterov(SGD):
    """Nesterov momentum: b ← μb + g;  p ← p − lr·(g + μb)  (SGD with nesterov=True)."""

    def __init__(self, params, lr=1e-3, momentum=0.9, weight_decay=0):
        super().__init__(params, lr, momentum=momentum, weight_decay=weight_decay, nesterov=True)
