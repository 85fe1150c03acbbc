"""Reading coding spreadsheets (.xlsx / .csv) into plain rows, and finding their header row.

Owns: `Table`, `read_tables`, `find_header`, cell parsing (`cell_text`, `cell_int`) and header
normalisation. May import core only (plus openpyxl and the standard library).

Sheets are read in bounded memory and time: .xlsx workbooks are streamed (openpyxl read-only
mode, ignoring the sheet's declared dimension), each row ends at its last non-blank cell, and a
sheet with data past MAX_DATA_ROWS rows or MAX_COLUMNS columns, more than MAX_CELLS cells or an
unpacked size past MAX_UNPACKED_BYTES is refused with a one-line UserError.

Rows keep their 1-based sheet row number so every report line points at the row a user sees
in Excel. Headers are matched after normalisation (lower case, letters and digits only), so
`OnsetFrame`, `Onset Frame` and `onset_frame` are one name; blank header cells are allowed.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

from microau_gui.core.errors import UserError

SHEET_SUFFIXES = (".xlsx", ".xlsm", ".csv")
HEADER_SCAN_ROWS = 40  # SAMM has 13 preamble rows; leave room for longer ones
# Bounds that keep a hostile or broken sheet from taking the machine (real coding sheets: CASME II
# 256 rows x 10 columns, CAS(ME)^3 ~1,100 rows, SAMM-LV ~350 rows; all well inside these).
MAX_ROWS = 1_048_576  # Excel's own last row; a row number past it is not a real sheet
MAX_DATA_ROWS = 200_000  # rows that hold data
MAX_COLUMNS = 256  # the last column holding data (coding sheets use about 10-15)
# Together these keep one sheet's read under ~300 MB of memory, whatever its content.
MAX_CELLS = 2_000_000  # cells visited in one sheet, blank ones included
MAX_UNPACKED_BYTES = 50_000_000  # an .xlsx's parts, unpacked (real coding workbooks: < 1 MB)
MAX_CSV_BYTES = 20_000_000  # decoded text can take 4 bytes a character


@dataclass(frozen=True)
class Table:
    """One sheet of a workbook (or a whole CSV file)."""

    path: Path
    sheet_name: str | None  # None for CSV
    rows: tuple[tuple[int, tuple[object, ...]], ...]  # (1-based sheet row, cells); blank rows dropped


def _is_blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def cell_text(value: object) -> str | None:
    """A cell as stripped text; numbers without a fraction lose their `.0`; blank -> None."""
    if _is_blank(value):
        return None
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    return str(value).strip()


_INT_TEXT = re.compile(r"^[+]?\d+(?:\.0*)?$")


def cell_int(value: object) -> int | None:
    """A cell as a whole number (46, 46.0, '46', ' 46 ', '46.0'), else None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    text = str(value).strip()
    if _INT_TEXT.match(text):
        return int(float(text))
    return None


def normalise_header(value: object) -> str:
    return re.sub(r"[^a-z0-9]", "", str(value).lower()) if value is not None else ""


def _check_zip(path: Path) -> None:
    """Refuse a workbook whose parts would unpack past MAX_UNPACKED_BYTES (a zip bomb)."""
    try:
        with zipfile.ZipFile(path) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, OSError, ValueError) as err:
        raise UserError(f"could not read {path.name}: not a valid Excel .xlsx file ({err}); "
                        "re-save it as .xlsx or .csv") from None
    if unpacked > MAX_UNPACKED_BYTES:
        raise UserError(f"could not read {path.name}: it unpacks to {unpacked / 1e6:.0f} MB, more "
                        f"than a coding sheet needs ({MAX_UNPACKED_BYTES / 1e6:.0f} MB); save only "
                        "the coding sheet as .xlsx or .csv")


def _too_big(path: Path, sheet: str | None, what: str) -> UserError:
    where = f"sheet {sheet!r} of {path.name}" if sheet else path.name
    return UserError(f"{where} {what}; a coding sheet holds at most {MAX_DATA_ROWS} rows of "
                     f"{MAX_COLUMNS} columns: delete the rows and columns outside the coding table "
                     "and save it again")


class _Limits:
    """Counts what one sheet costs to read and stops before it costs too much."""

    def __init__(self, path: Path, sheet: str | None):
        self.path, self.sheet = path, sheet
        self.cells = 0
        self.data_rows = 0

    def keep(self, row_number: int, cells: tuple) -> tuple | None:
        """The row's cells up to its last non-blank one, or None for a blank row."""
        self.cells += len(cells)
        if self.cells > MAX_CELLS:
            raise _too_big(self.path, self.sheet, f"has more than {MAX_CELLS} cells")
        last = len(cells)
        while last and _is_blank(cells[last - 1]):
            last -= 1
        if not last:
            return None
        if row_number > MAX_ROWS:
            raise _too_big(self.path, self.sheet, f"has data in row {row_number}")
        if last > MAX_COLUMNS:
            raise _too_big(self.path, self.sheet, f"has data in column {last} (row {row_number})")
        self.data_rows += 1
        if self.data_rows > MAX_DATA_ROWS:
            raise _too_big(self.path, self.sheet, f"has more than {MAX_DATA_ROWS} rows of data")
        return tuple(cells[:last])


def _read_xlsx(path: Path) -> list[Table]:
    import openpyxl  # imported here: only spreadsheet imports pay for it

    _check_zip(path)
    try:
        with warnings.catch_warnings():
            # openpyxl warns about Excel features it ignores (data validation, styles).
            warnings.simplefilter("ignore")
            # read_only streams each sheet's XML row by row instead of building every cell.
            workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as err:
        raise UserError(f"could not read {path.name}: not a valid Excel .xlsx file ({err}); "
                        "re-save it as .xlsx or .csv") from None
    except Exception as err:  # openpyxl raises its own types for malformed parts
        raise UserError(f"could not read {path.name}: {type(err).__name__}: {err}; "
                        "re-save it as .xlsx or .csv") from None
    tables = []
    try:
        for sheet in workbook.worksheets:
            if not hasattr(sheet, "reset_dimensions"):  # a chartsheet holds no cells
                continue
            # The declared dimension (<dimension ref="A1:XFD1048576">) is only a claim; without
            # it every row is as wide as its own last cell and missing rows cost nothing.
            sheet.reset_dimensions()
            limits = _Limits(path, sheet.title)
            rows = []
            try:
                for row_number, cells in enumerate(sheet.iter_rows(values_only=True), start=1):
                    if row_number > MAX_ROWS and not cells:
                        raise _too_big(path, sheet.title, f"has rows past row {MAX_ROWS}")
                    kept = limits.keep(row_number, cells)
                    if kept is not None:
                        rows.append((row_number, kept))
            except UserError:
                raise
            except Exception as err:  # malformed sheet XML, bad cell references, bad dates
                raise UserError(f"could not read sheet {sheet.title!r} of {path.name}: "
                                f"{type(err).__name__}: {err}; re-save it as .xlsx or .csv") from None
            tables.append(Table(path=path, sheet_name=sheet.title, rows=tuple(rows)))
    finally:
        workbook.close()
    return tables


def _read_csv(path: Path) -> list[Table]:
    size = path.stat().st_size
    if size > MAX_CSV_BYTES:
        raise UserError(f"{path.name} is {size / 1e6:.0f} MB, more than a coding sheet needs "
                        f"({MAX_CSV_BYTES / 1e6:.0f} MB); save only the coding table")
    raw = path.read_bytes()
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            text = raw.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise UserError(f"could not read {path.name}: unknown text encoding; save it as UTF-8 CSV")
    if "\x00" in text:
        raise UserError(f"could not read {path.name}: it is not a text CSV file; save it as .csv or .xlsx")
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    limits = _Limits(path, None)
    rows = []
    try:
        for row_number, cells in enumerate(csv.reader(io.StringIO(text, newline=""), dialect), start=1):
            kept = limits.keep(row_number, tuple(c if c.strip() else None for c in cells))
            if kept is not None:
                rows.append((row_number, kept))
    except csv.Error as err:
        raise UserError(f"could not read {path.name}: {err}; save it as a plain CSV file") from None
    return [Table(path=path, sheet_name=None, rows=tuple(rows))]


def read_tables(path: Path | str) -> list[Table]:
    """Every sheet of an .xlsx workbook, or the one table of a .csv file."""
    path = Path(path).expanduser()
    if not path.exists():
        raise UserError(f"sheet {path} does not exist")
    if path.is_dir():
        raise UserError(f"{path} is a folder; give the coding sheet (.xlsx or .csv)")
    suffix = path.suffix.lower()
    if suffix == ".xls":
        raise UserError(f"{path.name} is an old Excel .xls file, which cannot be read; open it in "
                        "Excel or LibreOffice and save it as .xlsx or .csv")
    if suffix in (".xlsx", ".xlsm"):
        return _read_xlsx(path)
    if suffix == ".csv":
        return _read_csv(path)
    raise UserError(f"{path.name} is not a spreadsheet; give an .xlsx or .csv file")


@dataclass(frozen=True)
class Header:
    """Where a sheet's header row is and which column holds each field."""

    position: int  # index into Table.rows of the header row
    columns: dict[str, int]  # field name -> 0-based column


def find_header(table: Table, aliases: dict[str, tuple[str, ...]], required: tuple[str, ...]) -> Header | None:
    """The first row among the first HEADER_SCAN_ROWS naming every required field, or None.

    aliases: field -> accepted header spellings, already normalised (see normalise_header).
    """
    for position, (_, cells) in enumerate(table.rows[:HEADER_SCAN_ROWS]):
        names = [normalise_header(c) for c in cells]
        columns: dict[str, int] = {}
        for field, spellings in aliases.items():
            for col, name in enumerate(names):
                if name and name in spellings:
                    columns[field] = col
                    break
        if all(f in columns for f in required):
            return Header(position=position, columns=columns)
    return None


def cell(cells: tuple[object, ...], col: int | None) -> object:
    return cells[col] if col is not None and col < len(cells) else None
