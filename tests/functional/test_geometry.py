"""The shared window geometry: output sizes against torch, padding resolution, pad/unpad, window views."""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

from juanji.functional import geometry as G


@pytest.mark.parametrize("size, kernel, stride, padding, dilation, expected", [
    (8, 3, 2, 1, 1, 4), (9, 3, 3, 1, 1, 3), (7, 3, 1, 0, 2, 3), (5, 7, 1, 1, 1, 1), (28, 5, 1, 2, 1, 28)])
def test_conv_output_size(size, kernel, stride, padding, dilation, expected):
    assert G.conv_output_size(size, kernel, stride, padding, dilation) == expected
    x = torch.zeros(1, 1, size, size)
    w = torch.zeros(1, 1, kernel, kernel)
    assert TF.conv2d(x, w, stride=stride, padding=padding, dilation=dilation).shape[-1] == expected


def test_output_size_with_uneven_padding_is_that_of_the_padded_input():
    assert G.output_size(7, 4, 1, (1, 2)) == G.output_size(7 + 3, 4) == 7       # 'same' for an even kernel
    assert G.output_shape((7, 9), (4, 3), (2, 1), ((1, 2), (0, 0)), (1, 2)) == (4, 5)


@pytest.mark.parametrize("size, kernel, stride, padding, dilation, ceil_mode", [
    (8, 3, 2, 0, 1, False), (8, 3, 2, 0, 1, True), (5, 2, 3, 1, 1, True), (7, 3, 2, 1, 1, True),
    (9, 2, 2, 0, 2, True), (6, 2, 2, 0, 1, True), (10, 4, 3, 2, 1, True)])
def test_pool_output_size_matches_torch(size, kernel, stride, padding, dilation, ceil_mode):
    expected = TF.max_pool2d(torch.zeros(1, 1, size, size), kernel, stride, padding, dilation,
                             ceil_mode=ceil_mode).shape[-1]
    assert G.pool_output_size(size, kernel, stride, padding, dilation, ceil_mode) == expected


@pytest.mark.parametrize("kernel, dilation, expected", [
    ((3, 3), (1, 1), ((1, 1), (1, 1))), ((4, 2), (1, 1), ((1, 2), (0, 1))),
    ((4, 3), (2, 3), ((3, 3), (3, 3))), ((2, 5), (3, 1), ((1, 2), (2, 2)))])
def test_resolve_same_padding_puts_the_extra_pixel_after(kernel, dilation, expected):
    assert G.resolve_padding("same", kernel, dilation) == expected
    assert G.resolve_padding("valid", kernel, dilation) == ((0, 0), (0, 0))
    assert G.resolve_padding((2, 1), kernel, dilation) == ((2, 2), (1, 1))


@pytest.mark.parametrize("padding", ["full", "SAME", -1, (1, -2), (1, 2, 3), 1.5])
def test_resolve_padding_rejects_bad_values(padding):
    with pytest.raises((ValueError, TypeError), match="padding"):
        G.resolve_padding(padding, (3, 3), (1, 1))


@pytest.mark.parametrize("value", [1.5, None, (1,), (1, 2, 3), "2", (1, 2.0)])
def test_pair_names_what_it_rejects(value):
    with pytest.raises(TypeError, match="stride must be an int or a pair of ints"):
        G.pair(value, "stride")


def test_check_window_fits_reports_the_padded_size_and_the_dilated_kernel():
    G.check_window_fits((3, 3), (3, 3), ((0, 0), (0, 0)), (1, 1))
    with pytest.raises(ValueError, match=r"input of spatial size \(2, 3\) \(padded to \(4, 3\)\) is smaller "
                                         r"than the dilated kernel \(5, 1\)"):
        G.check_window_fits((2, 3), (3, 1), ((1, 1), (0, 0)), (2, 1))


def test_pad2d_and_unpad2d_are_inverse_and_pad_with_the_value():
    x = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)
    pads = ((1, 2), (0, 3))
    xp = G.pad2d(x, pads, value=-1)
    assert xp.shape == (2, 3, 7, 8) and (xp == -1).sum() == xp.size - x.size
    np.testing.assert_array_equal(G.unpad2d(xp, pads), x)
    assert G.pad2d(x, ((0, 0), (0, 0))) is x


def test_window_view_and_window_at_read_the_same_pixels():
    xp = np.arange(2 * 2 * 9 * 8, dtype=np.float64).reshape(2, 2, 9, 8)
    kernel, stride, dilation = (3, 2), (2, 3), (2, 1)
    out = G.output_shape(xp.shape[2:], kernel, stride, ((0, 0), (0, 0)), dilation)
    view = G.window_view(xp, kernel, stride, dilation, out)
    for r, s in np.ndindex(*kernel):
        np.testing.assert_array_equal(view[:, :, r, s], G.window_at(xp, (r, s), stride, dilation, out))
    for n, c, r, s, i, j in np.ndindex(*view.shape):
        assert view[n, c, r, s, i, j] == xp[n, c, i * stride[0] + r * dilation[0], j * stride[1] + s * dilation[1]]
