"""Review queues: spotted candidates and review suggestions, ranked, walked with single keys.

Owns: `ReviewController` (the session's `review`; the plain queue values are in
`session.review_items`). May import store (commands, records), core, the session's context,
messages, jobs, workers, spot_worker and review_items, and PySide6.QtCore; never gui. It
receives a `SessionContext`, not the session.

Our specification of the spotting review (issue #8 part 3):
- "Spot this video" runs `spotting.spot_media` as a background job (`session.spot_worker.spot`)
  with progress and cancel. Its candidates are ranked by score (highest first) and kept in the
  project file (table `review_candidates`, `store.review_queue`) with the coder's reject marks,
  so an hour-long video is spotted once; reopening the project shows the same queue.
- Going to an item opens its video and puts the playhead on its apex, where the AU panel shows
  the model's prediction for it (under the window's reference policy).
- Accept turns the candidate into an event through ONE `AcceptPrediction` command (one undo
  step): onset, apex and offset of the candidate, expression type micro/macro from its length,
  and the AUs whose probability at the apex is >= `AU_THRESHOLD` in the model's prediction of
  that frame, which is the prediction on screen. When that prediction has not arrived yet, the
  accept waits for it (the status bar says so) and completes when it does. Without a model the
  event gets no AUs and the status bar says so. The new event is selected, so its AUs and
  boundaries are edited at once with the usual keys; the queue stays on it until Next.
- Reject marks the item and moves to the next pending item. An item accepted and then undone
  (Ctrl+Z) is pending again: an item counts as accepted only while its event exists.

Our specification of the suggestions queue (issue #7 part 4), including what Y and X mean
on a suggestion, is in `session.review_items`.
"""

from __future__ import annotations

from collections.abc import Iterable

from PySide6.QtCore import QObject, Signal

from microau_gui.core.aus import AUCode
from microau_gui.core.errors import UserError
from microau_gui.core.types import FramePrediction
from microau_gui.session.context import SessionContext
from microau_gui.session.jobs import JobRunner
from microau_gui.session.messages import JobDone, SpotRequest, SuggestRequest
from microau_gui.session.review_items import (
    CANDIDATES,
    SUGGESTIONS,
    ItemStatus,
    ReviewItem,
    ReviewQueue,
    accepted_aus,
    accepted_event,
    candidate_item,
    load_candidates,
    save_candidates,
    suggest,
)
from microau_gui.session.spot_worker import spot
from microau_gui.session.workers import WorkerThread
from microau_gui.store.commands import AcceptPrediction


__all__ = ["CANDIDATES", "SUGGESTIONS", "ItemStatus", "ReviewController"]


class ReviewController(QObject):
    """The session's review queues, the spotting worker and the accept/reject actions."""

    queue_changed = Signal(str)  # a queue's items or marks changed (queue name)
    current_changed = Signal(str, int)  # (queue name, item index) the coder is on
    active_changed = Signal(str)  # the queue the keys act on
    spotting_progressed = Signal(object)  # Progress
    spotting_finished = Signal(object)  # JobDone, result: Spotted
    suggestions_finished = Signal(object)  # JobDone, result: Suggested

    def __init__(self, ctx: SessionContext, parent: QObject | None = None):
        super().__init__(parent)
        self._ctx = ctx
        self.queues = {CANDIDATES: ReviewQueue(CANDIDATES), SUGGESTIONS: ReviewQueue(SUGGESTIONS)}
        self.active = CANDIDATES
        self._spotter = JobRunner(ctx.ids, spot, lambda r: f"spotting {r.media.path.name}", self)
        self._spotter.progressed.connect(self.spotting_progressed)
        self._spotter.finished.connect(self._on_spotter_finished)
        self._spotter.failed.connect(ctx.report_failure)
        self._suggester = JobRunner(ctx.ids, suggest, "suggesting what to review", self)
        self._suggester.finished.connect(self._on_suggester_finished)
        self._suggester.failed.connect(ctx.report_failure)
        self._pending_accept: tuple[str, int] | None = None
        self._candidates_video_id: int | None = None
        self.suggested_for: str | None = None  # model version the suggestions came from
        self.suggestions_note = "no suggestions yet: Review > Suggest what to review"
        ctx.video_opened.connect(self._on_session_video_opened)
        ctx.models.model_loaded.connect(self._on_session_model_loaded)
        ctx.project_closed.connect(self._on_session_project_closed)
        ctx.events_changed.connect(self._on_session_events_changed)
        ctx.models.prediction_made.connect(self._on_session_prediction_made)

    # -- queues --------------------------------------------------------------------------------

    @property
    def video(self):
        """The open video (None: none), whose candidates the timeline lane draws."""
        return self._ctx.video()

    @property
    def queue(self) -> ReviewQueue:
        """The queue the keys act on."""
        return self.queues[self.active]

    def set_active(self, name: str) -> None:
        if name != self.active:
            self.active = name
            self._pending_accept = None
            self.active_changed.emit(name)

    def set_items(self, name: str, items: Iterable[ReviewItem], ranked: bool = False) -> None:
        """Fill a queue (ranked by score unless `ranked` already), make it the active one and go
        to its first item."""
        queue = self.queues[name]
        queue.set_items(items, ranked=ranked)
        self._refresh_live(queue)
        self.queue_changed.emit(name)
        self.set_active(name)
        if queue.items:
            self.go_to(0)

    def _refresh_live(self, queue: ReviewQueue) -> None:
        project = self._ctx.project()
        if project is None or not queue.accepted:
            queue.live_event_ids = set()
            return
        wanted = set(queue.accepted.values())
        queue.live_event_ids = {e.id for e in project.events() if e.id in wanted}

    # -- navigation ----------------------------------------------------------------------------

    def go_to(self, index: int, name: str | None = None) -> None:
        """Make item `index` current: open its video, put the playhead on its apex."""
        if name is not None:
            self.set_active(name)
        queue = self.queue
        if not 0 <= index < len(queue.items):
            return
        item = queue.items[index]
        ctx = self._ctx
        self._pending_accept = None
        queue.current = index
        if ctx.video() is None or ctx.video().id != item.video_id:
            ctx.open_video(item.video_id)
        if item.event_id is not None:
            ctx.select_event(item.event_id, seek=False)
        else:
            ctx.select_event(None, seek=False)
        ctx.playhead.pause()
        ctx.playhead.seek(item.apex)
        self.current_changed.emit(queue.name, index)

    def step(self, step: int) -> None:
        """Next (+1) / previous (-1) item in rank order, whatever its mark."""
        index = self.queue.neighbour(step)
        if index is None:
            self._ctx.post_status(self.empty_text() or
                                            ("last item of the queue" if step > 0
                                             else "first item of the queue"))
            return
        self.go_to(index)

    def empty_text(self, name: str | None = None) -> str | None:
        """Why a queue (default: the active one) is empty, and what to do; None when it is not."""
        name = name or self.active
        if self.queues[name].items:
            return None
        if name == CANDIDATES:
            return "no candidates: spot this video first (Review > Spot micro-expressions)"
        return self.suggestions_note

    def _current_item(self) -> tuple[ReviewQueue, int, ReviewItem] | None:
        queue = self.queue
        empty = self.empty_text()
        if empty is not None:
            self._ctx.post_status(empty)
            return None
        if queue.current is None:
            self.go_to(0)
        return queue, queue.current, queue.items[queue.current]

    # -- accept / reject -----------------------------------------------------------------------

    def reject(self) -> None:
        """Mark the current item rejected and go to the next pending one."""
        found = self._current_item()
        if found is None:
            return
        queue, index, _item = found
        if queue.status(index) is ItemStatus.ACCEPTED:
            self._ctx.post_status(
                f"already accepted as event {queue.accepted[index]}; undo (Ctrl+Z) or delete "
                "the event to reject it")
            return
        self._pending_accept = None
        queue.rejected.add(index)
        self._save(queue)
        self.queue_changed.emit(queue.name)
        following = queue.neighbour(1, pending_only=True)
        if following is None:
            self._ctx.post_status("every item of the queue is decided")
            self.current_changed.emit(queue.name, index)
        else:
            self.go_to(following)

    def accept(self) -> None:
        """Turn the current item into an event (see the module docstring); one undo step."""
        found = self._current_item()
        if found is None:
            return
        queue, index, item = found
        ctx = self._ctx
        if queue.status(index) is ItemStatus.ACCEPTED:
            ctx.post_status(f"already accepted as event {queue.accepted[index]}")
            return
        if not ctx.editable():
            raise UserError("the project is read-only; nothing can be accepted into it")
        if item.event_id is not None:
            self._accept_existing(queue, index, item)
            return
        if ctx.models.model is None:
            self._accept_with(queue, index, item, (), "no model is loaded: accepted without AUs")
            return
        prediction = ctx.models.prediction
        if (ctx.video() is not None and ctx.video().id == item.video_id
                and prediction is not None and prediction.frame_idx == item.apex
                and prediction.model_version == ctx.models.model.model_version):
            self._accept_from(queue, index, item, prediction)
            return
        self._pending_accept = (queue.name, index)
        if ctx.video() is None or ctx.video().id != item.video_id or ctx.playhead.frame_idx != item.apex:
            self.go_to(index)
            self._pending_accept = (queue.name, index)
        ctx.post_status(f"waiting for the model's prediction at the apex (frame "
                                   f"{item.apex}) …")

    def _accept_from(self, queue: ReviewQueue, index: int, item: ReviewItem,
                     prediction: FramePrediction) -> None:
        if not prediction.face_found:
            self._accept_with(queue, index, item, (), "no face found at the apex: accepted "
                              "without AUs")
            return
        self._accept_with(queue, index, item, accepted_aus(item, prediction), None)

    def _accept_with(self, queue: ReviewQueue, index: int, item: ReviewItem,
                     aus: tuple[AUCode, ...], note: str | None) -> None:
        ctx = self._ctx
        self._pending_accept = None
        model = ctx.models.model
        command = AcceptPrediction(accepted_event(
            item, aus, ctx.video().fps if ctx.video() is not None else 0.0,
            model.model_version_id if model is not None else None), coder=ctx.coder.name)
        if not ctx.annotator.push([command]):
            return
        queue.accepted[index] = command.event_id
        queue.rejected.discard(index)
        self._refresh_live(queue)
        self._save(queue)
        self.queue_changed.emit(queue.name)
        ctx.select_event(command.event_id, seek=False)
        event = ctx.project().event(command.event_id)
        text = f"accepted as event {event.id} ({event.aus_text or 'no AUs'})"
        ctx.post_status(f"{text}; {note}" if note else
                        f"{text}: edit it with the AU keys, J for the next item")

    def _accept_existing(self, queue: ReviewQueue, index: int, item: ReviewItem) -> None:
        """An item about an existing event: accepting marks it reviewed (the event as the coder
        left it) and moves to the next undecided item."""
        self._pending_accept = None
        queue.accepted[index] = item.event_id
        queue.rejected.discard(index)
        self._refresh_live(queue)
        self.queue_changed.emit(queue.name)
        following = queue.neighbour(1, pending_only=True)
        if following is None:
            self.current_changed.emit(queue.name, index)
            self._ctx.post_status(f"event {item.event_id} reviewed; every item of the "
                                            "queue is decided")
            return
        self.go_to(following)
        self._ctx.post_status(f"event {item.event_id} reviewed")

    # -- suggestions ---------------------------------------------------------------------------

    def suggest(self) -> None:
        """Fill the SUGGESTIONS queue from the loaded version's cached predictions, in the
        background (see the module docstring); `suggestions_finished` follows."""
        ctx = self._ctx
        project, model = ctx.project(), ctx.models.model
        if project is None:
            raise UserError("open a project first; suggestions come from its analysed videos")
        if model is None or model.model_version_id is None:
            raise UserError("load a model first; suggestions come from its cached predictions")
        self._suggester.submit(SuggestRequest(project.path, model.model_version_id,
                                              model.model_version), replace=True)

    def _on_suggester_finished(self, done: JobDone) -> None:
        model = self._ctx.models.model
        if done.result is not None and model is not None and self._ctx.project() is not None:
            self.suggested_for = model.model_version
            self.suggestions_note = done.result.note
            # suggest's own order, ties included
            self.set_items(SUGGESTIONS, done.result.items, ranked=True)
            self._ctx.post_status(done.summary)
        self.suggestions_finished.emit(done)

    def _on_session_model_loaded(self, loaded) -> None:
        if self.suggested_for is None or loaded.model_version == self.suggested_for:
            return
        self.suggestions_note = (f"the model is now {loaded.model_version}; the suggestions came "
                                 f"from {self.suggested_for}: Review > Suggest what to review again")
        self.suggested_for = None
        queue = self.queues[SUGGESTIONS]
        if self._pending_accept is not None and self._pending_accept[0] == SUGGESTIONS:
            self._pending_accept = None
        queue.set_items(())
        queue.live_event_ids = set()
        self.queue_changed.emit(SUGGESTIONS)

    def _on_session_prediction_made(self, prediction: FramePrediction) -> None:
        pending = self._pending_accept
        if pending is None:
            return
        queue = self.queues[pending[0]]
        index = pending[1]
        item = queue.items[index] if index < len(queue.items) else None
        ctx = self._ctx
        if (item is None or ctx.video() is None or ctx.video().id != item.video_id
                or prediction.frame_idx != item.apex):
            return
        self._accept_from(queue, index, item, prediction)

    # -- spotting ------------------------------------------------------------------------------

    @property
    def spotting(self) -> bool:
        return self._spotter.running

    @property
    def threads(self) -> list[WorkerThread]:
        return self._spotter.threads + self._suggester.threads

    def spot_video(self) -> None:
        """Spot the open video in a worker thread; the candidates queue fills when it ends."""
        ctx = self._ctx
        if ctx.playhead.media is None:
            raise UserError("open a video first; spotting runs on the open video")
        self._spotter.submit(SpotRequest(ctx.playhead.media),
                             busy="spotting is already running; wait for it or cancel it")
        ctx.post_status(f"spotting {ctx.playhead.media.path.name} in the background …")

    def cancel_spotting(self) -> None:
        self._spotter.cancel()

    def _on_spotter_finished(self, done: JobDone) -> None:
        self.spotting_finished.emit(done)
        if done.failed:
            return
        self._ctx.post_status(done.summary)
        if done.cancelled or self._ctx.project() is None:
            return
        spotted = done.result
        items = [candidate_item(spotted.video_id, c) for c in spotted.candidates]
        queue = ReviewQueue(CANDIDATES)
        queue.set_items(items)
        self._save(queue, spotted.video_id)
        video = self._ctx.video()
        if video is not None and video.id == spotted.video_id:
            self._candidates_video_id = spotted.video_id
            self.set_items(CANDIDATES, items)

    # -- persistence of the candidates queue ---------------------------------------------------

    def _save(self, queue: ReviewQueue, video_id: int | None = None) -> None:
        """Keep the candidates and the coder's marks in the project file (not undoable state:
        the marks are the coder's triage, and accepted events are on the undo stack)."""
        project = self._ctx.project()
        video_id = video_id if video_id is not None else self._candidates_video_id
        if queue.name != CANDIDATES or project is None or project.read_only or video_id is None:
            return
        save_candidates(project, video_id, queue)

    def _load_candidates(self, video_id: int) -> None:
        queue = self.queues[CANDIDATES]
        self._candidates_video_id = video_id
        self._pending_accept = None
        load_candidates(self._ctx.project(), video_id, queue)
        self._refresh_live(queue)
        self.queue_changed.emit(CANDIDATES)

    def _on_session_video_opened(self, video) -> None:
        if video.id != self._candidates_video_id:
            self._load_candidates(video.id)

    def _on_session_project_closed(self) -> None:
        self._candidates_video_id = None
        self._pending_accept = None
        self.suggested_for = None
        self.suggestions_note = "no suggestions yet: Review > Suggest what to review"
        for queue in self.queues.values():
            queue.set_items(())
            queue.live_event_ids = set()
            self.queue_changed.emit(queue.name)

    def _on_session_events_changed(self) -> None:
        for queue in self.queues.values():
            if queue.accepted:
                before = queue.live_event_ids
                self._refresh_live(queue)
                if queue.live_event_ids != before:
                    self.queue_changed.emit(queue.name)

    def close(self) -> None:
        """Cancel and join the spotting and suggestion threads."""
        self._spotter.close()
        self._suggester.close()
