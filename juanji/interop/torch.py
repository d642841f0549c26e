"""Load PyTorch/torchvision ``state_dict``s into juanji models and back — without importing torch.

juanji's zoo uses torchvision's dotted names (``features.0.weight``, ``layer1.0.conv1.weight``) and
layouts (NCHW, weight (K, C/groups, R, S)), so a state_dict moves across unchanged: only the tensors
become NumPy arrays.  BatchNorm's ``num_batches_tracked`` counter travels too (a state_dict without it, as
torch's older ones, leaves juanji's as it is).
"""
from __future__ import annotations

import numpy as np

def _to_numpy(value) -> np.ndarray:
    """A torch tensor (on any device, with or without grad) or an array-like → ndarray."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def from_torch(model, state_dict, strict: bool = True):
    """Copy a torchvision-layout ``state_dict`` (name → tensor or ndarray) into ``model`` in place, each
    array cast to the dtype of the parameter it replaces.  Returns the model.

    Raises ``KeyError`` listing the missing and the unexpected names (when ``strict``; with
    ``strict=False`` only the common names are loaded) and ``ValueError`` naming a shape mismatch;
    nothing is modified unless everything fits.
    """
    arrays = {name: _to_numpy(value) for name, value in state_dict.items()}
    expected = state_names(model)
    optional = model.optional_state_names()
    missing = [name for name in expected if name not in arrays and name not in optional]
    unexpected = [name for name in arrays if name not in expected]
    if strict and (missing or unexpected):
        raise KeyError(f"from_torch: the state_dict does not fit {type(model).__name__}"
                       f"{' ' + model.name if hasattr(model, 'name') else ''}: "
                       f"{len(missing)} missing key(s) {_preview(missing)}, "
                       f"{len(unexpected)} unexpected key(s) {_preview(unexpected)}")
    model.load_state_dict({name: arrays[name] for name in expected if name in arrays}, strict=strict)
    return model


def state_names(model) -> list[str]:
    """The dotted names of ``model.state_dict()``, without copying any array."""
    return [f"{prefix}.{key}" if prefix else key
            for prefix, module in model.named_modules() for key in {**module.params, **module.buffers}]


def to_torch(model) -> dict:
    """The model's parameters and buffers (BatchNorm's ``num_batches_tracked`` among them) as a
    torchvision-layout dict of NumPy arrays: load it in PyTorch with
    ``torch_model.load_state_dict({k: torch.from_numpy(v) for k, v in to_torch(model).items()})``."""
    return dict(model.state_dict())


def _preview(names, limit: int = 8) -> str:
    shown = ", ".join(names[:limit])
    return f"[{shown}{', …' if len(names) > limit else ''}]"
