"""The open project as one facade over the session's parts: what the window talks to.

Owns: `ProjectSession`. May import the session's parts (playhead, model_slot, annotating), its
controllers (review, agreement, finetune_worker, seek_proxy), context, facade, jobs, messages,
opening, coder and the import job, inference's reference policy, store, core and PySide6.QtCore.
Never imports gui or widgets.

The facade keeps the public API the window always used; the work is done by the parts, each a
QObject testable without a window:
- `playhead` (session.playhead): the open media, the playhead, playback, the frame loader thread;
- `models` (session.model_slot): the model, predictions of the frame on screen, the reference
  policy, the inference thread and the analysis job;
- `annotator` (session.annotating): events, selection, I/A/O marking and the undoable edits;
- controllers with a narrow `SessionContext`: `review`, `agreement`, `finetune`, `proxies`;
- the import job (`importing`); every background job is a `session.jobs.JobRunner` drawing its
  request ids from the one `ids` source.
What is left here is what spans parts: opening and closing a project or video, selecting an
event (it may open another video, move the playhead, re-aim the reference and the loop), and the
store's change notifications, re-emitted on the GUI thread as `events_changed`,
`videos_changed`, `models_changed` and `predictions_changed`.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal

from microau_gui.core.errors import UserError
from microau_gui.core.paths import weights_dir
from microau_gui.inference.reference import ReferencePolicy
from microau_gui.session import annotation
from microau_gui.session.agreement import AgreementController
from microau_gui.session.annotating import Annotator
from microau_gui.session.coder import CoderIdentity
from microau_gui.session.context import SessionContext
from microau_gui.session.facade import forward as _forward
from microau_gui.session.finetune_worker import FinetuneController
from microau_gui.session.interchange import InterchangeController
from microau_gui.session.import_worker import import_sheet
from microau_gui.session.jobs import JobRunner, RequestIds
from microau_gui.session.messages import ImportRequest, JobDone, MediaRef
from microau_gui.session.model_slot import ModelSlot
from microau_gui.session.numbering import FrameNumbering
from microau_gui.session.opening import ensure_video, open_or_create_project, resolve_target
from microau_gui.session.playhead import Playhead
from microau_gui.session.review import ReviewController
from microau_gui.session.seek_proxy import SeekProxyController, auto_proxy_enabled
from microau_gui.session.workers import WorkerThread
from microau_gui.store.predictions import ProbTrace
from microau_gui.store.project import Project
from microau_gui.store.records import Boundary, Change, Video


class ProjectSession(QObject):
    """Everything the window shows and edits, without any widget."""

    project_opened = Signal(object)  # Project
    project_closed = Signal()
    video_opened = Signal(object)  # Video
    position_changed = Signal(int)  # the playhead moved to this frame_idx (requested)
    frame_loaded = Signal(object)  # FrameLoaded accepted for display
    prediction_made = Signal(object)  # FramePrediction of the frame on screen
    prediction_cleared = Signal()  # no prediction to draw at all (another model or video)
    prediction_kept = Signal(object)  # FramePrediction of an earlier frame, drawn faded
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
    frame_warmed = Signal(int)  # a frame asked for by `reference_pixels` is decoded
    analysis_progressed = Signal(object)  # Progress
    analysis_finished = Signal(object)  # JobDone
    import_progressed = Signal(object)  # Progress
    import_finished = Signal(object)  # JobDone, result: the project path (None: failed)
    status_posted = Signal(str)  # a one-line message for the status bar
    failed = Signal(str)  # something went wrong; the window shows it and carries on

    _store_changed = Signal(object)  # Change, emitted from whichever thread committed

    def __init__(self, device: str = "auto", weights: Path | None = None,
                 parent: QObject | None = None):
        super().__init__(parent)
        self.ids = RequestIds()  # the one request-id source of every worker and job
        self.project: Project | None = None
        self.video: Video | None = None
        self._unsubscribe = None
        self._closed = False
        self.loop_range: tuple[int, int] | None = None  # the A-B range L loops over, if set
        self._loop_a: int | None = None  # A marked, B not yet
        self._store_changed.connect(self._on_store_changed)

        self.playhead = Playhead(self.ids, self)
        # Forwarded before the model slot connects: the frame is drawn before its prediction.
        for name in ("position_changed", "frame_loaded", "playing_changed", "speed_changed",
                     "loop_changed", "frame_warmed", "failed"):
            getattr(self.playhead, name).connect(getattr(self, name))
        self.models = ModelSlot(self.ids, device, weights or weights_dir(), self.playhead,
                                lambda: self.project, self._selected_onset, self)
        for name in ("model_loaded", "model_unloaded", "prediction_made", "prediction_cleared",
                     "prediction_kept", "reference_changed", "status_posted", "failed"):
            getattr(self.models, name).connect(getattr(self, name))
        self.models.analysis.progressed.connect(self.analysis_progressed)
        self.models.analysis.finished.connect(self._on_analysis_finished)
        self.coder = CoderIdentity(self)  # written on every event and note created here
        self.numbering = FrameNumbering(lambda: self.project, self)  # the numbers views show
        # ... and the workers' messages: each request carries the labels of its time
        self.numbering.changed.connect(self._on_numbering_changed)
        self.annotator = Annotator(lambda: self.project, lambda: self.video,
                                   lambda: self.playhead.frame_idx, lambda: self.models.vocab,
                                   lambda: self.coder.name, self, lambda: self.coder.blind)
        self.annotator.frame_label = lambda frame_idx: self.numbering.labels.label(frame_idx)
        for name in ("selection_changed", "pending_mark_changed", "status_posted", "failed"):
            getattr(self.annotator, name).connect(getattr(self, name))
        self.importing = JobRunner(self.ids, import_sheet, lambda r: f"importing {r.sheet.name}",
                                   parent=self)
        self.importing.progressed.connect(self.import_progressed)
        self.importing.finished.connect(self._on_importing_finished)
        self.importing.failed.connect(self.failed)

        context = SessionContext(
            self.ids, lambda: self.project, lambda: self.video, self.playhead, self.models,
            self.annotator, self.coder, self.open_video, self.select_event, self.status_posted.emit,
            self.failed.emit, self.video_opened, self.project_closed, self.events_changed)
        self.review = ReviewController(context, self)  # spotting and suggestion queues
        self.agreement = AgreementController(self.ids, lambda: self.project, self)
        self.finetune = FinetuneController(context, self)  # fine-tuning on the corrections
        self.interchange = InterchangeController(context, self)  # File > Import / Export
        self.interchange.project_changed.connect(self._store_changed)  # its job's own connection
        self.proxies = SeekProxyController(self.ids, self)  # seek proxies of long-GOP videos
        self.proxies.proxy_built.connect(self.playhead.use_proxy)
        self.proxies.status_posted.connect(self.status_posted)

    # -- what the parts hold, under the names the window always used ---------------------------

    media = property(lambda self: self.playhead.media)
    frame_idx = property(lambda self: self.playhead.frame_idx, doc="the playhead")
    displayed_frame_idx = property(lambda self: self.playhead.displayed_frame_idx)
    n_frames = property(lambda self: self.playhead.n_frames)
    fps = property(lambda self: self.playhead.fps)
    playing = property(lambda self: self.playhead.playing)
    speed = property(lambda self: self.playhead.speed)
    looping = property(lambda self: self.playhead.looping)
    model = property(lambda self: self.models.model)
    prediction = property(lambda self: self.models.prediction, doc="of the frame on screen")
    shown_prediction = property(lambda self: self.models.shown,
                                doc="the one drawn: `prediction`, or an earlier frame's, faded")
    vocab = property(lambda self: self.models.vocab,
                     doc="AU codes the panels list: the model's vocabulary, or the default one")
    device = property(lambda self: self.models.device)
    weights = property(lambda self: self.models.weights)
    reference_policy = property(lambda self: self.models.reference_policy)
    fixed_reference_idx = property(lambda self: self.models.fixed_reference_idx)
    events = property(lambda self: self.annotator.events, doc="of the open video, by onset")
    selected_event = property(lambda self: self.annotator.selected_event)
    pending = property(lambda self: self.annotator.pending)
    undo_stack = property(lambda self: self.annotator.undo_stack)
    frames = property(lambda self: self.numbering.labels,
                      doc="numbers and clock of the open video's frames (session.numbering)")

    # the playhead (session.playhead)
    seek = _forward("playhead.seek")  # playback, if on, continues from there
    step = _forward("playhead.step")
    play = _forward("playhead.play")
    pause = _forward("playhead.pause")
    toggle_play = _forward("playhead.toggle_play")
    set_speed = _forward("playhead.set_speed")
    change_speed = _forward("playhead.change_speed")  # -1 / +1 along SPEEDS
    use_proxy = _forward("playhead.use_proxy")
    # the model (session.model_slot)
    reference_idx = _forward("models.reference_idx")
    reference_pixels = _forward("models.reference_pixels")  # (idx, RGB | None) of the frame on screen
    set_reference_policy = _forward("models.set_reference_policy")
    model_choices = _forward("models.model_choices")
    select_model = _forward("models.select_model")
    crop_size_px = _forward("models.crop_size_px")
    cancel_analysis = _forward("models.analysis.cancel")
    distil_student = _forward("models.distil_student")  # weights/NAME, a JobRunner job
    cancel_distillation = _forward("models.distillation.cancel")
    use_student = _forward("models.use_student")
    # edits (session.annotating): each one undo step
    push = _forward("annotator.push")
    move_selected_boundary = _forward("annotator.move_selected_boundary")
    move_boundary = _forward("annotator.move_boundary")
    move_event = _forward("annotator.move_event")
    set_selected_aus = _forward("annotator.set_selected_aus")
    toggle_au = _forward("annotator.toggle_au")
    toggle_digit = _forward("annotator.toggle_digit")
    set_au_side = _forward("annotator.set_au_side")
    set_au_intensity = _forward("annotator.set_au_intensity")
    set_emotion = _forward("annotator.set_emotion")
    set_au_span = _forward("annotator.set_au_span")  # an AU timed apart from its event
    move_au_boundary = _forward("annotator.move_au_boundary")
    edit_event = _forward("annotator.edit_event")  # the event table's edits
    delete_events = _forward("annotator.delete_events")
    shuttle = _forward("playhead.shuttle")  # jog/shuttle: -1 back, 0 pause, +1 forward
    add_note = _forward("annotator.add_note")
    cooccurrence = _forward("annotator.cooccurrence")
    cancel_import = _forward("importing.cancel")

    @property
    def threads(self) -> list[WorkerThread]:
        return ([self.playhead.loader] + self.models.threads + self.importing.threads
                + self.review.threads + self.agreement.threads + self.finetune.threads
                + self.proxies.threads + self.interchange.threads)

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
        self.models.hand_over(project)
        self.project_opened.emit(project)
        self.models.load_startup_model()
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
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self.annotator.undo_stack.clear()
        project, self.project = self.project, None
        self.proxies.close()
        self.video = None
        self.numbering.set_video(None)
        self.playhead.clear()
        self.annotator.reset([])
        self.models.forget_prediction()
        # The worker drops its connection on its own thread before the file is closed here.
        self.models.hand_over(None)
        project.close()
        self.project_closed.emit()

    def _on_numbering_changed(self) -> None:
        self.playhead.frame_label = self.numbering.labels.label  # immutable: safe on any thread

    def open_video(self, video_id: int) -> None:
        if self.project is None:
            raise UserError("no project is open; open a project, video or image folder first")
        video = self.project.video(video_id)
        if not video.path.exists():
            raise UserError(f"the media of {video.name} is missing ({video.path}); move it back "
                            "or relink the video (File > Relink video…)")
        self.video = video
        media = MediaRef(video.id, video.path, video.fps, video.n_frames)
        if self.playhead.set_media(media) and auto_proxy_enabled():
            self.proxies.ensure(media)
        self.loop_range = self._loop_a = None  # frames of another video
        self.set_loop(False)
        self.annotator.reset(self.project.events(video.id))
        self.models.forget_prediction()
        self.numbering.set_video(video)  # before the views hear of the video
        self.video_opened.emit(video)
        self.selection_changed.emit(None)
        self.pending_mark_changed.emit(None)
        self.events_changed.emit()
        self.seek(0)

    def add_video(self, path: Path | str) -> None:
        """Add a video or image folder to the open project (as its own subject until one is
        assigned) and open it."""
        if not self.editable:
            raise UserError("open a writable project first; adding a video changes the project")
        video = ensure_video(self.project, Path(path))
        self.videos_changed.emit()
        self.open_video(video.id)

    def missing_videos(self) -> list[Video]:
        """The project's videos whose media file or folder is not where the project says."""
        return [v for v in self.project.videos() if not v.path.exists()] if self.project else []

    def relink_video(self, video_id: int, path: Path | str) -> None:
        """Point a video whose media moved at its new place (the same media: its content hash
        is compared) and open it there."""
        if not self.editable:
            raise UserError("open a writable project first; relinking changes the project file")
        video = self.project.relink_video(video_id, Path(path))
        self.status_posted.emit(f"relinked {video.name} to {video.path}")
        self.open_video(video_id)

    # -- the playhead (session.playhead) --------------------------------------------------------

    def set_loop(self, on: bool) -> None:
        """Ping-pong over the A-B range when one is set, else over the selected event (refused,
        with a status line, when there is neither)."""
        event = self.selected_event
        span = self.loop_range or ((event.onset, event.offset) if event is not None else None)
        if on and span is None:
            self.status_posted.emit("select an event to loop over (N / P or the timeline), or "
                                    "mark a range with Ctrl+[ and Ctrl+]")
            on = False
        self.playhead.set_loop(span if on else None)

    def mark_loop_point(self, point: str) -> None:
        """Ctrl+[ marks A, Ctrl+] marks B of the range to loop over (any range, not only an
        event's); B before A swaps them. Once both are set the loop (L) runs over A-B."""
        if self.video is None:
            return
        frame_idx = self.frame_idx
        if point == "a":
            self._loop_a = frame_idx
            b = self.loop_range[1] if self.loop_range is not None else None
        else:
            b, frame_idx = frame_idx, self._loop_a
            if frame_idx is None and self.loop_range is not None:
                frame_idx = self.loop_range[0]
        if frame_idx is None or b is None:
            self.status_posted.emit(f"loop A at frame {self.frames.label(frame_idx)}: go to B "
                                    "and press Ctrl+]"
                                    if point == "a" else "mark A first (Ctrl+[)")
            return
        self.loop_range = (min(frame_idx, b), max(frame_idx, b))
        self._loop_a = None
        self.status_posted.emit(f"loop range A-B = frames {self.frames.label(*self.loop_range)}: "
                                "L loops over it, Ctrl+Shift+L clears it")
        if self.looping:
            self.set_loop(True)

    def clear_loop_range(self) -> None:
        """Ctrl+Shift+L: forget the A-B range; L loops over the selected event again."""
        self.loop_range = None
        self._loop_a = None
        if self.looping:
            self.set_loop(self.selected_event is not None)
        self.status_posted.emit("loop range cleared")

    def toggle_loop(self) -> None:
        self.set_loop(not self.looping)

    # -- the model (session.model_slot) ---------------------------------------------------------

    def trace(self) -> ProbTrace | None:
        """Cached probabilities of the open video under the loaded model (timeline lanes)."""
        return self.models.trace(self.video.id if self.video is not None else None)

    def analyze_video(self, every: int = 1) -> None:
        """Predict every `every`-th frame of the open video in the background (cached)."""
        self.models.analyze(every, tuple((e.onset, e.offset) for e in self.events),
                            tuple(e.apex for e in self.events))

    def _on_analysis_finished(self, done: JobDone) -> None:
        self.analysis_finished.emit(done)
        self.status_posted.emit(done.summary)

    # -- selection and navigation --------------------------------------------------------------

    def _selected_onset(self) -> int | None:
        event = self.annotator.selected_event
        return event.onset if event is not None else None

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
        self.annotator.set_selected(event)
        if self.looping and self.loop_range is None:
            self.set_loop(event is not None)
        if event is not None and seek:
            self.pause()
            self.seek(event.onset)
        elif self.reference_policy is ReferencePolicy.ONSET:
            self.models.request_prediction()

    def next_event(self, step: int = 1) -> None:
        current = self.selected_event.id if self.selected_event is not None else None
        event = annotation.neighbour_event(self.events, self.frame_idx, step, current)
        if event is None:
            self.status_posted.emit("no next event" if step > 0 else "no previous event")
            return
        self.select_event(event.id)

    # -- marking and edits (session.annotating) ------------------------------------------------

    def mark(self, boundary: Boundary | str) -> None:
        """I, A, O: mark a new event's onset, apex, offset at the playhead.

        I starts a new event (the selection is dropped); A sets its apex; O sets its offset and
        adds the event to the project as one undo step (apex = middle frame when not marked).
        """
        step = self.annotator.mark_step(boundary)
        if step is None:
            return
        if step.deselect:
            self.select_event(None, seek=False)
        event_id = self.annotator.apply_mark(step)
        if event_id is not None:
            self._refresh_events()
            self.select_event(event_id, seek=False)
            # replaces "apex marked ... go to the offset", which would otherwise stay up
            onset, apex, offset = step.new_event
            frames = self.frames.label(onset, apex, offset)
            self.status_posted.emit(f"event {event_id} added (frames {frames}): "
                                    "code its AUs with the digit keys, or C to type them")

    def cancel_mark(self) -> None:
        """Esc: drop a half-marked event, else deselect."""
        if not self.annotator.cancel_mark() and self.selected_event is not None:
            self.select_event(None, seek=False)

    def delete_selected_event(self) -> None:
        if self.annotator.delete_selected_event():
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
        if self.annotator.refresh_events() and self.looping and self.loop_range is None:
            self.set_loop(self.selected_event is not None)

    # -- import --------------------------------------------------------------------------------

    def import_dataset(self, kind: str, sheet: Path, media_root: Path, project_path: Path,
                       coder: str = "", fps: float | None = None) -> None:
        """Import a coding sheet in a worker thread; the project opens when it is done.

        fps: frame rate of image-folder clips (CASME II and SAMM record at 200 fps; image files
        store none, and the media layer would otherwise assume its default).
        """
        self.importing.submit(ImportRequest(kind, Path(sheet), Path(media_root), Path(project_path),
                                            coder, fps),
                              busy="an import is already running; wait for it or cancel it")

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
        self.pause()
        self.importing.close()
        self.interchange.close()
        self.review.close()
        self.finetune.close()
        self.close_project()
        self.agreement.close()
        self.proxies.close()
        self.models.close()
        self.playhead.close()

