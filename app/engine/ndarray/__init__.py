"""``nd``: NDArray creation, operators and random draws (MXNet's ``mxnet.ndarray``)."""

from . import random
from .io import load, save
from .ndarray import *  # noqa: F403
from .ndarray import __all__ as _ops

random_uniform = random.uniform
random_normal = random.normal
random_randint = random.randint

__all__ = list(_ops) + ["random", "random_uniform", "random_normal", "random_randint",
                        "save", "load"]
