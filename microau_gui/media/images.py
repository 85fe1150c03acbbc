"""Image-sequence folders (how ME datasets ship) as frame sources.

Owns: `ImageSequenceSource`, `list_image_files`, `natural_key`, `frame_number_of`,
`number_gaps`, `describe_gaps`. May import
core only (plus numpy and OpenCV). No torch, no Qt.

Order: files sort naturally, so `img9.jpg` comes before `img10.jpg`; frame_idx is the position
in that order. Numbering: with numbering="file" (default) the frame number is the last integer
in the file stem (`img46.jpg` -> 46, SAMM `006_05562.jpg` -> 5562, CAS(ME)^3 `355.jpg` -> 355);
with numbering="ordinal" (CAS(ME)^3 Part C) it is the position 1..N. Image files store no frame
rate, so `fps` is the value passed in or DEFAULT_SEQUENCE_FPS, and `fps_is_nominal` says so.

Gaps: the frame number is the frame's identity. A folder whose numbers skip some (img1..img19,
img30..) is accepted, `gaps` lists the missing runs so callers can report them, and a frame's
time follows its number (`(number - first_number) / fps`), not its position in the folder.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from microau_gui.core.errors import UserError
from microau_gui.media.base import DEFAULT_CACHE_FRAMES, FrameDecodeError, FrameSource

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
NUMBERINGS = ("file", "ordinal")
# Assumed when nothing says otherwise; CAS(ME)^2/^3 record at 30 fps (CASME II and SAMM at 200).
DEFAULT_SEQUENCE_FPS = 30.0

_DIGITS = re.compile(r"(\d+)")
_LAST_INT = re.compile(r"(\d+)(?!.*\d)")


def natural_key(name: str) -> tuple:
    """Sort key that orders embedded numbers by value: img9 < img10 < img100."""
    parts = _DIGITS.split(name)
    # Tag each chunk so a number never compares with a string; the raw name breaks ties.
    chunks = tuple((0, int(p)) if p.isdigit() else (1, p.lower()) for p in parts if p)
    return chunks, name


def frame_number_of(file_name: str) -> int | None:
    """The last integer in a file's stem, or None when it has none."""
    match = _LAST_INT.search(Path(file_name).stem)
    return int(match.group(1)) if match else None


def list_image_files(folder: Path) -> list[Path]:
    """Image files directly inside `folder`, naturally sorted; hidden files ignored."""
    files = [
        p for p in Path(folder).iterdir()
        if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".") and p.is_file()
    ]
    return sorted(files, key=lambda p: natural_key(p.name))


def sequence_numbers(files: list[Path], numbering: str, folder: Path) -> tuple[int, ...]:
    """Frame numbers for naturally sorted `files` under the given numbering."""
    if numbering not in NUMBERINGS:
        raise UserError(f"numbering must be one of {', '.join(NUMBERINGS)}, not {numbering!r}")
    if numbering == "ordinal":
        return tuple(range(1, len(files) + 1))
    numbers: list[int] = []
    seen: dict[int, str] = {}
    for path in files:
        number = frame_number_of(path.name)
        if number is None:
            raise UserError(
                f"{path.name} in {folder} has no frame number in its name; "
                "open the folder with numbering='ordinal' (--numbering ordinal)"
            )
        if number in seen:
            raise UserError(
                f"{folder} has two files numbered {number} ({seen[number]}, {path.name}); "
                "remove one or open the folder with numbering='ordinal'"
            )
        seen[number] = path.name
        numbers.append(number)
    return tuple(numbers)


def number_gaps(numbers: tuple[int, ...]) -> tuple[tuple[int, int], ...]:
    """Missing runs `(first_missing, last_missing)` between consecutive frame numbers."""
    return tuple((a + 1, b - 1) for a, b in zip(numbers, numbers[1:]) if b - a > 1)


def describe_gaps(gaps: tuple[tuple[int, int], ...]) -> str:
    """`'20-29, 41'` (the first six runs) for reports."""
    runs = [f"{a}" if a == b else f"{a}-{b}" for a, b in gaps[:6]]
    return ", ".join(runs) + (f" and {len(gaps) - 6} more runs" if len(gaps) > 6 else "")


def _imread_rgb(path: Path) -> np.ndarray | None:
    """Decode an image file to RGB uint8, or None when it is not a readable image."""
    try:
        data = np.fromfile(str(path), dtype=np.uint8)  # (n_bytes,); imdecode copes with any path
    except OSError:
        return None
    if data.size == 0:
        return None
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR)  # (H, W, 3) uint8 BGR; grey and 16-bit converted
    if bgr is None:
        return None
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


class ImageSequenceSource(FrameSource):
    """A folder of image files, one file per frame."""

    kind = "images"

    def __init__(
        self,
        folder: Path | str,
        numbering: str = "file",
        fps: float | None = None,
        cache_frames: int = DEFAULT_CACHE_FRAMES,
    ):
        super().__init__(Path(folder), cache_frames)
        if not self.path.is_dir():
            raise UserError(f"{self.path} is not a folder of images")
        self.files = list_image_files(self.path)
        if not self.files:
            subfolders = sorted(p.name for p in self.path.iterdir() if p.is_dir())
            hint = f" (it has folders: {', '.join(subfolders[:6])})" if subfolders else ""
            raise UserError(
                f"{self.path} holds no images ({'/'.join(s[1:] for s in IMAGE_SUFFIXES)}){hint}; "
                "give the folder that holds the frames"
            )
        self.numbering = numbering
        self._numbers = sequence_numbers(self.files, numbering, self.path)
        if fps is not None and fps <= 0:
            raise UserError(f"fps must be positive, not {fps}")
        self._fps = float(fps) if fps is not None else DEFAULT_SEQUENCE_FPS
        self._fps_is_nominal = fps is None
        self._size: tuple[int, int] | None = None  # read lazily: listing a folder decodes nothing

    @property
    def n_frames(self) -> int:
        return len(self.files)

    @property
    def fps(self) -> float:
        return self._fps

    @property
    def fps_is_nominal(self) -> bool:
        return self._fps_is_nominal

    @property
    def is_vfr(self) -> bool:
        return False

    @property
    def frame_numbers(self) -> tuple[int, ...]:
        return self._numbers

    @property
    def gaps(self) -> tuple[tuple[int, int], ...]:
        """Frame numbers missing from the folder, as runs (first, last); empty when none."""
        return number_gaps(self._numbers)

    @property
    def codec(self) -> str:
        suffixes = sorted({p.suffix.lower().lstrip(".") for p in self.files})
        return "/".join("jpeg" if s in ("jpg", "jpeg") else s for s in suffixes)

    @property
    def size(self) -> tuple[int, int]:
        if self._size is None:
            rgb = self.read(0)
            self._size = (rgb.shape[1], rgb.shape[0])
        return self._size

    def time_s(self, frame_idx: int) -> float:
        # By frame number, so a gap in the numbering is a gap in time, not a jump in content.
        return (self._numbers[self.check_index(frame_idx)] - self._numbers[0]) / self._fps

    def file_of(self, frame_idx: int) -> Path:
        return self.files[self.check_index(frame_idx)]

    def _decode(self, frame_idx: int) -> np.ndarray:
        path = self.files[frame_idx]
        rgb = _imread_rgb(path)
        self.n_decoded += 1
        if rgb is None:
            raise FrameDecodeError(
                f"could not decode frame {frame_idx} (0-based) of {self.name} ({path.name}): "
                "not a readable image; replace or remove the file"
            )
        w_h = (rgb.shape[1], rgb.shape[0])
        if self._size is None:
            self._size = w_h
        elif w_h != self._size:
            raise FrameDecodeError(
                f"frame {frame_idx} (0-based) of {self.name} ({path.name}) is {w_h[0]}x{w_h[1]} px but the "
                f"sequence is {self._size[0]}x{self._size[1]} px; every frame must have one size"
            )
        return rgb

    def iter_frames(self, start: int = 0, stop: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
        start, stop = self._check_range(start, stop)
        for frame_idx in range(start, stop):
            rgb = self._decode(frame_idx)
            rgb.setflags(write=False)
            yield frame_idx, rgb
