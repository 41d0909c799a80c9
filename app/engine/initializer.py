"""Initializers with MXNet's API and dispatch rules (``from app.engine import init``).

A subclass fills the array it is given in place in ``_init_weight(name, arr)``. How Gluon calls it
matters: ``Parameter.initialize`` always calls ``default_init(InitDesc(name, {'__init__': init}),
arr)``, and because ``__init__`` is set this becomes ``create(init)._init_weight(desc, arr)``
whatever the parameter's name. So ``_init_bias``, ``_init_gamma`` and friends run only when an
initializer is called with a plain ``InitDesc`` (no ``__init__``), never under Gluon's
``initialize`` — which is why the chapter's ``MyInit._init_bias`` never sets the bias to 1: the
bias has its own initializer (``bias_initializer='zeros'``), which wins over the global one.

Every built-in documents its formula. ``fan_in``/``fan_out`` of a weight of shape
``(out, in, *kernel)`` are ``in·∏kernel`` and ``out·∏kernel``.
"""

from __future__ import annotations

import json
import logging
import math
import re
import warnings
from typing import Annotated, Literal

import numpy as np

from . import random as _rng
from .ndarray.ndarray import NDArray

__all__ = ["InitDesc", "Initializer", "Range", "DataDependentInitializer", "initialize_with_data", "register", "alias", "create", "Zero", "One", "Constant",
           "Uniform", "Normal", "TruncNorm", "Xavier", "MSRAPrelu", "Orthogonal", "Bilinear",
           "LSTMBias", "Mixed", "Load", "registered", "fan_in_fan_out"]


class Range:
    """Bounds of a numeric setting, used as ``Annotated[float, Range(0.0, None)]``.

    ``low``/``high`` are inclusive unless ``low_open``/``high_open``; ``None`` is unbounded. The
    plugin host reads these to validate forms; nothing here enforces them at run time."""

    __slots__ = ("low", "high", "low_open", "high_open")

    def __init__(self, low=None, high=None, low_open=False, high_open=False):  # noqa: FBT002
        self.low, self.high = low, high
        self.low_open, self.high_open = low_open, high_open

    def contains(self, value) -> bool:
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return False
        if self.high is not None and (value > self.high or (self.high_open and value == self.high)):
            return False
        return True

    def describe(self) -> str:
        lo = "-∞" if self.low is None else repr(self.low)
        hi = "∞" if self.high is None else repr(self.high)
        return f"{'(' if self.low_open or self.low is None else '['}{lo}, {hi}" \
               f"{')' if self.high_open or self.high is None else ']'}"

    def __repr__(self) -> str:
        return f"Range({self.low!r}, {self.high!r})"


class InitDesc(str):
    """A parameter's name with attributes: ``attrs['__init__']`` names the initializer to use."""

    def __new__(cls, name, attrs=None, global_init=None):
        ret = super().__new__(cls, name)
        ret.attrs = attrs or {}
        ret.global_init = global_init
        return ret


_REGISTRY: dict[str, type] = {}


def register(klass):
    """Register an Initializer subclass under its lower-cased class name (``create`` finds it)."""
    if not (isinstance(klass, type) and issubclass(klass, Initializer)):
        raise TypeError(f"Can only register subclass of Initializer, got {klass!r}")
    name = klass.__name__.lower()
    if name in _REGISTRY and _REGISTRY[name] is not klass:
        warnings.warn(f"New initializer {klass.__module__}.{klass.__name__} is overriding "
                      f"existing initializer {_REGISTRY[name].__module__}."
                      f"{_REGISTRY[name].__name__}", UserWarning, stacklevel=2)
    _REGISTRY[name] = klass
    return klass


def alias(*aliases):
    """Register extra names for an initializer class (``@alias('zeros')``)."""
    def reg(klass):
        for a in aliases:
            _REGISTRY[a.lower()] = klass
        return klass
    return reg


def registered() -> dict[str, type]:
    """A copy of the name → class registry."""
    return dict(_REGISTRY)


def create(*args, **kwargs):
    """An initializer from an instance (returned as is), a registered name, or its ``dumps()``."""
    if args:
        name, args = args[0], args[1:]
    else:
        name = kwargs.pop("initializer")
    if isinstance(name, Initializer):
        assert not args and not kwargs
        return name
    if isinstance(name, dict):
        return create(**name)
    assert isinstance(name, str), "initializer must be of string type"
    if name.startswith("["):
        assert not args and not kwargs
        name, kwargs = json.loads(name)
        return create(name, **kwargs)
    if name.startswith("{"):
        assert not args and not kwargs
        return create(**json.loads(name))
    lname = name.lower()
    assert lname in _REGISTRY, \
        f"{lname} is not registered. Please register with initializer.register first"
    return _REGISTRY[lname](*args, **kwargs)


def _norm_stat(arr) -> str:
    a = arr._data if isinstance(arr, NDArray) else np.asarray(arr)
    return str(np.float32(np.linalg.norm(a.astype(np.float32).ravel()) / math.sqrt(a.size)))


def fan_in_fan_out(shape) -> tuple[float, float]:
    """``(fan_in, fan_out)`` of a weight of shape ``(out, in, *kernel)``."""
    hw = float(np.prod(shape[2:])) if len(shape) > 2 else 1.0
    return shape[1] * hw, shape[0] * hw


class Initializer:
    """Base class: subclasses implement ``_init_weight(name, arr)`` and fill ``arr`` in place.

    Keyword arguments given to ``__init__`` are kept in ``_kwargs``; ``dumps()`` serializes them
    and two initializers are equal when their types and ``_kwargs`` are.
    """

    def __init__(self, **kwargs):
        self._kwargs = kwargs
        self._verbose = False
        self._print_func = None

    def set_verbosity(self, verbose=False, print_func=None):  # noqa: FBT002
        """Log ``Initialized <name> as <init>: <stat>`` at INFO level for each parameter.

        The default statistic is ``norm(x)/sqrt(x.size)``."""
        self._verbose = verbose
        if print_func is None:
            print_func = _norm_stat
        self._print_func = print_func
        return self

    def _verbose_print(self, desc, init, arr):
        if self._verbose and self._print_func:
            logging.info("Initialized %s as %s: %s", desc, init, self._print_func(arr))

    def dumps(self) -> str:
        """``'["uniform", {"scale": 0.07}]'``: the registered name and the keyword arguments."""
        return json.dumps([self.__class__.__name__.lower(), self._kwargs])

    def __call__(self, desc, arr):
        if not isinstance(desc, InitDesc):
            self._legacy_init(desc, arr)
            return
        if desc.global_init is None:
            desc.global_init = self
        init = desc.attrs.get("__init__", "")
        if init:
            create(init)._init_weight(desc, arr)
            self._verbose_print(desc, init, arr)
        else:
            if desc.endswith("weight"):
                self._init_weight(desc, arr)
                self._verbose_print(desc, "weight", arr)
            elif desc.endswith("bias"):
                self._init_bias(desc, arr)
                self._verbose_print(desc, "bias", arr)
            elif desc.endswith("gamma"):
                self._init_gamma(desc, arr)
                self._verbose_print(desc, "gamma", arr)
            elif desc.endswith("beta"):
                self._init_beta(desc, arr)
                self._verbose_print(desc, "beta", arr)
            elif desc.endswith("min"):
                self._init_zero(desc, arr)
                self._verbose_print(desc, "min", arr)
            elif desc.endswith("max"):
                self._init_one(desc, arr)
                self._verbose_print(desc, "max", arr)
            else:
                self._init_default(desc, arr)

    def _legacy_init(self, name, arr):
        warnings.warn("Calling initializer with init(str, NDArray) has been deprecated. "
                      "Please use init(init.InitDesc(...), NDArray) instead.",
                      DeprecationWarning, stacklevel=3)
        if not isinstance(name, str):
            raise TypeError("name must be string")
        if not isinstance(arr, NDArray):
            raise TypeError("arr must be NDArray")
        if name.endswith("weight"):
            self._init_weight(name, arr)
        elif name.endswith("bias"):
            self._init_bias(name, arr)
        elif name.endswith("gamma"):
            self._init_gamma(name, arr)
        elif name.endswith("beta"):
            self._init_beta(name, arr)
        elif name.endswith("min"):
            self._init_zero(name, arr)
        elif name.endswith("max"):
            self._init_one(name, arr)
        else:
            self._init_default(name, arr)

    def _init_zero(self, _, arr):
        arr[:] = 0.0

    def _init_one(self, _, arr):
        arr[:] = 1.0

    def _init_bias(self, _, arr):
        arr[:] = 0.0

    def _init_gamma(self, _, arr):
        arr[:] = 1.0

    def _init_beta(self, _, arr):
        arr[:] = 0.0

    def _init_weight(self, name, arr):
        raise NotImplementedError("Must override it")

    def _init_default(self, name, _):
        raise ValueError(
            f"Unknown initialization pattern for {name}. Default initialization is now limited "
            'to "weight", "bias", "gamma" (1.0), and "beta" (0.0). Please give the parameter '
            "its own initializer (Parameter(init=...)) to initialize it.")

    def __eq__(self, other):
        if not isinstance(other, Initializer):
            return NotImplemented
        return type(self) is type(other) and self._kwargs == other._kwargs

    def __hash__(self):
        return hash((type(self), json.dumps(self._kwargs, sort_keys=True, default=str)))


@register
@alias("zeros")
class Zero(Initializer):
    """All zeros."""

    def __init__(self):
        super().__init__()

    def _init_weight(self, _, arr):
        arr[:] = 0


@register
@alias("ones")
class One(Initializer):
    """All ones."""

    def __init__(self):
        super().__init__()

    def _init_weight(self, _, arr):
        arr[:] = 1


@register
class Constant(Initializer):
    """Every element set to ``value`` (a scalar, or an array broadcast to the shape)."""

    def __init__(self, value: float = 0.0):
        kw = value.asnumpy().tolist() if isinstance(value, NDArray) else (
            value.tolist() if isinstance(value, np.ndarray) else value)
        super().__init__(value=kw)
        self.value = value

    def _init_weight(self, _, arr):
        arr[:] = self.value


@register
class Uniform(Initializer):
    """Uniform draws in ``[-scale, scale)``."""

    def __init__(self, scale: Annotated[float, Range(0.0, None)] = 0.07):
        super().__init__(scale=scale)
        self.scale = scale

    def _init_weight(self, _, arr):
        _rng.uniform(-self.scale, self.scale, out=arr._data)


@register
class Normal(Initializer):
    """Normal draws with mean 0 and standard deviation ``sigma``."""

    def __init__(self, sigma: Annotated[float, Range(0.0, None)] = 0.01):
        super().__init__(sigma=sigma)
        self.sigma = sigma

    def _init_weight(self, _, arr):
        _rng.normal(0.0, self.sigma, out=arr._data)


@register
class TruncNorm(Initializer):
    """Normal(mean, stdev) draws truncated to [mean - 2·stdev, mean + 2·stdev].

    Values outside the interval are drawn again (from the same stream) until they fall inside, so
    the density is the normal density restricted to the interval and renormalized."""

    def __init__(self, mean: float = 0.0, stdev: Annotated[float, Range(0.0, None)] = 0.01):
        super().__init__(mean=mean, stdev=stdev)
        self.mean = mean
        self.stdev = stdev

    def _init_weight(self, _, arr):
        out = arr._data
        flat = _rng.normal(self.mean, self.stdev, shape=out.shape, dtype=out.dtype).ravel()
        lo = self.mean - 2 * self.stdev
        hi = self.mean + 2 * self.stdev
        bad = np.flatnonzero((flat < lo) | (flat > hi))
        while bad.size:
            flat[bad] = _rng.normal(self.mean, self.stdev, shape=(bad.size,), dtype=out.dtype)
            bad = bad[(flat[bad] < lo) | (flat[bad] > hi)]
        out[...] = flat.reshape(out.shape)


@register
class Xavier(Initializer):
    """Xavier/Glorot: variance scaled by the weight's fan-in and fan-out.

    ``scale = sqrt(magnitude / factor)`` with factor ``(fan_in+fan_out)/2`` ('avg'), ``fan_in``
    ('in') or ``fan_out`` ('out'); then ``U[-scale, scale]`` ('uniform') or ``N(0, scale)``
    ('gaussian'). Needs a weight of at least 2 dimensions."""

    def __init__(self, rnd_type: Literal["uniform", "gaussian"] = "uniform",
                 factor_type: Literal["avg", "in", "out"] = "avg",
                 magnitude: Annotated[float, Range(0.0, None)] = 3):
        super().__init__(rnd_type=rnd_type, factor_type=factor_type, magnitude=magnitude)
        self.rnd_type = rnd_type
        self.factor_type = factor_type
        self.magnitude = float(magnitude)

    def scale_for(self, shape, name="weight") -> float:
        if len(shape) < 2:
            raise ValueError(f"Xavier initializer cannot be applied to vector {name}. "
                             "It requires at least 2D.")
        fan_in, fan_out = fan_in_fan_out(shape)
        if self.factor_type == "avg":
            factor = (fan_in + fan_out) / 2.0
        elif self.factor_type == "in":
            factor = fan_in
        elif self.factor_type == "out":
            factor = fan_out
        else:
            raise ValueError("Incorrect factor type")
        return float(np.sqrt(self.magnitude / factor))

    def _init_weight(self, name, arr):
        scale = self.scale_for(arr.shape, name)
        if self.rnd_type == "uniform":
            _rng.uniform(-scale, scale, out=arr._data)
        elif self.rnd_type == "gaussian":
            _rng.normal(0.0, scale, out=arr._data)
        else:
            raise ValueError("Unknown random type")


@register
class MSRAPrelu(Xavier):
    """He/MSRA for PReLU: Gaussian Xavier with magnitude 2/(1+slope²)."""

    def __init__(self, factor_type: Literal["avg", "in", "out"] = "avg",
                 slope: Annotated[float, Range(0.0, None)] = 0.25):
        magnitude = 2.0 / (1 + slope ** 2)
        super().__init__("gaussian", factor_type, magnitude)
        self._kwargs = {"factor_type": factor_type, "slope": slope}


@register
class Orthogonal(Initializer):
    """Orthogonal rows (or columns) times ``scale``, from the SVD of a random matrix.

    The random ``(out, ∏rest)`` matrix is ``U(-1, 1)`` for rand_type 'uniform' and ``N(0, 1)``
    for 'normal': rows are orthonormal when out ≤ ∏rest, columns otherwise."""

    def __init__(self, scale: float = 1.414,
                 rand_type: Literal["uniform", "normal"] = "uniform"):
        super().__init__(scale=scale, rand_type=rand_type)
        self.scale = scale
        self.rand_type = rand_type

    def _init_weight(self, _, arr):
        nout = arr.shape[0]
        nin = int(np.prod(arr.shape[1:]))
        if self.rand_type == "uniform":
            tmp = _rng.uniform(-1.0, 1.0, shape=(nout, nin), dtype=np.float32)
        elif self.rand_type == "normal":
            tmp = _rng.normal(0.0, 1.0, shape=(nout, nin), dtype=np.float32)
        else:
            raise ValueError(f"Unknown random type {self.rand_type!r}: use 'uniform' or 'normal'")
        u, _s, v = np.linalg.svd(tmp, full_matrices=False)
        res = u if u.shape == tmp.shape else v
        arr[:] = (self.scale * res).reshape(arr.shape)


@register
class Bilinear(Initializer):
    """Bilinear up-sampling kernel for a deconvolution weight of shape (.., .., h, w)."""

    def __init__(self):
        super().__init__()

    def _init_weight(self, _, arr):
        shape = arr.shape
        if len(shape) < 4:
            raise ValueError("Bilinear initializer needs a 4-D weight (out, in, h, w)")
        f = np.ceil(shape[3] / 2.0)
        c = (2 * f - 1 - f % 2) / (2.0 * f)
        i = np.arange(int(np.prod(shape)))
        x = i % shape[3]
        y = (i // shape[3]) % shape[2]
        weight = ((1 - np.abs(x / f - c)) * (1 - np.abs(y / f - c))).astype(np.float32)
        arr[:] = weight.reshape(shape)


@register
class LSTMBias(Initializer):
    """Zeros except the forget gate's quarter, set to ``forget_bias``."""

    def __init__(self, forget_bias: float = 1.0):
        super().__init__(forget_bias=forget_bias)
        self.forget_bias = forget_bias

    def _init_weight(self, name, arr):
        arr[:] = 0.0
        num_hidden = int(arr.shape[0] / 4)
        arr[num_hidden:2 * num_hidden] = self.forget_bias


class Mixed:
    """Pick an initializer by the first regex (``re.match``) that matches a parameter's name.

    Not an Initializer: it cannot be passed to Gluon's ``initialize`` (as in MXNet)."""

    def __init__(self, patterns, initializers):
        assert len(patterns) == len(initializers)
        self.map = list(zip([re.compile(p) for p in patterns], initializers))

    def __call__(self, name, arr):
        for prog, init in self.map:
            if prog.match(name):
                init(name, arr)
                return
        raise ValueError(f"Parameter name {name} did not match any pattern. Consider add a "
                         '".*" pattern at the and with default Initializer.')


class Load:
    """Initialize by name from a dict (or an ``nd.save`` file); others go to ``default_init``."""

    def __init__(self, param, default_init=None, verbose=False):  # noqa: FBT002
        if isinstance(param, str):
            from .ndarray.io import load
            param = load(param)
        assert isinstance(param, dict)
        self.param = {}
        for name, arr in param.items():
            if name.startswith("arg:") or name.startswith("aux:"):
                self.param[name[4:]] = arr
            else:
                self.param[name] = arr
        self.default_init = default_init
        self.verbose = verbose

    def __call__(self, name, arr):
        if name in self.param:
            assert arr.shape == self.param[name].shape, \
                (f"Parameter {name} cannot be initialized from loading. Shape mismatch, target "
                 f"{arr.shape} vs loaded {self.param[name].shape}")
            arr[:] = self.param[name]
            if self.verbose:
                logging.info("Initialized %s by loading", name)
        else:
            assert self.default_init is not None, \
                (f"Cannot Initialize {name}. Not found in loaded param and no default "
                 "Initializer is provided.")
            self.default_init(name, arr)
            if self.verbose:
                logging.info("Initialized %s by default", name)


class DataDependentInitializer(Initializer):
    """An initializer that needs a batch of input data (LSUV and its kind).

    It works in two stages: ``_init_weight`` gives every array its starting values, as any
    initializer does; then ``calibrate(net, batch)`` runs forward passes on ``batch`` and adjusts
    the parameters in place (e.g. rescales each layer to unit output variance). Run both with
    :func:`initialize_with_data`, which is all-or-nothing."""

    needs_data = True

    def calibrate(self, net, batch) -> None:
        raise NotImplementedError("Must override calibrate(net, batch)")


def initialize_with_data(net, initializer, batch, force_reinit=True):  # noqa: FBT002
    """Initialize ``net`` with ``initializer`` and, for a :class:`DataDependentInitializer`, run
    its ``calibrate(net, batch)``. The first forward on ``batch`` resolves deferred shapes.

    All-or-nothing: if anything fails (the initializer, the forward, the calibration, or a
    non-finite result), every parameter gets back its previous state and the random stream is
    rewound; the error names the initializer."""
    from . import autograd
    params = list(net.collect_params().values())
    saved = [(p, p._save_state()) for p in params]
    copies = [(p._data._data.copy() if p._data is not None else None) for p in params]
    state = _rng.getstate()
    try:
        net.initialize(initializer, force_reinit=force_reinit)
        with autograd.pause(), autograd.predict_mode():
            net(batch)
            if getattr(initializer, "needs_data", False):
                initializer.calibrate(net, batch)
        for p in params:
            if p._data is not None and p._data._data.dtype.kind == "f" and \
                    not np.isfinite(p._data._data).all():
                raise ValueError(f"Initializer {type(initializer).__name__} produced NaN or "
                                 f"infinite values in Parameter '{p.name}'. No parameter was "
                                 "changed.")
    except BaseException as err:
        for (p, st), arr in zip(saved, copies):
            p._restore_state(st)
            if arr is not None and p._data is not None:
                p._data._data[...] = arr
        _rng.setstate(state)
        if not isinstance(err, Exception) or type(initializer).__name__ in str(err):
            raise
        msg = (f"{err}\n(while initializing with {type(initializer).__name__} on a batch of "
               f"shape {tuple(batch.shape)}; no parameter was changed)")
        try:
            new = type(err)(msg)
        except Exception:  # noqa: BLE001 - exotic exception signature
            raise err from None
        raise new.with_traceback(err.__traceback__) from err
