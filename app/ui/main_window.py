"""The main window: the diagram in the middle, the panels in docks, every action in menus.

The window assembles the panels (each re-renders from ``workbench.doc`` on
``workbench.changed``), owns the file gestures (New, Open, Save, recent files, autosave and
crash restore) and turns every other gesture into one :meth:`Workbench.run` step. It never edits
the document directly.

Questions the user must answer synchronously (save changes?, restore the autosave?, allocate a
large layer?) go through :attr:`MainWindow.ask`, and messages through :attr:`MainWindow.tell`;
tests replace them to inject answers. The file choosers are the methods
:meth:`choose_open_path` and :meth:`choose_save_path`.
"""

from __future__ import annotations

import json
import os
import sys
import weakref
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings, Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QDockWidget, QFileDialog, QLabel,
                               QListWidget, QListWidgetItem, QMainWindow, QMessageBox, QStyle,
                               QSplitter, QTabWidget, QToolBar, QVBoxLayout, QWidget)

from app.document import Document, DocumentError, fileformat
from app.document.fileformat import EXTENSION, FileFormatError
from app.ui.settings_form import make_label

__all__ = ["MainWindow", "LinkDialog", "ROOT", "EXAMPLES", "autosave_dir"]

ROOT = Path(__file__).resolve().parent.parent.parent
EXAMPLES = ROOT / "resources" / "examples"
EXAMPLE_FILES = (("chapter_mlp.json", "Chapter MLP: Dense(4, relu) → Dense(2)"),
                 ("chapter_shared.json", "Chapter shared layers"),
                 ("tied_autoencoder.json", "Tied-weight autoencoder"))
FILE_FILTER = f"ParamLab models (*{EXTENSION});;Model structure only (*.json);;All files (*)"
OPEN_FILTER = f"ParamLab models (*{EXTENSION} *.json);;All files (*)"

Answer = QMessageBox.StandardButton


def autosave_dir() -> Path:
    """Where the autosave and the session marker live: the user data folder."""
    import platformdirs
    return Path(platformdirs.user_data_dir("paramlab", appauthor=False))


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return False         # our own marker: a window of this process that did not close
    if sys.platform == "win32":
        return False         # os.kill would terminate it; assume the session is over
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError, OverflowError):
        return True
    return True


def _weak_callback(method, default=None):
    """A function calling bound ``method`` while its object lives (``default`` after)."""
    ref = weakref.WeakMethod(method)

    def call(*args, **kwargs):
        fn = ref()
        return default if fn is None else fn(*args, **kwargs)
    return call


class LinkDialog(QDialog):
    """Pick the layer whose parameters the selected layer uses (``share``) or whose weight it
    applies transposed (``tie``). Lists the layers above it; a refusal is shown in place."""

    def __init__(self, workbench, uid: str, kind: str, parent=None):
        super().__init__(parent)
        self.setObjectName("linkDialog")
        self._wb = workbench
        self._uid = uid
        self._kind = kind
        doc = workbench.doc
        verb = "share the parameters of" if kind == "share" else "apply the transposed weight of"
        self.setWindowTitle("Share Parameters" if kind == "share" else "Tie Transposed")
        intro = QLabel(f"Make <b>{doc.layer_title(uid)}</b> {verb}:")
        intro.setWordWrap(True)
        self.targets = QListWidget()
        self.targets.setObjectName("linkTargetList")
        current = doc.link_of(uid)
        for spec in doc.layers[:doc.index(uid)]:
            block = getattr(doc.block(spec.uid), "name", "")
            item = QListWidgetItem(doc.layer_title(spec.uid) + (f"   ·  {block}" if block else ""))
            item.setData(Qt.ItemDataRole.UserRole, spec.uid)
            if current is not None and current.dst == spec.uid and current.kind == kind:
                item.setText(item.text() + "   (current)")
            self.targets.addItem(item)
        hint = make_label("A Dense layer shares with a Dense of the same shape (Gluon params=)."
                          if kind == "share" else
                          "The decoder's weight becomes the encoder's weight transposed: one "
                          "parameter, gradients summed.", role="hint")
        self.error = make_label(role="error", name="linkError")
        self.error.hide()
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok |
                                        QDialogButtonBox.StandardButton.Cancel)
        self.buttons.setObjectName("buttonBox")
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText(
            "Share" if kind == "share" else "Tie")
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.targets, 1)
        layout.addWidget(hint)
        layout.addWidget(self.error)
        layout.addWidget(self.buttons)
        self.resize(420, 320)
        if self.targets.count():
            self.targets.setCurrentRow(self.targets.count() - 1)
        self._on_selection_changed()

        self.targets.currentRowChanged.connect(self._on_selection_changed)
        self.targets.itemDoubleClicked.connect(self._on_item_double_clicked)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)

    def _on_item_double_clicked(self, _item) -> None:
        self.accept()

    def _on_selection_changed(self, _row=None) -> None:
        self.error.hide()
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(
            self.targets.currentItem() is not None)

    def target(self) -> str | None:
        item = self.targets.currentItem()
        return None if item is None else item.data(Qt.ItemDataRole.UserRole)

    def accept(self) -> None:
        dst = self.target()
        if dst is None:
            return
        doc = self._wb.doc
        text = (f"Share {doc.layer_title(self._uid)} with {doc.layer_title(dst)}"
                if self._kind == "share" else
                f"Tie {doc.layer_title(self._uid)} to {doc.layer_title(dst)}")
        uid, kind = self._uid, self._kind
        ok, message = self._wb.run(text, lambda d: d.link(uid, dst, kind))
        if ok:
            super().accept()
        else:
            self.error.setText(message)
            self.error.show()


class MainWindow(QMainWindow):
    """See the module docstring. ``persist=False`` (screenshots) neither reads nor writes the
    window layout; ``settings`` and ``data_dir`` default to ``QSettings()`` and
    :func:`autosave_dir` (tests pass their own)."""

    MAX_RECENT = 10
    AUTOSAVE_MS = 60_000

    def __init__(self, workbench, parent=None, *, settings: QSettings | None = None,
                 data_dir: Path | None = None, persist: bool = True):
        super().__init__(parent)
        self.setObjectName("mainWindow")
        self.wb = workbench
        self.settings = settings if settings is not None else QSettings()
        self.data_dir = Path(data_dir) if data_dir is not None else autosave_dir()
        self.persist = persist
        # Replaceable so tests can answer and record (see the module docstring).
        self.ask: Callable[..., Answer] = self._ask_with_message_box
        self.tell: Callable[[str, str, str], None] = self._tell_with_message_box
        self.last_message: QMessageBox | None = None
        self.initialize_dialog = None
        self.plugins_dialog = None
        self.link_dialog = None
        self._restored_unsaved = False
        self._wb_alive = True
        self._session_active = False
        self._autosaved_at = None
        self.autosave_timer = QTimer(self)
        self.autosave_timer.setObjectName("autosaveTimer")
        self.autosave_timer.setInterval(self.AUTOSAVE_MS)
        from app.ui.training_run import TrainingRunner
        self.runner = TrainingRunner(self.wb, self)
        self._live_base = None          # the snapshot live frames are compared with

        self.setDockNestingEnabled(True)
        # the right column (Inspector, Training) runs the full height: the Training panel's
        # forms and its loss curve need it more than the bottom panels need the width
        self.setCorner(Qt.Corner.BottomRightCorner, Qt.DockWidgetArea.RightDockWidgetArea)
        self.setDocumentMode(False)
        self._build_panels()
        self._build_actions()
        self._build_menus()
        self._build_toolbar()
        self._build_status_bar()
        self._default_state = self.saveState()
        self._restore_layout()
        # Weakly: the workbench may outlive the window (and must not keep it alive).
        self.wb.confirm_large = _weak_callback(self._confirm_large, default=False)

        from app.ui.plugins_dialog import log_plugin_failures
        log_plugin_failures(self.wb)
        self._report_missing_choices(self.wb.doc)
        self._refresh_title()
        self._refresh_actions()
        self._refresh_summary()

        self.wb.changed.connect(self._on_workbench_changed)
        self.wb.selection_changed.connect(self._on_selection_changed)
        self.wb.failed.connect(self._on_failed)
        self.wb.undo_stack.cleanChanged.connect(self._on_clean_changed)
        self.wb.undo_stack.indexChanged.connect(self._on_undo_index_changed)
        self.autosave_timer.timeout.connect(self.autosave_now)
        self.wb.destroyed.connect(self._on_workbench_destroyed)
        self.wb.busy_changed.connect(self._on_busy_changed)
        self.runner.started.connect(self._on_run_started)
        self.runner.ticked.connect(self._on_run_ticked)
        self.runner.finished.connect(self._on_run_finished)

    # =========================================================================== building
    def _build_panels(self) -> None:
        from app.ui.console_panel import ConsolePanel
        from app.ui.diagram_view import DiagramView
        from app.ui.inspector_panel import InspectorPanel
        from app.ui.layers_panel import LayersPanel
        from app.ui.log_panel import LogPanel
        from app.ui.parameters_panel import ParametersPanel

        # The centre: the stack as a diagram, and the parameter panels (what did that do to my
        # parameters?) as tabs beside it. Those panels (and pyqtgraph) are built the first time
        # their tab is shown, so start-up draws the window without them.
        self.diagram_view = DiagramView(self.wb, self)
        self.diagram_view.setObjectName("diagramView")
        self.heatmap_panel = self.timeline_panel = self.heatmap_split = None
        self.distribution_panel = self.signal_panel = None
        self.center_tabs = QTabWidget(self)
        self.center_tabs.setObjectName("centerTabs")
        self.center_tabs.setDocumentMode(True)
        self.center_tabs.addTab(self.diagram_view, "Diagram")
        self._lazy_tabs = {}
        for title, name in (("Heatmaps", "heatmapsTab"), ("Distributions", "distributionsTab"),
                            ("Signal", "signalTab")):
            holder = QWidget()
            holder.setObjectName(name)
            box = QVBoxLayout(holder)
            box.setContentsMargins(0, 0, 0, 0)
            self._lazy_tabs[self.center_tabs.addTab(holder, title)] = holder
        self.setCentralWidget(self.center_tabs)
        self.center_tabs.currentChanged.connect(self._ensure_tab)

        self.layers_panel = LayersPanel(self.wb, self)
        self.inspector_panel = InspectorPanel(self.wb)
        self.parameters_panel = ParametersPanel(self.wb)
        self.log_panel = LogPanel(self.wb)
        self.console_panel = ConsolePanel(self.wb)
        from app.ui.training_panel import TrainingPanel
        self.training_panel = TrainingPanel(self.wb, self.runner, settings=self.settings)
        if not self.inspector_panel.objectName():
            self.inspector_panel.setObjectName("inspectorPanel")

        area = Qt.DockWidgetArea
        self.layers_dock = self._dock("layersDock", "Layers", self.layers_panel,
                                      area.LeftDockWidgetArea)
        self.inspector_dock = self._dock("inspectorDock", "Inspector", self.inspector_panel,
                                         area.RightDockWidgetArea)
        self.parameters_dock = self._dock("parametersDock", "Parameters", self.parameters_panel,
                                          area.BottomDockWidgetArea)
        self.log_dock = self._dock("logDock", "Log", self.log_panel, area.BottomDockWidgetArea)
        self.console_dock = self._dock("consoleDock", "Console", self.console_panel,
                                       area.BottomDockWidgetArea)
        # Bottom: Parameters on the left; Log and Console as tabs beside it.
        self.splitDockWidget(self.parameters_dock, self.log_dock, Qt.Orientation.Horizontal)
        self.tabifyDockWidget(self.log_dock, self.console_dock)
        self.log_dock.raise_()
        self.training_dock = self._dock("trainingDock", "Training", self.training_panel,
                                        area.RightDockWidgetArea)
        # Right: the Inspector and Training as tabs (what the selection is / how it learns)
        self.tabifyDockWidget(self.inspector_dock, self.training_dock)
        self.inspector_dock.raise_()
        self.resizeDocks([self.layers_dock, self.inspector_dock], [275, 340],
                         Qt.Orientation.Horizontal)
        self.resizeDocks([self.parameters_dock, self.log_dock], [820, 560],
                         Qt.Orientation.Horizontal)
        self.resizeDocks([self.parameters_dock], [290], Qt.Orientation.Vertical)

    def hide_stray_tab_bars(self) -> int:
        """Hide dock tab bars that sit under no dock. Qt keeps the bar of an earlier tab group
        for reuse and, after some layout changes, leaves it shown in the middle of the window
        (over the Layers list or behind the diagram); a bar in use sits right below its docks.
        Returns how many were hidden."""
        from PySide6.QtWidgets import QTabBar
        docks = [d for d in self.findChildren(QDockWidget) if d.isVisible()]
        hidden = 0
        for bar in self.findChildren(QTabBar):
            if bar.parent() is not self or not bar.isVisible():
                continue
            g = bar.geometry()
            used = any(abs(g.top() - d.geometry().bottom()) <= 6 and
                       d.geometry().left() - 6 <= g.left() <= d.geometry().right()
                       for d in docks)
            if not used:
                bar.hide()
                hidden += 1
        return hidden

    def showEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        QTimer.singleShot(0, self.hide_stray_tab_bars)

    def _ensure_tab(self, index: int) -> None:
        """Build the panel of centre tab ``index`` the first time it is shown."""
        holder = self._lazy_tabs.pop(index, None)
        if holder is None:
            return
        title = self.center_tabs.tabText(index)
        if title == "Heatmaps":
            from app.ui.heatmap_panel import HeatmapPanel
            from app.ui.timeline_panel import TimelinePanel
            # the snapshot timeline (pick A and B) beside the grid it drives
            self.timeline_panel = TimelinePanel(self.wb)
            self.heatmap_panel = HeatmapPanel(self.wb)
            self.heatmap_split = QSplitter(Qt.Orientation.Horizontal)
            self.heatmap_split.setObjectName("heatmapSplit")
            self.heatmap_split.addWidget(self.timeline_panel)
            self.heatmap_split.addWidget(self.heatmap_panel)
            self.heatmap_split.setStretchFactor(0, 0)
            self.heatmap_split.setStretchFactor(1, 1)
            self.heatmap_split.setSizes([270, 760])
            # narrow screens: the panels scroll instead of widening the window
            self.timeline_panel.setMinimumWidth(110)
            self.heatmap_panel.setMinimumWidth(120)
            self.timeline_panel.pair_changed.connect(self.heatmap_panel.set_pair)
            widget = self.heatmap_split
        elif title == "Distributions":
            from app.ui.distribution_panel import DistributionPanel
            widget = self.distribution_panel = DistributionPanel(self.wb)
            widget.setMinimumSize(200, 150)
        else:
            from app.ui.signal_panel import SignalPanel
            widget = self.signal_panel = SignalPanel(self.wb)
            widget.setMinimumSize(200, 150)
        holder.layout().addWidget(widget)

    def ensure_panels(self) -> None:
        """Build every lazily created centre panel now (for scripts and tests)."""
        for index in list(self._lazy_tabs):
            self._ensure_tab(index)

    def _dock(self, name: str, title: str, widget: QWidget, area) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(name)
        dock.setWidget(widget)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable |
                         QDockWidget.DockWidgetFeature.DockWidgetClosable |
                         QDockWidget.DockWidgetFeature.DockWidgetFloatable)
        self.addDockWidget(area, dock)
        return dock

    def _action(self, name: str, text: str, slot=None, shortcut=None, icon=None,
                tip: str = "") -> QAction:
        action = QAction(text, self)
        action.setObjectName(name)
        if shortcut is not None:
            if isinstance(shortcut, (list, tuple)):
                action.setShortcuts([QKeySequence(s) for s in shortcut])
            else:
                action.setShortcut(QKeySequence(shortcut))
        if icon is not None:
            action.setIcon(self.style().standardIcon(icon))
        if tip:
            action.setStatusTip(tip)
            action.setToolTip(tip)
        if slot is not None:
            action.triggered.connect(slot)
        self.addAction(action)
        return action

    def _build_actions(self) -> None:
        from app.document.layers import KINDS

        sp = QStyle.StandardPixmap
        seq = QKeySequence.StandardKey
        a = self._action
        self.action_new = a("actionNew", "&New", self.new_document, seq.New, sp.SP_FileIcon,
                            "Start an empty model")
        self.action_open = a("actionOpen", "&Open…", self.open_document, seq.Open,
                             sp.SP_DialogOpenButton, "Open a .paramlab or .json model")
        self.action_save = a("actionSave", "&Save", self.save, seq.Save,
                             sp.SP_DialogSaveButton, "Save the model with its parameter values")
        self.action_save_as = a("actionSaveAs", "Save &As…", self.save_as, "Ctrl+Shift+S",
                                None, "Save the model under a new name")
        self.action_quit = a("actionQuit", "&Quit", self.close, "Ctrl+Q", None, "Quit ParamLab")
        self.action_quit.setMenuRole(QAction.MenuRole.QuitRole)

        self.action_undo = self.wb.undo_stack.createUndoAction(self, "&Undo")
        self.action_undo.setObjectName("actionUndo")
        self.action_undo.setShortcut(QKeySequence("Ctrl+Z"))
        self.action_undo.setIcon(self.style().standardIcon(sp.SP_ArrowBack))
        self.action_redo = self.wb.undo_stack.createRedoAction(self, "&Redo")
        self.action_redo.setObjectName("actionRedo")
        self.action_redo.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")])
        self.action_redo.setIcon(self.style().standardIcon(sp.SP_ArrowForward))
        self.addAction(self.action_undo)
        self.addAction(self.action_redo)

        self.add_actions = {}
        for kind, info in KINDS.items():
            act = a(f"actionAdd{kind}", kind, None, None, None,
                    f"Add a {kind} layer below the selected one: {info.description}")
            act.setData(kind)
            act.triggered.connect(self._on_add_triggered)
            self.add_actions[kind] = act
        self.action_remove = a("actionRemoveLayer", "&Remove", self.remove_layer,
                               QKeySequence(Qt.Key.Key_Delete), sp.SP_TrashIcon,
                               "Remove the selected layer")
        self.action_duplicate = a("actionDuplicateLayer", "D&uplicate", self.duplicate_layer,
                                  "Ctrl+D", None, "Duplicate the selected layer below it")
        self.action_move_up = a("actionMoveLayerUp", "Move &Up", self.move_layer_up, "Ctrl+Up",
                                sp.SP_ArrowUp, "Move the selected layer up")
        self.action_move_down = a("actionMoveLayerDown", "Move &Down", self.move_layer_down,
                                  "Ctrl+Down", sp.SP_ArrowDown, "Move the selected layer down")
        self.action_link = a("actionLink", "&Share Parameters With…",
                             self.open_share_dialog, None, None,
                             "Make the selected layer use the parameters of a layer above "
                             "(Gluon params=)")
        self.action_tie = a("actionTie", "&Tie Transposed To…",
                            self.open_tie_dialog, None, None,
                            "Make the selected Dense apply the weight of a Dense above, "
                            "transposed")
        self.action_unlink = a("actionUnlink", "U&nlink", self.unlink_layer, None, None,
                               "Give the selected layer its own parameters again")

        self.action_initialize = a("actionInitialize", "&Initialize…",
                                   self.open_initialize_dialog, "Ctrl+I", None,
                                   "Choose the initializer and its settings, then initialize")
        self.action_force_reinit = a("actionForceReinit", "&Force Re-initialize",
                                     self.force_reinitialize, "Ctrl+Shift+I", None,
                                     "Initialize again, replacing the current values "
                                     "(force_reinit=True)")
        self.action_forward = a("actionForward", "&Forward", self.forward, "F5",
                                sp.SP_MediaPlay, "Run net(x) on the input batch")
        self.action_backward = a("actionBackward", "&Backward", self.backward, "F7",
                                 sp.SP_MediaSeekBackward,
                                 "Record net(x) and back-propagate from its sum (the chapter's "
                                 "y.backward())")
        self.action_step = a("actionStep", "&Step", self.step, "F8", sp.SP_MediaSkipForward,
                             "One optimizer step with the current gradients")
        self.action_preview_step = a("actionPreviewStep", "&Preview Step…", self.preview_step,
                                     "Shift+F8", None,
                                     "Show what one step would change before applying it")
        self.action_train = a("actionTrain", "&Train N Steps", self.train, "F9",
                              sp.SP_MediaSeekForward,
                              "Train the number of steps set in the Training panel, in the "
                              "background")
        self.action_cancel_training = a("actionCancelTraining", "&Cancel Training",
                                        self.runner.cancel, "Shift+F9", sp.SP_MediaStop,
                                        "Stop the run after the current step (what completed "
                                        "is kept)")
        self.action_cancel_training.setEnabled(False)
        self.action_train.setIconText("Train")          # short on the toolbar
        self.action_cancel_training.setIconText("Cancel")
        self.action_show_training = a("actionShowTraining", "Training &Panel",
                                      self.show_training_panel, "Ctrl+T", None,
                                      "Data, loss, optimizer and training runs")

        self.action_reload_plugins = a("actionReloadPlugins", "&Reload Plugins",
                                       self.reload_plugins, "F6", sp.SP_BrowserReload,
                                       "Re-import the plugin folders without restarting")
        self.action_plugins = a("actionPlugins", "&Plugins…", self.open_plugins_dialog, None,
                                None, "Every initializer with its origin and settings, and "
                                "every plugin failure")
        self.action_open_plugin_folder = a("actionOpenPluginFolder", "&Open Plugin Folder",
                                           self.open_plugin_folder, None, None,
                                           "Show your plugin folder in the file manager")
        self.action_new_plugin = a("actionNewPlugin", "&New Plugin…", self.new_plugin, None,
                                   None, "Write a starter initializer plugin into your "
                                   "plugin folder")
        self.training_panel.set_actions({"forward": self.action_forward,
                                         "backward": self.action_backward,
                                         "step": self.action_step})
        from app.ui.file_actions import FileActions
        self.file_actions = FileActions(self)       # export/import parameters, data, Python
        self.action_about = a("actionAbout", "&About ParamLab", self.about)
        self.action_about.setMenuRole(QAction.MenuRole.AboutRole)
        self.action_reset_layout = a("actionResetLayout", "Reset &Layout", self.reset_layout)

    def _build_menus(self) -> None:
        bar = self.menuBar()
        m = bar.addMenu("&File")
        m.setObjectName("menuFile")
        m.addAction(self.action_new)
        m.addAction(self.action_open)
        examples = self.menu_examples = m.addMenu("Open &Example")
        examples.setObjectName("menuExamples")
        for filename, title in EXAMPLE_FILES:
            act = examples.addAction(title)
            act.setObjectName("actionExample_" + Path(filename).stem)
            act.setStatusTip(str(EXAMPLES / filename))
            act.setData(filename)
            act.triggered.connect(self._on_example_triggered)
        self.menu_recent = m.addMenu("&Recent Files")
        self.menu_recent.setObjectName("menuRecentFiles")
        self.menu_recent.aboutToShow.connect(self._fill_recent_menu)
        self._fill_recent_menu()
        m.addSeparator()
        m.addAction(self.action_save)
        m.addAction(self.action_save_as)
        self.file_actions.add_to_menu(m)
        m.addSeparator()
        m.addAction(self.action_quit)

        m = bar.addMenu("&Edit")
        m.setObjectName("menuEdit")
        m.addAction(self.action_undo)
        m.addAction(self.action_redo)

        m = bar.addMenu("&Layer")
        m.setObjectName("menuLayer")
        add = m.addMenu("&Add")
        add.setObjectName("menuAddLayer")
        for act in self.add_actions.values():
            add.addAction(act)
        m.addAction(self.action_remove)
        m.addAction(self.action_duplicate)
        m.addSeparator()
        m.addAction(self.action_move_up)
        m.addAction(self.action_move_down)
        m.addSeparator()
        m.addAction(self.action_link)
        m.addAction(self.action_tie)
        m.addAction(self.action_unlink)

        m = bar.addMenu("&Model")
        m.setObjectName("menuModel")
        m.addAction(self.action_initialize)
        m.addAction(self.action_force_reinit)
        m.addSeparator()
        m.addAction(self.action_forward)
        m.addAction(self.action_backward)
        m.addAction(self.action_preview_step)
        m.addAction(self.action_step)
        m.addSeparator()
        m.addAction(self.action_train)
        m.addAction(self.action_cancel_training)
        m.addAction(self.action_show_training)

        m = bar.addMenu("&Plugins")
        m.setObjectName("menuPlugins")
        m.addAction(self.action_reload_plugins)
        m.addAction(self.action_plugins)
        m.addSeparator()
        m.addAction(self.action_open_plugin_folder)
        m.addAction(self.action_new_plugin)

        m = bar.addMenu("&View")
        m.setObjectName("menuView")
        for dock, key in ((self.layers_dock, "Ctrl+1"), (self.inspector_dock, "Ctrl+2"),
                          (self.parameters_dock, "Ctrl+3"), (self.log_dock, "Ctrl+4"),
                          (self.console_dock, "Ctrl+5")):
            toggle = dock.toggleViewAction()
            toggle.setObjectName("actionToggle" + dock.objectName()[:-4].capitalize() + "Dock")
            toggle.setShortcut(QKeySequence(key))
            m.addAction(toggle)
        m.addSeparator()
        m.addAction(self.action_reset_layout)

        m = bar.addMenu("&Help")
        m.setObjectName("menuHelp")
        m.addAction(self.action_about)

    def _build_toolbar(self) -> None:
        tb = QToolBar("Main", self)
        tb.setObjectName("mainToolBar")
        tb.setMovable(False)
        tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, tb)
        for act in (self.action_new, self.action_open, self.action_save):
            tb.addAction(act)
        tb.addSeparator()
        tb.addAction(self.action_undo)
        tb.addAction(self.action_redo)
        # "Undo Train 200 steps" would push the toolbar into its overflow menu: the arrows
        # alone, the text in their tooltips
        for act in (self.action_undo, self.action_redo):
            button = tb.widgetForAction(act)
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)
        tb.addSeparator()
        add_dense = QAction(self.style().standardIcon(QStyle.StandardPixmap.SP_FileDialogNewFolder),
                            "Add Dense", self)
        add_dense.setObjectName("toolbarAddDense")
        add_dense.setToolTip("Add a Dense layer below the selected one")
        add_dense.setData("Dense")
        add_dense.triggered.connect(self._on_add_triggered)
        self.toolbar_add_dense = add_dense
        tb.addAction(add_dense)
        tb.addAction(self.action_remove)
        tb.addAction(self.action_move_up)
        tb.addAction(self.action_move_down)
        tb.addAction(self.action_link)
        tb.addSeparator()
        tb.addAction(self.action_initialize)
        tb.addAction(self.action_forward)
        tb.addAction(self.action_backward)
        tb.addAction(self.action_step)
        tb.addAction(self.action_train)
        tb.addAction(self.action_cancel_training)
        tb.addSeparator()
        tb.addAction(self.action_reload_plugins)
        # Short toolbar labels (iconText); the menus keep the full ones.
        self.action_link.setIconText("Share…")
        self.action_initialize.setIconText("Initialize…")
        self.action_reload_plugins.setIconText("Reload")
        for act in (self.action_move_up, self.action_move_down):
            button = tb.widgetForAction(act)
            if button is not None:
                button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)
        self.toolbar = tb

    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        bar.setObjectName("statusBar")
        self.summary_label = QLabel()
        self.summary_label.setObjectName("summaryLabel")
        bar.addPermanentWidget(self.summary_label)
        self.snapshot_label = QLabel()
        self.snapshot_label.setObjectName("snapshotMemoryLabel")
        self.snapshot_label.setToolTip("Memory held by the snapshot timeline, against its budget")
        bar.addPermanentWidget(self.snapshot_label)
        from PySide6.QtWidgets import QProgressBar
        self.run_progress = QProgressBar()
        self.run_progress.setObjectName("statusRunProgress")
        self.run_progress.setMaximumWidth(180)
        self.run_progress.setMaximumHeight(16)
        self.run_progress.setFormat("training %v / %m")
        self.run_progress.setToolTip("The training run (Shift+F9 or Model → Cancel Training "
                                     "stops it after the current step)")
        self.run_progress.hide()
        bar.addPermanentWidget(self.run_progress)

    # =========================================================================== layout state
    def _restore_layout(self) -> None:
        if not self.persist:
            return
        geometry = self.settings.value("window/geometry")
        state = self.settings.value("window/state")
        if isinstance(geometry, (QByteArray, bytes)) and geometry:
            self.restoreGeometry(QByteArray(geometry))
        else:
            self.resize(self._default_size())
        if isinstance(state, (QByteArray, bytes)) and state:
            self.restoreState(QByteArray(state))

    def _default_size(self):
        from PySide6.QtCore import QSize
        size = QSize(1400, 900)
        screen = self.screen()
        if screen is not None:
            avail = screen.availableGeometry().size()
            if avail.width() >= 640 and avail.height() >= 480:
                size = size.boundedTo(QSize(int(avail.width() * 0.94),
                                            int(avail.height() * 0.92)))
        return size

    def save_layout(self) -> None:
        if not self.persist:
            return
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState())
        self.settings.sync()

    def reset_layout(self) -> None:
        self.restoreState(self._default_state)
        for dock in (self.layers_dock, self.inspector_dock, self.parameters_dock,
                     self.log_dock, self.console_dock, self.training_dock):
            dock.show()
        QTimer.singleShot(0, self.hide_stray_tab_bars)

    # =========================================================================== messages
    def _ask_with_message_box(self, key: str, title: str, text: str, buttons,
                              default) -> Answer:
        box = QMessageBox(QMessageBox.Icon.Question, title, text, buttons, self)
        box.setObjectName(f"question_{key}")
        box.setDefaultButton(default)
        return Answer(box.exec())

    def _tell_with_message_box(self, level: str, title: str, text: str) -> None:
        icon = {"error": QMessageBox.Icon.Critical, "warning": QMessageBox.Icon.Warning}.get(
            level, QMessageBox.Icon.Information)
        box = QMessageBox(icon, title, text, QMessageBox.StandardButton.Ok, self)
        box.setObjectName("messageBox")
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.setWindowModality(Qt.WindowModality.WindowModal)
        self.last_message = box
        box.open()

    def _confirm_large(self, message: str) -> bool:
        answer = self.ask("confirm_large", "Large Layer", f"{message}\n\nAllocate anyway?",
                          Answer.Yes | Answer.No, Answer.No)
        return answer == Answer.Yes

    def _on_failed(self, message: str) -> None:
        self.statusBar().showMessage(f"Refused: {message}", 15000)

    # =========================================================================== state
    def is_modified(self) -> bool:
        return not self.wb.undo_stack.isClean() or self._restored_unsaved

    def document_name(self) -> str:
        path = self.wb.doc.path
        return os.path.basename(path) if path else "Untitled"

    def _refresh_title(self) -> None:
        star = "*" if self.is_modified() else ""
        self.setWindowTitle(f"{self.document_name()}{star} — ParamLab")

    def _refresh_actions(self) -> None:
        if self.wb.busy:
            # a run holds the model: everything that edits it stays off, and nothing here
            # reads it (the target check may draw from the shared random stream)
            self._disable_editing()
            return
        doc = self.wb.doc
        uid = self.wb.selected_layer()
        has = uid is not None
        i = doc.index(uid) if has else -1
        spec = doc.layer(uid) if has else None
        self.action_remove.setEnabled(has)
        self.action_duplicate.setEnabled(has)
        self.action_move_up.setEnabled(has and i > 0)
        self.action_move_down.setEnabled(has and i < len(doc.layers) - 1)
        from app.document.layers import KINDS
        can_share = has and i > 0 and KINDS[spec.kind].shareable
        can_tie = has and i > 0 and spec.kind == "Dense" and any(
            s.kind == "Dense" for s in doc.layers[:i])
        self.action_link.setEnabled(bool(can_share))
        self.action_tie.setEnabled(bool(can_tie))
        self.action_unlink.setEnabled(has and doc.link_of(uid) is not None)
        nonempty = bool(doc.layers)
        self.action_initialize.setEnabled(nonempty)
        self.action_force_reinit.setEnabled(nonempty)
        self.action_forward.setEnabled(nonempty)
        self.action_backward.setEnabled(nonempty)
        has_grads = any(p._data is not None and p._data._fresh_grad
                        for p in doc.params().values())
        self.action_step.setEnabled(nonempty and has_grads)
        self.action_preview_step.setEnabled(nonempty and has_grads)
        problem = doc.training_problem() if nonempty else "add a layer first"
        self.action_train.setEnabled(not problem)
        self.action_train.setToolTip("Train the number of steps set in the Training panel, in "
                                     "the background" if not problem else
                                     f"Cannot train yet: {problem}")

    def _refresh_summary(self) -> None:
        from app.document.layers import format_shape
        doc = self.wb.doc
        states = [p.state for p in doc.params().values()]
        parts = [f"{len(doc.layers)} layer{'s' if len(doc.layers) != 1 else ''}",
                 f"{len(states)} parameter{'s' if len(states) != 1 else ''}"]
        if states:
            counts = [f"{states.count(s)} {s}" for s in ("initialized", "deferred",
                                                         "uninitialized") if states.count(s)]
            parts[-1] += f" ({', '.join(counts)})"
        parts.append(f"input {format_shape(doc.input.shape)}")
        if doc.output is not None:
            parts.append(f"output {format_shape(doc.output.shape)}")
        self.summary_label.setText("  ·  ".join(parts) + "  ")
        h = doc.history
        used = h.nbytes()
        used_text = f"{used / 2**20:.1f} MiB" if used >= 2**20 else f"{used / 2**10:.1f} KiB"
        self.snapshot_label.setText(
            f"snapshots {len(h.snapshots)} · {used_text} of {h.budget / 2**20:.0f} MiB"
            + (f" ({h.dropped} dropped)" if h.dropped else "") + "  ")

    def _on_workbench_changed(self, what: str) -> None:
        self._refresh_title()
        self._refresh_actions()
        self._refresh_summary()

    def _on_selection_changed(self, _selection) -> None:
        self._refresh_actions()

    def _on_clean_changed(self, _clean: bool) -> None:
        if self._wb_alive:
            self._refresh_title()

    def _on_undo_index_changed(self, _index: int) -> None:
        if self._wb_alive:
            self._refresh_title()
            self._refresh_actions()

    def _on_workbench_destroyed(self, *_args) -> None:
        # The undo stack (a child of the workbench) still emits while it is torn down.
        self._wb_alive = False
        self.autosave_timer.stop()

    # =========================================================================== layer gestures
    def _selected(self):
        return self.wb.selected_layer()

    def add_layer(self, kind: str) -> str | None:
        doc = self.wb.doc
        uid = self._selected()
        index = doc.index(uid) + 1 if uid is not None else None
        ok, result = self.wb.run(f"Add {kind}", lambda d: d.add_layer(kind, index=index))
        if ok:
            self.wb.select(("layer", result))
            return result
        return None

    # Slots take their argument from the action's data: a lambda capturing ``self`` in a Qt
    # connection would keep the window alive forever (a reference cycle through C++).
    def _on_add_triggered(self, _checked=False) -> None:
        self.add_layer(self.sender().data())

    def _on_example_triggered(self, _checked=False) -> None:
        self.open_example(self.sender().data())

    def _on_recent_triggered(self, _checked=False) -> None:
        self.open_recent(self.sender().data())

    def remove_layer(self) -> None:
        uid = self._selected()
        if uid is None:
            return
        doc = self.wb.doc
        i = doc.index(uid)
        title = doc.layer_title(uid)
        ok, _ = self.wb.run(f"Remove {title}", lambda d: d.remove_layer(uid))
        if ok:
            layers = self.wb.doc.layers
            self.wb.select(("layer", layers[min(i, len(layers) - 1)].uid) if layers else None)

    def duplicate_layer(self) -> None:
        uid = self._selected()
        if uid is None:
            return
        title = self.wb.doc.layer_title(uid)
        ok, new = self.wb.run(f"Duplicate {title}", lambda d: d.duplicate_layer(uid))
        if ok:
            self.wb.select(("layer", new))

    def _move(self, step: int) -> None:
        uid = self._selected()
        if uid is None:
            return
        doc = self.wb.doc
        i = doc.index(uid)
        j = i + step
        if not 0 <= j < len(doc.layers):
            return
        title = doc.layer_title(uid)
        self.wb.run(f"Move {title} {'up' if step < 0 else 'down'}",
                    lambda d: d.move_layer(uid, j))
        self._refresh_actions()

    def move_layer_up(self) -> None:
        self._move(-1)

    def move_layer_down(self) -> None:
        self._move(+1)

    def open_link_dialog(self, kind: str = "share") -> LinkDialog | None:
        uid = self._selected()
        if uid is None or self.wb.doc.index(uid) == 0:
            return None
        if self.link_dialog is not None:
            self.link_dialog.close()
            self.link_dialog.deleteLater()
        self.link_dialog = LinkDialog(self.wb, uid, kind, self)
        self.link_dialog.setWindowModality(Qt.WindowModality.WindowModal)
        self.link_dialog.open()
        return self.link_dialog

    def open_share_dialog(self) -> LinkDialog | None:
        return self.open_link_dialog("share")

    def open_tie_dialog(self) -> LinkDialog | None:
        return self.open_link_dialog("tie")

    def unlink_layer(self) -> None:
        uid = self._selected()
        if uid is None:
            return
        title = self.wb.doc.layer_title(uid)
        self.wb.run(f"Unlink {title}", lambda d: d.unlink(uid))

    # =========================================================================== model gestures
    def open_initialize_dialog(self):
        from app.ui.initialize_dialog import InitializeDialog
        if self.initialize_dialog is not None:
            self.initialize_dialog.close()
            self.initialize_dialog.deleteLater()
        self.initialize_dialog = InitializeDialog(self.wb, self)
        self.initialize_dialog.setWindowModality(Qt.WindowModality.WindowModal)
        self.initialize_dialog.open()
        return self.initialize_dialog

    def force_reinitialize(self) -> None:
        ok, _ = self.wb.run("Force re-initialize", lambda d: d.initialize(force_reinit=True))
        if ok:
            self.statusBar().showMessage("Re-initialized every parameter", 5000)

    def backward(self) -> None:
        ok, _ = self.wb.run("Backward", lambda d: d.backward())
        if ok:
            shared = len(self.wb.doc._contributions)
            self.statusBar().showMessage(
                "Backward: gradients of sum(output)"
                + (f"; {shared} shared parameter(s) got the sum of their uses" if shared else ""),
                5000)

    def step(self) -> None:
        ok, _ = self.wb.run("Step", lambda d: d.step())
        if ok:
            self.statusBar().showMessage("Step applied", 5000)

    def preview_step(self):
        from app.ui.step_preview import StepPreviewDialog
        dialog = StepPreviewDialog(self.wb, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
        return dialog

    def show_training_panel(self) -> None:
        self.training_dock.show()
        self.training_dock.raise_()

    def train(self) -> bool:
        """Train the Training panel's number of steps in the background."""
        self.show_training_panel()
        return self.training_panel.train()

    # editing controls a run disables (everything that would touch the document)
    def _editing_actions(self):
        return [self.action_new, self.action_open, self.action_save, self.action_save_as,
                self.action_undo, self.action_redo, self.action_remove, self.action_duplicate,
                self.action_move_up, self.action_move_down, self.action_link, self.action_tie,
                self.action_unlink, self.action_initialize, self.action_force_reinit,
                self.action_forward, self.action_backward, self.action_step,
                self.action_preview_step, self.action_train, self.action_reload_plugins,
                self.action_new_plugin, self.toolbar_add_dense, *self.add_actions.values()]

    def _editing_widgets(self):
        return [self.layers_panel, self.inspector_panel, self.parameters_panel,
                self.diagram_view, self.menu_recent, self.menu_examples]

    def _disable_editing(self) -> None:
        for act in self._editing_actions():
            act.setEnabled(False)
        for widget in self._editing_widgets():
            widget.setEnabled(False)

    def _on_busy_changed(self, what: str) -> None:
        self.action_cancel_training.setEnabled(bool(what))
        if what:
            self._disable_editing()
            return
        for widget in self._editing_widgets():
            widget.setEnabled(True)
        for act in (self.action_new, self.action_open, self.action_save, self.action_save_as,
                    self.action_initialize, self.action_force_reinit, self.action_forward,
                    self.action_backward, self.action_reload_plugins, self.action_new_plugin,
                    self.toolbar_add_dense, *self.add_actions.values()):
            act.setEnabled(True)
        self.action_undo.setEnabled(self.wb.undo_stack.canUndo())
        self.action_redo.setEnabled(self.wb.undo_stack.canRedo())
        self._refresh_actions()

    def _on_run_started(self, n: int) -> None:
        self.run_progress.setRange(0, n)
        self.run_progress.setValue(0)
        self.run_progress.show()
        history = self.wb.doc.history.snapshots
        self._live_base = history[-1] if history else None
        self.statusBar().showMessage(f"Training {n} steps… (Shift+F9 cancels after the "
                                     "current step)")

    def _heatmaps_visible(self) -> bool:
        panel = self.heatmap_panel
        return panel is not None and panel.isVisible()

    def _on_run_ticked(self, status) -> None:
        self.run_progress.setValue(status.step)
        if not self.runner.running:
            return
        if status.frame is not None and self._heatmaps_visible():
            import time
            t0 = time.perf_counter()
            self.heatmap_panel.show_live(self._live_base, status.frame)
            self.runner.frame_drawn(time.perf_counter() - t0)
        if self._heatmaps_visible():
            # the next frame, pooled on the worker so this thread only draws it
            from app.ui.heatmap_panel import warm_frame
            base, dpr = self._live_base, self.heatmap_panel.devicePixelRatioF()
            self.runner.request_frame(
                lambda frame, other=None: warm_frame(other or base, frame, dpr))

    def _on_run_finished(self, result) -> None:
        self.run_progress.hide()
        if self.heatmap_panel is not None:
            self.heatmap_panel.end_live()
        self._live_base = None
        if result is None:
            return
        d = result.divergence
        if d is not None:
            self.statusBar().showMessage(f"Training diverged at step {d.step} ({d.kind} in "
                                         f"{d.parameter or 'the loss'})", 15000)
            self.tell("warning", "Training Diverged", result.message)
        elif result.error:
            self.statusBar().showMessage("Training stopped by an error (see the Log)", 15000)
            self.tell("error", "Training Stopped", result.message)
        else:
            done = (f"Cancelled after {result.steps} of {result.requested} steps (kept)"
                    if result.cancelled else
                    f"Trained {result.steps} step{'s' if result.steps != 1 else ''} in "
                    + (f"{result.seconds:.1f} s" if result.seconds >= 1 else
                       f"{result.seconds * 1000:.0f} ms"))
            if result.losses:
                done += f" · loss {result.losses[0]:.4g} → {result.losses[-1]:.4g}"
            self.statusBar().showMessage(done, 8000)

    def forward(self) -> None:
        ok, out = self.wb.run("Forward", lambda d: d.forward())
        if ok:
            from app.document.layers import format_shape
            self.statusBar().showMessage(f"Forward: output {format_shape(out.shape)}", 5000)

    # =========================================================================== plugins
    def reload_plugins(self) -> None:
        from app.ui.plugins_dialog import reload_plugins
        host = reload_plugins(self.wb)
        if host is None:
            return                          # refused (a run): the reason is in the Log
        n, f = len(host.initializers), len(host.failures)
        self.statusBar().showMessage(
            f"Plugins reloaded: {n} initializers" + (f", {f} failure(s) (see the Log)" if f
                                                     else ""), 8000)

    def open_plugins_dialog(self):
        from app.ui.plugins_dialog import PluginsDialog
        if self.plugins_dialog is None:
            self.plugins_dialog = PluginsDialog(self.wb, self)
        self.plugins_dialog.show()
        self.plugins_dialog.raise_()
        self.plugins_dialog.activateWindow()
        return self.plugins_dialog

    def open_plugin_folder(self) -> None:
        from app.ui.plugins_dialog import open_plugin_folder
        open_plugin_folder(self.tell)

    def new_plugin(self):
        from app.ui.plugins_dialog import ask_new_plugin
        return ask_new_plugin(self, self.tell)

    def about(self) -> None:
        from app import __version__
        self.tell("info", "About ParamLab",
                  f"ParamLab {__version__}\n\nSee and shape a neural network's parameters: a "
                  "Gluon-compatible NumPy engine, initializer plugins, and this workbench.")

    # =========================================================================== files
    def maybe_save(self) -> bool:
        """Ask to save unsaved changes; False when the user cancelled (or saving failed)."""
        if not self.is_modified():
            return True
        answer = self.ask("save_changes", "Unsaved Changes",
                          f"Save the changes to {self.document_name()}?",
                          Answer.Save | Answer.Discard | Answer.Cancel, Answer.Save)
        if answer == Answer.Save:
            return self.save()
        return answer == Answer.Discard

    def install_document(self, doc: Document) -> None:
        """Make ``doc`` current: keeps the session's log, reports missing initializers."""
        old = self.wb.doc
        if old is not None and old is not doc:
            doc.log_entries[:0] = old.log_entries
            del doc.log_entries[:-2000]
        self._restored_unsaved = False
        self.wb.set_document(doc)
        self._report_missing_choices(doc)
        if doc.layers:
            self.wb.select(("layer", doc.layers[0].uid))
        self._autosaved_at = None
        self._refresh_title()
        self._refresh_actions()
        self._refresh_summary()

    def _report_missing_choices(self, doc: Document) -> None:
        choices = [("the global initializer", doc.global_init)]
        for spec in doc.layers:
            if spec.init is not None:
                choices.append((f"layer {doc.layer_title(spec.uid)}", spec.init))
            for role, choice in spec.param_inits.items():
                choices.append((f"the {role} of {doc.layer_title(spec.uid)}", choice))
        for where, choice in choices:
            reason = doc.missing_reason(choice)
            if reason:
                doc.warning(f"{where}: {reason}")

    def _refused_while_busy(self, what: str) -> bool:
        """True (and the reason told) when a training run holds the document."""
        if not self.wb.busy:
            return False
        message = self.wb.busy_message()
        self.wb.doc.error(f"{what}: {message}")
        self.statusBar().showMessage(f"{what}: {message}", 8000)
        return True

    def new_document(self) -> None:
        if self._refused_while_busy("New") or not self.maybe_save():
            return
        self.install_document(Document(host=self.wb.host, memory_limit=self.wb.doc.memory_limit))
        self.statusBar().showMessage("New model", 4000)

    def choose_open_path(self) -> str:
        path, _ = QFileDialog.getOpenFileName(self, "Open Model", self._last_dir(), OPEN_FILTER)
        return path

    def choose_save_path(self, suggested: str) -> str:
        path, selected = QFileDialog.getSaveFileName(self, "Save Model As", suggested,
                                                     FILE_FILTER)
        if path and not Path(path).suffix:
            path += ".json" if selected.startswith("Model structure") else EXTENSION
        return path

    def _last_dir(self) -> str:
        last = self.settings.value("files/lastDir")
        if isinstance(last, str) and os.path.isdir(last):
            return last
        return str(Path.home())

    def open_document(self) -> bool:
        if self._refused_while_busy("Open") or not self.maybe_save():
            return False
        path = self.choose_open_path()
        if not path:
            return False
        return self.open_path(path, ask=False)

    def open_example(self, filename: str) -> bool:
        return self.open_path(str(EXAMPLES / filename), remember=False)

    def open_path(self, path, *, ask: bool = True, remember: bool = True) -> bool:
        """Open ``path``; on error show it and keep the current document untouched."""
        path = os.fspath(path)
        if self._refused_while_busy(f"Open {os.path.basename(path)}"):
            return False
        if ask and not self.maybe_save():
            return False
        try:
            doc = fileformat.load(path, host=self.wb.host, memory_limit=self.wb.doc.memory_limit)
        except FileFormatError as err:
            self.wb.doc.error(str(err))
            self.tell("error", "Cannot Open", str(err))
            self.statusBar().showMessage(str(err), 10000)
            return False
        self.install_document(doc)
        if remember:
            self.add_recent(path)
            self.settings.setValue("files/lastDir", os.path.dirname(os.path.abspath(path)))
        self.statusBar().showMessage(f"Opened {path}", 5000)
        return True

    def save(self) -> bool:
        path = self.wb.doc.path
        if not path or not path.lower().endswith(EXTENSION):
            return self.save_as()
        return self.save_to(path)

    def save_as(self) -> bool:
        current = self.wb.doc.path
        stem = Path(current).stem if current else "untitled"
        directory = (os.path.dirname(current) if current and current.lower().endswith(EXTENSION)
                     else self._last_dir())
        path = self.choose_save_path(os.path.join(directory, stem + EXTENSION))
        if not path:
            return False
        return self.save_to(path)

    def save_to(self, path) -> bool:
        path = os.fspath(path)
        if self._refused_while_busy(f"Save {os.path.basename(path)}"):
            return False
        doc = self.wb.doc
        try:
            fileformat.save(doc, path)
        except (OSError, DocumentError) as err:
            message = f"Cannot save {os.path.basename(path)}: {err}"
            doc.error(message)
            self.tell("error", "Cannot Save", message)
            return False
        doc.path = path
        doc.dirty = False
        self._restored_unsaved = False
        self.wb.undo_stack.setClean()
        self.add_recent(path)
        self.settings.setValue("files/lastDir", os.path.dirname(os.path.abspath(path)))
        note = ""
        if path.lower().endswith(".json"):
            note = " (structure only: save as .paramlab to keep the parameter values)"
        doc.info(f"saved {path}{note}")
        doc.changed.emit("file")
        self.statusBar().showMessage(f"Saved {path}{note}", 6000)
        self._remove_autosave()
        return True

    # ----------------------------------------------------------------- recent files
    def recent_files(self) -> list[str]:
        value = self.settings.value("files/recent")
        if value is None:
            return []
        if isinstance(value, str):
            value = [value] if value else []
        return [str(v) for v in value][: self.MAX_RECENT]

    def _set_recent(self, files: list[str]) -> None:
        self.settings.setValue("files/recent", list(files[: self.MAX_RECENT]))
        self.settings.sync()
        self._fill_recent_menu()

    def add_recent(self, path: str) -> None:
        path = os.path.abspath(path)
        files = [f for f in self.recent_files() if f != path]
        self._set_recent([path] + files)

    def _fill_recent_menu(self) -> None:
        menu = self.menu_recent
        menu.clear()
        files = self.recent_files()
        for i, path in enumerate(files):
            act = menu.addAction(f"&{(i + 1) % 10}  {os.path.basename(path)}")
            act.setObjectName(f"actionRecent{i}")
            act.setStatusTip(path)
            act.setToolTip(path)
            act.setData(path)
            act.triggered.connect(self._on_recent_triggered)
        if files:
            menu.addSeparator()
            clear = menu.addAction("Clear Recent Files")
            clear.setObjectName("actionClearRecent")
            clear.triggered.connect(self.clear_recent)
        else:
            empty = menu.addAction("No recent files")
            empty.setEnabled(False)

    def clear_recent(self) -> None:
        self._set_recent([])

    def open_recent(self, path: str) -> bool:
        if not os.path.exists(path):
            self._set_recent([f for f in self.recent_files() if f != path])
            self.tell("warning", "File Not Found",
                      f"{path} no longer exists; it was removed from the recent files.")
            return False
        return self.open_path(path)

    # ----------------------------------------------------------------- autosave and crashes
    @property
    def autosave_path(self) -> Path:
        return self.data_dir / "autosave.paramlab"

    @property
    def session_marker(self) -> Path:
        return self.data_dir / "session.json"

    def start_session(self) -> bool:
        """Offer to restore a crashed session's autosave, then mark this session as running
        and start autosaving. Returns True when a document was restored."""
        restored = False
        marker = self._read_marker()
        if marker is not None and _pid_alive(int(marker.get("pid", 0) or 0)):
            self.wb.doc.info("another ParamLab window is running: autosave is off in this one")
            return False
        if marker is not None and self.autosave_path.exists():
            restored = self.offer_restore(marker)
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            self._write_marker()
        except OSError as err:
            self.wb.doc.warning(f"autosave is off: cannot write to {self.data_dir}: {err}")
            return restored
        self._session_active = True
        self.autosave_timer.start()
        return restored

    def offer_restore(self, marker: dict) -> bool:
        original = marker.get("path") or "an untitled model"
        answer = self.ask("restore_autosave", "Restore Unsaved Work",
                          "ParamLab did not close normally last time. Restore the unsaved work "
                          f"on {os.path.basename(original)} from the autosave?",
                          Answer.Yes | Answer.No, Answer.Yes)
        if answer != Answer.Yes:
            kept = self.autosave_path.with_name("autosave.previous.paramlab")
            try:
                os.replace(self.autosave_path, kept)
                self.wb.doc.info(f"the previous session's autosave was kept as {kept}")
            except OSError:
                pass
            return False
        try:
            doc = fileformat.load(self.autosave_path, host=self.wb.host,
                                  memory_limit=self.wb.doc.memory_limit)
        except FileFormatError as err:
            self.tell("error", "Cannot Restore", f"The autosave cannot be opened: {err}")
            return False
        doc.path = marker.get("path") or None
        self.install_document(doc)
        self._restored_unsaved = True
        doc.info("restored the unsaved work of the previous session from the autosave; save "
                 "it to keep it")
        self._refresh_title()
        self.statusBar().showMessage("Restored the unsaved work of the previous session", 8000)
        return True

    def _read_marker(self) -> dict | None:
        try:
            data = json.loads(self.session_marker.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _write_marker(self) -> None:
        from app.fileutil import write_text_atomic
        path = self.wb.doc.path
        write_text_atomic(self.session_marker, json.dumps(
            {"pid": os.getpid(), "path": os.path.abspath(path) if path else None}))

    def autosave_now(self) -> bool:
        """Autosave when there are unsaved changes not autosaved yet; True when written."""
        if not self._session_active or self.wb.busy:
            return False                # a run owns the parameters; the next tick saves
        if not self.is_modified():
            self._remove_autosave()
            return False
        key = (id(self.wb.doc), self.wb.generation, self._restored_unsaved)
        if key == self._autosaved_at and self.autosave_path.exists():
            return False
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            fileformat.save(self.wb.doc, self.autosave_path)
            self._write_marker()
        except (OSError, DocumentError) as err:
            self.statusBar().showMessage(f"Autosave failed: {err}", 8000)
            return False
        self._autosaved_at = key
        return True

    def _remove_autosave(self) -> None:
        self._autosaved_at = None
        try:
            self.autosave_path.unlink()
        except FileNotFoundError:
            pass
        except OSError:
            pass
        if self._session_active:
            try:
                self._write_marker()
            except OSError:
                pass

    def end_session(self) -> None:
        """A clean exit: stop autosaving, remove the autosave and the session marker."""
        self.autosave_timer.stop()
        if not self._session_active:
            return
        self._session_active = False
        for path in (self.autosave_path, self.session_marker):
            try:
                path.unlink()
            except OSError:
                pass

    # ----------------------------------------------------------------- closing
    def closeEvent(self, event) -> None:  # noqa: N802 - Qt override
        if self.runner.running:
            answer = self.ask("quit_while_training", "Training in Progress",
                              "A training run is in progress. Stop it after the current step "
                              "and close? What completed is kept.",
                              Answer.Yes | Answer.No, Answer.No)
            if answer != Answer.Yes:
                event.ignore()
                return
            # stop after the current step, keep what completed (it becomes an undo step and
            # a change to save), then ask about saving as always
            self.runner.cancel()
            self.statusBar().showMessage("Stopping the training run after the current step…")
            self.statusBar().repaint()      # painted before the wait blocks this thread
            self.runner.wait(None)
        if not self.maybe_save():
            event.ignore()
            return
        self.save_layout()
        self.end_session()
        for dialog in (self.plugins_dialog, self.initialize_dialog, self.link_dialog):
            if dialog is not None:
                dialog.close()
        event.accept()
