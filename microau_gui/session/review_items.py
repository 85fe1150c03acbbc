"""The review queues as plain values: items, marks, ranking, and the jobs that fill them.

Owns: `ReviewItem`, `ItemStatus`, `ReviewQueue`, `AU_THRESHOLD`, `MICRO_MAX_S`, `aus_from_probs`,
`firing_span`, `accepted_aus`, `accepted_event`, the conversions from spotting candidates and
suggestions to items, the candidates' persistence (`store.review_queue`) and `suggest` (the job function for a
`SuggestRequest`). May import inference (`inference.suggest`, lazily), store, core and the
session's messages and jobs; no Qt, so every rule here is tested without a window.
See `session.review` for the spotted candidates queue.

Our specification of the suggestions queue (issue #7 part 4, "Suggest what to review"):
- `suggest()` ranks the loaded (active) model version's cached predictions against the coded
  events with `inference.suggest.suggest_for_project` and fills the SUGGESTIONS queue, best
  first. It reads only what an analysis cached; when that version has none, the queue stays
  empty and says so ("analyse the videos first"). The queue is emptied when another version is
  loaded, since its suggestions came from the previous one's predictions.
- Each suggestion is an item about one frame (the playhead goes there) and one AU. A suggestion
  about a coded event, or a frame inside one (the event whose apex is nearest), carries that
  event: going to it selects the event. Otherwise the item spans the model's firing around the
  frame (`firing_span`: the run of cached frames where the AU stays at least as high as at the
  suggested frame, capped at the decision threshold), a possible uncoded expression.
- What Y means, decided as an expert coder reads a suggestion ("the model thinks X here"):
  * about an existing event, Y says "I have reviewed this event": the coder corrects the event
    first with the usual keys (it is selected when the item is shown), then Y marks the item
    reviewed (no edit of its own, nothing to undo) and moves to the next undecided item;
  * about a frame outside every coded event, Y says "yes, there is an expression here": it
    becomes an accepted event exactly as a spotted candidate does (one undoable
    `AcceptPrediction`, the AUs of the model's prediction at the frame plus the suggested AU,
    which the coder has just confirmed; micro or macro by length, `MICRO_MAX_S`), selected so
    it is edited at once; the queue stays on it until Next.
  X says "the model is wrong here / nothing to do": the item is marked rejected, the project is
  not touched, and the queue moves to the next undecided item. Marks last until the next
  Suggest (they are not stored: suggestions are recomputed from the current predictions).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum

import numpy as np

from microau_gui.core.au import au_number
from microau_gui.core.aus import AUCode
from microau_gui.core.types import DECISION_THRESHOLD
from microau_gui.session.jobs import Job
from microau_gui.session.messages import JobDone, SuggestRequest, Suggested
from microau_gui.store.project import Project
from microau_gui.store.records import PredictedEvent
from microau_gui.store.review_queue import CandidateRow

AU_THRESHOLD = DECISION_THRESHOLD  # an AU at or above it at the apex is taken as present
MICRO_MAX_S = 0.5  # longest micro-expression (as spotting's `micro_max_s`); longer is macro
SUGGEST_SOURCES = ("expert", "accepted")  # the coded events suggestions are measured against
CANDIDATES = "candidates"
SUGGESTIONS = "suggestions"


def firing_span(trace, frame_idx: int, au: str | None,
                threshold: float = AU_THRESHOLD) -> tuple[int, int]:
    """(onset, offset) frame_idx of the model's firing around a suggested frame: the run of
    cached frames (no further apart than the trace's usual step) where `au` stays at or above
    min(threshold, its probability at `frame_idx`). The frame alone when it is not cached."""
    rows = np.flatnonzero(trace.frame_idx == frame_idx)
    if au is None or au not in trace.vocab or not len(rows):
        return frame_idx, frame_idx
    frames = trace.frame_idx
    p = np.nan_to_num(trace.probs[:, trace.vocab.index(au)], nan=0.0)  # (n,)
    row = int(rows[0])
    level = min(threshold, float(p[row]))
    step = int(np.median(np.diff(frames))) if len(frames) > 1 else 1
    first = last = row
    while first > 0 and p[first - 1] >= level and frames[first] - frames[first - 1] <= step:
        first -= 1
    while last < len(p) - 1 and p[last + 1] >= level and frames[last + 1] - frames[last] <= step:
        last += 1
    return int(frames[first]), int(frames[last])


def aus_from_probs(vocab: Sequence[str], probs: Sequence[float] | None,
                   threshold: float = AU_THRESHOLD) -> tuple[AUCode, ...]:
    """Bilateral AU codes of every AU whose probability reaches `threshold`, in vocabulary order."""
    if probs is None:
        return ()
    return tuple(AUCode(au_number(code)) for code, p in zip(vocab, probs) if p >= threshold)


@dataclass(frozen=True)
class ReviewItem:
    """One thing to look at: a spotted interval, or a frame/event a ranking picked."""

    video_id: int
    onset: int  # frame_idx
    apex: int  # frame_idx: where the playhead goes
    offset: int  # frame_idx, inclusive
    score: float  # rank key, higher first (spotting: apex z in noise units)
    kind: str  # candidates: "micro" or "macro"; suggestions: the ranking's reason
    detail: str = ""  # one line: regions that moved, or why it was suggested
    event_id: int | None = None  # the existing event the item is about, if any
    au: str | None = None  # suggestions: the AU concerned, e.g. "AU12"


class ItemStatus(str, Enum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    REJECTED = "rejected"


class ReviewQueue:
    """Items ranked by score with a current position and the coder's marks."""

    def __init__(self, name: str):
        self.name = name
        self.items: tuple[ReviewItem, ...] = ()
        self.current: int | None = None
        self.rejected: set[int] = set()  # item indices
        self.accepted: dict[int, int] = {}  # item index -> event id it became
        self.live_event_ids: set[int] = set()  # accepted events that still exist

    def set_items(self, items: Iterable[ReviewItem], rejected: Iterable[int] = (),
                  accepted: dict[int, int] | None = None, ranked: bool = False) -> None:
        """Rank `items` by score (ties by onset; `ranked`: they are in rank order already, kept
        as given); marks refer to positions in that ranking."""
        self.items = (tuple(items) if ranked else
                      tuple(sorted(items, key=lambda i: (-i.score, i.video_id, i.onset))))
        self.rejected = {i for i in rejected if 0 <= i < len(self.items)}
        self.accepted = {i: e for i, e in (accepted or {}).items() if 0 <= i < len(self.items)}
        self.current = 0 if self.items else None

    def __len__(self) -> int:
        return len(self.items)

    def status(self, index: int) -> ItemStatus:
        if self.accepted.get(index) in self.live_event_ids:
            return ItemStatus.ACCEPTED
        if index in self.rejected:
            return ItemStatus.REJECTED
        return ItemStatus.PENDING

    def counts(self) -> dict[ItemStatus, int]:
        out = {s: 0 for s in ItemStatus}
        for index in range(len(self.items)):
            out[self.status(index)] += 1
        return out

    def neighbour(self, step: int, pending_only: bool = False) -> int | None:
        """The item `step` places from the current one (in rank order), or the next pending one."""
        if not self.items:
            return None
        start = -1 if self.current is None else self.current
        if not pending_only:
            index = start + step
            return index if 0 <= index < len(self.items) else None
        order = list(range(start + 1, len(self.items))) + list(range(0, max(start, 0)))
        return next((i for i in order if self.status(i) is ItemStatus.PENDING), None)


def suggestion_item(suggestion, events: list, traces: dict) -> ReviewItem:
    """The queue item of an `inference.suggest.Suggestion` (see the module docstring)."""
    frame_idx = suggestion.frame_idx
    event = next((e for e in events if e.id == suggestion.event_id), None)
    if event is None:
        inside = [e for e in events if e.video_id == suggestion.video_id
                  and e.onset <= frame_idx <= e.offset]
        event = min(inside, key=lambda e: (abs(e.apex - frame_idx), e.id), default=None)
    if event is not None:
        onset, offset = event.onset, event.offset
    else:
        onset, offset = firing_span(traces[suggestion.video_id], frame_idx, suggestion.au)
    return ReviewItem(suggestion.video_id, onset, frame_idx, offset, float(suggestion.score),
                      suggestion.kind, suggestion.reason,
                      event.id if event is not None else None, suggestion.au)


def candidate_item(video_id: int, candidate) -> ReviewItem:
    moved = "+".join(candidate.regions)
    return ReviewItem(video_id, candidate.onset, candidate.apex, candidate.offset,
                      float(candidate.score), candidate.kind,
                      f"moved: {moved}" if moved else "")


def accepted_aus(item: ReviewItem, prediction) -> tuple[AUCode, ...]:
    """The AUs an accepted item gets: those of the model's prediction (a `FramePrediction` of
    its apex) at or above the threshold, plus the AU a suggestion was about."""
    aus = aus_from_probs(prediction.vocab, prediction.probs)
    if item.au is not None and au_number(item.au) not in {c.number for c in aus}:
        aus = tuple(sorted((*aus, AUCode(au_number(item.au))), key=lambda c: c.number))
    return aus


def accepted_event(item: ReviewItem, aus: tuple[AUCode, ...], fps: float,
                   model_version_id: int | None) -> PredictedEvent:
    """The prediction an accepted item becomes: its span and AUs, micro or macro by length
    (`MICRO_MAX_S`) unless spotting said which."""
    if item.kind in ("micro", "macro"):
        kind = item.kind
    else:
        long = fps > 0 and (item.offset - item.onset + 1) / fps > MICRO_MAX_S
        kind = "macro" if long else "micro"
    return PredictedEvent(item.video_id, item.onset, item.apex, item.offset, aus,
                          model_version_id, expression_type=kind)


def stored_candidates(project: Project, video_id: int) -> list[ReviewItem]:
    """The spotted candidates the project keeps for a video, ranked (empty when never spotted)."""
    return [ReviewItem(video_id, r.onset_idx, r.apex_idx, r.offset_idx, r.score, r.kind, r.detail)
            for r in project.review.rows(video_id)]


def load_candidates(project: Project, video_id: int, queue: ReviewQueue) -> None:
    """Fill the candidates queue with a video's stored candidates and the coder's marks."""
    rows = project.review.rows(video_id)
    items = [ReviewItem(video_id, r.onset_idx, r.apex_idx, r.offset_idx, r.score, r.kind, r.detail)
             for r in rows]
    queue.set_items(items, [i for i, r in enumerate(rows) if r.rejected],
                    {i: r.accepted_event_id for i, r in enumerate(rows)
                     if r.accepted_event_id is not None}, ranked=True)


def save_candidates(project: Project, video_id: int, queue: ReviewQueue) -> None:
    """Keep a video's candidates queue and its marks in the project file."""
    project.review.replace(video_id, [
        CandidateRow(i.onset, i.apex, i.offset, i.score, i.kind, i.detail, index in queue.rejected,
                     queue.accepted.get(index))
        for index, i in enumerate(queue.items)])


def suggest(request: SuggestRequest, job: Job) -> JobDone:
    """Rank the version's cached predictions of the project file against its coded events
    (`inference.suggest.suggest_for_project`); the result is `Suggested`."""
    from microau_gui.inference.suggest import suggest_for_project

    project = Project.open(request.project_path, read_only=True)
    try:
        version_id, name = request.model_version_id, request.model_version
        suggestions = suggest_for_project(project, version_id, sources=SUGGEST_SOURCES)
        events = [e for e in project.events() if e.source in SUGGEST_SOURCES]
        traces = {video_id: project.predictions.probs(video_id, version_id)
                  for video_id in {s.video_id for s in suggestions}}
        items = tuple(suggestion_item(s, events, traces) for s in suggestions)
        if items:
            note = ""
        elif any(len(project.predictions.frames(v.id, version_id)) for v in project.videos()):
            note = (f"nothing to suggest: {name}'s predictions agree with the coding and are "
                    "confident everywhere")
        else:
            note = (f"no predictions of {name} are cached: analyse the video first (File > "
                    "Analyse video, Ctrl+R), then suggest again")
    finally:
        project.close()
    summary = f"{len(items)} suggestions from {name}'s predictions" if items else note
    return job.done(summary, Suggested(items, note))
