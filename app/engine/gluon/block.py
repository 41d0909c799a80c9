"""``Block`` and ``HybridBlock``: naming, child and parameter registration, deferred shapes.

Naming follows Gluon exactly. Outside any scope a block is named ``<class><n>_`` with one
process-wide counter per class name (``sequential0_``, ``dense0_``, ``dense1_``...). Inside
``with parent.name_scope():`` a child is named ``parent.prefix + <class><n>_`` with a counter local
to that parent. A user ``prefix`` is used verbatim and consumes no counter; ``prefix=''`` makes
``name_scope`` a no-op. A parameter is named ``params.prefix + 'weight'``.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict

from .. import random as _rng
from ..base import DeferredInitializationError
from ..fileio import load_arrays, save_arrays
from ..initializer import Uniform as _Uniform
from ..ndarray import ndarray as _nd_mod
from ..ndarray.ndarray import NDArray
from .parameter import Parameter, ParameterDict, _brief_print_list, load_all

__all__ = ["Block", "HybridBlock", "SymbolBlock"]


class _NameManager:
    """Process-wide counters for blocks created outside any name scope."""

    _lock = threading.Lock()
    _counter: dict[str, int] = {}

    @classmethod
    def get(cls, hint: str) -> str:
        with cls._lock:
            n = cls._counter.get(hint, 0)
            cls._counter[hint] = n + 1
        return f"{hint}{n}"


class _ScopeStack(threading.local):
    value = None


class _BlockScope:
    """The name scope of a block: hands out prefixes to children created inside it."""

    _current = _ScopeStack()

    def __init__(self, block):
        self._block = block
        self._counter: dict[str, int] = {}
        self._old_scope = None

    @staticmethod
    def create(prefix, params, hint):
        current = _BlockScope._current.value
        if current is None:
            if prefix is None:
                prefix = _NameManager.get(hint) + "_"
            if params is None:
                params = ParameterDict(prefix)
            else:
                params = ParameterDict(params.prefix, params)
            return prefix, params
        if prefix is None:
            count = current._counter.get(hint, 0)
            prefix = f"{hint}{count}_"
            current._counter[hint] = count + 1
        if params is None:
            parent = current._block.params
            params = ParameterDict(parent.prefix + prefix, parent._shared)
        else:
            params = ParameterDict(params.prefix, params)
        return current._block.prefix + prefix, params

    def __enter__(self):
        if self._block._empty_prefix:
            return self
        self._old_scope = _BlockScope._current.value
        _BlockScope._current.value = self
        return self

    def __exit__(self, *exc):
        if self._block._empty_prefix:
            return False
        _BlockScope._current.value = self._old_scope
        return False


def _indent(s, num_spaces):
    lines = s.split("\n")
    if len(lines) == 1:
        return s
    first = lines.pop(0)
    return first + "\n" + "\n".join(" " * num_spaces + line for line in lines)


class _CallFrame:
    """The depth of nested block calls in one thread, and what the outermost call must undo if
    it fails (parameters it materialized, the random state before the first of them)."""

    __slots__ = ("depth", "entries", "rng_state")

    def __init__(self):
        self.depth = 0
        self.entries = None
        self.rng_state = None


class _CallState(threading.local):
    """Per thread: its :class:`_CallFrame` (one thread-local lookup per block call; the
    frame's fields are then plain slots)."""

    def __init__(self):
        self.frame = _CallFrame()


_call = _CallState()


class Block:
    """Base class of all layers and models.

    Setting a Block or Parameter as an attribute registers it (as a child, or as one of this
    block's own parameters). ``forward`` holds the computation; call the block to run it.
    """

    def __init__(self, prefix=None, params=None):
        self._empty_prefix = prefix == ""
        self._prefix, self._params = _BlockScope.create(prefix, params, self._alias())
        self._name = self._prefix[:-1] if self._prefix.endswith("_") else self._prefix
        self._scope = _BlockScope(self)
        self._children = OrderedDict()
        self._reg_params = {}

    def _alias(self) -> str:
        return self.__class__.__name__.lower()

    def __repr__(self) -> str:
        modstr = "\n".join(f"  ({key}): {_indent(repr(block), 2)}"
                           for key, block in self._children.items())
        return f"{self.__class__.__name__}(\n{modstr}\n)"

    def __setattr__(self, name, value):
        if hasattr(self, name):
            existing = getattr(self, name)
            if isinstance(existing, (Parameter, Block)) and not isinstance(value, type(existing)):
                raise TypeError(f"Changing attribute type for {name} from {type(existing)} to "
                                f"{type(value)} is not allowed.")
        if isinstance(value, Block):
            self.register_child(value, name)
        elif isinstance(value, Parameter):
            assert name not in self._reg_params, \
                (f"Overriding Parameter attribute {name} is not allowed. If you want to share "
                 "parameters between blocks, please set 'params' at Block construction instead.")
            self._reg_params[name] = value
        super().__setattr__(name, value)

    @property
    def prefix(self) -> str:
        """The prefix of this block's name and of its parameters' names (ends with ``_``)."""
        return self._prefix

    @property
    def name(self) -> str:
        return self._name

    def name_scope(self):
        """Children created inside ``with self.name_scope():`` get names under this block."""
        return self._scope

    @property
    def params(self) -> ParameterDict:
        """This block's own parameters (not its children's: use ``collect_params``)."""
        return self._params

    def collect_params(self, select=None) -> ParameterDict:
        """A NEW ParameterDict of this block's and all descendants' parameters.

        Own parameters first, then children in order; a shared parameter appears once, under its
        owner's name. ``select`` is a regex matched at the start of names (``re.match``), e.g.
        ``'.*weight'``."""
        ret = ParameterDict(self._params.prefix)
        if not select:
            ret.update(self.params)
        else:
            pattern = re.compile(select)
            ret.update({name: value for name, value in self.params.items()
                        if pattern.match(name)})
        for cld in self._children.values():
            ret.update(cld.collect_params(select=select))
        return ret

    def _collect_params_with_prefix(self, prefix=""):
        if prefix:
            prefix += "."
        ret = {prefix + key: val for key, val in self._reg_params.items()}
        for name, child in self._children.items():
            ret.update(child._collect_params_with_prefix(prefix + name))
        return ret

    def save_parameters(self, filename, deduplicate=False):  # noqa: FBT002
        """Save with structural keys (``0.weight``, ``0.bias``...) to an ``.npz``, atomically.

        ``deduplicate`` keeps one copy of a shared parameter (under its last name)."""
        params = self._collect_params_with_prefix()
        if deduplicate:
            reverse = {}
            for name, p in params.items():
                reverse[id(p)] = name
            params = {name: p for name, p in params.items() if reverse[id(p)] == name}
        arg_dict = {key: val._reduce() for key, val in params.items()}
        save_arrays(filename, arg_dict)

    def load_parameters(self, filename, ctx=None, allow_missing=False, ignore_extra=False,  # noqa: FBT002
                        cast_dtype=False, dtype_source="current"):  # noqa: FBT002
        """Load what ``save_parameters`` wrote. Shapes and dtypes of every parameter are checked
        before any is changed; uninitialized or deferred parameters take the file's shapes."""
        loaded = load_arrays(filename)
        params = self._collect_params_with_prefix()
        if not loaded and not params:
            return
        if not any("." in i for i in loaded):
            del loaded
            self.collect_params().load(filename, ctx, allow_missing, ignore_extra, self.prefix,
                                       cast_dtype=cast_dtype, dtype_source=dtype_source)
            return
        if not allow_missing:
            # A shared parameter is saved once with deduplicate=True: any of its names will do.
            aliases = {}
            for name, param in params.items():
                aliases.setdefault(id(param), []).append(name)
            for name, param in params.items():
                assert any(alias in loaded for alias in aliases[id(param)]), \
                    (f"Parameter '{name}' is missing in file '{filename}', which contains "
                     f"parameters: {_brief_print_list(loaded.keys())}. Set allow_missing=True "
                     "to ignore missing parameters.")
        todo = []
        for name in loaded:
            if not ignore_extra and name not in params:
                raise ValueError(
                    f"Parameter '{name}' loaded from file '{filename}' is not present in "
                    f"ParameterDict, which contains parameters "
                    f"{_brief_print_list(params.keys())}. Set ignore_extra=True to ignore. ")
            if name in params:
                todo.append((params[name], loaded[name]))
        load_all(todo, cast_dtype=cast_dtype, dtype_source=dtype_source)

    # Gluon 1.x deprecated spellings
    def save_params(self, filename):
        self.save_parameters(filename)

    def load_params(self, filename, ctx=None, allow_missing=False, ignore_extra=False):  # noqa: FBT002
        self.load_parameters(filename, ctx, allow_missing, ignore_extra)

    def register_child(self, block, name=None):
        """Register ``block`` as a child (under ``name``, default its index)."""
        if name is None:
            name = str(len(self._children))
        self._children[name] = block

    def register_forward_pre_hook(self, hook):
        raise NotImplementedError("forward hooks are not supported by ParamLab's engine")

    def apply(self, fn):
        """Call ``fn(block)`` on every descendant, then on this block; returns self."""
        for cld in self._children.values():
            cld.apply(fn)
        fn(self)
        return self

    def initialize(self, init=None, ctx=None, verbose=False, force_reinit=False):  # noqa: FBT002
        """``collect_params().initialize(init, ...)``: ``init`` is only the default initializer
        (default ``Uniform(0.07)``); parameters with their own ``init`` keep it."""
        if init is None:
            init = _DEFAULT_INIT
        self.collect_params().initialize(init, ctx, verbose, force_reinit)

    def hybridize(self, active=True, **kwargs):  # noqa: FBT002
        """Accepted for compatibility: ParamLab runs imperatively either way."""
        for cld in self._children.values():
            cld.hybridize(active, **kwargs)

    def cast(self, dtype):
        """Cast this block's parameters (and its children's) to ``dtype``."""
        for child in self._children.values():
            child.cast(dtype)
        for _, param in self.params.items():
            param.cast(dtype)

    def __call__(self, *args):
        """Run ``forward``. At the top level the call is all-or-nothing for deferred
        initialization: if the pass fails, parameters it materialized go back to deferred and the
        random stream is rewound."""
        st = _call.frame
        if st.depth:
            return self.forward(args[0]) if len(args) == 1 else self.forward(*args)
        st.depth = 1
        try:
            return self.forward(args[0]) if len(args) == 1 else self.forward(*args)
        except BaseException:
            if st.entries:
                for param, saved in reversed(st.entries):
                    param._restore_state(saved)
                _rng.setstate(st.rng_state)
            raise
        finally:
            st.depth = 0
            if st.entries is not None:
                st.entries = None
                st.rng_state = None

    def forward(self, *args):
        raise NotImplementedError

    def summary(self, *inputs):
        raise NotImplementedError("summary() is not available; print(net) shows the structure")


class HybridBlock(Block):
    """A block whose computation is ``hybrid_forward(F, x, *args, **params)``.

    On its first call, parameters whose shapes are still unknown are completed by
    ``infer_shape(x, *args)`` (layers implement it) and then initialized."""

    def __init__(self, prefix=None, params=None):
        super().__init__(prefix=prefix, params=params)
        self._active = False

    def hybridize(self, active=True, **kwargs):  # noqa: FBT002
        self._active = active
        super().hybridize(active, **kwargs)

    def infer_shape(self, *args):
        """Fill this block's unknown parameter dimensions from the inputs (layers override)."""
        unknown = [p.name for p in self._reg_params.values()
                   if p.shape is None or not all(p.shape)]
        if unknown:
            raise DeferredInitializationError(
                f"{type(self).__name__} cannot infer the shape of {', '.join(unknown)} from its "
                "input: give the parameters complete shapes, or override infer_shape(x).")

    def infer_type(self, *args):
        return None

    def _finish_own_deferred(self, x, *args):
        """Infer this block's unknown shapes from the input and initialize its deferred
        parameters, all or nothing (on failure shapes and states are as they were)."""
        params = list(self.params.values())
        saved = [(p, p._save_state()) for p in params]
        state = _rng.getstate()
        try:
            self.infer_shape(x, *args)
            for p in params:
                p._finish_deferred_init()
        except BaseException:
            for p, st in saved:
                p._restore_state(st)
            _rng.setstate(state)
            raise
        st = _call.frame
        if st.depth:
            if st.entries is None:
                st.entries = []
                st.rng_state = state
            st.entries.extend(saved)

    def forward(self, x, *args):
        try:
            params = {k: v.data() for k, v in self._reg_params.items()}
        except DeferredInitializationError:
            self._finish_own_deferred(x, *args)
            params = {k: v.data() for k, v in self._reg_params.items()}
        return self.hybrid_forward(_nd_mod, x, *args, **params)

    def hybrid_forward(self, F, x, *args, **kwargs):  # noqa: N803
        raise NotImplementedError

    def export(self, path, epoch=0, remove_amp_cast=True):  # noqa: FBT002
        raise NotImplementedError("export() writes MXNet symbol files; use save_parameters().")


class SymbolBlock(HybridBlock):  # pragma: no cover - present for import compatibility
    def __init__(self, *args, **kwargs):
        raise NotImplementedError("SymbolBlock needs MXNet symbols, which ParamLab does not have.")


def _check_input(x):
    if not isinstance(x, NDArray):
        raise TypeError(f"Block inputs must be NDArrays, got {type(x).__name__}: wrap NumPy data "
                        "with nd.array(...)")
    return x


# The one default instance, shared like Gluon's signature default: verbose=True on it sticks.
_DEFAULT_INIT = _Uniform()
