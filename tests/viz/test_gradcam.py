"""Grad-CAM (Selvaraju et al. 2017): juanji's heat map against the same formula computed independently with
PyTorch autograd on the same weights; the default layer; bad layers; the show command."""
import numpy as np
import pytest
import torch
from png_check import read_png
from test_saliency import small_cnn

from juanji.cli import main
from juanji.viz.gradcam import grad_cam, upsample


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
    with pytest.raises(ValueError, match="no top-level layer named 'conv9'; the layers are 0, 1"):
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
