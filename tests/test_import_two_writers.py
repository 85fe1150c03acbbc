"""Two imports creating the same project at once: the one that adds nothing (the other added the
rows first) must not delete the project as "created by a run that added nothing" (found by
tools/kill_campaign.py: 1 run in 3 lost the other writer's events)."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

from microau_gui.cli import main as cli_main
from microau_gui.store.project import Project

ROOT = Path(__file__).resolve().parents[1]


def test_an_import_that_adds_nothing_keeps_a_project_another_writer_filled(tmp_path, monkeypatch):
    media = tmp_path / "demo"
    shutil.copytree(ROOT / "assets" / "demo", media, ignore=shutil.ignore_patterns("*.maus"))
    project = tmp_path / "shared.maus"
    args = ["import", "casme2", str(media / "coding.xlsx"), str(media), "--project", str(project)]
    real_open = Project.open_or_create.__func__

    def other_writer_first(cls, path, *rest, **kwargs):
        # This run saw no file (so it "created" it); the other writer creates it and imports
        # every row before this run reads the sheet's rows into it.
        done = subprocess.run([sys.executable, str(ROOT / "main.py"), *args], capture_output=True,
                              text=True, timeout=300, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
        assert done.returncode == 0, done.stderr
        return real_open(cls, path, *rest, **kwargs)

    monkeypatch.setattr(Project, "open_or_create", classmethod(other_writer_first))
    assert cli_main(args) == 0
    assert project.exists()
    with sqlite3.connect(project) as conn:
        assert conn.execute("SELECT COUNT(*) FROM events").fetchone()[0] == 3
