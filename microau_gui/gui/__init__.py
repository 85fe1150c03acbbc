"""Widgets (PySide6 + pyqtgraph). Never imports torch; talks to the model only through session.
"""
