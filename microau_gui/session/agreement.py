"""Inter-coder agreement on the open project: two coders, or a coder and the model.

Owns: `AgreementSource`, `AgreementReport`, `agreement_sources`, `coded_events`,
`project_agreement`, `write_report_csv` (plain functions, no Qt), `compute_agreement` (the job
function for an `AgreementRequest`: it opens the project file read-only on its own thread) and
`AgreementController` (the session's `agreement`: the newest request wins). May import spotting
(`compare_coders`, `events_from_frame_probs`, `CodedEvent`), store, core, the session's
messages, jobs, workers and review_items, and PySide6.QtCore.

Our specification (the figures are `spotting.agreement.compare_coders`'s, unchanged):
- A source is a coder (every event, expert or accepted, whose coder field is that name; "" is
  shown as "(no coder name)"), a model version (its cached per-frame probabilities, runs of
  frames with an AU >= threshold, `events_from_frame_probs`), a comparison trace imported from
  another tool (by name; its own decision channel, OpenFace presence or a probability,
  thresholded the same way; masked frames count as no AU), or the spotted candidates kept by
  the review queue (intervals without AUs: they count for event F1 and timing only).
- A source covers a video when it has an event there (coder), cached predictions (model), a
  trace of that name (trace) or stored candidates (spotted). Agreement is computed over the videos BOTH sources cover: a
  video only one coder looked at says nothing about agreement. Video keys are video ids, so
  clips with the same name under different subjects never mix.
- Frame-level kappa counts every frame of each compared video (its length from the project).
- Coder A plays the reference (TP, FN on A's side); F1 is symmetric.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QObject, Signal

from microau_gui.core.errors import UserError
from microau_gui.core.types import DECISION_THRESHOLD
from microau_gui.session.jobs import Job, JobRunner, RequestIds
from microau_gui.session.messages import AgreementRequest, JobDone
from microau_gui.session.review_items import stored_candidates
from microau_gui.session.workers import WorkerThread
from microau_gui.store.project import Project

@dataclass(frozen=True)
class AgreementSource:
    """One side of a comparison."""

    kind: str  # "coder", "model" or "spotted"
    key: str  # coder name, model version id (as text) or "" for spotted candidates
    label: str  # what the selector shows


@dataclass(frozen=True, eq=False)
class AgreementReport:
    """What the view shows: compare_coders' result and what it was computed on."""

    source_a: AgreementSource
    source_b: AgreementSource
    result: object  # spotting.agreement.Agreement
    video_names: tuple[str, ...]  # the compared videos
    n_left_out: int  # videos only one source covers
    threshold: float  # model probability threshold used for model events


def agreement_sources(project: Project) -> list[AgreementSource]:
    """Coders with events, model versions with cached predictions, spotted candidates."""
    sources = [AgreementSource("coder", name, name or "(no coder name)")
               for name in project.coders()]
    for version in project.models.list():
        if any(project.predictions.frames(v.id, version.id).size for v in project.videos()):
            sources.append(AgreementSource("model", str(version.id), f"model {version.name}"))
    if _spotted_video_ids(project):
        sources.append(AgreementSource("spotted", "", "spotted candidates"))
    traces = {(t.name, t.tool) for t in project.traces.list()
              if {"presence", "probability"} & set(t.channels)}
    sources += [AgreementSource("trace", name, f"{tool} {name}") for name, tool in sorted(traces)]
    return sources


def _spotted_video_ids(project: Project) -> list[int]:
    return project.review.video_ids()


def coded_events(project: Project, source: AgreementSource,
                 threshold: float = DECISION_THRESHOLD) -> tuple[list, set[int]]:
    """(CodedEvents keyed by video id as text, ids of the videos the source covers)."""
    from microau_gui.spotting.agreement import CodedEvent, events_from_frame_probs

    if source.kind == "coder":
        events = [CodedEvent(str(e.video_id), e.onset, e.offset, e.apex,
                             frozenset(f"AU{a.number}" for a in e.aus), source.key)
                  for e in project.events(coder=source.key)]
        return events, {int(e.video) for e in events}
    if source.kind == "model":
        version_id = int(source.key)
        events, covered = [], set()
        for video in project.videos():
            trace = project.predictions.probs(video.id, version_id)
            if trace.frame_idx.size == 0:
                continue
            covered.add(video.id)
            probs = np.nan_to_num(trace.probs, nan=0.0)  # (n, n_au) no face: no AU
            events += events_from_frame_probs(str(video.id), trace.frame_idx, probs, trace.vocab,
                                              threshold=threshold, coder=source.label)
        return events, covered
    if source.kind == "spotted":
        events, covered = [], set()
        for video_id in _spotted_video_ids(project):
            covered.add(video_id)
            events += [CodedEvent(str(video_id), i.onset, i.offset, i.apex, frozenset(), "spotted")
                       for i in stored_candidates(project, video_id)]
        return events, covered
    if source.kind == "trace":
        events, covered = [], set()
        for info in project.traces.list():
            if info.name != source.key:
                continue
            trace = project.traces.get(info.id)
            channel = trace.decision_channel()
            if channel is None:
                continue
            covered.add(info.video_id)
            aus, values = trace.channel(channel)
            values = np.nan_to_num(values, nan=0.0)  # (n, n_au) masked rows: no AU
            events += events_from_frame_probs(str(info.video_id), trace.frame_idx, values, aus,
                                              threshold=threshold, coder=source.label)
        return events, covered
    raise UserError(f"unknown agreement source {source.kind!r}")


def project_agreement(project: Project, source_a: AgreementSource, source_b: AgreementSource,
                      threshold: float = DECISION_THRESHOLD, min_iou: float = 0.5) -> AgreementReport:
    """compare_coders over the videos both sources cover (see the module docstring)."""
    from microau_gui.spotting.agreement import compare_coders

    if source_a == source_b:
        raise UserError("choose two different sources to compare")
    events_a, covered_a = coded_events(project, source_a, threshold)
    events_b, covered_b = coded_events(project, source_b, threshold)
    both = covered_a & covered_b
    if not both:
        raise UserError(f"{source_a.label} and {source_b.label} cover no video in common; code "
                        "(or analyse / spot) the same videos first")
    videos = {v.id: v for v in project.videos() if v.id in both}
    keys = {str(video_id) for video_id in both}
    result = compare_coders([e for e in events_a if e.video in keys],
                            [e for e in events_b if e.video in keys],
                            n_frames={str(v.id): v.n_frames for v in videos.values()},
                            min_iou=min_iou)
    names = tuple(videos[i].name for i in sorted(videos))
    return AgreementReport(source_a, source_b, result, names,
                           len(covered_a | covered_b) - len(both), threshold)


def write_report_csv(report: AgreementReport, path) -> None:
    """The report's per-AU figures as CSV (`spotting.agreement.write_agreement_csv`)."""
    from microau_gui.spotting.agreement import write_agreement_csv

    write_agreement_csv(report.result, path)


def fmt(value: float, digits: int = 3) -> str:
    """A figure for the view: NaN (undefined) is shown as n/a."""
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) \
        else f"{value:.{digits}f}"


def compute_agreement(request: AgreementRequest, job: Job) -> JobDone:
    """`project_agreement` on the project file; the result is an `AgreementReport`."""
    project = Project.open(request.project_path, read_only=True)
    try:
        report = project_agreement(project, request.source_a, request.source_b,
                                   request.threshold)
    finally:
        project.close()
    return job.done(f"agreement of {report.source_a.label} and {report.source_b.label}", report)


class AgreementController(QObject):
    """The session's agreement computations (newest request wins)."""

    computed = Signal(object)  # AgreementReport
    failed = Signal(str)

    def __init__(self, ids: RequestIds, project: Callable[[], Project | None],
                 parent: QObject | None = None):
        super().__init__(parent)
        self._project = project
        self._job = JobRunner(ids, compute_agreement, "inter-coder agreement", self)
        self._job.finished.connect(self._on_job_finished)
        self._job.failed.connect(self.failed)

    @property
    def running(self) -> bool:
        return self._job.running

    @property
    def threads(self) -> list[WorkerThread]:
        return self._job.threads

    def sources(self) -> list[AgreementSource]:
        project = self._project()
        return agreement_sources(project) if project is not None else []

    def compute(self, source_a: AgreementSource, source_b: AgreementSource,
                threshold: float = DECISION_THRESHOLD) -> None:
        """Start computing; `computed` (or `failed`) follows."""
        project = self._project()
        if project is None:
            raise UserError("open a project first")
        if source_a == source_b:
            raise UserError("choose two different sources to compare")
        self._job.submit(AgreementRequest(project.path, source_a, source_b, threshold),
                         replace=True)

    def _on_job_finished(self, done: JobDone) -> None:
        if done.result is not None:
            self.computed.emit(done.result)

    def close(self) -> None:
        self._job.close()
