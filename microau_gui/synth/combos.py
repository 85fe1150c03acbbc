"""Which AUs occur together in a synthetic expression, with its emotion and objective class.

Owns: `Combination`, `COMBINATIONS`, `MACRO_COMBINATIONS`, `schedule`, `parse_combination`.
May import core and synth.au_motion.

The combinations are those coded in CASME II and SAMM, and each carries the objective class of
Davison et al. (2018), which CASME II's 2019 coding file adds as `Objective Class`; the classes,
their AU descriptions and their emotions are `core.objective`'s table. Combinations no class
lists (14 contempt, 17 alone, 7 alone, 2 alone) are VII, "others"; the macro-expressions are the
broad versions of a class's description and carry that class.

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
from microau_gui.core.objective import OTHERS, expression_class
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


def _c(aus, objective_class, weight=1, unilateral=False) -> Combination:
    """A combination of objective class `objective_class`, labelled with that class's emotion."""
    return Combination(tuple(aus), expression_class(objective_class).emotion, objective_class,
                       weight, unilateral)


COMBINATIONS: tuple[Combination, ...] = (
    _c((12,), "I", 2, unilateral=True),
    _c((6, 12), "I", 2, unilateral=True),
    _c((6,), "I"),
    _c((6, 7, 12), "I"),
    _c((1, 2), "II", 2),
    _c((5,), "II", 2),
    _c((1, 2, 25), "II"),
    _c((4,), "III", 2),
    _c((4, 7), "III", 2),
    _c((4, 5), "III"),
    _c((23,), "III"),
    _c((17, 24), "III"),
    _c((9,), "IV", 2),
    _c((10,), "IV", 2, unilateral=True),
    _c((4, 7, 10), "IV"),
    _c((4, 9), "IV"),
    _c((7, 10), "IV"),
    _c((1,), "V"),
    _c((15,), "V", 2),
    _c((15, 17), "V", 2),
    _c((1, 4), "V"),
    _c((1, 2, 4), "VI"),
    _c((20,), "VI", 2, unilateral=True),
    _c((14,), "VII", 3, unilateral=True),
    _c((17,), "VII"),
    _c((7,), "VII"),
    _c((2,), "VII", 1, unilateral=True),
)

# Macro-expressions in long videos: the broad, full-face versions.
MACRO_COMBINATIONS: tuple[Combination, ...] = (
    _c((6, 12), "I", 3),
    _c((6, 12, 25), "I", 2),
    _c((1, 2, 5), "II"),
    _c((1, 2, 25, 26), "II"),
    _c((4, 7), "III"),
    _c((9, 10), "IV"),
    _c((1, 4, 15), "V"),
    _c((15, 17), "V"),
    _c((1, 2, 4, 20), "VI"),
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
        return Combination((), OTHERS.emotion, OTHERS.name)
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
    return Combination(aus, OTHERS.emotion, OTHERS.name)
