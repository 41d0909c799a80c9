"""Errors and the (CPU-only) context, as Gluon code expects to find them."""

from __future__ import annotations

__all__ = ["MXNetError", "DeferredInitializationError", "Context", "cpu", "current_context"]


class MXNetError(RuntimeError):
    """Raised where MXNet's backend would raise ``MXNetError`` (shape or dtype inconsistency, ...)."""


class DeferredInitializationError(MXNetError):
    """A parameter's shape is not known yet: it will be initialized by the first forward pass."""


class Context:
    """A device context. ParamLab computes on the CPU only; ``cpu(0)`` is the one context."""

    __slots__ = ("device_type", "device_id")

    def __init__(self, device_type: str = "cpu", device_id: int = 0):
        self.device_type = device_type
        self.device_id = device_id

    def __repr__(self) -> str:
        return f"{self.device_type}({self.device_id})"

    __str__ = __repr__

    def __eq__(self, other) -> bool:
        return isinstance(other, Context) and (other.device_type, other.device_id) == (
            self.device_type, self.device_id)

    def __hash__(self) -> int:
        return hash((self.device_type, self.device_id))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


_CPU = Context("cpu", 0)


def cpu(device_id: int = 0) -> Context:
    return _CPU if device_id == 0 else Context("cpu", device_id)


def current_context() -> Context:
    return _CPU
