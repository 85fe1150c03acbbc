"""CAS(ME)^3 Part A labels: cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx.

Owns: `import_casme3`, `CASME3_HEADER`. May import core only.

Sheet `label`; every cell is text, numbers included. Header (as public loaders read it):

    Subject | Filename | Onset | Apex | Offset | AU | Objective class | emotion

Subjects are written `spNO.1`, clips `a`..`m`. Media layout:
`MEDIA_ROOT/spNO.1/a/color/355.jpg` (frame number 355); a clip folder without a `color`
subfolder is used directly. Letter case of folder names is forgiven (and reported).
"""

from __future__ import annotations

from pathlib import Path

from microau_gui.core.types import Dataset
from microau_gui.store.importers.headered import Layout, import_headered, text_subject
from microau_gui.store.importers.rows import FrameIndexer, Progress, RawRow, RowBuilder

CASME3_SHEET = "label"
CASME3_HEADER: tuple[str, ...] = ("Subject", "Filename", "Onset", "Apex", "Offset", "AU", "Objective class", "emotion")


def _clip_folder(builder: RowBuilder, raw: RawRow, cells: dict) -> Path | None:
    subject_dir = builder.child(builder.media_root, [raw.subject], raw.row, "subject folder")
    if subject_dir is None:
        builder.skipped(raw.row, f"subject folder {raw.subject} is missing from {builder.media_root}")
        return None
    clip_dir = builder.child(subject_dir, [raw.clip], raw.row, "clip folder")
    if clip_dir is None:
        builder.skipped(raw.row, f"clip folder {subject_dir.name}/{raw.clip} is missing")
        return None
    if (clip_dir / "color").is_dir():
        return clip_dir / "color"
    return builder.child(clip_dir, ["color"], raw.row, "colour folder") or clip_dir


LAYOUT = Layout(
    kind="casme3",
    what="a CAS(ME)^3 Part A label file",
    required=("subject", "clip", "onset", "offset"),
    prefer_sheets=(CASME3_SHEET,),
    subject=text_subject,
    media=_clip_folder,
)


def import_casme3(
    sheet: Path | str,
    media_root: Path | str,
    frame_index: FrameIndexer | None = None,
    progress: Progress | None = None,
) -> Dataset:
    """Import CAS(ME)^3 Part A labels (.xlsx sheet `label`, or .csv)."""
    return import_headered(LAYOUT, sheet, media_root, frame_index, progress)
