"""Synthetic micro-expression data from real photos shipped in installed packages. No Qt.

May import face, media, store and core.
"""
