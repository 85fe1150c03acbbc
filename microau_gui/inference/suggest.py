"""Review suggestions (active learning): which frames and events the coder should look at next.

Owns: `Suggestion`, `SuggestSettings`, `KINDS`, `min_expression_frames`, `rank_suggestions` (a pure function of cached
probabilities and coded events) and `suggest_for_project` (reads both from a project). May import
training (label encoding), store and core; numpy only, no torch, no Qt. The GUI's review queue
calls `suggest_for_project` and walks the list.

Input: a model version's cached per-frame probabilities (`project.predictions.probs`, one
`ProbTrace` per analysed video) and the project's coded events. Output: typed suggestions, best
first, each naming a video, a frame (and, for disagreements with a coded event, that event), the
AU concerned, a one-line reason and a score in [0, 1]. Four kinds (our specification):

- "disagreement": the model and the coder disagree about a coded event. Over the event's frames
  [onset, offset], a coded AU whose highest probability stays below the threshold scores
  (thr - p_max) / thr ("coded but not seen"); an AU the event does not code whose highest
  probability reaches the threshold scores (p_max - thr) / (1 - thr) ("seen but not coded").
  Outside every coded event, a run of frames where an AU stays at or above `fire_threshold` for
  at least the shortest plausible expression (`min_expression_s`, 40 ms: Ekman's 1/25 s) is a
  possible uncoded expression, scored (p - thr) / (1 - thr) at its peak (event_id None). Labels
  are encoded as training encodes them (`pairs.samples.au_labels`: either side counts,
  uncertain codes do not).
- "uncertain": the model sits near its threshold: 1 - |p - thr| / `uncertain_margin` for the
  AU closest to it, when within the margin.
- "rare": an AU coded in fewer than `rare_max_labels` events of the project (the under-labelled
  ones) that the model predicts (p >= thr), outside events coding it, for at least the
  shortest plausible expression; scored p * (1 - n_labels / rare_max_labels).
- "unstable": a per-AU score that jumps for a single frame and comes back (p_t differs from both
  neighbours in the same direction by at least `jump_min`); scored by the smaller of the two
  jumps. A step that stays (a real onset at a low frame rate) is not flagged. Neighbours are the
  adjacent cached frames, when no further apart than the trace's usual step. Every spike of one
  AU in one video is ONE suggestion (the model flickers on that AU), not one per frame.

Noise control (issue 16: 36 items for 142 frames, mostly one-frame spikes, and Y on one made a
one-frame event that entered the fine-tune set). A firing shorter than the shortest plausible
expression is not an expression: it is left to "unstable". Frames of one kind in one video
closer than `min_gap_frames` merge into one interval (`Suggestion.onset` .. `offset`, the best
frame as `frame_idx`, the other AUs named in the reason), so a long uncertain stretch or an
expression seen on three AUs is one entry. The rank is the expected value of the review to the
model: the kind's weight (`kind_weights`: disagreements with coded events first, since they are
the corrections that change the training data) x the score x the share of a plausible
expression the interval covers (min(1, frames / shortest expression's frames)), so one-frame
items sink below anything that could be a real expression. Sorted by that, then video and frame.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from microau_gui.core.errors import UserError
from microau_gui.core.types import DECISION_THRESHOLD, MIN_EXPRESSION_S
from microau_gui.store.predictions import ProbTrace
from microau_gui.store.records import Event
from microau_gui.pairs.samples import au_labels

KINDS: tuple[str, ...] = ("disagreement", "uncertain", "rare", "unstable")
DEFAULT_FPS = 30.0  # frame rate assumed for a video whose rate the caller does not give


@dataclass(frozen=True)
class Suggestion:
    """One thing to review: a frame (and maybe a coded event) with why and how urgently."""

    kind: str  # one of KINDS
    video_id: int
    frame_idx: int  # the frame to show: the model's peak frame, or a coded event's apex
    score: float  # weighted urgency in [0, 1]; the list is sorted by it
    reason: str  # one line for the review queue
    au: str | None = None  # the AU concerned, e.g. "AU12"
    event_id: int | None = None  # the coded event it concerns (disagreements with an event)
    prob: float | None = None  # the model's probability of `au` at `frame_idx`
    onset: int | None = None  # frame_idx: first frame of the merged interval (None: frame_idx)
    offset: int | None = None  # frame_idx, inclusive: last frame of the merged interval

    @property
    def span(self) -> tuple[int, int]:
        """(onset, offset) of the interval the suggestion covers."""
        return (self.frame_idx if self.onset is None else self.onset,
                self.frame_idx if self.offset is None else self.offset)

    @property
    def key(self) -> tuple:
        """Stable identity, e.g. to remember suggestions the coder rejected."""
        return (self.kind, self.video_id, self.event_id, self.frame_idx, self.au)


def _default_weights() -> dict[str, float]:
    return {"disagreement": 1.0, "rare": 0.8, "uncertain": 0.6, "unstable": 0.5}


@dataclass(frozen=True)
class SuggestSettings:
    """Thresholds of the four suggestion kinds (see the module docstring)."""

    threshold: float = DECISION_THRESHOLD  # the model's decision threshold
    uncertain_margin: float = 0.15  # |p - threshold| below this is "uncertain"
    fire_threshold: float = 0.8  # outside coded events, p this high suggests an uncoded expression
    rare_max_labels: int = 5  # an AU coded in fewer events than this is under-labelled
    jump_min: float = 0.4  # a one-frame spike at least this high is instability
    min_gap_frames: int = 10  # frame suggestions of one kind and video closer than this merge
    min_expression_s: float = MIN_EXPRESSION_S  # a firing shorter than this is not an expression
    limit: int | None = 200  # longest list returned; None = all
    kind_weights: dict[str, float] = field(default_factory=_default_weights)  # kind -> weight

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold < 1.0:
            raise UserError(f"suggestion threshold {self.threshold} must lie between 0 and 1")
        if (self.uncertain_margin <= 0 or self.jump_min <= 0 or self.min_gap_frames < 0
                or self.min_expression_s < 0):
            raise UserError("suggestion margins must be positive")
        unknown = set(self.kind_weights) - set(KINDS)
        if unknown:
            raise UserError(f"unknown suggestion kinds {sorted(unknown)}; use {', '.join(KINDS)}")


class _Candidates:
    """Frame suggestions of one kind in one video, merged into intervals by time: items closer
    than `min_gap` frames join one interval; the best item speaks for it and names the others'
    AUs."""

    def __init__(self, min_gap: int):
        self.min_gap = min_gap
        self.items: list[Suggestion] = []

    def add(self, suggestion: Suggestion) -> None:
        self.items.append(suggestion)

    def merged(self) -> list[Suggestion]:
        groups: list[list[Suggestion]] = []
        end = None
        for item in sorted(self.items, key=lambda s: s.span):
            onset, offset = item.span
            if groups and end is not None and onset - end < max(self.min_gap, 1):
                groups[-1].append(item)
                end = max(end, offset)
            else:
                groups.append([item])
                end = offset
        out = []
        for group in groups:
            best = max(group, key=lambda s: (s.score, -s.frame_idx))
            onset = min(s.span[0] for s in group)
            offset = max(s.span[1] for s in group)
            others = sorted({s.au for s in group if s.au and s.au != best.au})
            reason = best.reason + (f"; also {', '.join(others)}" if others else "")
            if offset > onset:
                reason += f" (frames {onset}-{offset})"
            out.append(Suggestion(best.kind, best.video_id, best.frame_idx, best.score, reason,
                                  best.au, best.event_id, best.prob, onset, offset))
        return out


def _runs(mask: np.ndarray, frame_idx: np.ndarray) -> list[tuple[int, int]]:
    """(first row, last row) of every run of True rows whose frames follow each other."""
    runs = []
    start = None
    for row in range(len(mask)):
        joined = start is not None and frame_idx[row] - frame_idx[row - 1] == 1
        if mask[row] and joined:
            continue
        if start is not None:
            runs.append((start, row - 1))
            start = None
        if mask[row]:
            start = row
    if start is not None:
        runs.append((start, len(mask) - 1))
    return runs


def min_expression_frames(fps: float, settings: SuggestSettings) -> int:
    """Frames of the shortest plausible expression at `fps` (at least one)."""
    return max(1, int(np.ceil(settings.min_expression_s * fps - 1e-9)))


def _event_disagreements(trace: ProbTrace, valid: np.ndarray, event: Event,
                         settings: SuggestSettings) -> list[Suggestion]:
    thr = settings.threshold
    inside = valid & (trace.frame_idx >= event.onset) & (trace.frame_idx <= event.offset)
    if not inside.any():
        return []
    frames = trace.frame_idx[inside]
    probs = trace.probs[inside]  # (n, n_au)
    peak_row = probs.argmax(axis=0)  # (n_au,)
    p_max = probs.max(axis=0)  # (n_au,)
    coded = au_labels(event.aus, trace.vocab)  # (n_au,)
    out = []
    for k, code in enumerate(trace.vocab):
        p = float(p_max[k])
        if coded[k] and p < thr:
            out.append(Suggestion(
                "disagreement", event.video_id, int(event.apex), (thr - p) / thr,
                f"event {event.id} codes {code}, but the model gives it at most {p:.2f} "
                f"(frames {event.onset}-{event.offset})", code, event.id, p))
        elif not coded[k] and p >= thr:
            out.append(Suggestion(
                "disagreement", event.video_id, int(frames[peak_row[k]]), (p - thr) / (1 - thr),
                f"the model sees {code} ({p:.2f}) in event {event.id}, which does not code it",
                code, event.id, p))
    return out


def _coded_in(n_events: int) -> str:
    return "coded in no event" if n_events == 0 else f"coded in only {n_events} event(s)"


def _spikes(frame_idx: np.ndarray, probs: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """`(n, n_au)` one-frame spike heights: the smaller jump to either neighbour when both go the
    same way, 0 where a neighbour is missing, faceless or further away than the usual step."""
    spike = np.zeros(probs.shape)
    if len(frame_idx) < 3:
        return spike
    usual = int(np.median(np.diff(frame_idx)))
    mid = slice(1, -1)
    ok = (valid[:-2] & valid[1:-1] & valid[2:]
          & (frame_idx[1:-1] - frame_idx[:-2] <= usual) & (frame_idx[2:] - frame_idx[1:-1] <= usual))
    up = probs[mid] - probs[:-2]  # (n - 2, n_au)
    down = probs[mid] - probs[2:]
    same_way = np.sign(up) == np.sign(down)
    spike[mid] = np.where(same_way & ok[:, None], np.minimum(np.abs(up), np.abs(down)), 0.0)
    return spike


def _video_suggestions(video_id: int, trace: ProbTrace, events: Sequence[Event],
                       label_counts: np.ndarray, settings: SuggestSettings,
                       min_frames: int) -> list[Suggestion]:
    """Every kind of suggestion for one video (frame kinds merged in time), unweighted."""
    thr, vocab = settings.threshold, trace.vocab
    valid = ~np.isnan(trace.probs).any(axis=1)  # (n,) frames with a face
    frame_idx = trace.frame_idx
    probs = np.where(valid[:, None], trace.probs, 0.0).astype(np.float64)  # (n, n_au)
    out: list[Suggestion] = []
    for event in events:
        out.extend(_event_disagreements(trace, valid, event, settings))

    in_event = np.zeros(len(frame_idx), bool)  # (n,) inside any coded event
    codes_au = np.zeros(probs.shape, bool)  # (n, n_au) inside an event coding the AU
    for event in events:
        rows = (frame_idx >= event.onset) & (frame_idx <= event.offset)
        in_event |= rows
        codes_au[rows] |= au_labels(event.aus, vocab).astype(bool)
    rarity = np.clip(1.0 - label_counts / settings.rare_max_labels, 0.0, None)  # (n_au,)

    def best(values: np.ndarray, where: np.ndarray, by_min: bool = False):
        """(row, AU index) of each frame's best AU where `where(best value)` holds."""
        k = values.argmin(axis=1) if by_min else values.argmax(axis=1)  # (n,)
        picked = values[np.arange(len(k)), k]  # (n,)
        return [(int(r), int(k[r])) for r in np.flatnonzero(valid & where(picked))]

    candidates = {kind: _Candidates(settings.min_gap_frames) for kind in KINDS}

    def firings(values: np.ndarray, where: np.ndarray):
        """(peak row, first row, last row, AU index) of each run where `where` holds for an AU
        for at least the shortest plausible expression (shorter ones are flicker: "unstable")."""
        for k in range(len(vocab)):
            for first, last in _runs(valid & where[:, k], frame_idx):
                if frame_idx[last] - frame_idx[first] + 1 >= min_frames:
                    peak = first + int(values[first:last + 1, k].argmax())
                    yield peak, first, last, k

    outside = ~in_event[:, None] & (probs >= settings.fire_threshold)  # (n, n_au)
    for row, first, last, k in firings(probs, outside):
        p = probs[row, k]
        candidates["disagreement"].add(Suggestion(
            "disagreement", video_id, int(frame_idx[row]), (p - thr) / (1 - thr),
            f"the model sees {vocab[k]} ({p:.2f}) outside every coded event: an uncoded expression?",
            vocab[k], None, float(p), int(frame_idx[first]), int(frame_idx[last])))
    distance = np.abs(probs - thr)  # (n, n_au)
    near = distance < settings.uncertain_margin  # (n, n_au)
    for k in range(len(vocab)):
        for first, last in _runs(valid & near[:, k], frame_idx):
            row = first + int(distance[first:last + 1, k].argmin())
            p = probs[row, k]
            candidates["uncertain"].add(Suggestion(
                "uncertain", video_id, int(frame_idx[row]),
                1.0 - distance[row, k] / settings.uncertain_margin,
                f"the model is unsure about {vocab[k]} ({p:.2f}, threshold {thr:g})", vocab[k], None,
                float(p), int(frame_idx[first]), int(frame_idx[last])))
    rare = np.where((probs >= thr) & ~codes_au, probs * rarity, 0.0)  # (n, n_au)
    for row, first, last, k in firings(rare, rare > 0):
        p = probs[row, k]
        candidates["rare"].add(Suggestion(
            "rare", video_id, int(frame_idx[row]), float(rare[row, k]),
            f"{vocab[k]} is {_coded_in(int(label_counts[k]))}; the model gives it {p:.2f} here",
            vocab[k], None, float(p), int(frame_idx[first]), int(frame_idx[last])))
    spike = _spikes(frame_idx, probs, valid)  # (n, n_au)
    for k in range(len(vocab)):
        rows = np.flatnonzero(valid & (spike[:, k] >= settings.jump_min))
        if not len(rows):
            continue
        row = int(rows[spike[rows, k].argmax()])
        p = probs[row, k]
        where = ", ".join(str(int(frame_idx[r])) for r in rows[:6]) + (", …" if len(rows) > 6 else "")
        out.append(Suggestion(
            "unstable", video_id, int(frame_idx[row]), float(min(spike[row, k], 1.0)),
            f"{vocab[k]} jumps for single frames {len(rows)} time(s) (at {where}; biggest "
            f"{probs[row - 1, k]:.2f} -> {p:.2f} -> {probs[row + 1, k]:.2f}): the model flickers",
            vocab[k], None, float(p)))
    for kind in KINDS:
        out.extend(candidates[kind].merged())
    return out


def rank_suggestions(traces: Mapping[int, ProbTrace], events: Sequence[Event],
                     settings: SuggestSettings = SuggestSettings(),
                     fps: Mapping[int, float] | None = None) -> list[Suggestion]:
    """Ranked suggestions from cached probabilities per video id and the coded events (pure).

    `events` are all the project's coded events (they also give the label counts of "rare");
    videos without a trace get no suggestions. Traces must share one vocabulary. `fps`: frame
    rate per video id (DEFAULT_FPS where missing), which turns `min_expression_s` into frames.
    """
    traces = {video_id: trace for video_id, trace in traces.items() if len(trace.frame_idx)}
    if not traces:
        return []
    vocab = next(iter(traces.values())).vocab
    if any(trace.vocab != vocab for trace in traces.values()):
        raise ValueError("every trace must come from one model version (one vocabulary)")
    label_counts = (np.sum([au_labels(e.aus, vocab) for e in events], axis=0) if events
                    else np.zeros(len(vocab)))  # (n_au,) events coding each AU
    by_video: dict[int, list[Event]] = {}
    for event in events:
        by_video.setdefault(event.video_id, []).append(event)
    found: list[Suggestion] = []
    for video_id, trace in sorted(traces.items()):
        min_frames = min_expression_frames((fps or {}).get(video_id, DEFAULT_FPS), settings)
        for suggestion in _video_suggestions(video_id, trace, by_video.get(video_id, []),
                                             label_counts, settings, min_frames):
            weight = settings.kind_weights.get(suggestion.kind, 1.0)
            onset, offset = suggestion.span
            covered = 1.0 if suggestion.event_id is not None else min(
                1.0, (offset - onset + 1) / min_frames)  # share of a plausible expression
            found.append(Suggestion(suggestion.kind, video_id, suggestion.frame_idx,
                                    float(np.clip(suggestion.score * weight * covered, 0.0, 1.0)),
                                    suggestion.reason, suggestion.au, suggestion.event_id,
                                    suggestion.prob, suggestion.onset, suggestion.offset))
    found.sort(key=lambda s: (-s.score, s.video_id, s.frame_idx, s.au or ""))
    return found if settings.limit is None else found[:settings.limit]


def suggest_for_project(project, model_version_id: int | None = None,
                        settings: SuggestSettings | None = None, *,
                        video_ids: Sequence[int] | None = None,
                        sources: Sequence[str] = ("expert", "accepted")) -> list[Suggestion]:
    """Suggestions for an open `store.project.Project` from a model version's cached predictions.

    model_version_id: None = the active version. The threshold is the version's recorded one
    (its metrics' "threshold") unless `settings` is given. An empty list means nothing to
    suggest, or no predictions cached yet (analyse the videos with that version first).
    """
    if model_version_id is None:
        version = project.models.active()
        if version is None:
            raise UserError("the project has no active model; choose or fine-tune one, analyse the "
                            "videos, then ask for suggestions")
    else:
        version = project.models.get(model_version_id)
    if settings is None:
        recorded = version.metrics.get("threshold")
        settings = SuggestSettings(threshold=float(recorded)) if isinstance(recorded, (int, float)) \
            and 0 < recorded < 1 else SuggestSettings()
    wanted = None if video_ids is None else set(video_ids)
    videos = [video for video in project.videos() if wanted is None or video.id in wanted]
    traces = {video.id: project.predictions.probs(video.id, version.id) for video in videos}
    events = [e for e in project.events() if e.source in set(sources)]
    return rank_suggestions(traces, events, settings, {video.id: video.fps for video in videos})
