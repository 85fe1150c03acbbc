"""The one analysis pipeline: a frame's row does not depend on where a run starts, how it is
batched, whether it was resumed, or which front end (CLI or GUI worker) ran it.

Real synthetic H.264 video (synth --long), real MediaPipe, a real tiny checkpoint in fp32, real
SQLite projects, the real session and inference worker on real QThreads (offscreen).

Tolerances: both sides of every comparison run on the same CPU; only the batch composition
differs, which moves fp32 results by float rounding (~1e-7). 1e-4 on probabilities is far above
that and far below the differences start-dependent landmarks made (up to 0.81). Cached rows hold
probabilities as float16 (`store.predictions`), hence one float16 step (5e-4 on [0, 1]) there.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_inference_fixtures import save_tiny_checkpoint
from test_session_fixtures import session  # noqa: F401

from microau_gui.cli import main
from microau_gui.face.landmarks import FaceMesh
from microau_gui.inference.analysis import AnalysisOptions, ProjectCache
from microau_gui.inference.pipeline import AnalysisPipeline, landmarked_frames
from microau_gui.inference.predictor import Predictor
from microau_gui.media import open_media
from microau_gui.store.project import Project
from microau_gui.core.progress import Cancelled

pytestmark = pytest.mark.qt_log_ignore(r"This plugin does not support propagateSizeHints")

N_FRAMES = 30
FP32_ATOL = 1e-4
FLOAT16_ATOL = 5e-4


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    from microau_gui.synth import generate_long_videos

    out = tmp_path_factory.mktemp("long") / "long_ds"
    return generate_long_videos(out, videos=1, seconds=N_FRAMES / 30.0, seed=11).videos[0]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return save_tiny_checkpoint(tmp_path_factory.mktemp("weights") / "flow-tiny", "flow", seed=3)


@pytest.fixture(scope="module")
def predictor(checkpoint):
    with Predictor.from_checkpoint(checkpoint, device="cpu", speed_mode="fp32") as loaded:
        yield loaded


def rows(source, predictor, background: bool = True, **options) -> dict[int, object]:
    with AnalysisPipeline(source, predictor, AnalysisOptions(**options), background=background) as pipeline:
        return {p.frame_idx: p for batch in pipeline for p in batch.predictions}


def assert_same_rows(got: dict, expected: dict, atol: float) -> None:
    assert got, "no rows"
    for frame_idx, row in got.items():
        want = expected[frame_idx]
        assert (row.reference_idx, row.face_found) == (want.reference_idx, want.face_found), frame_idx
        assert np.abs(row.probs - want.probs).max() <= atol, \
            f"frame {frame_idx}: max |delta p| {np.abs(row.probs - want.probs).max():.4f}"
        assert np.abs(row.landmarks_img - want.landmarks_img).max() < 0.05, frame_idx


def test_a_ranged_a_rebatched_and_a_resumed_run_equal_the_full_run(video, predictor, tmp_path):
    with open_media(video) as source:
        full = rows(source, predictor, batch_size=8)
        assert sorted(full) == list(range(N_FRAMES)) and all(r.face_found for r in full.values())
        # Started mid-video: tracking landmarks made this differ by up to 0.81 (issue #15 D9).
        assert_same_rows(rows(source, predictor, start=17, batch_size=3), full, FP32_ATOL)
        assert_same_rows(rows(source, predictor, start=7, every=4, batch_size=5), full, FP32_ATOL)

        with Project.open_or_create(tmp_path / "p.maus") as project:
            video_row = project.add_video(video, source)
            version = project.models.add(predictor.model_version, predictor.checkpoint, predictor.vocab)
            cache = ProjectCache(project, video_row.id, version.id, predictor.numerics)
            done = [0]
            with pytest.raises(Cancelled):
                with AnalysisPipeline(source, predictor, AnalysisOptions(batch_size=4), cache=cache,
                                      should_cancel=lambda: done[0] >= 12) as first:
                    for batch in first:
                        done[0] = batch.n_done
            committed = project.predictions.frames(video_row.id, version.id).tolist()
            assert committed == list(range(12)), "a cancelled run commits what it finished"

            cache = ProjectCache(project, video_row.id, version.id, predictor.numerics)
            with AnalysisPipeline(source, predictor, AnalysisOptions(batch_size=6), cache=cache) as resumed:
                resumed_rows = {p.frame_idx: p for batch in resumed for p in batch.predictions}
            assert resumed.n_from_cache == 12
            assert_same_rows({f: r for f, r in resumed_rows.items() if f >= 12}, full, FP32_ATOL)
            assert_same_rows({f: r for f, r in resumed_rows.items() if f < 12}, full, FLOAT16_ATOL)


def test_an_analysis_never_takes_rows_another_speed_modes_arithmetic_cached(video, predictor, checkpoint,
                                                                          tmp_path):
    """Issue #15 D9's risk: two machines whose start-up races chose int8 and fp32 cached rows up
    to the 0.02 parity tolerance apart under one model version, and each served the other's."""
    def run(source, project, video_id, version_id, runner, **options):
        cache = ProjectCache(project, video_id, version_id, runner.numerics)
        with AnalysisPipeline(source, runner, AnalysisOptions(**options), cache=cache) as pipeline:
            got = {p.frame_idx: p for batch in pipeline for p in batch.predictions}
        return got, pipeline.n_from_cache

    with Predictor.from_checkpoint(checkpoint, device="cpu", speed_mode="int8") as int8, \
            open_media(video) as source, Project.open_or_create(tmp_path / "p.maus") as project:
        assert (int8.numerics, predictor.numerics) == ("int8", "fp32")
        video_id = project.add_video(video, source).id
        version_id = project.models.add(predictor.model_version, predictor.checkpoint, predictor.vocab).id
        approximate, _ = run(source, project, video_id, version_id, int8, stop=12, batch_size=4)
        full = rows(source, predictor, batch_size=8)
        # the int8 rows really differ from fp32's (by more than the cache's float16 step)
        assert max(np.abs(approximate[f].probs - full[f].probs).max() for f in approximate) > FLOAT16_ATOL

        exact, from_cache = run(source, project, video_id, version_id, predictor, batch_size=8)
        assert from_cache == 0, "the fp32 run took the int8 machine's rows"
        assert_same_rows(exact, full, FP32_ATOL)
        again, from_cache = run(source, project, video_id, version_id, predictor, batch_size=5)
        assert from_cache == N_FRAMES  # its own class is served
        assert_same_rows(again, full, FLOAT16_ATOL)
        _, from_cache = run(source, project, video_id, version_id, int8, stop=12, batch_size=4)
        assert from_cache == 0, "the int8 run took fp32 rows: one run would mix two classes"
        assert project.predictions.frames(video_id, version_id, "int8").tolist() == list(range(12))
        assert project.predictions.frames(video_id, version_id, "fp32").tolist() == list(range(12, N_FRAMES))


@pytest.mark.parametrize("landmark_process", [False, True], ids=["landmarks-thread", "landmarks-process"])
def test_the_pipelined_analysis_gives_exactly_the_sequential_rows(video, predictor, landmark_process):
    """Decoding, landmarks, pair preparation and the model on four threads (background=True),
    with MediaPipe on a thread or in its child process (#18: it holds the GIL), against all of
    it on this one: the same rows, bit for bit, in the same order."""
    import threading

    with open_media(video) as source:
        sequential = rows(source, predictor, batch_size=4, background=False)
        names = set()
        real_prepare = predictor.prepare_batch

        def prepare_batch(pairs):
            names.add(threading.current_thread().name)
            return real_prepare(pairs)

        predictor.prepare_batch = prepare_batch
        try:
            with AnalysisPipeline(source, predictor, AnalysisOptions(batch_size=4), background=True,
                                  landmark_process=landmark_process) as run:
                assert (run._landmark_worker is not None) == landmark_process
                in_order = [p for batch in run for p in batch.predictions]
        finally:
            del predictor.prepare_batch
    assert names and all(name.startswith("pair-prep") for name in names), names  # its own thread
    assert [p.frame_idx for p in in_order] == sorted(sequential) == list(range(N_FRAMES))
    pipelined = {p.frame_idx: p for p in in_order}
    for frame_idx, row in sequential.items():
        got = pipelined[frame_idx]
        assert (got.reference_idx, got.face_found) == (row.reference_idx, row.face_found)
        np.testing.assert_array_equal(got.probs, row.probs)
        np.testing.assert_array_equal(got.pta_grid, row.pta_grid)
        np.testing.assert_array_equal(got.landmarks_img, row.landmarks_img)


def test_landmarks_are_static_per_frame_in_the_producer_thread_the_child_process_and_inline(video):
    from microau_gui.face.landmark_process import LandmarkProcess

    with open_media(video) as source, FaceMesh(static=True) as mesh, LandmarkProcess(slots=3) as worker:
        expected = {idx: mesh.detect(rgb) for idx, rgb in source.iter_frames(0, 12)}
        for background, child in ((True, None), (False, None), (True, worker)):
            produced = list(landmarked_frames(source.iter_frames(0, 12), needs=lambda idx: idx % 3 != 1,
                                              background=background, worker=child))
            assert [f.frame_idx for f in produced] == list(range(12))
            for frame in produced:
                if frame.frame_idx % 3 == 1:
                    assert frame.landmarks is None  # not asked for
                else:
                    np.testing.assert_array_equal(frame.landmarks.xy_img, expected[frame.frame_idx].xy_img)


def test_a_producer_error_reaches_the_consumer(video):
    def broken():
        with open_media(video) as source:
            for frame_idx, rgb in source.iter_frames(0, 8):
                if frame_idx == 4:
                    raise ValueError("frame 4 is corrupt")
                yield frame_idx, rgb

    seen = []
    with pytest.raises(ValueError, match="frame 4 is corrupt"):
        for frame in landmarked_frames(broken()):
            seen.append(frame.frame_idx)
    assert seen == [0, 1, 2, 3]


def test_a_killed_landmark_process_is_one_line_and_nothing_hangs(video):
    """The child dies (killed, out of memory) with frames in flight: the consumer gets the
    one-line UserError, not a hang or a pickling traceback."""
    from microau_gui.core.errors import UserError
    from microau_gui.face.landmark_process import LandmarkProcess

    seen = []
    with open_media(video) as source, LandmarkProcess(slots=2) as worker:
        with pytest.raises(UserError, match="face-landmark process ended unexpectedly"):
            for frame in landmarked_frames(source.iter_frames(0, 12), worker=worker):
                seen.append(frame.frame_idx)
                if frame.frame_idx == 2:
                    worker._child.kill()
    assert seen[:3] == [0, 1, 2] and len(seen) < 12


def test_no_room_for_the_landmark_ring_is_one_line(video, monkeypatch):
    """/dev/shm missing or full (containers often cap it): a one-line UserError naming it, not an
    OSError traceback from the producer thread."""
    import microau_gui.face.landmark_process as lp
    from microau_gui.core.errors import UserError

    def no_room(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(lp, "SharedMemory", no_room)
    with open_media(video) as source, lp.LandmarkProcess(slots=2) as worker:
        with pytest.raises(UserError, match="no shared memory.*No space left on device"):
            list(landmarked_frames(source.iter_frames(0, 4), worker=worker))


def cached_rows(project_path: Path, video: Path, version_name: str) -> dict[int, object]:
    with Project.open(project_path) as project:
        video_id = project.video_by_path(video).id
        version = next(v for v in project.models.list() if v.name == version_name)
        return {int(f): project.predictions.get(video_id, version.id, int(f))
                for f in project.predictions.frames(video_id, version.id)}


def test_the_cli_and_the_gui_worker_cache_the_same_rows(video, checkpoint, tmp_path, qtbot, session,
                                                         monkeypatch):
    # The worker loads models in "auto" speed mode, which races fp32 against faster modes; pin
    # fp32 so both front ends run the same arithmetic (the CLI below asks for it too).
    load = Predictor.from_checkpoint.__func__
    monkeypatch.setattr(Predictor, "from_checkpoint",
                        classmethod(lambda cls, path, device="auto", speed_mode="auto", **kw:
                                    load(cls, path, device=device, speed_mode="fp32", **kw)))
    cli_project = tmp_path / "cli.maus"
    assert main(["analyze", str(video), "--project", str(cli_project), "--model", str(checkpoint),
                 "--speed", "fp32", "--batch", "5", "--no-progress", "--out", str(tmp_path / "a.csv")]) == 0

    gui_project = tmp_path / "gui.maus"
    with Project.open_or_create(gui_project) as project, open_media(video) as source:
        project.add_video(video, source)
        with Predictor.from_checkpoint(checkpoint, device="cpu") as loaded:
            project.models.add(loaded.card.name, checkpoint, loaded.vocab, activate=True)
    with qtbot.waitSignal(session.model_loaded, timeout=120000):
        session.open_path(gui_project)
    with qtbot.waitSignal(session.analysis_finished, timeout=300000) as finished:
        session.analyze_video()
    assert not finished.args[0].cancelled

    cli = cached_rows(cli_project, video, "flow-tiny")
    gui = cached_rows(gui_project, video, "flow-tiny")
    assert sorted(cli) == sorted(gui) == list(range(N_FRAMES))
    for frame_idx in cli:
        a, b = cli[frame_idx], gui[frame_idx]
        assert (a.reference_idx, a.face_found) == (b.reference_idx, b.face_found), frame_idx
        assert np.abs(a.probs - b.probs).max() <= FLOAT16_ATOL, frame_idx
        assert np.abs(a.landmarks_img - b.landmarks_img).max() < 0.05, frame_idx
        np.testing.assert_allclose(a.crop_to_img, b.crop_to_img, atol=1e-3)
