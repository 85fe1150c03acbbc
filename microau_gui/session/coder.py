"""Who is coding: the coder name the session writes on every event and note it creates.

Owns: `CoderIdentity`. May import PySide6.QtCore only.

Issue 16: hand-coded events were all "(no coder name)", which made inter-coder agreement
inside one project impossible. The window asks for the name once (stored in the user's
settings by gui, not here: the session holds no per-user files) and File > Switch coder
changes it; the session passes it to AddEvent, AcceptPrediction and AddNote.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal


class CoderIdentity(QObject):
    """The current coder's name ("" until one is given)."""

    changed = Signal(str)  # the new name

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._name = ""

    @property
    def name(self) -> str:
        return self._name

    def set_name(self, name: str) -> None:
        name = " ".join(name.split())  # one line, no stray spaces: it is a key for agreement
        if name != self._name:
            self._name = name
            self.changed.emit(name)
