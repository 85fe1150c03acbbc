"""BORIS tabular events and the per-frame AU tables (long and wide), written from a real project
with cached model predictions and an imported OpenFace trace, and read back with csv."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from microau_gui.core.aus import parse_au_string
from microau_gui.core.errors import UserError
from microau_gui.core.types import FramePrediction
from microau_gui.interchange.boris import BORIS_COLUMNS, export_boris
from microau_gui.interchange.framewise import LONG_COLUMNS, export_frames
from microau_gui.interchange.traces import read_trace
from microau_gui.store.project import Project
from microau_gui.store.records import MediaFacts

VOCAB = ("AU4", "AU12")


@pytest.fixture
def project(tmp_path, pyfeat_data):
    project = Project.create(tmp_path / "p.maus")
    # 100 frames numbered from 46 (an image folder's own numbering), 25 fps.
    video = project.add_video(tmp_path / "clip", MediaFacts(100, 25.0, 64, 48,
                                                            tuple(range(46, 146))),
                              name="EP01", subject="07", digest="0" * 16)
    project.add_event(video.id, 10, 12, 19, parse_au_string("L12C+ref(4)").codes,
                      emotion="happiness", coder="anna")
    project.add_event(video.id, 40, 41, 44, parse_au_string("A14B+T28").codes,
                      expression_type="macro", coder="ben")
    version = project.models.add("tiny-v1", tmp_path / "w", VOCAB, activate=True)
    probs = [np.array([0.1 * k, 1.0 - 0.1 * k], np.float32) for k in range(3)]
    project.predictions.put_many(video.id, version.id, [
        FramePrediction(frame_idx=k, reference_idx=0, model_version="tiny-v1", vocab=VOCAB,
                        face_found=True, probs=probs[k]) for k in range(3)]
        + [FramePrediction(frame_idx=3, reference_idx=0, model_version="tiny-v1", vocab=VOCAB,
                           face_found=False)])
    project.traces.put(video.id, read_trace("openface", pyfeat_data / "OpenFace_Test.csv",
                                            fps=25.0, n_frames=100))
    yield project
    project.close()


def _rows(path, delimiter=","):
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle, delimiter=delimiter))


def test_boris_table_has_borises_columns_and_start_stop_rows_with_side_and_intensity(project,
                                                                                   tmp_path):
    path, n_events = export_boris(project, tmp_path / "boris.tsv")
    assert n_events == 2
    with path.open(encoding="utf-8") as handle:
        assert tuple(handle.readline().rstrip("\r\n").split("\t")) == BORIS_COLUMNS
    rows = _rows(path, "\t")
    anna = [r for r in rows if r["Observation id"] == "EP01 [anna]"]
    au12 = [r for r in anna if r["Behavior"] == "AU12"]
    assert [(r["Behavior type"], r["Time"], r["Image index"]) for r in au12] == [
        ("START", "0.400", "56"), ("STOP", "0.800", "66")]  # dataset numbers, from 46
    assert (au12[0]["Modifier #1"], au12[0]["Modifier #2"]) == ("left", "C")
    au4 = [r for r in anna if r["Behavior"] == "AU4"][0]
    assert (au4["Modifier #1"], au4["Modifier #3"]) == ("both", "uncertain")
    expression = [r for r in anna if r["Behavioral category"] == "expression"][0]
    assert (expression["Behavior"], expression["Modifier #1"]) == ("micro-expression",
                                                                     "happiness")
    assert expression["Comment"] == "L12C+ref(4) apex=12"
    ben = [r for r in rows if r["Observation id"] == "EP01 [ben]" and r["Behavior"] == "AU14"]
    assert ben[0]["Modifier #1"] == "asymmetric" and ben[0]["Subject"] == "07"
    lip = [r for r in rows if r["Behavior"] == "AU28"]
    assert lip[0]["Modifier #1"] == "top lip"
    assert all(float(r["FPS"]) == 25.0 for r in rows)


def test_long_table_is_tidy_with_dataset_frame_numbers_and_empty_cells_without_a_face(
        project, tmp_path):
    path, n_rows = export_frames(project, tmp_path / "long.csv", layout="long")
    rows = _rows(path)
    assert tuple(rows[0]) == LONG_COLUMNS
    ours = [r for r in rows if r["source"] == "model"]
    assert len(ours) == 4 * 2
    first = ours[0]
    assert (first["video"], first["frame"], first["time_s"], first["au"],
            first["model_version"]) == ("EP01", "46", "0.000000", "AU4", "tiny-v1")
    assert float(ours[3]["probability"]) == pytest.approx(0.9, abs=1e-3)  # float16 cache
    assert [r["probability"] for r in ours if r["frame"] == "49"] == ["", ""]  # no face
    openface = [r for r in rows if r["source"] == "openface"]
    assert len(openface) == 100 * 18 and openface[0]["model_version"] == "OpenFace_Test.csv"
    assert {r["probability"] for r in openface} <= {"0", "1", ""}
    assert n_rows == len(rows)


def test_wide_table_has_one_row_per_frame_and_source(project, tmp_path):
    path, _ = export_frames(project, tmp_path / "wide.csv", layout="wide", model="tiny-v1",
                            traces=False)
    rows = _rows(path)
    assert list(rows[0])[:5] == ["video", "frame", "time_s", "source", "model_version"]
    assert list(rows[0])[5:] == ["AU4", "AU12"]
    assert [r["frame"] for r in rows] == ["46", "47", "48", "49"]
    assert float(rows[1]["AU12"]) == pytest.approx(0.9, abs=1e-3)


def test_unknown_model_and_wrong_suffix_are_refused_with_one_line(project, tmp_path):
    with pytest.raises(UserError, match="no model version 'nope'"):
        export_frames(project, tmp_path / "x.csv", model="nope")
    with pytest.raises(UserError, match="written as .csv or .tsv"):
        export_boris(project, tmp_path / "x.xlsx")
    assert not list(tmp_path.glob("x.*"))
