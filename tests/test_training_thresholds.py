"""Nested per-AU decision thresholds (issue #20): chosen on the training folds only, applied by a
monotone remapping, and recorded in the report.

The choice and the remapping are checked against hand-worked values; the nested protocol is
checked on the session's synthetic dataset with the flow-SVM baseline (fast, deterministic):
the thresholds of a fold must be exactly those an inner leave-one-subject-out over that fold's
training subjects gives, computed here by hand, so a choice that peeked at the held-out subject
(or at the outer scores) fails.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from microau_gui.cli import main
from microau_gui.core.au import DEFAULT_VOCAB
from microau_gui.model.config import MicroAUConfig
from microau_gui.pairs.samples import labels_matrix
from microau_gui.training import runs
from microau_gui.training.baselines import FlowSVM, region_features
from microau_gui.training.protocols import loso_folds, split
from microau_gui.training.thresholds import apply_thresholds, choose_thresholds

from test_training_fixtures import pair_cache, synth_data, synth_root, synth_spec  # noqa: F401


def test_the_threshold_with_the_best_f1_wins_and_ties_go_to_the_one_nearest_half():
    labels = np.array([[1, 0, 0], [1, 0, 1], [0, 0, 1], [0, 0, 0]])
    scores = np.array([[0.30, 0.9, 0.6], [0.25, 0.8, 0.6], [0.20, 0.7, 0.4], [0.10, 0.6, 0.4]])
    grid = (0.15, 0.22, 0.5, 0.55, 0.7)
    t = choose_thresholds(labels, scores, grid)
    # AU0: 0.22 gives tp 2, fp 0 (F1 1.0). AU1 has no positive: 0.5. AU2: 0.15 and 0.22 call
    # all four positive (tp 2, fp 2: F1 2/3), 0.5 and 0.55 only the two 0.6s (tp 1, fp 1, fn 1:
    # F1 1/2), so the tie 0.15 / 0.22 goes to 0.22, the one nearer 0.5
    assert t.tolist() == [0.22, 0.5, 0.22]


def test_applied_thresholds_decide_at_half_and_keep_the_order_of_scores():
    scores = np.array([[0.05, 0.5], [0.2, 0.7], [0.2 - 1e-12, 0.69], [0.9, 0.0], [0.2, 1.0]])
    t = np.array([0.2, 0.7])
    mapped = apply_thresholds(scores, t)
    np.testing.assert_array_equal(mapped >= 0.5, scores >= t)
    for k in range(2):
        assert (np.argsort(mapped[:, k], kind="stable") == np.argsort(scores[:, k], kind="stable")).all()
    np.testing.assert_allclose(apply_thresholds(scores, np.full(2, 0.5)), scores)  # 0.5: unchanged


def test_nested_thresholds_come_from_an_inner_loso_over_the_training_subjects_only(synth_data):
    pairs, vocab = synth_data.prepared.pairs, MicroAUConfig.tiny().vocab
    folds = runs.folds_for("loso", synth_data.prepared.subjects)
    run = runs.cross_validate("flow-svm", pairs, folds, protocol="loso", config=MicroAUConfig.tiny(),
                              thresholds="nested")
    assert run.thresholds is not None and set(run.thresholds) == {f.name for f in folds}
    for fold in folds:
        train, _ = split(pairs, lambda p: p.subject, fold)
        labels, scores = [], []
        for inner in loso_folds(fold.train_subjects):
            inner_train, inner_test = split(train, lambda p: p.subject, inner)
            svm = FlowSVM(len(vocab), seed=0)
            svm.fit(region_features(inner_train, vocab), labels_matrix(inner_train, vocab))
            scores.append(svm.predict_scores(region_features(inner_test, vocab)))
            labels.append(labels_matrix(inner_test, vocab))
        expected = choose_thresholds(np.concatenate(labels), np.concatenate(scores))
        np.testing.assert_array_equal(run.thresholds[fold.name], expected, err_msg=fold.name)
    assert not all((t == 0.5).all() for t in run.thresholds.values())  # the choice did something
    fixed = runs.cross_validate("flow-svm", pairs, folds, protocol="loso", config=MicroAUConfig.tiny())
    np.testing.assert_array_equal(run.raw_scores, fixed.scores)  # the same outer models
    by_fold = {s: f.name for f in folds for s in f.test_subjects}
    expected_scores = np.stack([apply_thresholds(fixed.scores[i:i + 1], run.thresholds[by_fold[p.subject]])[0]
                                for i, p in enumerate(fixed.pairs)])
    np.testing.assert_allclose(run.scores, expected_scores)


def test_train_records_the_nested_thresholds_in_its_report(synth_spec, pair_cache, tmp_path):
    report_path = tmp_path / "nested.json"
    assert main(["train", "--dataset", synth_spec, "--method", "flow-svm", "--thresholds", "nested",
                 "--json", str(report_path), "--cache", str(pair_cache), "--backbone", "tiny"]) == 0
    report = json.loads(report_path.read_text())
    chosen = report["thresholds"]
    assert chosen["policy"] == "nested" and "training subjects" in chosen["chosen_on"]
    assert set(chosen["per_fold"]) == {"test 01", "test 02", "test 03"}
    assert all(list(row) == list(DEFAULT_VOCAB) for row in chosen["per_fold"].values())


def test_an_unknown_threshold_policy_is_refused(synth_data):
    with pytest.raises(Exception, match="threshold policy"):
        runs.cross_validate("flow-svm", synth_data.prepared.pairs, runs.folds_for("loso", ["01", "02"]),
                            protocol="loso", config=MicroAUConfig.tiny(), thresholds="peek")
