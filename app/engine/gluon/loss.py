"""Losses: L2, L1, softmax cross-entropy, sigmoid binary cross-entropy (one value per sample)."""

from __future__ import annotations

from .block import HybridBlock

__all__ = ["Loss", "L2Loss", "L1Loss", "SoftmaxCrossEntropyLoss", "SoftmaxCELoss",
           "SigmoidBinaryCrossEntropyLoss", "SigmoidBCELoss"]


def _apply_weighting(F, loss, weight=None, sample_weight=None):  # noqa: N803
    if sample_weight is not None:
        loss = F.multiply(loss, sample_weight) if hasattr(F, "multiply") else loss * sample_weight
    if weight is not None:
        loss = loss * weight
    return loss


def _reshape_like(F, x, y):  # noqa: N803
    return x.reshape(y.shape)


class Loss(HybridBlock):
    """Base class: ``loss(pred, label[, sample_weight])`` returns one value per sample (the mean
    over every axis but ``batch_axis``)."""

    def __init__(self, weight, batch_axis, **kwargs):
        super().__init__(**kwargs)
        self._weight = weight
        self._batch_axis = batch_axis

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(batch_axis={self._batch_axis}, w={self._weight})"

    def forward(self, pred, label, sample_weight=None):
        from ..ndarray import ndarray as F
        return self.hybrid_forward(F, pred, label, sample_weight)


class L2Loss(Loss):
    """``weight/2 · (label - pred)²``."""

    def __init__(self, weight=1.0, batch_axis=0, **kwargs):
        super().__init__(weight, batch_axis, **kwargs)

    def hybrid_forward(self, F, pred, label, sample_weight=None):  # noqa: N803
        label = _reshape_like(F, label, pred)
        loss = F.square(label - pred)
        loss = _apply_weighting(F, loss, self._weight / 2, sample_weight)
        return F.mean(loss, axis=self._batch_axis, exclude=True)


class L1Loss(Loss):
    """``weight · |label - pred|``."""

    def __init__(self, weight=None, batch_axis=0, **kwargs):
        super().__init__(weight, batch_axis, **kwargs)

    def hybrid_forward(self, F, pred, label, sample_weight=None):  # noqa: N803
        label = _reshape_like(F, label, pred)
        loss = F.abs(label - pred)
        loss = _apply_weighting(F, loss, self._weight, sample_weight)
        return F.mean(loss, axis=self._batch_axis, exclude=True)


class SoftmaxCrossEntropyLoss(Loss):
    """``-log softmax(pred)[label]`` (sparse labels) or ``-Σ label·log softmax(pred)``."""

    def __init__(self, axis=-1, sparse_label=True, from_logits=False, weight=None,  # noqa: FBT002
                 batch_axis=0, **kwargs):
        super().__init__(weight, batch_axis, **kwargs)
        self._axis = axis
        self._sparse_label = sparse_label
        self._from_logits = from_logits

    def hybrid_forward(self, F, pred, label, sample_weight=None):  # noqa: N803
        if not self._from_logits:
            pred = F.log_softmax(pred, self._axis)
        if self._sparse_label:
            loss = -F.pick(pred, label, axis=self._axis, keepdims=True)
        else:
            label = _reshape_like(F, label, pred)
            loss = -F.sum(pred * label, axis=self._axis, keepdims=True)
        loss = _apply_weighting(F, loss, self._weight, sample_weight)
        return F.mean(loss, axis=self._batch_axis, exclude=True)


SoftmaxCELoss = SoftmaxCrossEntropyLoss


class SigmoidBinaryCrossEntropyLoss(Loss):
    """Binary cross-entropy on logits (``relu(x) - x·y + log(1 + e^-|x|)``), or on
    probabilities with ``from_sigmoid=True``."""

    def __init__(self, from_sigmoid=False, weight=None, batch_axis=0, **kwargs):  # noqa: FBT002
        super().__init__(weight, batch_axis, **kwargs)
        self._from_sigmoid = from_sigmoid

    def hybrid_forward(self, F, pred, label, sample_weight=None):  # noqa: N803
        label = _reshape_like(F, label, pred)
        if not self._from_sigmoid:
            loss = F.relu(pred) - pred * label + F.softrelu(-F.abs(pred))
        else:
            eps = 1e-12
            loss = -(F.log(pred + eps) * label + F.log(1.0 - pred + eps) * (1.0 - label))
        loss = _apply_weighting(F, loss, self._weight, sample_weight)
        return F.mean(loss, axis=self._batch_axis, exclude=True)


SigmoidBCELoss = SigmoidBinaryCrossEntropyLoss
