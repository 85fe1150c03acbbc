"""Which AUs occur together in a synthetic expression, with its emotion and objective class.

Owns: `Combination`, `COMBINATIONS`, `MACRO_COMBINATIONS`, `schedule`, `parse_combination`.
May import core and synth.au_motion.

The combinations are those coded in CASME II and SAMM, and each carries the objective class of
Davison et al. (2018, "Objective classes for micro-facial expression recognition"), which CASME
II's 2019 coding file adds as `Objective Class`:

    I    happiness  6, 12, 6+12, 6+7+12, 7+12
    II   surprise   1+2, 5, 25, 1+2+25, 25+26, 5+24
    III  anger      23, 4, 4+7, 4+5, 4+5+7, 17+24, 4+6+7, 4+38
    IV   disgust    10, 9, 4+9, 4+40, 4+5+40, 4+7+9, 4+9+17, 4+7+10, 4+5+7+9, 7+10
    V    sadness    1, 15, 1+4, 6+15, 15+17
    VI   fear       1+2+4, 20
    VII  others     anything else (e.g. 14 contempt, 17 alone, 7 alone, 2 alone)

The emotion label is the class's emotion (CASME II's vocabulary plus "anger" and "fear"); it is
written for scoring emotion-free recognition and never used for training.

`weight` sets how often a combination recurs; the weights are chosen so each AU of the model
vocabulary has several positives per subject (AU4, the commonest AU in CASME II, stays the
commonest). `unilateral` marks combinations that are sometimes coded on one side only (L12,
R14 ...), as happens in the real datasets.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from microau_gui.core.errors import UserError
from microau_gui.synth.au_motion import AU_MOTIONS


@dataclass(frozen=True)
class Combination:
    """One AU combination and its labels."""

    aus: tuple[int, ...]  # AU numbers, ascending
    emotion: str  # CASME II style emotion word
    objective_class: str  # Davison objective class, "I" ... "VII"
    weight: int = 1  # relative frequency in the schedule
    unilateral: bool = False  # may be coded on one side only

    @property
    def code(self) -> str:
        return "+".join(str(n) for n in self.aus) or "none"


def _c(aus, emotion, objective_class, weight=1, unilateral=False) -> Combination:
    return Combination(tuple(aus), emotion, objective_class, weight, unilateral)


COMBINATIONS: tuple[Combination, ...] = (
    _c((12,), "happiness", "I", 2, unilateral=True),
    _c((6, 12), "happiness", "I", 2, unilateral=True),
    _c((6,), "happiness", "I"),
    _c((6, 7, 12), "happiness", "I"),
    _c((1, 2), "surprise", "II", 2),
    _c((5,), "surprise", "II", 2),
    _c((1, 2, 25), "surprise", "II"),
    _c((4,), "anger", "III", 2),
    _c((4, 7), "anger", "III", 2),
    _c((4, 5), "anger", "III"),
    _c((23,), "anger", "III"),
    _c((17, 24), "anger", "III"),
    _c((9,), "disgust", "IV", 2),
    _c((10,), "disgust", "IV", 2, unilateral=True),
    _c((4, 7, 10), "disgust", "IV"),
    _c((4, 9), "disgust", "IV"),
    _c((7, 10), "disgust", "IV"),
    _c((1,), "sadness", "V"),
    _c((15,), "sadness", "V", 2),
    _c((15, 17), "sadness", "V", 2),
    _c((1, 4), "sadness", "V"),
    _c((1, 2, 4), "fear", "VI"),
    _c((20,), "fear", "VI", 2, unilateral=True),
    _c((14,), "others", "VII", 3, unilateral=True),
    _c((17,), "others", "VII"),
    _c((7,), "others", "VII"),
    _c((2,), "others", "VII", 1, unilateral=True),
)

# Macro-expressions in long videos: the broad, full-face versions.
MACRO_COMBINATIONS: tuple[Combination, ...] = (
    _c((6, 12), "happiness", "I", 3),
    _c((6, 12, 25), "happiness", "I", 2),
    _c((1, 2, 5), "surprise", "II"),
    _c((1, 2, 25, 26), "surprise", "II"),
    _c((4, 7), "anger", "III"),
    _c((9, 10), "disgust", "IV"),
    _c((1, 4, 15), "sadness", "V"),
    _c((15, 17), "sadness", "V"),
    _c((1, 2, 4, 20), "fear", "VI"),
)


def schedule(combinations: tuple[Combination, ...], subject_idx: int, n_clips: int,
             seed: int) -> list[Combination]:
    """The combinations of one subject's clips, deterministic for the seed.

    Smooth weighted round-robin: every combination earns its weight in credit each turn and
    the richest one is drawn and pays the total back. Each combination thus recurs in
    proportion to its weight and evenly spread, so even a subject's first few clips form a
    representative mix, and every subject gets the same mix (what leave-one-subject-out
    needs: the AUs tested on one subject were trained on the others). A small seeded start
    credit varies the order between subjects and seeds.
    """
    rng = np.random.default_rng([seed, subject_idx, 0x5EED])
    weights = np.array([c.weight for c in combinations], np.float64)
    credit = rng.uniform(0.0, 1.0, len(combinations)) * weights
    picks = []
    for _ in range(n_clips):
        credit += weights
        k = int(np.argmax(credit))
        credit[k] -= weights.sum()
        picks.append(combinations[k])
    return picks


def parse_combination(text: str) -> Combination:
    """A combination from `"4+7"` (or `"none"` for a clip without any AU). Labels come from
    the table when the combination is in it, else objective class VII, emotion "others"."""
    text = text.strip().lower().removeprefix("au")
    if text in ("none", "0", ""):
        return Combination((), "others", "VII")
    try:
        aus = tuple(sorted({int(t.strip().lower().removeprefix("au")) for t in text.split("+")}))
    except ValueError:
        raise UserError(f"{text!r} is not an AU combination; write it like 4+7 or 12") from None
    unknown = [n for n in aus if n not in AU_MOTIONS or AU_MOTIONS[n].absolute]
    if unknown:
        known = ", ".join(str(n) for n, m in AU_MOTIONS.items() if not m.absolute)
        raise UserError(f"AU{unknown[0]} has no synthetic motion model; use AUs {known}")
    for combination in COMBINATIONS:
        if combination.aus == aus:
            return Combination(aus, combination.emotion, combination.objective_class, 1,
                               combination.unilateral)
    return Combination(aus, "others", "VII")
