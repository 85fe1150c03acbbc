"""Honest baselines, scored on the same folds, threshold and metrics as Micro-AU CLIP.

Owns: `region_features`, `FlowSVM`, `AllPositive`. May import core and face (numpy,
scikit-learn); no torch, no Qt.

- `flow-svm`: the onset->apex flow of each prepared pair (the very flow the model's flow modes
  see) is pooled per AU region with `face.motion.region_flow_features` (mean u, mean v, mean and
  90th-percentile magnitude per region of the model vocabulary, both halves of lateral AUs
  together). The features of all regions form one vector, standardised on the training split;
  each AU gets its own linear SVM (`LinearSVC`, C = 1, balanced class weights) on that vector.
  Its score is sigmoid(decision value), so the common 0.5 threshold is the SVM's own boundary;
  AUC uses the same scores. An AU without both classes in the training split gets a constant
  score (its only class).
- `all-positive`: every AU predicted present for every sample (score 1): the F1 a detector gets
  for free, `2 p / (1 + p)` at prevalence p.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

from microau_gui.face.motion import region_flow_features, region_pixel_masks
from microau_gui.pairs.samples import PairSample


def region_features(pairs: Sequence[PairSample], vocab: Sequence[str]) -> np.ndarray:
    """`(N, n_au * 4)` float32 region-pooled flow features of prepared pairs."""
    rows = []
    for pair in pairs:
        masks = region_pixel_masks(pair.xy_crop, pair.size, list(vocab))  # (n_au, S, S)
        rows.append(region_flow_features(pair.flow, masks).reshape(-1))  # (n_au * 4,)
    return np.stack(rows).astype(np.float32) if rows else np.zeros((0, 4 * len(vocab)), np.float32)


class FlowSVM:
    """Per-AU linear SVMs on standardised region-pooled flow."""

    def __init__(self, n_au: int, c: float = 1.0, seed: int = 0):
        self.n_au = n_au
        self.c = c  # SVM regularisation (sklearn default); not tuned
        self.seed = seed
        self.scaler: StandardScaler | None = None
        self.models: list[LinearSVC | float] = []

    def fit(self, features: np.ndarray, labels: np.ndarray, known: np.ndarray | None = None) -> "FlowSVM":
        """features `(N, F)`, labels `(N, n_au)` 0/1 of the training split only; known: bool
        `(N, n_au)`, AU k's SVM learns from the samples whose label k is known (None: all)."""
        self.scaler = StandardScaler().fit(features)
        x_all = self.scaler.transform(features)
        self.models = []
        for k in range(self.n_au):
            rows = slice(None) if known is None else np.asarray(known[:, k], dtype=bool)
            x = x_all[rows]
            y = np.asarray(labels[rows, k]).astype(int)
            if len(y) == 0:
                self.models.append(0.0)  # never coded in training: predicted absent
                continue
            if y.min() == y.max():
                self.models.append(float(y[0]))
                continue
            svm = LinearSVC(C=self.c, class_weight="balanced", max_iter=20000, random_state=self.seed)
            self.models.append(svm.fit(x, y))
        return self

    def predict_scores(self, features: np.ndarray) -> np.ndarray:
        """`(N, n_au)` scores in [0, 1]; >= 0.5 means the SVM puts the sample on the AU side."""
        if self.scaler is None:
            raise RuntimeError("fit the FlowSVM before predicting")
        x = self.scaler.transform(features)
        out = np.zeros((len(x), self.n_au))
        for k, model in enumerate(self.models):
            if isinstance(model, float):
                out[:, k] = model
            else:
                out[:, k] = 1.0 / (1.0 + np.exp(-model.decision_function(x)))
        return out


class AllPositive:
    """Predicts every AU present."""

    def __init__(self, n_au: int):
        self.n_au = n_au

    def fit(self, features: np.ndarray, labels: np.ndarray, known: np.ndarray | None = None) -> "AllPositive":
        return self

    def predict_scores(self, features: np.ndarray) -> np.ndarray:
        return np.ones((len(features), self.n_au))
