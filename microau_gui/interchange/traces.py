"""Readers of other tools' per-frame AU output, as comparison traces aligned to a video's frames.

Owns: `read_trace`, `TOOLS`, `ALIGNMENTS`, `evidence_to_probability`, and one reader per tool
(`read_openface`, `read_imotions`, `read_pyfeat`). May import `core`, `store.traces` and
`interchange.tables`. The traces are stored with `project.traces.put` (store.traces).

Library: none of these files has a maintained reader outside py-feat (`feat.utils.io.read_openface`
/ `read_feat`), which would bring py-feat's model stack into the application; they are plain
delimited text, read with Python's `csv` module through `interchange.tables` (bounded lines,
one-line errors). The column layouts below are the tools' documented ones.

- **OpenFace 2.x `FeatureExtraction` CSV** (comma separated; names after the first start with a
  space, `' AU01_r'`, stripped here). `frame` is 1-based (frame_idx = frame - 1), `timestamp` in
  seconds. `AUxx_r` -> channel `intensity` (0-5), `AUxx_c` -> `presence` (0/1). Rows with
  `success` 0 or `confidence` below `min_confidence` (default 0.8) are masked (NaN), never
  dropped silently: the count is kept in the trace's meta. Multi-face output (`face_id`): the
  rows of the lowest face id are kept, and the meta says so.
- **iMotions / Emotient FACET export** (`.txt`, tab separated, `#` preamble lines, one row per
  sample of every sensor). Only rows whose `EventSource` names FACET and that carry AU values are
  read. `FrameNo` is 0-based (frame_idx = FrameNo; negative numbers, rows before the camera
  started, are skipped), `FrameTime` in ms. `AUx Evidence` -> channel `evidence` (raw) and
  `probability`. Rows with `NoOfFaces` 0 are masked.
  Evidence is documented by Emotient (the FACET engine; Intel RealSense SDK 2014, "Intensity and
  Evidence") as "the odds in 10-based logarithmic scale of a target expression being present":
  odds = 10**E, so P = 10**E / (1 + 10**E) = 1 / (1 + 10**-E). This assumes even prior odds,
  as the definition does; the raw evidence is kept beside it.
- **py-feat Fex CSV** (`Detector.detect` output saved with `to_csv`). `frame` is 0-based,
  optional `approx_time` in seconds; `AUxx` columns are probabilities (0-1) -> channel
  `probability`. Rows without a face (empty AU cells) are masked. Several faces in a frame: the
  one with the highest `FaceScore` is kept.

Alignment: `align="frame"` uses the tool's frame numbers (the file was made from the same video
file); `align="time"` maps its timestamps to the frame numbered first + round(t_s * fps) (the tool
ran on a re-encoded copy or at another rate; time follows the dataset number, as in
interchange.clock). Rows that land outside the video, or on a frame an earlier
row already took, are left out and counted in the meta.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from microau_gui.core.au import CATALOGUE
from microau_gui.core.errors import UserError
from microau_gui.core.progress import Progress, ShouldCancel, check_cancel
from microau_gui.interchange.tables import TableError, Watch, number, read_table
from microau_gui.store.traces import ComparisonTrace

TOOLS = ("openface", "imotions", "pyfeat")
ALIGNMENTS = ("frame", "time")
DEFAULT_MIN_CONFIDENCE = 0.8

_OPENFACE_AU = re.compile(r"^AU(\d\d)_([rc])$")
_IMOTIONS_AU = re.compile(r"^AU(\d{1,2}) Evidence$")
_FEX_AU = re.compile(r"^AU(\d\d)$")


def evidence_to_probability(evidence: np.ndarray) -> np.ndarray:
    """FACET evidence (log10 odds) -> probability, 1 / (1 + 10**-E); NaN stays NaN."""
    evidence = np.asarray(evidence, np.float64)
    with np.errstate(over="ignore"):
        return (1.0 / (1.0 + np.power(10.0, -evidence))).astype(np.float32)


@dataclass
class _Rows:
    """What a reader collected: per row its frame number, time, mask flag and channel values."""

    frame: list[int] = field(default_factory=list)  # the tool's frame_idx (0-based)
    t_s: list[float] = field(default_factory=list)  # NaN where the file has no time
    masked: list[bool] = field(default_factory=list)
    values: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    meta: dict = field(default_factory=dict)


def _catalogued(number_text: str) -> str | None:
    n = int(number_text)
    return f"AU{n}" if n in CATALOGUE else None


def read_openface(path: Path, min_confidence: float = DEFAULT_MIN_CONFIDENCE,
                  watch: Watch | None = None) -> _Rows:
    def au_columns(header):
        return [c for c in header
                if _OPENFACE_AU.match(c) and _catalogued(_OPENFACE_AU.match(c)[1])]

    table, rows = read_table(
        path, delimiter=",", kind="OpenFace FeatureExtraction CSV",
        required=("frame", "timestamp", "success", "confidence"),
        columns=lambda h: ["frame", "timestamp", "success", "confidence",
                           *(["face_id"] if "face_id" in h else []), *au_columns(h)],
        watch=watch)
    aus = au_columns(table.header)
    if not aus:
        raise TableError(f"{path.name} has no AUxx_r or AUxx_c columns; run OpenFace "
                         "FeatureExtraction with -aus (or without output filters)")
    keys = {c: ("intensity" if c.endswith("_r") else "presence",
                _catalogued(_OPENFACE_AU.match(c)[1])) for c in aus}
    out = _Rows(values={key: [] for key in keys.values()})
    face_ids: set[int] = set()
    rows_by_face: list[tuple[int, int, float, bool, dict]] = []
    for line, row in rows:
        cell = lambda c: number(row[c], path=path, line=line, column=c)  # noqa: E731
        frame = cell("frame")
        if math.isnan(frame) or frame < 1:
            raise TableError(f"{path.name}: line {line}: frame {row['frame']!r} is not an "
                             "OpenFace frame number (1, 2, ...)")
        face = int(cell("face_id")) if "face_id" in row else 0
        face_ids.add(face)
        masked = not (cell("success") == 1 and cell("confidence") >= min_confidence)
        rows_by_face.append((face, int(frame) - 1, cell("timestamp"), masked,
                             {keys[c]: cell(c) for c in aus}))
    kept_face = min(face_ids, default=0)
    for face, frame_idx, t_s, masked, values in rows_by_face:
        if face != kept_face:
            continue
        out.frame.append(frame_idx)
        out.t_s.append(t_s)
        out.masked.append(masked)
        for key, value in values.items():
            out.values[key].append(value)
    out.meta = {"min_confidence": min_confidence, "faces": sorted(face_ids),
                "kept_face": kept_face}
    return out


def read_imotions(path: Path, watch: Watch | None = None) -> _Rows:
    def au_columns(header):
        return [c for c in header
                if _IMOTIONS_AU.match(c) and _catalogued(_IMOTIONS_AU.match(c)[1])]

    table, rows = read_table(
        path, delimiter="\t", kind="iMotions FACET export",
        is_preamble=lambda line: line.startswith("#"),
        required=("EventSource", "FrameNo"),
        columns=lambda h: ["EventSource", "FrameNo",
                           *[c for c in ("FrameTime", "NoOfFaces") if c in h], *au_columns(h)],
        watch=watch)
    aus = au_columns(table.header)
    if not aus:
        raise TableError(f"{path.name} has no 'AUx Evidence' columns; export the FACET "
                         "action units from iMotions")
    codes = {c: _catalogued(_IMOTIONS_AU.match(c)[1]) for c in aus}
    out = _Rows(values={("evidence", code): [] for code in codes.values()})
    skipped_negative = 0
    for line, row in rows:
        if "FACET" not in row["EventSource"] or not any(row[c].strip() for c in aus):
            continue  # another sensor's sample (eye tracking, GSR) in the same export
        cell = lambda c: number(row[c], path=path, line=line, column=c)  # noqa: E731
        frame = cell("FrameNo")
        if math.isnan(frame) or frame < 0:
            skipped_negative += 1
            continue
        out.frame.append(int(frame))
        out.t_s.append(cell("FrameTime") / 1000.0 if "FrameTime" in row else math.nan)
        out.masked.append("NoOfFaces" in row and cell("NoOfFaces") == 0)
        for column, code in codes.items():
            out.values[("evidence", code)].append(cell(column))
    for code in codes.values():
        out.values[("probability", code)] = evidence_to_probability(
            np.array(out.values[("evidence", code)], np.float64)).tolist()
    out.meta = {"preamble": [line for line in table.preamble if line],
                "rows_before_first_frame": skipped_negative,
                "probability": "1 / (1 + 10**-evidence) (Emotient: evidence = log10 odds)"}
    return out


def read_pyfeat(path: Path, watch: Watch | None = None) -> _Rows:
    def au_columns(header):
        return [c for c in header if _FEX_AU.match(c) and _catalogued(_FEX_AU.match(c)[1])]

    table, rows = read_table(
        path, delimiter=",", kind="py-feat Fex CSV", required=("frame",),
        columns=lambda h: ["frame", *[c for c in ("approx_time", "FaceScore") if c in h],
                           *au_columns(h)], watch=watch)
    aus = au_columns(table.header)
    if not aus:
        raise TableError(f"{path.name} has no AUxx columns; not a py-feat Fex CSV with action "
                         "units")
    codes = {c: _catalogued(_FEX_AU.match(c)[1]) for c in aus}
    best: dict[int, tuple[float, float, list[float]]] = {}  # frame -> (face score, t_s, values)
    for line, row in rows:
        cell = lambda c: number(row[c], path=path, line=line, column=c)  # noqa: E731
        frame = cell("frame")
        if math.isnan(frame) or frame < 0:
            raise TableError(f"{path.name}: line {line}: frame {row['frame']!r} is not a frame "
                             "number (0, 1, ...)")
        values = [cell(c) for c in aus]
        bad = next((v for v in values if not math.isnan(v) and not 0.0 <= v <= 1.0), None)
        if bad is not None:
            raise TableError(f"{path.name}: line {line}: AU value {bad} is outside 0..1; py-feat "
                             "AU columns are probabilities")
        score = cell("FaceScore") if "FaceScore" in row else 0.0
        score = -1.0 if math.isnan(score) else score
        t_s = cell("approx_time") if "approx_time" in row else math.nan
        if int(frame) not in best or score > best[int(frame)][0]:
            best[int(frame)] = (score, t_s, values)
    out = _Rows(values={("probability", code): [] for code in codes.values()})
    for frame in sorted(best):
        _, t_s, values = best[frame]
        out.frame.append(frame)
        out.t_s.append(t_s)
        out.masked.append(all(math.isnan(v) for v in values))
        for code, value in zip(codes.values(), values):
            out.values[("probability", code)].append(value)
    out.meta = {"faces_per_frame": "highest FaceScore kept"}
    return out


_READERS = {"openface": read_openface, "imotions": read_imotions, "pyfeat": read_pyfeat}


def read_trace(tool: str, path: Path | str, *, fps: float, n_frames: int | None = None,
               align: str = "frame", name: str | None = None,
               min_confidence: float = DEFAULT_MIN_CONFIDENCE,
               numbers: np.ndarray | None = None, progress: Progress | None = None,
               should_cancel: ShouldCancel | None = None) -> ComparisonTrace:
    """Read one tool's file as a trace aligned to a video of `n_frames` frames at `fps`.

    progress(bytes read, file size) and `should_cancel` (Cancelled) are polled every few
    thousand rows.

    `numbers`: the video's dataset frame numbers per frame_idx; with `align="time"` a time maps
    to the frame with the number it means (first + round(t_s * fps)), as interchange.clock
    times frames, and a time inside a gap of the numbering is left out (counted outside)."""
    if tool not in _READERS:
        raise UserError(f"unknown AU tool {tool!r}; use one of {', '.join(TOOLS)}")
    if align not in ALIGNMENTS:
        raise UserError(f"align must be one of {', '.join(ALIGNMENTS)}, not {align!r}")
    path = Path(path)

    def watch(done: int, total: int) -> None:
        check_cancel(should_cancel, "import cancelled")
        if progress is not None:
            progress(done, total)

    rows = (read_openface(path, min_confidence, watch) if tool == "openface"
            else _READERS[tool](path, watch))
    if not rows.frame:
        raise UserError(f"{path.name} holds no {tool} AU rows; nothing to import")
    if align == "time":
        t_s = np.array(rows.t_s, np.float64)
        if np.isnan(t_s).any():
            raise UserError(f"{path.name} has rows without a time; align by frame instead")
        frame_idx = np.rint(t_s * fps).astype(np.int64)  # (n,) frames after the first
        if numbers is not None:
            numbers = np.asarray(numbers, np.int64)
            wanted = numbers[0] + frame_idx
            found = np.minimum(np.searchsorted(numbers, wanted), len(numbers) - 1)
            frame_idx = np.where(numbers[found] == wanted, found, -1)
    else:
        frame_idx = np.array(rows.frame, np.int64)
    keep = frame_idx >= 0
    if n_frames is not None:
        keep &= frame_idx < n_frames
    outside = int((~keep).sum())
    order = np.argsort(frame_idx, kind="stable")
    order = order[keep[order]]
    _, first = np.unique(frame_idx[order], return_index=True)
    chosen = order[first]  # (m,) one row per frame, the earliest in the file
    masked = np.array(rows.masked, bool)[chosen]
    values = {}
    for key, column in rows.values.items():
        column = np.array(column, np.float32)[chosen]  # (m,)
        column[masked] = np.nan
        values[key] = column
    meta = dict(rows.meta, align=align, fps=fps, rows=len(rows.frame), masked=int(masked.sum()),
                outside_video=outside, same_frame=int(keep.sum()) - len(chosen))
    return ComparisonTrace(name=name or path.name, tool=tool, frame_idx=frame_idx[chosen],
                           values=values, file=path.name, meta=meta)
