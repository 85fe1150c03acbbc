"""CASME II coding files: CASME2-coding-20140508.xlsx (2014) and CASME2-coding-20190701.xlsx (2019).

Owns: `import_casme2`, the two header layouts (`HEADER_2014`, `HEADER_2019`). May import core only.

The real files (verified against public loaders of both releases) have nine columns, two of
them with blank header cells that pandas calls `Unnamed: 2` and `Unnamed: 6`:

    Subject | Filename | (blank) | OnsetFrame | ApexFrame | OffsetFrame | (blank) | Action Units | Estimated Emotion

The 2019 layout used here appends `Objective Classes` (the I-VII classes of Davison et al.,
published for CASME II in `CASME2-ObjectiveClasses.xlsx`), making ten. Columns are found by
name, so either order and either release import. Quirks handled: `Subject` as text ('01') or
as a number (1 -> '01'); AU cells as a number (12) or text ('4+7+L10', '?' in 2014); apex '/'.
Media layout: `MEDIA_ROOT/sub01/EP02_01f/img46.jpg`; the frame number is the one in the name.
"""

from __future__ import annotations

from pathlib import Path

from microau_gui.core.types import Dataset
from microau_gui.store.importers.headered import Layout, import_headered, padded_subject
from microau_gui.store.importers.rows import FrameIndexer, Progress, RawRow, RowBuilder, subject_folder_variants

HEADER_2014: tuple[str | None, ...] = (
    "Subject", "Filename", None, "OnsetFrame", "ApexFrame", "OffsetFrame", None,
    "Action Units", "Estimated Emotion",
)
HEADER_2019: tuple[str | None, ...] = HEADER_2014 + ("Objective Classes",)


def _clip_folder(builder: RowBuilder, raw: RawRow, cells: dict) -> Path | None:
    names = subject_folder_variants(raw.subject, ("sub",))
    subject_dir = builder.child(builder.media_root, names, raw.row, "subject folder")
    if subject_dir is None:
        builder.skipped(raw.row, f"subject folder {names[0]} is missing from {builder.media_root}")
        return None
    clip_dir = builder.child(subject_dir, [raw.clip], raw.row, "clip folder")
    if clip_dir is None:
        builder.skipped(raw.row, f"clip folder {subject_dir.name}/{raw.clip} is missing")
        return None
    return clip_dir


LAYOUT = Layout(
    kind="casme2",
    what="a CASME II coding file",
    required=("subject", "clip", "onset", "offset"),
    prefer_sheets=("Sheet1",),
    subject=padded_subject(2),
    media=_clip_folder,
)


def import_casme2(
    sheet: Path | str,
    media_root: Path | str,
    frame_index: FrameIndexer | None = None,
    progress: Progress | None = None,
) -> Dataset:
    """Import a CASME II coding file (2014 or 2019 layout, .xlsx or .csv)."""
    return import_headered(LAYOUT, sheet, media_root, frame_index, progress)
