"""juanji (卷积): convolutional neural networks in plain NumPy, every forward and backward written out."""
__version__ = "0.1.0"
