"""Loss kernels, PyTorch's definitions: each forward returns ``(loss, cache)`` and its backward
``(cache, dy=None)`` gives d loss / d input, ``dy`` (default 1) scaling it, of the loss's shape for
``reduction='none'``.  Softmax and cross-entropy are fused with log-sum-exp, so the log never sees a zero.
dtype in = dtype out; the target is taken in the input's dtype.  The ``*_reference`` functions (loops over
samples, the textbook formulas) are for the tests only.

Reductions: ``'none'`` keeps the loss of every element, ``'sum'`` adds them, ``'mean'`` divides the sum by
a denominator each loss states (an empty mean is nan, as in PyTorch)."""
import numpy as np

from .activation import log_softmax, sigmoid

REDUCTIONS = ("none", "mean", "sum")


def _like(array, input):
    """``array`` (a target or a weight) in the input's dtype; None stays None."""
    return None if array is None else np.asarray(array).astype(input.dtype, copy=False)


def _reduce(elementwise, reduction, denominator):
    """ℓ for 'none', Σℓ for 'sum', Σℓ / denominator for 'mean' (0/0 = nan, x/0 = ±inf, as PyTorch)."""
    if reduction == "none":
        return elementwise
    total = elementwise.sum(dtype=elementwise.dtype)
    if reduction == "sum":
        return total
    with np.errstate(divide="ignore", invalid="ignore"):
        return elementwise.dtype.type(total / elementwise.dtype.type(denominator))


def _scale(dy, reduction, denominator, dtype):
    """The gradient reaching each element's loss: dy ('none': elementwise; 'sum'), dy / denominator ('mean');
    dy None means 1."""
    g = np.ones((), dtype) if dy is None else np.asarray(dy, dtype=dtype)
    if reduction == "mean":
        with np.errstate(divide="ignore", invalid="ignore"):
            g = g / dtype.type(denominator)
    return g


# -- cross-entropy and negative log-likelihood ------------------------------------------------------------

def _batched(input, target):
    """An unbatched input (C,) and its target (() indices or (C,) probabilities) gain a batch axis of 1."""
    if input.ndim == 1:
        return input[None], target[None], True
    return input, target, False


def _class_view(weight, ndim):
    """Per-class weights (C,) shaped to broadcast along axis 1 of an (N, C, d1, …) array."""
    return weight.reshape((1, -1) + (1,) * (ndim - 2))


def _indexed(target, dtype, weight, ignore_index):
    """What class-index targets (N, d1, …) pick: ``index`` (N, 1, d1, …) the class (0 where ignored), ``w_t``
    (N, d1, …) its weight w_{t_n} (1 without weight; 0 where t_n = ignore_index), ``kept`` (N, d1, …) the
    targets not ignored, and the mean's denominator: Σ_n w_{t_n} with a weight, the count of kept targets
    without (as PyTorch)."""
    kept = target != ignore_index
    index = np.where(kept, target, 0)[:, None]
    if weight is None:
        return index, kept.astype(dtype), kept, int(kept.sum())
    w_t = np.where(kept, weight[index[:, 0]], dtype.type(0))
    return index, w_t, kept, w_t.sum(dtype=dtype)


def cross_entropy(input, target, label_smoothing=0.0, weight=None, ignore_index=-100, reduction="mean"):
    """Softmax cross-entropy of logits ``input`` (N, C, d1, …) or (C,) against ``target``: class indices
    (N, d1, …) or (), integers, or class probabilities of the input's shape.  ``weight`` (C,) rescales each
    class.  Returns (loss, cache); loss () or, for 'none', (N, d1, …) (or () unbatched).

    With log p = log softmax(x) along C, smoothing ε and w = weight (or ones):
        indices:        ℓ_n = (1 − ε)·(−w_{t_n} log p_{n,t_n}) + (ε/C)·(−Σ_c w_c log p_{n,c}),  0 where t_n is
                        ignore_index;  'mean' divides by Σ_n w_{t_n} over kept targets (their count without w)
        probabilities:  ℓ_n = −Σ_c w_c ((1 − ε)·t_{n,c} + ε/C) log p_{n,c};  'mean' divides by N·d1·…
    """
    probabilities = target.dtype.kind == "f"
    target, weight = (_like(target, input) if probabilities else target), _like(weight, input)
    x, target, unbatched = _batched(input, target)
    dtype, n_classes = x.dtype, x.shape[1]
    logp = log_softmax(x, axis=1)
    w = None if weight is None else _class_view(weight, x.ndim)
    if probabilities:
        q = (1 - label_smoothing) * target + label_smoothing / n_classes if label_smoothing else target
        q = q if w is None else q * w
        elementwise = -(q * logp).sum(axis=1)
        denominator = elementwise.size
        picked = None
    else:
        index, w_t, kept, denominator = _indexed(target, dtype, weight, ignore_index)
        # take, never multiply: a −inf log-probability outside the target stays out of the loss, as in PyTorch
        elementwise = np.where(kept, -np.take_along_axis(logp, index, axis=1)[:, 0], 0) * w_t
        if label_smoothing:
            smooth = -(logp if w is None else logp * w).sum(axis=1)
            elementwise = ((1 - label_smoothing) * elementwise
                           + (label_smoothing / n_classes) * np.where(kept, smooth, 0))
        q = None
        picked = (index, w_t, kept)
    loss = _reduce(elementwise.astype(dtype, copy=False), reduction, denominator)
    if unbatched and reduction == "none":
        loss = loss[0]
    return loss, (logp, q, picked, w, label_smoothing, reduction, denominator, unbatched)


def cross_entropy_backward(cache, dy=None):
    """dX = g·(softmax(x)·Σ_c q_c − q),  q the coefficients of −log p above (w_c((1 − ε)·onehot + ε/C), 0 where
    ignored), g = dy, or dy / denominator for 'mean' (0 where ignored)."""
    logp, q, picked, w, label_smoothing, reduction, denominator, unbatched = cache
    dtype, n_classes = logp.dtype, logp.shape[1]
    g = _scale(dy, reduction, denominator, dtype)
    if unbatched and reduction == "none":
        g = g[None]
    if picked is not None:
        index, w_t, kept = picked
        q = np.zeros_like(logp)
        np.put_along_axis(q, index, ((1 - label_smoothing) * w_t)[:, None], axis=1)
        if label_smoothing:
            kept_classes = kept[:, None].astype(dtype)
            q += (label_smoothing / n_classes) * (kept_classes if w is None else w * kept_classes)
        if reduction == "mean":
            g = np.where(kept, g, dtype.type(0))
    g = g[:, None] if g.ndim else g
    with np.errstate(invalid="ignore"):                     # 0·inf where every weight is 0: nan, as PyTorch
        dx = (g * (np.exp(logp) * q.sum(axis=1, keepdims=True) - q)).astype(dtype, copy=False)
    return dx[0] if unbatched else dx


def nll_loss(input, target, weight=None, ignore_index=-100, reduction="mean"):
    """Negative log-likelihood of log-probabilities ``input`` (N, C, d1, …) or (C,) at class indices ``target``
    (N, d1, …) or (), integers: ℓ_n = −w_{t_n} x_{n,t_n}, 0 where t_n is ignore_index; 'mean' divides by
    Σ_n w_{t_n} over kept targets (their count without a weight).  Returns (loss, cache)."""
    x, target, unbatched = _batched(input, target)
    index, w_t, kept, denominator = _indexed(target, x.dtype, _like(weight, input), ignore_index)
    picked = -np.take_along_axis(x, index, axis=1)[:, 0] * w_t
    elementwise = np.where(kept, picked, 0).astype(x.dtype, copy=False)
    loss = _reduce(elementwise, reduction, denominator)
    if unbatched and reduction == "none":
        loss = loss[0]
    return loss, (x.shape, x.dtype, index, w_t, kept, reduction, denominator, unbatched)


def nll_loss_backward(cache, dy=None):
    """dX[n, t_n] = −g·w_{t_n} (0 elsewhere and where ignored),  g = dy, or dy / denominator for 'mean'."""
    shape, dtype, index, w_t, kept, reduction, denominator, unbatched = cache
    g = _scale(dy, reduction, denominator, dtype)
    if unbatched and reduction == "none":
        g = g[None]
    with np.errstate(invalid="ignore"):
        picked = np.where(kept, -g * w_t, dtype.type(0)).astype(dtype, copy=False)
    dx = np.zeros(shape, dtype)
    np.put_along_axis(dx, index, picked[:, None], axis=1)
    return dx[0] if unbatched else dx


# -- elementwise losses: input and target of one shape, any rank --------------------------------------------

def _weighted(elementwise, weight, weighted_mean):
    """w·ℓ and the mean's denominator: Σw when ``weighted_mean`` and a weight is given (mse_loss, l1_loss), else
    the number of elements."""
    if weight is None:
        return elementwise, elementwise.size
    return elementwise * weight, (weight.sum(dtype=weight.dtype) if weighted_mean else elementwise.size)


def _elementwise_backward(local, weight, reduction, denominator, dy):
    """dX = g·w·dℓ/dx, g = dy, or dy / denominator for 'mean'."""
    g = _scale(dy, reduction, denominator, local.dtype)
    with np.errstate(invalid="ignore"):
        return np.asarray(g * local if weight is None else g * weight * local, dtype=local.dtype)


def mse_loss(input, target, weight=None, reduction="mean"):
    """ℓ = w·(x − t)²;  'mean' divides by Σw with a weight (as torch.nn.functional.mse_loss), else by the
    number of elements.  Returns (loss, cache)."""
    target, weight = _like(target, input), _like(weight, input)
    diff = input - target
    elementwise, denominator = _weighted(diff * diff, weight, weighted_mean=True)
    return _reduce(elementwise, reduction, denominator), (diff, weight, reduction, denominator)


def mse_loss_backward(cache, dy=None):
    """dX = g·w·2(x − t)"""
    diff, weight, reduction, denominator = cache
    return _elementwise_backward(2 * diff, weight, reduction, denominator, dy)


def l1_loss(input, target, weight=None, reduction="mean"):
    """ℓ = w·|x − t|;  'mean' divides by Σw with a weight, else by the number of elements."""
    target, weight = _like(target, input), _like(weight, input)
    diff = input - target
    elementwise, denominator = _weighted(np.abs(diff), weight, weighted_mean=True)
    return _reduce(elementwise, reduction, denominator), (diff, weight, reduction, denominator)


def l1_loss_backward(cache, dy=None):
    """dX = g·w·sign(x − t)   (0 where x = t, as PyTorch)"""
    diff, weight, reduction, denominator = cache
    return _elementwise_backward(np.sign(diff), weight, reduction, denominator, dy)


def smooth_l1_loss(input, target, beta=1.0, reduction="mean"):
    """ℓ = ½d²/β where |d| < β, else |d| − ½β  (d = x − t; β = 0 is the L1 loss);  'mean' divides by the
    number of elements."""
    target = _like(target, input)
    diff = input - target
    absolute = np.abs(diff)
    if beta:
        elementwise = np.where(absolute < beta, (0.5 / beta) * diff * diff, absolute - 0.5 * beta)
    else:
        elementwise = absolute
    elementwise = elementwise.astype(input.dtype, copy=False)
    return _reduce(elementwise, reduction, elementwise.size), (diff, beta, reduction, elementwise.size)


def smooth_l1_loss_backward(cache, dy=None):
    """dX = g·(d/β where |d| < β, else sign d)"""
    diff, beta, reduction, denominator = cache
    local = np.where(np.abs(diff) < beta, diff / beta, np.sign(diff)) if beta else np.sign(diff)
    return _elementwise_backward(local.astype(diff.dtype, copy=False), None, reduction, denominator, dy)


def huber_loss(input, target, delta=1.0, weight=None, reduction="mean"):
    """ℓ = w·(½d² where |d| < δ, else δ(|d| − ½δ))  (d = x − t);  'mean' divides by the number of elements,
    with a weight too (as torch.nn.functional.huber_loss)."""
    target, weight = _like(target, input), _like(weight, input)
    diff = input - target
    absolute = np.abs(diff)
    elementwise = np.where(absolute < delta, 0.5 * diff * diff, delta * (absolute - 0.5 * delta))
    elementwise, denominator = _weighted(elementwise.astype(input.dtype, copy=False), weight,
                                         weighted_mean=False)
    return _reduce(elementwise, reduction, denominator), (diff, delta, weight, reduction, denominator)


def huber_loss_backward(cache, dy=None):
    """dX = g·w·clip(d, −δ, δ)"""
    diff, delta, weight, reduction, denominator = cache
    return _elementwise_backward(np.clip(diff, -delta, delta), weight, reduction, denominator, dy)


def binary_cross_entropy(input, target, weight=None, reduction="mean"):
    """Probabilities ``input`` in [0, 1]:  ℓ = −w·(t·log x + (1 − t)·log(1 − x)), each log clamped to ≥ −100
    as PyTorch (so x = 0 or 1 gives a finite loss);  'mean' divides by the number of elements."""
    target, weight = _like(target, input), _like(weight, input)
    with np.errstate(divide="ignore"):
        log_x = np.maximum(np.log(input), -100)
        log_1mx = np.maximum(np.log(1 - input), -100)
    elementwise, denominator = _weighted(-(target * log_x + (1 - target) * log_1mx), weight,
                                         weighted_mean=False)
    return _reduce(elementwise, reduction, denominator), (input, target, weight, reduction, denominator)


def binary_cross_entropy_backward(cache, dy=None):
    """dX = g·w·(x − t) / max(x(1 − x), ε),  ε = 10⁻¹² in float32 (PyTorch's guard against x = 0 or 1)"""
    x, target, weight, reduction, denominator = cache
    local = (x - target) / np.maximum(x * (1 - x), x.dtype.type(np.float32(1e-12)))
    return _elementwise_backward(local, weight, reduction, denominator, dy)


def log_sigmoid(x):
    """log σ(x) = min(x, 0) − log(1 + e^−|x|), finite for every finite x."""
    return np.minimum(x, 0) - np.log1p(np.exp(-np.abs(x)))


def binary_cross_entropy_with_logits(input, target, weight=None, pos_weight=None, reduction="mean"):
    """Logits ``input``:  ℓ = w·((1 − t)·x − (1 + (p − 1)·t)·log σ(x)),  p = pos_weight (broadcast along the
    last axis: the weight of positive examples of each class), log σ computed stably;  'mean' divides by the
    number of elements."""
    target, weight, pos_weight = _like(target, input), _like(weight, input), _like(pos_weight, input)
    log_weight = 1 if pos_weight is None else 1 + (pos_weight - 1) * target
    elementwise = ((1 - target) * input - log_weight * log_sigmoid(input)).astype(input.dtype, copy=False)
    elementwise, denominator = _weighted(elementwise, weight, weighted_mean=False)
    return _reduce(elementwise, reduction, denominator), (input, target, weight, pos_weight, reduction, denominator)


def binary_cross_entropy_with_logits_backward(cache, dy=None):
    """dX = g·w·((1 + (p − 1)·t)·σ(x) − p·t)   (= g·w·(σ(x) − t) without pos_weight)"""
    x, target, weight, pos_weight, reduction, denominator = cache
    if pos_weight is None:
        local = sigmoid(x) - target
    else:
        positive = pos_weight * target
        local = (1 + positive - target) * sigmoid(x) - positive
    return _elementwise_backward(local.astype(x.dtype, copy=False), weight, reduction, denominator, dy)


def binary_cross_entropy_with_logits_reference(input, target, weight=None, pos_weight=None, reduction="mean"):
    """Tests only: the textbook ℓ = −w·(p·t·log σ(x) + (1 − t)·log(1 − σ(x))), one element at a time, in
    float64 (for moderate logits: σ saturates beyond |x| ≈ 36)."""
    x, t = np.asarray(input, np.float64), np.asarray(target, np.float64)
    w = np.broadcast_to(1.0 if weight is None else np.asarray(weight, np.float64), x.shape)
    p = np.broadcast_to(1.0 if pos_weight is None else np.asarray(pos_weight, np.float64), x.shape)
    losses = np.array([-w[i] * (p[i] * t[i] * np.log(1 / (1 + np.exp(-x[i])))
                                + (1 - t[i]) * np.log(1 - 1 / (1 + np.exp(-x[i]))))
                       for i in np.ndindex(x.shape)]).reshape(x.shape)
    return {"none": losses, "sum": losses.sum(), "mean": losses.mean() if losses.size else np.nan}[reduction]


def kl_div(input, target, log_target=False, reduction="mean"):
    """Log-probabilities ``input``, probabilities ``target`` (log-probabilities with ``log_target``):
    ℓ = t·(log t − x), 0 where t = 0 (nan where t < 0, as PyTorch), or e^t·(t − x) with ``log_target``;
    'mean' divides by the number of elements, 'batchmean' by the batch size N = x.shape[0] (the sum for a
    0-d input)."""
    target = _like(target, input)
    if log_target:
        elementwise = np.exp(target) * (target - input)
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            elementwise = np.where(target == 0, 0, target * np.log(target)) - target * input
    elementwise = elementwise.astype(input.dtype, copy=False)
    denominator = elementwise.size
    if reduction == "batchmean":                    # the mean over the batch: the sum over N
        reduction, denominator = ("mean", input.shape[0]) if input.ndim else ("sum", 1)
    return _reduce(elementwise, reduction, denominator), (target, log_target, reduction, denominator)


def kl_div_backward(cache, dy=None):
    """dX = −g·t, or −g·e^t with ``log_target``"""
    target, log_target, reduction, denominator = cache
    local = -np.exp(target) if log_target else -target
    return _elementwise_backward(local, None, reduction, denominator, dy)


def _rows(input, target):
    """Tests only: logits as rows (M, C) in float64, targets as (M,) indices or (M, C) probabilities, and the
    shape of the unreduced loss."""
    x = np.asarray(input, np.float64)
    loss_shape = x.shape[:1] + x.shape[2:] if x.ndim > 1 else ()
    xb, tb, _ = _batched(x, target)
    rows = np.moveaxis(xb, 1, -1).reshape(-1, xb.shape[1])
    targets = np.moveaxis(tb, 1, -1).reshape(rows.shape) if tb.dtype.kind == "f" else tb.reshape(-1)
    return rows, targets, loss_shape


def _reference_coefficients(t, n_classes, w, label_smoothing, ignore_index):
    """Tests only: the coefficients q_k of −log p_k in one sample's loss, and its share of the mean's
    denominator."""
    if np.ndim(t):
        return [w[k] * ((1 - label_smoothing) * t[k] + label_smoothing / n_classes) for k in range(n_classes)], 1
    if t == ignore_index:
        return [0.0] * n_classes, 0
    return [w[k] * ((1 - label_smoothing) * (k == t) + label_smoothing / n_classes) for k in range(n_classes)], w[t]


def cross_entropy_reference(input, target, label_smoothing=0.0, weight=None, ignore_index=-100, reduction="mean"):
    """Tests only: ℓ = −Σ_k q_k log p_k one sample and one class at a time, in float64."""
    rows, targets, loss_shape = _rows(input, target)
    n_classes = rows.shape[1]
    w = np.ones(n_classes) if weight is None else np.asarray(weight, np.float64)
    losses, denominator = [], 0.0
    for logits, t in zip(rows, targets):
        m = max(logits)
        log_z = m + np.log(sum(np.exp(v - m) for v in logits))
        q, share = _reference_coefficients(t, n_classes, w, label_smoothing, ignore_index)
        losses.append(-sum(q[k] * (logits[k] - log_z) for k in range(n_classes) if q[k]))
        denominator += share
    losses = np.array(losses, np.float64).reshape(loss_shape)
    if reduction == "none":
        return losses
    return losses.sum() if reduction == "sum" else (losses.sum() / denominator if denominator else np.nan)


def cross_entropy_backward_reference(input, target, label_smoothing=0.0, weight=None, ignore_index=-100,
                                     reduction="mean", dy=1.0):
    """Tests only: the chain rule written out, dx_c = Σ_k (−g·q_k)(δ_kc − p_c), one sample and one class at a
    time, in float64."""
    rows, targets, loss_shape = _rows(input, target)
    n_classes = rows.shape[1]
    w = np.ones(n_classes) if weight is None else np.asarray(weight, np.float64)
    coefficients = [_reference_coefficients(t, n_classes, w, label_smoothing, ignore_index) for t in targets]
    denominator = sum(share for _, share in coefficients)
    dys = np.broadcast_to(np.asarray(dy, np.float64), loss_shape).reshape(-1)
    grads = []
    for logits, (q, _), g in zip(rows, coefficients, dys):
        p = [np.exp(v - max(logits)) for v in logits]
        p = [v / sum(p) for v in p]
        g = g / denominator if reduction == "mean" else g
        grads.append([sum(-g * q[k] * ((k == c) - p[c]) for k in range(n_classes)) for c in range(n_classes)])
    dx = np.array(grads, np.float64).reshape(loss_shape + (n_classes,))
    return np.moveaxis(dx, -1, 1) if np.ndim(input) > 1 else dx
