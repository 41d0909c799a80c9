"""The built-in initializers, offered through the same hook as any plugin."""

from __future__ import annotations

from app.engine import init

from . import hookimpl

BUILTINS = (
    (init.Zero, "zeros", "Zeros", "Constant"),
    (init.One, "ones", "Ones", "Constant"),
    (init.Constant, "constant", "Constant", "Constant"),
    (init.Uniform, "uniform", "Uniform", "Random"),
    (init.Normal, "normal", "Normal", "Random"),
    (init.TruncNorm, "truncnorm", "Truncated normal", "Random"),
    (init.Xavier, "xavier", "Xavier (Glorot)", "Variance scaling"),
    (init.MSRAPrelu, "msraprelu", "MSRA PReLU (He)", "Variance scaling"),
    (init.Orthogonal, "orthogonal", "Orthogonal", "Structured"),
    (init.Bilinear, "bilinear", "Bilinear up-sampling", "Structured"),
    (init.LSTMBias, "lstmbias", "LSTM bias", "Structured"),
)


@hookimpl
def paramlab_register_initializers(register):
    for cls, name, label, category in BUILTINS:
        register(cls, name=name, label=label, category=category)
