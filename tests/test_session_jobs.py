"""The one job runner (session.jobs): ids, progress, finish, failure, cancel, stale results,
close. Real QThreads (pytest-qt, offscreen); the job functions are plain Python."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import pytest

from microau_gui.core.errors import INTERNAL_ERROR, UserError, split_details
from microau_gui.session.jobs import Job, JobRunner, RequestIds
from microau_gui.session.messages import JobDone

TIMEOUT_MS = 10000


@dataclass(frozen=True)
class CountRequest:
    """A toy job: count to `n`, optionally waiting on a gate before finishing."""

    n: int
    gate: threading.Event | None = None
    fail: bool = False
    request_id: int = 0


def count(request: CountRequest, job: Job) -> JobDone:
    for i in range(request.n):
        job.progress(i + 1, request.n, f"{i + 1} of {request.n}")
    if request.gate is not None:
        while not request.gate.wait(0.01):
            if job.cancelled():
                return job.done("count cancelled", cancelled=True)
    if request.fail:
        raise ValueError("the count broke")
    return job.done(f"counted to {request.n}", request.n)


@pytest.fixture
def runner(qtbot):
    created = JobRunner(RequestIds(), count, lambda r: f"counting to {r.n}")
    yield created
    created.close()
    assert not created.threads


def test_a_job_reports_progress_then_one_result_and_its_thread_is_joined(qtbot, runner):
    seen = []
    runner.progressed.connect(seen.append)
    with qtbot.waitSignal(runner.finished, timeout=TIMEOUT_MS) as finished:
        request = runner.submit(CountRequest(3))
    done = finished.args[0]
    assert request.request_id == 1 and done.request_id == 1
    assert (done.cancelled, done.failed, done.result, done.summary) == (False, False, 3, "counted to 3")
    assert [(p.request_id, p.n_done, p.n_total) for p in seen] == [(1, 1, 3), (1, 2, 3), (1, 3, 3)]
    assert not runner.running and runner.threads == []


def test_ids_come_from_one_source_shared_by_every_runner(qtbot):
    ids = RequestIds()
    first, second = JobRunner(ids, count, "a"), JobRunner(ids, count, "b")
    try:
        with qtbot.waitSignals([first.finished, second.finished], timeout=TIMEOUT_MS):
            a = first.submit(CountRequest(1))
            b = second.submit(CountRequest(1))
        assert (a.request_id, b.request_id, ids.last) == (1, 2, 2)
    finally:
        first.close()
        second.close()


def test_a_busy_runner_refuses_a_second_job_with_the_callers_words(qtbot, runner):
    gate = threading.Event()
    runner.submit(CountRequest(1, gate))
    with pytest.raises(UserError, match="already counting"):
        runner.submit(CountRequest(1), busy="already counting; wait")
    with qtbot.waitSignal(runner.finished, timeout=TIMEOUT_MS):
        gate.set()


def test_cancel_ends_the_job_with_a_cancelled_result(qtbot, runner):
    runner.submit(CountRequest(1, threading.Event()))
    with qtbot.waitSignal(runner.finished, timeout=TIMEOUT_MS) as finished:
        runner.cancel()
    assert finished.args[0].cancelled and finished.args[0].summary == "count cancelled"
    assert not runner.running


def test_a_replaced_job_is_stale_its_answer_is_dropped_and_its_thread_joined(qtbot, runner):
    old_gate = threading.Event()
    results = []
    runner.finished.connect(results.append)
    old = runner.submit(CountRequest(1, old_gate))
    with qtbot.waitSignal(runner.finished, timeout=TIMEOUT_MS) as finished:
        new = runner.submit(CountRequest(2), replace=True)
    assert finished.args[0].request_id == new.request_id != old.request_id
    qtbot.waitUntil(lambda: runner.threads == [], timeout=TIMEOUT_MS)  # the old one answered
    assert [d.request_id for d in results] == [new.request_id]


def test_a_failing_job_reports_failed_then_a_failed_result_and_the_runner_is_reusable(qtbot, runner):
    messages = []
    runner.failed.connect(messages.append)
    with qtbot.waitSignal(runner.finished, timeout=TIMEOUT_MS) as finished:
        runner.submit(CountRequest(1, fail=True))
    done = finished.args[0]
    # a bug, not the user's mistake: a sentence for the window, the exception as its details
    (message,) = messages
    sentence, details = split_details(message)
    assert sentence == "counting to 1: " + INTERNAL_ERROR
    assert "ValueError: the count broke" in details and "Traceback" in details
    assert done.failed and done.cancelled and done.summary == sentence and done.result is None
    with qtbot.waitSignal(runner.finished, timeout=TIMEOUT_MS) as finished:
        runner.submit(CountRequest(1))
    assert finished.args[0].result == 1


def test_close_cancels_and_joins_and_nothing_is_emitted_after(qtbot, runner):
    results = []
    runner.finished.connect(results.append)
    runner.submit(CountRequest(1, threading.Event()))
    runner.close()
    assert runner.threads == [] and not runner.running
    qtbot.wait(50)
    assert results == []
