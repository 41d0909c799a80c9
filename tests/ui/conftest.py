"""Fixtures for the window's tests: isolated settings, data folders and plugins.

Every UI test runs with ``XDG_DATA_HOME`` / ``XDG_CONFIG_HOME`` pointing into its tmp folder
(so the user plugin folder, the autosave and QSettings never touch the real ones), without
``PARAMLAB_PLUGIN_PATH`` / ``PARAMLAB_SAFE_MODE``, and with a PluginHost that loads the
built-ins and the repository's ``plugins/`` only.

- ``host``: that PluginHost (``make_host(*extra_dirs)`` adds plugin folders);
- ``workbench``: a Workbench on a fresh, empty Document (its undo history is dropped at
  teardown, see :func:`release_workbench`);
- ``settings``: a QSettings in an ini file under tmp;
- ``make_window(workbench=None)``: a MainWindow with those settings and a tmp data folder,
  whose ``ask`` answers from ``window.answers`` (``{question key: answer}``) and records every
  question in ``window.asked`` — an unexpected question fails the test instead of blocking;
  everything it made is closed (changes discarded) at teardown;
- ``window``: one such window on ``workbench``, shown.
"""

from __future__ import annotations

import gc
from pathlib import Path

import pytest
from PySide6.QtCore import QCoreApplication, QSettings
from PySide6.QtWidgets import QApplication, QMessageBox

import app
from app.document import Document
from app.engine import random as engine_random
from app.pluginhost import PluginHost
from app.ui.workbench import Workbench

ROOT = Path(app.__file__).resolve().parent.parent
REPO_PLUGINS = ROOT / "plugins"
EXAMPLES = ROOT / "resources" / "examples"


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.delenv("PARAMLAB_PLUGIN_PATH", raising=False)
    monkeypatch.delenv("PARAMLAB_SAFE_MODE", raising=False)
    monkeypatch.delenv("PARAMLAB_THEME", raising=False)
    QCoreApplication.setOrganizationName("ParamLabTests")
    QCoreApplication.setApplicationName("paramlab-tests")
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope,
                      str(tmp_path / "qsettings"))
    state = engine_random.getstate()     # the random stream is process-global
    yield
    engine_random.setstate(state)


def _make_host(*extra_dirs) -> PluginHost:
    return PluginHost(plugin_dirs=[REPO_PLUGINS, *extra_dirs], default_dirs=False,
                      entry_points=False)


@pytest.fixture
def make_host():
    """``make_host(*extra_dirs)``: built-ins, the repo's plugins/, then ``extra_dirs``."""
    return _make_host


@pytest.fixture
def host():
    return _make_host()


def release_workbench(wb) -> None:
    """Drop the undo history while the workbench is alive: each command refers back to the
    workbench, and collecting that cycle through the C++-owned commands crashes PySide."""
    try:
        wb.undo_stack.clear()
    except RuntimeError:
        pass


@pytest.fixture
def workbench(qapp, host):
    wb = Workbench(host, Document(host=host))
    yield wb
    release_workbench(wb)


@pytest.fixture
def settings(tmp_path):
    return QSettings(str(tmp_path / "paramlab.ini"), QSettings.Format.IniFormat)


class Answers(dict):
    """``window.ask`` for tests: answers by question key, records what was asked."""

    def __init__(self):
        super().__init__()
        self.asked: list[tuple[str, str]] = []

    def __call__(self, key, title, text, buttons, default):
        self.asked.append((key, text))
        if key not in self:
            raise AssertionError(f"unexpected question {key!r}: {text}")
        answer = self[key]
        return answer(text) if callable(answer) else answer


def _discard_changes(window) -> None:
    answers = getattr(window, "answers", None)
    if answers is not None:
        answers["save_changes"] = QMessageBox.StandardButton.Discard


@pytest.fixture
def make_window(qapp, qtbot, tmp_path, settings, workbench):
    from app.ui import style
    from app.ui.main_window import MainWindow

    style.install(qapp)
    made = []

    def make(wb=None, *, show=True, data_dir=None):
        window = MainWindow(wb if wb is not None else workbench, settings=settings,
                            data_dir=data_dir or tmp_path / "data")
        answers = Answers()
        window.ask = answers
        window.answers = answers
        window.asked = answers.asked
        qtbot.addWidget(window, before_close_func=_discard_changes)
        made.append(window)
        if show:
            window.show()
            qtbot.waitExposed(window)
        return window

    yield make
    for window in made:
        _discard_changes(window)
        try:
            window.close()
            release_workbench(window.wb)
        except RuntimeError:        # already deleted
            pass
    made.clear()
    gc.collect()                    # free the windows now (PySide owns them: no deleteLater)
    for widget in QApplication.topLevelWidgets():
        if isinstance(widget, QMessageBox):
            widget.close()


@pytest.fixture
def window(make_window):
    return make_window()
