"""The inference worker: one Predictor on its own thread, for the frame on screen and for analysis.

Owns: `InferenceWorker`. May import inference (only its public contract: `Predictor`,
`FramePair`, `AnalysisPipeline`, `AnalysisOptions`, `ProjectCache`, `FrameLandmarks`,
`ReferencePolicy`), store, media, core, the session's messages/workers and PySide6.QtCore.
torch is loaded lazily, on this worker's thread, when the first model loads.

- The frame on screen: `predict(PredictionRequest)`; the newest request wins (LatestOnly), and a
  request for another model version than the loaded one is dropped unanswered. Its pair is built
  as the analysis pipeline builds one (static landmarks of the reference and of the target,
  `inference.pipeline.FrameLandmarks`), so a frame shows what an analysis caches for it.
- Background analysis: `analyze(AnalysisRequest)` steps the one analysis pipeline
  (`inference.pipeline.AnalysisPipeline`, the one the CLI runs: same decoding, landmarks,
  reference policy and cache writes, so it caches the same rows) one batch per event-loop turn,
  so an on-screen request waiting in the queue is served between two batches. The batch grows
  while one turn stays under ANALYSIS_STEP_BUDGET_S (the tiny model batches 8 frames, ViT-B-16
  on a CPU stays at 1), so batching speeds analysis up without delaying the coder's frame by more
  than about that budget. The pipeline decodes on this thread (no producer thread: the other
  core draws the window), from a frame source of its own, so the frame on screen keeps its
  decoder position.
- The worker opens its own frame source (frame sources are not thread-safe), and keeps the last
  predictions in memory so stepping back and forth redraws without running the model again;
  frames already in the project's predictions cache (an analysis ran) are redrawn from it
  (`inference.predictor.warp_grid_to_image` / `regions_in_image`) without the model.
- While playing, a request names the next few frames (`PredictionRequest.prefetch`); after
  answering, the worker reads their cached predictions (memory, else the project's cache), one per
  event-loop turn and only while no newer request waits, and hands each to the session
  (`prediction_prefetched`), which draws it the moment its frame is shown. It never runs the
  model for them: an uncached frame waits for its own request.
- A distilled student (`load_student`, DESIGN.md section 5 "Teacher and student"): with one
  loaded, an analysis first steps a pipeline of the student over every requested frame (its rows
  cached under the student's version: the dense trace), then one of the teacher over the coded
  events' apexes only (under the teacher's version), as `inference.analysis_job` splits the CLI's
  run. The frame on screen, paused or scrubbed, is always the teacher's.
- Messages name frames as the coder sees them, with the request's `frame_label` (the numbering
  chosen when it was asked for); counts of frames stay counts.
- Only analysis writes the project's cache. Frames predicted while the coder scrubs stay in
  memory: the project file changes only when the coder edits or asks for an analysis.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
from collections import OrderedDict

from PySide6.QtCore import QTimer, Signal, Slot

from microau_gui.core.cores import usable_cores
from microau_gui.core.types import FramePrediction
from microau_gui.media import FrameSource, open_media
from microau_gui.session.messages import (
    AnalysisRequest,
    JobDone,
    MediaRef,
    ModelLoaded,
    ModelLoadFailed,
    ModelRequest,
    PredictionRequest,
    Progress,
    ProxyReady,
)
from microau_gui.session.workers import LatestOnly, OpenMedia, Worker, user_message
from microau_gui.store.project import Project

log = logging.getLogger(__name__)

MEMORY_CACHE_FRAMES = 48  # full predictions (with heatmaps) kept for redraws: ~1 MB each
ANALYSIS_STEP_BUDGET_S = 0.15  # longest model call per event-loop turn while analysing
ANALYSIS_MAX_BATCH = 8  # frames per model call during analysis, at most
FRAME_CACHE_FRAMES = 48  # decoded frames kept by the worker's own source (references repeat)


def _leave_a_core_for_display() -> None:
    """Let torch use every core but one, so decoding and painting never queue behind the model.

    Measured on 2 shared cores while stepping 25 frames/s with the model running: frame display
    p50/p95 26/120 ms with torch on both cores, 15/47 ms with one (and 8x more predictions
    finished, since the threads no longer thrash).
    """
    import torch  # already loaded by the predictor import; this is its thread setting

    torch.set_num_threads(max(1, usable_cores() - 1))


def _model_loaded(request: ModelRequest, predictor) -> ModelLoaded:
    """What a just-loaded `inference.Predictor` (teacher or student) runs, answering `request`:
    the one place a ModelLoaded is made, so the teacher's and the student's never differ in kind."""
    return ModelLoaded(
        request_id=request.request_id, model_version=predictor.model_version,
        model_version_id=request.model_version_id, checkpoint=request.checkpoint,
        vocab=tuple(predictor.vocab), card=predictor.card, device=predictor.device,
        pretrained_loaded=bool(predictor.pretrained_loaded), is_demo=bool(predictor.is_demo),
        speed_mode=predictor.speed_mode, speed_summary=predictor.speed_choice.summary(),
    )


class InferenceWorker(Worker):
    """Runs the model. Signals: `model_loaded`, `model_load_failed`, `prediction_made`,
    `analysis_progressed`, `analysis_finished`, `failed`."""

    model_loaded = Signal(object)  # ModelLoaded
    model_load_failed = Signal(object)  # ModelLoadFailed (instead of `failed`)
    prediction_made = Signal(object)  # FramePrediction with request_id set
    prediction_prefetched = Signal(object)  # cached FramePrediction of a frame ahead (playing)
    analysis_progressed = Signal(object)  # Progress
    analysis_finished = Signal(object)  # JobDone
    student_loaded = Signal(object)  # ModelLoaded of the student (None: detached)

    def __init__(self):
        super().__init__()
        self._predictor = None
        self._loaded: ModelLoaded | None = None
        self._project: Project | None = None
        self._media = OpenMedia(FRAME_CACHE_FRAMES)
        self._memory: OrderedDict[tuple[int, int, int], FramePrediction] = OrderedDict()
        self._mailbox = LatestOnly(self._predict_now)
        # (the request naming them, (frame_idx, reference_idx) of the frames ahead still to read)
        self._prefetch: tuple[PredictionRequest, list[tuple[int, int]]] | None = None
        self._landmarks = None  # inference.pipeline.FrameLandmarks of `_landmarks_media`
        self._landmarks_media: MediaRef | None = None
        self._analysis: AnalysisRequest | None = None
        self._pipeline = None  # inference.pipeline.AnalysisPipeline of `_analysis`
        self._analysis_done = 0  # frames the analysis has produced
        self._analysis_total = 0
        self._analysis_batch = 1  # frames per analysis turn, adapted to the model's speed
        self._analysis_base = 0  # frames produced by the analysis's earlier passes
        self._next_pass = None  # () -> the teacher's pipeline after the student's dense pass
        self._student = None  # inference Predictor of a distilled student, or None
        self._student_loaded: ModelLoaded | None = None
        self._stopped = False

    # -- project and model ---------------------------------------------------------------------

    @Slot(object)
    def set_project(self, project: Project | None) -> None:
        """Use this project's predictions cache (None: cache nothing). Stops any analysis."""
        self._finish_analysis(cancelled=True)
        if self._project is not None:
            self._project.close_thread_connection()
        self._project = project
        self._memory.clear()
        self._prefetch = None
        self._media.close()
        self._close_landmarks()

    @Slot(object)
    def use_proxy(self, ready: ProxyReady) -> None:
        """Random reads of the open video go through its new seek proxy from its next read (an
        analysis in progress carries on, between two batches)."""
        self.guarded(f"attaching the seek proxy of {ready.media.path.name}", self._media.attach_proxy,
                     ready)

    @Slot(object)
    def load_model(self, request: ModelRequest) -> None:
        try:
            self._load_model(request)
        except Exception as err:  # a typed message: the model slot clears its pending request
            log.warning("loading model %s failed", request.checkpoint, exc_info=True)
            self.model_load_failed.emit(ModelLoadFailed(
                request.request_id, request.checkpoint,
                f"loading model {request.checkpoint.name}: {user_message(err)}"))

    def _load_model(self, request: ModelRequest) -> None:
        from microau_gui.inference.predictor import Predictor  # torch loads here, on this thread

        self._finish_analysis(cancelled=True)
        _leave_a_core_for_display()
        predictor = Predictor.from_checkpoint(request.checkpoint, device=request.device)
        self._close_predictor()
        self._predictor = predictor
        self._memory.clear()
        self._prefetch = None
        self._loaded = _model_loaded(request, predictor)
        log.info("model %s loaded on %s, speed mode %s", predictor.model_version, predictor.device,
                 predictor.speed_choice.summary())
        self.model_loaded.emit(self._loaded)

    @Slot(object)
    def set_model_version_id(self, model_version_id: int | None) -> None:
        """The project registered the loaded checkpoint: cache its predictions under this id."""
        if self._loaded is not None:
            self._loaded = dataclasses.replace(self._loaded, model_version_id=model_version_id)

    @Slot(object)
    def load_student(self, request: ModelRequest | None) -> None:
        """Attach a distilled student of the loaded model (None: detach it)."""
        try:
            self._load_student(request)
        except Exception as err:
            log.warning("loading student %s failed", request.checkpoint, exc_info=True)
            self.failed.emit(f"loading student {request.checkpoint.name}: {user_message(err)}")

    def _load_student(self, request: ModelRequest | None) -> None:
        from microau_gui.core.errors import UserError
        from microau_gui.inference.predictor import Predictor

        self._finish_analysis(cancelled=True)
        self._close_student()
        if request is None:
            self.student_loaded.emit(None)
            return
        student = Predictor.from_checkpoint(request.checkpoint, device=request.device)
        teacher = self._loaded.model_version if self._loaded is not None else None
        if teacher is None or student.card.teacher != self._predictor.card.version:
            student.close()
            raise UserError(f"it was distilled from {student.card.teacher or 'no teacher'}, not from "
                            f"the loaded model {teacher or '(none)'}")
        self._student = student
        self._student_loaded = _model_loaded(request, student)
        self.student_loaded.emit(self._student_loaded)

    @Slot(object)
    def set_student_version_id(self, model_version_id: int | None) -> None:
        """The project registered the student: cache its dense traces under this id."""
        if self._student_loaded is not None:
            self._student_loaded = dataclasses.replace(self._student_loaded, model_version_id=model_version_id)

    def _close_student(self) -> None:
        if self._student is not None:
            self._student.close()
        self._student = self._student_loaded = None

    # -- the frame on screen -------------------------------------------------------------------

    @Slot(object)
    def predict(self, request: PredictionRequest) -> None:
        self._mailbox.put(request)

    def _predict_now(self, request: PredictionRequest) -> None:
        if self._loaded is None or request.model_version != self._loaded.model_version:
            return  # asked of a model that is no longer (or not yet) loaded: stale
        prediction = self.guarded(f"predicting frame {request.frame_label(request.frame_idx)}",
                                  self._prediction_for, request.media, request.frame_idx,
                                  request.reference_idx)
        if prediction is not None:
            self.prediction_made.emit(dataclasses.replace(prediction,
                                                          request_id=request.request_id))
        if request.prefetch:
            self._prefetch = (request, list(request.prefetch))
            QTimer.singleShot(0, self._prefetch_step)

    def _prefetch_step(self) -> None:
        """Hand over one cached prediction of the frames ahead, then schedule the next."""
        if self._prefetch is None or self._mailbox.has_pending or self._loaded is None:
            return  # a newer request goes first and brings its own frames ahead
        request, wanted = self._prefetch
        media = request.media
        if not wanted:
            self._prefetch = None
            return
        frame_idx, reference_idx = wanted.pop(0)
        key = (media.video_id, frame_idx, reference_idx)
        cached = self._memory.get(key)
        if cached is None:
            cached = self.guarded(f"reading the cached prediction of frame "
                                  f"{request.frame_label(frame_idx)}",
                                  self._from_store, media, frame_idx, reference_idx,
                                  self._media.source(media))
            if cached is not None:
                self._remember(key, cached)
        if cached is not None:
            self.prediction_prefetched.emit(cached)
        QTimer.singleShot(0, self._prefetch_step)

    def _prediction_for(self, media: MediaRef, frame_idx: int,
                        reference_idx: int) -> FramePrediction:
        key = (media.video_id, frame_idx, reference_idx)
        known = self._memory.get(key)
        if known is not None:
            self._memory.move_to_end(key)
            return known
        source = self._media.source(media)
        prediction = self._from_store(media, frame_idx, reference_idx, source)
        if prediction is None:
            prediction = self._predictor.predict_batch([self._pair(media, source, frame_idx,
                                                                   reference_idx)])[0]
        self._remember(key, prediction)
        return prediction

    def _remember(self, key: tuple[int, int, int], prediction: FramePrediction) -> None:
        self._memory[key] = prediction
        while len(self._memory) > MEMORY_CACHE_FRAMES:
            self._memory.popitem(last=False)

    def _pair(self, media: MediaRef, source: FrameSource, frame_idx: int, reference_idx: int):
        """The frame on screen and its reference with their landmarks, as the pipeline pairs them."""
        from microau_gui.inference.pipeline import FrameLandmarks
        from microau_gui.inference.predictor import FramePair

        if self._landmarks is None or self._landmarks_media != media:
            self._close_landmarks()
            self._landmarks, self._landmarks_media = FrameLandmarks(), media
        target, reference = source.read(frame_idx), source.read(reference_idx)
        return FramePair(target, reference, frame_idx, reference_idx,
                         self._landmarks.of(reference_idx, reference),
                         self._landmarks.of(frame_idx, target))

    def _close_landmarks(self) -> None:
        if self._landmarks is not None:
            self._landmarks.close()
        self._landmarks = self._landmarks_media = None

    def _from_store(self, media: MediaRef, frame_idx: int, reference_idx: int,
                    source: FrameSource) -> FramePrediction | None:
        """The project's cached prediction (from an analysis), redrawn without running the model.

        The cache keeps the patch grid, transform and landmarks; heatmaps and region polygons are
        derived again exactly as the predictor derives them.
        """
        from microau_gui.inference.predictor import regions_in_image, warp_grid_to_image

        project, loaded = self._project, self._loaded
        if project is None or loaded is None or loaded.model_version_id is None:
            return None
        cached = project.predictions.get(media.video_id, loaded.model_version_id, frame_idx,
                                         reference_idx, numerics=self._predictor.numerics)
        if cached is None or not cached.face_found or cached.pta_grid is None:
            return cached
        if cached.crop_to_img is None or cached.landmarks_img is None:
            return None
        width, height = source.size
        box, heatmaps = warp_grid_to_image(cached.pta_grid, cached.crop_to_img,
                                           self._predictor.image_size, (height, width))
        return dataclasses.replace(cached, heatmap_box=box, heatmaps=heatmaps,
                                   regions_img=regions_in_image(cached.landmarks_img, cached.vocab))

    # -- background analysis -------------------------------------------------------------------

    @Slot(object)
    def analyze(self, request: AnalysisRequest) -> None:
        self._finish_analysis(cancelled=True)
        if self._loaded is None or request.model_version != self._loaded.model_version:
            self.failed.emit("analysis: the model it was started with is no longer loaded; "
                             "start it again")
            return
        if self._student is not None:  # the student's dense pass, then the teacher's at the apexes
            gate = tuple((a, a + 1) for a in sorted(set(request.apexes)))
            first = functools.partial(self._open_pipeline, request, True, None)
            self._next_pass = functools.partial(self._open_pipeline, request, False, gate)
        else:
            first = functools.partial(self._open_pipeline, request, False, None)
            self._next_pass = None
        pipeline = self.guarded(f"starting the analysis of {request.media.path.name}", first)
        if pipeline is None:
            self._next_pass = None
            return
        self._analysis, self._pipeline = request, pipeline
        self._analysis_done, self._analysis_base = 0, 0
        self._analysis_total = pipeline.n_requested + (len(set(request.apexes)) if self._next_pass else 0)
        self._analysis_batch = 1
        QTimer.singleShot(0, self._analysis_step)

    def _open_pipeline(self, request: AnalysisRequest, student: bool, gate):
        """The analysis pipeline of a request for the student or the teacher, on its own frame
        source, caching into the project under that model's version; gate: only these ranges."""
        from microau_gui.inference.analysis import AnalysisOptions, ProjectCache
        from microau_gui.inference.pipeline import AnalysisPipeline
        from microau_gui.inference.reference import ReferencePolicy

        policy = ReferencePolicy(request.reference_policy)
        fixed_idx = request.fixed_reference_idx
        if policy is ReferencePolicy.FIXED and fixed_idx is None:
            policy = ReferencePolicy.SLIDING  # no frame chosen yet: the view's fallback too
        options = AnalysisOptions(every=request.every, reference=policy, fixed_idx=fixed_idx,
                                  events=request.events if policy is ReferencePolicy.ONSET else (),
                                  gate=gate)
        project = self._project
        predictor, loaded = ((self._student, self._student_loaded) if student
                             else (self._predictor, self._loaded))
        cache = None
        if project is not None and not project.read_only and loaded.model_version_id is not None:
            cache = ProjectCache(project, request.media.video_id, loaded.model_version_id,
                                 predictor.numerics)
        media = request.media
        source = open_media(media.path, fps=media.fps, cache_frames=4)
        try:
            return AnalysisPipeline(source, predictor, options, cache=cache, background=False)
        except BaseException:
            source.close()
            raise

    @Slot()
    def cancel_analysis(self) -> None:
        self._finish_analysis(cancelled=True)

    def _analysis_step(self) -> None:
        request, pipeline = self._analysis, self._pipeline
        if request is None or self._stopped:
            return
        if self._mailbox.has_pending:  # the coder's frame first; analysis resumes right after
            QTimer.singleShot(0, self._analysis_step)
            return
        started = time.perf_counter()
        # (batch,): a step; (None,): the end; None: it failed (reported by guarded)
        # counts, not frame names: the frames of a step are not consecutive (`every`, gates)
        stepped = self.guarded(f"analysing {request.media.path.name} ({self._analysis_done} of "
                               f"{self._analysis_total} frames done)",
                               lambda: (pipeline.step(self._analysis_batch),))
        if stepped is None or stepped[0] is None:
            self._finish_analysis(cancelled=stepped is None)
            return
        batch = stepped[0]
        per_frame_s = (time.perf_counter() - started) / len(batch.predictions)
        self._analysis_batch = max(1, min(ANALYSIS_MAX_BATCH,
                                          int(ANALYSIS_STEP_BUDGET_S / max(per_frame_s, 1e-6))))
        self._analysis_done = self._analysis_base + batch.n_done
        self.analysis_progressed.emit(Progress(
            request.request_id, self._analysis_done, self._analysis_total,
            f"analysed {self._analysis_done} of {self._analysis_total} frames"))
        if batch.n_done < batch.n_requested:
            QTimer.singleShot(0, self._analysis_step)
        elif self._next_pass is not None:
            self._start_next_pass()
        else:
            self._finish_analysis(cancelled=False)

    def _start_next_pass(self) -> None:
        """The student's dense pass ended: commit it, then step the teacher's pipeline."""
        done, opener = self._pipeline, self._next_pass
        self._next_pass = None
        self.guarded("saving analysed frames", done.close)
        done.source.close()
        self._analysis_base = self._analysis_done
        pipeline = self.guarded("starting the teacher's pass", opener)
        if pipeline is None:
            self._pipeline = None
            self._finish_analysis(cancelled=True)
            return
        self._pipeline = pipeline
        QTimer.singleShot(0, self._analysis_step)

    def _finish_analysis(self, cancelled: bool) -> None:
        """Commit what the analysis predicted, close its source and say how it ended."""
        request, pipeline = self._analysis, self._pipeline
        if request is None:
            return
        self._analysis = self._pipeline = self._next_pass = None
        if pipeline is None:  # the teacher's pass failed to start
            self.analysis_finished.emit(JobDone(request.request_id, True, "analysis stopped"))
            return
        self.guarded("saving analysed frames", pipeline.close)
        pipeline.source.close()
        verb = "cancelled after" if cancelled else "finished:"
        missing = ""
        if pipeline.undecodable is not None:
            missing = (f" (the file is truncated: frames {request.frame_label(*pipeline.undecodable)}"
                       " cannot be decoded)")
        self.analysis_finished.emit(JobDone(
            request.request_id, cancelled, f"analysis {verb} {self._analysis_done} of "
            f"{self._analysis_total} frames{missing}"))

    # -- resources -----------------------------------------------------------------------------

    def _close_predictor(self) -> None:
        self._close_student()  # a student belongs to its teacher
        if self._predictor is not None:
            self._predictor.close()
        self._predictor = None
        self._loaded = None

    @Slot()
    def shutdown(self) -> None:
        self._stopped = True
        self._mailbox.take()
        self._prefetch = None
        self.guarded("stopping analysis", self._finish_analysis, True)
        self._media.close()
        self._close_landmarks()
        self.guarded("closing the model", self._close_predictor)
        if self._project is not None:
            self._project.close_thread_connection()
        self._project = None
