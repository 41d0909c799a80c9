"""Atomic writes and safe reads of ``.npz`` array archives (never pickle, never code)."""

from __future__ import annotations

import os
import tempfile
import zipfile
from collections.abc import Callable, Mapping

import numpy as np

__all__ = ["atomic_write", "save_arrays", "load_arrays", "ArchiveError"]


class ArchiveError(ValueError):
    """A file could not be read as an array archive; the message says which file and why."""


def atomic_write(path: str | os.PathLike, write: Callable[[object], None]) -> None:
    """Call ``write(fileobj)`` on a temporary file beside ``path``, then rename it over ``path``.

    Either the whole new file is in place or the old one is untouched (the rename is atomic on
    POSIX and Windows). The temporary file is removed if ``write`` raises.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp",
                               dir=directory)
    try:
        # mkstemp makes the file private (0600); give the result the mode a plain open()
        # would: the existing file's, else what the umask allows
        try:
            mode = os.stat(path).st_mode & 0o7777
        except OSError:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        if hasattr(os, "fchmod"):
            os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def save_arrays(path, arrays: Mapping[str, np.ndarray]) -> None:
    """Write ``arrays`` (name → NumPy array) to ``path`` as an uncompressed ``.npz``, atomically.

    The name is used as given (no ``.npz`` suffix is appended)."""
    for name, arr in arrays.items():
        if not isinstance(arr, np.ndarray) or arr.dtype.hasobject:
            raise TypeError(f"cannot save {name!r}: only numeric arrays can be saved")
    atomic_write(path, lambda fh: np.savez(fh, **arrays))


def load_arrays(path) -> dict[str, np.ndarray]:
    """Read an ``.npz`` written by :func:`save_arrays` with ``allow_pickle=False``.

    Raises :class:`ArchiveError` naming the file and the reason for a missing, truncated or
    foreign file, or one holding object arrays."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ArchiveError(f"Cannot read '{path}': no such file.")
    try:
        with np.load(path, allow_pickle=False) as npz:
            if not isinstance(npz, np.lib.npyio.NpzFile):
                raise ArchiveError(
                    f"Cannot read '{path}': it holds a single array, not a parameter archive "
                    "(.npz).")
            return {k: npz[k] for k in npz.files}
    except ArchiveError:
        raise
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError) as err:
        raise ArchiveError(
            f"Cannot read '{path}': it is not a valid .npz parameter archive or it is damaged "
            f"({type(err).__name__}: {err}).") from err
