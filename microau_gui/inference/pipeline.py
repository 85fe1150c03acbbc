"""The one analysis pipeline: the CLI, the bench and the GUI's inference worker all step it.

Owns: `AnalysisPipeline`, `AnalysisBatch`, `FrameLandmarks`, `LandmarkedFrame`,
`landmarked_frames`, `analyze_source`. May import inference (`analysis` for the options, plan and
cache; `predictor`; `reference`), face, media and core (numpy); no Qt.

The pipeline owns decoding, landmarks, the reference policy, batching and the project cache's
reads and writes; its driver owns only where rows go and when the next step runs
(`step(max_frames)` returns one batch, or None at the end):
- the CLI and the bench call `analyze_source`, which steps to the end and hands each batch to
  a sink (the CSV);
- the GUI's inference worker makes one step per event-loop turn, so the frame on screen is served
  between two batches, and sizes each step to its time budget.

How frames flow (our specification):
- Plan: `analysis.plan_frames` turns the options (range, every, gate) into sorted frame ranges.
  Each range is decoded as one contiguous span by `FrameSource.iter_frames` (sequential decoding
  with its own decoder, so `read()` for the frame on screen is never disturbed), starting
  `lag = round(window_s * fps)` frames earlier so the sliding reference of its first target is
  decoded too. Onset and fixed references are read by random access (a few kept).
- Landmarks: MediaPipe in *static* mode (`face.FaceMesh(static=True)`), once per frame that is
  a target or a reference. Static mode detects every image from scratch, so a frame's landmarks
  are a pure function of its pixels: the same frame gives the same landmarks whatever was
  decoded before it. Tracking mode (used until December 2026) follows the face from the previous
  frame, so a ranged or resumed run started tracking elsewhere and moved probabilities by up to
  0.81 (reliability issue D9). Static landmarks are also what training cuts its pairs with
  (`pairs.samples`), and measured 9.0 ms/frame against tracking's 9.5 (bench
  `landmarks_static_ms`). No temporal smoothing is applied: the reference's landmarks cut both
  crops with one transform, so their jitter moves the crop, not the measured motion; measured
  on the synthetic long video, static frame-to-frame jitter (0.43 px mean) is below tracking's
  (0.51 px).
- A target whose own frame shows no face gets a row with face_found=False; the model itself
  sees the reference's landmarks (`inference.predictor`).
- Reference policy (`inference.reference`): FIXED -> the fixed frame; ONSET -> the onset of the
  latest-starting coded event that contains the target, else the sliding reference; SLIDING ->
  `frame_idx - lag`, clamped at 0.
- Batching: `max_frames` rows per step (default `options.batch_size`), one model call for the
  rows not taken from the cache. Batch composition changes results only by float rounding.
- Cache: with a `ProjectCache`, a frame already predicted by this model version against the same
  reference is taken from it; new predictions are committed every `COMMIT_FRAMES` rows and when
  the pipeline closes, so a cancelled or killed run keeps what it finished.
- Together: the row of a frame depends only on the frame, its reference frame, the model version
  and the settings, never on the start, range, batch size, chunking or front end (DESIGN.md
  section 5, determinism).
- `background=True` runs the stages on their own threads, each a bounded queue ahead of the
  next, so the slowest stage sets the pace: decoding (`PRODUCER_DEPTH` frames ahead), landmarks
  (`PRODUCER_DEPTH` frames ahead), pair preparation (crops, flow, masks: the next batch is
  prepared while the model runs this one) and the model (the caller's thread). PyAV, OpenCV
  and torch release the GIL, so on 2 cores they overlap, and on a GPU the CPU work hides behind
  the model. The rows are exactly the sequential pipeline's: the same functions on the same
  batches, only on other threads. Long runs with a cheap pair preparation (see
  `PROCESS_MIN_FRAMES`) detect landmarks in a child process instead of a thread
  (`face.landmark_process`: MediaPipe holds the GIL, so on a thread it and the Python stages
  took turns), with the same landmarks. The GUI's worker
  passes False (one thread, the other core draws the window); so do `step(max_frames)` sizes
  other than `options.batch_size`.
- A truncated video (`VideoSource.n_decodable` < `n_frames`): the frames that decode are
  analysed; requested frames past them get no row and are counted (`undecodable`,
  `n_undecodable`) for the driver to report.
- `should_cancel` (a callable or threading.Event) is polled every frame; cancelling raises
  `core.progress.Cancelled` after committing what was finished.
"""

from __future__ import annotations

import bisect
import time
from collections import OrderedDict, deque
from concurrent.futures import Future, ThreadPoolExecutor
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from microau_gui.core.progress import Progress, check_cancel
from microau_gui.core.types import FramePrediction
from microau_gui.face.landmarks import FaceMesh, Landmarks
from microau_gui.inference.analysis import AnalysisOptions, AnalysisResult, ProjectCache, plan_frames
from microau_gui.inference.predictor import FramePair, Predictor
from microau_gui.inference.reference import ReferencePolicy, reference_frame, sliding_offset_frames

COMMIT_FRAMES = 16  # new predictions per cache transaction (a killed run loses fewer than this)
# Background runs of at least this many frames whose pairs are cheap to prepare (DIS flow, the
# dense-trace student's) detect landmarks in a child process (`landmarked_frames(worker=)`);
# below it, starting a second interpreter (about a second with its graph) costs more than the
# overlap wins. Measured on a 2-core AVX2 EPYC, 1200 frames of 640x480: the DIS student 81
# frames/s with the child against 65 on a thread; the Farneback tiny model 42 against 49 (its
# preparation already fills both cores, and the child's copy and pipe only add work).
PROCESS_MIN_FRAMES = 240
PRODUCER_DEPTH = 8  # frames the background producer decodes ahead of the model
_RANDOM_FRAMES = 4  # onset / fixed reference frames kept decoded

class FrameLandmarks:
    """Static-mode landmarks of the frames of one source, by frame_idx, the last few kept.

    The one place the pipeline and the frame on screen get landmarks from, so both see the same
    ones (see the module docstring). Not thread-safe: one per thread.
    """

    def __init__(self, capacity: int = 32):
        self.capacity = capacity
        self._mesh: FaceMesh | None = None
        self._known: OrderedDict[int, Landmarks] = OrderedDict()

    def of(self, frame_idx: int, rgb: np.ndarray) -> Landmarks:
        known = self._known.get(frame_idx)
        if known is not None:
            self._known.move_to_end(frame_idx)
            return known
        if self._mesh is None:
            self._mesh = FaceMesh(static=True)
        found = self._mesh.detect(rgb)
        self._known[frame_idx] = found
        while len(self._known) > self.capacity:
            self._known.popitem(last=False)
        return found

    def close(self) -> None:
        if self._mesh is not None:
            self._mesh.close()
            self._mesh = None
        self._known.clear()


@dataclass(frozen=True, eq=False)
class LandmarkedFrame:
    """A decoded frame and, when it was asked for, its static-mode landmarks."""

    frame_idx: int
    rgb: np.ndarray  # (H, W, 3) uint8, read-only
    landmarks: Landmarks | None  # None: not asked for this frame


def landmarked_frames(frames: Iterable[tuple[int, np.ndarray]], needs: Callable[[int], bool] | None = None,
                      background: bool = True, depth: int = PRODUCER_DEPTH,
                      worker=None) -> Iterator[LandmarkedFrame]:
    """`frames` ((frame_idx, rgb) in stream order, e.g. `FrameSource.iter_frames`) with the
    static-mode landmarks of those `needs(frame_idx)` asks for (default: all).

    background=True: decoding and MediaPipe run in a producer thread at most `depth` frames
    ahead; `needs` is then called on that thread, so it may only read state the consumer does
    not rebind meanwhile (a set membership test is fine). The producer's exception is re-raised
    in the consumer; leaving the loop early stops the producer and closes its graph.
    worker (a `face.landmark_process.LandmarkProcess`, with background): MediaPipe runs in that
    child process instead (it holds the GIL, so on a thread it takes turns with every Python
    stage), up to its `slots` frames in flight; the landmarks are the same.
    """
    from microau_gui.media.prefetch import prefetch

    if background and worker is not None:
        return prefetch(_landmarked_in_process(frames, needs, worker, depth), depth=depth)

    def produce() -> Iterator[LandmarkedFrame]:
        mesh = FaceMesh(static=True)  # made on the thread that uses it: graphs are not thread-safe
        try:
            # decoding on a thread of its own, ahead of MediaPipe
            for frame_idx, rgb in (prefetch(frames, depth=depth) if background else frames):
                wanted = needs is None or needs(frame_idx)
                yield LandmarkedFrame(frame_idx, rgb, mesh.detect(rgb) if wanted else None)
        finally:
            mesh.close()

    return prefetch(produce(), depth=depth) if background else produce()


def _landmarked_in_process(frames, needs, worker, depth: int) -> Iterator[LandmarkedFrame]:
    from microau_gui.media.prefetch import prefetch

    pending: deque = deque()  # (frame_idx, rgb, whether its landmarks were sent), stream order

    def done() -> LandmarkedFrame:
        frame_idx, rgb, sent = pending.popleft()
        return LandmarkedFrame(frame_idx, rgb, worker.get() if sent else None)

    for frame_idx, rgb in prefetch(frames, depth=depth):
        if worker.in_flight >= worker.slots:
            while pending[0][2] is False:  # frames sent nothing for pass straight on
                yield done()
            yield done()
        wanted = needs is None or needs(frame_idx)
        if wanted:
            worker.put(rgb)
        pending.append((frame_idx, rgb, wanted))
    while pending:
        yield done()


@dataclass(frozen=True, eq=False)
class AnalysisBatch:
    """What one step produced: rows in frame order and how far the run has come."""

    predictions: tuple[FramePrediction, ...]  # in frame order; overlays left out
    times_s: tuple[float, ...]  # presentation time of each row's frame
    n_done: int  # rows produced so far, this batch included
    n_requested: int  # rows the whole run will produce
    n_from_cache: int  # rows of this batch taken from the project cache


@dataclass
class _Frame:
    rgb: np.ndarray  # (H, W, 3) uint8
    landmarks: Landmarks | None = None  # static landmarks; None until asked for


class AnalysisPipeline:
    """Steps through the frames `options` ask for (see the module docstring).

    Not thread-safe; close it (or use it as a context manager) to commit the last predictions
    and stop the producer.
    """

    def __init__(self, source, predictor: Predictor, options: AnalysisOptions, *,
                 cache: ProjectCache | None = None, background: bool = True, should_cancel=None,
                 landmark_process: bool | None = None):
        self.source = source
        self.predictor = predictor
        self.options = options
        self.cache = cache
        self.background = background
        self.should_cancel = should_cancel
        planned = plan_frames(source.n_frames, options)
        # A truncated video: frames past the last decodable one get no row, and are reported.
        n_decodable = getattr(source, "n_decodable", source.n_frames)
        self.plan = [r for r in (r[:max(0, len(range(r.start, n_decodable, r.step)))] for r in planned) if r]
        self.n_requested = sum(len(r) for r in self.plan)
        self.n_undecodable = sum(len(r) for r in planned) - self.n_requested
        self.undecodable = (n_decodable, source.n_frames - 1) if self.n_undecodable else None
        self.lag = sliding_offset_frames(source.fps, options.window_s)
        self.spans = _decode_spans(self.plan, 0 if options.reference is ReferencePolicy.FIXED else self.lag)
        self.n_done = self.n_face = self.n_from_cache = 0
        # landmarks in a child process (one for every span): asked for, or by default for long
        # background runs of a cheap preparation (see PROCESS_MIN_FRAMES)
        if landmark_process is None:
            landmark_process = (self.n_requested >= PROCESS_MIN_FRAMES
                                and getattr(predictor.prep, "flow_method", "farneback") != "farneback")
        in_process = background and landmark_process
        self._landmark_worker = None
        if in_process:
            from microau_gui.face.landmark_process import LandmarkProcess
            self._landmark_worker = LandmarkProcess(slots=PRODUCER_DEPTH)
        self._events = sorted(options.events)
        self._event_starts = [onset for onset, _ in self._events]
        self._landmarks = FrameLandmarks()  # frames the producer did not detect, random references
        self._random_frames: OrderedDict[int, np.ndarray] = OrderedDict()
        self._uncommitted: list[FramePrediction] = []
        self._targets = self._stream()
        self._closed = False
        # background: one thread prepares the next batch's pairs while the model runs this one
        self._preparer = ThreadPoolExecutor(1, thread_name_prefix="pair-prep") if background else None
        self._ahead: tuple[list, list, Future] | None = None  # the batch being prepared

    # -- stepping ------------------------------------------------------------------------------

    def step(self, max_frames: int | None = None) -> AnalysisBatch | None:
        """The next batch of at most `max_frames` rows (default `options.batch_size`); None when
        every requested frame has been produced."""
        limit = max(1, max_frames or self.options.batch_size)
        if self._preparer is not None and limit == self.options.batch_size:
            if self._ahead is None:
                self._ahead = self._prepare_next(limit)
            pending, pairs, preparing = self._ahead
            # the next batch is prepared on the other thread while the model runs this one
            self._ahead = self._prepare_next(limit) if pending else None
            prepared = preparing.result()
        else:
            if self._ahead is not None:  # a batch prepared ahead is served before any other
                pending, pairs, preparing = self._ahead
                self._ahead, prepared = None, preparing.result()
            else:
                pending = self._next_rows(limit)
                pairs = [p for p in pending if isinstance(p, FramePair)]
                prepared = self.predictor.prepare_batch(pairs)
        if not pending:
            self.close()
            return None
        fresh = self.predictor.predict_prepared(pairs, prepared, with_overlays=False) if pairs else []
        computed = iter(fresh)
        predictions = tuple(next(computed) if isinstance(p, FramePair) else p for p in pending)
        self._commit(fresh, force=False)
        n_cached = len(pending) - len(pairs)
        self.n_done += len(predictions)
        self.n_face += sum(bool(p.face_found) for p in predictions)
        self.n_from_cache += n_cached
        return AnalysisBatch(predictions, tuple(self.source.time_s(p.frame_idx) for p in predictions),
                             self.n_done, self.n_requested, n_cached)

    def _next_rows(self, limit: int) -> list[FramePair | FramePrediction]:
        """The next `limit` rows: cached predictions, or pairs to run."""
        pending: list[FramePair | FramePrediction] = []
        for frame_idx, target, window in self._targets:
            pending.append(self._row(frame_idx, target, window))
            if len(pending) >= limit:
                break
        return pending

    def _prepare_next(self, limit: int) -> tuple[list, list, Future]:
        """The next rows, their pairs handed to the preparing thread (cache lookups, the reference
        policy and the frame window stay on this thread)."""
        pending = self._next_rows(limit)
        pairs = [p for p in pending if isinstance(p, FramePair)]
        return pending, pairs, self._preparer.submit(self.predictor.prepare_batch, pairs)

    def __iter__(self) -> Iterator[AnalysisBatch]:
        while (batch := self.step()) is not None:
            yield batch

    def close(self) -> None:
        """Commit the predictions not yet in the cache and stop decoding (idempotent)."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._preparer is not None:
                self._preparer.shutdown(wait=True, cancel_futures=True)
            self._targets.close()
        finally:
            self._commit([], force=True)
            self._landmarks.close()
            if self._landmark_worker is not None:
                self._landmark_worker.close()
            self._random_frames.clear()

    def __enter__(self) -> "AnalysisPipeline":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- the reference policy --------------------------------------------------------------------

    def reference_of(self, frame_idx: int) -> tuple[int, bool]:
        """(reference frame_idx, whether it is the sliding reference) of a target frame."""
        options = self.options
        if options.reference is ReferencePolicy.FIXED:
            return int(options.fixed_idx), False
        if options.reference is ReferencePolicy.ONSET:
            k = bisect.bisect_right(self._event_starts, frame_idx) - 1
            while k >= 0:  # the latest-starting event that contains the frame
                onset, offset = self._events[k]
                if onset <= frame_idx <= offset:
                    return onset, False
                k -= 1
        return reference_frame(frame_idx, ReferencePolicy.SLIDING, self.source.fps,
                               window_s=options.window_s), True

    # -- inside ----------------------------------------------------------------------------------

    def _stream(self) -> Iterator[tuple[int, _Frame, dict[int, _Frame]]]:
        """(target frame_idx, its frame, the decoded window behind it) for every planned frame."""
        for span_start, span_stop in self.spans:
            wanted = _frames_in(self.plan, span_start, span_stop)
            window: dict[int, _Frame] = {}
            frames = landmarked_frames(
                self.source.iter_frames(span_start, span_stop),
                needs=lambda frame_idx, wanted=wanted, span_start=span_start:
                    self._needs_landmarks(frame_idx, wanted, span_start),
                background=self.background, worker=self._landmark_worker)
            try:
                for item in frames:
                    check_cancel(self.should_cancel)
                    frame = _Frame(item.rgb, item.landmarks)
                    window[item.frame_idx] = frame
                    window.pop(item.frame_idx - self.lag - 1, None)  # never a sliding reference again
                    if item.frame_idx in wanted:
                        yield item.frame_idx, frame, window
            finally:
                frames.close()

    def _needs_landmarks(self, frame_idx: int, wanted, span_start: int) -> bool:
        """Whether a streamed frame is a target to run or the sliding reference of one."""
        if frame_idx in wanted and not self._is_cached(frame_idx):
            return True
        if self.options.reference is ReferencePolicy.FIXED:
            return False
        later = frame_idx + self.lag
        return frame_idx == span_start or (later in wanted and not self._is_cached(later))

    def _is_cached(self, frame_idx: int) -> bool:
        return self.cache is not None and self.cache.has(frame_idx)

    def _landmarks_of(self, frame_idx: int, frame: _Frame) -> Landmarks:
        if frame.landmarks is None:  # the producer skipped it (its row was cached, another reference)
            frame.landmarks = self._landmarks.of(frame_idx, frame.rgb)
        return frame.landmarks

    def _random_frame(self, frame_idx: int) -> np.ndarray:
        """A reference outside the stream (onset or fixed frame), by random access."""
        rgb = self._random_frames.get(frame_idx)
        if rgb is None:
            rgb = self.source.read(frame_idx)
            self._random_frames[frame_idx] = rgb
            while len(self._random_frames) > _RANDOM_FRAMES:
                self._random_frames.popitem(last=False)
        return rgb

    def _row(self, frame_idx: int, target: _Frame, window: dict[int, _Frame]) -> FramePair | FramePrediction:
        """The cached prediction of a target, or the pair to run."""
        reference_idx, sliding = self.reference_of(frame_idx)
        if self._is_cached(frame_idx):
            cached = self.cache.lookup(frame_idx, reference_idx)
            if cached is not None:
                return cached
        if sliding:
            reference = window[reference_idx]
            reference_rgb, reference_landmarks = reference.rgb, self._landmarks_of(reference_idx, reference)
        else:
            reference_rgb = self._random_frame(reference_idx)
            reference_landmarks = self._landmarks.of(reference_idx, reference_rgb)
        return FramePair(target.rgb, reference_rgb, frame_idx, reference_idx, reference_landmarks,
                         self._landmarks_of(frame_idx, target))

    def _commit(self, fresh: Sequence[FramePrediction], force: bool) -> None:
        if self.cache is None:
            return
        self._uncommitted.extend(fresh)
        if self._uncommitted and (force or len(self._uncommitted) >= COMMIT_FRAMES):
            self.cache.store(self._uncommitted)
            self._uncommitted = []


def analyze_source(source, predictor: Predictor, options: AnalysisOptions, sink, *,
                   cache: ProjectCache | None = None, progress: Progress | None = None,
                   should_cancel=None, background: bool = True) -> AnalysisResult:
    """Step a pipeline to its end; rows go to `sink.write(predictions, times_s)`."""
    started = time.perf_counter()
    with AnalysisPipeline(source, predictor, options, cache=cache, background=background,
                          should_cancel=should_cancel) as pipeline:
        for batch in pipeline:
            sink.write(batch.predictions, batch.times_s)
            if progress is not None:
                progress(batch.n_done, batch.n_requested)
    return AnalysisResult(n_requested=pipeline.n_requested, n_rows=pipeline.n_done,
                          n_face=pipeline.n_face, n_from_cache=pipeline.n_from_cache,
                          seconds=time.perf_counter() - started, spans=tuple(pipeline.spans),
                          undecodable=pipeline.undecodable, n_undecodable=pipeline.n_undecodable)


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
