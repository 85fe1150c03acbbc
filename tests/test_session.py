"""The session layer without widgets: playback clock, annotation rules, opening media, workers,
undoable edits, import in a worker, failures and shutdown. Real image files, real SQLite files,
real QThreads (pytest-qt, offscreen)."""

from __future__ import annotations

import os
import sys

import cv2
import numpy as np
import pytest
from PySide6.QtCore import QMetaObject, Qt, Signal, Slot
from gui_fixtures import annotation_tables
from test_session_fixtures import face_clip, read_frame, session, write_face_clip  # noqa: F401

from microau_gui.core.aus import AUCode, Side
from microau_gui.core.types import Sample
from microau_gui.media import open_media, write_video
from microau_gui.session import annotation
from microau_gui.session.frame_loader import READ_AHEAD_FRAMES, READ_BEHIND_FRAMES, DecodedFrames
from microau_gui.session.opening import project_path_for_media, resolve_target
from microau_gui.session.playback import SPEEDS, loop_heading_back, playback_position
from microau_gui.session.workers import BACKGROUND_NICE, GIL_SWITCH_INTERVAL_S, Worker, WorkerThread
from microau_gui.store.project import Project
from microau_gui.store.records import Boundary, Event

pytestmark = pytest.mark.qt_log_ignore(r"This plugin does not support propagateSizeHints")


# -- pure rules ------------------------------------------------------------------------------


def test_playback_clock_follows_elapsed_time_at_every_speed():
    # 200 fps at 1/32x: 6.25 frames per second of wall time.
    assert playback_position(1.0, 100, 200.0, 1 / 32, 1000) == (106, False)
    assert playback_position(0.5, 0, 200.0, 2.0, 1000) == (200, False)
    # a decoder that lags never slows time: after 2 s at 1x we are 400 frames on, whatever was shown
    assert playback_position(2.0, 0, 200.0, 1.0, 1000) == (400, False)
    assert playback_position(10.0, 0, 200.0, 1.0, 1000) == (999, True)
    assert SPEEDS[0] == 1 / 32 and SPEEDS[-1] == 2.0


def test_ping_pong_loop_bounces_inside_the_event():
    positions = [playback_position(t / 100, 10, 100.0, 1.0, 1000, loop=(10, 20))[0]
                 for t in range(0, 60)]
    assert min(positions) == 10 and max(positions) == 20
    assert positions[:11] == list(range(10, 21))  # forward ...
    assert positions[11:21] == list(range(19, 9, -1))  # ... and back
    # a start outside the loop starts at the onset
    assert playback_position(0.0, 500, 100.0, 1.0, 1000, loop=(10, 20))[0] == 10
    # re-anchored on the way back (speed change, seek), the bounce keeps going back
    assert loop_heading_back(0.15, 10, 100.0, 1.0, (10, 20))  # at 15, coming back from 20
    back = [playback_position(t / 100, 15, 100.0, 1.0, 1000, loop=(10, 20), backward=True)[0]
            for t in range(0, 8)]
    assert back == [15, 14, 13, 12, 11, 10, 11, 12]


def test_the_clock_keeps_the_loop_direction_across_a_speed_change(qtbot):
    from microau_gui.session.playback import PlaybackClock

    clock = PlaybackClock()
    clock.set_media(100.0, 1000)
    clock.set_loop((10, 20))
    frames = []
    clock.frame_reached.connect(frames.append)
    clock.play(10)
    qtbot.waitUntil(lambda: any(b < a for a, b in zip(frames, frames[1:])), timeout=5000)  # turned
    clock.set_speed(1 / 4)
    turned_at = len(frames)
    qtbot.waitUntil(lambda: len(frames) >= turned_at + 2, timeout=5000)
    clock.pause()
    after = frames[turned_at - 1:]
    assert after[1] < after[0] or after[0] == 10, after  # still heading back to the onset


def test_au_toggles_sides_and_intensity():
    aus = annotation.toggle_au((), "AU12")
    assert aus == (AUCode(12),)
    aus = annotation.with_au_side(aus, "AU12", Side.RIGHT)
    aus = annotation.with_au_intensity(aus, 12, "C")
    assert aus == (AUCode(12, side=Side.RIGHT, intensity="C"),)
    assert annotation.toggle_au(aus, "AU12") == ()
    assert annotation.digit_aus(("AU1", "AU2", "AU4"))["3"] == "AU4"


def _event(event_id, onset, offset, *numbers) -> Event:
    return Event(event_id, f"u{event_id}", 1, onset, onset, offset, tuple(AUCode(n) for n in numbers))


def test_cooccurrence_is_conditional_on_the_row_au():
    events = [_event(1, 0, 5, 4, 7), _event(2, 10, 15, 4), _event(3, 20, 25, 12)]
    cond, support = annotation.cooccurrence(events, ("AU4", "AU7", "AU12", "AU1"))
    assert support.tolist() == [2, 1, 1, 0]
    assert cond[0, 1] == pytest.approx(0.5)  # P(AU7 | AU4): one of two AU4 events
    assert cond[1, 0] == pytest.approx(1.0)  # P(AU4 | AU7)
    assert np.isnan(cond[3]).all()  # AU1 never coded


def test_next_and_previous_event_walk_by_onset():
    events = [_event(1, 0, 5), _event(2, 10, 15), _event(3, 10, 30)]
    assert annotation.neighbour_event(events, 7, 1).id == 2
    assert annotation.neighbour_event(events, 7, -1).id == 1
    assert annotation.neighbour_event(events, 0, 1, current_id=2).id == 3  # overlapping: by id
    assert annotation.neighbour_event(events, 0, 1, current_id=3) is None


# -- opening media ---------------------------------------------------------------------------


def test_bare_media_gets_a_project_beside_it_and_reuses_it(face_clip, tmp_path):
    target = resolve_target(face_clip)
    assert target.project_path == face_clip.parent / "EP01_01.maus"
    assert target.media_path == face_clip.absolute()
    video = tmp_path / "interview.mp4"
    video.write_bytes(b"not decoded here")
    assert project_path_for_media(video) == tmp_path / "interview.maus"


def test_undecodable_media_is_refused_without_leaving_a_project(qtbot, session, tmp_path):
    from microau_gui.core.errors import UserError

    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"\x00not a video" * 500)
    with pytest.raises(UserError, match="garbage.mp4"):
        resolve_target(garbage)
    with pytest.raises(UserError):
        session.open_path(garbage)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["garbage.mp4"]


def test_the_demo_opens_as_a_working_copy_and_the_bundle_stays_as_committed(tmp_path, monkeypatch):
    from microau_gui.session import opening

    bundle = tmp_path / "repo" / "assets" / "demo"
    (bundle / "sub01").mkdir(parents=True)
    (bundle / "sub01" / "img1.jpg").write_bytes(b"frame")
    with Project.create(bundle / "demo.maus"):
        pass
    committed = (bundle / "demo.maus").read_bytes()
    monkeypatch.setattr(opening, "DEMO_PROJECT", bundle / "demo.maus")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))

    copy = opening.demo_project_path()
    assert copy.parent.parent == tmp_path / "data" / "microau_studio"
    assert (copy.parent / "sub01" / "img1.jpg").read_bytes() == b"frame"  # media beside it
    with Project.open(copy) as project:  # the coder edits the demo ...
        project.add_subject("07")
    assert opening.demo_project_path() == copy  # ... and finds the edit there next time
    with Project.open(copy) as project:
        assert "07" in [s.name for s in project.subjects()]
    assert (bundle / "demo.maus").read_bytes() == committed
    assert sorted(p.name for p in bundle.iterdir()) == ["demo.maus", "sub01"]


def test_session_shows_the_exact_frame_asked_for(qtbot, session, face_clip):
    with qtbot.waitSignal(session.frame_loaded, timeout=10000):
        session.open_path(face_clip)
    assert session.displayed_frame_idx == 0
    with qtbot.waitSignal(session.frame_loaded, timeout=10000) as blocker:
        session.seek(37)
    assert blocker.args[0].frame_idx == 37
    assert np.array_equal(blocker.args[0].rgb, read_frame(face_clip, 37))
    # opening the same folder again reuses its project (one file per media)
    project_path = session.project.path
    session.open_path(face_clip)
    assert session.project.path == project_path and len(session.project.videos()) == 1


def test_stepping_forward_shows_read_ahead_frames_at_once_and_exactly(qtbot, session, face_clip):
    with qtbot.waitSignal(session.frame_loaded, timeout=10000):
        session.open_path(face_clip)
    with qtbot.waitSignal(session.frame_loaded, timeout=10000):
        session.seek(20)
    shown = []
    session.frame_loaded.connect(lambda loaded: shown.append(loaded))
    # The loader decodes the frames after the one on screen while idle ...
    qtbot.waitUntil(lambda: (session.media.video_id, 20 + READ_AHEAD_FRAMES) in session.playhead.decoded,
                    timeout=10000)
    for frame_idx in range(21, 21 + READ_AHEAD_FRAMES):
        session.seek(frame_idx)
        # ... so each step forward is on screen when seek() returns, with no decode or thread hop.
        assert session.displayed_frame_idx == frame_idx
        assert shown[-1].frame_idx == frame_idx
        assert np.array_equal(shown[-1].rgb, read_frame(face_clip, frame_idx))
    # A frame far from the playhead still comes from the loader, later.
    session.seek(55 - READ_AHEAD_FRAMES)
    assert session.displayed_frame_idx == 20 + READ_AHEAD_FRAMES
    qtbot.waitUntil(lambda: session.displayed_frame_idx == 55 - READ_AHEAD_FRAMES, timeout=10000)
    assert np.array_equal(shown[-1].rgb, read_frame(face_clip, 55 - READ_AHEAD_FRAMES))


def test_stepping_back_keeps_the_frames_behind_the_playhead_decoded(qtbot, session, face_clip, tmp_path):
    frames = [read_frame(face_clip, k) for k in range(60)]
    video = tmp_path / "steps.mp4"
    write_video(video, frames, 30.0, codec="h264", gop=30)
    with open_media(video, cache_frames=0) as original:
        expected = {k: original.read(k) for k in range(50)}
    with qtbot.waitSignal(session.frame_loaded, timeout=10000):
        session.open_path(video)
    with qtbot.waitSignal(session.frame_loaded, timeout=10000):
        session.seek(50)  # a jump: frames behind it are not decoded
    assert (session.media.video_id, 49) not in session.playhead.decoded
    with qtbot.waitSignal(session.frame_loaded, timeout=10000):
        session.seek(49)  # a step back that misses ...
    # ... brings the frames before it along, so the next steps back are drawn inside seek().
    for frame_idx in range(48, 48 - READ_BEHIND_FRAMES, -1):
        session.seek(frame_idx)
        assert session.displayed_frame_idx == frame_idx
        shown = session.playhead.decoded.get(session.media.video_id, frame_idx)[0]
        assert np.array_equal(shown, expected[frame_idx])
        qtbot.wait(1)  # key repeats are tens of ms apart; the loader may still merge some steps
    # Meanwhile the loader decoded the next chunk behind, so stepping back goes on without a wait.
    first_of_run = 48 - READ_BEHIND_FRAMES
    qtbot.waitUntil(lambda: (session.media.video_id, first_of_run) in session.playhead.decoded, timeout=10000)
    session.seek(first_of_run)
    assert session.displayed_frame_idx == first_of_run
    assert np.array_equal(session.playhead.decoded.get(session.media.video_id, first_of_run)[0],
                          expected[first_of_run])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice is Linux's")
def test_background_workers_yield_the_cpu_and_the_gil_to_the_gui(qtbot):
    class Probe(Worker):
        measured = Signal(int)

        @Slot()
        def measure(self):
            self.measured.emit(os.getpriority(os.PRIO_PROCESS, 0))  # 0: the calling thread

    nice_here = os.getpriority(os.PRIO_PROCESS, 0)
    threads = [WorkerThread(Probe(), "probe-background", background=True),
               WorkerThread(Probe(), "probe-display")]
    try:
        niceness = []  # appended on the workers' threads (a plain callable runs where it is emitted)
        for thread in threads:
            thread.worker.measured.connect(niceness.append)
            QMetaObject.invokeMethod(thread.worker, "measure", Qt.ConnectionType.QueuedConnection)
            qtbot.waitUntil(lambda: len(niceness) == threads.index(thread) + 1, timeout=5000)
    finally:
        for thread in threads:
            thread.stop()
    assert niceness == [max(nice_here, BACKGROUND_NICE), nice_here]
    assert sys.getswitchinterval() <= GIL_SWITCH_INTERVAL_S


def test_fast_scrubbing_ends_on_the_last_requested_frame(qtbot, session, face_clip):
    with qtbot.waitSignal(session.frame_loaded, timeout=10000):
        session.open_path(face_clip)
    shown = []
    session.frame_loaded.connect(lambda loaded: shown.append(loaded.frame_idx))
    rng = np.random.default_rng(0)
    targets = [int(f) for f in rng.integers(0, 60, size=100)]
    for frame_idx in targets:
        session.seek(frame_idx)
    qtbot.waitUntil(lambda: session.displayed_frame_idx == targets[-1] and shown
                    and shown[-1] == targets[-1], timeout=10000)
    qtbot.wait(200)  # nothing older may arrive after the last frame
    assert shown[-1] == targets[-1]
    assert len(shown) < len(targets)  # the loader skipped to the newest request


def test_playing_a_loop_stays_inside_the_selected_event(qtbot, session, face_clip):
    with qtbot.waitSignal(session.frame_loaded, timeout=10000):
        session.open_path(face_clip)
    event = session.project.add_event(session.video.id, 20, 24, 28)
    qtbot.waitUntil(lambda: any(e.id == event.id for e in session.events), timeout=5000)
    session.select_event(event.id)
    session.set_loop(True)
    session.set_speed(2.0)
    reached = []
    session.position_changed.connect(reached.append)
    session.play()
    qtbot.waitUntil(lambda: 28 in reached and reached[-1] < 28, timeout=10000)
    session.pause()
    assert set(reached) <= set(range(20, 29))


# -- edits and undo --------------------------------------------------------------------------


def test_marking_an_event_and_its_aus_undoes_and_redoes_exactly(qtbot, session, face_clip):
    with qtbot.waitSignal(session.frame_loaded, timeout=10000):
        session.open_path(face_clip)
    project = session.project
    before = annotation_tables(project)
    session.seek(10)
    session.mark(Boundary.ONSET)
    session.seek(14)
    session.mark(Boundary.APEX)
    session.seek(19)
    session.mark(Boundary.OFFSET)
    event = session.selected_event
    assert (event.onset, event.apex, event.offset) == (10, 14, 19)
    session.toggle_digit("9")  # AU12 in the default vocabulary
    session.toggle_digit("5")  # AU6
    session.set_au_side("AU12", Side.RIGHT)
    assert project.event(event.id).aus_text == "R12+6"
    after = annotation_tables(project)
    assert session.undo_stack.count() == 4
    assert session.undo_stack.undoText() == f"Set AUs of event {event.id} to R12+6"
    while session.undo_stack.canUndo():
        session.undo_stack.undo()
    assert annotation_tables(project) == before
    while session.undo_stack.canRedo():
        session.undo_stack.redo()
    assert annotation_tables(project) == after


def test_moving_a_whole_event_is_one_undo_step(qtbot, session, face_clip):
    with qtbot.waitSignal(session.frame_loaded, timeout=10000):
        session.open_path(face_clip)
    event = session.project.add_event(session.video.id, 10, 12, 15)
    before = annotation_tables(session.project)
    assert session.move_event(event.id, 30, 32, 35)  # onset beyond the old offset: order matters
    assert session.undo_stack.count() == 1
    assert session.undo_stack.undoText() == f"Move event {event.id}"
    moved = session.project.event(event.id)
    assert (moved.onset, moved.apex, moved.offset) == (30, 32, 35)
    session.undo_stack.undo()
    assert annotation_tables(session.project) == before


def test_an_invalid_edit_is_refused_with_a_message_and_changes_nothing(qtbot, session, face_clip):
    with qtbot.waitSignal(session.frame_loaded, timeout=10000):
        session.open_path(face_clip)
    event = session.project.add_event(session.video.id, 10, 12, 15)
    before = annotation_tables(session.project)
    with qtbot.waitSignal(session.failed, timeout=2000) as blocker:
        ok = session.move_boundary(event.id, Boundary.APEX, 40)  # apex after the offset
    assert not ok and "apex" in blocker.args[0]
    assert annotation_tables(session.project) == before and session.undo_stack.count() == 0


def test_edits_are_on_disk_when_the_call_returns(qtbot, session, face_clip):
    with qtbot.waitSignal(session.frame_loaded, timeout=10000):
        session.open_path(face_clip)
    session.seek(5)
    session.mark("onset")
    session.seek(9)
    session.mark("offset")
    with Project.open(session.project.path) as other:  # a second connection sees it at once
        [stored] = other.events()
        assert (stored.onset, stored.apex, stored.offset) == (5, 7, 9)


# -- workers: failures, import, shutdown -----------------------------------------------------


def test_a_frame_that_cannot_be_decoded_is_reported_and_the_session_carries_on(qtbot, session,
                                                                              face_clip):
    with qtbot.waitSignal(session.frame_loaded, timeout=10000):
        session.open_path(face_clip)
    (face_clip / "img31.png").write_bytes(b"\x89PNG broken")  # frame_idx 30
    with qtbot.waitSignal(session.failed, timeout=10000) as blocker:
        session.seek(30)
    assert "frame 30" in blocker.args[0]
    with qtbot.waitSignal(session.frame_loaded, timeout=10000) as loaded:
        session.seek(31)
    assert loaded.args[0].frame_idx == 31
    assert all(t.running for t in session.threads)


def test_worker_messages_name_frames_in_the_numbering_the_user_chose(qtbot, session, tmp_path,
                                                                     astronaut_path):
    """Issue 16 (D15): a folder numbered from img100.png, so its dataset numbers are not its
    0-based indices. The loader's message names the frame as the coder sees it, in the numbering
    chosen when the frame was asked for; the media's own sentence says it counts from 0."""
    rgb = cv2.cvtColor(cv2.imread(str(astronaut_path)), cv2.COLOR_BGR2RGB)
    clip = write_face_clip(tmp_path / "clips" / "EP02_01", rgb, n_frames=20, first_number=100)
    with qtbot.waitSignal(session.frame_loaded, timeout=10000):
        session.open_path(clip)
    assert session.frames.label(15) == "115"  # dataset numbers, the default
    (clip / "img115.png").write_bytes(b"\x89PNG broken")  # frame_idx 15: past the read-ahead
    with qtbot.waitSignal(session.failed, timeout=10000) as blocker:
        session.seek(15)
    assert blocker.args[0].startswith("loading frame 115: could not decode frame 15 (0-based) "
                                      "of EP02_01 (img115.png)"), blocker.args[0]
    session.numbering.set_numbering("index")
    with qtbot.waitSignal(session.failed, timeout=10000) as blocker:
        session.seek(15)
    assert blocker.args[0].startswith("loading frame 15: could not decode frame 15 (0-based)"), \
        blocker.args[0]


def test_a_dataset_imports_in_a_worker_and_opens(qtbot, session, tmp_path, astronaut_path):
    from microau_gui.store.importers import write_casme2_sheet

    rgb = cv2.cvtColor(cv2.imread(str(astronaut_path)), cv2.COLOR_BGR2RGB)
    root = tmp_path / "CASME2"
    samples = []
    for subject, clip in (("01", "EP01_01"), ("02", "EP03_02")):
        folder = write_face_clip(root / f"sub{subject}" / clip, rgb, n_frames=30, first_number=46)
        samples.append(Sample(subject, clip, folder, 3, 8, 20, (AUCode(4), AUCode(7)),
                              emotion="disgust", onset_number=49, apex_number=54,
                              offset_number=66))
    sheet = write_casme2_sheet(samples, tmp_path / "coding.xlsx")
    progress = []
    session.import_progressed.connect(progress.append)
    with qtbot.waitSignal(session.import_finished, timeout=30000) as blocker:
        session.import_dataset("casme2", sheet, root, tmp_path / "casme2.maus", fps=200.0)
    assert not blocker.args[0].cancelled, blocker.args[0].summary
    qtbot.waitUntil(lambda: session.project is not None and session.video is not None, timeout=5000)
    events = session.project.events()
    assert len(events) == 2 and {e.aus_text for e in events} == {"4+7"}
    assert {v.fps for v in session.project.videos()} == {200.0}
    assert progress and progress[-1].n_done == progress[-1].n_total == 2
    assert session.importing.threads == []  # the import thread was joined


def test_closing_joins_every_thread(qtbot, face_clip):
    from microau_gui.session.session import ProjectSession

    created = ProjectSession(device="cpu")
    with qtbot.waitSignal(created.frame_loaded, timeout=10000):
        created.open_path(face_clip)
    threads = [t.thread for t in created.threads]
    assert all(t.isRunning() for t in threads)
    created.close()
    assert not any(t.isRunning() for t in threads)
    assert created.project is None


def test_decoded_frames_stay_within_their_frame_and_byte_bounds():
    frames = DecodedFrames(capacity=5, max_bytes=3 * 100 * 100 * 3)
    rgb = np.zeros((100, 100, 3), np.uint8)
    for frame_idx in range(4):
        frames.put(1, frame_idx, rgb.copy(), frame_idx / 30)
    assert [(1, k) in frames for k in range(4)] == [False, True, True, True]  # bytes bound
    assert frames.n_bytes == 3 * rgb.nbytes
    frames.get(1, 1)  # recently used: kept over frame 2
    frames.put(1, 9, rgb.copy(), 0.3)
    assert (1, 1) in frames and (1, 2) not in frames and frames.get(1, 9)[1] == 0.3
    small = DecodedFrames(capacity=2)
    for frame_idx in range(3):
        small.put(7, frame_idx, rgb[:1].copy(), 0.0)
    assert [(7, k) in small for k in range(3)] == [False, True, True]  # frame-count bound
