"""Emotion-label-free recognition: matching AU probabilities against the objective-class
descriptions, the labels used for scoring, and UF1 / UAR against hand-computed values.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from microau_gui.core.au import DEFAULT_VOCAB
from microau_gui.core.errors import UserError
from microau_gui.core.types import Sample
from microau_gui.core.objective import ALL_CLASSES
from microau_gui.training.emotion import (
    class_log_probs,
    observable_configurations,
    recognise,
    reference_labels,
)
from microau_gui.training.metrics import emotion_scores

VOCAB = DEFAULT_VOCAB


def probs_for(*active: int, on: float = 0.9, off: float = 0.02) -> np.ndarray:
    """A probability vector over the default vocabulary with `active` AUs likely."""
    numbers = [int(code[2:]) for code in VOCAB]
    return np.array([on if n in active else off for n in numbers])


def test_clear_au_patterns_are_recognised_as_their_objective_class():
    cases = {
        (6, 12): ("I", "happiness"),
        (12,): ("I", "happiness"),
        (1, 2): ("II", "surprise"),
        (5,): ("II", "surprise"),
        (4, 7): ("III", "anger"),
        (4, 7, 10): ("IV", "disgust"),
        (9,): ("IV", "disgust"),
        (15, 17): ("V", "sadness"),
        (1, 4): ("V", "sadness"),
        (1, 2, 4): ("VI", "fear"),
        (14,): ("VII", "others"),
        (2,): ("VII", "others"),
        (): ("VII", "others"),
    }
    probs = np.stack([probs_for(*aus) for aus in cases])
    assert recognise(probs, VOCAB) == [name for name, _ in cases.values()]
    assert recognise(probs, VOCAB, labels="emotion") == [emotion for _, emotion in cases.values()]


def test_uncertain_aus_are_weighed_not_thresholded():
    # AU12 clearly on, AU6 at 0.45: happiness either way (6+12 and 12 are both class I).
    p = probs_for(12)
    p[VOCAB.index("AU6")] = 0.45
    assert recognise(p[None], VOCAB) == ["I"]
    # AU1 and AU2 on, AU4 at 0.6: fear (1+2+4) is more likely than surprise (1+2).
    p = probs_for(1, 2)
    p[VOCAB.index("AU4")] = 0.6
    assert recognise(p[None], VOCAB) == ["VI"]
    p[VOCAB.index("AU4")] = 0.4
    assert recognise(p[None], VOCAB) == ["II"]
    # Many AUs each somewhat likely: some extra AU is probably on, so the exact prototypes are
    # improbable and the sample is "others" (Davison's class VII: any other combination).
    p = probs_for(1, 2, off=0.3)
    assert recognise(p[None], VOCAB) == ["VII"]


def test_class_probabilities_sum_to_one_and_others_takes_the_rest():
    rng = np.random.default_rng(0)
    probs = rng.uniform(0, 1, (20, len(VOCAB)))
    log_probs = class_log_probs(probs, VOCAB)
    assert log_probs.shape == (20, len(ALL_CLASSES))
    np.testing.assert_allclose(np.exp(log_probs).sum(axis=1), 1.0, atol=1e-6)


def test_configurations_outside_the_vocabulary_are_not_used():
    configs = observable_configurations(VOCAB)
    used = {config for _, config in configs}
    assert (17, 24) not in used and (20,) not in used and (25,) not in used  # AUs not in the 12
    assert (4, 7) in used and (1, 2, 4) in used
    # With a vocabulary holding AU20, fear is also described by AU20 alone.
    vocab = (*VOCAB, "AU20")
    p = np.full(len(vocab), 0.02)
    p[-1] = 0.9
    assert recognise(p[None], vocab) == ["VI"]


def test_reference_labels_prefer_objective_classes_and_explain_missing_ones():
    def sample(objective, emotion):
        return Sample("01", "EP01", Path("x"), 0, 1, 2, objective_class=objective, emotion=emotion)

    kind, labels = reference_labels([sample("III", "Disgust"), sample("7", "others")])
    assert kind == "objective" and labels == ["III", "VII"]
    kind, labels = reference_labels([sample(None, "Happiness"), sample("I", "repression")])
    assert kind == "emotion" and labels == ["happiness", "repression"]
    with pytest.raises(UserError, match="no emotion label"):
        reference_labels([sample(None, None)])
    with pytest.raises(UserError, match="no objective class"):
        reference_labels([sample(None, "happiness")], "objective")


def test_uf1_and_uar_match_hand_computed_values():
    truth = ["I", "I", "I", "II", "III", "III"]
    guess = ["I", "I", "II", "II", "III", "I"]
    scores = emotion_scores(truth, guess)
    # Class I: precision 2/3, recall 2/3 -> F1 2/3. II: precision 1/2, recall 1 -> 2/3.
    # III: precision 1, recall 1/2 -> 2/3. UF1 = 2/3; UAR = (2/3 + 1 + 1/2) / 3 = 13/18.
    assert scores["uf1"] == pytest.approx(2 / 3, abs=1e-4)
    assert scores["uar"] == pytest.approx(13 / 18, abs=1e-4)
    assert scores["n_samples"] == 6
    assert scores["confusion"]["III"] == {"III": 1, "I": 1}
