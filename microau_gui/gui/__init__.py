"""Widgets (PySide6 + pyqtgraph). Never imports torch; talks to the model only through session.

Owns: the main window, its panels, views, overlays and dialogs. May import session and the
layers below it, PySide6 and pyqtgraph; never torch, open_clip or torchvision directly.
"""
