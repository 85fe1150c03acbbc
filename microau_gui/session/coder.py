"""Who is coding: the coder name the session writes on every event and note it creates.

Owns: `CoderIdentity`. May import PySide6.QtCore only.

Issue 16: hand-coded events were all "(no coder name)", which made inter-coder agreement
inside one project impossible. The window asks for the name once (stored in the user's
settings by gui, not here: the session holds no per-user files) and File > Switch coder
changes it; the session passes it to AddEvent, AcceptPrediction and AddNote.

Blind coding mode (issue 16) belongs to the coder too: while it is on, the window hides what
could anchor the coder (the model's bars, traces, heatmaps and suggestions, and the other
coders' tiers), and every event the coder marks is stored as coded blind (`events.blind`), so
agreement can be measured on the blind events alone.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal


class CoderIdentity(QObject):
    """The current coder's name ("" until one is given)."""

    changed = Signal(str)  # the new name
    blind_changed = Signal(bool)  # blind coding mode switched on (True) or off

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._name = ""
        self._blind = False

    @property
    def blind(self) -> bool:
        return self._blind

    def set_blind(self, on: bool) -> None:
        if bool(on) != self._blind:
            self._blind = bool(on)
            self.blind_changed.emit(self._blind)

    @property
    def name(self) -> str:
        return self._name

    def set_name(self, name: str) -> None:
        name = " ".join(name.split())  # one line, no stray spaces: it is a key for agreement
        if name != self._name:
            self._name = name
            self.changed.emit(name)
