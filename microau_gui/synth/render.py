"""Rendering: a plate, timed displacement fields, head motion and sensor nuisances -> RGB frames.

Owns: `Event`, `HeadTrack`, `head_track`, `Nuisance`, `illumination`, `render_frames`. May
import core and face; numpy and OpenCV.

Every output frame is ONE resampling of the plate (`cv2.remap`, bicubic), so sub-pixel
movements are not blurred by repeated interpolation. The map combines, for output pixel p:

    q = p + w(p) * (H_t^-1(p) - p)      head pose H_t (similarity about the eye midpoint),
                                         w = 1 everywhere (clips) or a soft head mask (videos)
    map(p) = q - d_t(q)                  d_t = sum of the active AU fields times their intensity

(`map` is a backward warp: the skin that was at map(p) is seen at p, so a field d moves the skin
by about +d. While the head never strays more than ~1 px from the plate, as in the clips, d_t is
taken at p instead of q: the AU pattern then sits at most a pixel off, and a resampling of the
field per frame is saved.) Plates can be rendered at a multiple of the output size and averaged down
(`supersample`), which makes a 0.3 px shift a true sub-pixel shift instead of an interpolation
artefact. Then an illumination gain, sensor noise and 8-bit quantisation follow; the
media writer adds JPEG or H.264 compression.

Frames are produced one at a time (a generator), so a ten-minute video never sits in memory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from microau_gui.synth.fields import LocalField


@dataclass(frozen=True, eq=False)
class Event:
    """Displacement fields switched on together over a run of frames.

    The fields are shared unit fields (one per AU and side, cached per plate) with a weight
    each, so a long video holds a few small arrays per AU, not one per expression.
    """

    parts: tuple[tuple[LocalField, float], ...]  # (field, weight): displacement at intensity 1
    start: int  # frame_idx of profile[0]
    profile: np.ndarray  # (n,) intensity per frame from `start`

    @property
    def stop(self) -> int:
        return self.start + len(self.profile)

    def intensity(self, frame_idx: int) -> float:
        k = frame_idx - self.start
        return float(self.profile[k]) if 0 <= k < len(self.profile) else 0.0


@dataclass(frozen=True, eq=False)
class HeadTrack:
    """Head pose per frame relative to the plate: a similarity about `centre`."""

    centre: np.ndarray  # (2,) plate px the head rotates and scales about (the eye midpoint)
    shift_px: np.ndarray  # (n, 2) translation, plate px
    roll_rad: np.ndarray  # (n,) rotation, radians (positive: clockwise on screen)
    scale: np.ndarray  # (n,) zoom factor (1 = plate size)

    def __len__(self) -> int:
        return len(self.roll_rad)

    def max_offset_px(self, radius_px: float = 100.0) -> float:
        """Largest head displacement over the track at `radius_px` from the centre."""
        shift = np.sqrt((self.shift_px ** 2).sum(axis=1))
        return float((shift + radius_px * (np.abs(self.roll_rad) + np.abs(self.scale - 1))).max())

    def inverse_affine(self, frame_idx: int) -> np.ndarray:
        """2x3 map from output px to plate px for this frame."""
        angle, zoom = float(self.roll_rad[frame_idx]), float(self.scale[frame_idx])
        cos, sin = np.cos(angle) / zoom, np.sin(angle) / zoom
        rotation = np.array([[cos, sin], [-sin, cos]])  # inverse of rotation * zoom
        moved_centre = self.centre + self.shift_px[frame_idx]
        return np.hstack([rotation, (self.centre - rotation @ moved_centre)[:, None]])


def _smooth_noise(rng: np.random.Generator, n: int, corr_frames: float) -> np.ndarray:
    """Zero-mean unit-variance AR(1) noise with the given correlation length in frames."""
    alpha = float(np.exp(-1.0 / max(corr_frames, 1e-6)))
    out = np.empty(n)
    out[0] = rng.standard_normal()
    steps = rng.standard_normal(n) * np.sqrt(1 - alpha * alpha)
    for k in range(1, n):
        out[k] = alpha * out[k - 1] + steps[k]
    return out


def head_track(rng: np.random.Generator, n_frames: int, fps: float, centre: np.ndarray,
               px_per_224: float, tremor_px: float, drift_px: float, roll_deg: float,
               drift_roll_deg: float, zoom: float = 0.0, drift_s: float = 4.0) -> HeadTrack:
    """Head jitter plus slow drift. Sizes are given for a 224 px face and scaled to the plate.

    tremor_px: standard deviation of the fast translation jitter (correlation ~25 ms).
    drift_px: standard deviation of the slow wander (correlation `drift_s` seconds).
    roll_deg / drift_roll_deg: the same for in-plane rotation. zoom: std of slow scale change.
    """
    fast, slow = 0.025 * fps, drift_s * fps
    shift = np.stack([tremor_px * _smooth_noise(rng, n_frames, fast)
                      + drift_px * _smooth_noise(rng, n_frames, slow) for _ in range(2)], 1)
    roll = (roll_deg * _smooth_noise(rng, n_frames, fast)
            + drift_roll_deg * _smooth_noise(rng, n_frames, slow))
    scale = 1.0 + zoom * _smooth_noise(rng, n_frames, slow)
    return HeadTrack(np.asarray(centre, np.float64), shift * px_per_224, np.radians(roll), scale)


@dataclass(frozen=True)
class Nuisance:
    """Camera and lighting nuisances of one clip or video."""

    noise_sigma: float = 1.5  # sensor noise std, 0-255 grey levels, per pixel and frame
    flicker: float = 0.004  # relative std of the global illumination gain, per frame
    flicker_drift: float = 0.01  # relative std of its slow wander


def illumination(rng: np.random.Generator, n_frames: int, fps: float,
                 nuisance: Nuisance) -> np.ndarray:
    """Global gain per frame: fast flicker plus a slow wander (about a second)."""
    return (1.0 + nuisance.flicker * rng.standard_normal(n_frames)
            + nuisance.flicker_drift * _smooth_noise(rng, n_frames, fps))


def render_frames(
    plate_rgb: np.ndarray,
    events: Sequence[Event],
    head: HeadTrack,
    gains: np.ndarray,
    nuisance: Nuisance,
    rng: np.random.Generator,
    out_wh: tuple[int, int],
    head_weight: np.ndarray | None = None,
    on_frame: Callable[[int], None] | None = None,
) -> Iterator[np.ndarray]:
    """Yield `len(head)` RGB uint8 frames of size `out_wh` (w, h).

    plate_rgb: (H, W, 3) float32; if larger than `out_wh` it is area-averaged down after the
    warp (supersampling). events: fields with their time courses, in plate px; they may be
    given in any order. head_weight: (H, W) float32 in [0, 1], the part of the picture that
    moves with the head (None: all of it). on_frame(frame_idx) is called before each frame,
    e.g. to check a cancel flag.
    """
    height, width = plate_rgb.shape[:2]
    grid_y, grid_x = np.mgrid[0:height, 0:width].astype(np.float32)
    # While the head stays within ~1 px of the plate, the skin field can be applied where it was
    # computed; beyond that it must be carried along with the head (one more resampling).
    follow_head = head_weight is not None or head.max_offset_px() > 1.0
    reach = int(np.ceil(head.max_offset_px(radius_px=max(height, width)))) + 2 if follow_head else 0
    pending = sorted(events, key=lambda e: e.start)
    active: list[Event] = []
    displacement = np.zeros((height, width, 2), np.float32)
    for frame_idx in range(len(head)):
        if on_frame is not None:
            on_frame(frame_idx)
        while pending and pending[0].start <= frame_idx:
            active.append(pending.pop(0))
        active = [e for e in active if e.stop > frame_idx]

        inverse = head.inverse_affine(frame_idx).astype(np.float32)
        inverse[0, 0] -= 1.0
        inverse[1, 1] -= 1.0
        # Head displacement (inverse - identity) applied to the grid, weighted by the head mask.
        shift_x = inverse[0, 0] * grid_x + inverse[0, 1] * grid_y + inverse[0, 2]
        shift_y = inverse[1, 0] * grid_x + inverse[1, 1] * grid_y + inverse[1, 2]
        if head_weight is not None:
            shift_x *= head_weight
            shift_y *= head_weight
        map_x = np.add(grid_x, shift_x, out=shift_x)
        map_y = np.add(grid_y, shift_y, out=shift_y)

        parts = [(field, e.intensity(frame_idx) * part_weight)
                 for e in active for field, part_weight in e.parts]
        parts = [(field, w) for field, w in parts if w != 0.0 and field.uv.size]
        if parts:
            # Only the window the fields cover (grown by the head's reach) is touched.
            top = max(0, min(f.y0 for f, _ in parts) - reach)
            left = max(0, min(f.x0 for f, _ in parts) - reach)
            bottom = min(height, max(f.y0 + f.uv.shape[0] for f, _ in parts) + reach)
            right = min(width, max(f.x0 + f.uv.shape[1] for f, _ in parts) + reach)
            window = (slice(top, bottom), slice(left, right))
            displacement[window] = 0.0
            for field, weight in parts:
                field.add_into(displacement, weight)
            if follow_head:
                moved = cv2.remap(displacement, map_x[window], map_y[window], cv2.INTER_LINEAR,
                                  borderMode=cv2.BORDER_CONSTANT, borderValue=0)
            else:
                moved = displacement[window]
            map_x[window] -= moved[..., 0]
            map_y[window] -= moved[..., 1]

        frame = cv2.remap(plate_rgb, map_x, map_y, cv2.INTER_CUBIC,
                          borderMode=cv2.BORDER_REFLECT101)
        if (width, height) != tuple(out_wh):
            frame = cv2.resize(frame, tuple(out_wh), interpolation=cv2.INTER_AREA)
        frame *= np.float32(gains[frame_idx])
        if nuisance.noise_sigma > 0:
            # Luminance noise only (4:2:0 JPEG/H.264 discards most chroma noise anyway), uniform
            # with the requested std: four times cheaper to draw than Gaussian, and after
            # compression no one can tell the two apart.
            noise = rng.random(frame.shape[:2], dtype=np.float32)
            noise -= np.float32(0.5)
            noise *= np.float32(nuisance.noise_sigma * np.sqrt(12.0))
            frame += noise[..., None]
        np.clip(frame, 0.0, 255.0, out=frame)
        frame += np.float32(0.5)
        yield frame.astype(np.uint8)
