"""The base of every worker and the thread that runs it.

Owns: `Worker` (a QObject with a `failed` signal and a guarded call helper), `CancellableWorker`
(a worker whose long job polls a cancel flag), `OpenMedia` (a worker's own frame source of the
media it last read), `LatestOnly` (the "newest request wins" mailbox) and `WorkerThread` (start,
stop and join one worker's QThread). May import PySide6.QtCore, media and core; no widgets.

Rules every worker follows (DESIGN.md section 3):
- it lives in its own QThread and is only ever called through queued signals or
  `QMetaObject.invokeMethod`, so no locks guard its state;
- every exception inside a slot is logged with its traceback and reported through `failed(str)`
  (one line for the user); the thread keeps running;
- `shutdown()` releases what the worker holds (files, models, SQLite connections) on the worker's
  own thread, and `WorkerThread.stop()` then quits and joins the thread.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QMetaObject, QObject, Qt, QThread, QTimer, Signal, Slot

from microau_gui.core.errors import UserError, internal_error_text
from microau_gui.media import FrameSource, open_media

log = logging.getLogger(__name__)


def user_message(err: BaseException) -> str:
    """The message for the window: the UserError's line, or for anything else (a bug) a
    sentence with the exception behind `core.errors.DETAILS_MARKER`, never raw exception text
    in the sentence."""
    if isinstance(err, UserError):
        return str(err)
    return internal_error_text(err)


class Worker(QObject):
    """A QObject that runs in its own thread and never dies silently."""

    failed = Signal(str)

    def guarded(self, what: str, fn: Callable[..., Any], *args) -> Any:
        """Call `fn(*args)`; on any exception log the traceback, emit `failed`, return None."""
        try:
            return fn(*args)
        except UserError as err:
            log.warning("%s: %s", what, err)
            self.failed.emit(f"{what}: {err}")
        except Exception as err:  # a worker must report, never die: DeepLabCut's Worker.error
            log.exception("%s failed", what)
            self.failed.emit(f"{what}: {user_message(err)}")
        return None

    @Slot()
    def sync(self) -> None:
        """Does nothing: a blocking call to it returns once every earlier request was handled."""

    @Slot()
    def shutdown(self) -> None:
        """Release resources; called on the worker's thread just before the thread quits."""


class CancellableWorker(Worker):
    """A worker running one long job that polls `self._cancel` (passed on as `should_cancel`)."""

    def __init__(self):
        super().__init__()
        self._cancel = threading.Event()

    def cancel(self) -> None:
        """Ask the running job to stop (any thread: it only sets the event the job polls)."""
        self._cancel.set()


class OpenMedia:
    """The frame source of the media a worker last read, reopened when the media changes.

    Frame sources are not thread-safe, so each worker keeps its own; `media` is a
    `session.messages.MediaRef` (path, fps).
    """

    def __init__(self, cache_frames: int):
        self.cache_frames = cache_frames  # decoded frames the source keeps (media LRU cache)
        self._source: FrameSource | None = None
        self._media = None

    def source(self, media) -> FrameSource:
        if self._source is None or self._media != media:
            self.close()
            self._source = open_media(media.path, fps=media.fps, cache_frames=self.cache_frames)
            self._media = media
        return self._source

    def attach_proxy(self, ready) -> None:
        """Read the open video through its new seek proxy (`messages.ProxyReady`). The source
        stays open: reopening would index the original again. Media opened later find the
        proxy by themselves (`media.open_media`)."""
        if self._source is not None and self._media == ready.media and self._source.kind == "video":
            self._source.attach_proxy(ready.proxy)

    def close(self) -> None:
        if self._source is not None:
            self._source.close()
        self._source = None
        self._media = None


class LatestOnly:
    """A one-slot mailbox: `put` keeps only the newest request and schedules one `handler` call.

    Requests arrive as queued events. While the handler is busy, later requests pile up in the
    thread's event queue; when it returns, all of them are delivered (each overwriting the slot)
    before the single scheduled call runs, so only the newest one is processed (SLEAP's loader).
    """

    def __init__(self, handler: Callable[[Any], None]):
        self._handler = handler
        self._pending: Any = None
        self._scheduled = False

    def put(self, request: Any) -> None:
        self._pending = request
        if not self._scheduled:
            self._scheduled = True
            QTimer.singleShot(0, self._run)

    def take(self) -> Any:
        """Remove and return the pending request (None when there is none)."""
        request, self._pending = self._pending, None
        return request

    @property
    def has_pending(self) -> bool:
        return self._pending is not None

    def _run(self) -> None:
        self._scheduled = False
        request = self.take()
        if request is not None:
            self._handler(request)


# Nice value of background workers (model, spotting, fine-tuning, import, agreement) on Linux.
BACKGROUND_NICE = 10
# Longest time a thread that wants the GIL waits for a worker running Python code to hand it
# over (CPython's default is 5 ms, a quarter of the display budget of one frame).
GIL_SWITCH_INTERVAL_S = 0.001


def _run_in_background() -> None:
    """Lower the calling thread's CPU priority (Linux: nice is per thread, and threads it starts
    later, such as MediaPipe's and torch's, inherit it).

    Why: on 2 cores the model, MediaPipe and the frame loader compete; at equal priority the
    decoded frame and the repaint queue behind them. Measured with the tiny model analysing in
    the background while stepping 25 frames/s (bench `gui`, 150 steps): display p95 65.7 ms at
    equal priority, 58.7 ms at nice 10, 36.5 ms with nice 10 and a 1 ms GIL switch interval.
    Nice 10 rather than 19 or SCHED_IDLE: a worker holding the GIL must still get the CPU to
    release it.
    """
    if sys.platform.startswith("linux"):
        try:
            thread_id = threading.get_native_id()
            # Never raise a priority: a whole app started with `nice 15` stays at 15.
            nice = max(os.getpriority(os.PRIO_PROCESS, thread_id), BACKGROUND_NICE)
            os.setpriority(os.PRIO_PROCESS, thread_id, nice)
        except OSError as err:  # a sandbox may forbid it; the worker still runs, only less politely
            log.info("could not lower the priority of thread %s: %s", threading.current_thread().name, err)


class WorkerThread:
    """One worker moved into one QThread, started at once; `stop()` joins it.

    `background=True` is for workers that compute (model, spotting, training): their thread runs
    at a lower CPU priority and the interpreter hands the GIL over every millisecond, so the
    GUI thread and the frame loader go first (see `_run_in_background`).
    """

    def __init__(self, worker: Worker, name: str, background: bool = False):
        self.worker = worker
        self.thread = QThread()
        self.thread.setObjectName(name)
        worker.moveToThread(self.thread)
        if background:
            sys.setswitchinterval(min(sys.getswitchinterval(), GIL_SWITCH_INTERVAL_S))
            # `started` is emitted on the new thread; a direct connection runs the call there.
            self.thread.started.connect(_run_in_background, Qt.ConnectionType.DirectConnection)
        self.thread.start()

    @property
    def running(self) -> bool:
        return self.thread.isRunning()

    def stop(self) -> None:
        """Let the worker release its resources on its own thread, then quit and join."""
        if not self.thread.isRunning():
            return
        QMetaObject.invokeMethod(self.worker, "shutdown", Qt.ConnectionType.BlockingQueuedConnection)
        self.thread.quit()
        self.thread.wait()
