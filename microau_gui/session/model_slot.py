"""The session's model part: which model runs, the prediction of the frame on screen, the
reference policy, and background analysis.

Owns: `ModelSlot` (the session's `models`). May import inference (its public contract:
checkpoints, reference), training (`DistillSettings` only; the job itself is
`session.distill_job`), store (the project's model registry), core, the session's inference
worker, distill job, jobs, messages, models, playback (its tick) and workers, and
PySide6.QtCore; never gui, never another session part (the playhead and the selected event come
in as an object and callables).

Threads: it owns the InferenceWorker's QThread; analysis runs inside that worker (it shares the
loaded model) through a `JobRunner.on_worker`.

Teacher and student (DESIGN.md section 5): the loaded model is the teacher. A distilled student
of it (`use_student`, or made by `distil_student`, a `JobRunner` job) draws the dense traces: an
analysis then caches the student's rows for every frame and the teacher's at the coded apexes,
each under its own version, and `trace` shows the student's trace with the teacher's rows laid
over it where the teacher ran. The frame on screen is always the teacher's.

Stale answers: a prediction is shown as the frame's own only when it comes from the loaded
model version and is for the frame on screen (with its current reference); a prediction for the
frame asked for that arrives before the frame itself is held until the frame is shown.

Never an empty view (issue 16): during playback the frame on screen moves on before most answers
arrive. The last prediction drawn then stays on screen, and the views draw it faded and say which
frame it belongs to (`prediction_kept`); an answer that arrives late, for a frame already passed,
replaces it when it is newer. While playing, the worker hands over the cached predictions of the
frames due next (`PredictionRequest.prefetch`), and a frame with one is drawn with it at once.
Only another model or another video clears the views (`prediction_cleared`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
from PySide6.QtCore import QMetaObject, QObject, Qt, Signal

from microau_gui.core.au import DEFAULT_VOCAB
from microau_gui.core.errors import UserError
from microau_gui.core.types import FramePrediction
from microau_gui.inference.checkpoints import default_checkpoint
from microau_gui.inference.reference import ReferencePolicy, reference_frame
from microau_gui.session.inference_worker import InferenceWorker
from microau_gui.session.jobs import JobRunner, RequestIds
from microau_gui.session.distill_job import distill_student
from microau_gui.session.messages import (
    AnalysisRequest,
    DistillRequest,
    JobDone,
    FrameLoaded,
    ModelLoaded,
    ModelLoadFailed,
    ModelRequest,
    PredictionRequest,
)
from microau_gui.session.models import ModelChoice, model_choices, startup_choice
from microau_gui.session.playback import TICK_MS
from microau_gui.session.workers import WorkerThread
from microau_gui.store.predictions import ProbTrace
from microau_gui.store.project import Project

# While playing, the cached predictions of this many frames after the requested one are read
# ahead by the worker, so that each frame's own prediction is ready when it is shown (measured
# at 1/8x on the demo with 2 loaded cores: without it the overlays were an earlier frame's,
# faded, half of the time).
PREFETCH_FRAMES = 8


class ModelSlot(QObject):
    """The model, its predictions of the playhead's frames, and the analysis job."""

    model_loaded = Signal(object)  # ModelLoaded
    student_changed = Signal(object)  # ModelLoaded of the attached student, None: detached
    model_unloaded = Signal(str)  # why no model runs (one line)
    prediction_made = Signal(object)  # FramePrediction of the frame on screen
    prediction_cleared = Signal()  # no prediction to draw at all (another model or video)
    prediction_kept = Signal(object)  # FramePrediction of an earlier frame, drawn faded: the
    # frame on screen has none yet
    reference_changed = Signal(str, int)  # (policy, reference frame_idx of the current frame)
    status_posted = Signal(str)
    failed = Signal(str)
    _prediction_requested = Signal(object)
    _model_requested = Signal(object)
    _model_version_id_assigned = Signal(object)
    _project_handed_over = Signal(object)
    _student_requested = Signal(object)
    _student_version_id_assigned = Signal(object)

    def __init__(self, ids: RequestIds, device: str, weights: Path, playhead,
                 project: Callable[[], Project | None], selected_onset: Callable[[], int | None],
                 parent: QObject | None = None):
        super().__init__(parent)
        self._ids = ids
        self.device = device
        self.weights = weights
        self._playhead = playhead  # session.playhead.Playhead: media, frame_idx, frame on screen
        self._project = project
        self._selected_onset = selected_onset
        self.model: ModelLoaded | None = None
        self.student: ModelLoaded | None = None  # a distilled student of `model`, drawing traces
        self.prediction: FramePrediction | None = None  # of the frame on screen
        self.shown: FramePrediction | None = None  # drawn: `prediction`, or the one kept faded
        self.reference_policy = ReferencePolicy.SLIDING
        self.fixed_reference_idx: int | None = None
        self._latest_prediction_request: PredictionRequest | None = None
        self._held_prediction: FramePrediction | None = None
        # Cached predictions of the frames ahead while playing, by (frame_idx, reference_idx).
        self._ahead: dict[tuple[int, int], FramePrediction] = {}
        self._model_request: ModelRequest | None = None

        self.inference = WorkerThread(InferenceWorker(), "inference", background=True)
        worker = self.inference.worker
        self._prediction_requested.connect(worker.predict)
        self._model_requested.connect(worker.load_model)
        self._model_version_id_assigned.connect(worker.set_model_version_id)
        self._project_handed_over.connect(worker.set_project)
        playhead.proxy_ready.connect(worker.use_proxy)
        playhead.frame_loaded.connect(self._on_playhead_frame_loaded)
        playhead.moved.connect(self.request_prediction)
        worker.model_loaded.connect(self._on_inference_model_loaded)
        worker.model_load_failed.connect(self._on_inference_model_load_failed)
        worker.prediction_made.connect(self._on_inference_prediction_made)
        worker.prediction_prefetched.connect(self._on_inference_prediction_prefetched)
        worker.failed.connect(self.failed)
        self._student_requested.connect(worker.load_student)
        self._student_version_id_assigned.connect(worker.set_student_version_id)
        worker.student_loaded.connect(self._on_inference_student_loaded)
        self.analysis = JobRunner.on_worker(ids, worker, worker.analyze, worker.cancel_analysis,
                                            worker.analysis_progressed, worker.analysis_finished,
                                            parent=self)
        self.distillation = JobRunner(ids, distill_student, lambda r: f"distilling a student of {r.teacher.name}",
                                      parent=self)
        self.distillation.finished.connect(self._on_distillation_finished)
        self.distillation.failed.connect(self.failed)

    @property
    def vocab(self) -> tuple[str, ...]:
        """AU codes the panels list: the model's vocabulary, or the default one."""
        return self.model.vocab if self.model is not None else DEFAULT_VOCAB

    @property
    def threads(self) -> list[WorkerThread]:
        return [self.inference]

    # -- the project ---------------------------------------------------------------------------

    def hand_over(self, project: Project | None) -> None:
        """The worker caches into `project` (None: the project is closing; returns once the
        worker dropped its connection, so the file can be closed)."""
        self._project_handed_over.emit(project)
        if project is None and self.inference.running:
            QMetaObject.invokeMethod(self.inference.worker, "sync",
                                     Qt.ConnectionType.BlockingQueuedConnection)

    def forget_prediction(self) -> None:
        """Another video or project opened: the prediction on screen is gone."""
        had = self.shown is not None
        self.prediction = self.shown = self._held_prediction = None
        self._ahead.clear()
        if had:
            self.prediction_cleared.emit()

    # -- reference frame and predictions -------------------------------------------------------

    def reference_idx(self, frame_idx: int | None = None) -> int:
        """The reference frame the model compares `frame_idx` (default: the playhead) against."""
        frame_idx = self._playhead.frame_idx if frame_idx is None else frame_idx
        policy, fps = self.reference_policy, self._playhead.fps
        onset = self._selected_onset()
        if policy is ReferencePolicy.ONSET and onset is not None:
            return reference_frame(frame_idx, policy, fps, onset_idx=onset)
        if policy is ReferencePolicy.FIXED and self.fixed_reference_idx is not None:
            return reference_frame(frame_idx, policy, fps, fixed_idx=self.fixed_reference_idx)
        return reference_frame(frame_idx, ReferencePolicy.SLIDING, fps)

    def reference_pixels(self):
        """(reference frame_idx of the frame on screen, its RGB or None while it is decoded:
        the playhead's `frame_warmed` follows). The frame is the one the model compares against,
        under the reference policy on screen."""
        shown = self._playhead.displayed_frame_idx
        reference_idx = self.reference_idx(shown)
        return reference_idx, self._playhead.pixels(reference_idx)

    def set_reference_policy(self, policy: ReferencePolicy | str,
                             fixed_idx: int | None = None) -> None:
        self.reference_policy = ReferencePolicy(policy)
        if fixed_idx is not None:
            self.fixed_reference_idx = max(0, min(fixed_idx, self._playhead.n_frames - 1))
        if self.reference_policy is ReferencePolicy.FIXED and self.fixed_reference_idx is None:
            self.fixed_reference_idx = self._playhead.frame_idx
        self.request_prediction()

    def request_prediction(self) -> None:
        media = self._playhead.media
        if media is None:
            return
        reference_idx = self.reference_idx()
        self.reference_changed.emit(self.reference_policy.value, reference_idx)
        if self.model is None:
            return
        frame_idx = self._playhead.frame_idx
        prefetch = ()
        if self._playhead.playing:
            # The frames the clock will show next: fast playback skips frames (TICK_MS apart).
            stride = max(1, round(media.fps * self._playhead.speed * TICK_MS / 1000))
            ahead = range(frame_idx + stride, min(frame_idx + stride * PREFETCH_FRAMES + 1,
                                                  media.n_frames), stride)
            prefetch = tuple((f, self.reference_idx(f)) for f in ahead)
        request = PredictionRequest(self._ids.next(), media, frame_idx, reference_idx,
                                    self.model.model_version, self._playhead.frame_label, prefetch)
        self._latest_prediction_request = request
        self._prediction_requested.emit(request)

    def _on_inference_prediction_made(self, prediction: FramePrediction) -> None:
        latest = self._latest_prediction_request
        if (latest is None or self.model is None
                or prediction.model_version != self.model.model_version
                or latest.media != self._playhead.media):
            return
        own = prediction.reference_idx == self.reference_idx(prediction.frame_idx)
        current = self.prediction
        if (current is not None and own and current.frame_idx == prediction.frame_idx
                and current.reference_idx == prediction.reference_idx):
            return  # already drawn (read ahead while playing)
        if prediction.frame_idx == self._playhead.displayed_frame_idx and own:
            self._show_prediction(prediction)
        elif (prediction.request_id == latest.request_id
              and prediction.frame_idx == self._playhead.frame_idx):
            self._held_prediction = prediction  # shown as soon as its frame is
        elif self.prediction is None and (self.shown is None
                                          or prediction.request_id > self.shown.request_id):
            # Late (playback moved on): newer than the one kept, so it is kept instead.
            self.shown = prediction
            self.prediction_kept.emit(prediction)

    def _on_inference_prediction_prefetched(self, prediction: FramePrediction) -> None:
        latest = self._latest_prediction_request
        if (latest is None or self.model is None or latest.media != self._playhead.media
                or prediction.model_version != self.model.model_version):
            return
        self._ahead[(prediction.frame_idx, prediction.reference_idx)] = prediction
        while len(self._ahead) > 2 * PREFETCH_FRAMES:
            del self._ahead[next(iter(self._ahead))]  # the oldest handed over

    def _on_playhead_frame_loaded(self, loaded: FrameLoaded) -> None:
        held = self._held_prediction
        ahead = self._ahead.get((loaded.frame_idx, self.reference_idx(loaded.frame_idx)))
        if held is not None and held.frame_idx == loaded.frame_idx:
            self._show_prediction(held)
        elif ahead is not None:  # read ahead while playing: drawn with its frame
            self._show_prediction(replace(ahead, request_id=self._ids.last))
        elif self.prediction is not None and self.prediction.frame_idx != loaded.frame_idx:
            self.prediction = None
            self.prediction_kept.emit(self.shown)  # the last one stays, faded, until the next

    def _show_prediction(self, prediction: FramePrediction) -> None:
        self._held_prediction = None
        self.prediction = self.shown = prediction
        self.prediction_made.emit(prediction)

    # -- models --------------------------------------------------------------------------------

    def model_choices(self) -> list[ModelChoice]:
        return model_choices(self._project(), self.weights)

    def load_startup_model(self) -> None:
        """Load the project's model (its active version, else the bundled default ...).

        When that model is already running (switching projects), it stays loaded and only its
        project version id changes.
        """
        default = default_checkpoint()
        choice = startup_choice(self.model_choices(),
                                Path(default) if default is not None else None)
        if choice is None:
            if self.model is None:
                self.model_unloaded.emit(f"no model found in the project or in {self.weights}; "
                                         "run `make demo-assets` or train one with "
                                         "`python main.py train ...`")
            elif self._project() is not None:
                self.model = self._adopt(self.model)
            return
        if self.model is not None and choice.version == self.model.model_version:
            self.model = self._adopt(self.model)
            self.model_loaded.emit(self.model)
            return
        self.select_model(choice)

    def select_model(self, choice: ModelChoice) -> None:
        """Load a model version in the inference worker (registering a weights/ checkpoint)."""
        if not choice.available:
            raise UserError(f"the checkpoint of {choice.name} is missing ({choice.checkpoint})")
        request = ModelRequest(self._ids.next(), choice.checkpoint, choice.model_version_id,
                               self.device)
        self._model_request = request
        self.status_posted.emit(f"loading model {choice.name} ...")
        self._model_requested.emit(request)

    def _on_inference_model_loaded(self, loaded: ModelLoaded) -> None:
        if self._model_request is None or loaded.request_id != self._model_request.request_id:
            return
        loaded = self._adopt(loaded)
        self.model = loaded
        if self.student is not None:  # the worker dropped the old teacher's student
            self.student = None
            self.student_changed.emit(None)
        self.prediction = self.shown = self._held_prediction = None
        self._ahead.clear()
        self.prediction_cleared.emit()
        self.model_loaded.emit(loaded)
        self.status_posted.emit(f"model {loaded.model_version} running on {loaded.device.upper()}")
        self.request_prediction()

    def _on_inference_model_load_failed(self, failure: ModelLoadFailed) -> None:
        if self._model_request is not None and failure.request_id == self._model_request.request_id:
            self._model_request = None
            if self.model is None:
                self.model_unloaded.emit(failure.message)
        self.failed.emit(failure.message)

    def crop_size_px(self) -> int | None:
        """Side of the model's aligned input crop (from its model card), for the face-crop view."""
        if self.model is None:
            return None
        return int(self.model.card.image_size)

    def _adopt(self, loaded: ModelLoaded) -> ModelLoaded:
        """The loaded model under the open project's version id, registering it (and making it
        the active version) when the project is writable, so its predictions are cached."""
        version_id = None
        project = self._project()
        if project is not None:
            models = project.models
            if project.read_only:
                version = models.find_version(loaded.model_version)
            else:
                try:
                    version = models.register(loaded.card, loaded.checkpoint, activate=True)
                except UserError as err:  # a clash: run it, but never cache it under another's id
                    self.failed.emit(str(err))
                    version = None
            version_id = version.id if version is not None else None
        if version_id != loaded.model_version_id:
            self._model_version_id_assigned.emit(version_id)
        return replace(loaded, model_version_id=version_id)

    def trace(self, video_id: int | None) -> ProbTrace | None:
        """Cached probabilities of a video under the loaded model (timeline lanes); with a
        student, its dense trace with the teacher's rows laid over it where the teacher ran."""
        project = self._project()
        if (project is None or video_id is None or self.model is None
                or self.model.model_version_id is None):
            return None
        teacher = project.predictions.probs(video_id, self.model.model_version_id)
        if self.student is None or self.student.model_version_id is None:
            return teacher
        dense = project.predictions.probs(video_id, self.student.model_version_id)
        frame_idx = np.union1d(dense.frame_idx, teacher.frame_idx)
        probs = np.full((len(frame_idx), len(teacher.vocab)), np.nan, np.float32)  # (n, n_au)
        probs[np.searchsorted(frame_idx, dense.frame_idx)] = dense.probs
        probs[np.searchsorted(frame_idx, teacher.frame_idx)] = teacher.probs
        return ProbTrace(frame_idx=frame_idx, probs=probs, vocab=teacher.vocab)

    # -- the student -----------------------------------------------------------------------------

    def use_student(self, checkpoint: Path | None) -> None:
        """Attach a distilled student of the loaded model from its checkpoint (None: detach)."""
        if checkpoint is not None and self.model is None:
            raise UserError("load the teacher model before attaching its student")
        request = None if checkpoint is None else ModelRequest(self._ids.next(), Path(checkpoint), None,
                                                               self.device)
        self._student_requested.emit(request)

    def _on_inference_student_loaded(self, loaded: ModelLoaded | None) -> None:
        if loaded is not None:
            version_id = None
            project = self._project()
            if project is not None and not project.read_only:
                try:
                    version = project.models.register(loaded.card, loaded.checkpoint)
                    version_id = version.id
                except UserError as err:  # a clash: run it, but never cache it under another's id
                    self.failed.emit(str(err))
            self._student_version_id_assigned.emit(version_id)
            loaded = replace(loaded, model_version_id=version_id)
            self.status_posted.emit(f"student {loaded.model_version} draws the traces; "
                                    f"the teacher {self.model.model_version if self.model else ''} runs at apexes "
                                    "and on the frame on screen")
        self.student = loaded
        self.student_changed.emit(loaded)

    def distil_student(self, name: str, synthetic_clips: int = 12, settings=None) -> None:
        """Distil a student of the loaded model in the background, on the open video and
        `synthetic_clips` generated clips per synthetic subject, into weights/NAME; it is
        registered and attached when done (see `session.distill_job`)."""
        from microau_gui.training.distill import DistillSettings

        if self.model is None:
            raise UserError("load the teacher model before distilling a student of it")
        name = name.strip()
        if not name or "/" in name or name.startswith("."):
            raise UserError(f"{name!r} is not a model name; use letters, digits, - or _")
        out = self.weights / name
        if out.exists():
            raise UserError(f"{out} already exists; choose another name for the student")
        media = self._playhead.media
        videos = (media.path,) if media is not None else ()
        if not videos and synthetic_clips < 1:
            raise UserError("open a video or ask for synthetic clips to distil on")
        self.distillation.submit(DistillRequest(self.model.checkpoint, videos, synthetic_clips, out,
                                                settings or DistillSettings()), busy="a student is "
                                 "being distilled already")

    def _on_distillation_finished(self, done: JobDone) -> None:
        if done.result is not None and self.model is not None:
            self.use_student(done.result.checkpoint)

    # -- analysis ------------------------------------------------------------------------------

    def analyze(self, every: int = 1, events: tuple[tuple[int, int], ...] = (),
                apexes: tuple[int, ...] = ()) -> None:
        """Predict every `every`-th frame of the open video in the background (cached) under
        the reference policy on screen; `events`: (onset, offset) of the coded events, which
        the onset policy takes its references from; `apexes`: their apexes, where the teacher
        runs when a student draws the trace."""
        media = self._playhead.media
        if media is None or self.model is None:
            raise UserError("open a video and load a model before analysing")
        self.analysis.submit(AnalysisRequest(
            media, max(1, every), self.reference_policy.value, self.fixed_reference_idx,
            self.model.model_version, self._playhead.frame_label, events=events, apexes=apexes),
            replace=True)

    def close(self) -> None:
        self.distillation.close()
        self.analysis.close()
        self.inference.stop()
