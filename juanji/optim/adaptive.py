"""Optimizers that scale each weight's step by its own gradient history, as torch.optim does.

Notation in the docstrings: g = ∇ + λp is the gradient plus weight decay λ (AdamW: g = ∇), t the
step count from 1; products, squares and divisions are elementwise; state starts at zero.
"""
from __future__ import annotations

import math

import numpy as np

from .optimizer import Optimizer, check


class Adagrad(Optimizer):
    """s ← s + g²;  p ← p − lr/(1 + (t−1)·lr_decay) · g/(√s + ε), s₀ = initial_accumulator_value."""

    def __init__(self, params, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0,
                 eps=1e-10):
        check(lr_decay >= 0, self, "lr_decay", lr_decay, ">= 0")
        check(weight_decay >= 0, self, "weight_decay", weight_decay, ">= 0")
        check(initial_accumulator_value >= 0, self, "initial_accumulator_value",
              initial_accumulator_value, ">= 0")
        check(eps >= 0, self, "eps", eps, ">= 0")
        super().__init__(params, lr, lr_decay=float(lr_decay), weight_decay=float(weight_decay),
                         initial_accumulator_value=float(initial_accumulator_value), eps=float(eps))

    @staticmethod
    def slots_for(hyper):
        return ("sum",)

    def update_parameter(self, param, grad, state):
        if self.weight_decay:
            grad = grad + self.weight_decay * param  # a new array: the layer's grad stays untouched
        squares = self._slot(state, "sum", param, self.initial_accumulator_value)
        squares += grad * grad
        decayed_lr = self.lr / (1 + (self.step_count - 1) * self.lr_decay)
        param -= decayed_lr * grad / (np.sqrt(squares) + self.eps)


class RMSprop(Optimizer):
    """v ← αv + (1−α)g²;  p ← p − lr·g/(√v + ε).

    centered: m ← αm + (1−α)g and v − m² replaces v.
    momentum μ > 0: b ← μb + g/(√v + ε);  p ← p − lr·b.
    """

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0,
                 centered=False):
        check(alpha >= 0, self, "alpha", alpha, ">= 0")
        check(eps >= 0, self, "eps", eps, ">= 0")
        check(weight_decay >= 0, self, "weight_decay", weight_decay, ">= 0")
        check(momentum >= 0, self, "momentum", momentum, ">= 0")
        super().__init__(params, lr, alpha=float(alpha), eps=float(eps),
                         weight_decay=float(weight_decay), momentum=float(momentum),
                         centered=bool(centered))

    @staticmethod
    def slots_for(hyper):
        return (("square_avg",) + (("grad_avg",) if hyper["centered"] else ())
                + (("momentum_buffer",) if hyper["momentum"] else ()))

    def update_parameter(self, param, grad, state):
        if self.weight_decay:
            grad = grad + self.weight_decay * param
        square_avg = self._slot(state, "square_avg", param)
        square_avg *= self.alpha
        square_avg += (1 - self.alpha) * grad * grad
        if self.centered:
            # Subtracting the squared mean turns the second moment into a variance estimate.
            grad_avg = self._slot(state, "grad_avg", param)
            grad_avg *= self.alpha
            grad_avg += (1 - self.alpha) * grad
            denominator = np.sqrt(square_avg - grad_avg * grad_avg)
        else:
            denominator = np.sqrt(square_avg)
        denominator += self.eps
        if self.momentum:
            buffer = self._slot(state, "momentum_buffer", param)
            buffer *= self.momentum
            buffer += grad / denominator
            param -= self.lr * buffer
        else:
            param -= self.lr * grad / denominator


class Adam(Optimizer):
    """m ← β₁m + (1−β₁)g;  v ← β₂v + (1−β₂)g²;  p ← p − lr/(1−β₁ᵗ) · m/(√v/√(1−β₂ᵗ) + ε).

    amsgrad: the running maximum v̂ ← max(v̂, v) replaces v.
    """

    decoupled_weight_decay = False  # AdamW's one difference

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 amsgrad=False):
        beta1, beta2 = betas
        check(0 <= beta1 < 1, self, "betas[0]", beta1, "0 <= betas[0] < 1")
        check(0 <= beta2 < 1, self, "betas[1]", beta2, "0 <= betas[1] < 1")
        check(eps >= 0, self, "eps", eps, ">= 0")
        check(weight_decay >= 0, self, "weight_decay", weight_decay, ">= 0")
        super().__init__(params, lr, betas=(float(beta1), float(beta2)), eps=float(eps),
                         weight_decay=float(weight_decay), amsgrad=bool(amsgrad))

    @staticmethod
    def slots_for(hyper):
        return ("exp_avg", "exp_avg_sq") + (("max_exp_avg_sq",) if hyper["amsgrad"] else ())

    def update_parameter(self, param, grad, state):
        beta1, beta2 = self.betas
        if self.weight_decay:
            if self.decoupled_weight_decay:
                param *= 1 - self.lr * self.weight_decay  # shrink the weights, outside the moments
            else:
                grad = grad + self.weight_decay * param  # an L2 penalty, seen by the moments
        exp_avg = self._slot(state, "exp_avg", param)
        exp_avg *= beta1
        exp_avg += (1 - beta1) * grad
        second_moment = exp_avg_sq = self._slot(state, "exp_avg_sq", param)
        exp_avg_sq *= beta2
        exp_avg_sq += (1 - beta2) * grad * grad
        if self.amsgrad:
            # Never let the denominator shrink: use the largest second moment seen so far.
            second_moment = self._slot(state, "max_exp_avg_sq", param)
            np.maximum(second_moment, exp_avg_sq, out=second_moment)
        # The moments start at zero, so early on they are too small; dividing by 1 − βᵗ corrects it.
        bias_correction1 = 1 - beta1 ** self.step_count
        bias_correction2 = 1 - beta2 ** self.step_count
        denominator = np.sqrt(second_moment) / math.sqrt(bias_correction2) + self.eps
        param -= (self.lr / bias_correction1) * exp_avg / denominator


class AdamW(Adam):
    """p ← p·(1 − lr·λ), then the Adam step with g = ∇ (decoupled weight decay)."""

    decoupled_weight_decay = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad)
