"""Files the spotting commands read and write: candidate CSVs, event tables, coders' exports.

Owns: `SPOT_COLUMNS`, `write_candidates_csv`, `read_candidates_csv`, `EventTable`,
`read_event_table`, `match_video_keys`, `rename_videos`. May import store, media and core (plus
the standard library and numpy). No Qt.

Our spotting CSV (written by `spot`, read back as predictions, ground truth or a coder's events)
has one row per interval:

    video,onset,apex,offset,type,score,regions
    interview.mp4,120,126,131,micro,14.2,AU12+AU6

`onset`, `apex` and `offset` are 0-based frame_idx (offset inclusive), `type` is micro or macro,
`score` the spotter's apex z, `regions` the AUs whose regions moved. Readers need only `onset` and
`offset`; `video`, `apex`, `type`, `aus` (a FACS string such as `4+7+L10`), `coder`, `emotion`
(for spot-then-recognise scoring) and `score` are used when present.

Pairing two files' videos (`match_video_keys`): keys pair exactly, then by file name, then by
stem. A file that names no video (no `video` column, a per-frame CSV) has one video keyed by its
file stem, and that one pairs with the other file's single video whatever its name. Two files
that each name one video pair only when the names agree: a prediction file of another video is
an error, never silently scored against this one's ground truth. Other accepted inputs:
- an `analyze` per-frame CSV (`frame_idx`, `t_s`, `face_found`, one probability column per AU):
  thresholded into events (`agreement.events_from_frame_probs`);
- a project JSON export (`export --format json`): events with AUs, and every video's length;
- any coding sheet a dataset importer reads (`store.importers`, e.g. MEGC ground truth), given
  its kind and media root.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from microau_gui.core.au import au_number
from microau_gui.core.aus import parse_au_string
from microau_gui.core.errors import UserError
from microau_gui.core.files import atomic_path
from microau_gui.core.types import DECISION_THRESHOLD
from microau_gui.spotting.agreement import CodedEvent, events_from_frame_probs
from microau_gui.store.export import read_export

SPOT_COLUMNS = ("video", "onset", "apex", "offset", "type", "score", "regions")


def write_candidates_csv(path: Path | str, video: str, candidates: Iterable) -> Path:
    """Write spotted candidates (`spotter.Candidate`) as our spotting CSV, atomically."""
    path = Path(path)
    if not path.parent.is_dir():
        raise UserError(f"{path.parent}: folder does not exist; create it or choose another --out")
    try:
        with atomic_path(path) as partial, partial.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(SPOT_COLUMNS)
            for c in candidates:
                writer.writerow([video, c.onset, c.apex, c.offset, c.kind, f"{c.score:.2f}",
                                 "+".join(c.regions)])
    except OSError as err:
        raise UserError(f"cannot write {path}: {err.strerror or err}") from None
    return path


def read_candidates_csv(path: Path | str, video: str | None = None) -> list:
    """`spotter.Candidate`s from our spotting CSV (e.g. to gate `analyze` or fill a review queue).

    video: keep only that video's rows (None: all). A row without apex gets the middle frame,
    without type micro, without score 0.
    """
    from microau_gui.spotting.spotter import Candidate

    path = Path(path)
    table = read_event_table(path)
    if table.source != "csv":
        raise UserError(f"{path.name}: not a spotting CSV; expected the columns {','.join(SPOT_COLUMNS)}")
    rows = _read_rows(path)
    cols = _header_map(rows[0])
    out = []
    for line, (event, kind, row) in enumerate(zip(table.events, table.kinds, rows[1:]), start=2):
        if video is not None and event.video != video:
            continue
        score_text = row[cols["score"]].strip() if "score" in cols and cols["score"] < len(row) else ""
        try:
            score = float(score_text) if score_text else 0.0
        except ValueError:
            raise UserError(f"{path.name} row {line}: score {score_text!r} is not a number") from None
        regions_text = row[cols["regions"]].strip() if "regions" in cols and cols["regions"] < len(row) else ""
        apex = event.apex if event.apex is not None else (event.onset + event.offset) // 2
        out.append(Candidate(event.onset, apex, event.offset, kind or "micro", score,
                             tuple(r for r in regions_text.split("+") if r)))
    return out


@dataclass(frozen=True)
class EventTable:
    """Events read from one file, with what the file says about its videos."""

    path: Path
    events: tuple[CodedEvent, ...]
    kinds: tuple[str, ...]  # per event: "micro", "macro" or "" (not stated)
    n_frames: Mapping[str, int] = field(default_factory=dict)  # video -> frame count, when known
    source: str = "csv"  # "csv", "frames", "json" or an importer kind
    skipped: tuple[str, ...] = ()  # rows an importer skipped, with the reason
    named: bool = True  # False when the file names no video and its key is the file stem

    @property
    def has_emotions(self) -> bool:
        return bool(self.events) and all(ev.emotion for ev in self.events)

    def typed_intervals(self, micro_max_frames: Mapping[str, int] | int | None = None
                        ) -> dict[str, list[tuple[int, int, str, str]]]:
        """video -> [(onset, offset, type, emotion)]; unstated types come from the duration."""
        out: dict[str, list[tuple[int, int, str]]] = {}
        for ev, kind in zip(self.events, self.kinds):
            if not kind:
                limit = (micro_max_frames.get(ev.video) if isinstance(micro_max_frames, Mapping)
                         else micro_max_frames)
                if limit is None:
                    raise UserError(f"{self.path.name}: the expression type of {ev.video} "
                                    f"{ev.onset}-{ev.offset} is not stated and the frame rate is "
                                    "unknown; add a `type` column (micro/macro)")
                kind = "micro" if ev.offset - ev.onset + 1 <= limit else "macro"
            out.setdefault(ev.video, []).append((ev.onset, ev.offset, kind, ev.emotion))
        return out


def _header_map(header: Sequence[str]) -> dict[str, int]:
    return {name.strip().lower(): i for i, name in enumerate(header) if name and name.strip()}


def _int_cell(text: str, what: str, where: str) -> int:
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise UserError(f"{where}: {what} {text!r} is not a frame number; frames are 0-based "
                        "integers") from None
    if not math.isfinite(value) or not value.is_integer() or value < 0:
        raise UserError(f"{where}: {what} {text!r} is not a frame number; frames are 0-based "
                        "integers")
    return int(value)


def _aus_cell(text: str, where: str) -> frozenset[str]:
    parsed = parse_au_string(text)
    if parsed.unparsed:
        token, reason = parsed.unparsed[0]
        raise UserError(f"{where}: AU {token!r} not understood ({reason}); write AUs like 4+7+L10")
    return frozenset(f"AU{c.number}" for c in parsed.codes)


def _read_rows(path: Path) -> list[list[str]]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            return [row for row in csv.reader(handle) if any(cell.strip() for cell in row)]
    except UnicodeDecodeError:
        raise UserError(f"{path}: not a text CSV file; give a CSV or name the sheet's --kind") from None


def _read_interval_csv(path: Path, rows: list[list[str]], default_video: str,
                       coder: str | None) -> EventTable:
    cols = _header_map(rows[0])
    events, kinds = [], []
    for line, row in enumerate(rows[1:], start=2):
        where = f"{path.name} row {line}"

        def cell(name: str) -> str:
            i = cols.get(name)
            return row[i].strip() if i is not None and i < len(row) else ""

        onset = _int_cell(cell("onset"), "onset", where)
        offset = _int_cell(cell("offset"), "offset", where)
        if offset < onset:
            raise UserError(f"{where}: offset {offset} is before onset {onset}")
        apex = _int_cell(cell("apex"), "apex", where) if cell("apex") else None
        if apex is not None and not onset <= apex <= offset:
            raise UserError(f"{where}: apex {apex} is outside onset..offset {onset}..{offset}")
        kind = cell("type").lower()
        if kind not in ("", "micro", "macro"):
            raise UserError(f"{where}: type {kind!r} must be micro or macro")
        row_coder = cell("coder")
        if coder is not None and row_coder != coder:
            continue
        events.append(CodedEvent(video=cell("video") or default_video, onset=onset, offset=offset,
                                 apex=apex, aus=_aus_cell(cell("aus"), where), coder=row_coder,
                                 emotion=cell("emotion").lower()))
        kinds.append(kind)
    return EventTable(path, tuple(events), tuple(kinds), {}, "csv", named="video" in cols)


def _read_frame_csv(path: Path, rows: list[list[str]], video: str, threshold: float,
                    min_frames: int) -> EventTable:
    header = [h.strip() for h in rows[0]]
    au_cols = []
    for i, name in enumerate(header):
        try:
            au_cols.append((i, f"AU{au_number(name)}"))
        except KeyError:
            continue
    if not au_cols:
        raise UserError(f"{path.name}: a per-frame CSV needs one probability column per AU "
                        "(AU1, AU2, ...)")
    cols = _header_map(header)
    frames, probs = [], []
    for line, row in enumerate(rows[1:], start=2):
        where = f"{path.name} row {line}"
        index = cols["frame_idx"]
        frames.append(_int_cell(row[index] if index < len(row) else "", "frame_idx", where))
        values = []
        for i, name in au_cols:
            text = row[i].strip() if i < len(row) else ""
            try:
                values.append(float(text) if text else math.nan)
            except ValueError:
                raise UserError(f"{where}: {name} {text!r} is not a probability") from None
        probs.append(values)
    matrix = np.nan_to_num(np.asarray(probs, float).reshape(len(frames), len(au_cols)), nan=0.0)
    events = events_from_frame_probs(video, frames, matrix, [code for _, code in au_cols],
                                     threshold=threshold, min_frames=min_frames)
    return EventTable(path, tuple(events), ("",) * len(events), {}, "frames", named=False)


def _read_export_json(path: Path, coder: str | None) -> EventTable:
    """Our project JSON export, read as `import json` reads it (store.export.read_export:
    bounded memory, checked against the export schema, #15 D2 and D16)."""
    export = read_export(path)
    keys = {v.id: Path(v.path).name for v in export.videos}
    events, kinds = [], []
    for item in export.events:
        if coder is not None and item.coder != coder:
            continue
        if item.video not in keys:
            raise UserError(f"{path.name}: event {item.uid} belongs to video {item.video}, which "
                            "the export does not list; export it again")
        events.append(CodedEvent(video=keys[item.video], onset=item.onset, offset=item.offset,
                                 apex=item.apex, aus=frozenset(f"AU{a.au}" for a in item.aus),
                                 coder=item.coder, emotion=(item.emotion or "").strip().lower()))
        kinds.append(item.expression_type)
    n_frames = {keys[v.id]: v.n_frames for v in export.videos}
    return EventTable(path, tuple(events), tuple(kinds), n_frames, "json")


def _read_sheet(path: Path, kind: str, media_root: Path | None, coder: str | None) -> EventTable:
    """A dataset coding sheet through its store importer (e.g. kind "megc")."""
    from microau_gui.spotting.sheets import read_sheet_events

    events, kinds, n_frames, skipped = read_sheet_events(path, kind, media_root, coder)
    return EventTable(Path(path), events, kinds, n_frames, kind, skipped)


def read_event_table(path: Path | str, kind: str | None = None, media_root: Path | str | None = None,
                     video: str | None = None, coder: str | None = None, threshold: float = DECISION_THRESHOLD,
                     min_frames: int = 1) -> EventTable:
    """Read events from any accepted file (see the module docstring).

    kind: None to recognise our CSV / per-frame CSV / JSON export by content, or an importer kind
    ("megc", "casme2", ...). video: key for files that name no video (default: the file stem).
    coder: keep only that coder's events (CSV `coder` column, JSON export). threshold /
    min_frames: how per-frame probabilities become events.
    """
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: no such file; check the path")
    if path.is_dir():
        raise UserError(f"{path}: is a folder; give a CSV, JSON or sheet file")
    if kind not in (None, "", "auto"):
        return _read_sheet(path, kind, Path(media_root) if media_root else None, coder)
    if path.suffix.lower() == ".json":
        return _read_export_json(path, coder)
    if path.suffix.lower() in (".xlsx", ".xls"):
        return _read_sheet(path, "megc", Path(media_root) if media_root else None, coder)
    rows = _read_rows(path)
    if not rows:
        raise UserError(f"{path.name}: the file is empty; expected a header row such as "
                        f"{','.join(SPOT_COLUMNS)}")
    cols = _header_map(rows[0])
    if "frame_idx" in cols:
        return _read_frame_csv(path, rows, video or path.stem, threshold, min_frames)
    if {"subject", "clip"} <= set(cols) and "video" not in cols:
        # Our dataset CSV writes the media's own frame numbers: its importer maps them.
        return _read_sheet(path, "csv", Path(media_root) if media_root else None, coder)
    if "onset" in cols and "offset" in cols:
        return _read_interval_csv(path, rows, video or path.stem, coder)
    return _read_sheet(path, "megc", Path(media_root) if media_root else None, coder)


def match_video_keys(reference: Iterable[str], other: Iterable[str], *, reference_named: bool = True,
                     other_named: bool = True) -> Callable[[str], str]:
    """Map `other`'s video keys onto `reference`'s: exact, then file name, then stem.

    When each side has exactly one video and one side names none (`*_named` False: its key is
    only a file stem), they are paired whatever the names. Keys with no partner stay as they are
    (a video only one side coded); when no key pairs at all, the two files name different videos
    and a UserError says so, also when each names a single, different video.
    """
    ref = sorted(set(reference))
    oth = sorted(set(other))
    if len(ref) == 1 and len(oth) == 1 and not (reference_named and other_named):
        return lambda key: ref[0]
    normalisers = (lambda k: k, lambda k: Path(k).name, lambda k: Path(k).stem)
    mapping: dict[str, str] = {}
    for key in oth:
        for norm in normalisers:
            hits = [r for r in ref if norm(r) == norm(key)]
            if len(hits) == 1:
                mapping[key] = hits[0]
                break
    if ref and oth and not mapping:
        raise UserError(f"no video in common: one file has {_listing(ref)}, the other "
                        f"{_listing(oth)}; name the videos the same way in both files")
    return lambda key: mapping.get(key, key)


def _listing(keys: Sequence[str]) -> str:
    return ", ".join(keys[:3]) + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")


def rename_videos(table: EventTable, mapping: Callable[[str], str]) -> EventTable:
    """`table` with every video key passed through `mapping`."""
    events = tuple(replace(e, video=mapping(e.video)) for e in table.events)
    n_frames = {mapping(k): v for k, v in table.n_frames.items()
                if any(e.video == k for e in table.events)}
    return replace(table, events=events, n_frames=n_frames)
