"""The fine-tune study (#20 provenance): its bootstrap by hand, and the smallest study end to end
(generate, import into a real project, fine-tune a poor parent, throw the result away)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from microau_gui.cli import main as cli_main
from microau_gui.cli.finetune_experiments import _mean_difference_ci


def test_mean_difference_ci_redraws_runs_within_each_data_seed():
    # Data seed 1's runs all gain 0.5, data seed 2's all 0.1: every draw keeps two runs of each,
    # so every redrawn mean is 0.3 and the CI has no width.
    diffs = np.array([0.5, 0.5, 0.1, 0.1])
    assert _mean_difference_ci(diffs, np.array([1, 1, 2, 2])) == [0.3, 0.3]
    # Unstratified, the same values in one group spread: 0.1 .. 0.5 are both reachable.
    low, high = _mean_difference_ci(diffs, np.array([1, 1, 1, 1]), n_boot=4000)
    assert 0.1 <= low < 0.3 < high <= 0.5


@pytest.mark.slow
def test_smoke_finetune_study_reports_before_and_after_of_every_run(tmp_path, capsys):
    out, work = tmp_path / "ft.json", tmp_path / "work"
    assert cli_main(["experiment", "run", "smoke-finetune", "--out", str(out), "--work", str(work)]) == 0
    report = json.loads(out.read_text())
    assert report["complete"] is True and report["command"] == "python main.py experiment run smoke-finetune"
    (run,) = report["runs"]
    assert (run["data_seed"], run["train_seed"]) == (4001, 0)
    assert run["events"] == 2 * 3 and run["pairs"] == 2 * 3  # every imported event was prepared
    results = report["results"]
    assert results["difference"]["mean"] == pytest.approx(run["after"] - run["before"], abs=1e-4)
    assert results["before"]["n"] == results["after"]["n"] == 1
    # The scratch project, parents and fine-tuned checkpoints are gone; the data set is kept.
    assert not list(work.glob("finetune-*"))
    assert (work / "data-2x3-112px-seed4001" / "coding.xlsx").is_file()
    code = cli_main(["experiment", "run", "smoke-finetune", "--variants", "full", "--out",
                     str(tmp_path / "x.json"), "--work", str(work)])
    assert code != 0 and "--variants" in capsys.readouterr().err
