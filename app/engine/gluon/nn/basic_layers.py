"""The layers: containers, Dense, activations, Dropout, Flatten, BatchNorm, LayerNorm, Embedding."""

from __future__ import annotations

import numpy as np

from ... import autograd
from ...base import DeferredInitializationError, MXNetError
from ...ndarray import ndarray as F
from ...ndarray.ndarray import NDArray
from ..block import Block, HybridBlock
from ..block import _call as _call_state

__all__ = ["Sequential", "HybridSequential", "Dense", "Activation", "LeakyReLU", "Dropout",
           "Flatten", "BatchNorm", "LayerNorm", "Embedding", "Lambda", "HybridLambda",
           "ACTIVATIONS"]

ACTIVATIONS = ("relu", "sigmoid", "tanh", "softrelu", "softsign")

_fc = F._fully_connected
_block_call = Block.__call__
_FUSED = F._FUSED_ACT


class Sequential(Block):
    """Stacks blocks; ``forward`` runs them in order. Children are keyed '0', '1', ..."""

    def __init__(self, prefix=None, params=None):
        super().__init__(prefix=prefix, params=params)

    def add(self, *blocks):
        """Append blocks to the stack."""
        for block in blocks:
            self.register_child(block)

    def forward(self, x):
        if not _call_state.frame.depth:
            for block in self._children.values():
                x = block(x)
            return x
        # Inside a block call (the usual case) a child whose ``__call__`` is Block's would only
        # forward: call its ``forward`` directly, one Python layer less per child.
        for block in self._children.values():
            x = block.forward(x) if type(block).__call__ is _block_call else block(x)
        return x

    def __getitem__(self, key):
        layers = list(self._children.values())[key]
        if isinstance(layers, list):
            net = type(self)(prefix=self._prefix)
            with net.name_scope():
                net.add(*layers)
            return net
        return layers

    def __len__(self):
        return len(self._children)


class HybridSequential(HybridBlock):
    """Stacks HybridBlocks; ``forward`` runs them in order."""

    def __init__(self, prefix=None, params=None):
        super().__init__(prefix=prefix, params=params)

    def add(self, *blocks):
        for block in blocks:
            self.register_child(block)

    forward = Sequential.forward

    def hybrid_forward(self, F, x):  # noqa: N803
        for block in self._children.values():
            x = block(x)
        return x

    __getitem__ = Sequential.__getitem__
    __len__ = Sequential.__len__


def _in_dim(x: NDArray, flatten: bool) -> int:
    shape = x._data.shape
    if flatten:
        n = 1
        for s in shape[1:]:
            n *= s
        return n
    return shape[-1]


class Dense(HybridBlock):
    """Fully connected layer: ``out = activation(dot(x, weight.T) + bias)``.

    ``weight`` is ``(units, in_units)``; with ``in_units=0`` (the default) the input size is taken
    from the first forward (deferred initialization). ``flatten`` reshapes a ``(batch, ...)``
    input to ``(batch, -1)``; without it the layer applies to the last axis. ``params=`` shares
    another Dense's parameters (Gluon sharing: both layers use the same Parameter objects).
    """

    def __init__(self, units, activation=None, use_bias=True, flatten=True, dtype=np.float32,  # noqa: FBT002
                 weight_initializer=None, bias_initializer="zeros", in_units=0, tie_weight=None,
                 **kwargs):
        super().__init__(**kwargs)
        if activation is not None and activation not in ACTIVATIONS:
            raise ValueError(f"Unknown activation {activation!r}: use one of "
                             f"{', '.join(ACTIVATIONS)} or None")
        self._flatten = flatten
        self._tied = tie_weight is not None
        with self.name_scope():
            self._units = units
            self._in_units = in_units
            if tie_weight is not None:
                # A transposed tie (ParamLab extension): this layer applies another Dense's
                # weight (h, d) transposed, so units == d and in_units == h; one Parameter,
                # whose gradient sums both uses.
                shape = tie_weight.shape
                if shape is None or len(shape) != 2:
                    raise ValueError(f"tie_weight must be a Dense weight (2-D), got {tie_weight}")
                tie_weight.shape = (in_units if in_units else shape[0], units)
                self._params._params[tie_weight.name] = tie_weight
                self.weight = tie_weight
            else:
                self.weight = self.params.get("weight", shape=(units, in_units),
                                              init=weight_initializer, dtype=dtype,
                                              allow_deferred_init=True)
            if use_bias:
                self.bias = self.params.get("bias", shape=(units,), init=bias_initializer,
                                            dtype=dtype, allow_deferred_init=True)
            else:
                self.bias = None
            if activation is not None:
                self.act = Activation(activation, prefix=activation + "_")
            else:
                self.act = None

    def infer_shape(self, x, *args):
        if self._tied:
            self.weight.shape = (_in_dim(x, self._flatten), self._units)
        else:
            self.weight.shape = (self._units, _in_dim(x, self._flatten))

    def forward(self, x):
        weight = self.weight
        bias = self.bias
        w = weight._data
        if bias is None:
            bnd = None
        else:
            bnd = bias._data
            if bnd is None:
                w = None
        if w is None:
            try:
                weight.data()
                if bias is not None:
                    bias.data()
            except DeferredInitializationError:
                self._finish_own_deferred(x)
            w = weight.data()
            bnd = None if bias is None else bias.data()
        act = self.act
        fused = None
        if act is not None and type(act) is Activation and act._act_type in _FUSED:
            fused = act._act_type
        if self._tied:
            out = self._tied_forward(x, w, bnd, fused)
        else:
            xd = x._data
            wd = w._data
            if xd.dtype is not wd.dtype and xd.dtype != wd.dtype:
                self._check_in_dim(x, wd)
                raise MXNetError(
                    f"Incompatible attr in node {self.name}_fwd at 1-th input: expected "
                    f"{xd.dtype}, got {wd.dtype}")
            try:
                out = _fc(x, w, bnd, self._flatten, fused, False)
            except ValueError:
                # NumPy refused the product: say it MXNet's way if the widths disagree.
                self._check_in_dim(x, wd)
                raise
        return out if act is None or fused is not None else act(out)

    def _check_in_dim(self, x, wd):
        """MXNet's error when the input's width is not the weight's ``in_units``."""
        in_dim = _in_dim(x, self._flatten)
        xd = x._data
        if wd.shape[1] != in_dim:
            raise MXNetError(
                f"Shape inconsistent, Provided = [{','.join(str(s) for s in wd.shape)}], "
                f"inferred shape=({wd.shape[0]},{in_dim}): layer {self.name} expects inputs "
                f"with {wd.shape[1]} features but got {in_dim} (input shape {xd.shape}).") \
                from None

    def _tied_forward(self, x, w, bnd, fused):
        xd = x._data
        wd = w._data
        in_dim = _in_dim(x, self._flatten)
        if wd.shape[0] != in_dim:
            raise MXNetError(
                f"Shape inconsistent, Provided = [{','.join(str(s) for s in wd.shape)}], "
                f"inferred shape=({in_dim},{wd.shape[1]}): layer {self.name} is tied to "
                f"{self.weight.name} transposed and expects inputs with {wd.shape[0]} "
                f"features but got {in_dim} (input shape {xd.shape}).")
        return _fc(x, w, bnd, self._flatten, fused, True)

    @property
    def tied(self) -> bool:
        """Whether this layer applies another layer's weight transposed."""
        return self._tied

    def hybrid_forward(self, F, x, weight, bias=None):  # noqa: N803
        out = F.FullyConnected(x, weight, bias, no_bias=bias is None, flatten=self._flatten,
                               transpose_weight=self._tied)
        if self.act is not None:
            out = self.act(out)
        return out

    def __repr__(self) -> str:
        shape = self.weight.shape
        act = self.act if self.act else "linear"
        if self._tied:
            return (f"{self.__class__.__name__}({shape[0] if shape[0] else None} -> {shape[1]}, "
                    f"{act}, tied to {self.weight.name}ᵀ)")
        return f"{self.__class__.__name__}({shape[1] if shape[1] else None} -> {shape[0]}, {act})"


class Activation(HybridBlock):
    """Elementwise activation: relu, sigmoid, tanh, softrelu (softplus) or softsign."""

    def __init__(self, activation, **kwargs):
        if activation not in ACTIVATIONS:
            raise ValueError(f"Unknown activation {activation!r}: use one of "
                             f"{', '.join(ACTIVATIONS)}")
        self._act_type = activation
        super().__init__(**kwargs)

    def _alias(self) -> str:
        return self._act_type

    def forward(self, x):
        return F._ACTIVATIONS[self._act_type](x)

    def hybrid_forward(self, F, x):  # noqa: N803
        return F.Activation(x, act_type=self._act_type)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self._act_type})"


class LeakyReLU(HybridBlock):
    """``x`` where positive, ``alpha·x`` elsewhere."""

    def __init__(self, alpha, **kwargs):
        if alpha < 0:
            raise ValueError(f"Slope coefficient for LeakyReLU must be no less than 0, got {alpha}")
        super().__init__(**kwargs)
        self._alpha = alpha

    def forward(self, x):
        return F.leaky_relu(x, self._alpha)

    def hybrid_forward(self, F, x):  # noqa: N803
        return F.LeakyReLU(x, act_type="leaky", slope=self._alpha)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self._alpha})"


class Dropout(HybridBlock):
    """Zero elements with probability ``rate`` while training (scaling the rest by 1/(1-rate));
    the identity in prediction. ``axes`` share one mask along those axes."""

    def __init__(self, rate, axes=(), **kwargs):
        if not 0 <= rate <= 1:
            raise ValueError(f"Dropout rate must be in [0, 1], got {rate}")
        super().__init__(**kwargs)
        self._rate = rate
        self._axes = tuple(axes)

    def forward(self, x):
        if self._rate and autograd.is_training():
            return F.Dropout(x, p=self._rate, axes=self._axes)
        return x

    def hybrid_forward(self, F, x):  # noqa: N803
        return self.forward(x)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(p = {self._rate}, axes={self._axes})"


class Flatten(HybridBlock):
    """Reshape ``(batch, d1, d2, ...)`` to ``(batch, d1·d2·...)``."""

    def forward(self, x):
        return F.flatten(x)

    def hybrid_forward(self, F, x):  # noqa: N803
        return F.flatten(x)

    def __repr__(self) -> str:
        return self.__class__.__name__


class BatchNorm(HybridBlock):
    """Batch normalization along ``axis`` (the channel axis, 1 by default).

    Parameters ``gamma`` (ones), ``beta`` (zeros) and the running statistics ``running_mean``
    (zeros) and ``running_var`` (ones), which have ``grad_req='null'`` and are updated in place
    while training: ``running = momentum·running + (1-momentum)·batch``."""

    def __init__(self, axis=1, momentum=0.9, epsilon=1e-5, center=True, scale=True,  # noqa: FBT002
                 use_global_stats=False, beta_initializer="zeros", gamma_initializer="ones",  # noqa: FBT002
                 running_mean_initializer="zeros", running_variance_initializer="ones",
                 in_channels=0, **kwargs):
        super().__init__(**kwargs)
        self._kwargs = {"axis": axis, "eps": epsilon, "momentum": momentum,
                        "fix_gamma": not scale, "use_global_stats": use_global_stats}
        self._axis = axis
        if in_channels != 0:
            self.in_channels = in_channels
        self.gamma = self.params.get("gamma", grad_req="write" if scale else "null",
                                     shape=(in_channels,), init=gamma_initializer,
                                     allow_deferred_init=True, differentiable=scale)
        self.beta = self.params.get("beta", grad_req="write" if center else "null",
                                    shape=(in_channels,), init=beta_initializer,
                                    allow_deferred_init=True, differentiable=center)
        self.running_mean = self.params.get("running_mean", grad_req="null",
                                            shape=(in_channels,),
                                            init=running_mean_initializer,
                                            allow_deferred_init=True, differentiable=False)
        self.running_var = self.params.get("running_var", grad_req="null",
                                           shape=(in_channels,),
                                           init=running_variance_initializer,
                                           allow_deferred_init=True, differentiable=False)

    def infer_shape(self, x, *args):
        c = x.shape[self._axis]
        for p in (self.gamma, self.beta, self.running_mean, self.running_var):
            p.shape = (c,)

    def cast(self, dtype):
        if np.dtype(dtype).name == "float16":
            dtype = "float32"
        super().cast(dtype)

    def hybrid_forward(self, F, x, gamma, beta, running_mean, running_var):  # noqa: N803
        return F.BatchNorm(x, gamma, beta, running_mean, running_var,
                           eps=self._kwargs["eps"], momentum=self._kwargs["momentum"],
                           fix_gamma=self._kwargs["fix_gamma"],
                           use_global_stats=self._kwargs["use_global_stats"], axis=self._axis)

    def __repr__(self) -> str:
        content = ", ".join(f"{k}={v!r}" for k, v in self._kwargs.items())
        in_channels = self.gamma.shape[0]
        return f"{self.__class__.__name__}({content}, in_channels={in_channels or None})"


class LayerNorm(HybridBlock):
    """Layer normalization over ``axis`` (the last by default), with ``gamma`` and ``beta``."""

    def __init__(self, axis=-1, epsilon=1e-5, center=True, scale=True,  # noqa: FBT002
                 beta_initializer="zeros", gamma_initializer="ones", in_channels=0, **kwargs):
        super().__init__(**kwargs)
        self._kwargs = {"eps": epsilon, "axis": axis, "center": center, "scale": scale}
        self._axis = axis
        self._epsilon = epsilon
        self._center = center
        self._scale = scale
        self.gamma = self.params.get("gamma", grad_req="write" if scale else "null",
                                     shape=(in_channels,), init=gamma_initializer,
                                     allow_deferred_init=True)
        self.beta = self.params.get("beta", grad_req="write" if center else "null",
                                    shape=(in_channels,), init=beta_initializer,
                                    allow_deferred_init=True)

    def infer_shape(self, x, *args):
        c = x.shape[self._axis]
        self.gamma.shape = (c,)
        self.beta.shape = (c,)

    def hybrid_forward(self, F, x, gamma, beta):  # noqa: N803
        return F.LayerNorm(x, gamma, beta, axis=self._axis, eps=self._epsilon)

    def __repr__(self) -> str:
        content = ", ".join(f"{k}={v!r}" for k, v in self._kwargs.items())
        return f"{self.__class__.__name__}({content}, in_channels={self.gamma.shape[0]})"


class Embedding(HybridBlock):
    """Maps integer indices in ``[0, input_dim)`` to rows of a ``(input_dim, output_dim)``
    weight; the gradient of a row is the sum over the positions that used it."""

    def __init__(self, input_dim, output_dim, dtype="float32", weight_initializer=None,
                 sparse_grad=False, **kwargs):  # noqa: FBT002
        super().__init__(**kwargs)
        grad_stype = "row_sparse" if sparse_grad else "default"
        self._kwargs = {"input_dim": input_dim, "output_dim": output_dim, "dtype": dtype,
                        "sparse_grad": sparse_grad}
        self.weight = self.params.get("weight", shape=(input_dim, output_dim),
                                      init=weight_initializer, dtype=dtype,
                                      allow_deferred_init=True, grad_stype=grad_stype)

    def hybrid_forward(self, F, x, weight):  # noqa: N803
        return F.Embedding(x, weight, input_dim=self._kwargs["input_dim"],
                           output_dim=self._kwargs["output_dim"])

    def __repr__(self) -> str:
        k = self._kwargs
        return f"{self.__class__.__name__}({k['input_dim']} -> {k['output_dim']}, {k['dtype']})"


class Lambda(Block):
    """Wrap a function (or the name of an ``nd`` operator) as a Block."""

    def __init__(self, function, prefix=None):
        super().__init__(prefix=prefix)
        if isinstance(function, str):
            if not hasattr(F, function):
                raise ValueError(f"Function name {function} is not found in nd.")
            function = getattr(F, function)
        elif not callable(function):
            raise ValueError("Unrecognized function in lambda: {} of type {}".format(
                function, type(function)))
        self._func_impl = function

    def forward(self, *args):
        return self._func_impl(*args)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self._func_impl.__name__})"


class HybridLambda(HybridBlock):
    """Wrap ``function(F, x, ...)`` (or an ``nd`` operator's name) as a HybridBlock."""

    def __init__(self, function, prefix=None):
        super().__init__(prefix=prefix)
        if isinstance(function, str):
            if not hasattr(F, function):
                raise ValueError(f"Function name {function} is not found in nd.")
            name = function
            self._func = lambda F, *args: getattr(F, name)(*args)  # noqa: ARG005
            self._func_name = function
        elif callable(function):
            self._func = function
            self._func_name = function.__name__
        else:
            raise ValueError("Unrecognized function in lambda: {} of type {}".format(
                function, type(function)))

    def hybrid_forward(self, F, x, *args):  # noqa: N803
        return self._func(F, x, *args)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self._func_name})"
