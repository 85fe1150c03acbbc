"""Nothing lost, nothing doubled, nothing left behind (issue #15 D3, D8, D13/D14, D16, codes).

Real SQLite files, real processes and the real CLI; each test failed before the fix it names.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from sheet_fixtures import casme2_sheet, image_folder
from test_store_fixtures import small_project

from microau_gui.core.errors import UserError
from microau_gui.media import frame_index, open_media
from microau_gui.store import schema
from microau_gui.store.export import export_casme2, export_json, import_json
from microau_gui.store.importers import import_dataset
from microau_gui.store.importers.table import read_tables
from microau_gui.store.project import Project

ROOT = Path(__file__).resolve().parents[1]
MAIN = ROOT / "main.py"
N_ROWS = 60


def run_main(*args: object) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(MAIN), *map(str, args)], capture_output=True,
                          text=True, timeout=120)


@pytest.fixture(scope="module")
def big_sheet(tmp_path_factory) -> tuple[Path, Path]:
    """A CASME II sheet of N_ROWS distinct events over two clips."""
    folder = tmp_path_factory.mktemp("casme2")
    root = folder / "Cropped"
    image_folder(root / "sub01" / "EP01_01", range(1, 41))
    image_folder(root / "sub02" / "EP02_02", range(1, 41))
    rows = []
    for k in range(N_ROWS):
        subject, clip = ("01", "EP01_01") if k % 2 else ("02", "EP02_02")
        rows.append((subject, clip, 1 + k // 2, 2 + k // 2, 10 + k // 2, "4+7", f"e{k}", "I"))
    return casme2_sheet(folder / "coding.xlsx", rows), root


# -- D3: identity is a database constraint; two processes ------------------------------------

WRITER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from microau_gui.media import frame_index, open_media
    from microau_gui.store.importers import import_dataset
    from microau_gui.store.project import Project

    project_path, sheet, root, go = sys.argv[1:5]
    dataset = import_dataset("casme2", sheet, root, frame_index=frame_index)
    print("ready", flush=True)
    while not Path(go).exists():
        time.sleep(0.005)
    with Project.open_or_create(project_path) as project:  # both may create it at once
        summary = project.import_dataset(dataset, open_media, coder="ann", batch_size=7)
    print("added", summary.events_added, "duplicates", summary.duplicates, flush=True)
""")


def test_two_processes_importing_one_sheet_at_once_add_every_event_once(big_sheet, tmp_path):
    sheet, root = big_sheet
    project_path = tmp_path / "shared.maus"
    go = tmp_path / "go"
    children = [subprocess.Popen([sys.executable, "-c", WRITER, str(project_path), str(sheet),
                                  str(root), str(go)], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True, cwd=ROOT)
                for _ in range(2)]
    for child in children:
        assert child.stdout.readline().strip() == "ready", child.stderr.read()[-2000:]
    go.touch()
    outputs = [child.communicate(timeout=120) for child in children]
    for child, (out, err) in zip(children, outputs):
        assert child.returncode == 0, err[-2000:]
    counts = [tuple(int(w) for w in out.split()[1::2]) for out, _ in outputs]
    assert sum(added for added, _ in counts) == N_ROWS
    assert all(added + duplicates == N_ROWS for added, duplicates in counts)
    with Project.open(project_path) as project:
        events = project.events()
        assert len(events) == N_ROWS
        assert sorted(e.emotion for e in events) == sorted(f"e{k}" for k in range(N_ROWS))
        assert len(project.videos()) == 2
        runs = project.imports()
        assert sum(r["n_added"] for r in runs) == N_ROWS
        assert all(r["n_added"] > 0 and r["finished_at"] for r in runs)


def test_the_database_refuses_a_second_copy_of_an_imported_event(big_sheet, tmp_path):
    sheet, root = big_sheet
    dataset = import_dataset("casme2", sheet, root, frame_index=frame_index)
    with Project.create(tmp_path / "p.maus") as project:
        project.import_dataset(dataset, open_media, coder="ann")
        first = project.events()[0]
        conn = sqlite3.connect(project.path)
        with pytest.raises(sqlite3.IntegrityError, match="import_key"):
            conn.execute("INSERT INTO events (uid, video_id, onset_idx, apex_idx, offset_idx, "
                         "expression_type, coder, source, created_at, modified_at, import_key) "
                         "VALUES ('x', ?, 0, 0, 0, 'micro', 'ann', 'expert', '', '', ?)",
                         (first.video_id, first.import_key))
        conn.close()
        # An edit does not change the identity: re-importing adds nothing back.
        project.update_event(first.id, onset=0)
        again = project.import_dataset(dataset, open_media, coder="ann")
        assert (again.events_added, again.duplicates) == (0, N_ROWS)
        assert again.import_id is None, "a run that adds nothing records no import"
        assert len(project.imports()) == 1
        # The identity travels through a JSON export: importing the sheet into the copy adds
        # nothing either.
        exported = tmp_path / "export.json"
        export_json(project, exported)
        with Project.create(tmp_path / "copy.maus") as copy:
            import_json(copy, exported, media_roots=[root])
            assert sorted(e.import_key for e in copy.events()) == \
                sorted(e.import_key for e in project.events())
            assert copy.import_dataset(dataset, open_media, coder="ann").events_added == 0


def test_migration_gives_old_imported_events_an_identity_and_keeps_duplicates(tmp_path,
                                                                             astronaut_path,
                                                                             monkeypatch):
    path = tmp_path / "old.maus"
    with monkeypatch.context() as patch:
        patch.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:1])
        Project.create(path).close()
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO imports (kind, sheet, media_root, coder, n_samples, started_at) "
                 "VALUES ('casme2', 's.xlsx', '.', 'ann', 2, 't')")
    conn.execute("INSERT INTO videos (path, name, n_frames, fps, width, height, content_hash, "
                 "frame_numbers, added_at) VALUES ('v', 'v', 20, 200, 4, 4, 'h', '[[1,20]]', 't')")
    for uid in ("a", "b"):  # what the snapshot bug left: the same imported event twice
        conn.execute("INSERT INTO events (uid, video_id, onset_idx, apex_idx, offset_idx, "
                     "expression_type, coder, source, import_id, created_at, modified_at) "
                     "VALUES (?, 1, 2, 3, 4, 'micro', 'ann', 'expert', 1, 't', 't')", (uid,))
    conn.commit()
    conn.close()
    with Project.open(path) as project:
        assert project.schema_version == schema.latest_version()
        events = sorted(project.events(), key=lambda e: e.id)
        assert [e.import_key for e in events] == ["1:2:3:4:ann", None]
        assert project.imports()[0]["n_added"] == 2


# -- D13 / D14: leftovers ------------------------------------------------------------------------

def test_import_whose_rows_are_all_skipped_fails_and_creates_no_project(tmp_path):
    root = tmp_path / "media"
    root.mkdir()
    sheet = casme2_sheet(tmp_path / "coding.xlsx", [("01", "EP01_01", 1, 2, 3, "4", "x", "I")])
    project = tmp_path / "p.maus"
    out = run_main("import", "casme2", sheet, root, "--project", project)
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and "all skipped" in out.stderr
    assert not project.exists() and list(tmp_path.glob("p.maus*")) == []


def test_cancelled_import_records_only_what_it_added(big_sheet, tmp_path):
    sheet, root = big_sheet
    dataset = import_dataset("casme2", sheet, root, frame_index=frame_index)
    polls = []
    with Project.create(tmp_path / "p.maus") as project:
        summary = project.import_dataset(dataset, open_media, batch_size=10,
                                         should_cancel=lambda: polls.append(1) or len(polls) > 2)
        assert summary.cancelled and summary.events_added == 20
        (run,) = project.imports()
        assert (run["n_samples"], run["n_added"], run["finished_at"]) == (N_ROWS, 20, None)


def test_opening_a_corrupt_project_leaves_no_wal_or_shm(tmp_path, astronaut_path):
    project = small_project(tmp_path, astronaut_path)
    path = project.path
    project.close()
    data = bytearray(path.read_bytes())
    page = 4096
    data[page * 2:page * 4] = b"\xa5" * (page * 2)  # damage b-tree pages, keep the header
    path.write_bytes(bytes(data))
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(UserError, match="corrupt|not a MicroAU"):
        Project.open(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == before


@pytest.mark.parametrize("runs", ["[[0, 100000000]]", "[[0, 1], [5]]", '{"a": 1}', "[[0, -4]]", "[[0, 2.5]]"])
def test_damaged_frame_numbers_in_a_project_are_one_line_not_a_huge_allocation(tmp_path,
                                                                                astronaut_path, runs):
    """A shared project whose frame-number runs were edited (a run far longer than the video)
    gets one line when the numbers are read, before anything of that size is allocated."""
    project = small_project(tmp_path, astronaut_path)
    video = project.videos()[0]
    assert project.frame_numbers(video.id).size == video.n_frames
    path = project.path
    project.close()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE videos SET frame_numbers = ? WHERE id = ?", (runs, video.id))
    conn.close()
    with Project.open(path) as reopened:
        with pytest.raises(UserError, match="frame numbers of a video are damaged"):
            reopened.frame_numbers(video.id)


@pytest.mark.parametrize("column, value", [("vocab", "5"), ("vocab", "[1, 2]"), ("metrics", "[]"),
                                           ("metrics", "{not json"), ("meta", '"text"')])
def test_damaged_json_columns_of_a_shared_project_are_one_line(tmp_path, astronaut_path, column,
                                                               value):
    """A shared project whose JSON columns were edited by hand: each reader says which value is
    damaged in one line (UserError), never a TypeError from deep inside."""
    from microau_gui.store.traces import ComparisonTrace

    project = small_project(tmp_path, astronaut_path)
    version = project.models.add("m", tmp_path / "m", ("AU1", "AU2"), metrics={"f1": 0.5})
    video = project.videos()[0]
    trace = project.traces.put(video.id, ComparisonTrace(
        name="of.csv", tool="openface", frame_idx=np.arange(3),
        values={("intensity", "AU12"): np.zeros(3, np.float32)}, meta={"read": "test"}))
    path = project.path
    project.close()
    table = {"vocab": "model_versions", "metrics": "model_versions", "meta": "comparison_traces"}
    with sqlite3.connect(path) as conn:
        conn.execute(f"UPDATE {table[column]} SET {column} = ?", (value,))
    conn.close()
    with Project.open(path) as reopened, pytest.raises(UserError, match="the project is damaged"):
        if column == "vocab":
            reopened.models.get(version.id)
        elif column == "metrics":
            reopened.models.get(version.id).metrics
        else:
            reopened.traces.get(trace)


# -- D8 / D16: JSON import ------------------------------------------------------------------------

def _export(tmp_path: Path, astronaut_path: Path) -> tuple[Path, dict]:
    project = small_project(tmp_path, astronaut_path)
    out = tmp_path / "export.json"
    export_json(project, out)
    project.close()
    return out, json.loads(out.read_text())


def _null_uid(doc):
    doc["events"][0]["uid"] = None


def _dict_timestamp(doc):
    doc["events"][0]["created_at"] = {"$date": 1}


def _null_note(doc):
    doc["notes"][0]["text"] = None


def _passwd(doc):
    doc["videos"][0]["path"] = "../../../../etc/passwd"


def _string_frame(doc):
    doc["events"][0]["onset"] = "3"


def _unknown_video(doc):
    doc["events"][0]["video"] = 999


def _one_more_frame_numbered(doc):
    doc["videos"][0]["frame_numbers"][-1][1] += 1


def _runs_of_terabytes(doc):  # 10^11 frame numbers declared in a few kB: never expanded
    doc["videos"][0]["frame_numbers"] = [[0, 100_000_000]] * 1000


@pytest.mark.parametrize("damage, says", [
    (_null_uid, "events.0.uid"), (_dict_timestamp, "events.0.created_at"),
    (_null_note, "notes.0.text"), (_passwd, "outside the media folders"),
    (_string_frame, "events.0.onset"), (_unknown_video, "video 999"),
    (_one_more_frame_numbered, "frame_numbers cover"), (_runs_of_terabytes, "frame_numbers cover"),
])
def test_loose_or_hostile_json_is_one_line_and_leaves_nothing(tmp_path, astronaut_path, damage,
                                                              says):
    out, document = _export(tmp_path, astronaut_path)
    damage(document)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(document))
    with Project.create(tmp_path / "existing.maus") as project:
        before = project.dump()
        with pytest.raises(UserError, match=says):
            import_json(project, bad)
        assert project.dump() == before
    fresh = tmp_path / "fresh.maus"
    result = run_main("import", "json", bad, "--project", fresh)
    assert result.returncode == 2 and says in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert list(tmp_path.glob("fresh.maus*")) == [], "a rolled-back import leaves no project"


def test_media_outside_the_roots_imports_with_the_explicit_flag(tmp_path, astronaut_path):
    out, document = _export(tmp_path, astronaut_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for video in document["videos"]:  # the real media, seen from elsewhere/: outside it
        video["path"] = "../" + video["path"]
    moved = elsewhere / "copy.json"
    moved.write_text(json.dumps(document))
    with Project.create(elsewhere / "p.maus") as project:
        with pytest.raises(UserError, match="outside the media folders"):
            import_json(project, moved)
        summary = import_json(project, moved, allow_outside=True)
        assert summary.events_added == 3
        assert all(v.path.is_dir() for v in project.videos())
    with Project.create(elsewhere / "q.maus") as project:
        assert import_json(project, moved, media_roots=[tmp_path / "media"]).events_added == 3


# -- every FACS code, and the AU cell as the coder wrote it ---------------------------------------

CELLS = ["21", "L20+21", "31+61", "4+banana", "M59+12", "?", "1+2+T28", "B24C+B12"]


def test_real_facs_codes_are_kept_and_the_au_cell_round_trips_exactly(tmp_path):
    root = tmp_path / "Cropped"
    image_folder(root / "sub01" / "EP01_01", range(1, 41))
    rows = [("01", "EP01_01", 1 + k, 2 + k, 10 + k, cell, "x", "I") for k, cell in enumerate(CELLS)]
    sheet = casme2_sheet(tmp_path / "coding.xlsx", rows)
    dataset = import_dataset("casme2", sheet, root, frame_index=frame_index)
    codes = {s.aus_cell: {c.number for c in s.aus} for s in dataset.samples}
    assert codes["21"] == {21} and codes["L20+21"] == {20, 21} and codes["31+61"] == {31, 61}
    assert codes["M59+12"] == {59, 12}
    lips = {(c.number, c.lip) for s in dataset.samples for c in s.aus if c.lip}
    assert lips == {(28, "T"), (24, "B")}  # FACS top / bottom lip scoring
    unparsed = " ".join(i.reason for i in dataset.report.issues)
    assert "'banana'" in unparsed and "'B12'" in unparsed and "not in the catalogue" not in unparsed
    with Project.create(tmp_path / "p.maus") as project:
        project.import_dataset(dataset, open_media, coder="ann")
        out = tmp_path / "export.xlsx"
        export_casme2(project, out)
        (table,) = read_tables(out)
        written = sorted(str(cells[7]) for _, cells in table.rows[1:])
        assert written == sorted(CELLS)
        stored = {(c.number, c.lip) for e in project.events() for c in e.aus if c.lip}
        assert stored == {(28, "T"), (24, "B")}
        exported = tmp_path / "export.json"
        export_json(project, exported)
        with Project.create(tmp_path / "copy.maus") as copy:
            import_json(copy, exported)
            assert sorted((e.aus, e.aus_cell) for e in copy.events()) == \
                sorted((e.aus, e.aus_cell) for e in project.events())
        # Once the coder edits the AUs, the export writes the codes as they now are.
        event = next(e for e in project.events() if e.aus_cell == "4+banana")
        project.update_event(event.id, aus=())
        export_casme2(project, out)
        (table,) = read_tables(out)
        assert "4+banana" not in {cells[7] for _, cells in table.rows[1:]}


# -- D15: the dataset's frame numbers are the identity of a frame ---------------------------------

def test_gaps_in_an_image_folder_are_reported_and_numbers_kept_everywhere(tmp_path):
    from microau_gui.media import ImageSequenceSource

    root = tmp_path / "Cropped"
    numbers = [*range(101, 120), *range(130, 230)]  # 120-129 missing
    clip = image_folder(root / "sub01" / "EP01_01", numbers)
    with ImageSequenceSource(clip, fps=200.0) as source:
        assert source.gaps == ((120, 129),)
        assert source.time_s(19) == pytest.approx((130 - 101) / 200.0)  # by number, not position
    rows = [("01", "EP01_01", 110, 122, 140, "12", "x", "I"),  # apex in the gap
            ("01", "EP01_01", 131, 162, 219, "4", "y", "I")]
    sheet = casme2_sheet(tmp_path / "coding.xlsx", rows)
    dataset = import_dataset("casme2", sheet, root, frame_index=frame_index)
    notes = [i.reason for i in dataset.report.noted]
    assert len(notes) == 1 and "missing 120-129" in notes[0]
    gap_fix = [i.reason for i in dataset.report.fixed]
    assert any("apex frame 122 falls in a gap" in r and "nearest frame 119" in r
               and "exports keep 122" in r for r in gap_fix)
    with Project.create(tmp_path / "p.maus") as project:
        project.import_dataset(dataset, open_media, coder="ann")
        first, second = project.events()
        assert project.frame_label(first.video_id, first.onset, first.apex, first.offset) == \
            "110–119–140"
        assert project.frame_label(second.video_id, second.onset, second.apex, second.offset) == \
            "131–162–219"
        # The apex sits on frame 119, the nearest that exists, but the sheet's number is the
        # frame's identity (D15): every export writes 122, not 119.
        assert first.apex_number == 122 and second.apex_number is None

        def casme2_frames(path):
            export_casme2(project, path)
            (table,) = read_tables(path)
            return [tuple(str(c) for c in cells[3:6]) for _, cells in table.rows[1:]]

        assert casme2_frames(tmp_path / "export.csv") == [("110", "122", "140"),
                                                          ("131", "162", "219")]
        exported = tmp_path / "export.json"
        export_json(project, exported)
        events = json.loads(exported.read_text())["events"]
        assert [(e["onset_number"], e["apex_number"], e["offset_number"]) for e in events] == [
            (110, 122, 140), (131, 162, 219)]
        # Once the coder moves the apex, the new frame's number is the apex; undo (a snapshot
        # written back) brings the sheet's number back.
        moved = project.update_event(first.id, apex=first.apex + 2)
        assert moved.apex_number is None
        assert casme2_frames(tmp_path / "moved.csv")[0] == ("110", "131", "140")
        project.replace_event(first)
        assert project.event(first.id).apex_number == 122
    # ... and a JSON round trip keeps it.
    with Project.create(tmp_path / "copy.maus") as copy:
        import_json(copy, exported)
        assert [e.apex_number for e in copy.events()] == [122, None]
