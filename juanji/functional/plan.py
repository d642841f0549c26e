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
# Depthwise 3×3 layers (stride 1 or 2, one filter per channel) with output maps of at most this many pixels run the
# compiled loops that keep the channels innermost ("depthwise_channels"): on a plane of a few pixels the plane
# loops' fixed cost per plane is most of their time, while copying each sample to channels-innermost and back costs
# less than that up to here (measured faster on 2×2 to 7×7 outputs, slower on 8×8).
DEPTHWISE_CHANNELS_MAX_PIXELS = 7 * 7
# Pointwise layers (1×1 at stride 1, ungrouped) on maps of at most this many pixels run the grouped kernels at one
# group: the columns channel-major, one GEMM over the batch (W · cols, N·H·W columns) for y, dW and dX, instead of
# N GEMMs of H·W columns each, too few for BLAS (MobileNet v2's 1×1 layers on 2×2 maps: about twice as fast; on
# 3×3 maps faster, on 4×4 as fast as per sample, whose forward copies nothing).
POINTWISE_BATCH_MAX_PIXELS = 3 * 3
# Other ungrouped layers (im2col's) with more filters than output pixels run them too on outputs of at most this
# many pixels: the per-sample GEMMs, each packing all of W again for its few columns, cost more than copying the
# columns channel-major, and dW then reads them as they are, where "batch" would copy them side by side again
# (ResNet-18's 256 → 512 3×3 s2 at 14 → 7, batch 16: forward 0.8×, forward + backward 0.9× the time; at 8 → 4,
# batch 64: 0.7× and 0.9×; 3×3 s1 on 7×7 and 4×4 maps, Conv1d over 38 steps: 0.8–0.94× and 0.86–0.93×; on 8×8
# outputs, as the 64 → 128 at 16 → 8, the forward is slower, 1.0–1.1×).
IM2COL_BATCH_MAX_PIXELS = 7 * 7
# On the compiled kernels im2col's columns are gathered straight from x (``compiled.columns``: no padded copy) where
# the output rows are at most this many pixels wide: NumPy's strided copy moves W' values per inner loop, whose
# fixed cost the gather does not pay (the columns alone: 0.25–0.5 of NumPy's time at W' = 4 to 8, 0.7–0.85 at 16);
# from W' = 32 on at stride 1 NumPy's copies run contiguously and are faster (1.2–2.4×).  Channel-major columns
# (grouped layers, and ungrouped ones on small maps), whose rows the gather writes far apart, gain less: to W' = 8
# (a forward in 0.8–0.9× the time); at W' = 16 and stride 1 it took 1.1×.  A 1×1 kernel's columns are x itself or
# a plain strided copy of it, which NumPy makes as fast (at stride 1, channel-major: 2× faster).
GATHER_MAX_WIDTH = 16
GATHER_CHANNEL_MAJOR_MAX_WIDTH = 8
# Where such a layer's dW is one product over the batch ("batch": K > H'·W'), the compiled kernels keep no columns
# ("compiled_blocks", "compiled_batch"): the forward gathers about this many bytes of them at a time and multiplies
# them while they are in a core's cache, and dW gathers them again, straight into the channel-major layout its
# product reads, where "batch" copies the kept ones into it (64 → 128 3×3 s2 at 16 → 8, batch 64, one thread:
# forward 0.97×, forward + backward 0.97× the time; the columns kept from forward to backward, 9.4 MB, are gone).
# A transposed convolution's backward whose convolution of dY would gather its columns for per-sample dW products
# makes dX and dW from each block of them ("blocks"), where the whole batch's columns went through memory twice
# (DCGAN's 64 → 32 4×4 s2 at 16 → 32, batch 64: 34 MB; backward 0.9×, forward + backward 0.93–0.96× on one thread).
GATHER_BLOCK_BYTES = 1 << 20
# Winograd's tiles V and products M of one block of samples (16 planes each) are about this size, so that
# they stay in a core's cache from transform to GEMM to transform.
WINOGRAD_BLOCK_BYTES = 1 << 20
# The blocks of NumPy's depthwise kernels ("depthwise_shifts": input phases, outputs and products, a channel's
# samples side by side; "depthwise_channels_last": samples) are about this size: small enough to stay in the
# shared cache over the R·S passes (each pass reads the block's input again), large enough that each pass's few
# ufunc calls run long loops, which makes their fixed cost per call small (blocks of 1 MB took 1.2–2× the time).
DEPTHWISE_BLOCK_BYTES = 1 << 23
# Depthwise layers with output maps of at most this many pixels run NumPy's channels-last kernel
# ("depthwise_channels_last"): each offset multiplies only the outputs whose read lies in x, C channels side by side,
# where the shifts' runs on such maps are mostly padding and spare values (MobileNet v2's 4×4 and 2×2 layers at
# batch 64: 0.15–0.25 of the shifts' time forward, 0.2–0.35 backward; 16 → 8 at stride 2: 0.4–0.6; 8×8 at stride 1
# about even; 16×16 maps and larger: 1.3–3× the shifts' time).
DEPTHWISE_CHANNELS_LAST_MAX_PIXELS = 8 * 8
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
# ConvTranspose2d's "phases" forward works through the batch in blocks of samples whose products Wᵀ · x are about
# this size (the GEMM writes them and the phase sums read them back while they are in a core's cache), and hold
# at least this many pixels side by side: GEMMs as narrow as one sample's 4×4 map (16 columns, DCGAN's 512 → 256
# layer) took 2.2 times as long as one GEMM over the batch's 64 maps side by side.
CONV_TRANSPOSE_BLOCK_BYTES = 1 << 20
CONV_TRANSPOSE_MIN_COLUMNS = 512
# Convolutions at stride 1 without groups, of at most this many input channels and filters, take the compiled direct
# loops (``compiled.direct``) at every size, Winograd's 3×3 layers included: im2col copies each pixel R·S times for
# GEMMs whose inner size C·R·S is too small to pay for the copy (LeNet-5's 1 → 6 at 5×5, batch 64: forward 2×,
# dW 1.7× faster), and Winograd's transforms of C + K planes per tile outweigh its C·K products (ResNet-20's
# 3 → 16 on 32×32 at batch 256: forward 0.4×, forward + dW 0.5× Winograd's time at 1 and 2 threads).  Beyond 16
# filters the direct dW's dot products fall behind the GEMM over the columns.
DIRECT_MAX_CHANNELS = 4
DIRECT_MAX_FILTERS = 16
# A Winograd layer of few channels makes its forward by the direct loops and its gradients by Winograd's backward
# (whose dX and dW beat the direct dW and NumPy's dX there): per output pixel Winograd's transforms cost in
# proportion to C + K and its products to C·K, the direct loops' to C·K alone, so the direct forward pays where
# C·K / (C + K) is small, and more so on large maps, where its runs are long.  Forward, direct ÷ Winograd at batch
# 128, 1 / 2 threads: on 32×32 maps 16 → 16 0.72 / 0.75, 24 → 24 0.86 / 0.81, 32 → 32 1.02 / 1.03; on 16×16
# 16 → 16 1.02 / 0.73, 24 → 24 1.04 / 0.96; on 8×8 8 → 8 0.66 / 0.59, 16 → 16 1.16 / 0.99.
DIRECT_FORWARD_MAX_WIDTH = 4             # C·K / (C + K) at most this: any map
DIRECT_FORWARD_LARGE_MAP_MAX_WIDTH = 12  # on maps of at least DIRECT_FORWARD_LARGE_MAP_PIXELS output pixels
DIRECT_FORWARD_LARGE_MAP_PIXELS = 32 * 32
# A call of at most this many multiply-adds (N·K·C·R·S·H'·W', a kernel larger than 1×1) takes the direct loops too,
# whatever its channels: the columns, their GEMMs and the calls around them then cost more than the products
# (LeNet-5's 6 → 16 at 5×5 on 14×14, batch 1: forward 80 → 30 µs, with dW 119 → 69 µs; at batch 4 even, beyond it
# the direct dW falls behind).  A 1×1 kernel's columns are its input: nothing to save.
DIRECT_MAX_MULTIPLY_ADDS = 1 << 19
# Max pooling's compiled forward (``compiled.pool``: a loop over each row of windows, run on the batch split) takes
# inputs of at most this many values: NumPy's window-plane copy and compares cost some twenty array calls whatever
# the size, most of the time on small maps (LeNet-5's at batch 1: 6×28×28 in 0.3, 16×10×10 in 0.2 of NumPy's time);
# the loop's time per value is higher (no SIMD), so that from about this size on NumPy's is as fast (4×6×28×28:
# 0.8×, 8×6×28×28: 1.15×, 64×32×32: 1.5× NumPy's time).
MAX_POOL_COMPILED_MAX_ELEMENTS = 1 << 14
# Batch norms of maps of at most this many pixels (H·W; an (N, C) input has 1) run the compiled rows loops
# (``compiled.norm``'s ``batch_norm_rows_*``: whole rows of C·H·W values per sweep, sums per column) at every size,
# on juanji's split over channels: a channel's N runs of a few values are too short for the per-channel loops to
# vectorise, and Numba's pool costs its start.  MobileNet v2's layers at batch 64, forward + backward with ReLU6
# (the mask in the backward's sweeps), 1 and 2 threads, measured under load: on 4×4 and 2×2 maps 0.15–0.8 of the
# per-channel loops' time (0.15–0.85 of torch's), on 8×8 0.55–0.9 (torch's: 0.55–0.7 at 1 thread, 0.8–1.0 at 2).
# Larger maps were not tried enough to move them (16×16 and 32×32: 0.7–1.0 of the per-channel loops' time).
BATCH_NORM_ROWS_MAX_PIXELS = 8 * 8
# The rows loops split their channels over juanji's threads from this many elements on; below it they run whole:
# the hand-off cost more than the split saved (MobileNet v2's layers at batch 64, 2 threads: 1.15–1.6× one chunk's
# time, also with the machine near idle; 128×576×4×4: 0.75×, 512×1280×2×2: 0.9×, measured under load).
BATCH_NORM_ROWS_SPLIT_MIN_ELEMENTS = 1 << 20


def compiled(elements: int | None = None) -> bool:
    """True when the compiled kernels are chosen and a call on ``elements`` elements is worth one of their
    loops on Numba's threads (``elements`` None: a loop run on juanji's batch split, any size)."""
    return (elements is None or elements >= COMPILED_MIN_ELEMENTS) and kernels.get_kernels() == "numba"


class ConvPlan(NamedTuple):
    """A convolution's kernels, forward and backward.

    forward      "im2col" (per-sample GEMMs W · cols[n]), "pointwise" (1×1 at stride 1: the input is its own
                 columns), "grouped" (a GEMM per group over the batch, channel-major columns; at one group, the
                 ungrouped layers on small maps), "compiled_im2col" / "compiled_grouped" (the same columns gathered
                 from x by the compiled loop, with no padded copy), "compiled_blocks" (those per-sample GEMMs on
                 columns gathered a few samples at a time into ``block_bytes`` of memory, not kept),
                 "depthwise_shifts" (NumPy's depthwise kernel: a multiply-add per kernel offset, no columns),
                 "depthwise_channels_last" (NumPy's on small maps: the same, the channels innermost, no padding),
                 "depthwise" / "depthwise_rows" (the compiled loops; rows: 3×3 at stride 1 or 2, a row at a
                 time), "depthwise_channels" (the same layers on small maps, one filter per channel: the
                 channels innermost), "winograd" (the compiled F(2×2, 3×3)), "direct" (the compiled loops of
                 layers with few input channels and filters, and of small calls: no columns; followed by
                 Winograd's backward in the 3×3 layers of ``direct_forward``, which transforms W itself)
    weight_grad  "per_sample" (Σ_n cols[n] · dY[n]ᵀ), "batch" (the columns side by side, one product: small
                 maps, K > H'·W'), "compiled_batch" (the same product, block by block, on columns gathered again
                 from x, channel-major), "blocks" (transposed convolutions' backward: Σ_n cols[n] · dY[n]ᵀ on
                 the columns of "compiled_blocks" while they are in cache), "grouped", "depthwise_shifts",
                 "depthwise_channels_last", "depthwise", "depthwise_rows", "depthwise_channels", "winograd", "direct"
    input_grad   "full_convolution" (dY ∗ rot180(W): stride 1, K ≤ C), "col2im" (Wᵀ · dY summed back by
                 NumPy's strided adds), "compiled_col2im" (the same sums, plane by plane), "depthwise_shifts",
                 "depthwise_channels_last",
                 "batch_col2im" (Wᵀ · dY over the batch, channel-major as dW made it: 1×1 layers whose dW goes
                 over the batch), "depthwise", "depthwise_rows" (one filter per channel at stride 1),
                 "depthwise_scatter" (the
                 rows' layers otherwise: each dY value spread over its window), "depthwise_channels", "winograd"
    block_bytes  the size of the blocks of the kernels that work block by block: Winograd's
                 (``WINOGRAD_BLOCK_BYTES``, the default), NumPy's depthwise ones (``DEPTHWISE_BLOCK_BYTES``) and
                 the columns of "compiled_blocks" and "compiled_batch" (``GATHER_BLOCK_BYTES``)
    """
    forward: str
    weight_grad: str
    input_grad: str
    block_bytes: int = WINOGRAD_BLOCK_BYTES


class Plans:
    """A layer's plans, each made once per input shape and kernel set and then reused: what a plan reads
    (``plan_conv``'s, ``plan_max_pool``'s) is the layer's fixed settings, the input's shape and the kernel set,
    never the threads (the batch split cuts each call by its own count).  Asking costs a dict look-up where
    making a plan took a few µs, which on LeNet-5 at batch 1 is a few percent of a forward.  Holds at most
    ``KEPT`` shapes (a model fed ever new sizes starts afresh)."""

    KEPT = 16

    def __init__(self):
        self._made: dict = {}

    def get(self, shape: tuple, make):
        """The plan for inputs of ``shape`` on the kernels in use: ``make()``'s, made at the first ask."""
        key = (shape, kernels.get_kernels())
        chosen = self._made.get(key)
        if chosen is None:
            if len(self._made) >= self.KEPT:
                self._made.clear()
            chosen = self._made[key] = make()
        return chosen


def depthwise(x_shape, weight_shape, groups) -> bool:
    """One input channel per filter (groups = C > 1; K = m·C filters, m per channel)."""
    return groups > 1 and groups == x_shape[1] and weight_shape[1] == 1


def depthwise_rows(kernel_size, stride, dilation, pads) -> bool:
    """3×3 at stride 1 or 2 (the same along both axes), undilated, each side padded by 0 to 2: the layers of
    the compiled depthwise row-at-a-time loops."""
    return plain_3x3(kernel_size, dilation, pads) and tuple(stride) in ((1, 1), (2, 2))


def direct(x_shape, weight_shape, stride, pads, dilation, groups) -> bool:
    """Stride 1 without groups, and at most ``DIRECT_MAX_CHANNELS`` input channels and ``DIRECT_MAX_FILTERS``
    filters, or a kernel larger than 1×1 in a call of at most ``DIRECT_MAX_MULTIPLY_ADDS``: the layers of the
    compiled direct loops."""
    k, c, r, s = weight_shape
    if groups != 1 or tuple(stride) != (1, 1):
        return False
    out_h, out_w = output_shape(x_shape[2:], (r, s), (1, 1), pads, dilation)
    small_call = r * s > 1 and x_shape[0] * k * c * r * s * out_h * out_w <= DIRECT_MAX_MULTIPLY_ADDS
    return small_call or (c <= DIRECT_MAX_CHANNELS and k <= DIRECT_MAX_FILTERS)


def full_convolution_padding(pads, kernel_size, dilation):
    """Padding of dY that turns dX into a stride-1 convolution of dY with the flipped kernel, or None where
    the forward padding exceeds the kernel's reach (then dX is a col2im)."""
    reach = [d * (k - 1) for k, d in zip(kernel_size, dilation)]
    full = tuple((span - before, span - after) for span, (before, after) in zip(reach, pads))
    return full if min(min(side) for side in full) >= 0 else None


def direct_forward(c, k, pixels) -> bool:
    """Whether a Winograd layer of C input channels and K filters on H'·W' = ``pixels`` output pixels makes its
    forward by the direct loops (``DIRECT_FORWARD_MAX_WIDTH``)."""
    width = c * k / (c + k)
    return width <= (DIRECT_FORWARD_LARGE_MAP_MAX_WIDTH if pixels >= DIRECT_FORWARD_LARGE_MAP_PIXELS
                     else DIRECT_FORWARD_MAX_WIDTH)


def plan_conv(x_shape, weight_shape, stride, pads, dilation, groups) -> ConvPlan:
    """The kernels of a convolution of x (N, C, H, W) by weight (K, C/G, R, S), stride and dilation pairs,
    ``pads`` ((top, bottom), (left, right)) as resolved by ``geometry.resolve_padding``."""
    n, c, h, w = x_shape
    k, cg, r, s = weight_shape
    stride, dilation = tuple(stride), tuple(dilation)
    elements = math.prod(x_shape)
    if compiled() and depthwise(x_shape, weight_shape, groups) and depthwise_rows((r, s), stride, dilation, pads):
        # at every size: NumPy's shifts took 7 to 20 times the compiled loops' time on MobileNet v2's 4×4 and 2×2
        # layers at batch 64, and the row loops' start on Numba's pool (~50 µs) is small beside either
        if math.prod(output_shape((h, w), (r, s), stride, pads, dilation)) <= DEPTHWISE_CHANNELS_MAX_PIXELS and k == c:
            return ConvPlan("depthwise_channels", "depthwise_channels", "depthwise_channels")
        return ConvPlan("depthwise_rows", "depthwise_rows",
                        "depthwise_rows" if stride == (1, 1) and k == c else "depthwise_scatter")
    if compiled(elements) and depthwise(x_shape, weight_shape, groups) and h * w >= DEPTHWISE_MIN_PIXELS:
        return ConvPlan("depthwise", "depthwise", "depthwise")
    if compiled() and direct(x_shape, weight_shape, stride, pads, dilation, groups):    # run on the batch split
        return numpy_plan(x_shape, weight_shape, stride, pads, dilation, groups)._replace(
            forward="direct", weight_grad="direct")             # dX needs no columns: NumPy's kernel's
    if compiled(elements) and plain_3x3((r, s), dilation, pads) and stride == (1, 1) and groups == 1:
        pixels = math.prod(output_shape((h, w), (r, s), stride, pads, dilation))
        return ConvPlan("direct" if direct_forward(c, k, pixels) else "winograd", "winograd", "winograd")
    chosen = numpy_plan(x_shape, weight_shape, stride, pads, dilation, groups)
    out_w = output_shape((h, w), (r, s), stride, pads, dilation)[1]
    widest = {"im2col": GATHER_MAX_WIDTH, "grouped": GATHER_CHANNEL_MAJOR_MAX_WIDTH}.get(chosen.forward, 0)
    if (r, s) != (1, 1) and out_w <= widest and compiled():
        if chosen.weight_grad == "batch":       # no columns kept: gathered by blocks, again for dW
            return chosen._replace(forward="compiled_blocks", weight_grad="compiled_batch",
                                   block_bytes=GATHER_BLOCK_BYTES)
        return chosen._replace(forward="compiled_" + chosen.forward)     # a loop run on the batch split: any size
    return chosen


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
        out_h, out_w = output_shape((h, w), (r, s), stride, pads, dilation)
        small = out_h * out_w <= DEPTHWISE_CHANNELS_LAST_MAX_PIXELS
        kernel = "depthwise_channels_last" if small else "depthwise_shifts"
        return ConvPlan(kernel, kernel, kernel, DEPTHWISE_BLOCK_BYTES)
    out_h, out_w = output_shape((h, w), (r, s), stride, pads, dilation)
    pointwise = (r, s) == (1, 1) and stride == (1, 1)
    # the grouped kernels' one GEMM over the batch also where per-sample GEMMs would have too few columns
    pixels = out_h * out_w
    batched = (groups > 1 or pointwise and pixels <= POINTWISE_BATCH_MAX_PIXELS
               or not pointwise and k > pixels and pixels <= IM2COL_BATCH_MAX_PIXELS)
    forward = "grouped" if batched else "pointwise" if pointwise else "im2col"
    return ConvPlan(forward, "grouped" if batched else weight_grad_method(k, out_h * out_w, groups),
                    input_grad_method(x_shape, weight_shape, stride, pads, dilation, groups, out_h * out_w))


def weight_grad_method(k, pixels, groups) -> str:
    """dW's kernel on NumPy's side: per group, per sample, or over the batch's columns side by side where
    the maps are small (K > H'·W': the per-sample products would outweigh the columns)."""
    return "grouped" if groups > 1 else "per_sample" if k <= pixels else "batch"


def input_grad_method(x_shape, weight_shape, stride, pads, dilation, groups, pixels) -> str:
    """dX's kernel on NumPy's side. The full convolution reads K·R·S columns per input pixel, col2im writes
    C·R·S per output pixel: the first is cheaper where the layer does not widen (K ≤ C) at stride 1, and at 1×1
    always (both are then the one product Wᵀ · dY, which col2im would copy into dX once more), except where dW
    has made dY's channel-major copy (``batch_col2im``)."""
    n, c = x_shape[:2]
    k, cg, r, s = weight_shape
    if (tuple(stride) == (1, 1) and (r, s) == (1, 1) and groups == 1 and not any(map(any, pads))
            and (pixels <= POINTWISE_BATCH_MAX_PIXELS or k > max(c, pixels))):
        # dW's GEMM over the batch made dY channel-major: one GEMM Wᵀ · dY over it too, then dX copied back to
        # (N, C, H, W), instead of N GEMMs of H·W columns (or, on the smallest maps, another copy of dY); worth it
        # where dX has fewer channels than dY (MobileNet v2's expansions on 8×8 to 2×2 maps, its 2×2 layers: 0.5 to
        # 0.8 of the time on 2 threads, 0.6 to 0.95 on one; the projections on 4×4 maps took 1.1×)
        return "batch_col2im"
    if (tuple(stride) == (1, 1) and (k <= c or (r, s) == (1, 1))
            and full_convolution_padding(pads, (r, s), dilation) is not None):
        return "full_convolution"
    # the R·S passes of col2im plane by plane, while each is in cache (sample-major columns only)
    return "compiled_col2im" if groups == 1 and compiled(n * cg * r * s * pixels) else "col2im"


class ConvTransposePlan(NamedTuple):
    """A transposed convolution's kernels (``functional.conv_transpose``).

    forward      "phases" (the compiled loops: per block of samples the GEMM Z = Wᵀ · x, whose products each kernel
                 offset adds, row by row, to its stride phase of y), or the ``input_grad`` of the convolution it is
                 the input gradient of (``conv2d_input_grad`` with x as that convolution's dY): "full_convolution"
                 (stride 1, C ≤ K or 1×1: x padded by the kernel's reach, convolved with rot180(W)), "col2im" (per
                 sample the GEMM Wᵀ · x, its columns summed into y by NumPy's strided adds), "compiled_col2im" (the
                 same sums, plane by plane), "batch_col2im" (1×1 at stride 1 without padding, on small maps or
                 where C > max(K, H·W): one GEMM Wᵀ · x over the batch on x's channel-major copy, then y copied back
                 to (N, K, H', W'))
    backward     the ``ConvPlan`` of that convolution, run on dY: dX = conv2d(dY, W), dW from its columns (weight_grad
                 "blocks": both from each block of them, ``GATHER_BLOCK_BYTES``)
    block        the samples of a "phases" block (``CONV_TRANSPOSE_BLOCK_BYTES``, ``CONV_TRANSPOSE_MIN_COLUMNS``)
    """
    forward: str
    backward: ConvPlan
    block: int = 1


def plan_conv_transpose(x_shape, weight_shape, out_size, stride, pads, dilation, groups,
                        itemsize: int = 4) -> ConvTransposePlan:
    """The kernels of a transposed convolution of x (N, C, H, W) by weight (C, K/G, R, S) to an (H', W') output
    ``out_size``: the input gradient and the forward of the convolution of (N, K, H', W') by the same weight;
    ``itemsize``: the bytes of one of x's values."""
    n, _, h, w = x_shape
    _, kg, r, s = weight_shape
    conv_x = (n, kg * groups, *out_size)
    backward = plan_conv(conv_x, weight_shape, stride, pads, dilation, groups)
    if backward.forward == "compiled_im2col" and backward.weight_grad == "per_sample":
        # dX and dW from the same blocks of dY's columns while they are in cache, none kept between them
        backward = backward._replace(forward="compiled_blocks", weight_grad="blocks", block_bytes=GATHER_BLOCK_BYTES)
    forward = input_grad_method(conv_x, weight_shape, stride, pads, dilation, groups, h * w)
    # The full convolution (stride 1) multiplies the zeros of its padding too: its GEMM is H'·W' / (H·W) times
    # the size of the phases' (1 → 4×4, DCGAN's first layer: 16 times, 3.3× slower); at twice the size
    # (8 → 12, 5×5) it took 1.7× the phases' time, at 1.27 times (16 → 18, 3×3) 0.74×.
    if compiled() and (forward != "full_convolution" or math.prod(out_size) >= 2 * h * w):
        # y's sums by stride phase, a contiguous add per row of products, where col2im adds them into y at the
        # stride one value at a time; the products of a block of samples are summed while in cache
        block = max(CONV_TRANSPOSE_BLOCK_BYTES // (kg * groups * r * s * h * w * itemsize),
                    -(-CONV_TRANSPOSE_MIN_COLUMNS // (h * w)))
        return ConvTransposePlan("phases", backward, max(1, min(n, block)))
    return ConvTransposePlan(forward, backward)


class PoolPlan(NamedTuple):
    """Max pooling's kernels (``functional.pool.max_pool2d``).

    forward   "window_planes" (NumPy's: a copy of each window offset's plane, then a compare per offset) or
              "compiled" (the compiled loop over windows, small inputs: ``MAX_POOL_COMPILED_MAX_ELEMENTS``)
    backward  "writes" (NumPy's, windows that tile the input: one strided write per offset), "masks" (NumPy's,
              windows that overlap or leave gaps: a masked add per offset into zeros) or "compiled" (the compiled
              scatter of each dY to its window's arg-max, one pass over dY, none per offset: after the compiled
              forward, and where windows do not tile the input)
    """
    forward: str
    backward: str


def plan_max_pool(x_shape, kernel_size, stride, dilation, pads, out) -> PoolPlan:
    """The kernels of a max pooling of x (N, C, H, W), kernel_size, stride and dilation pairs, ``pads`` ((top,
    bottom), (left, right)) as ``pool`` extends them for ceil_mode, to an (H', W') output ``out``."""
    tiles = (tuple(stride) == tuple(kernel_size) and tuple(dilation) == (1, 1)
             and all(x_shape[2 + a] + sum(pads[a]) == out[a] * stride[a] for a in range(2)))
    if compiled():        # both loops run on the batch split: no pool to start
        if math.prod(x_shape) <= MAX_POOL_COMPILED_MAX_ELEMENTS:
            return PoolPlan("compiled", "compiled")
        # NumPy's plain writes on tiling windows are whole-array strided copies with nothing to add up, which the
        # scatter does not beat on larger maps (LeNet-5's at batch 64: as fast or slower)
        return PoolPlan("window_planes", "writes" if tiles else "compiled")
    return PoolPlan("window_planes", "writes" if tiles else "masks")


def plan_batch_norm(x_shape) -> str:
    """The kernels of a batch norm of x (N, C, …) whose statistics are this process's own: "rows" (the compiled
    rows loops: maps of at most ``BATCH_NORM_ROWS_MAX_PIXELS``), "compiled" (the compiled loops, a channel per
    iteration on Numba's threads) or "numpy"."""
    if compiled() and math.prod(x_shape[2:]) <= BATCH_NORM_ROWS_MAX_PIXELS:
        return "rows"
    return "compiled" if compiled(math.prod(x_shape)) else "numpy"


def batch_norm_rows_split(elements: int) -> bool:
    """Whether the rows loops on ``elements`` values split their channels over juanji's threads."""
    return elements >= BATCH_NORM_ROWS_SPLIT_MIN_ELEMENTS


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
        ("conv 16→16 @32 3×3", (128, 16, 32, 32), (16, 16, 3, 3), 1, 1, 1),
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
