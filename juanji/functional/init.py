"""Weight initialisers (He/Kaiming, Xavier/Glorot, LeCun) as PyTorch's torch.nn.init, returning new arrays.

fan_in = in_channels/groups · R · S for a conv weight (K, C/G, R, S), in_features for a Linear (out, in);
fan_out = K · R · S, out_features.
"""
import math

import numpy as np


def fans(shape) -> tuple[int, int]:
    if len(shape) < 2:
        raise ValueError(f"fan_in/fan_out need a weight of at least 2 dimensions, got shape {shape}")
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


_GAINS = {"linear": 1.0, "sigmoid": 1.0, "tanh": 5 / 3, "relu": math.sqrt(2.0), "selu": 0.75}


def gain(nonlinearity: str = "leaky_relu", param: float | None = None) -> float:
    """The recommended gain for a nonlinearity (torch.nn.init.calculate_gain)."""
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity not in _GAINS:
        raise ValueError(f"unknown nonlinearity {nonlinearity!r}; known: {sorted(_GAINS) + ['leaky_relu']}")
    return _GAINS[nonlinearity]


def _fan(shape, mode):
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = fans(shape)
    return fan_in if mode == "fan_in" else fan_out


def uniform(shape, bound, rng, dtype=np.float32):
    return rng.uniform(-bound, bound, size=shape).astype(dtype)


def normal(shape, std, rng, dtype=np.float32):
    return (rng.standard_normal(size=shape) * std).astype(dtype)


def kaiming_uniform(shape, rng, a=0.0, mode="fan_in", nonlinearity="leaky_relu", dtype=np.float32):
    """He uniform: U(−b, b), b = gain · √(3 / fan).  He et al. 2015, for ReLU networks."""
    return uniform(shape, gain(nonlinearity, a) * math.sqrt(3.0 / _fan(shape, mode)), rng, dtype)


def kaiming_normal(shape, rng, a=0.0, mode="fan_in", nonlinearity="leaky_relu", dtype=np.float32):
    """He normal: N(0, std²), std = gain / √fan."""
    return normal(shape, gain(nonlinearity, a) / math.sqrt(_fan(shape, mode)), rng, dtype)


def xavier_uniform(shape, rng, gain_value=1.0, dtype=np.float32):
    """Glorot uniform: U(−b, b), b = gain · √(6 / (fan_in + fan_out)).  For tanh/sigmoid networks."""
    fan_in, fan_out = fans(shape)
    return uniform(shape, gain_value * math.sqrt(6.0 / (fan_in + fan_out)), rng, dtype)


def xavier_normal(shape, rng, gain_value=1.0, dtype=np.float32):
    """Glorot normal: std = gain · √(2 / (fan_in + fan_out))."""
    fan_in, fan_out = fans(shape)
    return normal(shape, gain_value * math.sqrt(2.0 / (fan_in + fan_out)), rng, dtype)


def lecun_uniform(shape, rng, dtype=np.float32):
    """LeCun uniform: U(−b, b), b = √(3 / fan_in)."""
    return uniform(shape, math.sqrt(3.0 / fans(shape)[0]), rng, dtype)


def lecun_normal(shape, rng, dtype=np.float32):
    """LeCun normal: std = 1 / √fan_in (LeCun et al. 1998)."""
    return normal(shape, 1.0 / math.sqrt(fans(shape)[0]), rng, dtype)


def torch_default(weight_shape, rng, dtype=np.float32):
    """PyTorch's default for Conv and Linear: kaiming_uniform(a=√5) for the weight, i.e.
    U(±1/√fan_in), and U(±1/√fan_in) for the bias.  Returns (weight, bias)."""
    bound = 1.0 / math.sqrt(fans(weight_shape)[0])
    return uniform(weight_shape, bound, rng, dtype), uniform((weight_shape[0],), bound, rng, dtype)


INITIALISERS = {
    "kaiming_uniform": kaiming_uniform, "kaiming_normal": kaiming_normal,
    "xavier_uniform": xavier_uniform, "xavier_normal": xavier_normal,
    "lecun_uniform": lecun_uniform, "lecun_normal": lecun_normal,
}
