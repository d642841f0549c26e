"""The memory estimate that guards model building: its table is the models' true size, and it bounds from above."""
import pytest

from juanji import models
from juanji.model_memory import check_model_memory
from juanji.models.summary import AT_DEFAULTS, estimate_memory, measure

BIG = {"alexnet", "zfnet", "spp_net", "densenet121", "googlenet", "mobilenet_v1", "resnet18", "resnet34", "resnet50",
       "densenet_bc_100", "resnet56"} | {name for name in AT_DEFAULTS if name.startswith("vgg") and name != "vgg_small"}


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in BIG else n
                                  for n in sorted(AT_DEFAULTS)])
def test_the_table_holds_each_models_size_at_its_defaults(name):
    builder = models._REGISTRY[models._lookup(name)]
    assert AT_DEFAULTS[name] == measure(builder, ())


def test_every_registered_model_has_an_entry():
    assert {models._REGISTRY[n].__name__ for n in models.names()} == set(AT_DEFAULTS)


@pytest.mark.parametrize("name, kwargs", [
    ("lenet5", {"input_size": 64}), ("lenet5", {"input_size": 100, "num_classes": 1000, "in_channels": 3}),
    ("resnet20", {"num_classes": 100, "input_size": 48}), ("text_cnn", {"vocab_size": 500, "seq_len": 40}),
    ("vgg_small", {"input_size": 64, "in_channels": 7}), ("spp_net", {"input_size": 60}),
])
def test_the_estimate_bounds_the_real_size_from_above(name, kwargs):
    builder = models._REGISTRY[name]
    real = measure(builder, tuple(sorted(kwargs.items())))
    for measured in (False, True):
        params, activations, _ = estimate_memory(builder, measured=measured, **kwargs)
        assert params >= real[0] and activations >= real[1]
        if len(kwargs) == 1:
            assert params <= 10 * real[0]       # a bound, not a refusal of everything


def test_at_or_below_the_defaults_the_measured_estimate_is_exact():
    builder = models._REGISTRY["resnet20"]
    kwargs = {"num_classes": 10, "input_size": 28, "in_channels": 1}
    assert estimate_memory(builder, measured=True, **kwargs)[:2] == measure(builder, tuple(sorted(kwargs.items())))


def test_refusal_names_the_sizes_and_the_limit():
    with pytest.raises(MemoryError, match=r"^juanji x: lenet5 \(input_size=60000\) would need about .* GiB to train "
                                          r"on batches of 1 .* the limit is"):
        check_model_memory("lenet5", source="juanji x", input_size=60_000)
    with pytest.raises(ValueError, match="num_classes must be an integer in 1..1,000,000, got True"):
        check_model_memory("lenet5", num_classes=True)
