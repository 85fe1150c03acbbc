"""The shared import loop for coding sheets that have a header row (CASME II, SAMM, CAS(ME)^3, ours).

Owns: `Layout`, `import_headered`, the header spellings (`ALIASES`). May import core only.

Columns are found by header name, not by position, so the CASME II 2014 and 2019 layouts (and
blank separator columns wherever they sit) are read by one code path. Each layout says which
sheet to prefer, how to write the subject id and where a row's clip lives under the media root.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from microau_gui.core.errors import UserError
from microau_gui.core.types import Dataset
from microau_gui.store.importers.rows import (
    FrameIndexer,
    Progress,
    RawRow,
    RowBuilder,
    parse_expression_type,
)
from microau_gui.store.importers.table import Table, cell, cell_text, find_header, read_tables

# Accepted header spellings per field, normalised (lower case, letters and digits only).
ALIASES: dict[str, tuple[str, ...]] = {
    "subject": ("subject", "participant", "subjectid", "sub"),
    "clip": ("filename", "clip", "video", "videoname", "file"),
    "onset": ("onsetframe", "onset", "onsetf"),
    "apex": ("apexframe", "apex", "apexf", "apexf1"),
    "offset": ("offsetframe", "offset", "offsetf"),
    "aus": ("actionunits", "actionunit", "au", "aus"),
    "emotion": ("estimatedemotion", "emotion"),
    "objective_class": ("objectiveclasses", "objectiveclass"),
    # SAMM's micro-only sheet calls its type column "Micro" in some releases, "Type" in others.
    "expression_type": ("expressiontype", "type", "micro"),
    "media": ("media", "mediapath"),
}

# (builder, row, every mapped cell by field) -> clip folder / video, or None after reporting a skip
MediaLookup = Callable[[RowBuilder, RawRow, dict], "Path | None"]


@dataclass(frozen=True)
class Layout:
    kind: str  # importer name, e.g. "casme2"
    what: str  # for messages, e.g. "a CASME II coding file"
    required: tuple[str, ...]  # fields whose columns must exist
    prefer_sheets: tuple[str, ...]  # sheet names to try first (case-insensitive)
    subject: Callable[[object], str | None]  # subject cell -> id as the dataset writes it
    media: MediaLookup  # row -> clip folder / video, or None after reporting a skip


def _find(layout: Layout, tables: list[Table]):
    preferred = {n.lower() for n in layout.prefer_sheets}
    ordered = sorted(tables, key=lambda t: (t.sheet_name or "").lower() not in preferred)
    for table in ordered:
        header = find_header(table, {f: ALIASES[f] for f in ALIASES}, layout.required)
        if header is not None:
            return table, header
    sheet = tables[0].path.name if tables else "the sheet"
    wanted = ", ".join(f"'{ALIASES[f][0]}'" for f in layout.required)
    raise UserError(f"{sheet} does not look like {layout.what}: no row in its first sheets names "
                    f"the columns {wanted}; check the file and the dataset kind")


def import_headered(
    layout: Layout,
    sheet: Path | str,
    media_root: Path | str,
    frame_index: FrameIndexer | None = None,
    progress: Progress | None = None,
) -> Dataset:
    sheet = Path(sheet).expanduser()
    tables = read_tables(sheet)
    builder = RowBuilder(layout.kind, sheet, Path(media_root), frame_index)
    table, header = _find(layout, tables)
    cols = header.columns
    data = table.rows[header.position + 1:]
    for done, (row, cells) in enumerate(data, start=1):
        if progress is not None:
            progress(done, len(data))
        builder.n_rows += 1
        subject = layout.subject(cell(cells, cols["subject"]))
        clip = cell_text(cell(cells, cols["clip"]))
        if subject is None or clip is None:
            missing = "subject" if subject is None else "clip name (Filename)"
            builder.skipped(row, f"no {missing}")
            continue
        raw = RawRow(
            row=row,
            subject=subject,
            clip=clip,
            onset=cell(cells, cols.get("onset")),
            apex=cell(cells, cols.get("apex")),
            offset=cell(cells, cols.get("offset")),
            aus=cell(cells, cols.get("aus")),
            emotion=cell(cells, cols.get("emotion")),
            objective_class=cell(cells, cols.get("objective_class")),
        )
        media_path = layout.media(builder, raw, {f: cell(cells, c) for f, c in cols.items()})
        if media_path is None:
            continue
        expression_type = parse_expression_type(cell(cells, cols.get("expression_type"))) or "micro"
        builder.build(raw, media_path, expression_type=expression_type)
    return builder.dataset()


def text_subject(value: object) -> str | None:
    return cell_text(value)


def padded_subject(width: int) -> Callable[[object], str | None]:
    """Numeric subject ids (1, '1', '01') become the zero-padded folder id ('01', '006').

    Sheets store them as numbers or text, and CSV exports drop leading zeros, so one form is
    chosen: the one the dataset's folders use.
    """

    def subject(value: object) -> str | None:
        text = cell_text(value)
        if text is not None and text.isdigit():
            return text.zfill(width) if len(text) < width else text
        return text

    return subject
