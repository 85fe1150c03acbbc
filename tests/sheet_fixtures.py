"""Helpers that write small coding sheets in each real dataset layout, plus matching media folders.

The header spellings are written out literally here (not taken from the importers), as the
public loaders of each release read them:
- CASME II 2014 `CASME2-coding-20140508.xlsx`: 9 columns, blank header cells at C and G.
- CASME II 2019 `CASME2-coding-20190701.xlsx` as we write it: the same plus `Objective Classes`.
- SAMM `SAMM_Micro_FACS_Codes_v2.xlsx`: sheet MICRO_ONLY, 13 preamble rows, then the header.
- CAS(ME)^3 Part A `cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx`: sheet `label`, every cell text.
- MEGC CAS(ME)^2 `CAS(ME)^2code_final(Updated).xlsx`: no header row.
- MEGC SAMM-LV `SAMM_LongVideos_V2_Release.xlsx`: preamble rows, header with `Onset`/`Type`.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from pathlib import Path

import cv2
import numpy as np
import openpyxl

CASME2_2014_HEADER = ["Subject", "Filename", None, "OnsetFrame", "ApexFrame", "OffsetFrame", None,
                      "Action Units", "Estimated Emotion"]
CASME2_2019_HEADER = CASME2_2014_HEADER + ["Objective Classes"]
SAMM_HEADER = ["Subject", "Filename", "Inducement Code", "Onset Frame", "Apex Frame", "Offset Frame",
               "Duration", "Type", "Action Units", "Estimated Emotion", "Objective Classes", "Notes"]
SAMM_PREAMBLE = [
    ["SAMM Micro-Facial Movement Dataset - FACS codes"],
    ["Version 2"],
    [],
    ["Manchester Metropolitan University"],
    ["Coded by two certified FACS coders"],
    [],
    ["Inducement codes refer to the stimuli table"],
    ["Onset/Apex/Offset are frame numbers of the 200 fps image sequences"],
    [],
    ["AU notation: L/R side, A asymmetric, A-E intensity, ref() referred"],
    [],
    ["Only micro movements are listed on this sheet"],
    [],
]
CASME3_HEADER = ["Subject", "Filename", "Onset", "Apex", "Offset", "AU", "Objective class", "emotion"]
SAMM_LV_HEADER = ["Subject", "Filename", "Inducement Code", "Onset", "Apex", "Offset", "Duration",
                  "Type", "Action Units", "Notes"]


def write_xlsx(path: Path, sheets: dict[str, Sequence[Sequence[object]]]) -> Path:
    """One worksheet per entry; rows appended as given (None cells stay blank)."""
    workbook = openpyxl.Workbook()
    workbook.remove(workbook.active)
    for name, rows in sheets.items():
        sheet = workbook.create_sheet(name)
        for row in rows:
            sheet.append(list(row))
    workbook.save(path)
    return path


def write_csv(path: Path, rows: Iterable[Sequence[object]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        for row in rows:
            writer.writerow(["" if v is None else v for v in row])
    return path


def casme2_sheet(path: Path, rows: Sequence[Sequence[object]], layout: str = "2019") -> Path:
    """rows: (subject, filename, onset, apex, offset, aus, emotion[, objective class])."""
    header = CASME2_2019_HEADER if layout == "2019" else CASME2_2014_HEADER
    table = [header]
    for r in rows:
        subject, filename, onset, apex, offset, aus, emotion, *rest = r
        line = [subject, filename, None, onset, apex, offset, None, aus, emotion]
        if layout == "2019":
            line.append(rest[0] if rest else None)
        table.append(line)
    if path.suffix == ".csv":
        return write_csv(path, table)
    return write_xlsx(path, {"Sheet1": table})


def samm_sheet(path: Path, rows: Sequence[Sequence[object]]) -> Path:
    """rows: (subject, filename, onset, apex, offset, aus, emotion, objective class)."""
    table = [list(r) for r in SAMM_PREAMBLE] + [SAMM_HEADER]
    for subject, filename, onset, apex, offset, aus, emotion, objective in rows:
        duration = offset - onset + 1 if isinstance(onset, int) and isinstance(offset, int) else None
        table.append([subject, filename, f"{int(str(subject)):03d}_{filename.split('_')[1]}", onset, apex,
                      offset, duration, "Micro - 1/2", aus, emotion, objective, None])
    # A second sheet as in the release, which the importer must not read.
    return write_xlsx(path, {"MICRO_ONLY": table, "ALL": [["Subject", "Notes"], [6, "macro and micro"]]})


def casme3_sheet(path: Path, rows: Sequence[Sequence[object]]) -> Path:
    """rows: (subject, filename, onset, apex, offset, au, objective class, emotion), stored as text."""
    table = [CASME3_HEADER] + [["" if v is None else str(v) for v in r] for r in rows]
    return write_xlsx(path, {"label": table})


def megc_casme_sq_sheet(path: Path, rows: Sequence[Sequence[object]]) -> Path:
    """No header. rows: (subject, video, onset, apex, offset, AUs, emotion, type[, self-report])."""
    if path.suffix == ".csv":
        return write_csv(path, rows)
    return write_xlsx(path, {"Sheet1": rows})


def samm_lv_sheet(path: Path, rows: Sequence[Sequence[object]]) -> Path:
    """rows: (subject, filename, onset, apex, offset, type, aus)."""
    preamble = [["SAMM Long Videos"], ["V2 release"], [], ["Frame numbers are 0-based in this sheet"],
                [], [], [], [], []]
    table = preamble + [SAMM_LV_HEADER]
    for subject, filename, onset, apex, offset, kind, aus in rows:
        table.append([subject, filename, filename.split("_")[1], onset, apex, offset, offset - onset + 1,
                      kind, aus, None])
    return write_xlsx(path, {"FACS": table})


def image_folder(folder: Path, numbers: Iterable[int], pattern: str = "img{n}.jpg") -> Path:
    """A clip folder of tiny images with the given frame numbers (content irrelevant to importers)."""
    folder.mkdir(parents=True, exist_ok=True)
    pixel = np.full((4, 4, 3), 128, np.uint8)
    suffix = Path(pattern).suffix
    ok, data = cv2.imencode(suffix, pixel)
    assert ok
    for n in numbers:
        (folder / pattern.format(n=n)).write_bytes(data.tobytes())
    return folder
