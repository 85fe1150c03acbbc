"""Interchange with the tools coders already use: ELAN, OpenFace, iMotions/FACET, py-feat, BORIS,
and per-frame AU tables for R, SPSS and pandas.

Owns the readers and writers of those formats, one module per format (`tables` is the bounded
delimited-text reader they share). May import store and core; never Qt, never torch. The command
line (cli/interchange_io.py) and the File menus (session.interchange) call these functions. Each module docstring names the library it uses, or says why
the format is written by hand.
"""
