"""Saliency maps and class models (Simonyan et al. 2013): the input gradient of the class score from juanji's
own backward pass, checked against PyTorch autograd; gradient ascent on the input; the show commands."""
import numpy as np
import pytest
import torch
from png_check import read_png

import juanji.nn as nn
from juanji.cli import main
from juanji.trained import TrainedModel
from juanji.viz.class_model import class_model
from juanji.viz.saliency import class_score_gradient, saliency_map


def small_cnn():
    """The same small CNN in juanji (float64, eval mode) and in torch with the weights copied over."""
    rng = np.random.default_rng(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(4, 6, 3), nn.Tanh(), nn.Flatten(), nn.Linear(6 * 3 * 3, 5)).to(np.float64)
    for _, param, _ in model.parameters():
        param[...] = rng.normal(scale=0.5, size=param.shape)
    model.eval()
    reference = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                                    torch.nn.Conv2d(4, 6, 3), torch.nn.Tanh(), torch.nn.Flatten(),
                                    torch.nn.Linear(6 * 3 * 3, 5)).double()
    reference.load_state_dict({k: torch.from_numpy(v) for k, v in model.state_dict().items()})
    return model, reference


@pytest.mark.parametrize("class_index", [0, 3])
def test_saliency_is_the_max_over_channels_of_the_input_gradient(class_index):
    model, reference = small_cnn()
    image = np.random.default_rng(1).normal(size=(3, 10, 10))
    saliency = saliency_map(model, image, class_index)
    assert saliency.shape == (10, 10)

    scores = model(image[None])                       # the network's own backward, from dS/dscores = one-hot(c)
    one_hot = np.zeros_like(scores)
    one_hot[0, class_index] = 1
    np.testing.assert_array_equal(saliency, np.abs(model.backward(one_hot)[0]).max(axis=0))

    x = torch.from_numpy(image[None]).requires_grad_()  # torch autograd: d score_c / d input
    reference(x)[0, class_index].backward()
    np.testing.assert_allclose(saliency, x.grad[0].abs().amax(dim=0).numpy(), rtol=1e-10, atol=1e-12)


def test_batched_class_gradients_are_each_images_own():
    model, _ = small_cnn()
    images = np.random.default_rng(2).normal(size=(3, 3, 10, 10))
    scores, gradients = class_score_gradient(model, images, [4, 0, 2])
    for i, c in enumerate([4, 0, 2]):
        single_scores, single = class_score_gradient(model, images[i:i + 1], c)
        np.testing.assert_allclose(gradients[i], single[0], rtol=1e-12)
        np.testing.assert_allclose(scores[i], single_scores[0], rtol=1e-12)


def test_a_first_layer_without_input_gradient_is_explained():
    model, _ = small_cnn()
    model[0].input_grad = False
    with pytest.raises(ValueError, match="first layer skips the input gradient"):
        saliency_map(model, np.zeros((3, 10, 10)), 0)


def test_gradient_ascent_raises_the_class_score_step_by_step(tiny_run):
    model = TrainedModel.load(tiny_run).model
    images, scores = class_model(model, [1, 7], steps=15)
    assert images.shape == (2, 1, 28, 28) and scores.shape == (16, 2)
    assert np.all(np.diff(scores, axis=0) > 0)                    # monotone over the first 15 steps
    assert np.all(scores[-1] > scores[0] + 1)
    final = model(images)[[0, 1], [1, 7]]
    np.testing.assert_allclose(scores[-1], final, rtol=1e-5)
    small, _ = class_model(model, [1, 7], steps=15, l2=5.0)      # a larger λ keeps the image smaller
    assert np.linalg.norm(small) < np.linalg.norm(images)


def test_class_model_follows_the_update_rule():
    model, _ = small_cnn()
    lr, l2 = 0.05, 0.3
    images, _ = class_model(model, 2, steps=2, lr=lr, l2=l2, noise=0.2, seed=5, input_shape=(3, 10, 10))
    expected = np.random.default_rng(5).normal(scale=0.2, size=(1, 3, 10, 10))
    for _ in range(2):
        _, gradient = class_score_gradient(model, expected, 2)
        expected = expected + lr * (gradient - 2 * l2 * expected)
    np.testing.assert_allclose(images, expected, rtol=1e-12)


def test_show_saliency_of_the_predicted_and_of_a_named_class(tiny_run, boot_png, tmp_path, capsys):
    assert main(["show", "saliency", str(tiny_run), str(boot_png)]) == 0
    assert capsys.readouterr().out.strip() == str(tiny_run / "saliency-boot.png")
    read_png(tiny_run / "saliency-boot.png")
    out = tmp_path / "s.png"
    assert main(["show", "saliency", str(tiny_run), str(boot_png), "--class", "sneaker", "--out", str(out)]) == 0
    read_png(out)


def test_show_class_model_of_one_class_and_of_all(tiny_run, tmp_path, capsys):
    assert main(["show", "class-model", str(tiny_run), "--class", "Trouser", "--steps", "20"]) == 0
    read_png(capsys.readouterr().out.strip(), min_width=150)
    out = tmp_path / "all.png"
    assert main(["show", "class-model", str(tiny_run), "--steps", "20", "--out", str(out)]) == 0
    pixels = read_png(out, min_width=800, min_height=400)         # 10 classes: 2 rows of 5
    assert pixels.shape[1] > pixels.shape[0]


def test_unknown_class_is_a_one_line_error(tiny_run, boot_png, capsys):
    assert main(["show", "saliency", str(tiny_run), str(boot_png), "--class", "Hat"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("juanji: error: unknown class 'Hat' (classes: T-shirt/top, Trouser,") and err.count("\n") == 1
