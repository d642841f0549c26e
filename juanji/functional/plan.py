"""How each kernel call runs: every path choice and every threshold of the kernels, in one place.

A forward asks for its plan (``plan_conv``), runs the kernels the plan names and keeps the plan in its
cache; its backward dispatches on the kept plan, never on what else the cache holds. Tests force a path by
passing ``plan=`` to the kernel (``ConvPlan`` values are plain names). ``describe`` tabulates the plans of
a few layers on the kernels in use (``juanji --version`` prints it).

The backend — NumPy's kernels or the compiled loops of ``juanji.functional.compiled`` — is
``juanji.runtime.kernels``' choice (``set_kernels``, ``JUANJI_KERNELS``); the rules below say where the
compiled loops are worth calling.
"""
from __future__ import annotations

import math
from typing import NamedTuple

from ..runtime import kernels
from .geometry import output_shape, plain_3x3, resolve_padding

# Below this many elements a compiled loop on Numba's threads costs more to start (its pool starts at
# every call, even on one thread) than it saves; loops run by juanji's batch split (``serial``) have no
# pool to start and are worth calling at any size.
COMPILED_MIN_ELEMENTS = 1 << 19
# Depthwise layers other than 3×3 at stride 1 or 2 (whose row loops win on every map size) use the general
# compiled loops from this input map size on: below it, as on MobileNet's 16×16 down to 2×2 maps, the loops'
# fixed cost per output row is spread over 4 to 16 pixels, while NumPy's shifted multiply-adds make one run of
# H'·pitch values per kernel offset and plane block whatever the row length, so NumPy's kernels keep them.
DEPTHWISE_MIN_PIXELS = 32 * 32
# Winograd's tiles V and products M of one block of samples (16 planes each) are about this size, so that
# they stay in a core's cache from transform to GEMM to transform.
WINOGRAD_BLOCK_BYTES = 1 << 20
# The blocks of NumPy's depthwise kernel ("depthwise_shifts": input phases, outputs and products) are about this
# size: small enough to stay in the shared cache over the R·S passes (each pass reads the block's input again),
# large enough that each pass's few ufunc calls run long loops, which makes their fixed cost per call small.
DEPTHWISE_BLOCK_BYTES = 1 << 23
# ``activation.erf`` (GELU's) works through this many values at a time: each step of its rational approximations
# makes a temporary as large as what it works on, a dozen of them, which over a whole activation map would be
# several times its memory (GELU's at evaluation of ConvNeXt-Tiny on 1000 28×28 images has 1000 × 28 × 28 × 384
# values); a block's temporaries are small and stay in cache from step to step instead of going through memory.
ERF_BLOCK = 1 << 16
# NumPy's layer, group and instance norm take blocks of about this size through their passes (μ, x − μ, σ²,
# the scale and shift; the backward's sums and dX) while they are in a core's cache: whole-array passes would
# each read and write the array in memory; much smaller blocks would make more ufunc calls, whose fixed cost
# per call then adds up.
SAMPLE_NORM_BLOCK_BYTES = 1 << 20


def compiled(elements: int | None = None) -> bool:
    """True when the compiled kernels are chosen and a call on ``elements`` elements is worth one of their
    loops on Numba's threads (``elements`` None: a loop run on juanji's batch split, any size)."""
    return (elements is None or elements >= COMPILED_MIN_ELEMENTS) and kernels.get_kernels() == "numba"


class ConvPlan(NamedTuple):
    """A convolution's kernels, forward and backward.

    forward      "im2col" (per-sample GEMMs W · cols[n]), "pointwise" (1×1 at stride 1: the input is its own
                 columns), "grouped" (a GEMM per group over the batch, channel-major columns),
                 "depthwise_shifts" (NumPy's depthwise kernel: a multiply-add per kernel offset, no columns),
                 "depthwise" / "depthwise_rows" (the compiled loops; rows: 3×3 at stride 1 or 2, a row at a
                 time), "winograd" (the compiled F(2×2, 3×3))
    weight_grad  "per_sample" (Σ_n cols[n] · dY[n]ᵀ), "batch" (the columns side by side, one product: small
                 maps, K > H'·W'), "grouped", "depthwise_shifts", "depthwise", "depthwise_rows", "winograd"
    input_grad   "full_convolution" (dY ∗ rot180(W): stride 1, K ≤ C), "col2im" (Wᵀ · dY summed back by
                 NumPy's strided adds), "compiled_col2im" (the same sums, plane by plane), "depthwise_shifts",
                 "depthwise", "depthwise_rows" (one filter per channel at stride 1), "winograd"
    block_bytes  the size of the blocks of the kernels that work block by block: Winograd's
                 (``WINOGRAD_BLOCK_BYTES``, the default) and "depthwise_shifts" (``DEPTHWISE_BLOCK_BYTES``)
    """
    forward: str
    weight_grad: str
    input_grad: str
    block_bytes: int = WINOGRAD_BLOCK_BYTES


def depthwise(x_shape, weight_shape, groups) -> bool:
    """One input channel per filter (groups = C > 1; K = m·C filters, m per channel)."""
    return groups > 1 and groups == x_shape[1] and weight_shape[1] == 1


def depthwise_rows(kernel_size, stride, dilation, pads) -> bool:
    """3×3 at stride 1 or 2 (the same along both axes), undilated, each side padded by 0 to 2: the layers of
    the compiled depthwise row-at-a-time loops."""
    return plain_3x3(kernel_size, dilation, pads) and tuple(stride) in ((1, 1), (2, 2))


def full_convolution_padding(pads, kernel_size, dilation):
    """Padding of dY that turns dX into a stride-1 convolution of dY with the flipped kernel, or None where
    the forward padding exceeds the kernel's reach (then dX is a col2im)."""
    reach = [d * (k - 1) for k, d in zip(kernel_size, dilation)]
    full = tuple((span - before, span - after) for span, (before, after) in zip(reach, pads))
    return full if min(min(side) for side in full) >= 0 else None


def plan_conv(x_shape, weight_shape, stride, pads, dilation, groups) -> ConvPlan:
    """The kernels of a convolution of x (N, C, H, W) by weight (K, C/G, R, S), stride and dilation pairs,
    ``pads`` ((top, bottom), (left, right)) as resolved by ``geometry.resolve_padding``."""
    n, c, h, w = x_shape
    k, cg, r, s = weight_shape
    stride, dilation = tuple(stride), tuple(dilation)
    elements = math.prod(x_shape)
    if compiled(elements) and depthwise(x_shape, weight_shape, groups):
        if depthwise_rows((r, s), stride, dilation, pads):
            rows_dx = "depthwise_rows" if stride == (1, 1) and k == c else "depthwise"
            return ConvPlan("depthwise_rows", "depthwise_rows", rows_dx)
        if h * w >= DEPTHWISE_MIN_PIXELS:
            return ConvPlan("depthwise", "depthwise", "depthwise")
    if compiled(elements) and plain_3x3((r, s), dilation, pads) and stride == (1, 1) and groups == 1:
        return ConvPlan("winograd", "winograd", "winograd")
    return numpy_plan(x_shape, weight_shape, stride, pads, dilation, groups)


def numpy_plan(x_shape, weight_shape, stride, pads, dilation, groups) -> ConvPlan:
    """``plan_conv``'s choice among NumPy's kernels, where the compiled loops are not chosen or do not pay."""
    n, c, h, w = x_shape
    k, cg, r, s = weight_shape
    stride = tuple(stride)
    if depthwise(x_shape, weight_shape, groups):
        # The grouped GEMMs of a depthwise layer have one row each and their columns copy the input R·S times
        # (49× at 7×7: ConvNeXt-Tiny could not evaluate 1000 28×28 images in 15 GB); the shifted multiply-adds
        # keep a few cache-sized blocks.  They are chosen at every kernel size, 3×3 included: a GEMM of one row
        # is a matrix-vector product, bound by reading its columns, so the grouped path's time goes to moving
        # columns R·S times the input's size (written, read by y's and dW's products, and again for dX's own
        # columns), where the shifts read each block's input R·S times from cache and write only y (dX in backward).
        return ConvPlan("depthwise_shifts", "depthwise_shifts", "depthwise_shifts", DEPTHWISE_BLOCK_BYTES)
    out_h, out_w = output_shape((h, w), (r, s), stride, pads, dilation)
    grouped = groups > 1
    forward = "grouped" if grouped else "pointwise" if (r, s) == (1, 1) and stride == (1, 1) else "im2col"
    return ConvPlan(forward, weight_grad_method(k, out_h * out_w, groups),
                    input_grad_method(x_shape, weight_shape, stride, pads, dilation, groups, out_h * out_w))


def weight_grad_method(k, pixels, groups) -> str:
    """dW's kernel on NumPy's side: per group, per sample, or over the batch's columns side by side where
    the maps are small (K > H'·W': the per-sample products would outweigh the columns)."""
    return "grouped" if groups > 1 else "per_sample" if k <= pixels else "batch"


def input_grad_method(x_shape, weight_shape, stride, pads, dilation, groups, pixels) -> str:
    """dX's kernel on NumPy's side. The full convolution reads K·R·S columns per input pixel, col2im writes
    C·R·S per output pixel: the first is cheaper where the layer does not widen (K ≤ C) at stride 1."""
    n, c = x_shape[:2]
    k, cg, r, s = weight_shape
    if tuple(stride) == (1, 1) and k <= c and full_convolution_padding(pads, (r, s), dilation) is not None:
        return "full_convolution"
    # the R·S passes of col2im plane by plane, while each is in cache (sample-major columns only)
    return "compiled_col2im" if groups == 1 and compiled(n * cg * r * s * pixels) else "col2im"


def sample_norm_kernels() -> str:
    """The kernels of layer, group and instance norm (``functional.sample_norm``): "compiled" or "numpy".
    The compiled loops go a row at a time, one sweep of x for its statistics and one writing y while the row
    is in cache (the backward: dY and x read once, dX written once), where NumPy's kernels make a pass per
    step; they run on juanji's batch split (``serial``: no pool to start), so at every size: on small arrays one
    compiled call also replaces NumPy's several ufunc calls, each with its own fixed cost."""
    return "compiled" if compiled() else "numpy"


def describe(layers=None) -> str:
    """A table of the plans of ``layers`` [(label, x shape, weight shape, stride, padding, groups)] on the
    kernels chosen now; by default a few of ResNet-20's, LeNet-5's and MobileNet's."""
    layers = layers or [
        ("conv 3→16 @32 3×3", (128, 3, 32, 32), (16, 3, 3, 3), 1, 1, 1),
        ("conv 64→64 @8 3×3", (128, 64, 8, 8), (64, 64, 3, 3), 1, 1, 1),
        ("conv 16→32 @32 3×3 s2", (128, 16, 32, 32), (32, 16, 3, 3), 2, 1, 1),
        ("conv 64→128 @16 1×1", (128, 64, 16, 16), (128, 64, 1, 1), 1, 0, 1),
        ("depthwise 64 @32 3×3", (128, 64, 32, 32), (64, 1, 3, 3), 1, 1, 64),
        ("conv 1→6 @28 5×5", (64, 1, 28, 28), (6, 1, 5, 5), 1, 2, 1)]
    lines = ["| layer (batch 128; LeNet's 1→6 at 64) | forward | weight_grad | input_grad |", "|---|---|---|---|"]
    for label, x_shape, w_shape, stride, padding, groups in layers:
        pads = resolve_padding(padding, w_shape[2:], (1, 1))
        plan = plan_conv(x_shape, w_shape, (stride, stride), pads, (1, 1), groups)
        lines.append(f"| {label} | {plan.forward} | {plan.weight_grad} | {plan.input_grad} |")
    return "\n".join(lines)
