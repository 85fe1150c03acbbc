"""Emotion-label-free recognition: each class is described by prototype AU sets; predicted AU
probabilities are matched against the descriptions. No emotion label is ever trained on.

Owns: `class_log_probs`, `recognise`, `reference_labels`. May import core (numpy); no torch,
no Qt.

Stated by the paper: micro-expression recognition without emotion labels, from the learned AUs.
Our specification (DESIGN.md section 1):

The descriptions are the objective classes of Davison et al. (2018), held in
`core.objective` with their table and sources.

Matching. A class's description is a set of exact AU configurations. The network's sigmoid
outputs are read as independent per-AU probabilities, so the probability that a sample shows
exactly configuration C (over the model vocabulary V) is prod_{k in C} p_k prod_{k in V \\ C}
(1 - p_k). A class's probability is the sum over its configurations; "others" (VII) gets the
remaining mass, 1 - sum of the named classes, which is exactly Davison's "anything else". The
sample's class is the most probable one. Configurations that use an AU outside the vocabulary
(e.g. 25, 23, 20 with the default 12 AUs) cannot be observed by the model and are left out:
truncating them would collide with other classes (17+24 -> 17, which is "others").

Emotion words (`labels="emotion"`): each class carries Davison's emotion name, and a predicted
class is scored as that word. Dataset words outside those seven (CASME II's "repression") stay as
ground-truth classes that are never predicted, which lowers the scores honestly.

Text-aligned AU features are not used for matching: the class descriptions are AU sets, and the
AU probabilities already come from those features through the prompt-cosine head.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from microau_gui.core.au import au_info
from microau_gui.core.errors import UserError
from microau_gui.core.objective import ALL_CLASSES, OBJECTIVE_CLASSES, ExpressionClass
from microau_gui.core.types import Sample

_P_CLIP = 1e-4  # keeps log(p) and log(1 - p) finite for saturated probabilities
LABEL_KINDS = ("auto", "objective", "emotion")


def observable_configurations(vocab: Sequence[str]) -> list[tuple[ExpressionClass, tuple[int, ...]]]:
    """(class, configuration) pairs whose AUs are all in `vocab`."""
    numbers = {au_info(code).number for code in vocab}
    return [(cls, config) for cls in OBJECTIVE_CLASSES for config in cls.configurations
            if set(config) <= numbers]


def class_log_probs(probs: np.ndarray, vocab: Sequence[str]) -> np.ndarray:
    """`(N, 7)` log-probabilities of classes I ... VI and VII (others), in `ALL_CLASSES` order."""
    probs = np.clip(np.asarray(probs, np.float64), _P_CLIP, 1 - _P_CLIP)  # (N, n_au)
    if probs.ndim != 2 or probs.shape[1] != len(vocab):
        raise ValueError(f"probabilities must be (N, {len(vocab)}), got {probs.shape}")
    index = {au_info(code).number: k for k, code in enumerate(vocab)}
    log_on, log_off = np.log(probs), np.log1p(-probs)  # (N, n_au)
    all_off = log_off.sum(axis=1)  # (N,) log P(no AU at all)
    class_prob = np.zeros((len(probs), len(OBJECTIVE_CLASSES)))  # (N, 6)
    position = {cls.name: c for c, cls in enumerate(OBJECTIVE_CLASSES)}
    for cls, config in observable_configurations(vocab):
        cols = [index[n] for n in config]
        log_config = all_off + (log_on[:, cols] - log_off[:, cols]).sum(axis=1)  # (N,)
        class_prob[:, position[cls.name]] += np.exp(log_config)
    others = np.clip(1.0 - class_prob.sum(axis=1, keepdims=True), 1e-12, 1.0)  # (N, 1)
    return np.log(np.concatenate([np.clip(class_prob, 1e-300, None), others], axis=1))  # (N, 7)


def recognise(probs: np.ndarray, vocab: Sequence[str], labels: str = "objective") -> list[str]:
    """The class of each sample: numerals ("I" ... "VII") or emotion words (`labels="emotion"`)."""
    best = class_log_probs(probs, vocab).argmax(axis=1)  # (N,)
    if labels == "emotion":
        return [ALL_CLASSES[i].emotion for i in best]
    return [ALL_CLASSES[i].name for i in best]


def _normalise_objective(value: str) -> str:
    text = value.strip().upper()
    return {"1": "I", "2": "II", "3": "III", "4": "IV", "5": "V", "6": "VI", "7": "VII"}.get(text, text)


def reference_labels(samples: Sequence[Sample], labels: str = "auto") -> tuple[str, list[str]]:
    """(kind used, ground-truth labels) of `samples` for scoring.

    "auto": objective classes when every sample has one, else emotion words. Raises UserError
    when the chosen labels are missing.
    """
    if labels not in LABEL_KINDS:
        raise UserError(f"unknown label kind {labels!r}; use one of {', '.join(LABEL_KINDS)}")
    if labels == "auto":
        labels = "objective" if samples and all(s.objective_class for s in samples) else "emotion"
    if labels == "objective":
        missing = [s.key for s in samples if not s.objective_class]
        if missing:
            raise UserError(f"{len(missing)} samples (e.g. {missing[0]}) have no objective class; "
                            "use --labels emotion")
        return "objective", [_normalise_objective(s.objective_class) for s in samples]
    missing = [s.key for s in samples if not s.emotion]
    if missing:
        raise UserError(f"{len(missing)} samples (e.g. {missing[0]}) have no emotion label; "
                        "emotion recognition needs a sheet with an emotion column")
    return "emotion", [s.emotion.strip().lower() for s in samples]
