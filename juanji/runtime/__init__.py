"""The runtime beneath the kernels: threads over the batch, scratch memory, grad mode (per thread, as in
PyTorch) and the optional allocator policy.  It imports nothing from the rest of juanji."""
from .grad_mode import is_grad_enabled, no_grad
from .kernels import get_kernels, set_kernels
from .threads import map_batch, num_threads, over_batch, set_num_threads
from .workspace import Workspace, scratch

__all__ = ["is_grad_enabled", "no_grad", "get_kernels", "set_kernels", "map_batch", "num_threads", "over_batch",
           "set_num_threads", "Workspace", "scratch"]
