"""The Inspector: the settings of whatever is selected, as forms generated from signatures.

- a layer: its title and kind, a :class:`SettingsForm` of the kind's settings (Apply/Revert),
  the layer's initializer ("— global —" or any initializer the plugin host offers, with its own
  form) and one initializer choice per parameter the layer owns;
- a parameter: name, shape, state, the effective initializer and where it comes from, the layers
  that use it, and its own initializer choice;
- nothing (or the global initializer): the global initializer and the input specification.

Every Apply goes through ``workbench.run`` (one undo step). A wrong value stays in its field, red,
and Apply is disabled; a change the document refuses shows the document's message in place.
Pages re-render from the model on ``changed``; a form the user is editing keeps their edits.
"""

from __future__ import annotations

import re

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QComboBox, QFormLayout, QFrame, QGroupBox, QHBoxLayout, QLabel,
                               QPushButton, QScrollArea, QSizePolicy, QVBoxLayout, QWidget)

from app.document import DocumentError, InitChoice
from app.document import layers as L
from app.document.model import DISTRIBUTIONS
from app.engine.initializer import Range
from app.pluginhost.settings import Setting, SettingsError
from app.ui.parameters_panel import choice_title, precedence_text, state_color
from app.ui.settings_form import (FORM_STYLESHEET, SettingsForm, relayout, set_invalid,
                                  set_role)
from app.ui.settings_form import make_label as _label

__all__ = ["InspectorPanel", "InitChoiceEditor", "INPUT_SETTINGS", "parse_shape",
           "input_changes"]

_NONE = "__none__"          # combo data of the "— global —" / "— inherit —" entry

INPUT_SETTINGS = (
    Setting("shape", str, "3, 5", doc="the input batch's shape, batch size first, e.g. 3, 5"),
    Setting("distribution", str, "uniform", DISTRIBUTIONS, doc="how the input values are drawn"),
    Setting("low", float, 0.0, doc="lower bound of uniform / integers"),
    Setting("high", float, 1.0, doc="upper bound (exclusive) of uniform / integers"),
    Setting("mean", float, 0.0, doc="mean of normal"),
    Setting("std", float, 1.0, range=Range(0.0, None), doc="standard deviation of normal"),
    Setting("value", float, 1.0, doc="every value of constant"),
    Setting("seed", int, 0, range=Range(0, None),
            doc="seed of the random stream the input (and then the initializers) draw from"),
)
_DIST_FIELDS = {"uniform": ("low", "high"), "integers": ("low", "high"),
                "normal": ("mean", "std"), "constant": ("value",)}


def input_changes(form, spec, only=None) -> dict:
    """What an input form (INPUT_SETTINGS) changes in ``spec`` (an InputSpec): the fields
    whose value differs, among ``only`` when given. Raises ``SettingsError`` for a wrong
    field (the Inspector and the Training panel both edit the input)."""
    values = form.values()
    values["shape"] = parse_shape(values["shape"])
    return {k: v for k, v in values.items()
            if (only is None or k in only) and getattr(spec, k) != v}


def parse_shape(text: str) -> tuple:
    """``"3, 5"`` (or ``"(3, 5)"``) → ``(3, 5)``; raises ``SettingsError`` saying what is wrong."""
    body = text.strip()
    if body.startswith("(") and body.endswith(")"):
        body = body[1:-1]
    parts = [p.strip() for p in body.split(",")]
    if parts and parts[-1] == "" and len(parts) > 1:
        parts = parts[:-1]
    if not parts or parts == [""]:
        raise SettingsError("input shape is empty: enter sizes separated by commas, e.g. 3, 5")
    dims = []
    for p in parts:
        if not re.fullmatch(r"\d+", p):
            raise SettingsError(f"input shape must be whole numbers separated by commas "
                                f"(e.g. 3, 5); {p!r} is not one")
        if int(p) < 1:
            raise SettingsError(f"every size of the input shape must be ≥ 1, got {p}")
        dims.append(int(p))
    return tuple(dims)


def _shape_text(shape) -> str:
    return ", ".join(str(d) for d in shape)


def _set_message(label: QLabel, text: str) -> None:
    """Show ``text`` in a (word-wrapped) message label, or hide it when empty."""
    explicit = label.testAttribute(Qt.WidgetAttribute.WA_WState_ExplicitShowHide)
    if label.text() != text or label.isHidden() == bool(text) or not explicit:
        label.setText(text)
        label.setVisible(bool(text))
        relayout(label)


def _button_row(*buttons) -> QHBoxLayout:
    row = QHBoxLayout()
    row.setContentsMargins(0, 2, 0, 0)
    row.addStretch(1)
    for b in buttons:
        row.addWidget(b)
    return row


class InitChoiceEditor(QWidget):
    """An initializer choice: a combo of every initializer the host offers (plus, unless
    ``none_label`` is None, an entry for "no choice here"), the chosen one's settings form, and
    Revert/Apply. ``apply_requested`` asks the owner to run the change; the editor never applies
    anything itself. ``name`` prefixes the objectNames (``<name>Combo``, ``<name>Apply``...)."""

    apply_requested = Signal()

    def __init__(self, workbench, name: str, none_label: str | None = None,
                 allow_needs_data: bool = True, parent=None):  # noqa: FBT001, FBT002
        super().__init__(parent)
        self.setObjectName(name)
        self._wb = workbench
        self._none_label = none_label
        self._allow_needs_data = allow_needs_data
        self._loaded: InitChoice | None = None
        self._loaded_sig = ()
        self._missing_reason = ""
        self.modified = False
        self._loading = False

        self.combo = QComboBox()
        self.combo.setObjectName(f"{name}Combo")
        self.combo.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.combo.setMinimumContentsLength(12)
        self.description = _label(role="hint")
        self.missing = _label(role="error", selectable=True)
        self.missing.setObjectName(f"{name}Missing")
        self.missing.hide()
        self.error = _label(role="error", selectable=True)
        self.error.setObjectName(f"{name}Error")
        _set_message(self.error, "")
        self.form_holder = QVBoxLayout()
        self.form_holder.setContentsMargins(0, 0, 0, 0)
        self.form: SettingsForm | None = None
        self.revert_button = QPushButton("Revert")
        self.revert_button.setObjectName(f"{name}Revert")
        self.apply_button = QPushButton("Apply")
        self.apply_button.setObjectName(f"{name}Apply")
        self.apply_button.setDefault(True)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(6)
        layout.addWidget(self.combo)
        layout.addWidget(self.description)
        layout.addWidget(self.missing)
        layout.addLayout(self.form_holder)
        layout.addWidget(self.error)
        layout.addLayout(_button_row(self.revert_button, self.apply_button))

        self._fill_combo()
        self._update_buttons()

        self.combo.currentIndexChanged.connect(self._on_combo_changed)
        self.apply_button.clicked.connect(self._on_apply_clicked)
        self.revert_button.clicked.connect(self._on_revert_clicked)

    # ----------------------------------------------------------------- public
    def load(self, choice: InitChoice | None, missing_reason: str = "",
             force: bool = False) -> None:  # noqa: FBT001, FBT002
        """Show ``choice`` (None = the "none" entry). A modified editor keeps the user's edits
        unless ``force``."""
        if self.modified and not force:
            return
        sig = None if choice is None else (choice.name, dict(choice.settings))
        if not force and sig == self._loaded_sig and missing_reason == self._missing_reason:
            return
        self._loaded = None if choice is None else InitChoice(choice.name, dict(choice.settings))
        self._loaded_sig = sig
        self._missing_reason = missing_reason
        self._loading = True
        try:
            bad = self.combo.findData("__missing__")
            if bad >= 0:
                self.combo.removeItem(bad)
            if choice is None:
                index = self.combo.findData(_NONE)
            else:
                index = self.combo.findData(choice.name)
                if index < 0:
                    self.combo.addItem(f"⚠ {choice.name} (missing)", "__missing__")
                    index = self.combo.count() - 1
                    self.combo.setItemData(index, missing_reason or "not available",
                                           Qt.ItemDataRole.ToolTipRole)
            self.combo.setCurrentIndex(max(index, 0))
        finally:
            self._loading = False
        self.modified = False
        self._show_missing(missing_reason)
        self._build_form(choice.settings if choice is not None else None)
        _set_message(self.error, "")
        self._update_buttons()

    def current_name(self):
        """The chosen initializer's name, or None for the "none" entry."""
        data = self.combo.currentData()
        if data == _NONE:
            return None
        if data == "__missing__":
            return self._loaded.name if self._loaded is not None else None
        return data

    def choice(self):
        """``(name or None, settings)``; raises ``SettingsError`` while a setting is wrong."""
        name = self.current_name()
        if name is None:
            return None, {}
        if self.combo.currentData() == "__missing__":
            return name, dict(self._loaded.settings)
        return name, self.form.values() if self.form is not None else {}

    def is_valid(self) -> bool:
        if self.combo.currentData() == "__missing__":
            return False
        return self.form is None or self.form.is_valid()

    def show_error(self, message: str) -> None:
        _set_message(self.error, message)

    def mark_clean(self) -> None:
        self.modified = False
        self._update_buttons()

    # ----------------------------------------------------------------- internals
    def _host(self):
        return self._wb.host or self._wb.doc.host

    def _fill_combo(self) -> None:
        self._loading = True
        try:
            self.combo.clear()
            if self._none_label is not None:
                self.combo.addItem(self._none_label, _NONE)
            host = self._host()
            infos = list(host.initializers.values()) if host is not None else []
            categories: dict[str, list] = {}
            for info in infos:
                if info.needs_data and not self._allow_needs_data:
                    continue
                categories.setdefault(info.category, []).append(info)
            for cat, items in categories.items():
                if self.combo.count():
                    self.combo.insertSeparator(self.combo.count())
                for info in items:
                    text = info.label if info.label.lower() == info.name.lower() else \
                        f"{info.label}  ·  {info.name}"
                    self.combo.addItem(text, info.name)
                    tip = f"{info.name}: {info.description}" if info.description else info.name
                    tip += f"\nCategory: {cat}\nFrom: {info.origin}"
                    self.combo.setItemData(self.combo.count() - 1, tip,
                                           Qt.ItemDataRole.ToolTipRole)
        finally:
            self._loading = False

    def _show_missing(self, reason: str) -> None:
        missing = self.combo.currentData() == "__missing__"
        _set_message(self.missing, reason if missing else "")
        set_invalid(self.combo, missing)

    def _build_form(self, settings: dict | None) -> None:
        if self.form is not None:
            self.form_holder.removeWidget(self.form)
            self.form.hide()
            self.form.deleteLater()
            self.form = None
        name = self.current_name()
        host = self._host()
        info = host.initializers.get(name) if (host is not None and name) else None
        if self.combo.currentData() == "__missing__":
            text = "Its settings: " + (", ".join(f"{k}={v!r}" for k, v in settings.items())
                                       if settings else "none")
            self.description.setText(text)
            self.description.setVisible(True)
            return
        if info is None:
            self.description.setText("")
            self.description.setVisible(False)
            return
        self.description.setText(info.description)
        self.description.setVisible(bool(info.description))
        if not info.settings:
            return

        def check(values, _name=name):
            try:
                host.create(_name, **values)
            except SettingsError as err:
                return {"": str(err)}
            return {}

        self.form = SettingsForm(info.settings, settings, owner=f"initializer '{name}'",
                                 check=check)
        self.form.setObjectName(f"{self.objectName()}Form")
        self.form_holder.addWidget(self.form)
        self.form.edited.connect(self._on_form_edited)
        self.form.submitted.connect(self._on_apply_clicked)

    def _update_buttons(self) -> None:
        self.apply_button.setEnabled(self.modified and self.is_valid())
        self.revert_button.setEnabled(self.modified)

    def _on_combo_changed(self, _index: int) -> None:
        if self._loading:
            return
        self.modified = True
        loaded = self._loaded
        same = loaded is not None and self.current_name() == loaded.name
        self._show_missing(self._missing_reason)
        self._build_form(loaded.settings if same else None)
        _set_message(self.error, "")
        self._update_buttons()

    def _on_form_edited(self) -> None:
        self.modified = True
        _set_message(self.error, "")
        self._update_buttons()

    def _on_apply_clicked(self) -> None:
        if self.modified and self.is_valid():
            self.apply_requested.emit()

    def _on_revert_clicked(self) -> None:
        self.load(self._loaded, self._missing_reason, force=True)


class _Section(QGroupBox):
    def __init__(self, title: str, object_name: str = ""):
        super().__init__(title)
        if object_name:
            self.setObjectName(object_name)
        self.body = QVBoxLayout(self)
        self.body.setContentsMargins(10, 8, 10, 10)
        self.body.setSpacing(6)


# ===================================================================== pages
class _Page(QWidget):
    """One view of the inspector; ``key`` says when it must be rebuilt instead of refreshed."""

    def __init__(self, panel):
        super().__init__()
        self.panel = panel
        self.wb = panel.workbench
        self.layout_ = QVBoxLayout(self)
        self.layout_.setContentsMargins(8, 8, 8, 8)
        self.layout_.setSpacing(10)

    @property
    def doc(self):
        return self.wb.doc

    def header(self, title: str, subtitle: str = "") -> None:
        t = _label(title, selectable=True)
        t.setObjectName("inspectorTitle")
        f = t.font()
        f.setPointSizeF(f.pointSizeF() * 1.2)
        f.setBold(True)
        t.setFont(f)
        self.title_label = t
        self.layout_.addWidget(t)
        if subtitle:
            s = _label(subtitle, "hint")
            s.setObjectName("inspectorSubtitle")
            self.layout_.addWidget(s)

    def finish(self) -> None:
        self.layout_.addStretch(1)

    def refresh(self) -> None:
        """Re-read the model (forms being edited keep their edits)."""

    def run_choice(self, editor: InitChoiceEditor, text: str, fn) -> None:
        try:
            name, settings = editor.choice()
        except SettingsError as err:
            editor.show_error(str(err))
            return
        ok, result = self.wb.run(text(name), lambda d: fn(d, name, settings))
        if ok:
            editor.mark_clean()
            self.panel.refresh()
        else:
            editor.show_error(result)


class _LayerPage(_Page):
    def __init__(self, panel, uid: str):
        super().__init__(panel)
        self.uid = uid
        doc = self.doc
        spec = doc.layer(uid)
        kind = L.kind(spec.kind)
        self.header(doc.layer_title(uid), kind.description)
        self.link_label = _label(role="hint", selectable=True)
        self.link_label.setObjectName("inspectorLink")
        self.layout_.addWidget(self.link_label)
        self.shape_label = _label(role="hint")
        self.shape_label.setObjectName("inspectorShapes")
        self.layout_.addWidget(self.shape_label)

        # -- settings of the layer
        sec = _Section(f"{spec.kind} settings", "layerSettingsSection")
        self.form = SettingsForm(kind.settings, spec.settings, owner=f"layer {spec.kind}")
        self.form.setObjectName("layerSettingsForm")
        self.error = _label(role="error", selectable=True)
        self.error.setObjectName("layerSettingsError")
        _set_message(self.error, "")
        self.revert_button = QPushButton("Revert")
        self.revert_button.setObjectName("layerRevert")
        self.apply_button = QPushButton("Apply")
        self.apply_button.setObjectName("layerApply")
        self.apply_button.setDefault(True)
        sec.body.addWidget(self.form)
        sec.body.addWidget(self.error)
        sec.body.addLayout(_button_row(self.revert_button, self.apply_button))
        if not kind.settings:
            self.apply_button.hide()
            self.revert_button.hide()
        self.layout_.addWidget(sec)

        # -- initializers
        roles = self.roles()
        self.layer_init = None
        self.param_inits: dict[str, InitChoiceEditor] = {}
        self.param_labels: dict[str, QLabel] = {}
        link = doc.link_of(uid)
        if roles or (link is None and kind.shareable):
            sec = _Section("Initializer for this layer", "layerInitSection")
            sec.body.addWidget(_label(
                "Used by this layer's parameters that have no initializer of their own "
                "(a bias keeps its bias_initializer='zeros' default).", "hint"))
            self.layer_init = InitChoiceEditor(self.wb, "layerInit", "— global —",
                                               allow_needs_data=False)
            sec.body.addWidget(self.layer_init)
            self.layout_.addWidget(sec)
        if roles:
            sec = _Section("Per-parameter initializers", "paramInitSection")
            for i, role in enumerate(roles):
                if i:
                    line = QFrame()
                    line.setFrameShape(QFrame.Shape.HLine)
                    line.setFrameShadow(QFrame.Shadow.Sunken)
                    sec.body.addWidget(line)
                title = _label(selectable=True)
                title.setObjectName(f"paramInitTitle_{role}")
                self.param_labels[role] = title
                sec.body.addWidget(title)
                ed = InitChoiceEditor(self.wb, f"paramInit_{role}", "— inherit —",
                                      allow_needs_data=False)
                self.param_inits[role] = ed
                sec.body.addWidget(ed)
            self.layout_.addWidget(sec)
        self.finish()
        self.refresh(force=True)

        self.form.edited.connect(self._on_form_edited)
        self.form.submitted.connect(self._on_apply_clicked)
        self.apply_button.clicked.connect(self._on_apply_clicked)
        self.revert_button.clicked.connect(self._on_revert_clicked)
        if self.layer_init is not None:
            self.layer_init.apply_requested.connect(self._on_layer_init_apply)
        for role, ed in self.param_inits.items():
            ed.apply_requested.connect(lambda r=role: self._on_param_init_apply(r))

    def roles(self) -> list:
        return [r.role for r in self.doc.param_rows() if r.owner == self.uid]

    def key(self):
        spec = self.doc.layer(self.uid)
        link = self.doc.link_of(self.uid)
        return ("layer", self.uid, spec.kind, tuple(self.roles()),
                None if link is None else (link.kind, link.dst))

    def refresh(self, force=False) -> None:  # noqa: FBT002
        doc = self.doc
        spec = doc.layer(self.uid)
        link = doc.link_of(self.uid)
        self.title_label.setText(doc.layer_title(self.uid))
        if link is None:
            self.link_label.hide()
        else:
            other = doc.layer_title(link.dst)
            self.link_label.setText(
                f"Shares the parameters of {other} (Gluon params=): set their initializers "
                "there." if link.kind == "share" else
                f"Applies the weight of {other} transposed (a tie: one parameter, gradients "
                "summed); its initializer is set there.")
            self.link_label.show()
        i = doc.index(self.uid)
        in_shape, out_shape, problem = doc.shapes()[i]
        text = f"input {L.format_shape(in_shape)} → output {L.format_shape(out_shape)}"
        self.shape_label.setText(text + (f"\n{problem}" if problem else ""))
        set_role(self.shape_label, "error" if problem else "hint")
        if force or not self.form.modified:
            self.form.set_values(spec.settings)
        self._update_buttons()
        if self.layer_init is not None:
            self.layer_init.load(spec.init, doc.missing_reason(spec.init), force=force)
        rows = {r.role: r for r in doc.param_rows() if r.owner == self.uid}
        for role, ed in self.param_inits.items():
            row = rows.get(role)
            if row is None:
                continue
            self.param_labels[role].setText(
                f"<b>{role}</b> &nbsp;<span style='font-family:monospace'>"
                f"{tuple(row.shape)}</span> · <span style='color:{state_color(row.state).name()}'>"
                f"{row.state}</span><br/><span>effective: {row.init} "
                f"<i>({row.init_source})</i></span>")
            self.param_labels[role].setToolTip(precedence_text(doc, row))
            choice = spec.param_inits.get(role)
            ed.load(choice, doc.missing_reason(choice), force=force)
        relayout(self)

    def _update_buttons(self) -> None:
        self.apply_button.setEnabled(self.form.modified and self.form.is_valid())
        self.revert_button.setEnabled(self.form.modified)

    def _on_form_edited(self) -> None:
        _set_message(self.error, "")
        self._update_buttons()

    def _on_apply_clicked(self) -> None:
        if not (self.form.modified and self.form.is_valid()):
            return
        try:
            values = self.form.values()
        except SettingsError as err:
            _set_message(self.error, str(err))
            return
        uid = self.uid
        spec = self.doc.layer(uid)
        label = L.kind(spec.kind).label(values)
        ok, result = self.wb.run(f"Edit {label}", lambda d: d.update_layer(uid, **values))
        if ok:
            self.form.modified = False
            self.panel.refresh()
        else:
            _set_message(self.error, result)
            self._update_buttons()

    def _on_revert_clicked(self) -> None:
        _set_message(self.error, "")
        self.form.set_values(self.doc.layer(self.uid).settings)
        self._update_buttons()

    def _on_layer_init_apply(self) -> None:
        uid = self.uid
        title = self.doc.layer_title(uid)
        self.run_choice(
            self.layer_init,
            lambda name: f"Initializer of {title}: {name or 'global'}",
            lambda d, name, settings: d.set_layer_init(uid, name, settings))

    def _on_param_init_apply(self, role: str) -> None:
        uid = self.uid
        title = self.doc.layer_title(uid)
        self.run_choice(
            self.param_inits[role],
            lambda name: f"Initializer of {title} {role}: {name or 'inherit'}",
            lambda d, name, settings: d.set_param_init(uid, role, name, settings))


class _ParamPage(_Page):
    def __init__(self, panel, name: str):
        super().__init__(panel)
        self.name = name
        row = self.row()
        self.header(name, f"{row.role} of layer {self.doc.layer_title(row.owner)}")
        sec = _Section("Parameter", "paramInfoSection")
        grid = QFormLayout()
        grid.setHorizontalSpacing(10)
        grid.setVerticalSpacing(4)
        grid.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        self.info = {}
        for key in ("Shape", "DType", "State", "Initializer", "Source", "Owner", "Used by"):
            lab = _label(selectable=True)
            lab.setObjectName("paramInfo" + "".join(w[:1].upper() + w[1:] for w in key.split()))
            self.info[key] = lab
            grid.addRow(_label(key, "hint", wrap=False), lab)
        sec.body.addLayout(grid)
        self.owner_button = QPushButton("Select owner layer")
        self.owner_button.setObjectName("paramSelectOwner")
        sec.body.addLayout(_button_row(self.owner_button))
        self.layout_.addWidget(sec)

        sec = _Section(f"Initializer of {row.role}", "paramInitSection")
        sec.body.addWidget(_label(
            "A parameter's own initializer wins over its layer's default "
            f"({row.role}_initializer), the layer's choice and the global one.", "hint"))
        self.editor = InitChoiceEditor(self.wb, "paramInit", "— inherit —",
                                       allow_needs_data=False)
        sec.body.addWidget(self.editor)
        self.layout_.addWidget(sec)
        self.finish()
        self.refresh(force=True)

        self.owner_button.clicked.connect(self._on_owner_clicked)
        self.editor.apply_requested.connect(self._on_apply)

    def row(self):
        for r in self.doc.param_rows():
            if r.name == self.name:
                return r
        raise DocumentError(f"no parameter {self.name!r}")

    def key(self):
        r = self.row()
        return ("param", self.name, r.owner, r.role)

    def refresh(self, force=False) -> None:  # noqa: FBT002
        doc = self.doc
        r = self.row()
        self.info["Shape"].setText(f"{tuple(r.shape)}" + ("   (0 = inferred at the first "
                                                           "forward)" if 0 in r.shape else ""))
        self.info["DType"].setText(r.dtype)
        self.info["State"].setText(f"<span style='color:{state_color(r.state).name()}'>"
                                   f"<b>{r.state}</b></span>")
        self.info["Initializer"].setText(r.init)
        self.info["Source"].setText(r.init_source + (f": {r.missing}" if r.missing else ""))
        set_role(self.info["Source"], "error" if r.missing else "")
        self.info["Source"].setToolTip(precedence_text(doc, r))
        self.info["Initializer"].setToolTip(precedence_text(doc, r))
        self.info["Owner"].setText(f"{doc.layer_title(r.owner)} ({r.role})")
        self.info["Used by"].setText(", ".join(doc.layer_title(u) for u in r.used_by))
        choice = doc.layer(r.owner).param_inits.get(r.role)
        self.editor.load(choice, doc.missing_reason(choice), force=force)
        relayout(self)

    def _on_owner_clicked(self) -> None:
        self.wb.select(("layer", self.row().owner))

    def _on_apply(self) -> None:
        r = self.row()
        uid, role, pname = r.owner, r.role, r.name
        self.run_choice(self.editor, lambda name: f"Initializer of {pname}: {name or 'inherit'}",
                        lambda d, name, settings: d.set_param_init(uid, role, name, settings))


class _GlobalPage(_Page):
    def __init__(self, panel):
        super().__init__(panel)
        self.header("Network", "Select a layer or a parameter to inspect it.")
        self.summary = _label(role="hint")
        self.summary.setObjectName("inspectorSummary")
        self.layout_.addWidget(self.summary)

        sec = _Section("Global initializer", "globalInitSection")
        sec.body.addWidget(_label(
            "net.initialize(init): the default for every parameter without an initializer of "
            "its own or from its layer.", "hint"))
        self.init_editor = InitChoiceEditor(self.wb, "globalInit", None)
        sec.body.addWidget(self.init_editor)
        self.layout_.addWidget(sec)

        sec = _Section("Input", "inputSection")
        self.input_form = SettingsForm(INPUT_SETTINGS, self._input_values(), owner="the input",
                                       check=self._check_input)
        self.input_form.setObjectName("inputForm")
        self.input_error = _label(role="error", selectable=True)
        self.input_error.setObjectName("inputError")
        _set_message(self.input_error, "")
        self.input_revert = QPushButton("Revert")
        self.input_revert.setObjectName("inputRevert")
        self.input_apply = QPushButton("Apply")
        self.input_apply.setObjectName("inputApply")
        self.input_apply.setDefault(True)
        sec.body.addWidget(self.input_form)
        sec.body.addWidget(self.input_error)
        sec.body.addLayout(_button_row(self.input_revert, self.input_apply))
        self.layout_.addWidget(sec)
        self.finish()
        self.refresh(force=True)

        self.init_editor.apply_requested.connect(self._on_init_apply)
        self.input_form.edited.connect(self._on_input_edited)
        self.input_form.submitted.connect(self._on_input_apply)
        self.input_apply.clicked.connect(self._on_input_apply)
        self.input_revert.clicked.connect(self._on_input_revert)

    def key(self):
        return ("global",)

    def _input_values(self) -> dict:
        spec = self.doc.input
        values = {k: getattr(spec, k) for k in ("distribution", "low", "high", "mean", "std",
                                                   "value", "seed")}
        values["shape"] = _shape_text(spec.shape)
        return values

    def _check_input(self, values: dict) -> dict:
        errors = {}
        try:
            shape = parse_shape(values["shape"])
        except SettingsError as err:
            return {"shape": str(err)}
        dist = values["distribution"]
        if dist in ("uniform", "integers") and not values["high"] > values["low"]:
            msg = f"input high ({values['high']}) must be greater than low ({values['low']})"
            return {"low": msg, "high": msg}
        try:
            self.doc.input.updated(**{**values, "shape": shape})
        except DocumentError as err:
            errors[""] = str(err)
        return errors

    def _update_rows(self) -> None:
        try:
            dist = self.input_form.values()["distribution"]
        except SettingsError:
            dist = self.input_form.editor("distribution").currentText()
        shown = _DIST_FIELDS.get(dist, ())
        for name in ("low", "high", "mean", "std", "value"):
            self.input_form.set_row_visible(name, name in shown)
        relayout(self)

    def refresh(self, force=False) -> None:  # noqa: FBT002
        doc = self.doc
        n_params = len(doc.param_rows())
        self.summary.setText(
            f"{len(doc.layers)} layer{'s' if len(doc.layers) != 1 else ''} · {n_params} "
            f"parameter{'s' if n_params != 1 else ''} · input {L.format_shape(doc.input.shape)}"
            f" · global initializer {choice_title(doc, doc.global_init)}")
        self.init_editor.load(doc.global_init, doc.missing_reason(doc.global_init), force=force)
        if force or not self.input_form.modified:
            self.input_form.set_values(self._input_values())
        self._update_rows()
        self._update_input_buttons()

    def _update_input_buttons(self) -> None:
        self.input_apply.setEnabled(self.input_form.modified and self.input_form.is_valid())
        self.input_revert.setEnabled(self.input_form.modified)

    def _on_init_apply(self) -> None:
        self.run_choice(self.init_editor, lambda name: f"Global initializer: {name}",
                        lambda d, name, settings: d.set_global_init(name, settings))

    def _on_input_edited(self) -> None:
        _set_message(self.input_error, "")
        self._update_rows()
        self._update_input_buttons()

    def _on_input_apply(self) -> None:
        if not (self.input_form.modified and self.input_form.is_valid()):
            return
        try:
            changes = input_changes(self.input_form, self.doc.input)
        except SettingsError as err:
            _set_message(self.input_error, str(err))
            return
        if not changes:
            self.input_form.modified = False
            self._update_input_buttons()
            return
        ok, result = self.wb.run("Edit input", lambda d: d.set_input(**changes))
        if ok:
            self.input_form.modified = False
            self.panel.refresh()
        else:
            _set_message(self.input_error, result)

    def _on_input_revert(self) -> None:
        _set_message(self.input_error, "")
        self.input_form.set_values(self._input_values())
        self._update_rows()
        self._update_input_buttons()


# ===================================================================== the panel
class InspectorPanel(QWidget):
    """The settings of the selection (objectName ``inspectorPanel``)."""

    def __init__(self, workbench, parent=None):
        super().__init__(parent)
        self.setObjectName("inspectorPanel")
        self.setStyleSheet(FORM_STYLESHEET)
        self.workbench = workbench
        self.page: _Page | None = None
        self._page_key = None
        self._host_key = None

        self.scroll = QScrollArea()
        self.scroll.setObjectName("inspectorScroll")
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.scroll)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Expanding)
        self.setMinimumWidth(260)

        self.refresh()

        workbench.changed.connect(self._on_document_changed)
        workbench.selection_changed.connect(self._on_selection_changed)

    # ----------------------------------------------------------------- public
    def refresh(self) -> None:
        """Re-render from the model: rebuild the page when the selection or its structure
        changed (or the plugin host offers other initializers), otherwise update it in place.
        The window calls this after reloading plugins."""
        wb = self.workbench
        host = wb.host or wb.doc.host
        # A plugin reload makes new classes (and maybe other settings): rebuild the forms.
        host_key = tuple((n, i.cls, tuple(i.settings), i.label) for n, i in
                         host.initializers.items()) if host is not None else ()
        page_cls, arg = self._page_for(wb.selection)
        try:
            probe_key = self._probe_key(page_cls, arg)
        except DocumentError:
            page_cls, arg, probe_key = _GlobalPage, None, ("global",)
        if self.page is not None and probe_key == self._page_key and host_key == self._host_key:
            try:
                self.page.refresh()
                return
            except DocumentError:
                pass
        self._build(page_cls, arg, probe_key, host_key)

    # ----------------------------------------------------------------- internals
    @staticmethod
    def _page_for(selection):
        if selection and selection[0] == "layer":
            return _LayerPage, selection[1]
        if selection and selection[0] == "param":
            return _ParamPage, selection[1]
        return _GlobalPage, None

    def _probe_key(self, page_cls, arg):
        doc = self.workbench.doc
        if page_cls is _LayerPage:
            spec = doc.layer(arg)
            link = doc.link_of(arg)
            roles = tuple(r.role for r in doc.param_rows() if r.owner == arg)
            return ("layer", arg, spec.kind, roles,
                    None if link is None else (link.kind, link.dst))
        if page_cls is _ParamPage:
            for r in doc.param_rows():
                if r.name == arg:
                    return ("param", arg, r.owner, r.role)
            raise DocumentError(f"no parameter {arg!r}")
        return ("global",)

    def _build(self, page_cls, arg, key, host_key) -> None:
        old = self.page
        page = page_cls(self) if arg is None else page_cls(self, arg)
        self.page = page
        self._page_key = key
        self._host_key = host_key
        if old is not None:
            # Not setWidget's immediate delete: an Apply handler of the old page may still be
            # running (its run() re-rendered the inspector).
            self.scroll.takeWidget()
            old.hide()
            old.deleteLater()
        self.scroll.setWidget(page)

    def _on_document_changed(self, _what: str) -> None:
        self.refresh()

    def _on_selection_changed(self, _selection) -> None:
        self.refresh()
