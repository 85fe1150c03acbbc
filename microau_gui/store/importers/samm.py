"""SAMM FACS coding files: SAMM_Micro_FACS_Codes_v2.xlsx.

Owns: `import_samm`, `SAMM_HEADER`, `SAMM_PREAMBLE_ROWS`. May import core only.

The sheet `MICRO_ONLY` opens with 13 preamble rows (title, licence, legend) before the header
row; public loaders read it with `header=13`. The header spells frames with spaces:

    Subject | Filename | Inducement Code | Onset Frame | Apex Frame | Offset Frame | Duration |
    Type | Action Units | Estimated Emotion | Objective Classes | Notes

(the type column is headed `Micro` in some releases). The header row is found by name within
the first rows, so the preamble length and column order may vary. Subjects are numbers (6 ->
'006'). AU strings such as `7B`, `A12B`, `ref(43)` and `(R6 or R12)` are parsed by
`core.aus`. Media layout: `MEDIA_ROOT/006/006_1_2/006_05562.jpg` (frame number 5562).
"""

from __future__ import annotations

from pathlib import Path

from microau_gui.core.types import Dataset
from microau_gui.store.importers.headered import Layout, import_headered, padded_subject
from microau_gui.store.importers.rows import FrameIndexer, Progress, RawRow, RowBuilder, subject_folder_variants

SAMM_SHEET = "MICRO_ONLY"
SAMM_PREAMBLE_ROWS = 13
SAMM_HEADER: tuple[str, ...] = (
    "Subject", "Filename", "Inducement Code", "Onset Frame", "Apex Frame", "Offset Frame",
    "Duration", "Type", "Action Units", "Estimated Emotion", "Objective Classes", "Notes",
)


def _clip_folder(builder: RowBuilder, raw: RawRow, cells: dict) -> Path | None:
    names = subject_folder_variants(raw.subject, ("",))
    subject_dir = builder.child(builder.media_root, names, raw.row, "subject folder")
    if subject_dir is not None:
        clip_dir = builder.child(subject_dir, [raw.clip], raw.row, "clip folder")
        if clip_dir is not None:
            return clip_dir
    # Some copies flatten the subject level: MEDIA_ROOT/006_1_2/.
    clip_dir = builder.child(builder.media_root, [raw.clip], raw.row, "clip folder")
    if clip_dir is None:
        builder.skipped(raw.row, f"clip folder {names[0]}/{raw.clip} is missing from {builder.media_root}")
    return clip_dir


LAYOUT = Layout(
    kind="samm",
    what="a SAMM FACS coding file",
    required=("subject", "clip", "onset", "offset"),
    prefer_sheets=(SAMM_SHEET,),
    subject=padded_subject(3),
    media=_clip_folder,
)


def import_samm(
    sheet: Path | str,
    media_root: Path | str,
    frame_index: FrameIndexer | None = None,
    progress: Progress | None = None,
) -> Dataset:
    """Import SAMM_Micro_FACS_Codes_v2.xlsx (sheet MICRO_ONLY) or a CSV export of it."""
    return import_headered(LAYOUT, sheet, media_root, frame_index, progress)
