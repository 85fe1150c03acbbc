"""Synthetic micro-expression clips in the CASME II layout, with a CASME II 2019 coding file.

Owns: `ClipConfig`, `ClipSpec`, `SynthClips`, `plan_clips`, `render_clip`, `clip_events`,
`generate_clips`. May import core, face, media and store; numpy and OpenCV.

What a clip is. One subject (a real photo, see `synth.faces`), one session (mirror / colour
variant, the EP number), one AU combination (`synth.combos`) at micro amplitude: every AU's
peak displacement is 0.5-3 px on a 224 px face, drawn per clip. The clip starts neutral, the
expression rises over a sin^2 onset to its apex (the frame of maximum displacement) and falls
back by the offset, 0.2-0.5 s after the onset, then a neutral tail follows. At 200 fps a clip is
about 60-150 frames. Head tremor and drift (sub-pixel to about 1 px, tiny roll), illumination
flicker, sensor noise and JPEG compression are added to every frame.

Frames are square, `frame_scale` (1.25) times the face size: 280 x 280 px for the default
224 px face (`synth.faces` explains what the face size measures), so a 224 px face crop fits
with a margin, as in CASME II's cropped release.

Blinks. About one clip in seven contains a blink (both upper lids close fully, 0.12-0.25 s),
placed in the neutral lead-in or tail so it never overlaps onset-offset. It is NOT coded as an
AU: CASME II's coders did not code blinks either, and a model or spotter should learn to ignore
eyelid motion outside the coded expression.

Layout written by `generate_clips(out_dir, ...)`:

    out_dir/sub01/EP02_01/img173.jpg ...   one folder per clip; numbering starts at a random
                                           offset (like CASME II, where img46 can be frame 1)
    out_dir/coding.xlsx                    CASME II 2019 columns (store.importers writer)
    out_dir/synth.json                     how each clip was made (amplitudes, session, blink)

Clip folder names are `EP<session>_<n>`: the session number (1 photo, 2 mirror, 3+ colour
variants) and the clip's number within that session.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from microau_gui.core.aus import AUCode, Side, format_au_codes
from microau_gui.core.errors import UserError
from microau_gui.core.progress import Cancelled, Progress, ShouldCancel, check_cancel
from microau_gui.core.types import Dataset, ImportReport, Sample
from microau_gui.synth.au_motion import AU_MOTIONS, BLINK
from microau_gui.synth.combos import COMBINATIONS, Combination, schedule
from microau_gui.synth.faces import PHOTOS, FacePhoto, Plate, PlateMaker, SessionLook, session_look
from microau_gui.synth.fields import LocalField, au_field, blink_profile, micro_profile
from microau_gui.synth.render import Event, Nuisance, head_track, illumination, render_frames

log = logging.getLogger(__name__)

SHEET_NAME = "coding.xlsx"
RECORD_NAME = "synth.json"

@dataclass(frozen=True)
class ClipConfig:
    """How clips are made. Pixel sizes marked '@224' are for a 224 px face and scale with it."""

    size: int = 224  # face size in px (the side of a face.align crop of a frontal face)
    frame_scale: float = 1.25  # clip frame side / face size (CASME II crops show a little more)
    fps: float = 200.0  # CASME II records at 200 fps
    supersample: int = 1  # plates are warped at this multiple of the output size
    n_sessions: int = 4  # session variants per subject (photo, mirror, two colour variants)
    amplitude_px: tuple[float, float] = (0.5, 3.0)  # per-AU peak displacement @224
    duration_s: tuple[float, float] = (0.2, 0.5)  # onset to offset
    rise_fraction: tuple[float, float] = (0.35, 0.55)  # share of the duration spent rising
    lead_s: tuple[float, float] = (0.05, 0.12)  # neutral frames before onset and after offset
    unilateral_prob: float = 0.15  # chance a lateral-capable combination is one-sided
    blink_prob: float = 0.15  # chance of an uncoded blink outside onset-offset
    blink_s: tuple[float, float] = (0.12, 0.25)  # blink length
    tremor_px: tuple[float, float] = (0.05, 0.2)  # fast head jitter std @224
    drift_px: tuple[float, float] = (0.1, 0.5)  # slow head drift std @224
    roll_deg: float = 0.02  # fast roll jitter std
    drift_roll_deg: float = 0.1  # slow roll drift std
    noise_sigma: tuple[float, float] = (1.0, 2.5)  # sensor noise std, grey levels
    flicker: float = 0.004  # illumination gain jitter std per frame
    jpeg_quality: tuple[int, int] = (82, 95)  # per clip
    first_number: tuple[int, int] = (1, 300)  # range of the first image number

    @property
    def frame_px(self) -> int:
        """Side of the square clip frames (even)."""
        return int(round(self.size * self.frame_scale / 2)) * 2


@dataclass(frozen=True)
class ClipSpec:
    """Everything needed to render one clip and to code it."""

    subject_idx: int  # 0-based index into PHOTOS
    clip_idx: int  # 0-based index among the subject's clips
    look: SessionLook  # session variant
    clip: str  # folder name, e.g. "EP02_01"
    combination: Combination
    aus: tuple[AUCode, ...]  # as coded, with side
    amplitudes_px: tuple[float, ...]  # peak displacement of each AU @224, same order as aus
    n_frames: int
    first_number: int  # image number of frame_idx 0
    onset: int  # frame_idx
    apex: int  # frame_idx
    offset: int  # frame_idx
    blink: tuple[int, int] | None  # (first frame_idx, n frames) of an uncoded blink
    tremor_px: float  # @224
    drift_px: float  # @224
    noise_sigma: float
    jpeg_quality: int
    render_seed: tuple[int, ...]  # entropy of the rendering random stream

    @property
    def photo(self) -> FacePhoto:
        return PHOTOS[self.subject_idx]

    @property
    def subject(self) -> str:
        return self.photo.subject

    def sample(self, root: Path) -> Sample:
        """The coding-sheet row of this clip, media under `root`."""
        return Sample(
            subject=self.subject, clip=self.clip,
            media_path=Path(root) / f"sub{self.subject}" / self.clip,
            onset=self.onset, apex=self.apex, offset=self.offset, aus=self.aus,
            emotion=self.combination.emotion, objective_class=self.combination.objective_class,
            expression_type="micro",
            onset_number=self.first_number + self.onset,
            apex_number=self.first_number + self.apex,
            offset_number=self.first_number + self.offset,
        )


@dataclass(frozen=True, eq=False)
class SynthClips:
    """What `generate_clips` wrote."""

    dataset: Dataset  # the samples, as the CASME II importer will read them back
    clips: tuple[ClipSpec, ...]
    root: Path
    sheet: Path
    seconds: float  # wall time
    cancelled: bool = False  # True when stopped early; the sheet lists the finished clips


def check_subjects(subjects: int) -> None:
    if not 1 <= subjects <= len(PHOTOS):
        raise UserError(
            f"--subjects {subjects}: there are only {len(PHOTOS)} real face photos and each one is "
            f"one subject; use 1-{len(PHOTOS)} (sessions add mirror and colour variants)")


def _uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    return float(rng.uniform(*bounds))


def _code_sides(combination: Combination, rng: np.random.Generator, prob: float) -> tuple[AUCode, ...]:
    side = Side.BOTH
    if combination.unilateral and rng.random() < prob:
        side = Side.RIGHT if rng.random() < 0.5 else Side.LEFT
    return tuple(AUCode(n, side) for n in combination.aus)


def _plan_one(subject_idx: int, clip_idx: int, combination: Combination, clip_name: str,
              look: SessionLook, config: ClipConfig, seed: int) -> ClipSpec:
    rng = np.random.default_rng([seed, subject_idx, clip_idx, 1])
    fps = config.fps
    aus = _code_sides(combination, rng, config.unilateral_prob)
    peak = _uniform(rng, config.amplitude_px)
    low, high = config.amplitude_px
    amplitudes = tuple(float(np.clip(peak * rng.uniform(0.7, 1.0), low, high)) for _ in aus)

    duration = max(4, int(round(_uniform(rng, config.duration_s) * fps)))
    rise = min(duration - 2, max(2, int(round(duration * _uniform(rng, config.rise_fraction)))))
    lead_in = max(2, int(round(_uniform(rng, config.lead_s) * fps)))
    tail = max(2, int(round(_uniform(rng, config.lead_s) * fps)))
    blink = None
    if rng.random() < config.blink_prob:
        n_blink = max(3, int(round(_uniform(rng, config.blink_s) * fps)))
        gap = max(1, int(round(0.02 * fps)))
        if rng.random() < 0.5:
            lead_in += n_blink + gap
            blink = (max(0, lead_in - gap - n_blink - int(rng.integers(0, gap + 1))), n_blink)
        else:
            blink = (lead_in + duration + gap + int(rng.integers(0, gap + 1)), n_blink)
            tail += n_blink + 2 * gap
    onset = lead_in
    apex = onset + rise
    offset = onset + duration
    n_frames = offset + tail + 1
    first = int(rng.integers(config.first_number[0], config.first_number[1] + 1))
    return ClipSpec(
        subject_idx=subject_idx, clip_idx=clip_idx, look=look, clip=clip_name,
        combination=combination, aus=aus, amplitudes_px=amplitudes, n_frames=n_frames,
        first_number=first, onset=onset, apex=apex, offset=offset, blink=blink,
        tremor_px=_uniform(rng, config.tremor_px), drift_px=_uniform(rng, config.drift_px),
        noise_sigma=_uniform(rng, config.noise_sigma),
        jpeg_quality=int(rng.integers(config.jpeg_quality[0], config.jpeg_quality[1] + 1)),
        render_seed=(seed, subject_idx, clip_idx, 2),
    )


def plan_clips(subjects: int = 3, clips_per_subject: int = 20, config: ClipConfig = ClipConfig(),
               seed: int = 0, combinations: Sequence[Combination] | None = None) -> list[ClipSpec]:
    """Every clip's labels and nuisances, deterministic for the seed (nothing is rendered).

    combinations: draw from these instead of `combos.COMBINATIONS` (a `Combination` with no AUs
    makes a clip without any movement, for tests).
    """
    check_subjects(subjects)
    if clips_per_subject < 1:
        raise UserError(f"--clips-per-subject {clips_per_subject}: ask for at least 1 clip")
    table = tuple(combinations) if combinations else COMBINATIONS
    specs = []
    for subject_idx in range(subjects):
        looks = {s: session_look(s, np.random.default_rng([seed, subject_idx, s, 3]))
                 for s in range(1, config.n_sessions + 1)}
        counts = {s: 0 for s in looks}
        for clip_idx, combination in enumerate(
                schedule(table, subject_idx, clips_per_subject, seed)):
            session = clip_idx % config.n_sessions + 1
            counts[session] += 1
            name = f"EP{session:02d}_{counts[session]:02d}"
            specs.append(_plan_one(subject_idx, clip_idx, combination, name, looks[session],
                                   config, seed))
    return specs


def combine_fields(fields: Sequence[tuple[LocalField, float]]) -> LocalField:
    """sum(weight * field) as one field over the union of their windows."""
    fields = [(f, w) for f, w in fields if f.uv.size]
    if not fields:
        return LocalField(0, 0, np.zeros((0, 0, 2), np.float32))
    y0 = min(f.y0 for f, _ in fields)
    x0 = min(f.x0 for f, _ in fields)
    y1 = max(f.y0 + f.uv.shape[0] for f, _ in fields)
    x1 = max(f.x0 + f.uv.shape[1] for f, _ in fields)
    out = np.zeros((y1 - y0, x1 - x0, 2), np.float32)
    for f, weight in fields:
        h, w = f.uv.shape[:2]
        out[f.y0 - y0:f.y0 - y0 + h, f.x0 - x0:f.x0 - x0 + w] += np.float32(weight) * f.uv
    return LocalField(y0, x0, out)


class FieldCache:
    """Unit AU fields per plate and side: every clip of a session reuses them."""

    def __init__(self):
        self._fields: dict[tuple, LocalField] = {}

    def get(self, plate: Plate, number: int, side: str) -> LocalField:
        key = (plate.geometry_key, number, side)
        if key not in self._fields:
            motion = AU_MOTIONS[number]
            self._fields[key] = au_field(motion, plate.xy_img, plate.frame, side,
                                         plate.rgb.shape[:2])
        return self._fields[key]


def expression_parts(plate: Plate, aus: Sequence[AUCode], amplitudes_px: Sequence[float],
                     cache: FieldCache, max_px: float) -> tuple[tuple[LocalField, float], ...]:
    """The apex displacement of an AU combination on a plate as (unit field, px) parts.

    Where the AUs' own fields overlap and add up, all parts are scaled down together so the
    combined peak stays <= `max_px` @224.
    """
    scale = plate.px_per_224
    parts = [(cache.get(plate, code.number, code.side.value), amplitude * scale)
             for code, amplitude in zip(aus, amplitudes_px)]
    peak = combine_fields(parts).peak_px
    if peak > max_px * scale:
        parts = [(f, w * max_px * scale / peak) for f, w in parts]
    return tuple(parts)


def clip_events(spec: ClipSpec, plate: Plate, config: ClipConfig, cache: FieldCache) -> list[Event]:
    """The expression (and blink) of a clip as timed fields on its plate."""
    events = []
    if spec.aus:
        parts = expression_parts(plate, spec.aus, spec.amplitudes_px, cache, config.amplitude_px[1])
        events.append(Event(parts, spec.onset, micro_profile(spec.onset, spec.apex, spec.offset)))
    if spec.blink is not None:
        start, length = spec.blink
        n_close = max(1, int(round(length * 0.35)))
        events.append(Event(((cache.get(plate, BLINK.number, "B"), 1.0),), start,
                            blink_profile(n_close, length - 1 - n_close)))
    return events


def clip_plate(spec: ClipSpec, config: ClipConfig, maker: PlateMaker) -> Plate:
    side = config.frame_px * config.supersample
    return maker.make(spec.photo, spec.look, (side, side), config.size * config.supersample,
                      eye_y_frac=0.40)


def render_clip(spec: ClipSpec, config: ClipConfig, maker: PlateMaker,
                cache: FieldCache | None = None,
                on_frame: Callable[[int], None] | None = None) -> Iterator[np.ndarray]:
    """The clip's frames, RGB uint8 (frame_px x frame_px), one at a time, before JPEG."""
    cache = cache or FieldCache()
    plate = clip_plate(spec, config, maker)
    rng = np.random.default_rng(list(spec.render_seed))
    head = head_track(rng, spec.n_frames, config.fps, plate.frame.origin, plate.px_per_224,
                      tremor_px=spec.tremor_px, drift_px=spec.drift_px,
                      roll_deg=config.roll_deg, drift_roll_deg=config.drift_roll_deg, drift_s=1.0)
    nuisance = Nuisance(noise_sigma=spec.noise_sigma, flicker=config.flicker, flicker_drift=0.005)
    gains = illumination(rng, spec.n_frames, config.fps, nuisance)
    events = clip_events(spec, plate, config, cache)
    return render_frames(plate.rgb, events, head, gains, nuisance, rng,
                         (config.frame_px, config.frame_px), on_frame=on_frame)


def _check_out_dir(out_dir: Path) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"{out_dir} is a file; --out needs a folder")
    if (out_dir / SHEET_NAME).exists() or any(out_dir.glob("sub[0-9]*")):
        raise UserError(f"{out_dir} already holds a synthetic dataset; choose an empty or new folder")


def _record(specs: Sequence[ClipSpec], config: ClipConfig, seed: int) -> dict:
    clips = []
    for s in specs:
        clips.append({
            "subject": s.subject, "photo": s.photo.name, "clip": s.clip,
            "session": asdict(s.look), "aus": format_au_codes(s.aus) or "none",
            "emotion": s.combination.emotion, "objective_class": s.combination.objective_class,
            "amplitudes_px_at_224": [round(a, 3) for a in s.amplitudes_px],
            "n_frames": s.n_frames, "first_number": s.first_number,
            "onset": s.onset, "apex": s.apex, "offset": s.offset,
            "blink": list(s.blink) if s.blink else None,
            "tremor_px_at_224": round(s.tremor_px, 3), "drift_px_at_224": round(s.drift_px, 3),
            "noise_sigma": round(s.noise_sigma, 3), "jpeg_quality": s.jpeg_quality,
        })
    return {"generator": "microau_gui.synth.clips", "seed": seed, "config": asdict(config),
            "clips": clips}


def generate_clips(out_dir: Path | str, subjects: int = 3, clips_per_subject: int = 20,
                   size: int = 224, fps: float = 200.0, seed: int = 0,
                   combinations: Sequence[Combination] | None = None,
                   config: ClipConfig | None = None, progress: Progress | None = None,
                   should_cancel: ShouldCancel | None = None) -> SynthClips:
    """Render and write a synthetic CASME II-style dataset; see the module docstring.

    size, fps: shorthands for the config fields. progress(done, total) is called after every
    clip; when should_cancel() turns True the current clip is removed and the sheet lists the clips
    already finished.
    """
    from microau_gui.media import write_image_sequence
    from microau_gui.store.importers import write_casme2_sheet

    started = time.perf_counter()
    if size < 32 or fps <= 0:
        raise UserError(f"--size {size} / --fps {fps}: use a face of at least 32 px and a positive fps")
    base = config or ClipConfig()
    config = ClipConfig(**{**asdict(base), "size": int(size), "fps": float(fps)})
    out_dir = Path(out_dir)
    _check_out_dir(out_dir)
    specs = plan_clips(subjects, clips_per_subject, config, seed, combinations)

    def on_frame(_: int) -> None:
        check_cancel(should_cancel)

    done: list[ClipSpec] = []
    cache = FieldCache()
    cancelled = False
    with PlateMaker() as maker:
        for spec in specs:
            # Every face is found (or refused) before anything is written.
            clip_plate(spec, config, maker)
        out_dir.mkdir(parents=True, exist_ok=True)
        for spec in specs:
            folder = out_dir / f"sub{spec.subject}" / spec.clip
            try:
                write_image_sequence(folder, render_clip(spec, config, maker, cache, on_frame),
                                     pattern="img{n}.jpg", first_number=spec.first_number,
                                     quality=spec.jpeg_quality)
            except Cancelled:
                shutil.rmtree(folder, ignore_errors=True)
                if not any(folder.parent.iterdir()):
                    folder.parent.rmdir()
                cancelled = True
                break
            done.append(spec)
            if progress is not None:
                progress(len(done), len(specs))
    sheet = write_casme2_sheet([s.sample(out_dir) for s in done], out_dir / SHEET_NAME,
                               layout="2019")
    (out_dir / RECORD_NAME).write_text(json.dumps(_record(done, config, seed), indent=1))
    samples = tuple(s.sample(out_dir) for s in done)
    dataset = Dataset(kind="synth", sheet=sheet, media_root=out_dir, samples=samples,
                      report=ImportReport(kind="synth", sheet=sheet, n_rows=len(samples)))
    seconds = time.perf_counter() - started
    log.debug("wrote %d clips to %s in %.1f s", len(done), out_dir, seconds)
    return SynthClips(dataset=dataset, clips=tuple(done), root=out_dir, sheet=sheet,
                      seconds=seconds, cancelled=cancelled)
