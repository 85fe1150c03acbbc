"""Frame sources: random access returns exactly the frame sequential decoding returns, for every kind.

Every test file is written here. Each frame carries its own index drawn as 7 big black/white
blocks (readable after lossy compression) over per-frame noise, so a one-frame slip is caught
twice: the pixels differ from the sequential decode, and the drawn index is wrong.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from microau_gui.core.errors import UserError
from microau_gui.media import (
    FrameDecodeError,
    FrameOutOfRange,
    ImageSequenceSource,
    VideoSource,
    open_media,
    probe_media,
    write_image_sequence,
    write_video,
)

W, H = 64, 48
ROOT = Path(__file__).resolve().parents[1]
N_FRAMES = 80
N_BITS = 7  # frame indices up to 127


def pattern_frame(k: int) -> np.ndarray:
    """Frame k: its index as 7 blocks of 8x16 px on the top row, seeded noise below."""
    rng = np.random.default_rng(k)
    rgb = rng.integers(60, 196, (H, W, 3), dtype=np.uint8)  # (H, W, 3)
    for bit in range(N_BITS):
        value = 255 if (k >> bit) & 1 else 0
        rgb[0:16, bit * 9:bit * 9 + 8] = value
    return rgb


def drawn_index(rgb: np.ndarray) -> int:
    """Read back the index pattern_frame drew."""
    return sum(1 << bit for bit in range(N_BITS) if rgb[3:13, bit * 9 + 2:bit * 9 + 6].mean() > 128)


def sequential(path: Path) -> list[np.ndarray]:
    """Plain PyAV sequential decoding: the reference frame order."""
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def check_random_access(source, reference: list[np.ndarray]) -> None:
    assert source.n_frames == len(reference) == N_FRAMES
    order = list(range(source.n_frames))
    random.Random(7).shuffle(order)
    for frame_idx in order:
        rgb = source.read(frame_idx)
        assert rgb.shape == (H, W, 3) and rgb.dtype == np.uint8
        assert np.array_equal(rgb, reference[frame_idx]), f"frame {frame_idx} differs from sequential decoding"
        assert drawn_index(rgb) == frame_idx


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("videos")
    frames = [pattern_frame(k) for k in range(N_FRAMES)]
    return {
        "h264": _written(write_video(folder / "gop40.mp4", frames, 25, codec="h264", gop=40, bframes=2), folder / "gop40.mp4"),
        "mpeg4": _written(write_video(folder / "gop40_mpeg4.mp4", frames, 25, codec="mpeg4", gop=40, bframes=2),
                          folder / "gop40_mpeg4.mp4"),
        "mjpeg": _written(write_video(folder / "mjpeg.avi", frames, 25, codec="mjpeg"), folder / "mjpeg.avi"),
        "mkv": _written(write_video(folder / "gop40.mkv", frames, 30, codec="h264", gop=40), folder / "gop40.mkv"),
    }


def _written(n: int, path: Path) -> Path:
    assert n == N_FRAMES
    return path


def _has_reordered_frames(path: Path) -> bool:
    with av.open(str(path)) as container:
        pts = [p.pts for p in container.demux(video=0) if p.pts is not None]
    return pts != sorted(pts)


@pytest.mark.parametrize("kind", ["h264", "mpeg4", "mjpeg", "mkv"])
def test_video_random_access_equals_sequential_decoding(videos, kind):
    path = videos[kind]
    reference = sequential(path)
    assert [drawn_index(f) for f in reference] == list(range(N_FRAMES))
    with open_media(path, cache_frames=0) as source:
        assert isinstance(source, VideoSource)
        if kind != "mjpeg":
            # The test is only meaningful on long GOPs with B-frames (decode order != display order).
            assert source.max_gop > 30
            assert _has_reordered_frames(path)
        check_random_access(source, reference)
        assert [i for i, _ in source.iter_frames()] == list(range(N_FRAMES))
        for frame_idx, rgb in source.iter_frames(start=33, stop=47):
            assert np.array_equal(rgb, reference[frame_idx])


def test_video_describes_itself(videos):
    with open_media(videos["h264"]) as source:
        assert source.n_frames == N_FRAMES
        assert source.fps == pytest.approx(25.0)
        assert source.size == (W, H)
        assert not source.is_vfr
        assert source.frame_numbers == tuple(range(N_FRAMES))
        assert source.index_of_number(17) == 17
        assert source.time_s(50) == pytest.approx(2.0)
        assert source.keyframe_indices[:2] == (0, 40)
    info = probe_media(videos["mjpeg"])
    assert (info.kind, info.codec, info.n_frames, info.width, info.height) == ("video", "mjpeg", N_FRAMES, W, H)
    assert info.fps == pytest.approx(25.0) and info.max_gop == 1 and not info.is_vfr


def test_playback_continues_decoding_without_seeking(videos):
    with open_media(videos["h264"], cache_frames=0) as source:
        source.read(45)
        before = source.n_decoded
        for frame_idx in range(46, 60):
            rgb = source.read(frame_idx)
            assert drawn_index(rgb) == frame_idx
        # One decoded frame per step: the decoder went on from frame 45, it never re-seeked.
        assert source.n_decoded - before == 14


def test_cache_hit_returns_the_frame_without_decoding(videos):
    with open_media(videos["h264"], cache_frames=2) as source:
        first = source.read(30)
        decoded = source.n_decoded
        again = source.read(30)
        assert source.n_decoded == decoded
        assert np.array_equal(again, first) and drawn_index(again) == 30
        assert not again.flags.writeable  # shared with the cache: callers must copy to draw
        source.read(10)
        source.read(70)  # capacity 2: frame 30 is evicted now
        decoded = source.n_decoded
        assert drawn_index(source.read(30)) == 30
        assert source.n_decoded > decoded


def test_out_of_range_and_unknown_number(videos):
    with open_media(videos["mjpeg"]) as source:
        with pytest.raises(FrameOutOfRange, match=r"frame 80 \(0-based\) is out of range"):
            source.read(N_FRAMES)
        with pytest.raises(IndexError):
            source.read(-1)
        with pytest.raises(UserError, match="no frame numbered 500"):
            source.index_of_number(500)


def test_variable_frame_rate_is_detected(tmp_path):
    frames = [pattern_frame(k) for k in range(N_FRAMES)]
    steps_s = [0.04 if k % 4 else 0.12 for k in range(N_FRAMES - 1)]  # a camera that stalls
    times_s = np.concatenate([[0.0], np.cumsum(steps_s)]).tolist()
    vfr = tmp_path / "vfr.mp4"
    write_video(vfr, frames, 25, codec="h264", gop=40, times_s=times_s)
    cfr = tmp_path / "cfr.mkv"
    write_video(cfr, frames, 30, codec="h264", gop=40)  # 1/1000 time base: steps 33, 34, 33 ms
    with open_media(vfr, cache_frames=0) as source:
        assert source.is_vfr
        assert source.time_s(4) == pytest.approx(times_s[4], abs=1e-3)
        check_random_access(source, sequential(vfr))
    with open_media(cfr) as source:
        assert not source.is_vfr
        assert source.fps == pytest.approx(30.0, rel=1e-3)
    assert probe_media(vfr).is_vfr


@pytest.mark.parametrize("kind", ["h264", "mkv", "mjpeg"])
def test_truncated_video_names_the_frame_it_cannot_decode(videos, kind, tmp_path):
    original = videos[kind]
    reference = sequential(original)
    data = original.read_bytes()
    cut = tmp_path / f"cut{original.suffix}"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    with open_media(cut, cache_frames=0) as source:
        assert source.is_truncated
        assert source.n_frames == N_FRAMES  # what the container declares
        assert 0 < source.n_decodable < N_FRAMES
        with pytest.raises(FrameDecodeError, match=rf"could not decode frame {N_FRAMES - 1} \(0-based\) of cut"):
            source.read(N_FRAMES - 1)
        first_missing = source.n_decodable
        with pytest.raises(FrameDecodeError, match=rf"frame {first_missing} \(0-based\) of cut"):
            list(source.iter_frames())
        # Every frame it does return is the right one.
        for frame_idx in range(source.n_decodable - 1, -1, -7):
            assert np.array_equal(source.read(frame_idx), reference[frame_idx])
    assert probe_media(cut).n_decodable == first_missing


def _mjpeg_with_a_damaged_frame(tmp_path: Path, bad_idx: int) -> tuple[Path, list[np.ndarray]]:
    """An MJPEG avi whose frame `bad_idx` has random bytes over the middle third of its JPEG
    data, and the frames of the undamaged file."""
    path = tmp_path / "hit.avi"
    write_video(path, [pattern_frame(k) for k in range(N_FRAMES)], 25, codec="mjpeg")
    original = sequential(path)
    with av.open(str(path)) as container:
        packets = [(p.pos, p.size) for p in container.demux(video=0) if p.size]
    assert len(packets) == N_FRAMES
    pos, size = packets[bad_idx]
    data = bytearray(path.read_bytes())
    assert data[pos:pos + 2] == b"\xff\xd8"  # the packet is one whole JPEG (start of image)
    start, stop = pos + size // 3, pos + 2 * size // 3  # inside the entropy-coded scan
    data[start:stop] = np.random.default_rng(0).integers(0, 256, stop - start, np.uint8).tobytes()
    path.write_bytes(bytes(data))
    return path, original


def test_corrupt_packet_mid_file_spoils_at_most_its_own_frame(tmp_path):
    bad_idx = N_FRAMES // 2
    path, original = _mjpeg_with_a_damaged_frame(tmp_path, bad_idx)
    decoded = sequential(path)  # what a plain decoder makes of the damaged file
    assert len(decoded) == N_FRAMES
    assert not np.array_equal(decoded[bad_idx], original[bad_idx])  # the damage is real

    order = list(range(N_FRAMES))
    random.Random(3).shuffle(order)
    with open_media(path, cache_frames=0) as source:
        assert source.n_frames == N_FRAMES
        for frame_idx in order:
            try:
                rgb = source.read(frame_idx)
            except FrameDecodeError as err:
                assert frame_idx == bad_idx and f"frame {frame_idx} " in str(err), str(err)
                continue
            assert rgb.shape == (H, W, 3) and rgb.dtype == np.uint8
            if frame_idx != bad_idx:
                assert np.array_equal(rgb, original[frame_idx]), f"frame {frame_idx} differs"
        streamed = []
        try:
            for frame_idx, rgb in source.iter_frames():
                if frame_idx != bad_idx:
                    assert np.array_equal(rgb, original[frame_idx]), f"frame {frame_idx} differs"
                streamed.append(frame_idx)
        except FrameDecodeError as err:
            assert f"frame {bad_idx} " in str(err), str(err)
            assert streamed == list(range(bad_idx))
        else:
            assert streamed == list(range(N_FRAMES))
        # The frames after the damage still stream, from the next one on.
        assert [i for i, _ in source.iter_frames(bad_idx + 1, bad_idx + 4)] == [
            bad_idx + 1, bad_idx + 2, bad_idx + 3]


def test_a_damaged_mjpeg_frame_is_an_error_naming_it_whatever_was_read_before(tmp_path):
    # FFmpeg would conceal it with pixels of the previously decoded frame, so the same frame_idx
    # would read differently depending on the read before it
    bad_idx = N_FRAMES // 2
    path, _ = _mjpeg_with_a_damaged_frame(tmp_path, bad_idx)
    with open_media(path, cache_frames=0) as source:
        for before_idx in (bad_idx - 1, 3, N_FRAMES - 1):
            source.read(before_idx)
            with pytest.raises(FrameDecodeError, match=f"frame {bad_idx} "):
                source.read(bad_idx)


def test_corrupt_file_is_a_one_line_error(tmp_path):
    bogus = tmp_path / "bogus.mp4"
    bogus.write_bytes(b"\x00\x01not a video at all" * 50)
    with pytest.raises(UserError, match="could not open bogus.mp4"):
        open_media(bogus)


def _sequence(tmp_path: Path, suffix: str) -> tuple[Path, list[np.ndarray]]:
    frames = [pattern_frame(k) for k in range(N_FRAMES)]
    folder = tmp_path / f"clip_{suffix}"
    write_image_sequence(folder, frames, pattern="img{n}." + suffix, first_number=1, quality=92)
    return folder, frames


@pytest.mark.parametrize("suffix", ["png", "jpg"])
def test_image_sequence_random_access(tmp_path, suffix):
    folder, frames = _sequence(tmp_path, suffix)
    with open_media(folder, cache_frames=4) as source:
        assert isinstance(source, ImageSequenceSource)
        reference = [rgb.copy() for _, rgb in source.iter_frames()]
        check_random_access(source, reference)
        assert source.frame_numbers == tuple(range(1, N_FRAMES + 1))
        assert source.index_of_number(46) == 45
        assert source.size == (W, H)
        assert source.fps_is_nominal and not source.is_vfr
    if suffix == "png":  # lossless: exactly what was written
        assert all(np.array_equal(reference[k], frames[k]) for k in range(N_FRAMES))


def test_image_sequence_sorts_naturally(tmp_path):
    folder, _ = _sequence(tmp_path, "png")
    with open_media(folder) as source:
        names = [p.name for p in source.files]
        assert names[:12] == [f"img{n}.png" for n in range(1, 13)]  # img9 before img10
        assert source.file_of(9).name == "img10.png"
        assert drawn_index(source.read(9)) == 9


def test_sheet_numbers_and_ordinal_numbering(tmp_path):
    frames = [pattern_frame(k) for k in range(5)]
    samm = tmp_path / "006_1_2"
    write_image_sequence(samm, frames, pattern="006_{n:05d}.jpg", first_number=5562)
    with open_media(samm) as source:
        assert source.frame_numbers == (5562, 5563, 5564, 5565, 5566)
        assert source.index_of_number(5564) == 2
    part_c = tmp_path / "part_c"
    write_image_sequence(part_c, frames, pattern="frame_{n}.jpg", first_number=300)
    (part_c / "frame_300.jpg").rename(part_c / "start.jpg")  # a name without a number
    with pytest.raises(UserError, match="numbering='ordinal'"):
        open_media(part_c)
    with open_media(part_c, numbering="ordinal") as source:
        assert source.frame_numbers == (1, 2, 3, 4, 5)
        assert [p.name for p in source.files] == ["frame_301.jpg", "frame_302.jpg", "frame_303.jpg",
                                                  "frame_304.jpg", "start.jpg"]
        assert drawn_index(source.read(source.index_of_number(5))) == 0


def test_duplicate_frame_numbers_are_refused(tmp_path):
    folder, _ = _sequence(tmp_path, "png")
    (folder / "img1.png").rename(folder / "img01.png")
    (folder / "img2.png").rename(folder / "img001.png")
    with pytest.raises(UserError, match="two files numbered 1"):
        open_media(folder)


def test_unreadable_image_names_its_frame(tmp_path):
    folder, _ = _sequence(tmp_path, "jpg")
    (folder / "img13.jpg").write_bytes(b"truncated jpeg")
    with open_media(folder) as source:
        with pytest.raises(FrameDecodeError, match=r"could not decode frame 12 \(0-based\) of clip_jpg \(img13.jpg\)"):
            source.read(12)
        with pytest.raises(FrameDecodeError, match="frame 12"):
            list(source.iter_frames(start=10, stop=20))
        assert drawn_index(source.read(13)) == 13


def test_bad_paths_are_one_line_user_errors(tmp_path):
    folder, _ = _sequence(tmp_path, "png")
    notes = tmp_path / "notes.txt"
    notes.write_text("not media")
    cases = {
        tmp_path / "missing.mp4": "does not exist",
        folder / "img1.png": "single image",
        notes: "is not a video",
        tmp_path: "holds no images",
    }
    for path, message in cases.items():
        with pytest.raises(UserError, match=message) as err:
            open_media(path)
        assert "\n" not in str(err.value)


def test_image_writer_refuses_to_mix_with_old_frames(tmp_path):
    folder, _ = _sequence(tmp_path, "png")
    with pytest.raises(UserError, match="already holds 80 images"):
        write_image_sequence(folder, [pattern_frame(0)], pattern="img{n}.png")
    write_image_sequence(folder, [pattern_frame(k) for k in range(3)], pattern="img{n}.png", overwrite=True)
    with open_media(folder) as source:
        assert source.n_frames == 3


def test_frame_threaded_decoding_is_exact(videos):
    reference = sequential(videos["h264"])
    with open_media(videos["h264"], cache_frames=0, decoder_threads=2) as source:
        check_random_access(source, reference)


_ENCODE_ON = """
import hashlib, os, sys
os.sched_setaffinity(0, {int(c) for c in sys.argv[2].split(",")})  # before FFmpeg counts CPUs
import numpy as np
from microau_gui.media import write_video
rng = np.random.default_rng(0)
frames = [rng.integers(0, 256, (120, 160, 3), dtype=np.uint8) for _ in range(24)]
write_video(sys.argv[1], frames, 25, codec=sys.argv[3])
print(hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest())
"""


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2,
                    reason="needs two usable CPUs to compare one with two")
@pytest.mark.parametrize("codec", ["h264", "mpeg4"])
def test_the_same_frames_give_the_same_file_however_many_cpus_the_encoder_may_use(tmp_path, codec):
    # With FFmpeg's automatic thread count, libx264 wrote other bytes under `taskset -c 0` than on
    # two CPUs: the tests' synthetic clips then carried other compression noise on each machine.
    cpus = sorted(os.sched_getaffinity(0))
    digests = set()
    for allowed in ([cpus[0]], cpus[:2], cpus):
        out = subprocess.run([sys.executable, "-c", _ENCODE_ON, str(tmp_path / f"{len(allowed)}.mp4"),
                              ",".join(map(str, allowed)), codec],
                             capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert out.returncode == 0, out.stderr
        digests.add(out.stdout.strip())
    assert len(digests) == 1


def test_the_same_frames_give_the_same_file_every_time(tmp_path):
    """libx264's AVX-512 code wrote other bytes from one encoding to the next (five files from
    five encodings of these frames on an AMD EPYC Zen 4), so a test clip carried other compression
    noise from run to run; `media.writer` keeps x264 on its AVX2 code there. A 200 x 150 textured
    picture, shifted by a fraction of a pixel and noised on every frame, like an animated photo."""
    import cv2

    rng = np.random.default_rng(7)
    texture = cv2.GaussianBlur(rng.integers(0, 256, (150, 200, 3), dtype=np.uint8), (7, 7), 0)
    frames = []
    for _ in range(90):
        shift = np.float32([[1, 0, rng.normal(0, 0.6)], [0, 1, rng.normal(0, 0.6)]])
        moved = cv2.warpAffine(texture, shift, (200, 150), borderMode=cv2.BORDER_REFLECT)
        frames.append(np.clip(moved + rng.normal(0, 1.5, moved.shape), 0, 255).astype(np.uint8))
    digests = set()
    for attempt in range(5):
        path = tmp_path / f"{attempt}.mp4"
        write_video(path, frames, 30)
        digests.add(path.read_bytes())
    assert len(digests) == 1
