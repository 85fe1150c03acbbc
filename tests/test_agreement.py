"""Inter-coder agreement against hand-computed figures, model events, CSV export and the CLI."""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from microau_gui.cli import main as cli_main
from microau_gui.core.aus import parse_au_string
from microau_gui.spotting.agreement import (CodedEvent, compare_coders, events_from_frame_probs,
                                            write_agreement_csv)
from microau_gui.store.export import export_json
from microau_gui.store.project import Project
from microau_gui.store.records import MediaFacts

ROOT = Path(__file__).resolve().parents[1]


def _ev(onset, apex, offset, *aus, video="v1"):
    return CodedEvent(video=video, onset=onset, offset=offset, apex=apex, aus=frozenset(aus))


# Coder A: AU12 on frames 2..7 and AU4 on 12..14. Coder B: AU12 on 4..9 only. 20 frames.
A = [_ev(2, 5, 7, "AU12"), _ev(12, 13, 14, "AU4")]
B = [_ev(4, 6, 9, "AU12")]


def test_kappa_matches_the_hand_computation():
    result = compare_coders(A, B, n_frames={"v1": 20})
    kappa = {k.au: k for k in result.per_au}
    assert list(kappa) == ["AU4", "AU12"]
    # AU12: both 4..7 (4), A only 2,3 (2), B only 8,9 (2), neither 12. p_o = 16/20 = 0.8,
    # p_e = 0.3 * 0.3 + 0.7 * 0.7 = 0.58, kappa = 0.22 / 0.42.
    assert kappa["AU12"].kappa == pytest.approx(0.22 / 0.42)
    assert kappa["AU12"].observed == pytest.approx(0.8)
    assert (kappa["AU12"].frames_a, kappa["AU12"].frames_b, kappa["AU12"].n_frames) == (6, 6, 20)
    # AU4: only A marked it (3 frames). p_o = 0.85 = p_e: kappa 0.
    assert kappa["AU4"].kappa == pytest.approx(0.0)
    assert result.mean_kappa == pytest.approx((0.22 / 0.42 + 0.0) / 2)
    assert result.lengths_known


def test_event_f1_and_timing_match_the_hand_computation():
    result = compare_coders(A, B, n_frames={"v1": 20})
    # (2..7) vs (4..9): IoU 4/8 = 0.5, a match. A's AU4 event has no partner: FN.
    assert (result.events.tp, result.events.fp, result.events.fn) == (1, 0, 1)
    assert result.events.f1 == pytest.approx(2 / 3)
    assert result.timing.onset == 2.0 and result.timing.offset == 2.0
    assert result.timing.apex == 1.0
    assert result.timing.n_matched == 1


def test_timing_is_a_mean_over_matched_events_and_videos():
    a = [_ev(10, 12, 20, "AU1"), _ev(50, 55, 60, "AU1"), _ev(5, 8, 9, "AU2", video="v2")]
    b = [_ev(11, 14, 21, "AU1"), _ev(47, None, 60, "AU1"), _ev(5, 6, 9, "AU2", video="v2"),
         _ev(80, 82, 85, "AU1")]  # unmatched: FP
    result = compare_coders(a, b, n_frames={"v1": 100, "v2": 30})
    assert (result.events.tp, result.events.fp, result.events.fn) == (3, 1, 0)
    assert result.timing.onset == pytest.approx((1 + 3 + 0) / 3)
    assert result.timing.offset == pytest.approx((1 + 0 + 0) / 3)
    # One pair has no apex in B: the apex error averages the other two (2 and 2).
    assert result.timing.apex == pytest.approx(2.0) and result.timing.n_apex == 2


def test_kappa_uses_scikit_learn_over_pooled_frames():
    from sklearn.metrics import cohen_kappa_score

    a = [_ev(0, 1, 3, "AU1"), _ev(2, 2, 4, "AU1", video="v2")]
    b = [_ev(1, 2, 3, "AU1"), _ev(0, 1, 4, "AU1", video="v2")]
    result = compare_coders(a, b, n_frames={"v1": 6, "v2": 8})
    frames_a = np.r_[[1, 1, 1, 1, 0, 0], [0, 0, 1, 1, 1, 0, 0, 0]]
    frames_b = np.r_[[0, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 0, 0, 0]]
    assert result.per_au[0].kappa == pytest.approx(cohen_kappa_score(frames_a, frames_b))


def test_unknown_lengths_end_at_the_last_offset_and_are_reported():
    result = compare_coders(A, B)
    assert not result.lengths_known
    assert result.per_au[0].n_frames == 15  # AU4 ... up to A's last offset 14


def test_identical_codings_agree_perfectly():
    result = compare_coders(A, A, n_frames={"v1": 20})
    assert all(k.kappa == pytest.approx(1.0) for k in result.per_au)
    assert result.events.f1 == 1.0 and result.timing.onset == 0.0


def test_model_events_from_thresholded_frame_probabilities():
    frames = np.arange(10)
    probs = np.zeros((10, 2))
    probs[:, 0] = [0, 0, .6, .7, .9, .8, .2, 0, .55, 0]  # AU12
    probs[3, 1] = 0.7  # AU4 on frame 3
    events = events_from_frame_probs("v1", frames, probs, ["AU12", "AU4"], threshold=0.5)
    assert [(e.onset, e.apex, e.offset) for e in events] == [(2, 4, 5), (8, 8, 8)]
    assert events[0].aus == {"AU12", "AU4"} and events[1].aus == {"AU12"}
    assert len(events_from_frame_probs("v1", frames, probs, ["AU12", "AU4"], min_frames=2)) == 1
    # Frames that were not analysed (gated) end a run.
    gapped = events_from_frame_probs("v1", [0, 1, 2, 5, 6], np.ones((5, 1)), ["AU1"])
    assert [(e.onset, e.offset) for e in gapped] == [(0, 2), (5, 6)]


def test_coder_versus_model_figures():
    probs = np.zeros((20, 1))
    probs[4:9, 0] = [0.6, 0.8, 0.95, 0.7, 0.6]  # model: AU12 on 4..8, apex 6
    model = events_from_frame_probs("v1", np.arange(20), probs, ["AU12"])
    result = compare_coders(A, model, n_frames={"v1": 20}, aus=["AU12"])
    # A: 2..7, model 4..8: IoU 4/7 -> matched; onset error 2, apex 1, offset 1.
    assert result.events.tp == 1
    assert (result.timing.onset, result.timing.apex, result.timing.offset) == (2.0, 1.0, 1.0)
    # AU12 frames: both 4..7 (4), A only 2 (2 frames), model only 8 (1); p_o = 17/20,
    # p_a = 0.3, p_b = 0.25: p_e = 0.075 + 0.525 = 0.6, kappa = 0.25 / 0.4.
    assert result.per_au[0].kappa == pytest.approx(0.25 / 0.4)


def test_agreement_csv_export(tmp_path):
    path = write_agreement_csv(compare_coders(A, B, n_frames={"v1": 20}), tmp_path / "agree.csv")
    rows = list(csv.DictReader(path.open()))
    assert list(rows[0]) == ["measure", "au", "value", "count"]
    by = {(r["measure"], r["au"]): r for r in rows}
    assert float(by[("kappa", "AU12")]["value"]) == pytest.approx(0.22 / 0.42, abs=1e-5)
    assert by[("kappa", "AU12")]["count"] == "20"
    assert float(by[("event_f1", "")]["value"]) == pytest.approx(2 / 3, abs=1e-5)
    assert float(by[("onset_mae_frames", "")]["value"]) == 2.0
    assert by[("event_fn", "")]["value"] == "1"


def test_undefined_kappa_is_empty_in_the_csv(tmp_path):
    # Both coders mark AU1 on every frame: chance agreement is 1, kappa undefined.
    a = [_ev(0, 1, 9, "AU1")]
    result = compare_coders(a, a, n_frames={"v1": 10})
    assert math.isnan(result.per_au[0].kappa)
    rows = list(csv.DictReader(write_agreement_csv(result, tmp_path / "k.csv").open()))
    assert [r["value"] for r in rows if r["measure"] == "kappa"] == [""]


# -- the command line -------------------------------------------------------------------------

def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_agreement_cli_between_two_coders(tmp_path, capsys):
    a = _write(tmp_path / "a.csv", "video,onset,apex,offset,aus\nv1.mp4,2,5,7,R12\nv1.mp4,12,13,14,4\n")
    b = _write(tmp_path / "b.csv", "video,onset,apex,offset,aus\nv1.mp4,4,6,9,12B\n")
    out = tmp_path / "agree.csv"
    assert cli_main(["agreement", str(a), str(b), "--n-frames", "20", "--out", str(out)]) == 0
    by = {(r["measure"], r["au"]): r["value"] for r in csv.DictReader(out.open())}
    assert float(by[("kappa", "AU12")]) == pytest.approx(0.22 / 0.42, abs=1e-5)
    assert float(by[("event_f1", "")]) == pytest.approx(2 / 3, abs=1e-5)
    assert "kappa" in capsys.readouterr().out


def test_agreement_cli_coder_versus_per_frame_model(tmp_path):
    a = _write(tmp_path / "a.csv", "video,onset,apex,offset,aus\ninterview.mp4,2,5,7,12\n")
    lines = ["frame_idx,t_s,face_found,AU4,AU12"]
    probs = [0, 0, 0, 0, .6, .8, .95, .7, .6] + [0] * 11
    lines += [f"{i},{i / 30:.3f},1,0.1,{p}" for i, p in enumerate(probs)]
    model = _write(tmp_path / "analyze.csv", "\n".join(lines) + "\n")
    out = tmp_path / "agree.csv"
    assert cli_main(["agreement", str(a), str(model), "--n-frames", "20", "--out", str(out)]) == 0
    by = {(r["measure"], r["au"]): r["value"] for r in csv.DictReader(out.open())}
    assert float(by[("kappa", "AU12")]) == pytest.approx(0.25 / 0.4, abs=1e-5)
    assert float(by[("onset_mae_frames", "")]) == 2.0


def test_agreement_cli_reads_two_coders_from_one_project_export(tmp_path):
    with Project.create(tmp_path / "p.maus") as project:
        video = project.add_video(tmp_path / "media" / "v1.mp4",
                                  MediaFacts(n_frames=20, fps=30.0, width=64, height=64),
                                  digest="0" * 64)
        for onset, apex, offset, coder, aus_text in ((2, 5, 7, "ann", "12"), (12, 13, 14, "ann", "4"),
                                                     (4, 6, 9, "bob", "L12B")):
            project.add_event(video.id, onset, apex, offset, parse_au_string(aus_text).codes,
                              coder=coder)
        export = tmp_path / "p.json"
        export_json(project, export)
    out = tmp_path / "agree.csv"
    assert cli_main(["agreement", str(export), str(export), "--coder-a", "ann", "--coder-b", "bob",
                     "--out", str(out)]) == 0
    by = {(r["measure"], r["au"]): r["value"] for r in csv.DictReader(out.open())}
    assert float(by[("kappa", "AU12")]) == pytest.approx(0.22 / 0.42, abs=1e-5)
    assert by[("lengths_known", "")] == "1"  # 20 frames from the export


@pytest.mark.parametrize("case", ["missing", "bad_row", "offset_before_onset", "bad_aus", "out_dir",
                                  "loose_export"])
def test_agreement_errors_are_one_line(tmp_path, case):
    good = _write(tmp_path / "good.csv", "video,onset,offset,aus\nv,1,5,12\n")
    a, b, out = good, good, tmp_path / "o.csv"
    if case == "missing":
        b = tmp_path / "nope.csv"
    elif case == "bad_row":
        b = _write(tmp_path / "bad.csv", "video,onset,offset,aus\nv,1,five,12\n")
    elif case == "offset_before_onset":
        b = _write(tmp_path / "bad.csv", "video,onset,offset,aus\nv,9,5,12\n")
    elif case == "bad_aus":
        b = _write(tmp_path / "bad.csv", "video,onset,offset,aus\nv,1,5,smile\n")
    elif case == "loose_export":  # a null coder: the export schema (#15 D16) refuses it
        b = _write(tmp_path / "loose.json", json.dumps({
            "format": "microau-project-export", "format_version": 1, "subjects": [],
            "videos": [{"id": 1, "path": "v.mp4", "name": "v", "n_frames": 20}],
            "model_versions": [], "notes": [],
            "events": [{"video": 1, "onset": 2, "apex": 5, "offset": 7, "coder": None,
                        "aus": [], "expression_type": "micro"}]}))
    else:
        out = tmp_path / "no" / "such" / "o.csv"
    proc = subprocess.run([sys.executable, "main.py", "agreement", str(a), str(b), "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), proc.stderr


def test_spotted_candidates_without_aus_give_events_and_timing_only():
    spotted = [CodedEvent("v1", 3, 8, 6)]  # a candidate: interval, no AUs
    result = compare_coders(A, spotted, n_frames={"v1": 20})
    assert result.per_au == () and math.isnan(result.mean_kappa)
    assert result.events.tp == 1 and result.timing.onset == 1.0
