"""Project-wide pytest setup.

Qt reads QT_QPA_PLATFORM when the first QApplication is built, so setting it here,
before any test or fixture imports Qt, makes every Qt test headless. A value
that is already set (say, ``xcb`` to watch the windows) is left alone.
"""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
