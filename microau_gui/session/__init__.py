"""The open project as QObjects: undo stack, workers in QThreads, signals. No widgets.

May import inference and everything below it, and PySide6.QtCore. Never imports gui.
"""
