"""The one job runner: every background job of the session goes through a `JobRunner`.

Owns: `RequestIds` (the session's one request-id source), `Job` (what a job function receives
besides its request), `JobWorker` (runs one job function on its own thread) and `JobRunner` (one
kind of job: submit, progress, finish, fail, cancel, close). May import the session's messages
and workers, core and PySide6.QtCore; no widgets, no store, no pipelines (the job functions bring
those).

This is napari's single submitter in QThread form. A job is
- a frozen request dataclass in `session.messages` with a `request_id` field (the runner stamps it),
- a function `fn(request, job) -> JobDone` that runs on a worker thread; it reports progress with
  `job.progress(...)`, polls `job.cancelled()` (or hands `job.should_cancel` to a pipeline) and
  returns `job.done(summary, result)`; an exception becomes `failed`, never a dead thread,
- one line of wiring: `JobRunner(ids, fn, "what it does")`.

What the runner guarantees to the GUI thread:
- `progressed(Progress)` and `finished(JobDone)` only ever carry the current request's id: a
  result of a replaced or closed request is dropped (stale);
- every submitted request ends with exactly one `finished`: completed, cancelled, or failed
  (then `failed(str)` comes first and `finished` carries the message with `cancelled=True`);
- `close()` cancels and joins every thread the runner started.

Each request runs in a fresh QThread that is joined when the job ends. `submit(...,
replace=True)` cancels a running job and starts the new one at once; the old thread is joined
when its (dropped) answer arrives, or at `close()`. The analysis job runs inside the long-lived
inference worker instead (it shares the loaded model): `JobRunner.on_worker` wires such a worker
with the same guarantees.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot

from microau_gui.core.errors import UserError, split_details
from microau_gui.session.messages import JobDone, Progress
from microau_gui.session.workers import CancellableWorker, WorkerThread


class RequestIds:
    """Hands out increasing request ids; one per session, shared by every worker and job."""

    def __init__(self):
        self._last = 0

    def next(self) -> int:
        self._last += 1
        return self._last

    @property
    def last(self) -> int:
        """The most recent id handed out (0: none yet)."""
        return self._last


class Job:
    """What a job function receives besides its request (used on the job's thread)."""

    def __init__(self, request_id: int, progressed: Callable[[Progress], None],
                 cancel: threading.Event):
        self.request_id = request_id
        self._progressed = progressed
        self._cancel = cancel

    def progress(self, n_done: int, n_total: int, text: str = "") -> None:
        self._progressed(Progress(self.request_id, n_done, n_total, text))

    def report(self, value: Any) -> None:
        """Progress of a job whose reports carry more than counts (fine-tuning curves)."""
        self._progressed(value)

    def cancelled(self) -> bool:
        return self._cancel.is_set()

    @property
    def should_cancel(self) -> Callable[[], bool]:
        """The poll function pipelines take (`should_cancel=` / `cancelled=`)."""
        return self._cancel.is_set

    def done(self, summary: str, result: Any = None, cancelled: bool = False) -> JobDone:
        return JobDone(self.request_id, cancelled, summary, result)


JobFn = Callable[[Any, Job], JobDone]


class JobWorker(CancellableWorker):
    """Runs `fn(request, job)` for one request. Signals: `progressed`, `finished`, `failed`."""

    progressed = Signal(object)  # Progress (or a job's richer report)
    finished = Signal(object)  # JobDone

    def __init__(self, fn: JobFn, what: Callable[[Any], str]):
        super().__init__()
        self._fn = fn
        self._what = what

    @Slot(object)
    def run(self, request: Any) -> None:
        job = Job(request.request_id, self.progressed.emit, self._cancel)
        done = self.guarded(self._what(request), self._fn, request, job)
        if done is not None:
            self.finished.emit(done)


class JobRunner(QObject):
    """One kind of background job (see the module docstring)."""

    progressed = Signal(object)  # Progress of the current request
    finished = Signal(object)  # JobDone of the current request
    failed = Signal(str)  # the current request raised; its `finished` follows
    _submitted = Signal(object)
    _cancel_requested = Signal()

    def __init__(self, ids: RequestIds, fn: JobFn | None, what: str | Callable[[Any], str],
                 parent: QObject | None = None, background: bool = True):
        super().__init__(parent)
        self._ids = ids
        self._fn = fn
        self._what = what if callable(what) else (lambda _request, text=what: text)
        self._background = background
        self._thread: WorkerThread | None = None  # the current request's thread
        self._retired: list[WorkerThread] = []  # replaced jobs still winding down
        self._worker: QObject | None = None  # `on_worker`: the long-lived executor
        self.request: Any = None  # the current request (None when idle)

    @classmethod
    def on_worker(cls, ids: RequestIds, worker: QObject, run, cancel, progressed, finished,
                  parent: QObject | None = None) -> JobRunner:
        """A runner whose jobs run inside a long-lived worker living on its own thread: `run`
        and `cancel` are its slots, `progressed` / `finished` its signals (with request ids)."""
        runner = cls(ids, None, "", parent)
        runner._worker = worker
        runner._submitted.connect(run)
        runner._cancel_requested.connect(cancel)
        progressed.connect(runner._on_progressed)
        finished.connect(runner._on_finished)
        return runner

    @property
    def running(self) -> bool:
        return self.request is not None

    @property
    def threads(self) -> list[WorkerThread]:
        return ([self._thread] if self._thread is not None else []) + list(self._retired)

    def submit(self, request: Any, replace: bool = False, busy: str = "") -> Any:
        """Stamp `request` with a fresh id and start it; returns the stamped request.

        A job already running is cancelled first when `replace`, else the call is refused with
        `busy` (a UserError, one line for the coder).
        """
        if self.running:
            if not replace:
                raise UserError(busy or "this job is already running; wait for it or cancel it")
            self._drop_current()
        request = dataclasses.replace(request, request_id=self._ids.next())
        self.request = request
        if self._worker is None:
            worker = JobWorker(self._fn, self._what)
            self._thread = WorkerThread(worker, type(request).__name__, background=self._background)
            worker.progressed.connect(self._on_progressed)
            worker.finished.connect(self._on_finished)
            worker.failed.connect(self._on_failed)
            self._submitted.connect(worker.run)
            self._submitted.emit(request)
            self._submitted.disconnect(worker.run)
        else:
            self._submitted.emit(request)
        return request

    def cancel(self) -> None:
        """Ask the current job to stop; its `finished(JobDone(cancelled=True))` follows."""
        if self.request is None:
            return
        if self._thread is not None:
            self._thread.worker.cancel()
        else:
            self._cancel_requested.emit()

    def close(self) -> None:
        """Cancel every job and join every thread; nothing is emitted afterwards."""
        self.request = None
        if self._worker is not None:
            self._cancel_requested.emit()
        for thread in self.threads:
            thread.worker.cancel()
        for thread in self.threads:
            thread.stop()
        self._thread = None
        self._retired = []

    def _drop_current(self) -> None:
        """Cancel the current job; whatever it still sends is stale."""
        self.cancel()
        if self._thread is not None:
            self._retired.append(self._thread)
            self._thread = None
        self.request = None

    def _current(self, request_id: int) -> bool:
        return self.request is not None and request_id == self.request.request_id

    def _on_progressed(self, progress: Any) -> None:
        if self.request is None:
            return
        if self._worker is None:
            current = self.sender() is self._current_worker()  # reports need not carry ids
        else:
            current = self._current(progress.request_id)
        if current:
            self.progressed.emit(progress)

    def _on_finished(self, done: JobDone) -> None:
        self._join_retired()
        if not self._current(done.request_id):
            return
        self._end()
        self.finished.emit(done)

    def _on_failed(self, message: str) -> None:
        self._join_retired()
        if self.request is None or self.sender() is not self._current_worker():
            return
        request_id = self.request.request_id
        self._end()
        self.failed.emit(message)
        # the summary is shown in panels and status lines: the sentence, not the traceback
        self.finished.emit(JobDone(request_id, True, split_details(message)[0], failed=True))

    def _current_worker(self) -> QObject | None:
        return self._thread.worker if self._thread is not None else None

    def _end(self) -> None:
        if self._thread is not None:
            self._thread.stop()
            self._thread = None
        self.request = None

    def _join_retired(self) -> None:
        """Join replaced jobs that have answered (their thread is idle now)."""
        still = []
        for thread in self._retired:
            if thread.worker is self.sender():
                thread.stop()
            else:
                still.append(thread)
        self._retired = still
