"""AU detection and recognition metrics (scikit-learn), the JSON report and the per-AU table.

Owns: `AUScore`, `AUReport`, `au_report`, `format_au_table`, `emotion_scores`. May import core.
May import core (numpy, scikit-learn); no torch, no Qt.

Definitions (DESIGN.md section 1, our reading):
- Scores are pooled over all folds first (every sample is scored once, by the model that did not
  see its subject), then the metrics are computed once on the pooled predictions.
- F1 = F1 of the positive class (AU present), `sklearn.metrics.f1_score(pos_label=1)`.
- macro-F1 = mean of the F1 of both classes (present, absent), `average="macro"`; reported
  separately from F1, never mixed into it.
- AUC = `roc_auc_score` of the scores; null when only one class occurs.
- support = number of samples where the AU is present.
- Threshold: an AU is predicted present when its probability is >= 0.5 (`core.types.DECISION_THRESHOLD`), for
  every method alike. No threshold is tuned, so nothing can be tuned on held-out subjects.
- An AU with no positive sample has an undefined F1: it is reported with `f1: null` and left out of
  `mean_f1` and `mean_macro_f1` (its macro-F1 is still printed), so absent AUs neither reward nor
  punish a method.
- Recognition: UF1 = unweighted mean of per-class F1 and UAR = unweighted mean of per-class
  recall, over the classes present in the ground truth (the MEGC composite-database convention),
  `f1_score(average="macro")` and `recall_score(average="macro")` with `labels` = those classes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import f1_score, recall_score, roc_auc_score

from microau_gui.core.types import DECISION_THRESHOLD



@dataclass(frozen=True)
class AUScore:
    """Scores of one AU on pooled predictions."""

    code: str  # "AU12"
    f1: float | None  # F1 of the positive class; None when the AU never occurs
    macro_f1: float  # mean F1 of the present and absent classes
    auc: float | None  # ROC AUC; None when only one class occurs
    support: int  # samples where the AU is present
    n_predicted: int  # samples predicted present


@dataclass(frozen=True)
class AUReport:
    """Per-AU scores of one method under one protocol."""

    method: str  # "micro-au-clip", "flow-svm", "all-positive"
    protocol: str  # "loso", "kfold", "all", "eval" ...
    per_au: tuple[AUScore, ...]
    n_samples: int
    n_subjects: int
    threshold: float = DECISION_THRESHOLD

    @property
    def scored(self) -> tuple[AUScore, ...]:
        """AUs that occur at least once (the ones the means are taken over)."""
        return tuple(s for s in self.per_au if s.f1 is not None)

    @property
    def mean_f1(self) -> float:
        scored = self.scored
        return float(np.mean([s.f1 for s in scored])) if scored else 0.0

    @property
    def mean_macro_f1(self) -> float:
        scored = self.scored
        return float(np.mean([s.macro_f1 for s in scored])) if scored else 0.0

    def to_json(self) -> dict:
        """The report of DESIGN.md section 3 (more keys may be added by callers)."""
        return {
            "method": self.method,
            "protocol": self.protocol,
            "n_samples": self.n_samples,
            "n_subjects": self.n_subjects,
            "mean_f1": round(self.mean_f1, 4),
            "mean_macro_f1": round(self.mean_macro_f1, 4),
            "per_au": {
                s.code: {
                    "f1": None if s.f1 is None else round(s.f1, 4),
                    "macro_f1": round(s.macro_f1, 4),
                    "auc": None if s.auc is None else round(s.auc, 4),
                    "support": s.support,
                }
                for s in self.per_au
            },
            "threshold": self.threshold,
        }


def au_report(y_true: np.ndarray, y_score: np.ndarray, vocab: Sequence[str], *, method: str,
              protocol: str, subjects: Sequence[str],
              threshold: float = DECISION_THRESHOLD, known: np.ndarray | None = None) -> AUReport:
    """Scores `(N, n_au)` in [0, 1] against 0/1 labels `(N, n_au)` -> `AUReport`.

    known: bool `(N, n_au)`; each AU is scored on the samples whose label is known only (pooled
    sets with a union vocabulary: an AU a dataset does not code is neither hit nor miss there).
    """
    y_true = np.asarray(y_true).astype(int)
    y_score = np.asarray(y_score, dtype=np.float64)
    if y_true.shape != y_score.shape or y_true.ndim != 2 or y_true.shape[1] != len(vocab):
        raise ValueError(f"labels {y_true.shape} and scores {y_score.shape} must both be (N, {len(vocab)})")
    y_pred = (y_score >= threshold).astype(int)
    scores = []
    for k, code in enumerate(vocab):
        truth, pred, score = y_true[:, k], y_pred[:, k], y_score[:, k]
        if known is not None:
            rows = np.asarray(known[:, k], dtype=bool)
            truth, pred, score = truth[rows], pred[rows], score[rows]
        support = int(truth.sum())
        f1 = float(f1_score(truth, pred, pos_label=1, zero_division=0.0)) if support else None
        macro = (float(f1_score(truth, pred, labels=[0, 1], average="macro", zero_division=0.0))
                 if len(truth) else 0.0)  # no known label: support 0, left out of every mean
        auc = float(roc_auc_score(truth, score)) if 0 < support < len(truth) else None
        scores.append(AUScore(code, f1, macro, auc, support, int(pred.sum())))
    return AUReport(method=method, protocol=protocol, per_au=tuple(scores),
                    n_samples=int(len(y_true)), n_subjects=len(set(subjects)), threshold=threshold)


def format_au_table(report: AUReport) -> str:
    """The per-AU table printed by `train` and `eval`."""
    lines = [f"{report.method} ({report.protocol}, {report.n_samples} samples, "
             f"{report.n_subjects} subjects, threshold {report.threshold:g})",
             f"{'AU':6s} {'F1':>6s} {'macroF1':>8s} {'AUC':>6s} {'support':>8s} {'predicted':>10s}"]

    def num(value: float | None) -> str:
        return "     -" if value is None else f"{value:6.3f}"

    for s in report.per_au:
        lines.append(f"{s.code:6s} {num(s.f1)} {s.macro_f1:8.3f} {num(s.auc)} {s.support:8d} {s.n_predicted:10d}")
    lines.append(f"{'mean':6s} {report.mean_f1:6.3f} {report.mean_macro_f1:8.3f}")
    return "\n".join(lines)


def emotion_scores(true_labels: Sequence[str], predicted: Sequence[str]) -> dict:
    """`{"uf1", "uar", "n_samples", "classes", "confusion"}` over the classes in `true_labels`.

    `confusion[true][predicted]` counts samples.
    """
    if len(true_labels) != len(predicted):
        raise ValueError("true and predicted labels differ in length")
    if not true_labels:
        return {"uf1": 0.0, "uar": 0.0, "n_samples": 0, "classes": [], "confusion": {}}
    classes = sorted(set(true_labels))
    uf1 = f1_score(true_labels, predicted, labels=classes, average="macro", zero_division=0.0)
    uar = recall_score(true_labels, predicted, labels=classes, average="macro", zero_division=0.0)
    confusion: dict[str, dict[str, int]] = {c: {} for c in classes}
    for truth, guess in zip(true_labels, predicted):
        confusion[truth][guess] = confusion[truth].get(guess, 0) + 1
    return {"uf1": round(float(uf1), 4), "uar": round(float(uar), 4),
            "n_samples": len(true_labels), "classes": classes, "confusion": confusion}
