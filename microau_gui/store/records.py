"""Typed values read from and written to a project: videos, subjects, events, notes, model versions.

Owns: `Video`, `Subject`, `Event`, `AUSpan`, `EventAU`, `Note`, `EventRecord`, `ModelVersion`, `MediaFacts`,
`FrameSourceLike`,
`PredictedEvent`, `Change`, `ImportSummary`, `Boundary`, and the frame-number run encoding.
May import only the standard library, numpy and `core`.

All values are frozen: the store hands out snapshots, and edits go through `Project` methods (or
the undoable commands in `store.commands`), never through attribute assignment.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from microau_gui.core.aus import AUCode, format_au_codes
from microau_gui.core.errors import UserError

# One coded AU of an event is exactly a core `AUCode` (number, side, intensity, asymmetric,
# uncertain); the store keeps the tuple order. The alias names the role.
EventAU = AUCode

SOURCES = ("expert", "accepted")  # coder's own event | a model prediction the coder accepted
EXPRESSION_TYPES = ("micro", "macro")


class Boundary(str, Enum):
    """Which frame of an event a MoveEventBoundary command moves."""

    ONSET = "onset"
    APEX = "apex"
    OFFSET = "offset"


class FrameSourceLike(Protocol):
    """What the store reads from a media-layer frame source (`media.FrameSource` satisfies it)."""

    n_frames: int
    fps: float
    size: tuple[int, int]  # (width, height) px
    frame_numbers: tuple[int, ...]


@dataclass(frozen=True)
class MediaFacts:
    """What the store needs to know about a media file or image folder when adding it.

    Produced by the caller (the media layer, through the CLI or the session); the store itself
    never decodes media.
    """

    n_frames: int  # frames a sequential decode returns
    fps: float  # nominal frames per second
    width: int  # frame width in px
    height: int  # frame height in px
    frame_numbers: tuple[int, ...] | None = None  # the media's own numbers (img46.jpg -> 46), per
    # frame_idx; None means "number = frame_idx" unless imported samples say otherwise

    @classmethod
    def of(cls, source: MediaFacts | FrameSourceLike) -> MediaFacts:
        """The facts of an open frame source (e.g. `media.open_media(path)`); MediaFacts as is."""
        if isinstance(source, MediaFacts):
            return source
        width, height = source.size
        return cls(n_frames=int(source.n_frames), fps=float(source.fps), width=int(width),
                   height=int(height), frame_numbers=tuple(int(n) for n in source.frame_numbers))


@dataclass(frozen=True)
class Subject:
    id: int
    name: str  # dataset subject id as written, e.g. "01"


@dataclass(frozen=True)
class Video:
    """One media source (video file or image folder) of the project."""

    id: int
    rel_path: str  # relative to the project file's folder, '/' separators (as stored)
    path: Path  # rel_path resolved to an absolute path
    name: str  # clip / episode / video id, e.g. "EP02_01f"
    subject_id: int | None
    subject: str | None  # the subject's name, for display
    n_frames: int
    fps: float
    width: int
    height: int
    content_hash: str  # see store.fingerprint.content_hash
    added_at: str


@dataclass(frozen=True)
class AUSpan:
    """One AU's own onset, apex and offset inside an event, where the coder timed it apart
    (FACS times each AU; an AU without an AUSpan spans its whole event). Keyed by AU number:
    L12 and R12 of one event share one span."""

    number: int  # FACS number, e.g. 12
    onset: int  # frame_idx
    apex: int  # frame_idx
    offset: int  # frame_idx, inclusive


@dataclass(frozen=True)
class Event:
    """A coded micro- or macro-expression: the coder's own ('expert') or an accepted prediction."""

    id: int  # stable integer id within the project ("event 12")
    uid: str  # stable across projects (kept by JSON export/import)
    video_id: int
    onset: int  # frame_idx
    apex: int  # frame_idx
    offset: int  # frame_idx, inclusive
    aus: tuple[EventAU, ...] = ()
    emotion: str | None = None
    objective_class: str | None = None
    expression_type: str = "micro"  # "micro" or "macro"
    coder: str = ""
    source: str = "expert"  # "expert" or "accepted"
    model_version_id: int | None = None  # the model an accepted prediction came from
    import_id: int | None = None  # the import that created it, if any
    created_at: str = ""
    modified_at: str = ""
    aus_cell: str | None = None  # the imported sheet's AU cell as written; None if made here
    import_key: str | None = None  # identity of an imported event (video:frames:coder at import)
    blind: bool = False  # made in blind coding mode (model output and other coders hidden)
    au_spans: tuple[AUSpan, ...] = ()  # AUs timed apart from the event, by AU number
    # the sheet's apex number when it fell in a gap of the numbering (the apex then sits on the
    # nearest frame); exports write it until the apex is moved. None: the apex frame's number
    apex_number: int | None = None

    def au_span(self, number: int) -> tuple[int, int, int]:
        """(onset, apex, offset) of the event's AU `number`: its own span, else the event's."""
        span = next((s for s in self.au_spans if s.number == number), None)
        if span is None:
            return self.onset, self.apex, self.offset
        return span.onset, span.apex, span.offset

    @property
    def aus_text(self) -> str:
        """Canonical FACS string, e.g. `4+7+L10`."""
        return format_au_codes(self.aus)

    @property
    def n_frames(self) -> int:
        return self.offset - self.onset + 1

    def frame(self, boundary: Boundary) -> int:
        return {Boundary.ONSET: self.onset, Boundary.APEX: self.apex, Boundary.OFFSET: self.offset}[
            Boundary(boundary)
        ]


@dataclass(frozen=True)
class Note:
    id: int
    text: str
    author: str
    created_at: str
    event_id: int | None = None  # a note on an event ...
    video_id: int | None = None  # ... or on a video
    frame_idx: int | None = None  # ... optionally on one frame of it


@dataclass(frozen=True)
class EventRecord:
    """Everything a delete removes (the event with its AUs, and its notes): enough to restore it."""

    event: Event
    notes: tuple[Note, ...] = ()


@dataclass(frozen=True)
class ModelVersion:
    """A trained model the project knows about; predictions are cached per version."""

    id: int
    name: str  # unique label (the card's name; its full version when that name was taken)
    checkpoint: Path  # absolute path of the checkpoint (stored relative to the project when inside)
    vocab: tuple[str, ...]  # AU codes in model output order
    parent_id: int | None  # version it was fine-tuned from
    data_hash: str  # hash of the training data snapshot
    metrics_json: str  # the training/eval report as JSON text
    created_at: str
    active: bool
    card_version: str | None = None  # ModelCard.version its predictions were cached under

    @property
    def version(self) -> str:
        """Its identity, the one FramePrediction.model_version and Predictor.model_version
        carry: the card's full version (`name@hash`); the name for versions added without a
        card (imports of old exports, tests)."""
        return self.card_version or self.name

    @property
    def metrics(self) -> dict[str, Any]:
        """A fresh parse of `metrics_json` (report data, not state)."""
        return stored_json(self.metrics_json, dict, f"the metrics of model version {self.name}")


@dataclass(frozen=True)
class PredictedEvent:
    """A model's proposal for an event (from spotting or per-frame analysis), not yet accepted."""

    video_id: int
    onset: int  # frame_idx
    apex: int  # frame_idx
    offset: int  # frame_idx
    aus: tuple[EventAU, ...] = ()
    model_version_id: int | None = None
    emotion: str | None = None
    expression_type: str = "micro"


@dataclass(frozen=True)
class Change:
    """What one committed transaction touched; passed to `Project.subscribe` listeners."""

    events: frozenset[int] = frozenset()  # ids added, edited or deleted
    videos: frozenset[int] = frozenset()
    subjects: frozenset[int] = frozenset()
    notes: frozenset[int] = frozenset()
    models: frozenset[int] = frozenset()
    predictions: frozenset[tuple[int, int]] = frozenset()  # (video_id, model_version_id)

    def __bool__(self) -> bool:
        return any((self.events, self.videos, self.subjects, self.notes, self.models,
                    self.predictions))

    def merged(self, other: Change) -> Change:
        return Change(
            events=self.events | other.events,
            videos=self.videos | other.videos,
            subjects=self.subjects | other.subjects,
            notes=self.notes | other.notes,
            models=self.models | other.models,
            predictions=self.predictions | other.predictions,
        )


@dataclass(frozen=True)
class ImportSummary:
    """What `Project.import_dataset` stored."""

    import_id: int | None
    n_samples: int  # samples in the dataset
    events_added: int
    duplicates: int  # samples identical to an event already in the project: skipped
    videos_added: int
    subjects_added: int
    skipped: tuple[str, ...] = field(default=())  # "subject/clip/onset: reason" per skipped sample
    cancelled: bool = False  # stopped by should_cancel(); every batch before it is committed
    # import_id is None when the run added nothing (no `imports` row is written then)

    def __str__(self) -> str:
        text = (f"{self.events_added} events, {self.videos_added} videos and "
                f"{self.subjects_added} subjects added from {self.n_samples} samples")
        if self.duplicates:
            text += f"; {self.duplicates} already in the project"
        if self.skipped:
            text += f"; {len(self.skipped)} skipped"
        if self.cancelled:
            text += "; cancelled before the end"
        return text


def encode_frame_numbers(numbers: np.ndarray) -> str:
    """Frame numbers per frame_idx -> JSON runs `[[first_number, count], ...]` of consecutive numbers."""
    numbers = np.asarray(numbers, dtype=np.int64)
    if numbers.size == 0:
        return "[]"
    breaks = np.flatnonzero(np.diff(numbers) != 1) + 1
    starts = np.concatenate([[0], breaks])
    counts = np.diff(np.concatenate([starts, [numbers.size]]))
    return json.dumps([[int(numbers[s]), int(c)] for s, c in zip(starts, counts)],
                      separators=(",", ":"))


def stored_json(text: str | None, kind: type[list] | type[dict], what: str) -> Any:
    """A JSON column of the project, checked to hold a `kind` (a list of names, for lists)
    before it is used: a shared project edited by hand or by a hostile tool gets one line that
    names the damaged value, not a traceback deep in whatever read it first."""
    try:
        value = json.loads(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        value = None
    if not isinstance(value, kind) or (kind is list and not all(isinstance(v, str) for v in value)):
        raise UserError(f"the project is damaged: {what} is not a JSON "
                        f"{'list of names' if kind is list else 'object'}; restore it from a copy")
    return value


def decode_frame_numbers(runs_json: str, n_frames: int) -> np.ndarray:
    """Inverse of `encode_frame_numbers`: (n_frames,) int64. The runs are checked against the
    video's frame count before anything is allocated: a damaged or hostile project or export that
    declares a run of 10^11 frames gets a one-line error, not an allocation of that size."""
    try:
        runs = json.loads(runs_json)
    except (TypeError, ValueError):
        runs = None
    valid = isinstance(runs, list) and all(
        isinstance(run, list) and len(run) == 2 and all(type(v) is int for v in run) and run[1] > 0
        for run in runs)
    if not valid or sum(count for _first, count in runs) != n_frames:
        raise UserError(f"the frame numbers of a video are damaged (they do not describe its "
                        f"{n_frames} frames); re-import the media or restore the file from a copy")
    if not runs:
        return np.zeros(0, dtype=np.int64)
    return np.concatenate([np.arange(first, first + count, dtype=np.int64) for first, count in runs])
