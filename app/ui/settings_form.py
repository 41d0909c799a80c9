"""A form generated from a list of :class:`~app.pluginhost.settings.Setting`.

One editor per setting: a line edit for numbers and text (so a wrong value can still be *shown*),
a check box for ``bool``, a combo box for a choice (``Literal[...]``). Every keystroke is checked
with :func:`~app.pluginhost.settings.parse_value` and :func:`~app.pluginhost.settings.validate`;
a wrong value stays in its field, which turns red (``invalid`` dynamic property) and whose tooltip
says what went wrong and what is allowed (:meth:`Setting.allowed`). The form never applies
anything itself: its owner reads :meth:`SettingsForm.values` (which raises ``SettingsError`` while
any field is wrong) and runs the change through the workbench.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFormLayout, QLabel, QLineEdit,
                               QSizePolicy, QVBoxLayout, QWidget)

from app.pluginhost.settings import REQUIRED, Setting, SettingsError, parse_value, validate

try:                                    # the window's shared look, when it is there
    from app.ui.style import ERROR_COLOR, WARNING_COLOR
except ImportError:                     # pragma: no cover - style.py is optional for the form
    ERROR_COLOR, WARNING_COLOR = "#d64545", "#c98a00"

__all__ = ["SettingsForm", "format_value", "FORM_STYLESHEET", "set_invalid", "set_role",
           "relayout", "make_label"]

# The application stylesheet (app/ui/style.py) carries the same rules; repeating them here keeps
# a form readable when it is shown on its own (tests, screenshots, other tools).
FORM_STYLESHEET = f"""
*[invalid="true"] {{ border: 1px solid {ERROR_COLOR}; border-radius: 2px; }}
QLabel[role="hint"] {{ color: palette(placeholder-text); }}
QLabel[role="error"] {{ color: {ERROR_COLOR}; }}
QLabel[role="warning"] {{ color: {WARNING_COLOR}; }}
"""


def make_label(text: str = "", role: str = "", *, wrap: bool = True, selectable: bool = False,
               name: str = "") -> QLabel:
    """A label for the forms' side text: word-wrapped, with a style ``role`` ('hint',
    'error', 'warning'), selectable for messages worth copying, named for tests."""
    lab = QLabel(text)
    lab.setWordWrap(wrap)
    if role:
        set_role(lab, role)
    if selectable:
        lab.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    if name:
        lab.setObjectName(name)
    return lab


def format_value(setting: Setting, value) -> str:
    """The text a field shows for ``value`` (``repr`` for floats keeps ``1e-05`` exact)."""
    if value is REQUIRED or value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _repolish(widget: QWidget) -> None:
    style = widget.style()
    style.unpolish(widget)
    style.polish(widget)
    widget.update()


def relayout(widget: QWidget) -> None:
    """Invalidate the layouts from ``widget`` up to its window.

    A word-wrapped label whose text changed can need more height than the cached
    height-for-width of the layouts around it allows; without this the fields above it are
    squeezed until the next resize."""
    w = widget
    while w is not None:
        lay = w.layout()
        if lay is not None:
            lay.invalidate()
        w.updateGeometry()          # drops the size cache the parent's layout keeps for it
        if w.isWindow():
            break
        w = w.parentWidget()


def set_invalid(widget: QWidget, invalid: bool) -> None:  # noqa: FBT001
    """Mark ``widget`` red (or not) through the ``invalid`` dynamic property."""
    if bool(widget.property("invalid")) != invalid:
        widget.setProperty("invalid", invalid)
        _repolish(widget)


def set_role(label: QLabel, role: str) -> None:
    """Give a label the ``hint`` / ``error`` / ``warning`` look of the stylesheet."""
    if label.property("role") != role:
        label.setProperty("role", role)
        _repolish(label)


class _Field:
    """One setting's editor and how to read it back."""

    def __init__(self, setting: Setting, editor: QWidget, label: QLabel):
        self.setting = setting
        self.editor = editor
        self.label = label
        self.bad_value = None        # a value set_values could not show in a combo / check box
        self.has_bad_value = False

    def raw(self):
        """(value, error) of what the editor shows, before ``validate``."""
        s, ed = self.setting, self.editor
        if isinstance(ed, QComboBox):
            i = ed.currentData()
            if i is None or i < 0:
                return None, (f"setting '{s.name}' must be {s.allowed()}, "
                              f"got {self.bad_value!r}")
            return s.choices[i], ""
        if isinstance(ed, QCheckBox):
            if self.has_bad_value:
                return None, f"setting '{s.name}' must be true or false, got {self.bad_value!r}"
            return ed.isChecked(), ""
        text = ed.text()
        if not text.strip() and s.type is not str:
            if s.required:
                return None, f"setting '{s.name}' is required ({s.allowed()})"
            return None, f"setting '{s.name}' is empty: enter {s.allowed()}"
        try:
            return parse_value(s, text), ""
        except SettingsError as err:
            return None, str(err)


class SettingsForm(QWidget):
    """Editors for ``settings`` (a list of ``Setting``), started at ``values`` (defaults for the
    rest). ``owner`` names the thing in messages (``"layer Dense"``); ``check(values)`` may
    return ``{setting name or '': message}`` for rules that span settings (``high > low``)."""

    edited = Signal()           # every change the user makes
    submitted = Signal()        # Enter pressed in a field

    def __init__(self, settings, values: dict | None = None, parent: QWidget | None = None, *,
                 owner: str = "these settings",
                 check: Callable[[dict], dict] | None = None):
        super().__init__(parent)
        self.setObjectName("settingsForm")
        self.setStyleSheet(FORM_STYLESHEET)
        self._settings = list(settings)
        self._owner = owner
        self._check = check
        self._fields: dict[str, _Field] = {}
        self._errors: dict[str, str] = {}
        self._loading = False
        self.modified = False

        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(4)
        self._layout = QFormLayout()
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.setHorizontalSpacing(10)
        self._layout.setVerticalSpacing(6)
        self._layout.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self._layout.setLabelAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        outer.addLayout(self._layout)
        self._empty = QLabel("No settings.")
        set_role(self._empty, "hint")
        self._empty.setVisible(not self._settings)
        outer.addWidget(self._empty)
        self._error_label = QLabel()
        self._error_label.setObjectName("settingsFormError")
        self._error_label.setWordWrap(True)
        self._error_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self._error_label.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
        set_role(self._error_label, "error")
        self._error_label.hide()
        outer.addWidget(self._error_label)

        for s in self._settings:
            self._add_field(s)
        self._loading = True
        try:
            self._show_values({s.name: s.default for s in self._settings})
            if values:
                self._show_values(values)
        finally:
            self._loading = False
        self._revalidate()

    # ----------------------------------------------------------------- building
    def _add_field(self, s: Setting) -> None:
        if s.choices:
            editor = QComboBox()
            for i, c in enumerate(s.choices):
                editor.addItem(str(c), i)
            editor.currentIndexChanged.connect(self._on_editor_changed)
        elif s.type is bool:
            editor = QCheckBox()
            editor.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
            editor.stateChanged.connect(self._on_check_changed)
        else:
            editor = QLineEdit()
            if s.required:
                editor.setPlaceholderText("required")
            editor.textChanged.connect(self._on_editor_changed)
            editor.returnPressed.connect(self.submitted)
        editor.setObjectName(f"setting_{s.name}")
        label = QLabel(s.name)
        label.setBuddy(editor)
        label.setToolTip(self._help(s))
        field = _Field(s, editor, label)
        self._fields[s.name] = field
        self._layout.addRow(label, editor)

    @staticmethod
    def _help(s: Setting) -> str:
        parts = []
        if s.doc:
            parts.append(s.doc[:1].upper() + s.doc[1:] + ".")
        parts.append(f"Allowed: {s.allowed()}.")
        if not s.required:
            parts.append(f"Default: {format_value(s, s.default) or repr(s.default)}.")
        return "\n".join(parts)

    # ----------------------------------------------------------------- public
    def settings(self) -> list[Setting]:
        return list(self._settings)

    def editor(self, name: str) -> QWidget:
        """The editor of setting ``name`` (tests and scripts type into it)."""
        return self._fields[name].editor

    def set_row_visible(self, name: str, visible: bool) -> None:  # noqa: FBT001
        field = self._fields[name]
        if field.editor.isVisibleTo(self) != visible or field.label.isHidden() == visible:
            self._layout.setRowVisible(field.editor, visible)
            relayout(self)

    def set_values(self, values: dict) -> None:
        """Show ``values`` (a wrong one is shown too, in red); the form is unmodified after."""
        self._loading = True
        try:
            self._show_values(values)
        finally:
            self._loading = False
        self.modified = False
        self._revalidate()

    def values(self) -> dict:
        """Every setting, typed and validated; raises ``SettingsError`` while any is wrong."""
        self._revalidate()
        if self._errors:
            raise SettingsError(next(iter(self._errors.values())))
        return self._typed()

    def is_valid(self) -> bool:
        return not self._errors

    def errors(self) -> dict:
        """``{setting name: message}`` of every wrong field ('' for a form-wide problem)."""
        return dict(self._errors)

    # ----------------------------------------------------------------- internals
    def _show_values(self, values: dict) -> None:
        for name, value in values.items():
            field = self._fields.get(name)
            if field is None:
                continue
            s, ed = field.setting, field.editor
            field.has_bad_value, field.bad_value = False, None
            if isinstance(ed, QComboBox):
                index = -1
                for i, c in enumerate(s.choices):
                    if type(c) is type(value) and c == value:
                        index = i
                bad = ed.findData(-1)
                if bad >= 0:
                    ed.removeItem(bad)
                if index < 0:
                    field.bad_value = value
                    ed.addItem(f"{value!r} (not allowed)", -1)
                    index = ed.count() - 1
                else:
                    index = ed.findData(index)
                ed.setCurrentIndex(index)
            elif isinstance(ed, QCheckBox):
                if isinstance(value, bool):
                    ed.setTristate(False)
                    ed.setChecked(value)
                else:
                    field.has_bad_value, field.bad_value = True, value
                    ed.setTristate(True)
                    ed.setCheckState(Qt.CheckState.PartiallyChecked)
            else:
                ed.setText(format_value(s, value))

    def _typed(self) -> dict:
        out = {}
        for name, field in self._fields.items():
            value, err = field.raw()
            if not err:
                out[name] = value
        return out

    def _revalidate(self) -> None:
        errors: dict[str, str] = {}
        typed = {}
        for name, field in self._fields.items():
            value, err = field.raw()
            if not err:
                try:
                    value = validate([field.setting], {name: value}, self._owner)[name]
                except SettingsError as e:
                    err = str(e)
            if err:
                errors[name] = err
            else:
                typed[name] = value
        if not errors and self._check is not None:
            try:
                extra = self._check(dict(typed)) or {}
            except SettingsError as err:
                extra = {"": str(err)}
            errors.update(extra)
        self._errors = errors
        for name, field in self._fields.items():
            msg = errors.get(name, "")
            set_invalid(field.editor, bool(msg))
            if msg:
                field.editor.setToolTip(f"{msg}\nAllowed: {field.setting.allowed()}.")
            else:
                field.editor.setToolTip(self._help(field.setting))
        shown = [m for m in errors.values() if m]
        text = "\n".join(dict.fromkeys(shown))
        if text != self._error_label.text() or bool(shown) != self._error_label.isVisibleTo(self):
            self._error_label.setText(text)
            self._error_label.setVisible(bool(shown))
            relayout(self)

    def _on_editor_changed(self, *_args) -> None:
        if self._loading:
            return
        # A combo that held a value it could not offer drops it once the user picks another.
        for field in self._fields.values():
            ed = field.editor
            if isinstance(ed, QComboBox) and ed.currentData() != -1:
                bad = ed.findData(-1)
                if bad >= 0:
                    self._loading = True
                    ed.removeItem(bad)
                    self._loading = False
        self.modified = True
        self._revalidate()
        self.edited.emit()

    def _on_check_changed(self, *_args) -> None:
        if self._loading:
            return
        for field in self._fields.values():
            if isinstance(field.editor, QCheckBox) and field.has_bad_value and \
                    field.editor.checkState() != Qt.CheckState.PartiallyChecked:
                field.has_bad_value, field.bad_value = False, None
                field.editor.setTristate(False)
        self._on_editor_changed()
