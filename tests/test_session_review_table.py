"""Review queues in a real table (store.review_queue): the schema migration converts the JSON
blobs older files kept in project_meta, and the queue round-trips through the table. Real
SQLite files."""

from __future__ import annotations

import json
import sqlite3

from test_store_fixtures import UNDO_BLIND_AND_AU_TIMING, small_project

from microau_gui.session.review_items import (
    CANDIDATES,
    ReviewItem,
    ReviewQueue,
    load_candidates,
    save_candidates,
    stored_candidates,
)
from microau_gui.store import schema
from microau_gui.store.project import Project


REVIEW_TABLE_VERSION = next(m.version for m in schema.MIGRATIONS
                            if m.name == "review candidates table")


def _as_before_the_table_with_blobs(path, blobs: dict[str, str]) -> None:
    """Turn a current file into what the schema before the review table wrote: no table, the
    queue as project_meta blobs (later migrations, if any, are rolled back too)."""
    # Undo each later migration here, so that the file is what that older schema wrote.
    later = {m.name for m in schema.MIGRATIONS if m.version > REVIEW_TABLE_VERSION}
    assert later == {"card version of a model version",
                     "blind-coded events, per-AU onset / apex / offset",
                     "numeric class of a cached prediction",
                     "the sheet's apex number kept when it falls in a gap"}, \
        f"undo these here too: {later}"
    conn = sqlite3.connect(path)
    for statement in UNDO_BLIND_AND_AU_TIMING:
        conn.execute(statement)
    conn.execute("ALTER TABLE model_versions DROP COLUMN card_version")
    conn.execute("DROP TABLE review_candidates")
    conn.execute("DELETE FROM schema_migrations WHERE version >= ?", (REVIEW_TABLE_VERSION,))
    conn.execute(f"PRAGMA user_version = {REVIEW_TABLE_VERSION - 1}")
    conn.executemany("INSERT INTO project_meta (key, value) VALUES (?, ?)", blobs.items())
    conn.commit()
    conn.close()


def test_the_migration_moves_stored_candidates_and_marks_into_the_table(tmp_path, astronaut_path):
    project = small_project(tmp_path, astronaut_path)
    path = project.path
    first, second = (v.id for v in project.videos())
    project.close()
    items = [dict(video_id=first, onset=10, apex=12, offset=15, score=9.5, kind="micro",
                  detail="moved: brow", event_id=None, au=None),
             dict(video_id=first, onset=2, apex=4, offset=40, score=3.0, kind="macro",
                  detail="", event_id=None, au=None)]
    _as_before_the_table_with_blobs(path, {
        f"review.candidates.{first}": json.dumps(
            {"items": items, "rejected": [1], "accepted": {"0": 77}}),
        f"review.candidates.{second}": "{not json",  # unreadable before: dropped
        "other.key": "kept",
    })

    with Project.open(path) as upgraded:
        assert upgraded.schema_version == schema.latest_version()
        rows = upgraded.review.rows(first)
        assert [(r.onset_idx, r.apex_idx, r.offset_idx, r.score, r.kind, r.detail) for r in rows] == [
            (10, 12, 15, 9.5, "micro", "moved: brow"), (2, 4, 40, 3.0, "macro", "")]
        assert [(r.rejected, r.accepted_event_id) for r in rows] == [(False, 77), (True, None)]
        assert upgraded.review.rows(second) == [] and upgraded.review.video_ids() == [first]
        assert upgraded.meta(f"review.candidates.{first}") is None
        assert upgraded.meta("other.key") == "kept"
        queue = ReviewQueue(CANDIDATES)
        load_candidates(upgraded, first, queue)
        assert [i.apex for i in queue.items] == [12, 4]
        assert queue.rejected == {1} and queue.accepted == {0: 77}


def test_a_queue_round_trips_through_the_table_and_leaves_with_its_video(tmp_path, astronaut_path):
    project = small_project(tmp_path, astronaut_path)
    video = project.videos()[0]
    queue = ReviewQueue(CANDIDATES)
    queue.set_items([ReviewItem(video.id, 5, 6, 9, 1.0, "micro"),
                     ReviewItem(video.id, 1, 3, 4, 7.0, "macro", "moved: mouth")])
    queue.rejected.add(1)
    save_candidates(project, video.id, queue)
    again = ReviewQueue(CANDIDATES)
    load_candidates(project, video.id, again)
    assert again.items == queue.items and again.rejected == {1} and again.accepted == {}
    assert stored_candidates(project, video.id) == list(queue.items)
    project.remove_video(video.id)
    assert project.review.video_ids() == []
    project.close()
