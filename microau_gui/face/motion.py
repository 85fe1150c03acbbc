"""Facial motion between two aligned crops: dense optical flow, global-motion removal, flow images
and per-region flow features.

Owns: `FLOW_METHODS`, `dense_flow`, `remove_global_motion`, `flow_image`, `region_flow_features`. May import core,
numpy and OpenCV. Used by the model's flow input modes (training and inference), the flow-SVM
baseline, the spotter and the synthetic generator's realism test, so all of them measure motion
the same way.

Flow methods (`FLOW_METHODS`; which one a checkpoint's pairs used is in its card, see
`pairs.samples.PrepSettings.flow_method`):
- "farneback": OpenCV's polynomial-expansion flow with the parameters below; 24-32 ms per
  224 px pair on the AVX2 development machine. What every checkpoint before Dec 2026 used.
- "dis": OpenCV's DIS flow (Kroeger et al. 2016, dense inverse search), preset "ultrafast";
  0.4-0.5 ms per 224 px pair on the same machine, 0.10 px mean difference from Farneback.
  Whether it keeps the F1 is measured by the `flow` study (`experiment run flow`).
- "farneback-fast": Farneback with one iteration per pyramid level instead of four, the same
  pyramid, window and polynomials. What the dense-trace student uses (`training.distill`): on
  the onset -> apex pairs of 10 synthetic clips (seed 777), aligned at 224 px and compared at
  the model's 112 px, its flow correlates 0.992 with Farneback's (0.02 px mean difference)
  at 5.9 against 13.5 ms per pair, where DIS ultrafast correlates 0.60 and DIS medium 0.73
  (2-core AMD EPYC, AVX2). A student fed DIS flow disagreed with its Farneback-fed teacher on
  whole AUs (mean per-AU F1 0.69 against 0.81 on held-out subject 03), because it has to
  learn the teacher's verdict from a different measurement. Its pairs are masked to the face
  (`FACE_ONLY_FLOW_METHODS`, see `pairs.samples`).
- "dis-fine": the same DIS patches refined down to full resolution (finest scale 0, where the
  preset stops at a quarter), side by side (patch stride 8 instead of 4). The spotter's default
  (`spotting.signals`): on its 128 px crops "dis" loses the sub-pixel micro-movements (micro F1
  0.47 against Farneback's 0.94), "dis-fine" keeps them (0.94). 0.7-0.8 ms per 128 px pair
  against Farneback's 4.0-4.5, and 2.0 ms per 224 px pair against 13, measured side by side on
  the shared 2-core AMD EPYC (AVX2, no AVX-512), Dec 2026 (issue #18).
"""

from __future__ import annotations

import functools
import threading

import cv2
import numpy as np

from microau_gui.face.regions import au_polygons

# Farneback parameters for sub-pixel facial motion on 100-250 px crops: a small window keeps
# neighbouring regions (brow vs lid) apart, five-pixel polynomials resolve ~0.3 px shifts.
_FARNEBACK = dict(pyr_scale=0.5, levels=3, winsize=9, iterations=4, poly_n=5, poly_sigma=1.1,
                  flags=0)
_FARNEBACK_FAST = dict(_FARNEBACK, iterations=1)
# Flow images saturate at this fraction of the crop side: about 4.5 px on a 224 px crop, above
# the largest micro-movement (3 px) and below a macro-expression.
FLOW_FULL_SCALE_FRAC = 0.02


def _grey(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) if rgb.ndim == 3 else rgb


FLOW_METHODS: tuple[str, ...] = ("farneback", "dis", "farneback-fast", "dis-fine")
# Methods whose pairs keep motion only inside the face's landmark hull (`pairs.samples.
# measure_flow`): with one iteration per level, Farneback can diverge in textureless background.
FACE_ONLY_FLOW_METHODS: frozenset[str] = frozenset({"farneback-fast"})
# One DIS object per thread and method: it keeps state between calls and is not thread-safe.
_DIS = threading.local()


def _dis(method: str):
    flows = getattr(_DIS, "flows", None)
    if flows is None:
        flows = _DIS.flows = {}
    if method not in flows:
        flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)
        if method == "dis-fine":
            # Refined down to full resolution (the preset stops at a quarter): a micro-movement of
            # 0.3-2 px on the spotter's 128 px crop is lost at 32 px. Patches side by side (stride
            # 8 for 4) pay for most of it. Chosen on tuning videos only (see the docstring).
            flow.setFinestScale(0)
            flow.setPatchStride(8)
        flows[method] = flow
    return flows[method]


def dense_flow(reference: np.ndarray, target: np.ndarray, method: str = "farneback") -> np.ndarray:
    """Dense flow `(H, W, 2)` float32 in pixels (where each reference pixel moved to), by
    `method` (one of `FLOW_METHODS`)."""
    if method == "farneback":
        return cv2.calcOpticalFlowFarneback(_grey(reference), _grey(target), None, **_FARNEBACK)
    if method == "farneback-fast":
        return cv2.calcOpticalFlowFarneback(_grey(reference), _grey(target), None, **_FARNEBACK_FAST)
    if method in ("dis", "dis-fine"):
        return _dis(method).calc(_grey(reference), _grey(target), None)
    raise ValueError(f"unknown flow method {method!r}; use one of {', '.join(FLOW_METHODS)}")


@functools.lru_cache(maxsize=8)
def _grids(height: int, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """`remove_global_motion`'s fixed grids for one flow size, built once (the spotter calls it
    every frame at one size): the sparse fit points' rows and columns, and every pixel's x and y
    relative to the centre (float32). Read-only, as they are shared between calls."""
    step = max(1, min(height, width) // 32)
    ys, xs = np.mgrid[step // 2:height:step, step // 2:width:step]
    grid_y, grid_x = np.mgrid[0:height, 0:width].astype(np.float32)
    grid_x -= width / 2
    grid_y -= height / 2
    grids = (ys.ravel(), xs.ravel(), grid_x, grid_y)
    for grid in grids:
        grid.setflags(write=False)
    return grids


def remove_global_motion(flow: np.ndarray, keep_fraction: float = 0.7,
                         weight: np.ndarray | None = None) -> np.ndarray:
    """Subtract the best similarity motion (head shift, roll, zoom) from `flow` (H, W, 2).

    Fitted by least squares on a sparse grid, then refitted on the `keep_fraction` of points it
    explains best, so local AU movements do not bias it. `weight` (H, W) restricts the fit,
    e.g. to the face.
    """
    height, width = flow.shape[:2]
    ys, xs, grid_x, grid_y = _grids(height, width)
    if weight is not None:
        keep = weight[ys, xs] > 0
        ys, xs = ys[keep], xs[keep]
    u, v = flow[ys, xs, 0].astype(np.float64), flow[ys, xs, 1].astype(np.float64)
    cx, cy = width / 2, height / 2
    x, y = xs - cx, ys - cy
    # Similarity displacement: u = a*x - b*y + tx, v = b*x + a*y + ty.
    design = np.concatenate([
        np.stack([x, -y, np.ones_like(x), np.zeros_like(x)], 1),
        np.stack([y, x, np.zeros_like(x), np.ones_like(x)], 1),
    ])
    target = np.concatenate([u, v])
    params = np.linalg.lstsq(design, target, rcond=None)[0]
    residual = np.abs(design @ params - target)
    residual = residual[: len(u)] + residual[len(u):]
    inliers = residual <= np.quantile(residual, keep_fraction)
    inliers2 = np.concatenate([inliers, inliers])
    params = np.linalg.lstsq(design[inliers2], target[inliers2], rcond=None)[0]
    a, b, tx, ty = params
    out = flow.copy()
    out[..., 0] -= (a * grid_x - b * grid_y + tx).astype(np.float32)
    out[..., 1] -= (b * grid_x + a * grid_y + ty).astype(np.float32)
    return out


def flow_image(flow: np.ndarray) -> np.ndarray:
    """Render flow `(H, W, 2)` as a uint8 RGB image: R = u, G = v (128 = still), B = magnitude."""
    full_scale = FLOW_FULL_SCALE_FRAC * flow.shape[1]
    u = 128 + 127 * np.clip(flow[..., 0] / full_scale, -1, 1)
    v = 128 + 127 * np.clip(flow[..., 1] / full_scale, -1, 1)
    mag = 255 * np.clip(np.linalg.norm(flow, axis=2) / full_scale, 0, 1)
    return np.stack([u, v, mag], axis=2).astype(np.uint8)


def region_pixel_masks(xy_crop: np.ndarray, size: int, vocab) -> np.ndarray:
    """Bool `(n_au, size, size)` pixel masks of each AU's region (both halves when lateral)."""
    masks = np.zeros((len(vocab), size, size), np.uint8)
    for k, code in enumerate(vocab):
        for polygon in au_polygons(code, xy_crop).values():
            cv2.fillPoly(masks[k], [np.round(polygon).astype(np.int32)], 1)
    return masks.astype(bool)


REGION_FEATURES = ("mean_u", "mean_v", "mean_mag", "p90_mag")


def region_flow_features(flow: np.ndarray, pixel_masks: np.ndarray) -> np.ndarray:
    """`(n_au, 4)` float32 per region: mean u, mean v, mean magnitude, 90th-percentile magnitude.

    Flow is in crop pixels; mean u/v keep the direction (brow up vs down), magnitudes the amount.
    """
    mag = np.linalg.norm(flow, axis=2)
    out = np.zeros((len(pixel_masks), len(REGION_FEATURES)), np.float32)
    for k, mask in enumerate(pixel_masks):
        if not mask.any():
            continue
        region_mag = mag[mask]
        out[k] = (flow[..., 0][mask].mean(), flow[..., 1][mask].mean(), region_mag.mean(),
                  np.percentile(region_mag, 90))
    return out
