"""The U-Net and its segmentation task: its skip connection and the whole network against torch twins
written layer for layer, gradients by finite differences, shapes and names, the fashion-masks task's masks, a
short real training reaching a mean IoU far above an all-background predictor's, ``juanji show masks``, and the ONNX export."""
import json
from collections import OrderedDict

import numpy as np
import pytest
import torch

from finite_difference import check_layer
from juanji import models, nn
from juanji import random as jrandom
from juanji.cli import main
from juanji.data import segmentation, write_idx
from juanji.data.datasets import load_mnist
from juanji.metrics import confusion_matrix, mean_iou
from juanji.models.unet import skip
from layer_check import compare_with_torch, randomise_state


def randomise_buffers(model, rng):
    """Running statistics away from (0, 1), so that a batch norm used wrongly in eval mode would show; the
    parameters keep their He initialisation (large random weights put finite differences across ReLU kinks)."""
    for module in model.modules():
        for key, buffer in module.buffers.items():
            if buffer.dtype.kind == "f":
                buffer[...] = rng.uniform(0.5, 1.5, buffer.shape) if "var" in key else rng.normal(0, 0.2, buffer.shape)


class TorchSkip(torch.nn.Module):
    """torch's U-Net skip, written out: y = cat([x, down(x)], dim=1), children named as juanji's."""

    def __init__(self, down):
        super().__init__()
        self.skip, self.down = torch.nn.Identity(), down

    def forward(self, x):
        return torch.cat([self.skip(x), self.down(x)], dim=1)


def juanji_level():
    return skip(nn.Sequential(OrderedDict(pool=nn.MaxPool2d(2), conv=nn.Conv2d(3, 4, 3, padding=1),
                                          bn=nn.BatchNorm2d(4), relu=nn.ReLU(),
                                          up=nn.ConvTranspose2d(4, 2, 2, stride=2))))


def torch_level():
    t = torch.nn
    return TorchSkip(t.Sequential(OrderedDict(pool=t.MaxPool2d(2), conv=t.Conv2d(3, 4, 3, padding=1),
                                              bn=t.BatchNorm2d(4), relu=t.ReLU(),
                                              up=t.ConvTranspose2d(4, 2, 2, stride=2))))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_skip_connection_equals_torch(dtype):
    jrandom.seed(0)
    module = juanji_level().to(dtype)
    randomise_state(module)
    x = np.random.default_rng(1).standard_normal((2, 3, 8, 8)).astype(dtype)
    y = compare_with_torch(module, torch_level(), x, steps=2)
    assert y.shape == (2, 5, 8, 8)


def test_skip_connection_passes_x_through_and_splits_the_gradient():
    module = skip(nn.Conv2d(3, 2, 1)).to(np.float64)
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 4))
    y = module(x)
    np.testing.assert_array_equal(y[:, :3], x)                  # the skip half is x itself
    dy = np.random.default_rng(1).standard_normal(y.shape)
    conv = module.down
    expected = dy[:, :3] + np.einsum("nkhw,kc->nchw", dy[:, 3:], conv.params["weight"][:, :, 0, 0])
    np.testing.assert_allclose(module.backward(dy), expected, rtol=1e-12)


def test_skip_connection_gradients_by_finite_differences():
    jrandom.seed(0)
    module = juanji_level().to(np.float64).eval()     # eval: BN a fixed affine map, differentiable everywhere
    randomise_state(module)
    x = np.random.default_rng(2).standard_normal((2, 3, 6, 6))
    check_layer(module, x, samples=8)


def torch_double_conv(in_channels, channels):
    t = torch.nn
    return t.Sequential(OrderedDict(
        conv1=t.Conv2d(in_channels, channels, 3, padding=1, bias=False), bn1=t.BatchNorm2d(channels), relu1=t.ReLU(),
        conv2=t.Conv2d(channels, channels, 3, padding=1, bias=False), bn2=t.BatchNorm2d(channels), relu2=t.ReLU()))


def torch_unet(num_classes, in_channels, base_channels):
    """The U-Net of juanji.models.unet written in torch from its docstring's picture, names as juanji's."""
    t, (b1, b2, b3) = torch.nn, (base_channels, 2 * base_channels, 4 * base_channels)
    level2 = t.Sequential(OrderedDict(pool=t.MaxPool2d(2), bottleneck=torch_double_conv(b2, b3),
                                      up=t.ConvTranspose2d(b3, b2, 2, stride=2)))
    level1 = t.Sequential(OrderedDict(pool=t.MaxPool2d(2), enc2=torch_double_conv(b1, b2), level2=TorchSkip(level2),
                                      dec2=torch_double_conv(2 * b2, b2), up=t.ConvTranspose2d(b2, b1, 2, stride=2)))
    return t.Sequential(OrderedDict(enc1=torch_double_conv(in_channels, b1), level1=TorchSkip(level1),
                                    dec1=torch_double_conv(2 * b1, b1), head=t.Conv2d(b1, num_classes, 1)))


@pytest.mark.parametrize("dtype, training", [(np.float64, True), (np.float64, False), (np.float32, True)])
def test_whole_unet_equals_its_torch_twin(dtype, training):
    """Logits, dx, every parameter gradient and every running statistic, two steps, float64 ≤ 1e-10."""
    jrandom.seed(0)
    model = models.create("unet", num_classes=4, in_channels=2, input_size=12, base_channels=3).to(dtype)
    randomise_state(model.train(training), seed=5)
    x = np.random.default_rng(6).standard_normal((3, 2, 12, 12)).astype(dtype)
    y = compare_with_torch(model, torch_unet(4, 2, 3), x, steps=2)
    assert y.shape == (3, 4, 12, 12)


def test_whole_unet_gradients_by_finite_differences():
    jrandom.seed(0)
    model = models.create("unet", num_classes=3, input_size=8, base_channels=2).to(np.float64).eval()
    randomise_buffers(model, np.random.default_rng(4))
    check_layer(model, np.random.default_rng(3).standard_normal((1, 1, 8, 8)), samples=6)


@pytest.mark.parametrize("in_channels, size", [(1, 28), (3, 32), (1, 12)])
def test_unet_shapes_and_names(in_channels, size):
    model = models.create("unet", num_classes=11, in_channels=in_channels, input_size=size)
    assert model.input_shape == (in_channels, size, size)
    y = model(np.zeros((2, in_channels, size, size), dtype=np.float32))
    assert y.shape == (2, 11, size, size) and y.dtype == np.float32
    names = [name for name, _, _ in model.parameters()]
    assert names[0] == "enc1.conv1.weight" and names[-1] == "head.bias"
    assert "level1.down.level2.down.bottleneck.conv2.weight" in names
    assert "level1.down.up.weight" in names and "level1.down.dec2.conv1.weight" in names
    assert model.state_dict()["level1.down.level2.down.up.weight"].shape == (64, 32, 2, 2)
    assert models.is_segmentation("unet") and not models.is_segmentation("lenet5")


def test_unet_refuses_a_size_it_cannot_halve_twice():
    with pytest.raises(ValueError, match="input_size must be divisible by 4"):
        models.create("unet", input_size=30)
    with pytest.raises(ValueError, match="base_channels must be a positive int"):
        models.create("unet", base_channels=0)


def test_garment_masks_follow_the_threshold_and_the_class():
    images = np.array([[[[0.0, 0.2, 0.21], [1.0, 0.1, 0.5]]], [[[0.3, 0.0, 0.0], [0.0, 0.0, 0.9]]]])
    masks = segmentation.garment_masks(images, np.array([0, 9]))
    np.testing.assert_array_equal(masks, [[[0, 0, 1], [1, 0, 1]], [[10, 0, 0], [0, 0, 10]]])
    assert masks.dtype == np.int64


def test_fashion_masks_task_on_the_real_data():
    train, test = segmentation.load_task("fashion-masks", limit=500)
    assert len(train) == 500 and len(test) == 10_000
    assert train.classes == ["background", "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                             "Shirt", "Sneaker", "Bag", "Ankle boot"]
    images = load_mnist(train=True, limit=500)
    assert train.labels.shape == (500, 28, 28) and train.labels.dtype == np.int64
    bright = images.images[:, 0] > segmentation.THRESHOLD
    np.testing.assert_array_equal(train.labels > 0, bright)
    np.testing.assert_array_equal(train.labels[bright], np.broadcast_to(images.labels[:, None, None] + 1,
                                                                        bright.shape)[bright])
    per_image = [set(np.unique(mask)) - {0} for mask in train.labels]
    assert all(len(found) == 1 for found in per_image)          # one garment per image, every one visible
    assert 0.35 < (train.labels > 0).mean() < 0.5              # about 42 % of the pixels are garment
    with pytest.raises(ValueError, match="--limit must be at least 1"):
        segmentation.load_task("fashion-masks", limit=0)


def test_mean_iou_counts_the_classes_present():
    truth = np.array([0, 0, 1, 1, 2])
    guess = np.array([0, 1, 1, 1, 0])
    # IoU: class 0: 1 / 3, class 1: 2 / 3, class 2: 0 / 1; class 3 absent from both, left out
    assert mean_iou(confusion_matrix(truth, guess, 4)) == pytest.approx((1 / 3 + 2 / 3 + 0) / 3)


@pytest.mark.parametrize("args, fragment", [
    (["--model", "unet"], "--model unet labels every pixel: add --data fashion-masks"),
    (["--data", "fashion-masks"], "--data fashion-masks is masks, which only a segmentation model reads: "
                                  "--model unet"),
    (["--model", "unet", "--data", "words"], "--model unet labels every pixel: add --data fashion-masks"),
    (["--model", "text_cnn", "--data", "fashion-masks"], "--model text_cnn reads words: add --data words"),
    (["--model", "unet", "--data", "fashion-masks", "--augment", "flip"], "--augment moves an image but not its mask"),
])
def test_a_segmentation_model_needs_a_segmentation_task_and_back(tmp_path, capsys, args, fragment):
    assert main(["train", *args, "--out", str(tmp_path / "run"), "--no-progress"]) == 2
    assert fragment in capsys.readouterr().err


def small_fashion(root, train=1500, test=500):
    """The first images of Fashion-MNIST's splits as IDX files in a folder named like it (class names)."""
    root.mkdir()
    for split, count in (("train", train), ("t10k", test)):
        data = load_mnist(train=split == "train", limit=count)
        write_idx(root / f"{split}-images-idx3-ubyte", (data.images[:, 0] * 255).round().astype(np.uint8))
        write_idx(root / f"{split}-labels-idx1-ubyte", data.labels.astype(np.uint8))
    return root


@pytest.mark.slow
def test_short_training_beats_the_all_background_baseline_and_shows_and_exports(tmp_path, monkeypatch, capsys):
    """2 epochs on 1,500 images (500 test images): the mean IoU is several times an all-background predictor's."""
    monkeypatch.setenv("JUANJI_DATA", str(small_fashion(tmp_path / "fashion-subset")))
    out = tmp_path / "run"
    assert main(["train", "--model", "unet", "--data", "fashion-masks", "--epochs", "2", "--optimizer", "adam",
                 "--lr", "0.003", "--schedule", "none", "--batch-size", "32", "--out", str(out),
                 "--no-progress"]) == 0
    printed = capsys.readouterr().out
    history = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in history] == [1, 2] and all("test_mean_iou" in m for m in history)
    assert f"test mean IoU {history[-1]['test_mean_iou']:.4f}" in printed
    _, test = segmentation.load_task("fashion-masks")
    assert len(test) == 500
    k = len(test.classes)
    baseline = mean_iou(confusion_matrix(test.labels, np.zeros_like(test.labels), k))
    assert baseline < 0.06                          # background's IoU (≈ 0.58) over 11 classes present
    assert history[-1]["test_mean_iou"] > 3 * baseline, (history, baseline)     # 0.2 … 0.3 against 0.05
    assert history[-1]["test_accuracy"] > 0.6       # per pixel

    assert main(["train", "--model", "unet", "--data", "fashion-masks", "--epochs", "3", "--optimizer", "adam",
                 "--lr", "0.003", "--schedule", "none", "--batch-size", "32", "--out", str(out), "--resume",
                 "--no-progress"]) == 0
    assert "epoch  3/3" in capsys.readouterr().out

    png = tmp_path / "masks.png"
    assert main(["show", "masks", str(out), "--count", "5", "--out", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["show", "misclassified", str(out)]) == 2
    assert "see 'juanji show masks'" in capsys.readouterr().err

    assert main(["eval", str(out)]) == 0
    assert "mean IoU" in capsys.readouterr().out


def test_show_masks_refuses_a_classifier(tmp_path, capsys):
    from juanji import checkpoint as ckpt
    model = models.create("lenet5", num_classes=10, in_channels=1, input_size=28)
    ckpt.save(tmp_path / "lenet.npz", model, epoch=1, config={"data": None})
    assert main(["show", "masks", str(tmp_path / "lenet.npz")]) == 2
    assert "not a segmentation run" in capsys.readouterr().err


def test_unet_runs_in_onnxruntime_as_in_juanji(tmp_path):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from juanji.interop.onnx import export
    jrandom.seed(0)
    model = models.create("unet", num_classes=11, in_channels=1, input_size=28).eval()
    rng = np.random.default_rng(0)
    randomise_buffers(model, rng)
    export(model, tmp_path / "unet.onnx")
    x = rng.standard_normal((3, 1, 28, 28)).astype(np.float32)
    session = ort.InferenceSession(str(tmp_path / "unet.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(None, {"input": x})[0]
    assert got.shape == (3, 11, 28, 28)
    np.testing.assert_allclose(got, model(x), atol=1e-4, rtol=0)
