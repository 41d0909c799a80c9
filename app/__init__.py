"""ParamLab: see and shape a neural network's parameters.

``app.engine`` is a NumPy implementation of MXNet Gluon's API (``nd``, ``init``,
``autograd``, ``gluon``); the rest of the package builds on it.
"""

__version__ = "0.1.0"
