"""MEGC spotting ground truth: CAS(ME)^2 `code_final` style sheets (no header) and SAMM-LV sheets.

Owns: `import_megc`, `MEGC_COLUMNS`. May import core only.

CAS(ME)^2 (`CAS(ME)^2code_final(Updated).xlsx`) has no header row; public loaders name its
columns positionally:

    subject | video (clip) | onset | apex | offset | AUs | estimated emotion | expression type | self-reported emotion

with types written `micro-expression` / `macro-expression`; an offset of 0 means "not coded"
and is replaced by the apex (reported). SAMM-LV (`SAMM_LongVideos_V2_Release.xlsx`) has a
preamble and a header `Subject, Filename, Inducement Code, Onset, Apex, Offset, Duration,
Type, Action Units, Notes` with types `Micro - 1/2` / `Macro`; when such a header row is
present columns are taken by name. A row without a usable type gets one from its duration
(micro when it lasts <= 0.5 s), reported.

Media: the clip id (or the part before its last '_', SAMM-LV's `006_1_1` -> `006_1`) names a
video file or frame folder, directly in the media root or in a subject folder (`15`, `s15`,
`sub15`, zero-padded variants). For video files, sheet frame numbers are 0-based frame indices.
"""

from __future__ import annotations

from pathlib import Path

from microau_gui.core.types import Dataset
from microau_gui.store.importers.headered import ALIASES
from microau_gui.store.importers.rows import (
    FrameIndexer,
    Progress,
    RawRow,
    RowBuilder,
    parse_expression_type,
    subject_folder_variants,
)
from microau_gui.store.importers.table import cell, cell_int, cell_text, find_header, read_tables

MEGC_COLUMNS: tuple[str, ...] = ("subject", "clip", "onset", "apex", "offset", "aus", "emotion", "expression_type")
MEGC_TYPE_TEXT = {"micro": "micro-expression", "macro": "macro-expression"}


def _media(builder: RowBuilder, raw: RawRow) -> Path | None:
    videos = [raw.clip]
    base = raw.clip.rsplit("_", 1)[0]
    if base != raw.clip:
        videos.append(base)
    folders = [builder.media_root]
    subject_dir = builder.child(builder.media_root, subject_folder_variants(raw.subject, ("", "s", "sub")),
                                raw.row, "subject folder")
    if subject_dir is not None:
        folders.append(subject_dir)
    for folder in folders:
        for video in videos:
            found = builder.child_media(folder, video, raw.row, "video")
            if found is not None:
                return found
    builder.skipped(raw.row, f"no video or frame folder named {' or '.join(videos)} in {builder.media_root} "
                             "or its subject folder")
    return None


def import_megc(
    sheet: Path | str,
    media_root: Path | str,
    frame_index: FrameIndexer | None = None,
    fps: float | None = None,
    progress: Progress | None = None,
) -> Dataset:
    """Import MEGC spotting ground truth; `fps` derives missing expression types (else the video's)."""
    sheet = Path(sheet).expanduser()
    table = read_tables(sheet)[0]
    builder = RowBuilder("megc", sheet, Path(media_root), frame_index)
    header = find_header(table, ALIASES, ("subject", "clip", "onset", "offset"))
    if header is not None:
        cols, data = header.columns, table.rows[header.position + 1:]
    else:
        cols, data = {name: col for col, name in enumerate(MEGC_COLUMNS)}, table.rows
    for done, (row, cells) in enumerate(data, start=1):
        if progress is not None:
            progress(done, len(data))
        builder.n_rows += 1
        subject = cell_text(cell(cells, cols.get("subject")))
        clip = cell_text(cell(cells, cols.get("clip")))
        if subject is None or clip is None:
            builder.skipped(row, f"no {'subject' if subject is None else 'video'}")
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
        media_path = _media(builder, raw)
        if media_path is None:
            continue
        if cell_int(raw.offset) == 0 and cell_int(raw.apex):
            builder.fixed(row, f"offset 0 (not coded): used the apex frame {cell_int(raw.apex)}")
            raw.offset = raw.apex
        expression_type = parse_expression_type(cell(cells, cols.get("expression_type")))
        builder.build(raw, media_path, expression_type=expression_type, fps=fps)
    return builder.dataset()
