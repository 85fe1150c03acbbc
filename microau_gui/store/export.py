"""Exports of a project's events (CASME II coding layout, MEGC intervals, complete JSON) and the
import of our own JSON.

Owns: `export_project`, `export_json`, `import_json`, `read_export`, `export_casme2`, `export_megc`,
`events_as_samples`, `ExportSummary`, `JsonImportSummary`, `JSON_FORMAT`, `JSON_FORMAT_VERSION`.
May import only the standard library, numpy, `core` and the store's own modules (the coding-sheet
writers come from store.importers, so an export is read back by the very importer that reads
real dataset sheets).

Frame numbers: events are stored as frame_idx; sheets get each video's own numbering
(`Project.frame_numbers`, e.g. CASME II img46.jpg -> 46), so a CASME II export names the same
image files the original sheet did.

JSON (`format` "microau-project-export", `format_version` 1): subjects, videos (paths relative to
the JSON file's folder, numbering as runs), model versions (by name, with lineage), events (uid,
frames and their sheet numbers, AUs as structured objects plus the FACS string, emotion,
objective class, type, coder, source, accepting model, timestamps, `aus_cell`, the imported
sheet's AU cell as written, and `import_frames`, an imported event's identity frames, so a
re-import of its sheet into the other project adds nothing twice), notes, and the comparison
traces of other tools (`traces`: values packed as in `store.json_schema`, written one trace at a
time so memory stays with the largest trace, not the project). Reading it back validates it
against `store.json_schema` first and keeps media paths inside the media folders (see
`import_json`). Not exported: the predictions cache (recomputable from the model versions) and
import provenance. Importing it back keeps uids, timestamps and, where free, ids; events whose
uid is already present are skipped, and so is a trace whose video already has one of that name,
so importing the same file twice adds nothing.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from microau_gui.core.au import au_number
from microau_gui.core.aus import AUCode, Side
from microau_gui.core.errors import UserError
from microau_gui.core.files import atomic_path
from microau_gui.core.outputs import check_output, project_guard
from microau_gui.core.progress import Progress, ShouldCancel, check_cancel
from microau_gui.core.types import Sample
from microau_gui.store import schema
from microau_gui.store.db import resolve_path, store_path
from microau_gui.store.importers.writers import CASME2_LAYOUTS, write_casme2_sheet, write_megc_sheet
from microau_gui.store.json_schema import (
    AUItem,
    ExportDocument,
    TraceItem,
    pack,
    unpack,
    validate_export,
)
from microau_gui.store.project import Project, import_key
from microau_gui.store.records import (
    AUSpan,
    Event,
    EventRecord,
    MediaFacts,
    Note,
    decode_frame_numbers,
    encode_frame_numbers,
)
from microau_gui.store.traces import ComparisonTrace, TraceInfo

JSON_FORMAT = "microau-project-export"
JSON_FORMAT_VERSION = 1
MAX_JSON_PARSE_MB = 200.0  # a JSON import stays under the 300 MB every importer must keep to
_BYTES_PER_VALUE = 150  # one value parsed and then validated (pydantic), measured ~130
FORMATS = ("casme2", "megc", "json")


@dataclass(frozen=True)
class ExportSummary:
    format: str  # "casme2", "megc" or "json"
    path: Path  # file written
    n_events: int
    n_videos: int  # videos the exported events belong to

    def __str__(self) -> str:
        return f"wrote {self.n_events} events from {self.n_videos} videos to {self.path}"


@dataclass(frozen=True)
class JsonImportSummary:
    events_added: int
    duplicates: int  # events whose uid was already in the project
    videos_added: int
    notes_added: int
    models_added: int
    traces_added: int = 0  # comparison traces (a video's trace of the same name is kept)

    def __str__(self) -> str:
        text = (f"{self.events_added} events, {self.videos_added} videos, {self.notes_added} "
                f"notes, {self.models_added} model versions and {self.traces_added} comparison "
                "traces added")
        return text + (f"; {self.duplicates} events already in the project" if self.duplicates
                       else "")


def _check_output(out: Path, project: Project) -> Path:
    """The one output check: never the project's own files (#15 D1), a writable file path."""
    return check_output(out, project_guard(project.path))




# -- samples for the sheet writers ------------------------------------------------------------

def events_as_samples(project: Project, events: Iterable[Event]) -> list[Sample]:
    """Events as dataset samples: media path, subject, clip, frames and the media's own numbers."""
    videos = {v.id: v for v in project.videos()}
    numbers: dict[int, Any] = {}
    samples = []
    for event in events:
        video = videos[event.video_id]
        if video.id not in numbers:
            numbers[video.id] = project.frame_numbers(video.id)
        frame_numbers = numbers[video.id]
        samples.append(Sample(
            subject=video.subject or "", clip=video.name, media_path=video.path,
            onset=event.onset, apex=event.apex, offset=event.offset, aus=event.aus,
            emotion=event.emotion, objective_class=event.objective_class,
            expression_type=event.expression_type,
            onset_number=int(frame_numbers[event.onset]),
            apex_number=(event.apex_number if event.apex_number is not None
                         else int(frame_numbers[event.apex])),  # a sheet's apex in a gap: kept
            offset_number=int(frame_numbers[event.offset]),
            aus_cell=event.aus_cell,
        ))
    return samples


# -- JSON ---------------------------------------------------------------------------------------

def _au_json(code: AUCode) -> dict[str, Any]:
    return {"au": code.number, "side": code.side.value, "intensity": code.intensity,
            "asymmetric": code.asymmetric, "uncertain": code.uncertain, "lip": code.lip}


def _kept_apex(apex_number: int | None, frame_numbers) -> int | None:
    """An exported apex number that no frame of the video carries is a sheet's apex kept in a
    gap of the numbering (store.project): kept again; any other is the apex frame's own."""
    if apex_number is None or apex_number in set(frame_numbers.tolist()):
        return None
    return int(apex_number)


def _au_from_json(item: AUItem) -> AUCode:
    return AUCode(number=item.au, side=Side(item.side), intensity=item.intensity,
                  asymmetric=item.asymmetric, uncertain=item.uncertain, lip=item.lip)


def _import_frames(key: str | None) -> list[int] | None:
    """An imported event's identity frames (onset, apex, offset at import), from its key."""
    if key is None:
        return None
    return [int(n) for n in key.split(":", 4)[1:4]]


def _write_trace(handle, trace: ComparisonTrace, info: TraceInfo) -> None:
    """One `traces` item, written column by column (a column is the most held as text)."""
    head = json.dumps({
        "video": info.video_id, "name": trace.name, "tool": trace.tool, "file": trace.file,
        "meta": trace.meta, "imported_at": info.imported_at, "n_frames": len(trace.frame_idx),
        "frame_idx": pack(trace.frame_idx, "<i4"),
    }, ensure_ascii=False)
    handle.write(head[:-1] + ', "columns": [')
    keys = sorted(trace.values, key=lambda key: (key[0], au_number(key[1])))
    for k, (channel, au) in enumerate(keys):
        handle.write(("" if k == 0 else ", ") + json.dumps(
            {"channel": channel, "au": au_number(au),
             "values": pack(trace.values[(channel, au)], "<f4")}))
    handle.write("]}")


def export_json(project: Project, out: Path | str, *, coder: str | None = None,
                source: str | None = None, progress: Progress | None = None,
                should_cancel: ShouldCancel | None = None) -> ExportSummary:
    """Write the complete, schema-versioned JSON export (see the module docstring).

    progress(done, total) counts the document and then each comparison trace; `should_cancel`
    is polled between them and before the file is put in place, and a cancelled export leaves
    no file (Cancelled is raised)."""
    out = _check_output(Path(out), project)
    base = out.parent
    events = project.events(coder=coder, source=source)
    videos = project.videos()
    models = project.models.list()
    model_names = {m.id: m.name for m in models}
    numbers = {v.id: project.frame_numbers(v.id) for v in videos}
    event_uids = {e.id: e.uid for e in events}
    notes = [n for n in project.notes()
             if (n.event_id in event_uids) or (n.event_id is None)]
    document = {
        "format": JSON_FORMAT,
        "format_version": JSON_FORMAT_VERSION,
        "schema_version": project.schema_version,
        "exported_at": schema.utc_now(),
        "project": project.path.name,
        "filter": {"coder": coder, "source": source},
        "subjects": [s.name for s in project.subjects()],
        "videos": [{
            "id": v.id, "path": store_path(base, v.path), "name": v.name, "subject": v.subject,
            "n_frames": v.n_frames, "fps": v.fps, "width": v.width, "height": v.height,
            "content_hash": v.content_hash,
            "frame_numbers": json.loads(encode_frame_numbers(numbers[v.id])),
        } for v in videos],
        "model_versions": [{
            "name": m.name, "checkpoint": store_path(base, m.checkpoint), "vocab": list(m.vocab),
            "parent": model_names.get(m.parent_id), "data_hash": m.data_hash,
            "metrics": m.metrics, "created_at": m.created_at, "active": m.active,
        } for m in models],
        "events": [{
            "id": e.id, "uid": e.uid, "video": e.video_id,
            "onset": e.onset, "apex": e.apex, "offset": e.offset,
            "onset_number": int(numbers[e.video_id][e.onset]),
            "apex_number": (e.apex_number if e.apex_number is not None
                            else int(numbers[e.video_id][e.apex])),
            "offset_number": int(numbers[e.video_id][e.offset]),
            "aus": [_au_json(c) for c in e.aus], "aus_text": e.aus_text, "aus_cell": e.aus_cell,
            "import_frames": _import_frames(e.import_key),
            "emotion": e.emotion, "objective_class": e.objective_class,
            "expression_type": e.expression_type, "coder": e.coder, "source": e.source,
            "model_version": model_names.get(e.model_version_id),
            "created_at": e.created_at, "modified_at": e.modified_at, "blind": e.blind,
            "au_spans": [{"au": s.number, "onset": s.onset, "apex": s.apex, "offset": s.offset}
                         for s in e.au_spans],
        } for e in events],
        "notes": [{
            "id": n.id, "text": n.text, "author": n.author, "created_at": n.created_at,
            "event": event_uids.get(n.event_id), "video": n.video_id, "frame_idx": n.frame_idx,
        } for n in notes],
    }
    traces = project.traces.list()
    total = len(traces) + 1
    check_cancel(should_cancel, "export cancelled")
    try:
        with atomic_path(out) as partial, partial.open("w", encoding="utf-8") as handle:
            head = json.dumps(document, indent=1, ensure_ascii=False)
            handle.write(head[:head.rindex("}")].rstrip() + ',\n "traces": [')
            if progress is not None:
                progress(1, total)
            # One trace in memory at a time: an hour of a tool's output is tens of MB.
            for k, info in enumerate(traces):
                check_cancel(should_cancel, "export cancelled")
                handle.write("\n  " if k == 0 else ",\n  ")
                _write_trace(handle, project.traces.get(info.id), info)
                if progress is not None:
                    progress(k + 2, total)
            handle.write("\n ]\n}\n")
            check_cancel(should_cancel, "export cancelled")  # the last chance before the rename
    except OSError as err:
        raise UserError(f"cannot write {out}: {err.strerror or err}") from err
    return ExportSummary("json", out, len(events), len({e.video_id for e in events}))


def read_export(path: Path, *, limit_mb: float = MAX_JSON_PARSE_MB) -> ExportDocument:
    """A JSON export, parsed in bounded memory and checked against its schema (#15 D2, D16).

    The standard json module builds the whole document and pydantic a second copy: about 130
    bytes per value (`,` `{` `[`) for a real export (31,500 events, 25 MB: 240 MB at the peak),
    and a file of tiny objects costs as much per value, so the file's size plus 150 bytes per
    value is checked against `limit_mb` before anything is parsed.
    Refusals are one line; nothing is read into the project before this returns."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise UserError(f"{path} does not exist") from None
    except OSError as err:
        raise UserError(f"cannot read {path}: {err.strerror or err}") from None
    too_big = (f"{path.name} is too large to import in one piece (the limit is about "
               f"{limit_mb:.0f} MB once parsed); export fewer videos or coders per file")
    if size > limit_mb * 1e6:
        raise UserError(too_big)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise UserError(f"cannot read {path}: {err.strerror or err}") from None
    values = raw.count(b",") + raw.count(b"{") + raw.count(b"[")
    if size + _BYTES_PER_VALUE * values > limit_mb * 1e6:
        raise UserError(too_big)
    try:
        text = raw.decode("utf-8")
        del raw  # the text and the parsed document are what stay
        document = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        raise UserError(f"{path} is not a readable JSON export: {err}") from None
    if not isinstance(document, dict) or document.get("format") != JSON_FORMAT:
        raise UserError(f"{path} is not a MicroAU project export (format {JSON_FORMAT!r})")
    version = document.get("format_version")
    if version != JSON_FORMAT_VERSION:
        raise UserError(f"{path} has export format version {version}; this program reads "
                        f"version {JSON_FORMAT_VERSION}")
    return validate_export(document, str(path))


def _under(path: Path, roots: list[Path]) -> bool:
    resolved = path.resolve()
    return any(resolved == root or root in resolved.parents for root in roots)


def import_json(project: Project, path: Path | str, *,
                media_roots: Iterable[Path | str] | None = None,
                allow_outside: bool = False, progress: Progress | None = None,
                should_cancel: ShouldCancel | None = None) -> JsonImportSummary:
    """Add a JSON export's videos, model versions, events, notes and comparison traces to
    `project` (one transaction; a cancel, polled between items, rolls it all back).

    The file is checked against the export schema (store.json_schema) first. Media paths must
    resolve under the export's folder, the project's folder or one of `media_roots`, so an
    export cannot point the project at `../../../../etc/passwd`; `allow_outside` lifts that.
    """
    path = Path(path).absolute()
    document = read_export(path)
    base = path.parent
    roots = [Path(r).expanduser().resolve() for r in (media_roots or ())]
    roots += [base.resolve(), project.directory.resolve()]
    if not allow_outside:
        for item in document.videos:
            media = resolve_path(base, item.path)
            if not _under(media, roots):
                raise UserError(
                    f"{path.name}: video {item.name} points outside the media folders "
                    f"({item.path}); nothing was imported: move the media under the export's "
                    "folder, name its folder with --media-root, or pass --allow-outside-media")
    try:
        with project.transaction():
            return _import_document(project, document, base, progress, should_cancel)
    except (KeyError, TypeError, ValueError) as err:
        raise UserError(f"{path} is a damaged export ({type(err).__name__}: {err}); "
                        "nothing was imported") from err


def _import_document(project: Project, document: ExportDocument, base: Path,
                     progress: Progress | None, should_cancel: ShouldCancel | None
                     ) -> JsonImportSummary:
    videos_added = notes_added = models_added = events_added = duplicates = 0
    total, done = len(document.events) + len(document.traces), 0

    def step() -> None:
        nonlocal done
        check_cancel(should_cancel, "import cancelled")
        done += 1
        if progress is not None and (done % 100 == 0 or done == total):
            progress(done, total)
    video_ids: dict[int, int] = {}
    for item in document.videos:
        media = resolve_path(base, item.path)
        existing = project.video_by_path(media)
        if existing is not None:
            if existing.n_frames != item.n_frames:
                raise UserError(f"{media} has {existing.n_frames} frames in this project but "
                                f"{item.n_frames} in the export; they are different media")
            video_ids[item.id] = existing.id
            continue
        numbers = decode_frame_numbers(json.dumps(item.frame_numbers), item.n_frames)
        facts = MediaFacts(n_frames=item.n_frames, fps=item.fps, width=item.width,
                           height=item.height, frame_numbers=tuple(int(n) for n in numbers))
        video = project.add_video(media, facts, name=item.name, subject=item.subject,
                                  digest=item.content_hash)
        video_ids[item.id] = video.id
        videos_added += 1
    for name in document.subjects:
        project.add_subject(name)
    model_ids: dict[str, int] = {}
    has_active = project.models.active() is not None
    for item in document.model_versions:
        known = {m.name: m for m in project.models.list()}
        if item.name in known:
            model_ids[item.name] = known[item.name].id
            continue
        version = project.models.add(
            item.name, resolve_path(base, item.checkpoint), tuple(item.vocab),
            parent_id=model_ids.get(item.parent) if item.parent else None,
            data_hash=item.data_hash, metrics=item.metrics,
            activate=item.active and not has_active, created_at=item.created_at,
        )
        model_ids[item.name] = version.id
        models_added += 1
    notes_by_event: dict[str, list[Note]] = {}
    known_notes = {_note_key(n) for n in project.notes() if n.event_id is None}
    for item in document.notes:
        note = Note(id=item.id, text=item.text, author=item.author,
                    created_at=item.created_at, frame_idx=item.frame_idx)
        if item.event is not None:
            notes_by_event.setdefault(item.event, []).append(note)
        elif item.video not in video_ids:
            raise UserError(f"note {item.id} belongs to video {item.video}, which the export "
                            "does not list")
        else:
            note = dataclasses.replace(note, video_id=video_ids[item.video])
            if _note_key(note) in known_notes:  # the same file imported again
                continue
            project.insert_note(note)
            known_notes.add(_note_key(note))
            notes_added += 1
    known_uids = {e.uid for e in project.events()}
    for item in document.events:
        step()
        if item.uid in known_uids:
            duplicates += 1
            continue
        if item.video not in video_ids:
            raise UserError(f"event {item.uid} belongs to video {item.video}, which the export "
                            "does not list")
        key = None
        if item.import_frames is not None:  # keep the import identity where it is free
            key = import_key(video_ids[item.video], *item.import_frames, item.coder.strip())
            if project.events_by_import_key(key):
                key = None
        event = Event(
            id=item.id, uid=item.uid, video_id=video_ids[item.video],
            onset=item.onset, apex=item.apex, offset=item.offset,
            aus=tuple(_au_from_json(a) for a in item.aus), emotion=item.emotion,
            objective_class=item.objective_class, expression_type=item.expression_type,
            coder=item.coder, source=item.source,
            model_version_id=model_ids.get(item.model_version) if item.model_version else None,
            created_at=item.created_at, modified_at=item.modified_at, aus_cell=item.aus_cell,
            import_key=key, blind=item.blind,
            apex_number=_kept_apex(item.apex_number, project.frame_numbers(video_ids[item.video])),
            au_spans=tuple(AUSpan(s.au, s.onset, s.apex, s.offset) for s in item.au_spans),
        )
        notes = tuple(notes_by_event.get(item.uid, ()))
        project.insert_event(EventRecord(event=event, notes=notes))
        known_uids.add(item.uid)
        events_added += 1
        notes_added += len(notes)
    traces_added = 0
    for item in document.traces:
        step()
        if item.video not in video_ids:
            raise UserError(f"trace {item.name!r} belongs to video {item.video}, which the export "
                            "does not list")
        if project.traces.find(video_ids[item.video], item.name) is None:
            project.traces.put(video_ids[item.video], _trace_from_json(item))
            traces_added += 1
    return JsonImportSummary(events_added=events_added, duplicates=duplicates,
                             videos_added=videos_added, notes_added=notes_added,
                             models_added=models_added, traces_added=traces_added)


def _note_key(note: Note) -> tuple:
    return note.video_id, note.frame_idx, note.text, note.author, note.created_at


def _trace_from_json(item: TraceItem) -> ComparisonTrace:
    """The stored trace of an export item (ValueError: damaged; the import rolls back)."""
    n = item.n_frames
    what = f"trace {item.name!r}"
    return ComparisonTrace(
        name=item.name, tool=item.tool, file=item.file, meta=item.meta,
        frame_idx=unpack(item.frame_idx, "<i4", n, f"{what} frame_idx").astype(np.int64),
        values={(c.channel, f"AU{c.au}"): unpack(c.values, "<f4", n, f"{what} AU{c.au}")
                for c in item.columns})


# -- coding sheets ------------------------------------------------------------------------------

SHEET_SUFFIXES = (".xlsx", ".csv")


def _check_sheet_output(out: Path, fmt: str, project: Project) -> Path:
    out = _check_output(out, project)
    if out.suffix.lower() not in SHEET_SUFFIXES:
        raise UserError(f"a {fmt} export is written as .xlsx or .csv, not {out.name}; "
                        "change the --out suffix")
    return out


def _write_sheet(out: Path, write) -> None:
    """Run a sheet writer (which writes to a temporary name and renames) with one-line errors."""
    try:
        write(out)
    except OSError as err:
        raise UserError(f"cannot write {out}: {err.strerror or err}") from err


def export_casme2(project: Project, out: Path | str, *, layout: str = "2019",
                  coder: str | None = None, source: str | None = None) -> ExportSummary:
    """A CASME II coding sheet (2019 layout with Objective Classes, or 2014), media numbering.

    The layout holds subject, clip, frames, AUs, emotion and (2019) objective class; expression
    type, coder, notes and timestamps need the JSON export.
    """
    if layout not in CASME2_LAYOUTS:
        raise UserError(f"CASME II layout must be one of {', '.join(CASME2_LAYOUTS)}, not {layout!r}")
    out = _check_sheet_output(Path(out), "casme2", project)
    events = project.events(coder=coder, source=source)
    videos = {v.id: v for v in project.videos()}
    unnamed = sorted({videos[e.video_id].name for e in events if videos[e.video_id].subject is None})
    if unnamed:
        raise UserError(f"videos {', '.join(unnamed[:5])} have no subject, which a CASME II sheet "
                        "needs; set their subjects, or export json")
    samples = events_as_samples(project, events)
    _write_sheet(out, lambda path: write_casme2_sheet(samples, path, layout))
    return ExportSummary("casme2", out, len(events), len({e.video_id for e in events}))


def export_megc(project: Project, out: Path | str, *, coder: str | None = None,
                source: str | None = None) -> ExportSummary:
    """MEGC spotting ground truth (CAS(ME)^2 layout): one interval per event, media numbering."""
    out = _check_sheet_output(Path(out), "megc", project)
    events = project.events(coder=coder, source=source)
    samples = events_as_samples(project, events)
    _write_sheet(out, lambda path: write_megc_sheet(samples, path))
    return ExportSummary("megc", out, len(events), len({e.video_id for e in events}))


def export_project(project: Project, fmt: str, out: Path | str, *, coder: str | None = None,
                   source: str | None = None, layout: str = "2019") -> ExportSummary:
    """Write the project's events in one of FORMATS (what `python main.py export` runs)."""
    if fmt == "json":
        return export_json(project, out, coder=coder, source=source)
    if fmt == "casme2":
        return export_casme2(project, out, layout=layout, coder=coder, source=source)
    if fmt == "megc":
        return export_megc(project, out, coder=coder, source=source)
    raise UserError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
