"""The File menu's ways in and out of ParamLab: export as Python, export and import parameters,
load the input and the target from files.

:class:`FileActions` owns five actions (children of the window, so their shortcuts and object
names are the window's) and the slots behind them. The window builds it once and puts the
actions in its File menu (:meth:`FileActions.add_to_menu`). Everything goes through the
window's usual channels: changes to the document through ``Workbench.run`` (one undo step, and a
refusal changes nothing), messages through ``window.tell``, questions through ``window.ask``,
and the file choosers are the methods :meth:`FileActions.choose_save_path` and
:meth:`FileActions.choose_open_path`, which tests replace.

Nothing is lost on an error: exports compute everything before writing and the document layer
writes atomically (a refused or failed export leaves an existing file as it was), and imports
check the whole file before changing any parameter (a refused import leaves the model and the
undo history as they were).
"""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QObject
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QFileDialog, QMenu, QMessageBox

from app.document import DocumentError
from app.document.interchange import EXPORT_FORMATS, InterchangeError

__all__ = ["DATA_FILTER", "PARAMS_FILTER", "PYTHON_FILTER", "FileActions"]

Answer = QMessageBox.StandardButton

# Filters: "label (*.ext)". The first extension of the selected filter completes a bare name.
PARAMS_FILTER = ";;".join(f"{label} (*{ext})" for ext, label in EXPORT_FORMATS.items())
PARAMS_OPEN_FILTER = ("Parameter files (*.npz *.safetensors);;" + PARAMS_FILTER
                      + ";;All files (*)")
DATA_FILTER = "Arrays (*.npy *.csv *.txt);;NumPy array (*.npy);;CSV table (*.csv *.txt);;" \
              "All files (*)"
PYTHON_FILTER = "Python script (*.py)"

_PARAMS_SUFFIX_KEY = "files/paramsFormat"     # the last format exported (.npz or .safetensors)


def _first_suffix(selected_filter: str) -> str:
    """'.npz' from 'NumPy archive, Gluon keys (*.npz)'; '' for 'All files (*)'."""
    inside = selected_filter[selected_filter.rfind("(") + 1:].rstrip(")")
    for pattern in inside.split():
        if pattern.startswith("*.") and len(pattern) > 2:
            return pattern[1:]
    return ""


class FileActions(QObject):
    """Export as Python / Export Parameters / Import Parameters / Load Input / Load Target.

    ``window`` is the MainWindow (it provides ``wb``, ``tell``, ``ask``, ``settings``,
    ``statusBar()`` and ``_last_dir()``). The actions follow the workbench: all are disabled
    while it is busy (a training run holds the document), the exports and the import when the
    model has nothing to export or import."""

    def __init__(self, window):
        super().__init__(window)
        self.setObjectName("fileActions")
        self.window = window
        self.wb = window.wb
        self.action_export_python = self._action(
            "actionExportPython", "Export as P&ython…", self.export_python,
            "Write a runnable script on app.engine's Gluon API that rebuilds this network and "
            "its training")
        self.action_export_params = self._action(
            "actionExportParams", "Export &Parameters…", self.export_params,
            "Save every parameter as .npz (Gluon keys) or .safetensors (PyTorch names)")
        self.action_import_params = self._action(
            "actionImportParams", "&Import Parameters…", self.import_params,
            "Set the parameters from a .npz or .safetensors file (shapes are checked first)")
        self.action_load_input = self._action(
            "actionLoadInput", "&Load Input…", self.load_input,
            "Use the array in a .npy or .csv file as the input x")
        self.action_load_target = self._action(
            "actionLoadTarget", "Load &Target…", self.load_target,
            "Use the array in a .npy or .csv file as the loss's target")
        self.refresh()
        self.wb.changed.connect(self._on_changed)
        self.wb.busy_changed.connect(self._on_changed)

    def _action(self, name: str, text: str, slot, tip: str) -> QAction:
        action = QAction(text, self.window)
        action.setObjectName(name)
        action.setStatusTip(tip)
        action.setToolTip(tip)
        action.triggered.connect(slot)
        self.window.addAction(action)
        return action

    @property
    def actions(self) -> list[QAction]:
        """In menu order: data in, then parameters in and out, then the script."""
        return [self.action_load_input, self.action_load_target, self.action_import_params,
                self.action_export_params, self.action_export_python]

    def add_to_menu(self, menu: QMenu) -> None:
        """Append the actions to ``menu`` (the File menu) in two groups after a separator:
        the data the model runs on, then the model's parameters and code."""
        menu.addSeparator()
        menu.addAction(self.action_load_input)
        menu.addAction(self.action_load_target)
        menu.addSeparator()
        menu.addAction(self.action_import_params)
        menu.addAction(self.action_export_params)
        menu.addAction(self.action_export_python)

    # ----------------------------------------------------------------- state
    def _on_changed(self, _what: str = "") -> None:
        self.refresh()

    def refresh(self) -> None:
        """Enable what makes sense now; the export tip says when parameters lack values."""
        doc = self.wb.doc
        idle = not self.wb.busy
        has_layers = bool(doc.layers)
        params = doc.params() if has_layers else {}
        self.action_export_python.setEnabled(idle and has_layers)
        self.action_export_params.setEnabled(idle and bool(params))
        self.action_import_params.setEnabled(idle and bool(params))
        self.action_load_input.setEnabled(idle)
        self.action_load_target.setEnabled(idle)
        missing = sum(p.state != "initialized" for p in params.values())
        tip = ("Save every parameter as .npz (Gluon keys) or .safetensors (PyTorch names)"
               if not missing else
               f"{missing} parameter{'s have' if missing != 1 else ' has'} no values yet: "
               "Initialize (and run Forward) first, then export")
        self.action_export_params.setStatusTip(tip)
        self.action_export_params.setToolTip(tip)

    # ----------------------------------------------------------------- choosers (replaceable)
    def choose_save_path(self, title: str, suggested: str, file_filter: str) -> str:
        """Ask where to save; a name without an extension gets the selected filter's."""
        path, selected = QFileDialog.getSaveFileName(self.window, title, suggested, file_filter)
        if path and not Path(path).suffix:
            path += _first_suffix(selected)
        return path

    def choose_open_path(self, title: str, file_filter: str) -> str:
        path, _selected = QFileDialog.getOpenFileName(self.window, title,
                                                      self.window._last_dir(), file_filter)
        return path

    def _suggested(self, suffix: str) -> str:
        """The document's name with ``suffix``, in the last folder used."""
        current = self.wb.doc.path
        stem = Path(current).stem if current else "untitled"
        return os.path.join(self.window._last_dir(), stem + suffix)

    def _remember_folder(self, path: str) -> None:
        self.window.settings.setValue("files/lastDir", os.path.dirname(os.path.abspath(path)))

    def _refused(self, title: str) -> bool:
        """True (after saying why) when a training run holds the document."""
        if self.wb.busy:
            message = self.wb.busy_message()
            self.window.statusBar().showMessage(f"{title}: {message}", 8000)
            return True
        return False

    def _fail(self, title: str, message: str) -> None:
        self.wb.doc.error(message)
        self.window.tell("error", title, message)
        self.window.statusBar().showMessage(message, 10000)

    # ----------------------------------------------------------------- export as Python
    def export_python(self) -> bool:
        """Write the model as a script. When the current values came from something a script
        cannot replay (a hand edit, an import), ask first: the script would still rebuild the
        recipe, but it would not give these values."""
        doc = self.wb.doc
        title = "Export as Python"
        if self._refused(title):
            return False
        if not doc.layers:
            self.window.tell("info", title, "There is no network to export: add a layer first.")
            return False
        steps = doc.replay_steps
        note = ""
        if steps is None and not any(p.state == "initialized" for p in doc.params().values()):
            steps = 0               # no values to reproduce: the recipe is all there is
        elif steps is None:
            note = doc.replay_note or "the values did not come from Initialize, Forward and " \
                "training alone."
            answer = self.window.ask(
                "export_python_not_replayable", title,
                f"The script would not reproduce the current parameter values: {note}\n\n"
                "Export the recipe anyway? The script rebuilds the network, draws the data, "
                "initializes and runs one forward as configured, without the training since.",
                Answer.Yes | Answer.No, Answer.No)
            if answer != Answer.Yes:
                return False
            steps = 0
        path = self.choose_save_path(title, self._suggested(".py"), PYTHON_FILTER)
        if not path:
            return False
        if not Path(path).suffix:
            path += ".py"
        from app.document.export_python import write_script
        name = os.path.basename(path)
        try:
            write_script(doc, path, steps)
        except (OSError, DocumentError) as err:
            self._fail("Cannot Export", f"Cannot export the model as Python to '{name}': "
                       f"{_reason(err)}")
            return False
        self._remember_folder(path)
        if note:
            why = note.split(". ")[0].rstrip(".")
            doc.warning(f"{name} rebuilds the recipe but does not reproduce the current "
                        f"parameter values: {why}")
            self.window.statusBar().showMessage(
                f"Exported {name}: the recipe only (it does not reproduce the current values: "
                f"{why})", 10000)
        else:
            self.window.statusBar().showMessage(f"Exported {name}: {self._replay_text(steps)}",
                                                10000)
        return True

    def _replay_text(self, steps: int) -> str:
        params = list(self.wb.doc.params().values())
        recipe = "initialize, forward" + (f", {steps} step{'s' if steps != 1 else ''}"
                                          if steps else "")
        if params and all(p.state == "initialized" for p in params):
            return f"the script reproduces the current parameters: {recipe}"
        return f"the script runs {recipe} (the parameters here are not all initialized yet)"

    # ----------------------------------------------------------------- parameters out and in
    def export_params(self) -> bool:
        """Save the parameters; the format follows the file name (.npz or .safetensors)."""
        doc = self.wb.doc
        title = "Export Parameters"
        if self._refused(title):
            return False
        last = self.window.settings.value(_PARAMS_SUFFIX_KEY)
        suffix = last if last in EXPORT_FORMATS else ".npz"
        filters = PARAMS_FILTER.split(";;")
        if suffix != ".npz":                 # the last format used comes first in the dialog
            filters.sort(key=lambda f: _first_suffix(f) != suffix)
        path = self.choose_save_path(title, self._suggested(suffix), ";;".join(filters))
        if not path:
            return False
        if not Path(path).suffix:
            path += suffix
        from app.document.interchange import export_params
        try:
            export_params(doc, path)
        except (OSError, DocumentError) as err:
            self._fail("Cannot Export", _reason(err) if isinstance(err, InterchangeError) else
                       f"Cannot export the parameters to '{os.path.basename(path)}': "
                       f"{_reason(err)}")
            return False
        self._remember_folder(path)
        ext = Path(path).suffix.lower()
        self.window.settings.setValue(_PARAMS_SUFFIX_KEY, ext)
        self.window.statusBar().showMessage(
            f"Exported the parameters to {os.path.basename(path)} ({EXPORT_FORMATS[ext]})", 8000)
        return True

    def import_params(self) -> bool:
        """Set every parameter from a file: one undo step, or nothing changes."""
        title = "Import Parameters"
        if self._refused(title):
            return False
        path = self.choose_open_path(title, PARAMS_OPEN_FILTER)
        if not path:
            return False
        from app.document.interchange import import_params
        name = os.path.basename(path)

        def do(doc):
            try:
                return import_params(doc, path)
            except OSError as err:
                raise InterchangeError(f"Cannot import '{name}': {_reason(err)}") from err

        ok, result = self.wb.run(f"Import parameters from {name}", do)
        if not ok:
            self.window.tell("error", "Cannot Import", result)
            return False
        self._remember_folder(path)
        self.window.statusBar().showMessage(
            f"Imported {len(result)} parameter{'s' if len(result) != 1 else ''} from {name}", 8000)
        return True

    # ----------------------------------------------------------------- data
    def load_input(self) -> bool:
        return self._load("input")

    def load_target(self) -> bool:
        return self._load("target")

    def _load(self, what: str) -> bool:
        title = f"Load {what.capitalize()}"
        if self._refused(title):
            return False
        path = self.choose_open_path(title, DATA_FILTER)
        if not path:
            return False
        name = os.path.basename(path)

        def do(doc):
            try:
                getattr(doc, f"load_{what}")(path)
            except OSError as err:
                raise DocumentError(f"Cannot load the {what} from '{name}': "
                                    f"{_reason(err)}") from err

        ok, message = self.wb.run(f"Load {what} from {name}", do)
        if not ok:
            self.window.tell("error", f"Cannot Load the {what.capitalize()}", message)
            return False
        self._remember_folder(path)
        from app.document.layers import format_shape
        shape = self.wb.doc.x.shape if what == "input" else \
            self.wb.doc.train_config.target.shape
        self.window.statusBar().showMessage(
            f"Loaded the {what} from {name}: shape {format_shape(shape)}", 8000)
        return True


def _reason(err: Exception) -> str:
    """An error's message for people: OSError's strerror ('Permission denied'), not its repr."""
    if isinstance(err, OSError) and err.strerror:
        return err.strerror + "."
    return str(err)
