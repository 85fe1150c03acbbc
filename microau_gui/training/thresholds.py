"""Per-AU decision thresholds chosen on the training folds only (nested), and how they are applied.

Owns: `THRESHOLD_POLICIES`, `THRESHOLD_GRID`, `choose_thresholds`, `apply_thresholds`.
May import core (numpy); no torch, no Qt.

Our specification (issue #20, "a per-AU threshold chosen on the training folds only"):
- Policy "fixed": every AU of every method is decided at `core.types.DECISION_THRESHOLD` (0.5).
- Policy "nested": for each outer fold, an *inner* leave-one-subject-out runs over that fold's
  training subjects only (`experiment.cross_validate`); the inner out-of-fold scores of those
  training pairs choose, per AU, the threshold of `THRESHOLD_GRID` with the highest F1 of the
  positive class (ties go to the candidate nearest 0.5; an AU without an inner positive keeps
  0.5). The outer held-out subject's pairs are never seen while choosing. With fewer than two
  training subjects there is no inner fold, and the fold keeps 0.5 (the report says so).
- Applying thresholds t (per AU) maps each score s monotonically so that s >= t becomes
  s' >= 0.5: s' = 0.5 s / t below t, 0.5 + 0.5 (s - t) / (1 - t) from t up. Every metric
  downstream (`training.metrics`, the paired comparisons) then thresholds at 0.5 as before, and
  the AUC, a rank statistic, is unchanged.
"""

from __future__ import annotations

import numpy as np

from microau_gui.core.types import DECISION_THRESHOLD

THRESHOLD_POLICIES: tuple[str, ...] = ("fixed", "nested")
THRESHOLD_GRID: tuple[float, ...] = tuple(round(0.05 * k, 2) for k in range(1, 20))  # 0.05 ... 0.95


def choose_thresholds(labels: np.ndarray, scores: np.ndarray,
                      grid: tuple[float, ...] = THRESHOLD_GRID, known: np.ndarray | None = None) -> np.ndarray:
    """Per-AU thresholds `(n_au,)` maximising the positive-class F1 of `scores` against 0/1
    `labels` `(N, n_au)`; ties go to the candidate nearest 0.5, an AU with no positive keeps 0.5.
    known: bool `(N, n_au)`, AU k is judged on the samples whose label k is known (None: all)."""
    labels = np.asarray(labels) > 0
    scores = np.asarray(scores, dtype=np.float64)
    candidates = np.asarray(grid, dtype=np.float64)  # (G,)
    # nearest-to-0.5 first, so argmax's first maximum is the tie-break
    candidates = candidates[np.argsort(np.abs(candidates - DECISION_THRESHOLD), kind="stable")]
    out = np.full(labels.shape[1], DECISION_THRESHOLD)
    for k in range(labels.shape[1]):
        rows = slice(None) if known is None else np.asarray(known[:, k], dtype=bool)
        truth = labels[rows, k]
        if not truth.any():
            continue
        predicted = scores[rows, k][None, :] >= candidates[:, None]  # (G, N)
        tp = (predicted & truth).sum(axis=1)
        fp = (predicted & ~truth).sum(axis=1)
        fn = (~predicted & truth).sum(axis=1)
        f1 = 2 * tp / np.maximum(2 * tp + fp + fn, 1)
        out[k] = candidates[int(np.argmax(f1))]
    return out


def apply_thresholds(scores: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Scores `(N, n_au)` remapped per AU so that `score >= threshold` iff `remapped >= 0.5`."""
    s = np.asarray(scores, dtype=np.float64)
    t = np.asarray(thresholds, dtype=np.float64)[None, :]  # (1, n_au)
    below = np.minimum(0.5 * s / t, np.nextafter(0.5, 0.0))  # stays below 0.5 whatever rounding does
    above = 0.5 + 0.5 * (s - t) / (1.0 - t)
    return np.where(s >= t, above, below)
