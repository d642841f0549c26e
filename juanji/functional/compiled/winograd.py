"""3×3 convolutions at stride 1 by Winograd's minimal filtering F(2×2, 3×3) (Lavin & Gray, "Fast
Algorithms for Convolutional Neural Networks", 2015): 16 multiplications per 2×2 output tile and channel
pair instead of 36.

The input is cut into 4×4 tiles d at stride 2 (neighbours overlap by 2), tile t = (n·TH + i)·TW + j
with its top-left pixel at (2i − P_top, 2j − P_left) (zero outside the input), TH × TW = ⌈H'/2⌉ × ⌈W'/2⌉
tiles per sample.  Each tile gives the 2×2 outputs at (2i, 2j):

    Y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A          Bᵀ = [1  0 −1  0]    G = [ 1   0   0]    Aᵀ = [1  1  1  0]
                                                  [0  1  1  0]        [ ½   ½   ½]         [0  1 −1 −1]
                                                  [0 −1  1  0]        [ ½  −½   ½]
                                                  [0  1  0 −1]        [ 0   0   1]

Summed over the input channels, the 16 products ξ = (a, b) of the 4×4 ⊙ are 16 GEMMs over all tiles:

    V[ξ, t, c] = (Bᵀ d_{t,c} B)[ξ]       U[ξ, c, k] = (G g_{k,c} Gᵀ)[ξ]       M[ξ] = V[ξ] · U[ξ]   (T × K)

and Y_{t,k} = Aᵀ M[:, t, k] A.  Backward, each step the adjoint of a forward one (dY's tiles beyond
H' × W' are zero):

    dM[:, t, k] = A dY_{t,k} Aᵀ                  the output transform's adjoint
    dU[ξ] = V[ξ]ᵀ · dM[ξ]      dV[ξ] = dM[ξ] · U[ξ]ᵀ
    dW[k, c] = Gᵀ dU[:, c, k] G                  the weight transform's adjoint
    dX: B dV_{t,c} Bᵀ added into the 4×4 input window of tile t (windows overlap by 2), padding cut off

The transforms are plain loops over tiles, compiled without threads of their own (``serial``): the batch
split (``over_batch``) runs one slice of samples per thread, and each slice goes block by block, a few
samples at a time: the block's tiles V and products M (16 planes each, about the plan's ``block_bytes``)
stay in the core's cache from the input transform through the 16 GEMMs (NumPy's BLAS) to the output
transform, instead of four times the input's size making round trips to memory.  The forward keeps its input and U, not its
tiles: dW transforms them again, block by block (``Saved``).  Its float32 error stays within 4× the direct
method's (floored at 2 epsilons) and 16 float32 epsilons of the largest output
(tests/functional/test_winograd.py, against float64).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ...runtime.threads import over_batch
from ...runtime.workspace import array_in
from ...runtime.workspace import scratch as thread_scratch
from ..geometry import pad2d
from . import inline, serial

G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]])


# The bytes of one block's tiles V (16, T, C): the samples of a block are as many as fit, one at least.
# Where y's planes lie a multiple of 4 KiB apart (32×32 float32 maps, and larger powers of two), the output
# transform writes this many channels' planes at a time: 64 planes written in turn share the same cache
# sets and evict each other's lines before they are full.
CHANNEL_GROUP = 16


class Saved(NamedTuple):
    """What a Winograd forward keeps for backward: its input x (N, C, H, W) and the transformed weights
    U (16, C, K), which dX reads."""
    input: np.ndarray
    transformed_weights: np.ndarray


@inline
def b_transposed(x0, x1, x2, x3):
    """Bᵀ · (x0, x1, x2, x3)"""
    return x0 - x2, x1 + x2, x2 - x1, x1 - x3


@inline
def b_times(z0, z1, z2, z3):
    """B · (z0, z1, z2, z3), the adjoint of ``b_transposed``"""
    return z0, z1 - z2 + z3, z1 + z2 - z0, -z3


@inline
def a_transposed(m0, m1, m2, m3):
    """Aᵀ · (m0, m1, m2, m3)"""
    return m0 + m1 + m2, m1 - m2 - m3


@inline
def a_times(g0, g1):
    """A · (g0, g1), the adjoint of ``a_transposed``"""
    return g0, g0 + g1, g0 - g1, -g1


@serial
def input_transform(xp, th, tw, v):
    """v[ξ, t, c] = (Bᵀ d B)[ξ] for the 4×4 tile d = xp[n, c, 2i : 2i + 4, 2j : 2j + 4] of tile
    t = (n·th + i)·tw + j; ``xp`` the input padded so that every tile lies inside it."""
    for n in range(xp.shape[0]):
        for i in range(th):
            for j in range(tw):
                t = (n * th + i) * tw + j
                for c in range(xp.shape[1]):
                    d = xp[n, c]
                    r, q = 2 * i, 2 * j       # columns of Bᵀ d, then its rows times B
                    c0 = b_transposed(d[r, q], d[r + 1, q], d[r + 2, q], d[r + 3, q])
                    c1 = b_transposed(d[r, q + 1], d[r + 1, q + 1], d[r + 2, q + 1], d[r + 3, q + 1])
                    c2 = b_transposed(d[r, q + 2], d[r + 1, q + 2], d[r + 2, q + 2], d[r + 3, q + 2])
                    c3 = b_transposed(d[r, q + 3], d[r + 1, q + 3], d[r + 2, q + 3], d[r + 3, q + 3])
                    for a in range(4):
                        v[4 * a, t, c], v[4 * a + 1, t, c], v[4 * a + 2, t, c], v[4 * a + 3, t, c] = \
                            b_transposed(c0[a], c1[a], c2[a], c3[a])


@serial
def output_transform(m, th, tw, bias, y):
    """y[n, k, 2i + u, 2j + w] = (Aᵀ m[:, t, k] A)[u, w] + bias[k] for the outputs of tile t inside y."""
    height, width = y.shape[2], y.shape[3]
    for n in range(y.shape[0]):
        for i in range(th):
            for j in range(tw):
                t = (n * th + i) * tw + j
                for k in range(y.shape[1]):
                    c0 = a_transposed(m[0, t, k], m[4, t, k], m[8, t, k], m[12, t, k])      # columns of Aᵀ m
                    c1 = a_transposed(m[1, t, k], m[5, t, k], m[9, t, k], m[13, t, k])
                    c2 = a_transposed(m[2, t, k], m[6, t, k], m[10, t, k], m[14, t, k])
                    c3 = a_transposed(m[3, t, k], m[7, t, k], m[11, t, k], m[15, t, k])
                    for u in range(2):
                        if 2 * i + u < height:
                            left, right = a_transposed(c0[u], c1[u], c2[u], c3[u])
                            y[n, k, 2 * i + u, 2 * j] = left + bias[k]
                            if 2 * j + 1 < width:
                                y[n, k, 2 * i + u, 2 * j + 1] = right + bias[k]


@serial
def output_adjoint(dy, th, tw, dm):
    """dm[:, t, k] = A dY_{t,k} Aᵀ, dY_{t,k} the 2×2 outputs of tile t (zero where past dY's edge)."""
    height, width = dy.shape[2], dy.shape[3]
    zero = dy.dtype.type(0)
    for n in range(dy.shape[0]):
        for i in range(th):
            for j in range(tw):
                t = (n * th + i) * tw + j
                bottom, right = 2 * i + 1 < height, 2 * j + 1 < width
                for k in range(dy.shape[1]):
                    g = dy[n, k]
                    g00 = g[2 * i, 2 * j]
                    g01 = g[2 * i, 2 * j + 1] if right else zero
                    g10 = g[2 * i + 1, 2 * j] if bottom else zero
                    g11 = g[2 * i + 1, 2 * j + 1] if bottom and right else zero
                    e0, e1 = a_times(g00, g10), a_times(g01, g11)      # columns of A g
                    for a in range(4):
                        dm[4 * a, t, k], dm[4 * a + 1, t, k], dm[4 * a + 2, t, k], dm[4 * a + 3, t, k] = \
                            a_times(e0[a], e1[a])


@serial
def input_adjoint(dv, th, tw, dxp):
    """dxp[n, c, 2i : 2i + 4, 2j : 2j + 4] += B dV_{t,c} Bᵀ for each tile t = (n·th + i)·tw + j, where
    dV_{t,c}[a, b] = dv[4a + b, t, c]; ``dxp`` (zeroed by the caller) is the padded input's gradient."""
    for n in range(dxp.shape[0]):
        for i in range(th):
            for j in range(tw):
                t = (n * th + i) * tw + j
                for c in range(dxp.shape[1]):
                    g = dxp[n, c]
                    # rows of B dV (B times each column of dV), then each row times Bᵀ
                    e0 = b_times(dv[0, t, c], dv[4, t, c], dv[8, t, c], dv[12, t, c])
                    e1 = b_times(dv[1, t, c], dv[5, t, c], dv[9, t, c], dv[13, t, c])
                    e2 = b_times(dv[2, t, c], dv[6, t, c], dv[10, t, c], dv[14, t, c])
                    e3 = b_times(dv[3, t, c], dv[7, t, c], dv[11, t, c], dv[15, t, c])
                    for a in range(4):
                        f0, f1, f2, f3 = b_times(e0[a], e1[a], e2[a], e3[a])
                        g[2 * i + a, 2 * j] += f0
                        g[2 * i + a, 2 * j + 1] += f1
                        g[2 * i + a, 2 * j + 2] += f2
                        g[2 * i + a, 2 * j + 3] += f3


def weight_transform(weight: np.ndarray) -> np.ndarray:
    """U (16, C, K): U[(a, b), c, k] = (G · W[k, c] · Gᵀ)[a, b], as two GEMMs over all filters (einsum's
    own loop over every index does not use BLAS)."""
    k, c = weight.shape[:2]
    g = G.astype(weight.dtype)
    right = (weight.reshape(k * c * 3, 3) @ g.T).reshape(k * c, 3, 4)       # W Gᵀ: [kc, r, b]
    u = np.tensordot(g, right, axes=([1], [1]))                               # G W Gᵀ: [a, kc, b]
    return np.ascontiguousarray(u.reshape(4, k, c, 4).transpose(0, 3, 2, 1)).reshape(16, c, k)


def weight_adjoint(du: np.ndarray) -> np.ndarray:
    """dW (K, C, 3, 3) from dU (16, C, K): dW[k, c] = Gᵀ · dU[:, c, k] (as 4×4) · G."""
    c, k = du.shape[1:]
    g = G.astype(du.dtype)
    right = np.tensordot(du.reshape(4, 4, c, k), g, axes=([1], [0]))        # D G: [a, c, k, s]
    return np.ascontiguousarray(np.tensordot(g, right, axes=([0], [0])).transpose(2, 1, 0, 3))  # Gᵀ D G: [k, c, r, s]


def _grid(out_size):
    """(TH, TW): the 2×2 output tiles that cover H' × W'."""
    return (out_size[0] + 1) // 2, (out_size[1] + 1) // 2


def tile_planes(workspace, key, tiles, channels, dtype) -> np.ndarray:
    """16 planes (16, tiles, channels) whose starts lie 64 bytes further apart than the planes' size: the
    transforms store to all 16 planes in turn, and planes a power of two apart (ResNet-20's: 2 MiB) share
    the same cache sets (bench/results/winograd_study.txt times the input transform into both layouts)."""
    size = tiles * channels
    skew = 64 // np.dtype(dtype).itemsize
    return array_in(workspace, key, (16, size + skew), dtype)[:, :size].reshape(16, tiles, channels)


class _Blocks:
    """One slice of the batch, block by block: ``samples`` per block, and the arrays a block fills, reused
    from block to block (from the running thread's scratch workspace where the caller passed one)."""

    def __init__(self, x_shape, pads, grid, k, dtype, scratch, block_bytes):
        self.grid, self.tiles = grid, grid[0] * grid[1]
        n, c = x_shape[:2]
        # padded on the bottom and right as far as the last tile reaches: no bounds to check in the loops
        self.padding = ((pads[0][0], 2 * grid[0] + 2 - x_shape[2] - pads[0][0]),
                        (pads[1][0], 2 * grid[1] + 2 - x_shape[3] - pads[1][0]))
        self.samples = max(1, min(n, block_bytes // (16 * self.tiles * max(c, k) * np.dtype(dtype).itemsize)))
        self.channels, self.k, self.dtype = c, k, dtype
        self.workspace = None if scratch is None else thread_scratch()

    def ranges(self, start, stop):
        """(first, last) of each block of the samples [start, stop)."""
        return [(first, min(stop, first + self.samples)) for first in range(start, stop, self.samples)]

    def padded(self, samples):
        """(samples, C, 2·TH + 2, 2·TW + 2): the input as far as the tiles reach."""
        th, tw = self.grid
        shape = (self.samples, self.channels, 2 * th + 2, 2 * tw + 2)
        return array_in(self.workspace, "winograd padded", shape, self.dtype)[:samples]

    def tiles_of(self, x):
        """V (16, T, C) of the samples x, padded and transformed."""
        v = tile_planes(self.workspace, "winograd tiles", self.samples * self.tiles, self.channels, self.dtype)
        v = v[:, :len(x) * self.tiles]
        input_transform(pad2d(x, self.padding, out=self.padded(len(x))), *self.grid, v)
        return v

    def products(self, samples):
        """M (16, T, K) for ``samples`` samples."""
        m = tile_planes(self.workspace, "winograd products", self.samples * self.tiles, self.k, self.dtype)
        return m[:, :samples * self.tiles]


def conv2d(x, weight, bias, pads, out_size, block_bytes, scratch=None):
    """y (N, K, H', W') of a 3×3 stride-1 convolution of x (N, C, H, W) padded by ``pads``
    ((top, bottom), (left, right)), and what ``backward`` needs (``Saved``).  One slice of the batch per
    thread, block by block (of about ``block_bytes`` of tiles): the block's transforms and its 16 GEMMs.
    ``scratch``: given, the block's
    arrays come from each thread's own scratch workspace (new arrays per call without it)."""
    n = x.shape[0]
    k = weight.shape[0]
    dtype = np.result_type(x, weight)
    u = weight_transform(weight.astype(dtype, copy=False))
    b = np.zeros(k, dtype) if bias is None else bias.astype(dtype, copy=False)
    y = np.empty((n, k, *out_size), dtype)
    grid = _grid(out_size)

    plane = out_size[0] * out_size[1] * np.dtype(dtype).itemsize
    group = CHANNEL_GROUP if plane % 4096 == 0 else k
    channel_groups = [slice(channel, channel + group) for channel in range(0, k, group)]

    def forward(start, stop):
        blocks = _Blocks(x.shape, pads, grid, k, dtype, scratch, block_bytes)
        for first, last in blocks.ranges(start, stop):
            m = blocks.products(last - first)
            np.matmul(blocks.tiles_of(x[first:last]), u, out=m)
            for channels in channel_groups:
                output_transform(m[:, :, channels], *grid, b[channels], y[first:last, channels])

    over_batch(n, forward, elements=n * grid[0] * grid[1] * 16 * (x.shape[1] + k))
    return y, Saved(x, u)


def backward(dy, saved: Saved, pads, block_bytes, need_dx=True, scratch=None):
    """(dX or None, dW) from dY (N, K, H', W') and the forward's input, block by block: dM once, the
    input's tiles transformed again for dU, and dV = dM · Uᵀ transformed back into dX; the blocks' dU
    summed, then transformed back into dW (K, C, 3, 3)."""
    x, u = saved
    n, k = dy.shape[:2]
    c = x.shape[1]
    grid = _grid(dy.shape[2:])
    (top, _), (left, _) = pads
    dx = None
    if need_dx:
        dx = np.empty(x.shape, dy.dtype)
        u_t = np.ascontiguousarray(u.transpose(0, 2, 1), dy.dtype)     # (16, K, C)

    def share(start, stop):
        blocks = _Blocks(x.shape, pads, grid, k, dy.dtype, scratch, block_bytes)
        du = np.zeros((16, c, k), dy.dtype)
        for first, last in blocks.ranges(start, stop):
            dm = blocks.products(last - first)
            output_adjoint(dy[first:last], *grid, dm)
            v = blocks.tiles_of(x[first:last])
            du += np.matmul(v.transpose(0, 2, 1), dm)                 # (16, C, K)
            if need_dx:
                np.matmul(dm, u_t, out=v)                               # dV, in the tiles' place
                dxp = blocks.padded(last - first)
                dxp.fill(0)
                input_adjoint(v, *grid, dxp)
                np.copyto(dx[first:last], dxp[:, :, top:top + x.shape[2], left:left + x.shape[3]])
        return du

    shares = over_batch(n, share, elements=n * grid[0] * grid[1] * 16 * (c + k) * (2 if need_dx else 1))
    return dx, weight_adjoint(sum(shares))
