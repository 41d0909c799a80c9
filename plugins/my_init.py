"""MyInit: the chapter's custom initializer, shipped as a ParamLab plugin."""

import numpy as np

from app.engine import init, nd
from app.pluginhost import hookimpl


class MyInit(init.Initializer):
    """Uniform weights in [low, high) — the chapter's custom initializer.

    The chapter also overrides ``_init_bias`` to set every bias to 1, and is surprised that the
    biases stay 0. That is Gluon's precedence at work, and ParamLab follows it:

    * a Dense bias has its own initializer (``bias_initializer='zeros'``), and a parameter's own
      initializer beats the one passed to ``net.initialize(MyInit())``, which is only the default
      for parameters without one;
    * even where MyInit does apply, Gluon calls it as ``InitDesc(name, {'__init__': init})``, and
      that path always runs ``_init_weight`` — the suffix dispatch to ``_init_bias`` never happens.

    So ``_init_bias`` below never runs under ``initialize``. To give biases MyInit's values, make it
    their initializer: ``Dense(4, bias_initializer=MyInit())`` — they then get uniform 5..10 (from
    ``_init_weight``), not 1.
    """

    def __init__(self, low: float = 5.0, high: float = 10.0):
        if not high > low:
            raise ValueError(f"high ({high}) must be greater than low ({low})")
        super().__init__(low=low, high=high)
        self.low, self.high = low, high

    def _init_weight(self, name, arr):
        # out=arr fills the array in place, whatever its shape.
        nd.random.uniform(low=self.low, high=self.high, out=arr)

    def _init_bias(self, name, arr):
        arr[:] = 1.0   # never called by Gluon's initialize (see the class docstring)

    def density(self, x, shape):
        """The uniform density on [low, high)."""
        x = np.asarray(x, dtype=float)
        return np.where((x >= self.low) & (x < self.high), 1.0 / (self.high - self.low), 0.0)


@hookimpl
def paramlab_register_initializers(register):
    register(MyInit, label="MyInit (chapter)", category="Chapter")
