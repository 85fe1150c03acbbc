"""Frame intervals: IoU, the MEGC matchings, spotting and STRS scores and gated analysis ranges.

Owns: `Interval`, `interval_iou`, `match_intervals`, `match_intervals_strs`, `SCORING_MODES`,
`SpotScore`, `SpotEvaluation`, `evaluate_spotting`, `strs_videos`, `AnalysisScore`,
`score_analysis`, `gate_ranges`. May import core only (plus numpy). No Qt.

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

That is `mode="corrected"`. `mode="strs"` reproduces the counting of the published MEGC STRS
tool (Liong, See and Chan 2023, "Spot-then-recognize", the `strs_metric.Evaluator` that MEGC
2023 and later papers score with), read from its source, so our figures compare with theirs:
- Predictions are taken in file order; each is compared with every ground truth of its video in
  order, and every pair with IoU >= 0.5 whose ground truth is not yet taken is a TP. So a
  prediction spanning two ground truths can be two TPs, a duplicate of an already taken ground
  truth is an FP (the tool keeps a set of taken ground truths), and the first prediction in the
  file wins a ground truth, not the best one. FP = predictions with no TP, FN = untaken truths.
- Only ground-truth videos of subjects that have a prediction are counted (the tool loops over
  the subjects of the prediction file, then over each one's ground-truth videos): predictions
  in a video without ground truth are not FPs, and the ground truth of a subject without any
  prediction is not an FN. A video key's subject is its folder (`s15/15_0101.mp4` -> `s15`); a
  key without a folder is its own subject, so for such keys only videos with both ground truth
  and predictions count.
- The tool has no expression types; we still match micro with micro and macro with macro (a
  MEGC sheet gives both) and sum them overall, so a file of one type scores exactly as the tool.

Spot-then-recognise (`score_analysis`): over the spotted TP pairs whose ground-truth emotion is
one of the analysed classes (default: every emotion in the ground truth), each class is scored
one-vs-rest (precision, recall, F1); the analysis F1 is the harmonic mean of the mean precision
and the mean recall, UF1 the mean F1, UAR the mean recall, and STRS = spotting F1 x analysis F1.
The tool has two defects that `tool_defects=True` reproduces, for comparison with published
figures only: its UAR is the mean *precision*, and a class whose one-vs-rest confusion matrix
has a single cell (every analysed pair is that class and predicted as it, or no pair is) scores
0 precision, recall and F1, because sklearn then returns a 1x1 matrix the tool cannot unpack.
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


SCORING_MODES = ("corrected", "strs")


def match_intervals_strs(pred: Sequence[Interval], truth: Sequence[Interval],
                         min_iou: float = 0.5) -> list[tuple[int, int, float]]:
    """The STRS tool's matching (see the module docstring): [(pred index, truth index, iou)]."""
    taken: set[int] = set()
    matches = []
    for i, p in enumerate(pred):
        for j, g in enumerate(truth):
            iou = interval_iou(p, g)
            if iou >= min_iou and j not in taken:
                taken.add(j)
                matches.append((i, j, iou))
    return matches


def _subject_of(video: str) -> str:
    head, sep, _ = video.rpartition("/")
    return head if sep else video


def strs_videos(pred_videos: Iterable[str], truth_videos: Iterable[str]) -> list[str]:
    """The videos the STRS tool scores: ground-truth videos of subjects with a prediction."""
    subjects = {_subject_of(v) for v in pred_videos}
    return sorted(v for v in set(truth_videos) if _subject_of(v) in subjects)


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


# (onset, offset, "micro" | "macro"), optionally followed by the emotion ("" when not stated)
TypedInterval = tuple


def evaluate_spotting(pred: Mapping[str, Iterable[TypedInterval]],
                      truth: Mapping[str, Iterable[TypedInterval]],
                      min_iou: float = 0.5, mode: str = "corrected",
                      pairs_out: list | None = None) -> SpotEvaluation:
    """MEGC scores of predicted intervals against ground truth, both keyed by video.

    mode: "corrected" (one-to-one) or "strs" (the STRS tool's counting); see the module
    docstring. pairs_out: when a list, every TP is appended to it as (pred interval, truth
    interval, iou), in the tuples given, for spot-then-recognise scoring.
    """
    if mode not in SCORING_MODES:
        raise ValueError(f"unknown scoring mode {mode!r}; use one of {SCORING_MODES}")
    if mode == "strs":
        videos = strs_videos(pred, truth)
        matcher = match_intervals_strs
    else:
        videos = sorted(set(pred) | set(truth))
        matcher = match_intervals
    scores = {kind: SpotScore(0, 0, 0) for kind in EXPRESSION_TYPES}
    for video in videos:
        video_pred = list(pred.get(video, ()))
        video_truth = list(truth.get(video, ()))
        for kind in EXPRESSION_TYPES:
            p = [t for t in video_pred if t[2] == kind]
            g = [t for t in video_truth if t[2] == kind]
            matches = matcher([t[:2] for t in p], [t[:2] for t in g], min_iou)
            if pairs_out is not None:
                pairs_out.extend((p[i], g[j], iou) for i, j, iou in matches)
            hit_pred = len({i for i, _, _ in matches})
            tp = len(matches)
            scores[kind] = scores[kind] + SpotScore(tp, len(p) - hit_pred, len(g) - tp)
    return SpotEvaluation(overall=scores["micro"] + scores["macro"], micro=scores["micro"],
                          macro=scores["macro"])


@dataclass(frozen=True)
class AnalysisScore:
    """Spot-then-recognise scores over the spotted TP pairs (see the module docstring)."""

    classes: tuple[str, ...]
    per_class: dict  # class -> {"precision", "recall", "f1", "tp", "fp", "fn", "support"}
    precision: float  # mean over classes
    recall: float
    f1: float  # harmonic mean of `precision` and `recall` (the tool's "F1-score analysis")
    uf1: float
    uar: float
    n_pairs: int  # TP pairs whose ground-truth emotion is analysed
    tool_defects: bool

    def as_dict(self, spot_f1: float) -> dict:
        return {"strs": spot_f1 * self.f1, "f1": self.f1, "precision": self.precision,
                "recall": self.recall, "uf1": self.uf1, "uar": self.uar, "n_pairs": self.n_pairs,
                "classes": list(self.classes), "per_class": self.per_class,
                "tool_defects": self.tool_defects}


def score_analysis(pairs: Iterable[tuple[str, str]], classes: Sequence[str],
                   tool_defects: bool = False) -> AnalysisScore:
    """Recognition scores of (predicted emotion, true emotion) pairs of spotted TPs."""
    kept = [(p, g) for p, g in pairs if g in classes]
    per_class = {}
    for name in classes:
        tp = sum(p == name and g == name for p, g in kept)
        fp = sum(p == name and g != name for p, g in kept)
        fn = sum(p != name and g == name for p, g in kept)
        if tool_defects and kept and tp == len(kept):
            tp = 0  # sklearn's 1x1 confusion matrix: the tool's bare except zeroes the class
        score = SpotScore(tp, fp, fn)
        per_class[name] = {"precision": score.precision, "recall": score.recall, "f1": score.f1,
                           "tp": tp, "fp": fp, "fn": fn,
                           "support": sum(g == name for _, g in kept)}
    n = max(1, len(classes))
    precision = sum(c["precision"] for c in per_class.values()) / n
    recall = sum(c["recall"] for c in per_class.values()) / n
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    uf1 = sum(c["f1"] for c in per_class.values()) / n
    uar = precision if tool_defects else recall
    return AnalysisScore(tuple(classes), per_class, precision, recall, f1, uf1, uar, len(kept),
                         tool_defects)


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
