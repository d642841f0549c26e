"""The layer table of ``juanji summary``: totals equal the model's, MACs follow the formulas."""
import pytest

from juanji import models, nn
from juanji.cli import main
from juanji.models.summary import format_summary, summarize


@pytest.mark.parametrize("name, kwargs", [
    ("lenet5", {}), ("resnet20", {}), ("densenet_bc_100", {"input_size": 28, "in_channels": 1}),
    ("mobilenet_v1", {"input_size": 32}), ("googlenet", {"aux_logits": True, "input_size": 32}),
    ("convnext_tiny", {"input_size": 32}),                  # its blocks hold their layer scales themselves
])
def test_total_parameters_equal_the_model(name, kwargs):
    model = models.create(name, **kwargs)
    rows = summarize(model)
    assert sum(r.params for r in rows) == model.num_parameters()
    assert model.training           # summarize restores the mode


def test_conv_and_linear_macs_follow_the_formula():
    model = nn.Sequential(nn.Conv2d(3, 8, 5, stride=2, padding=1), nn.ReLU(),
                          nn.Conv2d(8, 8, 3, padding=1, groups=4), nn.Flatten(), nn.Linear(8 * 15 * 15, 7))
    rows = summarize(model, (3, 32, 32))
    conv, _, grouped, flatten, fc = rows
    assert conv.output_shape == (8, 15, 15)             # ⌊(32 + 2 − 5)/2⌋ + 1
    assert conv.macs == 8 * 15 * 15 * (3 * 5 * 5)       # K·H'·W' · C·R·S
    assert grouped.macs == 8 * 15 * 15 * (8 // 4 * 3 * 3)
    assert fc.macs == 8 * 15 * 15 * 7 and flatten.macs == 0
    assert conv.params == 8 * 3 * 25 + 8


@pytest.mark.parametrize("name, gmacs", [("resnet50", 4.09), ("googlenet", 1.50), ("mobilenet_v1", 0.57),
                                         ("mobilenet_v2", 0.30), ("mobilenet_v3_small", 0.06),
                                         ("efficientnet_b0", 0.39), ("convnext_tiny", 4.46)])
def test_macs_at_224_are_the_published_ones(name, gmacs):
    """torchvision's documented "GFLOPS" (which count multiply-adds) and MobileNet's 569 M mult-adds."""
    rows = summarize(models.create(name))
    assert round(sum(r.macs for r in rows) / 1e9, 2) == gmacs


def test_layers_not_run_in_eval_are_listed():
    rows = summarize(models.create("googlenet", aux_logits=True, input_size=32, num_classes=10))
    assert {r.name.split(".")[0] for r in rows if r.output_shape is None} == {"aux1", "aux2"}


def test_cli_summary_prints_the_table(capsys):
    assert main(["summary", "resnet20", "--input", "1x28x28", "--num-classes", "5"]) == 0
    out = capsys.readouterr().out
    model = models.create("resnet20", num_classes=5, in_channels=1, input_size=28)
    assert f"Total params: {model.num_parameters():,}" in out
    assert "layer3.2.conv2" in out and "64×7×7" in out and "fc  " in out
    table = format_summary(summarize(model), (1, 28, 28))
    assert table in out


def test_cli_summary_rejects_a_bad_shape(capsys):
    assert main(["summary", "lenet5", "--input", "28x28"]) == 2
    assert "1x28x28" in capsys.readouterr().err


def test_cli_models_lists_every_model(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for name in models.names():
        assert f"{name} " in out
