"""What a session controller may use of the session: its parts, one request-id source, two
outlets and the few session-level moves it needs.

Owns: `SessionContext`. May import the session's parts (playhead, model_slot, annotating), coder, jobs,
store (the `Project` and `Video` types), and PySide6.QtCore; no widgets. Controllers (review,
fine-tune, ...) receive one of these instead of the whole `ProjectSession`, so they cannot reach
the session's private state and the session's own module never has to be imported by them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import SignalInstance

from microau_gui.session.annotating import Annotator
from microau_gui.session.coder import CoderIdentity
from microau_gui.session.jobs import RequestIds
from microau_gui.session.model_slot import ModelSlot
from microau_gui.session.playhead import Playhead
from microau_gui.store.project import Project
from microau_gui.store.records import Video


@dataclass(frozen=True)
class SessionContext:
    ids: RequestIds  # the session's one request-id source (for JobRunner)
    project: Callable[[], Project | None]  # the open project, if any
    video: Callable[[], Video | None]  # the open video, if any
    playhead: Playhead  # media, frame_idx, seek, pause
    models: ModelSlot  # the loaded model, the prediction on screen, select_model
    annotator: Annotator  # undoable edits (push)
    coder: CoderIdentity  # who codes: written on what the session creates
    open_video: Callable[[int], None]  # opens a video of the project (UserError when missing)
    select_event: Callable[..., None]  # (event_id | None, seek=True): as ProjectSession's
    post_status: Callable[[str], None]  # one line for the status bar
    report_failure: Callable[[str], None]  # something went wrong; the window shows it
    video_opened: SignalInstance  # (Video)
    project_closed: SignalInstance  # ()
    events_changed: SignalInstance  # ()

    def editable(self) -> bool:
        project = self.project()
        return project is not None and not project.read_only
