"""A tiny observer: the document emits, views connect. No Qt here."""

from __future__ import annotations

from collections.abc import Callable


class Signal:
    """``connect(fn)``, ``disconnect(fn)``, ``emit(*args)``; callbacks run in connection order.

    A callback that raises does not stop the others; its error goes to ``on_error`` (which the
    document routes to its log) so one broken view never blocks the rest."""

    __slots__ = ("_slots", "on_error")

    def __init__(self):
        self._slots: list[Callable] = []
        self.on_error: Callable[[BaseException], None] | None = None

    def connect(self, fn: Callable) -> Callable:
        if fn not in self._slots:
            self._slots.append(fn)
        return fn

    def disconnect(self, fn: Callable) -> None:
        try:
            self._slots.remove(fn)
        except ValueError:
            pass

    def emit(self, *args) -> None:
        for fn in list(self._slots):
            try:
                fn(*args)
            except Exception as err:  # noqa: BLE001 - isolate views from each other
                if self.on_error is None:
                    raise
                self.on_error(err)

    def __len__(self) -> int:
        return len(self._slots)
