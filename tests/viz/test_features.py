"""Feature maps after a network's layers (nested Sequentials opened, as every picture walks them);
``juanji show features``."""
import numpy as np
import pytest
from png_check import read_png

import juanji.nn as nn
from juanji.cli import main
from juanji.trained import TrainedModel
from juanji.models import create
from juanji.viz.features import feature_maps, map_grid
from juanji.viz.grid import to_unit


def test_default_layers_are_those_that_output_maps_and_hold_their_outputs():
    model = create("lenet5").eval()
    image = np.random.default_rng(0).random((1, 28, 28), dtype=np.float32)
    maps = feature_maps(model, image)
    assert list(maps) == ["0", "1", "2", "3", "4", "5"]          # conv, relu, pool, conv, relu, pool
    x = image[None]
    for name, layer in model.named_children():
        x = layer(x)
        if name in maps:
            np.testing.assert_array_equal(maps[name], x[0])
    assert maps["0"].shape == (6, 28, 28) and maps["5"].shape == (16, 5, 5)


def test_nested_sequentials_are_opened_as_in_every_picture():
    model = create("vgg11", in_channels=1, input_size=32, num_classes=10).eval()
    maps = feature_maps(model, np.zeros((1, 32, 32), np.float32))
    assert list(maps)[:3] == ["features.0", "features.1", "features.2"]
    assert maps["features.0"].shape == (64, 32, 32)


def test_chosen_layers_only():
    model = create("lenet5").eval()
    maps = feature_maps(model, np.zeros((1, 28, 28), np.float32), ["4", "1"])
    assert list(maps) == ["1", "4"]


@pytest.mark.parametrize("layers, message", [
    (["0", "conv9"], r"no layer named 'conv9'; the layers are 0 \(Conv2d\), 1 \(ReLU\)"),
    (["7"], r"layer 7 \(Linear\) outputs shape \(120,\), not feature maps"),
])
def test_bad_layer_names(layers, message):
    with pytest.raises(ValueError, match=message):
        feature_maps(create("lenet5"), np.zeros((1, 28, 28), np.float32), layers)


def test_a_model_that_is_not_a_chain_is_refused():
    with pytest.raises(ValueError, match="pictures layer by layer follow a Sequential model, not a Residual"):
        feature_maps(nn.Residual(nn.ReLU()), np.zeros((1, 4, 4), np.float32))


def test_map_grid_tiles_a_layer_on_one_scale():
    maps = np.random.default_rng(1).normal(size=(5, 4, 3))
    grid = map_grid(maps)
    assert grid.shape == (2 * 5 - 1, 3 * 4 - 1)
    np.testing.assert_allclose(grid[5:9, 4:7], to_unit(maps)[4])     # the fifth map: second row, second column
    assert np.nanmin(grid) == 0 and np.nanmax(grid) == 1


def test_show_features_of_an_image(tiny_run, boot_png, capsys):
    assert main(["show", "features", str(tiny_run), str(boot_png)]) == 0
    path = capsys.readouterr().out.strip()
    assert path == str(tiny_run / "features-boot.png")
    read_png(path, min_width=600, min_height=300)


def test_show_features_of_chosen_layers(tiny_run, boot_png, tmp_path, capsys):
    out = tmp_path / "f.png"
    assert main(["show", "features", str(tiny_run / "best.npz"), str(boot_png), "--layers", "0,3",
                 "--out", str(out)]) == 0
    read_png(out)


def test_show_features_of_a_bad_layer_is_a_one_line_error(tiny_run, boot_png, capsys):
    assert main(["show", "features", str(tiny_run), str(boot_png), "--layers", "9"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("juanji: error: layer 9 (Linear) outputs shape (84,)") and err.count("\n") == 1


def test_the_real_model_computes_the_same_maps_as_its_forward_pass(tiny_run, boot_png):
    model = TrainedModel.load(tiny_run).model
    image = np.random.default_rng(2).random((1, 28, 28), dtype=np.float32)
    maps = feature_maps(model, image, ["5"])
    np.testing.assert_array_equal(maps["5"], model[:6](image[None])[0])
