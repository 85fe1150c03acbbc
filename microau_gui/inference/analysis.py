"""What an analysis asks for and where its rows go: options, the frame plan, the project cache, the CSV.

Owns: `AnalysisOptions`, `AnalysisResult`, `plan_frames`, `ProjectCache`, `open_project_cache`,
`CsvSink`, `csv_row`, `CSV_FIXED_COLUMNS`. May import store (through the project handed in), media, core
and `inference.reference`; no Qt. The steps themselves (decoding, landmarks, the reference
policy, batching, cache reads and writes) are `inference.pipeline`'s.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from microau_gui.core.errors import UserError
from microau_gui.core.files import PendingFile
from microau_gui.core.types import FramePrediction
from microau_gui.inference.reference import DEFAULT_WINDOW_S, ReferencePolicy

log = logging.getLogger(__name__)

CSV_FIXED_COLUMNS: tuple[str, ...] = ("frame_idx", "t_s", "face_found")


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

    n_requested: int  # frames the options asked for that can be decoded
    n_rows: int  # predictions written (= n_requested unless cancelled)
    n_face: int  # rows with a face
    n_from_cache: int  # rows taken from the project's predictions cache
    seconds: float  # wall time
    spans: tuple[tuple[int, int], ...] = field(default=())  # half-open frame spans decoded
    # a truncated video: (first, last) frame_idx that cannot be decoded, and how many of the
    # requested frames lie there (they get no row); None / 0 when every requested frame decodes
    undecodable: tuple[int, int] | None = None
    n_undecodable: int = 0

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
    """The predictions cache of one video under one model version (`project.predictions`), as
    one numeric class sees it (`Predictor.numerics`): rows another class made (another machine's
    start-up race chose int8 where this one runs fp32) are misses, recomputed and replaced."""

    def __init__(self, project, video_id: int, model_version_id: int, numerics: str):
        self.project = project
        self.video_id = video_id
        self.model_version_id = model_version_id
        self.numerics = numerics
        # frame_idx already cached in this class (ints only, never blobs: a few bytes per frame)
        self._cached = set(project.predictions.frames(video_id, model_version_id, numerics).tolist())

    def has(self, frame_idx: int) -> bool:
        """A prediction of this frame is cached (with whichever reference)."""
        return frame_idx in self._cached

    def lookup(self, frame_idx: int, reference_idx: int) -> FramePrediction | None:
        """The cached prediction made with this reference, or None."""
        if frame_idx not in self._cached:
            return None
        return self.project.predictions.get(self.video_id, self.model_version_id, frame_idx,
                                            reference_idx=reference_idx, numerics=self.numerics)

    def store(self, predictions: Sequence[FramePrediction]) -> None:
        if predictions:
            self.project.predictions.put_many(self.video_id, self.model_version_id, predictions,
                                              numerics=self.numerics)
            self._cached.update(p.frame_idx for p in predictions)


def open_project_cache(project, media_path: Path, source, predictor) -> ProjectCache:
    """The cache for this media and model in `project`, registering either when it is new.

    The media is added as a video (without a subject) and the checkpoint as a model version named
    by its card (not made active). A version of that name for another checkpoint is an error:
    predictions are cached per version and must never mix two models.
    """
    if project.read_only:
        raise UserError(f"project {project.path} is read-only ({project.read_only_reason}); "
                        "analyze caches predictions in it: make it writable or drop --project")
    video = project.video_by_path(media_path) or project.add_video(media_path, source)
    version = project.models.register(predictor.card, predictor.checkpoint)
    return ProjectCache(project, video.id, version.id, predictor.numerics)


def csv_row(pred: FramePrediction, t_s: float) -> list:
    """One CSV row of a prediction (the columns: see `CsvSink`); the corpus run formats its
    chunks with it too, so its CSVs are byte-identical to `analyze`'s."""
    probs = ["" for _ in pred.vocab] if pred.probs is None else [f"{p:.6f}" for p in pred.probs]
    return [pred.frame_idx, f"{t_s:.6f}", int(bool(pred.face_found)), *probs]


class CsvSink:
    """Writes analysis rows to a CSV under a temporary name; `commit()` puts it in place.

    Columns: frame_idx, t_s (seconds from the first frame, 6 decimals), face_found (1/0), then
    one column per AU of the model's vocabulary (probability, 6 decimals; empty without a face).
    """

    def __init__(self, path: Path, vocab: Sequence[str]):
        self.path = Path(path)
        self.columns = (*CSV_FIXED_COLUMNS, *vocab)
        self._pending: PendingFile | None = None
        try:
            self._pending = PendingFile(self.path)  # unique: two runs with one --out never mix rows
            self._handle = open(self._pending.tmp, "w", newline="", encoding="utf-8")
        except OSError as err:
            if self._pending is not None:
                self._pending.discard()
            raise UserError(f"cannot write {self.path}: {err.strerror or err}; choose another --out") from None
        self._writer = csv.writer(self._handle)
        self._writer.writerow(self.columns)

    def write(self, predictions: Sequence[FramePrediction], times_s: Sequence[float]) -> None:
        for pred, t_s in zip(predictions, times_s):
            self._writer.writerow(csv_row(pred, t_s))
        self._handle.flush()

    def commit(self) -> None:
        self._handle.close()
        try:
            self._pending.commit()
        except OSError as err:
            raise UserError(f"cannot write {self.path}: {err.strerror or err}; choose another --out") from None

    def discard(self) -> None:
        if not self._handle.closed:
            self._handle.close()
        self._pending.discard()
