"""Exports of a project's events, read back by our importers: nothing may change on the way."""

from __future__ import annotations

import json
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_store_fixtures import aus, face_frames, small_project, write_clip

from microau_gui.core.errors import UserError
from microau_gui.media import frame_index, open_media, write_video
from microau_gui.store.commands import AcceptPrediction
from microau_gui.store.export import (
    JSON_FORMAT_VERSION,
    export_casme2,
    export_json,
    export_megc,
    import_json,
)
from microau_gui.store.importers.casme2 import import_casme2
from microau_gui.store.importers.megc import import_megc
from microau_gui.store.project import Project
from microau_gui.store.records import MediaFacts, PredictedEvent
from microau_gui.store.traces import ComparisonTrace

MAIN = Path(__file__).resolve().parents[1] / "main.py"


@pytest.fixture
def project(tmp_path, astronaut_path):
    project = small_project(tmp_path, astronaut_path)
    version = project.models.add("demo", tmp_path / "weights" / "demo", ("AU4", "AU12"),
                                 metrics={"mean_f1": 0.4}, activate=True)
    project.models.add("tuned", tmp_path / "weights" / "tuned", ("AU4", "AU12"),
                       parent_id=version.id)
    AcceptPrediction(PredictedEvent(project.videos()[1].id, 4, 6, 9, aus("4"),
                                    model_version_id=version.id), coder="ann").apply(project)
    yield project
    project.close()


def _portable(project: Project) -> list[tuple]:
    """Every event field, with ids replaced by what survives a move to another project."""
    videos = {v.id: v for v in project.videos()}
    models = {m.id: m.name for m in project.models.list()}
    notes = {}
    for note in project.notes():
        notes.setdefault(note.event_id, []).append((note.text, note.author, note.created_at))
    return [(
        e.id, e.uid, videos[e.video_id].rel_path, videos[e.video_id].name,
        videos[e.video_id].subject, e.onset, e.apex, e.offset, e.aus, e.emotion,
        e.objective_class, e.expression_type, e.coder, e.source, models.get(e.model_version_id),
        e.created_at, e.modified_at, tuple(notes.get(e.id, ())),
    ) for e in project.events()]


def test_json_export_then_import_preserves_every_event_exactly(project, tmp_path):
    out = tmp_path / "export.json"
    summary = export_json(project, out)
    assert summary.n_events == 4 and out.exists()
    document = json.loads(out.read_text())
    assert document["format_version"] == JSON_FORMAT_VERSION
    assert document["events"][0]["onset_number"] == 46 + document["events"][0]["onset"]
    with Project.create(tmp_path / "copy.maus") as copy:
        result = import_json(copy, out)
        assert (result.events_added, result.videos_added, result.models_added) == (4, 2, 2)
        assert _portable(copy) == _portable(project)
        assert [v.content_hash for v in copy.videos()] == [v.content_hash for v in project.videos()]
        assert [(n.video_id, n.frame_idx, n.text) for n in copy.notes() if n.video_id] == [
            (n.video_id, n.frame_idx, n.text) for n in project.notes() if n.video_id]
        assert copy.models.active().name == "demo"
        assert copy.models.find("tuned").parent_id == copy.models.find("demo").id
        for video in project.videos():
            assert list(copy.frame_numbers(video.id)) == list(project.frame_numbers(video.id))
        again = import_json(copy, out)
        assert (again.events_added, again.duplicates) == (0, 4)
        assert len(copy.events()) == 4


def test_json_export_filtered_by_coder(project, tmp_path):
    summary = export_json(project, tmp_path / "bob.json", coder="bob")
    document = json.loads((tmp_path / "bob.json").read_text())
    assert summary.n_events == 1 and {e["coder"] for e in document["events"]} == {"bob"}


def test_damaged_or_foreign_json_is_refused_and_imports_nothing(project, tmp_path):
    out = tmp_path / "export.json"
    export_json(project, out)
    document = json.loads(out.read_text())
    del document["events"][2]["onset"]
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(document))
    with Project.create(tmp_path / "copy.maus") as copy:
        before = copy.dump()
        with pytest.raises(UserError, match="damaged export .*nothing was imported"):
            import_json(copy, broken)
        assert copy.dump() == before
        other = tmp_path / "other.json"
        other.write_text('{"hello": 1}')
        with pytest.raises(UserError, match="not a MicroAU project export"):
            import_json(copy, other)


def _sheet_fields(project: Project) -> list[tuple]:
    """What a coding sheet holds of each event, in a comparable form."""
    videos = {v.id: v for v in project.videos()}
    return sorted((videos[e.video_id].path, videos[e.video_id].subject,
                   videos[e.video_id].name, e.onset, e.apex, e.offset, e.aus, e.emotion,
                   e.objective_class, e.expression_type) for e in project.events())


@pytest.mark.parametrize("layout", ["2019", "2014"])
def test_casme2_export_then_import_preserves_every_event(tmp_path, astronaut_path, camera_path,
                                                         layout):
    root = tmp_path / "CASME2"
    clips = [write_clip(root / "sub01" / "EP02_01f", astronaut_path, 30, first_number=46),
             write_clip(root / "sub01" / "EP19_05f", camera_path, 25, first_number=1),
             write_clip(root / "sub17" / "EP01_13", camera_path, 20, first_number=201)]
    with Project.create(tmp_path / "coded.maus") as project:
        videos = []
        for clip, subject in zip(clips, ("01", "01", "17")):
            with open_media(clip) as source:
                videos.append(project.add_video(clip, source, name=clip.name, subject=subject))
        coded = [
            (videos[0], (0, 7, 20), "4+7+L10", "disgust", "IV"),
            (videos[0], (21, 25, 29), "12", "happiness", "I"),
            (videos[1], (3, 3, 24), "A12B+ref(43)+R14C", "repression", "VI"),
            (videos[1], (0, 1, 2), "1+2", "surprise", None),
            (videos[2], (5, 9, 19), "(R6 or R12)", None, "VII"),
        ]
        for video, frames, text, emotion, klass in coded:
            project.add_event(video.id, *frames, aus(text), emotion=emotion,
                              objective_class=klass if layout == "2019" else None)
        sheet = root / f"coding{layout}.xlsx"
        summary = export_casme2(project, sheet, layout=layout)
        assert summary.n_events == 5
        dataset = import_casme2(sheet, root, frame_index=frame_index)
        assert dataset.report.issues == ()
        assert [s.onset_number for s in dataset.samples][:1] == [46]
        with Project.create(root / "reimported.maus") as again:
            result = again.import_dataset(dataset, open_media, coder="sheet")
            assert result.events_added == 5 and result.skipped == ()
            assert _sheet_fields(again) == _sheet_fields(project)


def test_megc_export_then_import_preserves_every_interval(tmp_path, astronaut_path):
    root = tmp_path / "long"
    video_path = root / "s15" / "15_0101.avi"
    video_path.parent.mkdir(parents=True)
    write_video(video_path, face_frames(astronaut_path, 60), fps=30.0)
    with Project.create(tmp_path / "spot.maus") as project:
        with open_media(video_path) as source:
            video = project.add_video(video_path, source, name="15_0101", subject="15")
        project.add_event(video.id, 4, 6, 10, aus("12"), emotion="happiness")
        project.add_event(video.id, 20, 30, 55, aus("4+7"), expression_type="macro")
        sheet = root / "gt.xlsx"
        assert export_megc(project, sheet).n_events == 2
        dataset = import_megc(sheet, root, frame_index=frame_index)
        assert dataset.report.skipped == ()
        with Project.create(root / "again.maus") as again:
            again.import_dataset(dataset, open_media)
            assert _sheet_fields(again) == _sheet_fields(project)


def test_casme2_export_refuses_wrong_suffix_and_subjectless_videos(project, tmp_path):
    with pytest.raises(UserError, match="written as .xlsx or .csv"):
        export_casme2(project, tmp_path / "coding.txt")
    video = project.videos()[0]
    project.set_video_subject(video.id, None)
    with pytest.raises(UserError, match="have no subject"):
        export_casme2(project, tmp_path / "coding.xlsx")
    assert not (tmp_path / "coding.xlsx").exists()


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(MAIN), *args], capture_output=True, text=True,
                          timeout=120)


def test_export_cli_writes_each_format(project, tmp_path):
    path = project.path
    project.close()
    out = tmp_path / "cli.json"
    result = _cli("export", "--project", str(path), "--format", "json", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "wrote 4 events" in result.stdout
    assert len(json.loads(out.read_text())["events"]) == 4
    sheet = tmp_path / "media" / "coding.xlsx"
    result = _cli("export", "--project", str(path), "--format", "casme2", "--out", str(sheet),
                  "--coder", "ann", "--source", "expert")
    assert result.returncode == 0, result.stderr
    dataset = import_casme2(sheet, tmp_path / "media", frame_index=frame_index)
    assert [(s.clip, s.onset, s.offset) for s in dataset.samples] == [
        ("EP01_01", 2, 9), ("EP01_01", 11, 18)]
    megc = tmp_path / "gt.csv"
    result = _cli("export", "--project", str(path), "--format", "megc", "--out", str(megc))
    assert result.returncode == 0, result.stderr
    assert len(megc.read_text().splitlines()) == 4


@pytest.mark.parametrize("case", ["missing project", "output folder missing", "output is a folder",
                                  "not a project", "sheet suffix"])
def test_export_cli_bad_input_is_one_line_and_non_zero(project, tmp_path, case):
    path = project.path
    project.close()
    out = tmp_path / "out.json"
    if case == "missing project":
        path = tmp_path / "nope.maus"
    elif case == "output folder missing":
        out = tmp_path / "no" / "such" / "out.json"
    elif case == "output is a folder":
        out = tmp_path
    elif case == "not a project":
        path = tmp_path / "fake.maus"
        path.write_text("not sqlite")
    fmt = "json"
    if case == "sheet suffix":
        fmt, out = "casme2", tmp_path / "coding.json"
    result = _cli("export", "--project", str(path), "--format", fmt, "--out", str(out))
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr


def _trace(name: str, n_frames: int, aus_: tuple[str, ...], seed: int = 0) -> ComparisonTrace:
    """A comparison trace with masked frames and the values float32 cannot write in decimal."""
    rng = np.random.default_rng(seed)
    frame_idx = np.sort(rng.choice(n_frames, size=n_frames * 3 // 4, replace=False))
    values = {}
    for au in aus_:
        column = rng.random(len(frame_idx), dtype=np.float32) * 5  # (n,)
        column[::7] = np.nan
        values[("intensity", au)] = column
        values[("presence", au)] = (column > 2.5).astype(np.float32)
    return ComparisonTrace(name=name, tool="openface", frame_idx=frame_idx, values=values,
                           file=name, meta={"masked": 3, "align": "frame", "fps": 200.0})


def _same_trace(a: ComparisonTrace, b: ComparisonTrace) -> bool:
    return (a.name, a.tool, a.file, a.meta) == (b.name, b.tool, b.file, b.meta) \
        and a.frame_idx.tobytes() == b.frame_idx.tobytes() \
        and sorted(a.values) == sorted(b.values) \
        and all(a.values[k].astype("<f4").tobytes() == b.values[k].astype("<f4").tobytes()
                for k in a.values)


def test_json_export_carries_comparison_traces_and_reads_them_back_bit_for_bit(project, tmp_path):
    videos = project.videos()
    stored = {(videos[0].id, "OpenFace_a.csv"): _trace("OpenFace_a.csv", 20, ("AU4", "AU12")),
              (videos[1].id, "OpenFace_b.csv"): _trace("OpenFace_b.csv", 12, ("AU45",), seed=1)}
    for (video_id, _), trace in stored.items():
        project.traces.put(video_id, trace)
    out = tmp_path / "export.json"
    export_json(project, out)
    document = json.loads(out.read_text())
    assert [(t["video"], t["name"]) for t in document["traces"]] == list(stored)
    with Project.create(tmp_path / "copy.maus") as copy:
        summary = import_json(copy, out)
        assert summary.traces_added == 2 and "2 comparison traces added" in str(summary)
        back = {(v.name, t.name): copy.traces.get(t.id)
                for v in copy.videos() for t in copy.traces.list(v.id)}
        names = {v.id: v.name for v in videos}
        assert set(back) == {(names[vid], name) for vid, name in stored}
        for (video_id, name), trace in stored.items():
            assert _same_trace(back[(names[video_id], name)], trace)
        before = copy.dump()
        assert import_json(copy, out).traces_added == 0  # the same file twice adds nothing
        assert copy.dump() == before


@pytest.mark.parametrize("damage", ["short column", "not base64", "unknown channel", "bad AU"])
def test_a_damaged_trace_in_a_json_export_is_one_line_and_imports_nothing(project, tmp_path,
                                                                          damage):
    project.traces.put(project.videos()[0].id, _trace("t.csv", 20, ("AU4",)))
    out = tmp_path / "export.json"
    export_json(project, out)
    document = json.loads(out.read_text())
    column = document["traces"][0]["columns"][0]
    if damage == "short column":
        column["values"] = column["values"][:-8]
    elif damage == "not base64":
        column["values"] = "!!" + column["values"][2:]
    elif damage == "unknown channel":
        column["channel"] = "mood"
    else:
        column["au"] = 123
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(document))
    with Project.create(tmp_path / "copy.maus") as copy:
        before = copy.dump()
        with pytest.raises(UserError, match="damaged export") as caught:
            import_json(copy, broken)
        assert "\n" not in str(caught.value)
        assert copy.dump() == before


def test_the_json_export_holds_one_trace_in_memory_at_a_time(tmp_path, astronaut_path):
    """Four long traces: the export's peak memory stays near one trace's, not all four."""
    n_frames = 120_000
    aus_ = tuple(f"AU{n}" for n in (1, 2, 4, 5, 6, 7, 9, 10, 12, 14))
    with Project.create(tmp_path / "long.maus") as project:
        facts = MediaFacts(n_frames=n_frames, fps=200.0, width=640, height=480)
        video = project.add_video(tmp_path / "long.mp4", facts, digest="0" * 64)
        for k in range(4):
            project.traces.put(video.id, _trace(f"tool{k}.csv", n_frames, aus_, seed=k))
        out = tmp_path / "export.json"
        tracemalloc.start()
        try:
            export_json(project, out)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        one_trace = 90_000 * 4 * (1 + 2 * len(aus_))  # raw bytes of one trace
        assert out.stat().st_size > 4 * one_trace  # all four were written
        assert peak < 3 * one_trace, f"{peak / 1e6:.0f} MB for {one_trace / 1e6:.0f} MB traces"


_JSON_CHILD = r'''
import sys
from pathlib import Path
from microau_gui.core.errors import UserError
from microau_gui.store.export import read_export
try:
    print("read", len(read_export(Path(sys.argv[1])).events))
except UserError as err:
    print("refused", str(err).replace(chr(10), " | "))
hwm = next(line for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print("peak_mb", int(hwm.split()[1]) / 1024)
'''
_EVENT = json.dumps({
    "id": 0, "uid": "u0", "video": 1, "onset": 1, "apex": 2, "offset": 3,
    "aus": [{"au": 12, "side": "L", "intensity": "C", "asymmetric": False, "uncertain": False,
             "lip": None}],
    "emotion": "happiness", "objective_class": None, "expression_type": "micro", "coder": "ann",
    "source": "expert", "model_version": None, "created_at": "2026-01-01T00:00:00+00:00",
    "modified_at": "2026-01-01T00:00:00+00:00"})


def _write_export(path: Path, events) -> None:
    """An export written piece by piece (the test process never holds it as objects)."""
    head = json.dumps({
        "format": "microau-project-export", "format_version": 1, "subjects": [],
        "model_versions": [], "notes": [],
        "videos": [{"id": 1, "path": "v.mp4", "name": "v", "subject": None, "n_frames": 100,
                    "fps": 30.0, "width": 64, "height": 64, "content_hash": "x",
                    "frame_numbers": [[0, 100]]}]})
    with path.open("w") as out:
        out.write(head[:-1] + ', "events": [')
        for k, item in enumerate(events):
            out.write(("," if k else "") + item)
        out.write("]}")


@pytest.mark.parametrize("kind", ["tiny objects", "largest accepted"])
def test_a_json_import_reads_in_bounded_memory(tmp_path, kind):
    """#15 D2 / #17: the JSON importer reads any file in < 300 MB: a hostile file of tiny
    objects (2.5 M, ~450 MB once parsed) is refused before it is parsed; the largest real export
    the limit lets through (~31,000 events) stays under."""
    path = tmp_path / "x.json"
    if kind == "tiny objects":
        _write_export(path, ('{"a":1}' for _ in range(2_500_000)))
    else:
        _write_export(path, (_EVENT.replace('"id": 0, "uid": "u0"', f'"id": {i}, "uid": "u{i}"')
                             for i in range(31_000)))
    proc = subprocess.run([sys.executable, "-c", _JSON_CHILD, str(path)],
                          capture_output=True, text=True, timeout=300, cwd=MAIN.parent)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = dict(line.split(" ", 1) for line in proc.stdout.strip().splitlines())
    if kind == "tiny objects":
        assert "too large to import in one piece" in lines["refused"]
    else:
        assert int(lines["read"]) == 31_000
    assert float(lines["peak_mb"]) < 300, lines


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**63, 2**63) | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8),
                                                                         children, max_size=4),
    max_leaves=12)


def test_the_json_importer_survives_random_damage(project, tmp_path):
    """#15's fuzz item for the JSON importer: any field of a real export replaced by any JSON
    value gives a correct import or one line, and a refused file leaves the project as it was."""
    project.traces.put(project.videos()[0].id, _trace("t.csv", 20, ("AU4",)))
    out = tmp_path / "export.json"
    export_json(project, out)
    good = json.loads(out.read_text())

    def paths(node, prefix=()):
        yield prefix
        children = (node.items() if isinstance(node, dict)
                    else enumerate(node) if isinstance(node, list) else ())
        for key, child in children:
            yield from paths(child, (*prefix, key))

    places = [p for p in paths(good) if p]
    state = {}

    def fresh_target() -> None:
        if "project" in state:
            state["project"].close()
            for leftover in tmp_path.glob("target.maus*"):
                leftover.unlink()
        state["project"] = Project.create(tmp_path / "target.maus")
        state["before"] = state["project"].dump()

    @settings(max_examples=80, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
    @given(place=st.sampled_from(places), value=_json_values)
    def fuzz(place, value):
        document = json.loads(json.dumps(good))
        node = document
        for key in place[:-1]:
            node = node[key]
        node[place[-1]] = value
        damaged = tmp_path / "damaged.json"
        damaged.write_text(json.dumps(document))
        try:
            summary = import_json(state["project"], damaged)
        except UserError as err:
            assert "\n" not in str(err) and str(err)
            assert state["project"].dump() == state["before"]  # nothing half-imported
            return
        assert summary.events_added <= len(good["events"])
        fresh_target()  # a correct import: the next example starts from an empty project

    fresh_target()
    try:
        fuzz()
    finally:
        state["project"].close()
