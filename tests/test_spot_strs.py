"""`eval-spot --mode corrected|strs` on hand-made edge cases, and spot-then-recognise scores.

Every expected count below is worked out by hand from the rules in `spotting.intervals`: the
corrected mode matches one-to-one by best IoU; the strs mode counts as the published STRS tool
(first prediction in file order takes a ground truth, one prediction may take two, only
ground-truth videos of subjects with predictions count).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from microau_gui.cli import main as cli_main
from microau_gui.spotting.intervals import SpotScore, evaluate_spotting, score_analysis

ROOT = Path(__file__).resolve().parents[1]


def _scores(pred, truth, mode):
    result = evaluate_spotting(pred, truth, mode=mode)
    return result.micro


@pytest.mark.parametrize("mode, expected", [("corrected", SpotScore(1, 0, 1)),
                                            ("strs", SpotScore(2, 0, 0))])
def test_one_prediction_on_two_ground_truths(mode, expected):
    # Two overlapping truths, each with IoU 10/11 against the prediction.
    truth = {"v": [(0, 9, "micro"), (1, 10, "micro")]}
    assert _scores({"v": [(0, 10, "micro")]}, truth, mode) == expected


@pytest.mark.parametrize("mode, expected", [("corrected", SpotScore(1, 0, 1)),
                                            ("strs", SpotScore(2, 0, 0))])
def test_iou_exactly_one_half_is_a_hit(mode, expected):
    # (0..19) against (0..9) and (10..19): 10 shared frames of 20 each time.
    truth = {"v": [(0, 9, "micro"), (10, 19, "micro")]}
    assert _scores({"v": [(0, 19, "micro")]}, truth, mode) == expected
    # One frame short of half is a miss in both modes.
    assert _scores({"v": [(0, 20, "micro")]}, {"v": [(0, 9, "micro")]}, mode) == SpotScore(0, 1, 1)


@pytest.mark.parametrize("mode", ["corrected", "strs"])
def test_duplicate_predictions_of_one_truth_are_false_positives(mode):
    truth = {"v": [(100, 109, "micro")]}
    pred = {"v": [(101, 110, "micro"), (100, 109, "micro"), (99, 108, "micro")]}
    assert _scores(pred, truth, mode) == SpotScore(1, 2, 0)


def test_which_duplicate_takes_the_truth_differs_between_modes():
    truth = {"v": [(100, 109, "micro", "positive")]}
    pred = {"v": [(101, 110, "micro", "negative"), (100, 109, "micro", "positive")]}
    corrected, strs = [], []
    evaluate_spotting(pred, truth, mode="corrected", pairs_out=corrected)
    evaluate_spotting(pred, truth, mode="strs", pairs_out=strs)
    assert [(p[3], g[3]) for p, g, _ in corrected] == [("positive", "positive")]  # best IoU
    assert [(p[3], g[3]) for p, g, _ in strs] == [("negative", "positive")]  # first in the file


@pytest.mark.parametrize("mode, expected", [("corrected", SpotScore(0, 0, 2)),
                                            ("strs", SpotScore(0, 0, 0))])
def test_empty_predictions(mode, expected):
    truth = {"s1/a.mp4": [(0, 9, "micro")], "s2/b.mp4": [(5, 9, "micro")]}
    assert _scores({}, truth, mode) == expected


def test_strs_counts_only_ground_truth_videos_of_subjects_with_predictions():
    truth = {"s1/a.mp4": [(0, 9, "micro")], "s1/b.mp4": [(0, 9, "micro")],
             "s2/c.mp4": [(0, 9, "micro")]}
    pred = {"s1/a.mp4": [(0, 9, "micro")], "s3/d.mp4": [(0, 9, "micro")]}
    # s1/b is an FN (its subject has predictions); s2/c (no prediction of s2) and s3/d (no
    # ground truth) are not counted at all.
    assert _scores(pred, truth, "strs") == SpotScore(1, 0, 1)
    assert _scores(pred, truth, "corrected") == SpotScore(1, 1, 2)


def test_analysis_scores_by_hand():
    # neg: tp 1, fp 0, fn 1 -> P 1, R 1/2; pos: tp 1, fp 1, fn 0 -> P 1/2, R 1; sur: all 1.
    pairs = [("pos", "pos"), ("pos", "neg"), ("neg", "neg"), ("sur", "sur")]
    score = score_analysis(pairs, ["neg", "pos", "sur"])
    assert score.precision == pytest.approx(2.5 / 3) and score.recall == pytest.approx(2.5 / 3)
    assert score.uf1 == pytest.approx((2 / 3 + 2 / 3 + 1) / 3)
    assert score.f1 == pytest.approx(2.5 / 3)
    # Ground-truth classes outside the analysed set are left out.
    assert score_analysis([*pairs, ("pos", "other")], ["neg", "pos", "sur"]).n_pairs == 4


def test_tool_defects_only_behind_the_flag():
    # neg: no TP -> 0; pos: tp 1, fp 2 -> P 1/3, R 1. Mean P 1/6, mean R 1/2.
    pairs = [("pos", "pos"), ("pos", "neg"), ("pos", "neg")]
    right = score_analysis(pairs, ["neg", "pos"])
    tool = score_analysis(pairs, ["neg", "pos"], tool_defects=True)
    assert right.uar == pytest.approx(0.5) and tool.uar == pytest.approx(1 / 6)
    assert right.f1 == tool.f1 == pytest.approx(0.25)
    # All analysed pairs one class and right: the tool's 1x1 confusion matrix scores 0.
    assert score_analysis([("pos", "pos")] * 2, ["pos"]).uf1 == 1.0
    assert score_analysis([("pos", "pos")] * 2, ["pos"], tool_defects=True).uf1 == 0.0


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_eval_spot_cli_strs_with_emotions(tmp_path):
    gt = _write(tmp_path / "gt.csv", "video,onset,offset,type,emotion\n"
                "s1/a.mp4,0,9,micro,positive\ns1/a.mp4,1,10,micro,negative\n"
                "s1/a.mp4,100,109,micro,negative\n")
    pred = _write(tmp_path / "pred.csv", "video,onset,offset,type,emotion\n"
                  "a.mp4,0,10,micro,positive\na.mp4,300,309,micro,negative\n")
    report = tmp_path / "r.json"
    args = ["eval-spot", "--pred", str(pred), "--gt", str(gt), "--json", str(report)]
    assert cli_main([*args, "--mode", "strs"]) == 0
    strs = json.loads(report.read_text())
    assert (strs["overall"]["tp"], strs["overall"]["fp"], strs["overall"]["fn"]) == (2, 1, 1)
    # Analysed pairs: (positive, positive), (positive, negative) over classes negative, positive:
    # negative P 0 R 0; positive P 1/2 R 1 -> mean P 1/4, mean R 1/2, F1 1/3.
    assert strs["analysis"]["f1"] == pytest.approx(1 / 3)
    assert strs["analysis"]["strs"] == pytest.approx(strs["overall"]["f1"] / 3)
    assert cli_main([*args, "--mode", "corrected"]) == 0
    corrected = json.loads(report.read_text())
    assert (corrected["overall"]["tp"], corrected["overall"]["fp"], corrected["overall"]["fn"]) == (1, 1, 2)
    assert corrected["mode"] == "corrected"


def test_eval_spot_cli_empty_prediction_file(tmp_path):
    gt = _write(tmp_path / "gt.csv", "video,onset,offset,type\nv.mp4,0,9,micro\n")
    pred = _write(tmp_path / "pred.csv", "")
    report = tmp_path / "r.json"
    assert cli_main(["eval-spot", "--pred", str(pred), "--gt", str(gt), "--json", str(report)]) == 0
    assert json.loads(report.read_text())["overall"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0,
                                                          "tp": 0, "fp": 0, "fn": 1}


@pytest.mark.parametrize("case", ["other_video", "defects_without_strs", "classes_without_emotions"])
def test_eval_spot_cli_refuses_with_one_line(tmp_path, case):
    gt = _write(tmp_path / "gt.csv", "video,onset,offset,type\ninterview.mp4,0,9,micro\n")
    pred = _write(tmp_path / "pred.csv", "video,onset,offset,type\ninterview.mp4,0,9,micro\n")
    extra = []
    if case == "other_video":
        pred = _write(tmp_path / "pred.csv", "video,onset,offset,type\nclip.mp4,0,9,micro\n")
    elif case == "defects_without_strs":
        extra = ["--strs-tool-defects"]
    else:
        extra = ["--mode", "strs", "--classes", "positive"]
    out = subprocess.run([sys.executable, "main.py", "eval-spot", "--pred", str(pred), "--gt", str(gt),
                          *extra], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode != 0
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), out.stderr


def test_eval_spot_help_names_the_tool_defects():
    out = subprocess.run([sys.executable, "main.py", "eval-spot", "--help"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert "--strs-tool-defects" in out.stdout and "mean precision" in out.stdout
