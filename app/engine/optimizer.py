"""Optimizers with MXNet's update rules, working in place on NumPy arrays.

Every rule first forms ``g = clip(rescale_grad · grad)`` (``rescale_grad`` is ``1/batch_size``,
set by ``Trainer.step``) — Adam and RMSProp clip ``rescale_grad · grad + wd · weight`` instead, as
MXNet's kernels do — and uses the effective ``lr = learning_rate · lr_mult`` and
``wd = wd · wd_mult`` of the parameter. Weight decay applies to every parameter whose ``wd_mult``
is not 0 — biases included, as in Gluon.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["Optimizer", "SGD", "NAG", "Adam", "RMSProp", "AdaGrad", "create", "register"]

_REGISTRY: dict[str, type] = {}


def register(klass):
    _REGISTRY[klass.__name__.lower()] = klass
    return klass


def create(name, **kwargs):
    if isinstance(name, Optimizer):
        return name
    key = str(name).lower()
    if key not in _REGISTRY:
        raise ValueError(f"Cannot find optimizer {name!r}: choose one of "
                         f"{', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[key](**kwargs)


class Optimizer:
    """Base class. ``update(index, weight, grad, state)`` changes ``weight`` in place."""

    def __init__(self, learning_rate=0.01, wd=0.0, rescale_grad=1.0, clip_gradient=None,
                 lr_scheduler=None, param_dict=None, begin_num_update=0, **kwargs):
        if kwargs:
            raise TypeError(f"{type(self).__name__} got unexpected optimizer parameter(s): "
                            f"{', '.join(sorted(kwargs))}")
        self.lr = float(learning_rate)
        self.wd = float(wd)
        self.rescale_grad = rescale_grad
        self.clip_gradient = clip_gradient
        self.lr_scheduler = lr_scheduler
        self.param_dict = param_dict or {}
        self.num_update = begin_num_update
        self._index_update_count: dict[int, int] = {}

    @property
    def learning_rate(self) -> float:
        if self.lr_scheduler is not None:
            return self.lr_scheduler(self.num_update)
        return self.lr

    def set_learning_rate(self, lr):
        if self.lr_scheduler is not None:
            raise UserWarning("LRScheduler of the optimizer has already been defined. Note "
                              "that set_learning_rate can mutate the value of the learning "
                              "rate of the optimizer only when the LRScheduler of the "
                              "optimizer is undefined.")
        self.lr = float(lr)

    def _update_count(self, index):
        count = self._index_update_count.get(index, 0) + 1
        self._index_update_count[index] = count
        self.num_update = max(count, self.num_update)
        return count

    def _get_lr(self, index):
        lr = self.learning_rate
        p = self.param_dict.get(index)
        return lr * p.lr_mult if p is not None else lr

    def _get_wd(self, index):
        p = self.param_dict.get(index)
        return self.wd * p.wd_mult if p is not None else self.wd

    def _prep_grad(self, grad, wd=0.0, weight=None, clip_wd=False):  # noqa: FBT002
        """``rescale_grad·grad`` (clipped), plus ``wd·weight`` when asked (added before the clip
        with ``clip_wd``); a new array."""
        g = grad * grad.dtype.type(self.rescale_grad) if self.rescale_grad != 1.0 else grad.copy()
        if wd and clip_wd:
            g += weight.dtype.type(wd) * weight
        if self.clip_gradient is not None:
            np.clip(g, -self.clip_gradient, self.clip_gradient, out=g)
        if wd and not clip_wd:
            g += weight.dtype.type(wd) * weight
        return g

    def create_state(self, index, weight):
        return None

    def update(self, index, weight, grad, state):
        raise NotImplementedError

    def update_many(self, items):
        """``update`` for each ``(index, weight, grad, state)``; optimizers may fuse the loop."""
        for index, weight, grad, state in items:
            self.update(index, weight, grad, state)

    def state_arrays(self, state):
        """The NumPy arrays held in ``state`` (for snapshots and memory accounting)."""
        if state is None:
            return []
        if isinstance(state, np.ndarray):
            return [state]
        out = []
        for s in state:
            out.extend(self.state_arrays(s))
        return out


@register
class SGD(Optimizer):
    """``w ← (1 - lr·wd)·w - lr·g``; with momentum ``m ← momentum·m - lr·(g + wd·w)``, ``w ← w + m``."""

    def __init__(self, momentum=0.0, lazy_update=True, **kwargs):  # noqa: FBT002
        super().__init__(**kwargs)
        self.momentum = float(momentum)

    def create_state(self, index, weight):
        return np.zeros_like(weight) if self.momentum != 0.0 else None

    def update(self, index, weight, grad, state):
        self._update_count(index)
        lr = self._get_lr(index)
        wd = self._get_wd(index)
        t = weight.dtype.type
        if state is None:
            if self.clip_gradient is None:
                _sgd_plain(weight, grad, lr, wd, self.rescale_grad)
                return
            g = self._prep_grad(grad)
            g *= t(lr)
            if wd:
                weight *= t(1.0 - lr * wd)
            weight -= g
            return
        g = self._prep_grad(grad, wd, weight)
        state *= t(self.momentum)
        g *= t(lr)
        state -= g
        weight += state

    def update_many(self, items):
        if self.momentum != 0.0 or self.clip_gradient is not None or \
                self.lr_scheduler is not None:
            super().update_many(items)
            return
        base = self.lr
        wd0 = self.wd
        rescale = self.rescale_grad
        counts = self._index_update_count
        pdict = self.param_dict
        top = self.num_update
        for index, weight, grad, _state in items:
            n = counts.get(index, 0) + 1
            counts[index] = n
            if n > top:
                top = n
            p = pdict.get(index)
            if p is None:
                lr = base
                wd = wd0
            else:
                lr = base * p.lr_mult
                wd = wd0 * p.wd_mult
            if lr == 0.0:
                continue
            if wd:
                weight *= 1.0 - lr * wd
            weight -= grad * (lr * rescale)     # the same arithmetic as _sgd_plain, inlined
        self.num_update = top


def _sgd_plain(weight, grad, lr, wd, rescale):
    """``w ← (1 - lr·wd)·w - (lr·rescale)·g`` in the weight's dtype, one temporary."""
    if lr == 0.0:
        return
    # Python floats are cast to the array's dtype (NEP 50): float32 stays float32.
    if wd:
        weight *= 1.0 - lr * wd
    weight -= grad * (lr * rescale)


@register
class NAG(Optimizer):
    """Nesterov momentum: ``m ← momentum·m + g + wd·w``; ``w ← w - lr·(g + wd·w + momentum·m)``."""

    def __init__(self, momentum=0.0, **kwargs):
        super().__init__(**kwargs)
        self.momentum = float(momentum)

    def create_state(self, index, weight):
        return np.zeros_like(weight) if self.momentum != 0.0 else None

    def update(self, index, weight, grad, state):
        self._update_count(index)
        lr = self._get_lr(index)
        wd = self._get_wd(index)
        t = weight.dtype.type
        g = self._prep_grad(grad, wd, weight)
        if state is None:
            g *= t(lr)
            weight -= g
            return
        state *= t(self.momentum)
        state += g
        g += t(self.momentum) * state
        g *= t(lr)
        weight -= g


@register
class Adam(Optimizer):
    """``g = clip(rescale_grad·grad + wd·w)``, ``m ← β1·m + (1-β1)·g``, ``v ← β2·v + (1-β2)·g²``,
    ``w ← w - lr·sqrt(1-β2ᵗ)/(1-β1ᵗ) · m/(sqrt(v)+ε)``."""

    def __init__(self, learning_rate=0.001, beta1=0.9, beta2=0.999, epsilon=1e-8,
                 lazy_update=True, **kwargs):  # noqa: FBT002
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon

    def create_state(self, index, weight):
        return (np.zeros_like(weight), np.zeros_like(weight))

    def update(self, index, weight, grad, state):
        t_count = self._update_count(index)
        lr = self._get_lr(index)
        wd = self._get_wd(index)
        t = weight.dtype.type
        coef1 = 1.0 - self.beta1 ** t_count
        coef2 = 1.0 - self.beta2 ** t_count
        lr *= math.sqrt(coef2) / coef1
        g = self._prep_grad(grad, wd, weight, clip_wd=True)
        mean, var = state
        mean *= t(self.beta1)
        mean += t(1.0 - self.beta1) * g
        var *= t(self.beta2)
        var += t(1.0 - self.beta2) * (g * g)
        denom = np.sqrt(var)
        denom += t(self.epsilon)
        np.divide(mean, denom, out=g)
        g *= t(lr)
        weight -= g


@register
class RMSProp(Optimizer):
    """``g = clip(rescale_grad·grad + wd·w)``, ``n ← (1-γ1)·g² + γ1·n``;
    ``w ← w - lr·g/sqrt(n + ε)``. With ``centered``:
    ``m ← (1-γ1)·g + γ1·m``, ``δ ← γ2·δ - lr·g/sqrt(n - m² + ε)``, ``w ← w + δ``."""

    def __init__(self, learning_rate=0.001, gamma1=0.9, gamma2=0.9, epsilon=1e-8,
                 centered=False, clip_weights=None, **kwargs):  # noqa: FBT002
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.gamma1 = gamma1
        self.gamma2 = gamma2
        self.epsilon = epsilon
        self.centered = centered
        self.clip_weights = clip_weights

    def create_state(self, index, weight):
        if self.centered:
            return (np.zeros_like(weight), np.zeros_like(weight), np.zeros_like(weight))
        return np.zeros_like(weight)

    def update(self, index, weight, grad, state):
        self._update_count(index)
        lr = self._get_lr(index)
        wd = self._get_wd(index)
        t = weight.dtype.type
        g = self._prep_grad(grad, wd, weight, clip_wd=True)
        g1 = t(self.gamma1)
        if not self.centered:
            n = state
            n *= g1
            n += t(1.0 - self.gamma1) * (g * g)
            g /= np.sqrt(n + t(self.epsilon))
            g *= t(lr)
            weight -= g
        else:
            n, m, delta = state
            n *= g1
            n += t(1.0 - self.gamma1) * (g * g)
            m *= g1
            m += t(1.0 - self.gamma1) * g
            delta *= t(self.gamma2)
            delta -= t(lr) * g / np.sqrt(n - m * m + t(self.epsilon))
            weight += delta
        if self.clip_weights:
            np.clip(weight, -self.clip_weights, self.clip_weights, out=weight)


@register
class AdaGrad(Optimizer):
    """``h ← h + g²``; ``w ← w - lr·(g/sqrt(h + ε) + wd·w)``."""

    def __init__(self, learning_rate=0.01, eps=1e-7, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.float_stable_eps = eps

    def create_state(self, index, weight):
        return np.zeros_like(weight)

    def update(self, index, weight, grad, state):
        self._update_count(index)
        lr = self._get_lr(index)
        wd = self._get_wd(index)
        t = weight.dtype.type
        g = self._prep_grad(grad)
        state += g * g
        div = g / np.sqrt(state + t(self.float_stable_eps))
        if wd:
            div += t(wd) * weight
        div *= t(lr)
        weight -= div
