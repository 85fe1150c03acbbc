"""Each part of the session on its own, without a window and without the facade: the playhead,
the annotator (I/A/O marking and boundary moves), the model slot (reference policy, typed
model-load failure) and the narrow context controllers get. Real image files, real SQLite,
real QThreads (pytest-qt, offscreen)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_session_fixtures import face_clip, read_frame  # noqa: F401

from microau_gui.inference.reference import ReferencePolicy, reference_frame
from microau_gui.session import annotation
from microau_gui.session.annotating import Annotator
from microau_gui.session.annotation import PendingMark
from microau_gui.session.jobs import RequestIds
from microau_gui.session.messages import MediaRef, ModelLoadFailed
from microau_gui.session.model_slot import ModelSlot
from microau_gui.session.models import ModelChoice
from microau_gui.session.numbering import FrameLabels, Numbering
from microau_gui.session.opening import ensure_video
from microau_gui.session.playhead import Playhead
from microau_gui.store.project import Project
from microau_gui.store.records import Boundary

pytestmark = pytest.mark.qt_log_ignore(r"This plugin does not support propagateSizeHints")


@pytest.fixture
def clip_project(tmp_path, face_clip):  # noqa: F811
    project = Project.create(tmp_path / "parts.maus")
    video = ensure_video(project, face_clip)
    yield project, video
    project.close()


@pytest.fixture
def playhead(qtbot):
    created = Playhead(RequestIds())
    yield created
    created.close()
    assert not created.loader.running


def _media(video) -> MediaRef:
    return MediaRef(video.id, video.path, video.fps, video.n_frames)


# -- pure rules ------------------------------------------------------------------------------


def test_marking_state_machine_orders_onset_apex_offset():
    step = annotation.mark_step(None, Boundary.APEX, 10, video_id=1)
    assert step.pending is None and "press I at the onset first" in step.status
    onset = annotation.mark_step(None, Boundary.ONSET, 10, video_id=1)
    assert onset.pending == PendingMark(1, 10) and onset.deselect and onset.new_event is None
    early = annotation.mark_step(onset.pending, Boundary.OFFSET, 9, video_id=1)
    assert early.pending is onset.pending and "cannot come before the onset" in early.status
    apex = annotation.mark_step(onset.pending, Boundary.APEX, 14, video_id=1)
    assert apex.pending == PendingMark(1, 10, 14)
    before_apex = annotation.mark_step(apex.pending, Boundary.OFFSET, 12, video_id=1)
    assert before_apex.new_event is None and "before the apex" in before_apex.status
    assert annotation.mark_step(apex.pending, Boundary.OFFSET, 20, 1).new_event == (10, 14, 20)
    # no apex marked: the middle frame
    assert annotation.mark_step(onset.pending, Boundary.OFFSET, 21, 1).new_event == (10, 15, 21)


def test_boundary_moves_are_ordered_so_no_step_breaks_onset_apex_offset(clip_project):
    project, video = clip_project
    event = project.add_event(video.id, 10, 12, 14)
    later = annotation.boundary_move_order(event, 20, 22, 24)
    assert [b for b, _ in later] == [Boundary.OFFSET, Boundary.APEX, Boundary.ONSET]
    earlier = annotation.boundary_move_order(event, 2, 4, 6)
    assert [b for b, _ in earlier] == [Boundary.ONSET, Boundary.APEX, Boundary.OFFSET]
    assert annotation.boundary_move_order(event, 10, 13, 14) == [(Boundary.APEX, 13)]


# -- the playhead ----------------------------------------------------------------------------


def test_playhead_shows_the_frame_asked_for_and_drops_stale_ones(qtbot, playhead, clip_project,
                                                                 face_clip):  # noqa: F811
    _project, video = clip_project
    assert playhead.set_media(_media(video)) and not playhead.set_media(_media(video))
    moved = []
    playhead.moved.connect(lambda: moved.append(playhead.frame_idx))
    with qtbot.waitSignal(playhead.frame_loaded, timeout=10000,
                          check_params_cb=lambda f: f.frame_idx == 7) as loaded:
        playhead.seek(7)
    assert np.array_equal(loaded.args[0].rgb, read_frame(face_clip, 7))
    assert playhead.displayed_frame_idx == 7 and moved == [7]
    playhead.seek(10_000)  # clamped to the last frame
    assert playhead.frame_idx == video.n_frames - 1
    with qtbot.waitSignal(playhead.frame_loaded, timeout=10000,
                          check_params_cb=lambda f: f.frame_idx == 3):
        playhead.step(-56)
    # an answer older than the frame on screen is never shown
    shown = []
    playhead.frame_loaded.connect(shown.append)
    stale = loaded.args[0]
    playhead._on_loader_frame_loaded(stale)
    assert shown == [] and playhead.displayed_frame_idx == 3


def test_playhead_loop_and_speed(qtbot, playhead, clip_project):
    _project, video = clip_project
    playhead.set_media(_media(video))
    with qtbot.waitSignal(playhead.loop_changed) as looped:
        playhead.set_loop((5, 9))
    assert looped.args == [True] and playhead.looping
    with qtbot.waitSignal(playhead.speed_changed):
        playhead.change_speed(-1)
    assert playhead.speed == 0.5
    with qtbot.waitSignal(playhead.loop_changed) as unlooped:
        playhead.set_loop(None)
    assert unlooped.args == [False] and not playhead.looping


# -- the annotator ---------------------------------------------------------------------------


def test_annotator_marks_an_event_as_one_undo_step(qtbot, clip_project):
    project, video = clip_project
    frame = [4]
    annotator = Annotator(lambda: project, lambda: video, lambda: frame[0],
                          lambda: ("AU1", "AU2", "AU4"))
    statuses = []
    annotator.status_posted.connect(statuses.append)
    annotator.apply_mark(annotator.mark_step("onset"))
    frame[0] = 6
    annotator.apply_mark(annotator.mark_step("apex"))
    frame[0] = 9
    event_id = annotator.apply_mark(annotator.mark_step("offset"))
    event = project.event(event_id)
    assert (event.onset, event.apex, event.offset) == (4, 6, 9) and annotator.pending is None
    assert annotator.undo_stack.count() == 1
    assert not annotator.refresh_events() and annotator.events == [event]
    annotator.set_selected(event)
    annotator.toggle_digit("3")  # the third AU of the vocabulary
    assert project.event(event_id).aus_text == "4"
    assert annotator.move_event(event_id, 20, 22, 25)
    moved = project.event(event_id)
    assert (moved.onset, moved.apex, moved.offset) == (20, 22, 25)
    assert annotator.undo_stack.count() == 3
    annotator.undo_stack.undo()
    annotator.undo_stack.undo()
    annotator.undo_stack.undo()
    assert project.events(video.id) == []
    annotator.undo_stack.redo()
    assert project.event(event_id).onset == 4
    # a refused edit posts the reason and pushes nothing
    failures = []
    annotator.failed.connect(failures.append)
    assert not annotator.move_boundary(event_id, "onset", 50)
    assert failures and annotator.undo_stack.count() == 3


# -- the model slot --------------------------------------------------------------------------


def test_model_slot_reference_policy_and_typed_load_failure(qtbot, playhead, clip_project,
                                                            tmp_path):
    project, video = clip_project
    onset = [None]
    slot = ModelSlot(RequestIds(), "cpu", tmp_path / "weights", playhead, lambda: project,
                     lambda: onset[0])
    try:
        playhead.set_media(_media(video))
        playhead.seek(20)
        with qtbot.waitSignal(slot.reference_changed) as reference:
            slot.set_reference_policy(ReferencePolicy.FIXED, fixed_idx=999)
        assert reference.args == ["fixed", video.n_frames - 1]  # clamped to the video
        slot.set_reference_policy(ReferencePolicy.ONSET)
        assert slot.reference_idx() == reference_frame(20, ReferencePolicy.SLIDING, video.fps)
        onset[0] = 12
        assert slot.reference_idx() == 12
        # A checkpoint that cannot load is a typed ModelLoadFailed, and the slot says why no
        # model runs (no guessing from message text).
        broken = tmp_path / "weights" / "broken"
        broken.mkdir(parents=True)
        typed, unloaded = [], []
        slot.inference.worker.model_load_failed.connect(typed.append)
        slot.model_unloaded.connect(unloaded.append)
        with qtbot.waitSignal(slot.failed, timeout=60000) as failed:
            slot.select_model(ModelChoice("broken", broken, None, "weights"))
        qtbot.waitUntil(lambda: len(typed) == 1, timeout=5000)
        assert isinstance(typed[0], ModelLoadFailed)
        assert typed[0].checkpoint == broken and typed[0].message.startswith("loading model broken: ")
        assert unloaded == failed.args == [typed[0].message] and slot.model is None
    finally:
        slot.close()


DEMO = Path(__file__).resolve().parents[1] / "weights" / "demo-tiny"


@pytest.mark.skipif(not (DEMO / "card.json").is_file(), reason="demo checkpoint not built")
def test_model_slot_messages_name_frames_as_the_playhead_labels_them(qtbot, playhead, clip_project,
                                                                     tmp_path):
    """Issue 16 (D15): the inference worker names a frame it cannot predict with the labels the
    request carried from the playhead (here numbers from 100, as a folder from img100.png)."""
    project, video = clip_project
    slot = ModelSlot(RequestIds(), "cpu", tmp_path / "weights", playhead, lambda: project,
                     lambda: None)
    try:
        slot.hand_over(project)
        playhead.set_media(_media(video))
        numbers = np.arange(video.n_frames, dtype=np.int64) + 100
        playhead.frame_label = FrameLabels(Numbering.DATASET, numbers, numbers, video.fps).label
        with qtbot.waitSignal(slot.model_loaded, timeout=120000):
            slot.select_model(ModelChoice("demo-tiny", DEMO, None, "weights"))
        (video.path / "img41.png").write_bytes(b"\x89PNG broken")  # frame_idx 40
        with qtbot.waitSignal(slot.failed, timeout=60000) as failed:
            playhead.seek(40)
        assert failed.args[0].startswith("predicting frame 140: could not decode frame 40 "
                                         "(0-based)"), failed.args[0]
    finally:
        slot.hand_over(None)
        slot.close()
