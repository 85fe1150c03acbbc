"""The project store (one SQLite file per project), dataset importers, exports and annotation commands.

Owns: the project database (schema, records, undoable commands, predictions, model versions),
dataset importers, exports and media fingerprints.
May import core only. No torch, no Qt.
"""
