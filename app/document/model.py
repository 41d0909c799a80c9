"""The document: what the user edits, validated, with the engine network built from it.

It holds the layer stack (kind and settings of each layer), sharing links (Gluon ``params=``) and
transposed ties, initializer choices (global, per layer, per parameter, by plugin name with
settings), the input specification and seed, and the engine ``net`` and input ``x`` built from
them. Every method validates before it changes anything and raises :class:`DocumentError` with a
message that says what to do; afterwards it emits ``changed(what)`` with ``what`` in
``{'structure', 'params', 'inits', 'input', 'training', 'file', 'selection'}``. It never
imports Qt. Training (data, loss, optimizer, runs) is described in :mod:`app.document.training`.

Undo is by memento: :meth:`capture` copies the whole state (structure, every parameter's
snapshot, the random stream, the input) and :meth:`restore` puts one back, so every gesture —
structure edits, initialization, a forward that resolves deferred shapes, set_data — undoes the
same way.
"""

from __future__ import annotations

import copy
import itertools
import logging
import time
import traceback
import warnings
import weakref
from dataclasses import dataclass, field

import numpy as np

from app.engine import autograd, nd
from app.engine import init as _init
from app.engine import random as _rng
from app.engine.gluon import nn
from app.engine.gluon.parameter import initialize_group
from app.pluginhost.settings import SettingsError

from . import layers as L
from .replay import Replay
from .signals import Signal
from .snapshots import SnapshotHistory

__all__ = ["Document", "DocumentError", "LayerSpec", "Link", "InitChoice", "InputSpec",
           "LogEntry", "ParamRow", "DocState", "MemoryLimitError", "NET_PREFIX"]

logging.getLogger("paramlab").addHandler(logging.NullHandler())

NET_PREFIX = "sequential0_"
FORMAT_VERSION = 1
DISTRIBUTIONS = ("uniform", "normal", "constant", "integers")


class DocumentError(ValueError):
    """An edit the document refused; nothing was changed. The message says why and what to do."""


class MemoryLimitError(DocumentError):
    """An edit would allocate more than the memory limit; retry with ``confirm_large=True``."""

    def __init__(self, message, nbytes):
        super().__init__(message)
        self.nbytes = nbytes


@dataclass
class InitChoice:
    """An initializer picked by (plugin) name, with its settings."""

    name: str
    settings: dict = field(default_factory=dict)

    def to_json(self):
        return {"name": self.name, "settings": dict(self.settings)}

    @classmethod
    def from_json(cls, d):
        if d is None:
            return None
        if not isinstance(d, dict) or not isinstance(d.get("name"), str):
            raise DocumentError(f"an initializer choice must be {{'name': ..., 'settings': "
                                f"{{...}}}}, got {d!r}")
        settings = d.get("settings", {})
        if not isinstance(settings, dict):
            raise DocumentError(f"settings of initializer {d['name']!r} must be a mapping")
        return cls(d["name"], dict(settings))

    def describe(self) -> str:
        if not self.settings:
            return self.name
        return f"{self.name}(" + ", ".join(f"{k}={v!r}" for k, v in self.settings.items()) + ")"


@dataclass
class LayerSpec:
    uid: str
    kind: str
    settings: dict
    init: InitChoice | None = None                          # default for this layer's params
    param_inits: dict = field(default_factory=dict)         # role → InitChoice (explicit)

    def label(self) -> str:
        return L.kind(self.kind).label(self.settings)

    def to_json(self):
        return {"uid": self.uid, "kind": self.kind, "settings": dict(self.settings),
                "init": None if self.init is None else self.init.to_json(),
                "param_inits": {r: c.to_json() for r, c in self.param_inits.items()}}


@dataclass
class Link:
    """``src`` uses ``dst``'s parameters: ``'share'`` (Gluon ``params=``) or ``'tie'`` (src, a
    Dense, applies dst's weight transposed)."""

    src: str
    dst: str
    kind: str = "share"

    def to_json(self):
        return {"src": self.src, "dst": self.dst, "kind": self.kind}


@dataclass
class InputSpec:
    shape: tuple = (3, 5)
    distribution: str = "uniform"       # uniform | normal | constant | integers
    low: float = 0.0
    high: float = 1.0
    mean: float = 0.0
    std: float = 1.0
    value: float = 1.0
    seed: int = 0

    def to_json(self):
        d = dict(self.__dict__)
        d["shape"] = list(self.shape)
        return d

    @classmethod
    def from_json(cls, d):
        if not isinstance(d, dict):
            raise DocumentError("the input specification must be a mapping")
        spec = cls()
        return spec.updated(**d)

    def updated(self, **changes) -> InputSpec:
        new = copy.copy(self)
        for k, v in changes.items():
            if k not in self.__dict__:
                raise DocumentError(f"the input has no setting {k!r} (its settings: "
                                    f"{', '.join(self.__dict__)})")
            setattr(new, k, v)
        new._validate()
        return new

    def _validate(self):
        try:
            shape = tuple(int(d) for d in self.shape)
        except (TypeError, ValueError):
            raise DocumentError(f"input shape must be whole numbers, got {self.shape!r}") \
                from None
        if not shape or any(d < 1 for d in shape):
            raise DocumentError(f"input shape must have at least one dimension and only sizes "
                                f"≥ 1, got {shape}")
        self.shape = shape
        if self.distribution not in DISTRIBUTIONS:
            raise DocumentError(f"input distribution must be one of {', '.join(DISTRIBUTIONS)}, "
                                f"got {self.distribution!r}")
        for k in ("low", "high", "mean", "std", "value"):
            v = getattr(self, k)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v):
                raise DocumentError(f"input {k} must be a finite number, got {v!r}")
            setattr(self, k, float(v))
        if self.distribution in ("uniform", "integers") and not self.high > self.low:
            raise DocumentError(f"input high ({self.high}) must be greater than low "
                                f"({self.low})")
        if self.std < 0:
            raise DocumentError(f"input std must be ≥ 0, got {self.std}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise DocumentError(f"seed must be a whole number ≥ 0, got {self.seed!r}")


@dataclass
class LogEntry:
    time: float
    level: str          # "info" | "warning" | "error"
    message: str
    details: str = ""   # a traceback, when there is one


@dataclass
class ParamRow:
    """One line of the Parameters view."""

    name: str
    shape: tuple
    dtype: str
    state: str                  # initialized | deferred | uninitialized
    init: str                   # the effective initializer, described
    init_source: str            # "parameter", "layer default", "layer", "global", "missing"
    owner: str                  # uid of the layer that owns it
    role: str                   # weight, bias, gamma, ...
    used_by: tuple              # uids of every layer that uses it
    missing: str = ""           # why the chosen initializer cannot be used (plugin missing)


@dataclass(frozen=True)
class TrainerState:
    """The optimizer's state in an undo capture, by parameter name (never written to)."""

    names: tuple
    states: dict                # parameter name → optimizer state (arrays)
    counts: dict                # parameter name → updates applied
    num_update: int
    trainer: object             # weakref to the Trainer it came from


@dataclass
class DocState:
    spec: dict
    params: dict                # name → ParamSnapshot
    rng: object
    x: np.ndarray | None
    output: np.ndarray | None
    target: np.ndarray | None = None    # a target loaded from a file (read-only, shared)
    trainer: object = None              # the optimizer's state (momentum...), see _trainer_state

    @property
    def nbytes(self) -> int:
        n = sum(s.nbytes for s in self.params.values())
        return n + sum(a.nbytes for a in (self.x, self.output, self.target) if a is not None)


class Document:
    """See the module docstring. ``host`` resolves initializer names (a PluginHost)."""

    def __init__(self, host=None, memory_limit: int = 2 << 30, snapshot_budget: int = 1 << 30):
        self.host = host
        self.memory_limit = memory_limit
        self.history = SnapshotHistory(snapshot_budget)
        self.train_config = _training().TrainingConfig()
        self._target_data = None           # a target loaded from a file (read-only array)
        self._target_cache = None          # (key, array) of the generated target
        self.last_loss = None              # the loss of the last backward or training step
        self._trainer = None
        self._trainer_copy = None          # (key, state): see _trainer_state
        self._contributions: dict = {}
        self.replay = Replay()             # can Export as Python rebuild the values? (replay.py)
        self.changed = Signal()
        self.logged = Signal()
        self.changed.on_error = self._view_error
        self.logged.on_error = lambda err: None
        self.log_entries: list[LogEntry] = []
        self.path = None
        self.dirty = False
        self._uids = itertools.count(1)
        self.layers: list[LayerSpec] = []
        self.links: list[Link] = []
        self.global_init = InitChoice("uniform", {"scale": 0.07})
        self.input = InputSpec()
        self.net = None
        self.x = None
        self.output = None
        self._param_keys: dict = {}        # param name → (owner uid, role)
        self._param_users: dict = {}       # param name → [uids]
        self._rebuild(reseed=True)

    # ================================================================= queries
    def layer(self, uid: str) -> LayerSpec:
        for spec in self.layers:
            if spec.uid == uid:
                return spec
        raise DocumentError(f"no layer {uid!r} in the stack")

    def index(self, uid: str) -> int:
        for i, spec in enumerate(self.layers):
            if spec.uid == uid:
                return i
        raise DocumentError(f"no layer {uid!r} in the stack")

    def link_of(self, uid: str) -> Link | None:
        for link in self.links:
            if link.src == uid:
                return link
        return None

    def block(self, uid: str):
        """The engine block built for layer ``uid``."""
        return self.net[self.index(uid)]

    def params(self):
        """``net.collect_params()``: every parameter once, Gluon's order."""
        return self.net.collect_params()

    def param_key(self, name: str):
        """(owner uid, role) of the parameter called ``name``."""
        return self._param_keys[name]

    def layer_title(self, uid: str) -> str:
        i = self.index(uid)
        return f"{i}: {self.layers[i].label()}"

    def shapes(self):
        """Per layer ``(in_shape, out_shape, problem)`` from the input shape (``None`` dims are
        unknown); ``problem`` is a message when the layer cannot take its input."""
        return self._infer(self.layers, self.links, self.input.shape)

    @staticmethod
    def _infer(layers, links, in_shape):
        out = []
        shape = tuple(in_shape)
        for spec in layers:
            k = L.kind(spec.kind)
            problem = ""
            try:
                params = k.param_shapes(spec.settings, shape)
                if spec.kind == "Dense":
                    d = L._in_dim(spec.settings, shape)
                    if spec.settings["in_units"] and d is not None and \
                            d != spec.settings["in_units"]:
                        problem = (f"in_units is {spec.settings['in_units']} but the input has "
                                   f"{d} features")
                del params
                nxt = k.out_shape(spec.settings, shape)
            except L.ShapeError as err:
                problem = str(err)
                nxt = None
            out.append((shape, nxt, problem))
            shape = nxt
        return out

    def param_shapes(self):
        """(uid, role) → inferred shape for every parameter a layer owns (not links)."""
        res = {}
        for spec, (in_shape, _out, _p) in zip(self.layers, self.shapes()):
            try:
                ps = L.kind(spec.kind).param_shapes(spec.settings, in_shape)
            except L.ShapeError:
                continue
            for role, shape in ps.items():
                res[(spec.uid, role)] = shape
        return res

    def estimate_bytes(self, layers=None, links=None) -> int:
        """Bytes the parameters (values and gradients) of a stack would take."""
        layers = self.layers if layers is None else layers
        links = self.links if links is None else links
        linked = {ln.src: ln for ln in links}
        total = 0
        for spec, (in_shape, _o, _p) in zip(layers, self._infer(layers, links,
                                                                 self.input.shape)):
            try:
                ps = L.kind(spec.kind).param_shapes(spec.settings, in_shape)
            except L.ShapeError:
                continue
            ln = linked.get(spec.uid)
            for role, shape in ps.items():
                if ln is not None and (ln.kind == "share" or role == "weight"):
                    continue
                total += L.prod([d or 1 for d in shape]) * 4 * 2
        return total

    def effective_init(self, name: str):
        """(description, source, missing-reason) of the initializer that will fill ``name``."""
        uid, role = self._param_keys[name]
        spec = self.layer(uid)
        p = self.params()[name]
        explicit = spec.param_inits.get(role)
        if explicit is not None:
            return explicit.describe(), "parameter", self.missing_reason(explicit)
        if p.init is not None:
            desc = p.init if isinstance(p.init, str) else type(p.init).__name__.lower()
            return f"{desc}", "layer default", ""
        if spec.init is not None:
            return spec.init.describe(), "layer", self.missing_reason(spec.init)
        return self.global_init.describe(), "global", self.missing_reason(self.global_init)

    def initializer_for(self, name: str):
        """The initializer object that fills parameter ``name`` under the current choices
        (None when its choice cannot be created, e.g. a missing plugin)."""
        uid, role = self._param_keys[name]
        spec = self.layer(uid)
        p = self.params()[name]
        try:
            explicit = spec.param_inits.get(role)
            if explicit is not None:
                return self._make(explicit)
            if p.init is not None:
                return _init.create(p.init)
            if spec.init is not None:
                return self._make(spec.init)
            return self._make(self.global_init)
        except (DocumentError, AssertionError, TypeError, ValueError):
            return None

    def param_rows(self) -> list[ParamRow]:
        rows = []
        for name, p in self.params().items():
            uid, role = self._param_keys[name]
            init, source, missing = self.effective_init(name)
            rows.append(ParamRow(name, p.shape, np.dtype(p.dtype).name, p.state, init,
                                 source if not missing else "missing", uid, role,
                                 tuple(self._param_users.get(name, (uid,))), missing))
        return rows

    def missing_reason(self, choice: InitChoice | None) -> str:
        if choice is None or self.host is None:
            return ""
        if choice.name not in self.host.initializers:
            return (f"initializer '{choice.name}' is not available: its plugin is missing or "
                    "failed to load (see the Plugins dialog). Choose another initializer or "
                    "install the plugin, then reload plugins.")
        try:
            info = self.host.initializers[choice.name]
            from app.pluginhost.settings import validate
            validate(list(info.settings), choice.settings, f"initializer '{choice.name}'")
        except SettingsError as err:
            return str(err)
        return ""

    # ================================================================= structure edits
    def new_uid(self) -> str:
        while True:
            uid = f"L{next(self._uids)}"
            if all(s.uid != uid for s in self.layers):
                return uid

    def add_layer(self, kind: str, settings: dict | None = None, index: int | None = None,
                  confirm_large: bool = False) -> str:  # noqa: FBT001
        """Insert a layer (at the end by default); returns its uid."""
        try:
            k = L.kind(kind)
        except SettingsError as err:
            raise DocumentError(str(err)) from None
        values = self._validated(k, {**k.defaults(), **(settings or {})})
        spec = LayerSpec(self.new_uid(), kind, values)
        layers = list(self.layers)
        index = len(layers) if index is None else max(0, min(int(index), len(layers)))
        layers.insert(index, spec)
        self._apply_structure(layers, self.links, confirm_large, f"added {spec.label()}")
        return spec.uid

    def remove_layer(self, uid: str) -> None:
        spec = self.layer(uid)
        dependants = [ln.src for ln in self.links if ln.dst == uid]
        links = [ln for ln in self.links if ln.src != uid and ln.dst != uid]
        layers = [s for s in self.layers if s.uid != uid]
        self._apply_structure(layers, links, True, f"removed {spec.label()}")
        if dependants:
            self.info(f"{len(dependants)} layer(s) that shared the parameters of "
                      f"{spec.label()} now have their own.")

    def duplicate_layer(self, uid: str, confirm_large: bool = False) -> str:  # noqa: FBT001
        spec = self.layer(uid)
        new = LayerSpec(self.new_uid(), spec.kind, dict(spec.settings),
                        copy.deepcopy(spec.init), copy.deepcopy(spec.param_inits))
        layers = list(self.layers)
        layers.insert(self.index(uid) + 1, new)
        self._apply_structure(layers, self.links, confirm_large, f"duplicated {spec.label()}")
        return new.uid

    def move_layer(self, uid: str, new_index: int) -> None:
        i = self.index(uid)
        new_index = max(0, min(int(new_index), len(self.layers) - 1))
        if new_index == i:
            return
        layers = list(self.layers)
        layers.insert(new_index, layers.pop(i))
        self._apply_structure(layers, self.links, True, None)

    def update_layer(self, uid: str, confirm_large: bool = False, **settings) -> None:  # noqa: FBT001
        spec = self.layer(uid)
        k = L.kind(spec.kind)
        values = self._validated(k, {**spec.settings, **settings})
        if values == spec.settings:
            return
        new = LayerSpec(uid, spec.kind, values, spec.init, spec.param_inits)
        layers = [new if s.uid == uid else s for s in self.layers]
        self._apply_structure(layers, self.links, confirm_large, None)

    def link(self, src: str, dst: str, kind: str = "share") -> None:
        """Make layer ``src`` use layer ``dst``'s parameters (``'share'``) or apply ``dst``'s
        weight transposed (``'tie'``). Refused, with Gluon's reason, when shapes cannot agree."""
        if kind not in ("share", "tie"):
            raise DocumentError(f"link kind must be 'share' or 'tie', got {kind!r}")
        if src == dst:
            raise DocumentError("a layer cannot share parameters with itself")
        a, b = self.layer(src), self.layer(dst)
        links = [ln for ln in self.links if ln.src != src] + [Link(src, dst, kind)]
        self._check_links(self.layers, links, self.input.shape)
        self._apply_structure(self.layers, links, True,
                              f"{a.label()} now {'shares' if kind == 'share' else 'ties to'} "
                              f"the parameters of {b.label()}")

    def unlink(self, src: str) -> None:
        if self.link_of(src) is None:
            raise DocumentError(f"layer {self.layer_title(src)} is not linked")
        links = [ln for ln in self.links if ln.src != src]
        self._apply_structure(self.layers, links, True, None)

    def _validated(self, k, values):
        try:
            return k.validate(values)
        except SettingsError as err:
            raise DocumentError(str(err)) from None

    def _check_links(self, layers, links, in_shape):
        index = {s.uid: i for i, s in enumerate(layers)}
        by_uid = {s.uid: s for s in layers}
        seen = set()
        shapes = self._infer(layers, links, in_shape)
        names = _predict_names(layers, links)
        for ln in links:
            if ln.src in seen:
                raise DocumentError(f"layer {ln.src} has two links; unlink one first")
            seen.add(ln.src)
            if ln.src not in by_uid or ln.dst not in by_uid:
                raise DocumentError(f"link {ln.src} → {ln.dst} names a layer that is not in "
                                    "the stack")
            a, b = by_uid[ln.src], by_uid[ln.dst]
            if index[ln.dst] > index[ln.src]:
                raise DocumentError(
                    f"{a.label()} (layer {index[ln.src]}) can only use the parameters of a layer "
                    f"above it; {b.label()} is layer {index[ln.dst]}. Move it up, or link the "
                    "other way round.")
            if any(other.src == ln.dst for other in links):
                raise DocumentError(f"{b.label()} itself uses another layer's parameters: link "
                                    f"to the layer that owns them instead")
            ka, kb = L.kind(a.kind), L.kind(b.kind)
            if ln.kind == "share":
                if a.kind != b.kind or not ka.shareable:
                    raise DocumentError(
                        f"{a.label()} cannot share the parameters of {b.label()}: sharing "
                        "needs two layers of the same kind (Dense, BatchNorm, LayerNorm or "
                        "Embedding)")
                pa = ka.param_shapes(a.settings, shapes[index[ln.src]][0])
                pb = kb.param_shapes(b.settings, shapes[index[ln.dst]][0])
                for role in list(pa) + [r for r in pb if r not in pa]:
                    if role not in pa or role not in pb:
                        raise DocumentError(
                            f"{a.label()} cannot share the parameters of {b.label()}: only one "
                            f"of them has a {role} (use_bias differs)")
                    if not _agree(pa[role], pb[role]):
                        raise DocumentError(
                            f"Cannot retrieve Parameter '{names.get((ln.dst, role), role)}' "
                            "because desired attribute does not match with stored for attribute "
                            f"'shape': desired '{_shape_str(pa[role])}' vs stored "
                            f"'{_shape_str(pb[role])}'.")
            else:
                if a.kind != "Dense" or b.kind != "Dense":
                    raise DocumentError("a transposed tie links two Dense layers: the decoder "
                                        "applies the encoder's weight transposed")
                wb = kb.param_shapes(b.settings, shapes[index[ln.dst]][0])["weight"]
                want = (L._in_dim(a.settings, shapes[index[ln.src]][0]) or
                        a.settings["in_units"] or None, a.settings["units"])
                if not _agree(want, wb):
                    raise DocumentError(
                        f"{a.label()} cannot apply the weight of {b.label()} transposed: that "
                        f"weight is {_shape_str(wb)}, so the tied layer needs {wb[0]} inputs "
                        f"and {wb[1]} units, but it has {_shape_str(want)} "
                        f"(inputs, units). Expected shape {_shape_str(want)} is incompatible "
                        f"with given shape {_shape_str(wb)}.")

    def _apply_structure(self, layers, links, confirm_large, message):
        """Validate a new stack and links, then rebuild the network keeping the values of every
        parameter whose owner and shape are unchanged."""
        # Links that a move or an edit made impossible are refused, not silently dropped.
        self._check_links(layers, links, self.input.shape)
        nbytes = self.estimate_bytes(layers, links)
        if nbytes > self.memory_limit and not confirm_large:
            raise MemoryLimitError(
                f"these layers need about {nbytes / 2**20:.0f} MiB for parameters and "
                f"gradients, over the limit of {self.memory_limit / 2**20:.0f} MiB. Confirm to "
                "allocate anyway, or make the layers smaller.", nbytes)
        old_layers, old_links = self.layers, self.links
        had_values = self._any_values()
        keep = self._values_by_key()
        self.layers, self.links = list(layers), list(links)
        try:
            self._rebuild(reseed=False)
        except Exception as err:
            self.layers, self.links = old_layers, old_links
            self._rebuild(reseed=False)
            self._restore_by_key(keep)
            raise DocumentError(f"the network cannot be built: {err}") from err
        lost = self._restore_by_key(keep)
        if had_values:
            self.replay = self.replay.off("the layers changed after the parameters were "
                                          "initialized")
        if lost:
            self.info("reset (their shapes changed; initialize again): " + ", ".join(lost))
        self._touch("structure")
        if message:
            self.info(message)

    # ================================================================= initializers
    def set_global_init(self, name: str, settings: dict | None = None) -> None:
        self.global_init = self._choice(name, settings)
        self._touch("inits")

    def set_layer_init(self, uid: str, name: str | None, settings: dict | None = None) -> None:
        spec = self.layer(uid)
        spec.init = None if name is None else self._choice(name, settings)
        self._touch("inits")

    def set_param_init(self, uid: str, role: str, name: str | None,
                       settings: dict | None = None) -> None:
        spec = self.layer(uid)
        roles = {r for (u, r) in self._param_keys.values() if u == uid}
        if role not in roles:
            raise DocumentError(f"layer {self.layer_title(uid)} owns no parameter {role!r} "
                                f"(it owns: {', '.join(sorted(roles)) or 'none'})")
        if name is None:
            spec.param_inits.pop(role, None)
        else:
            spec.param_inits[role] = self._choice(name, settings)
        self._touch("inits")

    def _choice(self, name, settings):
        settings = dict(settings or {})
        if self.host is not None:
            try:
                info = self.host.get(name)
                from app.pluginhost.settings import validate
                validate(list(info.settings), settings, f"initializer '{name}'")
            except SettingsError as err:
                raise DocumentError(str(err)) from None
        return InitChoice(name, settings)

    def _make(self, choice: InitChoice):
        if self.host is not None:
            reason = self.missing_reason(choice)
            if reason:
                raise DocumentError(reason)
            try:
                return self.host.create(choice.name, **choice.settings)
            except SettingsError as err:
                raise DocumentError(str(err)) from None
        try:
            return _init.create(choice.name, **choice.settings)
        except (AssertionError, TypeError, ValueError) as err:
            raise DocumentError(f"cannot create initializer {choice.describe()}: {err}") \
                from None

    # ================================================================= operations
    def initialize(self, force_reinit: bool = False, only=None) -> None:  # noqa: FBT001
        """``net.initialize`` with the document's choices; all or nothing.

        Each parameter gets, by precedence: its explicit choice, its layer's default (e.g. a
        bias's 'zeros'), its layer's choice, the global choice. A data-dependent global
        initializer (LSUV) runs on the current input."""
        global_obj = self._make(self.global_init)
        layer_objs = {s.uid: self._make(s.init) for s in self.layers if s.init is not None}
        items = []
        for name, p in self.params().items():
            if only is not None and name not in only:
                continue
            uid, role = self._param_keys[name]
            spec = self.layer(uid)
            explicit = spec.param_inits.get(role)
            exp_obj = None if explicit is None else self._make(explicit)
            default = layer_objs.get(uid, global_obj)
            for obj in (exp_obj, default):
                if obj is not None and getattr(obj, "needs_data", False) and obj is not global_obj:
                    raise DocumentError(
                        f"{type(obj).__name__} needs a data batch and calibrates the whole "
                        "network: choose it as the global initializer, not per layer.")
            items.append((p, exp_obj, default))
        redraw = force_reinit or any(p.state == "uninitialized" for p, _e, _d in items)
        with self._engine("initialize"):
            if getattr(global_obj, "needs_data", False) and only is None:
                if any(spec.param_inits or spec.init for spec in self.layers):
                    self.warning("per-layer and per-parameter choices are ignored while a "
                                 "data-dependent global initializer calibrates the network")
                _init.initialize_with_data(self.net, global_obj, self.x,
                                           force_reinit=force_reinit)
            else:
                initialize_group(items, force_reinit=force_reinit)
        self._trainer = None
        self.replay = self.replay.initialized(only is not None, redraw)
        self.record_snapshot("force re-initialize" if force_reinit else "initialize")
        self._touch("params")
        states = [p.state for p in self.params().values()]
        self.info(f"initialized{' (forced)' if force_reinit else ''}: "
                  f"{states.count('initialized')} parameter(s) materialized, "
                  f"{states.count('deferred')} deferred until the first forward")

    def forward(self):
        """Run ``net(x)``: the first forward resolves deferred shapes and initializes them."""
        deferred = [n for n, p in self.params().items() if p.state == "deferred"]
        with self._engine("forward"):
            with autograd.predict_mode():
                out = self.net(self.x)
        self.output = out.asnumpy()
        resolved = [n for n in deferred if self.params()[n].state == "initialized"]
        self.replay = self.replay.forwarded(bool(resolved))
        self.record_snapshot("forward: deferred shapes resolved" if resolved else "forward")
        self._touch("params")
        self.info(f"forward: input {L.format_shape(self.x.shape)} → output "
                  f"{L.format_shape(out.shape)}")
        return out

    def set_param_data(self, name: str, data) -> None:
        """``params[name].set_data(data)`` with shape and finiteness checked first."""
        p = self.params()[name]
        arr = np.asarray(data._data if hasattr(data, "_data") else data)
        if p.shape is not None and (len(arr.shape) != len(p.shape) or any(
                s not in (0, d) for s, d in zip(p.shape, arr.shape))):
            raise DocumentError(f"Expected shape {tuple(arr.shape)} is incompatible with given "
                                f"shape {p.shape}: parameter '{name}' cannot take it.")
        if arr.dtype.kind not in "fiu" or not np.isfinite(arr).all():
            raise DocumentError(f"values for '{name}' must be finite numbers")
        if p.state == "uninitialized":
            raise DocumentError(f"Parameter '{name}' has not been initialized: initialize "
                                "first, then set its values")
        with self._engine("set_data"):
            p.set_data(nd.array(arr, dtype=np.dtype(p.dtype)))
        self.replay = self.replay.off(f"{name} was set by hand (set_data)")
        self.record_snapshot(f"set_data {name}")
        self._touch("params")
        self.info(f"set_data on {name}")

    def set_input(self, **changes) -> None:
        """Change the input specification (shape, distribution, seed...); redraws ``x``."""
        new = self.input.updated(**changes)
        self._check_links(self.layers, self.links, new.shape)
        self.input = new
        if self.train_config.input_file:        # back to a generated input
            self.train_config = self.train_config.updated(input_file="")
        self._make_input(reseed=True)
        self._touch("input")

    def backward(self):
        """Record a forward of ``x`` and back-propagate from the configured loss: by default the
        raw output (the chapter's ``y.backward()``: a head gradient of ones), else the loss
        against the target (``loss.backward()``). Shared parameters get the sum of their uses'
        gradients; each use's contribution is kept for the panels."""
        loss_fn, target = self._loss_and_target()
        draws, interleaved = self.draws_while_training(), self.deferred_with_dropout()
        with self._engine("backward"):
            with autograd.record_contributions() as rc:
                with autograd.record():
                    y = self.net(self.x)
                    if target is not None:
                        _training().check_target(self.train_config.loss, target, y.shape)
                    loss = y if loss_fn is None else loss_fn(y, nd.array(target))
                loss.backward()
        self.output = y.asnumpy()
        self.last_loss = float(loss._data.sum(dtype=np.float64) if loss_fn is None else
                               loss._data.mean(dtype=np.float64))
        by_array = rc.by_array
        self._contributions = {name: by_array[p._data] for name, p in self.params().items()
                               if p._data is not None and p._data in by_array}
        self.replay = self.replay.backward(draws, interleaved)
        self.record_snapshot("backward")
        self._touch("params")
        what = "sum(output)" if loss_fn is None else \
            f"the {self.train_config.loss} loss (mean {self.last_loss:.4g})"
        self.info(f"backward: gradients of {what} computed"
                  + (f"; {len(self._contributions)} shared parameter(s) summed over their uses"
                     if self._contributions else ""))
        return y

    def trainer(self):
        """The Trainer for Step and Train (created on first use; reset when parameters are
        replaced or the optimizer settings change)."""
        if self._trainer is None:
            with self._engine("trainer"):
                self._make_trainer()
        return self._trainer

    def _make_trainer(self):
        """The Trainer, created without logging (a training run may be on a worker thread)."""
        if self._trainer is None:
            from app.engine import gluon
            cfg = self.train_config
            opts = _training().trainer_kwargs(cfg.optimizer, cfg.optimizer_settings)
            try:
                self._trainer = gluon.Trainer(self.params(), cfg.optimizer, opts)
            except (ValueError, RuntimeError, AssertionError, TypeError) as err:
                raise DocumentError(f"the trainer cannot be created: {err}") from err
        return self._trainer

    def step(self, batch_size: int | None = None):
        """One optimizer step with the current gradients (``trainer.step(batch_size)``, batch size
        defaulting to the configured one, 0 meaning the input's first dimension)."""
        bs = batch_size or self.train_config.batch_size or int(self.x.shape[0])
        trainer = self.trainer()
        with self._engine("step"):
            trainer.step(bs)
        configured = self.train_config.batch_size or int(self.x.shape[0])
        self.replay = self.replay.stepped(bs == configured)
        self.record_snapshot("step")
        self._touch("params")
        self.info(f"step: {self.train_config.optimizer}, learning rate "
                  f"{trainer.learning_rate:g}, batch size {bs}")

    def preview_step(self, batch_size: int | None = None) -> dict:
        """What one step would change, without changing anything: name → (before, after)."""
        state = self.capture()
        trainer_state = self._trainer_state()
        before = {n: p.data().asnumpy() for n, p in self.params().items()
                  if p.state == "initialized"}
        history_len = len(self.history.snapshots)
        try:
            bs = batch_size or self.train_config.batch_size or int(self.x.shape[0])
            with self._engine("step preview"):
                self.trainer().step(bs)
            after = {n: p.data().asnumpy() for n, p in self.params().items() if n in before}
        finally:
            self._restore_quiet(state)
            self._set_trainer_state(trainer_state)
            del self.history.snapshots[history_len:]
        return {n: (before[n], after[n]) for n in before}

    def _trainer_state(self):
        """A copy of the optimizer's state by parameter name (None without a trainer). While
        the trainer has not stepped since the last copy, that copy is returned again (it is
        never written to: installing copies it): every gesture captures, and Adam's state is
        twice the parameters. The trainer itself is only weakly referenced, so captures do
        not keep an old network's parameters alive."""
        t = self._trainer
        if t is None:
            self._trainer_copy = None
            return None
        counts = t.optimizer._index_update_count
        key = (id(t), id(t._states), len(t._states), t.optimizer.num_update,
               sum(counts.values()))
        cached = self._trainer_copy
        if cached is not None and cached[0] == key and cached[1].trainer() is t:
            return cached[1]
        names = tuple(p.name for p in t._params)
        saved = TrainerState(names, {names[i]: copy.deepcopy(st) for i, st in t._states.items()},
                             {names[i]: c for i, c in counts.items()},
                             t.optimizer.num_update, weakref.ref(t))
        self._trainer_copy = (key, saved)
        return saved

    def _set_trainer_state(self, saved) -> None:
        """Put back a :meth:`_trainer_state` (a copy of it): into the same trainer when it
        still serves the current parameters, else into a new one, parameter by name."""
        self._trainer_copy = None
        if saved is None:
            self._trainer = None
            return
        t = saved.trainer()
        current = list(self.params().values())
        if t is None or len(t._params) != len(current) or \
                any(a is not b for a, b in zip(t._params, current)):
            self._trainer = None
            try:
                t = self._make_trainer()
            except DocumentError:
                self._trainer = None
                return
        self._trainer = t
        index = {p.name: i for i, p in enumerate(t._params)}
        t._states = {index[n]: copy.deepcopy(st) for n, st in saved.states.items()
                     if n in index}
        t.optimizer._index_update_count = {index[n]: c for n, c in saved.counts.items()
                                           if n in index}
        t.optimizer.num_update = saved.num_update

    def _restore_quiet(self, state):
        """Put back ``state``'s parameters and random stream (nothing logged or emitted)."""
        params = self.params()
        for name, p in params.items():
            snap = state.params.get(name)
            if snap is not None:
                p.restore(snap)
        _rng.setstate(state.rng)

    def draws_while_training(self) -> bool:
        """Whether a recorded forward draws random numbers: a Dropout that drops, or a
        deferred parameter that the forward initializes."""
        if any(s.kind == "Dropout" and s.settings.get("rate", 0) > 0 for s in self.layers):
            return True
        return any(p.state == "deferred" for p in self.params().values())

    def deferred_with_dropout(self) -> bool:
        """Whether a recorded forward would initialize deferred parameters between Dropout
        draws (the exported script initializes them in a Forward first)."""
        return any(s.kind == "Dropout" and s.settings.get("rate", 0) > 0 for s in self.layers) \
            and any(p.state == "deferred" for p in self.params().values())

    @property
    def replay_steps(self) -> int | None:
        """Training steps the current parameters are from since Initialize, when the exported
        script (Initialize, Forward, that many steps) reproduces them bit for bit; else None
        (:attr:`replay_note` says why)."""
        return self.replay.steps_or_none

    @property
    def replay_note(self) -> str:
        """Why the exported script would not reproduce the current values ('' when it does)."""
        return self.replay.why_not()

    def record_snapshot(self, label: str):
        """Add a labelled snapshot of every parameter to the timeline."""
        users = {n: tuple(u) for n, u in self._param_users.items()}
        contrib = {n: c for n, c in self._contributions.items()} if label == "backward" else {}
        return self.history.record(label, self.params(), users=users, contributions=contrib)

    # ================================================================= training
    @property
    def training(self) -> dict:
        """The optimizer settings as one flat, read-only dict: optimizer, learning_rate, every
        other setting that differs from its default, batch_size. Change them with
        :meth:`set_optimizer` / :meth:`set_training`."""
        cfg = self.train_config
        defaults = _training().optimizer_defaults(cfg.optimizer)
        out = {"optimizer": cfg.optimizer,
               "learning_rate": cfg.optimizer_settings["learning_rate"]}
        out.update({k: v for k, v in cfg.optimizer_settings.items()
                    if k != "learning_rate" and v != defaults.get(k)})
        out["batch_size"] = cfg.batch_size
        return out

    def set_training(self, **changes) -> None:
        """Change the training configuration, all at once and validated as a whole (keys:
        loss, optimizer, optimizer_settings, batch_size, snapshot_every, target — see
        :meth:`app.document.training.TrainingConfig.updated`); the loss and its target are
        checked against the network's output shape. Emits ``changed('training')``."""
        new = self.train_config.updated(**changes)
        self._check_config(new)
        if new == self.train_config:
            return                          # nothing changed: no signal, no log
        self._apply_config(new)
        self.info(f"training: loss {new.loss}, {new.describe()}, batch size "
                  f"{new.batch_size or 'of the input'}")

    def set_loss(self, name: str) -> None:
        """'raw' (the chapter's ``y.backward()``), 'l2', 'l1', 'softmax_ce' or 'sigmoid_bce'."""
        self.set_training(loss=name)

    def set_optimizer(self, name: str, settings: dict | None = None) -> None:
        """Pick a Trainer optimizer; a different one starts from its own defaults
        (``training.OPTIMIZER_SETTINGS[name]``), then ``settings`` apply."""
        self.set_training(optimizer=name, optimizer_settings=dict(settings or {}))

    def set_optimizer_settings(self, **values) -> None:
        self.set_training(optimizer_settings=values)

    def set_batch_size(self, batch_size: int) -> None:
        """The ``trainer.step(batch_size)`` normalizer; 0 = the input's first dimension."""
        self.set_training(batch_size=batch_size)

    def set_snapshot_every(self, k: int) -> None:
        self.set_training(snapshot_every=k)

    def set_target(self, **changes) -> None:
        """Generate the target: ``shape`` (None: follow the output), ``distribution``, ``low``,
        ``high``, ``mean``, ``std``, ``value``, ``seed``. Replaces a loaded target."""
        base = {"source": "generated", "file": ""}
        if self.train_config.target.source == "file" and "shape" not in changes:
            base["shape"] = None
        self.set_training(target={**base, **changes})

    def load_input(self, path) -> None:
        """Use the array in a ``.npy`` or ``.csv`` file as the input ``x`` (its shape becomes the
        input shape). A bad file raises DocumentError and changes nothing."""
        import os
        arr = _training().read_array(path, "input")
        name = os.path.basename(os.fspath(path))
        new = self.input.updated(shape=arr.shape)
        self._check_links(self.layers, self.links, new.shape)
        cfg = self.train_config.updated(input_file=name)
        self.input, self.train_config = new, cfg
        _rng.seed(new.seed)             # as when a file's input is read back: no draw
        self.replay = self.replay.input_drawn(self._any_values())
        self.x = nd.array(arr)
        self.output = None
        self._touch("input")
        self.info(f"input loaded from {name}: shape {L.format_shape(arr.shape)}")

    def load_target(self, path) -> None:
        """Use the array in a ``.npy`` or ``.csv`` file as the target, checked against the loss
        and the output shape (labels given as one column are read as (batch,)). A bad file
        raises DocumentError and changes nothing."""
        import os
        T = _training()
        arr = T.read_array(path, "target")
        name = os.path.basename(os.fspath(path))
        cfg = self.train_config
        out = self.output_shape()
        if cfg.loss_info.target != "none" and out is not None:
            arr = T.check_target(cfg.loss, arr, out, f"from {name}")
        new = cfg.updated(target={"source": "file", "file": name, "shape": arr.shape})
        self._target_data = arr
        self._apply_config(new)
        self.info(f"target loaded from {name}: shape {L.format_shape(arr.shape)}")

    def output_shape(self):
        """The network's output shape for the current input (None when a layer cannot take its
        input)."""
        if not self.layers:
            return tuple(self.input.shape)
        shapes = self.shapes()
        if any(problem for _i, _o, problem in shapes):
            return None
        out = shapes[-1][1]
        return None if out is None or any(d is None for d in out) else tuple(out)

    def target_array(self):
        """The target the configured loss compares with (a read-only float32 array), or None
        for the raw loss. Raises DocumentError when it does not fit the output."""
        return self._loss_and_target()[1]

    def training_problem(self) -> str:
        """Why Train/Backward cannot run now ('' when they can)."""
        if not self.layers:
            return "there is nothing to train: add a layer first"
        try:
            self._loss_and_target()
        except DocumentError as err:
            return str(err)
        for name, p in self.params().items():
            if p.state == "uninitialized":
                return f"Parameter '{name}' has not been initialized: Initialize first."
        return ""

    def loss_value(self) -> float:
        """The configured loss on the current parameters and data, in predict mode (Dropout
        off), without recording and without changing anything: the mean per-sample loss, or
        sum(output) for the raw loss."""
        return _training().loss_value(self)

    def train(self, n: int, progress=None, cancel=None, snapshot_every=None,
              publish: bool = True):  # noqa: FBT001
        """Train ``n`` steps (record forward + loss, backward, ``trainer.step``) on the current
        data; returns a :class:`~app.document.training.TrainResult`.

        ``progress(step, loss)`` is called after each step and ``cancel()`` is checked after
        it (a cancel keeps what completed). A NaN or Inf in the loss, a gradient or a parameter
        stops the run with ``result.divergence`` saying where it first appeared. Snapshots are
        recorded every ``snapshot_every`` steps (default: the configured interval) and at the
        end. Safe on a worker thread: nothing is emitted while it runs; with ``publish=False``
        nothing is emitted at all — call :meth:`publish_training` on the GUI thread after.
        An engine error after some steps raises ``TrainingError`` (its ``result`` holds what
        completed, which is kept); a refusal before the first step raises DocumentError."""
        T = _training()
        result = T.run(self, n, progress, cancel, snapshot_every)
        if publish:
            T.publish(self, result)
        if result.error:
            raise T.TrainingError(result.message, result)
        return result

    def publish_training(self, result) -> None:
        """Add a run's snapshots to the timeline, emit ``changed('params')`` and log it."""
        _training().publish(self, result)

    def _check_config(self, cfg) -> None:
        if cfg.loss_info.target == "none":
            return
        out = self.output_shape()
        if out is None:
            return                  # checked again when Backward or Train runs
        target = self._target_for(cfg, out)
        _training().check_target(cfg.loss, target, out, self._target_source(cfg))

    def _apply_config(self, new) -> None:
        old = self.train_config
        self.train_config = new
        if {**old.to_json(), "snapshot_every": 0} != {**new.to_json(), "snapshot_every": 0}:
            self.replay = self.replay.config_changed()
        if new.target.source != "file":
            self._target_data = None
        if (old.optimizer, old.optimizer_settings) != (new.optimizer, new.optimizer_settings):
            self._trainer = None
        self._touch("training")

    @staticmethod
    def _target_source(cfg) -> str:
        t = cfg.target
        return f"from {t.file}" if t.source == "file" else f"generated, {t.distribution}"

    def _target_for(self, cfg, out_shape):
        t = cfg.target
        if t.source == "file":
            if self._target_data is None:
                raise DocumentError(f"the target file {t.file!r} is not loaded: load it again "
                                    "or generate a target")
            return self._target_data
        shape = t.shape or _training().expected_target_shape(cfg.loss, out_shape)
        key = (repr(sorted(t.to_json().items())), tuple(shape))
        if self._target_cache is None or self._target_cache[0] != key:
            self._target_cache = (key, _training().draw(t, shape))
        return self._target_cache[1]

    def _loss_and_target(self):
        """(Gluon loss block or None, target array or None) for the configured loss, checked
        against the output shape."""
        T = _training()
        cfg = self.train_config
        if cfg.loss_info.target == "none":
            return None, None
        out = self.output_shape()
        if out is None:
            problems = [p for _i, _o, p in self.shapes() if p]
            raise DocumentError("the network's output shape is unknown"
                                + (f" ({problems[0]})" if problems else "")
                                + ": fix the layers before computing a loss")
        target = T.check_target(cfg.loss, self._target_for(cfg, out), out,
                                self._target_source(cfg))
        return T.make_loss(cfg.loss), target

    def _attach_loaded_data(self, has_input: bool, target, name: str) -> None:
        """After a file's arrays were read: a file input without its array, or a file target
        without target.npy, falls back to generated data (with a warning)."""
        cfg = self.train_config
        if cfg.input_file and not has_input:
            self.train_config = cfg = cfg.updated(input_file="")
            self._make_input(reseed=True)
            self.warning(f"{name}: the input came from a file whose values this file does not "
                         "hold; the generated input is used instead.")
        if cfg.target.source == "file":
            if target is None:
                self.train_config = cfg.updated(target={"source": "generated", "file": "",
                                                        "shape": None})
                self.warning(f"{name}: the target came from a file whose values this file "
                             "does not hold; a generated target is used instead.")
                return
            if target.dtype.kind not in "fiu" or tuple(target.shape) != cfg.target.shape or \
                    not np.isfinite(target).all():
                raise DocumentError(f"its target (target.npy, shape {target.shape}) does not "
                                    f"match the model's target shape {cfg.target.shape} or "
                                    "holds non-finite values")
            arr = target.astype(np.float32)
            arr.flags.writeable = False
            self._target_data = arr

    # ================================================================= undo mementos
    def capture(self, latest_is_current: bool = False) -> DocState:  # noqa: FBT001
        """Everything undo needs to put the document back as it is now. A parameter whose
        values and gradient equal those of the timeline's latest snapshot shares its
        (read-only) arrays instead of copying them: comparing reads the arrays, copying also
        writes and allocates them, and a gesture captures before and after.
        ``latest_is_current``: the caller knows the latest snapshot was taken from the
        current values (a training run just published it), so nothing is compared."""
        latest = self.history.snapshots[-1].params if self.history.snapshots else {}
        params = {n: _snapshot_sharing(p, latest.get(n), trusted=latest_is_current)
                  for n, p in self.params().items()}
        return DocState(self.to_spec(), params,
                        _rng.getstate(), None if self.x is None else self.x.asnumpy(),
                        None if self.output is None else self.output.copy(),
                        self._target_data, self._trainer_state())

    def restore(self, state: DocState, label: str | None = "restore") -> None:
        """Put back a :meth:`capture`; ``label`` names the snapshot it records (None: none)."""
        current = self.to_spec()
        if state.spec != current:
            light = ("training", "replay")
            if {k: v for k, v in state.spec.items() if k not in light} == \
                    {k: v for k, v in current.items() if k not in light}:
                # only the training configuration differs: no rebuild needed
                self.train_config = _training().TrainingConfig.from_json(
                    state.spec.get("training"))
            else:
                self._load_spec(state.spec)
                self._rebuild(reseed=False)
        self.replay = Replay.from_json(state.spec.get("replay"))
        self._restore_quiet(state)
        if state.x is not None:
            if self.x is not None and self.x.shape == state.x.shape:
                self.x[:] = state.x
            else:
                self.x = nd.array(state.x)
        self.output = None if state.output is None else state.output.copy()
        self._target_data = state.target
        self._trainer = None
        if state.trainer is not None:
            self._set_trainer_state(state.trainer)
        if label is not None:
            self.record_snapshot(label)
        self._touch("structure")

    def state_equals(self, state: DocState) -> bool:
        """Whether the document is exactly as ``state`` captured it (structure and values)."""
        if state.spec != self.to_spec():
            return False
        if not _same_data(state.target, self._target_data) or \
                not _same_data(state.x, None if self.x is None else self.x._data):
            return False
        params = self.params()
        if set(params.keys()) != set(state.params):
            return False
        for name, p in params.items():
            snap = state.params[name]
            if p.state != ("initialized" if snap.data is not None else
                           "deferred" if snap.deferred else "uninitialized"):
                return False
            if snap.data is not None and not np.array_equal(p.data()._data, snap.data,
                                                            equal_nan=True):
                return False
        return True

    # ================================================================= serialization
    def to_spec(self) -> dict:
        return {"format": "paramlab", "version": FORMAT_VERSION,
                "layers": [s.to_json() for s in self.layers],
                "links": [ln.to_json() for ln in self.links],
                "global_init": self.global_init.to_json(),
                "input": self.input.to_json(),
                "training": self.train_config.to_json(),
                "replay": self.replay.to_json()}

    def _load_spec(self, spec: dict) -> None:
        layers, links, global_init, input_spec = parse_spec(spec)
        training = _training().TrainingConfig.from_json(spec.get("training"))
        self.layers, self.links = layers, links
        self.global_init, self.input = global_init, input_spec
        if training.target.source != "file":
            self._target_data = None
        self.train_config = training
        self._trainer = None
        used = [int(s.uid[1:]) for s in layers if s.uid[1:].isdigit()]
        self._uids = itertools.count(max(used, default=0) + 1)

    def load_spec(self, spec: dict) -> None:
        """Replace the whole model by ``spec`` (as written by :meth:`to_spec`); validated first."""
        layers, links, _g, input_spec = parse_spec(spec)
        _training().TrainingConfig.from_json(spec.get("training"))
        self._check_links(layers, links, input_spec.shape)
        self._load_spec(spec)
        self._rebuild(reseed=True)
        self._touch("structure")

    # ================================================================= logging
    def info(self, message, details=""):
        self._log("info", message, details)

    def warning(self, message, details=""):
        self._log("warning", message, details)

    def error(self, message, details=""):
        self._log("error", message, details)

    def _log(self, level, message, details=""):
        entry = LogEntry(time.time(), level, str(message), details)
        self.log_entries.append(entry)
        del self.log_entries[:-2000]
        logging.getLogger("paramlab").log(
            {"info": logging.INFO, "warning": logging.WARNING}.get(level, logging.ERROR),
            message)
        self.logged.emit(entry)

    def _view_error(self, err):
        self._log("error", f"a view failed to update: {type(err).__name__}: {err}",
                  "".join(traceback.format_exception(type(err), err, err.__traceback__)))

    def _engine(self, what):
        return _EngineCall(self, what)

    # ================================================================= internals
    def _touch(self, what):
        self.dirty = True
        self.changed.emit(what)

    def _rebuild(self, reseed: bool):
        net = nn.Sequential(prefix=NET_PREFIX)
        blocks = {}
        keys, users = {}, {}
        links = {ln.src: ln for ln in self.links}
        with net.name_scope():
            for spec in self.layers:
                k = L.kind(spec.kind)
                ln = links.get(spec.uid)
                share = blocks[ln.dst] if ln is not None and ln.kind == "share" else None
                tie = blocks[ln.dst] if ln is not None and ln.kind == "tie" else None
                block = k.build(spec.settings, share=share, tie=tie)
                net.add(block)
                blocks[spec.uid] = block
                for role, p in block._reg_params.items():
                    if p is None:
                        continue
                    if p.name not in keys:
                        keys[p.name] = (spec.uid, role)
                    users.setdefault(p.name, []).append(spec.uid)
        self.net = net
        self._param_keys = keys
        self._param_users = users
        self._trainer = None            # it held the previous network's Parameter objects
        self.output = None
        self._make_input(reseed=reseed)

    def _make_input(self, reseed: bool):
        spec = self.input
        if reseed:
            _rng.seed(spec.seed)
            self.replay = self.replay.input_drawn(self._any_values())
        elif self.x is not None and tuple(self.x.shape) == tuple(spec.shape):
            return
        shape = tuple(spec.shape)
        if self.train_config.input_file:
            # The values come from a file (load_input, or a .paramlab's input.npy, which the
            # loader copies in): nothing is drawn, so the stream stays at the seed.
            if self.x is None or tuple(self.x.shape) != shape:
                self.x = nd.zeros(shape)
            self.output = None
            return
        if spec.distribution == "uniform":
            x = nd.random.uniform(spec.low, spec.high, shape=shape)
        elif spec.distribution == "normal":
            x = nd.random.normal(spec.mean, spec.std, shape=shape)
        elif spec.distribution == "integers":
            x = nd.array(np.floor(_rng.uniform(spec.low, spec.high, shape=shape)))
        else:
            x = nd.full(shape, spec.value)
        self.x = x
        self.output = None

    def _any_values(self) -> bool:
        """Whether some parameter holds values or waits for deferred initialization."""
        return self.net is not None and any(p.state != "uninitialized"
                                            for p in self.params().values())

    def _values_by_key(self):
        out = {}
        if self.net is None:
            return out
        for name, p in self.params().items():
            out[self._param_keys[name]] = p.snapshot()
        return out

    def _restore_by_key(self, keep):
        """Give each parameter of the rebuilt network the state its (owner, role) had, when
        the shapes still agree; returns the names that had to be reset."""
        lost = []
        for name, p in self.params().items():
            snap = keep.get(self._param_keys[name])
            if snap is None or (snap.data is None and not snap.deferred):
                continue
            new = p.shape
            if len(new) != len(snap.shape) or not all(
                    n == s or n == 0 or s == 0 for n, s in zip(new, snap.shape)):
                lost.append(name)
                continue
            if snap.data is not None:
                if not all(n in (0, s) for n, s in zip(new, snap.shape)):
                    lost.append(name)
                    continue
                p.restore(snap)
            else:
                # still deferred: keep the pending initializer and the better-known shape
                p._shape = tuple(n or s for n, s in zip(new, snap.shape))
                p._deferred_init = snap.deferred
        return lost


def _snapshot_sharing(p, rec, trusted=False):
    """``p.snapshot()``, sharing ``rec``'s arrays (a timeline record) when they are equal
    (``trusted``: known to be, by construction — only shapes and dtypes are checked)."""
    data = p._data
    if rec is None or data is None or rec.data is None:
        return p.snapshot()
    cur, grad = data._data, (None if p._grad is None else p._grad._data)
    same = _same_layout if trusted else _bits_equal
    if not same(rec.data, cur) or (grad is None) != (rec.grad is None) or \
            (grad is not None and not same(rec.grad, grad)):
        return p.snapshot()
    from app.engine.gluon.parameter import ParamSnapshot
    return ParamSnapshot(p._shape, p._dtype, p._grad_req, p._deferred_init, rec.data, rec.grad,
                         data._fresh_grad)


def _same_layout(a, b) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype


def _bits_equal(a, b) -> bool:
    """Equal bit for bit (so -0.0 differs from 0.0, and a NaN equals only itself)."""
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    if a.dtype.kind == "f" and a.dtype.itemsize in (2, 4, 8):
        u = np.dtype(f"u{a.dtype.itemsize}")
        return bool(np.array_equal(a.view(u), b.view(u)))
    return bool(np.array_equal(a, b))


class _EngineCall:
    """Runs an engine call, turning its warnings into log entries in Gluon's words and its
    errors into DocumentError (the engine guarantees nothing changed)."""

    def __init__(self, doc, what):
        self.doc, self.what = doc, what

    def __enter__(self):
        self._cm = warnings.catch_warnings(record=True)
        self._caught = self._cm.__enter__()
        warnings.simplefilter("always")
        return self

    def __exit__(self, exc_type, exc, tb):
        self._cm.__exit__(None, None, None)
        for w in self._caught:
            self.doc.warning(str(w.message))
        if exc is None:
            return False
        if isinstance(exc, DocumentError):
            return False
        details = "".join(traceback.format_exception(exc_type, exc, tb))
        self.doc.error(f"{self.what} failed: {exc}", details)
        raise DocumentError(f"{self.what} failed: {exc}") from exc


def _training():
    """:mod:`app.document.training` (imported late: it imports this module)."""
    from . import training
    return training


def _same_data(a, b) -> bool:
    if a is None or b is None:
        return a is b
    return a.shape == b.shape and bool(np.array_equal(a, b, equal_nan=a.dtype.kind == "f"))


def _agree(a, b) -> bool:
    return len(a) == len(b) and all(x is None or y is None or x == 0 or y == 0 or x == y
                                    for x, y in zip(a, b))


def _shape_str(shape) -> str:
    return str(tuple(0 if d is None else d for d in shape))


def _predict_names(layers, links):
    """(uid, role) → the Gluon name the owner's parameter will get."""
    counters: dict = {}
    names = {}
    for spec in layers:
        hint = spec.kind.lower()
        n = counters.get(hint, 0)
        counters[hint] = n + 1
        for role in ("weight", "bias", "gamma", "beta", "running_mean", "running_var"):
            names[(spec.uid, role)] = f"{NET_PREFIX}{hint}{n}_{role}"
    return names


def parse_spec(spec: dict):
    """Validate a model spec (``model.json``); returns (layers, links, global_init, input)."""
    if not isinstance(spec, dict):
        raise DocumentError("the model description must be a JSON object")
    if spec.get("format") != "paramlab":
        raise DocumentError("this is not a ParamLab model (its 'format' is not 'paramlab')")
    version = spec.get("version")
    if not isinstance(version, int):
        raise DocumentError("the model description has no format version")
    if version > FORMAT_VERSION:
        raise DocumentError(f"this file was written by a newer ParamLab (format {version}); "
                            f"this version reads formats up to {FORMAT_VERSION}. Update "
                            "ParamLab to open it.")
    raw_layers = spec.get("layers", [])
    if not isinstance(raw_layers, list):
        raise DocumentError("'layers' must be a list")
    layers, seen = [], set()
    for i, d in enumerate(raw_layers):
        if not isinstance(d, dict):
            raise DocumentError(f"layer {i} must be an object")
        uid = d.get("uid") or f"L{i + 1}"
        if not isinstance(uid, str) or uid in seen:
            raise DocumentError(f"layer {i} has a missing or duplicate uid {uid!r}")
        seen.add(uid)
        try:
            k = L.kind(d.get("kind"))
            settings = k.validate({**k.defaults(), **(d.get("settings") or {})})
        except SettingsError as err:
            raise DocumentError(f"layer {i}: {err}") from None
        inits = d.get("param_inits") or {}
        if not isinstance(inits, dict):
            raise DocumentError(f"layer {i}: 'param_inits' must be a mapping")
        layers.append(LayerSpec(uid, k.name, settings, InitChoice.from_json(d.get("init")),
                                {r: InitChoice.from_json(c) for r, c in inits.items()}))
    raw_links = spec.get("links", [])
    if not isinstance(raw_links, list):
        raise DocumentError("'links' must be a list")
    links = []
    for d in raw_links:
        if not isinstance(d, dict) or not {"src", "dst"} <= set(d):
            raise DocumentError(f"a link must name 'src' and 'dst', got {d!r}")
        links.append(Link(str(d["src"]), str(d["dst"]), str(d.get("kind", "share"))))
    global_init = InitChoice.from_json(spec.get("global_init") or
                                       {"name": "uniform", "settings": {"scale": 0.07}})
    input_spec = InputSpec.from_json(spec.get("input") or {})
    return layers, links, global_init, input_spec
