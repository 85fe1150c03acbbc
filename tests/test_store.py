"""The project store on real SQLite files: format, migrations, safety, concurrency, API."""

from __future__ import annotations

import os
import sqlite3
import stat
import threading
from pathlib import Path

import pytest
from test_store_fixtures import aus, small_project, write_clip

from microau_gui.core.errors import UserError
from microau_gui.core.types import Dataset, ImportReport, Sample
from microau_gui.media import open_media
from microau_gui.store import schema
from microau_gui.store.db import is_project_file
from microau_gui.store.project import Project
from microau_gui.store.records import Change, MediaFacts

GOLDEN = Path(__file__).with_name("golden_schema.sql")


@pytest.fixture
def project(tmp_path, astronaut_path):
    project = small_project(tmp_path, astronaut_path)
    yield project
    project.close()


# -- file format --------------------------------------------------------------------------------

def test_fresh_project_matches_the_golden_schema(tmp_path):
    Project.create(tmp_path / "p.maus").close()
    conn = sqlite3.connect(tmp_path / "p.maus")
    dumped = schema.dump_schema(conn)
    assert dumped == GOLDEN.read_text(), (
        "the project schema changed: add a migration in store/schema.py, then regenerate "
        "tests/golden_schema.sql with schema.dump_schema on a fresh project")
    assert conn.execute("PRAGMA application_id").fetchone()[0] == schema.APPLICATION_ID
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert schema.user_version(conn) == schema.latest_version()


def test_project_file_is_self_contained_after_close_and_recognised(project, tmp_path):
    path = project.path
    project.close()
    assert not Path(f"{path}-wal").exists()
    assert is_project_file(path)
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.close()
    assert not is_project_file(other)


def test_removing_a_video_removes_its_events_and_notes(project):
    video = project.videos()[0]
    other = project.videos()[1]
    project.remove_video(video.id)
    assert project.events(video.id) == [] and project.notes(video_id=video.id) == []
    assert all(e.video_id == other.id for e in project.events())
    tables = project.dump()
    assert all(row[0] in {e.id for e in project.events()} for row in tables["event_aus"])
    notes = tables["notes"]  # (id, event_id, video_id, frame_idx, text, author, created_at)
    assert notes and all(row[1] is not None or row[2] == other.id for row in notes)


# -- migrations ---------------------------------------------------------------------------------

def _version0_file(path: Path) -> None:
    """What a crash during creation leaves: our application id, no schema yet."""
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA application_id = {schema.APPLICATION_ID}")
    conn.commit()
    conn.close()


def test_version0_file_is_upgraded_to_the_golden_schema(tmp_path):
    path = tmp_path / "old.maus"
    _version0_file(path)
    with Project.open(path) as project:
        assert project.schema_version == schema.latest_version()
        assert project.dump()["schema_migrations"][0][:2] == (1, "initial schema")
    assert schema.dump_schema(sqlite3.connect(path)) == GOLDEN.read_text()


def test_later_migration_upgrades_existing_data_and_keeps_a_backup(project, monkeypatch):
    path = project.path
    events_before = project.events()
    project.close()
    current = schema.latest_version()
    extra = schema.Migration(current + 1, "event review flag", (
        "ALTER TABLE events ADD COLUMN reviewed INTEGER NOT NULL DEFAULT 0",))
    monkeypatch.setattr(schema, "MIGRATIONS", schema.MIGRATIONS + (extra,))
    with Project.open(path) as upgraded:
        assert upgraded.schema_version == current + 1
        assert upgraded.events() == events_before
    columns = [r[1] for r in sqlite3.connect(path).execute("PRAGMA table_info(events)")]
    assert "reviewed" in columns
    backup = path.with_name(path.name + f".schema{current}.bak")
    monkeypatch.undo()
    with Project.open(backup, read_only=True) as old:
        assert old.schema_version == current
        assert old.events() == events_before


def test_failing_migration_leaves_the_file_at_its_old_version(project, monkeypatch):
    path = project.path
    dump_before = project.dump()
    project.close()
    current = schema.latest_version()
    broken = schema.Migration(current + 1, "broken", (
        "ALTER TABLE events ADD COLUMN reviewed INTEGER",
        "INSERT INTO no_such_table VALUES (1)",))
    monkeypatch.setattr(schema, "MIGRATIONS", schema.MIGRATIONS + (broken,))
    with pytest.raises(UserError, match=f"left at schema {current}"):
        Project.open(path)
    monkeypatch.undo()
    with Project.open(path) as project:
        assert project.schema_version == current
        assert project.dump() == dump_before


def test_file_from_a_newer_program_is_refused(project):
    path = project.path
    project.close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {schema.latest_version() + 1}")
    conn.close()
    with pytest.raises(UserError, match="newer than this program"):
        Project.open(path)


# -- opening safely -----------------------------------------------------------------------------

def test_read_only_file_opens_read_only_and_refuses_edits(project):
    path = project.path
    event = project.events()[0]
    dump_before = project.dump()
    project.close()
    os.chmod(path, stat.S_IRUSR | stat.S_IRGRP)
    try:
        with Project.open(path) as ro:
            assert ro.read_only
            assert ro.read_only_reason == "the project file is not writable"
            assert ro.event(event.id) == event
            assert ro.dump() == dump_before
            with pytest.raises(UserError, match="open read-only .*not writable"):
                ro.update_event(event.id, onset=event.onset + 1)
            with pytest.raises(UserError, match="read-only"):
                ro.add_note("x", event_id=event.id)
        with pytest.raises(UserError, match="cannot open .* for writing"):
            Project.open(path, read_only=False)
    finally:
        os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
    with Project.open(path) as rw:
        assert not rw.read_only
        assert rw.dump() == dump_before


def test_project_in_read_only_folder_opens_read_only(project):
    folder = project.directory
    project.close()
    mode = folder.stat().st_mode
    os.chmod(folder, stat.S_IRUSR | stat.S_IXUSR)
    try:
        with Project.open(folder / "study.maus") as ro:
            assert ro.read_only
            assert "folder" in ro.read_only_reason
            assert len(ro.events()) == 3
    finally:
        os.chmod(folder, mode)


def test_read_only_on_request(project):
    path = project.path
    project.close()
    with Project.open(path, read_only=True) as ro:
        assert ro.read_only and ro.read_only_reason == "opened read-only on request"
        with pytest.raises(UserError, match="read-only"):
            ro.add_subject("02")


def test_corrupt_file_is_reported_and_left_untouched(project):
    path = project.path
    for k in range(40):  # enough rows that the events table spans several pages
        project.add_event(project.videos()[0].id, 0, 1, 2, aus("12"), coder=f"c{k}" * 50)
    project.close()
    data = bytearray(path.read_bytes())
    page_size = int.from_bytes(data[16:18], "big")
    assert len(data) > 6 * page_size
    data[3 * page_size + 8: 5 * page_size] = os.urandom(2 * page_size - 8)
    path.write_bytes(bytes(data))
    with pytest.raises(UserError) as err:
        Project.open(path)
    message = str(err.value)
    assert "corrupt" in message and "not modified" in message
    assert "\n" not in message
    assert path.read_bytes() == bytes(data)


def test_other_files_are_rejected_clearly(tmp_path):
    text = tmp_path / "notes.maus"
    text.write_text("hello")
    with pytest.raises(UserError, match="not a MicroAU project .not an SQLite"):
        Project.open(text)
    other = tmp_path / "other.sqlite"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.close()
    before = other.read_bytes()
    with pytest.raises(UserError, match="SQLite database but not a MicroAU project"):
        Project.open(other)
    assert other.read_bytes() == before
    with pytest.raises(UserError, match="no project at"):
        Project.open(tmp_path / "missing.maus")
    with pytest.raises(UserError, match="folder"):
        Project.open(tmp_path)


def test_create_never_overwrites(project):
    path = project.path
    n_events = len(project.events())
    with pytest.raises(UserError, match="already exists"):
        Project.create(path)
    assert len(project.events()) == n_events
    with Project.open_or_create(path) as same:
        assert len(same.events()) == n_events
    with Project.open_or_create(path.with_name("new.maus")) as new:
        assert new.events() == [] and not new.read_only


# -- concurrency --------------------------------------------------------------------------------

def test_reads_proceed_while_a_worker_thread_writes(project):
    video = project.videos()[0]
    n_before = len(project.events())
    n_batches, batch = 30, 20
    committed: list[int] = []
    errors: list[BaseException] = []
    first_commit = threading.Event()

    def worker():
        try:
            for k in range(n_batches):
                with project.transaction():
                    for j in range(batch):
                        project.add_event(video.id, 0, 1, 2, aus("12"), coder=f"worker{k}")
                committed.append((k + 1) * batch)
                first_commit.set()
        except BaseException as err:  # reported to the main thread below
            errors.append(err)
            first_commit.set()
        finally:
            project.close_thread_connection()

    thread = threading.Thread(target=worker)
    thread.start()
    first_commit.wait(30)
    seen = []
    while thread.is_alive():
        acknowledged = committed[-1] if committed else 0
        n_now = len(project.events()) - n_before
        seen.append(n_now)
        assert n_now >= acknowledged  # never less than what the worker saw committed
        assert n_now % batch == 0  # never half a transaction
    thread.join()
    assert errors == []
    assert len(project.events()) - n_before == n_batches * batch
    assert seen  # the main thread really read while the worker ran


def test_listeners_hear_what_each_commit_changed(project):
    heard: list[Change] = []
    unsubscribe = project.subscribe(heard.append)
    event = project.events()[0]
    project.update_event(event.id, emotion="surprise")
    assert heard[-1].events == {event.id}
    with project.transaction():
        a = project.add_event(event.video_id, 0, 0, 1)
        b = project.add_event(event.video_id, 1, 1, 2)
    assert len(heard) == 2 and heard[-1].events == {a.id, b.id}
    with pytest.raises(UserError):
        with project.transaction():
            project.add_event(event.video_id, 0, 0, 1)
            project.add_event(event.video_id, 5, 4, 6)
    assert len(heard) == 2  # rolled back: nothing to tell
    unsubscribe()
    project.delete_event(a.id)
    assert len(heard) == 2


# -- events, notes, subjects -------------------------------------------------------------------

def test_events_round_trip_every_field(project):
    video = project.videos()[0]
    codes = aus("4B+R12C+A14B+ref(43)")
    event = project.add_event(video.id, 3, 4, 6, codes, emotion=" fear ", objective_class="IV",
                              expression_type="macro", coder="ann")
    again = project.event(event.id)
    assert again == event
    assert again.aus == codes and again.aus_text == "4B+R12C+A14B+ref(43)"
    assert again.emotion == "fear" and again.objective_class == "IV"
    assert again.expression_type == "macro" and again.source == "expert"
    assert again.created_at == again.modified_at


@pytest.mark.parametrize("frames, message", [
    ((5, 4, 6), "onset .5. must not come after apex .4."),
    ((1, 7, 6), "apex .7. must not come after offset .6."),
    ((-1, 0, 1), "before the first frame"),
    ((0, 1, 20), "beyond the last frame .19."),
])
def test_invalid_frames_are_refused_and_nothing_is_written(project, frames, message):
    video = project.videos()[0]
    before = project.dump()
    with pytest.raises(UserError, match=message):
        project.add_event(video.id, *frames)
    event = project.events(video.id)[0]
    with pytest.raises(UserError, match=message):
        project.update_event(event.id, onset=frames[0], apex=frames[1], offset=frames[2])
    assert project.dump() == before


def test_deleted_event_is_restored_with_id_aus_notes_and_timestamps(project):
    event = project.events()[0]
    before = project.dump()
    record = project.delete_event(event.id)
    assert record.notes and record.event == event
    assert project.notes(event_id=event.id) == []
    with pytest.raises(UserError, match="not in this project"):
        project.event(event.id)
    project.restore_event(record)
    assert project.dump() == before
    with pytest.raises(UserError, match="already exists"):
        project.restore_event(record)


def test_frame_numbers_follow_the_media(project):
    clip = project.videos()[0]  # EP01_01: img46 ... img65
    numbers = project.frame_numbers(clip.id)
    assert numbers[0] == 46 and numbers[-1] == 65 and len(numbers) == clip.n_frames
    with open_media(clip.path) as source:
        assert tuple(numbers) == source.frame_numbers
    assert clip.subject == "01"
    assert [s.name for s in project.subjects()] == ["01"]


def test_moved_video_is_relinked_only_to_the_same_content(project, tmp_path, camera_path):
    video = project.videos()[0]
    moved = tmp_path / "moved" / video.path.name
    moved.parent.mkdir()
    video.path.rename(moved)
    assert project.relink_video(video.id, moved).path == moved
    other = write_clip(tmp_path / "other", camera_path, 5)
    with pytest.raises(UserError, match="not the same media"):
        project.relink_video(video.id, other)
    assert project.video(video.id).path == moved


def test_video_paths_are_stored_relative_to_the_project(project, tmp_path):
    assert project.videos()[0].rel_path == "media/sub01/EP01_01"
    project.close()
    moved = tmp_path.parent / (tmp_path.name + "_moved")
    tmp_path.rename(moved)
    try:
        with Project.open(moved / "study.maus") as again:
            assert again.videos()[0].path == moved / "media" / "sub01" / "EP01_01"
            assert again.videos()[0].path.is_dir()
    finally:
        moved.rename(tmp_path)


# -- dataset import -----------------------------------------------------------------------------

def _dataset(media_root: Path, samples: list[Sample]) -> Dataset:
    sheet = media_root / "coding.xlsx"
    return Dataset(kind="casme2", sheet=sheet, media_root=media_root, samples=tuple(samples),
                   report=ImportReport(kind="casme2", sheet=sheet, n_rows=len(samples)))


def test_import_dataset_stores_videos_subjects_and_expert_events(tmp_path, astronaut_path,
                                                                 camera_path):
    root = tmp_path / "CASME2"
    clip1 = write_clip(root / "sub01" / "EP02_01f", astronaut_path, 15, first_number=46)
    clip2 = write_clip(root / "sub02" / "EP03_02", camera_path, 10, first_number=1)
    samples = [
        Sample("01", "EP02_01f", clip1, 1, 4, 9, aus("4+7+L10"), emotion="disgust",
               objective_class="III", onset_number=47, apex_number=50, offset_number=55),
        Sample("01", "EP02_01f", clip1, 10, 11, 14, aus("12"), emotion="happiness"),
        Sample("02", "EP03_02", clip2, 0, 2, 5, aus("A12B+ref(43)"), emotion="others"),
        Sample("02", "EP03_02", clip2, 3, 5, 40, aus("14")),  # beyond the clip: skipped
        Sample("03", "EP09_01", root / "sub03" / "EP09_01", 0, 1, 2, aus("1")),  # no media
    ]
    with Project.create(tmp_path / "p.maus") as project:
        done = []
        summary = project.import_dataset(_dataset(root, samples), open_media, coder="casme",
                                         batch_size=2, progress=lambda n, t: done.append((n, t)))
        assert done == [(2, 5), (4, 5), (5, 5)]
        assert (summary.events_added, summary.videos_added, summary.subjects_added) == (3, 2, 2)
        assert len(summary.skipped) == 2
        assert "beyond the last frame" in summary.skipped[0]
        assert "does not exist" in summary.skipped[1]
        events = project.events()
        assert [(e.onset, e.apex, e.offset, e.aus, e.emotion) for e in events] == [
            (s.onset, s.apex, s.offset, s.aus, s.emotion) for s in samples[:3]]
        assert all(e.source == "expert" and e.coder == "casme" for e in events)
        assert events[0].objective_class == "III"
        video = project.video(events[0].video_id)
        assert (video.name, video.subject, video.n_frames) == ("EP02_01f", "01", 15)
        assert project.frame_numbers(video.id)[events[0].onset] == 47
        again = project.import_dataset(_dataset(root, samples), open_media, coder="casme")
        assert (again.events_added, again.duplicates) == (0, 3)
        assert len(project.events()) == 3


def test_sheet_numbers_set_the_numbering_of_videos_the_media_cannot_number(tmp_path,
                                                                          astronaut_path):
    clip = write_clip(tmp_path / "v", astronaut_path, 12)
    samples = [Sample("01", "long1", clip, 2, 3, 5, aus("12"), onset_number=3, apex_number=4,
                      offset_number=6)]

    def probe(path):
        return MediaFacts(n_frames=12, fps=30.0, width=48, height=48, frame_numbers=None)

    with Project.create(tmp_path / "p.maus") as project:
        project.import_dataset(_dataset(tmp_path, samples), probe)
        numbers = project.frame_numbers(project.videos()[0].id)
        assert numbers[2] == 3 and numbers[0] == 1 and numbers[-1] == 12



def test_cancelled_import_keeps_the_batches_before_it(tmp_path, astronaut_path):
    clip = write_clip(tmp_path / "media" / "clip", astronaut_path, 10)
    samples = [Sample("01", "clip", clip, 0, k, 9, aus("12"), emotion=f"e{k}")
               for k in range(10)]
    polls = []

    def should_cancel() -> bool:
        polls.append(1)
        return len(polls) > 2

    with Project.create(tmp_path / "p.maus") as project:
        summary = project.import_dataset(_dataset(tmp_path, samples), open_media, batch_size=3,
                                         should_cancel=should_cancel)
        assert summary.cancelled and "cancelled" in str(summary)
        assert sorted(e.emotion for e in project.events()) == [f"e{k}" for k in range(6)]
