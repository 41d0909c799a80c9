"""Reverse-mode automatic differentiation over NDArrays, with Gluon's ``autograd`` API.

While ``record()`` is active, every operation whose inputs need a gradient attaches a
:class:`_Node` to its result: the parents' nodes and the backward rule, which lives beside the
forward in :mod:`app.engine.ndarray.ndarray`. ``backward()`` sorts the graph topologically
(iteratively, so deep stacks cannot hit the recursion limit), walks it in reverse and adds each
contribution into the parents' gradients, so a parameter used twice (a shared layer) receives the
sum of its uses. Broadcasting is undone by the rules themselves (gradients are reduced back to each
operand's shape).

Recording and training state are per thread, as in MXNet, so a worker thread can train while the
main thread inspects.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager

import numpy as np

from .base import MXNetError

__all__ = ["record", "pause", "train_mode", "predict_mode", "is_recording", "is_training",
           "set_recording", "set_training", "backward", "mark_variables"]


class _State(threading.local):
    recording = False
    training = False


_st = _State()


def is_recording() -> bool:
    """Whether operations are being recorded for differentiation."""
    return _st.recording


def is_training() -> bool:
    """Whether layers behave as in training (Dropout drops, BatchNorm uses batch statistics)."""
    return _st.training


def set_recording(is_recording: bool) -> bool:  # noqa: FBT001 - Gluon's signature
    prev = _st.recording
    _st.recording = bool(is_recording)
    return prev


def set_training(train_mode: bool) -> bool:  # noqa: FBT001
    prev = _st.training
    _st.training = bool(train_mode)
    return prev


@contextmanager
def _scope(recording, training):
    prev_r, prev_t = _st.recording, _st.training
    if recording is not None:
        _st.recording = recording
    if training is not None:
        _st.training = training
    try:
        yield
    finally:
        _st.recording, _st.training = prev_r, prev_t


def record(train_mode: bool = True):  # noqa: FBT001
    """Record operations in this scope for ``backward()``; training mode by default."""
    return _scope(True, train_mode)


def pause(train_mode: bool = False):  # noqa: FBT001
    """Stop recording in this scope (used for updates and initialization)."""
    return _scope(False, train_mode)


def train_mode():
    """Layers behave as in training in this scope, without changing recording."""
    return _scope(None, True)


def predict_mode():
    """Layers behave as in inference in this scope, without changing recording."""
    return _scope(None, False)


# --------------------------------------------------------------------------- graph
class _Node:
    """A vertex of the recorded graph.

    An operation node has ``parents`` (one entry per input: the input's node, or ``None`` when that
    input needs no gradient) and ``backward(g, bufs)`` returning one gradient per input. A leaf node
    (``backward is None``) belongs to an array with an attached gradient.
    """

    __slots__ = ("parents", "backward", "array", "__weakref__")

    def __init__(self, parents, backward, array=None):
        self.parents = parents
        self.backward = backward
        self.array = array


_NOT_IN_GRAPH = (
    "Cannot differentiate node because it is not in a computational graph. You need to set "
    "is_recording to true or use autograd.record() to save computational graphs for backward. "
    "If you want to differentiate the same graph twice, you need to pass retain_graph=True to "
    "backward.")


def mark_variables(variables, gradients, grad_reqs="write"):
    """Attach ``gradients`` (NDArrays) to ``variables`` so backward writes into them."""
    if not isinstance(variables, (list, tuple)):
        variables, gradients = [variables], [gradients]
    if isinstance(grad_reqs, str):
        grad_reqs = [grad_reqs] * len(variables)
    for var, grad, req in zip(variables, gradients, grad_reqs):
        var._attach(grad, req)


def backward(heads, head_grads=None, retain_graph: bool = False, train_mode: bool = True):  # noqa: FBT001
    """Compute the gradients of ``heads`` with respect to every attached variable.

    ``head_grads`` default to ones (so a non-scalar head behaves like its sum). Each variable's
    gradient buffer is overwritten (``grad_req='write'``) or added to (``'add'``).
    """
    from .ndarray.ndarray import NDArray

    if isinstance(heads, NDArray):
        heads = [heads]
        if head_grads is not None and not isinstance(head_grads, (list, tuple)):
            head_grads = [head_grads]
    heads = list(heads)
    if head_grads is None:
        head_grads = [None] * len(heads)
    if len(head_grads) != len(heads):
        raise ValueError("heads and head_grads must have the same length")

    grads: dict = {}
    roots = []
    for h, hg in zip(heads, head_grads):
        node = h._node
        if node is None or (node.backward is None and node.array is None):
            raise MXNetError(_NOT_IN_GRAPH)
        g = np.ones(h._data.shape, h._data.dtype) if hg is None else np.asarray(
            hg._data if isinstance(hg, NDArray) else hg, dtype=h._data.dtype)
        if node in grads:
            grads[node] = grads[node] + g
        else:
            grads[node] = g
            roots.append(node)

    order, consumers = _toposort(roots)
    prev_training = _st.training
    _st.training = train_mode
    written = set()
    try:
        for node in reversed(order):
            g = grads.pop(node, None)
            if node.backward is None:          # leaf: write into its gradient buffer
                if g is not None and node.array is not None and node not in written:
                    node.array._write_grad(g)
                continue
            if g is None:
                continue
            parents = node.parents
            bufs = []
            for p in parents:
                if p is None:
                    bufs.append(None)
                    continue
                buf = None
                if p.backward is None and p.array is not None and consumers.get(p, 0) == 1 \
                        and p not in grads:
                    buf = p.array._direct_grad_buffer()
                bufs.append(True if buf is None else buf)
            res = node.backward(g, bufs)
            for p, r, buf in zip(parents, res, bufs):
                if p is None or r is None:
                    continue
                if buf is not None and r is buf:
                    written.add(p)
                    p.array._mark_fresh()
                    continue
                prev = grads.get(p)
                grads[p] = r if prev is None else prev + r
    finally:
        _st.training = prev_training
        if not retain_graph:
            for node in order:
                if node.backward is not None:
                    node.backward = None
                    node.parents = ()


def _toposort(roots):
    """Iterative post-order DFS; returns (order, number of consumers of each node)."""
    order = []
    consumers: dict = {}
    visited = set()
    for root in roots:
        if root in visited:
            continue
        stack = [(root, iter(root.parents))]
        visited.add(root)
        while stack:
            node, it = stack[-1]
            for p in it:
                if p is None:
                    continue
                consumers[p] = consumers.get(p, 0) + 1
                if p not in visited:
                    visited.add(p)
                    stack.append((p, iter(p.parents)))
                    break
            else:
                stack.pop()
                order.append(node)
    return order, consumers


def get_symbol(x):  # pragma: no cover - API completeness
    raise NotImplementedError("ParamLab's engine records an imperative tape; there are no symbols.")
