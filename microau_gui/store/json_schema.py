"""The schema of our JSON project export, checked with pydantic before anything is imported.

Owns: `ExportDocument` (and its item models), `validate_export`, `pack` / `unpack` (trace
columns). May import only the standard library, numpy, pydantic and `core`.

Every field has an exact type (strict mode: no null where text is expected, no string where a
number is expected, no dict where a timestamp is expected), so a loose or hostile file is refused
with one line naming the first bad field, and nothing is imported. Unknown keys are ignored,
so a newer writer's extra fields do not break an older reader of the same format version.

Comparison traces (`traces`, optional: files written before it was added have none) carry their
frame indices and per-channel values as base64 of little-endian int32 / float32 (`<i4`, `<f4`,
NaN = masked). That is the store's own representation, so the round trip is exact bit for bit,
and a trace of an hour at 200 fps (720,000 frames x 36 columns) is ~130 MB of text that is
decoded one column at a time, never a list of millions of Python floats.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from microau_gui.core.errors import UserError

_MAX_FRAMES = 100_000_000  # ~5.8 days at 200 fps; a bigger count is a damaged file
_MAX_SIDE = 100_000  # px


def _timestamp(value: str) -> str:
    try:
        datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value[:40]!r} is not an ISO 8601 timestamp") from None
    return value


def _no_control(value: str) -> str:
    if any(ord(c) < 32 and c not in "\t\n\r" for c in value) or "\x7f" in value:
        raise ValueError("contains control characters")
    return value


def _runs(value: list[list[int]]) -> list[list[int]]:
    """Frame-number runs `[[first_number, count], ...]` with positive counts."""
    for run in value:
        if len(run) != 2 or not 0 < run[1] <= _MAX_FRAMES:
            raise ValueError(f"{run[:3]} is not a run [first_number, count > 0]")
    return value


def _base64(value: str) -> str:
    if len(value) % 4:
        raise ValueError("is not base64 (length not a multiple of 4)")
    return value


Timestamp = Annotated[str, AfterValidator(_timestamp)]
Text = Annotated[str, Field(max_length=100_000), AfterValidator(_no_control)]
Name = Annotated[str, Field(min_length=1, max_length=1_000), AfterValidator(_no_control)]
Frame = Annotated[int, Field(ge=0, lt=_MAX_FRAMES)]


class _Item(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


class AUItem(_Item):
    au: Annotated[int, Field(ge=0, le=99)]
    side: Literal["B", "L", "R"]
    intensity: Literal["A", "B", "C", "D", "E"] | None
    asymmetric: bool
    uncertain: bool
    lip: Literal["T", "B"] | None = None


class AUSpanItem(_Item):
    """One AU timed apart from its event (schema 7); files without it: every AU spans its event."""

    au: Annotated[int, Field(ge=0, le=99)]
    onset: Frame
    apex: Frame
    offset: Frame


class VideoItem(_Item):
    id: int
    path: Name
    name: Name
    subject: Name | None
    n_frames: Annotated[int, Field(gt=0, le=_MAX_FRAMES)]
    fps: Annotated[float, Field(gt=0, le=100_000, allow_inf_nan=False)]
    width: Annotated[int, Field(gt=0, le=_MAX_SIDE)]
    height: Annotated[int, Field(gt=0, le=_MAX_SIDE)]
    content_hash: Name
    frame_numbers: Annotated[list[list[int]], AfterValidator(_runs)]

    @model_validator(mode="after")
    def _runs_cover_the_frames(self) -> "VideoItem":
        # checked before anything is allocated: runs of 10^8 frames each, in a 16 MB file, would
        # otherwise ask for terabytes when the numbers are expanded
        covered = sum(run[1] for run in self.frame_numbers)
        if covered != self.n_frames:
            raise ValueError(f"frame_numbers cover {covered} frames, not the video's n_frames "
                             f"{self.n_frames}")
        return self


class ModelItem(_Item):
    name: Name
    checkpoint: Name
    vocab: list[Name]
    parent: Name | None
    data_hash: str
    metrics: dict[str, Any]
    created_at: Timestamp
    active: bool


class EventItem(_Item):
    id: int
    uid: Annotated[str, Field(pattern=r"^[0-9A-Za-z_-]{1,64}$")]
    video: int
    onset: Frame
    apex: Frame
    offset: Frame
    aus: list[AUItem]
    aus_cell: Text | None = None
    import_frames: Annotated[list[Frame], Field(min_length=3, max_length=3)] | None = None
    emotion: Text | None
    objective_class: Text | None
    expression_type: Literal["micro", "macro"]
    coder: Text
    source: Literal["expert", "accepted"]
    model_version: Name | None
    created_at: Timestamp
    modified_at: Timestamp
    blind: bool = False  # coded in blind mode (schema 7; older files: not recorded, False)
    apex_number: int | None = None  # the apex's number; one no frame carries is a sheet's kept
    au_spans: list[AUSpanItem] = []


class NoteItem(_Item):
    id: int
    text: Annotated[Text, Field(min_length=1)]
    author: Text
    created_at: Timestamp
    event: str | None
    video: int | None
    frame_idx: Frame | None


# A trace column of _MAX_FRAMES 4-byte values, as base64 (4 characters per 3 bytes).
_MAX_COLUMN_CHARS = 4 * (-(-4 * _MAX_FRAMES // 3))
Packed = Annotated[str, Field(max_length=_MAX_COLUMN_CHARS, pattern=r"^[A-Za-z0-9+/]*={0,2}$"),
                   AfterValidator(_base64)]
_CHANNELS = Literal["presence", "probability", "intensity", "evidence"]


class TraceColumn(_Item):
    channel: _CHANNELS
    au: Annotated[int, Field(ge=0, le=99)]
    values: Packed  # base64 of (n,) <f4, n = the trace's frame count


class TraceItem(_Item):
    video: int
    name: Name
    tool: Literal["openface", "imotions", "pyfeat"]
    file: Annotated[str, Field(max_length=1_000), AfterValidator(_no_control)]
    meta: dict[str, Any]
    imported_at: Timestamp
    n_frames: Annotated[int, Field(ge=0, le=_MAX_FRAMES)]
    frame_idx: Packed  # base64 of (n,) <i4, ascending
    columns: Annotated[list[TraceColumn], Field(max_length=1_000)]


def unpack(text: str, dtype: str, n: int, what: str) -> np.ndarray:
    """(n,) array of a packed column; ValueError (a damaged export) when it does not hold n."""
    try:
        raw = base64.b64decode(text, validate=True)
    except binascii.Error:
        raise ValueError(f"{what} is not base64") from None
    if len(raw) != 4 * n:
        raise ValueError(f"{what} holds {len(raw) // 4} values for {n} frames")
    return np.frombuffer(raw, dtype)


def pack(values: np.ndarray, dtype: str) -> str:
    return base64.b64encode(np.ascontiguousarray(values, dtype).tobytes()).decode("ascii")


class ExportDocument(_Item):
    format: Literal["microau-project-export"]
    format_version: Literal[1]
    subjects: list[Name]
    videos: list[VideoItem]
    model_versions: list[ModelItem]
    events: list[EventItem]
    notes: list[NoteItem]
    traces: list[TraceItem] = []


def validate_export(document: object, source: str) -> ExportDocument:
    """The parsed export, or UserError naming the first field that breaks the schema."""
    try:
        return ExportDocument.model_validate(document)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "the document"
        more = f" (and {err.error_count() - 1} more problems)" if err.error_count() > 1 else ""
        raise UserError(f"{source} is a damaged export ({where}: {first['msg']}{more}); "
                        "nothing was imported") from None
