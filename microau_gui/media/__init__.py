"""Frame sources: video files and image-sequence folders with frame-exact random access.

Owns: opening, probing, indexing and writing videos and image sequences, and the frame decode
errors.
May import core only (plus numpy, PyAV, OpenCV). No torch, no Qt.

Public API:
- `open_media(path, numbering="file", cache_frames=32, fps=None, decoder_threads=1,
  use_proxy=True) -> FrameSource` (a video's seek proxy is attached when one was built).
- `FrameSource`: `n_frames`, `fps`, `size` (w, h), `is_vfr`, `frame_numbers`,
  `index_of_number(n)`, `read(frame_idx)` (read-only RGB uint8), `iter_frames(start, stop)`,
  `time_s(frame_idx)`, `close()`; a context manager. `VideoSource`, `ImageSequenceSource`.
- Seek proxies (media/proxy.py): lossless short-GOP copies of long-GOP videos whose frames equal
  the original's bit for bit, so random seeks stay fast. `wants_proxy(source)`,
  `build_proxy(path, progress, should_cancel) -> Path` (raises `core.progress.Cancelled`), `find_proxy(path)`,
  `proxy_path_for(path)`, `PROXY_MIN_GOP`; `VideoSource.attach_proxy(path)` / `proxy_path`.
- `probe_media(path) -> MediaInfo` (for `python main.py info`).
- `frame_index(path) -> MediaIndex` (frame numbers + fps, what dataset importers need).
- `write_video(...)`, `write_image_sequence(...)` (media/writer.py).
- Errors: `FrameDecodeError` (names the frame), `FrameOutOfRange`; both are `UserError`s.
"""

from microau_gui.media.base import DEFAULT_CACHE_FRAMES, FrameCache, FrameDecodeError, FrameOutOfRange, FrameSource
from microau_gui.media.images import (
    DEFAULT_SEQUENCE_FPS,
    IMAGE_SUFFIXES,
    ImageSequenceSource,
    frame_number_of,
    list_image_files,
    natural_key,
)
from microau_gui.media.open import VIDEO_SUFFIXES, MediaIndex, MediaInfo, frame_index, open_media, probe_media
from microau_gui.media.proxy import (
    PROXY_MIN_GOP,
    build_proxy,
    estimate_proxy_bytes,
    find_proxy,
    proxy_dir,
    proxy_path_for,
    proxy_unsupported_reason,
    wants_proxy,
)
from microau_gui.media.video import VideoSource
from microau_gui.media.writer import h264_available, write_image_sequence, write_video

__all__ = [
    "DEFAULT_CACHE_FRAMES",
    "DEFAULT_SEQUENCE_FPS",
    "IMAGE_SUFFIXES",
    "PROXY_MIN_GOP",
    "VIDEO_SUFFIXES",
    "FrameCache",
    "FrameDecodeError",
    "FrameOutOfRange",
    "FrameSource",
    "ImageSequenceSource",
    "MediaIndex",
    "MediaInfo",
    "VideoSource",
    "build_proxy",
    "estimate_proxy_bytes",
    "find_proxy",
    "frame_index",
    "frame_number_of",
    "h264_available",
    "list_image_files",
    "natural_key",
    "open_media",
    "probe_media",
    "proxy_dir",
    "proxy_path_for",
    "proxy_unsupported_reason",
    "wants_proxy",
    "write_image_sequence",
    "write_video",
]
