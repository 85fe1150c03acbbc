"""`python main.py import KIND SHEET MEDIA_ROOT [--report]`, run as a user would."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sheet_fixtures import casme2_sheet, image_folder

MAIN = Path(__file__).resolve().parents[1] / "main.py"


def run_main(*args: object) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(MAIN), *map(str, args)], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("casme2")
    root = folder / "Cropped"
    image_folder(root / "sub01" / "EP02_01f", range(1, 41))
    image_folder(root / "sub02" / "EP03_02", range(1, 41))
    rows = [
        ("01", "EP02_01f", 5, "/", 30, "4+7+L10", "disgust", "IV"),
        ("02", "EP03_02", 3, 9, 20, 12, "happiness", "I"),
        ("02", "EP03_09", 3, 9, 20, 14, "repression", "VI"),  # clip folder missing
    ]
    return casme2_sheet(folder / "CASME2-coding-20190701.xlsx", rows), root


def test_import_prints_count_and_report(dataset):
    sheet, root = dataset
    out = run_main("import", "casme2", sheet, root, "--report")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("2 samples from 2 subjects (01, 02)")
    assert lines[1] == "3 rows read: 1 fixed, 1 skipped"
    assert "  row 2: fixed: apex is '/' (not coded): used the middle frame 17" in lines
    assert "  row 4: skipped: clip folder sub02/EP03_09 is missing" in lines
    quiet = run_main("import", "casme2", sheet, root)
    assert "run with --report to list them" in quiet.stdout and "row 2" not in quiet.stdout


def test_import_user_mistakes_are_one_line_errors(dataset, tmp_path):
    sheet, root = dataset
    unreadable = tmp_path / "coding.xlsx"
    unreadable.write_text("this is not a workbook")
    cases = [
        (("import", "casme2", tmp_path / "missing.xlsx", root), "does not exist"),
        (("import", "casme2", unreadable, root), "could not read coding.xlsx"),
        (("import", "casme2", sheet, tmp_path / "no_such_media"), "media folder"),
        (("import", "casme2", sheet), "needs MEDIA_ROOT"),
        (("import", "json", tmp_path / "export.json"), "needs --project"),
    ]
    for args, message in cases:
        out = run_main(*args)
        assert out.returncode == 2, out.stdout
        assert out.stderr.startswith("error: ") and out.stderr.count("\n") == 1, out.stderr
        assert message in out.stderr and "Traceback" not in out.stderr


def test_import_into_a_project_stores_events_and_is_idempotent(dataset, tmp_path):
    from microau_gui.store.project import Project

    sheet, root = dataset
    project_path = tmp_path / "lab.maus"
    out = run_main("import", "casme2", sheet, root, "--project", project_path, "--coder", "ann")
    assert out.returncode == 0, out.stderr
    assert f"project {project_path}: 2 events, 2 videos and 2 subjects added" in out.stdout
    with Project.open(project_path) as project:
        events = project.events()
        assert len(events) == 2 and {e.coder for e in events} == {"ann"}
        assert sorted(e.aus_text for e in events) == ["12", "4+7+L10"]
        assert {s.name for s in project.subjects()} == {"01", "02"}
        assert {v.fps for v in project.videos()} == {200.0}, "CASME II clips are 200 fps"
    again = run_main("import", "casme2", sheet, root, "--project", project_path, "--coder", "ann")
    assert again.returncode == 0 and "0 events" in again.stdout and "2 already in the project" in again.stdout


def test_json_export_imports_back_into_a_new_project(dataset, tmp_path):
    from microau_gui.store.project import Project

    sheet, root = dataset
    first = tmp_path / "a.maus"
    assert run_main("import", "casme2", sheet, root, "--project", first).returncode == 0
    export = tmp_path / "a.json"
    assert run_main("export", "--project", first, "--format", "json", "--out", export).returncode == 0
    second = tmp_path / "b.maus"
    refused = run_main("import", "json", export, "--project", second)
    assert refused.returncode == 2 and "outside the media folders" in refused.stderr
    assert not second.exists(), "a refused import leaves no project behind"
    out = run_main("import", "json", export, "--project", second, "--media-root", root)
    assert out.returncode == 0, out.stderr
    with Project.open(first) as a, Project.open(second) as b:
        key = lambda e: (e.onset, e.apex, e.offset, e.aus_text, e.emotion)  # noqa: E731
        assert sorted(map(key, a.events())) == sorted(map(key, b.events()))
