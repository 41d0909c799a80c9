"""Everything Qt: the main window, its panels and dialogs, and the :class:`Workbench` controller.

Importing this package loads nothing; import the module you need (``app.ui.app`` to start the
window, ``app.ui.main_window`` for :class:`MainWindow`). Start-up stays lean that way.
"""
