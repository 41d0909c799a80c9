"""ParamLab's engine: NumPy with MXNet Gluon's parameter semantics.

Gluon code ports by changing its imports::

    from app.engine import nd, init, autograd, gluon
    from app.engine.gluon import nn

This package imports NumPy only — no Qt, no pyqtgraph, no pluggy — so it runs headless anywhere.
"""

from . import autograd, base, initializer, optimizer, random
from . import ndarray
from . import gluon
from .base import Context, DeferredInitializationError, MXNetError, cpu, current_context

nd = ndarray
init = initializer

__all__ = ["base", "nd", "ndarray", "init", "initializer", "autograd", "gluon", "random", "optimizer",
           "cpu", "current_context", "Context", "MXNetError", "DeferredInitializationError"]
