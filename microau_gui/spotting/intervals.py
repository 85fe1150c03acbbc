"""Frame intervals: IoU, the one-to-one MEGC matching, spotting scores and gated analysis ranges.

Owns: `Interval`, `interval_iou`, `match_intervals`, `SpotScore`, `SpotEvaluation`,
`evaluate_spotting`, `gate_ranges`. May import core only (plus numpy). No Qt.

Intervals are inclusive frame_idx pairs (onset, offset), as coders and MEGC sheets write them,
so a one-frame event is (n, n) and has length 1.

Matching rule (MEGC protocol, our reading):
- Within one video and one expression type, every (prediction, ground truth) pair with
  IoU >= `min_iou` (0.5) is a possible hit. Pairs are taken greedily in decreasing IoU (ties:
  earlier ground truth, then earlier prediction); a pair is kept when neither side is matched
  yet. So each ground-truth interval is matched at most once and each prediction at most once.
- TP = matched predictions; FP = unmatched predictions (a second prediction of an already
  matched ground truth is an FP); FN = unmatched ground-truth intervals.
- A prediction overlapping two ground-truth intervals is compared with both. It is a TP for at
  most one of them (the higher IoU); the other stays an FN unless another prediction hits it.
  If neither IoU reaches 0.5 it is one FP and both ground truths are FNs.
- Types: micro predictions are matched against micro ground truth only, macro against macro
  (the predicted type comes from the duration). The overall counts are the sums of the micro and
  macro counts, as MEGC sums TP/FP/FN over both types.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass

Interval = tuple[int, int]  # (onset, offset) frame_idx, inclusive
EXPRESSION_TYPES = ("micro", "macro")


def interval_iou(a: Interval, b: Interval) -> float:
    """Intersection over union of two inclusive frame intervals, counted in frames."""
    inter = min(a[1], b[1]) - max(a[0], b[0]) + 1
    if inter <= 0:
        return 0.0
    union = (a[1] - a[0] + 1) + (b[1] - b[0] + 1) - inter
    return inter / union


def match_intervals(pred: Sequence[Interval], truth: Sequence[Interval],
                    min_iou: float = 0.5) -> list[tuple[int, int, float]]:
    """One-to-one greedy matching by IoU: [(pred index, truth index, iou)], IoU >= `min_iou`."""
    pairs = []
    for i, p in enumerate(pred):
        for j, g in enumerate(truth):
            iou = interval_iou(p, g)
            if iou >= min_iou:
                pairs.append((-iou, j, i))
    pairs.sort()
    used_pred, used_truth, matches = set(), set(), []
    for neg_iou, j, i in pairs:
        if i in used_pred or j in used_truth:
            continue
        used_pred.add(i)
        used_truth.add(j)
        matches.append((i, j, -neg_iou))
    return sorted(matches)


@dataclass(frozen=True)
class SpotScore:
    tp: int
    fp: int
    fn: int

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        # 2TP / (2TP + FP + FN) equals the harmonic mean of P and R and is 0 when TP is 0.
        denominator = 2 * self.tp + self.fp + self.fn
        return 2 * self.tp / denominator if denominator else 0.0

    def __add__(self, other: "SpotScore") -> "SpotScore":
        return SpotScore(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn)

    def as_dict(self) -> dict:
        return {"precision": self.precision, "recall": self.recall, "f1": self.f1, **asdict(self)}


@dataclass(frozen=True)
class SpotEvaluation:
    overall: SpotScore
    micro: SpotScore
    macro: SpotScore

    def as_dict(self) -> dict:
        """The `eval-spot --json` report: {"overall": {...}, "micro": {...}, "macro": {...}}."""
        return {"overall": self.overall.as_dict(), "micro": self.micro.as_dict(),
                "macro": self.macro.as_dict()}


TypedInterval = tuple[int, int, str]  # (onset, offset, "micro" | "macro")


def evaluate_spotting(pred: Mapping[str, Iterable[TypedInterval]],
                      truth: Mapping[str, Iterable[TypedInterval]],
                      min_iou: float = 0.5) -> SpotEvaluation:
    """MEGC scores of predicted intervals against ground truth, both keyed by video."""
    scores = {kind: SpotScore(0, 0, 0) for kind in EXPRESSION_TYPES}
    for video in set(pred) | set(truth):
        video_pred = list(pred.get(video, ()))
        video_truth = list(truth.get(video, ()))
        for kind in EXPRESSION_TYPES:
            p = [(on, off) for on, off, t in video_pred if t == kind]
            g = [(on, off) for on, off, t in video_truth if t == kind]
            tp = len(match_intervals(p, g, min_iou))
            scores[kind] = scores[kind] + SpotScore(tp, len(p) - tp, len(g) - tp)
    return SpotEvaluation(overall=scores["micro"] + scores["macro"], micro=scores["micro"],
                          macro=scores["macro"])


def gate_ranges(candidates: Iterable, n_frames: int, fps: float, margin_s: float = 0.2,
                macro_apex_only: bool = True) -> list[tuple[int, int]]:
    """Frame ranges `analyze --gate spot` analyses: half-open (start, stop), sorted, disjoint.

    A micro candidate (anything with `onset`, `offset` and optionally `kind` and `apex`, or an
    (onset, offset) pair) contributes its whole interval widened by `margin_s` on both sides. A
    macro candidate contributes only its apex +- `margin_s` when `macro_apex_only` (the default):
    a macro-expression is visible at normal speed and lasts seconds, and its AUs are read at the
    apex, which is where a review-queue acceptance takes them from. Ranges are clipped to the
    video and merged when they overlap or touch. Frames outside every range get no prediction.
    """
    margin = max(0, int(round(margin_s * fps)))
    spans = []
    for cand in candidates:
        if hasattr(cand, "onset"):
            onset, offset = int(cand.onset), int(cand.offset)
            if macro_apex_only and getattr(cand, "kind", "micro") == "macro":
                onset = offset = int(getattr(cand, "apex", (onset + offset) // 2))
        else:
            onset, offset = int(cand[0]), int(cand[1])
        start, stop = max(0, onset - margin), min(n_frames, offset + margin + 1)
        if start < stop:
            spans.append((start, stop))
    merged: list[tuple[int, int]] = []
    for start, stop in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], stop))
        else:
            merged.append((start, stop))
    return merged
