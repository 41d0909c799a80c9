"""Small file helpers shared by the app's layers (atomic text writes)."""

from __future__ import annotations

from app.engine.fileio import atomic_write

__all__ = ["write_text_atomic", "atomic_write"]


def write_text_atomic(path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` through a temporary file and a rename."""
    atomic_write(path, lambda fh: fh.write(text.encode("utf-8")))
