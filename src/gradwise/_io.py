"""Atomic file writes (a crash leaves the old file or the new one, never half of one) and PNG plots.

The one helper of each kind for every package: :func:`atomic_write` /
:func:`write_text`, and :func:`new_figure` + :func:`save_png` (a Figure on its
own Agg canvas; nothing calls ``matplotlib.use``). It sits at the bottom of
the package (it imports no other gradwise module), so ``schedules``,
``linear``, ``report``, ``sweep`` and ``train`` all use it without importing
each other. ``gradwise.train._io`` re-exports it.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any


def atomic_write(
    path: str | os.PathLike, write: Callable[[IO[bytes]], object], *, durable: bool = True
) -> Path:
    """Call ``write(f)`` on a temporary file beside ``path``, then rename it over ``path``.

    The temporary file is flushed and fsynced before ``os.replace`` (atomic on
    POSIX and Windows), and removed if ``write`` raises. ``durable=False``
    skips the two fsyncs (the file's and its directory's): the replace is
    still atomic (a reader sees the old file or the new one), but a power cut
    may lose the newest version. For files rewritten often whose content is
    kept elsewhere too (a metrics table rewritten every epoch).

    Example:
        >>> # atomic_write("out/latest", lambda f: f.write(b"step-00000100.pt"))
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    if not durable:
        return path
    # Make the rename itself durable; directories cannot be opened on Windows.
    with contextlib.suppress(OSError):
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    return path


def write_text(path: str | os.PathLike, text: str, *, durable: bool = True) -> Path:
    """Atomically replace ``path`` with ``text`` (UTF-8); ``durable`` as in :func:`atomic_write`."""
    return atomic_write(path, lambda f: f.write(text.encode("utf-8")), durable=durable)


def new_figure(width: float = 6.4, height: float = 3.8, dpi: int = 100) -> Any:
    """A matplotlib ``Figure`` on its own Agg canvas; pyplot's global state is never touched.

    No ``matplotlib.use`` is needed: the figure draws with Agg whatever
    backend the user's session has, so a plot made by gradwise neither opens a
    window nor changes the user's backend.

    >>> fig = new_figure(2, 1)
    >>> ax = fig.subplots()
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def save_png(
    fig: Any,
    path: str | os.PathLike,
    *,
    dpi: int = 100,
    tight: bool = True,
    bbox_inches: str | None = None,
) -> Path:
    """Write ``fig`` (from :func:`new_figure`) as a PNG, atomically.

    ``tight`` runs ``fig.tight_layout()`` first; ``bbox_inches="tight"`` crops
    the saved image to what is drawn (a legend outside the axes included).

    >>> import tempfile
    >>> fig = new_figure(2, 1); _ = fig.subplots().plot([0, 1])
    >>> save_png(fig, Path(tempfile.mkdtemp()) / "p.png").suffix
    '.png'
    """
    if tight:
        fig.tight_layout()
    return atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=dpi, bbox_inches=bbox_inches))
