"""The Console: an embedded Python REPL bound to the live model.

The namespace holds ``net`` (the document's network), ``params`` (``net.collect_params()``),
``x`` (the input batch), ``nd``, ``init``, ``gluon``, ``autograd``, ``nn``, ``np`` and ``doc``;
``net``/``params``/``x``/``doc`` follow the document when its structure, input or the document
itself changes. Lines run like Python's interactive prompt (expressions echo their repr, blocks
continue with ``...``), stdout/stderr and tracebacks go to the output, and nothing a line does
can take the app down.

A line that changed the model (any parameter's values, shape or state, the input or the
structure) becomes one undo step, "Console: <line>", and the document then announces 'params' so
every view follows. The engine's warnings print like Python prints them and go to the Log.
"""

from __future__ import annotations

import code
import contextlib
import sys
import traceback
import warnings

import numpy as np
from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtGui import QColor, QFontDatabase, QTextCharFormat, QTextCursor
from PySide6.QtWidgets import QHBoxLayout, QLabel, QLineEdit, QPlainTextEdit, QVBoxLayout, QWidget

from app.engine import autograd, gluon, init, nd
from app.engine.gluon import nn

try:
    from app.ui.style import ERROR_COLOR, is_dark
except ImportError:                     # pragma: no cover
    ERROR_COLOR = "#d64545"

    def is_dark(palette=None):
        return False

__all__ = ["ConsolePanel", "states_differ"]

PS1, PS2 = ">>> ", "... "
_BANNER = ("Python console on the live model: net, params, x, nd, init, gluon, autograd, nn, "
           "np, doc.\nA line that changes parameters is one undo step.")


def _same_array(a, b) -> bool:
    if a is None or b is None:
        return a is b
    return a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True)


def states_differ(before, after) -> bool:
    """Whether two ``Document.capture()`` states differ in what the user edits: the structure,
    a parameter's shape, dtype, state, values or gradient, or the input batch."""
    if before.spec != after.spec or set(before.params) != set(after.params):
        return True
    for name, a in before.params.items():
        b = after.params[name]
        if a.shape != b.shape or a.dtype != b.dtype or a.grad_req != b.grad_req:
            return True
        if (a.deferred is None) != (b.deferred is None) or \
                (a.deferred is not b.deferred and a.deferred != b.deferred):
            return True
        if not _same_array(a.data, b.data) or not _same_array(a.grad, b.grad):
            return True
    return not _same_array(before.x, after.x)


def _values_differ(before, after) -> bool:
    """Whether some parameter's values (not its gradient) differ between two captures."""
    if set(before.params) != set(after.params):
        return True
    return any(not _same_array(a.data, after.params[n].data) for n, a in before.params.items())


def _matches_latest_snapshot(doc) -> bool:
    """Whether every parameter's values are those of the timeline's latest snapshot."""
    snaps = doc.history.snapshots
    if not snaps:
        return True
    latest = snaps[-1].params
    for name, p in doc.params().items():
        rec = latest.get(name)
        cur = None if p._data is None else p._data._data
        if (rec is None or rec.data is None) != (cur is None):
            return False
        if cur is not None and not _same_array(rec.data, cur):
            return False
    return True


def _grads_differ(before, after) -> bool:
    return any(not _same_array(a.grad, after.params[n].grad) for n, a in before.params.items()
               if n in after.params)


def _same_value(a, b) -> bool:
    """Deep equality of random-stream snapshots (tuples, dicts, arrays); identical objects
    (an idle generator state keeps its snapshot) compare at once."""
    if a is b:
        return True
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and \
            a.shape == b.shape and np.array_equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and \
            all(_same_value(a[k], b[k]) for k in a)
    if isinstance(a, (tuple, list)):
        return isinstance(b, (tuple, list)) and len(a) == len(b) and \
            all(_same_value(x, y) for x, y in zip(a, b))
    return a == b


class _Writer:
    """A file-like object that appends to the console output."""

    def __init__(self, panel, kind):
        self._panel, self._kind = panel, kind

    def write(self, text):
        if text:
            self._panel._append(text, self._kind)
        return len(text)

    def flush(self):
        pass

    def isatty(self):
        return False


class _Interpreter(code.InteractiveInterpreter):
    def __init__(self, panel, namespace):
        super().__init__(namespace)
        self._panel = panel

    def write(self, data):
        self._panel._append(data, "error")

    # Python's versions hand the error to sys.excepthook when an app (or pytest-qt) replaced
    # it; a console error belongs in the console.
    def showsyntaxerror(self, filename=None, **_kwargs):
        typ, value, _tb = sys.exc_info()
        if filename and isinstance(value, SyntaxError):
            value.filename = filename
        self.write("".join(traceback.format_exception_only(typ, value)))

    def showtraceback(self):
        typ, value, tb = sys.exc_info()
        tb = tb.tb_next if tb is not None else None     # drop runcode's own frame
        self.write("".join(traceback.format_exception(typ, value, tb)))

    def runcode(self, code_obj):
        try:
            exec(code_obj, self.locals)  # noqa: S102 - the user's own console
        except SystemExit:
            self._panel._append("exit() does nothing here: close the console dock instead.\n",
                                "error")
        except BaseException:  # noqa: BLE001 - a console line never takes the app down
            self.showtraceback()


class _InputLine(QLineEdit):
    """The input line: Enter runs, Up/Down walk the history."""

    submitted = Signal(str)
    cancelled = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.history: list[str] = []
        self._pos = 0
        self._draft = ""

    def remember(self, line: str) -> None:
        if line.strip() and (not self.history or self.history[-1] != line):
            self.history.append(line)
        self._pos = len(self.history)
        self._draft = ""

    def keyPressEvent(self, event):  # noqa: N802 - Qt override
        key = event.key()
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.submitted.emit(self.text())
            return
        if key == Qt.Key.Key_Escape:
            self.cancelled.emit()
            return
        if key == Qt.Key.Key_Up:
            if self._pos == len(self.history):
                self._draft = self.text()
            if self._pos > 0:
                self._pos -= 1
                self.setText(self.history[self._pos])
            return
        if key == Qt.Key.Key_Down:
            if self._pos < len(self.history):
                self._pos += 1
                self.setText(self.history[self._pos] if self._pos < len(self.history)
                             else self._draft)
            return
        if key == Qt.Key.Key_Tab:
            self.insert("    ")
            return
        super().keyPressEvent(event)

    def event(self, e):
        # Tab inserts indentation instead of moving the focus.
        if e.type() == QEvent.Type.KeyPress and e.key() == Qt.Key.Key_Tab:
            self.keyPressEvent(e)
            return True
        return super().event(e)


class ConsolePanel(QWidget):
    """``consoleOutput`` (read-only) above ``consoleInput`` (with a ``>>>``/``...`` prompt)."""

    def __init__(self, workbench, parent=None):
        super().__init__(parent)
        self.setObjectName("consolePanel")
        self._wb = workbench
        self._buffer: list[str] = []
        self._before = None

        mono = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        self.output = QPlainTextEdit()
        self.output.setObjectName("consoleOutput")
        self.output.setReadOnly(True)
        self.output.setFont(mono)
        self.output.setMaximumBlockCount(5000)
        self.output.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
        self.output.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.prompt = QLabel(PS1.strip())
        self.prompt.setObjectName("consolePrompt")
        self.prompt.setFont(mono)
        self.input = _InputLine()
        self.input.setObjectName("consoleInput")
        self.input.setFont(mono)
        self.input.setToolTip("Enter runs the line · Up/Down: history · a line ending in ':' "
                              "starts a block; an empty line ends it · Escape abandons it")

        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(6)
        row.addWidget(self.prompt)
        row.addWidget(self.input, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.setSpacing(4)
        layout.addWidget(self.output, 1)
        layout.addLayout(row)
        self.setFocusProxy(self.input)

        self.namespace: dict = {"__name__": "__console__", "__doc__": None,
                                "nd": nd, "init": init, "gluon": gluon, "autograd": autograd,
                                "nn": nn, "np": np, "help": self._help, "input": self._no_input}
        self._interp = _Interpreter(self, self.namespace)
        self._bind_document()
        self._append(_BANNER + "\n", "hint")

        workbench.changed.connect(self._on_document_changed)
        self.input.submitted.connect(self._on_input_submitted)
        self.input.cancelled.connect(self._on_input_cancelled)

    # ----------------------------------------------------------------- public
    def execute(self, source: str) -> bool:
        """Run ``source`` as if typed at the prompt, line by line (a block needs its closing
        empty line). Returns True while a block waits for more lines."""
        lines = source.split("\n")
        more = False
        for i, line in enumerate(lines):
            if i and i == len(lines) - 1 and line == "" and not self._buffer:
                break                   # the newline that ends the source, not an empty line
            more = self._push(line)
        return more

    def text(self) -> str:
        """Everything the output shows."""
        return self.output.toPlainText()

    # ----------------------------------------------------------------- running
    def _push(self, line: str) -> bool:
        if self._wb.busy:
            # the model belongs to the training thread until the run ends
            self._append((PS2 if self._buffer else PS1) + line + "\n", "prompt")
            self._append(f"Not run: {self._wb.busy_message()}\n", "error")
            self._buffer = []
            self.prompt.setText(PS1.strip())
            return False
        self._append((PS2 if self._buffer else PS1) + line + "\n", "prompt")
        self.input.remember(line)
        if not self._buffer:
            self._before = self._capture()
        self._buffer.append(line)
        source = "\n".join(self._buffer)
        with self._redirected():
            more = self._interp.runsource(source, "<console>", "single")
        if more:
            self.prompt.setText(PS2.strip())
            return True
        self._buffer = []
        self.prompt.setText(PS1.strip())
        self._finish(source)
        return False

    @contextlib.contextmanager
    def _redirected(self):
        out, err = _Writer(self, "out"), _Writer(self, "error")
        with warnings.catch_warnings(record=True) as caught, \
                contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            warnings.simplefilter("always")
            yield
        for w in caught:
            self._append(warnings.formatwarning(w.message, w.category, w.filename, w.lineno,
                                                w.line), "warning")
            try:
                self._wb.doc.warning(str(w.message))
            except Exception:  # noqa: BLE001 - logging must not break the console
                pass

    def _capture(self):
        try:
            return self._wb.doc.capture()
        except Exception:  # noqa: BLE001 - a broken model must not block the console
            return None

    def _finish(self, source: str) -> None:
        before, self._before = self._before, None
        after = self._capture()
        if before is None or after is None:
            return
        try:
            differ = states_differ(before, after)
        except Exception:  # noqa: BLE001
            differ = False
        doc = self._wb.doc
        if not differ:
            if doc.replay.stage == "recipe" and not _same_value(before.rng, after.rng):
                # only random numbers were drawn (nd.random...): nothing to undo, but the
                # exported script's stream no longer matches the model's
                doc.replay = doc.replay.off("the console drew from the random stream")
            return
        what = ""
        if before.spec.get("replay") == after.spec.get("replay"):
            # not through a document gesture (which keeps the record itself): the exported
            # script cannot replay values, gradients, the input or random draws changed
            # directly
            what = ("parameter values" if _values_differ(before, after) else
                    "gradients" if _grads_differ(before, after) else
                    "the input batch" if not _same_array(before.x, after.x) else
                    "the random stream" if not _same_value(before.rng, after.rng) else
                    "the model")
        elif not _matches_latest_snapshot(doc):
            # a gesture ran (it records a snapshot), then something changed values directly
            what = "parameter values after a document gesture"
        if what and doc.replay.stage != "off":
            doc.replay = doc.replay.off(f"the console changed {what} directly")
            after = self._capture() or after
        text = " ".join(source.split())
        if len(text) > 60:
            text = text[:57] + "…"
        self._wb.push_captured(f"Console: {text}", before, after)
        doc.dirty = True
        if before.spec != after.spec:
            doc.changed.emit("structure")
        doc.changed.emit("params")

    # ----------------------------------------------------------------- namespace
    def _bind_document(self) -> None:
        doc = self._wb.doc
        self.namespace["doc"] = doc
        self.namespace["net"] = doc.net
        try:
            self.namespace["params"] = doc.params()
        except Exception:  # noqa: BLE001
            self.namespace["params"] = None
        self.namespace["x"] = doc.x

    def _help(self, *args, **kwargs):
        if not args and not kwargs:
            print("help(obj) shows the documentation of obj; interactive help is not "
                  "available in this console.")
            return None
        import pydoc
        return pydoc.help(*args, **kwargs)

    @staticmethod
    def _no_input(*_args):
        raise RuntimeError("input() is not available in the console")

    # ----------------------------------------------------------------- output
    def _colors(self):
        dark = is_dark(self.palette())
        return {"prompt": QColor("#8fa3bf" if dark else "#5b6b82"),
                "error": QColor("#ff7b72" if dark else ERROR_COLOR),
                "warning": QColor("#e0a63a" if dark else "#a86a00"),
                "hint": self.palette().placeholderText().color(),
                "out": self.palette().text().color()}

    def _append(self, text: str, kind: str = "out") -> None:
        fmt = QTextCharFormat()
        fmt.setForeground(self._colors().get(kind, self.palette().text().color()))
        cursor = self.output.textCursor()
        cursor.movePosition(QTextCursor.MoveOperation.End)
        cursor.insertText(text, fmt)
        self.output.setTextCursor(cursor)
        self.output.ensureCursorVisible()

    # ----------------------------------------------------------------- slots
    def _on_input_submitted(self, line: str) -> None:
        self.input.clear()
        self.execute(line)

    def _on_input_cancelled(self) -> None:
        """Escape: drop the line being typed and an unfinished block (like Ctrl-C)."""
        self.input.clear()
        if self._buffer:
            self._buffer = []
            self._before = None
            self.prompt.setText(PS1.strip())
            self._append("KeyboardInterrupt\n", "error")

    def _on_document_changed(self, what: str) -> None:
        if what in ("structure", "document", "input"):
            self._bind_document()
