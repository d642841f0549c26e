"""The concept pages' figures, computed by juanji's own functions and drawn with matplotlib.

    python docs/figures/make_figures.py [OUT_DIR] [NAME ...]     # default: docs/images/figures

Every figure is two functions: ``data_NAME()`` returns the arrays it shows — made by the functions the
page teaches (``conv2d``, ``im2col``, ``max_pool2d_backward``, ``juanji.optim``...), which
tests/docs/test_figures.py compares with those functions — and ``draw_NAME(data, text, path)`` draws
them.  Each figure is written once per language, ``NAME.en.png`` and ``NAME.zh.png`` (``.gif`` where
motion is the point), its words taken from ``TEXT``.  A run takes a few seconds.
"""
from __future__ import annotations

import functools
import sys
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the headless backend)
from matplotlib.animation import FuncAnimation, PillowWriter  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

import juanji.nn as nn  # noqa: E402
from juanji import optim  # noqa: E402
from juanji import random as jrandom  # noqa: E402
from juanji.data import DataLoader, load_mnist  # noqa: E402
from juanji.data.images import load_image  # noqa: E402
from juanji.functional import (avg_pool2d, avg_pool2d_backward, conv2d, conv2d_backward,  # noqa: E402
                               conv_output_size, im2col, max_pool2d, max_pool2d_backward, relu,
                               relu_backward, sigmoid, sigmoid_backward, softmax, tanh, tanh_backward)
from juanji.functional.conv_transpose import conv_transpose2d  # noqa: E402
from juanji.models import create  # noqa: E402
from juanji.models.summary import summarize  # noqa: E402
from juanji.viz import feature_maps, map_grid  # noqa: E402
from juanji.viz.fonts import drawing_with_label_fonts  # noqa: E402

DOCS = Path(__file__).resolve().parents[1]
OUT = DOCS / "images" / "figures"
BOOT = DOCS / "images" / "ankle-boot.png"
LANGUAGES = ("en", "zh")

TEXT = {
    "en": {
        "sep": ", ", "image": "image", "kernel": "kernel", "feature map": "feature map", "input": "input",
        "output": "output", "channel": "channel", "sum": "sum of the channels", "padding": "padding",
        "stride": "stride", "dilation": "dilation",
        "im2col": "im2col: each 3×3 window becomes one column",
        "cols": "columns (C·R·S × H′·W′)", "position": "output position",
        "blur": "blur (box 3×3)", "sharpen": "sharpen", "vertical": "vertical edges",
        "horizontal": "horizontal edges", "original": "original",
        "pixels": "a 28×28 image is a matrix", "zoom": "rows 8–15, columns 8–15",
        "z": "Z = W ∗ A + b", "a": "A = ReLU(Z)",
        "shift": "input shifted 3 pixels right", "shifted map": "its map: the same, shifted",
        "dZ": "dZ", "dZ padded": "dZ padded by R − 1", "rot": "W rotated by 180°",
        "dA": "dA = full convolution", "W": "W",
        "max": "max pooling 2×2", "avg": "average pooling 2×2", "x": "X", "y": "Y", "mask": "dX: dY to the max",
        "split": "dX: dY / 4 to each", "dY": "dY",
        "activations": "activation g(z)", "derivatives": "derivative g′(z)",
        "valley": "f(x, y) = ½(x² + 25y²) from (1, 1)", "steps": "step", "at step": "step {}",
        "distance": "distance to the minimum", "epoch": "epoch", "lr": "learning rate",
        "schedules": "learning-rate schedules (juanji.optim, base lr 0.1)",
        "warmup": "warm-up 3 + cosine", "mix": "1×1 convolution: every pixel's 3 channels → 2 numbers",
        "rf": "receptive field of one output unit (its gradient on the input)",
        "layers": "3×3 layers", "pool": "2×2 average pool",
        "params": "parameters", "macs": "multiply-adds per image (1×28×28)",
        "zoo": "zoo models at 1×28×28",
        "lenet": "LeNet-5 (2 epochs on 2,000 images): the maps of the ankle boot",
        "conv1": "conv 1 + ReLU", "pool1": "max-pool 1", "conv2": "conv 2 + ReLU", "pool2": "max-pool 2",
        "prob": "P", "noise": "the change",
        "boot": "ankle boot", "bag": "bag", "fooled": "after the change",
        "x in": "input x", "stamps add": "the stamps add up",
        "stamp": "stride 2: each input pixel stamps the kernel, times its value, two cells further on",
        "zeros between": "the same: zeros between, padded by 2",
        "overlap 3": "overlaps: kernel 3, stride 2", "overlap 4": "overlaps: kernel 4, stride 2",
        "gather": "the same output from an ordinary convolution; how many stamps overlap on each cell",
        "uses": "how many output positions read each input pixel (stride 1)",
    },
    "zh": {
        "sep": "，", "image": "图像", "kernel": "卷积核", "feature map": "特征图", "input": "输入",
        "output": "输出", "channel": "通道", "sum": "各通道之和", "padding": "填充",
        "stride": "步幅", "dilation": "空洞率",
        "im2col": "im2col：每个 3×3 窗口变成一列",
        "cols": "列矩阵（C·R·S × H′·W′）", "position": "输出位置",
        "blur": "模糊（3×3 均值）", "sharpen": "锐化", "vertical": "竖直边缘",
        "horizontal": "水平边缘", "original": "原图",
        "pixels": "28×28 的图像就是矩阵", "zoom": "第 8–15 行、第 8–15 列",
        "z": "Z = W ∗ A + b", "a": "A = ReLU(Z)",
        "shift": "输入右移 3 个像素", "shifted map": "它的特征图：同样右移",
        "dZ": "dZ", "dZ padded": "dZ 四周填充 R − 1", "rot": "W 旋转 180°",
        "dA": "dA = 全卷积", "W": "W",
        "max": "2×2 最大池化", "avg": "2×2 平均池化", "x": "X", "y": "Y",
        "mask": "dX：dY 只给最大值",
        "split": "dX：每格分到 dY / 4", "dY": "dY",
        "activations": "激活函数 g(z)", "derivatives": "导数 g′(z)",
        "valley": "f(x, y) = ½(x² + 25y²)，从 (1, 1) 出发", "steps": "步数", "at step": "第 {} 步",
        "distance": "到最小值的距离", "epoch": "轮（epoch）", "lr": "学习率",
        "schedules": "学习率调度（juanji.optim，初始学习率 0.1）",
        "warmup": "预热 3 轮 + 余弦", "mix": "1×1 卷积：每个像素的 3 个通道 → 2 个数",
        "rf": "一个输出单元的感受野（它对输入的梯度）",
        "layers": "层 3×3", "pool": "2×2 平均池化",
        "params": "参数量", "macs": "每张图的乘加次数（1×28×28）",
        "zoo": "模型库中的模型（输入 1×28×28）",
        "lenet": "LeNet-5（在 2,000 张图像上训练 2 轮）：短靴的特征图",
        "conv1": "卷积 1 + ReLU", "pool1": "最大池化 1", "conv2": "卷积 2 + ReLU", "pool2": "最大池化 2",
        "prob": "P", "noise": "改动",
        "boot": "短靴", "bag": "包", "fooled": "改动之后",
        "x in": "输入 x", "stamps add": "各次盖印相加",
        "stamp": "步幅 2：每个输入像素把卷积核乘上自己的值盖印到输出上，每次后移两格",
        "zeros between": "等价做法：像素间插 0，四周填充 2",
        "overlap 3": "重叠次数：卷积核 3，步幅 2", "overlap 4": "重叠次数：卷积核 4，步幅 2",
        "gather": "同样的输出也可由普通卷积得到；每个输出格上叠了几次盖印",
        "uses": "每个输入像素被多少个输出位置读到（步幅 1）",
    },
}


# -- drawing helpers -----------------------------------------------------------------------------------
def numbers(ax, matrix, title="", cmap="Blues", fmt="{:g}", vmin=None, vmax=None, size=9):
    """A small matrix as coloured cells with its numbers written in them."""
    matrix = np.asarray(matrix, dtype=float)
    ax.imshow(matrix, cmap=cmap, vmin=vmin, vmax=vmax)
    scale = max(abs(np.nanmax(matrix)), abs(np.nanmin(matrix)), 1e-12)
    for (i, j), value in np.ndenumerate(matrix):
        if not np.isnan(value):
            dark = cmap == "Blues" and (value - (vmin or 0)) / ((vmax or scale) - (vmin or 0) or 1) > 0.6
            ax.text(j, i, fmt.format(value), ha="center", va="center", fontsize=size,
                    color="white" if dark else "black")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=10)


def picture(ax, array, title="", cmap="gray", vmin=None, vmax=None):
    ax.imshow(array, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=10)


def frame(ax, row, col, height, width, colour="red", lw=2.5):
    """A rectangle around cells [row, row + height) × [col, col + width) of an imshow'd matrix."""
    ax.add_patch(Rectangle((col - 0.5, row - 0.5), width, height, fill=False, ec=colour, lw=lw))


def save(figure, path):
    figure.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(figure)


def animate(figure, update, frames, path, fps=2):
    animation = FuncAnimation(figure, update, frames=frames)
    animation.save(path, writer=PillowWriter(fps=fps), dpi=60)
    plt.close(figure)


def boot() -> np.ndarray:
    """The bundled ankle boot (docs/images/ankle-boot.png) as (1, 1, 28, 28) float64 in [0, 1]."""
    return load_image(str(BOOT), channels=1, size=28)[None].astype(np.float64)


# -- images --------------------------------------------------------------------------------------------
def data_pixels():
    return {"image": boot()[0, 0]}


def draw_pixels(data, text, path):
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4.8), gridspec_kw={"width_ratios": [1, 1.4]})
    picture(left, data["image"], text["pixels"])
    frame(left, 8, 8, 8, 8)
    numbers(right, np.round(data["image"][8:16, 8:16] * 255), text["zoom"], cmap="gray", vmin=0, vmax=255,
            fmt="{:.0f}", size=8)
    for (i, j), value in np.ndenumerate(data["image"][8:16, 8:16]):
        right.texts[i * 8 + j].set_color("black" if value > 0.5 else "white")
    save(figure, path)


# -- convolution ---------------------------------------------------------------------------------------
EDGE = np.array([[1., 0., -1.], [1., 0., -1.], [1., 0., -1.]])


def data_conv_slide():
    image = np.zeros((6, 6))
    image[:, :3] = 10
    y, _ = conv2d(image[None, None], EDGE[None, None])
    return {"image": image, "kernel": EDGE, "map": y[0, 0]}


def draw_conv_slide(data, text, path):
    figure, axes = plt.subplots(1, 3, figsize=(10, 3.8), gridspec_kw={"width_ratios": [6, 3, 4]})
    out = data["map"]

    def update(step):
        i, j = divmod(step, out.shape[1])
        for ax in axes:
            ax.clear()
        numbers(axes[0], data["image"], text["image"], vmin=0, vmax=20)
        frame(axes[0], i, j, 3, 3)
        numbers(axes[1], data["kernel"], text["kernel"], cmap="coolwarm", vmin=-2, vmax=2)
        shown = np.full(out.shape, np.nan)
        shown.flat[:step + 1] = out.flat[:step + 1]
        numbers(axes[2], shown, text["feature map"], vmin=0, vmax=60)
        axes[2].set_xlim(-0.5, out.shape[1] - 0.5)
        axes[2].set_ylim(out.shape[0] - 0.5, -0.5)
        frame(axes[2], i, j, 1, 1)

    animate(figure, update, out.size, path)


def data_conv_channels():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 5, size=(1, 3, 6, 6)).astype(float)
    w = rng.integers(-1, 2, size=(1, 3, 3, 3)).astype(float)
    parts = [conv2d(x[:, c:c + 1], w[:, c:c + 1])[0][0, 0] for c in range(3)]
    return {"x": x[0], "w": w[0], "parts": np.stack(parts), "y": conv2d(x, w)[0][0, 0]}


def draw_conv_channels(data, text, path):
    figure, axes = plt.subplots(3, 4, figsize=(11, 8), gridspec_kw={"width_ratios": [6, 3, 4, 4]})
    for c in range(3):
        numbers(axes[c, 0], data["x"][c], f'{text["input"]}{text["sep"]}{text["channel"]} {c}', vmin=0, vmax=8)
        numbers(axes[c, 1], data["w"][c], f'{text["kernel"]}{text["sep"]}{text["channel"]} {c}', cmap="coolwarm",
                vmin=-2, vmax=2)
        numbers(axes[c, 2], data["parts"][c], f'{text["channel"]} {c}', cmap="Greens", vmin=-8, vmax=16)
        axes[c, 3].axis("off")
    numbers(axes[1, 3], data["y"], f'= {text["sum"]}', vmin=0, vmax=30)
    for c in range(3):
        frame(axes[c, 0], 0, 0, 3, 3)
        frame(axes[c, 2], 0, 0, 1, 1)
    frame(axes[1, 3], 0, 0, 1, 1)
    save(figure, path)


def data_im2col():
    x = np.arange(1, 17, dtype=float).reshape(1, 1, 4, 4)
    return {"x": x[0, 0], "cols": im2col(x, (3, 3), (1, 1), (1, 1), (2, 2))[0]}


def draw_im2col(data, text, path):
    figure, (left, right) = plt.subplots(1, 2, figsize=(8, 5.5), gridspec_kw={"width_ratios": [4, 4]})
    colours = ["red", "orange", "green", "purple"]
    numbers(left, data["x"], text["input"], vmin=0, vmax=30)
    for p, colour in enumerate(colours):
        i, j = divmod(p, 2)
        frame(left, i + 0.06 * p, j + 0.06 * p, 3, 3, colour, lw=2)
    numbers(right, data["cols"], text["cols"], vmin=0, vmax=30)
    for p, colour in enumerate(colours):
        frame(right, 0, p, 9, 1, colour, lw=2)
    right.set_xticks(range(4), [f"{divmod(p, 2)}" for p in range(4)], fontsize=8)
    right.set_xlabel(text["position"])
    figure.suptitle(text["im2col"])
    save(figure, path)


FILTERS = {
    "blur": np.full((3, 3), 1 / 9),
    "sharpen": np.array([[0., -1., 0.], [-1., 5., -1.], [0., -1., 0.]]),
    "vertical": np.array([[1., 0., -1.], [2., 0., -2.], [1., 0., -1.]]),     # Sobel
    "horizontal": np.array([[1., 2., 1.], [0., 0., 0.], [-1., -2., -1.]]),
}


def data_filters():
    image = boot()
    weight = np.stack(list(FILTERS.values()))[:, None]
    return {"image": image[0, 0], "maps": conv2d(image, weight, padding=1)[0][0]}


def draw_filters(data, text, path):
    figure, axes = plt.subplots(1, 5, figsize=(13, 3))
    picture(axes[0], data["image"], text["original"], vmin=0, vmax=1)
    for ax, name, fmap in zip(axes[1:], FILTERS, data["maps"]):
        edges = name in ("vertical", "horizontal")
        limit = np.abs(fmap).max()
        picture(ax, fmap, text[name], cmap="RdBu_r" if edges else "gray",
                vmin=-limit if edges else 0, vmax=limit if edges else 1)
    save(figure, path)


# -- padding, stride, dilation -------------------------------------------------------------------------
GEOMETRIES = (("padding", dict(size=5, padding=1, stride=1, dilation=1)),
              ("stride", dict(size=7, padding=0, stride=2, dilation=1)),
              ("dilation", dict(size=7, padding=0, stride=1, dilation=2)))


def data_window_geometry():
    """For each geometry, the input cells each output reads: ``windows[p]`` lists flat indices into the
    padded input, taken from im2col of a padded input whose cells hold their own index."""
    result = {}
    for name, g in GEOMETRIES:
        padded = g["size"] + 2 * g["padding"]
        index = np.arange(padded * padded, dtype=float).reshape(1, 1, padded, padded)
        out = conv_output_size(g["size"], 3, g["stride"], g["padding"], g["dilation"])
        cols = im2col(index, (3, 3), (g["stride"],) * 2, (g["dilation"],) * 2, (out, out))[0]
        result[name] = {"padded": padded, "out": out, "windows": cols.T.astype(int), **g}
    return result


def draw_window_geometry(data, text, path):
    figure, axes = plt.subplots(2, 3, figsize=(11, 6.5), gridspec_kw={"height_ratios": [7, 3]})
    frames = max(d["out"] ** 2 for d in data.values())
    panels = []                 # per geometry: (its data, input image, window cells, output image)
    for col, (name, d) in enumerate(data.items()):
        top, bottom = axes[0, col], axes[1, col]
        n = d["padded"]
        image = top.imshow(np.zeros((n, n)), cmap="Blues", vmin=0, vmax=3.5)
        cells = [top.add_patch(Rectangle((0, 0), 1, 1, fill=False, ec="red", lw=2)) for _ in range(9)]
        if d["padding"]:
            frame(top, d["padding"], d["padding"], d["size"], d["size"], "black", lw=1.5)
        top.set_xticks(np.arange(-0.5, n), minor=True)
        top.set_yticks(np.arange(-0.5, n), minor=True)
        top.grid(which="minor", color="white", lw=1)
        top.tick_params(which="both", length=0, labelbottom=False, labelleft=False)
        top.set_title(f"{text[name]} {d[name]}\n{d['size']}×{d['size']} → {d['out']}×{d['out']}", fontsize=10)
        output = bottom.imshow(np.zeros((d["out"], d["out"])), cmap="Reds", vmin=0, vmax=1.5)
        bottom.set_xticks([])
        bottom.set_yticks([])
        bottom.set_title(text["output"], fontsize=10)
        panels.append((d, image, cells, output))

    def update(step):
        for d, image, cells, output in panels:
            p, n = d["padding"], d["padded"]
            position = step % (d["out"] ** 2)
            grid = np.zeros((n, n))
            grid[p:n - p, p:n - p] = 1            # the input; the ring around it is padding
            for patch, cell in zip(cells, d["windows"][position]):
                grid.flat[cell] += 2
                row, col = divmod(cell, n)
                patch.set_xy((col - 0.5, row - 0.5))
            image.set_data(grid)
            out = np.zeros((d["out"], d["out"]))
            out.flat[position] = 1
            output.set_data(out)

    animate(figure, update, frames, path, fps=4)


def data_padding_uses(size=10):
    """How many output positions read each pixel of a size×size input, 3×3 and 5×5 kernels at stride 1, without
    padding and with 'same' padding: conv2d's input gradient for a kernel of ones and dY of ones (each output
    sends 1 to every pixel of its window)."""
    image = np.ones((1, 1, size, size))
    uses = {}
    for kernel in (3, 5):
        for padding in (0, (kernel - 1) // 2):
            y, cache = conv2d(image, np.ones((1, 1, kernel, kernel)), padding=padding)
            uses[kernel, padding] = conv2d_backward(np.ones_like(y), cache)[0][0, 0]
    return uses


def draw_padding_uses(data, text, path):
    figure, axes = plt.subplots(1, len(data), figsize=(16, 4.6))
    for ax, ((kernel, padding), uses) in zip(axes, data.items()):
        size = uses.shape[0]
        out = conv_output_size(size, kernel, padding=padding)
        same = ' ("same")' if padding else ""
        numbers(ax, uses, f'{kernel}×{kernel}{text["sep"]}{text["padding"]} {padding}{same}\n'
                          f'{size}×{size} → {out}×{out}', vmin=0, vmax=kernel * kernel, size=8)
    figure.suptitle(text["uses"])
    save(figure, path)


# -- the convolution layer ------------------------------------------------------------------------------
def data_layer_maps():
    layer = nn.Conv2d(1, 2, 3, padding=1)
    layer.params["weight"][...] = np.stack([FILTERS["vertical"], FILTERS["horizontal"]])[:, None]
    layer.params["bias"][...] = [-0.5, -0.5]
    image = boot().astype(np.float32)
    z = layer(image)
    return {"image": image[0, 0], "z": z[0], "a": relu(z)[0]}


def draw_layer_maps(data, text, path):
    figure, axes = plt.subplots(2, 3, figsize=(9, 6))
    picture(axes[0, 0], data["image"], text["input"])
    axes[1, 0].axis("off")
    limit = np.abs(data["z"]).max()
    for k, name in enumerate(("vertical", "horizontal")):
        picture(axes[k, 1], data["z"][k], f'{text["z"]}: {text[name]}', "RdBu_r", -limit, limit)
        picture(axes[k, 2], data["a"][k], text["a"], "gray", 0, limit)
    save(figure, path)


# -- weight sharing ------------------------------------------------------------------------------------
def data_shift():
    image = boot()
    shifted = np.roll(image, 3, axis=3)
    weight = FILTERS["vertical"][None, None]
    return {"image": image[0, 0], "shifted": shifted[0, 0], "map": conv2d(image, weight, padding=1)[0][0, 0],
            "shifted_map": conv2d(shifted, weight, padding=1)[0][0, 0]}


def draw_shift(data, text, path):
    figure, axes = plt.subplots(2, 2, figsize=(6.5, 6.5))
    limit = np.abs(data["map"]).max()
    picture(axes[0, 0], data["image"], text["input"])
    picture(axes[0, 1], data["map"], text["feature map"], "RdBu_r", -limit, limit)
    picture(axes[1, 0], data["shifted"], text["shift"])
    picture(axes[1, 1], data["shifted_map"], text["shifted map"], "RdBu_r", -limit, limit)
    save(figure, path)


# -- backpropagation -----------------------------------------------------------------------------------
def data_full_conv():
    x = np.arange(1, 10, dtype=float).reshape(1, 1, 3, 3)
    w = np.array([[[[1., 2.], [3., 4.]]]])
    _, cache = conv2d(x, w)
    dz = np.array([[[[1., -1.], [2., 0.]]]])
    dx, _, _ = conv2d_backward(dz, cache)
    return {"dz": dz[0, 0], "dz_padded": np.pad(dz[0, 0], 1), "w": w[0, 0], "rot": w[0, 0, ::-1, ::-1],
            "dx": dx[0, 0]}


def draw_full_conv(data, text, path):
    figure, axes = plt.subplots(1, 5, figsize=(14, 3.4), gridspec_kw={"width_ratios": [2, 2, 4, 2, 3]})
    dx = data["dx"]

    def update(step):
        i, j = divmod(step, dx.shape[1])
        for ax in axes:
            ax.clear()
        numbers(axes[0], data["dz"], text["dZ"], cmap="coolwarm", vmin=-3, vmax=3)
        numbers(axes[1], data["w"], text["W"], cmap="Oranges", vmin=0, vmax=6)
        numbers(axes[2], data["dz_padded"], text["dZ padded"], cmap="coolwarm", vmin=-3, vmax=3)
        frame(axes[2], i, j, 2, 2)
        numbers(axes[3], data["rot"], text["rot"], cmap="Oranges", vmin=0, vmax=6)
        shown = np.full(dx.shape, np.nan)
        shown.flat[:step + 1] = dx.flat[:step + 1]
        numbers(axes[4], shown, text["dA"], cmap="coolwarm", vmin=-10, vmax=10)
        axes[4].set_xlim(-0.5, dx.shape[1] - 0.5)
        axes[4].set_ylim(dx.shape[0] - 0.5, -0.5)
        frame(axes[4], i, j, 1, 1)

    animate(figure, update, dx.size, path, fps=1)


# -- pooling -------------------------------------------------------------------------------------------
def data_pool_backward():
    # the X and dY of the pooling page's code
    x = np.array([[1., 3., 2., 1.], [4., 2., 0., 1.], [5., 1., 3., 2.], [0., 2., 4., 6.]])[None, None]
    dy = np.array([[10., 20.], [30., 40.]])[None, None]
    y_max, max_cache = max_pool2d(x, 2)
    y_avg, avg_cache = avg_pool2d(x, 2)
    return {"x": x[0, 0], "dy": dy[0, 0], "max": y_max[0, 0], "avg": y_avg[0, 0],
            "dx_max": max_pool2d_backward(dy, max_cache)[0, 0], "dx_avg": avg_pool2d_backward(dy, avg_cache)[0, 0]}


def draw_pool_backward(data, text, path):
    figure, axes = plt.subplots(2, 4, figsize=(12, 6.4), gridspec_kw={"width_ratios": [4, 2, 2, 4]})
    for row, kind, dx, title in ((0, "max", "dx_max", "mask"), (1, "avg", "dx_avg", "split")):
        numbers(axes[row, 0], data["x"], f'{text["x"]}  ({text[kind]})', vmin=0, vmax=8)
        numbers(axes[row, 1], data[kind], text["y"], vmin=0, vmax=8, fmt="{:.3g}")
        numbers(axes[row, 2], data["dy"], text["dY"], cmap="Oranges", vmin=0, vmax=60)
        numbers(axes[row, 3], data[dx], text[title], cmap="Oranges", vmin=0, vmax=60)
        for ax in (axes[row, 0], axes[row, 3]):
            for i in (0, 2):
                for j in (0, 2):
                    frame(ax, i, j, 2, 2, "black", lw=1.5)
    save(figure, path)


# -- classifier: activations ---------------------------------------------------------------------------
def data_activations():
    z = np.linspace(-5, 5, 201)
    ones = np.ones_like(z)
    return {"z": z, "sigmoid": sigmoid(z), "tanh": tanh(z), "relu": relu(z),
            "d_sigmoid": sigmoid_backward(ones, sigmoid(z)), "d_tanh": tanh_backward(ones, tanh(z)),
            "d_relu": relu_backward(ones, z)}


def draw_activations(data, text, path):
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    for name in ("sigmoid", "tanh", "relu"):
        left.plot(data["z"], data[name], label=name)
        right.plot(data["z"], data["d_" + name], label=name)
    for ax, title in ((left, "activations"), (right, "derivatives")):
        ax.axhline(0, color="gray", lw=0.5)
        ax.axvline(0, color="gray", lw=0.5)
        ax.set_ylim(-1.2, 1.5)
        ax.set_xlabel("z")
        ax.set_title(text[title])
        ax.legend()
    save(figure, path)


# -- optimization ------------------------------------------------------------------------------------
OPTIMIZERS = {
    "SGD": lambda p: optim.SGD(p, lr=0.02),
    "momentum": lambda p: optim.SGD(p, lr=0.02, momentum=0.9),
    "Nesterov": lambda p: optim.SGD(p, lr=0.02, momentum=0.9, nesterov=True),
    "Adam": lambda p: optim.Adam(p, lr=0.1),
}


def valley_path(make_optimizer, steps=60):
    """The points visited by an optimizer on f(x, y) = ½(x² + 25y²) from (1, 1): (steps + 1, 2)."""
    point, grad = np.array([1.0, 1.0]), np.zeros(2)
    optimizer = make_optimizer([("point", point, grad)])
    path = [point.copy()]
    for _ in range(steps):
        grad[...] = [point[0], 25 * point[1]]
        optimizer.step()
        path.append(point.copy())
    return np.array(path)


def data_valley():
    return {name: valley_path(make) for name, make in OPTIMIZERS.items()}


def draw_valley(data, text, path, every=3):
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2), gridspec_kw={"width_ratios": [2, 1]})
    x, y = np.meshgrid(np.linspace(-1.2, 1.2, 200), np.linspace(-1.2, 1.2, 200))
    left.contour(x, y, 0.5 * (x ** 2 + 25 * y ** 2), levels=[0.02, 0.1, 0.5, 1, 2, 4, 8, 16], colors="lightgray")
    left.plot([0], [0], "k*", ms=10)
    steps = len(next(iter(data.values()))) - 1
    lines = []                  # per optimizer: (points, its path, its current point, its distance curve)
    for name, points in data.items():
        path_line, = left.plot([], [], ".-", ms=3, lw=1, label=name)
        colour = path_line.get_color()
        lines.append((points, path_line, left.plot([], [], "o", color=colour)[0],
                      right.semilogy([], [], color=colour)[0]))
    left.legend(fontsize=8, loc="upper left")
    title = left.set_title("", fontsize=10)
    right.set_xlim(0, steps)
    right.set_ylim(1e-3, 2)
    right.set_xlabel(text["steps"])
    right.set_ylabel(text["distance"])

    def update(frame_number):
        last = min(frame_number * every, steps)
        for points, path_line, point, distance in lines:
            path_line.set_data(points[:last + 1, 0], points[:last + 1, 1])
            point.set_data([points[last, 0]], [points[last, 1]])
            distance.set_data(np.arange(last + 1), np.hypot(points[:last + 1, 0], points[:last + 1, 1]))
        title.set_text(f'{text["valley"]}{text["sep"]}{text["at step"].format(last)}')

    animate(figure, update, steps // every + 1, path, fps=5)


SCHEDULES = {
    "StepLR(3, 0.5)": lambda o: optim.StepLR(o, step_size=3, gamma=0.5),
    "ExponentialLR(0.8)": lambda o: optim.ExponentialLR(o, gamma=0.8),
    "CosineAnnealingLR(10)": lambda o: optim.CosineAnnealingLR(o, T_max=10),
    "warmup": lambda o: optim.SequentialLR(o, [optim.LinearLR(o, start_factor=0.1, total_iters=3),
                                               optim.CosineAnnealingLR(o, T_max=7)], milestones=[3]),
}


def schedule(make_scheduler, epochs=10):
    """The lr of each epoch under a scheduler, as the optimization page's ``lrs``."""
    optimizer = optim.SGD([("w", np.zeros(1), np.zeros(1))], lr=0.1)
    scheduler = make_scheduler(optimizer)
    rates = []
    for _ in range(epochs):
        rates.append(optimizer.lr)
        scheduler.step()
    return np.array(rates)


def data_schedules():
    return {name: schedule(make) for name, make in SCHEDULES.items()}


def draw_schedules(data, text, path):
    figure, ax = plt.subplots(figsize=(7, 3.6))
    for name, rates in data.items():
        ax.plot(range(len(rates)), rates, "o-", label=text["warmup"] if name == "warmup" else name)
    ax.set_xlabel(text["epoch"])
    ax.set_ylabel(text["lr"])
    ax.set_title(text["schedules"], fontsize=10)
    ax.legend(fontsize=8)
    save(figure, path)


# -- 1×1 convolution -----------------------------------------------------------------------------------
def data_one_by_one():
    x = np.arange(27, dtype=float).reshape(1, 3, 3, 3) % 5
    w = np.array([[1., 0., -1.], [0.5, 0.5, 0.5]])
    return {"x": x[0], "w": w, "y": conv2d(x, w[:, :, None, None])[0][0]}


def draw_one_by_one(data, text, path):
    figure, axes = plt.subplots(1, 6, figsize=(15, 3), gridspec_kw={"width_ratios": [3, 3, 3, 3, 3, 3]})
    for c in range(3):
        numbers(axes[c], data["x"][c], f'{text["input"]}{text["sep"]}{text["channel"]} {c}', vmin=0, vmax=8)
        frame(axes[c], 1, 2, 1, 1)
    numbers(axes[3], data["w"], f'{text["kernel"]} (2 × 3)', cmap="coolwarm", vmin=-2, vmax=2)
    for k in range(2):
        numbers(axes[4 + k], data["y"][k], f'{text["output"]}{text["sep"]}{text["channel"]} {k}', cmap="coolwarm",
                vmin=-6, vmax=6, fmt="{:.3g}")
        frame(axes[4 + k], 1, 2, 1, 1)
    figure.suptitle(text["mix"])
    save(figure, path)


# -- receptive field -----------------------------------------------------------------------------------
def input_gradient(layers, size=15):
    """|∂y_centre / ∂x| of a stack of all-ones 3×3 convolutions (and poolings), on a size × size input."""
    model = nn.Sequential(*layers)
    for layer in model:
        if "weight" in layer.params:
            layer.params["weight"][...] = 1
    y = model(np.ones((1, 1, size, size)))
    dy = np.zeros_like(y)
    dy[0, 0, y.shape[2] // 2, y.shape[3] // 2] = 1
    return model.backward(dy)[0, 0]


def data_receptive_field():
    def convs(n):
        return [nn.Conv2d(1, 1, 3, padding=1, bias=False, dtype=np.float64) for _ in range(n)]
    return {"1": input_gradient(convs(1)), "2": input_gradient(convs(2)), "3": input_gradient(convs(3)),
            "pool": input_gradient([*convs(1), nn.AvgPool2d(2), *convs(1)], size=16)}


def draw_receptive_field(data, text, path):
    figure, axes = plt.subplots(1, 4, figsize=(13, 3.6))
    for ax, (name, grad) in zip(axes, data.items()):
        title = f'3×3 + {text["pool"]} + 3×3' if name == "pool" else f'{name} {text["layers"]}'
        picture(ax, grad, title, "magma", 0, grad.max())
        rows, cols = np.nonzero(grad)
        ax.set_xlabel(f"{cols.max() - cols.min() + 1}×{rows.max() - rows.min() + 1}")
    figure.suptitle(text["rf"])
    save(figure, path)


# -- transposed convolution ----------------------------------------------------------------------------
STAMP_COLOURS = ("red", "orange", "green", "purple")


def data_transposed_conv():
    """A 2×2 input and a 3×3 kernel, stride 2: each pixel's stamp (conv_transpose2d of that pixel alone),
    their sum, the same as zeros between + padding 2 + a convolution with rot180(W), and the overlap counts
    of kernels 3 and 4 at stride 2 (all-ones kernels on a 4×4 input of ones, padding 1)."""
    x = np.array([[1., 2.], [3., 4.]])[None, None]
    w = np.arange(1., 10.).reshape(1, 1, 3, 3)
    stamps, cover = [], []
    for p in range(4):
        alone = np.zeros_like(x)
        alone.flat[p] = x.flat[p]
        stamps.append(conv_transpose2d(alone, w, stride=2)[0][0, 0])
        cover.append(conv_transpose2d((alone != 0) * 1.0, np.ones_like(w), stride=2)[0][0, 0] > 0)
    spread = np.zeros((1, 1, 3, 3))
    spread[:, :, ::2, ::2] = x
    ones = np.ones((1, 1, 4, 4))
    return {"x": x[0, 0], "w": w[0, 0], "stamps": np.stack(stamps), "cover": np.stack(cover),
            "y": conv_transpose2d(x, w, stride=2)[0][0, 0], "spread": np.pad(spread[0, 0], 2),
            "rot": w[0, 0, ::-1, ::-1],
            "k3": conv_transpose2d(ones, np.ones((1, 1, 3, 3)), stride=2, padding=1)[0][0, 0],
            "k4": conv_transpose2d(ones, np.ones((1, 1, 4, 4)), stride=2, padding=1)[0][0, 0]}


def cell_grid(ax, rows, cols):
    """Light lines between the cells of an imshow'd rows × cols matrix, empty cells included."""
    ax.set_xlim(-0.5, cols - 0.5)
    ax.set_ylim(rows - 0.5, -0.5)
    ax.set_xticks(np.arange(-0.5, cols), minor=True)
    ax.set_yticks(np.arange(-0.5, rows), minor=True)
    ax.grid(which="minor", color="lightgrey", lw=0.8)
    ax.set_axisbelow(True)                  # the lines over the image, under the frames
    ax.tick_params(which="both", length=0)


def draw_transposed_conv(data, text, path):
    figure = plt.figure(figsize=(15, 7))
    top, bottom = figure.subfigures(2, 1, height_ratios=[0.8, 1.2])
    axes = top.subplots(1, 7, gridspec_kw={"width_ratios": [2, 3, 5, 5, 5, 5, 5]})
    numbers(axes[0], data["x"], text["x in"], cmap="Greys", vmin=0, vmax=12)
    numbers(axes[1], data["w"], text["W"], cmap="Oranges", vmin=0, vmax=18)
    numbers(axes[6], data["y"], f'= {text["stamps add"]}', vmin=0, vmax=60)
    for p, colour in enumerate(STAMP_COLOURS):
        i, j = divmod(p, 2)
        frame(axes[0], i, j, 1, 1, colour)
        numbers(axes[2 + p], np.where(data["cover"][p], data["stamps"][p], np.nan), f"x[{i}, {j}] · W",
                vmin=0, vmax=60)
        cell_grid(axes[2 + p], 5, 5)
        frame(axes[2 + p], 2 * i, 2 * j, 3, 3, colour)
        frame(axes[6], 2 * i + 0.06 * p, 2 * j + 0.06 * p, 3, 3, colour, lw=2)
    top.suptitle(text["stamp"])
    axes = bottom.subplots(1, 5, gridspec_kw={"width_ratios": [7, 3, 5, 7, 8]})
    numbers(axes[0], data["spread"], text["zeros between"], cmap="Greys", vmin=0, vmax=12)
    for label, value in zip(axes[0].texts, data["spread"].flat):
        label.set_color("black" if value else "silver")
    cell_grid(axes[0], 7, 7)
    axes[0].add_patch(Rectangle((1.5, 1.5), 3, 3, fill=False, ec="grey", lw=1.5, ls="--"))
    frame(axes[0], 1, 2, 3, 3, "black")                 # the window of output (1, 2)
    numbers(axes[1], data["rot"], text["rot"], cmap="Oranges", vmin=0, vmax=18)
    numbers(axes[2], data["y"], f'= {text["output"]}', vmin=0, vmax=60)
    frame(axes[2], 1, 2, 1, 1, "black")
    numbers(axes[3], data["k3"], text["overlap 3"], cmap="Purples", vmin=0, vmax=6)
    numbers(axes[4], data["k4"], text["overlap 4"], cmap="Purples", vmin=0, vmax=6)
    bottom.suptitle(text["gather"])
    save(figure, path)


# -- architectures -------------------------------------------------------------------------------------
ZOO = ("lenet5", "vgg_small", "resnet20", "resnet56", "densenet_bc_40", "mobilenet_v1")


def data_zoo():
    sizes = {}
    for name in ZOO:
        model = create(name, num_classes=10, in_channels=1, input_size=28)
        rows = summarize(model, (1, 28, 28))
        sizes[name] = (sum(r.params for r in rows), sum(r.macs for r in rows))
    return sizes


def draw_zoo(data, text, path):
    figure, ax = plt.subplots(figsize=(7, 4.2))
    for name, (params, macs) in data.items():
        ax.scatter(params, macs)
        ax.annotate(name, (params, macs), textcoords="offset points", xytext=(5, 4), fontsize=9)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(text["params"])
    ax.set_ylabel(text["macs"])
    ax.set_title(text["zoo"], fontsize=10)
    save(figure, path)


# -- visualizing: a fooling image ----------------------------------------------------------------------
@functools.cache
def quick_lenet(limit=2000, epochs=2):
    """LeNet-5 trained for two epochs on 2,000 Fashion-MNIST images (inputs in [0, 1]): about a second."""
    jrandom.seed(0)
    model = create("lenet5")
    loss_fn = nn.CrossEntropyLoss()
    optimizer = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    loader = DataLoader(load_mnist(train=True, limit=limit), batch_size=64, shuffle=True, seed=0)
    for epoch in range(epochs):
        loader.set_epoch(epoch)
        for x, y in loader:
            loss_fn(model(x), y)
            model.backward(loss_fn.backward())
            optimizer.step()
    return model.eval()


def fool(model, image, target, step=0.01, steps=100, confidence=0.99):
    """Gradient ascent on log p(target) from ``image`` (1, C, H, W), each pixel kept in [0, 1], until
    the model gives ``target`` ``confidence``: the fooled image and the probabilities before and after."""
    x = image.copy()
    before = softmax(model(image))[0]
    for _ in range(steps):
        p = softmax(model(x))[0]
        if p[target] >= confidence:
            break
        dlogits = -p[None].copy()                 # ∂ log p_t / ∂ logits = onehot(t) − p
        dlogits[0, target] += 1
        x = np.clip(x + step * np.sign(model.backward(dlogits)), 0, 1).astype(np.float32)
    return x, before, softmax(model(x))[0]


LENET_MAPS = {"1": "conv1", "2": "pool1", "4": "conv2", "5": "pool2"}   # layer name → label key


def data_lenet_maps():
    model = quick_lenet()
    image = boot().astype(np.float32)[0]
    return {"image": image[0], **feature_maps(model, image, layers=list(LENET_MAPS))}


def draw_lenet_maps(data, text, path):
    figure, axes = plt.subplots(1, 5, figsize=(15, 3.6), gridspec_kw={"width_ratios": [1, 1.2, 1.2, 1.6, 1.6]})
    picture(axes[0], data["image"], f'{text["input"]} 1×28×28', vmin=0, vmax=1)
    for ax, (name, key) in zip(axes[1:], LENET_MAPS.items()):
        maps = data[name]
        grid = map_grid(maps)
        ax.imshow(grid, cmap=plt.get_cmap("gray").with_extremes(bad="#a8c4e0"), interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f'{text[key]}\n{maps.shape[0]}×{maps.shape[1]}×{maps.shape[2]}', fontsize=10)
    figure.suptitle(text["lenet"], y=1.08)
    save(figure, path)


def data_fooling():
    model = quick_lenet()
    image = boot().astype(np.float32)
    fooled, before, after = fool(model, image, target=8)       # 8: bag
    return {"image": image[0, 0], "fooled": fooled[0, 0], "before": before, "after": after}


def draw_fooling(data, text, path):
    figure, axes = plt.subplots(1, 3, figsize=(9, 3.6))
    change = data["fooled"] - data["image"]
    picture(axes[0], data["image"], f'{text["boot"]}\n{text["prob"]}({text["boot"]}) = {data["before"][9]:.2f}',
            vmin=0, vmax=1)
    limit = max(np.abs(change).max(), 1e-6)
    picture(axes[1], change, text["noise"], "RdBu_r", -limit, limit)
    picture(axes[2], data["fooled"], f'{text["fooled"]}\n{text["prob"]}({text["bag"]}) = {data["after"][8]:.2f}',
            vmin=0, vmax=1)
    save(figure, path)


# ------------------------------------------------------------------------------------------------------
ANIMATED = {"conv_slide", "window_geometry", "full_conv", "valley"}
NAMES = ("pixels", "conv_slide", "conv_channels", "im2col", "filters", "window_geometry", "layer_maps",
         "padding_uses", "shift", "full_conv", "pool_backward", "activations", "valley", "schedules", "one_by_one",
         "receptive_field", "transposed_conv", "zoo", "lenet_maps", "fooling")


def file_name(name: str, language: str) -> str:
    """``conv_slide``, ``zh`` → ``conv-slide.zh.gif``: the name the pages link to."""
    return f"{name.replace('_', '-')}.{language}.{'gif' if name in ANIMATED else 'png'}"


def make(names=NAMES, out=OUT, languages=LANGUAGES) -> list[Path]:
    """Compute each figure's data once, draw it in every language; returns the files written."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with drawing_with_label_fonts():   # Chinese labels need a CJK font: fonts-wqy-zenhei (the Makefile)
        for name in names:
            data = globals()[f"data_{name}"]()
            for language in languages:
                path = out / file_name(name, language)
                globals()[f"draw_{name}"](data, TEXT[language], path)
                written.append(path)
    return written


if __name__ == "__main__":
    arguments = sys.argv[1:]
    target = Path(arguments.pop(0)) if arguments and not arguments[0] in NAMES else OUT
    for written_path in make(arguments or NAMES, target):
        print(written_path)
