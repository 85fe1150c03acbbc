"""Evaluation protocols: leave-one-subject-out and subject-wise folds. No subject is ever on both sides.

Owns: `Fold`, `loso_folds`, `subject_folds`, `holdout_fold`, `split`. May import core (numpy);
no torch, no Qt.

DESIGN.md section 1: only LOSO or subject-wise splits are allowed. A fold names its training
and test subjects; `split` asserts they are disjoint and that every sample lands on exactly one
side, so a bug elsewhere cannot leak a test subject's face into training silently.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from microau_gui.core.errors import UserError

T = TypeVar("T")


@dataclass(frozen=True)
class Fold:
    """One train/test split by subject."""

    name: str  # e.g. "test 02"
    train_subjects: tuple[str, ...]
    test_subjects: tuple[str, ...]

    def __post_init__(self) -> None:
        overlap = set(self.train_subjects) & set(self.test_subjects)
        if overlap:
            raise AssertionError(f"fold {self.name}: subjects {sorted(overlap)} on both sides")
        if not self.test_subjects:
            raise AssertionError(f"fold {self.name} has no test subject")


def loso_folds(subjects: Sequence[str]) -> tuple[Fold, ...]:
    """One fold per subject: test on it, train on all the others."""
    subjects = sorted(set(subjects))
    if len(subjects) < 2:
        raise UserError(
            f"leave-one-subject-out needs at least 2 subjects, the dataset has {len(subjects)}; "
            "add subjects or use --protocol all"
        )
    return tuple(
        Fold(f"test {s}", tuple(x for x in subjects if x != s), (s,)) for s in subjects
    )


def subject_folds(subjects: Sequence[str], n_folds: int, seed: int = 0) -> tuple[Fold, ...]:
    """`n_folds` subject-wise folds: subjects shuffled (seeded) and dealt round-robin."""
    subjects = sorted(set(subjects))
    if not 2 <= n_folds <= len(subjects):
        raise UserError(
            f"{n_folds} subject-wise folds need between 2 and {len(subjects)} (the number of "
            "subjects); choose another --folds"
        )
    order = np.random.default_rng(seed).permutation(len(subjects))
    groups = [sorted(subjects[i] for i in order[k::n_folds]) for k in range(n_folds)]
    return tuple(
        Fold(f"fold {k + 1}/{n_folds}", tuple(s for s in subjects if s not in group), tuple(group))
        for k, group in enumerate(groups)
    )


def holdout_fold(subjects: Sequence[str], test_subjects: Sequence[str]) -> Fold:
    """Train on every subject except `test_subjects`, test on those."""
    subjects = sorted(set(subjects))
    unknown = sorted(set(test_subjects) - set(subjects))
    if unknown:
        raise UserError(f"held-out subjects {', '.join(unknown)} are not in the data "
                        f"(subjects: {', '.join(subjects)})")
    train = tuple(s for s in subjects if s not in set(test_subjects))
    if not train:
        raise UserError("every subject is held out; keep at least one for training")
    return Fold("holdout " + ",".join(sorted(test_subjects)), train, tuple(sorted(test_subjects)))


def split(items: Sequence[T], subject_of, fold: Fold) -> tuple[list[T], list[T]]:
    """(train items, test items) of `fold`; `subject_of(item)` names an item's subject.

    Items of subjects in neither list are left out. Asserts that no subject ends up on both sides.
    """
    train_set, test_set = set(fold.train_subjects), set(fold.test_subjects)
    train = [item for item in items if subject_of(item) in train_set]
    test = [item for item in items if subject_of(item) in test_set]
    seen_train = {subject_of(item) for item in train}
    seen_test = {subject_of(item) for item in test}
    assert not seen_train & seen_test, f"fold {fold.name}: a subject is on both sides"
    return train, test
