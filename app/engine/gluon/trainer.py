"""``Trainer``: applies an optimizer to a set of parameters, Gluon's way."""

from __future__ import annotations

from .. import optimizer as opt
from ..fileio import load_arrays, save_arrays
from .parameter import Parameter, ParameterDict

__all__ = ["Trainer"]

_MISSING = object()


class Trainer:
    """``Trainer(params, 'sgd', {'learning_rate': 0.1})``.

    ``params`` is a ParameterDict/dict (taken in sorted-name order) or a list; a parameter that
    appears twice (a shared one) is updated once. Every parameter must be initialized (deferred is
    fine). ``step(batch_size)`` rescales gradients by ``1/batch_size`` and updates; it raises
    Gluon's stale-gradient error (nothing is updated) if a parameter's gradient was not written by
    a backward since the last step, unless ``ignore_stale_grad=True`` (then those are skipped).
    Gradients are not cleared by ``step``.
    """

    def __init__(self, params, optimizer, optimizer_params=None, kvstore="device",
                 compression_params=None, update_on_kvstore=None):
        if isinstance(params, (dict, ParameterDict)):
            params = [params[key] for key in sorted(params.keys())]
        if not isinstance(params, (list, tuple)):
            raise ValueError(
                f"First argument must be a list or dict of Parameters, got {type(params)}.")
        self._params: list[Parameter] = []
        seen = set()
        for param in params:
            if not isinstance(param, Parameter):
                raise ValueError("First argument must be a list or dict of Parameters, "
                                 f"got list of {type(param)}.")
            if id(param) in seen:
                continue
            seen.add(id(param))
            self._params.append(param)
        optimizer_params = dict(optimizer_params) if optimizer_params else {}
        self._scale = float(optimizer_params.get("rescale_grad", 1.0))
        for param in self._params:
            param.list_ctx()          # raises for a never-initialized parameter, as Gluon does
        self._init_optimizer(optimizer, optimizer_params)
        self._states: dict[int, object] = {}

    def _init_optimizer(self, optimizer, optimizer_params):
        param_dict = dict(enumerate(self._params))
        if isinstance(optimizer, opt.Optimizer):
            assert not optimizer_params, \
                "optimizer_params must be None if optimizer is an instance of Optimizer instead of str"
            self._optimizer = optimizer
            optimizer.param_dict = param_dict
        else:
            self._optimizer = opt.create(optimizer, param_dict=param_dict, **optimizer_params)

    @property
    def optimizer(self):
        return self._optimizer

    @property
    def learning_rate(self) -> float:
        return self._optimizer.learning_rate

    def set_learning_rate(self, lr):
        """Change the learning rate used by the next steps."""
        self._optimizer.set_learning_rate(lr)

    @property
    def params(self) -> list:
        return list(self._params)

    def step(self, batch_size, ignore_stale_grad=False):  # noqa: FBT002
        """One update of every parameter with ``grad/batch_size``."""
        self._optimizer.rescale_grad = self._scale / batch_size
        self._update(ignore_stale_grad)

    def allreduce_grads(self):
        """A single device has nothing to reduce."""

    def update(self, batch_size, ignore_stale_grad=False):  # noqa: FBT002
        """The update half of ``step`` (after ``allreduce_grads``)."""
        self._optimizer.rescale_grad = self._scale / batch_size
        self._update(ignore_stale_grad)

    def _update(self, ignore_stale_grad):
        # Every parameter is checked before any is updated: a stale gradient changes nothing.
        states = self._states
        items = []
        fresh = []
        i = -1
        for param in self._params:
            i += 1
            if param._grad_req == "null":
                continue
            data = param._data
            if data is None:
                data = param.data()
            if not data._fresh_grad:
                if ignore_stale_grad:
                    continue
                raise UserWarning(
                    f"Gradient of Parameter `{param.name}` on context {data.context} has not "
                    "been updated by backward since last `step`. This could mean a bug in your "
                    "model that made it only use a subset of the Parameters (Blocks) for this "
                    "iteration. If you are intentionally only using a subset, call step with "
                    "ignore_stale_grad=True to suppress this warning and skip updating of "
                    "Parameters with stale gradient")
            state = states.get(i, _MISSING)
            if state is _MISSING:
                state = states[i] = self._optimizer.create_state(i, data._data)
            items.append((i, data._data, param._grad._data, state))
            fresh.append(data)
        self._optimizer.update_many(items)
        for data in fresh:
            data._fresh_grad = False

    def save_states(self, fname):
        """Save the optimizer's state arrays (momentum, Adam moments...) to an ``.npz``."""
        arrays = {}
        for i, state in self._states.items():
            for j, arr in enumerate(self._optimizer.state_arrays(state)):
                arrays[f"{i}.{j}"] = arr
        save_arrays(fname, arrays)

    def load_states(self, fname):
        """Load what ``save_states`` wrote into this trainer's (same-shaped) states."""
        arrays = load_arrays(fname)
        for key, arr in arrays.items():
            i, j = (int(k) for k in key.split("."))
            param = self._params[i]
            if i not in self._states:
                self._states[i] = self._optimizer.create_state(i, param.data()._data)
            target = self._optimizer.state_arrays(self._states[i])[j]
            if target.shape != arr.shape:
                raise ValueError(f"Optimizer state {key} of '{fname}' has shape {arr.shape}, "
                                 f"expected {target.shape}")
            target[...] = arr
