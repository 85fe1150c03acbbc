"""Cross-validation of any method on prepared pairs: the same folds, threshold and metrics for all.

Owns: `METHODS`, `MethodRun`, `cross_validate`, `score_predictions`. May import model, face, core
and training's own modules; no Qt.

Each fold trains a fresh model (or baseline) on the training subjects' pairs only and scores the
test subjects' pairs; the scores of all folds are pooled and the metrics computed once
(`training.metrics`). Emotion-label-free recognition (`training.emotion`) runs on the same pooled
AU scores when the samples carry objective-class or emotion labels; the labels are only read for
scoring. A recognition that puts every sample in one class is flagged `degenerate` and its
UF1/UAR are not printed or cited (they are an artefact of uncalibrated scores).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from microau_gui.core.errors import UserError
from microau_gui.model.config import MicroAUConfig
from microau_gui.training.baselines import AllPositive, FlowSVM, region_features
from microau_gui.training.emotion import recognise, reference_labels
from microau_gui.training.metrics import AUReport, au_report, emotion_scores
from microau_gui.training.protocols import Fold, split
from microau_gui.core.progress import check_cancel
from microau_gui.pairs.samples import PairSample, labels_matrix
from microau_gui.training.trainer import Progress, TrainSettings, predict_pairs, train_model

METHODS: tuple[str, ...] = ("micro-au-clip", "flow-svm", "all-positive")


@dataclass(frozen=True, eq=False)
class MethodRun:
    """What one method scored under one protocol."""

    method: str
    protocol: str
    pairs: tuple[PairSample, ...]  # the scored pairs, in the order of `labels` / `scores`
    labels: np.ndarray  # (N, n_au) 0/1
    scores: np.ndarray  # (N, n_au) in [0, 1], each from a model that never saw its subject
    report: AUReport
    emotion: dict | None  # {"uf1", "uar", "n_samples", "labels", "classes"}; None without labels
    seconds: float  # wall time of all folds
    epoch_losses: dict[str, tuple[float, ...]] | None = None  # fold name -> mean training loss per epoch

    def to_json(self) -> dict:
        report = self.report.to_json()
        report["seconds"] = round(self.seconds, 1)
        if self.epoch_losses:
            report["epoch_losses"] = {name: [round(x, 6) for x in losses]
                                      for name, losses in self.epoch_losses.items()}
        if self.emotion is not None:
            report["emotion"] = self.emotion
        return report


def score_predictions(method: str, protocol: str, pairs: Sequence[PairSample], scores: np.ndarray,
                      vocab: Sequence[str], seconds: float = 0.0) -> MethodRun:
    """Metrics and label-free recognition of scores `(N, n_au)` for `pairs`."""
    labels = labels_matrix(pairs, vocab)
    report = au_report(labels, scores, vocab, method=method, protocol=protocol,
                       subjects=[p.subject for p in pairs])
    return MethodRun(method, protocol, tuple(pairs), labels, np.asarray(scores), report,
                     recognition_scores(pairs, scores, vocab), seconds)


def recognition_scores(pairs: Sequence[PairSample], scores: np.ndarray, vocab: Sequence[str],
                       labels: str = "auto") -> dict | None:
    """UF1 / UAR of emotion-label-free recognition, or None when the samples carry no labels."""
    try:
        kind, truth = reference_labels([p.sample for p in pairs], labels)
    except UserError:
        if labels != "auto":
            raise
        return None
    predicted = recognise(scores, vocab, kind)
    result = emotion_scores(truth, predicted)
    result["labels"] = kind
    if len(set(predicted)) == 1 and len(set(truth)) > 1:
        # Uncalibrated scores (e.g. flow-SVM's) can put every sample in one class; UF1/UAR then
        # measure the class balance (UAR exactly 1/n_classes), not recognition.
        result["degenerate"] = True
        result["note"] = (f"every sample was put in class {predicted[0]}: UF1/UAR measure the class "
                          "balance, not recognition, and are not reported")
    return result


def cross_validate(method: str, pairs: Sequence[PairSample], folds: Sequence[Fold], *,
                   protocol: str, config: MicroAUConfig, settings: TrainSettings = TrainSettings(),
                   device="cpu", progress: Progress | None = None, should_cancel=None) -> MethodRun:
    """Train and score `method` on every fold; see the module docstring."""
    if method not in METHODS:
        raise UserError(f"unknown method {method!r}; use one of {', '.join(METHODS)}")
    started = time.perf_counter()
    vocab = config.vocab
    scored: list[PairSample] = []
    score_parts: list[np.ndarray] = []
    losses: dict[str, tuple[float, ...]] = {}
    for fold in folds:
        check_cancel(should_cancel)
        train, test = split(pairs, lambda p: p.subject, fold)
        if not test:
            continue
        if not train:
            raise UserError(f"fold {fold.name} has no training pairs; add subjects")
        if method == "micro-au-clip":
            result = train_model(config, train, settings, device=device, stage=fold.name,
                                 progress=progress, should_cancel=should_cancel)
            scores = predict_pairs(result.model, test, should_cancel=should_cancel).probs
            losses[fold.name] = result.epoch_losses
        else:
            baseline = (FlowSVM(len(vocab), seed=settings.seed) if method == "flow-svm"
                        else AllPositive(len(vocab)))
            baseline.fit(region_features(train, vocab), labels_matrix(train, vocab))
            scores = baseline.predict_scores(region_features(test, vocab))
        scored.extend(test)
        score_parts.append(scores)
    if not scored:
        raise UserError("no fold had test pairs; check the subjects of the dataset")
    run = score_predictions(method, protocol, scored, np.concatenate(score_parts), vocab,
                            time.perf_counter() - started)
    return replace(run, epoch_losses=losses or None)
