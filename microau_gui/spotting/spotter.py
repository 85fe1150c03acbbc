"""Spotting: per-frame motion signals -> candidate micro- and macro-expression intervals.

Owns: `SpotConfig`, `Candidate`, `SpotResult`, `find_candidates`, `spot_media`,
`check_long_enough`. May import face, media, store and core (plus numpy, scipy). No torch, no Qt.

Our specification, after the MEGC baselines (MDMD, LBP-chi2 feature difference, LTP-ML):

1. Every region part's return-motion trace (`spotting.signals`) is smoothed over 3 frames and
   put in robust noise units, z = (x - median) / (1.4826 MAD) per video and part; a region's z
   is its larger half's, and a frame's score is its largest region z.
2. Macro first. On the macro scale, a running median over 2k + 1 frames removes every bump
   shorter than the longest micro-expression (blinks, micro-expressions). Peaks above the
   MEGC per-video threshold T = mean + p (max - mean) (`macro_threshold_p`, never below
   `macro_min_z`) grow into intervals; those longer than `micro_max_s` are macro-expressions.
3. Blinks. A frame whose lids closed (the eye zones moved down by more than a lid
   micro-movement can: AU5 raises the upper lid, AU7 lifts the lower one) corrupts the regions
   near the eyes (brows, lids, cheeks, nose) at that frame and k frames before and after it.
   Those regions are hidden there; the lower face still counts. A blink therefore never
   becomes a candidate, while a lid raise or tightening (AU5, AU7) away from blinks can; an
   upper-face movement within k of a blink is lost (at 15 blinks a minute, about a quarter
   of the time).
4. Micro. Outside macro-expressions (and k frames around them), peaks of the score above
   T = max(`min_z`, mean + `threshold_p` (max - mean)) are taken strongest first; a peak inside
   an interval already taken is part of that movement. Each peak grows into an interval on
   the trace of its strongest region: onset and offset are where that trace falls below
   `edge_frac` of its apex value or starts rising again (`_grow`).
5. Type by duration: <= `micro_max_s` is micro, longer is macro.

Thresholds are in noise units because the traces are: with `threshold_p` = 0 (our default) a
single large event (a macro-expression at the edge of the video, where the macro scale cannot
see it) cannot raise the bar for every micro-expression of the video, as the MEGC formula
lets it; `--threshold-p` brings the formula back.

Scores are z values at the apex: how many noise units the strongest region moved.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from scipy.ndimage import maximum_filter1d, median_filter, uniform_filter1d
from scipy.signal import find_peaks

from microau_gui.core.au import au_info
from microau_gui.core.errors import UserError
from microau_gui.core.progress import Progress, ShouldCancel
from microau_gui.spotting.intervals import interval_iou
from microau_gui.media.prefetch import prefetch
from microau_gui.spotting.signals import MotionSignals, SignalConfig, compute_signals

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SpotConfig:
    micro_max_s: float = 0.5  # longest micro-expression; longer intervals are macro
    threshold_p: float = 0.0  # MEGC T = mean + p (max - mean) of the combined score, per video
    min_z: float = 6.0  # T is never below this many noise units (a still video gives nothing)
    macro_threshold_p: float = 0.1  # the same on the macro scale, where expressions dwarf noise
    macro_min_z: float = 8.0  # the floor on the macro scale
    # onset/offset: the apex region's z falls below this fraction of its apex. 0.1 rather than
    # 0.05: on six synthetic interviews (three of them not used to choose it) the tails of the
    # lower floor ran on into the noise, so intervals came out too long (IoU < 0.5 with the truth)
    # and macro-expressions split; micro F1 0.854 -> 0.899, macro F1 0.778 -> 0.938 (Farneback
    # flow).
    edge_frac: float = 0.1
    blink_down_frac: float = 0.0025  # eye zones moving down more than this x crop side: a blink
    region_frac: float = 0.5  # a region "moved" when its z at the apex is >= this fraction of the best
    signal: SignalConfig = field(default_factory=SignalConfig)  # how motion is measured


# `analyze --gate spot` wants recall, not precision: a missed micro-expression never reaches the
# model, a false candidate only costs a few analysed frames. On three 60-s synthetic interviews
# (12 micro-expressions a minute) the floor 5 instead of 6 raised micro recall from 31/36 to 36/36
# (Farneback flow). With the "dis-fine" flow, on six others (seeds 201-206), the gate's ranges held
# all 72 micro apexes in 19.8% of the frames (Farneback: 72, 20.0%). On fresh seeds, which chose
# nothing (`experiment run spotting`, docs/experiments/spotting.json: 12 videos, data seeds 3001
# and 3002), they held 138 of 144 in 28.2% of the frames (Farneback: 137, 23.8%).
GATE_CONFIG = SpotConfig(min_z=5.0)


@dataclass(frozen=True)
class Candidate:
    """One spotted interval. Frames are 0-based frame_idx; offset is inclusive."""

    onset: int
    apex: int
    offset: int
    kind: str  # "micro" or "macro"
    score: float  # strongest region's contrast at the apex, in noise units (z)
    regions: tuple[str, ...]  # AU codes whose regions moved at the apex, strongest first

    @property
    def n_frames(self) -> int:
        return self.offset - self.onset + 1


@dataclass(frozen=True, eq=False)
class SpotResult:
    candidates: tuple[Candidate, ...]  # sorted by onset
    signals: MotionSignals
    seconds: float  # wall time of the streaming pass and peak finding
    media_path: Path | None = None
    floor_z: float = 0.0  # the micro threshold T this video got, in noise units

    @property
    def frames_per_s(self) -> float:
        return self.signals.n_frames / self.seconds if self.seconds > 0 else 0.0

    @property
    def summary(self) -> str:
        """One line for a status bar; when nothing was found it names the floor and how to
        lower it, so "found none" never reads like "not run yet"."""
        n = self.signals.n_frames
        if not self.candidates:
            lower = max(1.0, self.floor_z - 2.0)
            return (f"spotted no candidates in {n} frames: no movement rose above the floor of "
                    f"{self.floor_z:.1f} noise units (z); to look for weaker movements lower it, "
                    f"e.g. python main.py spot VIDEO --min-z {lower:.0f} --out CANDIDATES.csv")
        n_micro = sum(c.kind == "micro" for c in self.candidates)
        return (f"spotted {len(self.candidates)} candidates ({n_micro} micro, "
                f"{len(self.candidates) - n_micro} macro) in {n} frames, "
                f"{self.frames_per_s:.0f} frames/s")


# Below this (crop px) a region's noise estimate is not trusted: a region that barely moves on a
# smooth, textureless patch would otherwise turn its first flicker into a huge z.
_NOISE_FLOOR_PX = 0.005


def _robust_z(values: np.ndarray, smooth_frames: int = 3) -> np.ndarray:
    """(n, m) traces -> smoothed z per column; NaN (unmeasured frames) becomes 0."""
    filled = np.nan_to_num(values, nan=0.0)
    smoothed = uniform_filter1d(filled, size=smooth_frames, axis=0, mode="nearest")
    finite = np.isfinite(values)
    z = np.zeros_like(smoothed)
    for col in range(values.shape[1]):
        ok = finite[:, col]
        if ok.sum() < 10:
            continue
        column = smoothed[ok, col]
        median = np.median(column)
        mad = 1.4826 * np.median(np.abs(column - median))
        z[:, col] = (smoothed[:, col] - median) / max(mad, _NOISE_FLOOR_PX)
    z[~finite] = 0.0
    return z


def _region_z(values: np.ndarray, signals: MotionSignals, hidden: np.ndarray | None = None
              ) -> np.ndarray:
    """(n, n_parts) part traces -> (n, n_regions) z: each part in its own noise units, then the
    larger half per region (a noisy far half of a turned face does not drown the near half).

    hidden: (n,) frames where the regions near the eyes are not measured (blinks); they are
    hidden before smoothing, so a blink's size does not leak into the frames beside it.
    """
    if hidden is not None:
        near = ~_far_from_eyes(signals.regions).astype(bool)[np.asarray(signals.part_region)]
        values = values.copy()
        values[np.ix_(hidden, near)] = np.nan
    z = _robust_z(values)  # (n, n_parts)
    owners = np.asarray(signals.part_region)
    return np.stack([z[:, owners == r].max(axis=1) for r in range(len(signals.regions))], axis=1)


def _threshold(score: np.ndarray, usable: np.ndarray, p: float, floor: float) -> float:
    """MEGC per-video threshold mean + p (max - mean), never below `floor`."""
    values = score[usable]
    if values.size == 0:
        return np.inf
    mean = float(values.mean())
    return max(floor, mean + p * (float(values.max()) - mean))


def _grow(trace: np.ndarray, apex: int, level: float, hidden: np.ndarray | None = None,
          tolerance: float = 2.0) -> tuple[int, int]:
    """Walk out from `apex` while `trace` stays >= `level`.

    A walk also ends where the trace rises again by more than `tolerance` above the lowest
    value it passed (the next movement begins), at that lowest point; smaller wobbles on a
    plateau are walked through. A walk that runs into `hidden` frames (a blink) cannot see where
    the movement ends; that side is taken as long as the other.
    """
    def walk(step: int) -> tuple[int, bool]:
        lowest = at = apex
        while 0 <= at + step < len(trace):
            if hidden is not None and hidden[at + step]:
                return lowest, True
            if trace[at + step] < level:
                break
            at += step
            if trace[at] > trace[lowest] + tolerance:
                break
            if trace[at] <= trace[lowest]:
                lowest = at
        return lowest, False

    (onset, onset_cut), (offset, offset_cut) = walk(-1), walk(+1)
    if onset_cut and not offset_cut:
        onset = max(0, apex - (offset - apex))
    elif offset_cut and not onset_cut:
        offset = min(len(trace) - 1, apex + (apex - onset))
    return onset, offset


def _intervals(peaks: np.ndarray, score: np.ndarray, z: np.ndarray, level_frac: float,
               radius: int, hidden: np.ndarray | None = None) -> list[tuple[int, int, int]]:
    """(onset, apex, offset) per peak, strongest first.

    A peak within `radius` frames of a stronger one, or inside its interval, belongs to the same
    movement (a wobble on its plateau, the flow settling after it) and is skipped. `hidden`:
    frames where the peak's region is not measured (see `_grow`).
    """
    taken: list[tuple[int, int, int]] = []
    for apex in sorted((int(p) for p in peaks), key=lambda i: -score[i]):
        if any(onset <= apex <= offset or abs(apex - top) <= radius for onset, top, offset in taken):
            continue
        region = int(np.argmax(z[apex]))
        trace = z[:, region]
        onset, offset = _grow(trace, apex, level_frac * trace[apex],
                              None if hidden is None else hidden[:, region])
        taken.append((onset, apex, offset))
    return taken


def _macro_intervals(signals: MotionSignals, config: SpotConfig) -> list[Candidate]:
    k = signals.gap_frames
    micro_max = int(round(config.micro_max_s * signals.fps))
    z = _region_z(signals.macro, signals)
    # A running median over 2k + 1 frames drops every bump shorter than k: blinks, micro-expressions.
    z = median_filter(z, size=(2 * k + 1, 1), mode="nearest")
    score = z.max(axis=1)
    usable = np.isfinite(signals.macro).any(axis=1)
    level = _threshold(score, usable, config.macro_threshold_p, config.macro_min_z)
    peaks, _ = find_peaks(score, height=level)
    found = []
    for onset, apex, offset in _intervals(peaks, score, z, config.edge_frac, radius=k):
        if offset - onset + 1 > micro_max:
            found.append(Candidate(onset, apex, offset, "macro", float(score[apex]),
                                   _moved(z[apex], signals.regions, config.region_frac)))
    return found


def _moved(z_at_apex: np.ndarray, regions: tuple[str, ...], frac: float) -> tuple[str, ...]:
    best = float(z_at_apex.max())
    order = np.argsort(-z_at_apex)
    return tuple(regions[i] for i in order if z_at_apex[i] >= frac * best and z_at_apex[i] > 0)


# Areas a blink moves or (through the optical flow's window) drags along.
_NEAR_EYE_AREAS = frozenset({"inner_brow", "outer_brow", "glabella", "upper_lid", "lower_lid", "eye",
                             "cheek", "nose"})


def _far_from_eyes(regions: tuple[str, ...]) -> np.ndarray:
    """(n_regions,) 1 for regions a blink leaves alone, 0 for those near the eyes."""
    return np.array([au_info(code).area not in _NEAR_EYE_AREAS for code in regions], float)


def _blinked(signals: MotionSignals, config: SpotConfig) -> np.ndarray:
    """(n,) bool: frames whose contrast a blink corrupts.

    A frame is closed when its lids came down since t - k or go up by t + k, by more than a lid
    micro-movement can (AU5 raises the upper lid and AU7 lifts the lower one: both move up). The
    contrast at t compares t with t - k and t + k, so closed lids at any of the three corrupt it:
    at t it is the blink itself; at t - k or t + k the blink's leak into the brows, against any
    other movement (a micro-expression's return), looks like a movement that came back.
    """
    k = signals.gap_frames
    limit = config.blink_down_frac * signals.crop_px
    there, back = np.nan_to_num(signals.micro_eye_dy, nan=0.0).T
    # Widened by two frames: a lid starting to close or nearly open is still far from a micro.
    closed = maximum_filter1d((there > limit) | (back < -limit), size=5)
    corrupt = closed.copy()
    corrupt[k:] |= closed[:-k]
    corrupt[:-k] |= closed[k:]
    return corrupt


def find_candidates(signals: MotionSignals, config: SpotConfig = SpotConfig()) -> list[Candidate]:
    """Candidate intervals from a video's motion signals, sorted by onset."""
    return _find(signals, config)[0]


def _find(signals: MotionSignals, config: SpotConfig) -> tuple[list[Candidate], float]:
    """(candidates sorted by onset, the micro threshold T used, in noise units)."""
    n = signals.n_frames
    k = signals.gap_frames
    micro_max = int(round(config.micro_max_s * signals.fps))
    macros = _macro_intervals(signals, config)
    blinked = _blinked(signals, config)
    z = _region_z(signals.micro, signals, hidden=blinked)
    score = z.max(axis=1)
    hidden = blinked[:, None] & ~_far_from_eyes(signals.regions).astype(bool)[None, :]  # (n, n_regions)
    usable = np.isfinite(signals.micro).any(axis=1)
    for cand in macros:
        usable[max(0, cand.onset - k):min(n, cand.offset + k + 1)] = False
    level = _threshold(score, usable, config.threshold_p, config.min_z)
    peaks, _ = find_peaks(np.where(usable, score, 0.0), height=level)
    found = list(macros)
    for onset, apex, offset in _intervals(peaks, score, z, config.edge_frac, radius=k + 2,
                                          hidden=hidden):
        if any(interval_iou((onset, offset), (m.onset, m.offset)) > 0 for m in macros):
            continue
        kind = "micro" if offset - onset + 1 <= micro_max else "macro"
        found.append(Candidate(onset, apex, offset, kind, float(score[apex]),
                               _moved(z[apex], signals.regions, config.region_frac)))
    return sorted(found, key=lambda c: (c.onset, c.offset)), float(level)


def spot_media(path: Path | str, config: SpotConfig = SpotConfig(), progress: Progress | None = None,
               should_cancel: ShouldCancel | None = None, fps: float | None = None) -> SpotResult:
    """Spot one video or image folder. Raises `core.progress.Cancelled` when cancelled.

    fps: frame rate of an image folder (its files store none; CASME II is 200); ignored for
    videos, whose container says.
    """
    from microau_gui.media import open_media

    started = time.perf_counter()
    with open_media(path, cache_frames=0, fps=fps) as source:
        check_long_enough(Path(path).name, source.n_frames, source.fps, config)
        signals = compute_signals(prefetch(source.iter_frames()), source.n_frames, source.fps,
                                  config.signal, progress=progress, should_cancel=should_cancel)
    if not signals.face_found.any():
        raise UserError(f"{Path(path).name}: no face found in any frame; spotting needs a visible, "
                        "roughly frontal face")
    candidates, floor_z = _find(signals, config)
    seconds = time.perf_counter() - started
    log.debug("spotted %d candidates in %d frames (%.1f frames/s)", len(candidates), signals.n_frames,
             signals.n_frames / max(seconds, 1e-9))
    return SpotResult(tuple(candidates), signals, seconds, Path(path), floor_z)


def check_long_enough(name: str, n_frames: int, fps: float, config: SpotConfig) -> None:
    """A clip shorter than 2k + 1 frames has no frame with both t - k and t + k, so its return
    motion is never measured and spotting would silently find nothing (the bundled demo's
    142-frame clips at 200 fps, k = 100): say so instead."""
    k = config.signal.gap_frames(fps)
    if n_frames < 2 * k + 1:
        raise UserError(
            f"{name}: {n_frames} frames is too short to spot: each frame is compared with the "
            f"frames {k} before and after it (the longest micro-expression, "
            f"{config.signal.reference_gap_s:g} s at {fps:g} fps), so spotting needs at least "
            f"{2 * k + 1} frames. Spotting is for long recordings; code a short clip by hand "
            "(I / A / O), or spot it with a shorter longest micro-expression "
            "(python main.py spot CLIP --micro-max-s S)")


def with_micro_max(config: SpotConfig, micro_max_s: float) -> SpotConfig:
    """`config` with another longest micro duration; the reference gap k follows it."""
    return replace(config, micro_max_s=micro_max_s,
                   signal=replace(config.signal, reference_gap_s=micro_max_s))
