"""Opening any supported media path, and describing it without keeping it open.

Owns: `open_media`, `probe_media`, `MediaInfo`, `frame_index`, `MediaIndex`, `VIDEO_SUFFIXES`.
May import core and the other media modules (plus numpy, PyAV, OpenCV). No torch, no Qt.

`frame_index` is what dataset importers (store layer) need from a media path: its frame numbers
and frame rate. The store may not import this package (sibling layers are independent), so the
callers above both (CLI, synth, training) hand `frame_index` to `store.importers.import_dataset`.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path

from microau_gui.core.errors import UserError
from microau_gui.media.base import DEFAULT_CACHE_FRAMES, FrameSource
from microau_gui.media.images import IMAGE_SUFFIXES, ImageSequenceSource
from microau_gui.media.proxy import find_proxy
from microau_gui.media.video import VideoSource

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".m4v", ".webm")


def open_media(
    path: Path | str,
    numbering: str = "file",
    cache_frames: int = DEFAULT_CACHE_FRAMES,
    fps: float | None = None,
    decoder_threads: int = 1,
    use_proxy: bool = True,
) -> FrameSource:
    """Open a video file or an image-sequence folder as a FrameSource.

    numbering: "file" (frame number from each file name) or "ordinal" (1..N, CAS(ME)^3 Part C);
    videos always number their frames 0..N-1. fps: frame rate of an image folder (files store
    none); ignored for videos, whose container says. decoder_threads: video decoding threads
    (1 leaves the second core to inference; 2 shortens seeks in long-GOP files on an idle machine).
    use_proxy: attach the video's seek proxy when one was built (`media.proxy`); random reads
    then decode from it, with identical frames.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise UserError(f"{path} does not exist; give a video file (mp4/avi/mov/mkv) or a folder of images")
    if path.is_dir():
        return ImageSequenceSource(path, numbering=numbering, fps=fps, cache_frames=cache_frames)
    suffix = path.suffix.lower()
    if suffix in VIDEO_SUFFIXES:
        source = VideoSource(path, cache_frames=cache_frames, threads=decoder_threads)
        if use_proxy:
            try:
                proxy = find_proxy(path, n_frames=source.n_frames)
                if proxy is not None:
                    source.attach_proxy(proxy)
            except UserError as err:  # the proxy only speeds seeks up; the original is enough
                log.warning("%s: seek proxy not used (%s)", path.name, err)
        return source
    if suffix in IMAGE_SUFFIXES:
        raise UserError(f"{path.name} is a single image; give the folder that holds the whole sequence")
    raise UserError(f"{path.name} is not a video (mp4/avi/mov/mkv) or a folder of images")


@dataclass(frozen=True)
class MediaInfo:
    """What `python main.py info` reports about a media path."""

    path: str
    kind: str  # "video" or "images"
    codec: str  # e.g. "h264", "mjpeg", "jpeg"
    n_frames: int
    fps: float
    fps_is_nominal: bool  # image folders store no frame rate: fps is assumed
    width: int  # px
    height: int  # px
    is_vfr: bool  # variable frame rate
    duration_s: float
    first_number: int  # frame number of frame_idx 0 as a coding sheet writes it
    last_number: int
    n_decodable: int  # frames that can be read; < n_frames for truncated videos
    max_gop: int  # longest keyframe interval in frames (1 for image folders and intra-only video)

    def as_dict(self) -> dict:
        return asdict(self)


def probe_media(path: Path | str, numbering: str = "file", fps: float | None = None) -> MediaInfo:
    """Describe a media path (opens it, reads at most one frame for the size)."""
    with open_media(path, numbering=numbering, cache_frames=1, fps=fps, use_proxy=False) as source:
        numbers = source.frame_numbers
        width, height = source.size
        is_video = isinstance(source, VideoSource)
        n_decodable = source.n_decodable if is_video else source.n_frames
        return MediaInfo(
            path=str(source.path),
            kind=source.kind,
            codec=source.codec,
            n_frames=source.n_frames,
            fps=source.fps,
            fps_is_nominal=source.fps_is_nominal,
            width=width,
            height=height,
            is_vfr=source.is_vfr,
            duration_s=source.duration_s,
            first_number=numbers[0],
            last_number=numbers[-1],
            n_decodable=n_decodable,
            max_gop=source.max_gop if is_video else 1,
        )


@dataclass(frozen=True)
class MediaIndex:
    """Frame numbers and frame rate of one media path, as a coding-sheet importer needs them."""

    frame_numbers: tuple[int, ...]  # sheet number of each frame_idx
    fps: float | None  # None for image folders (no stored frame rate)


def frame_index(path: Path | str, numbering: str = "file") -> MediaIndex:
    """Frame numbers and fps of a media path; lists folders and demuxes videos, decodes nothing."""
    with open_media(path, numbering=numbering, cache_frames=0, use_proxy=False) as source:
        fps = None if source.fps_is_nominal else source.fps
        return MediaIndex(frame_numbers=source.frame_numbers, fps=fps)
