"""Micro-expression spotting in long videos, MEGC evaluation and inter-coder agreement. No Qt.

May import face, media, store and core.
"""
