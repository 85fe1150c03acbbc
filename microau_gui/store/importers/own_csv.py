"""MicroAU Studio's own dataset CSV: one row per coded expression, any media layout.

Owns: `import_dataset_csv`, `CSV_COLUMNS`. May import core only.

Columns (header row required, names as below, order free; only the first five are required):

    subject          subject id as text, e.g. 01, 006, spNO.1
    clip             clip / video id, e.g. EP02_01f
    onset            frame numbers as the media numbers them: the number in an image file's
    apex               name (img46.jpg -> 46), or the 0-based frame index for a video file;
    offset             apex may be blank or '/' (the middle frame is used, reported)
    media            clip folder or video file, relative to MEDIA_ROOT (or absolute);
                       blank: MEDIA_ROOT/<subject>/<clip> or MEDIA_ROOT/<clip> (video suffix optional)
    aus              FACS string, e.g. 4+7+L10, A12B, ref(43)
    emotion          free text
    objective_class  free text, e.g. I-VII
    expression_type  micro or macro (blank: micro)

`write_dataset_csv` (store.importers.writers) writes exactly these columns.
"""

from __future__ import annotations

from pathlib import Path

from microau_gui.core.types import Dataset
from microau_gui.store.importers.headered import Layout, import_headered, text_subject
from microau_gui.store.importers.rows import FrameIndexer, Progress, RawRow, RowBuilder, subject_folder_variants
from microau_gui.store.importers.table import cell_text

CSV_COLUMNS: tuple[str, ...] = (
    "subject", "clip", "onset", "apex", "offset", "media", "aus", "emotion", "objective_class", "expression_type",
)


def _media(builder: RowBuilder, raw: RawRow, cells: dict) -> Path | None:
    given = cell_text(cells.get("media"))
    if given:
        path = Path(given).expanduser()
        path = path if path.is_absolute() else builder.media_root / path
        if not path.exists():
            builder.skipped(raw.row, f"media {given} is missing from {builder.media_root}")
            return None
        return path
    subject_dir = builder.child(builder.media_root, subject_folder_variants(raw.subject, ("", "sub")),
                                raw.row, "subject folder")
    for folder in ([subject_dir] if subject_dir is not None else []) + [builder.media_root]:
        found = builder.child_media(folder, raw.clip, raw.row, "clip")
        if found is not None:
            return found
    builder.skipped(raw.row, f"clip {raw.subject}/{raw.clip} is missing from {builder.media_root}")
    return None


LAYOUT = Layout(
    kind="csv",
    what="a MicroAU Studio dataset CSV",
    required=("subject", "clip", "onset", "offset"),
    prefer_sheets=(),
    subject=text_subject,
    media=_media,
)


def import_dataset_csv(
    sheet: Path | str,
    media_root: Path | str,
    frame_index: FrameIndexer | None = None,
    progress: Progress | None = None,
) -> Dataset:
    """Import our own CSV (see the module docstring for its columns)."""
    return import_headered(LAYOUT, sheet, media_root, frame_index, progress)
