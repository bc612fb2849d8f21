"""Atomic writes and PNG plots for the training package: :mod:`gradwise._io`, re-exported."""

from gradwise._io import atomic_write, new_figure, save_png, write_text

__all__ = ["atomic_write", "new_figure", "save_png", "write_text"]
