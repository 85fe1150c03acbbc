"""#15 D1: no command writes its output over what it reads or keeps. `export --format json --out
P.maus` and `analyze --project P --out P` exited 0 and destroyed the project; now every command
with --out / --json compares resolved paths first and refuses in one line, before any work."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from microau_gui.cli import main
from microau_gui.store.project import Project


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def lab(tmp_path):
    """A real project (with its -wal kept open by nothing), a media file, a fake checkpoint and
    a coding sheet, each fingerprinted."""
    project = tmp_path / "study.maus"
    with Project.create(project) as opened:
        opened.add_subject("01")
    media = tmp_path / "clip.mp4"
    media.write_bytes(b"not really a video, but it must survive")
    checkpoint = tmp_path / "weights" / "m1"
    checkpoint.mkdir(parents=True)
    (checkpoint / "card.json").write_text("{}")
    (checkpoint / "model.safetensors").write_bytes(b"weights")
    sheet = tmp_path / "coding.csv"
    sheet.write_text("Subject,Filename\n")
    files = [project, media, checkpoint / "card.json", checkpoint / "model.safetensors", sheet]
    return {"project": project, "media": media, "checkpoint": checkpoint, "sheet": sheet,
            "before": {p: _digest(p) for p in files}}


def _refused(capsys, lab, argv: list[str], says: str) -> None:
    assert main([str(a) for a in argv]) != 0
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and says in err and "\n" not in err, err
    assert {p: _digest(p) for p in lab["before"]} == lab["before"]
    with Project.open(lab["project"]) as project:
        assert [s.name for s in project.subjects()] == ["01"]


def test_export_and_analyze_refuse_to_overwrite_the_project(lab, capsys, tmp_path, monkeypatch):
    p = lab["project"]
    for fmt in ("json", "casme2", "megc"):
        _refused(capsys, lab, ["export", "--project", p, "--format", fmt, "--out", p], "is the project")
    # Other spellings of the same file: relative, through "..", through a symbolic link.
    monkeypatch.chdir(tmp_path)
    _refused(capsys, lab, ["export", "--project", p, "--format", "json", "--out", "study.maus"],
             "is the project")
    _refused(capsys, lab, ["export", "--project", p, "--format", "json", "--out",
                           tmp_path / "weights" / ".." / "study.maus"], "is the project")
    link = tmp_path / "link.maus"
    link.symlink_to(p)
    _refused(capsys, lab, ["export", "--project", p, "--format", "json", "--out", link],
             "is the project")
    _refused(capsys, lab, ["export", "--project", p, "--format", "json", "--out", f"{p}-wal"],
             "-wal file")
    _refused(capsys, lab, ["analyze", lab["media"], "--project", p, "--out", p], "is the project")
    _refused(capsys, lab, ["analyze", lab["media"], "--project", p, "--out", f"{p}-shm"], "-shm file")
    _refused(capsys, lab, ["analyze", lab["media"], "--out", lab["media"]], "the input media")
    _refused(capsys, lab, ["analyze", lab["media"], "--out", lab["checkpoint"] / "card.json"],
             "checkpoint m1")


def test_every_other_command_with_an_output_refuses_its_inputs(lab, capsys):
    p, media, sheet = lab["project"], lab["media"], lab["sheet"]
    weights = lab["checkpoint"] / "model.safetensors"
    _refused(capsys, lab, ["spot", media, "--out", media], "the input media")
    _refused(capsys, lab, ["spot", media, "--out", weights], "checkpoint m1")
    _refused(capsys, lab, ["agreement", sheet, media, "--out", sheet], "coder A's events")
    _refused(capsys, lab, ["agreement", sheet, media, "--project", p, "--out", p], "is the project")
    _refused(capsys, lab, ["bench", "--quick", "--out", weights], "checkpoint m1")
    _refused(capsys, lab, ["finetune", "--project", p, "--out", lab["checkpoint"].parent / "new",
                           "--json", p], "is the project")
    _refused(capsys, lab, ["train", "--dataset", f"casme2:{sheet}:{media.parent}", "--json", sheet],
             "dataset sheet")
    _refused(capsys, lab, ["eval", "--model", lab["checkpoint"], "--dataset",
                           f"casme2:{sheet}:{media.parent}", "--json", sheet], "dataset sheet")
    assert sorted(os.listdir(lab["checkpoint"])) == ["card.json", "model.safetensors"]
