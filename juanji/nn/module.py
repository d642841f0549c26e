"""The base class of every layer: parameters, gradients, buffers, children, train/eval, state_dict.

A layer owns three dicts with fixed arrays:

- ``params``  name -> ndarray, updated *in place* by optimizers and ``load_state_dict``;
- ``grads``   the same keys, overwritten *in place* by ``backward`` (no accumulation, no zero_grad needed);
- ``buffers`` non-trained state that is saved (BatchNorm's running statistics).

Because arrays are never replaced, a reference taken once (by an optimizer, say) stays valid for the
life of the layer; nothing has to be re-wired after loading a checkpoint.

What forward keeps for backward goes through one mechanism: ``save_for_backward(...)`` in forward keeps it
only while grad is enabled (``no_grad`` keeps nothing), ``saved_for_backward()`` in backward takes it —
or raises the one error every layer gives — and lets it go unless ``retain_cache()`` asked to keep it.
Beside it, calling a layer records its output's shape, and every subclass's ``backward`` is wrapped once
(``__init_subclass__``) to refuse an output gradient ``dy`` of any other shape, naming the layer.

Tools observe a layer through hooks, as in PyTorch, never by replacing its methods:
``register_forward_pre_hook(hook(module, args))``, ``register_forward_hook(hook(module, args, output))``,
``register_full_backward_pre_hook(hook(module, grad_output))`` and
``register_full_backward_hook(hook(module, grad_input, grad_output))``; each returns a handle whose
``remove()`` takes the hook away, and a hook that returns something other than None replaces what it was
given (the input, the output, dY or dX).
"""
from __future__ import annotations

import functools
import itertools
from collections import OrderedDict
from typing import Callable, Iterator

import numpy as np

from ..runtime.grad_mode import is_grad_enabled


class RemovableHandle:
    """What ``register_*_hook`` returns: ``remove()`` takes the hook away (twice is harmless); as a context
    manager, the hook lives for the ``with`` block."""
    _ids = itertools.count()

    def __init__(self, hooks: OrderedDict):
        self._hooks = hooks
        self.id = next(self._ids)

    def remove(self) -> None:
        self._hooks.pop(self.id, None)

    def __enter__(self) -> "RemovableHandle":
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def factory_dtype(layer: str, device, dtype) -> np.dtype:
    """The dtype of a layer's arrays from torch's factory arguments: ``dtype`` None is float32, else float32
    or float64 (a NumPy dtype, its name, or torch's); ``device`` None or "cpu" (juanji runs NumPy on the CPU)."""
    if device is not None and str(device) != "cpu":
        raise ValueError(f"{layer}: device must be None or 'cpu' (juanji computes with NumPy on the CPU), "
                         f"got {str(device)!r}")
    if dtype is None:
        return DTYPES[0]
    try:
        resolved = np.dtype(str(dtype).removeprefix("torch.") if type(dtype).__module__ == "torch" else dtype)
    except TypeError:
        resolved = None
    if resolved is None or resolved not in DTYPES:     # (np.dtype == None holds for float64)
        raise TypeError(f"{layer}: dtype must be float32 or float64 (a floating-point dtype; None: float32), "
                        f"got {dtype!r}")
    return resolved


class Module:
    """Base class: subclasses implement ``forward(x)`` and ``backward(dy) -> dx``.

    Sub-modules assigned as attributes (``self.conv = Conv2d(...)``) are registered as children
    and get PyTorch-style dotted names (``features.0.weight``).
    """

    training: bool
    _saved: tuple | None = None     # what the last forward kept for backward
    retains_cache = False           # keep it after backward too (``retain_cache``)
    _out_shape: tuple | None = None  # the shape of the last output computed with grad enabled
    # Hooks, by kind: an OrderedDict {handle id: hook} made at the first registration (most layers have none).
    _hooks: dict[str, OrderedDict] | None = None
    # Buffers a state_dict may lack (one saved before the buffer existed, such as BatchNorm's
    # num_batches_tracked): loading leaves them as they are, as torch does.
    optional_buffers: tuple[str, ...] = ()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "backward" in cls.__dict__:
            cls.backward = _checks_dy(cls.__dict__["backward"])

    def __init__(self):
        object.__setattr__(self, "_modules", OrderedDict())
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.buffers: dict[str, np.ndarray] = {}
        self.training = True

    def __setattr__(self, name, value):
        if isinstance(value, Module):
            self._modules[name] = value
        elif name in self.__dict__.get("_modules", ()):
            del self._modules[name]
        object.__setattr__(self, name, value)

    # -- computation -------------------------------------------------------------------------
    def forward(self, x):
        raise NotImplementedError(f"{type(self).__name__} has no forward")

    def backward(self, dy):
        raise NotImplementedError(f"{type(self).__name__} has no backward")

    # The bookkeeping below runs for every layer on every step and never holds a module: it is set with
    # object.__setattr__, past the child registry of __setattr__ (LeNet-5: ~50 calls a step).
    def __call__(self, *inputs, **options):
        """forward(*inputs, **options); keyword options (ConvTranspose's output_size, …) reach forward but not the
        hooks, which see the positional inputs as torch's hooks do."""
        object.__setattr__(self, "_out_shape", None)      # a forward that raises leaves no stale shape
        hooks = self._hooks
        if hooks and hooks["forward_pre"]:
            for hook in list(hooks["forward_pre"].values()):
                result = hook(self, inputs)
                if result is not None:
                    inputs = result if isinstance(result, tuple) else (result,)
        y = self.forward(*inputs, **options)
        if hooks and hooks["forward"]:
            for hook in list(hooks["forward"].values()):
                result = hook(self, inputs, y)
                if result is not None:
                    y = result
        if is_grad_enabled():                               # None for a non-array output: unchecked
            object.__setattr__(self, "_out_shape", getattr(y, "shape", None))
        return y

    # -- hooks ------------------------------------------------------------------------------------
    def _register(self, kind: str, hook: Callable, prepend: bool) -> RemovableHandle:
        if self._hooks is None:
            object.__setattr__(self, "_hooks", {name: OrderedDict() for name in HOOK_KINDS})
        hooks = self._hooks[kind]
        handle = RemovableHandle(hooks)
        hooks[handle.id] = hook
        if prepend:
            hooks.move_to_end(handle.id, last=False)
        return handle

    def register_forward_pre_hook(self, hook: Callable, *, prepend: bool = False) -> RemovableHandle:
        """``hook(module, args)`` before each forward; a value it returns replaces the input (a tuple of
        arguments, or one that is wrapped in a tuple). Hooks run in order of registration (``prepend``:
        first). Unlike torch's autograd, backward does not differentiate the hook's change: it gives the
        gradient with respect to the input forward received."""
        return self._register("forward_pre", hook, prepend)

    def register_forward_hook(self, hook: Callable, *, prepend: bool = False) -> RemovableHandle:
        """``hook(module, args, output)`` after each forward; a value it returns replaces the output."""
        return self._register("forward", hook, prepend)

    def register_full_backward_pre_hook(self, hook: Callable, *, prepend: bool = False) -> RemovableHandle:
        """``hook(module, grad_output)`` before each backward, ``grad_output`` = (dY,); a value it returns
        (a tuple of one array) replaces dY."""
        return self._register("backward_pre", hook, prepend)

    def register_full_backward_hook(self, hook: Callable, *, prepend: bool = False) -> RemovableHandle:
        """``hook(module, grad_input, grad_output)`` after each backward, ``grad_input`` = (dX,); a value it
        returns (a tuple of one array) replaces dX."""
        return self._register("backward", hook, prepend)

    # -- the cache from forward to backward --------------------------------------------------------
    def save_for_backward(self, *values) -> None:
        """Keep ``values`` for this layer's backward; under ``no_grad`` keep nothing (and drop an older
        cache), so that memory lives only while the layer runs."""
        object.__setattr__(self, "_saved", values if is_grad_enabled() else None)

    def saved_for_backward(self) -> tuple:
        """The values the last forward saved, released here unless the layer retains its cache."""
        saved = self._saved
        if saved is None:
            raise RuntimeError(f"{self!r}: backward called before forward (or after a forward under no_grad)")
        if not self.retains_cache:
            object.__setattr__(self, "_saved", None)
        return saved

    def retain_cache(self, mode: bool = True) -> "Module":
        """Keep every layer's cache after backward, so that backward may run again on the same forward
        (as ``retain_graph=True`` in PyTorch); ``retain_cache(False)`` releases caches after backward again."""
        for module in self.modules():
            module.retains_cache = mode
        return self

    def _name(self) -> str:
        """The layer as one line: its repr, or a container's class name (whose repr spans lines)."""
        return type(self).__name__ if self._modules else repr(self)

    # -- structure -----------------------------------------------------------------------------
    def named_children(self) -> Iterator[tuple[str, "Module"]]:
        return iter(self._modules.items())

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, "Module"]]:
        """Yield ``(dotted_name, module)`` for this module (name ``prefix``) and all descendants."""
        yield prefix, self
        for name, child in self._modules.items():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self) -> Iterator["Module"]:
        return (m for _, m in self.named_modules())

    def parameters(self) -> list[tuple[str, np.ndarray, np.ndarray]]:
        """Every trainable array as ``(dotted_name, param, grad)``; param and grad are updated in place."""
        return [(f"{prefix}.{key}" if prefix else key, module.params[key], module.grads[key])
                for prefix, module in self.named_modules() for key in module.params]

    def num_parameters(self) -> int:
        return sum(p.size for _, p, _ in self.parameters())

    # -- modes ----------------------------------------------------------------------------------
    def train(self, mode: bool = True) -> "Module":
        for module in self.modules():
            module.training = mode
        return self

    def eval(self) -> "Module":
        return self.train(False)

    def zero_grad(self) -> None:
        for _, _, grad in self.parameters():
            grad.fill(0)

    def to(self, dtype) -> "Module":
        """Convert every parameter, gradient and floating buffer to ``dtype`` (do this before
        creating an optimizer: it replaces the arrays). ``dtype``: float32 or float64, as the constructors take,
        the only ones the kernels compute in (a NumPy dtype, its name, or torch's)."""
        dtype = factory_dtype(f"{type(self).__name__}.to", None, dtype)
        for module in self.modules():
            module.params = {k: v.astype(dtype) for k, v in module.params.items()}
            module.grads = {k: v.astype(dtype) for k, v in module.grads.items()}
            module.buffers = {k: v.astype(dtype) if v.dtype.kind == "f" else v
                              for k, v in module.buffers.items()}
        return self

    @property
    def dtype(self) -> np.dtype | None:
        """The dtype of the first parameter, else of the first floating buffer (BatchNorm without affine);
        None for a module with neither.  Every layer's input check asks for it on every call: a layer without
        children is its own only module, with no generator to walk (a few µs a LeNet-5 step)."""
        modules = list(self.modules()) if self._modules else [self]
        for module in modules:
            for param in module.params.values():
                return param.dtype
        for module in modules:
            for buffer in module.buffers.values():
                if buffer.dtype.kind == "f":
                    return buffer.dtype
        return None

    # -- saving -------------------------------------------------------------------------------------
    def state_dict(self) -> "OrderedDict[str, np.ndarray]":
        """Copies of all parameters and buffers, keyed by PyTorch-style dotted names."""
        state = OrderedDict()
        for prefix, module in self.named_modules():
            for key, value in {**module.params, **module.buffers}.items():
                state[f"{prefix}.{key}" if prefix else key] = value.copy()
        return state

    def optional_state_names(self) -> set[str]:
        """The dotted names of the buffers that a state_dict may lack (``optional_buffers``)."""
        return {f"{prefix}.{key}" if prefix else key for prefix, module in self.named_modules()
                for key in module.optional_buffers if key in module.buffers}

    def load_state_dict(self, state_dict, strict: bool = True) -> None:
        """Copy arrays into the existing parameters and buffers (in place, cast to their dtype).

        Raises ``KeyError`` naming missing/unexpected keys (when ``strict``; an ``optional_buffers`` entry
        may be missing, and then keeps its value) and ``ValueError`` naming the first shape mismatch;
        nothing is modified unless every array fits.
        """
        targets = {}
        for prefix, module in self.named_modules():
            for key, value in {**module.params, **module.buffers}.items():
                targets[f"{prefix}.{key}" if prefix else key] = value
        optional = self.optional_state_names()
        missing = [k for k in targets if k not in state_dict and k not in optional]
        unexpected = [k for k in state_dict if k not in targets]
        if strict and (missing or unexpected):
            raise KeyError(f"{type(self).__name__}.load_state_dict: missing keys {missing}, "
                           f"unexpected keys {unexpected}")
        for name, target in targets.items():
            if name in state_dict and np.shape(state_dict[name]) != target.shape:
                raise ValueError(f"{type(self).__name__}.load_state_dict: '{name}' expects shape "
                                 f"{target.shape}, got {np.shape(state_dict[name])}")
        for name, target in targets.items():
            if name in state_dict:
                target[...] = state_dict[name]

    # -- display ---------------------------------------------------------------------------------------
    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        if not self._modules:
            return f"{type(self).__name__}({self.extra_repr()})"
        lines = [f"{type(self).__name__}("]
        for name, child in self._modules.items():
            child_repr = repr(child).replace("\n", "\n  ")
            lines.append(f"  ({name}): {child_repr}")
        lines.append(")")
        return "\n".join(lines)

    # -- input validation shared by all layers ----------------------------------------------------
    def _check_input(self, x, shape_desc: str, ndim: int | tuple[int, ...], channels: int | None = None,
                     channel_axis: int = 1):
        """Raise a TypeError/ValueError naming this layer, what it expected and what it got."""
        if not isinstance(x, np.ndarray):
            raise TypeError(f"{self!r}: expected a NumPy array of shape {shape_desc}, "
                            f"got {type(x).__name__}")
        ndims = (ndim,) if isinstance(ndim, int) else ndim
        if x.ndim not in ndims:
            raise ValueError(f"{self!r}: expected input of shape {shape_desc}, got {x.ndim}-D "
                             f"input of shape {x.shape}")
        if channels is not None and x.shape[channel_axis] != channels:
            raise ValueError(f"{self!r}: expected input of shape {shape_desc} with "
                             f"{channels} channels, got shape {x.shape} ({x.shape[channel_axis]} "
                             f"channels)")
        if x.dtype.kind != "f":
            raise TypeError(f"{self!r}: expected a floating-point input, got dtype {x.dtype} "
                            f"(convert first, e.g. x.astype(np.float32) / 255)")
        expected = self.dtype
        if expected is not None and x.dtype != expected:
            raise TypeError(f"{self!r}: parameters are {expected} but the input is {x.dtype}; "
                            f"convert the input or call .to({x.dtype}) on the model")


HOOK_KINDS = ("forward_pre", "forward", "backward_pre", "backward")


def _checks_dy(backward):
    """``backward`` refusing a ``dy`` whose shape is not that of the output it is the gradient of, and running
    the backward hooks around it.  Only the instance's own class's backward checks and runs hooks: a
    subclass's backward calling ``super().backward`` on part of ``dy`` (DenseLayer) is not checked again
    against the whole output.  A loss's ``backward()`` takes no dy."""
    @functools.wraps(backward)
    def checked(self, *args, **kwargs):
        if type(self).backward is not checked:
            return backward(self, *args, **kwargs)
        dy = args[0] if args else kwargs.get("dy")
        expected = self._out_shape
        if expected is not None and dy is not None and np.shape(dy) != expected:
            raise ValueError(f"{self._name()}: backward expected dy of shape {expected} (the shape of its "
                             f"forward's output), got {np.shape(dy)}")
        hooks = self._hooks
        if not hooks or not (hooks["backward_pre"] or hooks["backward"]) or dy is None:
            return backward(self, *args, **kwargs)
        grad_output = (dy,)
        for hook in list(hooks["backward_pre"].values()):
            result = hook(self, grad_output)
            if result is not None:
                grad_output = tuple(result)
        dx = backward(self, *grad_output, *args[1:], **{k: v for k, v in kwargs.items() if k != "dy"})
        for hook in list(hooks["backward"].values()):
            result = hook(self, (dx,), grad_output)
            if result is not None:
                dx, = result
        return dx
    return checked
