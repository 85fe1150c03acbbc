"""Bounded, line-numbered reading of delimited text files for the trace readers.

Owns: `read_table` (header + rows of the columns asked for), `TableError`, the line and field
limits. May import only the standard library and `core`.

Library: Python's `csv` module parses the rows. What it does not do, and we add here: it reads
whole lines into memory (a damaged file with no line breaks would be loaded whole), so every line
is read with a length limit first; and its errors carry no file name or column name, so every
refusal here is one line naming the file, the line and the column.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from microau_gui.core.errors import UserError

# The widest real row we know (OpenFace 2 with every output, ~750 columns) is about 12 KB.
MAX_LINE_CHARS = 1 << 20
MAX_PREAMBLE_LINES = 1000
WATCH_EVERY_ROWS = 2000  # rows between two `watch` calls (an hour of OpenFace at 30 fps: 54)

Watch = Callable[[int, int], None]  # (bytes read, file size); may raise core.progress.Cancelled


class TableError(UserError):
    """A file that is not the table it claims to be (one line, names file and line)."""


@dataclass(frozen=True)
class Table:
    header: tuple[str, ...]  # column names, stripped of surrounding spaces
    preamble: tuple[str, ...]  # lines skipped before the header (iMotions `#` lines)


def _lines(handle: io.TextIOBase, path: Path) -> Iterator[str]:
    number = 0
    while True:
        line = handle.readline(MAX_LINE_CHARS + 1)
        if not line:
            return
        number += 1
        if len(line) > MAX_LINE_CHARS and not line.endswith("\n"):
            raise TableError(f"{path.name}: line {number} is longer than {MAX_LINE_CHARS} "
                             "characters; the file is damaged or not a table of this kind")
        yield line


def read_table(path: Path | str, *, delimiter: str, kind: str,
               is_preamble: Callable[[str], bool] = lambda line: False,
               required: Sequence[str] = (),
               columns: Callable[[tuple[str, ...]], Sequence[str]] = lambda header: header,
               watch: Watch | None = None,
               ) -> tuple[Table, Iterator[tuple[int, dict[str, str]]]]:
    """Open a delimited file; return its header and an iterator of (line number, row).

    `is_preamble(line)` skips lines before the header; `required` columns must be in the header;
    each row holds only the columns `columns(header)` selects (so memory stays with the caller's
    choice, not the file's width). Every problem raises TableError with one line. `watch(bytes
    read, file size)` is called every WATCH_EVERY_ROWS rows and at the end: progress, and the
    place a cancel is raised (the file is closed on the way out).
    """
    path = Path(path)
    try:
        handle = path.open("r", encoding="utf-8-sig", newline="")
    except FileNotFoundError:
        raise UserError(f"{path} does not exist") from None
    except OSError as err:
        raise UserError(f"cannot read {path}: {err.strerror or err}") from None
    lines = _lines(handle, path)
    preamble: list[str] = []
    try:
        for line_no, line in enumerate(lines, 1):
            if line.strip() and not is_preamble(line):
                break
            preamble.append(line.rstrip())
            if line_no > MAX_PREAMBLE_LINES:
                raise TableError(f"{path.name}: no header in the first {MAX_PREAMBLE_LINES} lines; "
                                 f"not a {kind} file")
        else:
            raise TableError(f"{path.name} is empty; not a {kind} file")
        header = tuple(cell.strip() for cell in next(csv.reader([line], delimiter=delimiter)))
    except (UnicodeDecodeError, csv.Error) as err:
        handle.close()
        raise TableError(f"{path.name}: not a readable {kind} file ({err})") from None
    except TableError:
        handle.close()
        raise
    missing = [c for c in required if c not in header]
    if missing:
        handle.close()
        raise TableError(f"{path.name} is not a {kind} file: no column {missing[0]!r} "
                         f"(it has {', '.join(header[:6])}{' ...' if len(header) > 6 else ''})")
    wanted = list(columns(header))
    index = {name: header.index(name) for name in wanted}
    first_line = line_no

    size = os.fstat(handle.fileno()).st_size

    def rows() -> Iterator[tuple[int, dict[str, str]]]:
        with handle:
            reader = csv.reader(lines, delimiter=delimiter)
            try:
                for count, row in enumerate(reader, 1):
                    if watch is not None and count % WATCH_EVERY_ROWS == 0:
                        watch(handle.buffer.tell(), size)  # read-ahead position: near enough
                    number = first_line + reader.line_num
                    if not row or (len(row) == 1 and not row[0].strip()):
                        continue
                    if len(row) < len(header) and len(row) <= max(index.values(), default=-1):
                        raise TableError(f"{path.name}: line {number} has {len(row)} fields, the "
                                         f"header {len(header)}; the file is cut or damaged")
                    yield number, {name: row[i] for name, i in index.items()}
            except (UnicodeDecodeError, csv.Error) as err:
                raise TableError(f"{path.name}: line {first_line + reader.line_num} is not "
                                 f"readable ({err}); the file is damaged") from None
            if watch is not None:
                watch(size, size)

    return Table(header=header, preamble=tuple(preamble)), rows()


def number(text: str, *, path: Path, line: int, column: str) -> float:
    """A cell as float: empty or NaN cells are NaN; anything else non-numeric is refused."""
    text = text.strip()
    if not text or text.lower() in ("nan", "na", "n/a"):
        return math.nan
    try:
        value = float(text)
    except ValueError:
        raise TableError(f"{Path(path).name}: line {line}, column {column!r}: {text[:40]!r} is "
                         "not a number; the file is damaged") from None
    if math.isinf(value):
        raise TableError(f"{Path(path).name}: line {line}, column {column!r} is infinite")
    return value
