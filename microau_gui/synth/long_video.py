"""Synthetic interview-like long videos with MEGC-style spotting ground truth.

Owns: `LongConfig`, `VideoEvent`, `VideoPlan`, `SynthLong`, `plan_video`, `render_video`,
`generate_long_videos`. May import core, face, media and store; numpy and OpenCV.

A video shows one subject (the photos in turn: video 1 sub01, video 2 sub02 ...; later videos
use the mirror and colour sessions) in a 640x480 frame with the face about 230 px, at 30 fps
like CAS(ME)^2. Over a neutral face it places, at random non-overlapping times with at least
`gap_s` of rest between them:

- micro-expressions: the clip combinations (`combos.COMBINATIONS`), 0.5-3 px @224, 0.2-0.5 s;
- macro-expressions: broad combinations (`combos.MACRO_COMBINATIONS`), 5-15 px @224 (eyelid
  AUs capped lower so they stay anatomical), 0.5-4 s with a hold at the apex;
- blinks: both upper lids close fully, 0.15-0.35 s, about 15 a minute.

Blinks are not expressions: the ground truth lists micro and macro intervals only (as the MEGC
sheets do), and `SynthLong.blinks` says where the blinks are so tests and benchmarks can check
that a spotter ignores them. Events never overlap, which keeps every interval's onset, apex and
offset unambiguous (real videos do overlap; documented simplification).

Head motion: fast tremor plus a slow pose drift (a few px, about a degree of roll, 1 % zoom),
applied to the head only through a soft head mask, so the background stays still as it does in
front of a fixed camera. Sensor noise and flicker as in the clips; H.264 compression by the
media writer.

Files: DIR/s01/01_01.mp4 (subject folder, `<subject>_<video>` name), DIR/megc_gt.xlsx in the
CAS(ME)^2 code_final layout (store.importers writer; frame numbers are 0-based frame indices
of the video), DIR/synth_long.json (how each video was made, blinks included). Frames are
streamed to the encoder: memory does not grow with the video's length.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from microau_gui.core.aus import AUCode, format_au_codes
from microau_gui.core.errors import UserError
from microau_gui.core.progress import Cancelled, Progress, ShouldCancel, check_cancel
from microau_gui.core.types import Sample
from microau_gui.synth.au_motion import AU_MOTIONS, BLINK
from microau_gui.synth.clips import FieldCache, expression_parts
from microau_gui.synth.combos import COMBINATIONS, MACRO_COMBINATIONS, Combination, schedule
from microau_gui.synth.faces import PHOTOS, Plate, PlateMaker, session_look
from microau_gui.synth.fields import blink_profile, macro_profile, micro_profile
from microau_gui.synth.render import Event, Nuisance, head_track, illumination, render_frames

log = logging.getLogger(__name__)

SHEET_NAME = "megc_gt.xlsx"
RECORD_NAME = "synth_long.json"
MAX_SECONDS = 3600.0

@dataclass(frozen=True)
class LongConfig:
    """How long videos are made. Pixel sizes marked '@224' scale with the face size."""

    frame_wh: tuple[int, int] = (640, 480)  # output frame size (even, for H.264)
    face_px: float = 230.0  # face size in px (as in synth.faces)
    eye_y_frac: float = 0.40  # eye midpoint height in the frame
    fps: float = 30.0  # CAS(ME)^2 records at 30 fps
    micro_per_min: float = 4.0  # expected micro-expressions per minute
    macro_per_min: float = 3.0  # expected macro-expressions per minute
    blinks_per_min: float = 15.0  # expected blinks per minute
    micro_amplitude_px: tuple[float, float] = (0.5, 3.0)  # per AU @224
    macro_amplitude_px: tuple[float, float] = (5.0, 15.0)  # per AU @224, capped per AU
    micro_duration_s: tuple[float, float] = (0.2, 0.5)
    macro_duration_s: tuple[float, float] = (0.5, 4.0)
    blink_s: tuple[float, float] = (0.15, 0.35)
    gap_s: float = 0.4  # least rest between two events and at the ends
    tremor_px: float = 0.15  # fast head jitter std @224
    drift_px: float = 3.0  # slow pose drift std @224
    roll_deg: float = 0.02  # fast roll jitter std
    drift_roll_deg: float = 0.8  # slow roll drift std
    zoom: float = 0.01  # slow scale drift std (leaning in and out)
    drift_s: float = 6.0  # correlation time of the drift
    noise_sigma: tuple[float, float] = (1.0, 2.0)  # per video, grey levels
    flicker: float = 0.003  # illumination gain jitter std per frame
    crf: int = 18  # H.264 quality (libx264 constant rate factor)


@dataclass(frozen=True)
class VideoEvent:
    """One micro-expression, macro-expression or blink in a video."""

    kind: str  # "micro", "macro" or "blink"
    onset: int  # frame_idx of the first frame of the event (intensity 0)
    apex: int  # frame_idx of the maximum
    offset: int  # frame_idx of the last frame (intensity 0)
    hold_end: int  # macro: last frame of the hold; otherwise == apex
    combination: Combination | None  # None for blinks
    aus: tuple[AUCode, ...]
    amplitudes_px: tuple[float, ...]  # per AU @224 (empty for blinks)

    def profile(self) -> np.ndarray:
        if self.kind == "micro":
            return micro_profile(self.onset, self.apex, self.offset)
        if self.kind == "macro":
            return macro_profile(self.onset, self.apex, self.hold_end, self.offset)
        return blink_profile(self.apex - self.onset, self.offset - self.apex)


@dataclass(frozen=True)
class VideoPlan:
    """Everything needed to render one video and write its ground truth."""

    index: int  # 0-based video number
    subject_idx: int  # into PHOTOS
    session: int  # session look number
    name: str  # file stem, e.g. "01_01"
    n_frames: int
    events: tuple[VideoEvent, ...]  # in time order
    noise_sigma: float
    render_seed: tuple[int, ...]

    @property
    def subject(self) -> str:
        return PHOTOS[self.subject_idx].subject

    def relative_path(self) -> Path:
        return Path(f"s{self.subject}") / f"{self.name}.mp4"


@dataclass(frozen=True, eq=False)
class SynthLong:
    """What `generate_long_videos` wrote."""

    root: Path
    videos: tuple[Path, ...]
    sheet: Path  # MEGC ground truth
    samples: tuple[Sample, ...]  # micro and macro intervals, as written in the sheet
    blinks: tuple[tuple[str, int, int], ...]  # (video stem, onset, offset) frame_idx, not coded
    plans: tuple[VideoPlan, ...]
    seconds: float
    cancelled: bool = False


def _count(rng: np.random.Generator, per_min: float, minutes: float) -> int:
    """The expected count, randomly rounded up or down (so a rate of 4 a minute gives exactly
    4 in a minute and 4 or 5 in 1.2 minutes: steadier than a Poisson draw for short videos)."""
    expected = per_min * minutes
    return int(np.floor(expected + rng.random()))


def _frames(seconds: float, fps: float, least: int) -> int:
    return max(least, int(round(seconds * fps)))


def _macro_timing(rng: np.random.Generator, config: LongConfig) -> tuple[int, int, int]:
    """(rise, hold, fall) frames of a macro-expression."""
    fps = config.fps
    total = _frames(rng.uniform(*config.macro_duration_s), fps, 6)
    rise = max(2, int(round(total * rng.uniform(0.2, 0.35))))
    fall = max(2, int(round(total * rng.uniform(0.25, 0.4))))
    hold = max(1, total - rise - fall)
    return rise, hold, fall


def _amplitudes(rng: np.random.Generator, aus, bounds, macro: bool) -> tuple[float, ...]:
    peak = rng.uniform(*bounds)
    out = []
    for code in aus:
        amplitude = float(np.clip(peak * rng.uniform(0.7, 1.0), *bounds))
        if macro:
            amplitude = min(amplitude, AU_MOTIONS[code.number].macro_max_px)
        out.append(amplitude)
    return tuple(out)


def plan_video(index: int, seconds: float, config: LongConfig, seed: int) -> VideoPlan:
    """Place the events of one video (deterministic for the seed)."""
    rng = np.random.default_rng([seed, index, 11])
    subject_idx = index % len(PHOTOS)
    session = index // len(PHOTOS) + 1
    fps = config.fps
    n_frames = _frames(seconds, fps, 2)
    minutes = seconds / 60.0

    drafts: list[tuple[str, int, tuple]] = []  # (kind, length, timing)
    micro_combos = schedule(COMBINATIONS, index, _count(rng, config.micro_per_min, minutes), seed + 1)
    for combination in micro_combos:
        length = _frames(rng.uniform(*config.micro_duration_s), fps, 4)
        rise = min(length - 2, max(1, int(round(length * rng.uniform(0.35, 0.55)))))
        drafts.append(("micro", length, (combination, rise)))
    macro_combos = schedule(MACRO_COMBINATIONS, index, _count(rng, config.macro_per_min, minutes),
                            seed + 2)
    for combination in macro_combos:
        rise, hold, fall = _macro_timing(rng, config)
        drafts.append(("macro", rise + hold + fall, (combination, rise, hold)))
    for _ in range(_count(rng, config.blinks_per_min, minutes)):
        length = _frames(rng.uniform(*config.blink_s), fps, 3)
        drafts.append(("blink", length, (max(1, int(round(length * 0.35))),)))

    # Drop events (blinks first, then macro, then micro) until they fit with their gaps.
    gap = max(1, int(round(config.gap_s * fps)))
    priority = {"blink": 0, "macro": 1, "micro": 2}
    drafts = [drafts[k] for k in rng.permutation(len(drafts))]
    while drafts and sum(d[1] + 1 for d in drafts) + gap * (len(drafts) + 1) > n_frames:
        drafts.remove(min(drafts, key=lambda d: priority[d[0]]))
    free = n_frames - sum(d[1] + 1 for d in drafts) - gap * (len(drafts) + 1)
    shares = rng.dirichlet(np.ones(len(drafts) + 1)) * free if drafts else np.zeros(1)
    extra = [int(x) for x in np.floor(shares)]

    events = []
    cursor = gap + extra[0]
    for k, (kind, length, timing) in enumerate(drafts):
        onset, offset = cursor, cursor + length
        if kind == "micro":
            combination, rise = timing
            aus = tuple(AUCode(n) for n in combination.aus)
            amplitudes = _amplitudes(rng, aus, config.micro_amplitude_px, macro=False)
            events.append(VideoEvent("micro", onset, onset + rise, offset, onset + rise,
                                     combination, aus, amplitudes))
        elif kind == "macro":
            combination, rise, hold = timing
            aus = tuple(AUCode(n) for n in combination.aus)
            amplitudes = _amplitudes(rng, aus, config.macro_amplitude_px, macro=True)
            events.append(VideoEvent("macro", onset, onset + rise, offset, onset + rise + hold,
                                     combination, aus, amplitudes))
        else:
            (n_close,) = timing
            events.append(VideoEvent("blink", onset, onset + n_close, offset, onset + n_close,
                                     None, (), ()))
        cursor = offset + 1 + gap + extra[k + 1]
    name = f"{PHOTOS[subject_idx].subject}_{index + 1:02d}"
    return VideoPlan(index=index, subject_idx=subject_idx, session=session, name=name,
                     n_frames=n_frames, events=tuple(events),
                     noise_sigma=float(rng.uniform(*config.noise_sigma)),
                     render_seed=(seed, index, 12))


def _head_weight(plate: Plate) -> np.ndarray:
    """(H, W) float32: 1 on the head (face, hair, ears), fading to 0 on the background."""
    unit = plate.frame.unit_px
    hull = cv2.convexHull(plate.xy_img.astype(np.float32)).reshape(-1, 2)
    centre = plate.frame.origin + plate.frame.ey * 0.4 * unit
    # The landmarks stop at mid-forehead and the jaw line: grow the hull to cover the skull.
    grown = centre + (hull - centre) * 1.35
    mask = np.zeros(plate.rgb.shape[:2], np.float32)
    cv2.fillPoly(mask, [np.round(grown).astype(np.int32)], 1.0)
    return cv2.GaussianBlur(mask, (0, 0), 0.25 * unit)


def _plate(plan: VideoPlan, config: LongConfig, maker: PlateMaker) -> Plate:
    look = session_look(plan.session, np.random.default_rng([plan.render_seed[0], plan.index, 13]))
    return maker.make(PHOTOS[plan.subject_idx], look, config.frame_wh, config.face_px,
                      config.eye_y_frac)


def render_video(plan: VideoPlan, config: LongConfig, maker: PlateMaker, cache: FieldCache,
                 on_frame: Callable[[int], None] | None = None):
    """The video's frames, RGB uint8, one at a time."""
    plate = _plate(plan, config, maker)
    rng = np.random.default_rng(list(plan.render_seed))
    head = head_track(rng, plan.n_frames, config.fps, plate.frame.origin, plate.px_per_224,
                      tremor_px=config.tremor_px, drift_px=config.drift_px,
                      roll_deg=config.roll_deg, drift_roll_deg=config.drift_roll_deg,
                      zoom=config.zoom, drift_s=config.drift_s)
    nuisance = Nuisance(noise_sigma=plan.noise_sigma, flicker=config.flicker, flicker_drift=0.008)
    gains = illumination(rng, plan.n_frames, config.fps, nuisance)
    events = []
    for event in plan.events:
        if event.kind == "blink":
            parts = ((cache.get(plate, BLINK.number, "B"), 1.0),)
        else:
            limit = config.micro_amplitude_px[1] if event.kind == "micro" else config.macro_amplitude_px[1]
            parts = expression_parts(plate, event.aus, event.amplitudes_px, cache, limit)
        events.append(Event(parts, event.onset, event.profile()))
    return render_frames(plate.rgb, events, head, gains, nuisance, rng, config.frame_wh,
                         head_weight=_head_weight(plate), on_frame=on_frame)


def _samples(plan: VideoPlan, root: Path) -> list[Sample]:
    media = root / plan.relative_path()
    return [
        Sample(subject=plan.subject, clip=plan.name, media_path=media,
               onset=e.onset, apex=e.apex, offset=e.offset, aus=e.aus,
               emotion=e.combination.emotion, objective_class=e.combination.objective_class,
               expression_type=e.kind, onset_number=e.onset, apex_number=e.apex,
               offset_number=e.offset)
        for e in plan.events if e.kind != "blink"
    ]


def _record(plans, config: LongConfig, seed: int) -> dict:
    videos = []
    for plan in plans:
        videos.append({
            "video": plan.relative_path().as_posix(), "subject": plan.subject,
            "photo": PHOTOS[plan.subject_idx].name, "session": plan.session,
            "n_frames": plan.n_frames, "noise_sigma": round(plan.noise_sigma, 3),
            "events": [{"kind": e.kind, "onset": e.onset, "apex": e.apex, "offset": e.offset,
                        "aus": format_au_codes(e.aus) or None,
                        "amplitudes_px_at_224": [round(a, 3) for a in e.amplitudes_px]}
                       for e in plan.events],
        })
    return {"generator": "microau_gui.synth.long_video", "seed": seed, "config": asdict(config),
            "videos": videos}


def generate_long_videos(out_dir: Path | str, videos: int = 3, seconds: float = 60.0,
                         fps: float = 30.0, face_px: float = 230.0, seed: int = 0,
                         config: LongConfig | None = None, progress: Progress | None = None,
                         should_cancel: ShouldCancel | None = None) -> SynthLong:
    """Render and write long videos with MEGC ground truth; see the module docstring.

    progress(frames done, frames total) is called every second of video; when should_cancel() turns
    True the video being written is discarded and the ground truth lists the finished ones.
    """
    from microau_gui.media import write_video
    from microau_gui.store.importers import write_megc_sheet

    started = time.perf_counter()
    if videos < 1:
        raise UserError(f"--videos {videos}: ask for at least 1 video")
    if not 1.0 <= seconds <= MAX_SECONDS:
        raise UserError(f"--seconds {seconds:g}: use 1 to {MAX_SECONDS:g} seconds per video")
    if fps <= 0 or face_px < 64:
        raise UserError(f"--fps {fps:g} / --size {face_px:g}: use a positive fps and a face of "
                        "at least 64 px")
    base = config or LongConfig()
    config = LongConfig(**{**asdict(base), "fps": float(fps), "face_px": float(face_px)})
    if face_px > 0.8 * min(config.frame_wh):
        raise UserError(f"--size {face_px:g}: the face must fit the {config.frame_wh[0]}x"
                        f"{config.frame_wh[1]} frame; use at most {0.8 * min(config.frame_wh):g}")
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"{out_dir} is a file; --out needs a folder")
    if (out_dir / SHEET_NAME).exists():
        raise UserError(f"{out_dir} already holds synthetic videos; choose an empty or new folder")
    plans = [plan_video(k, seconds, config, seed) for k in range(videos)]
    total = sum(p.n_frames for p in plans)
    step = max(1, int(round(config.fps)))
    done_frames = 0

    def on_frame(frame_idx: int) -> None:
        check_cancel(should_cancel)
        if progress is not None and frame_idx % step == 0:
            progress(done_frames + frame_idx, total)

    written: list[VideoPlan] = []
    cancelled = False
    cache = FieldCache()
    with PlateMaker() as maker:
        for plan in plans:
            # Every face is found (or refused) before anything is written.
            _plate(plan, config, maker)
        for plan in plans:
            path = out_dir / plan.relative_path()
            try:
                write_video(path, render_video(plan, config, maker, cache, on_frame), config.fps,
                            codec="h264", crf=config.crf)
            except Cancelled:
                cancelled = True
                break
            written.append(plan)
            done_frames += plan.n_frames
            if progress is not None:
                progress(done_frames, total)
    samples = [s for plan in written for s in _samples(plan, out_dir)]
    sheet = write_megc_sheet(samples, out_dir / SHEET_NAME)
    (out_dir / RECORD_NAME).write_text(json.dumps(_record(written, config, seed), indent=1))
    blinks = tuple((plan.name, e.onset, e.offset) for plan in written for e in plan.events
                   if e.kind == "blink")
    seconds_taken = time.perf_counter() - started
    log.debug("wrote %d videos to %s in %.1f s", len(written), out_dir, seconds_taken)
    return SynthLong(root=out_dir, videos=tuple(out_dir / p.relative_path() for p in written),
                     sheet=sheet, samples=tuple(samples), blinks=blinks, plans=tuple(written),
                     seconds=seconds_taken, cancelled=cancelled)
