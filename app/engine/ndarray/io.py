"""``nd.save`` / ``nd.load``: NDArrays to and from ``.npz`` (atomic write, no pickle)."""

from __future__ import annotations

import numpy as np

from ..fileio import load_arrays, save_arrays
from .ndarray import NDArray, _wrap

_LIST_MARK = "__paramlab_list__"


def save(fname, data) -> None:
    """Save an NDArray, a list of NDArrays or a dict name → NDArray to ``fname``."""
    if isinstance(data, NDArray):
        data = [data]
    if isinstance(data, dict):
        arrays = {str(k): np.ascontiguousarray(v._data if isinstance(v, NDArray) else v)
                  for k, v in data.items()}
    else:
        arrays = {str(i): np.ascontiguousarray(v._data if isinstance(v, NDArray) else v)
                  for i, v in enumerate(data)}
        arrays[_LIST_MARK] = np.zeros((0,), np.uint8)
    save_arrays(fname, arrays)


def load(fname):
    """Load what :func:`save` wrote: a list or a dict of NDArrays."""
    arrays = load_arrays(fname)
    if _LIST_MARK in arrays:
        del arrays[_LIST_MARK]
        return [_wrap(arrays[str(i)]) for i in range(len(arrays))]
    return {k: _wrap(v) for k, v in arrays.items()}
