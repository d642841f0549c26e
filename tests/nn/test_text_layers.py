"""Embedding, Permute and GlobalMaxPool1d (the text CNN's layers) against PyTorch and their references."""
import numpy as np
import pytest
import torch

from juanji.functional.embedding import embedding_backward, embedding_backward_reference
from juanji.nn.embedding import Embedding
from juanji.nn.permute import Permute
from juanji.nn.pooling1d import GlobalMaxPool1d


@pytest.mark.parametrize("shape", [(4, 9), (2, 3, 5), (7,), (0, 4)])
def test_embedding_backward_sums_rows_per_id_as_the_reference(shape):
    rng = np.random.default_rng(0)
    indices = rng.integers(0, 6, shape)              # few ids: many repeats
    dy = rng.standard_normal((*shape, 5))
    np.testing.assert_allclose(embedding_backward(dy, indices, 8), embedding_backward_reference(dy, indices, 8),
                               rtol=1e-12, atol=1e-12)


def test_embedding_matches_torch_forward_and_weight_gradient():
    rng = np.random.default_rng(1)
    layer = Embedding(11, 4, dtype=np.float64)
    reference = torch.nn.Embedding(11, 4).double()
    reference.weight.data = torch.from_numpy(layer.params["weight"].copy())
    x = rng.integers(0, 11, (5, 7))
    dy = rng.standard_normal((5, 7, 4))
    y = layer(x)
    expected = reference(torch.from_numpy(x))
    expected.backward(torch.from_numpy(dy))
    np.testing.assert_allclose(y, expected.detach().numpy(), rtol=1e-12)
    assert layer.backward(dy) is None                 # token ids have no gradient
    np.testing.assert_allclose(layer.grads["weight"], reference.weight.grad.numpy(), rtol=1e-12, atol=1e-12)
    assert layer.grads["weight"].dtype == np.float64


def test_embedding_errors_name_the_layer():
    layer = Embedding(5, 2)
    with pytest.raises(TypeError, match=r"Embedding\(5, 2\): expected an integer array of token ids, got dtype float"):
        layer(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="token id 5 out of range: the table has ids 0..4"):
        layer(np.array([[0, 5]]))
    with pytest.raises(ValueError, match="num_embeddings must be a positive int"):
        Embedding(0, 2)
    with pytest.raises(RuntimeError, match="backward called before forward"):
        Embedding(3, 2).backward(np.zeros((1, 2)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_global_max_pool1d_matches_torch_amax(dtype):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 4, 9)).astype(dtype)
    x[0, 0, [2, 6]] = 5.0                               # a tie: the gradient goes to the first
    dy = rng.standard_normal((3, 4)).astype(dtype)
    layer = GlobalMaxPool1d()
    y = layer(x)
    dx = layer.backward(dy)
    xt = torch.from_numpy(x).requires_grad_()
    yt = xt.max(dim=2).values                          # the first arg-max on ties, like juanji
    yt.backward(torch.from_numpy(dy))
    np.testing.assert_array_equal(y, yt.detach().numpy())
    np.testing.assert_array_equal(dx, xt.grad.numpy())
    assert y.dtype == dx.dtype == dtype and dx[0, 0, 2] == dy[0, 0] and dx[0, 0, 6] == 0


def test_global_max_pool1d_errors():
    with pytest.raises(ValueError, match=r"GlobalMaxPool1d\(\): expected input of shape \(N, C, L\)"):
        GlobalMaxPool1d()(np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match="empty sequence"):
        GlobalMaxPool1d()(np.zeros((2, 3, 0), np.float32))


def test_permute_and_its_inverse():
    x = np.arange(24.0).reshape(2, 3, 4)
    layer = Permute(0, 2, 1)
    y = layer(x)
    np.testing.assert_array_equal(y, x.transpose(0, 2, 1))
    np.testing.assert_array_equal(layer.backward(y), x)
    with pytest.raises(ValueError, match="dims must be a permutation"):
        Permute(0, 2, 2)
    with pytest.raises(ValueError, match="expected a 3-D array"):
        layer(np.zeros((2, 3)))
