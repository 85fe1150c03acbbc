"""Which samples a training or evaluation run uses: `KIND:SHEET:ROOT` specs, subject selection.

Owns: `DatasetSpec`, `parse_dataset_spec`, `load_dataset`, `select_subjects`.
May import store, media and core; no torch, no Qt.

`--dataset casme2:CASME2-coding-20190701.xlsx:CASME2_RAW` names the importer, the coding sheet and
the media root. Windows paths hold colons too (`C:\\data\\x.xlsx`), so when the text after the
kind has more than one colon the split point is the one that leaves an existing sheet file.
Only expert-coded micro-expressions are used: MEGC rows typed "macro" are left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from microau_gui.core.errors import UserError
from microau_gui.core.types import Dataset


@dataclass(frozen=True)
class DatasetSpec:
    kind: str  # importer name, e.g. "casme2"
    sheet: Path  # coding sheet
    root: Path  # media root

    @property
    def numbering(self) -> str:
        """How image folders number their files for this importer."""
        return "ordinal" if self.kind == "casme3" else "file"


def parse_dataset_spec(text: str) -> DatasetSpec:
    """`KIND:SHEET:ROOT` -> `DatasetSpec`; raises UserError naming the expected form."""
    from microau_gui.store.importers import KINDS

    usage = "give --dataset KIND:SHEET:ROOT, e.g. casme2:coding.xlsx:CASME2_RAW"
    kind, sep, rest = (text or "").partition(":")
    if not sep or not rest:
        raise UserError(f"--dataset {text!r} is not KIND:SHEET:ROOT; {usage}")
    kind = kind.strip().lower()
    if kind not in KINDS:
        raise UserError(f"--dataset: unknown kind {kind!r}; use one of {', '.join(KINDS)}")
    cuts = [i for i, ch in enumerate(rest) if ch == ":"]
    if not cuts:
        raise UserError(f"--dataset {text!r} lacks the media root; {usage}")
    cut = next((i for i in cuts if Path(rest[:i]).expanduser().is_file()), cuts[0])
    sheet, root = rest[:cut].strip(), rest[cut + 1:].strip()
    if not sheet or not root:
        raise UserError(f"--dataset {text!r} has an empty sheet or media root; {usage}")
    return DatasetSpec(kind, Path(sheet).expanduser(), Path(root).expanduser())


def load_dataset(spec: DatasetSpec, progress=None) -> Dataset:
    """Import the sheet (media indexed frame-exactly); macro-expression rows are dropped."""
    from microau_gui.media import frame_index
    from microau_gui.store.importers import import_dataset

    if not spec.sheet.is_file():
        raise UserError(f"coding sheet {spec.sheet} does not exist; check --dataset")
    dataset = import_dataset(spec.kind, spec.sheet, spec.root, frame_index=frame_index, progress=progress)
    micro = tuple(s for s in dataset.samples if s.expression_type == "micro")
    if not micro:
        raise UserError(f"{spec.sheet.name} yielded no usable micro-expression samples "
                        f"({len(dataset.report.skipped)} rows skipped); run `python main.py import "
                        f"{spec.kind} {spec.sheet} {spec.root} --report` to see why")
    return replace(dataset, samples=micro)


def select_subjects(dataset: Dataset, subjects: Sequence[str] | None) -> Dataset:
    """Only the samples of `subjects` (as written in the sheet; "1" also matches "01")."""
    if not subjects:
        return dataset
    have = dataset.subjects

    def match(name: str) -> str:
        name = name.strip()
        for subject in have:
            if subject == name or (name.isdigit() and subject.isdigit() and int(subject) == int(name)):
                return subject
        raise UserError(f"subject {name!r} is not in the dataset (subjects: {', '.join(have)})")

    chosen = {match(name) for name in subjects if name.strip()}
    return replace(dataset, samples=tuple(s for s in dataset.samples if s.subject in chosen))
