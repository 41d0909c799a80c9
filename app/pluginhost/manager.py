"""Discovery, loading and isolation of initializer plugins.

``PluginHost`` builds a fresh pluggy manager (no import-time global) and loads, in order: the
built-in initializers, entry points of the group ``paramlab``, then every ``*.py`` of the plugin
folders. Whatever goes wrong with one plugin — a syntax error, a failed import, a hook that
raises, a misspelled hook name, a registration of something that is not an initializer, a name
another plugin took, defaults that do not validate — is recorded in ``failures`` with the reason
and what to do, and every other plugin keeps working.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib.metadata
import importlib.util
import inspect
import os
import re
import sys
import traceback
import types
from dataclasses import dataclass, field
from pathlib import Path

import pluggy

from app.engine import init as _init

from . import hookspecs
from .hookspecs import PROJECT
from .settings import Setting, SettingsError, parse_value, settings_of, validate

__all__ = ["PluginHost", "InitializerInfo", "PluginFailure", "default_plugin_dirs",
           "user_plugin_dir", "repo_plugin_dir"]

HOOK_NAMES = tuple(n for n in dir(hookspecs) if n.startswith(PROJECT + "_"))
_MODULE_PREFIX = "_paramlab_plugin_"
# What a plugin's code may raise without taking the app down: any Exception, and SystemExit (a
# plugin calling sys.exit() or exit()). KeyboardInterrupt still stops the app.
_PLUGIN_ERRORS = (Exception, SystemExit)


def repo_plugin_dir() -> Path:
    """The ``plugins/`` folder of the ParamLab checkout."""
    return Path(__file__).resolve().parent.parent.parent / "plugins"


def user_plugin_dir() -> Path:
    """The user's own plugin folder (platformdirs' user data dir for ``paramlab``)."""
    import platformdirs
    return Path(platformdirs.user_data_dir(PROJECT, appauthor=False)) / "plugins"


def env_plugin_dirs() -> list[Path]:
    raw = os.environ.get("PARAMLAB_PLUGIN_PATH", "")
    return [Path(p).expanduser() for p in raw.split(os.pathsep) if p.strip()]


def default_plugin_dirs() -> list[Path]:
    """The repository's ``plugins/``, the user plugin folder, then ``PARAMLAB_PLUGIN_PATH``."""
    return [repo_plugin_dir(), user_plugin_dir(), *env_plugin_dirs()]


@dataclass
class InitializerInfo:
    """What the host knows of one registered initializer."""

    name: str
    cls: type
    origin: str                 # "built-in", the plugin file's path, or "distribution NAME VER"
    plugin: str                 # the plugin (module) that registered it
    label: str
    category: str
    description: str
    settings: tuple = ()
    needs_data: bool = False
    has_density: bool = False

    def setting(self, name: str) -> Setting:
        for s in self.settings:
            if s.name == name:
                return s
        raise KeyError(name)

    def defaults(self) -> dict:
        return {s.name: s.default for s in self.settings}

    def to_json(self) -> dict:
        return {"name": self.name, "origin": self.origin, "label": self.label,
                "category": self.category, "description": self.description,
                "needs_data": self.needs_data,
                "params": [s.to_json() for s in self.settings]}


@dataclass
class PluginFailure:
    """A plugin (or one registration of it) that could not be used, and why."""

    plugin: str                 # file path, distribution or plugin name
    kind: str                   # "syntax error", "import error", "hook raised", ...
    error: str                  # the reason and what to do about it
    traceback: str = ""
    names: tuple = field(default=())

    def to_json(self) -> dict:
        return {"plugin": self.plugin, "kind": self.kind, "error": self.error}

    def __str__(self) -> str:
        return f"{self.plugin}: {self.kind}: {self.error}"


def _first_line(doc) -> str:
    doc = inspect.cleandoc(doc or "")
    return doc.splitlines()[0].strip().replace("``", "") if doc else ""


def _format_exc(err: BaseException) -> str:
    return "".join(traceback.format_exception(type(err), err, err.__traceback__))


def _is_initializer_class(obj) -> bool:
    return isinstance(obj, type) and issubclass(obj, _init.Initializer)


class PluginHost:
    """Loads initializer plugins; ``initializers`` maps name → :class:`InitializerInfo`.

    ``plugin_dirs`` are searched after the default folders (the repository's ``plugins/``, the
    user plugin folder, ``PARAMLAB_PLUGIN_PATH``) unless ``default_dirs=False``. With
    ``PARAMLAB_SAFE_MODE=1`` (or ``safe_mode=True``) only the built-ins are loaded.
    """

    def __init__(self, plugin_dirs=(), entry_points=True, default_dirs=True,  # noqa: FBT002
                 safe_mode=None):
        self._extra_dirs = [Path(d).expanduser() for d in plugin_dirs]
        self._use_entry_points = entry_points
        self._use_default_dirs = default_dirs
        if safe_mode is None:
            safe_mode = os.environ.get("PARAMLAB_SAFE_MODE", "").strip() not in ("", "0")
        self.safe_mode = bool(safe_mode)
        self._file_modules: list[str] = []
        self._load()

    # ----------------------------------------------------------------- public
    @property
    def plugin_dirs(self) -> list[Path]:
        """The folders searched, in order (after built-ins and entry points)."""
        if self.safe_mode:
            return []
        dirs = default_plugin_dirs() if self._use_default_dirs else []
        return dirs + self._extra_dirs

    def get(self, name: str) -> InitializerInfo:
        try:
            return self.initializers[name]
        except KeyError:
            close = difflib.get_close_matches(name, list(self.initializers), n=3)
            hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise SettingsError(
                f"No initializer named '{name}'.{hint} Available: "
                f"{', '.join(self.initializers)}.") from None

    def create(self, name: str, **settings):
        """A configured initializer; settings are validated first (type, range, choices)."""
        info = self.get(name)
        values = validate(list(info.settings), settings, f"initializer '{name}'")
        try:
            return info.cls(**values)
        except _PLUGIN_ERRORS as err:  # noqa: BLE001 - a plugin's constructor may raise anything
            raise SettingsError(f"initializer '{name}' rejected its settings {values}: "
                                f"{type(err).__name__}: {err}") from err

    def parse_spec(self, spec: str) -> tuple[str, dict]:
        """``'xavier:magnitude=2,rnd_type=gaussian'`` → ``('xavier', {...})`` with typed values."""
        name, _, rest = spec.partition(":")
        name = name.strip()
        info = self.get(name)
        values = {}
        for part in filter(None, (p.strip() for p in rest.split(","))):
            key, eq, text = part.partition("=")
            key = key.strip()
            if not eq:
                raise SettingsError(f"'{part}' in '{spec}' is not key=value")
            try:
                setting = info.setting(key)
            except KeyError:
                raise SettingsError(
                    f"initializer '{name}' has no setting '{key}' (its settings: "
                    f"{', '.join(s.name for s in info.settings) or 'none'})") from None
            values[key] = parse_value(setting, text)
        validate(list(info.settings), values, f"initializer '{name}'")
        return name, values

    def create_from_spec(self, spec: str):
        name, values = self.parse_spec(spec)
        return self.create(name, **values)

    def reload(self) -> PluginHost:
        """Re-import the plugin folders (and re-run every hook) without restarting."""
        self._load()
        return self

    # ----------------------------------------------------------------- loading
    def _load(self):
        for modname in self._file_modules:
            sys.modules.pop(modname, None)
        self._file_modules = []
        self.pm = pluggy.PluginManager(PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.initializers: dict[str, InitializerInfo] = {}
        self.failures: list[PluginFailure] = []
        from . import builtin
        self._add_plugin(builtin, "builtin", "built-in")
        if self.safe_mode:
            return
        if self._use_entry_points:
            self._load_entry_points()
        seen = set()
        for directory in self.plugin_dirs:
            self._load_dir(directory, seen)

    def _fail(self, plugin, kind, error, tb="", names=()):
        self.failures.append(PluginFailure(str(plugin), kind, error, tb, tuple(names)))

    def _load_entry_points(self):
        try:
            eps = importlib.metadata.entry_points(group=PROJECT)
        except Exception as err:  # noqa: BLE001 - broken metadata on the machine
            self._fail("entry points", "entry point error",
                       f"could not read installed entry points: {err}", _format_exc(err))
            return
        for ep in sorted(eps, key=lambda e: e.name):
            dist = getattr(ep, "dist", None)
            origin = f"distribution {dist.name} {dist.version}" if dist else f"entry point {ep.value}"
            try:
                obj = ep.load()
            except SyntaxError as err:
                self._fail(origin, "syntax error", _syntax_message(err), _format_exc(err))
                continue
            except ImportError as err:
                self._fail(origin, "import error", _import_message(err), _format_exc(err))
                continue
            except _PLUGIN_ERRORS as err:  # noqa: BLE001
                self._fail(origin, "load error",
                           f"loading entry point {ep.name} = {ep.value} raised "
                           f"{type(err).__name__}: {err}. Fix the module, or uninstall the "
                           "distribution.", _format_exc(err))
                continue
            # Two distributions may both call their entry point "plugin": name by both.
            dist_name = dist.name if dist else "?"
            self._add_plugin(obj, f"entrypoint:{dist_name}:{ep.name}", origin)

    def _load_dir(self, directory: Path, seen: set):
        explicit = directory in self._extra_dirs or directory in env_plugin_dirs()
        if not directory.is_dir():
            if explicit:
                self._fail(directory, "missing folder",
                           f"plugin folder {directory} does not exist: create it or fix "
                           "--plugin-dir / PARAMLAB_PLUGIN_PATH.")
            return
        for path in sorted(directory.glob("*.py")):
            if path.name.startswith(("_", ".")):
                continue
            key = path.resolve()
            if key in seen:
                continue
            seen.add(key)
            module = self._import_file(path)
            if module is not None:
                self._add_plugin(module, f"file:{key}", str(path))

    def _import_file(self, path: Path):
        stem = re.sub(r"\W", "_", path.stem)
        digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:10]
        modname = f"{_MODULE_PREFIX}{stem}_{digest}"
        module = types.ModuleType(modname)
        module.__file__ = str(path)
        sys.modules[modname] = module
        try:
            source = path.read_text(encoding="utf-8")
            code = compile(source, str(path), "exec")
            exec(code, module.__dict__)  # noqa: S102 - loading a plugin is running its code
        except SyntaxError as err:
            sys.modules.pop(modname, None)
            self._fail(path, "syntax error", _syntax_message(err), _format_exc(err))
            return None
        except ImportError as err:
            sys.modules.pop(modname, None)
            self._fail(path, "import error", _import_message(err), _format_exc(err))
            return None
        except _PLUGIN_ERRORS as err:  # noqa: BLE001 - any error in a plugin is the plugin's
            sys.modules.pop(modname, None)
            line = _last_line_in(err, str(path))
            where = f" at line {line}" if line else ""
            self._fail(path, "load error",
                       f"running the plugin raised {type(err).__name__}: {err}{where}. Fix the "
                       "file, then reload plugins.", _format_exc(err))
            return None
        self._file_modules.append(modname)
        return module

    def _add_plugin(self, obj, name: str, origin: str):
        self._check_hook_names(obj, origin)
        try:
            self.pm.register(obj, name=name)
        except Exception as err:  # noqa: BLE001 - pluggy validation or duplicate
            self._fail(origin, "invalid hook", f"{err}. Check the hook's signature against "
                       "app/pluginhost/hookspecs.py.", _format_exc(err))
            return
        try:
            self.pm.check_pending()
        except pluggy.PluginValidationError as err:
            self.pm.unregister(obj)
            self._fail(origin, "unknown hook", f"{err}. {_did_you_mean(str(err))}",
                       _format_exc(err))
            return
        impls = [i for i in self.pm.hook.paramlab_register_initializers.get_hookimpls()
                 if i.plugin is obj]
        for impl in impls:
            pending: list[tuple] = []

            def register(cls, name=None, label=None, category=None, settings=None,
                         _pending=pending):
                _pending.append((cls, name, label, category, settings))

            try:
                kwargs = {"register": register} if "register" in impl.argnames else {}
                impl.function(**kwargs)
            except _PLUGIN_ERRORS as err:  # noqa: BLE001
                line = _last_line_in(err, origin)
                where = f" at line {line}" if line else ""
                self._fail(origin, "hook raised",
                           f"paramlab_register_initializers raised {type(err).__name__}: "
                           f"{err}{where}. Nothing this plugin registered is offered; fix "
                           "the hook, then reload plugins.", _format_exc(err))
                continue
            for entry in pending:
                self._register_one(origin, name, *entry)

    def _check_hook_names(self, obj, origin):
        """Report functions that look like hooks but are not (misspelled or unmarked)."""
        if not isinstance(obj, types.ModuleType):
            return
        marker = PROJECT + "_impl"
        for attr, value in vars(obj).items():
            if not attr.startswith(PROJECT + "_") or not callable(value):
                continue
            if hasattr(value, marker):
                continue        # marked: pluggy validates it (check_pending catches a typo)
            if attr in HOOK_NAMES:
                self._fail(origin, "unmarked hook",
                           f"function {attr} is not decorated with @hookimpl, so ParamLab "
                           "never calls it: add `from app.pluginhost import hookimpl` and "
                           "`@hookimpl` above it.")
            elif getattr(value, "__module__", None) == obj.__name__:
                # A function of the plugin in the hooks' namespace that is no hook: a misspelled
                # hook that was not marked either, which pluggy would silently ignore.
                hint = _did_you_mean(f"unknown hook '{attr}'")
                self._fail(origin, "unknown hook",
                           f"function {attr} is not one of ParamLab's hooks, so ParamLab never "
                           f"calls it. {hint}")

    def _register_one(self, origin, plugin, cls, name, label, category, settings):
        if not _is_initializer_class(cls):
            what = cls.__name__ if isinstance(cls, type) else repr(cls)
            self._fail(origin, "not an initializer",
                       f"register() was given {what}, which is not a subclass of "
                       "app.engine.init.Initializer: subclass it and implement "
                       "_init_weight(name, arr).")
            return
        if getattr(cls, "_init_weight", None) is _init.Initializer._init_weight:
            self._fail(origin, "not an initializer",
                       f"register() was given {cls.__name__}, which does not implement "
                       "_init_weight(name, arr): Gluon's initialize only ever calls "
                       "_init_weight (never _init_bias), so implement it to fill arr in place.")
            return
        name = str(name) if name else cls.__name__.lower()
        if not re.fullmatch(r"[A-Za-z_][\w.@-]*", name):
            self._fail(origin, "invalid name",
                       f"initializer name {name!r} must start with a letter and hold only "
                       "letters, digits, '_', '-', '.' or '@'.")
            return
        try:
            found = settings_of(cls)
            if settings:
                by_name = {s.name: s for s in found}
                for key, override in settings.items():
                    if key not in by_name:
                        raise SettingsError(f"settings= names '{key}', which is not a keyword "
                                            f"of {cls.__name__}.__init__")
                    by_name[key] = override
                found = list(by_name.values())
            missing = [s.name for s in found if s.required]
            if missing:
                raise SettingsError(
                    f"setting(s) {', '.join(missing)} of {cls.__name__} have no default: give "
                    "every keyword of __init__ a default value")
            defaults = validate(found, {s.name: s.default for s in found}, cls.__name__)
        except SettingsError as err:
            self._fail(origin, "invalid defaults",
                       f"{cls.__name__}: {err}. Fix __init__'s signature (annotations and "
                       "defaults), then reload plugins.", _format_exc(err),
                       (name,))
            return
        try:
            cls(**defaults)
        except _PLUGIN_ERRORS as err:  # noqa: BLE001
            self._fail(origin, "invalid defaults",
                       f"{cls.__name__}({', '.join(f'{k}={v!r}' for k, v in defaults.items())}) "
                       f"raised {type(err).__name__}: {err}. Its defaults must construct a "
                       "working initializer.", _format_exc(err), (name,))
            return
        key = name
        if key in self.initializers:
            other = self.initializers[key]
            short = _short_plugin_name(origin)
            key = f"{name}@{short}"
            n = 2
            while key in self.initializers:
                key = f"{name}@{short}{n}"
                n += 1
            self._fail(origin, "name clash",
                       f"the name '{name}' is already taken by {other.label} from "
                       f"{other.origin}; this plugin's {cls.__name__} is offered as '{key}'. "
                       "Pass register(cls, name=...) to choose a unique name.", names=(key,))
        self.initializers[key] = InitializerInfo(
            name=key, cls=cls, origin=origin, plugin=plugin,
            label=label or cls.__name__, category=category or "Plugins",
            description=_first_line(cls.__doc__), settings=tuple(found),
            needs_data=bool(getattr(cls, "needs_data", False)),
            has_density=callable(getattr(cls, "density", None)))


def _short_plugin_name(origin: str) -> str:
    if origin.startswith("distribution "):
        return origin.split()[1]
    return Path(origin).stem or origin


def _syntax_message(err: SyntaxError) -> str:
    where = f"line {err.lineno}" if err.lineno else "unknown line"
    text = f": {err.text.strip()}" if err.text else ""
    return f"{err.msg} at {where}{text}. Fix the file, then reload plugins."


def _import_message(err: ImportError) -> str:
    if isinstance(err, ModuleNotFoundError) and err.name:
        top = err.name.split(".")[0]
        if top != err.name and _importable(top):
            # The package is there; the submodule is not (a typo, or an attribute such as
            # app.engine.init imported as if it were a module): pip would not help.
            return (f"it imports '{err.name}', which does not exist although the package "
                    f"'{top}' is installed: check the spelling (an attribute is imported with "
                    f"`from {err.name.rsplit('.', 1)[0]} import {err.name.rsplit('.', 1)[1]}`), "
                    "then reload plugins.")
        return (f"it imports '{err.name}', which is not installed: install it "
                f"(pip install {top}) or remove the import, then reload plugins.")
    return f"{err}. Fix the import, then reload plugins."


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _last_line_in(err: BaseException, filename: str):
    line = None
    for frame in traceback.extract_tb(err.__traceback__):
        if frame.filename == filename:
            line = frame.lineno
    return line


def _did_you_mean(message: str) -> str:
    m = re.search(r"unknown hook '([^']+)'", message)
    name = m.group(1) if m else ""
    close = difflib.get_close_matches(name, HOOK_NAMES, n=1) if name else []
    if close:
        return f"Did you mean {close[0]}? Rename the function, then reload plugins."
    return f"ParamLab's hooks are: {', '.join(HOOK_NAMES)}."
