"""Streaming facial-motion signals: one pass over a video, bounded memory, per-frame region scores.

Owns: `SignalConfig`, `MotionSignals`, `compute_signals`, `region_parts`, `SPOT_REGIONS`.
May import face, media and core (plus numpy, OpenCV). No torch, no Qt.

Our specification (MDMD / LBP-chi2-style MEGC baselines, written with optical flow):

1. Landmarks. MediaPipe in tracking mode runs on every `detect_every`-th frame (and on every
   frame while the face is lost). Between two detections the landmarks are interpolated, after
   an exponential smoothing across detections, because MediaPipe's jitter is as large as a
   micro-movement. The frames in between wait in a short queue (at most `max_gap_s` of video).
2. Alignment. Each frame is warped to a small grey crop (`crop_px`) by the similarity those
   landmarks give (`face.align.estimate_alignment`).
3. Motion. For frame t, `face.motion.dense_flow` by `flow_method` from the crop of frame t - k
   to the crop of t, k = `reference_gap_s` * fps. The best similarity flow (head shift, roll,
   zoom, and whatever the smoothed alignment got wrong) is removed
   (`face.motion.remove_global_motion`, fitted on the face outside the eyes) and the residual is
   averaged in `block_px` blocks: D(t) = P(t) - P(t - k), a (G, G, 2) field, where P is where
   the skin is.
   The flow is "dis-fine" (DIS refined to full resolution), not Farneback, because it spots as
   well at a fifth of the flow's cost. On six 60-s synthetic interviews (`synth --long`, 12
   micro-expressions a minute, seeds 201-206), pooled, same videos: micro F1 0.937 (67 hits, 4
   false, 5 missed) against Farneback's 0.938 (68, 5, 4), macro F1 0.947 for both; whole
   `spot_media` 173 frames/s against 109 (106 before #18's other savings), pooled over two
   passes, on a shared 2-core AMD EPYC (AVX2, no AVX-512) with other jobs running, Dec 2026.
   The flow was chosen after seeing those seeds; on fresh ones (`experiment run spotting`,
   docs/experiments/spotting.json, 12 videos) micro F1 is 0.749 against Farneback's 0.795,
   paired difference -0.047, 95 % CI [-0.161, +0.050]: no loss shown, none excluded.
   Its finest scale and patch stride were chosen on other videos only (seeds 101-104 and
   tests/test_spot.py's animated photo, where stride 6 let a z 6.5 false candidate through on an
   AMD EPYC). That clip cannot choose a stride: on an AVX-512 Xeon stride 8 lets two through
   (z 7.7, 7.4), because which jitter frames cross the floor hangs on MediaPipe's last bits;
   the test bounds them instead. Farneback lets none through there, but turns the clip's AU4
   micro-expression into a macro one on 2 of 12 landmark perturbations (dis-fine: 0 of 12).
   Plain "dis" (OpenCV's ultrafast preset, a flow at a quarter of the crop) loses the sub-pixel
   movements: micro F1 0.471 on seeds 201-206.
4. Return motion. With a = D(t) ("there") and b = D(t + k) ("back"), averaged over a region
   part, the score is max(0, -a.b) / max(|a|, |b|): the displacement of a movement that went
   out and came back within t - k .. t + k, in crop pixels. With k equal to the longest
   micro-expression (MDMD takes half, which suffices for the apex only) it follows the whole
   onset-apex-offset profile. It is 0 for a slow drift (b = a) and for a movement seen from one
   side only (b = 0), so, unlike the plain difference |a - b|, it leaves no echo k frames before
   and after each movement.
5. Macro scale. The same at K = `macro_steps` * k, with D_K(t) = sum over j < steps of
   D(t - j k) (displacements chain at block level), so long expressions cost no second flow.
   The last K frames of the video, which have no t + K, use the last frame a whole number of k
   after them instead.
6. Parts. Every AU region is scored per half (subject's right / left) or whole (midline), and
   block vectors are averaged over the part before the score, so noise cancels while a faint
   coherent movement stays linear in its amplitude. The eye zone (eye, upper and lower lid
   areas, dilated by `eye_margin_frac`) is cut out of every region but the lids' own, because
   a blink moves it by several pixels; the eye zones' own score and their vertical movement are
   kept so the spotter can recognise blinks (`spotter._blinked`).

Memory: the queue of frames since the last detection, k + 1 crops, (steps - 1) k + 1 block
fields and K + 1 chained fields, independent of the video length. The per-frame scores (a few
dozen floats per frame) are kept for the whole video because the threshold is set per video.
Decoding runs one thread ahead of the flow (`media.prefetch.prefetch`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import cv2
import numpy as np

from microau_gui.core.au import DEFAULT_VOCAB, au_info
from microau_gui.core.errors import UserError
from microau_gui.core.progress import Progress, ShouldCancel, check_cancel
from microau_gui.face.align import estimate_alignment, transform_points, warp_to_crop
from microau_gui.face.landmarks import FaceMesh
from microau_gui.face.motion import FLOW_METHODS, dense_flow, remove_global_motion
from microau_gui.face.regions import LATERAL_AREAS, au_polygons

EYE_AREAS = frozenset({"eye", "upper_lid", "lower_lid"})
# AUs whose regions are scored: the model vocabulary plus AU20 (lip stretcher).
SPOT_REGIONS: tuple[str, ...] = DEFAULT_VOCAB + ("AU20",)
_EYE_ZONE_AUS = ("AU43", "AU5", "AU7")  # eye, upper lid, lower lid areas

@dataclass(frozen=True)
class SignalConfig:
    crop_px: int = 128  # side of the aligned grey crop; a 128 px face keeps micro-movements >= 0.3 px
    block_px: int = 4  # flow is averaged in square blocks of this side (crop px); divides crop_px
    detect_every: int = 5  # MediaPipe runs on every n-th frame; landmarks are interpolated between
    smoothing: float = 0.5  # weight of a new detection in the landmark average (1 = no smoothing)
    max_gap_s: float = 0.5  # longest stretch of lost face that is bridged by interpolation
    reference_gap_s: float = 0.5  # k in seconds: the longest micro-expression
    macro_steps: int = 6  # macro scale K = macro_steps * k (3 s by default)
    eye_margin_frac: float = 0.03  # eye zone dilation, fraction of crop_px
    regions: tuple[str, ...] = SPOT_REGIONS  # AUs whose regions are scored
    flow_method: str = "dis-fine"  # `face.motion.FLOW_METHODS`; why this one: step 3 above

    def __post_init__(self) -> None:
        if self.flow_method not in FLOW_METHODS:
            raise UserError(f"flow method {self.flow_method!r} is unknown; "
                            f"use one of {', '.join(FLOW_METHODS)}")

    def gap_frames(self, fps: float) -> int:
        """k in frames (>= 2)."""
        return max(2, int(round(self.reference_gap_s * fps)))


@dataclass(frozen=True, eq=False)
class MotionSignals:
    """Per-frame return motion of one video, indexed by frame_idx. NaN where not measurable.

    Columns are region parts: each lateral AU region's subject-right and subject-left halves
    (`AU12R`, `AU12L`), or a midline region whole (`AU9`).
    """

    fps: float
    n_frames: int
    regions: tuple[str, ...]  # AU codes
    parts: tuple[str, ...]  # part labels, column order of `micro` and `macro`
    part_region: tuple[int, ...]  # index into `regions` of each part
    gap_frames: int  # k
    macro_gap_frames: int  # K
    face_found: np.ndarray  # (n_frames,) bool: landmarks known (detected or interpolated)
    micro: np.ndarray  # (n_frames, n_parts) float32 return motion at scale k, crop px
    micro_eye: np.ndarray  # (n_frames,) float32 the same for the eye zone (larger eye)
    macro: np.ndarray  # (n_frames, n_parts) float32 return motion at scale K
    macro_eye: np.ndarray  # (n_frames,) float32
    micro_eye_dy: np.ndarray  # (n_frames, 2) float32 eye zones' mean vertical move t - k -> t and
    #                           t -> t + k, crop px, + down (a closing lid)
    crop_px: int


def region_parts(regions: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """Part labels and their region index, in the order `face.regions.au_polygons` gives sides."""
    labels, owners = [], []
    for r, code in enumerate(regions):
        sides = ("R", "L") if au_info(code).area in LATERAL_AREAS else ("",)
        labels += [f"{code}{side}" for side in sides]
        owners += [r] * len(sides)
    return tuple(labels), tuple(owners)


class _Geometry:
    """Block weights of every region half and eye, and the face mask, for one landmark set.

    Parts: each AU region's polygons (subject's right and left halves, or one midline polygon),
    minus the eye zone, then the right and left eye zones. `weights` (n_parts + 2, G*G)
    averages block vectors over a part.
    """

    def __init__(self, xy_crop: np.ndarray, config: SignalConfig):
        size, block = config.crop_px, config.block_px
        margin = max(1, int(round(config.eye_margin_frac * size)))
        kernel = np.ones((2 * margin + 1, 2 * margin + 1), np.uint8)
        eyes = {}
        for side in ("R", "L"):
            canvas = np.zeros((size, size), np.uint8)
            for code in _EYE_ZONE_AUS:
                cv2.fillPoly(canvas, [np.round(au_polygons(code, xy_crop)[side]).astype(np.int32)], 1)
            eyes[side] = cv2.dilate(canvas, kernel).astype(bool)
        eye_zone = eyes["R"] | eyes["L"]
        parts = []
        for code in config.regions:
            for polygon in au_polygons(code, xy_crop).values():
                canvas = np.zeros((size, size), np.uint8)
                cv2.fillPoly(canvas, [np.round(polygon).astype(np.int32)], 1)
                # The eye zone is cut out of every region but the lids' own: a blink moves it by
                # several pixels, which the flow's window spreads into the brows and cheeks.
                parts.append(canvas.astype(bool) if au_info(code).area in EYE_AREAS
                             else canvas.astype(bool) & ~eye_zone)
        parts += [eyes["R"], eyes["L"]]
        grid = size // block
        # INTER_AREA by a whole factor is the exact block mean, and far faster than numpy's.
        cover = np.stack([cv2.resize(m.astype(np.float32), (grid, grid), interpolation=cv2.INTER_AREA)
                          for m in parts]).reshape(len(parts), -1)  # (n_parts, G*G)
        total = cover.sum(axis=1, keepdims=True)  # (n_parts, 1)
        self.weights = cover / np.maximum(total, 1e-6)  # rows sum to 1 (0 for an empty part)
        # A part outside the crop (a chin below a turned face's crop) is unmeasured, not still.
        self.empty = total[:, 0] == 0  # (n_parts + 2,)
        hull = cv2.convexHull(np.round(xy_crop).astype(np.int32))
        face = np.zeros((size, size), np.uint8)
        cv2.fillConvexPoly(face, hull, 1)
        self.face_weight = (face.astype(bool) & ~eye_zone).astype(np.float32)  # global-motion fit area

    def scores(self, there: np.ndarray, back: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(n_parts + 2,) return motion per part, the right and left eye zones last, and (2,) the
        eye zones' mean vertical movement in `there` and in `back` (crop px, + down: closing).

        Block vectors are averaged over each part first, so noise cancels before the
        nonlinearity: a faint but coherent movement stays linear in its amplitude.
        """
        pooled_there = self.weights @ there.reshape(-1, 2)  # (n_parts + 2, 2)
        pooled_back = self.weights @ back.reshape(-1, 2)  # (n_parts + 2, 2)
        per_part = _return_motion(pooled_there, pooled_back)  # (n_parts + 2,)
        per_part[self.empty] = np.nan
        return per_part, np.array([pooled_there[-2:, 1].mean(), pooled_back[-2:, 1].mean()])


def _pool(flow: np.ndarray, block: int) -> np.ndarray:
    grid = flow.shape[0] // block
    return cv2.resize(flow, (grid, grid), interpolation=cv2.INTER_AREA)  # (G, G, 2) block means


def _return_motion(there: np.ndarray, back: np.ndarray) -> np.ndarray:
    """How far each vector went and came back: max(0, -a.b) / max(|a|, |b|), over the last axis.

    a = P(t) - P(t - k) ("there"), b = P(t + k) - P(t) ("back"). An expression that peaks at t
    gives b = -a and the value |a|. A slow drift (b = a) gives 0, and so does a movement seen from
    one side only (b = 0: t is k frames after or before it), which a plain |a - b| would echo at
    half size. Dividing by the larger side, not taking a geometric mean, keeps a large blink on
    one side from amplifying the noise on the other.
    """
    dot = (there * back).sum(axis=-1)
    larger = np.maximum(np.linalg.norm(there, axis=-1), np.linalg.norm(back, axis=-1))
    return np.maximum(0.0, -dot) / np.maximum(larger, 1e-6)


def _aligned_frames(frames: Iterable[tuple[int, np.ndarray]], mesh: FaceMesh, config: SignalConfig,
                    fps: float) -> Iterator[tuple[int, np.ndarray | None, np.ndarray | None]]:
    """Yield (frame_idx, rgb, xy_img or None) in order, landmarks interpolated between detections.

    Holds back the frames since the last successful detection (at most `max_gap_s` of video).
    """
    max_gap = max(config.detect_every, int(round(config.max_gap_s * fps)))
    pending: list[tuple[int, np.ndarray]] = []
    last: tuple[int, np.ndarray] | None = None  # (frame_idx, smoothed xy_img) of the last detection
    since_try = 0
    for frame_idx, rgb in frames:
        pending.append((frame_idx, rgb))
        since_try += 1
        if last is not None and since_try < config.detect_every:
            continue
        since_try = 0
        face = mesh.detect(rgb)
        if not face.found:
            if last is None or len(pending) > max_gap:
                # Lost for too long to bridge: the queued frames have no face; try every frame.
                for idx, frame in pending:
                    yield idx, frame, None
                pending.clear()
                last = None
            else:
                since_try = config.detect_every - 1  # retry on the next frame
            continue
        if last is None:
            smoothed = face.xy_img.astype(np.float64)
        else:
            smoothed = config.smoothing * face.xy_img + (1 - config.smoothing) * last[1]
            start_idx, start_xy = last
            span = frame_idx - start_idx
            for idx, frame in pending[:-1]:
                w = (idx - start_idx) / span
                yield idx, frame, (1 - w) * start_xy + w * smoothed
        yield frame_idx, rgb, smoothed
        pending.clear()
        last = (frame_idx, smoothed)
    for idx, frame in pending:
        yield idx, frame, (last[1] if last is not None else None)


def compute_signals(frames: Iterable[tuple[int, np.ndarray]], n_frames: int, fps: float,
                    config: SignalConfig = SignalConfig(), progress: Progress | None = None,
                    should_cancel: ShouldCancel | None = None) -> MotionSignals:
    """One streaming pass over `frames` ((frame_idx, rgb) in order, e.g. `FrameSource.iter_frames()`).

    `progress(done, total)` is called about once per second of video; `should_cancel()` is polled
    as often and raises `core.progress.Cancelled` when it returns True.
    """
    if config.crop_px % config.block_px:
        raise ValueError(f"block_px {config.block_px} must divide crop_px {config.crop_px}")
    k = config.gap_frames(fps)
    steps = max(1, config.macro_steps)
    big_k = steps * k
    parts, part_region = region_parts(tuple(config.regions))
    n_parts = len(parts)
    grid = config.crop_px // config.block_px
    micro = np.full((n_frames, n_parts), np.nan, np.float32)
    macro = np.full((n_frames, n_parts), np.nan, np.float32)
    micro_eye = np.full(n_frames, np.nan, np.float32)
    macro_eye = np.full(n_frames, np.nan, np.float32)
    micro_eye_dy = np.full((n_frames, 2), np.nan, np.float32)
    face_found = np.zeros(n_frames, bool)
    no_motion = np.full((grid, grid, 2), np.nan, np.float32)

    crops: deque[np.ndarray | None] = deque(maxlen=k + 1)
    fields: deque[np.ndarray] = deque(maxlen=max(steps - 1, 1) * k + 1)  # D(t), newest last
    chained: deque[np.ndarray] = deque(maxlen=big_k + 1)  # D_K(t), newest last
    geometry: _Geometry | None = None
    report_every = max(1, int(round(fps)))
    # The crop is aligned, so region geometry in it changes slowly: rebuilt twice a second.
    geometry_every = max(config.detect_every, int(round(fps / 2)))

    def scores(there: np.ndarray, back: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
        if geometry is None:
            return np.full(n_parts, np.nan), np.nan, np.full(2, np.nan)
        values, eye_dy = geometry.scores(there, back)
        return values[:n_parts], np.fmax(values[n_parts], values[n_parts + 1]), eye_dy

    with FaceMesh(static=False, max_faces=1) as mesh:
        for frame_idx, rgb, xy_img in _aligned_frames(frames, mesh, config, fps):
            if frame_idx >= n_frames:
                break
            crop = None
            if xy_img is not None:
                face_found[frame_idx] = True
                img_to_crop = estimate_alignment(xy_img, config.crop_px)
                if geometry is None or frame_idx % geometry_every == 0:
                    geometry = _Geometry(transform_points(img_to_crop, xy_img), config)
                crop = cv2.cvtColor(warp_to_crop(rgb, img_to_crop, config.crop_px), cv2.COLOR_RGB2GRAY)
            field = no_motion
            crops.append(crop)
            if len(crops) == k + 1 and crops[0] is not None and crop is not None:
                flow = dense_flow(crops[0], crop, config.flow_method)  # (S, S, 2)
                flow = remove_global_motion(flow, weight=geometry.face_weight)
                field = _pool(flow, config.block_px)  # (G, G, 2)
            fields.append(field)
            if len(fields) == fields.maxlen:
                chained.append(sum(fields[-1 - j * k] for j in range(steps)))
            else:
                chained.append(no_motion)
            if len(fields) > k:
                at = frame_idx - k
                micro[at], micro_eye[at], micro_eye_dy[at] = scores(fields[-1 - k], fields[-1])
            if len(chained) == big_k + 1:
                at = frame_idx - big_k
                macro[at], macro_eye[at], _ = scores(chained[0], chained[-1])
            if (frame_idx + 1) % report_every == 0:
                check_cancel(should_cancel, f"spotting cancelled at frame {frame_idx}")
                if progress is not None:
                    progress(frame_idx + 1, n_frames)
        if len(chained) == big_k + 1:
            # The last K frames have no t + K. Compare them with the last multiple of k instead, so
            # a macro-expression that ends shortly before the video does is still measured.
            last = frame_idx
            for at in range(last - big_k + 1, last - k + 1):
                back = sum(fields[-1 - (last - at - i * k)] for i in range(1, (last - at) // k + 1))
                macro[at], macro_eye[at], _ = scores(chained[at - last + big_k], back)
    if progress is not None:
        progress(n_frames, n_frames)
    return MotionSignals(fps=fps, n_frames=n_frames, regions=tuple(config.regions), parts=parts,
                         part_region=part_region, gap_frames=k,
                         macro_gap_frames=big_k, face_found=face_found, micro=micro,
                         micro_eye=micro_eye, macro=macro, macro_eye=macro_eye,
                         micro_eye_dy=micro_eye_dy,
                         crop_px=config.crop_px)
