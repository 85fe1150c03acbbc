"""The objective classes of micro-expressions: which AU combinations describe which class.

Owns: `ExpressionClass`, `OBJECTIVE_CLASSES`, `OTHERS`, `ALL_CLASSES`, `expression_class`.
Imports nothing of ours (standard library only).

The classes of Davison, Merghani, Lansley, Ng & Yap, "Objective Classes for Micro-Facial
Expression Recognition", J. Imaging 4(10):119, 2018 (Table 2), which the CASME II 2019 coding
file carries as "Objective Class". Davison et al. built them from the FACS emotion prototypes
(EMFACS; Ekman & Friesen, and the FACS Investigator's Guide, Ekman, Friesen & Hager 2002)
restricted to the AU combinations seen in CASME II and SAMM:

    I    happiness  6, 12, 6+12, 6+7+12, 7+12
    II   surprise   1+2, 5, 25, 1+2+25, 25+26, 5+24
    III  anger      23, 4, 4+7, 4+5, 4+5+7, 17+24, 4+6+7, 4+38
    IV   disgust    10, 9, 4+9, 4+40, 4+5+40, 4+7+9, 4+9+17, 4+7+10, 4+5+7+9, 7+10
    V    sadness    1, 15, 1+4, 6+15, 15+17
    VI   fear       1+2+4, 20
    VII  others     every other combination

(The numbering is Davison's, which the synthetic generator and CASME II 2019 also use. Some
summaries list the classes in another order, e.g. "II disgust, III surprise"; scoring compares
class *names* through this table, so only the table has to agree with the data.)

Recognition (`training.emotion`) matches predicted AUs against these configurations; the
synthetic generator (`synth.combos`) labels the combinations it renders with them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ExpressionClass:
    """One class and the AU configurations that describe it."""

    name: str  # objective class numeral, e.g. "III"
    emotion: str  # its emotion word, e.g. "anger"
    configurations: tuple[tuple[int, ...], ...]  # exact AU sets (AU numbers, ascending)


OBJECTIVE_CLASSES: tuple[ExpressionClass, ...] = (
    ExpressionClass("I", "happiness", ((6,), (12,), (6, 12), (6, 7, 12), (7, 12))),
    ExpressionClass("II", "surprise", ((1, 2), (5,), (25,), (1, 2, 25), (25, 26), (5, 24))),
    ExpressionClass("III", "anger", ((23,), (4,), (4, 7), (4, 5), (4, 5, 7), (17, 24), (4, 6, 7),
                                     (4, 38))),
    ExpressionClass("IV", "disgust", ((10,), (9,), (4, 9), (4, 40), (4, 5, 40), (4, 7, 9),
                                      (4, 9, 17), (4, 7, 10), (4, 5, 7, 9), (7, 10))),
    ExpressionClass("V", "sadness", ((1,), (15,), (1, 4), (6, 15), (15, 17))),
    ExpressionClass("VI", "fear", ((1, 2, 4), (20,))),
)
OTHERS = ExpressionClass("VII", "others", ())
ALL_CLASSES: tuple[ExpressionClass, ...] = (*OBJECTIVE_CLASSES, OTHERS)


def expression_class(name: str) -> ExpressionClass:
    """The class with numeral `name` ("I" ... "VII"); KeyError for anything else."""
    for cls in ALL_CLASSES:
        if cls.name == name:
            return cls
    raise KeyError(f"{name!r} is not an objective class; use I to VII")

