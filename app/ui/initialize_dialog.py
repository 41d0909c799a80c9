"""Model > Initialize…: choose the global initializer and its settings, then initialize.

The initializers come from the plugin host, grouped by category, each with its description and
origin. The settings form is generated from the initializer's signature (:class:`SettingsForm`);
while a value is invalid the Initialize button stays disabled. A choice whose plugin is missing
(a file naming an initializer this machine does not have) is listed and explained, and cannot
be run. OK sets the global initializer and initializes as ONE undoable step.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDialog, QDialogButtonBox, QFormLayout,
                               QFrame, QGroupBox, QLabel, QVBoxLayout)

from app.document import DocumentError
from app.ui.settings_form import SettingsForm, make_label

__all__ = ["InitializeDialog"]

NAME_ROLE = Qt.ItemDataRole.UserRole + 1


class InitializeDialog(QDialog):
    def __init__(self, workbench, parent=None):
        super().__init__(parent)
        self.setObjectName("initializeDialog")
        self.setWindowTitle("Initialize")
        self._wb = workbench
        self.form = None
        self._form_name = None

        self.combo = QComboBox()
        self.combo.setObjectName("initializerCombo")
        self.combo.setMinimumWidth(300)
        self.combo.setMaxVisibleItems(24)
        self.description = QLabel()
        self.description.setObjectName("initializerDescription")
        self.description.setWordWrap(True)
        self.origin = QLabel()
        self.origin.setObjectName("initializerOrigin")
        self.origin.setProperty("role", "hint")
        self.origin.setWordWrap(True)
        self.origin.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.missing = QLabel()
        self.missing.setObjectName("initializerMissing")
        self.missing.setProperty("role", "error")
        self.missing.setWordWrap(True)
        self.data_note = QLabel()
        self.data_note.setObjectName("needsDataNote")
        self.data_note.setProperty("role", "warning")
        self.data_note.setWordWrap(True)

        self.settings_box = QGroupBox("Settings")
        self.settings_box.setObjectName("initializerSettings")
        self.settings_layout = QVBoxLayout(self.settings_box)
        self.no_settings = QLabel("This initializer has no settings.")
        self.no_settings.setProperty("role", "hint")
        self.settings_layout.addWidget(self.no_settings)

        self.force = QCheckBox("Force re-initialize (replace values that are already set)")
        self.force.setObjectName("forceReinitCheck")
        self.state_note = make_label(role="hint", name="stateNote")
        self.error = make_label(role="error", name="initializeError")
        self.error.hide()

        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok |
                                        QDialogButtonBox.StandardButton.Cancel)
        self.buttons.setObjectName("buttonBox")
        self.ok_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok_button.setText("Initialize")
        self.ok_button.setObjectName("initializeButton")

        top = QFormLayout()
        top.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.ExpandingFieldsGrow)
        top.addRow("Global initializer:", self.combo)
        layout = QVBoxLayout(self)
        layout.setSpacing(8)
        layout.addLayout(top)
        layout.addWidget(self.description)
        layout.addWidget(self.origin)
        layout.addWidget(self.missing)
        layout.addWidget(self.data_note)
        layout.addWidget(self.settings_box)
        line = QFrame()
        line.setFrameShape(QFrame.Shape.HLine)
        line.setFrameShadow(QFrame.Shadow.Sunken)
        layout.addWidget(line)
        layout.addWidget(self.force)
        layout.addWidget(self.state_note)
        layout.addWidget(self.error)
        layout.addStretch(1)
        layout.addWidget(self.buttons)
        self.setMinimumWidth(480)

        doc = workbench.doc
        self._populate(doc.global_init.name)
        self._show_choice(doc.global_init.settings)
        self._refresh_state_note()

        self.combo.currentIndexChanged.connect(self._on_choice_changed)
        self.force.toggled.connect(self._on_force_changed)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        workbench.changed.connect(self._on_workbench_changed)

    # ------------------------------------------------------------------ the list
    def _populate(self, select: str | None) -> None:
        host = self._wb.host
        infos = list(host.initializers.values()) if host is not None else []
        by_cat: dict[str, list] = {}
        for info in infos:
            by_cat.setdefault(info.category, []).append(info)
        model = QStandardItemModel(self.combo)
        bold = QFont()
        bold.setBold(True)
        current = self._wb.doc.global_init
        select_row = -1

        def header(text):
            item = QStandardItem(text)
            item.setFlags(Qt.ItemFlag.NoItemFlags)
            item.setFont(bold)
            model.appendRow(item)

        for category, items in by_cat.items():
            header(category)
            for info in items:
                label = info.label if info.label.lower() == info.name.lower() else \
                    f"{info.label}  ({info.name})"
                item = QStandardItem("    " + label)
                item.setData(info.name, NAME_ROLE)
                item.setToolTip(info.description)
                model.appendRow(item)
                if info.name == select:
                    select_row = model.rowCount() - 1
        if host is not None and current.name not in host.initializers:
            header("Missing")
            item = QStandardItem(f"    {current.name}  (missing)")
            item.setData(current.name, NAME_ROLE)
            model.appendRow(item)
            if select == current.name:
                select_row = model.rowCount() - 1
        if select_row < 0:
            select_row = next((r for r in range(model.rowCount())
                               if model.item(r).data(NAME_ROLE)), -1)
        self.combo.blockSignals(True)
        self.combo.setModel(model)
        self.combo.setCurrentIndex(select_row)
        self.combo.blockSignals(False)

    def selected_name(self) -> str | None:
        return self.combo.currentData(NAME_ROLE)

    def select(self, name: str) -> None:
        """Pick the initializer called ``name`` (as a click in the list would)."""
        index = self.combo.findData(name, NAME_ROLE)
        if index < 0:
            raise KeyError(name)
        self.combo.setCurrentIndex(index)

    # ------------------------------------------------------------------ the choice
    def _info(self):
        name = self.selected_name()
        host = self._wb.host
        if name is None or host is None:
            return None
        return host.initializers.get(name)

    def _show_choice(self, values: dict | None = None) -> None:
        from app.document.layers import format_shape
        from app.document.model import InitChoice
        from app.pluginhost.settings import SettingsError

        name = self.selected_name()
        info = self._info()
        self.error.hide()
        if self.form is not None:
            self.settings_layout.removeWidget(self.form)
            self.form.hide()
            self.form.setParent(None)
            self.form.deleteLater()
            self.form = None
        self._form_name = name
        if info is None:
            doc = self._wb.doc
            reason = doc.missing_reason(InitChoice(name or "", values or {})) if name else ""
            shown = ", ".join(f"{k}={v!r}" for k, v in (values or {}).items())
            self.description.setText(f"Its settings in the model: {shown}" if shown else "")
            self.description.setVisible(bool(shown))
            self.origin.hide()
            self.missing.setText(reason or "Choose an initializer.")
            self.missing.show()
            self.data_note.hide()
            self.no_settings.hide()
            self.settings_box.hide()
            self._update_ok()
            self._fit()
            return
        self.missing.hide()
        self.origin.show()
        self.settings_box.show()
        self.description.setText(info.description or info.label)
        self.description.setVisible(True)
        self.origin.setText(f"{info.name} · from {info.origin}")
        if info.needs_data:
            shape = format_shape(self._wb.doc.input.shape)
            self.data_note.setText(f"{info.label} needs data: it calibrates the whole network "
                                   f"on the current input batch {shape} (one forward pass per "
                                   "layer); per-layer choices are ignored.")
            self.data_note.show()
        else:
            self.data_note.hide()
        settings = list(info.settings)
        start = dict(info.defaults())
        if values:
            start.update({k: v for k, v in values.items() if k in start})
        if settings:
            self.no_settings.hide()
            host = self._wb.host

            def check(values, _name=info.name):
                # Rules that span settings live in the constructor (MyInit: high > low).
                try:
                    host.create(_name, **values)
                except SettingsError as err:
                    return {"": str(err)}
                return {}

            self.form = SettingsForm(settings, start, self.settings_box,
                                     owner=f"initializer '{info.name}'", check=check)
            self.form.setObjectName("initializerForm")
            self.settings_layout.addWidget(self.form)
            self.form.show()
            self.form.edited.connect(self._on_form_edited)
        else:
            self.no_settings.show()
        self._update_ok()
        self._fit()

    def _fit(self) -> None:
        """Grow to show the whole form (never narrower than the user made it)."""
        self.settings_layout.activate()
        self.layout().activate()
        hint = self.sizeHint()
        width = max(self.width(), hint.width())
        layout = self.layout()
        height = hint.height()
        if layout.hasHeightForWidth():       # wrapped labels need more height when narrow
            height = max(height, layout.totalHeightForWidth(width))
        self.resize(width, height)

    def showEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        self._fit()      # now that the style has polished the labels, measure again

    def _refresh_state_note(self) -> None:
        states = [p.state for p in self._wb.doc.params().values()]
        n_init = states.count("initialized")
        n_def = states.count("deferred")
        if not states:
            text = "The model has no parameters yet."
        elif n_init and not self.force.isChecked():
            text = (f"{n_init} of {len(states)} parameter(s) are already initialized and keep "
                    "their values (Gluon ignores them) unless you force re-initialization.")
        else:
            text = f"{len(states)} parameter(s) will be initialized"
            if n_def or any(0 in (p.shape or ()) for p in self._wb.doc.params().values()):
                text += ("; those whose shape is not known yet stay deferred until the first "
                         "forward pass")
            text += "."
        self.state_note.setText(text)

    def _update_ok(self) -> None:
        info = self._info()
        valid = info is not None and (self.form is None or self.form.is_valid())
        self.ok_button.setEnabled(bool(valid))

    def _on_choice_changed(self, _index: int) -> None:
        current = self._wb.doc.global_init
        self._show_choice(current.settings if self.selected_name() == current.name else None)

    def _on_form_edited(self) -> None:
        self.error.hide()
        self._update_ok()

    def _on_force_changed(self, _checked: bool) -> None:
        self._refresh_state_note()

    def _on_workbench_changed(self, what: str) -> None:
        if what in ("inits", "document"):
            name = self.selected_name()
            values = None
            if self.form is not None and self.form.is_valid():
                values = self.form.values()
            info_before = self._info()
            self._populate(name)
            if self._info() is not info_before or self.selected_name() != name:
                self._show_choice(values)
        self._refresh_state_note()

    # ------------------------------------------------------------------ OK
    def accept(self) -> None:
        from app.pluginhost.settings import SettingsError

        info = self._info()
        if info is None:
            return
        try:
            values = self.form.values() if self.form is not None else {}
        except SettingsError as err:
            self.error.setText(str(err))
            self.error.show()
            return
        name, force = info.name, self.force.isChecked()

        def step(doc):
            before = doc.capture()
            try:
                doc.set_global_init(name, values)
                doc.initialize(force_reinit=force)
            except DocumentError:
                doc.restore(before)     # all or nothing: the choice is not kept either
                raise

        text = f"Initialize with {info.label}" + (" (forced)" if force else "")
        ok, message = self._wb.run(text, step)
        if ok:
            super().accept()
        else:
            self.error.setText(message)
            self.error.show()

    def done(self, result: int) -> None:
        try:
            self._wb.changed.disconnect(self._on_workbench_changed)
        except (RuntimeError, TypeError):
            pass
        super().done(result)
