"""ParamLab's plugin host: initializers arrive through one pluggy hook, built-ins included.

``hookimpl`` marks a plugin's hook functions; ``PluginHost`` discovers, loads and isolates
plugins. See ``hookspecs.py`` for the contract a plugin author writes against.
"""

from __future__ import annotations

import pluggy

from .hookspecs import PROJECT

hookimpl = pluggy.HookimplMarker(PROJECT)

from .manager import (  # noqa: E402
    InitializerInfo, PluginFailure, PluginHost, default_plugin_dirs, user_plugin_dir)
from .settings import REQUIRED, Setting, SettingsError  # noqa: E402

__all__ = ["hookimpl", "PluginHost", "InitializerInfo", "PluginFailure", "Setting",
           "SettingsError", "REQUIRED", "default_plugin_dirs", "user_plugin_dir", "PROJECT"]
