"""What a cell is made of (``viz.cells.parts``): the numbers it gives must redo the layer's output exactly, on
untrained models of the zoo with random batch-norm statistics (so that nothing is 0 or 1 by chance)."""
import numpy as np
import pytest

from juanji.models import create
from juanji.nn import no_grad
from juanji.viz.cells import parts
from juanji.viz.chain import layer_chain, run_chain


def outputs(name, **kwargs):
    """[(name, layer, its input, its output)] of the chain of an eval-mode zoo model on a random image."""
    model = create(name, **kwargs)
    rng = np.random.default_rng(0)
    for module in model.modules():
        if "running_var" in getattr(module, "buffers", {}):
            module.buffers["running_mean"][...] = rng.normal(size=module.buffers["running_mean"].shape)
            module.buffers["running_var"][...] = rng.uniform(0.5, 2, size=module.buffers["running_var"].shape)
            module.params["weight"][...] = rng.normal(size=module.params["weight"].shape)
    model.eval()
    chain = layer_chain(model)
    x = rng.normal(size=(1, *model.input_shape)).astype(np.float32)
    with no_grad():
        ys = run_chain(chain, x)
        assert np.array_equal(ys[-1], model(x))                   # the chain is the model
    return [(n, layer, ([x] + ys)[p], ys[p]) for p, (n, layer) in enumerate(chain)]


def test_a_resnet_block_is_its_body_plus_its_shortcut_and_a_batch_norm_its_numbers():
    seen = set()
    for name, layer, x, y in outputs("resnet20", in_channels=1, input_size=28):
        with no_grad():
            found = parts(layer, x)
        if name == "bn1":
            n = found
            expected = ((x[0] - n["mean"][:, None, None]) / np.sqrt(n["var"][:, None, None] + n["eps"])
                        * n["weight"][:, None, None] + n["bias"][:, None, None])
            np.testing.assert_allclose(y[0], expected, rtol=1e-5, atol=1e-5)
        elif name.startswith("layer"):
            assert found["kind"] == "residual" and found["relu"]
            assert found["body_layers"] == ["conv1", "bn1", "relu1", "conv2", "bn2"]
            np.testing.assert_allclose(y[0], np.maximum(found["body"] + found["shortcut"], 0), atol=1e-6)
            reads = found["shortcut_reads"]
            seen.add(reads["kind"])
            if reads["kind"] == "subsample":                      # option A: x subsampled, then zero channels
                c, s = reads["channels"], reads["stride"]
                assert (name, c, s) in (("layer2.0", 16, 2), ("layer3.0", 32, 2))
                np.testing.assert_array_equal(found["shortcut"][:c], x[0, :, ::s, ::s])
                assert not found["shortcut"][c:].any()
            else:
                np.testing.assert_array_equal(found["shortcut"], x[0])
        elif name in ("relu", "avgpool"):
            assert found == {"kind": "per_channel"}
        elif name in ("conv1", "flatten", "fc"):
            assert found is None
    assert seen == {"identity", "subsample"}


def test_a_dense_layer_stays_whole_and_is_its_input_then_its_new_maps():
    chain = outputs("densenet_bc_40", in_channels=1, input_size=28)
    name, layer, x, y = next(o for o in chain if o[0] == "features.denseblock1.denselayer2")
    found = parts(layer, x)
    assert [(b["name"], b["channels"], b["identity"]) for b in found["branches"]] == [("input", 36, True),
                                                                                     ("F", 12, False)]
    np.testing.assert_array_equal(y[0, :36], x[0])


@pytest.mark.parametrize("model, kwargs", [("unet", {}), ("mobilenet_v2", {"in_channels": 1, "input_size": 28})])
def test_a_skip_concat_and_an_inverted_residual(model, kwargs):
    kinds = set()
    for name, layer, x, y in outputs(model, **kwargs):
        with no_grad():
            found = parts(layer, x)
        kind = found and found["kind"]
        kinds.add(kind)
        if kind == "concat":
            skip, down = found["branches"]
            assert skip["identity"] and not down["identity"] and skip["channels"] + down["channels"] == len(y[0])
            np.testing.assert_array_equal(y[0, :skip["channels"]], x[0])
        elif kind == "residual":
            assert found["shortcut_reads"] == {"kind": "identity"} and not found["relu"]
            np.testing.assert_allclose(y[0], found["body"] + found["shortcut"], atol=1e-5)
    assert {"unet": "concat", "mobilenet_v2": "residual"}[model] in kinds
