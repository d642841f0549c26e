"""The one schema of config.json and checkpoint headers: types, ranges, consistency, messages naming file and field."""
import dataclasses
import math
import re

import pytest

from juanji import optim
from juanji.schema import (MAX_OPTIMIZER_SLOTS, SchemaError, TrainConfig, check_value, validate_config,
                           validate_header)


@pytest.mark.parametrize("value, kind, low, high, fragment", [
    (True, int, None, None, "expected int, got True"),          # a bool is not a number here
    (1.5, int, None, None, "expected int, got 1.5"),
    (math.nan, float, None, None, "must be finite, got nan"),
    (-1, float, 0, None, "must lie in [0, ∞], got -1"),
    (5, int, 1, 3, "must lie in [1, 3], got 5"),
    (10**400, int, 1, 10**6, "must lie in [1, 1000000], got 1000"),     # too long for a float: no OverflowError
    (10**400, float, None, 1.0, "must lie in [−∞, 1.0], got 1000"),
    ("x", list, None, None, "expected list, got 'x'"),
])
def test_check_value_refuses(value, kind, low, high, fragment):
    with pytest.raises(SchemaError, match=r"^f\.json: field 'a\.b': ") as caught:
        check_value(value, kind, "f.json", "a.b", low, high)
    assert fragment in str(caught.value)


def test_check_value_accepts_an_int_as_a_float_and_none_when_optional():
    assert check_value(3, float, "f", "x") == 3 and check_value(None, int, "f", "x", optional=True) is None


def test_every_default_config_passes_and_round_trips():
    config = TrainConfig(data="words", limit=100, image_size=32, channels=3, augment=["crop"])
    assert validate_config(dataclasses.asdict(config)) == config


def test_a_header_without_juanjis_fields_passes():
    """ckpt.save(path, model, **meta) takes any JSON meta: only the fields juanji writes are checked."""
    validate_header({"format": "juanji-checkpoint", "version": 1, "note": [1, 2], "model": {"name": "m"}}, "a.npz")


def test_header_consistency_between_classes_shape_and_model():
    meta = {"model": {"name": "lenet5", "config": {"num_classes": 10, "in_channels": 1, "input_size": 28}},
            "data": {"classes": [str(i) for i in range(10)], "input_shape": [1, 28, 28],
                     "normalization": [[0.3], [0.35]]}}
    validate_header(meta, "a.npz")
    meta["model"]["config"]["input_size"] = 32
    with pytest.raises(SchemaError, match="^a.npz: field 'header.data.input_shape': .* input_size=32"):
        validate_header(meta, "a.npz")


@pytest.mark.parametrize("change, fragment", [
    ({"model": "a" * 50_000_000}, "field 'model': must have at most 256 characters, got 50,000,000"),
    ({"optimizer": ""}, "field 'optimizer': must not be empty"),
    ({"data": "/" + "d" * 5000}, "field 'data': must have at most 4,096 characters, got 5,001"),
    ({"augment": ["flip"] * 100}, "field 'augment': must have at most 64 entries, got 100"),
    ({"augment": ["x" * 300]}, "field 'augment': expected a list of names of at most 256 characters"),
])
def test_names_paths_and_lists_in_a_config_are_bounded(change, fragment):
    """Checked before anything reads them: a 50 MB model name is refused, not searched for a close match."""
    with pytest.raises(SchemaError, match=f"^config.json: {re.escape(fragment)}"):
        validate_config({**dataclasses.asdict(TrainConfig()), **change})


@pytest.mark.parametrize("change, fragment", [
    (lambda m: m["model"].update(name="a" * 257), "field 'header.model.name': must have at most 256 characters"),
    (lambda m: m["data"].update(classes=["c" * 300]), "field 'header.data.classes': expected 1 to 100,000 class "
                                                      "names of at most 256 characters"),
    (lambda m: m.update(optimizer={"hyper": {}, "step": 1}), "field 'header.optimizer.type': expected str, got None"),
    (lambda m: m.update(optimizer={"type": "SGD", "hyper": {}, "step": -1}),
     "field 'header.optimizer.step': must lie in [0, ∞], got -1"),
    (lambda m: m.update(optimizer={"type": "SGD", "hyper": [], "step": 1}),
     "field 'header.optimizer.hyper': expected dict, got []"),
])
def test_header_names_and_optimizer_state_are_checked(change, fragment):
    meta = {"model": {"name": "lenet5", "config": {}}, "data": {"classes": ["a", "b"]},
            "optimizer": {"type": "SGD", "hyper": {"lr": 0.1}, "step": 3}}
    validate_header(meta, "a.npz")
    change(meta)
    with pytest.raises(SchemaError, match=f"^a.npz: {re.escape(fragment)}"):
        validate_header(meta, "a.npz")


def test_the_most_optimizer_arrays_per_parameter_is_what_the_optimizers_keep():
    """schema.MAX_OPTIMIZER_SLOTS bounds a checkpoint's members: no optimizer keeps more arrays per parameter."""
    widest = {"momentum": 0.9, "centered": True, "amsgrad": True}
    kept = [len(cls.slots_for(widest)) for cls in (optim.SGD, optim.Adagrad, optim.RMSprop, optim.Adam, optim.AdamW)]
    assert max(kept) == MAX_OPTIMIZER_SLOTS
