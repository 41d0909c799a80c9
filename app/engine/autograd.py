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

import itertools
import operator
import threading

import numpy as np

from .base import MXNetError

__all__ = ["record", "pause", "train_mode", "predict_mode", "is_recording", "is_training",
           "set_recording", "set_training", "backward", "mark_variables"]


class _Contrib(threading.local):
    active = None


_contrib = _Contrib()


class record_contributions:  # noqa: N801 - used like the other scopes
    """Within this scope, ``backward`` also keeps each use's gradient contribution to every
    variable used more than once (a shared parameter): ``{array: [contribution, ...]}`` in the
    order of the forward pass; their sum is the gradient written to the buffer."""

    def __init__(self):
        self.by_array: dict = {}

    def __enter__(self):
        self._prev = _contrib.active
        _contrib.active = self._raw = {}
        return self

    def __exit__(self, *exc):
        _contrib.active = self._prev
        self.by_array = {arr: [g for _seq, g in sorted(items, key=lambda t: t[0])]
                         for arr, items in self._raw.items() if len(items) > 1}
        return False


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


class _Scope:
    """Sets recording and/or training for a ``with`` block and restores them after."""

    __slots__ = ("_recording", "_training", "_prev_recording", "_prev_training")

    def __init__(self, recording, training):
        self._recording = recording
        self._training = training

    def __enter__(self):
        st = _st
        self._prev_recording = st.recording
        self._prev_training = st.training
        if self._recording is not None:
            st.recording = self._recording
        if self._training is not None:
            st.training = self._training
        return self

    def __exit__(self, exc_type, exc, tb):
        st = _st
        st.recording = self._prev_recording
        st.training = self._prev_training
        return False


def record(train_mode: bool = True):  # noqa: FBT001
    """Record operations in this scope for ``backward()``; training mode by default."""
    return _Scope(True, train_mode)


def pause(train_mode: bool = False):  # noqa: FBT001
    """Stop recording in this scope (used for updates and initialization)."""
    return _Scope(False, train_mode)


def train_mode():
    """Layers behave as in training in this scope, without changing recording."""
    return _Scope(None, True)


def predict_mode():
    """Layers behave as in inference in this scope, without changing recording."""
    return _Scope(None, False)


# --------------------------------------------------------------------------- graph
class _Node:
    """A vertex of the recorded graph.

    An operation node has ``parents`` (one entry per input: the input's node, or ``None`` when that
    input needs no gradient) and ``backward(g, bufs)`` returning one gradient per input. A leaf node
    (``backward is None``) belongs to an array with an attached gradient.
    """

    __slots__ = ("parents", "backward", "array", "seq", "__weakref__")

    def __init__(self, parents, backward, array=None):
        self.parents = parents
        self.backward = backward
        self.array = array
        self.seq = _next_seq()


_counter = itertools.count()
_next_seq = _counter.__next__
_seq = operator.attrgetter("seq")


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
    gradient buffer is overwritten (``grad_req='write'``) or added to (``'add'``); a variable
    reached along several paths (a shared parameter) receives the sum of the contributions.
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
    for h, hg in zip(heads, head_grads):
        node = h._node
        if node is None or (node.backward is None and node.array is None):
            raise MXNetError(_NOT_IN_GRAPH)
        g = np.ones(h._data.shape, h._data.dtype) if hg is None else np.asarray(
            hg._data if isinstance(hg, NDArray) else hg, dtype=h._data.dtype)
        if g.shape != h._data.shape:
            raise ValueError(f"head gradient has shape {g.shape}, but the head has shape "
                             f"{h._data.shape}")
        prev = grads.get(node)
        grads[node] = g if prev is None else prev + g
    _run_backward(grads, retain_graph, train_mode)


def _run_backward(grads: dict, retain_graph: bool, train_mode: bool):  # noqa: FBT001, ARG001
    """Propagate ``grads`` (node → gradient of the heads) down to the leaves.

    (``train_mode`` is accepted for MXNet's signature; no backward rule here depends on it.)"""
    # The reachable operations, and for each variable (a leaf with an array) what its rule is
    # given in ``bufs``: its gradient buffer when it may be written there directly (used once,
    # grad_req 'write', not itself a head), else True. Every node is created after its parents,
    # so descending creation order is a topological order (no recursion needed). A single head
    # whose operations form a chain (each has at most one operation parent: the usual stack of
    # layers) is walked in that order already: no visited set and no sort.
    ops = []
    direct: dict = {}
    heads = []
    for node in grads:
        if node.backward is not None:
            heads.append(node)
    node = heads[0] if len(heads) == 1 else None
    while node is not None:
        ops.append(node)
        nxt = more = None
        for p in node.parents:
            if p is None:
                continue
            if p.backward is None:                  # _note_leaf, inlined
                if p in direct:
                    direct[p] = True
                    continue
                arr = p.array
                if arr is None:
                    if p.seq > node.seq:
                        raise MXNetError(_NOT_IN_GRAPH)
                    direct[p] = True
                elif arr._grad_req == "write" and arr._grad is not None and p not in grads:
                    direct[p] = arr._grad._data
                else:
                    direct[p] = True
            elif nxt is None or p is nxt:
                nxt = p
            elif more is None:
                more = [nxt, p]
            else:
                more.append(p)
        if more is not None:                        # not a chain: the general walk goes on
            heads = more
            break
        node = nxt
    if len(heads) > 1:
        seen = set(ops)
        stack = []
        for n in heads:
            if n not in seen:
                seen.add(n)
                stack.append(n)
        while stack:
            node = stack.pop()
            ops.append(node)
            for p in node.parents:
                if p is None:
                    continue
                if p.backward is None:
                    _note_leaf(p, node, direct, grads)
                elif p not in seen:
                    seen.add(p)
                    stack.append(p)
        ops.sort(key=_seq, reverse=True)
    get = direct.get
    contrib = _contrib.active
    pop = grads.pop
    for node in ops:
        g = pop(node, None)
        if g is None:
            continue
        parents = node.parents
        bufs = []
        for p in parents:
            bufs.append(None if p is None else get(p, True))
        res = node.backward(g, bufs)
        for p, r, buf in zip(parents, res, bufs):
            if r is None or p is None:
                continue
            if r is buf:
                p.array._fresh_grad = True
                continue
            if contrib is not None and p.backward is None and p.array is not None:
                contrib.setdefault(p.array, []).append((node.seq, np.array(r)))
            prev = grads.get(p)
            grads[p] = r if prev is None else prev + r
        if not retain_graph:
            node.backward = None
            node.parents = ()
            node.seq = _next_seq()                  # when it was freed (see _note_leaf)
    for leaf, g in grads.items():
        if leaf.backward is None and leaf.array is not None:
            leaf.array._write_grad(g)


def _note_leaf(p, node, direct, grads):
    """Record in ``direct`` what the rules get in ``bufs`` for the leaf ``p``, an input of
    ``node``: its gradient buffer if it is a variable used once (so far) with grad_req 'write'
    that is not itself a head, else True (its contributions are summed, then written)."""
    if p in direct:
        direct[p] = True                            # used again
        return
    arr = p.array
    if arr is None:
        if p.seq > node.seq:
            # An operation freed by a backward without retain_graph AFTER this one was
            # recorded: the gradient would silently stop there. (Freed before: it was a
            # constant when recorded, as in MXNet.)
            raise MXNetError(_NOT_IN_GRAPH)
        direct[p] = True
    elif arr._grad_req == "write" and arr._grad is not None and p not in grads:
        direct[p] = arr._grad._data
    else:
        direct[p] = True


def get_symbol(x):  # pragma: no cover - API completeness
    raise NotImplementedError("ParamLab's engine records an imperative tape; there are no symbols.")
