"""juanji (卷积): convolutional neural networks in plain NumPy, every forward and backward written out."""
from . import allocator
from .functional.parallel import num_threads as get_num_threads, set_num_threads

__version__ = "0.1.0"
__all__ = ["get_num_threads", "set_num_threads"]

if allocator.enabled_by_environment():
    allocator.keep_freed_memory()
