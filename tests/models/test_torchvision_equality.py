"""juanji's torchvision models are torchvision's: the same state_dict names and shapes, the same
parameter count, and — with the same weights — the same logits and input gradient in float64.

The reference data come from make_torchvision_fixtures.py, run with torchvision (which cannot be
installed beside this torch): fixtures/torchvision.json holds each model's key → shape table and
parameter count; fixtures/<name>.npz torchvision's logits and input-gradient summary for the seeded
weights and inputs of tv_reference, which this test regenerates with NumPy alone.  To stay within CI's
time, it runs the first image of the batch (eval mode treats images independently); the generator
script compares the whole batch of 2 and the full input gradient.
"""
import numpy as np
import pytest
import tv_reference as ref

from juanji import models

TABLE = ref.load_table()
# relative to the largest magnitude of each compared array (measured: ≤ 7.3e-15 for the logits, ≤ 1.5e-14 for
# the input gradients), except MobileNetV3-Small's input gradient, 3.6e-9 off: torch's float64 Hardsigmoid
# backward multiplies by the float32 constant 1.0f/6.0f, 3e-8 off (juanji's by 1/6)
TOLERANCE = 1e-12
TORCH_FLOAT32_SIXTH = {("mobilenet_v3_small", "dx_sub"): 1e-8, ("mobilenet_v3_small", "dx_proj"): 1e-8}
BATCH = 1                 # images of the fixture's batch compared here (up to ref.BATCH)


def juanji_table(model) -> dict:
    """state_dict name → shape, without copying the arrays."""
    return {f"{prefix}.{key}" if prefix else key: list(value.shape)
            for prefix, module in model.named_modules() for key, value in {**module.params, **module.buffers}.items()}


def torchvision_table(entry) -> dict:
    return dict(entry["state_dict"])


def test_every_torchvision_model_has_a_fixture():
    assert set(ref.TORCHVISION_MODELS) | set(ref.TABLE_ONLY) == set(TABLE["models"])
    for name in ref.TORCHVISION_MODELS:
        assert (ref.FIXTURES / f"{name}.npz").exists(), name


@pytest.mark.parametrize("key", sorted(ref.TABLE_ONLY))
def test_variant_layout_equals_torchvision(key):
    name, kwargs, _ = ref.TABLE_ONLY[key]
    model = models.create(name, **kwargs)
    entry = TABLE["models"][key]
    assert juanji_table(model) == torchvision_table(entry)
    assert model.num_parameters() == entry["num_parameters"]


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(ref.TORCHVISION_MODELS))
def test_model_equals_torchvision(name):
    entry = TABLE["models"][name]
    expected = np.load(ref.FIXTURES / f"{name}.npz")
    weights = ref.seeded_state_dict(entry["state_dict"])
    model = ref.juanji_model(name, weights)
    assert juanji_table(model) == torchvision_table(entry)
    assert model.num_parameters() == entry["num_parameters"]
    del weights
    x, dy, directions = ref.seeded_inputs()
    ours = ref.juanji_outputs(model, x[:BATCH], dy[:BATCH], directions)
    for key in ("logits", "dx_sub", "dx_proj"):
        assert ours[key].shape == expected[key][:BATCH].shape, key
        error = ref.relative_error(ours[key], expected[key][:BATCH])
        assert error <= TORCH_FLOAT32_SIXTH.get((name, key), TOLERANCE), f"{name} {key}: relative error {error:.2e}"
