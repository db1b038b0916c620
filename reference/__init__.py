"""reference: NumPy reference CNN layers, their PyTorch twins, and the checks that keep them honest."""

__version__ = "0.1.0"
