"""Pooled sets with a union vocabulary (issue #20): an AU a dataset does not code is *unknown*
there, and the loss, class weights, prior and metrics skip it.

Hand-checked pieces (masked BCE and MiAUCL, the masked prior and class weights, masked F1), then
`train --vocab-policy union` end to end on two real synthetic sets: the all-positive baseline's
F1 of every AU must be 2 s / (s + n), where n counts only the samples of the sets that code the
AU, which fails if the uncoded samples are scored as negatives.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from microau_gui.cli import main
from microau_gui.model.losses import cooccurrence_prior, detection_bce, miaucl, positive_class_weights
from microau_gui.training.metrics import au_report
from microau_gui.training.trainer import masked_pos_weight, masked_prior

from test_training_fixtures import pair_cache, synth_root, synth_spec  # noqa: F401
from test_training_pooled import second_spec  # noqa: F401


def test_masked_losses_average_over_the_known_labels_only():
    torch.manual_seed(0)
    logits, targets = torch.randn(4, 3), torch.randint(0, 2, (4, 3)).float()
    known = torch.tensor([[1, 1, 0], [1, 0, 0], [1, 1, 1], [0, 1, 1]], dtype=torch.bool)
    by_hand = torch.nn.functional.binary_cross_entropy_with_logits(logits[known], targets[known])
    torch.testing.assert_close(detection_bce(logits, targets, mask=known), by_hand)
    torch.testing.assert_close(detection_bce(logits, targets, mask=torch.ones_like(known)),
                               detection_bce(logits, targets))
    features, text_pos, text_neg = torch.randn(4, 3, 8), torch.randn(3, 8), torch.randn(3, 8)
    flipped = targets.clone()
    flipped[~known] = 1 - flipped[~known]  # an unknown label may say anything
    assert miaucl(features, flipped, text_pos, text_neg, 0.07, known) == pytest.approx(
        float(miaucl(features, targets, text_pos, text_neg, 0.07, known)))
    assert float(miaucl(features, flipped, text_pos, text_neg, 0.07)) != pytest.approx(
        float(miaucl(features, targets, text_pos, text_neg, 0.07)))
    torch.testing.assert_close(miaucl(features, targets, text_pos, text_neg, 0.07, torch.ones_like(known)),
                               miaucl(features, targets, text_pos, text_neg, 0.07))


def test_masked_prior_and_class_weights_count_the_samples_that_code_the_au():
    labels = np.array([[1, 1, 0], [1, 0, 0], [0, 1, 1], [1, 0, 1]])
    everywhere = np.ones_like(labels, dtype=bool)
    torch.testing.assert_close(masked_prior(labels, everywhere, 1.0), cooccurrence_prior(labels, 1.0))
    torch.testing.assert_close(masked_pos_weight(labels, everywhere, 10.0), positive_class_weights(labels, 10.0))
    known = everywhere.copy()
    known[3, 1] = False  # sample 3 comes from a set that does not code AU 1
    # AU 1: 2 positives among the 3 samples that code it -> (1 + 1) / (2 + 1)
    assert float(masked_pos_weight(labels, known, 10.0)[1]) == pytest.approx(2 / 3)
    # P(AU1 | AU0) counts the AU0 samples that code AU1: samples 0 and 1, one with AU1 (the
    # unmasked prior would count 3); P(AU0 | AU0) 3 of 3, P(AU2 | AU0) 1 of 3; Laplace 1
    prior = masked_prior(labels, known, 1.0).numpy()
    raw = np.array([(3 + 1) / (3 + 2), (1 + 1) / (2 + 2), (1 + 1) / (3 + 2)])
    np.testing.assert_allclose(prior[0], raw / raw.sum(), rtol=1e-6)


def test_an_unknown_label_is_neither_hit_nor_miss():
    labels = np.array([[1], [0], [0], [1]])
    scores = np.array([[0.9], [0.8], [0.1], [0.2]])
    known = np.array([[True], [False], [True], [True]])
    report = au_report(labels, scores, ["AU1"], method="m", protocol="p", subjects=["a"] * 4, known=known)
    assert report.per_au[0].f1 == pytest.approx(2 / 3)  # tp 1, fn 1; the false alarm at row 1 is unknown
    assert au_report(labels, scores, ["AU1"], method="m", protocol="p",
                     subjects=["a"] * 4).per_au[0].f1 == pytest.approx(0.5)


def test_union_policy_keeps_every_coded_au_and_scores_each_where_it_is_coded(
        synth_spec, second_spec, pair_cache, tmp_path, capsys):
    common_path, union_path = tmp_path / "common.json", tmp_path / "union.json"
    base = ["train", "--dataset", synth_spec, "--dataset", second_spec, "--method", "all-positive",
            "--cache", str(pair_cache), "--backbone", "tiny"]
    assert main([*base, "--json", str(common_path)]) == 0
    assert main([*base, "--vocab-policy", "union", "--json", str(union_path)]) == 0
    common, union = json.loads(common_path.read_text()), json.loads(union_path.read_text())
    vocab = union["vocabulary"]
    assert vocab["policy"].startswith("union")
    coded_by = vocab["coded_by"]
    assert set(vocab["kept"]) == set().union(*map(set, coded_by.values()))
    assert set(common["vocabulary"]["kept"]) == set.intersection(*map(set, coded_by.values()))
    assert len(vocab["kept"]) > len(common["vocabulary"]["kept"])  # the union adds AUs
    n_of = {label: row["n_samples"] for label, row in union["per_dataset"].items()}
    for code in vocab["kept"]:
        support = union["per_au"][code]["support"]
        n_known = sum(n for label, n in n_of.items() if code in coded_by[label])
        assert union["per_au"][code]["f1"] == pytest.approx(round(2 * support / (support + n_known), 4),
                                                           abs=1e-4), code
    assert "unknown (masked)" in capsys.readouterr().out


def test_union_policy_trains_micro_au_clip_with_the_masked_loss(synth_spec, second_spec, pair_cache, tmp_path):
    report_path = tmp_path / "clip.json"
    assert main(["train", "--dataset", synth_spec, "--dataset", second_spec, "--vocab-policy", "union",
                 "--subjects", "casme2:01,casme2:02,casme2-2:01", "--json", str(report_path),
                 "--cache", str(pair_cache), "--backbone", "tiny", "--epochs", "1", "--threads", "1",
                 "--device", "cpu"]) == 0
    report = json.loads(report_path.read_text())
    assert report["vocabulary"]["policy"].startswith("union") and report["n_subjects"] == 3
    assert all(np.isfinite(x) for losses in report["epoch_losses"].values() for x in losses)
