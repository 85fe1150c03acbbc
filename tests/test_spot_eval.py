"""The MEGC spotting metric on hand-computed cases, gated ranges, and the `eval-spot` command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from microau_gui.cli import main as cli_main
from microau_gui.core.aus import parse_au_string
from microau_gui.core.types import Sample
from microau_gui.spotting.intervals import (SpotScore, evaluate_spotting, gate_ranges, interval_iou,
                                            match_intervals)
from microau_gui.spotting.spotter import Candidate

ROOT = Path(__file__).resolve().parents[1]


def test_iou_counts_inclusive_frames():
    assert interval_iou((10, 19), (10, 19)) == 1.0
    assert interval_iou((10, 19), (20, 29)) == 0.0
    # (12..21) vs (10..19): 8 shared frames, 12 in the union.
    assert interval_iou((12, 21), (10, 19)) == pytest.approx(8 / 12)
    assert interval_iou((5, 5), (5, 5)) == 1.0


def test_partial_overlaps_hit_only_from_half_iou():
    truth = {"v": [(10, 19, "micro")]}
    # IoU 5/15 = 0.33: a miss, so one FP and one FN.
    miss = evaluate_spotting({"v": [(15, 24, "micro")]}, truth)
    assert (miss.micro.tp, miss.micro.fp, miss.micro.fn) == (0, 1, 1)
    # IoU 8/12 = 0.67: a hit.
    hit = evaluate_spotting({"v": [(12, 21, "micro")]}, truth)
    assert (hit.micro.tp, hit.micro.fp, hit.micro.fn) == (1, 0, 0)
    # Exactly 0.5 (10 of 20 frames) is a hit.
    edge = evaluate_spotting({"v": [(10, 29, "micro")]}, truth)
    assert edge.micro.tp == 1


def test_duplicate_predictions_of_one_truth_count_once():
    truth = {"v": [(100, 109, "micro")]}
    pred = {"v": [(100, 109, "micro"), (101, 110, "micro"), (99, 108, "micro")]}
    result = evaluate_spotting(pred, truth)
    assert (result.micro.tp, result.micro.fp, result.micro.fn) == (1, 2, 0)
    assert result.micro.precision == pytest.approx(1 / 3)
    assert result.micro.recall == 1.0
    assert result.micro.f1 == pytest.approx(2 * (1 / 3) * 1 / (1 / 3 + 1))


def test_prediction_overlapping_two_truths():
    # Hits the first (IoU 20/21), barely touches the second (3/28): TP for one, the other is FN.
    result = evaluate_spotting({"v": [(0, 20, "micro")]}, {"v": [(0, 19, "micro"), (18, 27, "micro")]})
    assert (result.micro.tp, result.micro.fp, result.micro.fn) == (1, 0, 1)
    # Spans both exactly: IoU 0.5 with each; it may hit only one of them (the earlier on a tie).
    assert match_intervals([(0, 19)], [(0, 9), (10, 19)]) == [(0, 0, 0.5)]
    both = evaluate_spotting({"v": [(0, 19, "micro")]}, {"v": [(0, 9, "micro"), (10, 19, "micro")]})
    assert (both.micro.tp, both.micro.fp, both.micro.fn) == (1, 0, 1)
    # Straddles two with IoU 7/21 and 9/19: neither is hit; one FP, two FNs.
    neither = evaluate_spotting({"v": [(3, 20, "micro")]}, {"v": [(0, 9, "micro"), (12, 21, "micro")]})
    assert (neither.micro.tp, neither.micro.fp, neither.micro.fn) == (0, 1, 2)


def test_matching_is_greedy_by_iou_and_one_to_one():
    # p0-g0 1.0, p1-g1 0.82, p1-g0 0.67, p0-g1 0.54: the best pairs win and both are hits.
    pairs = match_intervals([(0, 9), (2, 11)], [(0, 9), (3, 12)])
    assert [(i, j) for i, j, _ in pairs] == [(0, 0), (1, 1)]
    assert pairs[1][2] == pytest.approx(9 / 11)


def test_types_are_scored_separately_and_summed_overall():
    truth = {"a": [(0, 9, "micro"), (100, 159, "macro")], "b": [(50, 59, "micro")]}
    pred = {
        "a": [(1, 10, "micro"),  # hit (IoU 9/11)
              (100, 160, "macro"),  # hit
              (300, 309, "micro")],  # FP
        "b": [(50, 59, "macro")],  # right place, wrong type: macro FP and micro FN
    }
    result = evaluate_spotting(pred, truth)
    assert result.micro == SpotScore(tp=1, fp=1, fn=1)
    assert result.macro == SpotScore(tp=1, fp=1, fn=0)
    assert result.overall == SpotScore(tp=2, fp=2, fn=1)
    assert result.overall.f1 == pytest.approx(2 * 2 / (2 * 2 + 2 + 1))
    report = result.as_dict()
    assert set(report) == {"overall", "micro", "macro"}
    assert set(report["micro"]) == {"precision", "recall", "f1", "tp", "fp", "fn"}


def test_predictions_in_another_video_do_not_hit():
    result = evaluate_spotting({"b": [(0, 9, "micro")]}, {"a": [(0, 9, "micro")]})
    assert result.micro == SpotScore(tp=0, fp=1, fn=1)
    assert result.micro.f1 == 0.0


def test_gate_ranges_merge_overlaps_and_clip_to_the_video():
    cands = [Candidate(10, 12, 14, "micro", 9.0, ("AU12",)),
             Candidate(20, 22, 25, "micro", 9.0, ("AU4",)),
             Candidate(95, 97, 99, "micro", 9.0, ("AU1",))]
    # margin 0.2 s at 30 fps = 6 frames: [4, 21) and [14, 32) merge; [89, 106) is clipped at 100.
    assert gate_ranges(cands, n_frames=100, fps=30.0, margin_s=0.2) == [(4, 32), (89, 100)]
    assert gate_ranges([(0, 3)], n_frames=50, fps=30.0, margin_s=0.0) == [(0, 4)]
    assert gate_ranges([], n_frames=50, fps=30.0) == []


def test_gate_ranges_keep_only_the_apex_of_macro_expressions():
    macro = Candidate(100, 150, 219, "macro", 30.0, ("AU12",))
    assert gate_ranges([macro], n_frames=1000, fps=30.0, margin_s=0.2) == [(144, 157)]
    assert gate_ranges([macro], n_frames=1000, fps=30.0, margin_s=0.2,
                       macro_apex_only=False) == [(94, 226)]


# -- the command line -------------------------------------------------------------------------

def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_eval_spot_cli_with_our_csv_as_ground_truth(tmp_path, capsys):
    gt = _write(tmp_path / "gt.csv", "video,onset,apex,offset,type\n"
                "clip.mp4,10,14,19,micro\nclip.mp4,100,120,159,macro\nclip.mp4,300,303,309,micro\n")
    pred = _write(tmp_path / "pred.csv", "video,onset,apex,offset,type,score,regions\n"
                  "clip.mp4,12,15,21,micro,12.0,AU12\nclip.mp4,13,15,20,micro,9.0,AU12\n"
                  "clip.mp4,104,120,150,macro,30.0,AU4\n")
    report = tmp_path / "r.json"
    assert cli_main(["eval-spot", "--pred", str(pred), "--gt", str(gt), "--json", str(report)]) == 0
    scores = json.loads(report.read_text())
    assert scores["micro"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "tp": 1, "fp": 1, "fn": 1}
    assert scores["macro"]["tp"] == 1 and scores["macro"]["fp"] == 0
    assert scores["overall"]["tp"] == 2 and scores["overall"]["fn"] == 1
    assert "micro" in capsys.readouterr().out


@pytest.fixture(scope="module")
def megc_media(tmp_path_factory):
    """Two short real videos in subject folders and a MEGC (CAS(ME)^2 layout) sheet for them."""
    from microau_gui.media import write_video
    from microau_gui.store.importers import write_megc_sheet

    root = tmp_path_factory.mktemp("megc")
    frames = [np.full((48, 48, 3), 40 + i, np.uint8) for i in range(200)]
    samples = []
    for subject, clip in (("15", "15_0101"), ("16", "16_0102")):
        (root / f"s{subject}").mkdir()
        path = root / f"s{subject}" / f"{clip}.mp4"
        write_video(path, frames, fps=30.0, codec="mjpeg")
        for onset, apex, offset, kind in ((10, 13, 19, "micro"), (100, 120, 159, "macro")):
            samples.append(Sample(subject=subject, clip=clip, media_path=path, onset=onset, apex=apex,
                                  offset=offset, aus=parse_au_string("4+7").codes, expression_type=kind,
                                  onset_number=onset, apex_number=apex, offset_number=offset))
    write_megc_sheet(samples, root / "gt.xlsx")
    return root


def test_eval_spot_cli_reads_a_megc_sheet(megc_media, tmp_path):
    pred = _write(tmp_path / "pred.csv", "video,onset,apex,offset,type,score,regions\n"
                  "15_0101.mp4,11,13,19,micro,10,AU4\n"   # hit
                  "15_0101.mp4,40,42,45,micro,10,AU4\n"   # FP
                  "16_0102.mp4,100,121,150,macro,10,AU4\n")  # hit; 16's micro is missed
    report = tmp_path / "r.json"
    code = cli_main(["eval-spot", "--pred", str(pred), "--gt", str(megc_media / "gt.xlsx"),
                     "--json", str(report)])
    assert code == 0
    scores = json.loads(report.read_text())
    assert (scores["micro"]["tp"], scores["micro"]["fp"], scores["micro"]["fn"]) == (1, 1, 1)
    assert (scores["macro"]["tp"], scores["macro"]["fp"], scores["macro"]["fn"]) == (1, 0, 1)


@pytest.mark.parametrize("case", ["missing_pred", "bad_onset", "no_columns", "missing_gt"])
def test_eval_spot_errors_are_one_line(tmp_path, case):
    good = _write(tmp_path / "good.csv", "video,onset,offset,type\nv.mp4,1,5,micro\n")
    pred, gt = good, good
    if case == "missing_pred":
        pred = tmp_path / "nope.csv"
    elif case == "bad_onset":
        pred = _write(tmp_path / "bad.csv", "video,onset,offset,type\nv.mp4,abc,5,micro\n")
    elif case == "no_columns":
        gt = _write(tmp_path / "junk.csv", "hello,world\n1,2\n")
    else:
        gt = tmp_path / "nope.xlsx"
    out = subprocess.run([sys.executable, "main.py", "eval-spot", "--pred", str(pred), "--gt", str(gt)],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode != 0
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), out.stderr
    assert "Traceback" not in out.stderr


def test_candidate_csv_round_trip(tmp_path):
    from microau_gui.spotting.files import read_candidates_csv, write_candidates_csv

    cands = [Candidate(10, 12, 14, "micro", 12.25, ("AU12", "AU6")),
             Candidate(100, 130, 170, "macro", 40.5, ("AU4",))]
    path = write_candidates_csv(tmp_path / "c.csv", "interview.mp4", cands)
    assert read_candidates_csv(path) == cands
    assert read_candidates_csv(path, video="other.mp4") == []


def test_video_keys_pair_by_path_name_or_stem():
    from microau_gui.core.errors import UserError
    from microau_gui.spotting.files import match_video_keys

    truth = ["s15/15_0101.mp4", "s16/16_0102.mp4"]
    pair = match_video_keys(truth, ["15_0101.mp4", "16_0102"])
    assert pair("15_0101.mp4") == "s15/15_0101.mp4" and pair("16_0102") == "s16/16_0102.mp4"
    # One video each: a file that names none pairs whatever the names; two named, different
    # videos are an error, never scored against each other.
    assert match_video_keys(["a.mp4"], ["pred"], other_named=False)("pred") == "a.mp4"
    assert match_video_keys(["gt"], ["interview.mp4"], reference_named=False)("interview.mp4") == "gt"
    assert match_video_keys(["s15/15_0101.mp4"], ["15_0101.mp4"])("15_0101.mp4") == "s15/15_0101.mp4"
    with pytest.raises(UserError, match="no video in common"):
        match_video_keys(["a.mp4"], ["interview.mp4"])
    with pytest.raises(UserError, match="no video in common"):
        match_video_keys(truth, ["x.mp4", "y.mp4"])
