"""ELAN `.eaf` (EAF 3.0) export and import of a video's coded events.

Owns: `export_elan`, `read_elan`, `import_elan`, `TierRole`, `default_tier_roles`,
`parse_tier_map`, `linked_media`, `ModelSpans`, `au_runs`, `ElanEvent`, `ElanImportSummary`.
May import `core`, `store`, `interchange.clock` and the standard library; the EAF document is built and parsed by pympi-ling
(`pympi.Elan.Eaf`), which writes the XML that ELAN reads.

Layout we export (one file per video; tier ids carry the coder in brackets, and the tier's
ANNOTATOR attribute says it too):
- `events [CODER]`: one annotation per event, onset to offset, valued with the event's AUs in
  FACS notation (`4+7+L10C`).
- `apex [CODER]` (Included_In `events`): the apex frame of each event.
- `emotion [CODER]`, `type [CODER]` (Symbolic_Association with `events`): emotion label and
  micro/macro, linked to their event annotation, so nothing is matched by time.
- `AU12 [CODER]`, one tier per AU the coder used: the spans of the events that carry it, valued
  with that AU's FACS notation (`L12C`). They mirror the events tier for ELAN users and are not
  read back when the events tier is there.
- optional `spotted candidates` (intervals from the spotter) and `model AU12 [MODEL]` (runs of
  frames where the model's probability for the AU is >= a threshold, valued with the run's
  highest probability); neither is imported.
- a media descriptor with the video's absolute file URL and its path relative to the .eaf
  (ELAN finds the video when both are moved together), and properties with the video's name,
  frame rate and frame count.

Time: ELAN keeps integer milliseconds. Time follows the frame's dataset number
(interchange.clock): frame f starts at round((number(f) - first number) * 1000 / fps) ms, and
an event's annotation ends where the number after its offset would start. Reading back takes the
frame whose start (or end) is nearest, which is exact for our files at any frame rate below
1000 fps, also for image folders with missing numbers, and snaps annotations a coder drew in ELAN
by hand to the nearest frames.

Import: a tier map names each tier's role (events, an AU, apex, emotion, type) and coder.
`default_tier_roles` reads our layout; other files are mapped by the caller (`TIER=events:CODER`,
`TIER=AU12:CODER`). A coder with AU tiers and no events tier gets one event per AU annotation.
Events identical to one already in the project are skipped, so importing twice adds nothing.
Overlapping events of one coder: apex marks are given to the events that contain them in time
order. ELAN itself lets no annotations overlap on one tier; our export writes what the project
holds.
"""

from __future__ import annotations

import mimetypes
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from microau_gui.core.au import au_number
from microau_gui.core.aus import AUCode, format_au_codes, parse_au_string
from microau_gui.core.errors import UserError
from microau_gui.core.files import atomic_path
from microau_gui.core.outputs import check_output, project_guard
from microau_gui.core.progress import Progress, ShouldCancel, check_cancel
from microau_gui.core.types import DECISION_THRESHOLD
from microau_gui.interchange.clock import FrameClock
from microau_gui.store.project import Project

EAF_VERSION = "3.0"
# ELAN's own 2.4 MB sample holds thousands of annotations; pympi parses the whole tree (about 6x
# the file's size at its peak: a 63 MB file took 400 MB), so a file is refused by its size before
# any of it is read. 24 MiB (~85,000 annotations, ~210 MB to read) keeps a read under the 300 MB
# every importer must stay in (#15 D2).
MAX_EAF_BYTES = 24 * 2**20
ROLES = ("events", "au", "apex", "emotion", "type")

_TIER = re.compile(r"^(events|apex|emotion|type|AU(\d{1,2}))(?: \[(.*)\])?$")


def _tier_id(role: str, coder: str) -> str:
    return f"{role} [{coder}]" if coder else role


# -- export ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ElanExportSummary:
    path: Path
    n_events: int
    n_tiers: int

    def __str__(self) -> str:
        return f"wrote {self.n_events} events on {self.n_tiers} tiers to {self.path}"


@dataclass(frozen=True)
class ModelSpans:
    """A model's per-frame probabilities, to be written as thresholded spans per AU."""

    name: str  # model version name, shown in the tier id
    frame_idx: np.ndarray  # (n,) int64 ascending
    probs: np.ndarray  # (n, n_au) float32, NaN where no face
    vocab: tuple[str, ...]
    threshold: float = DECISION_THRESHOLD


def au_runs(frame_idx: np.ndarray, p: np.ndarray, threshold: float) -> list[tuple[int, int, float]]:
    """(first, last, highest p) of each run of consecutive frames with p >= threshold."""
    runs = []
    start = None
    for i in range(len(frame_idx) + 1):
        on = i < len(frame_idx) and p[i] >= threshold
        joined = on and start is not None and frame_idx[i] == frame_idx[i - 1] + 1
        if start is not None and not joined:
            runs.append((int(frame_idx[start]), int(frame_idx[i - 1]), float(np.max(p[start:i]))))
            start = None
        if on and start is None:
            start = i
    return runs


def _new_eaf():
    from pympi.Elan import Eaf

    eaf = Eaf(author="MicroAU Studio")
    eaf.adocument.update({"VERSION": EAF_VERSION, "FORMAT": EAF_VERSION,
                          "xsi:noNamespaceSchemaLocation":
                              "http://www.mpi.nl/tools/elan/EAFv3.0.xsd"})
    eaf.remove_tier("default")
    eaf.add_linguistic_type("events")
    eaf.add_linguistic_type("apex", constraints="Included_In")
    eaf.add_linguistic_type("label", constraints="Symbolic_Association", timealignable=False)
    eaf.add_linguistic_type("spans")
    return eaf


def _last_annotation_id(eaf) -> str:
    return f"a{eaf.maxaid}"


def _add_ref(eaf, tier: str, parent_aid: str, value: str) -> None:
    """A Symbolic_Association annotation linked to its parent by id (never matched by time)."""
    aid = eaf.generate_annotation_id()
    eaf.annotations[aid] = tier
    eaf.tiers[tier][1][aid] = (parent_aid, value, None, None)


def export_elan(project: Project, video_id: int, out: Path | str, *, coder: str | None = None,
                source: str | None = None, candidates: Sequence[tuple[int, int]] = (),
                model: ModelSpans | None = None) -> ElanExportSummary:
    """Write one video's events (and optional candidates and model spans) as an EAF 3.0 file."""
    from pympi.Elan import to_eaf

    out = Path(out).absolute()
    if out.suffix.lower() != ".eaf":
        raise UserError(f"an ELAN file ends in .eaf, not {out.name}; change the output name")
    out = check_output(out, project_guard(project.path))
    video = project.video(video_id)
    fps = video.fps
    clock = FrameClock.of(project, video)
    events = sorted(project.events(video_id, coder=coder, source=source),
                    key=lambda e: (e.coder, e.onset, e.offset, e.id))
    eaf = _new_eaf()
    relative = Path(os.path.relpath(video.path, out.parent)).as_posix()
    mime = mimetypes.guess_type(video.path.name)[0] or "video/*"
    eaf.add_linked_file(video.path.as_uri(), relpath=relative if relative.startswith(".")
                        else f"./{relative}", mimetype=mime)
    eaf.add_property("microau:video", video.name)
    eaf.add_property("microau:fps", repr(float(fps)))
    eaf.add_property("microau:n_frames", str(video.n_frames))

    def span(onset: int, offset: int) -> tuple[int, int]:
        return clock.start_ms(onset), clock.end_ms(offset)

    for name in sorted({e.coder for e in events}):
        mine = [e for e in events if e.coder == name]
        tier = _tier_id("events", name)
        eaf.add_tier(tier, ling="events", ann=name or None)
        eaf.add_tier(_tier_id("apex", name), ling="apex", parent=tier, ann=name or None)
        eaf.add_tier(_tier_id("type", name), ling="label", parent=tier, ann=name or None)
        if any(e.emotion for e in mine):
            eaf.add_tier(_tier_id("emotion", name), ling="label", parent=tier, ann=name or None)
        for number in sorted({a.number for e in mine for a in e.aus}):
            eaf.add_tier(_tier_id(f"AU{number}", name), ling="spans", ann=name or None)
        for event in mine:
            eaf.add_annotation(tier, *span(event.onset, event.offset), value=event.aus_text)
            parent = _last_annotation_id(eaf)
            _add_ref(eaf, _tier_id("type", name), parent, event.expression_type)
            if event.emotion:
                _add_ref(eaf, _tier_id("emotion", name), parent, event.emotion)
            eaf.add_annotation(_tier_id("apex", name), *span(event.apex, event.apex), value="apex")
            for number in sorted({a.number for a in event.aus}):
                codes = [a for a in event.aus if a.number == number]
                eaf.add_annotation(_tier_id(f"AU{number}", name), *span(event.onset, event.offset),
                                   value=format_au_codes(codes))
    if candidates:
        eaf.add_tier("spotted candidates", ling="spans")
        for onset, offset in candidates:
            eaf.add_annotation("spotted candidates", *span(onset, offset), value="candidate")
    if model is not None:
        for column, au in enumerate(model.vocab):
            p = np.nan_to_num(np.asarray(model.probs, np.float32)[:, column], nan=0.0)  # (n,)
            runs = au_runs(np.asarray(model.frame_idx), p, model.threshold)
            if not runs:
                continue
            tier = f"model {au} [{model.name}]"
            eaf.add_tier(tier, ling="spans")
            for first, last, high in runs:
                eaf.add_annotation(tier, *span(first, last), value=f"{au} p={high:.2f}")
    try:
        with atomic_path(out) as partial:
            to_eaf(str(partial), eaf)
    except OSError as err:
        raise UserError(f"cannot write {out}: {err.strerror or err}") from None
    return ElanExportSummary(out, len(events), len(eaf.tiers))


# -- import ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TierRole:
    role: str  # one of ROLES
    coder: str = ""
    au: int | None = None  # for role "au"


@dataclass(frozen=True)
class ElanEvent:
    onset: int  # frame_idx
    apex: int
    offset: int
    aus: tuple[AUCode, ...]
    coder: str
    emotion: str | None = None
    expression_type: str = "micro"


@dataclass(frozen=True)
class ElanDocument:
    events: tuple[ElanEvent, ...]
    ignored_tiers: tuple[str, ...]  # tiers the map gave no role
    issues: tuple[str, ...]  # annotations that could not be read, and why


@dataclass(frozen=True)
class ElanImportSummary:
    events_added: int
    duplicates: int
    ignored_tiers: tuple[str, ...]
    issues: tuple[str, ...] = field(default=())

    def __str__(self) -> str:
        text = f"{self.events_added} events added"
        if self.duplicates:
            text += f"; {self.duplicates} already in the project"
        if self.ignored_tiers:
            text += f"; tiers not imported: {', '.join(self.ignored_tiers)}"
        if self.issues:
            text += f"; {len(self.issues)} annotations skipped"
        return text


def default_tier_roles(tiers: dict[str, dict]) -> dict[str, TierRole]:
    """Roles of the tiers in our export layout (`events [CODER]`, `AU12 [CODER]`, ...)."""
    roles = {}
    for tier_id, attributes in tiers.items():
        match = _TIER.match(tier_id)
        if not match:
            continue
        coder = match[3] if match[3] is not None else (attributes.get("ANNOTATOR") or "")
        if match[2]:
            roles[tier_id] = TierRole("au", coder, int(match[2]))
        else:
            roles[tier_id] = TierRole(match[1], coder)
    return roles


def parse_tier_map(text: str) -> dict[str, TierRole]:
    """`TIER=events:CODER,Smile=AU12:CODER` -> roles (the coder part is optional)."""
    roles = {}
    for item in filter(None, (piece.strip() for piece in text.split(","))):
        tier, sep, target = item.rpartition("=")
        role, _, coder = target.partition(":")
        role = role.strip()
        if not sep or not tier.strip():
            raise UserError(f"tier map entry {item!r}: write TIER=ROLE[:CODER], e.g. "
                            "'Smile=AU12:anna' or 'Events=events:anna'")
        if role.upper().startswith("AU"):
            try:
                roles[tier.strip()] = TierRole("au", coder.strip(), au_number(role))
            except KeyError as err:
                raise UserError(f"tier map entry {item!r}: {err.args[0]}") from None
        elif role in ROLES:
            roles[tier.strip()] = TierRole(role, coder.strip())
        else:
            raise UserError(f"tier map entry {item!r}: role must be events, apex, emotion, type "
                            "or an AU like AU12")
    return roles


def _load(path: Path):
    from pympi.Elan import Eaf

    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise UserError(f"{path} does not exist") from None
    except OSError as err:
        raise UserError(f"cannot read {path}: {err.strerror or err}") from None
    if size > MAX_EAF_BYTES:
        raise UserError(f"{path.name} is {size / 2**20:.0f} MB; an ELAN file that large is not "
                        "an annotation document we can read")
    with path.open("rb") as handle:
        head = handle.read(512).lstrip()
    if not head.startswith(b"<"):
        raise UserError(f"{path.name} is not an ELAN .eaf file (it is not XML)")
    try:
        return Eaf(str(path), suppress_version_warning=True)
    except Exception as err:  # pympi raises bare Exception, KeyError and ValueError on bad files
        detail = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise UserError(f"{path.name} is not a readable ELAN .eaf file ({detail})") from None


def read_elan(path: Path | str, clock: FrameClock,
              tier_map: dict[str, TierRole] | None = None) -> ElanDocument:
    """Read the events of an .eaf file, timed by `clock` (the video's frame numbers and rate)."""
    path = Path(path)
    eaf = _load(path)
    attributes = {tier: eaf.tiers[tier][2] for tier in eaf.tiers}
    roles = dict(default_tier_roles(attributes))
    if tier_map:
        missing = [t for t in tier_map if t not in eaf.tiers]
        if missing:
            raise UserError(f"{path.name} has no tier {missing[0]!r}; its tiers are "
                            f"{', '.join(sorted(eaf.tiers))}")
        roles.update(tier_map)
    issues: list[str] = []

    def frames(aid_tuple) -> tuple[int, int] | None:
        begin, end = eaf.timeslots.get(aid_tuple[0]), eaf.timeslots.get(aid_tuple[1])
        if begin is None or end is None:
            return None  # an unaligned slot: the annotation has no time of its own
        onset = clock.frame_starting_at(begin)
        offset = max(onset, clock.frame_ending_at(end))
        return onset, offset

    events: list[ElanEvent] = []
    coders = sorted({r.coder for r in roles.values()})
    for coder in coders:
        mine = {t: r for t, r in roles.items() if r.coder == coder}
        apex_marks = sorted(
            frames(a)[0] for t, r in mine.items() if r.role == "apex"
            for a in eaf.tiers[t][0].values() if frames(a) is not None)
        labels: dict[str, dict[str, str]] = {"emotion": {}, "type": {}}
        for tier, role in mine.items():
            if role.role in labels:
                for parent, value, _, _ in eaf.tiers[tier][1].values():
                    labels[role.role][parent] = value
        event_tiers = [t for t, r in mine.items() if r.role == "events"]
        found: list[tuple[int, int, tuple[AUCode, ...], str | None, str]] = []
        if event_tiers:
            for tier in event_tiers:
                for aid, annotation in eaf.tiers[tier][0].items():
                    span = frames(annotation)
                    parsed = parse_au_string(annotation[2] or "")
                    if span is None:
                        issues.append(f"{tier} {aid}: no time")
                        continue
                    if not parsed.ok:
                        issues.append(f"{tier} {aid}: AUs {annotation[2]!r} not understood "
                                      f"({'; '.join(r for _, r in parsed.unparsed)})")
                        continue
                    emotion = labels["emotion"].get(aid) or None
                    kind = labels["type"].get(aid) or "micro"
                    if kind not in ("micro", "macro"):
                        issues.append(f"{tier} {aid}: type {kind!r} is neither micro nor macro")
                        kind = "micro"
                    found.append((*span, parsed.codes, emotion, kind))
        else:
            for tier, role in mine.items():
                if role.role != "au":
                    continue
                for aid, annotation in eaf.tiers[tier][0].items():
                    span = frames(annotation)
                    parsed = parse_au_string(annotation[2] or "")
                    codes = tuple(c for c in parsed.codes if c.number == role.au) if parsed.ok \
                        else ()
                    if span is None:
                        issues.append(f"{tier} {aid}: no time")
                        continue
                    found.append((*span, codes or (AUCode(role.au),), None, "micro"))
        found.sort(key=lambda item: (item[0], item[1]))
        unused = list(apex_marks)
        for onset, offset, codes, emotion, kind in found:
            apex = next((m for m in unused if onset <= m <= offset), None)
            if apex is not None:
                unused.remove(apex)
            else:
                apex = (onset + offset) // 2
            events.append(ElanEvent(onset, apex, offset, codes, coder, emotion, kind))
    ignored = tuple(sorted(t for t in eaf.tiers if t not in roles))
    return ElanDocument(tuple(events), ignored, tuple(issues))


def linked_media(path: Path | str) -> Path | None:
    """The first media descriptor of an .eaf that names an existing file (relative URLs are
    resolved next to the .eaf, as ELAN does), or None."""
    from urllib.parse import unquote, urlparse

    path = Path(path).absolute()
    eaf = _load(path)
    for descriptor in eaf.media_descriptors:
        for key in ("RELATIVE_MEDIA_URL", "MEDIA_URL"):
            url = descriptor.get(key) or ""
            parsed = urlparse(url)
            text = unquote(parsed.path) if parsed.scheme == "file" else url
            if not text:
                continue
            candidate = Path(text) if Path(text).is_absolute() else path.parent / text
            if candidate.exists():
                return candidate.resolve()
    return None


def import_elan(project: Project, path: Path | str, video_id: int | None = None,
                tier_map: dict[str, TierRole] | None = None,
                source: str = "expert", progress: Progress | None = None,
                should_cancel: ShouldCancel | None = None) -> ElanImportSummary:
    """Add an .eaf file's events to a video of the project (found from the media descriptor when
    `video_id` is None), in one transaction; a cancel (polled per event) rolls it back."""
    path = Path(path).absolute()
    if video_id is None:
        media = linked_media(path)
        video = project.video_by_path(media) if media is not None else None
        if video is None:
            raise UserError(f"{path.name} links no video of this project; add the video first, "
                            "or name it (--video)")
        video_id = video.id
    video = project.video(video_id)
    document = read_elan(path, FrameClock.of(project, video), tier_map)
    if not document.events and not document.issues:
        raise UserError(f"{path.name} has no event or AU tier the map covers (tiers: "
                        f"{', '.join(document.ignored_tiers) or 'none'}); give a tier map")
    known = {_key(e.onset, e.apex, e.offset, e.coder, e.aus) for e in project.events(video_id)}
    added = duplicates = 0
    with project.transaction():
        for k, event in enumerate(document.events):
            check_cancel(should_cancel, "import cancelled")
            if progress is not None:
                progress(k, len(document.events))
            key = _key(event.onset, event.apex, event.offset, event.coder, event.aus)
            if key in known:
                duplicates += 1
                continue
            project.add_event(video_id, event.onset, event.apex, event.offset, event.aus,
                              emotion=event.emotion, expression_type=event.expression_type,
                              coder=event.coder, source=source)
            known.add(key)
            added += 1
    return ElanImportSummary(added, duplicates, document.ignored_tiers, document.issues)


def _key(onset: int, apex: int, offset: int, coder: str, aus: Iterable[AUCode]) -> tuple:
    return onset, apex, offset, coder, format_au_codes(aus)
