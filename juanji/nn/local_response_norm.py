"""Local response normalisation (``torch.nn.LocalResponseNorm``), AlexNet's: each value divided by the energy
of its neighbouring channels."""
from __future__ import annotations

from ..functional import local_response_norm as F
from .module import Module
from .normalization import check_positive_int, check_real


class LocalResponseNorm(Module):
    """x (N, C, *) → y = x / (k + α/n · Σ x²)^β, the sum over the n = ``size`` channels from c − ⌊n/2⌋ to
    c + ⌊(n − 1)/2⌋ (zeros past the edges), as torch.  No parameters: the output has the input's dtype."""

    def __init__(self, size: int, alpha: float = 0.0001, beta: float = 0.75, k: float = 1.0):
        super().__init__()
        name = type(self).__name__
        self.size = check_positive_int(name, "size", size)
        self.alpha = check_real(name, "alpha", alpha)
        self.beta = check_real(name, "beta", beta)
        self.k = check_real(name, "k", k)

    def forward(self, x):
        self._check_input(x, "(N, C, *) (3-D or more)", tuple(range(3, max(getattr(x, "ndim", 0), 3) + 1)))
        y, cache = F.local_response_norm(x, self.size, self.alpha, self.beta, self.k)
        self.save_for_backward(cache)
        return y

    def backward(self, dy):
        cache, = self.saved_for_backward()
        return F.local_response_norm_backward(dy, cache)

    def extra_repr(self):
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"
