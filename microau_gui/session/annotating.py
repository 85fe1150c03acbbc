"""The session's annotation part: the open video's events, the selection, I/A/O marking and
every undoable edit.

Owns: `Annotator` (the session's `annotator`) and `StoreUndoCommand`. May import the session's
annotation rules, store (commands, records, project), core, PySide6.QtCore and the undo
framework of PySide6.QtGui; never gui, never another session part (what it needs of the
playhead and the model comes in as callables).

Edits: every annotation change is a `store.commands.Command`, applied once, then pushed on the
QUndoStack (`undo_stack`); each apply/revert is a store transaction, so an edit is on disk when
the call returns. The marking rules themselves (`annotation.mark_step`,
`annotation.boundary_move_order`) are plain functions.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoCommand, QUndoStack

from microau_gui.core.au import au_number
from microau_gui.core.aus import AUCode, Side
from microau_gui.core.errors import UserError
from microau_gui.session import annotation
from microau_gui.session.annotation import PendingMark
from microau_gui.session.workers import user_message
from microau_gui.store.commands import (
    AddEvent,
    AddNote,
    Command,
    DeleteEvent,
    MoveEventBoundary,
    SetAUSpan,
    SetEmotion,
    SetEventAUs,
)
from microau_gui.store.project import Project
from microau_gui.store.records import Boundary, Event, Video

log = logging.getLogger(__name__)


class StoreUndoCommand(QUndoCommand):
    """One undo step: one or more store commands, applied already when pushed.

    QUndoStack.push calls redo() at once; the commands were applied (and validated) before the
    push, so the first redo() does nothing. Later redo/undo run apply/revert in one transaction.
    """

    def __init__(self, annotator: Annotator, commands: Sequence[Command], text: str):
        super().__init__(text)
        self._annotator = annotator
        self._commands = tuple(commands)
        self._pushed = False

    def redo(self) -> None:
        if not self._pushed:
            self._pushed = True
            return
        self._annotator.run_in_transaction([c.apply for c in self._commands], "Redo")

    def undo(self) -> None:
        self._annotator.run_in_transaction([c.revert for c in reversed(self._commands)], "Undo")


class Annotator(QObject):
    """Events of the open video, the selected event, the event being marked, and edits."""

    selection_changed = Signal(object)  # Event | None
    pending_mark_changed = Signal(object)  # PendingMark | None
    status_posted = Signal(str)
    failed = Signal(str)

    def __init__(self, project: Callable[[], Project | None], video: Callable[[], Video | None],
                 frame_idx: Callable[[], int], vocab: Callable[[], tuple[str, ...]],
                 coder: Callable[[], str] = lambda: "", parent: QObject | None = None,
                 blind: Callable[[], bool] = lambda: False):
        super().__init__(parent)
        self._project = project
        self._video = video
        self._frame_idx = frame_idx
        self.frame_label: Callable[[int], str] = str  # the session sets its chosen numbering
        self._vocab = vocab
        self._coder = coder  # the coder's name, written on the events and notes made here
        self._blind = blind  # whether blind coding mode is on: events marked now are blind
        self.undo_stack = QUndoStack(self)
        self.events: list[Event] = []  # events of the open video, by onset
        self.selected_event: Event | None = None
        self.pending: PendingMark | None = None

    # -- state ---------------------------------------------------------------------------------

    def reset(self, events: list[Event]) -> None:
        """A video opened (or none): its events, nothing selected, nothing being marked."""
        self.events = events
        self.selected_event = None
        self.pending = None

    def set_selected(self, event: Event | None) -> None:
        self.selected_event = event
        self.selection_changed.emit(event)

    def set_pending(self, pending: PendingMark | None) -> None:
        self.pending = pending
        self.pending_mark_changed.emit(pending)

    def refresh_events(self) -> bool:
        """Reread the open video's events; True when the selected event changed with them."""
        project, video = self._project(), self._video()
        self.events = project.events(video.id) if project is not None and video is not None else []
        if self.selected_event is None:
            return False
        fresh = next((e for e in self.events if e.id == self.selected_event.id), None)
        if fresh == self.selected_event:
            return False
        self.set_selected(fresh)
        return True

    # -- marking events (I / A / O) ------------------------------------------------------------

    def mark_step(self, boundary: Boundary | str) -> annotation.MarkStep | None:
        """What I, A or O at the playhead would do (`annotation.mark_step`); None: no video."""
        video = self._video()
        if video is None:
            return None
        return annotation.mark_step(self.pending, Boundary(boundary), self._frame_idx(), video.id,
                                    self.frame_label)

    def apply_mark(self, step: annotation.MarkStep) -> int | None:
        """Carry out a marking step; returns the id of the event O added, else None."""
        if step.new_event is None:
            if step.pending is not self.pending:
                self.set_pending(step.pending)
            self.status_posted.emit(step.status)
            return None
        command = AddEvent(step.pending.video_id, *step.new_event, coder=self._coder(),
                           blind=self._blind())
        if not self.push([command]):
            return None
        self.set_pending(None)
        return command.event_id

    def cancel_mark(self) -> bool:
        """Esc: drop a half-marked event (True), else nothing to cancel here (False)."""
        if self.pending is None:
            return False
        self.set_pending(None)
        self.status_posted.emit("marking cancelled")
        return True

    # -- edits ---------------------------------------------------------------------------------

    def push(self, commands: Sequence[Command], text: str | None = None) -> bool:
        """Apply store commands (one transaction) and push them as ONE undo step.

        Returns False (after posting the reason) when the project refused them.
        """
        if self._project() is None:
            self.failed.emit("no project is open")
            return False
        if not self.run_in_transaction([c.apply for c in commands], "Edit refused"):
            return False
        self.undo_stack.push(StoreUndoCommand(self, commands, text or commands[-1].name))
        return True

    def run_in_transaction(self, steps, what: str) -> bool:
        project = self._project()
        try:
            with project.transaction():
                for step in steps:
                    step(project)
        except UserError as err:
            self.failed.emit(f"{what}: {err}")
            return False
        except Exception as err:  # never lose the session over one edit; the store rolled back
            log.exception("%s failed", what)
            self.failed.emit(f"{what}: {user_message(err)}")
            return False
        return True

    def move_boundary(self, event_id: int, boundary: Boundary | str, frame_idx: int) -> bool:
        return self.push([MoveEventBoundary(event_id, boundary, int(frame_idx))])

    def move_selected_boundary(self, boundary: Boundary | str) -> None:
        """Shift+I / Shift+A / Shift+O: move the selected event's boundary to the playhead."""
        if self.selected_event is None:
            self.status_posted.emit("select an event first (N / P, the timeline or the browser)")
            return
        self.move_boundary(self.selected_event.id, boundary, self._frame_idx())

    def move_event(self, event_id: int, onset: int, apex: int, offset: int) -> bool:
        """Set all three boundaries of an event as one undo step (a span dragged on the timeline)."""
        event = self._project().event(event_id)
        commands = [MoveEventBoundary(event_id, b, frame_idx)
                    for b, frame_idx in annotation.boundary_move_order(event, onset, apex, offset)]
        if not commands:
            return True
        name = commands[0].name if len(commands) == 1 else f"Move event {event_id}"
        return self.push(commands, name)

    def _selected_aus(self) -> tuple[AUCode, ...] | None:
        if self.selected_event is None:
            self.status_posted.emit("select an event first (mark one with I / A / O, or N / P)")
            return None
        return self.selected_event.aus

    def set_selected_aus(self, aus: Sequence[AUCode]) -> bool:
        if self.selected_event is None:
            return False
        return self.push([SetEventAUs(self.selected_event.id, aus)])

    def toggle_au(self, code: str) -> None:
        aus = self._selected_aus()
        if aus is not None:
            self.set_selected_aus(annotation.toggle_au(aus, code))

    def toggle_digit(self, digit: str) -> None:
        """Digit keys: toggle the digit's AU (see session.annotation.digit_aus)."""
        code = annotation.digit_aus(self._vocab()).get(digit)
        if code is not None:
            self.toggle_au(code)

    def set_au_side(self, code: str, side: Side) -> None:
        aus = self._selected_aus()
        if aus is not None:
            self.set_selected_aus(annotation.with_au_side(aus, code, side))

    def set_au_intensity(self, code: str, intensity: str | None) -> None:
        aus = self._selected_aus()
        if aus is not None:
            self.set_selected_aus(annotation.with_au_intensity(aus, code, intensity))

    def set_au_span(self, code: str, frames: tuple[int, int, int] | None) -> bool:
        """Time the selected event's AU `code` apart from the event (None: span the event)."""
        if self.selected_event is None:
            self.status_posted.emit("select an event first (mark one with I / A / O, or N / P)")
            return False
        return self.push([SetAUSpan(self.selected_event.id, au_number(code), frames)])

    def move_au_boundary(self, code: str, boundary: Boundary | str) -> bool:
        """Alt+Shift+I / A / O: move one boundary of the selected event's AU `code` (its own
        span, starting from the event's) to the playhead, keeping onset <= apex <= offset."""
        event = self.selected_event
        if event is None:
            self.status_posted.emit("select an event first (mark one with I / A / O, or N / P)")
            return False
        onset, apex, offset = annotation.moved_span(event.au_span(au_number(code)),
                                                    Boundary(boundary), self._frame_idx())
        return self.set_au_span(code, (onset, apex, offset))

    def edit_event(self, event_id: int, **fields) -> bool:
        """One edit of the event table (onset, apex, offset, aus, emotion) as one undo step."""
        event = self._project().event(event_id)
        commands: list[Command] = []
        frames = (fields.get("onset", event.onset), fields.get("apex", event.apex),
                  fields.get("offset", event.offset))
        if frames != (event.onset, event.apex, event.offset):
            commands += [MoveEventBoundary(event_id, b, f) for b, f in
                         annotation.boundary_move_order(event, *frames)]
        if "aus" in fields and tuple(fields["aus"]) != event.aus:
            commands.append(SetEventAUs(event_id, fields["aus"]))
        if "emotion" in fields and (fields["emotion"] or None) != event.emotion:
            commands.append(SetEmotion(event_id, fields["emotion"]))
        if not commands:
            return True
        name = commands[0].name if len(commands) == 1 else f"Edit event {event_id}"
        return self.push(commands, name)

    def delete_events(self, event_ids: Sequence[int]) -> bool:
        """Delete several events as one undo step (the event table's multi-select delete)."""
        if not event_ids:
            return False
        commands = [DeleteEvent(event_id) for event_id in event_ids]
        name = commands[0].name if len(commands) == 1 else f"Delete {len(commands)} events"
        return self.push(commands, name)

    def set_emotion(self, emotion: str | None) -> None:
        if self.selected_event is not None and (emotion or None) != self.selected_event.emotion:
            self.push([SetEmotion(self.selected_event.id, emotion)])

    def add_note(self, text: str) -> None:
        if not text.strip():
            return
        video = self._video()
        if self.selected_event is not None:
            self.push([AddNote(text, event_id=self.selected_event.id, author=self._coder())])
        elif video is not None:
            self.push([AddNote(text, video_id=video.id, frame_idx=self._frame_idx(),
                               author=self._coder())])

    def delete_selected_event(self) -> bool:
        """Delete the selected event (one undo step); True when it was deleted."""
        return self.selected_event is not None and self.push([DeleteEvent(self.selected_event.id)])

    def cooccurrence(self):
        """P(AU_j | AU_i) over every event of the project, in the panel vocabulary."""
        project = self._project()
        events = project.events() if project is not None else []
        return annotation.cooccurrence(events, self._vocab())
