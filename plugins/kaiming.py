"""Kaiming (He) initialization, with the choices a form offers as drop-down lists."""

from typing import Annotated, Literal

import numpy as np

from app.engine import init, nd
from app.pluginhost import hookimpl

_GAINS = {"relu": np.sqrt(2.0), "tanh": 5.0 / 3.0, "sigmoid": 1.0, "linear": 1.0}


class Kaiming(init.Initializer):
    """He/Kaiming weights: std = gain / sqrt(fan), for ReLU-family activations.

    ``gain`` is sqrt(2) for relu, sqrt(2 / (1 + negative_slope²)) for leaky_relu, 5/3 for tanh and
    1 for sigmoid and linear; ``fan`` is the weight's fan-in (``mode='fan_in'``, preserves the
    forward signal) or fan-out (``'fan_out'``, preserves gradients). ``distribution='uniform'``
    draws from U[-b, b] with b = sqrt(3)·std, which has the same variance.
    """

    def __init__(self,
                 mode: Literal["fan_in", "fan_out"] = "fan_in",
                 nonlinearity: Literal["relu", "leaky_relu", "tanh", "sigmoid", "linear"] = "relu",
                 negative_slope: Annotated[float, init.Range(0.0, 1.0)] = 0.01,
                 distribution: Literal["normal", "uniform"] = "normal"):
        # The form validates too; this keeps code that calls the class directly honest.
        if not 0.0 <= negative_slope <= 1.0:
            raise ValueError(f"negative_slope must be in [0, 1], got {negative_slope}")
        super().__init__(mode=mode, nonlinearity=nonlinearity, negative_slope=negative_slope,
                         distribution=distribution)
        self.mode, self.nonlinearity = mode, nonlinearity
        self.negative_slope, self.distribution = negative_slope, distribution

    def std(self, shape) -> float:
        if len(shape) < 2:
            raise ValueError(f"Kaiming needs a weight of at least 2 dimensions, got {shape}")
        fan_in, fan_out = init.fan_in_fan_out(shape)
        fan = fan_in if self.mode == "fan_in" else fan_out
        if self.nonlinearity == "leaky_relu":
            gain = np.sqrt(2.0 / (1.0 + self.negative_slope ** 2))
        else:
            gain = _GAINS[self.nonlinearity]
        return float(gain / np.sqrt(fan))

    def _init_weight(self, name, arr):
        std = self.std(arr.shape)
        if self.distribution == "normal":
            nd.random.normal(0.0, std, out=arr)
        else:
            bound = np.sqrt(3.0) * std
            nd.random.uniform(-bound, bound, out=arr)

    def density(self, x, shape):
        x = np.asarray(x, dtype=float)
        std = self.std(shape)
        if self.distribution == "normal":
            return np.exp(-0.5 * (x / std) ** 2) / (std * np.sqrt(2 * np.pi))
        bound = np.sqrt(3.0) * std
        return np.where(np.abs(x) <= bound, 1.0 / (2 * bound), 0.0)


@hookimpl
def paramlab_register_initializers(register):
    register(Kaiming, label="Kaiming (He)", category="Variance scaling")
