"""Embedding: a learned vector per token id, ``torch.nn.Embedding`` (the first layer of a text model)."""
from __future__ import annotations

import numbers

import numpy as np

from .. import random as jrandom
from ..functional import embedding as F
from .module import DTYPES, Module, factory_dtype


class Embedding(Module):
    """x (…) integer ids in [0, num_embeddings) → y (…, embedding_dim) = weight[x].

    params: weight (num_embeddings, embedding_dim), initialised N(0, 1) as PyTorch.
    dW[v] = Σ dY over the positions holding id v.  The ids get no gradient: backward returns None.
    torch's arguments, all of them:

    - ``padding_idx`` (negative counts from the end): its row starts at 0 and gets no gradient;
    - ``max_norm``: forward first scales, in place, each row it looks up whose ``norm_type``-norm exceeds
      max_norm down to it (no gradient flows through the scaling, as in torch);
    - ``scale_grad_by_freq``: each row's gradient divided by the number of times the batch holds its id;
    - ``_weight``: the initial table, copied (its dtype kept where ``dtype`` is None); ``padding_idx``'s row is
      then left as given, as torch does;
    - ``_freeze``: the table is not trained: it is a buffer (saved as ``weight`` in the state_dict, not in
      ``parameters()``, so optimizers leave it), backward computes no gradient;
    - ``sparse=True`` is refused: juanji's gradients are dense arrays.

    ``dtype`` None is float32; ``device`` None or 'cpu'; ``rng`` (keyword-only, juanji's): the generator of the
    initial table.  ``Embedding.from_pretrained(table)`` as torch's (frozen by default).
    """

    lookup = True       # a table read, no multiply-adds (models.summary counts none)

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None,
                 max_norm: float | None = None, norm_type: float = 2.0, scale_grad_by_freq: bool = False,
                 sparse: bool = False, _weight=None, _freeze: bool = False, device=None, dtype=None, *, rng=None):
        super().__init__()
        for name, value in (("num_embeddings", num_embeddings), ("embedding_dim", embedding_dim)):
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"Embedding: {name} must be a positive int, got {value!r}")
        self.num_embeddings, self.embedding_dim = int(num_embeddings), int(embedding_dim)
        if padding_idx is not None:
            if (not isinstance(padding_idx, (int, np.integer)) or isinstance(padding_idx, bool)
                    or not -num_embeddings <= padding_idx < num_embeddings):
                raise ValueError(f"Embedding: padding_idx must be None or an int in [{-num_embeddings}, "
                                 f"{num_embeddings - 1}] (within num_embeddings), got {padding_idx!r}")
            padding_idx = int(padding_idx) % num_embeddings
        if max_norm is not None and (not isinstance(max_norm, numbers.Real) or not max_norm >= 0):
            raise ValueError(f"Embedding: max_norm must be None or a number ≥ 0, got {max_norm!r}")
        if not isinstance(norm_type, numbers.Real) or not norm_type > 0:
            raise ValueError(f"Embedding: norm_type must be a number > 0 (inf: the largest |entry|), got {norm_type!r}")
        if sparse:
            raise ValueError("Embedding: sparse=True is not supported: juanji has no sparse gradients (the "
                             "gradient of weight is a dense array); use sparse=False")
        self.padding_idx, self.max_norm, self.norm_type = padding_idx, max_norm, norm_type
        self.scale_grad_by_freq, self.sparse = bool(scale_grad_by_freq), False
        if _weight is None:
            rng = rng or jrandom.generator()
            weight = rng.standard_normal((num_embeddings, embedding_dim)).astype(factory_dtype("Embedding", device,
                                                                                                dtype))
            if padding_idx is not None:
                weight[padding_idx] = 0
        else:
            weight = self._given_weight(_weight, device, dtype)
        if _freeze:
            self.buffers["weight"] = weight
        else:
            self.params["weight"] = weight
            self.grads["weight"] = np.zeros_like(weight)

    def _given_weight(self, table, device, dtype) -> np.ndarray:
        """A copy of ``_weight`` in ``dtype`` (None: its own where float32 or float64, else float32)."""
        if hasattr(table, "detach"):            # a torch tensor
            table = table.detach().cpu().numpy()
        table = np.asarray(table)
        if dtype is None and table.dtype in DTYPES:
            dtype = table.dtype
        dtype = factory_dtype("Embedding", device, dtype)
        if table.shape != (self.num_embeddings, self.embedding_dim):
            raise ValueError(f"Embedding: _weight must have shape (num_embeddings, embedding_dim) = "
                             f"{(self.num_embeddings, self.embedding_dim)}, got {table.shape}")
        if table.dtype.kind not in "fiu":
            raise TypeError(f"Embedding: _weight must hold numbers, got dtype {table.dtype}")
        return np.array(table, dtype=dtype)

    @classmethod
    def from_pretrained(cls, embeddings, freeze: bool = True, padding_idx: int | None = None,
                        max_norm: float | None = None, norm_type: float = 2.0, scale_grad_by_freq: bool = False,
                        sparse: bool = False) -> "Embedding":
        """torch's ``Embedding.from_pretrained``: a layer whose table is (a copy of) the 2-D ``embeddings``,
        frozen unless ``freeze=False``."""
        shape = np.shape(embeddings)
        if len(shape) != 2:
            raise ValueError(f"Embedding.from_pretrained: embeddings must be 2-D (num_embeddings, embedding_dim), "
                             f"got shape {shape}")
        return cls(*shape, padding_idx, max_norm, norm_type, scale_grad_by_freq, sparse, _weight=embeddings,
                   _freeze=freeze)

    @property
    def weight(self) -> np.ndarray:
        """The table, trained (``params``) or frozen (``buffers``)."""
        return self.params.get("weight", self.buffers.get("weight"))

    def forward(self, x):
        if not isinstance(x, np.ndarray) or x.dtype.kind not in "iu":
            got = f"dtype {x.dtype}" if isinstance(x, np.ndarray) else type(x).__name__
            raise TypeError(f"{self!r}: expected an integer array of token ids, got {got}")
        if x.size and (x.min() < 0 or x.max() >= self.num_embeddings):
            bad = x.min() if x.min() < 0 else x.max()
            raise ValueError(f"{self!r}: token id {bad} out of range: the table has ids "
                             f"0..{self.num_embeddings - 1}")
        if self.max_norm is not None:
            F.embedding_renorm_(self.weight, x, self.max_norm, self.norm_type)
        self.save_for_backward(x)
        return F.embedding(x, self.weight)

    def backward(self, dy):
        indices, = self.saved_for_backward()
        if "weight" in self.grads:
            np.copyto(self.grads["weight"], F.embedding_backward(dy, indices, self.num_embeddings, self.padding_idx,
                                                                 self.scale_grad_by_freq))
        return None

    def extra_repr(self):
        text = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.padding_idx is not None:
            text += f", padding_idx={self.padding_idx}"
        if self.max_norm is not None:
            text += f", max_norm={self.max_norm}"
        if self.norm_type != 2:
            text += f", norm_type={self.norm_type}"
        if self.scale_grad_by_freq:
            text += ", scale_grad_by_freq=True"
        return text
