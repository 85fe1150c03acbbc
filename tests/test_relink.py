"""Relinking a video whose media moved: File > Relink video… in the window and `relink` on the
command line, both through `Project.relink_video`. Real widgets (offscreen), real image folders,
real SQLite projects; the command line runs in a subprocess."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtWidgets import QFileDialog
from gui_fixtures import shown_window
from test_session_fixtures import face_clip  # noqa: F401

from microau_gui.store.project import Project

MAIN = Path(__file__).resolve().parents[1] / "main.py"

pytestmark = pytest.mark.qt_log_ignore(r"This plugin does not support propagateSizeHints")


def _moved_project(tmp_path, clip: Path) -> tuple[Path, Path, int]:
    """A project whose one clip was moved away after it was added: (project, new place, id)."""
    from microau_gui.session.opening import ensure_video

    project = Project.create(tmp_path / "moved.maus")
    video_id = ensure_video(project, clip).id
    project.close()
    new_place = tmp_path / "elsewhere" / clip.name
    new_place.parent.mkdir()
    shutil.move(clip, new_place)
    return tmp_path / "moved.maus", new_place, video_id


def _main(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(MAIN), *map(str, args)], capture_output=True,
                          text=True, timeout=120)


@pytest.fixture
def window(qtbot):
    yield from shown_window(qtbot)


def test_file_relink_video_points_the_missing_video_at_its_new_folder(
        qtbot, window, tmp_path, face_clip, monkeypatch):  # noqa: F811
    project_path, new_place, video_id = _moved_project(tmp_path, face_clip)
    session = window.session
    failures = []
    session.failed.connect(failures.append)
    # Opening the project tries its one video: the window says the media is missing and how to
    # fix it.
    assert not session.attempt(session.open_project, Project.open(project_path))
    assert "relink the video (File > Relink video…)" in failures[-1]
    assert [v.id for v in session.missing_videos()] == [video_id] and session.video is None
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *_args, **_kw: str(new_place))
    with qtbot.waitSignal(session.frame_loaded, timeout=15000):
        window.actions["relink"].trigger()
    assert session.video.id == video_id and session.video.path == new_place
    assert session.missing_videos() == []
    with Project.open(project_path, read_only=True) as project:
        assert project.video(video_id).path == new_place


def test_relink_command_lists_missing_media_then_relinks_and_refuses_bad_input(
        tmp_path, face_clip):  # noqa: F811
    project_path, new_place, video_id = _moved_project(tmp_path, face_clip)
    listed = _main("relink", "--project", project_path)
    assert listed.returncode == 0 and listed.stdout.startswith(f"{video_id}\tEP01_01\t")

    for args, message in ((("relink", "--project", tmp_path / "none.maus"), "no such project"),
                          (("relink", "--project", project_path, "nope", new_place), "no video"),
                          (("relink", "--project", project_path, "EP01_01", tmp_path / "gone"),
                           "no such file"),
                          (("relink", "--project", project_path, "EP01_01"), "pass both")):
        refused = _main(*args)
        lines = refused.stderr.strip().splitlines()
        assert refused.returncode == 2 and len(lines) == 1 and message in lines[0], refused.stderr
        assert "Traceback" not in refused.stderr
    assert not (tmp_path / "none.maus").exists()

    done = _main("relink", "--project", project_path, "EP01_01", new_place)
    assert done.returncode == 0 and "relinked EP01_01" in done.stdout, done.stderr
    with Project.open(project_path, read_only=True) as project:
        assert project.video(video_id).path == new_place
    assert _main("relink", "--project", project_path).stdout.strip() == (
        "every video's media is in place")
