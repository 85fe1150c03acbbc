"""`bench` figure of the window: frame-display latency while the model runs (offscreen Qt).

Owns: `measure_gui_latency`. May import gui, session, store and core (PySide6); the CLI layer may
import every layer. Qt is imported only when this figure runs.

What is measured: the real main window (`gui.main_window.MainWindow`) on the real session
(`session.ProjectSession`) with its frame-loader and inference workers, offscreen. Once the
model is loaded, a background analysis of the whole video starts (`ProjectSession.analyze_video`),
so the inference worker never idles, and on top of it every seek asks for a prediction of the
frame on screen. A timer then steps the playhead one frame every `step_ms`, as holding the
arrow key does: first forward (->) from the first frame, then, after a jump to the last frame
(not counted), backward (<-), the way a coder hunts for an onset. Both are reported, since
forward steps meet frames the loader read ahead and backward ones frames it read behind. The
steps run inside a Qt event loop (`QEventLoop.exec`, as the application runs; an earlier version
polled `processEvents` with 1 ms sleeps, which added the sleeps' wake-up delays).

Latency of one frame = from the session's frame request (`FrameRequest.requested_at_s`) to the
end of the video viewport's paint of that frame (`VideoView.frame_painted`). Two other end
points are reported beside it: `delivered_*`, when the session's `frame_loaded` handlers have
run (the view paints inside them, so this ends just after the paint); `turn_end_*`, when a zero
timer started at the paint fires, i.e. after everything else the event loop had queued by then
(the other widgets' paint passes, layout requests, predictions arriving). Until 2026-11-25 the
figure was `turn_end`, measured from the first Paint event the viewport received after the
frame arrived. Requests the loader coalesced away (a newer one arrived first, e.g. while it
decoded a step back's 30 frames) are never painted and are counted apart (`n_coalesced`).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from microau_gui.cli.bench_report import figure, percentile


def measure_gui_latency(video: Path, weights: Path, n_steps: int, step_ms: int,
                        timeout_s: float) -> dict[str, dict]:
    """Display latency in ms, stepping forward and then back; see the module docstring.

    Returns the figures `gui_display_p50_ms`, `gui_display_p95_ms` (forward) and
    `gui_display_back_p50_ms`, `gui_display_back_p95_ms`.
    """
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    import torch
    from PySide6.QtCore import QElapsedTimer, QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    from microau_gui.gui.main_window import MainWindow
    from microau_gui.session.opening import project_path_for_media
    from microau_gui.session.session import ProjectSession

    threads = torch.get_num_threads()  # the inference worker changes the process-wide setting
    project = project_path_for_media(video)
    for stale in (project, Path(f"{project}-wal"), Path(f"{project}-shm")):
        stale.unlink(missing_ok=True)  # a cached analysis would let the model idle

    app = QApplication.instance() or QApplication([])

    class PaintProbe:
        def __init__(self):
            self.latencies_ms: list[float] = []  # request -> frame painted
            self.turn_end_ms: list[float] = []  # request -> the event-loop turn of the paint ended
            self.delivered_ms: list[float] = []  # request -> decoded frame back on the GUI thread

        @staticmethod
        def _since(requested_at_s: float) -> float:
            return (time.perf_counter() - requested_at_s) * 1000.0

        def on_frame_loaded(self, loaded) -> None:
            self.delivered_ms.append(self._since(loaded.requested_at_s))

        def on_frame_painted(self, loaded) -> None:
            self.latencies_ms.append(self._since(loaded.requested_at_s))
            QTimer.singleShot(0, lambda: self.turn_end_ms.append(self._since(loaded.requested_at_s)))

    def run_loop(ms: int) -> None:
        loop = QEventLoop()
        QTimer.singleShot(ms, loop.quit)
        loop.exec()

    def step_phase(delta: int) -> tuple[PaintProbe, int]:
        """Step the playhead by `delta` every `step_ms`, n_steps times; (probe, steps done)."""
        probe = PaintProbe()
        steps = {"done": 0}
        # The application's own event loop (exec), not polling: Qt wakes the GUI thread when a
        # timer fires or a worker's answer arrives, as it does in `make run`.
        loop = QEventLoop()
        timer = QTimer()
        timer.setInterval(step_ms)

        def step() -> None:
            if steps["done"] >= n_steps:
                loop.quit()
                return
            steps["done"] += 1
            session.seek((session.frame_idx + delta) % n_frames)

        timer.timeout.connect(step)
        window.video_view.frame_painted.connect(probe.on_frame_painted)
        session.frame_loaded.connect(probe.on_frame_loaded)
        timer.start()
        QTimer.singleShot(int(timeout_s * 1000), loop.quit)
        loop.exec()
        timer.stop()
        run_loop(500)  # let the last frames paint
        window.video_view.frame_painted.disconnect(probe.on_frame_painted)
        session.frame_loaded.disconnect(probe.on_frame_loaded)
        return probe, steps["done"]

    session = ProjectSession(device="cpu", weights=weights)
    window = MainWindow(session)
    no_model: list[str] = []
    session.model_unloaded.connect(no_model.append)
    try:
        session.open_path(video)
        window.resize(1280, 800)
        window.show()
        clock = QElapsedTimer()
        clock.start()
        while session.model is None and not no_model and clock.elapsed() < timeout_s * 1000:
            app.processEvents()
            time.sleep(0.01)
        if session.model is None:
            raise RuntimeError(no_model[0] if no_model else f"the model did not load within {timeout_s:.0f} s")
        finished_early: list = []
        analysed = {"frames": 0}
        session.analysis_finished.connect(finished_early.append)
        session.analysis_progressed.connect(lambda progress: analysed.update(frames=progress.n_done))
        session.analyze_video(every=1)
        n_frames = session.n_frames
        forward = step_phase(+1)
        # Backward from a jump far past what the forward phase decoded (as a coder does: jump
        # near an event, then hunt for its onset with <-); the jump itself is not counted.
        session.seek(n_frames - 1)
        run_loop(1000)
        back = step_phase(-1)
        model_version = session.model.model_version
        background = {"background_frames_analysed": analysed["frames"],
                      "background_analysis_ended_early": bool(finished_early),
                      "background_analysis_summary": finished_early[0].summary if finished_early else None}
    finally:
        session.cancel_analysis()
        window.close()
        session.close()
        app.processEvents()
        torch.set_num_threads(threads)
    figures = {}
    for name, (probe, n_requests), direction in ((("gui_display", forward, "forward (->)"),
                                                  ("gui_display_back", back, "backward (<-)"))):
        latencies = probe.latencies_ms
        detail = {"direction": direction,
                  "delivered_p50_ms": percentile(probe.delivered_ms, 50),
                  "delivered_p95_ms": percentile(probe.delivered_ms, 95),
                  "turn_end_p50_ms": percentile(probe.turn_end_ms, 50),
                  "turn_end_p95_ms": percentile(probe.turn_end_ms, 95),
                  "n_requests": n_requests, "n_painted": len(latencies),
                  "n_coalesced": n_requests - len(latencies), "step_ms": step_ms,
                  "model": model_version, **background,
                  "note": "offscreen Qt; request -> end of the video viewport's paint of the frame"}
        figures[f"{name}_p50_ms"] = figure(percentile(latencies, 50), "ms", **detail)
        figures[f"{name}_p95_ms"] = figure(percentile(latencies, 95), "ms", "gui_p95_ms", **detail)
    return figures
