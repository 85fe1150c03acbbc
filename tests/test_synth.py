"""The synthetic micro-expression generator: realism of the motion, the CASME II round trip,
identities and sessions, determinism, long videos with MEGC ground truth, and the `synth` CLI.

Everything is real: MediaPipe on the rendered frames, OpenCV Farneback flow through face.motion,
JPEG files written by media.write_image_sequence, H.264 videos read back by media.open_media,
coding sheets read back by the real importers.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from itertools import islice
from pathlib import Path

import numpy as np
import pytest

from microau_gui.core.au import DEFAULT_VOCAB, MODEL_AUS
from microau_gui.core.aus import Side
from microau_gui.face.align import eye_centres
from microau_gui.face.landmarks import FaceMesh, load_rgb
from microau_gui.face.regions import au_polygons
from microau_gui.media import frame_index, open_media, write_image_sequence
from microau_gui.store.importers import import_dataset
from microau_gui.synth.au_motion import mirror_landmark, used_landmarks
from microau_gui.synth.clips import ClipConfig, generate_clips, plan_clips, render_clip
from microau_gui.synth.combos import parse_combination
from microau_gui.synth.faces import PHOTOS, PlateMaker
from microau_gui.synth.long_video import LongConfig, generate_long_videos
from microau_gui.synth.measure import measure_motion

VOCAB = tuple(DEFAULT_VOCAB) + ("AU20",)
# Every AU the application knows: an AU outside the model's vocabulary (AU20) must still out-move
# all of these, or its motion would be indistinguishable from its neighbours' (AU14, AU15).
CATALOGUE_VOCAB = tuple(f"AU{number}" for number in sorted(MODEL_AUS))
# A fixed mid-range amplitude keeps the realism checks deterministic in strength.
REALISM = ClipConfig(amplitude_px=(2.0, 2.0), blink_prob=0.0, unilateral_prob=0.0)


@pytest.fixture(scope="module")
def maker():
    with PlateMaker() as plate_maker:
        yield plate_maker


@pytest.fixture(scope="module")
def mesh():
    with FaceMesh(static=True) as face_mesh:
        yield face_mesh


def _onset_apex(spec, config, maker, folder: Path):
    """Render up to the apex, write onset and apex as the clip's JPEGs, read them back."""
    frames = list(islice(render_clip(spec, config, maker), spec.apex + 1))
    paths = write_image_sequence(folder / spec.clip, [frames[spec.onset], frames[spec.apex]],
                                 quality=spec.jpeg_quality)
    return load_rgb(paths[0]), load_rgb(paths[1])


def _clip_motion(maker, mesh, tmp_path, subject_idx: int, combo: str, config=REALISM, clip_idx=0):
    specs = plan_clips(3, clip_idx + 1, config, seed=3, combinations=[parse_combination(combo)])
    spec = [s for s in specs if s.subject_idx == subject_idx][clip_idx]
    onset, apex = _onset_apex(spec, config, maker, tmp_path)
    face = mesh.detect(onset)
    assert face.found
    return spec, measure_motion(onset, apex, face.xy_img, CATALOGUE_VOCAB)


@pytest.mark.parametrize("subject_idx, combo", [
    (0, "12"), (0, "1+2"), (0, "4+7"),
    (1, "4"), (1, "15+17"), (1, "12"),
    (2, "6+12"), (2, "9"), (2, "14"),
    (0, "5"), (1, "10"), (2, "20"), (0, "4+7+10"),
])
def test_flow_concentrates_in_the_labelled_regions_at_micro_size(maker, mesh, tmp_path,
                                                                  subject_idx, combo):
    spec, motion = _clip_motion(maker, mesh, tmp_path, subject_idx, combo)
    labelled = [f"AU{code.number}" for code in spec.aus]
    assert motion.concentration(labelled) >= 3.0
    assert 0.3 <= motion.peak_px(labelled) <= 4.0
    # Of the model's AUs, the region that moves most is a labelled one: AUs differ by place.
    # An AU outside the model's vocabulary competes with the whole catalogue instead.
    rivals = DEFAULT_VOCAB if set(labelled) <= set(DEFAULT_VOCAB) else CATALOGUE_VOCAB
    busiest = max(rivals, key=lambda code: motion.region_mean_px[code])
    assert busiest in labelled


@pytest.mark.parametrize("subject_idx", [0, 1, 2])
def test_a_clip_without_au_shows_no_concentrated_motion(maker, mesh, tmp_path, subject_idx):
    _, motion = _clip_motion(maker, mesh, tmp_path, subject_idx, "none")
    assert max(motion.concentration([code]) for code in VOCAB) < 2.0
    assert motion.peak_px() < 0.5


@pytest.mark.parametrize("combo, out_sign, up_sign", [("12", 1, 1), ("4", -1, -1)])
def test_au_direction_is_anatomical_in_the_photo_and_its_mirror(maker, mesh, tmp_path, combo,
                                                                out_sign, up_sign):
    for clip_idx in (0, 1):  # session 1 (the photo) and session 2 (its mirror)
        spec, motion = _clip_motion(maker, mesh, tmp_path / str(clip_idx), 0, combo,
                                    clip_idx=clip_idx)
        assert spec.look.mirror == (clip_idx == 1)
        polygons = au_polygons(f"AU{spec.aus[0].number}", motion.xy_crop)
        for side, lateral in (("R", -1.0), ("L", 1.0)):  # subject's right half is image left
            u, v = motion.mean_flow_px(polygons[side])
            assert np.sign(u * lateral) == out_sign, (side, u, v)
            assert np.sign(-v) == up_sign, (side, u, v)


def test_amplitude_sets_the_size_of_the_measured_motion(maker, mesh, tmp_path):
    peaks = []
    for amplitude in (0.6, 2.8):
        config = ClipConfig(amplitude_px=(amplitude, amplitude), blink_prob=0.0)
        spec, motion = _clip_motion(maker, mesh, tmp_path / str(amplitude), 2, "15", config)
        peaks.append(motion.peak_px(["AU15"]))
    assert 0.3 <= peaks[0] < peaks[1] <= 4.0
    assert peaks[1] > 2.5 * peaks[0]


def test_synth_then_import_casme2_recovers_every_label(tmp_path):
    config = ClipConfig(unilateral_prob=0.5, blink_prob=0.5)
    result = generate_clips(tmp_path / "ds", subjects=3, clips_per_subject=5, size=96, seed=11,
                            config=config)
    assert not result.cancelled and len(result.clips) == 15
    dataset = import_dataset("casme2", result.sheet, tmp_path / "ds")
    assert not dataset.report.issues
    imported = {(s.subject, s.clip): s for s in dataset.samples}
    assert len(imported) == 15
    for spec in result.clips:
        got = imported[(spec.subject, spec.clip)]
        assert got.media_path.resolve() == (tmp_path / "ds" / f"sub{spec.subject}" / spec.clip).resolve()
        assert (got.onset, got.apex, got.offset) == (spec.onset, spec.apex, spec.offset)
        assert (got.onset_number, got.apex_number, got.offset_number) == (
            spec.first_number + spec.onset, spec.first_number + spec.apex,
            spec.first_number + spec.offset)
        assert got.aus == spec.aus
        assert got.emotion == spec.combination.emotion
        assert got.objective_class == spec.combination.objective_class
        images = sorted(got.media_path.glob("img*.jpg"))
        assert len(images) == spec.n_frames
        assert (got.media_path / f"img{spec.first_number}.jpg").exists()
    # The round trip covered one-sided codes and clips with an (uncoded) blink.
    assert any(code.side is not Side.BOTH for spec in result.clips for code in spec.aus)
    assert any(spec.blink is not None for spec in result.clips)
    assert any(spec.first_number != 1 for spec in result.clips)


def test_each_photo_is_one_subject_and_its_sessions_stay_that_subject(tmp_path):
    specs = plan_clips(3, 8, seed=2)
    for subject_idx, photo in enumerate(PHOTOS):
        mine = [s for s in specs if s.subject_idx == subject_idx]
        assert {s.subject for s in mine} == {photo.subject}
        assert {s.photo.name for s in mine} == {photo.name}
        assert {s.look.mirror for s in mine} == {False, True}
        assert len({s.look.session for s in mine}) == 4
    # A mirrored session shows the subject's own face mirrored, not another face.
    result = generate_clips(tmp_path / "ds", subjects=1, clips_per_subject=2, size=96, seed=2,
                            config=ClipConfig(blink_prob=0.0))
    first = [load_rgb(sorted((result.root / "sub01" / s.clip).glob("*.jpg"))[0]).astype(float)
             for s in result.clips]
    assert [s.look.mirror for s in result.clips] == [False, True]
    mirrored_back = first[1][:, ::-1]
    assert np.abs(mirrored_back - first[0]).mean() < 0.5 * np.abs(first[1] - first[0]).mean()


def _tree_digest(root: Path) -> dict:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*.jpg"))}


def test_the_same_seed_gives_identical_clips_and_another_seed_does_not(tmp_path):
    runs = {}
    for name, seed in (("a", 4), ("b", 4), ("c", 5)):
        result = generate_clips(tmp_path / name, subjects=1, clips_per_subject=2, size=64, seed=seed)
        runs[name] = (_tree_digest(result.root), [(s.aus, s.onset, s.apex) for s in result.clips])
    assert runs["a"] == runs["b"]
    assert runs["a"][0] and runs["a"] != runs["c"]


def _run_cli(*args):
    return subprocess.run([sys.executable, "main.py", *args], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[1], timeout=300)


def test_cli_refuses_more_subjects_than_photos_with_one_line(tmp_path):
    out = _run_cli("synth", "--out", str(tmp_path / "ds"), "--subjects", "4")
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "3" in lines[0]
    assert "Traceback" not in out.stderr
    assert not (tmp_path / "ds").exists()


def test_cli_writes_clips_that_import_cleanly_and_refuses_to_overwrite(tmp_path):
    out_dir = tmp_path / "demo_ds"
    out = _run_cli("synth", "--out", str(out_dir), "--subjects", "2", "--clips-per-subject", "2",
                   "--size", "64", "--combos", "12,4+7,none")
    assert out.returncode == 0, out.stderr
    assert "wrote 4 clips" in out.stdout
    report = _run_cli("import", "casme2", str(out_dir / "coding.xlsx"), str(out_dir), "--report")
    assert report.returncode == 0, report.stderr
    assert "4 samples" in report.stdout
    again = _run_cli("synth", "--out", str(out_dir))
    assert again.returncode == 2 and "already holds" in again.stderr
    bad = _run_cli("synth", "--out", str(tmp_path / "x"), "--combos", "12+99")
    assert bad.returncode == 2 and bad.stderr.startswith("error:")


def test_mirror_table_of_the_motion_models_matches_mirrored_detections(mesh):
    for photo in (PHOTOS[0], PHOTOS[2]):  # the frontal faces
        rgb = load_rgb(photo.path)
        xy = mesh.detect(rgb).xy_img
        flipped = mesh.detect(np.ascontiguousarray(rgb[:, ::-1])).xy_img.copy()
        flipped[:, 0] = rgb.shape[1] - flipped[:, 0]
        iod = np.linalg.norm(np.diff(eye_centres(xy), axis=0))
        errors = [np.linalg.norm(xy[i] - flipped[mirror_landmark(i)]) / iod for i in used_landmarks()]
        assert np.median(errors) < 0.06 and max(errors) < 0.2


def _eye_change(video, mesh, first: int, second: int) -> float:
    """Mean absolute grey change inside both eye openings between two frames."""
    import cv2

    reference = video.read(first)
    mask = np.zeros(reference.shape[:2], np.uint8)
    for polygon in au_polygons("AU43", mesh.detect(reference).xy_img).values():
        cv2.fillPoly(mask, [np.round(polygon).astype(np.int32)], 1)
    change = np.abs(video.read(second).astype(float) - reference.astype(float)).mean(axis=2)
    return float(change[mask > 0].mean())


def test_long_video_matches_its_ground_truth_and_never_lists_a_blink(tmp_path, mesh):
    # A small frame keeps the test quick; the default is 640x480 with a 230 px face.
    config = LongConfig(frame_wh=(320, 240), micro_per_min=15, macro_per_min=10,
                        blinks_per_min=15)
    result = generate_long_videos(tmp_path / "lv", videos=1, seconds=12, fps=30, face_px=110,
                                  seed=1, config=config)
    assert len(result.videos) == 1
    kinds = {s.expression_type for s in result.samples}
    assert kinds == {"micro", "macro"} and result.blinks
    with open_media(result.videos[0]) as video:
        assert video.n_frames == 360 and video.fps == pytest.approx(30.0)
        assert video.size == (320, 240)
        n_frames = video.n_frames
        # The blinks really happen (the lids sweep over the eyes); they are just not expressions.
        _, onset, offset = result.blinks[0]
        apex = onset + max(1, round((offset - onset) * 0.35))
        quiet = max(0, onset - 4)
        assert _eye_change(video, mesh, onset, apex) > 3 * _eye_change(video, mesh, quiet, onset)

    truth = import_dataset("megc", result.sheet, tmp_path / "lv", frame_index=frame_index)
    assert not truth.report.issues
    assert sorted((s.onset, s.apex, s.offset, s.expression_type, s.aus) for s in truth.samples) == \
        sorted((s.onset, s.apex, s.offset, s.expression_type, s.aus) for s in result.samples)
    for sample in truth.samples:
        assert 0 <= sample.onset < sample.apex <= sample.offset < n_frames
        seconds = (sample.offset - sample.onset) / 30.0
        assert seconds <= 0.5 if sample.expression_type == "micro" else seconds > 0.5
        for _, blink_onset, blink_offset in result.blinks:
            assert sample.offset < blink_onset or blink_offset < sample.onset


def test_cancel_keeps_a_consistent_dataset_of_the_finished_clips(tmp_path):
    seen = []
    result = generate_clips(tmp_path / "ds", subjects=2, clips_per_subject=2, size=64, seed=1,
                            progress=lambda done, total: seen.append((done, total)),
                            should_cancel=lambda: len(seen) >= 2)
    assert result.cancelled and len(result.clips) == 2 and seen == [(1, 4), (2, 4)]
    dataset = import_dataset("casme2", result.sheet, tmp_path / "ds")
    assert len(dataset.samples) == 2 and not dataset.report.issues
    folders = sorted(p.relative_to(result.root).as_posix() for p in result.root.glob("sub*/*"))
    assert folders == sorted(f"sub{s.subject}/{s.clip}" for s in result.clips)
