"""The Qt-free model of what the user edits (see :mod:`app.document.model`)."""

from . import fileformat, layers
from .model import (DocState, Document, DocumentError, InitChoice, InputSpec, LayerSpec, Link,
                    LogEntry, MemoryLimitError, ParamRow)

__all__ = ["Document", "DocumentError", "MemoryLimitError", "DocState", "InitChoice",
           "InputSpec", "LayerSpec", "Link", "LogEntry", "ParamRow", "fileformat", "layers"]
