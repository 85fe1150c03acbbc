"""Cross-validation of any method on prepared pairs: the same folds, threshold and metrics for all.

Owns: `METHODS`, `MethodRun`, `cross_validate`, `with_nested_thresholds`, `score_predictions`. May import model, face, core
and training's own modules; no Qt.

Each fold trains a fresh model (or baseline) on the training subjects' pairs only and scores the
test subjects' pairs; the scores of all folds are pooled and the metrics computed once
(`training.metrics`). Emotion-label-free recognition (`training.emotion`) runs on the same pooled
AU scores when the samples carry objective-class or emotion labels; the labels are only read for
scoring. A recognition that puts every sample in one class is flagged `degenerate` and its
UF1/UAR are not printed or cited (they are an artefact of uncalibrated scores).

Decision thresholds: 0.5 for every AU ("fixed"), or per AU and per fold, chosen by an inner
leave-one-subject-out over that fold's training subjects only ("nested", `training.thresholds`);
the nested run's scores are remapped so that 0.5 decides, which the metrics and the label-free
recognition then read, and the report lists every fold's thresholds.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from microau_gui.core.errors import UserError
from microau_gui.core.types import DECISION_THRESHOLD
from microau_gui.model.config import MicroAUConfig
from microau_gui.training.baselines import AllPositive, FlowSVM, region_features
from microau_gui.training.emotion import recognise, reference_labels
from microau_gui.training.metrics import AUReport, au_report, emotion_scores
from microau_gui.training.protocols import Fold, loso_folds, split
from microau_gui.training.thresholds import THRESHOLD_GRID, THRESHOLD_POLICIES, apply_thresholds, choose_thresholds
from microau_gui.core.progress import check_cancel
from microau_gui.pairs.samples import PairSample, labels_matrix
from microau_gui.training.trainer import KnownLabels, Progress, TrainSettings, predict_pairs, train_model

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
    thresholds: dict[str, np.ndarray] | None = None  # nested policy: fold name -> per-AU thresholds
    raw_scores: np.ndarray | None = None  # nested policy: the scores before the thresholds were applied

    def to_json(self) -> dict:
        report = self.report.to_json()
        report["seconds"] = round(self.seconds, 1)
        if self.thresholds:
            vocab = [row.code for row in self.report.per_au]
            report["thresholds"] = {
                "policy": "nested",
                "chosen_on": "an inner leave-one-subject-out over each fold's training subjects "
                             "only (the held-out subject never seen); per AU the grid threshold "
                             "with the best F1, ties to the one nearest 0.5",
                "grid": list(THRESHOLD_GRID),
                "per_fold": {fold: {code: round(float(t), 2) for code, t in zip(vocab, values)}
                             for fold, values in self.thresholds.items()},
            }
        if self.epoch_losses:
            report["epoch_losses"] = {name: [round(x, 6) for x in losses]
                                      for name, losses in self.epoch_losses.items()}
        if self.emotion is not None:
            report["emotion"] = self.emotion
        return report


def score_predictions(method: str, protocol: str, pairs: Sequence[PairSample], scores: np.ndarray,
                      vocab: Sequence[str], seconds: float = 0.0,
                      known: KnownLabels | None = None) -> MethodRun:
    """Metrics and label-free recognition of scores `(N, n_au)` for `pairs` (each AU scored on
    the pairs whose label is `known`, when given)."""
    labels = labels_matrix(pairs, vocab)
    report = au_report(labels, scores, vocab, method=method, protocol=protocol,
                       subjects=[p.subject for p in pairs],
                       known=None if known is None else known(pairs))
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


def _fit_and_score(method: str, train: Sequence[PairSample], test: Sequence[PairSample], *,
                   config: MicroAUConfig, settings: TrainSettings, device, stage: str,
                   progress: Progress | None, should_cancel,
                   known: KnownLabels | None) -> tuple[np.ndarray, tuple[float, ...] | None]:
    """Train `method` on `train` only and score `test`: (scores `(N, n_au)`, epoch losses or None)."""
    vocab = config.vocab
    if method == "micro-au-clip":
        result = train_model(config, train, settings, device=device, stage=stage,
                             progress=progress, should_cancel=should_cancel, known=known)
        return predict_pairs(result.model, test, should_cancel=should_cancel).probs, result.epoch_losses
    baseline = FlowSVM(len(vocab), seed=settings.seed) if method == "flow-svm" else AllPositive(len(vocab))
    baseline.fit(region_features(train, vocab), labels_matrix(train, vocab),
                 None if known is None else known(train))
    return baseline.predict_scores(region_features(test, vocab)), None


def _nested_thresholds(method: str, train: Sequence[PairSample], fold: Fold, **fit) -> np.ndarray:
    """Per-AU thresholds from an inner LOSO over `fold`'s training subjects (`training.thresholds`)."""
    vocab, known = fit["config"].vocab, fit["known"]
    subjects = sorted({p.subject for p in train})
    if len(subjects) < 2:
        return np.full(len(vocab), DECISION_THRESHOLD)  # no inner fold: the fixed threshold
    scored, scores = [], []
    for inner in loso_folds(subjects):
        inner_train, inner_test = split(train, lambda p: p.subject, inner)
        inner_scores, _ = _fit_and_score(method, inner_train, inner_test,
                                         stage=f"{fold.name}, inner {inner.name}", **fit)
        scored.extend(inner_test)
        scores.append(inner_scores)
    return choose_thresholds(labels_matrix(scored, vocab), np.concatenate(scores),
                             known=None if known is None else known(scored))


def cross_validate(method: str, pairs: Sequence[PairSample], folds: Sequence[Fold], *,
                   protocol: str, config: MicroAUConfig, settings: TrainSettings = TrainSettings(),
                   device="cpu", progress: Progress | None = None, should_cancel=None,
                   thresholds: str = "fixed", known: KnownLabels | None = None) -> MethodRun:
    """Train and score `method` on every fold; see the module docstring.

    thresholds: "fixed" (0.5) or "nested" (per-AU thresholds chosen by an inner LOSO on each
    fold's training subjects, `training.thresholds`); the run then keeps the unthresholded
    scores as `raw_scores` and the chosen thresholds per fold (`with_nested_thresholds`).
    """
    if method not in METHODS:
        raise UserError(f"unknown method {method!r}; use one of {', '.join(METHODS)}")
    if thresholds not in THRESHOLD_POLICIES:
        raise UserError(f"unknown threshold policy {thresholds!r}; use {' or '.join(THRESHOLD_POLICIES)}")
    started = time.perf_counter()
    vocab = config.vocab
    fit = dict(config=config, settings=settings, device=device, progress=progress,
               should_cancel=should_cancel, known=known)
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
        scores, fold_losses = _fit_and_score(method, train, test, stage=fold.name, **fit)
        if fold_losses is not None:
            losses[fold.name] = fold_losses
        scored.extend(test)
        score_parts.append(scores)
    if not scored:
        raise UserError("no fold had test pairs; check the subjects of the dataset")
    run = score_predictions(method, protocol, scored, np.concatenate(score_parts), vocab,
                            time.perf_counter() - started, known)
    run = replace(run, epoch_losses=losses or None)
    if thresholds == "nested":
        run = with_nested_thresholds(run, pairs, folds, **fit)
    return run


def with_nested_thresholds(run: MethodRun, pairs: Sequence[PairSample], folds: Sequence[Fold], *,
                           config: MicroAUConfig, settings: TrainSettings = TrainSettings(),
                           device="cpu", progress: Progress | None = None, should_cancel=None,
                           known: KnownLabels | None = None) -> MethodRun:
    """`run` (a fixed-threshold run of `cross_validate` on `pairs` and `folds`) scored with per-AU
    thresholds chosen for each fold by an inner LOSO over its training subjects only.

    Only the inner models are trained: the outer scores are `run`'s, which the nested policy
    would train again identically (every model and baseline is seeded per training), so a kept
    fixed run (`cli.run_cache`) turns into its nested twin at the inner folds' cost.
    """
    if run.thresholds is not None:
        raise ValueError("the run already has nested thresholds")
    started = time.perf_counter()
    fit = dict(config=config, settings=settings, device=device, progress=progress,
               should_cancel=should_cancel, known=known)
    row = {id(p): i for i, p in enumerate(run.pairs)}  # split() hands back these very objects
    raw = np.asarray(run.scores)
    scores = raw.copy()
    chosen: dict[str, np.ndarray] = {}
    for fold in folds:
        check_cancel(should_cancel)
        train, test = split(pairs, lambda p: p.subject, fold)
        if not test:
            continue
        chosen[fold.name] = _nested_thresholds(run.method, train, fold, **fit)
        rows = [row[id(p)] for p in test]
        scores[rows] = apply_thresholds(raw[rows], chosen[fold.name])
    nested = score_predictions(run.method, run.protocol, run.pairs, scores, config.vocab,
                               run.seconds + time.perf_counter() - started, known)
    return replace(nested, epoch_losses=run.epoch_losses, thresholds=chosen, raw_scores=raw)
