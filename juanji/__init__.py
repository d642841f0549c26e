"""juanji (卷积): convolutional neural networks in plain NumPy, every forward and backward written out.

Importing it changes nothing process-wide (malloc's settings, BLAS's threads): see ``juanji.runtime``."""
from .runtime.kernels import get_kernels, set_kernels
from .runtime.threads import num_threads as get_num_threads, set_num_threads

__version__ = "0.1.0"
__all__ = ["get_kernels", "get_num_threads", "set_kernels", "set_num_threads"]
