"""The project file format: SQL schema, ordered migrations and the migration runner.

Owns: `APPLICATION_ID`, `Migration`, `MIGRATIONS`, `latest_version`, `migrate`, `dump_schema`.
May import only the standard library (and `core.errors`).

A project file is an SQLite database whose header carries `PRAGMA application_id = APPLICATION_ID`
("MAUS") and `PRAGMA user_version = ` the number of the last migration applied. Migration N turns a
version N-1 file into a version N file; migration 1 builds the initial schema from an empty
(version 0) file. Each migration runs in one transaction together with its `user_version` bump and
its row in `schema_migrations`, so a failed or interrupted upgrade leaves the file at the previous
version. Changing the schema means appending a migration, never editing an old one: the
golden-schema test (tests/golden_schema.sql) fails otherwise.

Column conventions: `*_idx` are 0-based frame indices into the video's media (the n-th decoded
frame, or the n-th file of a naturally sorted image folder); `*_at` are UTC ISO-8601 timestamps
with microseconds written by Python (so an undo can restore them exactly); paths are stored
relative to the folder holding the project file, with '/' separators.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone

from microau_gui.core.errors import UserError

# "MAUS" as a big-endian 32-bit integer: tells our files apart from any other SQLite database.
APPLICATION_ID = 0x4D415553


@dataclass(frozen=True)
class Migration:
    version: int  # user_version after this migration
    name: str  # one line saying what it changes
    statements: tuple[str, ...]  # executed in order inside one transaction


_INITIAL_SCHEMA = (
    """CREATE TABLE schema_migrations (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at TEXT NOT NULL
)""",
    """CREATE TABLE project_meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
)""",
    """CREATE TABLE subjects (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE
)""",
    # frame_numbers: the media's own frame numbering as JSON runs [[first_number, count], ...]
    # (CASME II img46.jpg is number 46); exports write these numbers back.
    """CREATE TABLE videos (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    path TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    subject_id INTEGER REFERENCES subjects(id) ON DELETE SET NULL,
    n_frames INTEGER NOT NULL CHECK (n_frames > 0),
    fps REAL NOT NULL CHECK (fps > 0),
    width INTEGER NOT NULL CHECK (width > 0),
    height INTEGER NOT NULL CHECK (height > 0),
    content_hash TEXT NOT NULL,
    frame_numbers TEXT NOT NULL,
    added_at TEXT NOT NULL
)""",
    "CREATE INDEX videos_subject ON videos(subject_id)",
    """CREATE TABLE imports (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    sheet TEXT NOT NULL,
    media_root TEXT NOT NULL,
    coder TEXT NOT NULL,
    n_samples INTEGER NOT NULL,
    started_at TEXT NOT NULL
)""",
    # vocab: JSON list of AU codes in model order; metrics: JSON object from the training report.
    """CREATE TABLE model_versions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    checkpoint TEXT NOT NULL,
    vocab TEXT NOT NULL,
    parent_id INTEGER REFERENCES model_versions(id) ON DELETE RESTRICT,
    data_hash TEXT NOT NULL,
    metrics TEXT NOT NULL,
    created_at TEXT NOT NULL,
    active INTEGER NOT NULL DEFAULT 0 CHECK (active IN (0, 1))
)""",
    "CREATE INDEX model_versions_parent ON model_versions(parent_id)",
    "CREATE UNIQUE INDEX model_versions_one_active ON model_versions(active) WHERE active = 1",
    """CREATE TABLE events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    uid TEXT NOT NULL UNIQUE,
    video_id INTEGER NOT NULL REFERENCES videos(id) ON DELETE CASCADE,
    onset_idx INTEGER NOT NULL CHECK (onset_idx >= 0),
    apex_idx INTEGER NOT NULL,
    offset_idx INTEGER NOT NULL,
    emotion TEXT,
    objective_class TEXT,
    expression_type TEXT NOT NULL CHECK (expression_type IN ('micro', 'macro')),
    coder TEXT NOT NULL,
    source TEXT NOT NULL CHECK (source IN ('expert', 'accepted')),
    model_version_id INTEGER REFERENCES model_versions(id) ON DELETE SET NULL,
    import_id INTEGER REFERENCES imports(id) ON DELETE SET NULL,
    created_at TEXT NOT NULL,
    modified_at TEXT NOT NULL,
    CHECK (onset_idx <= apex_idx AND apex_idx <= offset_idx)
)""",
    "CREATE INDEX events_video ON events(video_id, onset_idx)",
    "CREATE INDEX events_model_version ON events(model_version_id)",
    "CREATE INDEX events_import ON events(import_id)",
    # One row per coded AU; position keeps the coder's order so AU strings round-trip exactly.
    """CREATE TABLE event_aus (
    event_id INTEGER NOT NULL REFERENCES events(id) ON DELETE CASCADE,
    position INTEGER NOT NULL CHECK (position >= 0),
    au INTEGER NOT NULL,
    side TEXT NOT NULL CHECK (side IN ('B', 'L', 'R')),
    intensity TEXT CHECK (intensity IN ('A', 'B', 'C', 'D', 'E')),
    asymmetric INTEGER NOT NULL CHECK (asymmetric IN (0, 1)),
    uncertain INTEGER NOT NULL CHECK (uncertain IN (0, 1)),
    PRIMARY KEY (event_id, position)
) WITHOUT ROWID""",
    "CREATE INDEX event_aus_au ON event_aus(au)",
    # A note belongs to exactly one event, or to a video (optionally one frame of it).
    """CREATE TABLE notes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id INTEGER REFERENCES events(id) ON DELETE CASCADE,
    video_id INTEGER REFERENCES videos(id) ON DELETE CASCADE,
    frame_idx INTEGER CHECK (frame_idx >= 0),
    text TEXT NOT NULL,
    author TEXT NOT NULL,
    created_at TEXT NOT NULL,
    CHECK ((event_id IS NULL) <> (video_id IS NULL)),
    CHECK (frame_idx IS NULL OR video_id IS NOT NULL)
)""",
    "CREATE INDEX notes_event ON notes(event_id)",
    "CREATE INDEX notes_video ON notes(video_id, frame_idx)",
    # Model output cache, apart from the coder's events (see store.predictions for the blob).
    """CREATE TABLE predictions (
    model_version_id INTEGER NOT NULL REFERENCES model_versions(id) ON DELETE CASCADE,
    video_id INTEGER NOT NULL REFERENCES videos(id) ON DELETE CASCADE,
    frame_idx INTEGER NOT NULL CHECK (frame_idx >= 0),
    reference_idx INTEGER NOT NULL CHECK (reference_idx >= 0),
    face_found INTEGER NOT NULL CHECK (face_found IN (0, 1)),
    data BLOB NOT NULL,
    PRIMARY KEY (model_version_id, video_id, frame_idx)
)""",
    "CREATE INDEX predictions_video ON predictions(video_id)",
)

# Per-frame AU traces of other tools (OpenFace, iMotions/FACET, py-feat), read-only beside our
# model (store.traces). frame_idx: int32 little-endian blob per trace; each (channel, AU) holds a
# float32 little-endian blob of the same length, NaN where the tool's row was masked.
_COMPARISON_TRACES = (
    """CREATE TABLE comparison_traces (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    video_id INTEGER NOT NULL REFERENCES videos(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    tool TEXT NOT NULL,
    file TEXT NOT NULL,
    meta TEXT NOT NULL,
    frame_idx BLOB NOT NULL,
    imported_at TEXT NOT NULL,
    UNIQUE (video_id, name)
)""",
    """CREATE TABLE comparison_trace_values (
    trace_id INTEGER NOT NULL REFERENCES comparison_traces(id) ON DELETE CASCADE,
    channel TEXT NOT NULL,
    au INTEGER NOT NULL,
    value BLOB NOT NULL,
    PRIMARY KEY (trace_id, channel, au)
) WITHOUT ROWID""",
)

# An imported event's identity: its video, the frames the sheet gave it and the coder, fixed at
# import (later edits do not change it). Two runs over one sheet, even concurrent ones, cannot
# add it twice. Events imported before this migration get the key once per identity (the oldest
# copy), so a re-import adds nothing and existing duplicates are kept, not deleted.
_IMPORT_IDENTITY = (
    "ALTER TABLE events ADD COLUMN import_key TEXT",
    """UPDATE events SET import_key =
    video_id || ':' || onset_idx || ':' || apex_idx || ':' || offset_idx || ':' || coder
WHERE id IN (SELECT MIN(id) FROM events WHERE import_id IS NOT NULL AND source = 'expert'
             GROUP BY video_id, onset_idx, apex_idx, offset_idx, coder)""",
    "CREATE UNIQUE INDEX events_import_key ON events(import_key)",
    # The AU cell exactly as the imported sheet wrote it (tokens the parser could not read
    # included); NULL for events made in the application.
    "ALTER TABLE events ADD COLUMN aus_cell TEXT",
    # An import run records what it really added and whether it finished (NULL: killed, or ran
    # before schema 3).
    "ALTER TABLE imports ADD COLUMN n_added INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE imports ADD COLUMN finished_at TEXT",
    "UPDATE imports SET n_added = (SELECT COUNT(*) FROM events WHERE import_id = imports.id)",
)

# FACS scores some lip AUs on one lip: T28 (top), B28 (bottom). NULL: both lips / not a lip AU.
_LIP_PART = (
    "ALTER TABLE event_aus ADD COLUMN lip TEXT CHECK (lip IN ('T', 'B'))",
)

# The review queue's candidates were a JSON blob per video in project_meta
# ("review.candidates.<video_id>": {"items": [...], "rejected": [i, ...], "accepted": {"i": id}});
# they move into a table, rank = position in "items". Blobs that are not valid JSON, and items
# missing a frame, were unreadable before (the queue showed nothing) and are dropped.
_REVIEW_CANDIDATES_TABLE = (
    """CREATE TABLE review_candidates (
    video_id INTEGER NOT NULL REFERENCES videos(id) ON DELETE CASCADE,
    rank INTEGER NOT NULL CHECK (rank >= 0),
    onset_idx INTEGER NOT NULL,
    apex_idx INTEGER NOT NULL,
    offset_idx INTEGER NOT NULL,
    score REAL NOT NULL,
    kind TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '',
    rejected INTEGER NOT NULL DEFAULT 0 CHECK (rejected IN (0, 1)),
    accepted_event_id INTEGER,
    PRIMARY KEY (video_id, rank)
)""",
    """INSERT INTO review_candidates (video_id, rank, onset_idx, apex_idx, offset_idx, score, kind,
    detail, rejected, accepted_event_id)
SELECT v.id, CAST(item.key AS INTEGER),
       json_extract(item.value, '$.onset'), json_extract(item.value, '$.apex'),
       json_extract(item.value, '$.offset'), COALESCE(json_extract(item.value, '$.score'), 0.0),
       COALESCE(json_extract(item.value, '$.kind'), ''),
       COALESCE(json_extract(item.value, '$.detail'), ''),
       EXISTS (SELECT 1 FROM json_each(m.value, '$.rejected') r WHERE r.value = item.key),
       json_extract(m.value, '$.accepted."' || item.key || '"')
FROM project_meta m
JOIN videos v ON m.key = 'review.candidates.' || v.id
JOIN json_each(m.value, '$.items') item
WHERE json_valid(m.value)
  AND json_type(item.value, '$.onset') = 'integer'
  AND json_type(item.value, '$.apex') = 'integer'
  AND json_type(item.value, '$.offset') = 'integer'""",
    "DELETE FROM project_meta WHERE key LIKE 'review.candidates.%'",
)

# The card version (`ModelCard.version`: weights and every output-changing card field) a model
# version's predictions were cached under. NULL: registered before it was recorded; the next
# registration of that checkpoint records its card's.
_CARD_VERSION = (
    "ALTER TABLE model_versions ADD COLUMN card_version TEXT",
)

# Blind coding (issue 16): an event made while the coder could not see the model's output or the
# other coders' events is flagged, so agreement can be measured without anchoring. Per-AU timing:
# FACS codes each AU's own onset, apex and offset; NULL = the AU spans its event (every AU before
# this migration, and every AU the coder did not time on its own).
_BLIND_AND_AU_TIMING = (
    "ALTER TABLE events ADD COLUMN blind INTEGER NOT NULL DEFAULT 0 CHECK (blind IN (0, 1))",
    "ALTER TABLE event_aus ADD COLUMN onset_idx INTEGER CHECK (onset_idx >= 0)",
    "ALTER TABLE event_aus ADD COLUMN apex_idx INTEGER",
    "ALTER TABLE event_aus ADD COLUMN offset_idx INTEGER",
)

# The numeric class (fp32, int8, bf16) of the arithmetic that made a cached prediction: rows of
# approximate speed modes differ from fp32's by up to the parity tolerance, so an analysis only
# takes rows of its own class (store.predictions). NULL: cached before this was recorded.
_PREDICTION_NUMERICS = (
    "ALTER TABLE predictions ADD COLUMN numerics TEXT",
)

# The sheet's apex number when it names a frame that does not exist (a gap in an image folder's
# numbering, issue 15 D15): the apex sits on the nearest frame, and exports write the sheet's
# number, not the nearest frame's, until the coder moves the apex. NULL: the apex frame's number.
_SHEET_APEX_NUMBER = (
    "ALTER TABLE events ADD COLUMN apex_number INTEGER",
)

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "initial schema", _INITIAL_SCHEMA),
    Migration(2, "comparison traces of other AU tools", _COMPARISON_TRACES),
    Migration(3, "imported-event identity, original AU cell, import outcome", _IMPORT_IDENTITY),
    Migration(4, "top / bottom lip of an AU", _LIP_PART),
    Migration(5, "review candidates table", _REVIEW_CANDIDATES_TABLE),
    Migration(6, "card version of a model version", _CARD_VERSION),
    Migration(7, "blind-coded events, per-AU onset / apex / offset", _BLIND_AND_AU_TIMING),
    Migration(8, "numeric class of a cached prediction", _PREDICTION_NUMERICS),
    Migration(9, "the sheet's apex number kept when it falls in a gap", _SHEET_APEX_NUMBER),
)


def latest_version(migrations: tuple[Migration, ...] | None = None) -> int:
    """The schema version this code writes (the last migration's number)."""
    migrations = MIGRATIONS if migrations is None else migrations
    return migrations[-1].version if migrations else 0


def user_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite3.Connection, migrations: tuple[Migration, ...] | None = None) -> list[int]:
    """Apply every migration newer than the file's `user_version`; return the versions applied.

    `conn` must be in autocommit mode (`isolation_level=None`). Each migration is one transaction;
    on failure it is rolled back, the file stays at the previous version and UserError is raised.
    """
    migrations = MIGRATIONS if migrations is None else migrations
    versions = [m.version for m in migrations]
    if versions != list(range(1, len(migrations) + 1)):
        raise ValueError(f"migrations must be numbered 1, 2, 3 ... in order, not {versions}")
    applied = []
    for migration in migrations:
        if migration.version <= user_version(conn):
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in migration.statements:
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                (migration.version, migration.name, utc_now()),
            )
            # PRAGMA arguments cannot be bound; the value is an int from our own table.
            conn.execute(f"PRAGMA user_version = {int(migration.version)}")
            conn.execute("COMMIT")
        except sqlite3.Error as err:
            conn.execute("ROLLBACK")
            raise UserError(
                f"could not upgrade the project to schema {migration.version} "
                f"({migration.name}): {err}; the file was left at schema {migration.version - 1}"
            ) from err
        applied.append(migration.version)
    return applied


def dump_schema(conn: sqlite3.Connection) -> str:
    """Every table and index definition of the file, sorted: what the golden-schema test pins."""
    rows = conn.execute(
        "SELECT type, name, tbl_name, sql FROM sqlite_master "
        "WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name"
    ).fetchall()
    application_id = conn.execute("PRAGMA application_id").fetchone()[0]
    lines = [f"-- application_id: {application_id:#x}", f"-- schema_version: {user_version(conn)}"]
    for kind, name, table, sql in rows:
        lines.append(f"-- {kind} {name} on {table}")
        lines.append(f"{sql};")
    return "\n".join(lines) + "\n"


def utc_now() -> str:
    """The timestamp format of every `*_at` column: UTC, ISO 8601, microseconds."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")
