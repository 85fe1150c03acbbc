"""Undoable annotation edits as plain command objects (the session wraps them in QUndoCommand).

Owns: `Command` and the commands AddEvent, DeleteEvent, MoveEventBoundary, SetEventAUs, SetAUSpan,
SetEmotion, AcceptPrediction, AddNote. May import only the standard library, `core` and the
store's own modules. No Qt.

Contract, for every command:
- `apply(project)` performs the edit in one transaction; a UserError (invalid frames, unknown
  event ...) leaves the project unchanged and the command unapplied.
- `revert(project)` restores the project exactly as it was before `apply`, timestamps included:
  a reverted delete brings back the same id, uid, AUs and notes. (`Project.dump()` compares every
  row of every table; only SQLite's AUTOINCREMENT counters are left out, because an id, once
  handed out, is never handed out again, even after an undone add.)
- Applying again after a revert (redo) reproduces exactly the first application: the same new id
  for created events/notes, and the same modified_at.
- Commands address events by stable id, never by position or Python object, so they stay valid
  when other views reload the store.
- `name` is what Edit > Undo shows ("Move onset of event 12"); `event_id` the event concerned
  (known once a creating command has been applied).

Apply/revert must be called in stack order (revert the most recent applied command first), as
an undo stack does.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Iterable

from microau_gui.core.aus import AUCode, format_au_codes
from microau_gui.store.project import Project
from microau_gui.core.errors import UserError
from microau_gui.store.records import AUSpan, Boundary, Event, EventRecord, Note, PredictedEvent
from microau_gui.store.schema import utc_now


class Command(ABC):
    """One undoable edit of a project."""

    event_id: int | None = None

    @property
    @abstractmethod
    def name(self) -> str:
        """Human-readable, e.g. "Move onset of event 12"."""

    @abstractmethod
    def apply(self, project: Project) -> None:
        """Do (or redo) the edit."""

    @abstractmethod
    def revert(self, project: Project) -> None:
        """Undo the edit; the project is as it was before `apply`."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: {self.name}>"


class _EditEvent(Command):
    """Base of commands that change fields of one existing event."""

    def __init__(self, event_id: int):
        self.event_id = event_id
        self._before: Event | None = None
        self._after: Event | None = None

    @abstractmethod
    def _edited(self, event: Event) -> Event:
        """The event with this command's change made (modified_at is set by `apply`)."""

    def apply(self, project: Project) -> None:
        before = project.event(self.event_id)
        after = self._after or dataclasses.replace(self._edited(before), modified_at=utc_now())
        self._after = project.replace_event(after)
        self._before = before

    def revert(self, project: Project) -> None:
        if self._before is None:
            raise RuntimeError(f"{self.name}: revert before apply")
        project.replace_event(self._before)


class MoveEventBoundary(_EditEvent):
    """Move an event's onset, apex or offset to another frame."""

    def __init__(self, event_id: int, boundary: Boundary | str, frame_idx: int):
        super().__init__(event_id)
        self.boundary = Boundary(boundary)
        self.frame_idx = frame_idx

    @property
    def name(self) -> str:
        return f"Move {self.boundary.value} of event {self.event_id}"

    def _edited(self, event: Event) -> Event:
        return dataclasses.replace(event, **{self.boundary.value: self.frame_idx})


class SetEventAUs(_EditEvent):
    """Replace an event's AUs (each with side, intensity, asymmetric and uncertain flags)."""

    def __init__(self, event_id: int, aus: Iterable[AUCode]):
        super().__init__(event_id)
        self.aus = tuple(aus)

    @property
    def name(self) -> str:
        if not self.aus:
            return f"Clear AUs of event {self.event_id}"
        return f"Set AUs of event {self.event_id} to {format_au_codes(self.aus)}"

    def _edited(self, event: Event) -> Event:
        return dataclasses.replace(event, aus=self.aus)


class SetAUSpan(_EditEvent):
    """Time one AU of an event apart from the event: its own onset, apex and offset, or None to
    make it span the event again."""

    def __init__(self, event_id: int, number: int, frames: tuple[int, int, int] | None):
        super().__init__(event_id)
        self.number = number
        self.frames = frames

    @property
    def name(self) -> str:
        if self.frames is None:
            return f"AU{self.number} of event {self.event_id} spans the event"
        onset, apex, offset = self.frames
        return f"Time AU{self.number} of event {self.event_id} at {onset}-{apex}-{offset}"

    def _edited(self, event: Event) -> Event:
        if all(code.number != self.number for code in event.aus):
            raise UserError(f"event {self.event_id} has no AU{self.number} to time; code it first")
        spans = tuple(s for s in event.au_spans if s.number != self.number)
        if self.frames is not None:
            spans += (AUSpan(self.number, *(int(f) for f in self.frames)),)
        return dataclasses.replace(event, au_spans=spans)


class SetEmotion(_EditEvent):
    """Set (or clear, with None) an event's emotion label."""

    def __init__(self, event_id: int, emotion: str | None):
        super().__init__(event_id)
        self.emotion = (emotion or "").strip() or None

    @property
    def name(self) -> str:
        if self.emotion is None:
            return f"Clear emotion of event {self.event_id}"
        return f"Set emotion of event {self.event_id} to {self.emotion}"

    def _edited(self, event: Event) -> Event:
        return dataclasses.replace(event, emotion=self.emotion)


class _CreateEvent(Command):
    """Base of commands that create an event; redo restores the very same event."""

    def __init__(self):
        self._record: EventRecord | None = None

    @abstractmethod
    def _create(self, project: Project) -> Event:
        """Add the event for the first time."""

    def apply(self, project: Project) -> None:
        if self._record is None:
            event = self._create(project)
            self._record = EventRecord(event=event)
            self.event_id = event.id
        else:
            project.restore_event(self._record)

    def revert(self, project: Project) -> None:
        if self._record is None:
            raise RuntimeError(f"{self.name}: revert before apply")
        self._record = project.delete_event(self._record.event.id)


class AddEvent(_CreateEvent):
    """Mark a new expert event."""

    def __init__(self, video_id: int, onset: int, apex: int, offset: int,
                 aus: Iterable[AUCode] = (), *, emotion: str | None = None,
                 objective_class: str | None = None, expression_type: str = "micro",
                 coder: str = "", blind: bool = False):
        super().__init__()
        self.blind = blind  # marked in blind coding mode
        self.video_id = video_id
        self.frames = (onset, apex, offset)
        self.aus = tuple(aus)
        self.emotion = emotion
        self.objective_class = objective_class
        self.expression_type = expression_type
        self.coder = coder

    @property
    def name(self) -> str:
        return "Add event" if self.event_id is None else f"Add event {self.event_id}"

    def _create(self, project: Project) -> Event:
        onset, apex, offset = self.frames
        return project.add_event(
            self.video_id, onset, apex, offset, self.aus, emotion=self.emotion,
            objective_class=self.objective_class, expression_type=self.expression_type,
            coder=self.coder, source="expert", blind=self.blind,
        )


class AcceptPrediction(_CreateEvent):
    """Turn a model's predicted interval and AUs into an event with source 'accepted'."""

    def __init__(self, prediction: PredictedEvent, coder: str = ""):
        super().__init__()
        self.prediction = prediction
        self.coder = coder

    @property
    def name(self) -> str:
        if self.event_id is None:
            return "Accept prediction"
        return f"Accept prediction as event {self.event_id}"

    def _create(self, project: Project) -> Event:
        p = self.prediction
        return project.add_event(
            p.video_id, p.onset, p.apex, p.offset, p.aus, emotion=p.emotion,
            expression_type=p.expression_type, coder=self.coder, source="accepted",
            model_version_id=p.model_version_id,
        )


class DeleteEvent(Command):
    """Delete an event; undo brings it back with the same id, AUs and notes."""

    def __init__(self, event_id: int):
        self.event_id = event_id
        self._record: EventRecord | None = None

    @property
    def name(self) -> str:
        return f"Delete event {self.event_id}"

    def apply(self, project: Project) -> None:
        self._record = project.delete_event(self.event_id)

    def revert(self, project: Project) -> None:
        if self._record is None:
            raise RuntimeError(f"{self.name}: revert before apply")
        project.restore_event(self._record)


class AddNote(Command):
    """Add a note to an event, a video, or one frame of a video."""

    def __init__(self, text: str, *, event_id: int | None = None, video_id: int | None = None,
                 frame_idx: int | None = None, author: str = ""):
        self.text = text
        self.event_id = event_id
        self.video_id = video_id
        self.frame_idx = frame_idx
        self.author = author
        self._note: Note | None = None
        self.note_id: int | None = None

    @property
    def name(self) -> str:
        if self.event_id is not None:
            return f"Add note to event {self.event_id}"
        if self.frame_idx is not None:
            return f"Add note to frame {self.frame_idx} of video {self.video_id}"
        return f"Add note to video {self.video_id}"

    def apply(self, project: Project) -> None:
        if self._note is None:
            self._note = project.add_note(self.text, event_id=self.event_id,
                                          video_id=self.video_id, frame_idx=self.frame_idx,
                                          author=self.author)
            self.note_id = self._note.id
        else:
            project.restore_note(self._note)

    def revert(self, project: Project) -> None:
        if self._note is None:
            raise RuntimeError(f"{self.name}: revert before apply")
        project.delete_note(self._note.id)
