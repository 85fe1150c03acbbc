"""Paired comparisons of methods scored on the same folds: per-fold differences and bootstrap CIs.

Owns: `ScoredRun`, `fold_mean_f1`, `pooled_mean_f1`, `paired_comparison`, `mean_std`. May import
core (numpy); no torch, no Qt.

A `ScoredRun` is one method's LOSO predictions on one synthetic data set with one training seed:
0/1 labels and 0/1 predictions `(N, n_au)` and each sample's fold. The statistic everywhere is
the project's mean F1 (`training.metrics`): F1 of the positive class per AU on the pooled
predictions, averaged over the AUs that occur (an AU with no positive sample is left out).

`paired_comparison(model_runs, baseline_runs)` compares two methods on the same samples:
- the difference of mean F1, model minus baseline, for every (data set, training seed) pair
  (runs with the same training seed are paired; a deterministic baseline's one run is paired
  with every seed of the model), averaged over training seeds and then over data sets;
- per-fold differences: the same on each fold's test samples alone, averaged over seeds, so a
  reader sees whether the gain holds on every held-out subject;
- a 95 % CI from a paired, stratified bootstrap over test samples: each resample draws, within
  every (data set, fold), as many samples as the fold has, with replacement, and both methods
  are scored on the same draw, for every training seed, then averaged as above. It measures how
  much the gain depends on which test clips were drawn; the spread over training seeds is
  reported beside it (std), not inside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class ScoredRun:
    """One method's pooled LOSO predictions on one data set with one training seed."""

    method: str
    data_seed: int
    train_seed: int
    labels: np.ndarray  # (N, n_au) 0/1
    predicted: np.ndarray  # (N, n_au) 0/1 at the decision threshold
    folds: np.ndarray  # (N,) fold index of each sample


def _mean_f1_weighted(labels: np.ndarray, predicted: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Mean F1 for each row of sample weights `(B, N)` (resample counts); NaN when no AU occurs."""
    y = labels.astype(float)
    p = predicted.astype(float)
    tp = weights @ (y * p)  # (B, n_au)
    fp = weights @ ((1 - y) * p)
    fn = weights @ (y * (1 - p))
    support = tp + fn
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(support > 0, 2 * tp / (2 * tp + fp + fn), np.nan)
    occurs = support > 0
    with np.errstate(invalid="ignore"):
        return np.where(occurs.any(axis=1), np.nansum(f1, axis=1) / occurs.sum(axis=1), np.nan)


def pooled_mean_f1(run: ScoredRun) -> float:
    return float(_mean_f1_weighted(run.labels, run.predicted, np.ones((1, len(run.labels))))[0])


def fold_mean_f1(run: ScoredRun) -> dict[int, float]:
    """Mean F1 on each fold's test samples alone."""
    out = {}
    for fold in np.unique(run.folds):
        weights = (run.folds == fold).astype(float)[None, :]  # (1, N)
        out[int(fold)] = float(_mean_f1_weighted(run.labels, run.predicted, weights)[0])
    return out


def mean_std(values: Sequence[float]) -> dict:
    values = [float(v) for v in values]
    return {"mean": round(float(np.mean(values)), 4),
            "std": round(float(np.std(values, ddof=1)), 4) if len(values) > 1 else 0.0,
            "n": len(values)}


def _by_data(runs: Sequence[ScoredRun]) -> dict[int, list[ScoredRun]]:
    out: dict[int, list[ScoredRun]] = {}
    for run in runs:
        out.setdefault(run.data_seed, []).append(run)
    return out


def paired_comparison(model_runs: Sequence[ScoredRun], baseline_runs: Sequence[ScoredRun],
                      n_boot: int = 1000, seed: int = 0) -> dict:
    """See the module docstring. Every data set of `model_runs` needs a baseline run on it."""
    model_by, base_by = _by_data(model_runs), _by_data(baseline_runs)
    missing = sorted(set(model_by) - set(base_by))
    if missing:
        raise ValueError(f"no baseline run on data sets {missing}")
    rng = np.random.default_rng(seed)
    per_data, per_fold, boot_rows, seed_diffs = [], [], [], []
    for data_seed in sorted(model_by):
        models, bases = model_by[data_seed], base_by[data_seed]
        labels = models[0].labels
        folds = models[0].folds
        for run in [*models, *bases]:
            if run.labels.shape != labels.shape or not np.array_equal(run.labels, labels) \
                    or not np.array_equal(run.folds, folds):
                raise ValueError(f"data set {data_seed}: runs are not on the same samples and folds")
        by_seed = {b.train_seed: b for b in bases}
        # Same training seed when the baseline has it (an ablation against the full model),
        # else the baseline's one run (a deterministic baseline) for every seed.
        pairs = [(m, by_seed.get(m.train_seed, bases[0])) for m in models]
        diffs = [pooled_mean_f1(m) - pooled_mean_f1(b) for m, b in pairs]
        seed_diffs += diffs
        per_data.append(float(np.mean(diffs)))
        fold_ids = np.unique(folds)
        for fold in fold_ids:
            fold_diffs = [fold_mean_f1(m)[int(fold)] - fold_mean_f1(b)[int(fold)] for m, b in pairs]
            per_fold.append({"data_seed": data_seed, "fold": int(fold),
                             "n_samples": int((folds == fold).sum()),
                             "difference": round(float(np.mean(fold_diffs)), 4)})
        # Stratified resample counts (n_boot, N): within each fold, multinomial over its samples.
        weights = np.zeros((n_boot, len(labels)))
        for fold in fold_ids:
            members = np.flatnonzero(folds == fold)
            draws = rng.integers(0, len(members), size=(n_boot, len(members)))
            for row in range(n_boot):
                np.add.at(weights[row], members[draws[row]], 1.0)
        boot = np.mean([_mean_f1_weighted(m.labels, m.predicted, weights)
                        - _mean_f1_weighted(b.labels, b.predicted, weights) for m, b in pairs], axis=0)
        boot_rows.append(boot)  # (n_boot,)
    boot_mean = np.nanmean(np.stack(boot_rows), axis=0)  # (n_boot,) averaged over data sets
    low, high = np.nanpercentile(boot_mean, [2.5, 97.5])
    return {
        "model": model_runs[0].method, "baseline": baseline_runs[0].method,
        "mean_difference": round(float(np.mean(per_data)), 4),
        "ci95": [round(float(low), 4), round(float(high), 4)],
        "ci_method": "paired bootstrap over test samples, stratified by data set and fold, "
                     f"{n_boot} resamples, seed {seed}; training seeds averaged inside",
        "per_data_set": {str(s): round(d, 4) for s, d in zip(sorted(model_by), per_data)},
        "per_seed_differences": mean_std(seed_diffs),
        "per_fold": per_fold,
    }
