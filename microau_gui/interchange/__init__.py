"""Interchange with the tools coders already use: ELAN, OpenFace, iMotions/FACET, py-feat, BORIS,
and per-frame AU tables for R, SPSS and pandas.

Owns the readers and writers of those formats (one module per format) and `FORMATS`, the list
the command line and the File menus show. May import store, media (frame rates of real files)
and core; never Qt, never torch. Each module docstring names the library it uses, or says why
the format is written by hand.
"""
