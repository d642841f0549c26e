"""Occlusion sensitivity (Zeiler & Fergus 2014): the map against occluded copies run one by one through the
PyTorch twin of the model; on a linear model, occluding the most salient region lowers the score most."""
import numpy as np
import pytest
import torch
from png_check import read_png
from test_saliency import small_cnn

import juanji.nn as nn
from juanji.cli import main
from juanji.viz.occlusion import occlusion_map, pixel_map
from juanji.viz.saliency import class_score_gradient


@pytest.mark.parametrize("size, stride", [(3, 1), (4, 3), (10, 1)])
def test_occlusion_map_is_the_class_probability_with_the_square_at_each_place(size, stride):
    model, reference = small_cnn()
    image = np.random.default_rng(3).normal(size=(3, 10, 10))
    result = occlusion_map(model, image, 2, size=size, stride=stride, value=0.5, batch_size=5)
    side = (10 - size) // stride + 1
    assert result.shape == (side, side)
    for i in range(side):
        for j in range(side):
            copy = image.copy()
            copy[:, i * stride:i * stride + size, j * stride:j * stride + size] = 0.5
            probability = torch.softmax(reference(torch.from_numpy(copy[None])), dim=1)[0, 2].item()
            assert result[i, j] == pytest.approx(probability, rel=1e-12)


def test_occluding_the_most_salient_region_lowers_the_score_most():
    """For S_c = wᵀI + b, occluding a square with 0 lowers S_c by Σ_square w·I = Σ_square (∂S_c/∂I)·I: the
    square with the largest gradient × input loses the most, and the map gives exactly that drop."""
    rng = np.random.default_rng(4)
    model = nn.Sequential(nn.Flatten(), nn.Linear(2 * 12 * 12, 3)).to(np.float64).eval()
    for _, param, _ in model.parameters():
        param[...] = rng.normal(size=param.shape)
    image = rng.random((2, 12, 12))
    image[:, 2:6, 7:11] += 3                          # one bright region: large gradient × input there
    scores, gradient = class_score_gradient(model, image[None], 1)
    result = occlusion_map(model, image, 1, size=4, stride=1, output="score")
    contribution = gradient[0] * image
    drops = np.array([[contribution[:, i:i + 4, j:j + 4].sum() for j in range(9)] for i in range(9)])
    np.testing.assert_allclose(scores[0, 1] - result, drops, rtol=1e-10, atol=1e-10)
    assert np.unravel_index(result.argmin(), result.shape) == np.unravel_index(drops.argmax(), drops.shape)


def test_occlusion_checks_its_arguments():
    model, _ = small_cnn()
    image = np.zeros((3, 10, 10))
    with pytest.raises(ValueError, match="occluder size must be between 1 and 10"):
        occlusion_map(model, image, 0, size=11)
    with pytest.raises(ValueError, match="stride must be at least 1"):
        occlusion_map(model, image, 0, stride=0)
    with pytest.raises(ValueError, match="output must be one of probability, score"):
        occlusion_map(model, image, 0, output="logits")


def test_show_occlusion_writes_a_png(tiny_run, boot_png, tmp_path, capsys):
    out = tmp_path / "occlusion.png"
    assert main(["show", "occlusion", str(tiny_run), str(boot_png), "--size", "8", "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    read_png(out)
    assert main(["show", "occlusion", str(tiny_run), str(boot_png), "--size", "40"]) == 2
    assert "occluder size must be between 1 and 28" in capsys.readouterr().err


def test_pixel_map_averages_the_squares_over_each_pixel():
    result = np.array([[1.0, 2.0], [3.0, 4.0]])
    pixels = pixel_map(result, (1, 4, 4), size=3, stride=1)
    assert pixels[0, 0] == 1 and pixels[3, 3] == 4 and pixels[1, 1] == 2.5 and pixels[0, 1] == 1.5
    assert pixel_map(result, (1, 5, 5), size=2, stride=2)[4, 4] == 2.5      # no square there: the mean
