"""The Workbench: the one object every panel talks to.

It owns the current :class:`~app.document.Document`, the plugin host and the ``QUndoStack``, and
re-emits the document's notifications as Qt signals. Every gesture goes through :meth:`run`,
which calls a document method and, when it succeeded, pushes a :class:`DocCommand` holding the
states before and after — so undo/redo covers structure edits and parameter values alike, and
views only ever re-render from the model when ``changed`` fires.

Signals:
- ``changed(str)``: what changed: 'structure', 'params', 'inits', 'input', 'file' (and
  'document' when a new document replaced the old one);
- ``logged(object)``: a :class:`~app.document.LogEntry`;
- ``selection_changed(object)``: ``('layer', uid)``, ``('param', name)``, ``('init', 'global')``
  or ``None``;
- ``failed(str)``: a gesture was refused; the message says why (also logged).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable

import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoCommand, QUndoStack

from app.document import Document, DocumentError, MemoryLimitError

__all__ = ["Workbench", "DocCommand"]


class DocCommand(QUndoCommand):
    """An undoable gesture: the document's state before and after it (a memento pair)."""

    def __init__(self, workbench: Workbench, text: str, before, after):
        super().__init__(text)
        self._wb = weakref.ref(workbench)   # no cycle through the C++-owned command
        self._before = before
        self._after = after
        self._first = True

    def redo(self):
        if self._first:          # the gesture already ran in Workbench.run
            self._first = False
            return
        self._wb().doc.restore(self._after, f"redo: {self.text()}")

    def undo(self):
        self._wb().doc.restore(self._before, f"undo: {self.text()}")


def _state_arrays(state):
    """Every array a captured DocState holds (parameters, gradients, data, optimizer)."""
    if state is None:
        return
    for snap in state.params.values():
        for arr in (snap.data, snap.grad):
            if arr is not None:
                yield arr
    for arr in (state.x, state.output, state.target):
        if arr is not None:
            yield arr
    if state.trainer is not None:
        yield from _nested_arrays(state.trainer.states)


def _nested_arrays(obj):
    """The arrays inside an optimizer state (an array, None, or tuples/lists/dicts of them)."""
    if isinstance(obj, np.ndarray):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _nested_arrays(v)
    elif isinstance(obj, (tuple, list)):
        for v in obj:
            yield from _nested_arrays(v)
    elif hasattr(obj, "_data") and isinstance(obj._data, np.ndarray):     # an NDArray
        yield obj._data


def _bytes_of(kept) -> int:
    seen, total = set(), 0
    for _text, before, after in kept:
        for state in (before, after):
            for arr in _state_arrays(state):
                if id(arr) not in seen:
                    seen.add(id(arr))
                    total += arr.nbytes
    return total


class Workbench(QObject):
    changed = Signal(str)
    logged = Signal(object)
    selection_changed = Signal(object)
    failed = Signal(str)
    busy_changed = Signal(str)      # '' when idle, else what is running ('training')

    def __init__(self, host=None, doc: Document | None = None, parent=None):
        super().__init__(parent)
        self.host = host
        self.undo_stack = QUndoStack(self)
        self.undo_stack.setObjectName("undoStack")
        self._selection = None
        self._busy = ""
        # goes up on every change of the undo history (push, undo, redo, trimming): the
        # index alone can come back to a value already seen once old steps are forgotten
        self.generation = 0
        self._trim_told = False
        self.undo_stack.indexChanged.connect(self._bump_generation)
        self.doc: Document | None = None
        # Asked when an edit would exceed the memory limit; the window shows a question.
        self.confirm_large: Callable[[str], bool] = lambda message: False
        self.set_document(doc if doc is not None else Document(host=host))

    # ----------------------------------------------------------------- document
    def _bump_generation(self, *_args) -> None:
        self.generation += 1

    # ----------------------------------------------------------------- busy
    @property
    def busy(self) -> str:
        """What holds the document ('training'), or '' when it can be edited."""
        return self._busy

    def set_busy(self, what: str) -> None:
        """Mark the document as held by a background job (``''`` releases it). While busy,
        :meth:`run` refuses every gesture and the window disables its editing controls."""
        if what != self._busy:
            self._busy = what
            self.busy_changed.emit(what)

    def busy_message(self) -> str:
        return (f"the model is {self._busy}: wait for the run to finish or cancel it "
                "(Model → Cancel Training, Shift+F9), then try again") if self._busy else ""

    # ----------------------------------------------------------------- document
    def set_document(self, doc: Document) -> None:
        """Make ``doc`` the current document (after New/Open/Restore); clears undo history."""
        if self._busy:
            raise DocumentError(self.busy_message())
        if self.doc is not None:
            self.doc.changed.disconnect(self._on_doc_changed)
            self.doc.logged.disconnect(self._on_doc_logged)
        self.doc = doc
        doc.host = self.host if doc.host is None else doc.host
        doc.changed.connect(self._on_doc_changed)
        doc.logged.connect(self._on_doc_logged)
        self.undo_stack.clear()
        self.undo_stack.setClean()
        self._selection = None
        self.changed.emit("document")
        self.selection_changed.emit(None)

    def _on_doc_changed(self, what: str) -> None:
        self.changed.emit(what)

    def _on_doc_logged(self, entry) -> None:
        self.logged.emit(entry)

    # ----------------------------------------------------------------- gestures
    def run(self, text: str, fn: Callable[[Document], object]):
        """Run ``fn(doc)`` as one undoable step named ``text``.

        Returns ``(True, result)``; when the document refuses (``DocumentError``) nothing is
        pushed, the reason is logged and emitted on ``failed``, and ``(False, message)`` is
        returned. An edit over the memory limit asks ``confirm_large`` first."""
        doc = self.doc
        if self._busy:
            message = self.busy_message()
            doc.error(f"{text}: {message}")
            self.failed.emit(message)
            return False, message
        before = doc.capture()
        try:
            try:
                result = fn(doc)
            except MemoryLimitError as err:
                if not self.confirm_large(str(err)):
                    raise
                limit = doc.memory_limit
                doc.memory_limit = max(limit, err.nbytes + 1)
                try:
                    result = fn(doc)
                finally:
                    doc.memory_limit = limit
        except DocumentError as err:
            # A gesture made of several document calls may have changed something before the
            # one that refused: put everything back so a refused gesture changes nothing.
            if not doc.state_equals(before):
                doc.restore(before, label=None)
            message = str(err)
            if not doc.log_entries or doc.log_entries[-1].message.find(message) < 0:
                doc.error(f"{text}: {message}")
            self.failed.emit(message)
            return False, message
        self.push_captured(text, before, doc.capture())
        return True, result

    def push_captured(self, text: str, before, after) -> None:
        """Record a change that already happened (e.g. from the console) as one undo step."""
        self.undo_stack.push(DocCommand(self, text, before, after))
        self._keep_undo_within_budget()

    # ----------------------------------------------------------------- undo memory
    UNDO_BUDGET = 2 << 30       # bytes the undo history may hold (arrays counted once)

    def undo_bytes(self) -> int:
        """Memory held by the undo history: every array its states hold, shared ones once."""
        seen, total = set(), 0
        for i in range(self.undo_stack.count()):
            cmd = self.undo_stack.command(i)
            for state in (getattr(cmd, "_before", None), getattr(cmd, "_after", None)):
                for arr in _state_arrays(state):
                    if id(arr) not in seen:
                        seen.add(id(arr))
                        total += arr.nbytes
        return total

    def _keep_undo_within_budget(self) -> None:
        """Forget the oldest undo steps while the history holds more than UNDO_BUDGET (a big
        model's training runs each keep a full copy of the parameters). QUndoStack cannot
        drop its oldest command, so the newest ones are pushed again onto a cleared stack
        (their changes already happened: pushing does not re-apply them)."""
        stack = self.undo_stack
        if stack.count() < 2 or stack.index() != stack.count() or \
                self.undo_bytes() <= self.UNDO_BUDGET:
            return
        cmds = [stack.command(i) for i in range(stack.count())]
        kept = [(c.text(), c._before, c._after) for c in cmds]
        clean = stack.cleanIndex()
        dropped = 0
        while len(kept) > 1:
            kept.pop(0)
            dropped += 1
            if _bytes_of(kept) <= self.UNDO_BUDGET:
                break
        target = -1 if clean == -1 else clean - dropped   # where the saved state now is
        stack.clear()                    # also deletes the commands (clean at index 0)
        for i, (text, before, after) in enumerate(kept):
            if i == target:
                stack.setClean()
            stack.push(DocCommand(self, text, before, after))
        if target == len(kept):
            stack.setClean()
        elif target < 0:
            stack.resetClean()           # the saved state is no longer reachable by undo
        self._bump_generation()
        if not self._trim_told:         # once: afterwards every big step would repeat it
            self._trim_told = True
            self.doc.info(f"undo: the oldest steps are forgotten from now on to keep the "
                          f"undo history under {self.UNDO_BUDGET / 2**30:.0f} GiB "
                          f"({len(kept)} steps kept)")

    # ----------------------------------------------------------------- selection
    @property
    def selection(self):
        return self._selection

    def select(self, selection) -> None:
        if selection != self._selection:
            self._selection = selection
            self.selection_changed.emit(selection)

    def selected_layer(self) -> str | None:
        sel = self._selection
        if sel and sel[0] == "layer":
            try:
                self.doc.layer(sel[1])
            except DocumentError:
                return None
            return sel[1]
        return None
