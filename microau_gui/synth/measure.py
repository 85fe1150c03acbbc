"""How much a synthetic clip really moves, and where: the generator's realism measurement.

Owns: `RegionMotion`, `measure_motion`. May import core and face; numpy and OpenCV. Used by
tests/test_synth.py only (the benchmark does not call it). The motion itself is measured exactly
as the rest of the application measures it (face.motion: Farneback flow between two crops cut
with ONE transform, head motion removed by a similarity fit on the face).

The crop is face.align's (a turned head such as camera.png's is scaled by its eye-to-nose drop,
so its mouth stays in the crop). Flow magnitudes are reported in pixels of a 224 px face
whatever the crop size.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from microau_gui.face.align import IOD_FRAC, align_face
from microau_gui.face.motion import dense_flow, region_pixel_masks, remove_global_motion


@dataclass(frozen=True, eq=False)
class RegionMotion:
    """Flow between two frames, summarised per AU region (magnitudes in px of a 224 px face)."""

    vocab: tuple[str, ...]  # AU codes of `region_mean_px`
    region_mean_px: dict  # AU code -> mean flow magnitude inside its region
    flow_px: np.ndarray  # (size, size, 2) flow u, v per crop pixel (x right, y down), @224
    magnitude_px: np.ndarray  # (size, size) flow magnitude per crop pixel, @224
    xy_crop: np.ndarray  # (478, 2) reference landmarks in crop px
    region_masks: np.ndarray  # (n_au, size, size) bool, clipped to the face
    face_mask: np.ndarray  # (size, size) bool, inside the landmark hull
    margin_px: int  # band around a region left out of "outside" (the motion's soft edge)

    def _inside(self, codes: Sequence[str]) -> np.ndarray:
        inside = np.zeros(self.face_mask.shape, bool)
        for code in codes:
            inside |= self.region_masks[self.vocab.index(code)]
        return inside

    def concentration(self, codes: Sequence[str]) -> float:
        """Mean flow inside the regions of `codes` over the mean flow on the rest of the face."""
        inside = self._inside(codes)
        kernel = np.ones((2 * self.margin_px + 1,) * 2, np.uint8)
        outside = self.face_mask & ~(cv2.dilate(inside.astype(np.uint8), kernel) > 0)
        if not inside.any() or not outside.any():
            return float("nan")
        return float(self.magnitude_px[inside].mean() / max(self.magnitude_px[outside].mean(), 1e-6))

    def mean_flow_px(self, polygon_crop: np.ndarray) -> np.ndarray:
        """(2,) mean flow (u right, v down) inside a polygon given in crop px."""
        mask = np.zeros(self.face_mask.shape, np.uint8)
        cv2.fillPoly(mask, [np.round(polygon_crop).astype(np.int32)], 1)
        return self.flow_px[mask > 0].mean(axis=0)

    def peak_px(self, codes: Sequence[str] | None = None) -> float:
        """95th percentile of the flow magnitude inside `codes`' regions (the whole face if None)."""
        where = self.face_mask if not codes else self._inside(codes)
        return float(np.percentile(self.magnitude_px[where], 95))


def measure_motion(reference_rgb: np.ndarray, target_rgb: np.ndarray, xy_img: np.ndarray,
                   vocab: Sequence[str], size: int = 224, margin_u: float = 0.06) -> RegionMotion:
    """Measure the motion from `reference_rgb` to `target_rgb` (same camera, `xy_img` the
    reference's 478 landmarks) in a `size` px face crop."""
    reference = align_face(reference_rgb, xy_img, size)
    target = align_face(target_rgb, xy_img, size, reference.img_to_crop)
    face_mask = np.zeros((size, size), np.uint8)
    hull = cv2.convexHull(reference.xy_crop.astype(np.float32)).astype(np.int32)
    cv2.fillPoly(face_mask, [hull.reshape(-1, 2)], 1)
    flow = remove_global_motion(dense_flow(reference.crop, target.crop), weight=face_mask)
    flow = flow * np.float32(224.0 / size)
    magnitude = np.sqrt((flow ** 2).sum(axis=2))  # (size, size)
    face = face_mask > 0
    masks = region_pixel_masks(reference.xy_crop, size, list(vocab)) & face[None]
    means = {code: float(magnitude[m].mean()) if m.any() else 0.0 for code, m in zip(vocab, masks)}
    margin = max(1, int(round(margin_u * IOD_FRAC * size)))
    return RegionMotion(tuple(vocab), means, flow, magnitude, reference.xy_crop, masks, face,
                        margin)
