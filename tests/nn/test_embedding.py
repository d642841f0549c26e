"""Embedding against torch.nn.Embedding with every constructor argument drawn at random (padding_idx, max_norm,
norm_type, scale_grad_by_freq, _weight, _freeze, device, dtype), positional or keyword, over several steps (max_norm
renormalises the table in place), on ids of any shape, non-contiguous among them; finite differences; from_pretrained;
sparse=True and other bad arguments refused at construction, naming the argument."""
import numpy as np
import pytest
import torch

from juanji import nn
from juanji.models.summary import summarize
from layer_check import DTYPES, TORCH_DTYPE, assert_close, load_into_torch

NAMES = ["num_embeddings", "embedding_dim", "padding_idx", "max_norm", "norm_type", "scale_grad_by_freq", "sparse",
         "_weight", "_freeze", "device", "dtype"]


def draw(rng, dtype):
    """(juanji's arguments, torch's arguments): the same, but _weight as an array for one and a tensor for the other."""
    v, e = int(rng.integers(1, 9)), int(rng.integers(1, 6))
    weight = (rng.standard_normal((v, e)) * 1.5).astype(dtype) if rng.random() < 0.3 else None
    args = [v, e, int(rng.integers(-v, v)) if rng.random() < 0.5 else None,
            float(rng.uniform(0.5, 2.0)) if rng.random() < 0.5 else None,
            float(rng.choice([2.0, 1.0, 3.0, np.inf, 0.5])), bool(rng.random() < 0.5), False, weight,
            bool(rng.random() < 0.25), rng.choice([None, "cpu"]), TORCH_DTYPE[np.dtype(dtype)]]
    theirs = args[:7] + [None if weight is None else torch.from_numpy(weight.copy())] + args[8:]
    return args, theirs


def compare(layer, reference, rng, steps=3):
    """Forward and backward of both on the same ids and dY, ``steps`` times: outputs, the weight's gradient
    (none when frozen) and the table (renormalised in place by max_norm)."""
    load_into_torch(layer, reference)
    trainable = [name for name, p in reference.named_parameters() if p.requires_grad]
    assert sorted(name for name, _, _ in layer.parameters()) == trainable
    v = layer.num_embeddings
    for step in range(steps):
        shape = [(), (5,), (3, 4), (2, 3, 2)][step % 4]
        ids = rng.integers(0, v, shape[::-1] if len(shape) == 2 else shape)
        ids = ids.T if len(shape) == 2 else ids                  # a transposed view: not contiguous
        y = layer(ids)
        dy = rng.standard_normal(y.shape).astype(y.dtype)
        assert layer.backward(dy) is None
        reference.weight.grad = None
        y_t = reference(torch.from_numpy(ids))
        if reference.weight.requires_grad:
            y_t.backward(torch.from_numpy(dy))
        assert y.dtype == layer.dtype
        assert_close(y, y_t, f"step {step}: y")
        if trainable:
            assert layer.grads["weight"].dtype == layer.dtype
            assert_close(layer.grads["weight"], reference.weight.grad, f"step {step}: grad of weight")
        assert_close(layer.weight, reference.weight, f"step {step}: the table")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", range(16))
def test_random_arguments_match_torch(seed, dtype):
    rng = np.random.default_rng(seed)
    ours, theirs = draw(rng, dtype)
    if seed % 2:
        layer, reference = nn.Embedding(*ours), torch.nn.Embedding(*theirs)
    else:
        layer, reference = nn.Embedding(**dict(zip(NAMES, ours))), torch.nn.Embedding(**dict(zip(NAMES, theirs)))
    assert repr(layer) == repr(reference) and layer.padding_idx == reference.padding_idx
    if ours[7] is None and ours[2] is not None:                 # a new table: the padding row starts at 0
        assert not layer.weight[layer.padding_idx].any()
    layer.train(seed % 3 != 0)
    compare(layer, reference, rng)


def test_finite_differences_of_the_weight():
    """L = Σ dY · y; on the rows that get a gradient (padding_idx's deliberately gets none, as torch)."""
    rng = np.random.default_rng(3)
    layer = nn.Embedding(6, 3, padding_idx=2, dtype=np.float64)
    ids = rng.integers(0, 6, (4, 5))
    dy = rng.standard_normal((4, 5, 3))
    layer(ids)
    layer.backward(dy)
    for v in (0, 1, 3, 4, 5):
        for e in range(3):
            saved = layer.weight[v, e]
            layer.weight[v, e] = saved + 1e-6
            up = (layer(ids) * dy).sum()
            layer.weight[v, e] = saved - 1e-6
            down = (layer(ids) * dy).sum()
            layer.weight[v, e] = saved
            assert abs((up - down) / 2e-6 - layer.grads["weight"][v, e]) < 1e-7
    assert not layer.grads["weight"][2].any()


@pytest.mark.parametrize("freeze", [True, False])
def test_from_pretrained_as_torch(freeze):
    table = np.random.default_rng(4).standard_normal((5, 3))
    layer = nn.Embedding.from_pretrained(table, freeze=freeze, padding_idx=1, max_norm=1.0)
    reference = torch.nn.Embedding.from_pretrained(torch.from_numpy(table.copy()), freeze=freeze, padding_idx=1,
                                                   max_norm=1.0)
    assert layer.dtype == np.float64 and repr(layer) == repr(reference)
    assert ("weight" in layer.buffers) == freeze and layer.num_parameters() == (0 if freeze else 15)
    layer.weight[0] = 9                                        # a copy: the table given is not the layer's
    assert table[0, 0] != 9
    layer.weight[0] = table[0]
    compare(layer, reference, np.random.default_rng(5))


def test_a_frozen_table_is_saved_and_loaded_but_not_trained():
    layer = nn.Embedding(4, 2, _freeze=True)
    assert layer.parameters() == [] and list(layer.state_dict()) == ["weight"]
    layer.load_state_dict({"weight": np.ones((4, 2))})
    assert (layer.weight == 1).all() and layer.weight.dtype == np.float32


def test_a_lookup_has_no_multiply_adds_in_the_summary():
    model = nn.Sequential(nn.Embedding(10, 4), nn.Flatten(), nn.Linear(12, 2))
    model.input_shape, model.input_dtype = (3,), np.int64
    embedding, _, linear = summarize(model)
    assert embedding.macs == 0 and embedding.params == 40 and linear.macs == 24


@pytest.mark.parametrize("make, error, fragment", [
    (lambda: nn.Embedding(5, 2, sparse=True), ValueError, "Embedding: sparse=True is not supported"),
    (lambda: nn.Embedding(5, 2, padding_idx=5), ValueError, "Embedding: padding_idx must be None or an int in [-5, 4]"),
    (lambda: nn.Embedding(5, 2, padding_idx=-6), ValueError, "padding_idx"),
    (lambda: nn.Embedding(5, 2, max_norm=-1.0), ValueError, "Embedding: max_norm must be None or a number ≥ 0"),
    (lambda: nn.Embedding(5, 2, norm_type=0), ValueError, "Embedding: norm_type must be a number > 0"),
    (lambda: nn.Embedding(5, 2, _weight=np.zeros((5, 3))), ValueError,
     "Embedding: _weight must have shape (num_embeddings, embedding_dim) = (5, 2), got (5, 3)"),
    (lambda: nn.Embedding(5, 2, _weight=np.zeros((5, 2), bool)), TypeError, "Embedding: _weight must hold numbers"),
    (lambda: nn.Embedding(5, 2, device="cuda"), ValueError, "Embedding: device must be None or 'cpu'"),
    (lambda: nn.Embedding(5, 2, dtype=torch.float16), TypeError, "Embedding: dtype must be float32 or float64"),
    (lambda: nn.Embedding(5, 0), ValueError, "Embedding: embedding_dim must be a positive int"),
    (lambda: nn.Embedding.from_pretrained(np.zeros(4)), ValueError, "embeddings must be 2-D"),
])
def test_bad_arguments_are_refused_at_construction(make, error, fragment):
    with pytest.raises(error) as info:
        make()
    assert fragment in str(info.value)


def test_the_rng_is_keyword_only_and_the_dtype_of_a_given_table_is_kept():
    a, b = (nn.Embedding(4, 3, rng=np.random.default_rng(2)) for _ in range(2))
    np.testing.assert_array_equal(a.weight, b.weight)
    assert nn.Embedding(2, 2, _weight=np.zeros((2, 2))).dtype == np.float64
    assert nn.Embedding(2, 2, _weight=np.zeros((2, 2)), dtype=np.float32).dtype == np.float32
    assert nn.Embedding(2, 2, _weight=torch.zeros(2, 2)).dtype == np.float32
