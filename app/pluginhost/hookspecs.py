"""The hooks a ParamLab plugin can implement. These docstrings are the contract.

A plugin is any ``.py`` file in a plugin folder, or a module named by an entry point in the group
``"paramlab"``. It marks its hook functions with ``app.pluginhost.hookimpl``::

    from app.engine import init, nd
    from app.pluginhost import hookimpl

    class MyInit(init.Initializer):
        \"\"\"Uniform weights in [low, high).\"\"\"
        def __init__(self, low: float = 5.0, high: float = 10.0):
            super().__init__(low=low, high=high)
            self.low, self.high = low, high
        def _init_weight(self, name, arr):
            nd.random.uniform(low=self.low, high=self.high, out=arr)

    @hookimpl
    def paramlab_register_initializers(register):
        register(MyInit)

Project name and entry-point group: ``paramlab``. A hook function whose name is not one of the
hooks below is reported as a failure of its plugin (a misspelling, most likely); the other plugins
keep working.
"""

from __future__ import annotations

import pluggy

PROJECT = "paramlab"

hookspec = pluggy.HookspecMarker(PROJECT)


@hookspec
def paramlab_register_initializers(register) -> None:
    """Offer initializers to ParamLab by calling ``register`` once for each.

    ``register(cls, name=None, label=None, category=None, settings=None)``:

    - ``cls``: a subclass of ``app.engine.init.Initializer``. Its ``_init_weight(name, arr)``
      fills the NDArray ``arr`` in place and must write every element with finite values of the
      array's dtype (``arr[:] = ...`` or ``nd.random.*(..., out=arr)``); a violation is reported
      naming the initializer and the parameter, and no parameter changes.
    - ``name``: the name users pick it by (menus, files, ``PluginHost.create``, the command
      line); default: the class name lower-cased, as Gluon's ``init.register`` does. If another
      plugin already took the name, this one stays reachable as ``name@plugin`` and the clash is
      reported.
    - ``label``: the text shown in menus (default: the class name); ``category``: the menu
      group (default ``"Plugins"``; the built-ins use "Constant", "Random", "Variance scaling",
      "Structured").
    - The settings a form offers are the keyword arguments of ``cls.__init__``: their
      annotations (``int``, ``float``, ``bool``, ``str``, ``typing.Literal[...]`` for a choice;
      ``typing.Annotated[float, init.Range(low, high)]`` to bound a number) and defaults (used
      as the form's starting values; every setting needs one). ``settings`` (a dict name →
      ``app.pluginhost.Setting``) overrides what the signature says. The defaults are checked
      at registration: a class whose defaults do not validate is reported and not offered.
    - The first line of the class docstring is the description shown in the window.
    - An initializer that needs a batch of input data (LSUV and its kind) subclasses
      ``app.engine.init.DataDependentInitializer`` and implements ``calibrate(net, batch)``;
      ParamLab then runs it with the current input batch through
      ``app.engine.init.initialize_with_data``, all or nothing.
    - Optionally, ``density(self, x, shape)`` returns the theoretical probability density of
      the values the initializer draws for an array of ``shape`` at the points ``x`` (a NumPy
      array); the parameter panels draw it over the histogram.

    ``register`` records what it is given; when the hook returns, each registration is checked
    (an Initializer subclass that implements ``_init_weight``, a usable name, settings whose
    defaults validate) and one that fails is reported as a failure of the plugin, with the
    reason and what to do, while its other registrations are kept. An exception escaping this
    hook (including a ``TypeError`` from calling ``register`` with an unknown keyword) is
    reported as a failure of the plugin, and nothing that plugin registered is kept.
    """
