"""What a model's quality figure measures, in words: one place, so the versions panel, the
fine-tune dialog and the model card never print a bare "mean F1" that means different things.

Owns: `figure_scope`, `f1_text`. May import nothing of ours (reads a card's `metrics` dict).

The issue behind it (16, item 3): the versions panel showed demo-tiny at 1.000 and its child at
0.400 while the fine-tune dialog showed 0.400 -> 0.400. Both were right and measured different
things: 1.000 is the demo model scored on its own training subjects; 0.400 -> 0.400 is the parent
and the child on the project's held-out subject. Every figure now carries that scope.
"""

from __future__ import annotations


def f1_text(value) -> str:
    """An F1 as every view prints it (cards keep 4 decimals, we show 3)."""
    return "–" if not isinstance(value, (int, float)) else f"{round(float(value), 4):.3f}"


def figure_scope(metrics: dict) -> tuple[str, str]:
    """(short tag for a table cell, sentence for a tooltip or a details line) saying which
    subjects and which protocol the card's `mean_f1` was measured on."""
    n_samples = metrics.get("n_samples")
    clips = f", {n_samples} clips" if isinstance(n_samples, int) else ""
    finetune = metrics.get("finetune")
    if isinstance(finetune, dict):
        subjects = ", ".join(map(str, finetune.get("holdout_subjects") or ())) or "?"
        if finetune.get("protocol") == "holdout":
            return (f"held-out {subjects}",
                    f"on held-out subject(s) {subjects}{clips} of the project's events, which "
                    "this version never saw; 'before' is its parent on the same clips")
        return (f"LOSO {subjects}",
                f"leave-one-subject-out over {subjects}{clips} of the project's events (pooled "
                "over folds); 'before' is its parent on the same clips")
    protocol = metrics.get("protocol")
    n_subjects = metrics.get("n_subjects")
    subjects = f"{n_subjects} subjects" if isinstance(n_subjects, int) else "its subjects"
    if protocol == "all":
        return ("training data",
                f"on its own training data ({subjects}{clips}), not held out: optimistic, and "
                "not comparable with a held-out figure")
    if protocol == "loso":
        return ("LOSO", f"leave-one-subject-out over {subjects}{clips} of its training dataset")
    if "mean_f1" in metrics:
        return ("unstated", "how this figure was measured is not recorded in the card")
    return ("", "no quality figure recorded")
