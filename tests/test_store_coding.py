"""Store support of issue 16's coding features: events coded blind (migration 7, events.blind) and
per-AU onset / apex / offset (event_aus timing columns), each through the undoable commands."""

from __future__ import annotations

import dataclasses
import sqlite3

import pytest
from test_store_fixtures import UNDO_BLIND_AND_AU_TIMING, aus, small_project

from microau_gui.core.errors import UserError
from microau_gui.store import schema
from microau_gui.store.export import export_json, import_json
from microau_gui.store.commands import AddEvent, SetAUSpan, SetEventAUs
from microau_gui.store.project import Project
from microau_gui.store.records import AUSpan


@pytest.fixture
def project(tmp_path, astronaut_path):
    project = small_project(tmp_path, astronaut_path)
    yield project
    project.close()


def test_an_event_marked_blind_is_recorded_blind_and_survives_undo_redo(project):
    video = project.videos()[0]
    blind = AddEvent(video.id, 3, 4, 6, coder="cat", blind=True)
    seen = AddEvent(video.id, 7, 8, 9, coder="cat")
    blind.apply(project)
    seen.apply(project)
    assert project.event(blind.event_id).blind and not project.event(seen.event_id).blind
    row = project._db.conn().execute("SELECT blind FROM events WHERE id = ?",
                                     (blind.event_id,)).fetchone()
    assert row == (1,)
    blind.revert(project)
    blind.apply(project)
    assert project.event(blind.event_id).blind
    with pytest.raises(UserError, match="blind cannot be edited"):
        project.replace_event(dataclasses.replace(project.event(seen.event_id), blind=True))


def test_an_au_timed_apart_keeps_its_span_through_edits_and_undo(project):
    event = project.events()[0]  # 2-5-9, AUs 4+7+L10
    assert event.au_span(4) == (2, 5, 9)  # untimed: the event's span
    before = project.dump()
    timing = SetAUSpan(event.id, 7, (3, 4, 8))
    timing.apply(project)
    timed = project.event(event.id)
    assert timed.au_spans == (AUSpan(7, 3, 4, 8),)
    assert timed.au_span(7) == (3, 4, 8) and timed.au_span(4) == (2, 5, 9)
    # a new intensity keeps the AU's timing; removing the AU drops it
    recode = SetEventAUs(event.id, aus("4+7C+L10"))
    recode.apply(project)
    assert project.event(event.id).au_span(7) == (3, 4, 8)
    drop = SetEventAUs(event.id, aus("4+L10"))
    drop.apply(project)
    assert project.event(event.id).au_spans == ()
    for command in (drop, recode, timing):
        command.revert(project)
    assert project.dump() == before


def test_an_au_span_is_refused_outside_the_video_or_out_of_order_or_for_an_uncoded_au(project):
    event = project.events()[0]
    before = project.dump()
    for frames, message in (((6, 4, 8), "onset <= apex <= offset"),
                            ((3, 4, 99), "inside the video")):
        with pytest.raises(UserError, match=message):
            SetAUSpan(event.id, 7, frames).apply(project)
    with pytest.raises(UserError, match="no AU12"):
        SetAUSpan(event.id, 12, (3, 4, 5)).apply(project)
    assert project.dump() == before


def test_a_schema_6_project_upgrades_with_every_event_seen_and_spanning_its_event(
        project):
    path = project.path
    events = project.events()
    project.close()
    conn = sqlite3.connect(path)
    for statement in UNDO_BLIND_AND_AU_TIMING:
        conn.execute(statement)
    conn.commit()
    conn.close()
    with Project.open(path) as upgraded:
        assert upgraded.schema_version == schema.latest_version()
        assert upgraded.events() == events
        assert not any(e.blind or e.au_spans for e in upgraded.events())


def test_the_json_export_carries_blind_and_au_timing_back_into_a_new_project(project, tmp_path):
    video = project.videos()[0]
    blind = AddEvent(video.id, 3, 4, 6, aus("12"), coder="cat", blind=True)
    blind.apply(project)
    SetAUSpan(blind.event_id, 12, (4, 4, 5)).apply(project)
    out = tmp_path / "export" / "study.json"
    out.parent.mkdir()
    export_json(project, out)
    with Project.create(tmp_path / "copy.maus") as copy:
        import_json(copy, out, media_roots=[tmp_path])
        by_uid = {e.uid: e for e in copy.events()}
        for event in project.events():
            twin = by_uid[event.uid]
            assert (twin.blind, twin.au_spans) == (event.blind, event.au_spans)
        assert by_uid[project.event(blind.event_id).uid].au_span(12) == (4, 4, 5)
