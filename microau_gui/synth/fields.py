"""Dense displacement fields from the AU motion tables, and the time course of an expression.

Owns: `LocalField`, `au_field`, `micro_profile`, `macro_profile`, `blink_profile`. May import
core and face; numpy and OpenCV.

A field is built from landmark displacements by normalised Gaussian interpolation with static
anchors: every moving landmark i at p_i with displacement v_i, and every anchor j, contributes
a Gaussian g(x) = exp(-|x - p|^2 / 2 sigma^2), and

    d(x) = sum_i g_i(x) v_i / (sum_i g_i(x) + sum_j g_j(x) + exp(-sum_i g_i(x)))

Near a cluster of movers the denominator is their total weight, so a dense cluster moves as
much as a lone landmark; far from every mover it tends to 1 and the motion fades like a
Gaussian; near an anchor it grows and holds the skin still. The field is smooth, so
`cv2.remap` renders it without tearing. Fields are computed only inside the movers' bounding
box plus three sigma (`LocalField`), which keeps long videos light. The field fades to zero at
the landmark hull: the background never moves with the skin, and neither does the silhouette of
a turned face (camera.png), where a moving edge against the background would be far more
visible than the skin motion itself.

Time courses are values in [0, 1] per frame: a smooth sin^2 rise from the onset frame (0) to
the apex frame (exactly 1, the strict maximum) and a cos^2 fall to the offset frame (0).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from microau_gui.synth.au_motion import GLOBAL_ANCHORS, AUMotion, Close, is_midline, mirror_landmark
from microau_gui.synth.faces import FaceFrame

_SUPPORT_SIGMAS = 3.0  # a Gaussian is cut at this many sigma (weight 0.011)
_EDGE_SOFTNESS_U = 0.05  # face units over which motion fades out at the edge of the face


@dataclass(frozen=True, eq=False)
class LocalField:
    """A displacement field that is zero outside a window of the image."""

    y0: int  # window top, image px
    x0: int  # window left, image px
    uv: np.ndarray  # (h, w, 2) float32 displacement in image px: where the skin at x moves

    @property
    def peak_px(self) -> float:
        return float(np.sqrt((self.uv ** 2).sum(axis=2)).max()) if self.uv.size else 0.0

    def scaled(self, factor: float) -> "LocalField":
        return LocalField(self.y0, self.x0, (self.uv * np.float32(factor)).astype(np.float32))

    def add_into(self, out: np.ndarray, weight: float) -> None:
        """out[window] += weight * uv, clipped to `out` (H, W, 2)."""
        h, w = self.uv.shape[:2]
        y1, x1 = min(out.shape[0], self.y0 + h), min(out.shape[1], self.x0 + w)
        if y1 <= self.y0 or x1 <= self.x0:
            return
        out[self.y0:y1, self.x0:x1] += np.float32(weight) * self.uv[:y1 - self.y0, :x1 - self.x0]


def _rows_for_side(motion: AUMotion, side: str):
    """(landmark, row, side_of_row, weight) for the requested code side: B, R or L."""
    rows = []
    for row in motion.moves:
        if is_midline(row.landmark):
            # A unilateral action pulls the midline only half as far.
            rows.append((row.landmark, row, "B", 1.0 if side == "B" else 0.5))
            continue
        if side in ("B", "R"):
            rows.append((row.landmark, row, "R", 1.0))
        if side in ("B", "L"):
            rows.append((mirror_landmark(row.landmark), row, "L", 1.0))
    return rows


def _displacements(motion: AUMotion, xy: np.ndarray, frame: FaceFrame, side: str):
    points, vectors = [], []
    for landmark, row, row_side, weight in _rows_for_side(motion, side):
        if isinstance(row, Close):
            onto = row.onto if row_side != "L" else mirror_landmark(row.onto)
            vector = row.fraction * (xy[onto] - xy[landmark])
        else:
            vector = frame.vector_px(row.out, row.up, row_side)
        points.append(xy[landmark])
        vectors.append(weight * vector)
    return np.asarray(points, np.float64), np.asarray(vectors, np.float64)


def au_field(motion: AUMotion, xy_img: np.ndarray, frame: FaceFrame, side: str,
             shape: tuple[int, int]) -> LocalField:
    """The field of one AU on one face, in image px, for side B (both), R or L.

    Relative models are scaled so the peak displacement is 1 px (multiply by the amplitude);
    absolute models (eye closure) are returned at full intensity.
    """
    xy = np.asarray(xy_img, np.float64)
    points, vectors = _displacements(motion, xy, frame, side)
    moving = set(landmark for landmark, *_ in _rows_for_side(motion, side))
    anchor_ids = set(GLOBAL_ANCHORS) | set(motion.anchors)
    anchor_ids |= {mirror_landmark(i) for i in anchor_ids}
    anchors = xy[sorted(anchor_ids - moving)]

    sigma = motion.sigma_u * frame.unit_px
    reach = _SUPPORT_SIGMAS * sigma
    height, width = shape
    x0 = int(max(0, np.floor(points[:, 0].min() - reach)))
    y0 = int(max(0, np.floor(points[:, 1].min() - reach)))
    x1 = int(min(width, np.ceil(points[:, 0].max() + reach) + 1))
    y1 = int(min(height, np.ceil(points[:, 1].max() + reach) + 1))
    if x1 <= x0 or y1 <= y0:
        return LocalField(0, 0, np.zeros((0, 0, 2), np.float32))
    ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    inv_two_sigma2 = np.float32(1.0 / (2.0 * sigma * sigma))

    def gauss(point) -> np.ndarray:
        return np.exp(-((xs - np.float32(point[0])) ** 2 + (ys - np.float32(point[1])) ** 2)
                      * inv_two_sigma2)

    numerator = np.zeros(xs.shape + (2,), np.float32)
    weight_sum = np.zeros(xs.shape, np.float32)
    for point, vector in zip(points, vectors):
        g = gauss(point)
        weight_sum += g
        numerator += g[..., None] * vector.astype(np.float32)
    anchor_sum = np.zeros(xs.shape, np.float32)
    for point in anchors:
        if x0 - reach <= point[0] <= x1 + reach and y0 - reach <= point[1] <= y1 + reach:
            anchor_sum += gauss(point)
    uv = numerator / (weight_sum + anchor_sum + np.exp(-weight_sum))[..., None]  # (h, w, 2)
    uv *= _skin_weight(xy, frame.unit_px, x0, y0, x1 - x0, y1 - y0)[..., None]
    field = LocalField(y0, x0, uv.astype(np.float32))
    if motion.absolute:
        return field
    peak = field.peak_px
    return field.scaled(1.0 / peak) if peak > 0 else field


def _skin_weight(xy: np.ndarray, unit_px: float, x0: int, y0: int, width: int,
                 height: int) -> np.ndarray:
    """(height, width) weight that is 1 on the face and fades to 0 at the landmark hull, so the
    background, and the silhouette of a turned face, never move with the skin."""
    soft_px = _EDGE_SOFTNESS_U * unit_px
    hull = cv2.convexHull(xy.astype(np.float32)).reshape(-1, 2) - np.array([x0, y0])
    mask = np.zeros((height, width), np.float32)
    cv2.fillPoly(mask, [np.round(hull).astype(np.int32)], 1.0)
    radius = max(1, int(round(soft_px)))
    mask = cv2.erode(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1,) * 2))
    return cv2.GaussianBlur(mask, (0, 0), soft_px)


def micro_profile(onset: int, apex: int, offset: int) -> np.ndarray:
    """Intensity per frame from `onset` to `offset` inclusive: 0 at onset, 1 at apex, 0 at offset."""
    if not onset < apex < offset:
        raise ValueError(f"need onset < apex < offset, got {onset}, {apex}, {offset}")
    t = np.arange(onset, offset + 1, dtype=np.float64)
    rise = np.sin(0.5 * np.pi * (t - onset) / (apex - onset)) ** 2
    fall = np.cos(0.5 * np.pi * (t - apex) / (offset - apex)) ** 2
    return np.where(t <= apex, rise, fall)


def macro_profile(onset: int, apex: int, hold_end: int, offset: int,
                  sag: float = 0.06) -> np.ndarray:
    """A macro-expression: rise to the apex, a hold that sags by `sag` (so the apex stays the
    strict maximum), then a fall to zero at the offset."""
    if not onset < apex <= hold_end < offset:
        raise ValueError(f"need onset < apex <= hold_end < offset, got {onset}, {apex}, "
                         f"{hold_end}, {offset}")
    t = np.arange(onset, offset + 1, dtype=np.float64)
    rise = np.sin(0.5 * np.pi * (t - onset) / (apex - onset)) ** 2
    hold = 1.0 - sag * (t - apex) / max(1, hold_end - apex)
    end_level = 1.0 - sag if hold_end > apex else 1.0
    fall = end_level * np.cos(0.5 * np.pi * (t - hold_end) / (offset - hold_end)) ** 2
    return np.where(t <= apex, rise, np.where(t <= hold_end, hold, fall))


def blink_profile(n_close: int, n_open: int) -> np.ndarray:
    """Eyelid closure per frame for a blink: a fast close, then a slower reopening."""
    close = np.sin(0.5 * np.pi * np.arange(n_close + 1) / max(1, n_close)) ** 2
    reopen = np.cos(0.5 * np.pi * np.arange(1, n_open + 1) / max(1, n_open)) ** 2
    return np.concatenate([close, reopen])
