"""Writing Samples back as coding sheets that the importers read unchanged.

Owns: `write_casme2_sheet`, `write_megc_sheet`, `write_dataset_csv`. May import core only (plus
openpyxl and the standard library).

Used by the synthetic generator (its clips ship with a CASME II coding file, so the real
importer path is exercised) and by exports. Frame numbers come from the Samples' `*_number`
fields (an apex_number of None is written as '/', as CASME II does). The suffix picks the format:
.xlsx (openpyxl; every text cell is written as text, never as a formula) or .csv. Files are written to a temporary name and renamed, so an existing
sheet is never left half-written. Writing then importing recovers every label exactly.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from pathlib import Path

from microau_gui.core.aus import au_cell_text
from microau_gui.core.files import atomic_path
from microau_gui.core.types import Sample
from microau_gui.store.importers.casme2 import HEADER_2014, HEADER_2019
from microau_gui.store.importers.megc import MEGC_TYPE_TEXT
from microau_gui.store.importers.own_csv import CSV_COLUMNS

CASME2_LAYOUTS = ("2014", "2019")


def _number_cell(text: str | None) -> object:
    """Digits-only text as a number cell (CASME II stores AU 12 and class 1 as numbers)."""
    if text is not None and text.isdigit():
        return int(text)
    return text


def _required_number(sample: Sample, field: str) -> int:
    value = getattr(sample, field)
    if value is None:
        raise ValueError(f"sample {sample.key} has no {field}; set the sheet frame numbers before writing")
    return value


def _text_safe_cell(sheet, row: int, column: int, value: object) -> None:
    """Write one cell; text stays text, so '=HYPERLINK(...)' in an emotion is never a formula.

    openpyxl turns any string starting with '=' into a formula; forcing the string type writes
    it as a plain (shared) string that Excel shows verbatim and the importers read back exactly.
    Control characters that XML cannot hold become U+FFFD instead of aborting the export.
    """
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    if isinstance(value, str):
        value = ILLEGAL_CHARACTERS_RE.sub("\ufffd", value)
    cell = sheet.cell(row=row, column=column, value=value)
    if isinstance(value, str):
        cell.data_type = "s"


def _write(path: Path, header: Sequence[str | None] | None, rows: Iterable[Sequence[object]],
           sheet_name: str = "Sheet1") -> Path:
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".xlsx", ".csv"):
        raise ValueError(f"write a coding sheet as .xlsx or .csv, not {path.name}")
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        if suffix == ".xlsx":
            import openpyxl

            workbook = openpyxl.Workbook()
            sheet = workbook.active
            sheet.title = sheet_name
            for r, row in enumerate(([list(header)] if header is not None else []) + list(rows), 1):
                for c, value in enumerate(row, 1):
                    if value is not None:
                        _text_safe_cell(sheet, r, c, value)
            workbook.save(tmp)
        else:
            with open(tmp, "w", newline="", encoding="utf-8") as handle:
                writer = csv.writer(handle)
                if header is not None:
                    writer.writerow(["" if h is None else h for h in header])
                for row in rows:
                    writer.writerow(["" if v is None else v for v in row])
    return path


def write_casme2_sheet(samples: Iterable[Sample], path: Path | str, layout: str = "2019") -> Path:
    """Write samples in the CASME II coding layout (see store.importers.casme2).

    layout "2014": 9 columns; "2019": adds Objective Classes. Subjects are written as text
    ('01'); AU strings and objective classes that are plain digits become number cells. CASME II
    has no expression-type column: every row imports as micro.
    """
    if layout not in CASME2_LAYOUTS:
        raise ValueError(f"layout must be one of {CASME2_LAYOUTS}, not {layout!r}")
    header = HEADER_2019 if layout == "2019" else HEADER_2014
    rows = []
    for s in samples:
        row: list[object] = [
            s.subject, s.clip, None,
            _required_number(s, "onset_number"),
            "/" if s.apex_number is None else s.apex_number,
            _required_number(s, "offset_number"),
            None,
            _number_cell(au_cell_text(s.aus, s.aus_cell) or None),
            s.emotion,
        ]
        if layout == "2019":
            row.append(_number_cell(s.objective_class))
        rows.append(row)
    return _write(Path(path), header, rows)


def write_megc_sheet(samples: Iterable[Sample], path: Path | str) -> Path:
    """Write spotting ground truth in the CAS(ME)^2 code_final layout (no header row).

    Columns: subject, clip, onset, apex, offset, AUs, emotion, expression type
    ('micro-expression' / 'macro-expression'). For video media the numbers are frame indices.
    """
    rows = [
        [
            s.subject, s.clip,
            _required_number(s, "onset_number"),
            s.apex_number,
            _required_number(s, "offset_number"),
            au_cell_text(s.aus, s.aus_cell) or None,
            s.emotion,
            MEGC_TYPE_TEXT[s.expression_type],
        ]
        for s in samples
    ]
    return _write(Path(path), None, rows)


def write_dataset_csv(samples: Iterable[Sample], path: Path | str, media_root: Path | str | None = None) -> Path:
    """Write our own dataset CSV (columns in store.importers.own_csv); media relative to media_root."""
    root = Path(media_root).resolve() if media_root is not None else None
    rows = []
    for s in samples:
        media = Path(s.media_path)
        if root is not None:
            try:
                media = media.resolve().relative_to(root)
            except ValueError:
                pass
        rows.append([
            s.subject, s.clip,
            _required_number(s, "onset_number"),
            "/" if s.apex_number is None else s.apex_number,
            _required_number(s, "offset_number"),
            media.as_posix(),
            au_cell_text(s.aus, s.aus_cell) or None,
            s.emotion,
            s.objective_class,
            s.expression_type,
        ])
    if Path(path).suffix.lower() != ".csv":
        raise ValueError(f"the dataset CSV must end in .csv, not {Path(path).name}")
    return _write(Path(path), CSV_COLUMNS, rows)
