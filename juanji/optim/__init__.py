"""Optimizers and learning-rate schedules, with torch.optim's update rules, names and defaults.

    optimizer = Adam(model.parameters(), lr=1e-3)
    scheduler = CosineAnnealingLR(optimizer, T_max=epochs)
    for epoch in range(epochs):
        ...  # forward, backward (fills the grads), then:
        optimizer.step()
        scheduler.step()
"""
from .adaptive import Adagrad, Adam, AdamW, RMSprop
from .lr_scheduler import (ClosedFormScheduler, CosineAnnealingLR, ExponentialLR, LinearLR, LRScheduler,
                           MultiStepLR, ReduceLROnPlateau, SequentialLR, StepLR)
from .optimizer import Optimizer
from .sgd import SGD, Momentum, Nesterov

__all__ = [
    "Optimizer", "SGD", "Momentum", "Nesterov", "Adagrad", "RMSprop", "Adam", "AdamW",
    "LRScheduler", "ClosedFormScheduler", "StepLR", "MultiStepLR", "ExponentialLR", "CosineAnnealingLR", "LinearLR",
    "SequentialLR", "ReduceLROnPlateau",
]
