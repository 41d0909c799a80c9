"""Settings of an initializer, read from its constructor's signature, and their validation.

A setting is a keyword of ``__init__``: its annotation gives the type (``int``, ``float``,
``bool``, ``str``, ``Literal[...]`` for a choice, each optionally wrapped in
``Annotated[T, Range(low, high)]``), its default the value a form starts with. Unannotated
parameters take the type of their default. The same description serves the window's forms, the
command line (``NAME:key=value``) and ``PluginHost.create``.
"""

from __future__ import annotations

import inspect
import numbers
import typing
from dataclasses import dataclass, field

from app.engine.initializer import Range

__all__ = ["Setting", "SettingsError", "REQUIRED", "settings_of", "validate", "parse_value"]


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED = _Required()

_TYPE_NAMES = {int: "int", float: "float", bool: "bool", str: "str"}


class SettingsError(ValueError):
    """A setting has the wrong type, is out of range, is unknown, or is missing."""


@dataclass(frozen=True)
class Setting:
    """One keyword of an initializer's constructor, as a form shows it."""

    name: str
    type: type                      # int, float, bool or str (a choice is a str or int)
    default: object = REQUIRED
    choices: tuple = ()
    range: Range | None = None
    doc: str = ""
    extra: dict = field(default_factory=dict, compare=False)

    @property
    def type_name(self) -> str:
        if self.choices:
            return "choice"
        return _TYPE_NAMES.get(self.type, getattr(self.type, "__name__", str(self.type)))

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    def allowed(self) -> str:
        """What values are allowed, in words (for tooltips and error messages)."""
        if self.choices:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        text = {int: "a whole number", float: "a number", bool: "true or false",
                str: "text"}.get(self.type, self.type_name)
        if self.range is not None:
            text += f" in {self.range.describe()}"
        return text

    def to_json(self) -> dict:
        out = {"name": self.name, "type": self.type_name,
               "default": None if self.required else self.default}
        if self.choices:
            out["choices"] = list(self.choices)
        if self.range is not None:
            out["min"], out["max"] = self.range.low, self.range.high
        return out


def _unwrap(annotation):
    """(base type, choices, range) of an annotation."""
    rng = None
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        args = typing.get_args(annotation)
        annotation = args[0]
        for meta in args[1:]:
            if isinstance(meta, Range):
                rng = meta
        origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        choices = typing.get_args(annotation)
        kinds = {type(c) for c in choices}
        base = kinds.pop() if len(kinds) == 1 else str
        return base, tuple(choices), rng
    if origin is typing.Union:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return _unwrap(args[0])
    return annotation, (), rng


def settings_of(cls) -> list[Setting]:
    """The settings of ``cls.__init__``; raises ``SettingsError`` for a parameter a form cannot
    offer (an unsupported annotation, ``*args``)."""
    init = cls.__init__
    if init is object.__init__:
        return []
    sig = inspect.signature(init)
    try:
        hints = typing.get_type_hints(init, include_extras=True)
    except Exception:  # noqa: BLE001 - unresolvable forward refs: fall back to raw annotations
        hints = {}
    out = []
    for i, (name, p) in enumerate(sig.parameters.items()):
        if i == 0 and name == "self":
            continue
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if p.kind is p.POSITIONAL_ONLY:
            raise SettingsError(
                f"setting '{name}' of {cls.__name__} is positional-only: a form passes settings "
                "by keyword, so remove the '/' from __init__'s signature")
        default = REQUIRED if p.default is p.empty else p.default
        annotation = hints.get(name, p.annotation)
        if annotation is p.empty:
            if default is REQUIRED or default is None:
                raise SettingsError(
                    f"setting '{name}' of {cls.__name__} has neither a type annotation nor a "
                    "default: annotate it (int, float, bool, str or Literal[...])")
            base, choices, rng = type(default), (), None
        else:
            base, choices, rng = _unwrap(annotation)
        if base not in _TYPE_NAMES:
            raise SettingsError(
                f"setting '{name}' of {cls.__name__} has type {annotation!r}, which a form "
                "cannot offer: use int, float, bool, str or Literal[...]")
        if base is float and isinstance(default, numbers.Integral) and \
                not isinstance(default, bool):
            default = float(default)        # `magnitude: float = 3` starts the form at 3.0
        out.append(Setting(name, base, default, choices, rng))
    return out


def _check_one(s: Setting, value, owner: str):
    where = f"setting '{s.name}' of {owner}"
    if s.choices:
        # Same type as well as equal: True == 1 and 2.0 == 2, but neither is the choice 1 or 2.
        for choice in s.choices:
            if isinstance(value, type(choice)) and \
                    isinstance(value, bool) == isinstance(choice, bool) and value == choice:
                return choice
        raise SettingsError(f"{where} must be {s.allowed()}, got {value!r}")
    if s.type is bool:
        if not isinstance(value, bool):
            raise SettingsError(f"{where} must be true or false, got {value!r}")
        return value
    if s.type is int:
        if isinstance(value, numbers.Integral) and not isinstance(value, bool):
            value = int(value)              # NumPy integers too
        elif isinstance(value, numbers.Real) and not isinstance(value, bool) and \
                float(value).is_integer():
            value = int(value)
        else:
            raise SettingsError(f"{where} must be a whole number, got {value!r}")
    elif s.type is float:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise SettingsError(f"{where} must be a number, got {value!r}")
        value = float(value)                # NumPy floats too
        if value != value or value in (float("inf"), float("-inf")):
            raise SettingsError(f"{where} must be a finite number, got {value!r}")
    elif s.type is str:
        if not isinstance(value, str):
            raise SettingsError(f"{where} must be text, got {value!r}")
    if s.range is not None and not s.range.contains(value):
        raise SettingsError(f"{where} must be {s.allowed()}, got {value!r}")
    return value


def validate(settings: list[Setting], values: dict, owner: str) -> dict:
    """Check ``values`` against ``settings``; returns the full keyword dict (defaults filled).

    Raises ``SettingsError`` naming the setting, what is allowed and what was given."""
    known = {s.name: s for s in settings}
    unknown = sorted(set(values) - set(known))
    if unknown:
        valid = ", ".join(known) or "none"
        raise SettingsError(f"{owner} has no setting {', '.join(repr(u) for u in unknown)} "
                            f"(its settings: {valid})")
    out = {}
    for s in settings:
        if s.name in values:
            out[s.name] = _check_one(s, values[s.name], owner)
        elif s.required:
            raise SettingsError(f"setting '{s.name}' of {owner} is required ({s.allowed()})")
        else:
            out[s.name] = s.default
    return out


def parse_value(s: Setting, text: str):
    """Turn command-line or form text into a value of the setting's type (then ``validate``)."""
    text = text.strip()
    if s.choices:
        for c in s.choices:
            if str(c) == text:
                return c
        raise SettingsError(f"setting '{s.name}' must be {s.allowed()}, got {text!r}")
    if s.type is bool:
        low = text.lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise SettingsError(f"setting '{s.name}' must be true or false, got {text!r}")
    if s.type is int:
        try:
            return int(text)
        except ValueError:
            raise SettingsError(f"setting '{s.name}' must be a whole number, got {text!r}") \
                from None
    if s.type is float:
        try:
            return float(text)
        except ValueError:
            raise SettingsError(f"setting '{s.name}' must be a number, got {text!r}") from None
    return text
