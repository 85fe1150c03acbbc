"""Plain value types shared by every layer: dataset samples, import reports, frame predictions.

Owns: `Sample`, `Dataset`, `RowIssue`, `ImportReport`, `FramePrediction`, `MIN_EXPRESSION_S`. May import only the
standard library, numpy and other `core` modules. No Qt, no torch: the GUI reads these too.

Frame numbers: every label is keyed to a 0-based `frame_idx` into its media source (the n-th
frame that sequential decoding returns, or the n-th file of a naturally sorted image folder).
Coding sheets write their own numbers (CASME II `img46.jpg` is frame number 46); those are kept
in the `*_number` fields so exports can write them back unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from microau_gui.core.aus import AUCode

# The shortest plausible facial expression (Ekman: micro-expressions last from about 1/25 s):
# review suggestions shorter than this are model flicker, and the window asks before accepting
# an event this short.
MIN_EXPRESSION_S = 0.04


@dataclass(frozen=True)
class Sample:
    """One coded expression: a CASME II / SAMM / CAS(ME)^3 row or a MEGC interval."""

    subject: str  # dataset subject id as written, e.g. "01", "006", "spNO.1"
    clip: str  # clip / episode / video id, e.g. "EP02_01f"
    media_path: Path  # image folder or video file holding the clip
    onset: int  # frame_idx into media_path
    apex: int  # frame_idx; importers fill a missing apex ("/") with the middle frame and say so
    offset: int  # frame_idx, inclusive
    aus: tuple[AUCode, ...] = ()
    emotion: str | None = None  # dataset emotion label; used only for scoring, never training
    objective_class: str | None = None  # CASME II 2019 "Objective Classes" (I-VII)
    expression_type: str = "micro"  # "micro" or "macro" (MEGC spotting sheets)
    onset_number: int | None = None  # frame numbers as written in the sheet
    apex_number: int | None = None
    offset_number: int | None = None
    row: int | None = None  # 1-based sheet row, for reports
    aus_cell: str | None = None  # the sheet's AU cell exactly as written (unparsed tokens included)

    @property
    def au_numbers(self) -> tuple[int, ...]:
        """Distinct AU numbers, sorted (side and intensity dropped)."""
        return tuple(sorted({c.number for c in self.aus}))

    @property
    def key(self) -> str:
        return f"{self.subject}/{self.clip}/{self.onset}"


@dataclass(frozen=True)
class RowIssue:
    """A sheet row an importer had to fix or skip."""

    row: int  # 1-based row in the sheet
    action: str  # "fixed", "skipped" or "noted" (worth knowing, nothing changed)
    reason: str

    def __str__(self) -> str:
        return f"row {self.row}: {self.action}: {self.reason}"


@dataclass(frozen=True)
class ImportReport:
    kind: str  # importer name, e.g. "casme2"
    sheet: Path
    n_rows: int  # data rows seen
    issues: tuple[RowIssue, ...] = ()

    @property
    def fixed(self) -> tuple[RowIssue, ...]:
        return tuple(i for i in self.issues if i.action == "fixed")

    @property
    def skipped(self) -> tuple[RowIssue, ...]:
        return tuple(i for i in self.issues if i.action == "skipped")

    @property
    def noted(self) -> tuple[RowIssue, ...]:
        return tuple(i for i in self.issues if i.action == "noted")


@dataclass(frozen=True)
class Dataset:
    """Everything one importer produced from one sheet."""

    kind: str
    sheet: Path
    media_root: Path
    samples: tuple[Sample, ...]
    report: ImportReport

    @property
    def subjects(self) -> tuple[str, ...]:
        return tuple(sorted({s.subject for s in self.samples}))


# An AU is taken as present when its probability is at or above this (every model, everywhere:
# scores, suggestions, review queues, exports of model spans, the AU bars' tick).
DECISION_THRESHOLD = 0.5


@dataclass(frozen=True, eq=False)
class FramePrediction:
    """What the model says about one frame, in image coordinates, ready to draw.

    Produced by `inference.Predictor`; consumed by the CLI, the session and the GUI.
    """

    frame_idx: int
    reference_idx: int  # frame the motion was measured against
    model_version: str
    vocab: tuple[str, ...]  # AU codes, model order
    face_found: bool
    probs: np.ndarray | None = None  # (n_au,) float32 in [0, 1]; None when no face
    gda: np.ndarray | None = None  # (n_au, n_au) float32, rows sum to 1
    pta_grid: np.ndarray | None = None  # (n_au, g, g) float32 patch attention, rows sum to 1
    heatmap_box: tuple[int, int, int, int] | None = None  # x0, y0, x1, y1 in image px
    # (n_au, h, w) uint8 PTA warped onto the image box, at most inference's HEATMAP_MAX_PX a side
    # (h, w = the box's size times one scale <= 1): views stretch it over heatmap_box
    heatmaps: np.ndarray | None = None
    # "AU12/R", "AU12/L" (lateral halves) or "AU9" (midline) -> (k, 2) polygon in xy_img
    regions_img: dict[str, np.ndarray] = field(default_factory=dict)
    landmarks_img: np.ndarray | None = None  # (478, 2) float32 xy_img
    face_box: tuple[int, int, int, int] | None = None  # x0, y0, x1, y1 in image px
    crop_to_img: np.ndarray | None = None  # (2, 3) float64 similarity, aligned crop -> image
    request_id: int = 0  # set by workers so stale answers can be dropped
