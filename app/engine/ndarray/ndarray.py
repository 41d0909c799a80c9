"""The NDArray: a NumPy array with Gluon's printing, its autograd hooks, and the operators.

Each operator computes its forward with NumPy and, when recording, attaches a backward rule right
beside it: ``rule(g, bufs) -> grads`` where ``g`` is the gradient of the output and ``bufs`` has one
entry per input: ``None`` (that input needs no gradient: skip the work), ``True`` (compute it), or
a NumPy array the rule may write its result into (the input is a parameter's only use, so the
gradient can land in its buffer with no copy). Rules return one gradient (or ``None``) per input,
already reduced to the input's shape where broadcasting took place.
"""

from __future__ import annotations

import numbers

import numpy as np

from .. import autograd as _ag
from ..autograd import _Node, _st
from ..base import MXNetError, current_context

__all__ = [
    "NDArray", "array", "zeros", "ones", "full", "empty", "arange", "zeros_like", "ones_like",
    "full_like", "concat", "stack", "dot", "batch_dot", "FullyConnected", "Activation",
    "LeakyReLU", "relu", "sigmoid", "tanh", "softrelu", "softsign", "softmax", "log_softmax",
    "exp", "log", "sqrt", "square", "abs", "sign", "negative", "add", "subtract", "multiply",
    "divide", "power", "maximum", "minimum", "sum", "mean", "max", "min", "norm", "reshape",
    "transpose", "flatten", "Flatten", "expand_dims", "broadcast_to", "clip", "where", "one_hot",
    "pick", "take", "Embedding", "Dropout", "argmax", "argmin", "square_sum", "linalg_gemm2",
    "moveaxis", "split", "squeeze", "cast", "stop_gradient", "BlockGrad", "sin", "cos", "tile",
    "swapaxes", "slice_axis", "LayerNorm", "BatchNorm", "waitall", "identity",
]

float32 = np.float32
_DEFAULT_DTYPE = np.dtype(np.float32)


def _dtype(dtype):
    return _DEFAULT_DTYPE if dtype is None else np.dtype(dtype)


def _shape_tuple(shape):
    if shape is None:
        return ()
    if isinstance(shape, numbers.Integral):
        return (int(shape),)
    return tuple(int(s) for s in shape)


class NDArray:
    """An n-dimensional array on ``cpu(0)``, float32 unless told otherwise.

    ``asnumpy()`` returns a copy; ``np.asarray(x)`` shares memory. Arithmetic with scalars, NumPy
    arrays and other NDArrays broadcasts as NumPy does and is differentiable under
    ``autograd.record()``.
    """

    __slots__ = ("_data", "_node", "_grad", "_grad_req", "_fresh_grad", "__weakref__")
    __array_priority__ = 1000.0

    def __init__(self, data=None):
        if data is None:
            data = np.zeros((0,), _DEFAULT_DTYPE)
        elif not isinstance(data, np.ndarray):
            data = np.asarray(data, dtype=_DEFAULT_DTYPE)
        self._data = data
        self._node = None
        self._grad = None
        self._grad_req = "null"
        self._fresh_grad = False

    # ----------------------------------------------------------------- basics
    @property
    def shape(self):
        return self._data.shape

    @property
    def dtype(self):
        return self._data.dtype.type

    @property
    def size(self):
        return self._data.size

    @property
    def ndim(self):
        return self._data.ndim

    @property
    def context(self):
        return current_context()

    ctx = context

    @property
    def stype(self):
        return "default"

    @property
    def handle(self):  # pragma: no cover - MXNet compatibility only
        return id(self)

    def asnumpy(self) -> np.ndarray:
        """A copy of the values as a NumPy array."""
        return self._data.copy()

    def asscalar(self):
        if self._data.size != 1:
            raise ValueError("The current array is not a scalar")
        return self._data.reshape(()).item() if self._data.dtype.kind != "f" else \
            self._data.dtype.type(self._data.reshape(())[()])

    def __array__(self, dtype=None, copy=None):
        if dtype is None:
            return self._data
        return self._data.astype(dtype, copy=False)

    def tolist(self):
        return self._data.tolist()

    def wait_to_read(self):
        return None

    wait_to_write = wait_to_read

    def as_in_context(self, context):
        return self

    as_in_ctx = as_in_context

    def copyto(self, other):
        if isinstance(other, NDArray):
            if other is self:
                return other
            np.copyto(other._data, self._data, casting="unsafe")
            return other
        return NDArray(self._data.copy())

    def copy(self):
        return NDArray(self._data.copy())

    def astype(self, dtype, copy=True):  # noqa: FBT002
        dt = np.dtype(dtype)
        if not copy and dt == self._data.dtype:
            return self
        src = self._data
        out = _result(src.astype(dt), (self,), lambda g, b: (g.astype(src.dtype),))
        return out

    def detach(self):
        return NDArray(self._data)

    def __repr__(self) -> str:
        shape = "x".join(str(s) for s in self._data.shape) if self._data.ndim else "1"
        return f"\n{self._data}\n<NDArray {shape} @{self.context}>"

    def __str__(self) -> str:
        return self.__repr__()

    def __len__(self) -> int:
        return self._data.shape[0]

    def __iter__(self):
        for i in range(self._data.shape[0]):
            yield self[i]

    def __bool__(self) -> bool:
        if self._data.size == 1:
            return bool(self._data.reshape(())[()])
        if self._data.size == 0:
            return False
        raise ValueError("The truth value of an NDArray with multiple elements is ambiguous.")

    def __float__(self):
        return float(self.asscalar())

    def __int__(self):
        return int(self.asscalar())

    def __index__(self):
        return int(self.asscalar())

    __hash__ = object.__hash__

    def __reduce__(self):  # NDArrays never travel as pickles; refuse loudly
        raise TypeError("NDArray objects are not picklable; save them with nd.save (.npz)")

    # ----------------------------------------------------------------- autograd
    def attach_grad(self, grad_req: str = "write", stype=None):
        """Allocate a zero gradient buffer and mark this array as a variable to differentiate."""
        self._attach(NDArray(np.zeros_like(self._data)), grad_req)

    def _attach(self, grad, grad_req):
        if grad_req not in ("write", "add", "null"):
            raise AssertionError(
                f"grad_req must be one of 'write', 'add', or 'null', but got '{grad_req}'")
        self._grad = grad if grad_req != "null" else None
        self._grad_req = grad_req
        self._fresh_grad = False
        self._node = _Node((), None, self) if grad_req != "null" else None

    @property
    def grad(self):
        return self._grad

    def _direct_grad_buffer(self):
        if self._grad_req == "write" and self._grad is not None:
            return self._grad._data
        return None

    def _write_grad(self, g):
        buf = self._grad
        if buf is None:
            return
        if self._grad_req == "add":
            buf._data += g
        else:
            np.copyto(buf._data, g, casting="unsafe")
        self._fresh_grad = True

    def _mark_fresh(self):
        self._fresh_grad = True

    def backward(self, out_grad=None, retain_graph=False, train_mode=True):  # noqa: FBT002
        """Differentiate this array (head gradient: ``out_grad``, ones by default)."""
        node = self._node
        if out_grad is None and node is not None and node.backward is not None:
            data = self._data
            head = np.empty(data.shape, data.dtype)
            head.fill(1)                    # np.ones, without its Python layer
            _ag._run_backward({node: head}, retain_graph, train_mode)
            return
        _ag.backward([self], None if out_grad is None else [out_grad],
                     retain_graph=retain_graph, train_mode=train_mode)

    # ----------------------------------------------------------------- arithmetic
    def __add__(self, other):
        return add(self, other)

    def __radd__(self, other):
        return add(other, self)

    def __sub__(self, other):
        return subtract(self, other)

    def __rsub__(self, other):
        return subtract(other, self)

    def __mul__(self, other):
        return multiply(self, other)

    def __rmul__(self, other):
        return multiply(other, self)

    def __truediv__(self, other):
        return divide(self, other)

    def __rtruediv__(self, other):
        return divide(other, self)

    def __pow__(self, other):
        return power(self, other)

    def __rpow__(self, other):
        return power(other, self)

    def __neg__(self):
        return negative(self)

    def __pos__(self):
        return self

    def __abs__(self):
        return abs(self)

    def __matmul__(self, other):
        return dot(self, other)

    def __mod__(self, other):
        return NDArray(np.mod(self._data, _raw(other)).astype(self._data.dtype, copy=False))

    def _inplace(self, ufunc, other):
        ufunc(self._data, _raw(other), out=self._data, casting="unsafe")
        return self

    def __iadd__(self, other):
        return self._inplace(np.add, other)

    def __isub__(self, other):
        return self._inplace(np.subtract, other)

    def __imul__(self, other):
        return self._inplace(np.multiply, other)

    def __itruediv__(self, other):
        return self._inplace(np.divide, other)

    def _compare(self, ufunc, other):
        return NDArray(ufunc(self._data, _raw(other)).astype(self._data.dtype))

    def __eq__(self, other):  # type: ignore[override]
        return self._compare(np.equal, other)

    def __ne__(self, other):  # type: ignore[override]
        return self._compare(np.not_equal, other)

    def __lt__(self, other):
        return self._compare(np.less, other)

    def __le__(self, other):
        return self._compare(np.less_equal, other)

    def __gt__(self, other):
        return self._compare(np.greater, other)

    def __ge__(self, other):
        return self._compare(np.greater_equal, other)

    # ----------------------------------------------------------------- indexing
    def __getitem__(self, key):
        key = _raw_key(key)
        data = self._data[key]
        if not isinstance(data, np.ndarray):
            data = np.asarray(data).reshape((1,))
        shape, dt = self._data.shape, self._data.dtype

        def rule(g, bufs):
            full = np.zeros(shape, dt)
            if _is_basic(key):
                full[key] += g.reshape(full[key].shape)
            else:
                np.add.at(full, key, g.reshape(np.shape(full[key])))
            return (full,)
        return _result(data, (self,), rule)

    def __setitem__(self, key, value):
        key = _raw_key(key)
        self._data[key] = _raw(value)

    # ----------------------------------------------------------------- methods
    def reshape(self, *shape, **kwargs):
        if not shape:
            shape = kwargs.get("shape")
        elif len(shape) == 1 and not isinstance(shape[0], numbers.Integral):
            shape = shape[0]
        return reshape(self, shape)

    def reshape_like(self, other):
        return reshape(self, other.shape)

    def flatten(self):
        return flatten(self)

    def expand_dims(self, axis):
        return expand_dims(self, axis)

    def squeeze(self, axis=None):
        return squeeze(self, axis)

    def transpose(self, *axes):
        if len(axes) == 1 and (axes[0] is None or not isinstance(axes[0], numbers.Integral)):
            axes = axes[0]
        return transpose(self, axes or None)

    @property
    def T(self):  # noqa: N802
        return transpose(self)

    def swapaxes(self, dim1, dim2):
        return swapaxes(self, dim1, dim2)

    def broadcast_to(self, shape):
        return broadcast_to(self, shape)

    def sum(self, axis=None, keepdims=False, exclude=False):  # noqa: FBT002
        return sum(self, axis, keepdims, exclude)

    def mean(self, axis=None, keepdims=False, exclude=False):  # noqa: FBT002
        return mean(self, axis, keepdims, exclude)

    def max(self, axis=None, keepdims=False):  # noqa: FBT002
        return max(self, axis, keepdims)

    def min(self, axis=None, keepdims=False):  # noqa: FBT002
        return min(self, axis, keepdims)

    def argmax(self, axis=None):
        return argmax(self, axis)

    def argmin(self, axis=None):
        return argmin(self, axis)

    def norm(self, ord=2, axis=None, keepdims=False):  # noqa: A002, FBT002
        return norm(self, ord, axis, keepdims)

    def exp(self):
        return exp(self)

    def log(self):
        return log(self)

    def sqrt(self):
        return sqrt(self)

    def square(self):
        return square(self)

    def abs(self):
        return abs(self)

    def sign(self):
        return sign(self)

    def relu(self):
        return relu(self)

    def sigmoid(self):
        return sigmoid(self)

    def tanh(self):
        return tanh(self)

    def softmax(self, axis=-1):
        return softmax(self, axis)

    def log_softmax(self, axis=-1):
        return log_softmax(self, axis)

    def clip(self, a_min, a_max):
        return clip(self, a_min, a_max)

    def zeros_like(self):
        return zeros_like(self)

    def ones_like(self):
        return ones_like(self)

    def one_hot(self, depth, on_value=1.0, off_value=0.0, dtype=None):
        return one_hot(self, depth, on_value, off_value, dtype)

    def pick(self, index, axis=-1, keepdims=False):  # noqa: FBT002
        return pick(self, index, axis, keepdims)

    def take(self, indices, axis=0):
        return take(self, indices, axis)

    def tile(self, reps):
        return tile(self, reps)

    def slice_axis(self, axis, begin, end):
        return slice_axis(self, axis, begin, end)

    def split(self, num_outputs, axis=1, squeeze_axis=False):  # noqa: FBT002
        return split(self, num_outputs, axis, squeeze_axis)


# ----------------------------------------------------------------------- op machinery
_NEW = NDArray.__new__
_NEW_NODE = _Node.__new__
_next_seq = _ag._next_seq


def _wrap(data):
    out = _NEW(NDArray)
    out._data = data
    out._node = None
    out._grad = None
    out._grad_req = "null"
    out._fresh_grad = False
    return out


def _result(data, inputs, rule):
    """Wrap ``data`` and, when recording and some input needs a gradient, attach ``rule``.

    (A parent whose graph was already freed by a backward takes no more gradient: its
    contributions are dropped, as it has neither a rule nor a buffer. A backward through this
    node after its parent is freed raises instead: see ``autograd._run_backward``.)"""
    out = _NEW(NDArray)
    out._data = data
    out._node = None
    out._grad = None
    out._grad_req = "null"
    out._fresh_grad = False
    if _st.recording:
        for i in inputs:
            if getattr(i, "_node", None) is not None:
                node = _NEW_NODE(_Node)         # _Node(parents, rule), without its __init__
                node.parents = tuple([getattr(j, "_node", None) for j in inputs])
                node.backward = rule
                node.array = None
                node.seq = _next_seq()
                out._node = node
                break
    return out


def _raw(x):
    if isinstance(x, NDArray):
        return x._data
    return x


def _raw_key(key):
    if isinstance(key, NDArray):
        return key._data.astype(np.int64)
    if isinstance(key, tuple):
        return tuple(_raw_key(k) for k in key)
    return key


def _is_basic(key):
    if isinstance(key, tuple):
        return all(_is_basic(k) for k in key)
    return key is None or key is Ellipsis or isinstance(key, (slice, numbers.Integral))


def _out(buf):
    return buf if isinstance(buf, np.ndarray) else None


def _unbroadcast(g, shape):
    """Sum ``g`` over the axes that broadcasting added or stretched, back to ``shape``."""
    if g.shape == shape:
        return g
    extra = g.ndim - len(shape)
    if extra > 0:
        g = g.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, s in enumerate(shape) if s == 1 and g.shape[i] != 1)
    if axes:
        g = g.sum(axis=axes, keepdims=True)
    return g.reshape(shape)


def _as_nd(x, like=None):
    if isinstance(x, NDArray):
        return x
    dt = like._data.dtype if like is not None else _DEFAULT_DTYPE
    return _wrap(np.asarray(x, dtype=dt))


def _scalar(x):
    return isinstance(x, numbers.Number) and not isinstance(x, bool) or isinstance(x, np.generic)


def _scalar_operand(x):
    """A scalar operand as a Python scalar: NumPy promotes ``float32 array · np.float64`` to
    float64, but MXNet (and NumPy with a Python scalar) keep the array's dtype."""
    return x.item() if isinstance(x, np.generic) else x


# ----------------------------------------------------------------------- creation
def array(source_array, ctx=None, dtype=None):
    """An NDArray holding a copy of ``source_array`` (float32 unless ``dtype`` says otherwise)."""
    if isinstance(source_array, NDArray):
        dt = source_array._data.dtype if dtype is None else np.dtype(dtype)
        return _wrap(source_array._data.astype(dt, copy=True))
    dt = _dtype(dtype)
    data = np.array(source_array, dtype=dt, copy=True)
    if data.ndim == 0:
        data = data.reshape((1,))
    return _wrap(data)


def empty(shape, ctx=None, dtype=None):
    return _wrap(np.empty(_shape_tuple(shape), _dtype(dtype)))


def zeros(shape, ctx=None, dtype=None, **kwargs):
    return _wrap(np.zeros(_shape_tuple(shape), _dtype(dtype)))


def ones(shape, ctx=None, dtype=None, **kwargs):
    return _wrap(np.ones(_shape_tuple(shape), _dtype(dtype)))


def full(shape, val, ctx=None, dtype=None, out=None):
    if out is not None:
        out._data[...] = val
        return out
    return _wrap(np.full(_shape_tuple(shape), val, _dtype(dtype)))


def arange(start, stop=None, step=1.0, repeat=1, ctx=None, dtype=None):
    data = np.arange(start, stop, step, dtype=_dtype(dtype))
    if repeat != 1:
        data = np.repeat(data, repeat)
    return _wrap(data)


def zeros_like(data, **kwargs):
    return _wrap(np.zeros_like(_raw(data)))


def ones_like(data, **kwargs):
    return _wrap(np.ones_like(_raw(data)))


def full_like(data, fill_value, **kwargs):
    return _wrap(np.full_like(_raw(data), fill_value))


def waitall():
    return None


# ----------------------------------------------------------------------- elementwise binary
def _binary(fwd, lhs, rhs, grad_l, grad_r):
    """Broadcasting binary op. ``grad_l(g, a, b, out)`` gives dL/da (before un-broadcasting)."""
    a_nd = isinstance(lhs, NDArray)
    b_nd = isinstance(rhs, NDArray)
    if not a_nd and not b_nd:
        raise TypeError("at least one operand must be an NDArray")
    a = lhs._data if a_nd else (_scalar_operand(lhs) if _scalar(lhs)
                                else np.asarray(_raw(lhs), rhs._data.dtype))
    b = rhs._data if b_nd else (_scalar_operand(rhs) if _scalar(rhs)
                                else np.asarray(_raw(rhs), lhs._data.dtype))
    out = fwd(a, b)
    if not isinstance(out, np.ndarray):
        out = np.asarray(out)
    a_shape = np.shape(a)
    b_shape = np.shape(b)

    def rule(g, bufs):
        ga = _unbroadcast(grad_l(g, a, b, out), a_shape) if bufs[0] is not None else None
        gb = _unbroadcast(grad_r(g, a, b, out), b_shape) if bufs[1] is not None else None
        return ga, gb
    return _result(out, (lhs, rhs), rule)


def add(lhs, rhs):
    return _binary(np.add, lhs, rhs, lambda g, a, b, o: g, lambda g, a, b, o: g)


def subtract(lhs, rhs):
    return _binary(np.subtract, lhs, rhs, lambda g, a, b, o: g, lambda g, a, b, o: -g)


def multiply(lhs, rhs):
    return _binary(np.multiply, lhs, rhs, lambda g, a, b, o: g * b, lambda g, a, b, o: g * a)


def divide(lhs, rhs):
    return _binary(np.divide, lhs, rhs, lambda g, a, b, o: g / b,
                   lambda g, a, b, o: -g * a / (b * b))


def power(base, exp):
    def g_exp(g, a, b, o):
        with np.errstate(divide="ignore", invalid="ignore"):
            la = np.where(a > 0, np.log(np.where(a > 0, a, 1)), 0).astype(o.dtype)
        return g * o * la
    return _binary(np.power, base, exp,
                   lambda g, a, b, o: g * b * np.power(a, b - 1), g_exp)


def maximum(lhs, rhs):
    return _binary(np.maximum, lhs, rhs, lambda g, a, b, o: g * (a >= b),
                   lambda g, a, b, o: g * (a < b))


def minimum(lhs, rhs):
    return _binary(np.minimum, lhs, rhs, lambda g, a, b, o: g * (a <= b),
                   lambda g, a, b, o: g * (a > b))


# ----------------------------------------------------------------------- elementwise unary
def _unary(x, out, grad):
    def rule(g, bufs):
        return (grad(g, x._data, out),)
    return _result(out, (x,), rule)


def negative(x):
    return _unary(x, np.negative(x._data), lambda g, a, o: -g)


def identity(x):
    return _unary(x, x._data.copy(), lambda g, a, o: g)


def exp(x):
    return _unary(x, np.exp(x._data), lambda g, a, o: g * o)


def log(x):
    return _unary(x, np.log(x._data), lambda g, a, o: g / a)


def sqrt(x):
    return _unary(x, np.sqrt(x._data), lambda g, a, o: g / (2 * o))


def square(x):
    return _unary(x, np.square(x._data), lambda g, a, o: g * (2 * a))


def abs(x):  # noqa: A001
    return _unary(x, np.abs(x._data), lambda g, a, o: g * np.sign(a))


def sign(x):
    return _unary(x, np.sign(x._data), lambda g, a, o: np.zeros_like(g))


def sin(x):
    return _unary(x, np.sin(x._data), lambda g, a, o: g * np.cos(a))


def cos(x):
    return _unary(x, np.cos(x._data), lambda g, a, o: -g * np.sin(a))


def relu(x):
    return _unary(x, np.maximum(x._data, 0), lambda g, a, o: g * (o > 0))


def sigmoid(x):
    a = x._data
    with np.errstate(over="ignore"):
        out = np.reciprocal(1 + np.exp(-a))
    return _unary(x, out.astype(a.dtype, copy=False), lambda g, a, o: g * o * (1 - o))


def tanh(x):
    return _unary(x, np.tanh(x._data), lambda g, a, o: g * (1 - o * o))


def softrelu(x):
    a = x._data
    out = np.logaddexp(a, 0).astype(a.dtype, copy=False)

    def grad(g, a, o):
        with np.errstate(over="ignore"):
            return g * np.reciprocal(1 + np.exp(-a)).astype(a.dtype, copy=False)
    return _unary(x, out, grad)


def softsign(x):
    a = x._data
    return _unary(x, a / (1 + np.abs(a)), lambda g, a, o: g / np.square(1 + np.abs(a)))


def leaky_relu(x, slope=0.25):
    a = x._data
    slope = a.dtype.type(slope)
    out = np.where(a > 0, a, a * slope)
    return _unary(x, out, lambda g, a, o: np.where(a > 0, g, g * slope))


_ACTIVATIONS = {"relu": relu, "sigmoid": sigmoid, "tanh": tanh, "softrelu": softrelu,
                "softsign": softsign}


def Activation(data, act_type="relu", **kwargs):  # noqa: N802
    """Apply ``act_type`` (relu, sigmoid, tanh, softrelu, softsign)."""
    try:
        fn = _ACTIVATIONS[act_type]
    except KeyError:
        raise MXNetError(
            f"Invalid Input: '{act_type}', valid values are: {sorted(_ACTIVATIONS)}") from None
    return fn(data)


def LeakyReLU(data, act_type="leaky", slope=0.25, **kwargs):  # noqa: N802
    if act_type != "leaky":
        raise MXNetError(f"act_type '{act_type}' is not supported; use 'leaky'")
    return leaky_relu(data, slope)


def clip(data, a_min, a_max):
    a = data._data
    out = np.clip(a, a_min, a_max)
    return _unary(data, out, lambda g, a, o: g * ((a >= a_min) & (a <= a_max)))


def cast(data, dtype):
    return data.astype(dtype)


def stop_gradient(data):
    return _wrap(data._data)


BlockGrad = stop_gradient


# ----------------------------------------------------------------------- reductions
def _axes(ndim, axis, exclude):
    if axis is None:
        axes = tuple(range(ndim))
    elif isinstance(axis, numbers.Integral):
        axes = (int(axis) % ndim,) if ndim else ()
    else:
        axes = tuple(int(a) % ndim for a in axis)
    if exclude:
        axes = tuple(i for i in range(ndim) if i not in axes)
    return axes


def _finish_reduce(out, keepdims, full_reduce):
    if not isinstance(out, np.ndarray) or (out.ndim == 0):
        out = np.asarray(out).reshape((1,))
    return out


def sum(data, axis=None, keepdims=False, exclude=False):  # noqa: A001, FBT002
    a = data._data
    axes = _axes(a.ndim, axis, exclude)
    out = _finish_reduce(np.sum(a, axis=axes, keepdims=keepdims), keepdims, axis is None)
    shape = a.shape

    def rule(g, bufs):
        g = g if keepdims else np.expand_dims(g.reshape(
            [s for i, s in enumerate(shape) if i not in axes]), axes)
        return (np.broadcast_to(g, shape),)
    return _result(out, (data,), rule)


def mean(data, axis=None, keepdims=False, exclude=False):  # noqa: FBT002
    a = data._data
    axes = _axes(a.ndim, axis, exclude)
    out = _finish_reduce(np.mean(a, axis=axes, keepdims=keepdims, dtype=a.dtype), keepdims,
                         axis is None)
    shape = a.shape
    count = 1
    for i in axes:
        count *= shape[i]

    def rule(g, bufs):
        g = g if keepdims else np.expand_dims(g.reshape(
            [s for i, s in enumerate(shape) if i not in axes]), axes)
        return (np.broadcast_to(g / a.dtype.type(count), shape),)
    return _result(out, (data,), rule)


def _minmax(fn, data, axis, keepdims):
    a = data._data
    axes = _axes(a.ndim, axis, False)
    red = fn(a, axis=axes, keepdims=True)
    out = red if keepdims else red.reshape([s for i, s in enumerate(a.shape) if i not in axes])
    out = _finish_reduce(out, keepdims, axis is None)

    def rule(g, bufs):
        # MXNet's _backward_max/_backward_min: ograd · (data == out), so each tied element
        # receives the whole gradient (it is not split among the ties)
        return (g.reshape(red.shape) * (a == red),)
    return _result(out, (data,), rule)


def max(data, axis=None, keepdims=False):  # noqa: A001, FBT002
    return _minmax(np.max, data, axis, keepdims)


def min(data, axis=None, keepdims=False):  # noqa: A001, FBT002
    return _minmax(np.min, data, axis, keepdims)


def argmax(data, axis=None):
    a = data._data
    out = np.argmax(a, axis=axis)
    return _wrap(np.asarray(out, dtype=a.dtype).reshape(np.shape(out) or (1,)))


def argmin(data, axis=None):
    a = data._data
    out = np.argmin(a, axis=axis)
    return _wrap(np.asarray(out, dtype=a.dtype).reshape(np.shape(out) or (1,)))


def norm(data, ord=2, axis=None, keepdims=False):  # noqa: A002, FBT002
    if ord == 1:
        return sum(abs(data), axis=axis, keepdims=keepdims)
    return sqrt(sum(square(data), axis=axis, keepdims=keepdims))


def square_sum(data, axis=None, keepdims=False):  # noqa: FBT002
    return sum(square(data), axis=axis, keepdims=keepdims)


# ----------------------------------------------------------------------- shapes
def _mx_shape(shape, src):
    """Resolve MXNet reshape codes 0 (copy this dim) and -1 (infer)."""
    shape = _shape_tuple(shape)
    return tuple(src[i] if s == 0 and i < len(src) else s for i, s in enumerate(shape))


def reshape(data, shape, **kwargs):
    a = data._data
    new = a.reshape(_mx_shape(shape, a.shape))
    src = a.shape
    return _result(new, (data,), lambda g, bufs: (g.reshape(src),))


def flatten(data):
    a = data._data
    n = a.shape[0] if a.ndim else 1
    return reshape(data, (n, -1) if a.size or n == 0 else (n, 0))


Flatten = flatten


def expand_dims(data, axis):
    a = data._data
    return _result(np.expand_dims(a, axis), (data,), lambda g, b: (g.reshape(a.shape),))


def squeeze(data, axis=None):
    a = data._data
    out = np.squeeze(a, axis=axis)
    if out.ndim == 0:
        out = out.reshape((1,))
    return _result(out, (data,), lambda g, b: (g.reshape(a.shape),))


def transpose(data, axes=None):
    a = data._data
    if axes is not None and len(axes) == 0:
        axes = None
    out = np.transpose(a, axes)
    inv = None if axes is None else tuple(np.argsort([int(i) % a.ndim for i in axes]))
    return _result(out, (data,), lambda g, b: (np.transpose(g, inv),))


def swapaxes(data, dim1=0, dim2=0):
    a = data._data
    return _result(np.swapaxes(a, dim1, dim2), (data,),
                   lambda g, b: (np.swapaxes(g, dim1, dim2),))


def moveaxis(data, source, destination):
    a = data._data
    return _result(np.moveaxis(a, source, destination), (data,),
                   lambda g, b: (np.moveaxis(g, destination, source),))


def broadcast_to(data, shape):
    a = data._data
    target = tuple(a.shape[i] if s == 0 else s for i, s in enumerate(_shape_tuple(shape)))
    out = np.broadcast_to(a, target)
    return _result(out, (data,), lambda g, b: (_unbroadcast(g, a.shape),))


def tile(data, reps):
    a = data._data
    out = np.tile(a, reps)
    reps_t = (1,) * (out.ndim - len(_shape_tuple(reps))) + _shape_tuple(reps)
    shape = (1,) * (out.ndim - a.ndim) + a.shape

    def rule(g, b):
        inter = []
        for r, s in zip(reps_t, shape):
            inter += [r, s]
        gg = g.reshape(inter).sum(axis=tuple(range(0, 2 * len(shape), 2)))
        return (gg.reshape(a.shape),)
    return _result(out, (data,), rule)


def concat(*data, dim=1):
    arrays = [d._data for d in data]
    out = np.concatenate(arrays, axis=dim)
    sizes = np.cumsum([x.shape[dim] for x in arrays])[:-1]

    def rule(g, bufs):
        return tuple(np.split(g, sizes, axis=dim))
    return _result(out, data, rule)


def stack(*data, axis=0):
    arrays = [d._data for d in data]
    out = np.stack(arrays, axis=axis)

    def rule(g, bufs):
        return tuple(np.take(g, i, axis=axis) for i in range(len(arrays)))
    return _result(out, data, rule)


def split(data, num_outputs, axis=1, squeeze_axis=False):  # noqa: FBT002
    a = data._data
    size = a.shape[axis] // num_outputs
    outs = []
    for i in range(num_outputs):
        idx = [slice(None)] * a.ndim
        idx[axis] = slice(i * size, (i + 1) * size) if not squeeze_axis else i
        outs.append(data[tuple(idx)])
    return outs


def slice_axis(data, axis, begin, end):
    idx = [slice(None)] * data.ndim
    idx[axis] = slice(begin, end)
    return data[tuple(idx)]


def where(condition, x, y):
    c = _raw(condition).astype(bool)
    xa, ya = _raw(x), _raw(y)
    out = np.where(c, xa, ya)

    def rule(g, bufs):
        return (None, _unbroadcast(np.where(c, g, 0).astype(g.dtype), np.shape(xa)),
                _unbroadcast(np.where(c, 0, g).astype(g.dtype), np.shape(ya)))
    return _result(out, (condition, x, y), rule)


# ----------------------------------------------------------------------- linear algebra
def dot(lhs, rhs, transpose_a=False, transpose_b=False):  # noqa: FBT002
    """MXNet's ``dot``: the last axis of ``lhs`` against the first axis of ``rhs`` (for N-D
    operands too; a transpose flag reverses all axes of its operand)."""
    a, b = lhs._data, rhs._data
    at = a.T if transpose_a else a
    bt = b.T if transpose_b else b
    mat = at.ndim <= 2 and bt.ndim <= 2
    out = np.dot(at, bt) if mat else np.tensordot(at, bt, axes=1)
    oshape = out.shape
    if out.ndim == 0:
        out = out.reshape((1,))

    def rule(g, bufs):
        g = g.reshape(oshape)
        ga = gb = None
        if bufs[0] is not None:
            if mat and at.ndim == 2 and bt.ndim == 2:
                ga = np.dot(g, bt.T)
            else:
                ga = np.tensordot(g, bt, axes=(list(range(at.ndim - 1, g.ndim)),
                                               list(range(1, bt.ndim))))
            ga = ga.T if transpose_a else ga
        if bufs[1] is not None:
            if mat and at.ndim == 2 and bt.ndim == 2:
                gb = np.dot(at.T, g)
            else:
                gb = np.tensordot(at, g, axes=(list(range(at.ndim - 1)),) * 2)
            gb = gb.T if transpose_b else gb
        return ga, gb
    return _result(out, (lhs, rhs), rule)


def linalg_gemm2(A, B, transpose_a=False, transpose_b=False, alpha=1.0):  # noqa: N803, FBT002
    out = batch_dot(A, B, transpose_a, transpose_b)
    return out if alpha == 1.0 else out * alpha


def batch_dot(lhs, rhs, transpose_a=False, transpose_b=False):  # noqa: FBT002
    a, b = lhs._data, rhs._data
    at = np.swapaxes(a, -1, -2) if transpose_a else a
    bt = np.swapaxes(b, -1, -2) if transpose_b else b
    out = np.matmul(at, bt)

    def rule(g, bufs):
        ga = gb = None
        if bufs[0] is not None:
            ga = np.matmul(g, np.swapaxes(bt, -1, -2))
            ga = np.swapaxes(ga, -1, -2) if transpose_a else ga
        if bufs[1] is not None:
            gb = np.matmul(np.swapaxes(at, -1, -2), g)
            gb = np.swapaxes(gb, -1, -2) if transpose_b else gb
        return ga, gb
    return _result(out, (lhs, rhs), rule)


_FUSED_ACT = {
    "relu": (lambda h: np.maximum(h, 0, out=h), lambda g, o: g * (o > 0)),
    "sigmoid": (lambda h: _sigmoid_inplace(h), lambda g, o: g * (o * (1 - o))),
    "tanh": (lambda h: np.tanh(h, out=h), lambda g, o: g * (1 - o * o)),
}


def _sigmoid_inplace(h):
    with np.errstate(over="ignore"):
        np.negative(h, out=h)
        np.exp(h, out=h)
        h += 1
        np.reciprocal(h, out=h)
    return h


def FullyConnected(data, weight, bias=None, num_hidden=None, no_bias=False, flatten=True,  # noqa: N802, FBT002
                   act_type=None, transpose_weight=False, **kwargs):  # noqa: FBT002
    """``out = data · weightᵀ + bias``; with ``flatten`` the input is reshaped to (batch, -1).

    ``transpose_weight`` uses ``weight`` as ``(in, units)`` instead, ``out = data · weight + bias``
    (a decoder tied to its encoder's weight); the weight's gradient is then ``dataᵀ · g``.

    ``act_type`` ('relu', 'sigmoid', 'tanh'; an extension of MXNet's operator) applies the
    activation in place on the product, as one graph node, which saves a temporary and a node
    per layer. The backward writes the weight's and bias's gradients straight into their buffers
    when it is allowed to (one use, ``grad_req='write'``), so a step costs what the matrix
    products cost.
    """
    return _fully_connected(data, weight, None if no_bias else bias, flatten, act_type,
                            transpose_weight)


_add_reduce = np.add.reduce
# np.dot without its __array_function__ dispatch (a Python-level call per use): the operands
# here are always plain ndarrays.
_dot = getattr(np.dot, "_implementation", np.dot)


def _fully_connected(data, weight, bias, flatten, act_type, transpose_weight):  # noqa: FBT001
    """``FullyConnected`` with positional arguments (``bias`` None for no bias): what ``Dense``
    calls, one Python layer less on the hot path."""
    x = data._data
    w = weight._data
    b = None if bias is None else bias._data
    flat = flatten and x.ndim != 2
    x2 = x.reshape(x.shape[0], -1) if flat else x
    two_d = x2.ndim == 2
    we = w.T if transpose_weight else w          # the (units, in) matrix actually applied
    out = _dot(x2, we.T) if two_d else np.matmul(x2, we.T)
    if b is not None:
        out += b
    relu = act_type == "relu"
    if relu:
        act_grad = None
        np.maximum(out, 0, out=out)
    elif act_type is None:
        act_grad = None
    else:
        act_fwd, act_grad = _FUSED_ACT[act_type]
        out = act_fwd(out)
    res = _NEW(NDArray)
    res._data = out
    res._node = None
    res._grad = None
    res._grad_req = "null"
    res._fresh_grad = False
    if not _st.recording:
        return res
    n0 = data._node
    n1 = weight._node
    if b is None:
        if n0 is None and n1 is None:
            return res
        parents = (n0, n1)
    else:
        n2 = bias._node
        if n0 is None and n1 is None and n2 is None:
            return res
        parents = (n0, n1, n2)
    xshape = x.shape

    if two_d and not transpose_weight:
        def rule(g, bufs):
            if relu:
                g = g * (out > 0)
            elif act_grad is not None:
                g = act_grad(g, out)
            gx = gw = gb = None
            if bufs[0] is not None:
                gx = _dot(g, w)
                if flat:
                    gx = gx.reshape(xshape)
            ob = bufs[1]
            if ob is not None:
                gw = _dot(g.T, x2) if ob is True else _dot(g.T, x2, out=ob)
            if b is not None:
                ob = bufs[2]
                if ob is not None:
                    gb = _add_reduce(g, 0) if ob is True else _add_reduce(g, 0, out=ob)
            return gx, gw, gb
    else:
        def rule(g, bufs):
            if relu:
                g = g * (out > 0)
            elif act_grad is not None:
                g = act_grad(g, out)
            gx = gw = gb = None
            if bufs[0] is not None:
                gx = (_dot(g, we) if two_d else np.matmul(g, we)).reshape(xshape)
            ob = bufs[1]
            if ob is not None:
                if two_d:
                    gw = _dot(x2.T, g) if ob is True else _dot(x2.T, g, out=ob)
                else:
                    gw = np.tensordot(g, x2, axes=(tuple(range(g.ndim - 1)),) * 2)
                    if transpose_weight:
                        gw = gw.T
                    if ob is not True:
                        np.copyto(ob, gw)
                        gw = ob
            if b is not None:
                ob = bufs[2]
                if ob is not None:
                    red = 0 if two_d else tuple(range(g.ndim - 1))
                    gb = _add_reduce(g, red) if ob is True else _add_reduce(g, red, out=ob)
            return gx, gw, gb
    node = _NEW_NODE(_Node)                 # _Node(parents, rule), without its __init__
    node.parents = parents
    node.backward = rule
    node.array = None
    node.seq = _next_seq()
    res._node = node
    return res


# ----------------------------------------------------------------------- softmax and friends
def softmax(data, axis=-1, temperature=None):
    a = data._data
    z = a if temperature is None else a / a.dtype.type(temperature)
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    out = e / e.sum(axis=axis, keepdims=True)

    def rule(g, bufs):
        gz = out * (g - (g * out).sum(axis=axis, keepdims=True))
        return (gz if temperature is None else gz / a.dtype.type(temperature),)
    return _result(out, (data,), rule)


def log_softmax(data, axis=-1, temperature=None):
    a = data._data
    z = a if temperature is None else a / a.dtype.type(temperature)
    zs = z - z.max(axis=axis, keepdims=True)
    out = zs - np.log(np.exp(zs).sum(axis=axis, keepdims=True))

    def rule(g, bufs):
        gz = g - np.exp(out) * g.sum(axis=axis, keepdims=True)
        return (gz if temperature is None else gz / a.dtype.type(temperature),)
    return _result(out, (data,), rule)


def one_hot(indices, depth, on_value=1.0, off_value=0.0, dtype=None):
    idx = _raw(indices).astype(np.int64)
    out = np.full(idx.shape + (int(depth),), off_value, _dtype(dtype))
    valid = (idx >= 0) & (idx < depth)
    np.put_along_axis(out, np.where(valid, idx, 0)[..., None],
                      np.where(valid, on_value, off_value)[..., None].astype(out.dtype), axis=-1)
    return _wrap(out)


def pick(data, index, axis=-1, keepdims=False, mode="clip"):  # noqa: FBT002
    a = data._data
    ax = axis % a.ndim
    idx = _raw(index).astype(np.int64)
    n = a.shape[ax]
    idx = np.clip(idx, 0, n - 1) if mode == "clip" else np.mod(idx, n)
    idx_k = np.expand_dims(idx.reshape([s for i, s in enumerate(a.shape) if i != ax]), ax)
    out = np.take_along_axis(a, idx_k, axis=ax)
    if not keepdims:
        out = np.squeeze(out, axis=ax)
        if out.ndim == 0:
            out = out.reshape((1,))

    def rule(g, bufs):
        full = np.zeros_like(a)
        np.put_along_axis(full, idx_k, g.reshape(idx_k.shape), axis=ax)
        return (full, None)
    return _result(out, (data, index), rule)


def take(a, indices, axis=0, mode="clip"):
    src = a._data
    axis = axis % src.ndim
    idx = _raw(indices).astype(np.int64)
    n = src.shape[axis]
    idx = np.clip(idx, 0, n - 1) if mode == "clip" else np.mod(idx, n)
    out = np.take(src, idx, axis=axis)

    def rule(g, bufs):
        full = np.zeros_like(src)
        if axis == 0:
            np.add.at(full, idx, g)
        else:
            moved = np.moveaxis(full, axis, 0)
            np.add.at(moved, idx, np.moveaxis(g, idx.ndim + axis - 1, 0) if idx.ndim == 1
                      else np.moveaxis(g, list(range(axis, axis + idx.ndim)),
                                       list(range(idx.ndim))))
        return (full, None)
    return _result(out, (a, indices), rule)


def Embedding(data, weight, input_dim=None, output_dim=None, dtype=None, sparse_grad=False,  # noqa: N802, FBT002
              **kwargs):
    """Rows of ``weight`` picked by the (integer-valued) ``data``; gradients scatter-add."""
    idx = _raw(data).astype(np.int64)
    w = weight._data
    if input_dim is not None and idx.size and (idx.min() < 0 or idx.max() >= input_dim):
        bad = int(idx.max() if idx.max() >= input_dim else idx.min())
        raise MXNetError(f"Embedding index {bad} is out of range [0, {input_dim})")
    out = w[idx]

    def rule(g, bufs):
        ob = _out(bufs[1])
        full = ob if ob is not None else np.zeros_like(w)
        if ob is not None:
            full[...] = 0
        np.add.at(full, idx.reshape(-1), g.reshape(-1, w.shape[1]))
        return (None, full)
    return _result(out, (data, weight), rule)


def Dropout(data, p=0.5, mode="training", axes=(), **kwargs):  # noqa: N802
    """Zero each element with probability ``p`` (when training) and scale the rest by 1/(1-p)."""
    if not _ag.is_training() and mode != "always" or p <= 0:
        return data
    from .. import random as _rng
    a = data._data
    mshape = tuple(1 if i in axes else s for i, s in enumerate(a.shape))
    keep = _rng.uniform(0.0, 1.0, shape=mshape, dtype=np.float32) >= p
    mask = keep.astype(a.dtype) * a.dtype.type(1.0 / (1.0 - p)) if p < 1 else \
        np.zeros(mshape, a.dtype)
    out = a * mask
    return _result(out, (data,), lambda g, b: (g * mask,))


def LayerNorm(data, gamma, beta, axis=-1, eps=1e-5, **kwargs):  # noqa: N802
    """Normalize over ``axis`` then scale by ``gamma`` and shift by ``beta`` (fused backward)."""
    a = data._data
    ax = axis % a.ndim
    mu = a.mean(axis=ax, keepdims=True)
    xc = a - mu
    var = np.mean(xc * xc, axis=ax, keepdims=True)
    inv = 1.0 / np.sqrt(var + a.dtype.type(eps))
    xhat = xc * inv
    bshape = [1] * a.ndim
    bshape[ax] = a.shape[ax]
    gm = gamma._data.reshape(bshape)
    out = xhat * gm + beta._data.reshape(bshape)
    red = tuple(i for i in range(a.ndim) if i != ax)

    def rule(g, bufs):
        gx = gg = gbeta = None
        if bufs[0] is not None:
            gxhat = g * gm
            gx = inv * (gxhat - gxhat.mean(axis=ax, keepdims=True)
                        - xhat * (gxhat * xhat).mean(axis=ax, keepdims=True))
        if bufs[1] is not None:
            gg = (g * xhat).sum(axis=red).reshape(gamma._data.shape)
        if bufs[2] is not None:
            gbeta = g.sum(axis=red).reshape(beta._data.shape)
        return gx, gg, gbeta
    return _result(out.astype(a.dtype, copy=False), (data, gamma, beta), rule)


def BatchNorm(data, gamma, beta, moving_mean, moving_var, eps=1e-5, momentum=0.9,  # noqa: N802
              fix_gamma=False, use_global_stats=False, axis=1, **kwargs):  # noqa: FBT002
    """Batch normalization over every axis but ``axis``.

    Training (``autograd.is_training()`` and not ``use_global_stats``) normalizes with the batch
    statistics and updates ``moving_mean``/``moving_var`` in place
    (``running = momentum·running + (1-momentum)·batch``); otherwise the running statistics are used.
    """
    a = data._data
    ax = axis % a.ndim
    red = tuple(i for i in range(a.ndim) if i != ax)
    bshape = [1] * a.ndim
    bshape[ax] = a.shape[ax]
    g_arr = np.ones_like(gamma._data) if fix_gamma else gamma._data
    gm = g_arr.reshape(bshape)
    training = _ag.is_training() and not use_global_stats
    if training:
        mu = a.mean(axis=red, keepdims=True)
        xc = a - mu
        var = np.mean(xc * xc, axis=red, keepdims=True)
        mm, mv = moving_mean._data, moving_var._data
        mom = mm.dtype.type(momentum)
        mm *= mom
        mm += (1 - mom) * mu.reshape(mm.shape)
        mv *= mom
        mv += (1 - mom) * var.reshape(mv.shape)
    else:
        mu = moving_mean._data.reshape(bshape)
        var = moving_var._data.reshape(bshape)
        xc = a - mu
    inv = 1.0 / np.sqrt(var + a.dtype.type(eps))
    xhat = xc * inv
    out = (xhat * gm + beta._data.reshape(bshape)).astype(a.dtype, copy=False)

    def rule(g, bufs):
        gx = gg = gbeta = None
        if bufs[0] is not None:
            gxhat = g * gm
            if training:
                gx = inv * (gxhat - gxhat.mean(axis=red, keepdims=True)
                            - xhat * (gxhat * xhat).mean(axis=red, keepdims=True))
            else:
                gx = gxhat * inv
        if bufs[1] is not None:
            gg = np.zeros_like(gamma._data) if fix_gamma else \
                (g * xhat).sum(axis=red).reshape(gamma._data.shape)
        if bufs[2] is not None:
            gbeta = g.sum(axis=red).reshape(beta._data.shape)
        return gx, gg, gbeta, None, None
    return _result(out, (data, gamma, beta, moving_mean, moving_var), rule)
