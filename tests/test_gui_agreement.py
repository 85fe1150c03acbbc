"""The inter-coder agreement view, driven like a lab member drives it: Review > Inter-coder
agreement (Ctrl+Shift+K), choose two coders (or a coder and the model), Compare, read the kappa
table, event F1 and timing errors, Export CSV.

A real SQLite project with two image-folder clips: coders "alice" and "bob" both code the first
clip, only alice codes the second (so it is left out), and a model version has cached per-frame
probabilities for the first clip. Every figure on screen is checked against
`spotting.agreement` computed directly on the same events, written out here by hand.
"""

from __future__ import annotations

import csv
import math

import cv2
import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog
from gui_fixtures import shown_window
from test_session_fixtures import CLIP_FRAMES, write_face_clip

from microau_gui.core.aus import AUCode, Side
from microau_gui.core.types import FramePrediction
from microau_gui.session.opening import ensure_video, open_or_create_project
from microau_gui.spotting.agreement import CodedEvent, compare_coders, events_from_frame_probs

pytestmark = pytest.mark.qt_log_ignore(r"This plugin does not support propagateSizeHints")

SECOND_CLIP_FRAMES = 30
# (onset, apex, offset, AUs) per coder on the first clip.
ALICE = [(2, 5, 7, (AUCode(12),)), (12, 13, 14, (AUCode(4),)),
         (30, 33, 38, (AUCode(1), AUCode(2))), (45, 47, 50, (AUCode(12, Side.LEFT, "B"),))]
BOB = [(4, 6, 9, (AUCode(12),)), (30, 34, 37, (AUCode(1),)), (52, 54, 56, (AUCode(6),))]
ALICE_SECOND_CLIP = [(3, 5, 8, (AUCode(4),))]
MODEL_VOCAB = ("AU1", "AU2", "AU4", "AU6", "AU12")


def _model_probs() -> np.ndarray:
    """(60, 5) the model's cached probabilities: AU12 on 3..8 (peak 5), AU1 weaker on 31..36."""
    probs = np.full((CLIP_FRAMES, len(MODEL_VOCAB)), 0.1, np.float32)
    probs[3:9, 4] = 0.9
    probs[5, 4] = 0.95
    probs[31:37, 0] = 0.8
    return probs


def _coded(rows, video="v1") -> list[CodedEvent]:
    return [CodedEvent(video, onset, offset, apex, frozenset(a.code for a in aus))
            for onset, apex, offset, aus in rows]


@pytest.fixture
def project_path(tmp_path, astronaut_path):
    rgb = cv2.cvtColor(cv2.imread(str(astronaut_path)), cv2.COLOR_BGR2RGB)
    face_clip = write_face_clip(tmp_path / "clips" / "EP01_01", rgb)
    second = write_face_clip(tmp_path / "clips" / "EP02_03", rgb, n_frames=SECOND_CLIP_FRAMES)
    path = tmp_path / "agreement.maus"
    project = open_or_create_project(path)
    try:
        first_video = ensure_video(project, face_clip)
        second_video = ensure_video(project, second)
        assert first_video.n_frames == CLIP_FRAMES
        for coder, rows, video in (("alice", ALICE, first_video), ("bob", BOB, first_video),
                                   ("alice", ALICE_SECOND_CLIP, second_video)):
            for onset, apex, offset, aus in rows:
                project.add_event(video.id, onset, apex, offset, aus, coder=coder)
        # A model version known to the project (its checkpoint is elsewhere: not loaded here)
        # with cached probabilities for every frame of the first clip.
        version = project.models.add("m-test", tmp_path / "m-test", MODEL_VOCAB)
        probs = _model_probs()
        project.predictions.put_many(first_video.id, version.id, [
            FramePrediction(frame_idx=f, reference_idx=max(0, f - 3), model_version="m-test",
                            vocab=MODEL_VOCAB, face_found=True, probs=probs[f])
            for f in range(CLIP_FRAMES)])
    finally:
        project.close()
    return path


@pytest.fixture
def window(qtbot, tmp_path):
    empty = tmp_path / "no-weights"  # no model to load: the figures come from the store
    empty.mkdir()
    yield from shown_window(qtbot, empty)


def _open_panel(qtbot, window, project_path):
    session = window.session
    with qtbot.waitSignal(session.frame_loaded, timeout=15000):
        session.open_path(project_path)
    assert not window.docks["agreement"].isVisible()
    qtbot.keyClick(window, Qt.Key.Key_K, Qt.KeyboardModifier.ControlModifier
                   | Qt.KeyboardModifier.ShiftModifier)
    assert window.docks["agreement"].isVisible()
    return window.agreement_panel


def _choose(box, label: str) -> None:
    index = box.findText(label)
    assert index >= 0, f"{label!r} is not offered: {[box.itemText(i) for i in range(box.count())]}"
    box.setCurrentIndex(index)


def _compare(qtbot, window, panel):
    with qtbot.waitSignal(window.session.agreement.computed, timeout=20000):
        qtbot.mouseClick(panel.compare_button, Qt.MouseButton.LeftButton)
    return panel.report


def _three(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.3f}"


def _assert_panel_shows(panel, expected) -> None:
    """The kappa table, the bar chart, the headline figures and the event line equal `expected`."""
    table = panel.table
    assert table.rowCount() == len(expected.per_au) > 0
    for row, k in enumerate(expected.per_au):
        shown = [table.item(row, c).text() for c in range(table.columnCount())]
        assert shown == [k.au, _three(k.kappa), _three(k.observed), str(k.frames_a),
                         str(k.frames_b), str(k.n_frames)]
    heights = list(panel._bars.opts["height"])
    assert heights == pytest.approx([0.0 if math.isnan(k.kappa) else k.kappa
                                     for k in expected.per_au])
    assert panel.figures["mean_kappa"].text() == _three(expected.mean_kappa)
    assert panel.figures["event_f1"].text() == _three(expected.events.f1)
    for key in ("onset", "apex", "offset"):
        value = getattr(expected.timing, key)
        assert panel.figures[key].text() == ("n/a" if math.isnan(value) else f"{value:.2f} fr")
    ev = expected.events
    assert (f"matched {ev.tp} (IoU ≥ 0.5), A only {ev.fn}, B only {ev.fp}"
            in panel.events_text.text())


def test_two_coders_figures_equal_the_agreement_module_and_export_as_csv(
        qtbot, window, project_path, tmp_path, monkeypatch):
    panel = _open_panel(qtbot, window, project_path)
    labels = [panel.coder_a.itemText(i) for i in range(panel.coder_a.count())]
    assert labels == ["alice", "bob", "model m-test"]
    assert panel.coder_a.currentText() == "alice" and panel.coder_b.currentText() == "bob"
    assert not panel.export_button.isEnabled()  # nothing to export before a comparison

    report = _compare(qtbot, window, panel)
    # Only the first clip is coded by both: the second (alice only) is left out.
    expected = compare_coders(_coded(ALICE), _coded(BOB), n_frames={"v1": CLIP_FRAMES})
    # The hand count behind it: (2..7)~(4..9) IoU 0.5 and (30..38)~(30..37) match, alice's
    # (12..14) and (45..50) and bob's (52..56) do not.
    assert (expected.events.tp, expected.events.fn, expected.events.fp) == (2, 2, 1)
    assert expected.timing.onset == pytest.approx(1.0)  # |2-4|, |30-30|
    assert expected.timing.apex == pytest.approx(1.0)  # |5-6|, |33-34|
    assert expected.timing.offset == pytest.approx(1.5)  # |7-9|, |38-37|
    assert [k.au for k in expected.per_au] == ["AU1", "AU2", "AU4", "AU6", "AU12"]
    assert report.result.per_au == expected.per_au
    _assert_panel_shows(panel, expected)
    status = panel.status.text()
    assert "alice (A) versus bob (B) on 1 video(s)" in status and "EP01_01" in status
    assert "1 video(s) only one of them covers were left out" in status
    assert "EP02_03" not in status

    out = tmp_path / "exported" / "agreement.csv"
    out.parent.mkdir()
    asked = []

    def fake_dialog(*args, **kwargs):
        asked.append(args)
        return str(out), "CSV (*.csv)"

    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(fake_dialog))
    assert panel.export_button.isEnabled()
    qtbot.mouseClick(panel.export_button, Qt.MouseButton.LeftButton)
    assert len(asked) == 1
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert list(rows[0]) == ["measure", "au", "value", "count"]
    by = {(r["measure"], r["au"]): r for r in rows}
    for k in expected.per_au:
        assert float(by[("kappa", k.au)]["value"]) == pytest.approx(k.kappa, abs=1e-5)
        assert by[("kappa", k.au)]["count"] == str(CLIP_FRAMES)
        assert int(by[("frames_a", k.au)]["value"]) == k.frames_a
        assert int(by[("frames_b", k.au)]["value"]) == k.frames_b
    assert float(by[("mean_kappa", "")]["value"]) == pytest.approx(expected.mean_kappa, abs=1e-5)
    assert float(by[("event_f1", "")]["value"]) == pytest.approx(expected.events.f1, abs=1e-5)
    assert (by[("event_tp", "")]["value"], by[("event_fn", "")]["value"],
            by[("event_fp", "")]["value"]) == ("2", "2", "1")
    assert float(by[("onset_mae_frames", "")]["value"]) == pytest.approx(1.0)
    assert float(by[("apex_mae_frames", "")]["value"]) == pytest.approx(1.0)
    assert float(by[("offset_mae_frames", "")]["value"]) == pytest.approx(1.5)
    assert by[("lengths_known", "")]["value"] == "1"
    assert f"wrote {out}" in panel.status.text()

    # Swapping the coders swaps the reference: the FN and FP counts trade places.
    _choose(panel.coder_a, "bob")
    _choose(panel.coder_b, "alice")
    _compare(qtbot, window, panel)
    swapped = compare_coders(_coded(BOB), _coded(ALICE), n_frames={"v1": CLIP_FRAMES})
    assert (swapped.events.fn, swapped.events.fp) == (1, 2)
    _assert_panel_shows(panel, swapped)


def test_coder_versus_model_uses_the_cached_probabilities_and_the_threshold(
        qtbot, window, project_path):
    panel = _open_panel(qtbot, window, project_path)
    _choose(panel.coder_a, "alice")
    _choose(panel.coder_b, "model m-test")
    assert panel.threshold.value() == pytest.approx(0.5)
    _compare(qtbot, window, panel)
    # The store keeps probabilities as float16: compare on what it holds.
    probs = _model_probs().astype(np.float16).astype(np.float32)
    model = events_from_frame_probs("v1", np.arange(CLIP_FRAMES), probs, MODEL_VOCAB, 0.5)
    assert [(e.onset, e.apex, e.offset, set(e.aus)) for e in model] == [
        (3, 5, 8, {"AU12"}), (31, 31, 36, {"AU1"})]
    expected = compare_coders(_coded(ALICE), model, n_frames={"v1": CLIP_FRAMES})
    assert expected.events.tp == 2
    _assert_panel_shows(panel, expected)
    assert "model events: AU probability ≥ 0.50" in panel.status.text()
    assert "1 video(s) only one of them covers were left out" in panel.status.text()

    # A stricter threshold drops the weaker AU1 run: one model event fewer, and it shows.
    panel.threshold.setValue(0.85)
    _compare(qtbot, window, panel)
    strict = events_from_frame_probs("v1", np.arange(CLIP_FRAMES), probs, MODEL_VOCAB, 0.85)
    assert len(strict) == 1
    expected_strict = compare_coders(_coded(ALICE), strict, n_frames={"v1": CLIP_FRAMES})
    _assert_panel_shows(panel, expected_strict)
    assert f"Events: A 4, B {len(strict)}" in panel.events_text.text()


def test_a_new_coder_is_offered_and_comparing_a_source_with_itself_is_refused(
        qtbot, window, project_path):
    panel = _open_panel(qtbot, window, project_path)
    session = window.session
    session.project.add_event(session.video.id, 20, 22, 24, (AUCode(12),), coder="carol")
    qtbot.waitUntil(lambda: panel.coder_b.findText("carol") >= 0, timeout=5000)
    _choose(panel.coder_a, "carol")
    _choose(panel.coder_b, "carol")
    with qtbot.waitSignal(session.failed, timeout=5000) as failed:
        qtbot.mouseClick(panel.compare_button, Qt.MouseButton.LeftButton)
    assert "two different sources" in failed.args[0]
    assert panel.report is None and not panel.export_button.isEnabled()
    assert window._error_box is not None and window._error_box.isVisible()
    window._error_box.close()
