"""The project store (one SQLite file per project), dataset importers, exports and annotation commands.

May import core only. No torch, no Qt.
"""
