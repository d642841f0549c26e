"""juanji (卷积): convolutional neural networks in plain NumPy, every forward and backward written out."""
from . import allocator

__version__ = "0.1.0"

if allocator.enabled_by_environment():
    allocator.keep_freed_memory()
