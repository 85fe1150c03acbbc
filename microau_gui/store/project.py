"""The project: one SQLite file (suffix `.maus`) holding videos, subjects, coded events and notes.

Owns: `Project`, the typed API every other layer uses to read and edit a project, and
`Project.import_dataset`. May import only the standard library, numpy, `core` and the store's own
modules (no Qt, no torch, no media decoding: callers pass what the media layer knows as
`MediaFacts`, through a `probe` callable).

- Events are the coder's ('expert') or accepted predictions ('accepted'); the model's per-frame
  output lives apart in `project.predictions` (store.predictions), other tools' AU traces in
  `project.traces` (store.traces) and model versions in `project.models` (store.model_versions).
  Accepting a prediction is an explicit, undoable command (store.commands.AcceptPrediction).
- Every edit method is one transaction; `with project.transaction():` groups several into one.
  Edits made inside a transaction are reported to `subscribe` listeners once, after the commit.
- Validation (onset <= apex <= offset within the video, catalogued AUs, known sources) raises
  UserError and leaves the file unchanged.
- Frame numbers: events are stored as frame_idx. Each video keeps its media's own numbering
  (`frame_numbers`, e.g. CASME II img46.jpg -> 46) so exports write the numbers a coding sheet
  uses. It comes from `MediaFacts.frame_numbers` when the media layer knows it (image folders);
  otherwise from the imported samples' sheet numbers when they agree on one offset; otherwise
  number = frame_idx.
- Thread use: any thread may call any method; each thread gets its own SQLite connection. A
  worker thread should call `close_thread_connection()` before it ends.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from microau_gui.core.au import CATALOGUE
from microau_gui.core.aus import AUCode, Side
from microau_gui.core.errors import UserError
from microau_gui.core.types import Dataset, Sample
from microau_gui.store import schema
from microau_gui.store.db import Database, resolve_path, store_path
from microau_gui.store.fingerprint import content_hash
from microau_gui.store.model_versions import ModelRegistry
from microau_gui.store.predictions import PredictionCache
from microau_gui.store.review_queue import ReviewCandidates
from microau_gui.store.records import (
    EXPRESSION_TYPES,
    SOURCES,
    AUSpan,
    Change,
    Event,
    EventRecord,
    FrameSourceLike,
    ImportSummary,
    MediaFacts,
    Note,
    Subject,
    Video,
    decode_frame_numbers,
    encode_frame_numbers,
)
from microau_gui.store.traces import TraceStore

# media path -> what the media layer knows about it: MediaFacts, or an open frame source (e.g.
# `media.open_media` itself), which the store reads and closes.
Probe = Callable[[Path], MediaFacts | FrameSourceLike]

EDITABLE_EVENT_FIELDS = ("onset", "apex", "offset", "aus", "emotion", "objective_class",
                         "expression_type", "au_spans")

_VIDEO_SELECT = (
    "SELECT v.id, v.path, v.name, v.subject_id, s.name, v.n_frames, v.fps, v.width, v.height, "
    "v.content_hash, v.added_at FROM videos v LEFT JOIN subjects s ON s.id = v.subject_id"
)
_EVENT_COLUMNS = ("id, uid, video_id, onset_idx, apex_idx, offset_idx, emotion, objective_class, "
                  "expression_type, coder, source, model_version_id, import_id, created_at, "
                  "modified_at, aus_cell, import_key, blind, apex_number")
_EVENT_SLOTS = ", ".join("?" * len(_EVENT_COLUMNS.split(", ")))
_NOTE_COLUMNS = "id, text, author, created_at, event_id, video_id, frame_idx"


def _optional_text(value: str | None) -> str | None:
    if value is None:
        return None
    value = str(value).strip()
    return value or None


class Project:
    """An open project file. Create with `Project.create(path)`, open with `Project.open(path)`."""

    def __init__(self, db: Database):
        self._db = db
        self.models = ModelRegistry(db)
        self.predictions = PredictionCache(db)
        self.traces = TraceStore(db)
        self.review = ReviewCandidates(db)  # the review queue's spotted candidates

    # -- lifecycle -----------------------------------------------------------------------------

    @classmethod
    def create(cls, path: Path | str) -> Project:
        """A new, empty project at `path` (refuses to overwrite anything)."""
        return cls(Database.open(Database.create(path)))

    @classmethod
    def open(cls, path: Path | str, read_only: bool | None = None) -> Project:
        """Open after an integrity check; upgrades an older schema (keeping a `.bak` copy).

        read_only: None = decide from file permissions, True = never write, False = fail when
        the file cannot be written.
        """
        return cls(Database.open(path, read_only=read_only))

    @classmethod
    def open_or_create(cls, path: Path | str) -> Project:
        """Open the project at `path`, creating an empty one there first if nothing exists."""
        if not Path(path).exists():
            try:
                Database.create(path)
            except UserError:
                # Another process created it between our check and our link: use theirs.
                if not Path(path).exists():
                    raise
        return cls.open(path)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Project:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close_thread_connection(self) -> None:
        """Release the calling thread's connection (call at the end of a worker thread)."""
        self._db.close_thread_connection()

    @property
    def path(self) -> Path:
        return self._db.path

    @property
    def directory(self) -> Path:
        """Stored relative paths are relative to this folder."""
        return self._db.path.parent

    @property
    def read_only(self) -> bool:
        return self._db.read_only

    @property
    def read_only_reason(self) -> str | None:
        """Why edits are refused ("the project file is not writable" ...), None when writable."""
        return self._db.read_only_reason

    @property
    def schema_version(self) -> int:
        return schema.user_version(self._db.conn())

    def subscribe(self, listener: Callable[[Change], None]) -> Callable[[], None]:
        """Call `listener(change)` after each commit (on the committing thread); returns unsubscribe."""
        return self._db.subscribe(listener)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group several edits into one transaction and one change notification."""
        with self._db.write():
            yield

    def integrity_check(self) -> list[str]:
        """`PRAGMA quick_check` rows: `["ok"]` for a healthy file."""
        return [r[0] for r in self._db.conn().execute("PRAGMA quick_check")]

    def meta(self, key: str) -> str | None:
        row = self._db.conn().execute("SELECT value FROM project_meta WHERE key = ?",
                                      (key,)).fetchone()
        return None if row is None else row[0]

    def set_meta(self, key: str, value: str) -> None:
        with self._db.write():
            self._db.conn().execute(
                "INSERT OR REPLACE INTO project_meta (key, value) VALUES (?, ?)", (key, str(value)))

    def dump(self) -> dict[str, list[tuple]]:
        """Every row of every table (sqlite_sequence excluded), sorted: for tests and debugging."""
        with self._db.read() as conn:
            tables = [r[0] for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
                "ORDER BY name")]
            return {t: sorted(conn.execute(f'SELECT * FROM "{t}"').fetchall(), key=repr)
                    for t in tables}

    # -- subjects ------------------------------------------------------------------------------

    def subjects(self) -> list[Subject]:
        rows = self._db.conn().execute("SELECT id, name FROM subjects ORDER BY name, id")
        return [Subject(*r) for r in rows]

    def subject(self, subject_id: int) -> Subject:
        row = self._db.conn().execute("SELECT id, name FROM subjects WHERE id = ?",
                                      (subject_id,)).fetchone()
        if row is None:
            raise UserError(f"subject {subject_id} is not in this project")
        return Subject(*row)

    def add_subject(self, name: str) -> Subject:
        """The subject with this name, added if new."""
        with self._db.write() as changes:
            return self._subject(name, changes)

    def _subject(self, name: str, changes) -> Subject:
        name = str(name).strip()
        if not name:
            raise UserError("a subject needs a name")
        conn = self._db.conn()
        row = conn.execute("SELECT id, name FROM subjects WHERE name = ?", (name,)).fetchone()
        if row is not None:
            return Subject(*row)
        cursor = conn.execute("INSERT INTO subjects (name) VALUES (?)", (name,))
        changes.subjects.add(cursor.lastrowid)
        return Subject(cursor.lastrowid, name)

    # -- videos --------------------------------------------------------------------------------

    def _video_row(self, row) -> Video:
        return Video(
            id=row[0], rel_path=row[1], path=resolve_path(self.directory, row[1]), name=row[2],
            subject_id=row[3], subject=row[4], n_frames=row[5], fps=row[6], width=row[7],
            height=row[8], content_hash=row[9], added_at=row[10],
        )

    def videos(self, subject_id: int | None = None) -> list[Video]:
        if subject_id is None:
            rows = self._db.conn().execute(_VIDEO_SELECT + " ORDER BY v.path")
        else:
            rows = self._db.conn().execute(_VIDEO_SELECT + " WHERE v.subject_id = ? ORDER BY v.path",
                                           (subject_id,))
        return [self._video_row(r) for r in rows]

    def video(self, video_id: int) -> Video:
        row = self._db.conn().execute(_VIDEO_SELECT + " WHERE v.id = ?", (video_id,)).fetchone()
        if row is None:
            raise UserError(f"video {video_id} is not in this project")
        return self._video_row(row)

    def video_by_path(self, path: Path | str) -> Video | None:
        row = self._db.conn().execute(_VIDEO_SELECT + " WHERE v.path = ?",
                                      (store_path(self.directory, path),)).fetchone()
        return None if row is None else self._video_row(row)

    def add_video(self, path: Path | str, facts: MediaFacts | FrameSourceLike, *,
                  name: str | None = None, subject: str | None = None,
                  digest: str | None = None) -> Video:
        """Register a video file or image folder (refused when its path is already in the project).

        facts: `MediaFacts`, or an open frame source to read them from (the caller closes it).
        digest: its content hash when already known (e.g. from an export); otherwise the file is
        read to compute it, so it must exist.
        """
        path = Path(path).absolute()
        facts = MediaFacts.of(facts)
        digest = digest or content_hash(path)
        with self._db.write() as changes:
            return self._insert_video(path, facts, name or path.stem, subject, digest, None,
                                      changes)

    def _insert_video(self, path: Path, facts: MediaFacts, name: str, subject: str | None,
                      digest: str, number_offset: int | None, changes) -> Video:
        if facts.n_frames <= 0 or facts.fps <= 0 or facts.width <= 0 or facts.height <= 0:
            raise UserError(f"media {path} reports {facts.n_frames} frames at {facts.fps} fps, "
                            f"{facts.width}x{facts.height}; it cannot be added")
        if facts.frame_numbers is not None:
            numbers = np.asarray(facts.frame_numbers, dtype=np.int64)
            if numbers.size != facts.n_frames:
                raise ValueError(f"{numbers.size} frame numbers for {facts.n_frames} frames")
        else:
            numbers = np.arange(facts.n_frames, dtype=np.int64) + (number_offset or 0)
        rel_path = store_path(self.directory, path)
        conn = self._db.conn()
        if conn.execute("SELECT 1 FROM videos WHERE path = ?", (rel_path,)).fetchone():
            raise UserError(f"{path} is already in the project")
        subject_id = None if subject is None else self._subject(subject, changes).id
        cursor = conn.execute(
            "INSERT INTO videos (path, name, subject_id, n_frames, fps, width, height, "
            "content_hash, frame_numbers, added_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (rel_path, name, subject_id, int(facts.n_frames), float(facts.fps), int(facts.width),
             int(facts.height), digest, encode_frame_numbers(numbers), schema.utc_now()),
        )
        changes.videos.add(cursor.lastrowid)
        return self.video(cursor.lastrowid)

    def set_video_subject(self, video_id: int, subject: str | None) -> Video:
        with self._db.write() as changes:
            self.video(video_id)
            subject_id = None if subject is None else self._subject(subject, changes).id
            self._db.conn().execute("UPDATE videos SET subject_id = ? WHERE id = ?",
                                    (subject_id, video_id))
            changes.videos.add(video_id)
        return self.video(video_id)

    def relink_video(self, video_id: int, path: Path | str, *, force: bool = False) -> Video:
        """Point a video at its new location; refused when the content differs unless `force`."""
        video = self.video(video_id)
        path = Path(path).absolute()
        digest = content_hash(path)
        if digest != video.content_hash and not force:
            raise UserError(f"{path} is not the same media as {video.rel_path} (content differs); "
                            "pick the right file, or relink with force")
        with self._db.write() as changes:
            self._db.conn().execute("UPDATE videos SET path = ?, content_hash = ? WHERE id = ?",
                                    (store_path(self.directory, path), digest, video_id))
            changes.videos.add(video_id)
        return self.video(video_id)

    def remove_video(self, video_id: int) -> None:
        """Delete a video with its events, notes and cached predictions (not undoable)."""
        with self._db.write() as changes:
            self.video(video_id)
            conn = self._db.conn()
            changes.events.update(r[0] for r in conn.execute(
                "SELECT id FROM events WHERE video_id = ?", (video_id,)))
            conn.execute("DELETE FROM videos WHERE id = ?", (video_id,))
            changes.videos.add(video_id)

    def frame_numbers(self, video_id: int) -> np.ndarray:
        """(n_frames,) int64: the media's own number of each frame_idx (see the module docstring)."""
        row = self._db.conn().execute("SELECT frame_numbers, n_frames FROM videos WHERE id = ?",
                                      (video_id,)).fetchone()
        if row is None:
            raise UserError(f"video {video_id} is not in this project")
        return decode_frame_numbers(row[0], row[1])

    def frame_label(self, video_id: int, *frame_idxs: int) -> str:
        """The dataset's own numbers of some frames, for display: `frame_label(v, 23, 61, 118)`
        -> '124–162–219' for a CASME II clip that starts at img101.jpg. Views show these, the
        numbers every export writes, never the 0-based frame_idx."""
        numbers = self.frame_numbers(video_id)
        return "–".join(str(int(numbers[i])) if 0 <= i < numbers.size else f"#{i}"
                        for i in frame_idxs)

    # -- events --------------------------------------------------------------------------------

    def _events_where(self, where: str, params: tuple) -> list[Event]:
        with self._db.read() as conn:
            rows = conn.execute(f"SELECT {_EVENT_COLUMNS} FROM events {where} ORDER BY video_id, "
                                "onset_idx, id", params).fetchall()
            au_rows = conn.execute(
                "SELECT event_id, au, side, intensity, asymmetric, uncertain, lip, onset_idx, "
                "apex_idx, offset_idx FROM event_aus "
                f"WHERE event_id IN (SELECT id FROM events {where}) ORDER BY event_id, position",
                params).fetchall()
        aus: dict[int, list[AUCode]] = {}
        spans: dict[int, dict[int, AUSpan]] = {}
        for (event_id, number, side, intensity, asymmetric, uncertain, lip, onset, apex,
             offset) in au_rows:
            aus.setdefault(event_id, []).append(AUCode(
                number=number, side=Side(side), intensity=intensity,
                asymmetric=bool(asymmetric), uncertain=bool(uncertain), lip=lip))
            if onset is not None:
                spans.setdefault(event_id, {}).setdefault(
                    number, AUSpan(number, onset, apex, offset))
        return [Event(
            id=r[0], uid=r[1], video_id=r[2], onset=r[3], apex=r[4], offset=r[5],
            aus=tuple(aus.get(r[0], ())), emotion=r[6], objective_class=r[7],
            expression_type=r[8], coder=r[9], source=r[10], model_version_id=r[11],
            import_id=r[12], created_at=r[13], modified_at=r[14], aus_cell=r[15],
            import_key=r[16], blind=bool(r[17]), apex_number=r[18],
            au_spans=tuple(sorted(spans.get(r[0], {}).values(), key=lambda span: span.number)),
        ) for r in rows]

    def events(self, video_id: int | None = None, *, source: str | None = None,
               coder: str | None = None) -> list[Event]:
        """Events ordered by video and onset, optionally filtered."""
        clauses, params = [], []
        for column, value in (("video_id", video_id), ("source", source), ("coder", coder)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        return self._events_where(where, tuple(params))

    def event(self, event_id: int) -> Event:
        found = self._events_where("WHERE id = ?", (event_id,))
        if not found:
            raise UserError(f"event {event_id} is not in this project (deleted?)")
        return found[0]

    def events_by_import_key(self, key: str) -> list[int]:
        """Ids of the event holding this import identity (zero or one)."""
        return [r[0] for r in self._db.conn().execute(
            "SELECT id FROM events WHERE import_key = ?", (key,))]

    def coders(self) -> list[str]:
        return [r[0] for r in self._db.conn().execute(
            "SELECT DISTINCT coder FROM events ORDER BY coder")]

    def _validated(self, event: Event, video: Video | None = None) -> Event:
        """The event with normalised text fields, or UserError saying what is wrong."""
        video = video if video is not None and video.id == event.video_id else self.video(
            event.video_id)
        for label, value in (("onset", event.onset), ("apex", event.apex),
                             ("offset", event.offset)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise UserError(f"{label} must be a frame index, not {value!r}")
        if event.onset < 0:
            raise UserError(f"onset {event.onset} is before the first frame (0)")
        if event.onset > event.apex:
            raise UserError(f"onset ({event.onset}) must not come after apex ({event.apex})")
        if event.apex > event.offset:
            raise UserError(f"apex ({event.apex}) must not come after offset ({event.offset})")
        if event.offset >= video.n_frames:
            raise UserError(f"offset {event.offset} is beyond the last frame "
                            f"({video.n_frames - 1}) of video {video.name}")
        for code in event.aus:
            if not isinstance(code, AUCode):
                raise UserError(f"{code!r} is not an AU code")
            if code.number not in CATALOGUE:
                raise UserError(f"AU{code.number} is not in the AU catalogue")
        if event.expression_type not in EXPRESSION_TYPES:
            raise UserError(f"expression type must be micro or macro, not {event.expression_type!r}")
        if event.source not in SOURCES:
            raise UserError(f"event source must be expert or accepted, not {event.source!r}")
        numbers = {code.number for code in event.aus}
        for span in event.au_spans:
            if not 0 <= span.onset <= span.apex <= span.offset < video.n_frames:
                raise UserError(f"AU{span.number} timing {span.onset}-{span.apex}-{span.offset} "
                                "must run onset <= apex <= offset inside the video "
                                f"(frames 0-{video.n_frames - 1})")
        return dataclasses.replace(
            event, onset=int(event.onset), apex=int(event.apex), offset=int(event.offset),
            aus=tuple(dict.fromkeys(event.aus)), emotion=_optional_text(event.emotion),
            objective_class=_optional_text(event.objective_class), coder=str(event.coder).strip(),
            # a span outlives its AU only as long as the AU is coded (removing AU12 drops its
            # timing; an undo restores both from the snapshot)
            au_spans=tuple(sorted((span for span in {s.number: s for s in event.au_spans}.values()
                                   if span.number in numbers), key=lambda span: span.number)),
            blind=bool(event.blind),
        )

    def _insert_event(self, event: Event, changes, keep_id: bool | None,
                      video: Video | None = None) -> int:
        """Insert as given; keep_id True: event.id (taken -> UserError), None: event.id if free.

        video: the event's video when the caller already has it (saves a query per event).
        """
        event = self._validated(event, video)
        conn = self._db.conn()
        values = (event.uid, event.video_id, event.onset, event.apex, event.offset, event.emotion,
                  event.objective_class, event.expression_type, event.coder, event.source,
                  event.model_version_id, event.import_id, event.created_at, event.modified_at,
                  event.aus_cell, event.import_key, int(event.blind), event.apex_number)
        taken = event.id <= 0 or conn.execute("SELECT 1 FROM events WHERE id = ?",
                                              (event.id,)).fetchone() is not None
        if keep_id and taken:
            raise UserError(f"event {event.id} already exists; it cannot be restored twice")
        if conn.execute("SELECT 1 FROM events WHERE uid = ?", (event.uid,)).fetchone():
            raise UserError(f"event {event.uid} is already in this project")
        if event.import_key is not None and conn.execute(
                "SELECT 1 FROM events WHERE import_key = ?", (event.import_key,)).fetchone():
            raise UserError(f"an event imported with the same video, frames and coder "
                            f"({event.import_key}) is already in this project")
        if keep_id or (keep_id is None and not taken):
            cursor = conn.execute(f"INSERT INTO events ({_EVENT_COLUMNS}) VALUES ({_EVENT_SLOTS})",
                                  (event.id,) + values)
        else:
            cursor = conn.execute(f"INSERT INTO events ({_EVENT_COLUMNS.partition(', ')[2]}) "
                                  f"VALUES ({_EVENT_SLOTS.partition(', ')[2]})", values)
        event_id = cursor.lastrowid
        self._write_aus(event_id, event.aus, event.au_spans)
        changes.events.add(event_id)
        return event_id

    def _write_aus(self, event_id: int, aus: Iterable[AUCode],
                   au_spans: Iterable[AUSpan] = ()) -> None:
        """The event's AU rows; each row of an AU number with an AUSpan carries its timing."""
        conn = self._db.conn()
        timing = {span.number: (span.onset, span.apex, span.offset) for span in au_spans}
        conn.execute("DELETE FROM event_aus WHERE event_id = ?", (event_id,))
        conn.executemany(
            "INSERT INTO event_aus (event_id, position, au, side, intensity, asymmetric, "
            "uncertain, lip, onset_idx, apex_idx, offset_idx) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(event_id, i, c.number, c.side.value, c.intensity, int(c.asymmetric),
              int(c.uncertain), c.lip, *timing.get(c.number, (None, None, None)))
             for i, c in enumerate(aus)],
        )

    def add_event(self, video_id: int, onset: int, apex: int, offset: int,
                  aus: Iterable[AUCode] = (), *, emotion: str | None = None,
                  objective_class: str | None = None, expression_type: str = "micro",
                  coder: str = "", source: str = "expert", model_version_id: int | None = None,
                  at: str | None = None, blind: bool = False) -> Event:
        """A new event with a new stable id; `at` is its created/modified timestamp (default now);
        `blind`: made in blind coding mode."""
        at = at or schema.utc_now()
        event = Event(
            id=0, uid=uuid.uuid4().hex, video_id=video_id, onset=onset, apex=apex, offset=offset,
            aus=tuple(aus), emotion=emotion, objective_class=objective_class,
            expression_type=expression_type, coder=coder, source=source,
            model_version_id=model_version_id, created_at=at, modified_at=at, blind=blind,
        )
        with self._db.write() as changes:
            event_id = self._insert_event(event, changes, keep_id=False)
        return self.event(event_id)

    def replace_event(self, event: Event) -> Event:
        """Write every editable field of `event` (and its modified_at) over the stored event.

        Identity, provenance and created_at (id, uid, video, coder, source, model version,
        import) cannot change. Undo uses this to restore an earlier snapshot exactly.
        """
        with self._db.write() as changes:
            stored = self.event(event.id)
            fixed = ("uid", "video_id", "coder", "source", "model_version_id", "import_id",
                     "created_at", "aus_cell", "import_key", "blind")
            changed = [f for f in fixed if getattr(stored, f) != getattr(event, f)]
            if changed:
                raise UserError(f"event {event.id}: {', '.join(changed)} cannot be edited")
            event = self._validated(event)
            self._db.conn().execute(
                "UPDATE events SET onset_idx = ?, apex_idx = ?, offset_idx = ?, emotion = ?, "
                "objective_class = ?, expression_type = ?, modified_at = ?, apex_number = ? "
                "WHERE id = ?",
                (event.onset, event.apex, event.offset, event.emotion, event.objective_class,
                 event.expression_type, event.modified_at, event.apex_number, event.id),
            )
            if event.aus != stored.aus or event.au_spans != stored.au_spans:
                self._write_aus(event.id, event.aus, event.au_spans)
            changes.events.add(event.id)
        return self.event(event.id)

    def update_event(self, event_id: int, *, at: str | None = None, **fields) -> Event:
        """Change some of EDITABLE_EVENT_FIELDS (e.g. `onset=12`); modified_at becomes `at` or now."""
        unknown = set(fields) - set(EDITABLE_EVENT_FIELDS)
        if unknown:
            raise ValueError(f"not editable: {sorted(unknown)}; editable: {EDITABLE_EVENT_FIELDS}")
        if "aus" in fields:
            fields["aus"] = tuple(fields["aus"])
        with self._db.write():
            before = self.event(event_id)
            # a kept sheet apex number (a gap) names the apex where the sheet put it: once the
            # coder moves the apex, the new frame's own number is the apex
            moved = "apex" in fields and fields["apex"] != before.apex
            return self.replace_event(dataclasses.replace(
                before, modified_at=at or schema.utc_now(), **fields,
                apex_number=None if moved else before.apex_number))

    def delete_event(self, event_id: int) -> EventRecord:
        """Delete an event with its AUs and notes; returns what `restore_event` needs."""
        with self._db.write() as changes:
            record = EventRecord(event=self.event(event_id), notes=tuple(self.notes(event_id=event_id)))
            self._db.conn().execute("DELETE FROM events WHERE id = ?", (event_id,))
            changes.events.add(event_id)
            changes.notes.update(n.id for n in record.notes)
        return record

    def insert_event(self, record: EventRecord, *, keep_ids: bool | None = None) -> Event:
        """Insert an event exactly as given (uid, provenance, timestamps, AUs) with its notes.

        keep_ids: True = the record's event and note ids (UserError when taken), None = the
        record's ids where free and new ones otherwise, False = new ids. An event whose uid is
        already in the project is refused.
        """
        with self._db.write() as changes:
            event_id = self._insert_event(record.event, changes, keep_id=keep_ids)
            for note in record.notes:
                self._insert_note(dataclasses.replace(note, event_id=event_id), changes,
                                  keep_id=keep_ids)
        return self.event(event_id)

    def restore_event(self, record: EventRecord) -> Event:
        """Put a deleted event back with the same id, uid, AUs, notes and timestamps."""
        try:
            return self.insert_event(record, keep_ids=True)
        except UserError as err:
            raise UserError(f"event {record.event.id} cannot be restored: {err}") from err

    # -- notes ---------------------------------------------------------------------------------

    def notes(self, *, event_id: int | None = None, video_id: int | None = None) -> list[Note]:
        """Notes on one event, on one video (its frames included), or all; oldest first."""
        if event_id is not None:
            where, params = "WHERE event_id = ?", (event_id,)
        elif video_id is not None:
            where, params = "WHERE video_id = ?", (video_id,)
        else:
            where, params = "", ()
        rows = self._db.conn().execute(
            f"SELECT {_NOTE_COLUMNS} FROM notes {where} ORDER BY created_at, id", params)
        return [Note(*r) for r in rows]

    def note(self, note_id: int) -> Note:
        row = self._db.conn().execute(f"SELECT {_NOTE_COLUMNS} FROM notes WHERE id = ?",
                                      (note_id,)).fetchone()
        if row is None:
            raise UserError(f"note {note_id} is not in this project")
        return Note(*row)

    def _insert_note(self, note: Note, changes, keep_id: bool | None) -> int:
        """Insert as given; keep_id as in `_insert_event`."""
        text = str(note.text).strip()
        if not text:
            raise UserError("a note needs some text")
        if (note.event_id is None) == (note.video_id is None):
            raise UserError("a note belongs to either an event or a video")
        if note.event_id is not None:
            self.event(note.event_id)
            if note.frame_idx is not None:
                raise UserError("a note on an event cannot also name a frame")
        else:
            video = self.video(note.video_id)
            if note.frame_idx is not None and not 0 <= note.frame_idx < video.n_frames:
                raise UserError(f"frame {note.frame_idx} is outside video {video.name} "
                                f"(0-{video.n_frames - 1})")
        values = (text, str(note.author).strip(), note.created_at, note.event_id, note.video_id,
                  note.frame_idx)
        conn = self._db.conn()
        taken = note.id <= 0 or conn.execute("SELECT 1 FROM notes WHERE id = ?",
                                             (note.id,)).fetchone() is not None
        if keep_id and taken:
            raise UserError(f"note {note.id} already exists; it cannot be restored twice")
        if keep_id or (keep_id is None and not taken):
            cursor = conn.execute(f"INSERT INTO notes ({_NOTE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                                  (note.id,) + values)
        else:
            cursor = conn.execute(f"INSERT INTO notes ({_NOTE_COLUMNS.partition(', ')[2]}) "
                                  "VALUES (?, ?, ?, ?, ?, ?)", values)
        changes.notes.add(cursor.lastrowid)
        if note.event_id is not None:
            changes.events.add(note.event_id)
        if note.video_id is not None:
            changes.videos.add(note.video_id)
        return cursor.lastrowid

    def add_note(self, text: str, *, event_id: int | None = None, video_id: int | None = None,
                 frame_idx: int | None = None, author: str = "", at: str | None = None) -> Note:
        """A note on an event, or on a video (optionally one frame of it)."""
        note = Note(id=0, text=text, author=author, created_at=at or schema.utc_now(),
                    event_id=event_id, video_id=video_id, frame_idx=frame_idx)
        with self._db.write() as changes:
            note_id = self._insert_note(note, changes, keep_id=False)
        return self.note(note_id)

    def delete_note(self, note_id: int) -> Note:
        """Delete a note; returns it so `restore_note` can put it back."""
        with self._db.write() as changes:
            note = self.note(note_id)
            self._db.conn().execute("DELETE FROM notes WHERE id = ?", (note_id,))
            changes.notes.add(note_id)
            if note.event_id is not None:
                changes.events.add(note.event_id)
            if note.video_id is not None:
                changes.videos.add(note.video_id)
        return note

    def insert_note(self, note: Note, *, keep_id: bool | None = None) -> Note:
        """Insert a note exactly as given (text, author, created_at); keep_id as in insert_event."""
        with self._db.write() as changes:
            note_id = self._insert_note(note, changes, keep_id=keep_id)
        return self.note(note_id)

    def restore_note(self, note: Note) -> Note:
        """Put a deleted note back with the same id."""
        return self.insert_note(note, keep_id=True)

    # -- dataset import ------------------------------------------------------------------------

    def import_dataset(self, dataset: Dataset, probe: Probe, *, coder: str = "",
                       batch_size: int = 500,
                       progress: Callable[[int, int], None] | None = None,
                       should_cancel: Callable[[], bool] | None = None) -> ImportSummary:
        """Store a dataset's samples as expert events (with their videos and subjects).

        `probe(media_path)` returns the media's `MediaFacts` or an open frame source (pass
        `media.open_media` itself; the store closes what it returns). It is called once per new
        media path; a UserError from it skips that media's samples, with the reason. Samples are
        committed in batches of `batch_size`, each batch one transaction, and `progress(n_done, n_total)` is
        called after every commit, so a killed import keeps every batch it reported.

        An imported event's identity (video, frames and coder at import: `Event.import_key`) is
        a unique key in the file, checked inside each batch's write transaction: re-running an
        import, or a second process importing the same sheet at the same time, adds nothing
        twice (the second writer waits for the first's batch, then counts its rows as
        duplicates). The `imports` row is written with the first batch that adds an event,
        records how many were added and, once the run ends, when it finished; a run that adds
        nothing leaves no row. `should_cancel()` is polled between batches.
        """
        self._db.require_writable()
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        samples = dataset.samples
        run = _DatasetImport(self, dataset, str(coder).strip(), probe)
        n_done = 0
        cancelled = False
        for start in range(0, len(samples), batch_size):
            if should_cancel is not None and should_cancel():
                cancelled = True
                break
            batch = samples[start:start + batch_size]
            run.probe_new_media(batch)  # outside the transaction: media I/O holds no write lock
            with self._db.write() as changes:
                for sample in batch:
                    run.store(sample, changes)
                run.record_progress()
            n_done += len(batch)
            if progress is not None:
                progress(n_done, len(samples))
        if run.import_id is not None and not cancelled:
            with self._db.write():
                self._db.conn().execute("UPDATE imports SET finished_at = ? WHERE id = ?",
                                        (schema.utc_now(), run.import_id))
        return ImportSummary(
            import_id=run.import_id, n_samples=len(samples), events_added=run.events_added,
            duplicates=run.duplicates, videos_added=run.videos_added,
            subjects_added=run.subjects_added, skipped=tuple(run.skipped), cancelled=cancelled,
        )

    def imports(self) -> list[dict]:
        """Every recorded import run, oldest first (kind, sheet, coder, counts, times)."""
        rows = self._db.conn().execute(
            "SELECT id, kind, sheet, media_root, coder, n_samples, n_added, started_at, "
            "finished_at FROM imports ORDER BY id")
        keys = ("id", "kind", "sheet", "media_root", "coder", "n_samples", "n_added",
                "started_at", "finished_at")
        return [dict(zip(keys, r)) for r in rows]


class _DatasetImport:
    """The state of one `Project.import_dataset` run (caches keyed by the samples' media paths)."""

    def __init__(self, project: Project, dataset: Dataset, coder: str, probe: Probe):
        self.project = project
        self.dataset = dataset
        self.import_id: int | None = None  # written with the first event added
        self.coder = coder
        self.probe = probe
        samples = dataset.samples
        self.offsets = _sheet_number_offsets(samples)
        clips: dict[Path, set[str]] = {}
        for sample in samples:
            clips.setdefault(sample.media_path, set()).add(sample.clip)
        # A video is named after its clip; a long video holding several clips (SAMM-LV
        # 006_1_1, 006_1_2 ...) after its file instead.
        self.names = {media: next(iter(c)) if len(c) == 1 else Path(media).stem
                      for media, c in clips.items()}
        self.videos: dict[Path, Video | str] = {}  # sample.media_path -> video, or why unusable
        self.facts: dict[Path, tuple[MediaFacts, str]] = {}  # probed, not stored yet: facts, hash
        self.events_added = self.duplicates = self.videos_added = self.subjects_added = 0
        self._added_in_batch = 0
        self.skipped: list[str] = []

    def probe_new_media(self, batch: Iterable[Sample]) -> None:
        for sample in batch:
            raw = sample.media_path
            if raw in self.videos or raw in self.facts:
                continue
            media = Path(raw).absolute()
            video = self.project.video_by_path(media)
            if video is not None:
                self.videos[raw] = video
                continue
            found = _probe(self.probe, media)
            if isinstance(found, str):
                self.videos[raw] = found
            else:
                # Hashing reads the whole media: done here, not while holding the write lock.
                self.facts[raw] = (found, content_hash(media))

    def _video(self, sample: Sample, changes) -> Video | str:
        raw = sample.media_path
        known = self.videos.get(raw)
        if known is not None:
            return known
        media = Path(raw).absolute()
        facts, digest = self.facts.pop(raw)
        video = self.project.video_by_path(media)  # a concurrent import may have added it
        if video is None:
            n_subjects = len(changes.subjects)
            video = self.project._insert_video(media, facts, self.names[raw], sample.subject,
                                               digest, self.offsets.get(media), changes)
            self.videos_added += 1
            self.subjects_added += len(changes.subjects) - n_subjects
        self.videos[raw] = video
        return video

    def _import_id(self) -> int:
        if self.import_id is None:
            dataset = self.dataset
            self.import_id = self.project._db.conn().execute(
                "INSERT INTO imports (kind, sheet, media_root, coder, n_samples, started_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (dataset.kind, str(dataset.sheet), str(dataset.media_root), self.coder,
                 len(dataset.samples), schema.utc_now()),
            ).lastrowid
        return self.import_id

    def record_progress(self) -> None:
        """Inside the batch's transaction: add the batch's events to the run's count."""
        if self._added_in_batch:
            self.project._db.conn().execute(
                "UPDATE imports SET n_added = n_added + ? WHERE id = ?",
                (self._added_in_batch, self.import_id))
        self.events_added += self._added_in_batch
        self._added_in_batch = 0

    def _kept_apex_number(self, sample: Sample, video) -> int | None:
        """The sheet's apex number when no frame carries it (the importer put the apex on the
        nearest frame of a gap); None when the apex frame's own number is the sheet's."""
        if sample.apex_number is None:
            return None
        numbers = self.project.frame_numbers(video.id)
        if 0 <= sample.apex < numbers.size and int(numbers[sample.apex]) == sample.apex_number:
            return None
        return int(sample.apex_number) if sample.apex_number not in set(numbers.tolist()) else None

    def store(self, sample: Sample, changes) -> None:
        """Store one sample inside the caller's transaction (or note why it was skipped)."""
        video = self._video(sample, changes)
        if isinstance(video, str):
            self.skipped.append(f"{sample.key}: {video}")
            return
        key = import_key(video.id, sample.onset, sample.apex, sample.offset, self.coder)
        conn = self.project._db.conn()
        # Checked inside the write transaction, so it sees every committed import, including a
        # concurrent one; the unique index on import_key backs it.
        if conn.execute("SELECT 1 FROM events WHERE import_key = ?", (key,)).fetchone():
            self.duplicates += 1
            return
        at = schema.utc_now()
        event = Event(
            id=0, uid=uuid.uuid4().hex, video_id=video.id, onset=sample.onset, apex=sample.apex,
            offset=sample.offset, aus=tuple(sample.aus), emotion=sample.emotion,
            objective_class=sample.objective_class, expression_type=sample.expression_type,
            coder=self.coder, source="expert", import_id=None, created_at=at,
            modified_at=at, aus_cell=sample.aus_cell, import_key=key,
            apex_number=self._kept_apex_number(sample, video),
        )
        try:  # validation runs before any row is written, so a refused sample leaves nothing
            event = self.project._validated(event, video)
        except UserError as err:
            self.skipped.append(f"{sample.key}: {err}")
            return
        event = dataclasses.replace(event, import_id=self._import_id())
        self.project._insert_event(event, changes, keep_id=False, video=video)
        self._added_in_batch += 1


def import_key(video_id: int, onset: int, apex: int, offset: int, coder: str) -> str:
    """An imported event's identity: video, frames and coder (same text as migration 3 writes)."""
    return f"{int(video_id)}:{int(onset)}:{int(apex)}:{int(offset)}:{coder}"


def _probe(probe: Probe, media: Path) -> MediaFacts | str:
    """The media's facts, or the reason it cannot be used. A returned frame source is closed."""
    try:
        found = probe(media)
    except UserError as err:
        return f"media {media} unusable: {err}"
    try:
        return MediaFacts.of(found)
    finally:
        if not isinstance(found, MediaFacts) and hasattr(found, "close"):
            found.close()


def _sheet_number_offsets(samples: Iterable[Sample]) -> dict[Path, int | None]:
    """Per media path, the single `number - frame_idx` its samples' sheet numbers agree on."""
    seen: dict[Path, set[int]] = {}
    for sample in samples:
        media = Path(sample.media_path).absolute()
        for number, idx in ((sample.onset_number, sample.onset), (sample.apex_number, sample.apex),
                            (sample.offset_number, sample.offset)):
            if number is not None:
                seen.setdefault(media, set()).add(int(number) - int(idx))
    return {media: next(iter(d)) if len(d) == 1 else None for media, d in seen.items()}
