"""The starter plugin written by ``paramlab plugins new NAME``."""

from __future__ import annotations

import keyword
import re

TEMPLATE = '''"""{class_name}: a ParamLab initializer plugin.

ParamLab loads every .py file in this folder at start-up and on Plugins > Reload.
Edit, save, reload: no restart needed. `paramlab plugins` lists what loaded and what failed.
"""

from typing import Annotated, Literal

from app.engine import init, nd
from app.pluginhost import hookimpl


class {class_name}(init.Initializer):
    """Describe your initializer in this first line: the window shows it."""

    # Every keyword argument becomes a field of the settings form. Its annotation picks the
    # widget (float, int, bool, str, or Literal[...] for a drop-down; init.Range bounds a number)
    # and its default is the starting value. A value outside the bounds is refused in the form.
    def __init__(self,
                 scale: Annotated[float, init.Range(0.0, None)] = 0.05,
                 distribution: Literal["uniform", "normal"] = "uniform"):
        super().__init__(scale=scale, distribution=distribution)   # kept for dumps() and ==
        self.scale = scale
        self.distribution = distribution

    def _init_weight(self, name, arr):
        # Fill `arr` (an NDArray) IN PLACE and write every element: with `out=arr`, or arr[:] = ...
        # `name` is the parameter's full name, e.g. "sequential0_dense0_weight".
        if self.distribution == "uniform":
            nd.random.uniform(-self.scale, self.scale, out=arr)
        else:
            nd.random.normal(0.0, self.scale, out=arr)


@hookimpl
def paramlab_register_initializers(register):
    # name defaults to the class name lower-cased: "{default_name}".
    register({class_name}, label={label}, category="My plugins")
'''


def class_name_for(name: str) -> str:
    """``'my scaled init'`` → ``'MyScaledInit'``; raises ValueError for an unusable name."""
    parts = [p for p in re.split(r"[^0-9A-Za-z]+", name) if p]
    if not parts:
        raise ValueError(f"{name!r} has no letters or digits to make a class name from")
    cls = "".join(p[0].upper() + p[1:] for p in parts)
    if cls[0].isdigit():
        cls = "Init" + cls
    if keyword.iskeyword(cls):
        cls += "Init"
    return cls


def module_name_for(name: str) -> str:
    stem = re.sub(r"[^0-9a-z]+", "_", name.lower()).strip("_")
    if not stem:
        raise ValueError(f"{name!r} has no letters or digits to make a file name from")
    return stem


def render(name: str) -> str:
    cls = class_name_for(name)
    # repr(): a name with quotes or backslashes must still give a valid Python string.
    return TEMPLATE.format(class_name=cls, default_name=cls.lower(), label=repr(name))
