"""The honest baselines: flow-svm and all-positive on the same LOSO folds and metrics as the model.

Real parts: the synthetic dataset generated from real photos, MediaPipe alignment, Farneback flow,
scikit-learn. The flow-svm must learn the coded movements (it is the bar the model has to clear);
all-positive must score exactly what predicting every AU scores.
"""

from __future__ import annotations

import numpy as np
import pytest

from microau_gui.core.au import DEFAULT_VOCAB
from microau_gui.model.config import MicroAUConfig
from microau_gui.training.baselines import FlowSVM, region_features
from microau_gui.training.experiment import cross_validate
from microau_gui.training.protocols import loso_folds
from microau_gui.pairs.samples import labels_matrix

from test_training_fixtures import pair_cache, synth_data, synth_root  # noqa: F401

REPORT_KEYS = {"method", "protocol", "n_samples", "n_subjects", "mean_f1", "mean_macro_f1", "per_au"}
AU_KEYS = {"f1", "macro_f1", "auc", "support"}


def run(method: str, data):
    folds = loso_folds(data.prepared.subjects)
    return cross_validate(method, data.prepared.pairs, folds, protocol="loso", config=MicroAUConfig.tiny())


def check_report(report: dict, method: str, data) -> None:
    assert REPORT_KEYS <= set(report)
    assert report["method"] == method and report["protocol"] == "loso"
    assert report["n_samples"] == len(data.prepared.pairs)
    assert report["n_subjects"] == 3
    assert list(report["per_au"]) == list(DEFAULT_VOCAB)
    for code, row in report["per_au"].items():
        assert AU_KEYS <= set(row), code
    supports = labels_matrix(data.prepared.pairs, DEFAULT_VOCAB).sum(axis=0)
    assert [row["support"] for row in report["per_au"].values()] == supports.tolist()


def test_all_positive_scores_what_predicting_every_au_scores(synth_data):
    result = run("all-positive", synth_data)
    report = result.to_json()
    check_report(report, "all-positive", synth_data)
    n = report["n_samples"]
    for row in report["per_au"].values():
        prevalence = row["support"] / n
        assert row["f1"] == pytest.approx(2 * prevalence / (1 + prevalence), abs=1e-3)
        assert row["auc"] == pytest.approx(0.5)  # a constant score ranks nothing
    assert (result.scores == 1).all()


def test_flow_svm_learns_the_coded_movements_on_held_out_subjects(synth_data):
    svm = run("flow-svm", synth_data)
    positive = run("all-positive", synth_data)
    report = svm.to_json()
    check_report(report, "flow-svm", synth_data)
    assert report["mean_f1"] >= positive.report.mean_f1 + 0.25
    aucs = [row["auc"] for row in report["per_au"].values() if row["auc"] is not None]
    assert np.median(aucs) > 0.85


def test_flow_svm_features_are_the_region_pooled_flow(synth_data):
    pairs = synth_data.prepared.pairs
    features = region_features(pairs[:3], DEFAULT_VOCAB)
    assert features.shape == (3, 4 * len(DEFAULT_VOCAB))
    # Balanced SVMs: an AU absent from the training split gets a constant score, never a crash.
    labels = labels_matrix(pairs, DEFAULT_VOCAB)
    labels[:, 0] = 0
    svm = FlowSVM(len(DEFAULT_VOCAB)).fit(region_features(pairs, DEFAULT_VOCAB), labels)
    scores = svm.predict_scores(features)
    assert (scores[:, 0] == 0).all()
    assert ((scores >= 0) & (scores <= 1)).all()
