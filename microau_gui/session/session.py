"""The open project as one QObject: playhead, selection, undoable edits, model and workers.

Owns: `ProjectSession`. May import inference (its public contract), store, media, face, core,
the session's own modules, PySide6.QtCore and PySide6.QtGui's QUndoStack/QUndoCommand (Qt 6
keeps the undo framework in QtGui; it needs no widgets). Never imports gui or widgets.

Threads: the session lives on the GUI thread. It owns a FrameLoaderWorker and an
InferenceWorker, each in its own QThread, an ImportWorker thread while an import runs, and (through
`review`, `agreement`, `finetune` and `proxies`) a SpotWorker, AgreementWorker, FinetuneWorker
or ProxyWorker thread while such a job runs. It talks to them only through queued signals
carrying the frozen values of session.messages, plus the lock-guarded `DecodedFrames` the frame
loader fills and `_go_to` reads (a frame already decoded is drawn without a thread hop).

Stale answers:
- a decoded frame is shown unless it is from another video or older than the frame on screen
  (during playback every newer frame is worth showing; the loader itself skips to the newest
  request, so the last frame asked for is always the last one shown);
- a prediction is shown only when it answers the newest prediction request, comes from the
  loaded model version and is for the frame on screen; anything else is dropped.

Edits: every annotation change is a `store.commands.Command`, applied once, then pushed on the
QUndoStack (`undo_stack`); each apply/revert is a store transaction, so an edit is on disk when
the call returns. Store change notifications (from any thread) are re-emitted on the GUI thread
as `events_changed`, `videos_changed`, `models_changed` and `predictions_changed`.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QMetaObject, QObject, Qt, Signal
from PySide6.QtGui import QUndoCommand, QUndoStack

from microau_gui.core.au import DEFAULT_VOCAB
from microau_gui.core.aus import AUCode, Side
from microau_gui.core.errors import UserError
from microau_gui.core.paths import weights_dir
from microau_gui.core.types import FramePrediction
from microau_gui.inference.checkpoints import default_checkpoint
from microau_gui.inference.reference import ReferencePolicy, reference_frame
from microau_gui.session import annotation
from microau_gui.session.agreement import AgreementController
from microau_gui.session.annotation import PendingMark
from microau_gui.session.coder import CoderIdentity
from microau_gui.session.finetune_worker import FinetuneController
from microau_gui.session.frame_loader import DecodedFrames, FrameLoaderWorker
from microau_gui.session.import_worker import import_sheet
from microau_gui.session.inference_worker import InferenceWorker
from microau_gui.session.jobs import JobRunner, RequestIds
from microau_gui.session.messages import (
    AnalysisRequest,
    FrameLoaded,
    FrameRequest,
    ImportRequest,
    JobDone,
    MediaRef,
    ModelLoaded,
    ModelLoadFailed,
    ModelRequest,
    PredictionRequest,
    ProxyReady,
)
from microau_gui.session.models import ModelChoice, model_choices, startup_choice
from microau_gui.session.opening import ensure_video, open_or_create_project, resolve_target
from microau_gui.session.playback import SPEEDS, PlaybackClock
from microau_gui.session.review import ReviewController
from microau_gui.session.seek_proxy import SeekProxyController, auto_proxy_enabled
from microau_gui.session.workers import WorkerThread, user_message
from microau_gui.store.commands import (
    AddEvent,
    AddNote,
    Command,
    DeleteEvent,
    MoveEventBoundary,
    SetEmotion,
    SetEventAUs,
)
from microau_gui.store.predictions import ProbTrace
from microau_gui.store.project import Project
from microau_gui.store.records import Boundary, Change, Event, Video

log = logging.getLogger(__name__)


def _move_order(event: Event, target: dict[Boundary, int]) -> tuple[Boundary, ...]:
    """An order of boundary moves whose every intermediate state keeps onset <= apex <= offset
    (shrinking 2-5-9 to 6-6-6 must move the apex first); the plain order when none does, so the
    store names what is wrong with the target itself."""
    plain = (Boundary.ONSET, Boundary.APEX, Boundary.OFFSET)
    for order in itertools.permutations(plain):
        frames = {b: event.frame(b) for b in plain}
        valid = True
        for boundary in order:
            frames[boundary] = target[boundary]
            valid = valid and frames[Boundary.ONSET] <= frames[Boundary.APEX] <= frames[Boundary.OFFSET]
        if valid:
            return order
    return plain


class StoreUndoCommand(QUndoCommand):
    """One undo step: one or more store commands, applied already when pushed.

    QUndoStack.push calls redo() at once; the commands were applied (and validated) before the
    push, so the first redo() does nothing. Later redo/undo run apply/revert in one transaction.
    """

    def __init__(self, session: ProjectSession, commands: Sequence[Command], text: str):
        super().__init__(text)
        self._session = session
        self._commands = tuple(commands)
        self._pushed = False

    def redo(self) -> None:
        if not self._pushed:
            self._pushed = True
            return
        self._session._run_in_transaction([c.apply for c in self._commands], "Redo")

    def undo(self) -> None:
        self._session._run_in_transaction([c.revert for c in reversed(self._commands)], "Undo")


class ProjectSession(QObject):
    """Everything the window shows and edits, without any widget."""

    project_opened = Signal(object)  # Project
    project_closed = Signal()
    video_opened = Signal(object)  # Video
    position_changed = Signal(int)  # the playhead moved to this frame_idx (requested)
    frame_loaded = Signal(object)  # FrameLoaded accepted for display
    prediction_made = Signal(object)  # FramePrediction of the frame on screen
    prediction_cleared = Signal()  # the frame on screen has no prediction (yet)
    model_loaded = Signal(object)  # ModelLoaded
    model_unloaded = Signal(str)  # why no model runs (one line)
    events_changed = Signal()  # events (or their notes) of the project changed
    videos_changed = Signal()
    models_changed = Signal()
    predictions_changed = Signal(int, int)  # (video_id, model_version_id) cache entries added
    selection_changed = Signal(object)  # Event | None
    pending_mark_changed = Signal(object)  # PendingMark | None
    playing_changed = Signal(bool)
    speed_changed = Signal(float)
    loop_changed = Signal(bool)
    reference_changed = Signal(str, int)  # (policy, reference frame_idx of the current frame)
    analysis_progressed = Signal(object)  # Progress
    analysis_finished = Signal(object)  # JobDone
    import_progressed = Signal(object)  # Progress
    import_finished = Signal(object)  # JobDone
    status_posted = Signal(str)  # a one-line message for the status bar
    failed = Signal(str)  # something went wrong; the window shows it and carries on

    _frame_requested = Signal(object)
    _prediction_requested = Signal(object)
    _model_requested = Signal(object)
    _model_version_id_assigned = Signal(object)
    _project_handed_over = Signal(object)
    _proxy_ready = Signal(object)  # ProxyReady, to the loader and the inference worker
    _store_changed = Signal(object)  # Change, emitted from whichever thread committed

    def __init__(self, device: str = "auto", weights: Path | None = None,
                 parent: QObject | None = None):
        super().__init__(parent)
        self.device = device
        self.weights = weights or weights_dir()
        self.project: Project | None = None
        self.video: Video | None = None
        self.media: MediaRef | None = None
        self.frame_idx = 0  # the playhead (last requested frame)
        self.displayed_frame_idx: int | None = None  # the frame on screen
        self.events: list[Event] = []  # events of the open video, by onset
        self.selected_event: Event | None = None
        self.pending: PendingMark | None = None
        self.model: ModelLoaded | None = None
        self.prediction: FramePrediction | None = None  # of the frame on screen
        self.reference_policy = ReferencePolicy.SLIDING
        self.fixed_reference_idx: int | None = None
        self.undo_stack = QUndoStack(self)
        self.coder = CoderIdentity(self)  # written on every event and note created here
        self.ids = RequestIds()  # the one request-id source of every worker and job
        self._shown_frame_request = 0
        self._latest_prediction_request: PredictionRequest | None = None
        self._held_prediction: FramePrediction | None = None
        self._model_request: ModelRequest | None = None
        self._unsubscribe = None
        self._closed = False

        self.clock = PlaybackClock(self)
        self.clock.frame_reached.connect(self._on_clock_frame_reached)
        self.clock.playing_changed.connect(self.playing_changed)
        self._store_changed.connect(self._on_store_changed)

        self._decoded = DecodedFrames()  # filled by the loader, read here: see session.frame_loader
        self._loader = WorkerThread(FrameLoaderWorker(self._decoded), "frame-loader")
        self._frame_requested.connect(self._loader.worker.load)
        self._loader.worker.frame_loaded.connect(self._on_loader_frame_loaded)
        self._loader.worker.failed.connect(self.failed)
        self._proxy_ready.connect(self._loader.worker.use_proxy)

        self._inference = WorkerThread(InferenceWorker(), "inference", background=True)
        worker = self._inference.worker
        self._prediction_requested.connect(worker.predict)
        self._model_requested.connect(worker.load_model)
        self._model_version_id_assigned.connect(worker.set_model_version_id)
        self._project_handed_over.connect(worker.set_project)
        self._proxy_ready.connect(worker.use_proxy)
        worker.model_loaded.connect(self._on_inference_model_loaded)
        worker.prediction_made.connect(self._on_inference_prediction_made)
        worker.model_load_failed.connect(self._on_inference_model_load_failed)
        worker.failed.connect(self.failed)
        self.analysis = JobRunner.on_worker(self.ids, worker, worker.analyze, worker.cancel_analysis,
                                            worker.analysis_progressed, worker.analysis_finished,
                                            parent=self)
        self.analysis.progressed.connect(self.analysis_progressed)
        self.analysis.finished.connect(self._on_analysis_finished)
        self.importing = JobRunner(self.ids, import_sheet, lambda r: f"importing {r.sheet.name}",
                                   parent=self)
        self.importing.progressed.connect(self.import_progressed)
        self.importing.finished.connect(self._on_importing_finished)
        self.importing.failed.connect(self.failed)
        self.review = ReviewController(self)  # spotting and suggestion queues (session.review)
        self.agreement = AgreementController(self.ids, lambda: self.project, self)
        self.finetune = FinetuneController(self)  # fine-tuning on the coder's corrections
        self.proxies = SeekProxyController(self.ids, self)  # seek proxies of long-GOP videos
        self.proxies.proxy_built.connect(self.use_proxy)
        self.proxies.status_posted.connect(self.status_posted)

    # -- ids and small queries -----------------------------------------------------------------

    def _next_request_id(self) -> int:
        return self.ids.next()

    @property
    def vocab(self) -> tuple[str, ...]:
        """AU codes the panels list: the model's vocabulary, or the default one."""
        return self.model.vocab if self.model is not None else DEFAULT_VOCAB

    @property
    def n_frames(self) -> int:
        return self.video.n_frames if self.video is not None else 0

    @property
    def fps(self) -> float:
        return self.video.fps if self.video is not None else 0.0

    @property
    def playing(self) -> bool:
        return self.clock.playing

    @property
    def speed(self) -> float:
        return self.clock.speed

    @property
    def looping(self) -> bool:
        return self.clock.loop is not None

    @property
    def threads(self) -> list[WorkerThread]:
        return [self._loader, self._inference] + self.importing.threads + (
            self.review.threads + self.agreement.threads + self.finetune.threads
            + self.proxies.threads)

    @property
    def editable(self) -> bool:
        return self.project is not None and not self.project.read_only

    def attempt(self, fn, *args) -> bool:
        """Call a session method for a widget: a UserError becomes `failed`, not an exception."""
        try:
            fn(*args)
        except UserError as err:
            self.failed.emit(str(err))
            return False
        return True

    # -- opening -------------------------------------------------------------------------------

    def open_path(self, path: Path | str) -> None:
        """Open a project, video or image folder (see session.opening for where projects live)."""
        target = resolve_target(path)
        project = open_or_create_project(target.project_path)
        try:
            video = ensure_video(project, target.media_path) if target.media_path else None
        except Exception:
            project.close()
            raise
        self.open_project(project, video.id if video is not None else None)
        if target.media_path is not None:
            self.status_posted.emit(f"project {target.project_path} holds this media's "
                                    "annotations")

    def open_project(self, project: Project, video_id: int | None = None) -> None:
        """Show `project` (the session now owns it and closes it) on a video (default: first)."""
        self.close_project()
        self.project = project
        self._unsubscribe = project.subscribe(self._store_changed.emit)
        self._project_handed_over.emit(project)
        self.project_opened.emit(project)
        self._load_startup_model()
        videos = project.videos()
        if video_id is None and videos:
            video_id = videos[0].id
        if video_id is not None:
            self.open_video(video_id)

    def close_project(self) -> None:
        if self.project is None:
            return
        self.pause()
        self.cancel_analysis()
        self._project_handed_over.emit(None)
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self.undo_stack.clear()
        project, self.project = self.project, None
        self.proxies.close()
        self.video = self.media = None
        self._decoded.clear()  # video ids are per project
        self.events = []
        self.selected_event = None
        self.pending = None
        self.prediction = self._held_prediction = None
        self.displayed_frame_idx = None
        if self._inference.running:
            # The worker drops its connection on its own thread before the file is closed here.
            QMetaObject.invokeMethod(self._inference.worker, "sync",
                                     Qt.ConnectionType.BlockingQueuedConnection)
        project.close()
        self.project_closed.emit()

    def open_video(self, video_id: int) -> None:
        if self.project is None:
            raise UserError("no project is open; open a project, video or image folder first")
        video = self.project.video(video_id)
        if not video.path.exists():
            raise UserError(f"the media of {video.name} is missing ({video.path}); move it back "
                            "or relink the video")
        self.pause()
        self.video = video
        media = MediaRef(video.id, video.path, video.fps, video.n_frames)
        if media != self.media:
            self._decoded.clear()  # a relinked file may differ
            if auto_proxy_enabled():
                self.proxies.ensure(media)
        self.media = media
        self.clock.set_media(video.fps, video.n_frames)
        self.set_loop(False)
        self.events = self.project.events(video.id)
        self.selected_event = None
        self.pending = None
        self.prediction = self._held_prediction = None
        self.displayed_frame_idx = None
        self._shown_frame_request = self.ids.last
        self.video_opened.emit(video)
        self.selection_changed.emit(None)
        self.pending_mark_changed.emit(None)
        self.events_changed.emit()
        self.seek(0)

    # -- the playhead --------------------------------------------------------------------------

    def seek(self, frame_idx: int) -> None:
        """Move the playhead (playback, if on, continues from there)."""
        if self.media is None:
            return
        frame_idx = max(0, min(int(frame_idx), self.n_frames - 1))
        if self.playing:
            self.clock.jump_to(frame_idx)
        self._go_to(frame_idx)

    def _go_to(self, frame_idx: int) -> None:
        """Show the frame (at once when already decoded, else through the loader) and request
        its prediction."""
        self.frame_idx = frame_idx
        requested_at_s = time.perf_counter()
        self.position_changed.emit(frame_idx)
        request = FrameRequest(self._next_request_id(), self.media, frame_idx, requested_at_s)
        hit = self._decoded.get(self.media.video_id, frame_idx)
        if hit is not None:
            rgb, t_s = hit
            self._on_loader_frame_loaded(FrameLoaded(request.request_id, self.media.video_id,
                                                     frame_idx, rgb, t_s, requested_at_s))
            request = replace(request, shown=True)  # the loader only reads ahead
        self._frame_requested.emit(request)
        self._request_prediction()

    def use_proxy(self, media: MediaRef, proxy: Path) -> None:
        """The workers read `media` through its just-built seek proxy from their next read;
        decoded frames stay: the proxy's pixels are the original's."""
        self._proxy_ready.emit(ProxyReady(media, proxy))

    def step(self, n_frames: int) -> None:
        self.pause()
        self.seek(self.frame_idx + n_frames)

    def play(self) -> None:
        if self.media is not None:
            self.clock.play(self.frame_idx)

    def pause(self) -> None:
        self.clock.pause()

    def toggle_play(self) -> None:
        self.pause() if self.playing else self.play()

    def set_speed(self, speed: float) -> None:
        self.clock.set_speed(speed)
        self.speed_changed.emit(speed)

    def change_speed(self, steps: int) -> None:
        """One step slower (-1) or faster (+1) along SPEEDS (1/32x ... 2x)."""
        nearest = min(range(len(SPEEDS)), key=lambda i: abs(SPEEDS[i] - self.speed))
        self.set_speed(SPEEDS[max(0, min(len(SPEEDS) - 1, nearest + steps))])

    def set_loop(self, on: bool) -> None:
        """Ping-pong over the selected event (refused, with a status line, when none is)."""
        if on and self.selected_event is None:
            self.status_posted.emit("select an event to loop over (N / P or the timeline)")
            on = False
        loop = (self.selected_event.onset, self.selected_event.offset) if on else None
        changed = (loop is not None) != self.looping
        self.clock.set_loop(loop)
        if changed:
            self.loop_changed.emit(on)

    def toggle_loop(self) -> None:
        self.set_loop(not self.looping)

    def _on_clock_frame_reached(self, frame_idx: int) -> None:
        if self.media is not None:
            self._go_to(frame_idx)

    def _on_loader_frame_loaded(self, loaded: FrameLoaded) -> None:
        if (self.video is None or loaded.video_id != self.video.id
                or loaded.request_id <= self._shown_frame_request):
            return
        self._shown_frame_request = loaded.request_id
        self.displayed_frame_idx = loaded.frame_idx
        self.frame_loaded.emit(loaded)
        held = self._held_prediction
        if held is not None and held.frame_idx == loaded.frame_idx:
            self._show_prediction(held)
        elif self.prediction is not None and self.prediction.frame_idx != loaded.frame_idx:
            self.prediction = None
            self.prediction_cleared.emit()

    # -- reference frame and predictions -------------------------------------------------------

    def reference_idx(self, frame_idx: int | None = None) -> int:
        """The reference frame the model compares `frame_idx` (default: the playhead) against."""
        frame_idx = self.frame_idx if frame_idx is None else frame_idx
        policy = self.reference_policy
        if policy is ReferencePolicy.ONSET and self.selected_event is not None:
            return reference_frame(frame_idx, policy, self.fps, onset_idx=self.selected_event.onset)
        if policy is ReferencePolicy.FIXED and self.fixed_reference_idx is not None:
            return reference_frame(frame_idx, policy, self.fps,
                                   fixed_idx=self.fixed_reference_idx)
        return reference_frame(frame_idx, ReferencePolicy.SLIDING, self.fps)

    def set_reference_policy(self, policy: ReferencePolicy | str,
                             fixed_idx: int | None = None) -> None:
        self.reference_policy = ReferencePolicy(policy)
        if fixed_idx is not None:
            self.fixed_reference_idx = max(0, min(fixed_idx, self.n_frames - 1))
        if self.reference_policy is ReferencePolicy.FIXED and self.fixed_reference_idx is None:
            self.fixed_reference_idx = self.frame_idx
        self._request_prediction()

    def _request_prediction(self) -> None:
        if self.media is None:
            return
        reference_idx = self.reference_idx()
        self.reference_changed.emit(self.reference_policy.value, reference_idx)
        if self.model is None:
            return
        request = PredictionRequest(self._next_request_id(), self.media, self.frame_idx,
                                    reference_idx, self.model.model_version)
        self._latest_prediction_request = request
        self._prediction_requested.emit(request)

    def _on_inference_prediction_made(self, prediction: FramePrediction) -> None:
        latest = self._latest_prediction_request
        if (latest is None or self.model is None or prediction.request_id != latest.request_id
                or prediction.model_version != self.model.model_version
                or latest.media != self.media):
            return
        if prediction.frame_idx == self.displayed_frame_idx:
            self._show_prediction(prediction)
        elif prediction.frame_idx == self.frame_idx:
            self._held_prediction = prediction  # shown as soon as its frame is

    def _show_prediction(self, prediction: FramePrediction) -> None:
        self._held_prediction = None
        self.prediction = prediction
        self.prediction_made.emit(prediction)

    # -- models --------------------------------------------------------------------------------

    def model_choices(self) -> list[ModelChoice]:
        return model_choices(self.project, self.weights)

    def _load_startup_model(self) -> None:
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
            elif self.project is not None:
                self.model = self._adopt(self.model)
            return
        if self.model is not None and choice.name == self.model.model_version:
            self.model = self._adopt(self.model)
            self.model_loaded.emit(self.model)
            return
        self.select_model(choice)

    def select_model(self, choice: ModelChoice) -> None:
        """Load a model version in the inference worker (registering a weights/ checkpoint)."""
        if not choice.available:
            raise UserError(f"the checkpoint of {choice.name} is missing ({choice.checkpoint})")
        request = ModelRequest(self._next_request_id(), choice.checkpoint,
                               choice.model_version_id, self.device)
        self._model_request = request
        self.status_posted.emit(f"loading model {choice.name} ...")
        self._model_requested.emit(request)

    def _on_inference_model_loaded(self, loaded: ModelLoaded) -> None:
        if self._model_request is None or loaded.request_id != self._model_request.request_id:
            return
        loaded = self._adopt(loaded)
        self.model = loaded
        self.prediction = self._held_prediction = None
        self.prediction_cleared.emit()
        self.model_loaded.emit(loaded)
        self.status_posted.emit(f"model {loaded.model_version} running on {loaded.device.upper()}")
        self._request_prediction()

    def crop_size_px(self) -> int | None:
        """Side of the model's aligned input crop (from its model card), for the face-crop view."""
        if self.model is None:
            return None
        return int(self.model.card.image_size)

    def _adopt(self, loaded: ModelLoaded) -> ModelLoaded:
        """The loaded model under the open project's version id, registering it (and making it
        the active version) when the project is writable, so its predictions are cached."""
        version_id = None
        if self.project is not None:
            models = self.project.models
            if not self.editable:
                version = models.find(loaded.model_version)
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

    def _on_inference_model_load_failed(self, failure: ModelLoadFailed) -> None:
        if self._model_request is not None and failure.request_id == self._model_request.request_id:
            self._model_request = None
            if self.model is None:
                self.model_unloaded.emit(failure.message)
        self.failed.emit(failure.message)

    # -- selection and navigation --------------------------------------------------------------

    def select_event(self, event_id: int | None, seek: bool = True) -> None:
        """Select an event of the open video (None: deselect); optionally go to its onset."""
        event = None
        if event_id is not None:
            event = next((e for e in self.events if e.id == event_id), None)
            if event is None and self.project is not None:
                found = self.project.event(event_id)
                if self.video is None or found.video_id != self.video.id:
                    self.open_video(found.video_id)
                event = next((e for e in self.events if e.id == event_id), None)
        self.selected_event = event
        self.selection_changed.emit(event)
        if self.looping:
            self.set_loop(event is not None)
        if event is not None and seek:
            self.pause()
            self.seek(event.onset)
        elif self.reference_policy is ReferencePolicy.ONSET:
            self._request_prediction()

    def next_event(self, step: int = 1) -> None:
        current = self.selected_event.id if self.selected_event is not None else None
        event = annotation.neighbour_event(self.events, self.frame_idx, step, current)
        if event is None:
            self.status_posted.emit("no next event" if step > 0 else "no previous event")
            return
        self.select_event(event.id)

    # -- marking events (I / A / O) ------------------------------------------------------------

    def mark(self, boundary: Boundary | str) -> None:
        """I, A, O: mark a new event's onset, apex, offset at the playhead.

        I starts a new event (the selection is dropped); A sets its apex; O sets its offset and
        adds the event to the project as one undo step (apex = middle frame when not marked).
        """
        boundary = Boundary(boundary)
        if self.video is None:
            return
        frame_idx = self.frame_idx
        if boundary is Boundary.ONSET:
            self.select_event(None, seek=False)
            self._set_pending(PendingMark(self.video.id, frame_idx))
            self.status_posted.emit(f"onset marked at frame {frame_idx}: go to the apex (A) "
                                    "and the offset (O); Esc cancels")
            return
        pending = self.pending
        if pending is None:
            self.status_posted.emit(f"press I at the onset first (Shift+{boundary.value[0].upper()}"
                                    f" moves the selected event's {boundary.value})")
            return
        if frame_idx < pending.onset:
            self.status_posted.emit(f"the {boundary.value} (frame {frame_idx}) cannot come before "
                                    f"the onset (frame {pending.onset})")
            return
        if boundary is Boundary.APEX:
            self._set_pending(PendingMark(pending.video_id, pending.onset, frame_idx))
            self.status_posted.emit(f"apex marked at frame {frame_idx}: go to the offset (O)")
            return
        apex = pending.apex if pending.apex is not None else (pending.onset + frame_idx) // 2
        if apex > frame_idx:
            self.status_posted.emit(f"the offset (frame {frame_idx}) cannot come before the apex "
                                    f"(frame {apex})")
            return
        command = AddEvent(pending.video_id, pending.onset, apex, frame_idx, coder=self.coder.name)
        if self.push([command]):
            self._set_pending(None)
            self._refresh_events()
            self.select_event(command.event_id, seek=False)
            # replaces "apex marked ... go to the offset", which would otherwise stay up
            self.status_posted.emit(f"event {command.event_id} added (frames {pending.onset}-"
                                    f"{apex}-{frame_idx}): code its AUs with the digit keys, "
                                    "or C to type them")

    def cancel_mark(self) -> None:
        """Esc: drop a half-marked event, else deselect."""
        if self.pending is not None:
            self._set_pending(None)
            self.status_posted.emit("marking cancelled")
        elif self.selected_event is not None:
            self.select_event(None, seek=False)

    def _set_pending(self, pending: PendingMark | None) -> None:
        self.pending = pending
        self.pending_mark_changed.emit(pending)

    def move_selected_boundary(self, boundary: Boundary | str) -> None:
        """Shift+I / Shift+A / Shift+O: move the selected event's boundary to the playhead."""
        if self.selected_event is None:
            self.status_posted.emit("select an event first (N / P, the timeline or the browser)")
            return
        self.move_boundary(self.selected_event.id, boundary, self.frame_idx)

    # -- edits ---------------------------------------------------------------------------------

    def push(self, commands: Sequence[Command], text: str | None = None) -> bool:
        """Apply store commands (one transaction) and push them as ONE undo step.

        Returns False (after posting the reason) when the project refused them.
        """
        if self.project is None:
            self.failed.emit("no project is open")
            return False
        if not self._run_in_transaction([c.apply for c in commands], "Edit refused"):
            return False
        self.undo_stack.push(StoreUndoCommand(self, commands, text or commands[-1].name))
        return True

    def _run_in_transaction(self, steps, what: str) -> bool:
        try:
            with self.project.transaction():
                for step in steps:
                    step(self.project)
        except UserError as err:
            self.failed.emit(f"{what}: {err}")
            return False
        except Exception as err:  # never lose the session over one edit; the store rolled back
            log.exception("%s failed", what)
            self.failed.emit(f"{what}: {user_message(err)}")
            return False
        return True

    def move_boundary(self, event_id: int, boundary: Boundary | str, frame_idx: int) -> bool:
        return self.push([MoveEventBoundary(event_id, boundary, int(frame_idx))])

    def move_event(self, event_id: int, onset: int, apex: int, offset: int) -> bool:
        """Set all three boundaries of an event as one undo step (a span dragged on the timeline)."""
        event = self.project.event(event_id)
        target = {Boundary.ONSET: onset, Boundary.APEX: apex, Boundary.OFFSET: offset}
        order = _move_order(event, target)
        commands = [MoveEventBoundary(event_id, b, int(target[b])) for b in order
                    if event.frame(b) != target[b]]
        if not commands:
            return True
        name = commands[0].name if len(commands) == 1 else f"Move event {event_id}"
        return self.push(commands, name)

    def _selected_aus(self) -> tuple[AUCode, ...] | None:
        if self.selected_event is None:
            self.status_posted.emit("select an event first (mark one with I / A / O, or N / P)")
            return None
        return self.selected_event.aus

    def set_selected_aus(self, aus: Sequence[AUCode]) -> bool:
        if self.selected_event is None:
            return False
        return self.push([SetEventAUs(self.selected_event.id, aus)])

    def toggle_au(self, code: str) -> None:
        aus = self._selected_aus()
        if aus is not None:
            self.set_selected_aus(annotation.toggle_au(aus, code))

    def toggle_digit(self, digit: str) -> None:
        """Digit keys: toggle the digit's AU (see session.annotation.digit_aus)."""
        code = annotation.digit_aus(self.vocab).get(digit)
        if code is not None:
            self.toggle_au(code)

    def set_au_side(self, code: str, side: Side) -> None:
        aus = self._selected_aus()
        if aus is not None:
            self.set_selected_aus(annotation.with_au_side(aus, code, side))

    def set_au_intensity(self, code: str, intensity: str | None) -> None:
        aus = self._selected_aus()
        if aus is not None:
            self.set_selected_aus(annotation.with_au_intensity(aus, code, intensity))

    def set_emotion(self, emotion: str | None) -> None:
        if self.selected_event is not None and (emotion or None) != self.selected_event.emotion:
            self.push([SetEmotion(self.selected_event.id, emotion)])

    def add_note(self, text: str) -> None:
        if not text.strip():
            return
        if self.selected_event is not None:
            self.push([AddNote(text, event_id=self.selected_event.id, author=self.coder.name)])
        elif self.video is not None:
            self.push([AddNote(text, video_id=self.video.id, frame_idx=self.frame_idx,
                               author=self.coder.name)])

    def delete_selected_event(self) -> None:
        if self.selected_event is not None:
            event_id = self.selected_event.id
            if self.push([DeleteEvent(event_id)]):
                self.select_event(None, seek=False)

    # -- store notifications -------------------------------------------------------------------

    def _on_store_changed(self, change: Change) -> None:
        if self.project is None:
            return
        if change.events:
            self._refresh_events()
            self.events_changed.emit()
        if change.videos or change.subjects:
            self.videos_changed.emit()
        if change.models:
            self.models_changed.emit()
        for video_id, model_version_id in sorted(change.predictions):
            self.predictions_changed.emit(video_id, model_version_id)

    def _refresh_events(self) -> None:
        self.events = self.project.events(self.video.id) if self.video is not None else []
        if self.selected_event is not None:
            fresh = next((e for e in self.events if e.id == self.selected_event.id), None)
            if fresh != self.selected_event:
                self.selected_event = fresh
                self.selection_changed.emit(fresh)
                if self.looping:
                    self.set_loop(fresh is not None)

    def trace(self) -> ProbTrace | None:
        """Cached probabilities of the open video under the loaded model (timeline lanes)."""
        if (self.project is None or self.video is None or self.model is None
                or self.model.model_version_id is None):
            return None
        return self.project.predictions.probs(self.video.id, self.model.model_version_id)

    def cooccurrence(self):
        """P(AU_j | AU_i) over every event of the project, in the panel vocabulary."""
        events = self.project.events() if self.project is not None else []
        return annotation.cooccurrence(events, self.vocab)

    # -- long jobs -----------------------------------------------------------------------------

    def analyze_video(self, every: int = 1) -> None:
        """Predict every `every`-th frame of the open video in the background (cached)."""
        if self.media is None or self.model is None:
            raise UserError("open a video and load a model before analysing")
        self.analysis.submit(AnalysisRequest(
            self.media, max(1, every), self.reference_policy.value, self.fixed_reference_idx,
            self.model.model_version, events=tuple((e.onset, e.offset) for e in self.events)),
            replace=True)

    def cancel_analysis(self) -> None:
        self.analysis.cancel()

    def _on_analysis_finished(self, done: JobDone) -> None:
        self.analysis_finished.emit(done)
        self.status_posted.emit(done.summary)

    def import_dataset(self, kind: str, sheet: Path, media_root: Path, project_path: Path,
                       coder: str = "", fps: float | None = None) -> None:
        """Import a coding sheet in a worker thread; the project opens when it is done.

        fps: frame rate of image-folder clips (CASME II and SAMM record at 200 fps; image files
        store none, and the media layer would otherwise assume its default).
        """
        self.importing.submit(ImportRequest(kind, Path(sheet), Path(media_root), Path(project_path),
                                            coder, fps),
                              busy="an import is already running; wait for it or cancel it")

    def cancel_import(self) -> None:
        self.importing.cancel()

    def _on_importing_finished(self, done: JobDone) -> None:
        self.import_finished.emit(done)
        if not done.failed:
            self.status_posted.emit(done.summary)
            self.open_path(done.result)

    # -- shutdown ------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop playback and every worker, join their threads, close the project."""
        if self._closed:
            return
        self._closed = True
        self.clock.pause()
        self.importing.close()
        self.review.close()
        self.finetune.close()
        self.close_project()
        self.agreement.close()
        self.analysis.close()
        for thread in self.threads:
            thread.stop()
