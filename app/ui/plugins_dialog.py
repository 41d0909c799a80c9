"""Plugins > Plugins…: every initializer with its origin and settings, every failure and why.

Also the plugin gestures shared with the Plugins menu: :func:`reload_plugins` (re-import the
plugin folders, log the failures, and have the document re-emit ``'inits'`` so choices whose
plugin went missing — or came back — update everywhere), :func:`open_plugin_folder` and
:func:`create_plugin` (the starter template of ``paramlab plugins new``).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QDesktopServices, QFontDatabase
from PySide6.QtWidgets import (QAbstractItemView, QDialog, QDialogButtonBox, QHBoxLayout,
                               QHeaderView, QInputDialog, QLabel, QPlainTextEdit,
                               QPushButton, QSplitter, QTreeWidget, QTreeWidgetItem,
                               QVBoxLayout, QWidget)

__all__ = ["PluginsDialog", "TracebackDialog", "reload_plugins", "log_plugin_failures",
           "open_plugin_folder", "create_plugin", "ask_new_plugin", "describe_settings"]


# ============================================================================ gestures
def log_plugin_failures(workbench) -> None:
    """Put every plugin failure in the Log as an error, with its traceback as details."""
    host = workbench.host
    if host is None:
        return
    for f in host.failures:
        workbench.doc.error(f"plugin {f.plugin} failed ({f.kind}): {f.error}", f.traceback)


def reload_plugins(workbench):
    """``host.reload()``, then log the failures and re-emit ``'inits'`` so views update.
    Refused (None) while a training run holds the model: it resolves initializers by name."""
    if workbench.busy:
        message = workbench.busy_message()
        workbench.doc.error(f"Reload plugins: {message}")
        workbench.failed.emit(message)
        return None
    host = workbench.host
    host.reload()
    doc = workbench.doc
    doc.info(f"plugins reloaded: {len(host.initializers)} initializer(s), "
             f"{len(host.failures)} failure(s)")
    log_plugin_failures(workbench)
    doc.changed.emit("inits")
    return host


def open_plugin_folder(tell=None) -> Path:
    """Show the user plugin folder in the file manager (created when missing)."""
    from app.pluginhost import user_plugin_dir
    folder = user_plugin_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        if tell is not None:
            tell("error", "Plugin Folder", f"Cannot create {folder}: {err}")
        return folder
    if not QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder))) and tell is not None:
        tell("info", "Plugin Folder", f"Your plugin folder is\n{folder}")
    return folder


def create_plugin(name: str, directory: Path | None = None) -> Path:
    """Write the starter plugin for ``name``; raises ValueError (bad name), FileExistsError
    (refuses to overwrite) or OSError."""
    from app.fileutil import write_text_atomic
    from app.pluginhost import user_plugin_dir
    from app.pluginhost.template import module_name_for, render

    text = render(name)
    folder = Path(directory) if directory is not None else user_plugin_dir()
    path = folder / f"{module_name_for(name)}.py"
    if path.exists():
        raise FileExistsError(f"{path} already exists: choose another name")
    folder.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, text)
    return path


def ask_new_plugin(parent, tell) -> QInputDialog:
    """Ask for a name (non-blocking), then write the template and report the path."""
    dialog = QInputDialog(parent)
    dialog.setObjectName("newPluginDialog")
    dialog.setWindowTitle("New Plugin")
    dialog.setLabelText("Name of the new initializer (e.g. “my init”):")
    dialog.setInputMode(QInputDialog.InputMode.TextInput)
    dialog.setOkButtonText("Create")
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)

    def create(name: str) -> None:
        name = name.strip()
        if not name:
            return
        try:
            path = create_plugin(name)
        except FileExistsError as err:
            tell("warning", "New Plugin", str(err))
        except (ValueError, OSError) as err:
            tell("error", "New Plugin", f"Cannot create a plugin called {name!r}: {err}")
        else:
            tell("info", "New Plugin",
                 f"Wrote {path}\n\nEdit it, save, then choose Plugins > Reload (F6) to load it.")

    dialog.textValueSelected.connect(create)
    dialog.open()
    return dialog


def describe_settings(info) -> str:
    parts = []
    for s in info.settings:
        text = f"{s.name}: {s.type_name}"
        if not s.required:
            text += f" = {s.default!r}"
        if s.choices:
            text += " {" + "|".join(map(str, s.choices)) + "}"
        elif s.range is not None:
            text += f" in {s.range.describe()}"
        parts.append(text)
    return ", ".join(parts) or "no settings"


# ============================================================================ dialogs
class TracebackDialog(QDialog):
    def __init__(self, title: str, text: str, parent=None):
        super().__init__(parent)
        self.setObjectName("tracebackDialog")
        self.setWindowTitle(title)
        self.view = QPlainTextEdit(text)
        self.view.setObjectName("tracebackView")
        self.view.setReadOnly(True)
        self.view.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.view.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.view)
        layout.addWidget(buttons)
        self.resize(760, 420)


class PluginsDialog(QDialog):
    """Re-renders from the host whenever the workbench reports ``'inits'`` (after a reload)."""

    def __init__(self, workbench, parent=None):
        super().__init__(parent)
        self.setObjectName("pluginsDialog")
        self.setWindowTitle("Plugins")
        self._wb = workbench
        self.traceback_dialog = None

        self.folders = QLabel()
        self.folders.setObjectName("pluginFolders")
        self.folders.setWordWrap(True)
        self.folders.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.initializers = QTreeWidget()
        self.initializers.setObjectName("initializersTree")
        self.initializers.setHeaderLabels(["Initializer", "Name", "Category", "Origin",
                                           "Settings"])
        self.initializers.setRootIsDecorated(False)
        self.initializers.setAlternatingRowColors(True)
        self.initializers.setUniformRowHeights(True)
        self.initializers.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.details = QLabel()
        self.details.setObjectName("initializerDetails")
        self.details.setWordWrap(True)
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.details.setMinimumHeight(36)
        self.details.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)

        self.failures_title = QLabel()
        self.failures_title.setObjectName("failuresTitle")
        self.failures = QTreeWidget()
        self.failures.setObjectName("failuresTree")
        self.failures.setHeaderLabels(["Plugin", "Problem", "Reason"])
        self.failures.setRootIsDecorated(False)
        self.failures.setWordWrap(True)
        self.failures.setAlternatingRowColors(True)
        self.traceback_button = QPushButton("Show Traceback…")
        self.traceback_button.setObjectName("showTracebackButton")

        self.reload_button = QPushButton("Reload")
        self.reload_button.setObjectName("reloadButton")
        self.reload_button.setToolTip("Re-import the plugin folders (F6)")
        self.folder_button = QPushButton("Open Plugin Folder")
        self.folder_button.setObjectName("openFolderButton")
        self.new_button = QPushButton("New Plugin…")
        self.new_button.setObjectName("newPluginButton")
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.setObjectName("buttonBox")

        top = QWidget()
        top_layout = QVBoxLayout(top)
        top_layout.setContentsMargins(0, 0, 0, 0)
        heading = QLabel("<b>Initializers</b>")
        top_layout.addWidget(heading)
        top_layout.addWidget(self.initializers, 1)
        top_layout.addWidget(self.details)
        bottom = QWidget()
        bottom_layout = QVBoxLayout(bottom)
        bottom_layout.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        row.addWidget(self.failures_title, 1)
        row.addWidget(self.traceback_button)
        bottom_layout.addLayout(row)
        bottom_layout.addWidget(self.failures, 1)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.setChildrenCollapsible(False)
        splitter.addWidget(top)
        splitter.addWidget(bottom)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        buttons = QHBoxLayout()
        buttons.addWidget(self.reload_button)
        buttons.addWidget(self.folder_button)
        buttons.addWidget(self.new_button)
        buttons.addStretch(1)
        buttons.addWidget(close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.folders)
        layout.addWidget(splitter, 1)
        layout.addLayout(buttons)
        self.resize(940, 620)

        self._render()
        # F6 (Plugins > Reload) works while this dialog has the focus too.
        reload_action = getattr(parent, "action_reload_plugins", None)
        if reload_action is not None:
            self.addAction(reload_action)

        self.initializers.currentItemChanged.connect(self._on_initializer_changed)
        self.failures.currentItemChanged.connect(self._on_failure_changed)
        self.failures.itemDoubleClicked.connect(self._on_failure_double_clicked)
        self.traceback_button.clicked.connect(self.show_traceback)
        self.reload_button.clicked.connect(self.reload)
        self.folder_button.clicked.connect(self.open_folder)
        self.new_button.clicked.connect(self.new_plugin)
        close.rejected.connect(self.close)
        workbench.changed.connect(self._on_workbench_changed)
        workbench.busy_changed.connect(self._on_busy_changed)
        self._on_busy_changed(workbench.busy)

    def _on_busy_changed(self, what: str) -> None:
        # a run resolves initializers by name: no reload (nor a new plugin) until it ends
        self.reload_button.setEnabled(not what)
        self.reload_button.setToolTip("Re-import the plugin folders (F6)" if not what else
                                      "Reload waits for the training run to end")

    # ------------------------------------------------------------------ rendering
    def _render(self) -> None:
        host = self._wb.host
        dirs = [str(d) for d in host.plugin_dirs] if host is not None else []
        safe = host is not None and host.safe_mode
        self.folders.setText(
            "Safe mode (PARAMLAB_SAFE_MODE): only the built-in initializers are loaded."
            if safe else "Plugin folders searched: " + (" · ".join(dirs) or "none"))
        current = self.initializers.currentItem()
        keep = current.text(1) if current is not None else None
        self.initializers.clear()
        infos = list(host.initializers.values()) if host is not None else []
        select = None
        for info in infos:
            item = QTreeWidgetItem([info.label, info.name, info.category, info.origin,
                                    describe_settings(info)])
            item.setData(0, Qt.ItemDataRole.UserRole, info.name)
            item.setToolTip(0, info.description)
            item.setToolTip(3, info.origin)
            item.setToolTip(4, describe_settings(info))
            self.initializers.addTopLevelItem(item)
            if info.name == keep:
                select = item
        header = self.initializers.header()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        for col in range(4):
            self.initializers.resizeColumnToContents(col)
        self.initializers.setColumnWidth(3, min(self.initializers.columnWidth(3), 260))
        header.setStretchLastSection(True)
        if select is not None:
            self.initializers.setCurrentItem(select)
        self._on_initializer_changed()

        self.failures.clear()
        fails = list(host.failures) if host is not None else []
        for f in fails:
            item = QTreeWidgetItem([f.plugin, f.kind, f.error])
            item.setToolTip(0, f.plugin)
            item.setToolTip(2, f.error)
            item.setData(0, Qt.ItemDataRole.UserRole, f)
            self.failures.addTopLevelItem(item)
        self.failures.resizeColumnToContents(1)
        self.failures.setColumnWidth(0, 260)
        self.failures_title.setText(
            f"<b>Failures ({len(fails)})</b>" if fails else
            "<b>Failures</b> — no plugin failed to load.")
        if fails:
            self.failures.setCurrentItem(self.failures.topLevelItem(0))
        self._on_failure_changed()

    def _on_initializer_changed(self, *_args) -> None:
        item = self.initializers.currentItem()
        host = self._wb.host
        info = None if item is None or host is None else host.initializers.get(
            item.data(0, Qt.ItemDataRole.UserRole))
        if info is None:
            self.details.setText("Select an initializer to see its description and settings.")
            return
        data = " · needs a data batch (calibrates on the input)" if info.needs_data else ""
        self.details.setText(f"<b>{info.label}</b> ({info.name}){data}<br>"
                             f"{info.description or 'No description.'}<br>"
                             f"<i>Settings:</i> {describe_settings(info)}<br>"
                             f"<i>From:</i> {info.origin}")

    def _on_failure_changed(self, *_args) -> None:
        failure = self.selected_failure()
        self.traceback_button.setEnabled(bool(failure is not None and failure.traceback))

    def _on_workbench_changed(self, what: str) -> None:
        if what in ("inits", "document"):
            self._render()

    def selected_failure(self):
        item = self.failures.currentItem()
        return None if item is None else item.data(0, Qt.ItemDataRole.UserRole)

    # ------------------------------------------------------------------ gestures
    def show_traceback(self) -> TracebackDialog | None:
        failure = self.selected_failure()
        if failure is None or not failure.traceback:
            return None
        if self.traceback_dialog is not None:
            self.traceback_dialog.close()
            self.traceback_dialog.deleteLater()
        self.traceback_dialog = TracebackDialog(f"Traceback — {Path(failure.plugin).name}",
                                                failure.traceback, self)
        self.traceback_dialog.show()
        return self.traceback_dialog

    def _on_failure_double_clicked(self, *_args) -> None:
        self.show_traceback()

    def open_folder(self) -> Path:
        return open_plugin_folder(self.tell)

    def reload(self) -> None:
        reload_plugins(self._wb)

    def new_plugin(self) -> QInputDialog:
        return ask_new_plugin(self, self.tell)

    def tell(self, level: str, title: str, text: str) -> None:
        """Report through the main window's ``tell`` (tests replace it), else a message box."""
        parent_tell = getattr(self.parent(), "tell", None)
        if parent_tell is not None:
            parent_tell(level, title, text)
            return
        from PySide6.QtWidgets import QMessageBox
        QMessageBox.information(self, title, text)

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt override
        if self.traceback_dialog is not None:
            self.traceback_dialog.close()
        super().closeEvent(event)

