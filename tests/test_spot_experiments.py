"""The spotting study (#20 provenance): the pooled F1 and its bootstrap by hand, and the smallest
study end to end, scored against its own ground-truth sheet as `eval-spot` scores it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from microau_gui.cli import main as cli_main
from microau_gui.cli.spot_experiments import pooled_f1_bootstrap
from microau_gui.spotting.files import read_event_table


def test_pooled_f1_and_paired_bootstrap_by_hand():
    # Three videos in two data sets. a: tp 3 fp 1 fn 0 + tp 1 fp 0 fn 1 + tp 0 fp 0 fn 0 =
    # (4, 1, 1) -> 8/10. b finds nothing: (0, 0, 5) -> 0.
    a = np.array([[3, 1, 0], [1, 0, 1], [0, 0, 0]], dtype=float)
    b = np.array([[0, 0, 3], [0, 0, 2], [0, 0, 0]], dtype=float)
    result = pooled_f1_bootstrap({"a": a, "b": b}, np.array([1, 1, 2]), n_boot=500)
    assert result["f1"]["a"]["value"] == pytest.approx(0.8)
    assert result["f1"]["b"] == {"value": 0.0, "ci95": [0.0, 0.0]}
    low, high = result["f1"]["a"]["ci95"]
    # Redraws of the first data set's two videos: (6,2,0) -> 6/7, (2,0,2) -> 1/2, or both -> 0.8.
    assert 0.5 <= low <= 0.8 <= high <= 6 / 7 + 1e-9
    (diff,) = result["differences"]
    assert (diff["a"], diff["b"], diff["value"]) == ("a", "b", pytest.approx(0.8))
    assert diff["ci95"] == result["f1"]["a"]["ci95"]  # b is 0 on every draw: paired
    same = pooled_f1_bootstrap({"x": a, "y": a.copy()}, np.array([1, 1, 2]), n_boot=200)
    assert same["differences"][0]["ci95"] == [0.0, 0.0]


@pytest.mark.slow
def test_smoke_spotting_study_scores_every_video_against_its_sheet(tmp_path):
    out, work = tmp_path / "spot.json", tmp_path / "work"
    assert cli_main(["experiment", "run", "smoke-spotting", "--out", str(out), "--work", str(work)]) == 0
    report = json.loads(out.read_text())
    assert report["complete"] is True and report["data"]["seeds"] == [3001]
    assert report["command"] == "python main.py experiment run smoke-spotting"
    (sheet,) = work.glob("long-*/megc_gt.xlsx")
    truth = read_event_table(sheet)
    n_micro = sum(kind == "micro" for kind in truth.kinds)
    n_macro = sum(kind == "macro" for kind in truth.kinds)
    assert n_micro >= 2
    for flow in ("dis-fine", "farneback"):
        rows = [v for v in report["videos"] if v["flow"] == flow]
        assert len(rows) == 2
        for mode in ("corrected", "strs"):
            micro = report["results"][flow][mode]["micro"]
            # Every video's counts add up to the pooled row, and the F1 is 2TP / (2TP + FP + FN).
            assert [micro["tp"], micro["fp"], micro["fn"]] == np.sum(
                [v[mode]["micro"] for v in rows], axis=0).tolist()
            denominator = 2 * micro["tp"] + micro["fp"] + micro["fn"]
            assert micro["pooled_f1"] == pytest.approx(2 * micro["tp"] / denominator, abs=1e-4)
            assert micro["ci95"][0] <= micro["pooled_f1"] <= micro["ci95"][1]
        corrected = report["results"][flow]["corrected"]
        # One-to-one matching: every ground-truth interval is a hit or a miss, exactly once.
        assert corrected["micro"]["tp"] + corrected["micro"]["fn"] == n_micro
        assert corrected["macro"]["tp"] + corrected["macro"]["fn"] == n_macro
        gate = report["results"][flow]["gate"]
        assert gate["micro_apexes"] == n_micro and 0 <= gate["micro_apexes_covered"] <= n_micro
        assert 0 < gate["fraction_of_frames"] < 1
        # The spotter found something: a broken scorer or key mapping would leave tp at 0.
        assert corrected["micro"]["tp"] >= 1
    kinds = {(c["mode"], c["kind"], c["a"], c["b"]) for c in report["comparisons"]}
    assert ("corrected", "micro", "dis-fine", "farneback") in kinds and len(kinds) == 6


def test_spotting_study_refuses_training_options(tmp_path, capsys):
    code = cli_main(["experiment", "run", "smoke-spotting", "--threads", "2",
                     "--out", str(tmp_path / "x.json"), "--work", str(tmp_path / "work")])
    assert code != 0
    err = capsys.readouterr().err
    assert "--threads" in err and "leave it out" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x.json").exists() and not (tmp_path / "work").exists()
