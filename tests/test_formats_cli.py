"""The interchange formats on the command line, run in-process as `main.py` runs them: import an
OpenFace CSV as a trace, export and re-import ELAN, export BORIS and per-frame tables, and an
agreement report on one real video comparing a coder with our model and with OpenFace, per AU."""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from microau_gui.cli import main
from microau_gui.core.aus import parse_au_string
from microau_gui.core.types import FramePrediction
from microau_gui.store.project import Project

MAIN = Path(__file__).resolve().parents[1] / "main.py"
VOCAB = ("AU1", "AU4", "AU12")


@pytest.fixture
def study(tmp_path, pyfeat_data):
    """A project on the real Pexels clip with a coder's events and cached model predictions."""
    clip = shutil.copy(pyfeat_data / "WolfgangLanger_Pexels.mp4", tmp_path / "pexels.mp4")
    path = tmp_path / "study.maus"
    with Project.create(path) as project:
        from microau_gui.media import open_media

        with open_media(clip) as source:
            video = project.add_video(clip, source, name="pexels")
        project.add_event(video.id, 5, 10, 30, parse_au_string("1+R12B").codes, coder="anna")
        project.add_event(video.id, 60, 70, 90, parse_au_string("4").codes, coder="anna")
        version = project.models.add("tiny-v1", tmp_path / "w", VOCAB, activate=True)
        probs = np.zeros((120, 3), np.float32)
        probs[8:28, 0] = probs[8:28, 2] = 0.9  # AU1 and AU12 fire near anna's first event
        probs[65:80, 1] = 0.8
        project.predictions.put_many(video.id, version.id, [
            FramePrediction(frame_idx=k, reference_idx=0, model_version="tiny-v1", vocab=VOCAB,
                            face_found=True, probs=probs[k]) for k in range(120)])
    return path, clip


def _csv(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_agreement_on_one_video_compares_a_coder_with_our_model_and_with_openface(
        study, pyfeat_data, tmp_path, capsys):
    project, clip = study
    assert main(["import", "openface", str(pyfeat_data / "OpenFace_Test.csv"), "pexels",
                 "--project", str(project)]) == 0
    assert "comparison trace 'OpenFace_Test.csv' on video pexels: 100 frames, 18 AUs" in \
        capsys.readouterr().out
    reports = {}
    for other in ("model:tiny-v1", "trace:OpenFace_Test.csv"):
        out = tmp_path / f"{other.split(':')[0]}.csv"
        assert main(["agreement", "coder:anna", other, "--project", str(project),
                     "--video", "pexels", "--bootstrap", "20", "--out", str(out)]) == 0
        reports[other] = {(r["measure"], r["au"]): r for r in _csv(out)}
        printed = capsys.readouterr().out
        assert "1 video(s), 2 events in A" in printed
    model = reports["model:tiny-v1"]
    openface = reports["trace:OpenFace_Test.csv"]
    for report in (model, openface):
        for au in ("AU1", "AU4", "AU12"):
            assert report[("kappa", au)]["count"] == "472"  # every frame of the real clip
    assert float(model[("kappa", "AU4")]["value"]) > 0.5  # the model fires inside anna's AU4
    assert int(model[("frames_b", "AU12")]["value"]) == 20
    # OpenFace's presence calls come from the real file, over its first 100 frames.
    assert int(openface[("frames_b", "AU45")]["value"]) > 0
    assert ("kappa", "AU45") in openface and ("kappa", "AU45") not in model
    # All three at once: Fleiss' kappa, alpha and AC1 over coder, model and OpenFace per AU.
    out = tmp_path / "three.csv"
    assert main(["agreement", "coder:anna", "model:tiny-v1", "--more", "trace:OpenFace_Test.csv",
                 "--project", str(project), "--bootstrap", "5", "--out", str(out)]) == 0
    three = {(r["measure"], r["au"]) for r in _csv(out)}
    assert {("fleiss_kappa", "AU12"), ("all_coders_ac1", "AU4")} <= three
    assert main(["agreement", "coder:anna", "trace:nope.csv", "--project", str(project),
                 "--out", str(out)]) == 2
    assert "'trace:nope.csv' is not a source" in capsys.readouterr().err


def test_elan_boris_and_frame_tables_from_the_command_line(study, tmp_path, capsys):
    project, clip = study
    eaf = tmp_path / "pexels.eaf"
    assert main(["export", "--project", str(project), "--format", "elan", "--out", str(eaf),
                 "--model", "tiny-v1", "--threshold", "0.5"]) == 0
    assert "wrote 2 events" in capsys.readouterr().out
    fresh = tmp_path / "fresh.maus"
    assert main(["import", "elan", str(eaf), str(clip), "--project", str(fresh)]) == 0
    assert "2 events added" in capsys.readouterr().out
    with Project.open(fresh) as reopened, Project.open(project) as original:
        def key(e):
            return e.onset, e.apex, e.offset, e.aus_text, e.coder

        assert sorted(map(key, reopened.events())) == sorted(map(key, original.events()))
    assert main(["export", "--project", str(project), "--format", "boris",
                 "--out", str(tmp_path / "b.csv")]) == 0
    assert len(_csv(tmp_path / "b.csv")) == 2 * (2 + 1) + 2 * (1 + 1)  # START+STOP rows
    assert main(["export", "--project", str(project), "--format", "frames-wide",
                 "--out", str(tmp_path / "w.csv")]) == 0
    assert len(_csv(tmp_path / "w.csv")) == 120


def test_a_damaged_trace_file_fails_with_one_line_and_exit_code_2(study, tmp_path):
    project, _ = study
    bad = tmp_path / "bad.csv"
    bad.write_text("frame, timestamp, confidence, success, AU01_r\n1,0,0.9,1,oops\n")
    done = subprocess.run([sys.executable, str(MAIN), "import", "openface", str(bad), "pexels",
                           "--project", str(project)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: bad.csv: line 2, column 'AU01_r': 'oops' is not a number; the file is damaged"]
    with Project.open(project) as reopened:
        assert reopened.traces.list() == []


@pytest.mark.parametrize("kind,text", [
    ("openface", "frame, timestamp, confidence, success, AU01_r\n1,0,0.9,1,oops\n"),
    ("elan", "<ANNOTATION_DOCUMENT>not closed"),
])
def test_a_refused_file_leaves_no_new_project_behind(tmp_path, pyfeat_data, kind, text, capsys):
    """#15 D13 for the interchange imports: the video was added before the file was read, so a
    damaged file left a new project holding that video."""
    clip = shutil.copy(pyfeat_data / "WolfgangLanger_Pexels.mp4", tmp_path / "pexels.mp4")
    bad = tmp_path / ("bad.csv" if kind == "openface" else "bad.eaf")
    bad.write_text(text)
    fresh = tmp_path / "fresh.maus"
    assert main(["import", kind, str(bad), str(clip), "--project", str(fresh)]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad" + bad.suffix, "pexels.mp4"]
