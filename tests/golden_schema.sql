-- application_id: 0x4d415553
-- schema_version: 9
-- index event_aus_au on event_aus
CREATE INDEX event_aus_au ON event_aus(au);
-- index events_import on events
CREATE INDEX events_import ON events(import_id);
-- index events_import_key on events
CREATE UNIQUE INDEX events_import_key ON events(import_key);
-- index events_model_version on events
CREATE INDEX events_model_version ON events(model_version_id);
-- index events_video on events
CREATE INDEX events_video ON events(video_id, onset_idx);
-- index model_versions_one_active on model_versions
CREATE UNIQUE INDEX model_versions_one_active ON model_versions(active) WHERE active = 1;
-- index model_versions_parent on model_versions
CREATE INDEX model_versions_parent ON model_versions(parent_id);
-- index notes_event on notes
CREATE INDEX notes_event ON notes(event_id);
-- index notes_video on notes
CREATE INDEX notes_video ON notes(video_id, frame_idx);
-- index predictions_video on predictions
CREATE INDEX predictions_video ON predictions(video_id);
-- index videos_subject on videos
CREATE INDEX videos_subject ON videos(subject_id);
-- table comparison_trace_values on comparison_trace_values
CREATE TABLE comparison_trace_values (
    trace_id INTEGER NOT NULL REFERENCES comparison_traces(id) ON DELETE CASCADE,
    channel TEXT NOT NULL,
    au INTEGER NOT NULL,
    value BLOB NOT NULL,
    PRIMARY KEY (trace_id, channel, au)
) WITHOUT ROWID;
-- table comparison_traces on comparison_traces
CREATE TABLE comparison_traces (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    video_id INTEGER NOT NULL REFERENCES videos(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    tool TEXT NOT NULL,
    file TEXT NOT NULL,
    meta TEXT NOT NULL,
    frame_idx BLOB NOT NULL,
    imported_at TEXT NOT NULL,
    UNIQUE (video_id, name)
);
-- table event_aus on event_aus
CREATE TABLE event_aus (
    event_id INTEGER NOT NULL REFERENCES events(id) ON DELETE CASCADE,
    position INTEGER NOT NULL CHECK (position >= 0),
    au INTEGER NOT NULL,
    side TEXT NOT NULL CHECK (side IN ('B', 'L', 'R')),
    intensity TEXT CHECK (intensity IN ('A', 'B', 'C', 'D', 'E')),
    asymmetric INTEGER NOT NULL CHECK (asymmetric IN (0, 1)),
    uncertain INTEGER NOT NULL CHECK (uncertain IN (0, 1)), lip TEXT CHECK (lip IN ('T', 'B')), onset_idx INTEGER CHECK (onset_idx >= 0), apex_idx INTEGER, offset_idx INTEGER,
    PRIMARY KEY (event_id, position)
) WITHOUT ROWID;
-- table events on events
CREATE TABLE events (
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
    modified_at TEXT NOT NULL, import_key TEXT, aus_cell TEXT, blind INTEGER NOT NULL DEFAULT 0 CHECK (blind IN (0, 1)), apex_number INTEGER,
    CHECK (onset_idx <= apex_idx AND apex_idx <= offset_idx)
);
-- table imports on imports
CREATE TABLE imports (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    sheet TEXT NOT NULL,
    media_root TEXT NOT NULL,
    coder TEXT NOT NULL,
    n_samples INTEGER NOT NULL,
    started_at TEXT NOT NULL
, n_added INTEGER NOT NULL DEFAULT 0, finished_at TEXT);
-- table model_versions on model_versions
CREATE TABLE model_versions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    checkpoint TEXT NOT NULL,
    vocab TEXT NOT NULL,
    parent_id INTEGER REFERENCES model_versions(id) ON DELETE RESTRICT,
    data_hash TEXT NOT NULL,
    metrics TEXT NOT NULL,
    created_at TEXT NOT NULL,
    active INTEGER NOT NULL DEFAULT 0 CHECK (active IN (0, 1))
, card_version TEXT);
-- table notes on notes
CREATE TABLE notes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id INTEGER REFERENCES events(id) ON DELETE CASCADE,
    video_id INTEGER REFERENCES videos(id) ON DELETE CASCADE,
    frame_idx INTEGER CHECK (frame_idx >= 0),
    text TEXT NOT NULL,
    author TEXT NOT NULL,
    created_at TEXT NOT NULL,
    CHECK ((event_id IS NULL) <> (video_id IS NULL)),
    CHECK (frame_idx IS NULL OR video_id IS NOT NULL)
);
-- table predictions on predictions
CREATE TABLE predictions (
    model_version_id INTEGER NOT NULL REFERENCES model_versions(id) ON DELETE CASCADE,
    video_id INTEGER NOT NULL REFERENCES videos(id) ON DELETE CASCADE,
    frame_idx INTEGER NOT NULL CHECK (frame_idx >= 0),
    reference_idx INTEGER NOT NULL CHECK (reference_idx >= 0),
    face_found INTEGER NOT NULL CHECK (face_found IN (0, 1)),
    data BLOB NOT NULL, numerics TEXT,
    PRIMARY KEY (model_version_id, video_id, frame_idx)
);
-- table project_meta on project_meta
CREATE TABLE project_meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
-- table review_candidates on review_candidates
CREATE TABLE review_candidates (
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
);
-- table schema_migrations on schema_migrations
CREATE TABLE schema_migrations (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at TEXT NOT NULL
);
-- table subjects on subjects
CREATE TABLE subjects (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE
);
-- table videos on videos
CREATE TABLE videos (
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
);
