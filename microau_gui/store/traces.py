"""Comparison traces: per-frame AU output of other tools, stored read-only beside our model's.

Owns: `ComparisonTrace`, `TraceInfo`, `TraceStore` (`project.traces`: put, list, get, find,
delete), `CHANNELS`. May import only the standard library, numpy, `core` and the store's own
modules. The readers that build traces from OpenFace, iMotions/FACET and py-feat files live in
`microau_gui.interchange.traces`.

A trace belongs to one video and has a name unique within it (by default the file's name). It is
never edited: importing the same name again replaces it as a whole. Its values are kept per
channel and AU, all aligned to the same ascending `frame_idx` (0-based, as everywhere in the
store); NaN marks a frame whose row the tool itself flagged (no face, low confidence), which a
lane draws as a gap and agreement counts as "no AU".

Channels (what the value means; its range is fixed so a lane can scale it):
- `presence`: 0 or 1, the tool's own binary decision (OpenFace `AUxx_c`);
- `probability`: 0..1 (py-feat Fex AU columns; iMotions evidence through the documented
  log10-odds logistic, see interchange.traces);
- `intensity`: 0..5, FACS-like intensity (OpenFace `AUxx_r`);
- `evidence`: raw iMotions/FACET evidence, log10 odds, unbounded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from microau_gui.core.au import au_number
from microau_gui.core.errors import UserError
from microau_gui.store import schema
from microau_gui.store.db import Database
from microau_gui.store.records import stored_json

# channel -> (low, high) of its values; None where the scale is open
CHANNELS: dict[str, tuple[float | None, float | None]] = {
    "presence": (0.0, 1.0),
    "probability": (0.0, 1.0),
    "intensity": (0.0, 5.0),
    "evidence": (None, None),
}
# The channel agreement thresholds, in order of preference: a tool's own decision first.
DECISION_CHANNELS = ("presence", "probability")


@dataclass(frozen=True, eq=False)
class ComparisonTrace:
    """One tool's per-frame AU values on one video, aligned to the video's frames."""

    name: str  # label shown in the timeline, unique per video, e.g. "OpenFace_Test.csv"
    tool: str  # "openface", "imotions" or "pyfeat"
    frame_idx: np.ndarray  # (n,) int64 ascending, unique
    values: dict[tuple[str, str], np.ndarray]  # (channel, "AU12") -> (n,) float32, NaN = masked
    file: str = ""  # the imported file's name
    meta: dict = field(default_factory=dict)  # how it was read and aligned (JSON-serialisable)

    def __post_init__(self):
        n = len(self.frame_idx)
        for (channel, au), column in self.values.items():
            if channel not in CHANNELS:
                raise ValueError(f"unknown trace channel {channel!r}")
            au_number(au)
            if column.shape != (n,):
                raise ValueError(f"{channel} {au}: {column.shape} values for {n} frames")

    @property
    def aus(self) -> tuple[str, ...]:
        """AU codes with any channel, in AU number order."""
        return tuple(sorted({au for _, au in self.values}, key=au_number))

    @property
    def channels(self) -> tuple[str, ...]:
        return tuple(c for c in CHANNELS if any(key[0] == c for key in self.values))

    def channel(self, name: str) -> tuple[tuple[str, ...], np.ndarray]:
        """(AU codes, (n, n_au) float32) of one channel, AU number order."""
        aus = tuple(sorted((au for c, au in self.values if c == name), key=au_number))
        if not aus:
            return (), np.zeros((len(self.frame_idx), 0), np.float32)
        return aus, np.stack([self.values[(name, au)] for au in aus], axis=1)  # (n, n_au)

    def decision_channel(self) -> str | None:
        """The channel that says whether an AU is present (presence, else probability)."""
        return next((c for c in DECISION_CHANNELS if c in self.channels), None)


@dataclass(frozen=True)
class TraceInfo:
    id: int
    video_id: int
    name: str
    tool: str
    file: str
    n_frames: int  # frames with a row (masked ones included)
    channels: tuple[str, ...]
    aus: tuple[str, ...]
    imported_at: str


class TraceStore:
    """`project.traces`: the project's comparison traces."""

    def __init__(self, db: Database):
        self._db = db

    def put(self, video_id: int, trace: ComparisonTrace) -> int:
        """Store `trace` for a video in one transaction, replacing one of the same name."""
        frame_idx = np.asarray(trace.frame_idx, np.int64)
        if frame_idx.size and (np.any(np.diff(frame_idx) <= 0) or frame_idx[0] < 0):
            raise ValueError("trace frame_idx must be ascending, unique and >= 0")
        with self._db.write() as changes:
            conn = self._db.conn()
            row = conn.execute("SELECT n_frames FROM videos WHERE id = ?", (video_id,)).fetchone()
            if row is None:
                raise UserError(f"video {video_id} is not in this project")
            if frame_idx.size and frame_idx[-1] >= row[0]:
                raise UserError(f"trace {trace.name!r} reaches frame {int(frame_idx[-1])} but the "
                                f"video has {row[0]} frames; align by time or pick the right video")
            conn.execute("DELETE FROM comparison_traces WHERE video_id = ? AND name = ?",
                         (video_id, trace.name))
            cursor = conn.execute(
                "INSERT INTO comparison_traces (video_id, name, tool, file, meta, frame_idx, "
                "imported_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (video_id, trace.name, trace.tool, trace.file, json.dumps(trace.meta),
                 frame_idx.astype("<i4").tobytes(), schema.utc_now()))
            trace_id = int(cursor.lastrowid)
            conn.executemany(
                "INSERT INTO comparison_trace_values (trace_id, channel, au, value) "
                "VALUES (?, ?, ?, ?)",
                [(trace_id, channel, au_number(au), np.asarray(column, "<f4").tobytes())
                 for (channel, au), column in trace.values.items()])
            changes.videos.add(video_id)
        return trace_id

    def list(self, video_id: int | None = None) -> list[TraceInfo]:
        with self._db.read() as conn:
            rows = conn.execute(
                "SELECT id, video_id, name, tool, file, length(frame_idx) / 4, imported_at "
                "FROM comparison_traces WHERE (? IS NULL OR video_id = ?) ORDER BY video_id, name",
                (video_id, video_id)).fetchall()
            keys = conn.execute(
                "SELECT v.trace_id, v.channel, v.au FROM comparison_trace_values v "
                "JOIN comparison_traces t ON t.id = v.trace_id "
                "WHERE (? IS NULL OR t.video_id = ?)", (video_id, video_id)).fetchall()
        out = []
        for trace_id, vid, name, tool, file, n, at in rows:
            mine = [(c, a) for t, c, a in keys if t == trace_id]
            out.append(TraceInfo(
                id=trace_id, video_id=vid, name=name, tool=tool, file=file, n_frames=int(n),
                channels=tuple(c for c in CHANNELS if any(k[0] == c for k in mine)),
                aus=tuple(f"AU{a}" for a in sorted({a for _, a in mine})), imported_at=at))
        return out

    def get(self, trace_id: int) -> ComparisonTrace:
        with self._db.read() as conn:
            row = conn.execute("SELECT name, tool, file, meta, frame_idx FROM comparison_traces "
                               "WHERE id = ?", (trace_id,)).fetchone()
            if row is None:
                raise UserError(f"comparison trace {trace_id} is not in this project")
            values = conn.execute("SELECT channel, au, value FROM comparison_trace_values "
                                  "WHERE trace_id = ?", (trace_id,)).fetchall()
        name, tool, file, meta, frames = row
        return ComparisonTrace(
            name=name, tool=tool, file=file,
            meta=stored_json(meta, dict, f"the description of comparison trace {name}"),
            frame_idx=np.frombuffer(frames, "<i4").astype(np.int64),
            values={(c, f"AU{a}"): np.frombuffer(v, "<f4").astype(np.float32)
                    for c, a, v in values})

    def find(self, video_id: int, name: str) -> TraceInfo | None:
        return next((t for t in self.list(video_id) if t.name == name), None)

    def delete(self, trace_id: int) -> None:
        with self._db.write() as changes:
            row = self._db.conn().execute("SELECT video_id FROM comparison_traces WHERE id = ?",
                                          (trace_id,)).fetchone()
            if row is None:
                return
            self._db.conn().execute("DELETE FROM comparison_traces WHERE id = ?", (trace_id,))
            changes.videos.add(row[0])
