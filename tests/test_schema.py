"""The one schema of config.json and checkpoint headers: types, ranges, consistency, messages naming file and field."""
import dataclasses
import math

import pytest

from juanji.schema import SchemaError, TrainConfig, check_value, validate_config, validate_header


@pytest.mark.parametrize("value, kind, low, high, fragment", [
    (True, int, None, None, "expected int, got True"),          # a bool is not a number here
    (1.5, int, None, None, "expected int, got 1.5"),
    (math.nan, float, None, None, "must be finite, got nan"),
    (-1, float, 0, None, "must lie in [0, ∞], got -1"),
    (5, int, 1, 3, "must lie in [1, 3], got 5"),
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
