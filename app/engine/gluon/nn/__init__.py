"""``gluon.nn``: layers and containers."""

from .basic_layers import *  # noqa: F403
from .basic_layers import __all__  # noqa: F401
from ..block import Block, HybridBlock, SymbolBlock  # noqa: F401
