"""The layer kinds a user can put in a stack: their settings, shape rules and engine blocks."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from app.engine.gluon import nn
from app.engine.initializer import Range
from app.pluginhost.settings import Setting, SettingsError, validate

__all__ = ["LayerKind", "KINDS", "kind", "ShapeError", "prod"]

ACTS = ("relu", "sigmoid", "tanh", "softrelu", "softsign")


class ShapeError(ValueError):
    """An input shape a layer cannot take (the message says which layer and why)."""


def prod(shape) -> int:
    return int(math.prod(shape)) if shape else 1


def _fmt(shape) -> str:
    return "(" + ", ".join("?" if d is None else str(d) for d in shape) + \
        ("," if len(shape) == 1 else "") + ")"


@dataclass(frozen=True)
class LayerKind:
    """One kind of layer: its form, how it transforms shapes and which parameters it owns."""

    name: str
    description: str
    settings: tuple = ()
    shareable: bool = False          # can take another layer's params= (same kind)
    tieable: bool = False            # can apply another Dense's weight transposed
    extra: dict = field(default_factory=dict, compare=False)

    def defaults(self) -> dict:
        return {s.name: s.default for s in self.settings}

    def validate(self, values: dict) -> dict:
        return validate(list(self.settings), values, f"layer {self.name}")

    def label(self, settings: dict) -> str:
        """Short text for lists and diagram boxes: ``Dense(4, relu)``."""
        return _LABELS[self.name](settings)

    # -------------------------------------------------------------- shapes
    def param_shapes(self, settings: dict, in_shape) -> dict:
        """role → shape (None for a dimension not known), given the input shape."""
        return _PARAMS[self.name](settings, in_shape)

    def out_shape(self, settings: dict, in_shape):
        return _OUT[self.name](settings, in_shape)

    # -------------------------------------------------------------- engine
    def build(self, settings: dict, share=None, tie=None):
        """The engine block. ``share`` is the owner block (Gluon ``params=``); ``tie`` is the
        Dense whose weight this Dense applies transposed."""
        return _BUILD[self.name](settings, share, tie)


def _in_dim(settings, in_shape):
    if in_shape is None:
        return None
    if settings.get("flatten", True):
        rest = in_shape[1:]
        return None if any(d is None for d in rest) else prod(rest)
    return in_shape[-1]


def _dense_out(s, shape):
    if shape is None:
        return None
    if s["flatten"]:
        return (shape[0], s["units"])
    return tuple(shape[:-1]) + (s["units"],)


def _dense_params(s, shape):
    d = s["in_units"] or _in_dim(s, shape)
    out = {"weight": (s["units"], d)}
    if s["use_bias"]:
        out["bias"] = (s["units"],)
    return out


def _axis_dim(s, shape):
    if shape is None:
        return s.get("in_channels") or None
    axis = s["axis"]
    try:
        return shape[axis]
    except IndexError:
        raise ShapeError(f"axis {axis} does not exist in an input of shape {_fmt(shape)}") \
            from None


def _norm_params(s, shape):
    c = _axis_dim(s, shape)
    if s.get("in_channels") and c is not None and c != s["in_channels"]:
        raise ShapeError(f"in_channels is {s['in_channels']} but the input has {c} along axis "
                         f"{s['axis']}")
    names = ["gamma", "beta"]
    if "momentum" in s:
        names += ["running_mean", "running_var"]
    return {n: (c,) for n in names}


def _same(s, shape):
    return shape


def _flatten_out(s, shape):
    if shape is None:
        return None
    rest = shape[1:]
    return (shape[0], None if any(d is None for d in rest) else prod(rest))


def _embedding_out(s, shape):
    return None if shape is None else tuple(shape) + (s["output_dim"],)


def _act(s):
    a = s.get("activation", "none")
    return None if a == "none" else a


def _build_dense(s, share, tie):
    kwargs = dict(activation=_act(s), use_bias=s["use_bias"], flatten=s["flatten"],
                  in_units=s["in_units"])
    if tie is not None:
        return nn.Dense(s["units"], tie_weight=tie.weight, **kwargs)
    return nn.Dense(s["units"], params=None if share is None else share.params, **kwargs)


def _build_bn(s, share, tie):
    return nn.BatchNorm(axis=s["axis"], momentum=s["momentum"], epsilon=s["epsilon"],
                        center=s["center"], scale=s["scale"], in_channels=s["in_channels"],
                        params=None if share is None else share.params)


def _build_ln(s, share, tie):
    return nn.LayerNorm(axis=s["axis"], epsilon=s["epsilon"], center=s["center"],
                        scale=s["scale"], in_channels=s["in_channels"],
                        params=None if share is None else share.params)


def _build_emb(s, share, tie):
    return nn.Embedding(s["input_dim"], s["output_dim"],
                        params=None if share is None else share.params)


_POS = Range(1, None)
_NONNEG = Range(0, None)

_act_setting = Setting("activation", str, "none", ("none",) + ACTS,
                       doc="applied after the affine map")

KINDS: dict[str, LayerKind] = {}


def _add(k: LayerKind):
    KINDS[k.name] = k


_add(LayerKind("Dense", "Fully connected: activation(x·Wᵀ + b)", (
    Setting("units", int, 4, range=_POS, doc="output size"),
    _act_setting,
    Setting("use_bias", bool, True),
    Setting("flatten", bool, True, doc="reshape (batch, ...) inputs to (batch, -1)"),
    Setting("in_units", int, 0, range=_NONNEG,
            doc="input size; 0 = infer it at the first forward (deferred initialization)"),
), shareable=True, tieable=True))
_add(LayerKind("Activation", "Elementwise activation", (
    Setting("activation", str, "relu", ACTS),)))
_add(LayerKind("LeakyReLU", "x where positive, alpha·x elsewhere", (
    Setting("alpha", float, 0.01, range=Range(0.0, None)),)))
_add(LayerKind("Dropout", "Zeroes inputs with probability rate while training", (
    Setting("rate", float, 0.5, range=Range(0.0, 1.0)),)))
_add(LayerKind("Flatten", "Reshapes (batch, ...) to (batch, -1)"))
_add(LayerKind("BatchNorm", "Batch normalization with running statistics", (
    Setting("axis", int, 1),
    Setting("momentum", float, 0.9, range=Range(0.0, 1.0)),
    Setting("epsilon", float, 1e-5, range=Range(0.0, None, low_open=True)),
    Setting("center", bool, True),
    Setting("scale", bool, True),
    Setting("in_channels", int, 0, range=_NONNEG),
), shareable=True))
_add(LayerKind("LayerNorm", "Layer normalization over one axis", (
    Setting("axis", int, -1),
    Setting("epsilon", float, 1e-5, range=Range(0.0, None, low_open=True)),
    Setting("center", bool, True),
    Setting("scale", bool, True),
    Setting("in_channels", int, 0, range=_NONNEG),
), shareable=True))
_add(LayerKind("Embedding", "Rows of a (input_dim, output_dim) table picked by integer inputs", (
    Setting("input_dim", int, 10, range=_POS),
    Setting("output_dim", int, 4, range=_POS),
), shareable=True))

_LABELS = {
    "Dense": lambda s: f"Dense({s['units']}{', ' + s['activation'] if s['activation'] != 'none' else ''})",
    "Activation": lambda s: f"Activation({s['activation']})",
    "LeakyReLU": lambda s: f"LeakyReLU({s['alpha']})",
    "Dropout": lambda s: f"Dropout({s['rate']})",
    "Flatten": lambda s: "Flatten",
    "BatchNorm": lambda s: f"BatchNorm(axis={s['axis']})",
    "LayerNorm": lambda s: f"LayerNorm(axis={s['axis']})",
    "Embedding": lambda s: f"Embedding({s['input_dim']} → {s['output_dim']})",
}
_OUT = {"Dense": _dense_out, "Activation": _same, "LeakyReLU": _same, "Dropout": _same,
        "Flatten": _flatten_out, "BatchNorm": _same, "LayerNorm": _same,
        "Embedding": _embedding_out}
_PARAMS = {"Dense": _dense_params, "Activation": lambda s, x: {},
           "LeakyReLU": lambda s, x: {}, "Dropout": lambda s, x: {},
           "Flatten": lambda s, x: {}, "BatchNorm": _norm_params, "LayerNorm": _norm_params,
           "Embedding": lambda s, x: {"weight": (s["input_dim"], s["output_dim"])}}
_BUILD = {"Dense": _build_dense,
          "Activation": lambda s, share, tie: nn.Activation(s["activation"]),
          "LeakyReLU": lambda s, share, tie: nn.LeakyReLU(s["alpha"]),
          "Dropout": lambda s, share, tie: nn.Dropout(s["rate"]),
          "Flatten": lambda s, share, tie: nn.Flatten(),
          "BatchNorm": _build_bn, "LayerNorm": _build_ln, "Embedding": _build_emb}


def kind(name: str) -> LayerKind:
    try:
        return KINDS[name]
    except KeyError:
        raise SettingsError(f"unknown layer kind {name!r}: use one of "
                            f"{', '.join(KINDS)}") from None


def format_shape(shape) -> str:
    """``(3, ?)`` for a shape with unknown dimensions; ``?`` when nothing is known."""
    return "?" if shape is None else _fmt(shape)
