"""Transposed convolution kernels (ConvTranspose2d, and ConvTranspose1d with H = R = 1), on conv2d's own kernels.

Shapes (PyTorch's): x (N, C, H, W), weight (C, K/G, R, S), bias (K,), y (N, K, H', W') with
    H' = (H − 1)·stride − 2P + D(R − 1) + output_padding + 1   (the same along W with S).
A transposed convolution by W is the input gradient of the convolution from K channels to C by the same W (read as a
conv weight (C, K/G, R, S)): its forward is that convolution's ``conv2d_input_grad``, its backward that convolution:
    y  = conv2d_input_grad(x, W)          each x[n, c, i, j] scatters x · W[c, :, r, s] to y[:, :, i·S + r·D − P, …]
    dX = conv2d(dY, W)                    dX[n, c, i, j] = Σ_{k, r, s} dY[n, k, i·S + r·D − P, …] · W[c, k, r, s]
    dW = conv2d_weight_grad(x, cols(dY))  dW[c, k, r, s] = Σ_{n, i, j} x[n, c, i, j] · dY[n, k, i·S + r·D − P, …]
    db = Σ_{n, i, j} dY
The forward runs either conv2d_input_grad's kernels or, on the compiled kernels, "phases": per block of samples the
GEMM Z = Wᵀ · x, whose products ``compiled.conv_transpose.phase_sums`` adds into y by stride phase (``plan``).
"""
from __future__ import annotations

import numpy as np

from ..runtime.threads import over_batch
from .conv import conv2d, conv2d_backward, conv2d_input_grad, conv2d_with_weight_grad
from .conv import input_grad_values, workspace_values as conv_workspace_values
from .geometry import output_shape, pair
from .plan import ConvTransposePlan, input_grad_method, plan_conv_transpose


def output_size(size: int, kernel: int, stride: int = 1, padding: int = 0, output_padding: int = 0,
                dilation: int = 1) -> int:
    """(size − 1)·stride − 2·padding + dilation·(kernel − 1) + output_padding + 1: PyTorch's output length."""
    return (size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1


def _geometry(x_shape, w_shape, stride, padding, output_padding, dilation):
    """Pairs, ((P, P), (P, P)) and the output size (H', W'); ValueError where that size is not positive."""
    stride, padding = pair(stride, "stride"), pair(padding, "padding")
    output_padding, dilation = pair(output_padding, "output_padding"), pair(dilation, "dilation")
    out = tuple(output_size(x_shape[2 + a], w_shape[2 + a], stride[a], padding[a], output_padding[a], dilation[a])
                for a in range(2))
    if min(out) <= 0:
        raise ValueError(f"conv_transpose2d: an input of spatial size {tuple(x_shape[2:])} gives an output of size "
                         f"{out}, which is not positive")
    return stride, ((padding[0],) * 2, (padding[1],) * 2), dilation, out


def conv_transpose2d(x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1, scratch=None,
                     plan: ConvTransposePlan | None = None):
    """y = Wᵀ ∗ x + b (torch.nn.functional.conv_transpose2d's arguments, in its order).
    x (N, C, H, W), weight (C, K/G, R, S), bias (K,) → y (N, K, H', W').  Returns (y, cache).

    The convolution this is the input gradient of maps an (H', W') map to (H₀, W₀) ≥ (H, W) outputs (one more where
    output_padding ≥ stride, which PyTorch allows below the dilation): x is extended by zeros to that size.
    ``scratch``: a ``Workspace`` for the arrays used only during this call (new arrays without it).
    ``plan``: the kernels to run (``juanji.functional.plan``), by default ``plan_conv_transpose``'s choice; the cache
    keeps it for the backward."""
    stride, pads, dilation, out = _geometry(x.shape, weight.shape, stride, padding, output_padding, dilation)
    conv_out, in_size = output_shape(out, weight.shape[2:], stride, pads, dilation), x.shape[2:]
    if conv_out != in_size:
        extended = np.zeros(x.shape[:2] + conv_out, dtype=x.dtype)
        extended[:, :, :x.shape[2], :x.shape[3]] = x
        x = extended
    x = np.ascontiguousarray(x)
    n, k = x.shape[0], weight.shape[1] * groups
    plan = plan or plan_conv_transpose(x.shape, weight.shape, out, stride, pads, dilation, groups, x.itemsize)
    if plan.forward == "phases":
        y = _phase_sums_forward(x, weight, bias, stride, pads, dilation, groups, out, plan.block)
    else:
        y = conv2d_input_grad(x, weight, (n, k, *out), stride, pads, dilation, groups, None, scratch, plan.forward)
        if bias is not None:
            y += bias.reshape(1, k, 1, 1)
    return y, (x, in_size, weight, stride, pads, dilation, groups, bias is not None, plan)


def _phase_sums_forward(x, weight, bias, stride, pads, dilation, groups, out_size, block):
    """y by plan "phases": in each chunk of the batch (one per thread), ``block`` samples at a time, the products
    Z = Wᵀ · x of the block (K/G·R·S × samples·H·W per group: one GEMM over the block's samples side by side), then
    the compiled loop adds them into y by stride phase while they are in cache.  x (N, C, H, W) → y (N, K, H', W')."""
    from .compiled import conv_transpose as compiled
    n, c, h, w = x.shape
    _, kg, r, s = weight.shape
    k, dtype = kg * groups, np.result_type(x, weight)
    weights_t = weight.reshape(groups, c // groups, kg * r * s).transpose(0, 2, 1)     # (G, K/G·R·S, C/G)
    bias = np.zeros(k, dtype) if bias is None else bias.astype(dtype, copy=False)
    y = np.empty((n, k, *out_size), dtype)
    offsets = (pads[0][0], pads[1][0])

    def forward_chunk(start, stop):
        most = min(block, stop - start)
        columns, products = np.empty(c * most * h * w, x.dtype), np.empty(k * r * s * most * h * w, dtype)
        for first in range(start, stop, block):
            size = min(stop, first + block) - first
            x_cm = columns[:c * size * h * w].reshape(c, size, h * w)           # the block's samples side by side
            np.copyto(x_cm, x[first:first + size].reshape(size, c, h * w).transpose(1, 0, 2))
            z = np.matmul(weights_t, x_cm.reshape(groups, c // groups, size * h * w),
                          out=products[:k * r * s * size * h * w].reshape(groups, kg * r * s, size * h * w))
            compiled.phase_sums(z.reshape(k, r, s, size, h, w), bias, y[first:first + size], stride, dilation,
                                offsets)

    over_batch(n, forward_chunk, elements=n * k * r * s * h * w)
    return y


def conv_transpose2d_backward(dy, cache, need_dx: bool = True, scratch=None):
    """Returns (dx or None, dW, db or None): dX = W ⋆ dY (conv2d), dW = x ⋆ dY (conv2d's weight gradient), db = Σ dY.
    One im2col of dY serves both: conv2d's forward (by the plan the forward recorded) makes the columns, its
    backward (with x as its dY) reads them; by the backward plan's weight_grad "blocks", a few samples' columns at a
    time, both products made while they are in cache (``conv2d_with_weight_grad``).  ``scratch``: a ``Workspace``
    for the columns and the other arrays used only during this call (new arrays without it)."""
    x, (h, w), weight, stride, pads, dilation, groups, has_bias, plan = cache
    dy = np.ascontiguousarray(dy)
    if plan.backward.weight_grad == "blocks":       # both from each block of dY's columns while in cache
        dx, dw = conv2d_with_weight_grad(dy, weight, x, stride, pads, dilation, plan.backward.block_bytes)
    else:
        dx, conv_cache = conv2d(dy, weight, None, stride, pads, dilation, groups, scratch, scratch, plan.backward)
        _, dw, _ = conv2d_backward(x, conv_cache, need_dx=False, scratch=scratch, need_db=False)
    db = dy.sum(axis=(0, 2, 3)) if has_bias else None
    dx = dx if dx.shape[2:] == (h, w) else np.ascontiguousarray(dx[:, :, :h, :w])
    return (dx if need_dx else None), dw, db


def workspace_values(x_shape, weight_shape, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """What conv_transpose2d and conv_transpose2d_backward hold beyond x, y and the gradients, on NumPy's kernels,
    as ``conv.workspace_values``'s (kept, scratch) {key: values}: kept, x extended by zeros (where the convolution's
    output is larger than x: the cache holds it); scratch, that convolution's on (N, K, H', W'), its forward's
    included (the backward's conv2d runs with the scratch as its workspace), and this forward's, that convolution's
    input gradient by its own method (``conv.input_grad_values``): also where the convolution is depthwise
    (groups = K), whose shifts hold nothing while this forward's col2im holds its columns, x's channel-major copy
    and a padded y."""
    stride, pads, dilation, out = _geometry(x_shape, weight_shape, stride, padding, output_padding, dilation)
    n, c = x_shape[:2]
    conv_out = output_shape(out, weight_shape[2:], stride, pads, dilation)
    kept = {"extended": n * c * conv_out[0] * conv_out[1]} if conv_out != tuple(x_shape[2:]) else {}
    conv_x = (n, weight_shape[1] * groups, *out)
    conv_kept, scratch = conv_workspace_values(conv_x, weight_shape, stride, pads, dilation, groups)
    method = input_grad_method(conv_x, weight_shape, stride, pads, dilation, groups, conv_out[0] * conv_out[1])
    forward = input_grad_values(conv_x, weight_shape, stride, pads, dilation, groups, method)   # plan_conv_transpose's
    for key, values in (*conv_kept.items(), *forward.items()):
        scratch[key] = max(scratch.get(key, 0), values)
    return kept, scratch


def _scatter_offsets(weight, stride, dilation, in_size):
    """(r, s, rows, cols) for every kernel offset: input (i, j) lands on padded output (i·S + r·D, j·S + s·D)."""
    for r in range(weight.shape[2]):
        for s in range(weight.shape[3]):
            rows = slice(r * dilation[0], r * dilation[0] + stride[0] * (in_size[0] - 1) + 1, stride[0])
            cols = slice(s * dilation[1], s * dilation[1] + stride[1] * (in_size[1] - 1) + 1, stride[1])
            yield r, s, rows, cols


def conv_transpose2d_reference(x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """Slow, obviously correct transposed convolution: explicit scatter loops over groups and kernel offsets,
    y_padded[n, k, i·S + r·D, j·S + s·D] += Σ_c x[n, c, i, j] · W[c, k, r, s]; for tests only."""
    stride, pads, dilation, out = _geometry(x.shape, weight.shape, stride, padding, output_padding, dilation)
    (p, _), (q, _) = pads
    cg, kg = weight.shape[0] // groups, weight.shape[1]
    yp = np.zeros((x.shape[0], kg * groups, out[0] + 2 * p, out[1] + 2 * q), dtype=x.dtype)
    for g in range(groups):
        ins, outs = slice(g * cg, (g + 1) * cg), slice(g * kg, (g + 1) * kg)
        for r, s, rows, cols in _scatter_offsets(weight, stride, dilation, x.shape[2:]):
            yp[:, outs, rows, cols] += np.einsum("nchw,ck->nkhw", x[:, ins], weight[ins, :, r, s])
    y = yp[:, :, p:p + out[0], q:q + out[1]].copy()
    if bias is not None:
        y += bias.reshape(1, -1, 1, 1)
    return y


def conv_transpose2d_backward_reference(dy, x, weight, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """Slow gradients of the transposed convolution with the same loops, read backwards; for tests only.
    With dY padded by P:  dX[n, c, i, j] = Σ_{k, r, s} dYp[n, k, i·S + r·D, j·S + s·D] · W[c, k, r, s],
    dW[c, k, r, s] = Σ_{n, i, j} x[n, c, i, j] · dYp[n, k, i·S + r·D, j·S + s·D],  db = Σ dY.  Returns (dx, dW, db)."""
    stride, pads, dilation, _ = _geometry(x.shape, weight.shape, stride, padding, output_padding, dilation)
    (p, _), (q, _) = pads
    dyp = np.pad(dy, ((0, 0), (0, 0), (p, p), (q, q)))
    cg, kg = weight.shape[0] // groups, weight.shape[1]
    dx, dw = np.zeros(x.shape, dtype=dy.dtype), np.zeros(weight.shape, dtype=dy.dtype)
    for g in range(groups):
        ins, outs = slice(g * cg, (g + 1) * cg), slice(g * kg, (g + 1) * kg)
        for r, s, rows, cols in _scatter_offsets(weight, stride, dilation, x.shape[2:]):
            read = dyp[:, outs, rows, cols]                                   # (N, K/G, H, W)
            dx[:, ins] += np.einsum("nkhw,ck->nchw", read, weight[ins, :, r, s])
            dw[ins, :, r, s] = np.einsum("nchw,nkhw->ck", x[:, ins], read)
    return dx, dw, dy.sum(axis=(0, 2, 3))
