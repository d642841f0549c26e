"""Grad-CAM (Selvaraju et al. 2017): juanji's heat map against the same formula computed independently with
PyTorch autograd on the same weights; the default layer; bad layers; the show command."""
import numpy as np
import pytest
import torch
from png_check import read_png
from test_saliency import small_cnn

from juanji.cli import main
import juanji.nn as nn
from juanji.viz.gradcam import cell_centres, grad_cam, upsample


@pytest.mark.parametrize("layer, class_index", [("1", 0), ("0", 2), ("4", 4), (None, 1)])
def test_grad_cam_equals_relu_of_gradient_weighted_maps_from_torch(layer, class_index):
    model, reference = small_cnn()
    image = np.random.default_rng(2).normal(size=(3, 10, 10))
    cam, maps, weights, name = grad_cam(model, image, class_index, layer)
    assert name == (layer or "4")            # default: the last layer with maps that is not a pooling (Tanh)

    x = torch.from_numpy(image[None])        # independently: A from torch, ∂S_c/∂A by autograd
    stop = int(name) + 1
    a = reference[:stop](x)
    a.retain_grad()
    reference[stop:](a)[0, class_index].backward()
    alpha = a.grad[0].mean(dim=(1, 2))
    expected = torch.relu((alpha[:, None, None] * a[0]).sum(0)).detach().numpy()
    np.testing.assert_allclose(maps, a[0].detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(weights, alpha.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(cam, expected, rtol=1e-10, atol=1e-12)
    assert cam.shape == a.shape[2:] and cam.min() >= 0 and cam.max() > 0


def test_grad_cam_names_a_layer_that_is_not_there_or_has_no_maps():
    model, _ = small_cnn()
    image = np.zeros((3, 10, 10))
    with pytest.raises(ValueError, match="no layer named 'conv9'; the layers are 0, 1"):
        grad_cam(model, image, 0, "conv9")
    with pytest.raises(ValueError, match="layer 6 outputs shape"):
        grad_cam(model, image, 0, "6")


def test_show_gradcam_writes_a_png_over_the_image(tiny_run, boot_png, tmp_path, capsys):
    out = tmp_path / "cam.png"
    assert main(["show", "gradcam", str(tiny_run), str(boot_png), "--class", "Ankle boot", "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    read_png(out)
    assert main(["show", "gradcam", str(tiny_run), str(boot_png), "--layer", "9"]) == 2
    assert "outputs shape" in capsys.readouterr().err


def test_upsample_is_torch_bilinear_without_aligned_corners():
    heat = np.random.default_rng(5).random((5, 7))
    expected = torch.nn.functional.interpolate(torch.from_numpy(heat)[None, None], size=(28, 20), mode="bilinear",
                                               align_corners=False)[0, 0].numpy()
    np.testing.assert_allclose(upsample(heat, (28, 20)), expected, rtol=1e-12, atol=1e-12)


def test_cell_centres_are_the_centres_of_the_receptive_fields():
    """LeNet-5's geometry by hand (layer 3's cell i sits on pixel 4.5 + 2i), then checked by brute force: with
    positive weights and average pooling, ∂(cell i, j)/∂input is symmetric about the receptive field's centre."""
    model = nn.Sequential(nn.Conv2d(1, 1, 5, padding=2), nn.ReLU(), nn.AvgPool2d(2), nn.Conv2d(1, 1, 3, dilation=2),
                          nn.MaxPool2d(3, stride=2, padding=1)).to(np.float64)
    assert cell_centres(model, "2") == ((0.5, 2.0), (0.5, 2.0))
    assert cell_centres(model, "3") == ((4.5, 2.0), (4.5, 2.0))
    assert cell_centres(model, "4") == ((4.5, 4.0), (4.5, 4.0))       # (3 − 1)/2 − 1 = 0: the start stays
    for _, param, _ in model.parameters():
        param[...] = 1.0
    x = np.random.default_rng(6).random((1, 1, 28, 28)) + 0.1      # positive: every ReLU passes
    y = model[:4](x)
    d = np.zeros_like(y)
    d[0, 0, 5, 7] = 1
    for layer in reversed(list(model)[:4]):
        d = layer.backward(d)
    weight = np.abs(d[0, 0])
    rows, columns = np.indices(weight.shape)
    assert (rows * weight).sum() / weight.sum() == pytest.approx(4.5 + 2 * 5)
    assert (columns * weight).sum() / weight.sum() == pytest.approx(4.5 + 2 * 7)
    assert cell_centres(nn.Sequential(nn.Residual(nn.ReLU()), nn.ReLU()), "1") is None


def test_upsample_puts_each_cell_on_its_centre():
    heat = np.zeros((10, 10))
    heat[0, 9] = 1
    image = upsample(heat, (28, 28), ((4.5, 2.0), (4.5, 2.0)))
    assert image[4:6, 22:24].min() > 0.5 and image[4, 22] == image[5, 23]     # the cell between pixels 4/5, 22/23
    assert image[:, :20].max() == 0 and image[10:].max() == 0


def test_grad_cam_opens_nested_sequentials_like_vgg_features():
    model, reference = small_cnn()
    nested = nn.Sequential(nn.Sequential(*list(model)[:5]), nn.Sequential(*list(model)[5:]))
    image = np.random.default_rng(7).normal(size=(3, 10, 10))
    cam, _, _, name = grad_cam(nested, image, 3)
    assert name == "0.4"
    np.testing.assert_array_equal(cam, grad_cam(model, image, 3)[0])
    assert cell_centres(nested, "0.3") == cell_centres(model, "3") == ((2.5, 2.0), (2.5, 2.0))


def test_on_a_network_ending_in_global_average_pooling_grad_cam_is_cam():
    """Zhou et al.'s CAM, Σ_k w_ck A_k for a network conv … → global average pooling → linear, is what Grad-CAM
    generalises: there ∂S_c/∂A_kij = w_ck / (H'W') at every cell, so Grad-CAM = ReLU(CAM) / (H'W')."""
    rng = np.random.default_rng(11)
    model = nn.Sequential(nn.Conv2d(2, 5, 3, padding=1), nn.ReLU(), nn.GlobalAvgPool2d(), nn.Linear(5, 4))
    model.to(np.float64).eval()
    for _, param, _ in model.parameters():
        param[...] = rng.normal(size=param.shape)
    image = rng.normal(size=(2, 6, 6))
    cam, maps, weights, _ = grad_cam(model, image, 2)
    class_weights = model[3].params["weight"][2]
    np.testing.assert_allclose(weights, class_weights / 36, rtol=1e-12)
    np.testing.assert_allclose(cam, np.maximum(np.tensordot(class_weights, maps, axes=1), 0) / 36, rtol=1e-12)
