"""Activations and the softmax family, each forward with its backward; dtype in = dtype out.

Each maps an array of any shape elementwise (the softmax family along one axis). A forward whose layer can
run in place takes ``out=`` (NumPy's convention: the array to write y into, x itself in place; None for a new
array). A backward's ``x`` is the forward's input unless its docstring says the output serves as well. The
``*_reference`` functions are the textbook formulas beside kernels written another way, for the tests only.
"""
import math

import numpy as np

from . import plan
from ..runtime.threads import map_batch

SQRT1_2 = math.sqrt(0.5)
SQRT_2_OVER_PI = math.sqrt(2 / math.pi)             # GELU's tanh approximation: tanh(√(2/π) (x + κx³))
GELU_KAPPA = 0.044715
INV_SQRT_2PI = 1 / math.sqrt(2 * math.pi)           # the normal density's factor: φ(x) = e^(−x²/2) / √(2π)
SELU_ALPHA = 1.6732632423543772848170429916717      # Klambauer et al. 2017, as torch
SELU_SCALE = 1.0507009873554804934193349852946


def _out(x, out):
    """``out``, or a new array shaped (and laid out) as x."""
    return np.empty_like(x) if out is None else out


# -- ReLU and its piecewise-linear relatives ---------------------------------------------------------
def relu(x, out=None):
    """y = max(x, 0); NaN stays NaN."""
    if out is not None:
        return np.maximum(x, 0, out=out)
    if plan.compiled():
        from .compiled import activation as compiled
        return compiled.relu(x)
    return map_batch(lambda x, out: np.maximum(x, 0, out=out), x)


def relu_backward(dy, x):
    """dX = dY · [x > 0]  (the kink at 0 gets gradient 0, as PyTorch; x may be the output: [y > 0] = [x > 0]).
    A product with the mask, not np.where: several times faster on large arrays."""
    if plan.compiled():
        from .compiled import activation as compiled
        return compiled.relu_backward(dy, x)
    return map_batch(lambda dy, x, out: np.multiply(dy, x > 0, out=out), dy, x)


def _leaky_slope(x, negative_slope, dtype):
    """1 where x > 0, else negative_slope, in ``dtype``."""
    return np.where(x > 0, dtype.type(1), dtype.type(negative_slope))


def leaky_relu(x, negative_slope=0.01, out=None):
    """y = x if x > 0 else slope · x"""
    return np.multiply(x, _leaky_slope(x, negative_slope, x.dtype), out=_out(x, out))


def leaky_relu_backward(dy, x, negative_slope=0.01):
    """dX = dY · (1 if x > 0 else slope)  (slope at 0, as PyTorch; x may be the output where slope ≥ 0, which
    keeps the sign, or the boolean mask x > 0)."""
    return dy * _leaky_slope(x, negative_slope, dy.dtype)


def hardtanh(x, min_val=-1.0, max_val=1.0, out=None):
    """y = min(max(x, min_val), max_val); ReLU6 is hardtanh(x, 0, 6)."""
    if out is not None:
        return np.clip(x, min_val, max_val, out=out)
    return map_batch(lambda x, out: np.clip(x, min_val, max_val, out=out), x)


# the unsigned integers of each float's size: dY's bits times 0 or 1 are +0.0 or dY itself, ±∞ and NaN included
_BITS = {size: np.dtype(f"u{size}") for size in (2, 4, 8)}


def hardtanh_backward(dy, x, min_val=-1.0, max_val=1.0):
    """dX = dY where min_val < x < max_val, else 0: at both bounds, where x is NaN, and where dY is ±∞ or NaN
    outside, as PyTorch (x may be the output, which lies strictly inside exactly where x does).  dY's bits times
    the mask, as unsigned integers, in one pass: the float product makes 0 · ∞ = NaN, and np.where or a masked
    copy, choosing value by value, took 6 to 9 times as long on a mask as mixed as a ReLU6's.  Split over the
    batch (``map_batch``), as ReLU's: MobileNet v2's train step runs it on every ReLU6 map, 32 M values at batch
    64, which at 2 threads otherwise ran on one."""
    bits = _BITS[dy.itemsize]

    def select(dy, x, out):
        inside = x > min_val
        inside &= x < max_val
        np.multiply(dy.view(bits), inside, out=out.view(bits))
    return map_batch(select, dy, x)


def hardsigmoid(x, out=None):
    """y = min(max(x + 3, 0), 6) / 6"""
    y = np.add(x, 3, out=_out(x, out))
    np.clip(y, 0, 6, out=y)
    y /= 6
    return y


def hardsigmoid_backward(dy, x):
    """dX = dY / 6 · [−3 < x < 3]  (0 at ±3, as PyTorch)"""
    return (dy / 6) * ((x > -3) & (x < 3))


def hardswish(x, out=None):
    """y = x · min(max(x + 3, 0), 6) / 6"""
    y = np.multiply(x, np.clip(x + 3, 0, 6), out=_out(x, out))
    y /= 6
    return y


def hardswish_backward(dy, x):
    """dX = dY · (0 if x ≤ −3, x/3 + 1/2 if x < 3, else 1)  (at the kinks the outer pieces, as PyTorch 2)"""
    return dy * np.where(x <= -3, 0, np.where(x < 3, x / 3 + 0.5, 1))


# -- exponential families ------------------------------------------------------------------------------
def sigmoid(x, out=None):
    """σ(x) = 1 / (1 + e^−x), computed without overflow for large |x|: e^−|x| / (1 + e^−|x|) below 0."""
    e = np.exp(-np.abs(x))
    return np.divide(np.where(x >= 0, 1, e), 1 + e, out=_out(x, out))


def sigmoid_backward(dy, y):
    """dX = dY · σ (1 − σ)"""
    return dy * y * (1 - y)


def tanh(x, out=None):
    return np.tanh(x, out=_out(x, out))


def tanh_backward(dy, y):
    """dX = dY · (1 − tanh²)"""
    return dy * (1 - y * y)


def silu(x, out=None):
    """y = x · σ(x)  (SiLU, "swish")"""
    return np.multiply(x, sigmoid(x), out=_out(x, out))


def silu_backward(dy, x):
    """dX = dY · σ(x) (1 + x (1 − σ(x)))"""
    s = sigmoid(x)
    return dy * s * (1 + x * (1 - s))


def elu(x, alpha=1.0, scale=1.0, input_scale=1.0, out=None):
    """y = scale · x if x > 0 else α · scale · (e^(input_scale · x) − 1)  (ELU: scale = input_scale = 1; SELU:
    its constants).  e^x − 1 by expm1, of min(x, 0): no overflow for large x."""
    negative = x <= 0
    curve = np.expm1(np.minimum(x, 0) * input_scale) * (alpha * scale)
    y = np.multiply(x, scale, out=_out(x, out))
    np.copyto(y, curve, where=negative)
    return y


def elu_backward(dy, x, alpha=1.0, scale=1.0, input_scale=1.0):
    """dX = dY · (scale if x > 0 else α · scale · input_scale · e^(input_scale · x))  (the exponential branch at
    x = 0, as PyTorch)"""
    curve = np.exp(np.minimum(x, 0) * input_scale) * (alpha * scale * input_scale)
    return dy * np.where(x <= 0, curve, scale)


def selu(x, out=None):
    """y = SELU_SCALE · (x if x > 0 else SELU_ALPHA (e^x − 1))"""
    return elu(x, SELU_ALPHA, SELU_SCALE, out=out)


def selu_backward(dy, x):
    """dX = dY · SELU_SCALE · (1 if x > 0 else SELU_ALPHA e^x)"""
    return elu_backward(dy, x, SELU_ALPHA, SELU_SCALE)


def _softplus_unit(z):
    """log(1 + e^z) = max(z, 0) + log1p(e^−|z|): never overflows."""
    return np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z)))


def softplus(x, beta=1.0, threshold=20.0):
    """y = log(1 + e^(βx)) / β, or x where βx > threshold (PyTorch's switch to the identity)."""
    z = x * beta
    return np.where(z > threshold, x, _softplus_unit(z) / beta)


def softplus_backward(dy, x, beta=1.0, threshold=20.0):
    """dX = dY · σ(βx), or dY where βx > threshold"""
    z = x * beta
    return np.where(z > threshold, dy, dy * sigmoid(z))


def softplus_reference(x, beta=1.0, threshold=20.0):
    """PyTorch's formula as written, log1p(exp(βx)) / β below the threshold (overflows to inf beyond ~88 in
    float32); for the tests."""
    with np.errstate(over="ignore"):
        return np.where(x * beta > threshold, x, np.log1p(np.exp(x * beta)) / beta)


def mish(x, out=None):
    """y = x · tanh(softplus(x))"""
    return np.multiply(x, np.tanh(_softplus_unit(x)), out=_out(x, out))


def mish_backward(dy, x):
    """dX = dY · (t + x σ(x) (1 − t²)),  t = tanh(softplus(x))"""
    t = np.tanh(_softplus_unit(x))
    return dy * (t + x * sigmoid(x) * (1 - t * t))


def mish_reference(x):
    """x · tanh(log1p(exp(x))), as written (exp overflows for large x, harmlessly); for the tests."""
    with np.errstate(over="ignore"):
        return x * np.tanh(np.log1p(np.exp(x)))


# -- GELU and the error function ------------------------------------------------------------------------
# fdlibm's erf (s_erf.c, Sun Microsystems 1993, kept by FreeBSD and musl): a rational fit on each of four
# ranges of |x|, within an ulp in float64.  Coefficients in increasing powers; the denominators' leading 1.
_ERX = 8.45062911510467529297e-01
_PP = (1.28379167095512558561e-01, -3.25042107247001499370e-01, -2.84817495755985104766e-02,
       -5.77027029648944159157e-03, -2.37630166566501626084e-05)
_QQ = (1.0, 3.97917223959155352819e-01, 6.50222499887672944485e-02, 5.08130628187576562776e-03,
       1.32494738004321644526e-04, -3.96022827877536812320e-06)
_PA = (-2.36211856075265944077e-03, 4.14856118683748331666e-01, -3.72207876035701323847e-01,
       3.18346619901161753674e-01, -1.10894694282396677476e-01, 3.54783043256182359371e-02,
       -2.16637559486879084300e-03)
_QA = (1.0, 1.06420880400844228286e-01, 5.40397917702171048937e-01, 7.18286544141962662868e-02,
       1.26171219808761642112e-01, 1.36370839120290507362e-02, 1.19844998467991074170e-02)
_RA = (-9.86494403484714822705e-03, -6.93858572707181764372e-01, -1.05586262253232909814e+01,
       -6.23753324503260060396e+01, -1.62396669462573470355e+02, -1.84605092906711035994e+02,
       -8.12874355063065934246e+01, -9.81432934416914548592e+00)
_SA = (1.0, 1.96512716674392571292e+01, 1.37657754143519042600e+02, 4.34565877475229228821e+02,
       6.45387271733267880336e+02, 4.29008140027567833386e+02, 1.08635005541779435134e+02,
       6.57024977031928170135e+00, -6.04244152148580987438e-02)
_RB = (-9.86494292470009928597e-03, -7.99283237680523006574e-01, -1.77579549177547519889e+01,
       -1.60636384855821916062e+02, -6.37566443368389627722e+02, -1.02509513161107724954e+03,
       -4.83519191608651397019e+02)
_SB = (1.0, 3.03380607434824582924e+01, 3.25792512996573918826e+02, 1.53672958608443695994e+03,
       3.19985821950859553908e+03, 2.55305040643316442583e+03, 4.74528541206955367215e+02,
       -2.24409524465858183362e+01)
# e^(−x²) is taken as e^(−h²) · e^((h − x)(h + x)), h = x with its low mantissa bits cleared (h² exact).
_HIGH_BITS = {np.dtype(np.float64): (np.uint64, 0xFFFFFFFF00000000), np.dtype(np.float32): (np.uint32, 0xFFFFE000)}


def _polynomial(z, coefficients):
    """Σ c_k z^k by Horner's rule, in z's dtype."""
    result = np.full_like(z, coefficients[-1])
    for c in coefficients[-2::-1]:
        result = result * z + c
    return result


def _high_part(a):
    kind = _HIGH_BITS.get(a.dtype)
    if kind is None:
        return a
    uint, mask = kind
    return (a.view(uint) & uint(mask)).view(a.dtype)


def erf(x):
    """erf x = 2/√π ∫₀ˣ e^(−t²) dt (NumPy has none), on |x| < 0.84375: x + x·P(x²)/Q(x²); below 1.25:
    erx + P(|x| − 1)/Q(|x| − 1); below 6: 1 − e^(−x² − 0.5625 + R(1/x²)/S(1/x²)) / |x|; beyond: 1; the sign
    of x restored.  Within an ulp or two of float64 (float32 in float32).  In blocks of ``plan.ERF_BLOCK``
    values, so that its temporaries stay in cache and take a block's memory, not x's."""
    x = np.asarray(x)
    flat = x.reshape(-1)
    y = np.empty_like(np.abs(flat[:0]), shape=flat.shape)
    for start in range(0, flat.size, plan.ERF_BLOCK):
        _erf_block(flat[start:start + plan.ERF_BLOCK], y[start:start + plan.ERF_BLOCK])
    return y.reshape(x.shape)


def _erf_block(x, y):
    """``erf`` of a 1-D x, into y."""
    a = np.abs(x)
    small, middle, tail = a < 0.84375, (a >= 0.84375) & (a < 1.25), (a >= 1.25) & (a < 6)
    rest = ~(small | middle | tail)                           # |x| ≥ 6, inf, NaN

    s = a[small]
    z = s * s
    y[small] = s + s * (_polynomial(z, _PP) / _polynomial(z, _QQ))
    s = a[middle] - 1
    y[middle] = _ERX + _polynomial(s, _PA) / _polynomial(s, _QA)
    t = a[tail]
    z = 1 / (t * t)
    near = t < 1 / 0.35
    ratio = np.where(near, _polynomial(z, _RA) / _polynomial(z, _SA), _polynomial(z, _RB) / _polynomial(z, _SB))
    h = _high_part(t)
    y[tail] = 1 - np.exp(-h * h - 0.5625) * np.exp((h - t) * (h + t) + ratio) / t
    y[rest] = np.minimum(a[rest], 1)                          # 1, and NaN stays NaN
    np.copysign(y, x, out=y)


def erf_reference(x):
    """math.erf on each element (a Python loop); for the tests."""
    return np.vectorize(math.erf, otypes=[np.float64])(x).astype(np.asarray(x).dtype)


def gelu(x, approximate="none"):
    """y = x · Φ(x) = x · (1 + erf(x/√2)) / 2;  approximate="tanh": x · (1 + tanh(√(2/π) (x + κx³))) / 2"""
    if approximate == "tanh":
        return 0.5 * x * (1 + np.tanh(SQRT_2_OVER_PI * (x + GELU_KAPPA * x * x * x)))
    return x * (0.5 * (1 + erf(x * SQRT1_2)))


def gelu_backward(dy, x, approximate="none"):
    """dX = dY · (Φ(x) + x φ(x)),  φ(x) = e^(−x²/2) / √(2π);  approximate="tanh": with u = √(2/π) (x + κx³),
    dX = dY · ((1 + tanh u) / 2 + x/2 · (1 − tanh² u) · √(2/π) (1 + 3κx²))"""
    if approximate == "tanh":
        x_sq = x * x
        t = np.tanh(SQRT_2_OVER_PI * (x + GELU_KAPPA * x_sq * x))
        return dy * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * (SQRT_2_OVER_PI * (1 + 3 * GELU_KAPPA * x_sq)))
    cdf = 0.5 * (1 + erf(x * SQRT1_2))
    return dy * (cdf + x * (INV_SQRT_2PI * np.exp(-0.5 * x * x)))


# -- PReLU: a learned slope per channel -------------------------------------------------------------------
def _channel_slopes(weight, ndim):
    """weight (C,) shaped to broadcast over axis 1 of an ndim-D input (a single slope over any input)."""
    if weight.size == 1:
        return weight.reshape(())
    return weight.reshape((-1,) + (1,) * (ndim - 2))


def prelu(x, weight):
    """y = x if x > 0 else a_c · x, a_c the slope of x's channel (axis 1), or one slope for every element"""
    return np.where(x > 0, x, _channel_slopes(weight, x.ndim) * x)


def prelu_backward(dy, x, weight):
    """dX = dY · (1 if x > 0 else a_c);  da_c = Σ over all but the channel axis of dY · x · [x ≤ 0]
    (the slope at 0, as PyTorch).  Returns (dX, da) with da shaped as weight."""
    dx = np.where(x > 0, dy, _channel_slopes(weight, x.ndim) * dy)
    contributions = np.where(x > 0, 0, dy * x)
    if weight.size == 1:
        return dx, contributions.sum().reshape(weight.shape)
    return dx, contributions.sum(axis=tuple(a for a in range(x.ndim) if a != 1))


# -- the softmax family, along one axis --------------------------------------------------------------------
def softmax(x, axis=-1):
    """y = e^(x − max) / Σ e^(x − max): the shift keeps e^· ≤ 1."""
    shifted = np.exp(x - x.max(axis=axis, keepdims=True))
    return shifted / shifted.sum(axis=axis, keepdims=True)


def softmax_backward(dy, y, axis=-1):
    """dX = y ⊙ (dY − Σ dY ⊙ y)   (the Jacobian diag(y) − y yᵀ applied to dY)"""
    return y * (dy - (dy * y).sum(axis=axis, keepdims=True))


def log_softmax(x, axis=-1):
    """log softmax with the log-sum-exp shift: x − max − log Σ e^(x − max); never overflows."""
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def log_softmax_backward(dy, y, axis=-1):
    """dX = dY − e^y Σ dY   (y the output: e^y = softmax)"""
    return dy - np.exp(y) * dy.sum(axis=axis, keepdims=True)


def softmin(x, axis=-1):
    """y = softmax(−x)"""
    return softmax(-x, axis)


def softmin_backward(dy, y, axis=-1):
    """dX = −y ⊙ (dY − Σ dY ⊙ y)   (softmax's backward, through −x)"""
    return -softmax_backward(dy, y, axis)
