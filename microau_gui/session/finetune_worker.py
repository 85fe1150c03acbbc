"""Fine-tuning on the coder's corrections, off the GUI thread, and the versions it produces.

Owns: `finetune` (the job function for a `FinetuneRequest`) and `FinetuneController` (the
session's `finetune`). May import training (`training.finetune`, lazily: it loads torch), store,
core, the session's context, models, messages, jobs and workers, and PySide6.QtCore; never gui.
It receives a `SessionContext`, not the session.

The loop (issue #7 part 3, our specification):
- `start(...)` snapshots the selected events on the GUI thread (`snapshot_events`: training never
  reads the live store, so the coder keeps editing meanwhile) and runs `run_finetune` from the
  loaded model (the parent) as a background job (`session.jobs`), with torch on every core but
  one (as the inference worker does) so painting and scrubbing never queue behind training. Progress
  (`FinetuneProgress`, whose epoch-end reports carry the loss and held-out F1 points of the live
  curves) arrives through `progressed`; `cancel()` stops it within a training step and leaves the
  active model, the store and the weights folder unchanged.
- When it ends, the new checkpoint is registered in the project as an inactive version (so a
  crash or a closed dialog loses nothing) and `finished(JobDone)` carries the before/after
  report and the new version's id (`Tuned`). `activate(done)` loads it into the running
  inference worker (no restart; the project marks it active when it is loaded, see
  `ModelSlot._adopt`); `discard(done)` unregisters it and deletes its checkpoint, leaving the
  active model as it was.
- Any earlier version is rolled back to with `ProjectSession.select_model`: predictions are cached
  per version, so the older version's timeline traces come back as they were.
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from microau_gui.core.cores import usable_cores
from microau_gui.core.errors import UserError, split_details
from microau_gui.session.context import SessionContext
from microau_gui.session.jobs import Job, JobRunner
from microau_gui.session.messages import FinetuneRequest, JobDone, Tuned
from microau_gui.session.models import ModelChoice
from microau_gui.session.workers import WorkerThread, user_message
from microau_gui.store.records import Event


log = logging.getLogger(__name__)


def finetune(request: FinetuneRequest, job: Job) -> JobDone:
    """Fine-tune the parent on the snapshot; the result is `training.finetune.FinetuneResult`."""
    from microau_gui.training.finetune import run_finetune
    from microau_gui.core.progress import Cancelled

    try:
        result = run_finetune(request.snapshot, request.parent, request.out, request.options,
                              progress=job.report, should_cancel=job.should_cancel)
    except Cancelled:
        return job.done("fine-tuning cancelled; the active model is unchanged", cancelled=True)
    return job.done(f"fine-tuned {result.card.name}: mean F1 {result.before.mean_f1:.3f} → "
                    f"{result.after.mean_f1:.3f} on held-out {', '.join(result.holdout_subjects)} "
                    f"({result.seconds:.0f} s)", result)


class FinetuneController(QObject):
    """The session's fine-tunes: one at a time, as a background job."""

    progressed = Signal(object)  # training.finetune.FinetuneProgress
    finished = Signal(object)  # JobDone, result: Tuned (None: cancelled, failed or not kept)

    def __init__(self, ctx: SessionContext, parent: QObject | None = None):
        super().__init__(parent)
        self._ctx = ctx
        self._job = JobRunner(ctx.ids, finetune, "fine-tuning", self)
        self._job.progressed.connect(self.progressed)
        self._job.finished.connect(self._on_job_finished)
        self._job.failed.connect(ctx.report_failure)
        self._project_path: Path | None = None  # the project the running fine-tune snapshot

    @property
    def running(self) -> bool:
        return self._job.running

    @property
    def threads(self) -> list[WorkerThread]:
        return self._job.threads

    def trainable_events(self, sources: tuple[str, ...], expression_types: tuple[str, ...]
                         ) -> list[tuple[Event, str]]:
        """(event, subject) of every event a selection of sources and types would train on, by
        subject then video and onset (the dialog's event list)."""
        project = self._ctx.project()
        if project is None:
            return []
        videos = {v.id: v for v in project.videos()}
        found = []
        for event in project.events():
            if event.source in sources and event.expression_type in expression_types:
                video = videos[event.video_id]
                subject = video.subject or f"(video {video.name})"  # as snapshot_events names it
                found.append((event, subject))
        return sorted(found, key=lambda pair: (pair[1], pair[0].video_id, pair[0].onset))

    def subjects(self, sources: tuple[str, ...], expression_types: tuple[str, ...],
                 event_ids: tuple[int, ...] | None = None) -> dict[str, int]:
        """Subject -> events a selection would train on (the dialog's held-out choices);
        `event_ids` narrows it to those events (None: all)."""
        wanted = None if event_ids is None else set(event_ids)
        counts: dict[str, int] = {}
        for event, subject in self.trainable_events(sources, expression_types):
            if wanted is None or event.id in wanted:
                counts[subject] = counts.get(subject, 0) + 1
        return dict(sorted(counts.items()))

    def default_name(self) -> str:
        """The first free `<parent>-ftN` name (the checkpoint lands in the project's weights/)."""
        from microau_gui.training.finetune import default_output

        project, model = self._ctx.project(), self._ctx.models.model
        if project is None or model is None:
            return ""
        taken = [v.name for v in project.models.list()]
        return default_output(project.path, model.card.name, taken).name

    def start(self, *, sources: tuple[str, ...] = ("expert", "accepted"),
              expression_types: tuple[str, ...] = ("micro",),
              event_ids: tuple[int, ...] | None = None, holdout: tuple[str, ...] = (), epochs: int = 20, train_blocks: int = 0,
              name: str = "") -> None:
        """Snapshot the selected events (of `sources` and `expression_types`; only `event_ids`
        when given) and fine-tune the loaded model on them in the worker."""
        from microau_gui.training.finetune import (EventSelection, FinetuneOptions, check_output,
                                                   snapshot_events)

        ctx = self._ctx
        if self._job.running:
            raise UserError("a fine-tune is already running; wait for it or cancel it")
        if ctx.project() is None or ctx.models.model is None:
            raise UserError("open a project and load the model to fine-tune first")
        if not ctx.editable():
            raise UserError("the project is read-only; a fine-tuned version could not be added")
        project = ctx.project()
        if event_ids is not None and not event_ids:
            raise UserError("no event is ticked; tick the events to train on, or choose all events")
        snapshot = snapshot_events(project, EventSelection(
            sources=tuple(sources), expression_types=tuple(expression_types),
            event_ids=None if event_ids is None else tuple(event_ids)))
        name = name.strip() or self.default_name()
        out = check_output(project.path.absolute().parent / "weights" / name,
                           snapshot.version_names)
        options = FinetuneOptions(holdout_subjects=tuple(holdout), epochs=int(epochs),
                                  train_blocks=int(train_blocks),
                                  threads=max(1, usable_cores() - 1))
        self._job.submit(FinetuneRequest(snapshot, ctx.models.model.checkpoint, out, options))
        self._project_path = snapshot.project_path
        ctx.post_status(f"fine-tuning {ctx.models.model.model_version} on "
                                   f"{len(snapshot.samples)} events in the background …")

    def cancel(self) -> None:
        self._job.cancel()

    def _on_job_finished(self, done: JobDone) -> None:
        project_path, self._project_path = self._project_path, None
        project = self._ctx.project()
        if done.result is not None:
            from microau_gui.training.finetune import discard_result, register_result

            if project is None or project_path != project.path:
                discard_result(done.result)  # its project was closed meanwhile: nowhere to add it
                done = JobDone(done.request_id, True, "fine-tuning finished after its project "
                               "was closed; the new model was not kept")
            else:
                try:
                    version = register_result(project, done.result, activate=False)
                except Exception as err:  # the checkpoint must not outlive a failed registration
                    log.exception("registering the fine-tuned model failed")
                    discard_result(done.result)
                    message = "the fine-tuned model could not be added: " + user_message(err)
                    if not isinstance(err, UserError):  # a bug: the sentence in the window
                        self._ctx.report_failure(message)  # box, the traceback behind Details
                    done = JobDone(done.request_id, True, split_details(message)[0])
                else:
                    done = JobDone(done.request_id, False, done.summary,
                                   Tuned(done.result, version.id))
        self._ctx.post_status(done.summary)
        self.finished.emit(done)

    def activate(self, done: JobDone) -> None:
        """Load the new version in the inference worker; it becomes the project's active one."""
        if done.result is None or self._ctx.project() is None:
            raise UserError("this fine-tune produced no version to activate")
        version = self._ctx.project().models.get(done.result.version_id)
        self._ctx.models.select_model(ModelChoice(version.name, version.checkpoint, version.id,
                                              "project"))

    def discard(self, done: JobDone) -> None:
        """Unregister the new version and delete its checkpoint; the active model stays."""
        from microau_gui.training.finetune import discard_result

        if done.result is None:
            return
        report = done.result.report
        model = self._ctx.models.model
        if model is not None and model.model_version == report.card.version:
            raise UserError(f"{model.model_version} is the running model; activate another "
                            "version before discarding it")
        discard_result(report, self._ctx.project())
        self._ctx.post_status(f"discarded {report.card.name}")

    def close(self) -> None:
        """Cancel a running fine-tune and join its thread (nothing is saved)."""
        self._job.close()
