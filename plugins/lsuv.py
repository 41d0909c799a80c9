"""LSUV: layer-sequential unit-variance initialization, a data-dependent initializer."""

from typing import Annotated

import numpy as np

from app.engine import init, nd
from app.engine.gluon import nn
from app.pluginhost import hookimpl


class LSUV(init.DataDependentInitializer):
    """Orthogonal weights, then each Dense rescaled to unit output variance on a data batch.

    Mishkin & Matas, "All you need is a good init" (2016). Stage one gives every weight an
    orthogonal matrix (``_init_weight``). Stage two (``calibrate``) walks the network in forward
    order with a batch of real input; for each Dense it measures the variance of the layer's output
    before its activation and divides the weight by sqrt(variance / target_var), repeating until
    the variance is within ``tol`` of the target or ``max_iter`` passes were made. Layers inside
    Sequential/HybridSequential containers are calibrated; other blocks are run as they are.
    """

    def __init__(self,
                 target_var: Annotated[float, init.Range(0.0, None, low_open=True)] = 1.0,
                 tol: Annotated[float, init.Range(0.0, 1.0, low_open=True)] = 0.05,
                 max_iter: Annotated[int, init.Range(1, 100)] = 10):
        super().__init__(target_var=target_var, tol=tol, max_iter=max_iter)
        self.target_var, self.tol, self.max_iter = target_var, tol, max_iter
        self.report = []        # (layer name, variance before, variance after, passes)

    def _init_weight(self, name, arr):
        if len(arr.shape) < 2:
            arr[:] = 0.0
            return
        init.Orthogonal(scale=1.0)._init_weight(name, arr)

    def calibrate(self, net, batch):
        self.report = []
        self._run(net, batch)

    def _run(self, block, x):
        if isinstance(block, (nn.Sequential, nn.HybridSequential)):
            for i in range(len(block)):
                x = self._run(block[i], x)
            return x
        if isinstance(block, nn.Dense):
            self._calibrate_dense(block, x)
        return block(x)

    def _pre_activation(self, layer, x):
        bias = layer.bias.data() if layer.bias is not None else None
        # A Dense tied to another's weight applies it transposed (and shares it: calibrating
        # it rescales the encoder too, which LSUV's layer order then corrects downstream).
        return nd.FullyConnected(x, layer.weight.data(), bias, no_bias=bias is None,
                                 flatten=getattr(layer, "_flatten", True),
                                 transpose_weight=getattr(layer, "tied", False))

    def _variance(self, layer, x) -> float:
        with np.errstate(invalid="ignore", over="ignore"):
            var = float(np.var(self._pre_activation(layer, x).asnumpy()))
        if not np.isfinite(var):
            # A NaN/Inf in the batch (or an overflow) would otherwise skip the calibration
            # silently and leave a layer at its orthogonal start.
            raise ValueError(f"LSUV: the output of layer {layer.name} has variance {var} on the "
                             "data batch: the batch (or an earlier layer) holds NaN or infinite "
                             "values, so the layer cannot be calibrated")
        return var

    def _calibrate_dense(self, layer, x):
        w = layer.weight.data()
        first = var = self._variance(layer, x)
        passes = 0
        while passes < self.max_iter and var > 0 and abs(var - self.target_var) > self.tol:
            w[:] = w.asnumpy() / np.sqrt(var / self.target_var)
            var = self._variance(layer, x)
            passes += 1
        self.report.append((layer.name, first, var, passes))


@hookimpl
def paramlab_register_initializers(register):
    register(LSUV, label="LSUV (data-dependent)", category="Data-dependent")
