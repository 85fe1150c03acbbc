"""Progress reports and cancellation, one spelling for every long job.

Owns: `Progress`, `ShouldCancel`, `Cancelled`, `check_cancel`. Imports nothing of ours
(standard library only).

Every long pipeline (pair preparation, training, analysis, spotting, import, proxy encoding,
synthesis) takes `progress(done, total)` and `should_cancel()`, polls the latter between units
of work and raises `Cancelled` when it turned True. Callers catch this one exception, whichever
pipeline ran.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

Progress = Callable[[int, int], None]  # (units done, units total)
ShouldCancel = Callable[[], bool]  # polled between units of work; True stops the job


class Cancelled(Exception):
    """A job stopped because its `should_cancel()` turned True; it left nothing half-written."""


def check_cancel(should_cancel: ShouldCancel | threading.Event | None, what: str = "cancelled") -> None:
    """Raise `Cancelled(what)` when `should_cancel` (a callable or a threading.Event) says so."""
    if should_cancel is None:
        return
    stop = should_cancel.is_set() if isinstance(should_cancel, threading.Event) else should_cancel()
    if stop:
        raise Cancelled(what)
