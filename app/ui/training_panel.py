"""The Training panel: data, loss, optimizer and runs, for a side dock.

Headed sections: the configuration (Data, Loss, Optimizer; each collapses, remembered) scrolls
in the upper part; the Run section sits below a splitter, so the progress and the curve stay in
view while training (the split is remembered once the user moves it).

- **Data** — the input ``x`` (shape, distribution and seed, generated; or loaded from a
  ``.npy`` / ``.csv`` file) and, when the loss compares the output with something, the target
  (generated with its own distribution and seed, following the output's shape unless one is
  given; or loaded). A line above each form says where the values come from and their shape.
- **Loss** — the losses of :data:`~app.document.training.LOSSES`, and the last loss computed.
- **Optimizer** — every Trainer optimizer with a form of its settings (learning rate first),
  batch size and the snapshot interval.
- **Run** — Forward, Backward, Step (the window's actions when it passes them, so shortcuts and
  enabled state are shared), "Train N steps" on the :class:`~app.ui.training_run.TrainingRunner`
  and Cancel (Esc), a progress bar with the ETA, the live loss curve, and the outcome of the
  last run (a divergence names the step, the parameter and the layer).

Forms are :class:`~app.ui.settings_form.SettingsForm`: a wrong value stays in its field, red,
and is never applied. They apply with Apply (or Enter) — not on every keystroke, which would
make "0.05" four undo steps, the first of them a refused "0" — and each Apply, each combo
choice and each file load is one undo step through ``Workbench.run``. When the document
changes (undo, redo, another panel) the forms follow it, except the fields the user has edited
and not applied yet.

While the workbench is busy (a run on the worker thread) every editing control is disabled and
the panel reads nothing from the document but ``last_loss``; the progress area lives on the
runner's ``ticked`` (at most 10 times a second).

Start-up cost: the widgets are built when the panel is first shown (for a dock behind another
dock's tab, when that tab is picked) or by :meth:`TrainingPanel.train`, and pyqtgraph is
imported only when there is a curve to draw and the panel is visible.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PySide6.QtCore import QEvent, QSettings, QSize, Qt
from PySide6.QtGui import QAction, QKeySequence, QShortcut
from PySide6.QtWidgets import (QApplication, QCheckBox, QComboBox, QDockWidget, QFileDialog,
                               QFrame, QHBoxLayout, QLabel, QProgressBar, QPushButton,
                               QScrollArea, QSizePolicy, QSpinBox, QSplitter, QStackedWidget,
                               QStyle, QToolButton, QVBoxLayout, QWidget)

from app.document import DocumentError
from app.document import layers as L
from app.document.training import (LOSSES, OPTIMIZER_LABELS, OPTIMIZER_SETTINGS, OPTIMIZERS,
                                   TARGET_SETTINGS, TRAINING_SETTINGS)
from app.document.training import parse_shape as parse_target_shape
from app.pluginhost.settings import Setting, SettingsError
from app.ui.inspector_panel import INPUT_SETTINGS, input_changes, parse_shape
from app.ui.settings_form import FORM_STYLESHEET, SettingsForm, relayout, set_role
from app.ui.settings_form import make_label as _label

__all__ = ["DATA_FILTER", "TrainingPanel", "format_status"]

DATA_FILTER = "Arrays (*.npy *.csv);;NumPy array (*.npy);;CSV table (*.csv);;All files (*)"
STEPS_MAX = 1_000_000

# which value fields a distribution uses (the others are hidden; as in the Inspector's input)
_DIST_FIELDS = {"uniform": ("low", "high"), "integers": ("low", "high"),
                "normal": ("mean", "std"), "constant": ("value",)}
_VALUE_FIELDS = ("low", "high", "mean", "std", "value")

TARGET_FORM_SETTINGS = (
    Setting("shape", str, "", doc="the target's shape; empty = follow the network's output "
                                  "(one label per sample for softmax cross-entropy)"),
    *TARGET_SETTINGS,
)

# names of single-setting undo steps ("Learning rate 0.05")
_NICE = {"learning_rate": "Learning rate", "batch_size": "Batch size",
         "snapshot_every": "Snapshot interval", "clip_gradient": "Gradient clipping",
         "wd": "Weight decay"}

_PANEL_STYLESHEET = FORM_STYLESHEET + """
QToolButton#sectionHeader { font-weight: 600; border: none; padding: 3px 0px; }
QLabel#lossCurveHint { border: 1px dashed palette(mid); border-radius: 4px;
                       color: palette(placeholder-text); padding: 12px; }
QLabel[role="subheading"] { font-weight: 600; }
"""


# ===================================================================== small helpers
def format_status(step: int, requested: int, elapsed: float, eta_text: str,
                  loss: float | None, *, running: bool, cancelling: bool = False) -> str:
    """The line under the progress bar: ``step 37 / 100 · 2.1 s · about 3 s left · loss
    0.0123`` while running, ``step 100 / 100 · 2.1 s · loss 0.0123`` after."""
    parts = [f"step {_count(step)} / {_count(requested)}", _seconds(elapsed)]
    if running:
        parts.append("cancelling after this step…" if cancelling else eta_text)
    if loss is not None:
        parts.append(f"loss {loss:.4g}")
    return " · ".join(parts)


def _count(n: int) -> str:
    """1234567 → '1 234 567' (thin spaces: no locale's comma or dot to misread)."""
    return f"{n:,}".replace(",", "\u2009")


def _seconds(s: float) -> str:
    if s < 1:
        return f"{s * 1000:.0f} ms"
    if s < 60:
        return f"{s:.1f} s"
    m, s = divmod(round(s), 60)
    if m < 60:
        return f"{m} min {s} s"
    return f"{m // 60} h {m % 60} min"


def _set_message(label: QLabel, text: str, role: str | None = None) -> None:
    """Show ``text`` in a message label (hidden when empty), relaying out the column: a
    word-wrapped label that grows needs its parents' cached heights dropped."""
    if role is not None:
        set_role(label, role)
    explicit = label.testAttribute(Qt.WidgetAttribute.WA_WState_ExplicitShowHide)
    if label.text() != text or label.isHidden() == bool(text) or not explicit:
        label.setText(text)
        label.setVisible(bool(text))
        relayout(label)


def _button_row(*widgets, stretch_at: int = 0) -> QHBoxLayout:
    row = QHBoxLayout()
    row.setContentsMargins(0, 2, 0, 0)
    row.setSpacing(6)
    for i, w in enumerate(widgets):
        if i == stretch_at:
            row.addStretch(1)
        row.addWidget(w)
    if stretch_at >= len(widgets):
        row.addStretch(1)
    return row


def _shape_text(shape) -> str:
    return ", ".join(str(d) for d in shape)


def _editor_signal(editor: QWidget):
    if isinstance(editor, QComboBox):
        return editor.currentIndexChanged
    if isinstance(editor, QCheckBox):
        return editor.stateChanged
    return editor.textChanged


class _ElidedLabel(QLabel):
    """One line that never widens the column: the text is elided to the width it gets (the
    whole text is the tooltip)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self._full = ""
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.setMinimumWidth(20)

    def set_full_text(self, text: str) -> None:
        self._full = text
        self.setToolTip(text)
        self._elide()

    def full_text(self) -> str:
        return self._full

    def resizeEvent(self, event):  # noqa: N802 - Qt override
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        text = self.fontMetrics().elidedText(self._full, Qt.TextElideMode.ElideRight,
                                             max(self.width(), 20))
        if text != self.text():
            self.setText(text)


class _CurveStack(QStackedWidget):
    """The curve's place: it takes the run area's spare height, but asks only for its minimum
    (a PlotWidget's own size hint, 480 px, would make the run area scroll before the curve
    shrinks)."""

    def sizeHint(self):  # noqa: N802 - Qt override
        return QSize(240, self.minimumHeight())


def _scroll_area(name: str, widget: QWidget) -> QScrollArea:
    scroll = QScrollArea()
    scroll.setObjectName(name)
    scroll.setWidgetResizable(True)
    scroll.setFrameShape(QFrame.Shape.NoFrame)
    scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    scroll.setWidget(widget)
    return scroll


class _Section(QWidget):
    """A headed, collapsible section: an arrow + title button, a summary shown beside it (so a
    collapsed section still says what it holds), a hairline, and the body."""

    def __init__(self, title: str, name: str, settings: QSettings, *,
                 collapsible: bool = True):
        super().__init__()
        self.setObjectName(name)
        self._settings = settings
        self._key = f"training/collapsed/{name}"
        self.header = QToolButton()
        self.header.setObjectName("sectionHeader")
        self.header.setText(title)
        self.header.setCheckable(True)
        self.header.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.header.setAutoRaise(True)
        self.header.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        self.summary = _ElidedLabel()
        self.summary.setObjectName(name + "Summary")
        set_role(self.summary, "hint")
        self.summary.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        line = QFrame()
        line.setFrameShape(QFrame.Shape.HLine)
        line.setFrameShadow(QFrame.Shadow.Sunken)
        self.body = QWidget()
        self.body.setObjectName(name + "Body")
        self.body_layout = QVBoxLayout(self.body)
        self.body_layout.setContentsMargins(2, 4, 2, 6)
        self.body_layout.setSpacing(6)

        head = QHBoxLayout()
        head.setContentsMargins(0, 0, 0, 0)
        head.setSpacing(8)
        head.addWidget(self.header)
        head.addWidget(self.summary, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addLayout(head)
        layout.addWidget(line)
        layout.addWidget(self.body)

        if not collapsible:
            self.header.setCheckable(False)
            self.header.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            return
        collapsed = settings.value(self._key, False, type=bool)
        self.header.setChecked(not collapsed)
        self._show_expanded(not collapsed)
        self.header.toggled.connect(self._on_header_toggled)

    def set_summary(self, text: str) -> None:
        self.summary.set_full_text(text)

    def is_expanded(self) -> bool:
        return self.body.isVisibleTo(self)

    def set_expanded(self, expanded: bool) -> None:  # noqa: FBT001
        self.header.setChecked(expanded)

    def _show_expanded(self, expanded: bool) -> None:  # noqa: FBT001
        self.header.setArrowType(Qt.ArrowType.DownArrow if expanded else Qt.ArrowType.RightArrow)
        self.body.setVisible(expanded)

    def _on_header_toggled(self, checked: bool) -> None:  # noqa: FBT001
        self._show_expanded(checked)
        self._settings.setValue(self._key, not checked)
        relayout(self)


class _TrackedForm:
    """A :class:`SettingsForm` that knows which fields the user edited since it was loaded, so
    a document change (undo, redo, another panel) refreshes every other field without
    clobbering what is being typed."""

    def __init__(self, form: SettingsForm):
        self.form = form
        self.edited: set[str] = set()
        self._loading = False
        for s in form.settings():
            _editor_signal(form.editor(s.name)).connect(
                lambda *_args, n=s.name: self._on_field_changed(n))

    def load(self, values: dict, *, force: bool = False) -> None:
        """Show ``values``, except in the fields the user edited (all of them when ``force``)."""
        if force:
            self.edited.clear()
        keep = self.edited
        self._loading = True
        try:
            self.form.set_values({k: v for k, v in values.items() if k not in keep})
        finally:
            self._loading = False
        self.form.modified = bool(keep)

    def mark_clean(self) -> None:
        self.edited.clear()
        self.form.modified = False

    @property
    def modified(self) -> bool:
        # the form's flag is set before ``edited`` learns the field (its slot runs first)
        return self.form.modified or bool(self.edited)

    def _on_field_changed(self, name: str) -> None:
        if not self._loading and not self.form.signalsBlocked():
            self.edited.add(name)


# ===================================================================== the panel
class TrainingPanel(QWidget):
    """Data, loss, optimizer and runs (objectName ``trainingPanel``).

    ``actions``: the window's ``{'forward': QAction, 'backward': ..., 'step': ...}``; the Run
    buttons trigger them (shared shortcuts and enabled state). Without it the panel runs those
    gestures itself. ``settings``: where the panel remembers the step count, the log-scale
    toggle, the collapsed sections and the last data folder (default ``QSettings()``).

    ``choose_input_path`` / ``choose_target_path`` return the file the user picked ('' when
    cancelled); tests replace them."""

    def __init__(self, workbench, runner, parent=None, *, actions: dict | None = None,
                 settings: QSettings | None = None):
        super().__init__(parent)
        self.setObjectName("trainingPanel")
        self.wb = workbench
        self.runner = runner
        self.settings = settings if settings is not None else QSettings()
        self.choose_input_path = lambda: self._choose_path("Load Input x")
        self.choose_target_path = lambda: self._choose_path("Load Target")
        self._given_actions = dict(actions or {})
        self._built = False
        self._watching_dock = False
        self._focus_in_run = False
        self._stale = False                 # a change arrived while busy: refresh after
        self._opt_form_name = ""
        self._loss_combo_name = ""
        # the curve: the losses of the current (or last) run, grown in place
        self._losses = np.empty(0, np.float64)
        self._n_losses = 0
        self._n_checked, self._all_positive = 0, True   # losses checked for the log scale
        self._curve_dirty = False
        self._splitter_restored = False
        self.plot_widget = None             # pyqtgraph PlotWidget, made when first needed
        self.plot = None
        self.curve = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.setMinimumWidth(260)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Expanding)

    def ensure_built(self) -> None:
        """Build the widgets (done when the panel is first shown, or by :meth:`train`).

        The window makes the panel at start-up, usually hidden behind another dock tab;
        building its forms then would cost start-up time for nothing."""
        if self._built:
            return
        self._built = True
        self.setStyleSheet(_PANEL_STYLESHEET)
        self._build(self._given_actions)
        self.refresh(force=True)
        if not self.runner.running and self.runner.last_result is not None:
            # built after a run (the panel was never shown): its progress, curve, outcome
            self._on_run_ticked(self.runner.status())
            self._on_run_finished(self.runner.last_result)
        self._apply_busy()

        wb, runner = self.wb, self.runner
        wb.changed.connect(self._on_document_changed)
        wb.busy_changed.connect(self._on_busy_changed)
        runner.started.connect(self._on_run_started)
        runner.ticked.connect(self._on_run_ticked)
        runner.finished.connect(self._on_run_finished)
        runner.refused.connect(self._on_run_refused)
        self.input_tracked.form.edited.connect(self._on_input_edited)
        self.input_tracked.form.submitted.connect(self._on_input_apply)
        self.input_apply.clicked.connect(self._on_input_apply)
        self.input_revert.clicked.connect(self._on_input_revert)
        self.input_load.clicked.connect(self._on_input_load)
        self.target_tracked.form.edited.connect(self._on_target_edited)
        self.target_tracked.form.submitted.connect(self._on_target_apply)
        self.target_apply.clicked.connect(self._on_target_apply)
        self.target_revert.clicked.connect(self._on_target_revert)
        self.target_load.clicked.connect(self._on_target_load)
        self.loss_combo.activated.connect(self._on_loss_chosen)
        self.optimizer_combo.activated.connect(self._on_optimizer_chosen)
        self.training_tracked.form.edited.connect(self._on_optimizer_edited)
        self.training_tracked.form.submitted.connect(self._on_optimizer_apply)
        self.optimizer_apply.clicked.connect(self._on_optimizer_apply)
        self.optimizer_revert.clicked.connect(self._on_optimizer_revert)
        self.steps_spin.valueChanged.connect(self._on_steps_changed)
        self.train_button.clicked.connect(self.train)
        self.cancel_button.clicked.connect(self.cancel)
        self.cancel_shortcut.activated.connect(self.cancel)
        self.log_check.toggled.connect(self._on_log_toggled)
        self.splitter.splitterMoved.connect(self._on_splitter_moved)
        if self.isVisible():
            self.splitter.show()            # added while the panel is shown: show it now
            self.layout().activate()
            if not self._splitter_restored:
                self._size_splitter()

    # ================================================================= building
    def _build(self, actions) -> None:
        # Top: the configuration, scrolling. Bottom: the run (buttons, progress, the curve),
        # always in view while training. The user moves the splitter; it is remembered.
        content = QWidget()
        content.setObjectName("trainingContent")
        column = QVBoxLayout(content)
        column.setContentsMargins(8, 6, 8, 8)
        column.setSpacing(10)
        self.data_section = self._build_data()
        self.loss_section = self._build_loss()
        self.optimizer_section = self._build_optimizer()
        for sec in (self.data_section, self.loss_section, self.optimizer_section):
            column.addWidget(sec)
        column.addStretch(1)
        self.scroll = _scroll_area("trainingScroll", content)

        run = QWidget()
        run.setObjectName("runContent")
        run_column = QVBoxLayout(run)
        run_column.setContentsMargins(8, 4, 8, 8)
        self.run_section = self._build_run(actions)
        run_column.addWidget(self.run_section, 1)
        self.run_scroll = _scroll_area("runScroll", run)

        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.setObjectName("trainingSplitter")
        self.splitter.setChildrenCollapsible(False)
        self.splitter.addWidget(self.scroll)
        self.splitter.addWidget(self.run_scroll)
        self.splitter.setStretchFactor(0, 1)
        self.splitter.setStretchFactor(1, 0)
        self._splitter_restored = self.splitter.restoreState(
            self.settings.value("training/splitter", b"") or b"")
        self.layout().addWidget(self.splitter)

        self.cancel_shortcut = QShortcut(QKeySequence(Qt.Key.Key_Escape), self)
        self.cancel_shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)

    def _build_data(self) -> _Section:
        sec = _Section("Data", "dataSection", self.settings)
        body = sec.body_layout

        head = QHBoxLayout()
        head.setSpacing(6)
        head.addWidget(_label("Input x", "subheading", wrap=False))
        self.input_source = _label(role="hint", selectable=True, name="trainingInputSource")
        head.addWidget(self.input_source, 1)
        body.addLayout(head)
        form = SettingsForm(INPUT_SETTINGS, None, owner="the input", check=self._check_input)
        form.setObjectName("trainingInputForm")
        self.input_tracked = _TrackedForm(form)
        body.addWidget(form)
        self.input_error = _label(role="error", selectable=True, name="trainingInputError")
        _set_message(self.input_error, "")
        body.addWidget(self.input_error)
        self.input_load = QPushButton("Load…")
        self.input_load.setObjectName("trainingInputLoad")
        self.input_load.setToolTip("Use the array in a .npy or .csv file as x (its shape "
                                   "becomes the input shape)")
        self.input_revert = QPushButton("Revert")
        self.input_revert.setObjectName("trainingInputRevert")
        self.input_apply = QPushButton("Apply")
        self.input_apply.setObjectName("trainingInputApply")
        body.addLayout(_button_row(self.input_load, self.input_revert, self.input_apply,
                                   stretch_at=1))

        self.target_box = QWidget()
        self.target_box.setObjectName("targetBox")
        tb = QVBoxLayout(self.target_box)
        tb.setContentsMargins(0, 8, 0, 0)
        tb.setSpacing(6)
        head = QHBoxLayout()
        head.setSpacing(6)
        head.addWidget(_label("Target", "subheading", wrap=False))
        self.target_source = _label(role="hint", selectable=True, name="targetSource")
        head.addWidget(self.target_source, 1)
        tb.addLayout(head)
        form = SettingsForm(TARGET_FORM_SETTINGS, None, owner="the target",
                            check=self._check_target)
        form.setObjectName("targetForm")
        self.target_tracked = _TrackedForm(form)
        tb.addWidget(form)
        self.target_error = _label(role="error", selectable=True, name="targetError")
        _set_message(self.target_error, "")
        tb.addWidget(self.target_error)
        self.target_load = QPushButton("Load…")
        self.target_load.setObjectName("targetLoad")
        self.target_load.setToolTip("Use the array in a .npy or .csv file as the target")
        self.target_revert = QPushButton("Revert")
        self.target_revert.setObjectName("targetRevert")
        self.target_apply = QPushButton("Apply")
        self.target_apply.setObjectName("targetApply")
        tb.addLayout(_button_row(self.target_load, self.target_revert, self.target_apply,
                                 stretch_at=1))
        body.addWidget(self.target_box)
        return sec

    def _build_loss(self) -> _Section:
        sec = _Section("Loss", "lossSection", self.settings)
        body = sec.body_layout
        self.loss_combo = QComboBox()
        self.loss_combo.setObjectName("lossCombo")
        for name, info in LOSSES.items():
            self.loss_combo.addItem(info.label, name)
            self.loss_combo.setItemData(self.loss_combo.count() - 1, info.description,
                                        Qt.ItemDataRole.ToolTipRole)
        body.addWidget(self.loss_combo)
        self.loss_description = _label(role="hint", name="lossDescription")
        body.addWidget(self.loss_description)
        self.loss_error = _label(role="error", selectable=True, name="lossError")
        _set_message(self.loss_error, "")
        body.addWidget(self.loss_error)
        row = QHBoxLayout()
        row.setSpacing(6)
        row.addWidget(_label("Current loss", wrap=False))
        self.loss_value = _label(wrap=False, selectable=True, name="lossValue")
        row.addWidget(self.loss_value, 1)
        body.addLayout(row)
        return sec

    def _build_optimizer(self) -> _Section:
        sec = _Section("Optimizer", "optimizerSection", self.settings)
        body = sec.body_layout
        self.optimizer_combo = QComboBox()
        self.optimizer_combo.setObjectName("optimizerCombo")
        for name in OPTIMIZERS:
            self.optimizer_combo.addItem(OPTIMIZER_LABELS.get(name, name), name)
            self.optimizer_combo.setItemData(self.optimizer_combo.count() - 1,
                                             f"gluon.Trainer(params, '{name}', ...)",
                                             Qt.ItemDataRole.ToolTipRole)
        body.addWidget(self.optimizer_combo)
        self.optimizer_holder = QVBoxLayout()
        self.optimizer_holder.setContentsMargins(0, 0, 0, 0)
        body.addLayout(self.optimizer_holder)
        self.optimizer_tracked: _TrackedForm | None = None
        form = SettingsForm(TRAINING_SETTINGS, None, owner="training")
        form.setObjectName("trainingForm")
        self.training_tracked = _TrackedForm(form)
        body.addWidget(form)
        self.batch_hint = _label(role="hint", name="batchHint")
        body.addWidget(self.batch_hint)
        self.optimizer_error = _label(role="error", selectable=True, name="optimizerError")
        _set_message(self.optimizer_error, "")
        body.addWidget(self.optimizer_error)
        self.optimizer_revert = QPushButton("Revert")
        self.optimizer_revert.setObjectName("optimizerRevert")
        self.optimizer_apply = QPushButton("Apply")
        self.optimizer_apply.setObjectName("optimizerApply")
        body.addLayout(_button_row(self.optimizer_revert, self.optimizer_apply))
        return sec

    def _build_run(self, actions) -> _Section:
        sec = _Section("Run", "runSection", self.settings, collapsible=False)
        body = sec.body_layout
        sp = QStyle.StandardPixmap
        # everything here that edits the model sits in one container, disabled during a run
        # (a container, not the buttons: a button showing a QAction follows the action's state)
        self.run_controls = QWidget()
        self.run_controls.setObjectName("runControls")
        rc = QVBoxLayout(self.run_controls)
        rc.setContentsMargins(0, 0, 0, 0)
        rc.setSpacing(6)
        self.actions = dict(actions or {})
        specs = (("forward", "Forward", sp.SP_MediaPlay, "Run net(x) on the input batch"),
                 ("backward", "Backward", sp.SP_MediaSeekBackward,
                  "Record net(x) and back-propagate from the configured loss"),
                 ("step", "Step", sp.SP_MediaSkipForward,
                  "One optimizer step with the current gradients"))
        row = QHBoxLayout()
        row.setSpacing(6)
        self.step_buttons = {}
        for key, text, icon, tip in specs:
            action = self.actions.get(key)
            if action is None:
                action = QAction(self.style().standardIcon(icon), text, self)
                action.setObjectName(f"trainingAction{text}")
                action.setToolTip(tip)
                action.triggered.connect(lambda _checked=False, k=key: self._run_gesture(k))
                self.actions[key] = action
            button = QToolButton()
            button.setObjectName(f"{key}Button")
            button.setDefaultAction(action)
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
            button.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
            self.step_buttons[key] = button
            row.addWidget(button)
        rc.addLayout(row)

        body.addWidget(self.run_controls)

        # Steps and Train (disabled during a run with the rest); Cancel (live during a run)
        self.train_controls = QWidget()
        self.train_controls.setObjectName("trainControls")
        tc = QHBoxLayout(self.train_controls)
        tc.setContentsMargins(0, 0, 0, 0)
        tc.setSpacing(6)
        steps_row = QHBoxLayout()
        steps_row.setContentsMargins(0, 0, 0, 0)
        steps_row.setSpacing(6)
        steps_label = QLabel("Steps")
        self.steps_spin = QSpinBox()
        self.steps_spin.setObjectName("stepsSpin")
        self.steps_spin.setRange(1, STEPS_MAX)
        self.steps_spin.setAccelerated(True)
        self.steps_spin.setToolTip(f"How many steps Train runs (1 – {_count(STEPS_MAX)})")
        steps_label.setBuddy(self.steps_spin)
        steps = self.settings.value("training/steps", 100)
        try:
            steps = int(steps)
        except (TypeError, ValueError):
            steps = 100
        self.steps_spin.setValue(min(max(steps, 1), STEPS_MAX))
        self.train_button = QPushButton()
        self.train_button.setObjectName("trainButton")
        self.train_button.setIcon(self.style().standardIcon(sp.SP_MediaSeekForward))
        self.train_button.setToolTip("Train on a worker thread: record forward + loss, "
                                     "backward, trainer.step, N times (one undo step)")
        self.train_button.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        steps_row.addWidget(steps_label)
        steps_row.addWidget(self.steps_spin, 1)
        self.steps_controls = QWidget()
        self.steps_controls.setObjectName("stepsControls")
        self.steps_controls.setLayout(steps_row)
        body.addWidget(self.steps_controls)
        tc.addWidget(self.train_button, 1)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setObjectName("cancelButton")
        self.cancel_button.setIcon(self.style().standardIcon(sp.SP_MediaStop))
        self.cancel_button.setToolTip("Stop after the current step; what completed is kept "
                                      "(Esc)")
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(6)
        row.addWidget(self.train_controls, 1)
        row.addWidget(self.cancel_button)
        body.addLayout(row)

        self.problem = _label(role="warning", selectable=True, name="trainProblem")
        _set_message(self.problem, "")
        body.addWidget(self.problem)

        self.progress = QProgressBar()
        self.progress.setObjectName("trainProgress")
        self.progress.setTextVisible(True)
        self.status = _label(role="hint", selectable=True, name="trainStatus")
        body.addWidget(self.progress)
        body.addWidget(self.status)
        self._set_progress(0, 0)
        # the outcome sits above the curve: a divergence must be read, not scrolled to
        self.message = _label(selectable=True, name="trainMessage")
        _set_message(self.message, "")
        body.addWidget(self.message)

        head = QHBoxLayout()
        head.setSpacing(6)
        head.addWidget(_label("Loss per step", "subheading", wrap=False))
        head.addStretch(1)
        self.log_check = QCheckBox("Log scale")
        self.log_check.setObjectName("logLoss")
        self.log_check.setChecked(self.settings.value("training/logLoss", False, type=bool))
        head.addWidget(self.log_check)
        body.addLayout(head)

        self.curve_stack = _CurveStack()
        self.curve_stack.setObjectName("lossCurveHolder")
        self.curve_stack.setMinimumHeight(140)
        self.curve_stack.setSizePolicy(QSizePolicy.Policy.Preferred,
                                       QSizePolicy.Policy.Expanding)
        self.curve_hint = QLabel("Train to see the loss per step.")
        self.curve_hint.setObjectName("lossCurveHint")
        self.curve_hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.curve_hint.setWordWrap(True)
        self.curve_stack.addWidget(self.curve_hint)
        body.addWidget(self.curve_stack, 1)
        return sec

    # ================================================================= public
    @property
    def doc(self):
        return self.wb.doc

    def train(self) -> bool:
        """Start "Train N steps" with the spin box's N (what the Train button does)."""
        self.ensure_built()
        if self.wb.busy or self.runner.running:
            return False
        self.steps_spin.interpretText()
        _set_message(self.message, "")
        return self.runner.start(int(self.steps_spin.value()))

    def cancel(self) -> None:
        """Stop the run after the current step (Cancel, Esc)."""
        if self.runner.running:
            self.runner.cancel()
            if self._built:
                self._apply_busy()

    def set_actions(self, actions: dict) -> None:
        """Make the Forward / Backward / Step buttons trigger the window's actions
        (``{'forward': QAction, ...}``); before or after the panel is built."""
        self._given_actions.update(actions)
        if not self._built:
            return
        for key, action in actions.items():
            if key in self.step_buttons:
                self.actions[key] = action
                self.step_buttons[key].setDefaultAction(action)
        self._refresh_run()

    def refresh(self, *, force: bool = False) -> None:
        """Re-render from the document. ``force`` discards unapplied edits (a new document)."""
        if not self._built:
            return                          # built from the document when first shown
        if self.wb.busy:
            # the settings are safe to read while a run holds the model (the target and
            # the run area are not: they are redone when the run ends)
            self._stale = True
            self._refresh_input(force)
            self._refresh_loss()
            self._refresh_optimizer(force)
            return
        self._stale = False
        self._refresh_input(force)
        self._refresh_target(force)
        self._refresh_loss()
        self._refresh_optimizer(force)
        self._refresh_run()

    def curve_data(self) -> np.ndarray:
        """The losses the curve shows (tests, exports)."""
        return self._losses[:self._n_losses].copy()

    # ================================================================= refresh
    def _input_values(self) -> dict:
        spec = self.doc.input
        values = {k: getattr(spec, k) for k in ("distribution", *_VALUE_FIELDS, "seed")}
        values["shape"] = _shape_text(spec.shape)
        return values

    def _refresh_input(self, force: bool) -> None:  # noqa: FBT001
        doc = self.doc
        self.input_tracked.load(self._input_values(), force=force)
        spec = doc.input
        shape = L.format_shape(tuple(spec.shape))
        file = doc.train_config.input_file
        if file:
            source = f"{shape} · from {file}"
        else:
            source = f"{shape} · generated, {spec.distribution}, seed {spec.seed}"
        self.input_source.setText(source)
        self.input_source.setToolTip("Applying the form draws x again from these settings "
                                     "(replacing the loaded file)" if file else "")
        self.input_apply.setText("Generate" if file else "Apply")
        self._update_rows(self.input_tracked.form)
        self._update_input_buttons()
        self.data_section.set_summary(f"x {shape}" + (f" from {file}" if file else ""))

    def _target_values(self) -> dict:
        t = self.doc.train_config.target
        values = {s.name: getattr(t, s.name) for s in TARGET_SETTINGS}
        values["shape"] = "" if t.source == "file" or t.shape is None else _shape_text(t.shape)
        return values

    def _refresh_target(self, force: bool) -> None:  # noqa: FBT001
        doc = self.doc
        cfg = doc.train_config
        needed = cfg.loss_info.target != "none"
        self.target_box.setVisible(needed)
        if not needed:
            return
        t = cfg.target
        self.target_tracked.load(self._target_values(), force=force)
        try:
            shape = L.format_shape(doc.target_array().shape)
        except DocumentError:
            shape = "does not fit"          # the hint under Train says why
        if t.source == "file":
            source = f"{shape} · from {t.file}"
        else:
            follows = " · follows the output" if t.shape is None else ""
            source = f"{shape} · generated, {t.distribution}, seed {t.seed}{follows}"
        self.target_source.setText(source)
        self.target_apply.setText("Generate" if t.source == "file" else "Apply")
        self._update_rows(self.target_tracked.form)
        self._update_target_buttons()

    def _refresh_loss(self) -> None:
        doc = self.doc
        name = doc.train_config.loss
        info = LOSSES[name]
        if self._loss_combo_name != name or self.loss_combo.currentData() != name:
            self.loss_combo.blockSignals(True)
            self.loss_combo.setCurrentIndex(self.loss_combo.findData(name))
            self.loss_combo.blockSignals(False)
            self._loss_combo_name = name
        self.loss_combo.setToolTip(info.description)
        self.loss_description.setText(info.description)
        self.loss_section.set_summary(info.label)
        self._show_last_loss()

    def _show_last_loss(self) -> None:
        loss = self.doc.last_loss
        if loss is None:
            self.loss_value.setText("— (run Backward or Train)")
            set_role(self.loss_value, "hint")
        else:
            self.loss_value.setText(f"{loss:.6g}")
            set_role(self.loss_value, "")

    def _refresh_optimizer(self, force: bool) -> None:  # noqa: FBT001
        cfg = self.doc.train_config
        name = cfg.optimizer
        if self.optimizer_combo.currentData() != name:
            self.optimizer_combo.blockSignals(True)
            self.optimizer_combo.setCurrentIndex(self.optimizer_combo.findData(name))
            self.optimizer_combo.blockSignals(False)
        if self._opt_form_name != name or self.optimizer_tracked is None:
            self._build_optimizer_form(name)
            force = True
        self.optimizer_tracked.load(dict(cfg.optimizer_settings), force=force)
        self.training_tracked.load({"batch_size": cfg.batch_size,
                                    "snapshot_every": cfg.snapshot_every}, force=force)
        rows = self.doc.x.shape[0] if self.doc.x is not None else self.doc.input.shape[0]
        used = cfg.batch_size or rows
        self.batch_hint.setText(
            f"Batch size 0 = the input's first dimension (now {rows}); the gradients are "
            f"divided by {used}. Snapshots every {cfg.snapshot_every} steps"
            if cfg.snapshot_every else
            f"Batch size 0 = the input's first dimension (now {rows}); the gradients are "
            f"divided by {used}. A snapshot only at the end of a run")
        self.optimizer_section.set_summary(
            f"{OPTIMIZER_LABELS.get(name, name)}, learning rate "
            f"{cfg.optimizer_settings['learning_rate']:g}")
        self._update_optimizer_buttons()

    def _build_optimizer_form(self, name: str) -> None:
        old = self.optimizer_tracked
        if old is not None:
            self.optimizer_holder.removeWidget(old.form)
            old.form.hide()
            old.form.deleteLater()
        form = SettingsForm(OPTIMIZER_SETTINGS[name], None, owner=f"optimizer '{name}'")
        form.setObjectName("optimizerForm")
        self.optimizer_holder.addWidget(form)
        self.optimizer_tracked = _TrackedForm(form)
        self._opt_form_name = name
        form.edited.connect(self._on_optimizer_edited)
        form.submitted.connect(self._on_optimizer_apply)
        relayout(form)

    def _refresh_run(self) -> None:
        doc = self.doc
        problem = doc.training_problem()
        # the panel's own actions (the window's keep the window's state)
        own = {k: a for k, a in self.actions.items() if a.parent() is self}
        if own:
            nonempty = bool(doc.layers)
            grads = nonempty and any(p._data is not None and p._data._fresh_grad
                                     for p in doc.params().values())
            for key, action in own.items():
                action.setEnabled(grads if key == "step" else nonempty)
        self.train_button.setEnabled(not problem and not self.runner.running)
        _set_message(self.problem, problem[:1].upper() + problem[1:] if problem else "")
        self._update_train_text()

    def _update_train_text(self) -> None:
        n = self.steps_spin.value()
        self.train_button.setText(f"Train {_count(n)} step{'s' if n != 1 else ''}")

    @staticmethod
    def _update_rows(form: SettingsForm) -> None:
        try:
            dist = form.values()["distribution"]
        except (SettingsError, KeyError):
            dist = form.editor("distribution").currentText()
        shown = _DIST_FIELDS.get(dist, ())
        for name in _VALUE_FIELDS:
            form.set_row_visible(name, name in shown)

    def _update_input_buttons(self) -> None:
        t = self.input_tracked
        from_file = bool(self.doc.train_config.input_file)
        self.input_apply.setEnabled((t.modified or from_file) and t.form.is_valid())
        self.input_revert.setEnabled(t.modified)

    def _update_target_buttons(self) -> None:
        t = self.target_tracked
        from_file = self.doc.train_config.target.source == "file"
        self.target_apply.setEnabled((t.modified or from_file) and t.form.is_valid())
        self.target_revert.setEnabled(t.modified)

    def _update_optimizer_buttons(self) -> None:
        o, t = self.optimizer_tracked, self.training_tracked
        modified = o.modified or t.modified
        self.optimizer_apply.setEnabled(modified and o.form.is_valid() and t.form.is_valid())
        self.optimizer_revert.setEnabled(modified)

    # ================================================================= checks
    def _check_input(self, values: dict) -> dict:
        try:
            shape = parse_shape(values["shape"])
        except SettingsError as err:
            return {"shape": str(err)}
        if values["distribution"] in ("uniform", "integers") and \
                not values["high"] > values["low"]:
            msg = f"input high ({values['high']}) must be greater than low ({values['low']})"
            return {"low": msg, "high": msg}
        try:
            self.doc.input.updated(**{**values, "shape": shape})
        except DocumentError as err:
            return {"": str(err)}
        return {}

    def _check_target(self, values: dict) -> dict:
        try:
            parse_target_shape(values["shape"])
        except DocumentError as err:
            return {"shape": str(err).replace("a shape", "the target's shape", 1)}
        if values["distribution"] in ("uniform", "integers") and \
                not values["high"] > values["low"]:
            msg = f"target high ({values['high']}) must be greater than low ({values['low']})"
            return {"low": msg, "high": msg}
        return {}

    # ================================================================= data
    def _on_input_edited(self) -> None:
        _set_message(self.input_error, "")
        self._update_rows(self.input_tracked.form)
        self._update_input_buttons()

    def _on_input_apply(self) -> None:
        t = self.input_tracked
        from_file = bool(self.doc.train_config.input_file)
        if not (t.modified or from_file) or not t.form.is_valid():
            return
        try:
            changes = input_changes(t.form, self.doc.input, only=t.edited)
        except SettingsError as err:
            _set_message(self.input_error, str(err))
            return
        if not changes and not from_file:
            t.mark_clean()
            self.refresh()
            return
        ok, result = self.wb.run("Set input", lambda d: d.set_input(**changes))
        if ok:
            t.mark_clean()
            self.refresh()
        else:
            _set_message(self.input_error, result)

    def _on_input_revert(self) -> None:
        _set_message(self.input_error, "")
        self.input_tracked.load(self._input_values(), force=True)
        self._update_rows(self.input_tracked.form)
        self._update_input_buttons()

    def _on_input_load(self) -> None:
        path = self.choose_input_path()
        if not path:
            return
        ok, result = self.wb.run(f"Load input from {os.path.basename(path)}",
                                 lambda d: d.load_input(path))
        if ok:
            self._remember_dir(path)
            self.input_tracked.mark_clean()
            _set_message(self.input_error, "")
            self.refresh()
        else:
            _set_message(self.input_error, result)

    def _on_target_edited(self) -> None:
        _set_message(self.target_error, "")
        self._update_rows(self.target_tracked.form)
        self._update_target_buttons()

    def _on_target_apply(self) -> None:
        t = self.target_tracked
        cfg = self.doc.train_config
        from_file = cfg.target.source == "file"
        if not (t.modified or from_file) or not t.form.is_valid():
            return
        try:
            values = t.form.values()
            values["shape"] = parse_target_shape(values["shape"])
        except (SettingsError, DocumentError) as err:
            _set_message(self.target_error, str(err))
            return
        current = cfg.target
        changes = {k: v for k, v in values.items()
                   if k in t.edited and getattr(current, k) != v}
        if not changes and not from_file:
            t.mark_clean()
            self.refresh()
            return
        ok, result = self.wb.run("Set target", lambda d: d.set_target(**changes))
        if ok:
            t.mark_clean()
            _set_message(self.target_error, "")
            self.refresh()
        else:
            _set_message(self.target_error, result)

    def _on_target_revert(self) -> None:
        _set_message(self.target_error, "")
        self.target_tracked.load(self._target_values(), force=True)
        self.refresh()

    def _on_target_load(self) -> None:
        path = self.choose_target_path()
        if not path:
            return
        ok, result = self.wb.run(f"Load target from {os.path.basename(path)}",
                                 lambda d: d.load_target(path))
        if ok:
            self._remember_dir(path)
            self.target_tracked.mark_clean()
            _set_message(self.target_error, "")
            self.refresh()
        else:
            _set_message(self.target_error, result)

    def _start_dir(self) -> str:
        last = self.settings.value("files/lastDir")
        if isinstance(last, str) and os.path.isdir(last):
            return last
        return str(Path.home())

    def _remember_dir(self, path) -> None:
        self.settings.setValue("files/lastDir", str(Path(path).resolve().parent))

    def _choose_path(self, title: str) -> str:
        path, _selected = QFileDialog.getOpenFileName(self, title, self._start_dir(),
                                                      DATA_FILTER)
        return path

    # ================================================================= loss / optimizer
    def _on_loss_chosen(self, _index: int) -> None:
        name = self.loss_combo.currentData()
        if name is None or name == self.doc.train_config.loss:
            return
        ok, result = self.wb.run(f"Loss: {LOSSES[name].label}", lambda d: d.set_loss(name))
        if ok:
            _set_message(self.loss_error, "")
        else:
            _set_message(self.loss_error, result)
        self.refresh()

    def _on_optimizer_chosen(self, _index: int) -> None:
        name = self.optimizer_combo.currentData()
        if name is None or name == self.doc.train_config.optimizer:
            return
        ok, result = self.wb.run(f"Optimizer: {OPTIMIZER_LABELS.get(name, name)}",
                                 lambda d: d.set_optimizer(name))
        _set_message(self.optimizer_error, "" if ok else result)
        self.refresh()

    def _on_optimizer_edited(self) -> None:
        _set_message(self.optimizer_error, "")
        self._update_optimizer_buttons()

    def _on_optimizer_apply(self) -> None:
        o, t = self.optimizer_tracked, self.training_tracked
        if not (o.modified or t.modified) or not (o.form.is_valid() and t.form.is_valid()):
            return
        try:
            opt_values, train_values = o.form.values(), t.form.values()
        except SettingsError as err:
            _set_message(self.optimizer_error, str(err))
            return
        cfg = self.doc.train_config
        opt = {k: v for k, v in opt_values.items()
               if k in o.edited and cfg.optimizer_settings.get(k) != v}
        rest = {k: v for k, v in train_values.items()
                if k in t.edited and getattr(cfg, k) != v}
        if not opt and not rest:
            o.mark_clean()
            t.mark_clean()
            self.refresh()
            return
        edits = {**opt, **rest}
        if len(edits) == 1:
            (key, value), = edits.items()
            text = f"{_NICE.get(key, key)} {value:g}" if isinstance(value, float) and \
                not isinstance(value, bool) else f"{_NICE.get(key, key)} {value}"
        else:
            text = "Optimizer settings"
        changes = dict(rest)
        if opt:
            changes["optimizer_settings"] = opt
        ok, result = self.wb.run(text, lambda d: d.set_training(**changes))
        if ok:
            o.mark_clean()
            t.mark_clean()
            _set_message(self.optimizer_error, "")
            self.refresh()
        else:
            _set_message(self.optimizer_error, result)

    def _on_optimizer_revert(self) -> None:
        _set_message(self.optimizer_error, "")
        self.optimizer_tracked.mark_clean()
        self.training_tracked.mark_clean()
        self._refresh_optimizer(True)

    # ================================================================= run
    def _run_gesture(self, key: str) -> None:
        """Forward / Backward / Step without the window's actions."""
        text = {"forward": "Forward", "backward": "Backward", "step": "Step"}[key]
        ok, result = self.wb.run(text, lambda d: getattr(d, key)())
        if not ok:
            _set_message(self.message, f"{text}: {result}", "error")
        else:
            _set_message(self.message, "")

    def _on_steps_changed(self, value: int) -> None:
        self.settings.setValue("training/steps", int(value))
        self._update_train_text()

    def _set_progress(self, done: int, total: int) -> None:
        """Steps done of ``total`` (0: no run yet, an empty bar)."""
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(min(done, max(total, 1)))
        self.progress.setFormat(f"{_count(done)} / {_count(total)}" if total else "")
        # before any run the curve's hint says it all: no empty bar
        self.progress.setVisible(bool(total))
        self.status.setVisible(bool(total))

    def _on_run_started(self, n: int) -> None:
        self._losses = np.empty(min(max(n, 16), 4096), np.float64)
        self._n_losses = 0
        self._curve_dirty = True
        self._set_progress(0, n)
        self.status.setText(format_status(0, n, 0.0, "estimating…", None, running=True))
        _set_message(self.message, "")
        focus = QApplication.focusWidget()
        self._focus_in_run = focus is None or self.isAncestorOf(focus)
        if self._focus_in_run:
            self.cancel_button.setFocus()   # the rest is disabled: Esc and Space still work
        self._show_curve()

    def _on_run_ticked(self, status) -> None:
        self._set_progress(status.step, status.requested)
        losses = status.losses
        if len(losses) < self._n_losses:            # a new run (missed its start)
            self._n_losses = 0
        new = losses[self._n_losses:]
        if new:
            need = self._n_losses + len(new)
            if need > len(self._losses):
                grown = np.empty(max(need, 2 * len(self._losses)), np.float64)
                grown[:self._n_losses] = self._losses[:self._n_losses]
                self._losses = grown
            self._losses[self._n_losses:need] = new
            self._n_losses = need
            self._curve_dirty = True
        loss = self._losses[self._n_losses - 1] if self._n_losses else None
        running = self.runner.running
        self.status.setText(format_status(status.step, status.requested, status.elapsed,
                                          status.eta_text(), loss, running=running,
                                          cancelling=status.cancelling))
        # enabled/disabled follows busy_changed; only Cancel's label changes during a run
        self.cancel_button.setEnabled(running and not self.runner.cancelling)
        self.cancel_button.setText("Cancelling…" if self.runner.cancelling else "Cancel")
        self._show_curve()

    def _on_run_finished(self, result) -> None:
        if result is None:
            return                          # refused: _on_run_refused says why
        if result.divergence is not None:
            role = "warning"
        elif result.error:
            role = "error"
        else:
            role = ""
        _set_message(self.message, result.message, role)
        self._set_progress(result.steps, result.requested)
        self._show_last_loss()
        self._show_curve()
        if not self._splitter_restored:
            self._size_splitter()       # a long message (a divergence) must not hide the curve

    def _on_run_refused(self, message: str) -> None:
        _set_message(self.message, f"Train: {message}", "error")

    def _on_busy_changed(self, _what: str) -> None:
        self._apply_busy()
        if not self.wb.busy and self._focus_in_run:
            self._focus_in_run = False
            self.train_button.setFocus()    # where it was before the run
        if not self.wb.busy and self._stale:
            self.refresh()
        elif not self.wb.busy:
            self._refresh_run()

    def _apply_busy(self) -> None:
        busy = bool(self.wb.busy) or self.runner.running
        for w in (self.data_section.body, self.loss_section.body,
                  self.optimizer_section.body, self.run_controls, self.steps_controls,
                  self.train_controls):
            w.setEnabled(not busy)
        running = self.runner.running
        self.cancel_button.setEnabled(running and not self.runner.cancelling)
        self.cancel_button.setText("Cancelling…" if self.runner.cancelling else "Cancel")

    def _on_document_changed(self, what: str) -> None:
        if what == "document":
            self._losses = np.empty(0, np.float64)
            self._n_losses = 0
            self._curve_dirty = True
            _set_message(self.message, "")
            self._set_progress(0, 0)
            self._show_curve()
        if what == "params":                # values only: the forms are unaffected
            if not self.wb.busy:
                self._show_last_loss()
                self._refresh_run()
            return
        self.refresh(force=what == "document")

    # ================================================================= the curve
    def _show_curve(self) -> None:
        """Draw the losses, or the hint when there are none. The plot (and pyqtgraph) is made
        only when there is something to draw and the panel is visible."""
        if self._n_losses == 0:
            self.curve_stack.setCurrentWidget(self.curve_hint)
            self._update_log_check()
            return
        if self.plot_widget is None:
            if not self.isVisible():
                return                      # showEvent draws it
            self._make_plot()
        self.curve_stack.setCurrentWidget(self.plot_widget)
        if self._curve_dirty:
            self._curve_dirty = False
            n = self._n_losses
            y = self._losses[:n]
            self._update_log_check()
            # a few steps are dots on the line (one step alone would draw nothing)
            self.curve.setSymbol("o" if n <= 60 else None)
            self.curve.setData(np.arange(1, n + 1, dtype=np.float64), y)
            self.plot.enableAutoRange()

    def _update_log_check(self) -> None:
        n = self._n_losses
        if n < self._n_checked:                     # a new run or document
            self._n_checked, self._all_positive = 0, True
        if n > self._n_checked:                     # only the losses added since
            self._all_positive &= bool(np.all(self._losses[self._n_checked:n] > 0))
            self._n_checked = n
        positive = n > 0 and self._all_positive
        self.log_check.setEnabled(positive)
        self.log_check.setToolTip(
            "Show the loss on a logarithmic axis" if positive or n == 0 else
            "The loss is zero or negative at some step (the raw loss, sum(output), can be): "
            "a log scale cannot show it")
        if self.plot is not None:
            self.plot.setLogMode(False, positive and self.log_check.isChecked())

    def _on_log_toggled(self, checked: bool) -> None:  # noqa: FBT001
        self.settings.setValue("training/logLoss", bool(checked))
        self._update_log_check()
        if self.plot is not None:
            self.plot.enableAutoRange()

    def _make_plot(self) -> None:
        import pyqtgraph as pg

        from app.ui.distribution_panel import install_export_action, set_axis_label

        self.plot_widget = pg.PlotWidget()
        self.plot_widget.setObjectName("lossCurve")
        self.plot = self.plot_widget.getPlotItem()
        self.plot.setMenuEnabled(False, True)
        self.plot.hideButtons()
        self.plot.setMouseEnabled(x=False, y=False)
        set_axis_label(self.plot, "bottom", "step")
        set_axis_label(self.plot, "left", "loss")
        self.curve = self.plot.plot()
        self.curve.setDownsampling(auto=True, method="peak")
        self.curve.setClipToView(True)
        self._style_plot()
        self.export_action = install_export_action(self.plot_widget, self, "loss",
                                                   self.plot_widget)
        self.curve_stack.addWidget(self.plot_widget)
        self._curve_dirty = True

    def _style_plot(self) -> None:
        if self.plot is None:
            return
        import pyqtgraph as pg

        from app.ui.distribution_panel import plot_colors, style_plot

        c = plot_colors(self.palette())
        self.plot_widget.setBackground(c["bg"])
        style_plot(self.plot, c)
        self.curve.setPen(pg.mkPen(c["act"], width=1.6))
        self.curve.setSymbolPen(pg.mkPen(c["act"]))
        self.curve.setSymbolBrush(pg.mkBrush(c["act"]))
        self.curve.setSymbolSize(5)

    # ================================================================= Qt events
    def showEvent(self, event):  # noqa: N802 - Qt override
        super().showEvent(event)
        dock = self._dock()
        if dock is not None and not self._watching_dock:
            # A dock behind another dock's tab is "visible" but parked off-screen: build when
            # its tab is picked (visibilityChanged), not at start-up.
            self._watching_dock = True
            dock.visibilityChanged.connect(self._on_dock_visibility_changed)
        if dock is None or not dock.visibleRegion().isEmpty():
            self.ensure_built()
        if self._built:
            self._show_curve()

    def _dock(self) -> QDockWidget | None:
        w = self.parentWidget()
        while w is not None and not isinstance(w, QDockWidget):
            w = w.parentWidget()
        return w

    def _on_dock_visibility_changed(self, visible: bool) -> None:  # noqa: FBT001
        if visible and self.isVisible():
            self.ensure_built()
            self._show_curve()

    def resizeEvent(self, event):  # noqa: N802 - Qt override
        super().resizeEvent(event)
        if self._built and not self._splitter_restored:
            self._size_splitter()

    def _size_splitter(self) -> None:
        """Until the user moves the splitter (then it is remembered): the run area gets what
        it needs, with a curve of a useful height, and at most 62 % of the panel."""
        total = sum(self.splitter.sizes()) or self.splitter.height()
        if total <= 0:
            return
        want = self.run_scroll.widget().sizeHint().height() + 60
        bottom = min(want, int(total * 0.62))
        self.splitter.setSizes([max(total - bottom, 1), bottom])

    def _on_splitter_moved(self, *_args) -> None:
        self._splitter_restored = True
        self.settings.setValue("training/splitter", self.splitter.saveState())

    def changeEvent(self, event):  # noqa: N802 - Qt override
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange and self.plot is not None:
            self._style_plot()

