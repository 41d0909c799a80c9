"""Look and feel: the Fusion style with a light or dark palette that follows the system.

:func:`install` sets the style, picks the palette from ``QStyleHints.colorScheme()`` (Qt ≥ 6.5)
and follows ``colorSchemeChanged`` while the app runs. ``PARAMLAB_THEME=light|dark`` forces
one (screenshots, and systems that report no scheme). The small application stylesheet only
styles what a palette cannot express: fields marked invalid (``invalid`` dynamic property) and
the secondary/hint labels (``role`` dynamic property).
"""

from __future__ import annotations

import os

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication

__all__ = ["install", "palette_for", "current_scheme", "is_dark", "ThemeFollower",
           "stylesheet", "ERROR_COLOR", "WARNING_COLOR"]

ERROR_COLOR = "#d64545"
WARNING_COLOR = "#c98a00"

_LIGHT = {
    "window": "#f3f3f5", "window_text": "#1f2328", "base": "#ffffff", "alt_base": "#f6f7f9",
    "button": "#eceef1", "button_text": "#1f2328", "tooltip_base": "#ffffe8",
    "tooltip_text": "#1f2328", "highlight": "#2f6fde", "highlighted_text": "#ffffff",
    "link": "#1f5fcc", "placeholder": "#8a9099", "mid": "#c4c8ce", "dark": "#a0a5ad",
    "shadow": "#6b7079", "light": "#ffffff", "midlight": "#f9f9fb",
    "disabled_text": "#9aa0a8",
}
_DARK = {
    "window": "#2b2d30", "window_text": "#dfe1e5", "base": "#1e1f22", "alt_base": "#26282b",
    "button": "#393b40", "button_text": "#dfe1e5", "tooltip_base": "#3c3f44",
    "tooltip_text": "#dfe1e5", "highlight": "#3574f0", "highlighted_text": "#ffffff",
    "link": "#6ea1ff", "placeholder": "#7b8088", "mid": "#4a4d52", "dark": "#1b1c1f",
    "shadow": "#101113", "light": "#4e5157", "midlight": "#43464b",
    "disabled_text": "#6f737a",
}



def stylesheet(scheme: str) -> str:
    """The application stylesheet for ``scheme``: only what the palette cannot express."""
    c = _DARK if scheme == "dark" else _LIGHT
    return f"""
*[invalid="true"] {{ border: 1px solid {ERROR_COLOR}; }}
QLabel[role="hint"] {{ color: {c["placeholder"]}; }}
QLabel[role="error"] {{ color: {ERROR_COLOR}; }}
QLabel[role="warning"] {{ color: {WARNING_COLOR}; }}
QMainWindow::separator {{ width: 4px; height: 4px; }}
QToolBar {{ spacing: 3px; padding: 2px 4px; }}
"""


def current_scheme() -> str:
    """'dark' or 'light': ``PARAMLAB_THEME`` if set, otherwise what the system reports."""
    forced = os.environ.get("PARAMLAB_THEME", "").strip().lower()
    if forced in ("dark", "light"):
        return forced
    hints = QGuiApplication.styleHints()
    scheme = getattr(hints, "colorScheme", None)
    if scheme is not None and scheme() == Qt.ColorScheme.Dark:
        return "dark"
    return "light"


def palette_for(scheme: str) -> QPalette:
    c = {k: QColor(v) for k, v in (_DARK if scheme == "dark" else _LIGHT).items()}
    pal = QPalette()
    role = QPalette.ColorRole
    for group in (QPalette.ColorGroup.Active, QPalette.ColorGroup.Inactive,
                  QPalette.ColorGroup.Disabled):
        pal.setColor(group, role.Window, c["window"])
        pal.setColor(group, role.WindowText, c["window_text"])
        pal.setColor(group, role.Base, c["base"])
        pal.setColor(group, role.AlternateBase, c["alt_base"])
        pal.setColor(group, role.ToolTipBase, c["tooltip_base"])
        pal.setColor(group, role.ToolTipText, c["tooltip_text"])
        pal.setColor(group, role.PlaceholderText, c["placeholder"])
        pal.setColor(group, role.Text, c["window_text"])
        pal.setColor(group, role.Button, c["button"])
        pal.setColor(group, role.ButtonText, c["button_text"])
        pal.setColor(group, role.BrightText, QColor(ERROR_COLOR))
        pal.setColor(group, role.Highlight, c["highlight"])
        pal.setColor(group, role.HighlightedText, c["highlighted_text"])
        pal.setColor(group, role.Link, c["link"])
        pal.setColor(group, role.LinkVisited, c["link"])
        pal.setColor(group, role.Light, c["light"])
        pal.setColor(group, role.Midlight, c["midlight"])
        pal.setColor(group, role.Mid, c["mid"])
        pal.setColor(group, role.Dark, c["dark"])
        pal.setColor(group, role.Shadow, c["shadow"])
    disabled = QPalette.ColorGroup.Disabled
    for r in (role.WindowText, role.Text, role.ButtonText):
        pal.setColor(disabled, r, c["disabled_text"])
    pal.setColor(disabled, role.Highlight, c["mid"])
    inactive_hl = QColor(c["highlight"])
    inactive_hl.setAlpha(170)
    pal.setColor(QPalette.ColorGroup.Inactive, role.Highlight, inactive_hl)
    return pal


def is_dark(palette: QPalette | None = None) -> bool:
    """True when the (application's) palette has light text on a dark window."""
    pal = palette if palette is not None else QApplication.palette()
    return pal.color(QPalette.ColorRole.Window).lightness() < 128


class ThemeFollower(QObject):
    """Applies the palette for the current scheme and re-applies it when the system changes."""

    def __init__(self, app: QApplication):
        super().__init__(app)
        self._app = app
        self.scheme = ""
        self.apply()
        hints = QGuiApplication.styleHints()
        if hasattr(hints, "colorSchemeChanged"):
            hints.colorSchemeChanged.connect(self._on_color_scheme_changed)

    def apply(self) -> None:
        scheme = current_scheme()
        if scheme == self.scheme:
            return
        self.scheme = scheme
        self._app.setPalette(palette_for(scheme))
        self._app.setStyleSheet(stylesheet(scheme))
        self._app.setProperty("paramlabTheme", scheme)

    def _on_color_scheme_changed(self, _scheme=None) -> None:
        self.apply()


def install(app: QApplication) -> ThemeFollower:
    """Fusion style, the system's light/dark palette (followed live) and the small stylesheet.
    Idempotent: a second call returns the follower already installed."""
    existing = getattr(app, "_paramlab_theme", None)
    if existing is not None:
        return existing
    app.setStyle("Fusion")
    follower = ThemeFollower(app)
    app._paramlab_theme = follower      # keep it alive with the app
    return follower
