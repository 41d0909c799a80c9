"""The parameter-initialization chapter, run headlessly on ParamLab's engine.

ParamLab grew from a Gluon tutorial chapter on initializing model parameters.
:func:`run` tells the same story step by step and prints what each step shows.
The code below is the chapter's own MXNet Gluon code with one change, the
imports, which is the point: Gluon code ports to ``app.engine`` unchanged.

Run it with ``paramlab demo`` (or plain ``paramlab``).
"""

from __future__ import annotations

import sys
import warnings
from typing import TextIO

from app.engine import autograd, gluon, init, nd
from app.engine.gluon import nn


def get_net():
    """The chapter's MLP: 4 ReLU units, then 2 outputs; input size left to inference."""
    net = nn.Sequential()
    with net.name_scope():
        net.add(nn.Dense(4, activation="relu"))
        net.add(nn.Dense(2))
    return net


class MyInit(init.Initializer):
    """The chapter's custom initializer: weights uniform in [5, 10), biases 1.

    Only ``_init_weight`` ever runs under Gluon. A Dense bias carries its own
    initializer ('zeros'), which outranks the one passed to ``initialize()``,
    and Gluon dispatches every parameter it does initialize to ``_init_weight``,
    so ``_init_bias`` is never called: the bias stays 0.
    """

    def __init__(self):
        super(MyInit, self).__init__()

    def _init_weight(self, _, arr):
        # With out=arr the values are written into arr, so no shape is needed.
        nd.random.uniform(low=5, high=10, out=arr)

    def _init_bias(self, _, arr):
        arr[:] = 1.0


def run(out: TextIO | None = None) -> None:
    """Walk through the chapter and print every step to ``out`` (default: ``sys.stdout``)."""
    if out is None:
        out = sys.stdout

    def say(*items: object, sep: str = " ") -> None:
        print(*items, sep=sep, file=out)

    def heading(title: str) -> None:
        say()
        say(title)
        say("=" * len(title))

    def note(text: str) -> None:
        say("# " + text)

    say("Initializing model parameters: the chapter, run on ParamLab's engine")

    # ------------------------------------------------------------------
    heading("1. Forward before initialize()")
    note("x = nd.random.uniform(shape=(3, 5)); net = get_net(); net(x)")
    x = nd.random.uniform(shape=(3, 5))
    net = get_net()
    try:
        net(x)
    except RuntimeError as err:
        say(f"{type(err).__name__}: {err}")
    else:
        say("(no error was raised, although the parameters are not initialized)")

    # ------------------------------------------------------------------
    heading("2. Initialize, then forward")
    note("net.initialize(); net(x)  -- default init: Uniform(scale=0.07), biases 0")
    net.initialize()
    say(net(x))

    # ------------------------------------------------------------------
    heading("3. Accessing a layer's parameters")
    w = net[0].weight
    b = net[0].bias
    say("name: ", net[0].name, "\nweight: ", w, "\nbias: ", b)
    say()
    note("Parameter.data() holds the values, Parameter.grad() the gradient")
    say("weight:", w.data())
    say("weight gradient", w.grad())
    say("bias:", b.data())
    say("bias gradient", b.grad())

    # ------------------------------------------------------------------
    heading("4. All parameters: collect_params()")
    note("a ParameterDict of every parameter, child blocks included")
    params = net.collect_params()
    say(params)
    note("[] takes the full name; get() adds the dict's prefix for you")
    say(f"params[{net.prefix + 'dense0_bias'!r}].data():", params[net.prefix + "dense0_bias"].data())
    say("params.get('dense0_weight').data():", params.get("dense0_weight").data())

    # ------------------------------------------------------------------
    heading("5. Re-initializing with another initializer")
    note("params.initialize(init=init.Normal(sigma=0.02), force_reinit=True)")
    params.initialize(init=init.Normal(sigma=0.02), force_reinit=True)
    say(net[0].weight.data(), net[0].bias.data())
    say()
    note("params.initialize(init=init.One(), force_reinit=True)")
    params.initialize(init=init.One(), force_reinit=True)
    say(net[0].weight.data(), net[0].bias.data())
    note("The biases stay 0: a Dense bias carries its own initializer ('zeros'),")
    note("which outranks the one passed to initialize().")
    say()
    note("Without force_reinit=True, initialized parameters are left alone, with a warning:")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        params.initialize(init=init.Normal(sigma=0.02))
    for warning in caught:
        say(f"{warning.category.__name__}: {warning.message}")
    say("weight still all ones:", net[0].weight.data())

    # ------------------------------------------------------------------
    heading("6. Deferred initialization")
    note("A new net does not know its input size: 0 marks the unknown dimension")
    net = get_net()
    say(net.collect_params())
    say()
    note("after net.initialize() the shapes are still unknown")
    net.initialize()
    say(net.collect_params())
    say()
    note("the first forward pass, net(x), fills them in from x")
    net(x)
    say(net.collect_params())

    # ------------------------------------------------------------------
    heading("7. Sharing parameters between layers")
    note("the third layer is built with params=net[-1].params, the second layer's parameters")
    net = nn.Sequential()
    with net.name_scope():
        net.add(nn.Dense(4, activation="relu"))
        net.add(nn.Dense(4, activation="relu"))
        net.add(nn.Dense(4, activation="relu", params=net[-1].params))
        net.add(nn.Dense(2))
    net.initialize()
    net(x)
    for i in range(4):
        say(f"net[{i}].weight.data():", net[i].weight.data())
    say()
    say("net[1].weight is net[2].weight:", net[1].weight is net[2].weight)
    note("collect_params() lists a shared parameter once, under its owner's name:")
    say(net.collect_params())

    # ------------------------------------------------------------------
    heading("8. A custom initializer")
    note("MyInit._init_weight draws nd.random.uniform(low=5, high=10, out=arr);")
    note("MyInit._init_bias would set 1.0")
    net = get_net()
    net.initialize(MyInit())
    net(x)
    say("net[0].weight.data():", net[0].weight.data())
    say("net[0].bias.data():", net[0].bias.data())
    note("The bias is still 0. Its own initializer ('zeros') takes precedence over")
    note("MyInit, and Gluon only ever calls an initializer's _init_weight, so")
    note("MyInit._init_bias never runs.")

    # ------------------------------------------------------------------
    heading("9. Writing values directly: set_data()")
    note("one forward pass first, so that deferred shapes are known")
    net = get_net()
    net.initialize()
    net(x)
    say("default weight:", net[1].weight.data())
    w = net[1].weight
    w.set_data(nd.ones(w.shape))
    say("init to all 1s:", net[1].weight.data())

    # ------------------------------------------------------------------
    heading("10. A different initializer for each layer")
    note("net[0].params.initialize(init=init.Uniform())")
    note("net[1].params.initialize(init=init.Constant(3))")
    net = nn.Sequential()
    with net.name_scope():
        net.add(nn.Dense(4, activation="relu"))
        net.add(nn.Dense(2))
    net[0].params.initialize(init=init.Uniform())
    net[1].params.initialize(init=init.Constant(3))
    say("net(x):", net(x))
    note("both outputs are equal: every row of the second layer's weight is 3s")
    say("net[1].weight.data():", net[1].weight.data())
    say()
    say(net)

    # ------------------------------------------------------------------
    heading("11. One training step on a network with a shared layer")
    note("net[1] shares net[0]'s parameters; in_units fixes every shape up front")
    net = nn.Sequential()
    with net.name_scope():
        net.add(nn.Dense(4, in_units=4, activation="relu"))
        net.add(nn.Dense(4, in_units=4, activation="relu", params=net[-1].params))
        net.add(nn.Dense(1, in_units=4))
    net.initialize(MyInit())
    for i in range(3):
        say(f"net[{i}].weight.data():", net[i].weight.data())
    say()

    note("trainer = gluon.Trainer(net.collect_params(), 'sgd', {'learning_rate': 0.1})")
    note("a = nd.random_normal(shape=(4, 4))")
    note("with autograd.record(): y = net(a)")
    note("y.backward(); trainer.step(1)")
    trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.1})
    a = nd.random_normal(shape=(4, 4))

    # An unshared twin holding the same values, to show where the shared gradient comes
    # from. Zero() draws no random numbers, so the chapter's random stream is untouched.
    twin = nn.Sequential()
    with twin.name_scope():
        twin.add(nn.Dense(4, in_units=4, activation="relu"))
        twin.add(nn.Dense(4, in_units=4, activation="relu"))
        twin.add(nn.Dense(1, in_units=4))
    twin.initialize(init.Zero())
    for i in range(3):
        twin[i].weight.set_data(net[i].weight.data())
        twin[i].bias.set_data(net[i].bias.data())

    with autograd.record():
        y = net(a)
    y.backward()
    trainer.step(1)
    with autograd.record():
        y_twin = twin(a)
    y_twin.backward()

    say(net.collect_params())
    say()
    note("weights after the step (w -= 0.1 * grad); net[0] and net[1] are one weight")
    for i in range(3):
        say(f"net[{i}].weight.data():", net[i].weight.data())
    say()
    note("gradients")
    for i in range(3):
        say(f"net[{i}].weight.grad():", net[i].weight.grad())
    say()
    shared = net[0].weight.grad().asnumpy()
    uses = twin[0].weight.grad().asnumpy() + twin[1].weight.grad().asnumpy()
    note("The shared weight's gradient is the sum of what each use contributes:")
    note("the same net without sharing gives one gradient per layer, and they add up.")
    say("net[0].weight.grad() is net[1].weight.grad():", net[0].weight.grad() is net[1].weight.grad())
    say("unshared twin: twin[0].weight.grad() + twin[1].weight.grad():", nd.array(uses))
    scale = max(1.0, float(abs(shared).max()))
    say("largest difference from the shared gradient, relative:", f"{float(abs(shared - uses).max()) / scale:.1e}")


if __name__ == "__main__":
    run()
