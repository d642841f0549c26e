"""Where the time of ResNet-20's 3×3 convolutions goes, im2col against Winograd F(2×2, 3×3), and the choices
of ``juanji/functional/compiled/winograd.py`` measured: one process, float32, batch 128, best of 7 calls.

    python bench/winograd_study.py [--threads 1] [--batch 128] > bench/results/winograd_study.txt

For each of ResNet-20's three stages (16 channels at 32×32, 32 at 16×16, 64 at 8×8) it prints:
- im2col: the forward's column copy and its GEMM alone, and juanji's NumPy conv2d forward and backward;
- Winograd: the input transform, the 16 GEMMs and the output transform alone (over the whole batch), and
  the compiled conv2d forward and backward, which go a block of samples at a time (``plan.WINOGRAD_BLOCK_BYTES`` of
  tiles), against the same with the whole batch in one block;
- the 16 GEMMs with the tiles laid out (16, T, C), as juanji does, against (16, C, T);
- the input transform writing 16 planes exactly 2^k bytes apart against planes skewed by 64 bytes;
- the float32 error of the direct method, of F(2×2, 3×3) and of F(4×4, 3×3) (36 products per 4×4 output
  tile, in NumPy here, not in juanji) against float64, relative to the largest output.
It first prints the command, the machine and the date, as every stored output under ``bench/results/`` does.
Needs Numba (``pip install 'juanji[fast]'``).
"""
import argparse
import os
import sys
import time

# as ``python -m juanji.bench`` times: without the variables that pin OpenBLAS to slower kernels
for variable in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
    os.environ.pop(variable, None)

import numpy as np  # noqa: E402

import juanji  # noqa: E402
from juanji.bench.report import machine_description, provenance  # noqa: E402
from juanji.functional import conv, plan  # noqa: E402
from juanji.functional.compiled import winograd  # noqa: E402
from juanji.functional.geometry import pad2d  # noqa: E402
from juanji.runtime import kernels  # noqa: E402
from juanji.runtime.allocator import keep_freed_memory  # noqa: E402
from juanji.runtime.workspace import Workspace  # noqa: E402

STAGES = ((16, 32), (32, 16), (64, 8))


def best_ms(function, repeats=7):
    function()
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - started)
    return best * 1e3


def layer_ms(backend, x, w, kernel_plan=None):
    """(forward, backward) ms of conv2d on ``backend``'s kernels (by ``kernel_plan`` where given), with
    workspaces as the layer keeps them."""
    kernels.set_kernels(backend)
    workspace, scratch = Workspace(), Workspace()
    y, cache = conv.conv2d(x, w, None, 1, 1, workspace=workspace, scratch=scratch, plan=kernel_plan)
    dy = np.random.default_rng(1).standard_normal(y.shape, dtype=np.float32)
    return (best_ms(lambda: conv.conv2d(x, w, None, 1, 1, workspace=workspace, scratch=scratch, plan=kernel_plan)),
            best_ms(lambda: conv.conv2d_backward(dy, cache, scratch=scratch)))


def study(batch, channels, size):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, channels, size, size), dtype=np.float32)
    w = rng.standard_normal((channels, channels, 3, 3), dtype=np.float32)
    xp = pad2d(x, ((1, 1), (1, 1)))
    cols = np.empty((batch, channels * 9, size * size), np.float32)
    y = np.empty((batch, channels, size * size), np.float32)
    flat = w.reshape(channels, -1)
    copy = best_ms(lambda: conv.im2col(xp, (3, 3), (1, 1), (1, 1), (size, size), cols))
    gemm = best_ms(lambda: np.matmul(flat, cols, out=y))
    numpy_fwd, numpy_bwd = layer_ms("numpy", x, w)

    th = tw = size // 2
    tiles = batch * th * tw
    skewed = winograd.tile_planes(None, "", tiles, channels, np.float32)
    aligned = np.empty((16, tiles, channels), np.float32)
    products = winograd.tile_planes(None, "", tiles, channels, np.float32)
    u = winograd.weight_transform(w)
    bias = np.zeros(channels, np.float32)
    out = np.empty_like(x)
    transform_in = best_ms(lambda: winograd.input_transform(xp, th, tw, skewed))
    transform_in_aligned = best_ms(lambda: winograd.input_transform(xp, th, tw, aligned))
    products_ms = best_ms(lambda: np.matmul(skewed, u, out=products))
    transform_out = best_ms(lambda: winograd.output_transform(products, th, tw, bias, out))
    channel_major = np.ascontiguousarray(skewed.transpose(0, 2, 1))
    products_cm = np.empty((16, channels, tiles), np.float32)
    u_t = np.ascontiguousarray(u.transpose(0, 2, 1))
    products_channel_major = best_ms(lambda: np.matmul(u_t, channel_major, out=products_cm))
    winograd_fwd, winograd_bwd = layer_ms("numba", x, w)
    blocked_samples = max(1, plan.WINOGRAD_BLOCK_BYTES // (16 * th * tw * channels * 4))
    whole_batch = plan.ConvPlan("winograd", "winograd", "winograd", block_bytes=1 << 62)
    whole_fwd, whole_bwd = layer_ms("numba", x, w, whole_batch)

    print(f"\n{channels} channels at {size}×{size}, batch {batch}:")
    print(f"  im2col:   column copy {copy:6.2f}  GEMM {gemm:6.2f}  | conv2d forward {numpy_fwd:6.2f}  "
          f"backward {numpy_bwd:6.2f} ms")
    print(f"  Winograd: input transform {transform_in:6.2f}  16 GEMMs {products_ms:6.2f}  output transform "
          f"{transform_out:6.2f}  | conv2d forward {winograd_fwd:6.2f}  backward {winograd_bwd:6.2f} ms")
    print(f"  Winograd blocks of {blocked_samples} samples: conv2d forward {winograd_fwd:6.2f}  backward "
          f"{winograd_bwd:6.2f} ms; the whole batch in one block: forward {whole_fwd:6.2f}  backward {whole_bwd:6.2f} ms")
    print(f"  16 GEMMs, tiles (16, T, C): {products_ms:6.2f} ms; (16, C, T): {products_channel_major:6.2f} ms")
    print(f"  input transform into planes 2^k bytes apart: {transform_in_aligned:6.2f} ms; skewed by 64 bytes: "
          f"{transform_in:6.2f} ms (plane size {tiles * channels * 4 / 2**20:.2f} MiB)")


# F(4×4, 3×3)'s matrices (Lavin & Gray 2015), for its float32 error only
B4_T = np.array([[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0], [0, -2, -1, 2, 1, 0],
                 [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]])
G4 = np.array([[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6], [1 / 24, 1 / 12, 1 / 6],
               [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]])
A4_T = np.array([[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]])


def winograd_4x4(x, w, dtype):
    """y of a 3×3 convolution padded by 1 (H and W multiples of 4) by F(4×4, 3×3), every step in ``dtype``."""
    n, c, h, width = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1))).astype(dtype)
    tiles = np.empty((n, c, h // 4, width // 4, 6, 6), dtype)
    for a in range(6):
        for b in range(6):
            tiles[..., a, b] = xp[:, :, a:a + h:4, b:b + width:4]
    bt, g, at = (m.astype(dtype) for m in (B4_T, G4, A4_T))
    v = np.einsum("ai,nctuij,bj->nctuab", bt, tiles, bt)
    u = np.einsum("ar,kcrs,bs->kcab", g, w.astype(dtype), g)
    m = np.einsum("nctuab,kcab->nktuab", v, u)
    y = np.einsum("ia,nktuab,jb->nktuij", at, m, at)
    return y.transpose(0, 1, 2, 4, 3, 5).reshape(n, -1, h, width)


def float32_errors(channels, size, batch=8):
    """{method: max |y − y64| / max |y64|} of a He-scaled 3×3 layer, y64 the float64 result."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, channels, size, size))
    w = rng.standard_normal((channels, channels, 3, 3)) * np.sqrt(2 / (9 * channels))
    kernels.set_kernels("numpy")
    truth = conv.conv2d(x, w, None, 1, 1)[0]
    x32, w32 = x.astype(np.float32), w.astype(np.float32)
    results = {"direct (im2col)": conv.conv2d(x32, w32, None, 1, 1)[0]}
    kernels.set_kernels("numba")
    results["F(2×2, 3×3)"] = conv.conv2d(x32, w32, None, 1, 1)[0]
    results["F(4×4, 3×3)"] = winograd_4x4(x, w, np.float32)
    return {name: np.abs(y - truth).max() / np.abs(truth).max() for name, y in results.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=128)
    args = parser.parse_args()
    if not kernels.numba_available():
        parser.error("needs Numba: pip install 'juanji[fast]'")
    keep_freed_memory()
    juanji.set_num_threads(args.threads)
    plan.COMPILED_MIN_ELEMENTS = 0
    print("\n".join(provenance(" ".join(["python bench/winograd_study.py", *sys.argv[1:]]),
                                machine_description(dict(os.environ)))) + "\n")
    print(f"threads: {args.threads} (the transforms and GEMMs alone run on this thread; conv2d splits the batch)")
    for channels, size in STAGES:
        study(args.batch, channels, size)
    print("\nfloat32 error against float64, relative to the largest output (batch 8):")
    for channels, size in STAGES:
        errors = float32_errors(channels, size)
        listed = ", ".join(f"{name} {error:.1e}" for name, error in errors.items())
        print(f"  {channels} channels at {size}×{size}: {listed}")


if __name__ == "__main__":
    main()
