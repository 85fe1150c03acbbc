"""Turning parsed sheet rows into Samples: media lookup, frame-number mapping and row fixes.

Owns: `RawRow`, `RowBuilder`, the `FrameIndex` protocol, `scan_image_folder`. May import core
only (plus the standard library).

Frame numbers: a sheet writes its own frame numbers (CASME II `img46.jpg` is 46); a Sample keeps
them in `*_number` and stores `frame_idx`s into the media source. The mapping comes from a
`FrameIndex` of the clip's media: `frame_numbers[frame_idx]` is the sheet number of that frame.
The store layer may not import `media` (sibling layers are independent), so callers that can
(CLI, synth, training) pass `media.frame_index`; without it, image folders are listed here by
file name with the same rule (natural sort, last integer of the stem) and videos are refused.

A clip whose frame numbers have gaps is imported with its numbers (reported once, as "noted");
an apex that falls in a gap becomes the nearest existing frame (reported).

Fixes a row may get (each reported): a missing or unusable apex ('/', blank, not in the clip,
outside onset-offset) becomes the middle frame; AU tokens the parser cannot read are reported
and kept in `Sample.aus_cell` (the cell as written), which exports write back;
a clip folder whose name differs only in letter case is used. Rows are skipped (and reported)
when their clip folder is missing, onset/offset are not frame numbers of the clip, offset comes
before onset, or they repeat an earlier row.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from microau_gui.core.aus import parse_au_string
from microau_gui.core.errors import UserError
from microau_gui.core.progress import Progress  # (rows done, rows total); raise inside to cancel
from microau_gui.core.types import Dataset, ImportReport, RowIssue, Sample
from microau_gui.store.importers.table import cell_int, cell_text

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".m4v", ".webm")
MICRO_MAX_S = 0.5  # MEGC: an expression lasting at most 0.5 s is micro



class FrameIndex(Protocol):
    """What an importer needs to know about one media path (`media.MediaIndex` fits)."""

    @property
    def frame_numbers(self) -> tuple[int, ...]: ...

    @property
    def fps(self) -> float | None: ...


FrameIndexer = Callable[[Path], FrameIndex]


@dataclass(frozen=True)
class FolderIndex:
    frame_numbers: tuple[int, ...]
    fps: float | None = None  # image files store no frame rate


_DIGITS = re.compile(r"(\d+)")
_LAST_INT = re.compile(r"(\d+)(?!.*\d)")


def _natural_key(name: str) -> tuple:
    chunks = tuple((0, int(p)) if p.isdigit() else (1, p.lower()) for p in _DIGITS.split(name) if p)
    return chunks, name


def scan_image_folder(path: Path) -> FolderIndex:
    """Frame numbers of an image folder from its file names alone (same rule as media)."""
    path = Path(path)
    if not path.is_dir():
        raise UserError(
            f"{path.name} is a video; importing labels on videos needs its frame count: pass "
            "frame_index=microau_gui.media.frame_index (the CLI does)"
        )
    names = sorted(
        (p.name for p in path.iterdir()
         if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".") and p.is_file()),
        key=_natural_key,
    )
    if not names:
        raise UserError(f"{path} holds no images")
    numbers = []
    for name in names:
        match = _LAST_INT.search(Path(name).stem)
        if match is None:
            raise UserError(f"{name} in {path} has no frame number in its name")
        numbers.append(int(match.group(1)))
    if len(set(numbers)) != len(numbers):
        raise UserError(f"{path} has two image files with the same frame number")
    return FolderIndex(frame_numbers=tuple(numbers))


@dataclass
class RawRow:
    """The cells of one sheet row an importer cares about, not yet validated."""

    row: int  # 1-based sheet row
    subject: str
    clip: str
    onset: object
    apex: object
    offset: object
    aus: object = None
    emotion: object = None
    objective_class: object = None


def subject_folder_variants(subject: str, prefixes: Sequence[str]) -> list[str]:
    """Folder names a subject id may appear as: each prefix + the id, zero-padded to 2 and 3."""
    ids = [subject]
    if subject.isdigit():
        ids += [subject.zfill(2), subject.zfill(3), str(int(subject))]
    names: list[str] = []
    for prefix in prefixes:
        for sid in ids:
            if prefix + sid not in names:
                names.append(prefix + sid)
    return names


def parse_expression_type(value: object) -> str | None:
    text = (cell_text(value) or "").lower()
    if "macro" in text:
        return "macro"
    if "micro" in text:
        return "micro"
    return None


class RowBuilder:
    """Collects samples and row issues for one import run; caches folder listings and indices."""

    def __init__(self, kind: str, sheet: Path, media_root: Path, frame_index: FrameIndexer | None):
        self.kind = kind
        self.sheet = Path(sheet)
        self.media_root = Path(media_root).expanduser().absolute()
        if not self.media_root.is_dir():
            raise UserError(f"media folder {self.media_root} does not exist; give the folder that "
                            "holds the dataset's subject folders")
        self._frame_index = frame_index or scan_image_folder
        self.samples: list[Sample] = []
        self.issues: list[RowIssue] = []
        self.n_rows = 0
        self._listings: dict[Path, dict[str, Path]] = {}
        self._indices: dict[Path, FrameIndex | str] = {}  # an error message when unreadable
        self._number_maps: dict[Path, dict[int, int]] = {}  # sheet frame number -> frame_idx
        self._seen: dict[tuple, int] = {}

    # -- reporting ---------------------------------------------------------------------------
    def fixed(self, row: int, reason: str) -> None:
        self.issues.append(RowIssue(row=row, action="fixed", reason=reason))

    def skipped(self, row: int, reason: str) -> None:
        self.issues.append(RowIssue(row=row, action="skipped", reason=reason))

    def noted(self, row: int, reason: str) -> None:
        """Something the user should know that changed nothing (e.g. gaps in a clip's numbering)."""
        self.issues.append(RowIssue(row=row, action="noted", reason=reason))

    def relative(self, path: Path) -> str:
        try:
            return path.relative_to(self.media_root).as_posix()
        except ValueError:
            return str(path)

    # -- media lookup ------------------------------------------------------------------------
    def child(self, folder: Path, names: Sequence[str], row: int, what: str) -> Path | None:
        """The first of `names` inside `folder`; a name differing only in case is used, reported."""
        if folder not in self._listings:
            try:
                self._listings[folder] = {p.name: p for p in folder.iterdir()} if folder.is_dir() else {}
            except OSError:
                self._listings[folder] = {}
        listing = self._listings[folder]
        for name in names:
            if name in listing:
                return listing[name]
        lowered = {n.lower(): p for n, p in listing.items()}
        for name in names:
            match = lowered.get(name.lower())
            if match is not None:
                self.fixed(row, f"{what} '{name}' found as '{match.name}' (letter case differs)")
                return match
        return None

    def child_media(self, folder: Path, name: str, row: int, what: str) -> Path | None:
        """A clip folder or a video file named `name` (with or without its suffix) in `folder`."""
        return self.child(folder, [name] + [name + s for s in VIDEO_SUFFIXES], row, what)

    def index_of(self, media_path: Path, row: int) -> FrameIndex | None:
        if media_path not in self._indices:
            try:
                self._indices[media_path] = self._frame_index(media_path)
            except UserError as err:
                self._indices[media_path] = str(err)
            except OSError as err:
                self._indices[media_path] = f"{err.strerror or err}"
            numbers = getattr(self._indices[media_path], "frame_numbers", ())
            gaps = tuple((a + 1, b - 1) for a, b in zip(numbers, numbers[1:]) if b - a > 1)
            if gaps:
                missing = ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in gaps[:6])
                self.noted(row, f"media {self.relative(media_path)} has gaps in its frame "
                                f"numbering (missing {missing}{' ...' if len(gaps) > 6 else ''}); "
                                "its frames keep the dataset's numbers")
        index = self._indices[media_path]
        if isinstance(index, str):
            self.skipped(row, f"media {self.relative(media_path)} is unreadable: {index}")
            return None
        if not index.frame_numbers:
            self.skipped(row, f"media {self.relative(media_path)} has no frames")
            return None
        return index

    # -- one row -----------------------------------------------------------------------------
    def build(
        self,
        raw: RawRow,
        media_path: Path,
        expression_type: str | None = "micro",
        fps: float | None = None,
    ) -> Sample | None:
        """Validate one row against its media; append and return the Sample, or None if skipped.

        expression_type None: derive micro/macro from the duration (MEGC sheets without a type),
        using `fps` or the media's frame rate.
        """
        row = raw.row
        onset_n, offset_n = cell_int(raw.onset), cell_int(raw.offset)
        for name, value, number in (("onset", raw.onset, onset_n), ("offset", raw.offset, offset_n)):
            if number is None:
                text = cell_text(value)
                self.skipped(row, f"{name} {text!r} is not a frame number" if text else f"no {name} frame")
                return None
        index = self.index_of(media_path, row)
        if index is None:
            return None
        numbers = index.frame_numbers
        number_to_idx = self._number_maps.get(media_path)
        if number_to_idx is None:
            number_to_idx = self._number_maps[media_path] = {n: i for i, n in enumerate(numbers)}
        clip = f"{self.relative(media_path)} (frames {numbers[0]}-{numbers[-1]})"
        onset, offset = number_to_idx.get(onset_n), number_to_idx.get(offset_n)
        if onset is None or offset is None:
            name, number = ("onset", onset_n) if onset is None else ("offset", offset_n)
            self.skipped(row, f"{name} frame {number} is not in {clip}")
            return None
        if offset < onset:
            self.skipped(row, f"offset frame {offset_n} comes before onset frame {onset_n}")
            return None
        key = (raw.subject, raw.clip, onset, offset)
        if key in self._seen:
            self.skipped(row, f"repeats row {self._seen[key]} (same subject, clip, onset and offset)")
            return None
        if expression_type is None:
            rate = fps or index.fps
            if not rate:
                self.skipped(row, "no expression type and no frame rate to derive it from the "
                                  "duration; pass the frame rate (--fps)")
                return None
            duration_s = (offset - onset + 1) / rate
            expression_type = "micro" if duration_s <= MICRO_MAX_S else "macro"
            self.fixed(row, f"no expression type: {expression_type} from its duration "
                            f"{duration_s:.2f} s at {rate:g} fps")

        apex_n = cell_int(raw.apex)
        apex = number_to_idx.get(apex_n) if apex_n is not None else None
        middle = (onset + offset) // 2
        apex_number: int | None = apex_n
        if apex_n is None:
            text = cell_text(raw.apex)
            if text == "/":
                said = "apex is '/' (not coded)"
            else:
                said = f"apex {text!r} is not a frame number" if text else "no apex frame"
            self.fixed(row, f"{said}: used the middle frame {numbers[middle]}")
            apex, apex_number = middle, None
        elif apex is None and onset_n < apex_n < offset_n:
            # The apex falls in a gap of the numbering: the nearest frame that exists (ties go
            # to the earlier one), not the middle of the event.
            nearest = min(range(onset, offset + 1), key=lambda i: (abs(numbers[i] - apex_n), i))
            self.fixed(row, f"apex frame {apex_n} falls in a gap of {clip}: the apex sits on "
                            f"the nearest frame {numbers[nearest]}; exports keep {apex_n}")
            apex, apex_number = nearest, apex_n
        elif apex is None or not onset <= apex <= offset:
            where = f"is not in {clip}" if apex is None else f"lies outside onset {onset_n} - offset {offset_n}"
            self.fixed(row, f"apex frame {apex_n} {where}: used the middle frame {numbers[middle]}")
            apex, apex_number = middle, numbers[middle]

        parsed = parse_au_string(raw.aus)
        if parsed.unparsed:
            kept = "; ".join(f"{token!r} ({why})" for token, why in parsed.unparsed)
            self.fixed(row, f"AU cell {cell_text(raw.aus)!r}: not parsed, kept in the cell text: {kept}")

        self._seen[key] = row
        sample = Sample(
            subject=raw.subject,
            clip=raw.clip,
            media_path=media_path,
            onset=onset,
            apex=apex,
            offset=offset,
            aus=parsed.codes,
            emotion=cell_text(raw.emotion),
            objective_class=cell_text(raw.objective_class),
            expression_type=expression_type,
            onset_number=onset_n,
            apex_number=apex_number,
            offset_number=offset_n,
            row=row,
            aus_cell=cell_text(raw.aus),
        )
        self.samples.append(sample)
        return sample

    def dataset(self) -> Dataset:
        report = ImportReport(kind=self.kind, sheet=self.sheet, n_rows=self.n_rows, issues=tuple(self.issues))
        return Dataset(kind=self.kind, sheet=self.sheet, media_root=self.media_root,
                       samples=tuple(self.samples), report=report)
