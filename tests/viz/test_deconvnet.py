"""ZFNet's deconvnet: juanji's projection against PyTorch autograd on the same weights with each ReLU's backward
replaced by a ReLU of the signal (Zeiler & Fergus's "rectification"), and against the gradient where no ReLU is."""
import numpy as np
import pytest
import torch
from png_check import read_png
from test_saliency import small_cnn

from juanji.cli import main
from juanji.viz.deconvnet import deconvnet


@pytest.mark.parametrize("layer, channel", [("3", 4), ("2", 1), ("1", 3)])
def test_projection_is_the_backward_pass_with_rectified_signals(layer, channel):
    model, reference = small_cnn()
    image = np.random.default_rng(8).normal(size=(3, 10, 10))
    projection, (i, j) = deconvnet(model, image, layer, channel)

    for module in reference:
        if isinstance(module, torch.nn.ReLU):
            module.register_full_backward_hook(lambda m, grad_in, grad_out: (torch.relu(grad_out[0]),))
    x = torch.from_numpy(image[None]).requires_grad_()
    y = reference[:int(layer) + 1](x)
    assert (i, j) == np.unravel_index(y[0, channel].argmax().item(), y.shape[2:])     # the strongest activation
    signal = torch.zeros_like(y)
    signal[0, channel, i, j] = y[0, channel, i, j].detach()
    y.backward(signal)
    np.testing.assert_allclose(projection, x.grad[0].numpy(), rtol=1e-10, atol=1e-12)
    assert np.abs(projection).max() > 0


def test_without_relu_the_projection_is_the_activation_times_its_gradient():
    model, _ = small_cnn()
    image = np.random.default_rng(9).normal(size=(3, 10, 10))
    projection, (i, j) = deconvnet(model, image, "0", 2, position=(3, 7))
    y = model[0](image[None])
    d = np.zeros_like(y)
    d[0, 2, 3, 7] = 1
    np.testing.assert_allclose(projection, y[0, 2, 3, 7] * model[0].backward(d)[0], rtol=1e-12)
    assert (i, j) == (3, 7)
    with pytest.raises(ValueError, match="has maps 0…3, not 4"):
        deconvnet(model, image, "0", 4)
    with pytest.raises(ValueError, match="not feature maps"):
        deconvnet(model, image, "6", 0)


def test_show_deconv_draws_every_map_of_a_layer(tiny_run, boot_png, tmp_path, capsys):
    out = tmp_path / "deconv.png"
    assert main(["show", "deconv", str(tiny_run), str(boot_png), "--layer", "3", "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    read_png(out)
