"""Kernel grids: each cell holds its kernel after the stated scaling; ``juanji show kernels``."""
import numpy as np
import pytest
from png_check import read_png

from juanji.cli import main
from juanji.models import create
from juanji.viz.kernels import conv_layers, kernel_grid


def _cell(grid, row, column, kh, kw):
    return grid[row * (kh + 1):row * (kh + 1) + kh, column * (kw + 1):column * (kw + 1) + kw]


@pytest.mark.parametrize("scale", ["shared", "kernel"])
def test_one_row_per_kernel_one_column_per_channel(scale):
    weight = np.random.default_rng(0).normal(size=(4, 3, 5, 3)).astype(np.float32)
    grid = kernel_grid(weight, scale)
    assert grid.shape == (4 * 6 - 1, 3 * 4 - 1)
    for k in range(4):
        m = np.abs(weight).max() if scale == "shared" else np.abs(weight[k]).max()
        for c in range(3):
            np.testing.assert_allclose(_cell(grid, k, c, 5, 3), 0.5 + weight[k, c] / (2 * m), atol=1e-6)
    assert np.isnan(grid[5]).all() and np.isnan(grid[:, 3]).all()
    assert 0 <= np.nanmin(grid) and np.nanmax(grid) <= 1 and np.nanmax(np.abs(grid - 0.5)) == pytest.approx(0.5)


def test_per_kernel_scale_gives_every_kernel_the_full_range():
    weight = np.random.default_rng(1).normal(size=(3, 2, 3, 3)) * np.array([1, 10, 100])[:, None, None, None]
    grid = kernel_grid(weight, "kernel")
    for k in range(3):
        rows = grid[k * 4:k * 4 + 3]
        assert np.nanmax(np.abs(rows - 0.5)) == pytest.approx(0.5)
    shared = kernel_grid(weight, "shared")
    assert np.nanmax(np.abs(shared[:3] - 0.5)) < 0.05            # the small first kernel is nearly gray


def test_single_channel_kernels_form_a_near_square_grid():
    weight = np.random.default_rng(2).normal(size=(6, 1, 5, 5))
    grid = kernel_grid(weight)
    assert grid.shape == (2 * 6 - 1, 3 * 6 - 1)
    np.testing.assert_allclose(_cell(grid, 1, 2, 5, 5), 0.5 + weight[5, 0] / (2 * np.abs(weight).max()))


def test_rgb_composite_puts_the_three_channels_of_a_kernel_in_one_colour_cell():
    weight = np.random.default_rng(3).normal(size=(4, 3, 3, 3))
    grid = kernel_grid(weight, "kernel", rgb=True)
    assert grid.shape == (2 * 4 - 1, 2 * 4 - 1, 3)
    for k in range(4):
        cell = _cell(grid, k // 2, k % 2, 3, 3)
        np.testing.assert_allclose(cell, 0.5 + weight[k].transpose(1, 2, 0) / (2 * np.abs(weight[k]).max()))


def test_zero_and_bad_weights():
    np.testing.assert_array_equal(kernel_grid(np.zeros((2, 2, 3, 3)))[:3, :3], 0.5)
    with pytest.raises(ValueError, match="expected a conv weight"):
        kernel_grid(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="scale must be one of"):
        kernel_grid(np.zeros((2, 2, 3, 3)), "layer")
    with pytest.raises(ValueError, match="needs 3 input channels"):
        kernel_grid(np.zeros((2, 2, 3, 3)), rgb=True)


def test_conv_layers_of_lenet5():
    assert [name for name, _ in conv_layers(create("lenet5"))] == ["0", "3"]


def test_show_kernels_writes_the_first_layer_into_the_run(tiny_run, capsys):
    assert main(["show", "kernels", str(tiny_run)]) == 0
    path = tiny_run / "kernels-0.png"
    assert capsys.readouterr().out.strip() == str(path)
    read_png(path)


def test_show_kernels_of_a_named_layer_with_per_kernel_scale(tiny_run, tmp_path, capsys):
    out = tmp_path / "k.png"
    assert main(["show", "kernels", str(tiny_run / "best.npz"), "--layer", "3", "--scale", "kernel",
                 "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    pixels = read_png(out, min_height=600)                        # 16 rows of kernels: a tall picture
    assert pixels.shape[0] > pixels.shape[1]


def test_show_kernels_of_an_unknown_layer_is_a_one_line_error(tiny_run, capsys):
    assert main(["show", "kernels", str(tiny_run), "--layer", "7"]) == 2
    err = capsys.readouterr().err
    assert err == "juanji: error: no convolution layer named '7'; the convolution layers are 0, 3\n"
