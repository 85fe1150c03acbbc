"""Pooled and cross-dataset protocols: `train --dataset A --dataset B` (pooled LOSO, subjects
namespaced by set) and `train --dataset A --test-dataset B`, with the vocabulary of AUs coded in
every set and per-dataset F1 beside the pooled figure."""

from __future__ import annotations

import json

import pytest

from microau_gui.cli import main
from microau_gui.core.au import DEFAULT_VOCAB

from test_training_fixtures import pair_cache, synth_root, synth_spec  # noqa: F401

FAST = ["--backbone", "tiny", "--epochs", "1", "--threads", "1", "--device", "cpu"]


@pytest.fixture(scope="module")
def second_spec(tmp_path_factory) -> str:
    """Another synthetic set: other seed, two subjects, a few clips (so some AUs are not coded)."""
    from microau_gui.synth import generate_clips

    root = tmp_path_factory.mktemp("second_set")
    generate_clips(root, subjects=2, clips_per_subject=4, size=112, seed=77)
    return f"casme2:{root / 'coding.xlsx'}:{root}"


def test_pooled_loso_namespaces_subjects_and_reports_each_set(synth_spec, second_spec, pair_cache, tmp_path, capsys):
    report_path = tmp_path / "pooled.json"
    assert main(["train", "--dataset", synth_spec, "--dataset", second_spec, "--method", "flow-svm",
                 "--json", str(report_path), "--cache", str(pair_cache), *FAST]) == 0
    report = json.loads(report_path.read_text())
    assert report["protocol"] == "pooled-loso"
    tested = [s for fold in report["folds"] for s in fold["test_subjects"]]
    # Subject 01 of both sets is two subjects, each held out once.
    assert "casme2:01" in tested and "casme2-2:01" in tested
    assert len(tested) == len(set(tested)) == report["n_subjects"] == 5
    per = report["per_dataset"]
    assert set(per) == {"casme2", "casme2-2"}
    assert per["casme2"]["n_subjects"] == 3 and per["casme2-2"]["n_subjects"] == 2
    assert per["casme2"]["n_samples"] + per["casme2-2"]["n_samples"] == report["n_samples"]
    vocab = report["vocabulary"]
    assert list(report["per_au"]) == vocab["kept"]
    assert set(vocab["kept"]) | set(vocab["dropped"]) == set(DEFAULT_VOCAB)
    assert [d["label"] for d in report["settings"]["datasets"]] == ["casme2", "casme2-2"]
    assert "casme2-2: mean F1" in capsys.readouterr().out


def test_cross_dataset_trains_on_one_set_and_tests_on_the_other(synth_spec, second_spec, pair_cache, tmp_path):
    report_path = tmp_path / "cross.json"
    assert main(["train", "--dataset", synth_spec, "--test-dataset", second_spec,
                 "--json", str(report_path), "--cache", str(pair_cache), *FAST]) == 0
    report = json.loads(report_path.read_text())
    assert report["protocol"] == "cross-dataset"
    (fold,) = report["folds"]
    assert sorted(fold["test_subjects"]) == ["casme2-2:01", "casme2-2:02"]
    assert set(report["per_dataset"]) == {"casme2-2"}  # only the test set is scored
    assert report["n_subjects"] == 2
    test_only = {d["label"]: d["test_only"] for d in report["settings"]["datasets"]}
    assert test_only == {"casme2": False, "casme2-2": True}


def test_test_dataset_refuses_other_protocols(synth_spec, second_spec, tmp_path, capsys):
    code = main(["train", "--dataset", synth_spec, "--test-dataset", second_spec, "--protocol", "all",
                 "--out", str(tmp_path / "w"), *FAST])
    assert code != 0 and "--test-dataset" in capsys.readouterr().err
