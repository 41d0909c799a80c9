"""``gluon``: parameters, blocks, layers, losses and the Trainer, with Gluon's API."""

from . import loss, nn, parameter
from .block import Block, HybridBlock, SymbolBlock
from .parameter import Constant, DeferredInitializationError, Parameter, ParameterDict
from .trainer import Trainer

__all__ = ["Block", "HybridBlock", "SymbolBlock", "Parameter", "Constant", "ParameterDict",
           "DeferredInitializationError", "Trainer", "nn", "loss", "parameter"]
