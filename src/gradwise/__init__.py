"""gradwise: gradient-based training and fine-tuning on PyTorch."""

__version__ = "0.1.0"

__all__ = ["__version__"]
