"""The student in the session (issue #18): Model > Distil a student… runs as a JobRunner job with
progress and cancel, the student it makes is registered and attached, and an analysis then
caches the student's dense trace and the teacher's rows at the coded apex, each under its own
version; the timeline trace lays the teacher over the student. Real QThreads (pytest-qt,
offscreen), a copy of the bundled demo project, the demo checkpoint as teacher."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from microau_gui.session.jobs import RequestIds
from microau_gui.session.messages import MediaRef
from microau_gui.session.model_slot import ModelSlot
from microau_gui.session.models import ModelChoice
from microau_gui.session.playhead import Playhead
from microau_gui.store.project import Project

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "weights" / "demo-tiny"

pytestmark = [pytest.mark.qt_log_ignore(r"This plugin does not support propagateSizeHints"),
              pytest.mark.skipif(not (DEMO / "card.json").is_file(), reason="demo checkpoint not built")]


@pytest.fixture
def slot(qtbot, tmp_path):
    shutil.copytree(ROOT / "assets" / "demo", tmp_path / "demo")
    project = Project.open(tmp_path / "demo" / "demo.maus")
    video = project.video_by_path(tmp_path / "demo" / "sub03" / "EP01_01")
    ids = RequestIds()
    playhead = Playhead(ids)
    created = ModelSlot(ids, "cpu", tmp_path / "weights", playhead, lambda: project, lambda: None)
    try:
        created.hand_over(project)  # the worker caches into it, as the session hands it over
        playhead.set_media(MediaRef(video.id, video.path, video.fps, video.n_frames))
        with qtbot.waitSignal(created.model_loaded, timeout=120000):
            created.select_model(ModelChoice("demo-tiny", DEMO, None, "weights"))
        yield created, project, video
    finally:
        created.hand_over(None)
        created.close()
        playhead.close()
        project.close()


def test_distil_attach_and_analyse_split_between_student_and_teacher(qtbot, slot):
    from microau_gui.training.distill import DistillSettings

    slot, project, video = slot
    progress, students = [], []
    slot.distillation.progressed.connect(progress.append)
    slot.student_changed.connect(students.append)
    with qtbot.waitSignal(slot.distillation.finished, timeout=600000) as finished:
        slot.distil_student("demo-student", synthetic_clips=1,
                            settings=DistillSettings(epochs=1, holdout_fraction=0.0))
    done = finished.args[0]
    assert not done.cancelled and done.result.card.teacher == slot.model.card.version
    assert (slot.weights / "demo-student" / "card.json").is_file()
    assert {p.text.split(":")[0] for p in progress} >= {"generating clips", "preparing pairs",
                                                        "teacher labelling", "distilling"}
    qtbot.waitUntil(lambda: bool(students) and students[-1] is not None, timeout=60000)
    student = slot.student
    assert student.card.version == done.result.card.version and student.model_version_id is not None

    apexes = tuple(e.apex for e in project.events(video.id))
    with qtbot.waitSignal(slot.analysis.finished, timeout=600000) as analysed:
        slot.analyze(1, tuple((e.onset, e.offset) for e in project.events(video.id)), apexes)
    assert not analysed.args[0].cancelled
    teacher_id = slot.model.model_version_id
    assert project.predictions.frames(video.id, student.model_version_id).tolist() == list(range(video.n_frames))
    assert project.predictions.frames(video.id, teacher_id).tolist() == list(apexes)
    trace = slot.trace(video.id)
    teacher = project.predictions.probs(video.id, teacher_id)
    dense = project.predictions.probs(video.id, student.model_version_id)
    assert trace.frame_idx.tolist() == list(range(video.n_frames))
    for k, apex in enumerate(apexes):
        np.testing.assert_array_equal(trace.probs[apex], teacher.probs[k])
    others = [f for f in range(video.n_frames) if f not in apexes]
    np.testing.assert_array_equal(trace.probs[others], dense.probs[others])


def test_a_cancelled_distillation_saves_no_student(qtbot, slot):
    from microau_gui.training.distill import DistillSettings

    slot, _, _ = slot
    with qtbot.waitSignal(slot.distillation.progressed, timeout=120000):
        slot.distil_student("never", synthetic_clips=2, settings=DistillSettings(epochs=50))
    with qtbot.waitSignal(slot.distillation.finished, timeout=120000) as finished:
        slot.distillation.cancel()
    assert finished.args[0].cancelled
    assert not (slot.weights / "never").exists() and slot.student is None


def test_model_menu_distils_in_the_background_with_progress_and_cancel(qtbot, tmp_path, monkeypatch):
    """Model > Distil a student…: a name, then the job runs with a progress strip whose Cancel
    stops it, leaving no student folder."""
    from gui_fixtures import shown_window
    from PySide6.QtWidgets import QInputDialog

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    weights = tmp_path / "weights"
    shutil.copytree(DEMO, weights / "demo-tiny")
    shutil.copytree(ROOT / "assets" / "demo", tmp_path / "demo")
    for window in shown_window(qtbot, weights):
        session = window.session
        with qtbot.waitSignal(session.model_loaded, timeout=240000):
            session.open_path(tmp_path / "demo" / "sub03" / "EP01_01")
        window.actions["distill"].trigger()
        (dialog,) = [d for d in window.findChildren(QInputDialog) if d.isVisible()]
        assert dialog.textValue() == "demo-tiny-student"
        dialog.setTextValue("menu-student")
        with qtbot.waitSignal(session.models.distillation.progressed, timeout=120000):
            dialog.accept()
        qtbot.waitUntil(window.distill_strip.isVisible, timeout=5000)
        with qtbot.waitSignal(session.models.distillation.finished, timeout=120000) as finished:
            window.distill_strip.cancel.click()
        assert finished.args[0].cancelled and not window.distill_strip.isVisible()
        assert not (weights / "menu-student").exists()
