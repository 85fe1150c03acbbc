"""Review queues: spotted candidates and review suggestions, ranked, walked with single keys.

Owns: `ReviewController` (the session's `review`; the plain queue values are in
`session.review_items`). May import store (commands, records), core, the session's messages,
jobs, workers and review_items, and PySide6.QtCore; never gui.

Our specification of the spotting review (issue #8 part 3):
- "Spot this video" runs `spotting.spot_media` as a background job (`session.spot_worker.spot`) with progress and
  cancel. Its candidates are ranked by score (highest first) and kept in the project file
  (table `review_candidates`, `store.review_queue`) with the coder's reject marks, so an
  hour-long video is spotted once; reopening the project shows the same queue.
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

Our specification of the suggestions queue (issue #7 part 4, "Suggest what to review"):
- `suggest()` ranks the loaded (active) model version's cached predictions against the coded
  events with `inference.suggest.suggest_for_project` and fills the SUGGESTIONS queue, best
  first. It reads only what an analysis cached; when that version has none, the queue stays
  empty and says so ("analyse the videos first"). The queue is emptied when another version is
  loaded, since its suggestions came from the previous one's predictions.
- Each suggestion is an item about one frame (the playhead goes there) and one AU. A suggestion
  about a coded event, or a frame inside one (the event whose apex is nearest), carries that
  event: going to it selects the event. Otherwise the item spans the model's firing around the
  frame (`firing_span`: the run of cached frames where the AU stays at least as high as at the
  suggested frame, capped at the decision threshold), a possible uncoded expression.
- What Y means, decided as an expert coder reads a suggestion ("the model thinks X here"):
  * about an existing event, Y says "I have reviewed this event": the coder corrects the event
    first with the usual keys (it is selected when the item is shown), then Y marks the item
    reviewed (no edit of its own, nothing to undo) and moves to the next undecided item;
  * about a frame outside every coded event, Y says "yes, there is an expression here": it
    becomes an accepted event exactly as a spotted candidate does (one undoable
    `AcceptPrediction`, the AUs of the model's prediction at the frame plus the suggested AU,
    which the coder has just confirmed; micro or macro by length, `MICRO_MAX_S`), selected so
    it is edited at once; the queue stays on it until Next.
  X says "the model is wrong here / nothing to do": the item is marked rejected, the project is
  not touched, and the queue moves to the next undecided item. Marks last until the next
  Suggest (they are not stored: suggestions are recomputed from the current predictions).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal

from microau_gui.core.au import au_number
from microau_gui.core.aus import AUCode
from microau_gui.core.errors import UserError
from microau_gui.core.types import FramePrediction
from microau_gui.session.jobs import JobRunner
from microau_gui.session.messages import JobDone, SpotRequest, SuggestRequest
from microau_gui.session.review_items import (
    CANDIDATES,
    MICRO_MAX_S,
    SUGGESTIONS,
    ItemStatus,
    ReviewItem,
    ReviewQueue,
    aus_from_probs,
    candidate_item,
    load_candidates,
    save_candidates,
    suggest,
)
from microau_gui.session.spot_worker import spot
from microau_gui.session.workers import WorkerThread
from microau_gui.store.commands import AcceptPrediction
from microau_gui.store.records import PredictedEvent

if TYPE_CHECKING:
    from microau_gui.session.session import ProjectSession

log = logging.getLogger(__name__)

__all__ = ["CANDIDATES", "SUGGESTIONS", "ItemStatus", "ReviewController"]


class ReviewController(QObject):
    """The session's review queues, the spotting worker and the accept/reject actions."""

    queue_changed = Signal(str)  # a queue's items or marks changed (queue name)
    current_changed = Signal(str, int)  # (queue name, item index) the coder is on
    active_changed = Signal(str)  # the queue the keys act on
    spotting_progressed = Signal(object)  # Progress
    spotting_finished = Signal(object)  # JobDone, result: Spotted
    suggestions_finished = Signal(object)  # JobDone, result: Suggested

    def __init__(self, session: ProjectSession):
        super().__init__(session)
        self.session = session
        self.queues = {CANDIDATES: ReviewQueue(CANDIDATES), SUGGESTIONS: ReviewQueue(SUGGESTIONS)}
        self.active = CANDIDATES
        self._spotter = JobRunner(session.ids, spot, lambda r: f"spotting {r.media.path.name}", self)
        self._spotter.progressed.connect(self.spotting_progressed)
        self._spotter.finished.connect(self._on_spotter_finished)
        self._spotter.failed.connect(session.failed)
        self._suggester = JobRunner(session.ids, suggest, "suggesting what to review", self)
        self._suggester.finished.connect(self._on_suggester_finished)
        self._suggester.failed.connect(session.failed)
        self._pending_accept: tuple[str, int] | None = None
        self._candidates_video_id: int | None = None
        self.suggested_for: str | None = None  # model version the suggestions came from
        self.suggestions_note = "no suggestions yet: Review > Suggest what to review"
        session.video_opened.connect(self._on_session_video_opened)
        session.model_loaded.connect(self._on_session_model_loaded)
        session.project_closed.connect(self._on_session_project_closed)
        session.events_changed.connect(self._on_session_events_changed)
        session.prediction_made.connect(self._on_session_prediction_made)

    # -- queues --------------------------------------------------------------------------------

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
        project = self.session.project
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
        session = self.session
        self._pending_accept = None
        queue.current = index
        if session.video is None or session.video.id != item.video_id:
            session.open_video(item.video_id)
        if item.event_id is not None:
            session.select_event(item.event_id, seek=False)
        else:
            session.select_event(None, seek=False)
        session.pause()
        session.seek(item.apex)
        self.current_changed.emit(queue.name, index)

    def step(self, step: int) -> None:
        """Next (+1) / previous (-1) item in rank order, whatever its mark."""
        index = self.queue.neighbour(step)
        if index is None:
            self.session.status_posted.emit(self.empty_text() or
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
            self.session.status_posted.emit(empty)
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
            self.session.status_posted.emit(
                f"already accepted as event {queue.accepted[index]}; undo (Ctrl+Z) or delete "
                "the event to reject it")
            return
        self._pending_accept = None
        queue.rejected.add(index)
        self._save(queue)
        self.queue_changed.emit(queue.name)
        following = queue.neighbour(1, pending_only=True)
        if following is None:
            self.session.status_posted.emit("every item of the queue is decided")
            self.current_changed.emit(queue.name, index)
        else:
            self.go_to(following)

    def accept(self) -> None:
        """Turn the current item into an event (see the module docstring); one undo step."""
        found = self._current_item()
        if found is None:
            return
        queue, index, item = found
        session = self.session
        if queue.status(index) is ItemStatus.ACCEPTED:
            session.status_posted.emit(f"already accepted as event {queue.accepted[index]}")
            return
        if not session.editable:
            raise UserError("the project is read-only; nothing can be accepted into it")
        if item.event_id is not None:
            self._accept_existing(queue, index, item)
            return
        if session.model is None:
            self._accept_with(queue, index, item, (), "no model is loaded: accepted without AUs")
            return
        prediction = session.prediction
        if (session.video is not None and session.video.id == item.video_id
                and prediction is not None and prediction.frame_idx == item.apex
                and prediction.model_version == session.model.model_version):
            self._accept_from(queue, index, item, prediction)
            return
        self._pending_accept = (queue.name, index)
        if session.video is None or session.video.id != item.video_id or session.frame_idx != item.apex:
            self.go_to(index)
            self._pending_accept = (queue.name, index)
        session.status_posted.emit(f"waiting for the model's prediction at the apex (frame "
                                   f"{item.apex}) …")

    def _accept_from(self, queue: ReviewQueue, index: int, item: ReviewItem,
                     prediction: FramePrediction) -> None:
        if not prediction.face_found:
            self._accept_with(queue, index, item, (), "no face found at the apex: accepted "
                              "without AUs")
            return
        aus = aus_from_probs(prediction.vocab, prediction.probs)
        if item.au is not None and au_number(item.au) not in {c.number for c in aus}:
            aus = tuple(sorted((*aus, AUCode(au_number(item.au))), key=lambda c: c.number))
        self._accept_with(queue, index, item, aus, None)

    def _accept_with(self, queue: ReviewQueue, index: int, item: ReviewItem,
                     aus: tuple[AUCode, ...], note: str | None) -> None:
        session = self.session
        self._pending_accept = None
        model = session.model
        if item.kind in ("micro", "macro"):
            kind = item.kind
        else:
            fps = session.video.fps if session.video is not None else 0.0
            long = fps > 0 and (item.offset - item.onset + 1) / fps > MICRO_MAX_S
            kind = "macro" if long else "micro"
        predicted = PredictedEvent(item.video_id, item.onset, item.apex, item.offset, aus,
                                   model.model_version_id if model is not None else None,
                                   expression_type=kind)
        command = AcceptPrediction(predicted, coder=session.coder.name)
        if not session.push([command]):
            return
        queue.accepted[index] = command.event_id
        queue.rejected.discard(index)
        self._refresh_live(queue)
        self._save(queue)
        self.queue_changed.emit(queue.name)
        session.select_event(command.event_id, seek=False)
        event = session.project.event(command.event_id)
        text = f"accepted as event {event.id} ({event.aus_text or 'no AUs'})"
        session.status_posted.emit(f"{text}; {note}" if note else
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
            self.session.status_posted.emit(f"event {item.event_id} reviewed; every item of the "
                                            "queue is decided")
            return
        self.go_to(following)
        self.session.status_posted.emit(f"event {item.event_id} reviewed")

    # -- suggestions ---------------------------------------------------------------------------

    def suggest(self) -> None:
        """Fill the SUGGESTIONS queue from the loaded version's cached predictions, in the
        background (see the module docstring); `suggestions_finished` follows."""
        session = self.session
        project, model = session.project, session.model
        if project is None:
            raise UserError("open a project first; suggestions come from its analysed videos")
        if model is None or model.model_version_id is None:
            raise UserError("load a model first; suggestions come from its cached predictions")
        self._suggester.submit(SuggestRequest(project.path, model.model_version_id,
                                              model.model_version), replace=True)

    def _on_suggester_finished(self, done: JobDone) -> None:
        model = self.session.model
        if done.result is not None and model is not None and self.session.project is not None:
            self.suggested_for = model.model_version
            self.suggestions_note = done.result.note
            # suggest's own order, ties included
            self.set_items(SUGGESTIONS, done.result.items, ranked=True)
            self.session.status_posted.emit(done.summary)
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
        session = self.session
        if (item is None or session.video is None or session.video.id != item.video_id
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
        session = self.session
        if session.media is None:
            raise UserError("open a video first; spotting runs on the open video")
        self._spotter.submit(SpotRequest(session.media),
                             busy="spotting is already running; wait for it or cancel it")
        session.status_posted.emit(f"spotting {session.media.path.name} in the background …")

    def cancel_spotting(self) -> None:
        self._spotter.cancel()

    def _on_spotter_finished(self, done: JobDone) -> None:
        self.spotting_finished.emit(done)
        if done.failed:
            return
        self.session.status_posted.emit(done.summary)
        if done.cancelled or self.session.project is None:
            return
        spotted = done.result
        items = [candidate_item(spotted.video_id, c) for c in spotted.candidates]
        queue = ReviewQueue(CANDIDATES)
        queue.set_items(items)
        self._save(queue, spotted.video_id)
        video = self.session.video
        if video is not None and video.id == spotted.video_id:
            self._candidates_video_id = spotted.video_id
            self.set_items(CANDIDATES, items)

    # -- persistence of the candidates queue ---------------------------------------------------

    def _save(self, queue: ReviewQueue, video_id: int | None = None) -> None:
        """Keep the candidates and the coder's marks in the project file (not undoable state:
        the marks are the coder's triage, and accepted events are on the undo stack)."""
        project = self.session.project
        video_id = video_id if video_id is not None else self._candidates_video_id
        if queue.name != CANDIDATES or project is None or project.read_only or video_id is None:
            return
        save_candidates(project, video_id, queue)

    def _load_candidates(self, video_id: int) -> None:
        queue = self.queues[CANDIDATES]
        self._candidates_video_id = video_id
        self._pending_accept = None
        load_candidates(self.session.project, video_id, queue)
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
