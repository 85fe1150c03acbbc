"""Frame <-> time for the time-based formats (ELAN, BORIS, per-frame tables).

Owns: `FrameClock`. May import numpy and the standard library.

A frame's identity is its dataset number (DESIGN.md section 5): a CASME II folder img46..img80 has
numbers 46..80, a video its decode indices. Time follows the number, as the media layer's image
sources say: t = (number - first number) / fps. So a folder with missing images keeps the times
its numbers mean, and a time read back lands on the frame with that number (or, inside a gap, on
the nearest frame that exists).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class FrameClock:
    numbers: np.ndarray  # (n_frames,) int64 ascending: the dataset number of each frame_idx
    fps: float

    @classmethod
    def of(cls, project, video) -> FrameClock:
        return cls(np.asarray(project.frame_numbers(video.id), np.int64), float(video.fps))

    @property
    def first(self) -> int:
        return int(self.numbers[0])

    def number(self, frame_idx: int) -> int:
        return int(self.numbers[frame_idx])

    def start_s(self, frame_idx: int) -> float:
        """When frame `frame_idx` starts."""
        return (self.number(frame_idx) - self.first) / self.fps

    def end_s(self, frame_idx: int) -> float:
        """When frame `frame_idx` ends (where the next number would start)."""
        return (self.number(frame_idx) + 1 - self.first) / self.fps

    def start_ms(self, frame_idx: int) -> int:
        return int(round(self.start_s(frame_idx) * 1000.0))

    def end_ms(self, frame_idx: int) -> int:
        return int(round(self.end_s(frame_idx) * 1000.0))

    def _nearest(self, number: int) -> int:
        i = int(np.searchsorted(self.numbers, number))
        if i <= 0:
            return 0
        if i >= len(self.numbers):
            return len(self.numbers) - 1
        return i if self.numbers[i] - number < number - self.numbers[i - 1] else i - 1

    def frame_starting_at(self, t_ms: float) -> int:
        """The frame_idx whose start is nearest `t_ms` (exact inverse of `start_ms` < 1000 fps)."""
        return self._nearest(self.first + math.floor(t_ms * self.fps / 1000.0 + 0.5))

    def frame_ending_at(self, t_ms: float) -> int:
        """The frame_idx whose end is nearest `t_ms` (exact inverse of `end_ms` < 1000 fps)."""
        return self._nearest(self.first + math.floor(t_ms * self.fps / 1000.0 + 0.5) - 1)
