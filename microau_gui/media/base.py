"""The `FrameSource` interface every frame reader implements, its errors and its frame cache.

Owns: `FrameSource`, `FrameDecodeError`, `FrameOutOfRange`, `FrameCache`. May import core only
(plus numpy). No torch, no Qt.

A frame source is not thread-safe: one owner (e.g. the frame-loader worker) calls it. Frames it
returns are read-only arrays shared with the cache; copy one before drawing on it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from microau_gui.core.errors import UserError

DEFAULT_CACHE_FRAMES = 32  # ~88 MB of 720p RGB; enough to scrub back and forth around the playhead


class FrameDecodeError(UserError):
    """A frame exists in the index but cannot be decoded (truncated or corrupt file)."""


class FrameOutOfRange(UserError, IndexError):
    """A frame index or sheet frame number the source does not have."""


class FrameCache:
    """Least-recently-used cache of decoded frames, keyed by frame_idx."""

    def __init__(self, capacity: int):
        if capacity < 0:
            raise ValueError(f"cache capacity must be >= 0, not {capacity}")
        self.capacity = capacity
        self._frames: OrderedDict[int, np.ndarray] = OrderedDict()

    def get(self, frame_idx: int) -> np.ndarray | None:
        rgb = self._frames.get(frame_idx)
        if rgb is not None:
            self._frames.move_to_end(frame_idx)
        return rgb

    def put(self, frame_idx: int, rgb: np.ndarray) -> None:
        if self.capacity == 0:
            return
        self._frames[frame_idx] = rgb
        self._frames.move_to_end(frame_idx)
        while len(self._frames) > self.capacity:
            self._frames.popitem(last=False)

    def clear(self) -> None:
        self._frames.clear()

    def __len__(self) -> int:
        return len(self._frames)

    def __contains__(self, frame_idx: int) -> bool:
        return frame_idx in self._frames


class FrameSource(ABC):
    """Frame-exact random access to a video file or an image-sequence folder.

    `frame_idx` is 0-based: the n-th frame sequential decoding returns (video) or the n-th file of
    the naturally sorted folder (images). `frame_numbers[frame_idx]` is the number a coding sheet
    uses for that frame: the number in the file name (`img46.jpg` -> 46), the ordinal 1..N for
    folders opened with numbering="ordinal", and frame_idx itself for videos.
    """

    kind: str  # "video" or "images"

    def __init__(self, path: Path, cache_frames: int = DEFAULT_CACHE_FRAMES):
        self.path = Path(path)
        self._cache = FrameCache(cache_frames)
        self._number_to_idx: dict[int, int] | None = None
        # Frames the decoder produced (cache misses, frames passed while seeking); tests and the
        # benchmark read it to prove a cache hit decoded nothing.
        self.n_decoded = 0

    # -- what every source must describe -------------------------------------------------------
    @property
    @abstractmethod
    def n_frames(self) -> int: ...

    @property
    @abstractmethod
    def fps(self) -> float: ...

    @property
    @abstractmethod
    def fps_is_nominal(self) -> bool:
        """True when the files store no frame rate and `fps` is an assumed value."""

    @property
    @abstractmethod
    def size(self) -> tuple[int, int]:
        """(width, height) in px."""

    @property
    @abstractmethod
    def is_vfr(self) -> bool: ...

    @property
    @abstractmethod
    def frame_numbers(self) -> tuple[int, ...]: ...

    @property
    @abstractmethod
    def codec(self) -> str: ...

    @abstractmethod
    def time_s(self, frame_idx: int) -> float:
        """Presentation time of a frame, seconds from the first frame."""

    @abstractmethod
    def _decode(self, frame_idx: int) -> np.ndarray:
        """Decode one frame to a (H, W, 3) uint8 RGB array; raise FrameDecodeError on failure."""

    @abstractmethod
    def iter_frames(self, start: int = 0, stop: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """Yield (frame_idx, rgb) for start <= frame_idx < stop by sequential decoding.

        Does not disturb `read`'s decoder position and does not fill the cache.
        """

    def close(self) -> None:
        self._cache.clear()

    # -- shared behaviour --------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.path.name

    @property
    def duration_s(self) -> float:
        return self.n_frames / self.fps if self.fps > 0 else 0.0

    def read(self, frame_idx: int) -> np.ndarray:
        """The frame at `frame_idx` as a read-only (H, W, 3) uint8 RGB array."""
        frame_idx = self.check_index(frame_idx)
        rgb = self._cache.get(frame_idx)
        if rgb is not None:
            return rgb
        rgb = self._decode(frame_idx)
        rgb.setflags(write=False)
        self._cache.put(frame_idx, rgb)
        return rgb

    def index_of_number(self, number: int) -> int:
        """frame_idx of the frame a coding sheet calls `number`."""
        if self._number_to_idx is None:
            self._number_to_idx = {n: i for i, n in enumerate(self.frame_numbers)}
        try:
            return self._number_to_idx[int(number)]
        except KeyError:
            numbers = self.frame_numbers
            span = f"{numbers[0]}-{numbers[-1]}" if numbers else "none"
            raise FrameOutOfRange(
                f"{self.name} has no frame numbered {number} (its frame numbers run {span}); "
                "check the sheet's frame numbers"
            ) from None

    def check_index(self, frame_idx: int) -> int:
        if isinstance(frame_idx, (bool, np.bool_)) or not isinstance(frame_idx, (int, np.integer)):
            raise TypeError(f"frame_idx must be an int, not {type(frame_idx).__name__}")
        frame_idx = int(frame_idx)
        if not 0 <= frame_idx < self.n_frames:
            raise FrameOutOfRange(
                f"frame {frame_idx} (0-based) is out of range: {self.name} has {self.n_frames} frames "
                f"(0-{self.n_frames - 1})"
            )
        return frame_idx

    def _check_range(self, start: int, stop: int | None) -> tuple[int, int]:
        stop = self.n_frames if stop is None else min(int(stop), self.n_frames)
        start = max(0, int(start))
        return start, stop

    @property
    def cache(self) -> FrameCache:
        return self._cache

    def __len__(self) -> int:
        return self.n_frames

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r}, n_frames={self.n_frames})"
