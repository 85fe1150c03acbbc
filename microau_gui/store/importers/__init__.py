"""Dataset importers: coding spreadsheets -> `core.types.Dataset` plus a report of every fixed or skipped row.

Owns: `import_dataset` (the one entry point), the per-dataset importers, and the writers that
produce sheets in the same layouts. May import core only (plus openpyxl); no torch, no Qt.

    import_dataset(kind, sheet, media_root, frame_index=None, fps=None, progress=None) -> Dataset

kind: "casme2" | "samm" | "casme3" | "megc" | "csv". Every importer reads .xlsx and .csv (old
.xls files are refused with a message saying to re-save them). Labels are keyed to 0-based
frame_idx in the clip's media; the sheet's own numbers stay in `Sample.*_number`.

frame_index: a callable path -> object with `frame_numbers` and `fps` (e.g.
`microau_gui.media.frame_index`). The store may not import `media`, so callers pass it; without
it image folders are listed by file name here and video media are refused.
"""

from __future__ import annotations

from pathlib import Path

from microau_gui.core.errors import UserError
from microau_gui.core.types import Dataset
from microau_gui.store.importers.casme2 import import_casme2
from microau_gui.store.importers.casme3 import import_casme3
from microau_gui.store.importers.megc import import_megc
from microau_gui.store.importers.own_csv import CSV_COLUMNS, import_dataset_csv
from microau_gui.store.importers.rows import FolderIndex, FrameIndex, FrameIndexer, Progress, scan_image_folder
from microau_gui.store.importers.samm import import_samm
from microau_gui.store.importers.writers import write_casme2_sheet, write_dataset_csv, write_megc_sheet

KINDS = ("casme2", "samm", "casme3", "megc", "csv")
# Recording frame rates of the datasets that ship as image folders, which store none (from the
# datasets' papers: CASME II and SAMM 200 fps, CAS(ME)^3 30 fps). MEGC sheets and our CSV mix
# sources, so their rate must come from the media or the user.
DATASET_FPS: dict[str, float] = {"casme2": 200.0, "samm": 200.0, "casme3": 30.0}


def import_dataset(
    kind: str,
    sheet: Path | str,
    media_root: Path | str,
    frame_index: FrameIndexer | None = None,
    fps: float | None = None,
    progress: Progress | None = None,
) -> Dataset:
    """Import one coding sheet. fps is used only by "megc", to type rows that state no type."""
    if kind not in KINDS:
        raise UserError(f"unknown dataset kind {kind!r}; use one of {', '.join(KINDS)}")
    if kind == "megc":
        return import_megc(sheet, media_root, frame_index=frame_index, fps=fps, progress=progress)
    importer = {"casme2": import_casme2, "samm": import_samm, "casme3": import_casme3, "csv": import_dataset_csv}[kind]
    return importer(sheet, media_root, frame_index=frame_index, progress=progress)


__all__ = [
    "CSV_COLUMNS",
    "DATASET_FPS",
    "KINDS",
    "FolderIndex",
    "FrameIndex",
    "FrameIndexer",
    "Progress",
    "import_casme2",
    "import_casme3",
    "import_dataset",
    "import_dataset_csv",
    "import_megc",
    "import_samm",
    "scan_image_folder",
    "write_casme2_sheet",
    "write_dataset_csv",
    "write_megc_sheet",
]
