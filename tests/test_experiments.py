"""The experiment machinery: paired comparisons by hand, and the smallest study end to end."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from microau_gui.cli import main as cli_main
from microau_gui.core.errors import UserError
from microau_gui.training.comparison import ScoredRun, fold_mean_f1, paired_comparison, pooled_mean_f1


def _run(method, predicted, data_seed=1, train_seed=0):
    labels = np.array([[1, 0], [1, 1], [0, 1], [0, 0]])
    return ScoredRun(method, data_seed, train_seed, labels, np.array(predicted), np.array([0, 0, 1, 1]))


def test_mean_f1_and_fold_f1_by_hand():
    run = _run("m", [[1, 0], [1, 0], [0, 1], [1, 1]])
    # AU A: tp 2, fp 1, fn 0 -> 4/5; AU B: tp 1, fp 1, fn 1 -> 1/2.
    assert pooled_mean_f1(run) == pytest.approx((0.8 + 0.5) / 2)
    # Fold 0 (rows 0, 1): A 1.0, B tp 0 fn 1 -> 0. Fold 1 (rows 2, 3): A has no positive (left
    # out), B tp 1 fp 1 -> 2/3.
    assert fold_mean_f1(run) == pytest.approx({0: 0.5, 1: 2 / 3})


def test_paired_comparison_pairs_every_seed_with_the_baseline():
    perfect = [_run("model", [[1, 0], [1, 1], [0, 1], [0, 0]], train_seed=s) for s in (0, 1)]
    base = [_run("base", [[1, 1], [1, 1], [1, 1], [1, 1]])]
    result = paired_comparison(perfect, base, n_boot=200)
    # all-positive: A tp 2 fp 2 -> 2/3; B tp 2 fp 2 -> 2/3. The model is perfect: +1/3.
    assert result["mean_difference"] == pytest.approx(1 / 3, abs=1e-4)
    assert result["per_seed_differences"]["n"] == 2
    assert {row["fold"] for row in result["per_fold"]} == {0, 1}
    low, high = result["ci95"]
    assert 0 < low <= result["mean_difference"] <= high
    with pytest.raises(ValueError, match="no baseline run"):
        paired_comparison(perfect, [_run("base", [[1, 1]] * 4, data_seed=2)])


def test_experiment_list_names_the_studies(capsys):
    assert cli_main(["experiment", "list"]) == 0
    out = capsys.readouterr().out
    assert "main" in out and "ablations" in out and "smoke" in out


def test_smoke_study_writes_a_report_with_provenance(tmp_path):
    out = tmp_path / "smoke.json"
    assert cli_main(["experiment", "run", "smoke", "--out", str(out), "--work", str(tmp_path / "work")]) == 0
    report = json.loads(out.read_text())
    assert report["complete"] is True
    assert report["data"]["seeds"] == [1001] and report["training"]["seeds"] == [0]
    assert len(report["code_version"]["commit"]) in (40, len("unknown"))
    assert set(report["baselines"]) == {"flow-svm", "all-positive"}
    assert report["variants"]["full"]["mean_f1"]["n"] == 1
    pairs = {(c["model"], c["baseline"]) for c in report["comparisons"]}
    assert pairs == {("full", "flow-svm"), ("full", "all-positive")}
    for comparison in report["comparisons"]:
        assert len(comparison["ci95"]) == 2 and comparison["per_fold"]
    assert not any("reused" in run for run in report["runs"])
    assert len(report["code_version"]["training_code"]) == 16

    # Run again on the same work folder: every finished run is taken up, and the report is the same.
    again = tmp_path / "again.json"
    assert cli_main(["experiment", "run", "smoke", "--out", str(again), "--work", str(tmp_path / "work")]) == 0
    second = json.loads(again.read_text())
    assert all(run["reused"]["commit"] for run in second["runs"])

    def results(r):
        return ([(run["method"], run["mean_f1"], run["mean_macro_f1"], run["recognition"]) for run in r["runs"]],
                [(c["model"], c["baseline"], c["mean_difference"], c["per_fold"]) for c in r["comparisons"]])

    assert results(second) == results(report)
    # Another thread count is another identity for the model (reductions may round differently);
    # the baselines, which do not use torch threads, are taken up; --fresh takes up nothing.
    assert cli_main(["experiment", "run", "smoke", "--out", str(again), "--work", str(tmp_path / "work"),
                     "--threads", "2"]) == 0
    third = json.loads(again.read_text())
    assert third["command"].endswith("--threads 2") and third["machine"]["threads"] == 2
    assert {run["method"] for run in third["runs"] if "reused" not in run} == {"full"}
    assert cli_main(["experiment", "run", "smoke", "--out", str(again), "--work", str(tmp_path / "work"),
                     "--fresh"]) == 0
    fresh = json.loads(again.read_text())
    assert not any("reused" in run for run in fresh["runs"]) and results(fresh) == results(report)


def test_the_data_digest_sees_one_flow_value_and_not_the_media_folder():
    from pathlib import Path

    from microau_gui.cli.run_cache import pairs_digest
    from microau_gui.core.types import Sample
    from microau_gui.pairs.samples import PairSample

    def pair(folder, flow):
        return PairSample(sample=Sample("01", "c1", Path(folder), 0, 2, 4),
                          reference=np.zeros((8, 8, 3), np.uint8),
                          target=np.zeros((8, 8, 3), np.uint8), flow=flow,
                          xy_crop=np.zeros((478, 2), np.float32))

    flow = np.zeros((8, 8, 2), np.float32)
    moved = flow.copy()
    moved[3, 4, 1] = 0.25
    base = pairs_digest([pair("/a", flow)])
    assert pairs_digest([pair("/elsewhere", flow)]) == base
    assert pairs_digest([pair("/a", moved)]) != base
    other = pair("/a", flow)
    assert pairs_digest([replace(other, sample=replace(other.sample, apex=3))]) != base


def test_the_training_code_digest_follows_the_training_packages_only(tmp_path):
    from microau_gui.cli.run_cache import TRAINING_PACKAGES, training_code_digest

    assert {"training", "model", "pairs"} <= set(TRAINING_PACKAGES)
    for package in (*TRAINING_PACKAGES, "gui"):
        (tmp_path / package).mkdir()
        (tmp_path / package / "m.py").write_text("x = 1\n")
    before = training_code_digest(tmp_path)
    (tmp_path / "gui" / "m.py").write_text("x = 2\n")
    assert training_code_digest(tmp_path) == before
    (tmp_path / "training" / "m.py").write_text("x = 2\n")
    assert training_code_digest(tmp_path) != before


def test_recognition_that_puts_every_sample_in_one_class_is_withheld():
    from pathlib import Path
    from types import SimpleNamespace

    from microau_gui.core.au import DEFAULT_VOCAB
    from microau_gui.core.types import Sample
    from microau_gui.training.experiment import recognition_scores

    pairs = [SimpleNamespace(sample=Sample("01", f"c{i}", Path("x"), 0, 1, 2, objective_class=cls))
             for i, cls in enumerate(["I", "III"])]
    vocab = list(DEFAULT_VOCAB)
    flat = recognition_scores(pairs, np.full((2, len(vocab)), 0.5), vocab)
    assert flat["degenerate"] and "not reported" in flat["note"]
    scores = np.full((2, len(vocab)), 0.02)
    scores[0, vocab.index("AU12")] = scores[0, vocab.index("AU6")] = 0.98  # happiness: class I
    scores[1, vocab.index("AU4")] = scores[1, vocab.index("AU7")] = 0.98  # anger: class III
    real = recognition_scores(pairs, scores, vocab)
    assert not real.get("degenerate") and real["uf1"] == 1.0


def test_an_ablation_is_paired_with_the_full_model_of_the_same_seed():
    full = [_run("full", [[1, 0], [1, 1], [0, 1], [0, 0]], train_seed=0),
            _run("full", [[1, 1], [1, 1], [1, 1], [1, 1]], train_seed=1)]
    ablated = [_run("no-pta", [[1, 0], [1, 1], [0, 1], [0, 0]], train_seed=0),
               _run("no-pta", [[1, 1], [1, 1], [1, 1], [1, 1]], train_seed=1)]
    # Seed by seed the runs are identical: no difference (pairing across seeds would give +-1/3).
    result = paired_comparison(ablated, full, n_boot=50)
    assert result["mean_difference"] == 0.0 and result["per_seed_differences"]["std"] == 0.0


def test_a_reduced_goal_study_scores_nested_thresholds_and_never_takes_the_full_name(tmp_path, monkeypatch):
    import microau_gui.cli.experiments as experiments

    monkeypatch.setattr(experiments, "REPO", tmp_path)  # the default report folder
    (tmp_path / "docs" / "experiments").mkdir(parents=True)
    assert cli_main(["experiment", "run", "smoke-goal", "--variants", "full", "--train-seeds", "0",
                     "--work", str(tmp_path / "work")]) == 0
    assert not (tmp_path / "docs" / "experiments" / "smoke-goal.json").exists()
    report = json.loads((tmp_path / "docs" / "experiments" / "smoke-goal-reduced.json").read_text())
    assert report["complete"] is True
    assert report["reduced"]["ran"] == {"data_seeds": [1001], "train_seeds": [0], "variants": ["full"]}
    assert report["reduced"]["defined"]["train_seeds"] == [0, 1]
    assert "--variants full" in report["command"]
    assert set(report["variants"]) == {"full", "full nested"}
    assert set(report["baselines"]) == {"flow-svm", "flow-svm nested", "all-positive", "all-positive nested"}
    pairs = {(c["model"], c["baseline"]) for c in report["comparisons"]}
    assert {("full nested", "flow-svm nested"), ("full nested", "full"), ("full", "flow-svm")} <= pairs
    chosen = report["nested_thresholds"]["full data 1001 seed 0"]
    assert set(chosen) == {"test 01", "test 02", "test 03"} and all(len(t) == 12 for t in chosen.values())
    assert "inner leave-one-subject-out" in report["held_out"]
    # Taken up again, a nested run gives the same rows and the same chosen thresholds.
    assert cli_main(["experiment", "run", "smoke-goal", "--variants", "full", "--train-seeds", "0",
                     "--work", str(tmp_path / "work")]) == 0
    again = json.loads((tmp_path / "docs" / "experiments" / "smoke-goal-reduced.json").read_text())
    assert all("reused" in run for run in again["runs"])
    assert [(r["method"], r["mean_f1"]) for r in again["runs"]] == [(r["method"], r["mean_f1"]) for r in report["runs"]]
    assert again["nested_thresholds"] == report["nested_thresholds"]
    # A fixed-threshold study on the same data, run first, hands its models on: the nested study
    # then trains only the inner folds, and its rows are the same as when it trained everything.
    fixed_only = replace(experiments.STUDIES["smoke-goal"], name="smoke-goal-fixed", thresholds=("fixed",))
    monkeypatch.setitem(experiments.STUDIES, "smoke-goal-fixed", fixed_only)
    experiments.run_study("smoke-goal-fixed", tmp_path / "fixed.json", tmp_path / "work2",
                          train_seeds=[0], variants=["full"])
    experiments.run_study("smoke-goal", tmp_path / "nested.json", tmp_path / "work2",
                          train_seeds=[0], variants=["full"])
    nested = json.loads((tmp_path / "nested.json").read_text())
    assert all("outer folds" in run["reused"]["part"] for run in nested["runs"])
    assert [(r["method"], r["mean_f1"]) for r in nested["runs"]] == [(r["method"], r["mean_f1"]) for r in report["runs"]]
    assert nested["nested_thresholds"] == report["nested_thresholds"]
    with pytest.raises(UserError, match="--variants nope"):
        experiments.run_study("smoke-goal", tmp_path / "x.json", tmp_path / "work", variants=["nope"])


def _what_runs(argv: list[str], repo) -> tuple[str, dict]:
    """(report file relative to `repo`, what ran) of an `experiment run` command line, resolved
    by the command's own parser and `plan`, and `Study.reduced`."""
    import argparse

    from microau_gui.cli import cmd_experiment
    from microau_gui.cli.experiments import STUDIES
    from microau_gui.cli.finetune_experiments import FINETUNE_STUDIES
    from microau_gui.cli.spot_experiments import SPOT_STUDIES

    parser = argparse.ArgumentParser()
    cmd_experiment.add_arguments(parser)
    args = parser.parse_args(argv)
    out, subset = cmd_experiment.plan(args)
    file = str(out.resolve().relative_to(repo)) if out.is_absolute() else str(out)
    if args.name in SPOT_STUDIES:
        spot = SPOT_STUDIES[args.name].reduced(subset["data_seeds"])
        return file, {"study": spot.name, "data_seeds": sorted(spot.data_seeds)}
    threads = 1 if args.threads is None else args.threads
    if args.name in FINETUNE_STUDIES:
        tune = FINETUNE_STUDIES[args.name].reduced(subset["data_seeds"], subset["train_seeds"])
        return file, {"study": tune.name, "data_seeds": sorted(tune.data_seeds),
                      "train_seeds": sorted(tune.train_seeds), "threads": threads}
    study = STUDIES[args.name].reduced(**subset)
    return file, {"study": study.name, "data_seeds": sorted(study.data_seeds),
                  "train_seeds": sorted(study.train_seeds), "variants": sorted(study.variants),
                  "threads": threads}


def test_every_committed_report_is_regenerated_by_make_experiments():
    """Provenance (#20): each report in docs/experiments/ names the command that made it, and
    `make experiments` runs a command that writes that same study, seeds and variants there."""
    import shlex
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    recipe = repo.joinpath("Makefile").read_text().split("\nexperiments:", 1)[1].split("\n\n", 1)[0]
    made = dict(_what_runs(shlex.split(line.split("experiment", 1)[1]), repo)
                for line in recipe.splitlines() if "main.py experiment run" in line)
    reports = sorted((repo / "docs" / "experiments").glob("*.json"))
    assert reports
    for report in reports:
        written = json.loads(report.read_text())
        command = written["command"]
        file = f"docs/experiments/{report.name}"
        assert file in made, f"make experiments does not write {file}"
        _, ran = _what_runs(shlex.split(command.split("experiment", 1)[1]), repo)
        if "threads" in ran:  # older reports name it under "machine" only
            ran["threads"] = written["machine"]["threads"]
        assert made[file] == ran, f"{file}: made by {command!r}, make experiments runs {made[file]}"


def test_a_run_kept_on_another_kind_of_cpu_is_not_taken_up(tmp_path, monkeypatch):
    # The same seeds, data and code gave other scores on an AVX2 and an AMX machine (run_cache's
    # docstring), so a work folder carried between them must miss.
    from microau_gui.cli import run_cache
    from microau_gui.model.config import MicroAUConfig
    from microau_gui.training.trainer import TrainSettings

    identity = dict(method="full", data={"seed": 1001}, config=MicroAUConfig(), settings=TrainSettings(),
                    prep={"size": 112}, policy="fixed")
    here = run_cache.RunCache(tmp_path, "c0ffee")
    assert here.cpu["torch_capability"] and here.key(**identity) == run_cache.RunCache(tmp_path, "other").key(**identity)
    monkeypatch.setattr(run_cache, "cpu_arithmetic",
                        lambda: {**here.cpu, "isa": sorted({*here.cpu["isa"], "amx_bf16", "amx_tile"} - {"avx2"})})
    assert run_cache.RunCache(tmp_path, "c0ffee").key(**identity) != here.key(**identity)
