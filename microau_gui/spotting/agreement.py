"""Inter-coder agreement: per-AU frame-level kappa, alpha and AC1 with CIs, event F1, timing errors.

Owns: `CodedEvent`, `AUKappa`, `TimingError`, `Agreement`, `compare_coders`, `MultiAUAgreement`,
`compare_many`, `binary_agreement`, `events_from_frame_probs`, `write_agreement_csv`,
`AGREEMENT_COLUMNS`. May import core (plus numpy, scikit-learn, krippendorff). No Qt. The GUI agreement view calls `compare_coders` and shows the fields of
`Agreement`; the CLI `agreement` writes `write_agreement_csv`.

Our specification (what FACS reliability reports in the literature give, made exact):
- Frame-level kappa per AU: in every video, frame f is positive for AU x and coder c when f lies
  inside (onset..offset, inclusive) an event of c that carries AU x (any side or intensity).
  Frames of all videos are pooled and kappa is scikit-learn's `cohen_kappa_score`. Every frame of
  each video counts, so the video lengths must be known (`n_frames`); without them a video is
  taken to end at the last offset either coder marked, which the report says. AUs neither coder
  used are left out. Kappa is NaN when it is undefined (both coders constant and equal).
- Cohen's kappa collapses for a rare AU: with 2 % prevalence, 98 % raw agreement can give kappa
  near 0. So every AU also gets Krippendorff's alpha (nominal; the `krippendorff` package) and
  Gwet's AC1, whose chance term 2 pi (1 - pi) shrinks with prevalence instead of growing. With
  more than two coders (`compare_many`) kappa is Fleiss' kappa; alpha and AC1 generalise as
  written by Krippendorff (2011) and Gwet (2008). Every frame is one unit, each coder a rater.
- Confidence intervals (95 %, percentile bootstrap, 1000 resamples, seed 0): frames are not
  independent (an event covers dozens of neighbours), so the resampled unit is a block of
  `block_frames` consecutive frames of one video (default 50); the statistics are recomputed
  from the resampled blocks' pooled counts. A CI is NaN where a resample leaves the statistic
  undefined too often (more than half the resamples).
- Event-level agreement: events are matched one-to-one per video, greedily by IoU >= 0.5, the
  same rule as `eval-spot` (`spotting.intervals.match_intervals`), AUs ignored. Coder A plays the
  ground truth: TP = matched pairs, FN = A's unmatched events, FP = B's. F1 is symmetric.
- Timing: the mean absolute onset, apex and offset difference, in frames, over matched pairs
  (apex only over pairs where both coders marked one).
- Coder versus model: the model is coder B. Its events are spotted candidates (no AUs: they
  count for F1 and timing only), or runs of frames whose AU probability passes a threshold
  (`events_from_frame_probs`).
"""

from __future__ import annotations

import csv
import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from microau_gui.core.au import au_number
from microau_gui.core.errors import UserError
from microau_gui.core.files import atomic_path
from microau_gui.core.types import DECISION_THRESHOLD
from microau_gui.spotting.intervals import SpotScore, match_intervals


@dataclass(frozen=True)
class CodedEvent:
    """One coder's event. Frames are frame_idx (0-based, offset inclusive)."""

    video: str  # video key, the same for both coders
    onset: int
    offset: int
    apex: int | None = None
    aus: frozenset[str] = frozenset()  # AU codes, e.g. {"AU4", "AU7"}; side and intensity dropped
    coder: str = ""  # who coded it (informational)
    emotion: str = ""  # the emotion (or objective class) coded or recognised; "" when none


Interval95 = tuple[float, float]  # (low, high); NaN, NaN when not estimable
_NO_CI: Interval95 = (math.nan, math.nan)


@dataclass(frozen=True)
class AUKappa:
    au: str  # AU code
    kappa: float  # Cohen's kappa over all pooled frames; NaN when undefined
    n_frames: int  # frames compared
    frames_a: int  # frames coder A marked with this AU
    frames_b: int
    observed: float  # raw fraction of frames on which the coders agree
    alpha: float = math.nan  # Krippendorff's alpha, nominal
    ac1: float = math.nan  # Gwet's AC1
    kappa_ci: Interval95 = _NO_CI
    alpha_ci: Interval95 = _NO_CI
    ac1_ci: Interval95 = _NO_CI


@dataclass(frozen=True)
class TimingError:
    onset: float  # mean |onset_a - onset_b| in frames over matched events; NaN without matches
    apex: float  # over matched events where both marked an apex
    offset: float
    n_matched: int
    n_apex: int  # matched events with both apexes


@dataclass(frozen=True)
class Agreement:
    per_au: tuple[AUKappa, ...]  # AU number order
    events: SpotScore  # event matching, A as ground truth
    timing: TimingError
    n_videos: int
    n_events_a: int
    n_events_b: int
    lengths_known: bool  # False when some video length was inferred from the last offset
    matches: tuple[tuple[CodedEvent, CodedEvent, float], ...] = field(default=(), repr=False)

    @property
    def mean_kappa(self) -> float:
        values = [k.kappa for k in self.per_au if not math.isnan(k.kappa)]
        return float(np.mean(values)) if values else math.nan


def _mask(events: Iterable[CodedEvent], au: str, n_frames: int) -> np.ndarray:
    mask = np.zeros(n_frames, bool)
    for ev in events:
        if au in ev.aus:
            mask[max(0, ev.onset):min(n_frames, ev.offset + 1)] = True
    return mask


def _kappa(a: np.ndarray, b: np.ndarray) -> float:
    from sklearn.metrics import cohen_kappa_score

    if a.size == 0 or (a.min() == a.max() == b.min() == b.max()):
        return math.nan  # chance agreement is 1: kappa is 0/0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(cohen_kappa_score(a, b))


def _au_sort_key(code: str) -> int:
    return au_number(code)


def compare_coders(events_a: Sequence[CodedEvent], events_b: Sequence[CodedEvent],
                   n_frames: Mapping[str, int] | None = None, aus: Sequence[str] | None = None,
                   min_iou: float = 0.5, block_frames: int = 50, n_boot: int = 1000) -> Agreement:
    """Kappa, alpha and AC1 per AU (with CIs), event F1 and timing errors between coder A and
    coder B (or a model).

    `n_frames`: video key -> frame count; videos missing from it end at the last offset marked.
    `aus`: AUs to report (default: every AU either coder used; none when one side codes no AU at
    all, e.g. spotted candidates, whose kappa would be 0 by construction). `block_frames`,
    `n_boot`: the bootstrap (module docstring); n_boot 0 skips the CIs.
    """
    videos, lengths, known = _lengths_of([events_a, events_b], n_frames)
    by_video_a = {v: [e for e in events_a if e.video == v] for v in videos}
    by_video_b = {v: [e for e in events_b if e.video == v] for v in videos}
    if aus is not None:
        codes = sorted(set(aus), key=_au_sort_key)
    elif any(e.aus for e in events_a) and any(e.aus for e in events_b):
        codes = sorted({au for e in [*events_a, *events_b] for au in e.aus}, key=_au_sort_key)
    else:
        codes = []  # one side codes no AUs at all (spotted candidates): kappa would only say so
    per_au = []
    for au in codes:
        a = np.concatenate([_mask(by_video_a[v], au, lengths[v]) for v in videos]) if videos else np.zeros(0, bool)
        b = np.concatenate([_mask(by_video_b[v], au, lengths[v]) for v in videos]) if videos else np.zeros(0, bool)
        stats = {}
        if videos:
            marks = [np.stack([_mask(by_video_a[v], au, lengths[v]), _mask(by_video_b[v], au, lengths[v])])
                     for v in videos]  # per video (2, n_frames)
            stats = binary_agreement(marks, block_frames, max(1, n_boot))
            if n_boot <= 0:
                stats = {k: v for k, v in stats.items() if not k.endswith("_ci")}
        per_au.append(AUKappa(au=au, kappa=_kappa(a, b), n_frames=int(a.size),
                              frames_a=int(a.sum()), frames_b=int(b.sum()),
                              observed=float((a == b).mean()) if a.size else math.nan,
                              alpha=stats.get("alpha", math.nan), ac1=stats.get("ac1", math.nan),
                              kappa_ci=stats.get("kappa_ci", _NO_CI),
                              alpha_ci=stats.get("alpha_ci", _NO_CI),
                              ac1_ci=stats.get("ac1_ci", _NO_CI)))
    score = SpotScore(0, 0, 0)
    matches = []
    for video in videos:
        va, vb = by_video_a[video], by_video_b[video]
        pairs = match_intervals([(e.onset, e.offset) for e in vb], [(e.onset, e.offset) for e in va],
                                min_iou)
        score = score + SpotScore(len(pairs), len(vb) - len(pairs), len(va) - len(pairs))
        matches.extend((va[j], vb[i], iou) for i, j, iou in pairs)
    return Agreement(per_au=tuple(per_au), events=score, timing=_timing(matches), n_videos=len(videos),
                     n_events_a=len(events_a), n_events_b=len(events_b), lengths_known=known,
                     matches=tuple(matches))


def _timing(matches: list[tuple[CodedEvent, CodedEvent, float]]) -> TimingError:
    def mean_abs(values: list[int]) -> float:
        return float(np.mean(np.abs(values))) if values else math.nan

    apex = [a.apex - b.apex for a, b, _ in matches if a.apex is not None and b.apex is not None]
    return TimingError(onset=mean_abs([a.onset - b.onset for a, b, _ in matches]),
                       apex=mean_abs(apex),
                       offset=mean_abs([a.offset - b.offset for a, b, _ in matches]),
                       n_matched=len(matches), n_apex=len(apex))


# -- agreement statistics on binary frame codes -------------------------------------------------

def _stats_from_counts(counts: np.ndarray, m: int) -> dict[str, np.ndarray]:
    """Fleiss' kappa (Cohen's for two coders when `counts` has the 2x2 cells), alpha and AC1.

    counts: (..., m + 1) frames on which exactly k of the m coders marked the AU, k = 0..m; for
    m == 2 the last axis may instead hold the 2x2 cells (n00, n10, n01, n11), which Cohen's
    kappa needs (it tells coder A's marks from coder B's). Vectorised over leading axes
    (bootstrap resamples). Undefined values are NaN.
    """
    counts = np.asarray(counts, float)
    cells = None
    if m == 2 and counts.shape[-1] == 4:
        cells = counts
        counts = np.stack([cells[..., 0], cells[..., 1] + cells[..., 2], cells[..., 3]], axis=-1)
    k = np.arange(m + 1, dtype=float)  # (m + 1,)
    n_units = counts.sum(axis=-1)  # (...,)
    with np.errstate(divide="ignore", invalid="ignore"):
        agree = (k * (k - 1) + (m - k) * (m - k - 1)) / (m * (m - 1))  # (m + 1,) per-unit agreement
        p_obs = (counts * agree).sum(axis=-1) / n_units
        n_pos = (counts * k).sum(axis=-1)  # positive marks
        p1 = n_pos / (n_units * m)
        pe_fleiss = p1 ** 2 + (1 - p1) ** 2
        pe_ac1 = 2 * p1 * (1 - p1)
        out = {"ac1": (p_obs - pe_ac1) / (1 - pe_ac1)}
        if cells is not None:
            pa, pb = (cells[..., 1] + cells[..., 3]) / n_units, (cells[..., 2] + cells[..., 3]) / n_units
            pe_cohen = pa * pb + (1 - pa) * (1 - pb)
            out["kappa"] = (p_obs - pe_cohen) / (1 - pe_cohen)
        else:
            out["kappa"] = (p_obs - pe_fleiss) / (1 - pe_fleiss)
        # Krippendorff, nominal, no missing values: 1 - (N - 1) o_01 / (n_0 n_1) with N = m n.
        n_values = n_units * m
        o_01 = (counts * k * (m - k)).sum(axis=-1) / (m - 1)
        out["alpha"] = 1 - (n_values - 1) * o_01 / ((n_values - n_pos) * n_pos)
    for name, value in out.items():
        # A constant code (one value only) leaves every chance-corrected statistic 0/0.
        out[name] = np.where((n_pos == 0) | (n_pos == n_units * m), np.nan, value)
    return out


def _block_counts(marks: Sequence[np.ndarray], block_frames: int, two_cells: bool) -> np.ndarray:
    """Per-block counts (n_blocks, m + 1), or the 2x2 cells (n_blocks, 4) for two coders."""
    rows = []
    for video_marks in marks:  # (m, n_frames) per video
        m, n = video_marks.shape
        for start in range(0, n, block_frames):
            block = video_marks[:, start:start + block_frames]  # (m, b)
            if two_cells:
                a, b = block
                rows.append([np.sum(~a & ~b), np.sum(a & ~b), np.sum(~a & b), np.sum(a & b)])
            else:
                rows.append(np.bincount(block.sum(axis=0), minlength=m + 1))
    return np.asarray(rows, float).reshape(len(rows), 4 if two_cells else marks[0].shape[0] + 1)


def _ci(values: np.ndarray) -> Interval95:
    finite = values[np.isfinite(values)]
    if finite.size * 2 < values.size:
        return _NO_CI
    low, high = np.percentile(finite, [2.5, 97.5])
    return float(low), float(high)


def binary_agreement(marks: Sequence[np.ndarray], block_frames: int = 50, n_boot: int = 1000,
                     seed: int = 0) -> dict:
    """Kappa, alpha and AC1 of binary codes, with bootstrap CIs (see the module docstring).

    marks: per video, a bool array (m coders, n_frames). Returns {"kappa", "alpha", "ac1",
    "kappa_ci", "alpha_ci", "ac1_ci"}; kappa is Cohen's for two coders, Fleiss' for more. The
    point estimate of alpha is the `krippendorff` package's; the bootstrap uses the closed form
    above, which equals it (tests check both).
    """
    import krippendorff

    marks = [np.asarray(v, bool) for v in marks]
    m = marks[0].shape[0]
    if m < 2:
        raise UserError("agreement needs at least two coders")
    counts = _block_counts(marks, max(1, int(block_frames)), two_cells=m == 2)
    point = {name: float(v) for name, v in _stats_from_counts(counts.sum(axis=0), m).items()}
    data = np.concatenate(marks, axis=1).astype(float)  # (m, all frames)
    if np.isfinite(point["alpha"]):
        point["alpha"] = float(krippendorff.alpha(reliability_data=data, level_of_measurement="nominal"))
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(counts), size=(n_boot, len(counts)))  # (n_boot, n_blocks)
    boot = _stats_from_counts(counts[picks].sum(axis=1), m)  # each (n_boot,)
    return {**point, **{f"{name}_ci": _ci(values) for name, values in boot.items()}}


@dataclass(frozen=True)
class MultiAUAgreement:
    """Agreement of more than two coders on one AU (`compare_many`)."""

    au: str
    fleiss_kappa: float
    alpha: float
    ac1: float
    n_frames: int
    frames_marked: tuple[int, ...]  # per coder
    fleiss_kappa_ci: Interval95 = _NO_CI
    alpha_ci: Interval95 = _NO_CI
    ac1_ci: Interval95 = _NO_CI


def _lengths_of(event_sets: Sequence[Sequence[CodedEvent]], n_frames: Mapping[str, int] | None):
    videos = sorted({e.video for events in event_sets for e in events})
    lengths = dict(n_frames or {})
    known = True
    for video in videos:
        last = max(e.offset for events in event_sets for e in events if e.video == video) + 1
        if video not in lengths:
            lengths[video] = last
            known = False
        elif lengths[video] < last:
            raise UserError(f"video {video}: an event ends at frame {last - 1} but the video has "
                            f"{lengths[video]} frames; check --n-frames or the event frames")
    return videos, lengths, known


def compare_many(event_sets: Sequence[Sequence[CodedEvent]], n_frames: Mapping[str, int] | None = None,
                 aus: Sequence[str] | None = None, block_frames: int = 50,
                 n_boot: int = 1000) -> tuple[MultiAUAgreement, ...]:
    """Per-AU Fleiss' kappa, Krippendorff's alpha and Gwet's AC1 of two or more coders."""
    if len(event_sets) < 2:
        raise UserError("agreement needs at least two coders")
    videos, lengths, _ = _lengths_of(event_sets, n_frames)
    codes = (sorted(set(aus), key=_au_sort_key) if aus is not None else
             sorted({au for events in event_sets for e in events for au in e.aus}, key=_au_sort_key))
    out = []
    for au in codes:
        marks = [np.stack([_mask([e for e in events if e.video == v], au, lengths[v])
                           for events in event_sets]) for v in videos]  # per video (m, n)
        stats = binary_agreement(marks, block_frames, n_boot) if marks else {}
        # Fleiss' kappa even for two coders here (Scott's pi): one definition for every m.
        if len(event_sets) == 2 and marks:
            counts = _block_counts(marks, block_frames, two_cells=False).sum(axis=0)
            stats["kappa"] = float(_stats_from_counts(counts, 2)["kappa"])
            stats["kappa_ci"] = _NO_CI
        total = int(sum(v.shape[1] for v in marks))
        out.append(MultiAUAgreement(
            au=au, fleiss_kappa=stats.get("kappa", math.nan), alpha=stats.get("alpha", math.nan),
            ac1=stats.get("ac1", math.nan), n_frames=total,
            frames_marked=tuple(int(sum(v[i].sum() for v in marks)) for i in range(len(event_sets))),
            fleiss_kappa_ci=stats.get("kappa_ci", _NO_CI), alpha_ci=stats.get("alpha_ci", _NO_CI),
            ac1_ci=stats.get("ac1_ci", _NO_CI)))
    return tuple(out)


def events_from_frame_probs(video: str, frame_idx: Sequence[int], probs: np.ndarray,
                            vocab: Sequence[str], threshold: float = DECISION_THRESHOLD,
                            min_frames: int = 1, coder: str = "model") -> list[CodedEvent]:
    """Model events from per-frame AU probabilities `probs` (n, n_au) at `frame_idx` (n,).

    A run of consecutive analysed frames where some AU passes `threshold` is one event: onset
    and offset are the run's ends, apex the frame with the highest probability, AUs every AU
    that passed the threshold on some frame of the run. Runs shorter than `min_frames` are
    dropped. A gap in `frame_idx` (frames not analysed) ends a run.
    """
    frame_idx = np.asarray(frame_idx, int)
    probs = np.asarray(probs, float)  # (n, n_au)
    on = probs >= threshold  # (n, n_au)
    active = on.any(axis=1)  # (n,)
    events = []
    start = None
    for i in range(len(frame_idx) + 1):
        keeps = (i < len(frame_idx) and active[i] and start is not None
                 and frame_idx[i] == frame_idx[i - 1] + 1)
        if start is not None and not keeps:
            run = slice(start, i)
            if i - start >= min_frames:
                apex = int(frame_idx[run][np.argmax(probs[run].max(axis=1))])
                aus = frozenset(vocab[j] for j in np.flatnonzero(on[run].any(axis=0)))
                events.append(CodedEvent(video, int(frame_idx[start]), int(frame_idx[i - 1]), apex,
                                         aus, coder))
            start = None
        if start is None and i < len(frame_idx) and active[i]:
            start = i
    return events


AGREEMENT_COLUMNS = ("measure", "au", "value", "count")


def agreement_rows(result: Agreement) -> list[dict]:
    """The report as long-format rows (`AGREEMENT_COLUMNS`); NaN values are empty cells.

    measure: kappa, krippendorff_alpha, gwet_ac1 (per AU; count = frames compared), each with
    `_ci_low` / `_ci_high` (95 % block bootstrap), frames_a / frames_b (per AU; value = frames
    marked), observed_agreement (per AU), mean_kappa, event_precision / event_recall / event_f1
    (count = matched events), event_tp / event_fp / event_fn, onset_mae_frames /
    apex_mae_frames / offset_mae_frames (count = pairs used), lengths_known (1/0).
    """
    rows = []
    for k in result.per_au:
        for name, value, ci in (("kappa", k.kappa, k.kappa_ci),
                                ("krippendorff_alpha", k.alpha, k.alpha_ci),
                                ("gwet_ac1", k.ac1, k.ac1_ci)):
            rows.append({"measure": name, "au": k.au, "value": value, "count": k.n_frames})
            rows.append({"measure": f"{name}_ci_low", "au": k.au, "value": ci[0], "count": k.n_frames})
            rows.append({"measure": f"{name}_ci_high", "au": k.au, "value": ci[1], "count": k.n_frames})
        rows.append({"measure": "observed_agreement", "au": k.au, "value": k.observed,
                     "count": k.n_frames})
        rows.append({"measure": "frames_a", "au": k.au, "value": k.frames_a, "count": k.n_frames})
        rows.append({"measure": "frames_b", "au": k.au, "value": k.frames_b, "count": k.n_frames})
    ev, tm = result.events, result.timing
    rows.append({"measure": "mean_kappa", "au": "", "value": result.mean_kappa,
                 "count": sum(not math.isnan(k.kappa) for k in result.per_au)})
    for name, value in (("event_precision", ev.precision), ("event_recall", ev.recall),
                        ("event_f1", ev.f1), ("event_tp", ev.tp), ("event_fp", ev.fp),
                        ("event_fn", ev.fn)):
        rows.append({"measure": name, "au": "", "value": value, "count": ev.tp})
    rows.append({"measure": "onset_mae_frames", "au": "", "value": tm.onset, "count": tm.n_matched})
    rows.append({"measure": "apex_mae_frames", "au": "", "value": tm.apex, "count": tm.n_apex})
    rows.append({"measure": "offset_mae_frames", "au": "", "value": tm.offset, "count": tm.n_matched})
    rows.append({"measure": "lengths_known", "au": "", "value": int(result.lengths_known),
                 "count": result.n_videos})
    return rows


def _cell(value) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.6g}"
    return str(value)


def write_agreement_csv(result: Agreement, path: Path | str, extra_rows: Sequence[dict] = ()) -> Path:
    """Write `agreement_rows(result)` (then `extra_rows`) as CSV, written beside, then renamed."""
    path = Path(path)
    if not path.parent.is_dir():
        raise UserError(f"{path.parent}: folder does not exist; create it or choose another --out")
    try:
        with atomic_path(path) as partial, partial.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=AGREEMENT_COLUMNS)
            writer.writeheader()
            for row in [*agreement_rows(result), *extra_rows]:
                writer.writerow({k: _cell(v) for k, v in row.items()})
    except OSError as err:
        raise UserError(f"cannot write {path}: {err.strerror or err}") from None
    return path
