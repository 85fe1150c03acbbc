"""The store's record types the window reads, handed on by the session.

Owns nothing of its own: re-exports `Boundary`, `Event` and `Video` from `store.records`, so the
GUI reads them without importing the store (import-linter contract "The GUI reaches the store,
spotting and training only through the session"). May import store records only; no Qt.
"""

from microau_gui.store.records import Boundary, Event, Video

__all__ = ["Boundary", "Event", "Video"]
