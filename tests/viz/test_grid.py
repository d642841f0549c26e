"""tile, to_unit and picture: the array helpers every picture is built from."""
import numpy as np

from juanji.viz.grid import picture, tile, to_unit


def test_tile_places_cells_row_by_row_with_nan_borders():
    cells = np.arange(5 * 2 * 3, dtype=float).reshape(5, 2, 3)
    grid = tile(cells, columns=2)
    assert grid.shape == (3 * 3 - 1, 2 * 4 - 1)
    for i, cell in enumerate(cells):
        top, left = (i // 2) * 3, (i % 2) * 4
        np.testing.assert_array_equal(grid[top:top + 2, left:left + 3], cell)
    assert np.isnan(grid[2]).all() and np.isnan(grid[:, 3]).all()      # borders
    assert np.isnan(grid[6:, 4:]).all()                                  # the unused sixth place


def test_tile_defaults_to_a_near_square_grid_of_colour_cells():
    assert tile(np.zeros((10, 4, 4, 3))).shape == (3 * 5 - 1, 4 * 5 - 1, 3)


def test_to_unit_stretches_to_0_1_and_maps_constants_to_0():
    np.testing.assert_allclose(to_unit([[-2.0, 0.0], [2.0, 1.0]]), [[0, 0.5], [1, 0.75]])
    np.testing.assert_array_equal(to_unit(np.full((2, 2), 7.0)), 0)


def test_picture_drops_or_moves_the_channel_axis():
    assert picture(np.zeros((1, 4, 5))).shape == (4, 5)
    assert picture(np.zeros((3, 4, 5))).shape == (4, 5, 3)
