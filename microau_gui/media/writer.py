"""Writing videos and image sequences (synthetic data, tests, exports).

Owns: `write_video`, `write_image_sequence`, `h264_available`, `rate_fraction`. May import core only (plus numpy,
PyAV and OpenCV). No torch, no Qt.

Videos are encoded with PyAV: H.264 through libx264 when PyAV's FFmpeg has it (MPEG-4 Part 2
otherwise), MPEG-4 Part 2, or Motion JPEG. With libx264 keyframes come exactly every `gop`
frames (scene-cut keyframes are off) so tests and benchmarks know the GOP they seek in; the
MPEG-4 Part 2 encoder may place one a frame or two later. A video is written to a
temporary name beside the target and renamed when complete, so a crash never leaves a half
file under the real name.

Encoders run `ENCODER_THREADS` threads on every machine: with FFmpeg's automatic count (one per
usable CPU) libx264 wrote different bytes on a 2-core laptop, under `taskset -c 0` and on a
many-core Xeon, so a synthetic clip (and every test and benchmark built on it) carried other
compression noise on each machine.

libx264's instruction set is capped at AVX2 on CPUs with AVX-512 (`_x264_options`): its
AVX-512 code is not deterministic. On an AMD EPYC Zen 4 (AVX-512, Dec 2026) the same 90 frames
of 200 x 150 encoded five times in one process gave five different files (with one thread or
two), where the AVX2 code gave one; the same 420 frames of 320 x 320 (tests/test_spot.py's
animated photo) gave three different files in six encodings, and one of them carried enough
other compression noise to turn a still mouth into a weak macro-expression (z 8.4) that hid a
real micro-expression (a CI failure). The cap costs nothing measurable there (5.7 ms a
640 x 480 frame with it and without, one core). The file is then a function of the frames on
every machine, though not the same file on every machine: x264's assembly is not bit-exact
with its C code (with `asm=AVX2` and with no assembly it wrote two different files of the same
frames), so CPUs of other kinds may differ.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from microau_gui.core.cores import cpu_flags
from microau_gui.core.errors import UserError
from microau_gui.core.files import atomic_path
from microau_gui.media.images import IMAGE_SUFFIXES, list_image_files

log = logging.getLogger(__name__)

CODECS = ("h264", "mpeg4", "mjpeg")
DEFAULT_GOP = 30  # frames between keyframes
# Fixed, not automatic (see the module docstring); 2 is what the automatic count gave on the
# 2-core machines that the tests' tolerances were set on, so their clips did not change.
ENCODER_THREADS = 2
_TIME_BASE_VFR = Fraction(1, 1000)  # ms ticks for files written with explicit frame times
_FF_QP2LAMBDA = 118  # FFmpeg's scale between a quantiser and `global_quality`


def h264_available() -> bool:
    """Whether PyAV's bundled FFmpeg can encode H.264 (libx264)."""
    return "libx264" in av.codecs_available


def rate_fraction(fps: float | Fraction) -> Fraction:
    """A frame rate as the exact rational FFmpeg stores (29.97 -> 30000/1001)."""
    if fps <= 0:
        raise ValueError(f"fps must be positive, not {fps}")
    return Fraction(fps).limit_denominator(1001)


def _as_rgb(frame: np.ndarray) -> np.ndarray:
    rgb = np.asarray(frame)
    if rgb.ndim == 2:
        rgb = np.repeat(rgb[:, :, None], 3, axis=2)  # (H, W) -> (H, W, 3)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"frames must be (H, W, 3) uint8 RGB, got {rgb.shape} {rgb.dtype}")
    return np.ascontiguousarray(rgb)


def _x264_options() -> dict[str, str]:
    """libx264 options that keep it off its AVX-512 code (module docstring), where the CPU has it.

    x264 takes `asm` as the instruction set to use, not as a ceiling, so it is only set where
    the CPU reports AVX-512, which every such x86 CPU pairs with AVX2. Only Linux reports the
    flags (`core.cores.cpu_flags`); elsewhere x264 chooses (and an AVX-512 CPU there may write
    other bytes each time).
    """
    return {"x264-params": "asm=AVX2"} if "avx512f" in cpu_flags() else {}


def write_video(
    path: Path | str,
    frames: Iterable[np.ndarray],
    fps: float | Fraction,
    codec: str = "h264",
    gop: int | None = None,
    bframes: int | None = None,
    crf: int = 18,
    quality: int = 3,
    times_s: Sequence[float] | None = None,
) -> int:
    """Encode RGB frames into a video file; return the number of frames written.

    codec: "h264" (libx264, falls back to "mpeg4" when unavailable), "mpeg4" or "mjpeg".
    gop: frames between keyframes (default 30: a random seek then decodes at most 30 frames,
    which keeps 720p scrubbing near 50 ms on one core). bframes: B-frames between references (default 2
    for h264/mpeg4; MJPEG has none). crf: libx264 constant rate factor (0 lossless ... 51).
    quality: MPEG-4/MJPEG quantiser (2 best ... 31 worst). times_s: optional presentation time
    of every frame in seconds (increasing) to write a variable-frame-rate file; otherwise frame k
    is shown at k / fps. mp4/mov files carry their index at the front (faststart).
    """
    path = Path(path)
    if codec not in CODECS:
        raise ValueError(f"codec must be one of {CODECS}, not {codec!r}")
    encoder = {"h264": "libx264", "mpeg4": "mpeg4", "mjpeg": "mjpeg"}[codec]
    if encoder == "libx264" and not h264_available():
        log.warning("PyAV's FFmpeg has no libx264; writing MPEG-4 Part 2 instead of H.264")
        encoder = "mpeg4"
    rate = rate_fraction(fps)
    gop = int(gop) if gop is not None else DEFAULT_GOP
    if bframes is None:
        bframes = 0 if encoder == "mjpeg" else 2
    path.parent.mkdir(parents=True, exist_ok=True)
    options = {"movflags": "+faststart"} if path.suffix.lower() in (".mp4", ".mov", ".m4v") else {}

    n_written = 0
    with atomic_path(path) as tmp:  # keeps the suffix, which the muxer picks the format by
        with av.open(str(tmp), mode="w", options=options) as container:
            stream = container.add_stream(encoder, rate=rate)
            ctx = stream.codec_context
            if times_s is not None:
                ctx.time_base = _TIME_BASE_VFR
                stream.time_base = _TIME_BASE_VFR
            codec_options: dict[str, str] = {"g": str(gop), "threads": str(ENCODER_THREADS)}
            if encoder == "libx264":
                stream.pix_fmt = "yuv420p"
                codec_options.update({
                    "crf": str(crf), "preset": "veryfast", "bf": str(bframes),
                    "sc_threshold": "0", "keyint_min": str(gop), **_x264_options(),
                })
            elif encoder == "mpeg4":
                stream.pix_fmt = "yuv420p"
                codec_options.update({"bf": str(bframes), "flags": "+qscale",
                                      "global_quality": str(quality * _FF_QP2LAMBDA)})
            else:
                stream.pix_fmt = "yuvj420p"
                codec_options.update({"flags": "+qscale", "global_quality": str(quality * _FF_QP2LAMBDA)})
            stream.options = codec_options
            size: tuple[int, int] | None = None
            for k, frame in enumerate(frames):
                rgb = _as_rgb(frame)
                if size is None:
                    size = (rgb.shape[1], rgb.shape[0])
                    if encoder != "mjpeg" and (size[0] % 2 or size[1] % 2):
                        raise ValueError(f"{codec} needs an even width and height, got {size[0]}x{size[1]}")
                    stream.width, stream.height = size
                elif (rgb.shape[1], rgb.shape[0]) != size:
                    raise ValueError(f"frame {k} is {rgb.shape[1]}x{rgb.shape[0]}, the first was {size[0]}x{size[1]}")
                video_frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
                if times_s is not None:
                    if k >= len(times_s):
                        raise ValueError(f"times_s has {len(times_s)} entries but more frames were given")
                    video_frame.pts = round(times_s[k] / _TIME_BASE_VFR)
                    video_frame.time_base = _TIME_BASE_VFR
                else:
                    video_frame.pts = k
                    video_frame.time_base = 1 / rate
                for packet in stream.encode(video_frame):
                    container.mux(packet)
                n_written += 1
            if n_written == 0:
                raise ValueError("no frames to write")
            for packet in stream.encode(None):
                container.mux(packet)
    return n_written


def write_image_sequence(
    folder: Path | str,
    frames: Iterable[np.ndarray],
    pattern: str = "img{n}.jpg",
    first_number: int = 1,
    quality: int = 95,
    overwrite: bool = False,
) -> list[Path]:
    """Write RGB frames as numbered image files; return their paths in frame order.

    pattern: file name with `{n}` for the frame number (a format spec is allowed: `{n:05d}`);
    its suffix picks the format (jpg/png/bmp/tif). quality: JPEG quality 0-100.
    overwrite: a folder that already holds images is refused unless True, in which case those
    image files (and only those) are deleted first, so no stale frame can join the sequence.
    """
    folder = Path(folder)
    if "{n" not in pattern:
        raise ValueError(f"pattern must contain {{n}}, got {pattern!r}")
    suffix = Path(pattern.format(n=0)).suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        raise ValueError(f"pattern must end in one of {IMAGE_SUFFIXES}, got {pattern!r}")
    folder.mkdir(parents=True, exist_ok=True)
    existing = list_image_files(folder)
    if existing:
        if not overwrite:
            raise UserError(f"{folder} already holds {len(existing)} images; choose an empty folder")
        for stale in existing:
            stale.unlink()
    params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)] if suffix in (".jpg", ".jpeg") else []
    written: list[Path] = []
    for k, frame in enumerate(frames):
        rgb = _as_rgb(frame)
        ok, data = cv2.imencode(suffix, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params)
        if not ok:
            raise ValueError(f"OpenCV could not encode frame {k} as {suffix}")
        path = folder / pattern.format(n=first_number + k)
        data.tofile(str(path))
        written.append(path)
    return written
