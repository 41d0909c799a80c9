"""``Parameter``, ``Constant`` and ``ParameterDict`` with Gluon's semantics.

Shapes use 0 for a dimension not known yet; the shape setter may only fill such zeros. A parameter
whose shape is complete is materialized at ``initialize()``; one with unknown dimensions (and
``allow_deferred_init``) stays deferred until the first forward pass tells its shape.

Initializer precedence: an ``init`` passed to ``Parameter.initialize`` beats ``Parameter.init``
(set at creation: ``bias_initializer='zeros'``, ...), which beats the ``default_init`` — the
initializer given to ``Block.initialize``/``ParameterDict.initialize`` is only that default.

Beyond Gluon, initialization is all-or-nothing: every array is computed and checked (the
initializer must not raise, must write every element, must not produce NaN/Inf, must keep dtype and
shape) before any parameter changes; on failure the error names the initializer and the parameter,
the parameters keep their previous values and the random stream is rewound.
"""

from __future__ import annotations

import re
import warnings
from collections import OrderedDict

import numpy as np

from .. import autograd
from .. import initializer as _initializer
from .. import random as _rng
from ..base import DeferredInitializationError, current_context
from ..fileio import load_arrays, save_arrays
from ..ndarray.ndarray import NDArray, _wrap

__all__ = ["Parameter", "Constant", "ParameterDict", "DeferredInitializationError",
           "InitializerError", "ParamSnapshot", "initialize_group", "shape_is_known",
           "tensor_types"]

tensor_types = (NDArray,)


def shape_is_known(shape) -> bool:
    """True when ``shape`` is a tuple with no unknown (0) dimension."""
    if shape is None:
        return False
    return all(d > 0 for d in shape)


class InitializerError(ValueError):
    """An initializer produced an unusable array (unwritten elements, NaN/Inf, wrong dtype)."""

    def __init__(self, message, parameter=None, initializer=None):
        super().__init__(message)
        self.parameter = parameter
        self.initializer = initializer


def _init_label(init) -> str:
    if isinstance(init, str):
        return repr(init)
    name = type(init).__name__
    kwargs = getattr(init, "_kwargs", None)
    if kwargs:
        return f"{name}({', '.join(f'{k}={v!r}' for k, v in kwargs.items())})"
    return f"{name}()"


_SENTINEL_BITS = {
    np.dtype(np.float16): (np.uint16, 0x7E5D),
    np.dtype(np.float32): (np.uint32, 0x7FC0DEAD),
    np.dtype(np.float64): (np.uint64, 0x7FF8DEADBEEFDEAD),
}


def _blank(shape, dtype) -> np.ndarray:
    """An array pre-filled with a marked NaN, so unwritten elements can be told from written."""
    dtype = np.dtype(dtype)
    arr = np.empty(shape, dtype)
    sentinel = _SENTINEL_BITS.get(dtype)
    if sentinel is not None:
        arr.view(sentinel[0]).fill(sentinel[1])
    else:
        arr.fill(0)
    return arr


def _check_filled(arr: np.ndarray, param_name: str, init) -> None:
    if arr.dtype.kind != "f" or np.isfinite(arr).all():
        return
    sentinel = _SENTINEL_BITS.get(arr.dtype)
    unwritten = int(np.count_nonzero(arr.view(sentinel[0]) == sentinel[1])) if sentinel else 0
    bad = int(arr.size - np.count_nonzero(np.isfinite(arr))) - unwritten
    label = _init_label(init)
    if unwritten:
        raise InitializerError(
            f"Initializer {label} left {unwritten} of {arr.size} elements of Parameter "
            f"'{param_name}' unwritten: its _init_weight must fill the whole array it is given "
            "(e.g. arr[:] = ...). No parameter was changed.", param_name, init)
    raise InitializerError(
        f"Initializer {label} wrote {bad} NaN or infinite value(s) into Parameter "
        f"'{param_name}'. No parameter was changed.", param_name, init)


def _reraise_with_context(err: BaseException, param_name: str, init):
    """Re-raise ``err`` with the same type, its message followed by which parameter failed."""
    label = _init_label(init)
    msg = (f"{err}\n(while initializing Parameter '{param_name}' with {label}; "
           "no parameter was changed)")
    try:
        new = type(err)(msg)
    except Exception:  # noqa: BLE001 - exotic exception signature
        new = InitializerError(msg, param_name, init)
    new.parameter = param_name
    new.initializer = init
    raise new.with_traceback(err.__traceback__) from err


class Parameter:
    """A container for one array and its gradient.

    ``Parameter(name, grad_req='write', shape=None, dtype=np.float32, lr_mult=1.0, wd_mult=1.0,
    init=None, allow_deferred_init=False, differentiable=True)``; an int shape becomes a 1-tuple;
    0 in a shape marks a dimension not known yet.
    """

    def __init__(self, name, grad_req="write", shape=None, dtype=np.float32, lr_mult=1.0,
                 wd_mult=1.0, init=None, allow_deferred_init=False, differentiable=True,  # noqa: FBT002
                 stype="default", grad_stype="default"):
        self._var = None
        self._data = None
        self._grad = None
        self._deferred_init = ()
        self._differentiable = differentiable
        self._allow_deferred_init = allow_deferred_init
        self._grad_req = None
        if isinstance(shape, int):
            shape = (shape,)
        self._shape = None if shape is None else tuple(shape)
        self.name = name
        self._dtype = dtype
        self.lr_mult = lr_mult
        self.wd_mult = wd_mult
        self.grad_req = grad_req
        self.init = init
        self._stype = stype
        self._grad_stype = grad_stype

    def __repr__(self) -> str:
        return f"Parameter {self.name} (shape={self.shape}, dtype={self.dtype})"

    # ----------------------------------------------------------------- attributes
    @property
    def grad_req(self):
        return self._grad_req

    @grad_req.setter
    def grad_req(self, req):
        assert req in ("write", "add", "null"), \
            f"grad_req must be one of 'write', 'add', or 'null', but got '{req}'"
        if not self._differentiable:
            req = "null"
        if self._grad_req == req:
            return
        self._grad_req = req
        if req == "null" and self._grad is not None:
            self._grad = None
            self._data._attach(None, "null")
        elif self._data is not None:
            self._init_grad()

    @property
    def dtype(self):
        return self._dtype

    @dtype.setter
    def dtype(self, dtype):
        self.cast(dtype)

    @property
    def shape(self):
        return self._shape

    @shape.setter
    def shape(self, new_shape):
        if new_shape is not None and isinstance(new_shape, int):
            new_shape = (new_shape,)
        if self._shape is None:
            self._shape = None if new_shape is None else tuple(new_shape)
            return
        new_shape = tuple(new_shape)
        assert len(self._shape) == len(new_shape) and \
            all(j in (0, i) for i, j in zip(new_shape, self._shape)), \
            f"Expected shape {new_shape} is incompatible with given shape {self._shape}."
        self._shape = new_shape

    @property
    def stype(self):
        return self._stype

    # ----------------------------------------------------------------- initialization
    def _plan_init(self, init, ctx, default_init, force_reinit, stacklevel):
        """Decide what ``initialize`` does, computing (not storing) any new array.

        Returns ``None`` (already initialized: warned, nothing to do), ``('defer', deferred)`` or
        ``('data', ndarray, deferred)``."""
        if default_init is None:
            default_init = _initializer.Uniform()
        if self._data is not None and not force_reinit:
            warnings.warn(f"Parameter {self.name} is already initialized, ignoring. "
                          "Set force_reinit=True to re-initialize.", stacklevel=stacklevel + 1)
            return None
        if init is None:
            init = default_init if self.init is None else self.init
        deferred = (init, [current_context()], default_init, None)
        if not shape_is_known(self.shape):
            if self._allow_deferred_init:
                return ("defer", deferred)
            raise ValueError(f"Cannot initialize Parameter '{self.name}' because it has invalid "
                             f"shape: {self.shape}.")
        return ("data", self._compute(init, default_init), deferred)

    def _commit_init(self, plan):
        if plan is None:
            return
        self._data = self._grad = None
        if plan[0] == "defer":
            self._deferred_init = plan[1]
            return
        self._deferred_init = ()
        self._init_impl(plan[1])

    def initialize(self, init=None, ctx=None, default_init=_initializer.Uniform(),  # noqa: B008
                   force_reinit=False):  # noqa: FBT002
        """Initialize data and gradient (deferred when the shape is not known yet).

        ``init`` > ``self.init`` > ``default_init``. Warns and does nothing when already
        initialized, unless ``force_reinit``; then NEW arrays are made (old references keep the
        old values)."""
        state = _rng.getstate()
        try:
            plan = self._plan_init(init, ctx, default_init, force_reinit, 2)
        except BaseException:
            _rng.setstate(state)
            raise
        self._commit_init(plan)

    def _compute(self, init, default_init) -> NDArray:
        """Run the initializer on a fresh array and check what it wrote."""
        shape, dtype = self.shape, np.dtype(self.dtype)
        arr = _wrap(_blank(shape, dtype))
        with autograd.pause():
            try:
                dispatch = _initializer.create(default_init)
            except Exception as err:  # noqa: BLE001 - the default itself is unusable (Mixed)
                _reraise_with_context(err, self.name, default_init)
            try:
                dispatch(_initializer.InitDesc(self.name, {"__init__": init}), arr)
            except Exception as err:  # noqa: BLE001 - re-raised with context
                _reraise_with_context(err, self.name, init)
        data = arr._data
        if not isinstance(data, np.ndarray) or data.shape != tuple(shape) or data.dtype != dtype:
            raise InitializerError(
                f"Initializer {_init_label(init)} replaced the array of Parameter '{self.name}' "
                f"with one of shape {getattr(data, 'shape', '?')} and dtype "
                f"{getattr(data, 'dtype', '?')}; expected shape {tuple(shape)} and dtype {dtype}. "
                "Write into the array in place (arr[:] = ...). No parameter was changed.",
                self.name, init)
        _check_filled(data, self.name, init)
        return arr

    def _finish_deferred_init(self):
        """Materialize a deferred parameter now that its shape is known (during forward)."""
        if not self._deferred_init:
            return
        init, ctx, default_init, data = self._deferred_init
        assert shape_is_known(self.shape), \
            (f"Cannot initialize Parameter '{self.name}' because it has invalid shape: "
             f"{self.shape}. Please specify in_units, in_channels, etc for `Block`s.")
        if data is None:
            state = _rng.getstate()
            try:
                arr = self._compute(init, default_init)
            except BaseException:
                _rng.setstate(state)
                raise
        else:
            arr = _wrap(np.array(data._data if isinstance(data, NDArray) else data,
                                 dtype=np.dtype(self.dtype)))
        self._deferred_init = ()
        self._init_impl(arr)

    def _save_state(self):
        return (self._shape, self._deferred_init, self._data, self._grad)

    def _restore_state(self, state):
        self._shape, self._deferred_init, self._data, self._grad = state

    def _init_impl(self, data: NDArray):
        self._data = data
        self._init_grad()

    def _init_grad(self):
        if self.grad_req == "null":
            self._grad = None
            self._data._attach(None, "null")
            return
        self._grad = _wrap(np.zeros_like(self._data._data))
        self._data._attach(self._grad, self.grad_req)

    def _load_init(self, data, ctx=None, cast_dtype=False, dtype_source="current"):  # noqa: FBT002
        data = data._data if isinstance(data, NDArray) else np.asarray(data)
        if self.shape:
            assert len(self.shape) == data.ndim and all(
                s in (0, d) for s, d in zip(self.shape, data.shape)), \
                (f"Failed loading Parameter '{self.name}' from saved params: shape incompatible "
                 f"expected {self.shape} vs saved {data.shape}")
            self.shape = tuple(d if s == 0 else s for s, d in zip(self.shape, data.shape))
        if self.dtype is not None and np.dtype(self.dtype) != data.dtype:
            if cast_dtype:
                if dtype_source == "saved":
                    self._dtype = data.dtype.type
                else:
                    data = data.astype(np.dtype(self.dtype))
            else:
                raise AssertionError(
                    f"Failed loading Parameter '{self.name}' from saved params: dtype "
                    f"incompatible expected {np.dtype(self.dtype)} vs saved {data.dtype}. Set "
                    "cast_dtype=True to cast the dtype of saved params.")
        if self._data is None:
            self._shape = tuple(data.shape)
            self._deferred_init = ()
            self._init_impl(_wrap(np.array(data, dtype=np.dtype(self.dtype))))
        else:
            self.set_data(data)
        self._deferred_init = ()

    # ----------------------------------------------------------------- access
    def _check_initialized(self):
        if self._data is not None:
            return
        if self._deferred_init:
            raise DeferredInitializationError(
                f"Parameter '{self.name}' has not been initialized yet because initialization "
                "was deferred. Actual initialization happens during the first forward pass. "
                "Please pass one batch of data through the network before accessing Parameters. "
                "You can also avoid deferred initialization by specifying in_units, "
                "num_features, etc., for network layers.")
        raise RuntimeError(
            f"Parameter {self.name} has not been initialized. Note that you should initialize "
            "parameters and create Trainer with Block.collect_params() instead of Block.params "
            "because the later does not include Parameters of nested child Blocks")

    def data(self, ctx=None) -> NDArray:
        """The stored array itself (not a copy): writing into it changes the parameter."""
        if self._data is None:
            self._check_initialized()
        return self._data

    def list_data(self):
        return [self.data()]

    def grad(self, ctx=None) -> NDArray:
        """The gradient buffer (zeros after initialize; written by backward)."""
        if self._data is not None and self._grad is None:
            raise RuntimeError(f"Cannot get gradient array for Parameter '{self.name}' because "
                               "grad_req='null'")
        if self._data is None:
            self._check_initialized()
        return self._grad

    def list_grad(self):
        return [self.grad()]

    def list_ctx(self):
        if self._data is None:
            if self._deferred_init:
                return self._deferred_init[1]
            raise RuntimeError(f"Parameter '{self.name}' has not been initialized")
        return [current_context()]

    def reset_ctx(self, ctx):
        """Contexts are CPU only: accepted and ignored."""
        if self._data is None and not self._deferred_init:
            raise ValueError(f"Cannot reset context for Parameter '{self.name}' because it has "
                             "not been initialized.")

    def set_data(self, data):
        """Copy ``data`` into the parameter in place (old references see the new values).

        On a deferred parameter the data fixes the shape and is used by the first forward."""
        self.shape = data.shape
        if self._data is None:
            assert self._deferred_init, f"Parameter '{self.name}' has not been initialized"
            self._deferred_init = self._deferred_init[:3] + (data,)
            return
        src = data._data if isinstance(data, NDArray) else data
        np.copyto(self._data._data, src, casting="unsafe")

    def zero_grad(self):
        """Set the gradient to 0 in place."""
        if self._grad is None:
            return
        self._grad._data[...] = 0

    def _reduce(self) -> np.ndarray:
        return self.data()._data.copy()

    def cast(self, dtype):
        """Cast data and gradient to ``dtype`` (the repr shows ``dtype`` as given)."""
        self._dtype = dtype
        if self._data is None:
            return
        with autograd.pause():
            new = _wrap(self._data._data.astype(np.dtype(dtype)))
            grad = None if self._grad is None else self._grad._data.astype(np.dtype(dtype))
            self._data = new
            if grad is None:
                new._attach(None, "null")
            else:
                self._grad = _wrap(grad)
                new._attach(self._grad, self.grad_req)

    def var(self):
        raise NotImplementedError(
            "ParamLab's engine is imperative: there are no symbols. Use data() instead.")

    def row_sparse_data(self, row_id):
        return self.data()

    # ----------------------------------------------------------------- state
    @property
    def is_initialized(self) -> bool:
        return self._data is not None

    @property
    def is_deferred(self) -> bool:
        return self._data is None and bool(self._deferred_init)

    @property
    def state(self) -> str:
        """'initialized', 'deferred' (waiting for the first forward) or 'uninitialized'."""
        if self._data is not None:
            return "initialized"
        return "deferred" if self._deferred_init else "uninitialized"

    def snapshot(self) -> ParamSnapshot:
        """A copy of this parameter's whole state (for undo): shape, dtype, grad_req, values,
        gradient, and a pending deferred initialization."""
        data = self._data
        return ParamSnapshot(
            self._shape, self._dtype, self._grad_req, self._deferred_init,
            None if data is None else data._data.copy(),
            None if self._grad is None else self._grad._data.copy(),
            False if data is None else data._fresh_grad)

    def restore(self, snap: ParamSnapshot) -> None:
        """Put back a :meth:`snapshot`. Arrays of the same shape and dtype are written in place,
        so references held elsewhere (``w = p.data()``) see the restored values."""
        self._shape = snap.shape
        self._dtype = snap.dtype
        self._deferred_init = snap.deferred
        if snap.data is None:
            self._grad_req = snap.grad_req
            self._data = self._grad = None
            return
        cur = self._data
        if cur is not None and cur._data.shape == snap.data.shape and \
                cur._data.dtype == snap.data.dtype and self._grad_req == snap.grad_req:
            np.copyto(cur._data, snap.data)
        else:
            self._grad_req = snap.grad_req
            self._init_impl(_wrap(snap.data.copy()))
            cur = self._data
        if snap.grad is not None and self._grad is not None:
            np.copyto(self._grad._data, snap.grad)
        cur._fresh_grad = snap.fresh


class ParamSnapshot(tuple):
    """An immutable copy of a Parameter's state; see :meth:`Parameter.snapshot`."""

    __slots__ = ()

    def __new__(cls, shape, dtype, grad_req, deferred, data, grad, fresh):
        return super().__new__(cls, (shape, dtype, grad_req, deferred, data, grad, fresh))

    shape = property(lambda self: self[0])
    dtype = property(lambda self: self[1])
    grad_req = property(lambda self: self[2])
    deferred = property(lambda self: self[3])
    data = property(lambda self: self[4])
    grad = property(lambda self: self[5])
    fresh = property(lambda self: self[6])

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.data, self.grad) if a is not None)


def initialize_group(items, force_reinit=False):  # noqa: FBT002
    """Initialize several parameters, each with its own ``(param, init, default_init)``, all or
    nothing: ``init`` (may be None) and ``default_init`` follow ``Parameter.initialize``'s
    precedence. If any initializer fails, no parameter changes and the random stream is rewound.
    Already-initialized parameters warn as in Gluon unless ``force_reinit``."""
    state = _rng.getstate()
    plans = []
    try:
        for param, init, default_init in items:
            plans.append((param, param._plan_init(init, None, default_init, force_reinit, 2)))
    except BaseException:
        _rng.setstate(state)
        raise
    for param, plan in plans:
        param._commit_init(plan)


class Constant(Parameter):
    """A parameter that never gets a gradient (grad_req is always 'null')."""

    def __init__(self, name, value):
        if not isinstance(value, NDArray):
            value = NDArray(np.array(value, dtype=np.float32))
        self.value = value
        const = value

        class _ConstInit(_initializer.Initializer):
            def _init_weight(self, _, arr):
                np.copyto(arr._data, const._data, casting="unsafe")

        super().__init__(name, grad_req="null", shape=value.shape, dtype=value.dtype,
                         init=_ConstInit())

    def __repr__(self) -> str:
        return f"Constant {self.name} (shape={self.shape}, dtype={self.dtype})"

    @property
    def grad_req(self):
        return "null"

    @grad_req.setter
    def grad_req(self, req):
        if req != "null":
            warnings.warn(f'Constant parameter "{self.name}" does not support grad_req other '
                          f'than "null", and new value "{req}" is ignored.', stacklevel=2)
        self._grad_req = "null"


def _brief_print_list(lst, limit=7):
    lst = list(lst)
    if len(lst) > limit:
        return _brief_print_list(lst[:limit // 2], limit) + ", ..., " + \
            _brief_print_list(lst[-limit // 2:], limit)
    return ", ".join(f"'{str(i)}'" for i in lst)


class ParameterDict:
    """An ordered map full name → Parameter, with a prefix and an optional shared dict.

    ``get(name)`` looks up ``prefix + name`` (then in ``shared``) and CREATES the parameter when it
    is missing — as in Gluon. ``[]`` needs the full name. There is no ``len()`` (as in Gluon);
    iterate instead."""

    def __init__(self, prefix="", shared=None):
        self._prefix = prefix
        self._params = OrderedDict()
        self._shared = shared

    def __repr__(self) -> str:
        name = self._prefix + " " if self._prefix else ""
        content = "\n".join("  " + repr(v) for v in self.values())
        return f"{name}(\n{content}\n)"

    def __getitem__(self, key):
        return self._params[key]

    def __iter__(self):
        return iter(self._params)

    def items(self):
        return self._params.items()

    def keys(self):
        return self._params.keys()

    def values(self):
        return self._params.values()

    @property
    def prefix(self):
        return self._prefix

    def _get_impl(self, name):
        if name in self._params:
            return self._params[name]
        if self._shared is not None and name in self._shared._params:
            self._params[name] = self._shared._params[name]
            return self._shared._params[name]
        return None

    def get(self, name, **kwargs):
        """The parameter ``prefix + name``, created with ``kwargs`` when missing.

        For an existing parameter every given attribute must match (shapes may fill each other's
        unknown 0 dimensions)."""
        name = self.prefix + name
        param = self._get_impl(name)
        if param is None:
            param = Parameter(name, **kwargs)
            self._params[name] = param
            return param
        for k, v in kwargs.items():
            if hasattr(param, k) and getattr(param, k) is not None:
                existing = getattr(param, k)
                if k == "shape" and len(v) == len(existing):
                    inferred, matched = [], True
                    for dim1, dim2 in zip(v, existing):
                        if dim1 != dim2 and dim1 * dim2 != 0:
                            matched = False
                            break
                        inferred.append(dim1 if dim1 == dim2 or dim2 == 0 else dim2)
                    if matched:
                        param._shape = tuple(inferred)
                        continue
                elif k == "dtype" and np.dtype(v) == np.dtype(existing):
                    continue
                assert v is None or v == existing, \
                    (f"Cannot retrieve Parameter '{name}' because desired attribute does not "
                     f"match with stored for attribute '{k}': desired '{v}' vs stored "
                     f"'{getattr(param, k)}'.")
            else:
                setattr(param, k, v)
        return param

    def get_constant(self, name, value=None):
        name = self.prefix + name
        param = self._get_impl(name)
        if param is None:
            if value is None:
                raise KeyError(f"No constant named '{name}'. Please specify value if you want "
                               "to create a new constant.")
            param = Constant(name, value)
            self._params[name] = param
        elif value is not None:
            assert isinstance(param, Constant), \
                f"Parameter '{name}' already exists but it is not a constant."
            if isinstance(value, NDArray):
                value = value.asnumpy()
            assert param.shape == np.shape(value) and \
                (param.value.asnumpy() == value).all(), \
                f"Constant '{name}' already exists but it's value doesn't match new value"
        return param

    def update(self, other):
        """Merge ``other`` in; a name already present must map to the same Parameter."""
        for k, v in other.items():
            if k in self._params:
                assert self._params[k] is v, \
                    (f"Cannot update self with other because they have different Parameters "
                     f"with the same name '{k}'")
        for k, v in other.items():
            self._params[k] = v

    def initialize(self, init=_initializer.Uniform(), ctx=None, verbose=False,  # noqa: B008, FBT002
                   force_reinit=False):  # noqa: FBT002
        """Initialize every parameter, ``init`` being only the default (see the precedence above).

        All-or-nothing: if any parameter's initializer fails, none is changed."""
        if verbose:
            init.set_verbosity(verbose=verbose)
        state = _rng.getstate()
        plans = []
        try:
            for _, v in self.items():
                # Warned from here, as Gluon does (its stacklevel=2 lands in
                # ParameterDict.initialize): one location, so the default filter shows a
                # repeated identical re-init once, whoever calls.
                plans.append((v, v._plan_init(None, ctx, init, force_reinit, 1)))
        except BaseException:
            _rng.setstate(state)
            raise
        for v, plan in plans:
            v._commit_init(plan)

    def zero_grad(self):
        for p in self.values():
            p.zero_grad()

    def reset_ctx(self, ctx):
        for p in self.values():
            p.reset_ctx(ctx)

    def list_ctx(self):
        s = []
        for p in self.values():
            for c in p.list_ctx():
                if c not in s:
                    s.append(c)
        return s

    def setattr(self, name, value):
        """Set an attribute (``grad_req``, ``lr_mult``, ...) on every parameter."""
        for p in self.values():
            setattr(p, name, value)

    def save(self, filename, strip_prefix=""):
        """Save with full names as keys (``strip_prefix`` removed) to an ``.npz``, atomically."""
        arg_dict = {}
        for param in self.values():
            weight = param._reduce()
            if not param.name.startswith(strip_prefix):
                raise ValueError(
                    f"Prefix '{strip_prefix}' is to be striped before saving, but Parameter's "
                    f"name '{param.name}' does not start with '{strip_prefix}'. this may be due "
                    "to your Block shares parameters from other Blocks or you forgot to use "
                    "'with name_scope()' when creating child blocks. For more info on naming, "
                    "please see https://mxnet.apache.org/api/python/docs/tutorials/packages/"
                    "gluon/blocks/naming.html")
            arg_dict[param.name[len(strip_prefix):]] = weight
        save_arrays(filename, arg_dict)

    def load(self, filename, ctx=None, allow_missing=False, ignore_extra=False,  # noqa: FBT002
             restore_prefix="", cast_dtype=False, dtype_source="current"):  # noqa: FBT002
        """Load what ``save`` wrote; keys get ``restore_prefix`` prepended. All-or-nothing."""
        if restore_prefix:
            for name in self.keys():
                assert name.startswith(restore_prefix), \
                    (f"restore_prefix is '{restore_prefix}' but Parameters name '{name}' does "
                     f"not start with '{restore_prefix}'")
        lprefix = len(restore_prefix)
        loaded = [(k[4:] if k.startswith(("arg:", "aux:")) else k, v)
                  for k, v in load_arrays(filename).items()]
        arg_dict = {restore_prefix + k: v for k, v in loaded}
        if not allow_missing:
            for name in self.keys():
                assert name in arg_dict, \
                    (f"Parameter '{name[lprefix:]}' is missing in file '{filename}', which "
                     f"contains parameters: {_brief_print_list(arg_dict.keys())}. Please make "
                     "sure source and target networks have the same prefix.")
        todo = []
        for name in arg_dict:
            if name not in self._params:
                assert ignore_extra, \
                    (f"Parameter '{name[lprefix:]}' loaded from file '{filename}' is not present "
                     f"in ParameterDict, choices are: {_brief_print_list(self._params.keys())}. "
                     "Set ignore_extra to True to ignore. Please make sure source and target "
                     "networks have the same prefix.")
                continue
            todo.append((self[name], arg_dict[name]))
        load_all(todo, cast_dtype=cast_dtype, dtype_source=dtype_source)


def _check_loadable(param, data, cast_dtype):
    if param.shape:
        assert len(param.shape) == data.ndim and all(
            s in (0, d) for s, d in zip(param.shape, data.shape)), \
            (f"Failed loading Parameter '{param.name}' from saved params: shape incompatible "
             f"expected {param.shape} vs saved {data.shape}")
    if not cast_dtype and param.dtype is not None and np.dtype(param.dtype) != data.dtype:
        raise AssertionError(
            f"Failed loading Parameter '{param.name}' from saved params: dtype incompatible "
            f"expected {np.dtype(param.dtype)} vs saved {data.dtype}. Set cast_dtype=True to "
            "cast the dtype of saved params.")


def load_all(pairs, cast_dtype=False, dtype_source="current"):  # noqa: FBT002
    """Load ``(parameter, array)`` pairs: every pair is checked before any parameter changes."""
    for param, data in pairs:
        _check_loadable(param, np.asarray(data), cast_dtype)
    for param, data in pairs:
        param._load_init(data, cast_dtype=cast_dtype, dtype_source=dtype_source)


def _regex_select(params, select):
    pattern = re.compile(select)
    return {k: v for k, v in params.items() if pattern.match(k)}
