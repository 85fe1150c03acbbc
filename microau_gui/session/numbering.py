"""How frames are numbered on screen: the one formatter every view uses (issue 15 D15, issue 16).

Owns: `Numbering`, `FrameLabels`, `timecode`, `file_numbers`, `FrameNumbering` (the session part).
May import numpy, PySide6.QtCore, core and media (to read an image folder's file names).

A frame's identity is its frame_idx in the store and the dataset's own number in every export
(DESIGN §5 "Frame identity"). On screen the coder picks one numbering and it applies to the HUD,
the frame box, the timeline's ruler, event labels and titles, the lists, the status lines and
the workers' messages (each frame, prediction or analysis request carries the labels of the
moment it was made: `messages.FrameLabel`, set on the playhead by the session):

- `dataset`: the project's numbers, the ones every export writes (CASME II img46.jpg -> 46; a
  video imported from a sheet keeps the sheet's offset). The default.
- `file`: the media's own numbers: the integer in each image's file name (differs from
  `dataset` for folders opened with ordinal numbering), the decode index for a video file.
- `index`: the 0-based position in decoding order.

Exports never follow this choice: they always write dataset numbers (DESIGN §5), so a sheet
written by the window re-imports to the same frames whatever the screen showed.

Times (`t_s`, `timecode`) follow the dataset numbers, as the media layer does: a gap in an
image folder's numbering is a gap in time, not a jump of the clock to the next file.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np
from PySide6.QtCore import QObject, Signal

from microau_gui.core.errors import UserError
from microau_gui.media.images import list_image_files, sequence_numbers


class Numbering(str, Enum):
    DATASET = "dataset"
    FILE = "file"
    INDEX = "index"

    @property
    def title(self) -> str:
        return {"dataset": "Dataset numbers (as exported)", "file": "File numbers",
                "index": "0-based index"}[self.value]


def timecode(t_s: float) -> str:
    """hh:mm:ss.fff, as ELAN writes its time ruler (negative times clamp to zero)."""
    ms = max(0, int(round(t_s * 1000)))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}"


@dataclass(frozen=True)
class FrameLabels:
    """The numbers shown for each frame_idx of one video, and its clock.

    `shown[i]` is the number displayed for frame_idx i under the chosen numbering;
    `dataset[i]` the number exports write (it sets the clock).
    """

    numbering: Numbering
    shown: np.ndarray  # (n_frames,) int64
    dataset: np.ndarray  # (n_frames,) int64
    fps: float

    @classmethod
    def plain(cls, n_frames: int, fps: float, numbering: Numbering = Numbering.DATASET) -> FrameLabels:
        """No project numbers known: number = frame_idx."""
        index = np.arange(max(0, n_frames), dtype=np.int64)
        return cls(numbering, index, index, fps)

    @property
    def n_frames(self) -> int:
        return int(self.shown.size)

    def number(self, frame_idx: int) -> int:
        """The shown number of a frame (frames outside the video count on from its ends)."""
        n = self.shown.size
        if n == 0:
            return int(frame_idx)
        if frame_idx < 0:
            return int(self.shown[0] + frame_idx)
        if frame_idx >= n:
            return int(self.shown[-1] + frame_idx - n + 1)
        return int(self.shown[frame_idx])

    def label(self, *frame_idxs: int) -> str:
        """'124' or, for several frames, '124–162–219'."""
        return "–".join(str(self.number(i)) for i in frame_idxs)

    def frame_of(self, number: int) -> int:
        """The frame_idx shown as `number`, or the nearest one (a number in a gap, or outside)."""
        if self.shown.size == 0:
            return 0
        i = int(np.searchsorted(self.shown, number))  # shown numbers increase with frame_idx
        if i < self.shown.size and self.shown[i] == number:
            return i
        candidates = [j for j in (i - 1, i) if 0 <= j < self.shown.size]
        return min(candidates, key=lambda j: (abs(int(self.shown[j]) - number), j))

    def t_s(self, frame_idx: float) -> float:
        """Seconds from the first frame, by dataset number (fractional frame_idx interpolates)."""
        if self.dataset.size == 0 or self.fps <= 0:
            return 0.0
        position = np.arange(self.dataset.size, dtype=np.float64)
        number = np.interp(frame_idx, position, self.dataset.astype(np.float64),
                           left=np.nan, right=np.nan)
        if np.isnan(number):  # beyond the ends: the clock runs on at one frame per frame_idx
            edge = 0 if frame_idx < 0 else self.dataset.size - 1
            number = float(self.dataset[edge]) + frame_idx - edge
        return float(number - self.dataset[0]) / self.fps

    def timecode(self, frame_idx: float) -> str:
        return timecode(self.t_s(frame_idx))


def file_numbers(media_path, n_frames: int) -> np.ndarray:
    """(n_frames,) int64: an image folder's file-name numbers, a video's decode index; the
    decode index too when the folder cannot be read or no longer matches the project."""
    index = np.arange(n_frames, dtype=np.int64)
    try:
        if media_path is None or not media_path.is_dir():
            return index
        numbers = np.asarray(sequence_numbers(list_image_files(media_path), "file", media_path),
                             dtype=np.int64)
    except (OSError, UserError):
        return index
    return numbers if numbers.size == n_frames else index


class FrameNumbering(QObject):
    """The session part that holds the chosen numbering and the labels of the project's videos.

    `changed` is emitted when the numbering or the open video changes; every view that shows a
    frame number redraws from `labels` (the open video) or `labels_of(video)` (any video of the
    project, e.g. in the project browser).
    """

    changed = Signal()

    def __init__(self, project_getter, parent: QObject | None = None):
        super().__init__(parent)
        self._project = project_getter
        self.numbering = Numbering.DATASET
        self.labels = FrameLabels.plain(0, 0.0)
        self._cache: dict[int, FrameLabels] = {}  # video id -> labels under `numbering`
        self._video = None  # the open store.records.Video

    def set_video(self, video) -> None:
        """A video of the project opened (None: none is open)."""
        self._video = video
        self._refresh()

    def set_numbering(self, numbering: Numbering | str) -> None:
        numbering = Numbering(numbering)
        if numbering == self.numbering:
            return
        self.numbering = numbering
        self._refresh()

    def _refresh(self) -> None:
        self._cache.clear()
        video = self._video
        self.labels = FrameLabels.plain(0, 0.0) if video is None else self.labels_of(video)
        self.changed.emit()

    def labels_of(self, video) -> FrameLabels:
        """The labels of one video of the open project (a `store.records.Video`)."""
        cached = self._cache.get(video.id)
        if cached is not None:
            return cached
        project = self._project()
        dataset = np.arange(video.n_frames, dtype=np.int64)
        if project is not None:
            try:
                numbers = np.asarray(project.frame_numbers(video.id), dtype=np.int64)
            except UserError:  # the video went while we looked: number = frame_idx
                numbers = dataset
            if numbers.size == video.n_frames:
                dataset = numbers
        labels = FrameLabels(self.numbering, self._shown(dataset, video.path), dataset,
                             float(video.fps))
        self._cache[video.id] = labels
        return labels

    def label_in(self, video_id: int, *frame_idxs: int) -> str:
        """Frames of any video of the project, under the chosen numbering ('124–162–219')."""
        project = self._project()
        if self._video is not None and video_id == self._video.id:
            return self.labels.label(*frame_idxs)
        if project is None:
            return "–".join(str(i) for i in frame_idxs)
        return self.labels_of(project.video(video_id)).label(*frame_idxs)

    def _shown(self, dataset: np.ndarray, media_path) -> np.ndarray:
        if self.numbering == Numbering.INDEX:
            return np.arange(dataset.size, dtype=np.int64)
        if self.numbering == Numbering.FILE:
            return file_numbers(media_path, dataset.size)
        return dataset
