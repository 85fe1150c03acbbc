"""The frozen values that travel between the session (GUI thread) and its workers and jobs.

Owns: every request a worker or background job receives and every response or result it
emits: the playback values (`FrameRequest`, `FrameLoaded`, `PredictionRequest`, `ProxyReady`),
the model slot's (`ModelRequest`, `ModelLoaded`, `ModelLoadFailed`), and for the job runner
(`session.jobs`) `Progress`, `JobDone` and one request per job (`AnalysisRequest`,
`ImportRequest`, `SpotRequest`, `ProxyRequest`, `FinetuneRequest`, `AgreementRequest`,
`SuggestRequest`, `InterchangeRequest`) with the results their `JobDone.result` carries, and
`FrameLabel` / `index_label` (how the frame requests name frames). May import the standard
library, numpy and `model.card` (torch-free); no Qt here, so the values can be built and compared in plain tests.

Workers receive a request through a queued signal and answer with a response carrying the same
`request_id`; the session drops any response whose id (or model version) is no longer current.
Job requests get their `request_id` from the runner (`JobRunner.submit`), so they are built
without one. A job receives paths and plain values, never a live store object: it opens what
it reads on its own thread. Numpy arrays inside a response are never written to after the
response is emitted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from microau_gui.model.card import ModelCard

# How a worker names frames in the messages it writes for the user: frame_idx... -> '124' or,
# for several frames, '124–162' (session.numbering's `FrameLabels.label` of the open video, under
# the numbering the user chose; the playhead's at request time, so a worker never reads session
# state). It must be safe to call from a worker's thread: an immutable value's method.
FrameLabel = Callable[..., str]


def index_label(*frame_idxs: int) -> str:
    """A `FrameLabel` for media whose numbering is not known: 0-based indices, saying so."""
    return "–".join(str(i) for i in frame_idxs) + " (0-based)"


@dataclass(frozen=True)
class MediaRef:
    """Which media a worker should read: enough to open it without asking the store."""

    video_id: int
    path: Path  # video file or image folder
    fps: float  # the project's frame rate for it (image folders store none)
    n_frames: int


@dataclass(frozen=True)
class FrameRequest:
    """Decode one frame for display."""

    request_id: int
    media: MediaRef
    frame_idx: int
    requested_at_s: float  # time.perf_counter() when asked, for the display-latency figure
    frame_label: FrameLabel = field(compare=False, repr=False)  # names frames in its messages
    shown: bool = False  # the session drew it from the shared decoded frames: only read ahead


@dataclass(frozen=True)
class ProxyReady:
    """A seek proxy of this media now exists; readers that have it open attach it."""

    media: MediaRef
    proxy: Path  # the proxy file (media.proxy)


@dataclass(frozen=True, eq=False)
class FrameLoaded:
    """A decoded frame, ready to draw."""

    request_id: int
    video_id: int
    frame_idx: int
    rgb: np.ndarray  # (H, W, 3) uint8, read-only
    t_s: float  # presentation time of the frame
    requested_at_s: float  # copied from the request


@dataclass(frozen=True)
class ModelRequest:
    """Load a checkpoint into the inference worker (replacing the current one)."""

    request_id: int
    checkpoint: Path
    model_version_id: int | None  # the project's id for this version (predictions cache key)
    device: str  # "auto", "cpu" or "cuda"


@dataclass(frozen=True)
class ModelLoaded:
    """What the inference worker now runs."""

    request_id: int
    model_version: str  # the card's full version (name@hash): the one identity, ModelVersion.version
    model_version_id: int | None
    checkpoint: Path
    vocab: tuple[str, ...]  # AU codes in model order
    card: ModelCard = field(hash=False, compare=False)  # the model card as loaded
    device: str = "cpu"  # "cpu" or "cuda"
    pretrained_loaded: bool = True  # False: the backbone runs on random weights
    is_demo: bool = False  # the bundled demo model (trained on synthetic data)
    speed_mode: str = "fp32"  # how it runs: "fp32", "bf16" or "int8" (inference.speed)
    speed_summary: str = ""  # why: the start-up race and parity check, one line


@dataclass(frozen=True)
class ModelLoadFailed:
    """The inference worker could not load a checkpoint (the previous model, if any, still runs)."""

    request_id: int
    checkpoint: Path
    message: str  # one line for the user


@dataclass(frozen=True)
class PredictionRequest:
    """Predict one frame against a reference frame with the current model."""

    request_id: int
    media: MediaRef
    frame_idx: int
    reference_idx: int
    model_version: str  # the answer is dropped if the worker's model differs
    frame_label: FrameLabel = field(compare=False, repr=False)  # names frames in its messages
    # While playing: (frame_idx, reference_idx) of the next frames, whose cached predictions
    # the worker reads into memory after answering (never running the model for them).
    prefetch: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True)
class AnalysisRequest:
    """Predict a range of frames in the background and fill the predictions cache."""

    media: MediaRef
    every: int  # predict every n-th frame from frame 0
    reference_policy: str  # inference.ReferencePolicy value ("sliding", "fixed", ...)
    fixed_reference_idx: int | None  # for the "fixed" policy
    model_version: str
    frame_label: FrameLabel = field(compare=False, repr=False)  # names frames in its messages
    events: tuple[tuple[int, int], ...] = ()  # "onset" policy: (onset, offset) of the coded events
    request_id: int = 0  # stamped by the job runner
    # with a student loaded: the coded events' apexes, where the teacher runs after the student's
    # dense pass (inference.analysis_job explains the split)
    apexes: tuple[int, ...] = ()


@dataclass(frozen=True)
class Progress:
    """How far a long job has come."""

    request_id: int
    n_done: int
    n_total: int
    text: str = ""  # one line for the status bar


@dataclass(frozen=True, eq=False)
class JobDone:
    """A background job ended: completed, cancelled, or failed (then `cancelled` and `failed`
    are True and `summary` is the error). `summary` is one line for the user; `result` is the
    job's own value (see each request), None when it failed."""

    request_id: int
    cancelled: bool
    summary: str
    result: Any = None
    failed: bool = False


@dataclass(frozen=True)
class ImportRequest:
    """Import a coding sheet with its media root into a project (created when missing).
    Result: None (the project is on disk)."""

    kind: str  # importer name: casme2, samm, casme3, megc, csv
    sheet: Path
    media_root: Path
    project_path: Path
    coder: str = ""
    fps: float | None = None  # frame rate of image-folder clips (files store none), e.g. 200
    request_id: int = 0  # stamped by the job runner


@dataclass(frozen=True)
class SpotRequest:
    """Spot micro- and macro-expression candidates in one video. Result: `Spotted`."""

    media: MediaRef
    request_id: int = 0  # stamped by the job runner


@dataclass(frozen=True, eq=False)
class Spotted:
    """What a spotting pass found."""

    video_id: int
    candidates: tuple  # spotting.spotter.Candidate, sorted by onset
    seconds: float  # wall time of the pass


@dataclass(frozen=True)
class ProxyRequest:
    """Make sure one video has a seek proxy (build it when it needs one and has none).
    Result: `ProxyState`; `summary` says what was built or why not ("" when nothing to say)."""

    media: MediaRef
    request_id: int = 0  # stamped by the job runner


@dataclass(frozen=True)
class ProxyState:
    """The seek proxy of a video after a check or build."""

    video_id: int
    proxy: Path | None  # the proxy now in place, or None (not needed or refused)
    built: bool  # True when this run wrote it (the readers attach it)


@dataclass(frozen=True, eq=False)
class FinetuneRequest:
    """Fine-tune a parent checkpoint on a snapshot of the labels. Result:
    `training.finetune.FinetuneResult`; the controller then registers it (`Tuned`)."""

    snapshot: Any  # training.finetune.TrainingSnapshot, taken on the GUI thread
    parent: Path  # checkpoint folder of the parent model
    out: Path  # checkpoint folder to create
    options: Any  # training.finetune.FinetuneOptions
    request_id: int = 0  # stamped by the job runner


@dataclass(frozen=True)
class DistillRequest:
    """Distil a tiny student from the teacher checkpoint on the given videos and synthetic clips
    (`training.distill`). Result: `Distilled`; the model slot then registers and attaches it."""

    teacher: Path  # checkpoint folder of the teacher (the loaded model)
    videos: tuple[Path, ...]  # the user's own videos / image folders (no labels needed)
    synthetic_clips: int  # generated clips per synthetic subject (01 and 02; 03 stays unseen)
    out: Path  # checkpoint folder to create
    settings: Any  # training.distill.DistillSettings
    request_id: int = 0  # stamped by the job runner


@dataclass(frozen=True, eq=False)
class Distilled:
    """A finished distillation: the student's card and folder."""

    card: ModelCard
    checkpoint: Path
    agreement_mean_f1: float | None  # against the teacher on the held-out sources (None: none held out)


@dataclass(frozen=True, eq=False)
class Tuned:
    """A finished fine-tune, registered in the project as an inactive version."""

    report: Any  # training.finetune.FinetuneResult (before/after scores, card, checkpoint)
    version_id: int  # the project's id of the new version


@dataclass(frozen=True)
class AgreementRequest:
    """Compare two sources of one project file. Result: `session.agreement.AgreementReport`."""

    project_path: Path
    source_a: Any  # session.agreement.AgreementSource
    source_b: Any
    threshold: float
    request_id: int = 0  # stamped by the job runner


@dataclass(frozen=True)
class SuggestRequest:
    """Rank one model version's cached predictions of a project file against its coded
    events. Result: `Suggested`."""

    project_path: Path
    model_version_id: int
    model_version: str  # its name, for the summary
    request_id: int = 0  # stamped by the job runner


@dataclass(frozen=True, eq=False)
class Suggested:
    """The ranked review items a suggestion run produced."""

    items: tuple  # session.review.ReviewItem, best first
    note: str  # why there are none ("" when there are some)


@dataclass(frozen=True)
class InterchangeRequest:
    """Import one file into, or export one file from, a project file (File > Import / Export).
    Result: `Interchanged`."""

    direction: str  # "import" or "export"
    key: str  # the format: a key of session.interchange.IMPORT_FORMATS / EXPORT_FORMATS
    path: Path  # the file read or written
    project_path: Path  # the job opens it on its own thread (read-only for an export)
    video_id: int | None  # the open video (ELAN, comparison traces), None when none is open
    request_id: int = 0  # stamped by the job runner


@dataclass(frozen=True, eq=False)
class Interchanged:
    """A finished import or export."""

    request: InterchangeRequest
    change: Any  # store.records.Change: what an import committed (empty for an export)
