"""Batch analysis of a whole video (or a part of it) with bounded memory, progress and cancel.

Owns: `AnalysisOptions`, `AnalysisResult`, `plan_frames`, `analyze_source`, `ProjectCache`,
`open_project_cache`, `CsvSink`, `CSV_FIXED_COLUMNS`. May import training (cancellation),
spotting (background decoding), model (through the Predictor), face, media, store, core and
`inference.gpu` (the decode + landmark producer); no Qt.

How a video is streamed (our specification):
- Frames come from `FrameSource.iter_frames`, decoded and given their landmarks in a
  background thread (`inference.gpu.landmark_producer`) a few frames ahead of the model, so on
  two cores decoding + MediaPipe overlap the network, and on a GPU they hide behind it; one
  contiguous span at a time: the requested range, or each
  `--gate` range. Nothing holds more than a batch of target frames plus, for the sliding
  reference, the last `round(window_s * fps) + 1` frames; rows go to the sink (the CSV) and the
  project cache batch by batch. Peak memory therefore does not grow with the video's length.
- Landmarks: every target frame and every sliding reference passes through the stream in
  order, so one MediaPipe graph in *tracking* mode per span (on the producer thread) follows
  the face and detects each such frame once, when it arrives. A target whose own frame shows no face gets a row with face_found=0
  (the Predictor itself only looks at the reference). Onset and fixed references are read by
  random access and detected in static mode by the Predictor (cached).
- Frames are batched through the model (`batch_size`), on the Predictor's device.
- With a project cache, frames already predicted by the same model version with the same
  reference frame are taken from the cache and not run again; new predictions are committed
  after every batch, so a cancelled or killed run keeps what it finished.
- `should_cancel` (a callable or threading.Event) is polled every frame; cancelling raises
  `training.samples.Cancelled` after closing everything.
"""

from __future__ import annotations

import bisect
import csv
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from microau_gui.core.errors import UserError
from microau_gui.core.types import FramePrediction
from microau_gui.face.landmarks import FaceMesh, Landmarks
from microau_gui.inference.gpu import landmark_producer
from microau_gui.inference.predictor import FramePair, Predictor
from microau_gui.inference.reference import (DEFAULT_WINDOW_S, ReferencePolicy, reference_frame,
                                             sliding_offset_frames)
from microau_gui.training.samples import check_cancel

log = logging.getLogger(__name__)

CSV_FIXED_COLUMNS: tuple[str, ...] = ("frame_idx", "t_s", "face_found")

Progress = Callable[[int, int], None]  # (frames done, frames requested)


@dataclass(frozen=True)
class AnalysisOptions:
    """Which frames to analyse and against which reference."""

    every: int = 1  # analyse every n-th frame of the range (counted from `start`)
    start: int = 0  # first frame_idx of the range (inclusive)
    stop: int | None = None  # end of the range (exclusive); None = the end of the video
    reference: ReferencePolicy = ReferencePolicy.SLIDING  # see inference.reference
    fixed_idx: int | None = None  # FIXED: the neutral frame
    # ONSET: (onset, offset) frame_idx of coded events; a frame inside one is compared with that
    # event's onset, a frame outside every event falls back to the sliding reference
    events: tuple[tuple[int, int], ...] = ()
    window_s: float = DEFAULT_WINDOW_S  # SLIDING: seconds between reference and target
    batch_size: int = 8  # pairs per model call
    # only frames inside these half-open (start, stop) ranges (spotting.gate_ranges); None = all
    gate: tuple[tuple[int, int], ...] | None = None

    def __post_init__(self) -> None:
        if self.every < 1:
            raise UserError(f"--every {self.every}: analyse at least every frame (use 1 or more)")
        if self.batch_size < 1:
            raise UserError(f"--batch {self.batch_size}: use a batch of at least 1 frame")
        if self.start < 0 or (self.stop is not None and self.stop <= self.start):
            raise UserError(f"--range {self.start}:{self.stop}: give A:B with 0 <= A < B")
        if self.reference is ReferencePolicy.FIXED and self.fixed_idx is None:
            raise UserError("the fixed reference needs a frame: --reference fixed:N")


@dataclass(frozen=True)
class AnalysisResult:
    """What one analysis did."""

    n_requested: int  # frames the options asked for
    n_rows: int  # predictions written (= n_requested unless cancelled)
    n_face: int  # rows with a face
    n_from_cache: int  # rows taken from the project's predictions cache
    seconds: float  # wall time
    spans: tuple[tuple[int, int], ...] = field(default=())  # half-open frame spans decoded

    @property
    def frames_per_s(self) -> float:
        return self.n_rows / self.seconds if self.seconds > 0 else 0.0


def plan_frames(n_frames: int, options: AnalysisOptions) -> list[range]:
    """The requested frame_idx as sorted, disjoint ranges (every n-th frame of the range, gated)."""
    start = options.start
    stop = n_frames if options.stop is None else min(options.stop, n_frames)
    if start >= n_frames:
        raise UserError(f"--range starts at frame {start}, but the video has only {n_frames} frames "
                        f"(0-{n_frames - 1})")
    if options.gate is None:
        return [range(start, stop, options.every)]
    plan = []
    for lo, hi in options.gate:
        lo, hi = max(lo, start), min(hi, stop)
        if lo >= hi:
            continue
        first = start + -(-(lo - start) // options.every) * options.every  # first on the every-grid
        if first < hi:
            plan.append(range(first, hi, options.every))
    return plan


class ProjectCache:
    """The predictions cache of one video under one model version (`project.predictions`)."""

    def __init__(self, project, video_id: int, model_version_id: int):
        self.project = project
        self.video_id = video_id
        self.model_version_id = model_version_id
        # frame_idx already cached (ints only, never blobs: a few bytes per frame)
        self._cached = set(project.predictions.frames(video_id, model_version_id).tolist())

    def has(self, frame_idx: int) -> bool:
        """A prediction of this frame is cached (with whichever reference)."""
        return frame_idx in self._cached

    def lookup(self, frame_idx: int, reference_idx: int) -> FramePrediction | None:
        """The cached prediction made with this reference, or None."""
        if frame_idx not in self._cached:
            return None
        return self.project.predictions.get(self.video_id, self.model_version_id, frame_idx,
                                            reference_idx=reference_idx)

    def store(self, predictions: Sequence[FramePrediction]) -> None:
        if predictions:
            self.project.predictions.put_many(self.video_id, self.model_version_id, predictions)
            self._cached.update(p.frame_idx for p in predictions)


def open_project_cache(project, media_path: Path, source, predictor: Predictor) -> ProjectCache:
    """The cache for this media and model in `project`, registering either when it is new.

    The media is added as a video (without a subject) and the checkpoint as a model version named
    by its card (not made active). A version of that name for another checkpoint is an error:
    predictions are cached per version and must never mix two models.
    """
    if project.read_only:
        raise UserError(f"project {project.path} is read-only ({project.read_only_reason}); "
                        "analyze caches predictions in it: make it writable or drop --project")
    video = project.video_by_path(media_path) or project.add_video(media_path, source)
    version = next((v for v in project.models.list() if v.name == predictor.model_version), None)
    if version is None:
        card = predictor.card
        version = project.models.add(predictor.model_version, predictor.checkpoint, predictor.vocab,
                                     data_hash=card.get("training_data_hash") or "",
                                     metrics=card.get("metrics") or {})
    elif (version.checkpoint.exists()
          and version.checkpoint.resolve() != predictor.checkpoint.resolve()):
        raise UserError(f"project {project.path.name} already has a model version named "
                        f"{version.name!r} for another checkpoint ({version.checkpoint}); rename "
                        "the checkpoint folder or pass that version with --model")
    if tuple(version.vocab) != tuple(predictor.vocab):
        raise UserError(f"model version {version.name!r} in the project predicts other AUs than "
                        f"{predictor.checkpoint}; rename the checkpoint folder")
    return ProjectCache(project, video.id, version.id)


class CsvSink:
    """Writes analysis rows to a CSV under a temporary name; `commit()` puts it in place.

    Columns: frame_idx, t_s (seconds from the first frame, 6 decimals), face_found (1/0), then
    one column per AU of the model's vocabulary (probability, 6 decimals; empty without a face).
    """

    def __init__(self, path: Path, vocab: Sequence[str]):
        self.path = Path(path)
        self.columns = (*CSV_FIXED_COLUMNS, *vocab)
        self._tmp = self.path.with_name(f".{self.path.name}.partial")
        try:
            self._handle = open(self._tmp, "w", newline="", encoding="utf-8")
        except OSError as err:
            raise UserError(f"cannot write {self.path}: {err.strerror or err}; choose another --out") from None
        self._writer = csv.writer(self._handle)
        self._writer.writerow(self.columns)

    def write(self, predictions: Sequence[FramePrediction], times_s: Sequence[float]) -> None:
        for pred, t_s in zip(predictions, times_s):
            probs = ["" for _ in pred.vocab] if pred.probs is None else [f"{p:.6f}" for p in pred.probs]
            self._writer.writerow([pred.frame_idx, f"{t_s:.6f}", int(bool(pred.face_found)), *probs])
        self._handle.flush()

    def commit(self) -> None:
        self._handle.close()
        try:
            os.replace(self._tmp, self.path)
        except OSError as err:
            raise UserError(f"cannot write {self.path}: {err.strerror or err}; choose another --out") from None

    def discard(self) -> None:
        if not self._handle.closed:
            self._handle.close()
        if self._tmp.exists():
            self._tmp.unlink()


@dataclass
class _Frame:
    rgb: np.ndarray  # (H, W, 3) uint8
    landmarks: Landmarks | None = None  # tracking landmarks; None when the frame needed none


class _Run:
    """State of one `analyze_source` call (see the module docstring)."""

    def __init__(self, source, predictor: Predictor, options: AnalysisOptions, sink,
                 cache: ProjectCache | None, progress: Progress | None, n_requested: int):
        self.source = source
        self.predictor = predictor
        self.options = options
        self.sink = sink
        self.cache = cache
        self.progress = progress
        self.n_requested = n_requested
        self.lag = sliding_offset_frames(source.fps, options.window_s)
        self.pending: list[FramePair | FramePrediction] = []
        self.mesh: FaceMesh | None = None
        self.n_rows = self.n_face = self.n_from_cache = 0
        self.event_starts = [onset for onset, _ in sorted(options.events)]
        self.events = sorted(options.events)
        self.random_frames: OrderedDict[int, np.ndarray] = OrderedDict()

    def reference_of(self, frame_idx: int) -> tuple[int, bool]:
        """(reference frame_idx, whether it is the sliding reference) of a target frame."""
        options = self.options
        if options.reference is ReferencePolicy.FIXED:
            return int(options.fixed_idx), False
        if options.reference is ReferencePolicy.ONSET:
            k = bisect.bisect_right(self.event_starts, frame_idx) - 1
            while k >= 0:  # the latest-starting event that contains the frame
                onset, offset = self.events[k]
                if onset <= frame_idx <= offset:
                    return onset, False
                k -= 1
        return reference_frame(frame_idx, ReferencePolicy.SLIDING, self.source.fps,
                               window_s=options.window_s), True

    def random_frame(self, frame_idx: int) -> np.ndarray:
        """A reference outside the stream (onset or fixed frame), by random access, few kept."""
        rgb = self.random_frames.get(frame_idx)
        if rgb is None:
            rgb = self.source.read(frame_idx)
            self.random_frames[frame_idx] = rgb
            while len(self.random_frames) > 4:
                self.random_frames.popitem(last=False)
        return rgb

    def track(self, frame: _Frame) -> Landmarks:
        """The frame's landmarks: from the producer, or (for a frame it skipped because its
        prediction was cached, but with another reference) from a tracking graph here."""
        if frame.landmarks is None:
            if self.mesh is None:
                self.mesh = FaceMesh(static=False)
            frame.landmarks = self.mesh.detect(frame.rgb)
        return frame.landmarks

    def needs_landmarks(self, frame_idx: int, wanted, span_start: int) -> bool:
        """Whether a streamed frame is a target to run or the sliding reference of one."""
        if frame_idx in wanted and not self.is_cached(frame_idx):
            return True
        if self.options.reference is ReferencePolicy.FIXED:
            return False
        later = frame_idx + self.lag
        return frame_idx == span_start or (later in wanted and not self.is_cached(later))

    def is_cached(self, frame_idx: int) -> bool:
        return self.cache is not None and self.cache.has(frame_idx)

    def add(self, frame_idx: int, target: _Frame, window: dict[int, _Frame]) -> None:
        reference_idx, sliding = self.reference_of(frame_idx)
        cached = self.cache.lookup(frame_idx, reference_idx) if self.is_cached(frame_idx) else None
        if cached is not None:
            self.pending.append(cached)
            self.n_from_cache += 1
        else:
            if sliding:
                reference = window[reference_idx]
                pair = FramePair(target.rgb, reference.rgb, frame_idx, reference_idx,
                                 self.track(reference), self.track(target))
            else:
                pair = FramePair(target.rgb, self.random_frame(reference_idx), frame_idx,
                                 reference_idx, None, self.track(target))
            self.pending.append(pair)
        if len(self.pending) >= self.options.batch_size:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        pairs = [p for p in self.pending if isinstance(p, FramePair)]
        fresh = self.predictor.predict_batch(pairs, with_overlays=False) if pairs else []
        computed = iter(fresh)
        predictions = [next(computed) if isinstance(p, FramePair) else p for p in self.pending]
        self.pending = []
        if self.cache is not None:
            self.cache.store(fresh)
        self.sink.write(predictions, [self.source.time_s(p.frame_idx) for p in predictions])
        self.n_rows += len(predictions)
        self.n_face += sum(bool(p.face_found) for p in predictions)
        if self.progress is not None:
            self.progress(self.n_rows, self.n_requested)

    def close(self) -> None:
        if self.mesh is not None:
            self.mesh.close()
            self.mesh = None
        self.random_frames.clear()


def analyze_source(source, predictor: Predictor, options: AnalysisOptions, sink, *,
                   cache: ProjectCache | None = None, progress: Progress | None = None,
                   should_cancel=None) -> AnalysisResult:
    """Analyse the frames `options` ask for; rows go to `sink.write(predictions, times_s)`."""
    started = time.perf_counter()
    plan = plan_frames(source.n_frames, options)
    n_requested = sum(len(r) for r in plan)
    run = _Run(source, predictor, options, sink, cache, progress, n_requested)
    spans = _decode_spans(plan, 0 if options.reference is ReferencePolicy.FIXED else run.lag)
    try:
        for span_start, span_stop in spans:
            wanted = _frames_in(plan, span_start, span_stop)
            window: dict[int, _Frame] = {}
            frames = landmark_producer(
                source.iter_frames(span_start, span_stop),
                needs=lambda frame_idx: run.needs_landmarks(frame_idx, wanted, span_start))
            try:
                for item in frames:
                    check_cancel(should_cancel)
                    frame = _Frame(item.rgb, item.landmarks)
                    window[item.frame_idx] = frame
                    window.pop(item.frame_idx - run.lag - 1, None)  # never a sliding reference again
                    if item.frame_idx in wanted:
                        run.add(item.frame_idx, frame, window)
            finally:
                frames.close()
            run.flush()
    finally:
        run.close()
    return AnalysisResult(n_requested=n_requested, n_rows=run.n_rows, n_face=run.n_face,
                          n_from_cache=run.n_from_cache, seconds=time.perf_counter() - started,
                          spans=tuple(spans))


class _Wanted:
    """Membership test for the planned frames inside one decode span (no set of every frame)."""

    def __init__(self, ranges: list[range]):
        self.ranges = ranges
        self.starts = [r.start for r in ranges]

    def __contains__(self, frame_idx: int) -> bool:
        k = bisect.bisect_right(self.starts, frame_idx) - 1
        return k >= 0 and frame_idx in self.ranges[k]


def _frames_in(plan: list[range], start: int, stop: int) -> _Wanted:
    return _Wanted([r for r in plan if r and r.start < stop and r[-1] >= start])


def _decode_spans(plan: list[range], lag: int) -> list[tuple[int, int]]:
    """Half-open spans to decode: each planned range plus `lag` frames before it, merged."""
    spans: list[tuple[int, int]] = []
    for r in plan:
        if not r:
            continue
        start, stop = max(0, r.start - lag), r[-1] + 1
        if spans and start <= spans[-1][1]:
            spans[-1] = (spans[-1][0], max(spans[-1][1], stop))
        else:
            spans.append((start, stop))
    return spans
