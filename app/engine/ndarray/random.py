"""``nd.random``: random NDArrays from the engine's generator (:mod:`app.engine.random`).

The default stream reproduces MXNet's CPU generator, so Gluon code prints the same numbers it
printed under MXNet; ``app.engine.random.set_stream('pcg64')`` switches to NumPy's faster PCG64.
"""

from __future__ import annotations

import numpy as np

from .. import random as _rng
from .ndarray import NDArray, _shape_tuple, _wrap

__all__ = ["uniform", "normal", "randn", "randint", "seed", "shuffle"]


def seed(seed_state, ctx="all"):
    """Reseed the generator (every stream state), as ``mx.random.seed``."""
    _rng.seed(int(seed_state))


def _fill(draw, a, b, shape, dtype, out):
    if out is not None:
        if not isinstance(out, NDArray):
            raise TypeError("out must be an NDArray")
        draw(a, b, shape=out.shape, dtype=out._data.dtype, out=out._data)
        return out
    shape = _shape_tuple(shape) if shape is not None else (1,)
    dt = np.dtype(np.float32 if dtype is None else dtype)
    return _wrap(draw(a, b, shape=shape, dtype=dt))


def uniform(low=0.0, high=1.0, shape=None, dtype=None, ctx=None, out=None, **kwargs):
    """Uniform draws in [low, high); fills ``out`` in place when given (its shape wins)."""
    return _fill(_rng.uniform, float(low), float(high), shape, dtype, out)


def normal(loc=0.0, scale=1.0, shape=None, dtype=None, ctx=None, out=None, **kwargs):
    """Normal draws N(loc, scale²); fills ``out`` in place when given."""
    return _fill(_rng.normal, float(loc), float(scale), shape, dtype, out)


def randn(*shape, loc=0.0, scale=1.0, dtype=None, **kwargs):
    return normal(loc, scale, shape or (1,), dtype)


def randint(low, high, shape=None, dtype=None, ctx=None, out=None, **kwargs):
    dt = np.dtype(np.int32 if dtype is None else dtype)
    data = _rng.randint(low, high, _shape_tuple(shape) if shape is not None else (1,), dtype=dt)
    if out is not None:
        out._data[...] = data
        return out
    return _wrap(data)


def shuffle(data, **kwargs):
    """A copy of ``data`` with its first axis permuted by the current stream."""
    n = data.shape[0]
    keys = _rng.uniform(0.0, 1.0, shape=(n,), dtype=np.float64)
    return _wrap(data._data[np.argsort(keys, kind="stable")].copy())
