"""`python main.py analyze`: rows per requested frame equal to the model called directly, the JSON
sidecar, faceless frames, the project cache, and one-line errors for bad input.

Real synthetic long video (synth --long), real MediaPipe, a real tiny checkpoint, real SQLite.
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_inference_fixtures import direct_probs, read_rgb, save_tiny_checkpoint

from microau_gui.cli import main
from microau_gui.face.landmarks import FaceMesh
from microau_gui.inference.reference import sliding_offset_frames
from microau_gui.media import open_media, write_video
from microau_gui.model.checkpoint import WEIGHTS_NAME, load_checkpoint
from microau_gui.store.project import Project

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def long_video(tmp_path_factory) -> Path:
    from microau_gui.synth import generate_long_videos

    out = tmp_path_factory.mktemp("long") / "long_ds"
    return generate_long_videos(out, videos=1, seconds=4.0, seed=5).videos[0]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return save_tiny_checkpoint(tmp_path_factory.mktemp("weights") / "flow-tiny", "flow", seed=2)


def read_csv(path: Path) -> tuple[list[str], list[dict]]:
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames), list(reader)


def analyze(*args) -> int:
    """`python main.py analyze ARGS` in this process (fp32, so results are exact); returns the
    exit code."""
    return main(["analyze", *map(str, args), "--speed", "fp32", "--no-progress"])


def test_rows_per_requested_frame_equal_the_model_called_directly(long_video, checkpoint, tmp_path):
    out = tmp_path / "a.csv"
    assert analyze(long_video, "--model", checkpoint, "--every", 3, "--range", "10:70",
                   "--batch", 4, "--out", out) == 0
    columns, rows = read_csv(out)
    model, card = load_checkpoint(checkpoint)
    assert columns == ["frame_idx", "t_s", "face_found", *card.vocab]
    frames = [int(r["frame_idx"]) for r in rows]
    assert frames == list(range(10, 70, 3))
    assert all(r["face_found"] == "1" for r in rows)

    with open_media(long_video) as source:
        assert [float(r["t_s"]) for r in rows] == pytest.approx([f / source.fps for f in frames], abs=1e-5)
        lag = sliding_offset_frames(source.fps)
        references = {f: max(0, f - lag) for f in frames}
        # Each reference's own static-mode landmarks, as analysis takes them.
        with FaceMesh(static=True) as mesh:
            landmarks = {idx: mesh.detect(source.read(idx)) for idx in set(references.values())}
        for row, frame_idx in zip(rows, frames):
            ref = references[frame_idx]
            expected = direct_probs(model, source.read(ref), source.read(frame_idx), landmarks[ref].xy_img)
            got = np.array([float(row[code]) for code in card.vocab])
            assert np.allclose(got, expected, atol=2e-6), f"frame {frame_idx}"

    sidecar = json.loads(Path(f"{out}.json").read_text())
    assert sidecar["columns"] == columns
    assert sidecar["model"]["version"] == card.version and sidecar["model"]["card"]["name"] == "flow-tiny"
    assert sidecar["model"]["card"]["vocab"] == list(card.vocab)
    assert sidecar["media"]["n_frames"] == 120 and sidecar["media"]["fps"] == pytest.approx(30.0)
    assert sidecar["options"]["every"] == 3 and sidecar["options"]["range"] == [10, 70]
    assert sidecar["options"]["reference"] == "sliding"
    assert sidecar["result"]["n_rows"] == len(rows) == sidecar["result"]["n_face"]


def test_a_frame_without_a_face_is_a_row_with_face_found_0(checkpoint, astronaut_path, tmp_path):
    face = read_rgb(astronaut_path)[0:320, 96:416]  # 320 x 320 around the head
    grey = np.full_like(face, 120)
    video = tmp_path / "gone.mp4"
    write_video(video, [face] * 12 + [grey] * 12, fps=30)
    out = tmp_path / "gone.csv"
    assert analyze(video, "--model", checkpoint, "--reference", "fixed:0", "--out", out) == 0
    _, rows = read_csv(out)
    assert [r["face_found"] for r in rows] == ["1"] * 12 + ["0"] * 12
    assert all(r["AU12"] != "" for r in rows[:12]) and all(r["AU12"] == "" for r in rows[12:])


def test_analysis_is_cached_in_the_project_and_reused(long_video, checkpoint, tmp_path, capsys):
    project_path = tmp_path / "p.maus"
    first, second = tmp_path / "1.csv", tmp_path / "2.csv"
    assert analyze(long_video, "--project", project_path, "--model", checkpoint, "--range", "30:50",
                   "--out", first) == 0
    capsys.readouterr()
    assert analyze(long_video, "--project", project_path, "--model", checkpoint, "--range", "20:50",
                   "--out", second) == 0
    assert "20 from the project cache" in capsys.readouterr().out
    _, rows1 = read_csv(first)
    _, rows2 = read_csv(second)
    assert [int(r["frame_idx"]) for r in rows2] == list(range(20, 50))
    for a, b in zip(rows1, rows2[10:]):
        assert a["frame_idx"] == b["frame_idx"]
        assert abs(float(a["AU12"]) - float(b["AU12"])) < 5e-4  # float16 in the cache
    with Project.open(project_path) as project:
        video = project.video_by_path(long_video)
        version = project.models.find("flow-tiny")
        assert version.checkpoint == checkpoint
        assert project.predictions.frames(video.id, version.id).tolist() == list(range(20, 50))


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    err = [line for line in err if line.startswith("error:") or "Traceback" in line]
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def test_bad_input_gives_one_line_errors(long_video, checkpoint, tmp_path, capsys):
    out = tmp_path / "x.csv"
    assert analyze(tmp_path / "missing.mp4", "--model", checkpoint, "--out", out) == 2
    assert "does not exist" in _one_line_error(capsys)

    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"\x00not a video" * 1000)
    assert analyze(garbage, "--model", checkpoint, "--out", out) == 2
    assert "garbage.mp4" in _one_line_error(capsys)

    broken = tmp_path / "broken"
    shutil.copytree(checkpoint, broken)
    data = (broken / WEIGHTS_NAME).read_bytes()
    (broken / WEIGHTS_NAME).write_bytes(data[:1000] + b"x" * 100 + data[1100:])
    assert analyze(long_video, "--model", broken, "--out", out) == 2
    assert "corrupted" in _one_line_error(capsys)

    assert analyze(long_video, "--model", tmp_path, "--out", out) == 2  # a folder, not a checkpoint
    assert "not a checkpoint" in _one_line_error(capsys)

    assert analyze(long_video, "--model", checkpoint, "--out", tmp_path / "nowhere" / "x.csv") == 2
    assert "does not exist" in _one_line_error(capsys)
    assert analyze(long_video, "--model", checkpoint, "--out", tmp_path) == 2
    assert "is a folder" in _one_line_error(capsys)

    assert analyze(long_video, "--model", checkpoint, "--range", "500:600", "--out", out) == 2
    assert "only 120 frames" in _one_line_error(capsys)
    assert analyze(long_video, "--model", checkpoint, "--reference", "fixed:999", "--out", out) == 2
    assert "out of range" in _one_line_error(capsys)
    assert not out.exists() and not list(tmp_path.glob(".x.csv*"))

    project = tmp_path / "new.maus"  # a project the failed run would have created is not left behind
    assert analyze(long_video, "--model", tmp_path / "nope", "--project", project, "--out", out) == 2
    assert "no such checkpoint" in _one_line_error(capsys)
    assert list(tmp_path.glob("new.maus*")) == []


def test_the_real_command_line_prints_no_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, str(REPO / "main.py"), "analyze", str(tmp_path / "none.mp4"), "--out",
         str(tmp_path / "a.csv")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: ")


def test_analysis_reports_progress_and_can_be_cancelled(long_video, checkpoint, tmp_path):
    import threading

    from microau_gui.inference.analysis import AnalysisOptions, CsvSink
    from microau_gui.inference.pipeline import analyze_source
    from microau_gui.inference.predictor import Predictor
    from microau_gui.core.progress import Cancelled

    stop = threading.Event()
    seen: list[tuple[int, int]] = []

    def progress(done: int, total: int) -> None:
        seen.append((done, total))
        if done >= 8:
            stop.set()

    with open_media(long_video) as source, \
            Predictor.from_checkpoint(checkpoint, device="cpu", speed_mode="fp32") as predictor:
        sink = CsvSink(tmp_path / "c.csv", predictor.vocab)
        with pytest.raises(Cancelled):
            analyze_source(source, predictor, AnalysisOptions(batch_size=4), sink,
                           progress=progress, should_cancel=stop)
        sink.discard()
    assert seen[:2] == [(4, 120), (8, 120)]
    assert not (tmp_path / "c.csv").exists() and not list(tmp_path.iterdir())


def test_each_reference_policy_picks_its_reference_frame(long_video, checkpoint):
    from microau_gui.inference.analysis import AnalysisOptions
    from microau_gui.inference.pipeline import analyze_source
    from microau_gui.inference.predictor import Predictor
    from microau_gui.inference.reference import ReferencePolicy

    class Recorder:
        def __init__(self):
            self.pairs: list[tuple[int, int]] = []

        def write(self, predictions, times_s):
            self.pairs += [(p.frame_idx, p.reference_idx) for p in predictions]

    def references(**options) -> list[tuple[int, int]]:
        sink = Recorder()
        analyze_source(source, predictor, AnalysisOptions(start=10, stop=50, every=5, **options), sink)
        return sink.pairs

    with open_media(long_video) as source, \
            Predictor.from_checkpoint(checkpoint, device="cpu", speed_mode="fp32") as predictor:
        assert references() == [(f, f - 6) for f in range(10, 50, 5)]
        assert references(reference=ReferencePolicy.FIXED, fixed_idx=100) == [(f, 100) for f in range(10, 50, 5)]
        # Inside the coded event 20-40 its onset; outside it the sliding reference.
        onset = references(reference=ReferencePolicy.ONSET, events=((20, 40),))
        assert onset == [(10, 4), (15, 9), (20, 20), (25, 20), (30, 20), (35, 20), (40, 20), (45, 39)]
        assert references(window_s=0.5) == [(f, max(0, f - 15)) for f in range(10, 50, 5)]


def test_an_image_folder_is_analysed_at_the_frame_rate_given(checkpoint, astronaut_path, tmp_path):
    import cv2

    face = read_rgb(astronaut_path)[0:320, 96:416]
    folder = tmp_path / "EP01_01"
    folder.mkdir()
    for i in range(30):
        cv2.imwrite(str(folder / f"img{46 + i}.jpg"), cv2.cvtColor(face, cv2.COLOR_RGB2BGR))
    out = tmp_path / "seq.csv"
    assert analyze(folder, "--model", checkpoint, "--fps", 200, "--every", 10, "--out", out) == 0
    _, rows = read_csv(out)
    assert [(r["frame_idx"], r["t_s"], r["face_found"]) for r in rows] == [
        ("0", "0.000000", "1"), ("10", "0.050000", "1"), ("20", "0.100000", "1")]
    assert json.loads(Path(f"{out}.json").read_text())["media"]["fps"] == 200
