"""Pure numpy helpers that turn a FramePrediction into pixels the views draw.

Owns: `TOP_AU`, `heatmap_index`, `colour_lut`, `smooth_heatmap`, `heatmap_rgba`, `region_fill_alpha`, `aligned_crop`, `grid_heatmap_rgba`,
`probability_for_region`. May import numpy, OpenCV, pyqtgraph's colour maps and core; no
widgets, no torch. Everything here is computed once per prediction, never while painting.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np
import pyqtgraph as pg

HEATMAP_COLOURMAP = "inferno"  # perceptually uniform; dark = no attention, so the face shows
TOP_AU = "top"  # heatmap choice: the frame's most probable AU (neither a code nor the max)


def heatmap_index(prediction, choice: str | None) -> int | None:
    """Row of `prediction.vocab` whose heatmap to draw; None draws the maximum over AUs.

    choice: an AU code (one missing from the vocabulary falls back to the most probable AU),
    None for the maximum, or TOP_AU for the most probable AU of this prediction.
    """
    if choice is None:
        return None
    if choice in prediction.vocab:
        return prediction.vocab.index(choice)
    if prediction.probs is None or not len(prediction.probs):
        return None
    return int(np.argmax(prediction.probs))


@lru_cache(maxsize=4)
def colour_lut(name: str = HEATMAP_COLOURMAP) -> np.ndarray:
    """(256, 3) uint8 lookup table of a pyqtgraph colour map."""
    return np.asarray(pg.colormap.get(name).getLookupTable(nPts=256, alpha=False), dtype=np.uint8)


def select_heatmap(heatmaps: np.ndarray, au_index: int | None) -> np.ndarray:
    """(h, w) uint8: one AU's PTA heatmap, or the maximum over AUs when `au_index` is None."""
    if au_index is None:
        return heatmaps.max(axis=0)
    return heatmaps[au_index]


def smooth_heatmap(heat: np.ndarray, cell_px: float) -> np.ndarray:
    """(h, w) uint8 heatmap on the image, blurred by half a patch (Gaussian sigma = cell_px / 2).

    The PTA map is a coarse token grid (7x7 for the tiny model) interpolated between patch
    centres; region masks leave hard zero steps between neighbouring patches, which read as
    blocks on a large frame. Half a patch of blur removes the steps and keeps the peak where it
    was; the result is stretched back to its own maximum.
    """
    if heat.size == 0 or cell_px <= 1:
        return heat
    blurred = cv2.GaussianBlur(heat.astype(np.float32), (0, 0), sigmaX=cell_px / 2)
    peak = float(blurred.max())
    if peak <= 0:
        return heat
    return (blurred * (float(heat.max()) / peak)).clip(0, 255).astype(np.uint8)


def heatmap_rgba(heat: np.ndarray, opacity: float, normalise: bool = True) -> np.ndarray:
    """(h, w) uint8 attention -> (h, w, 4) uint8 RGBA; alpha grows with attention.

    normalise stretches the map to its own maximum: PTA attention is a distribution over patches,
    so its raw peak depends on the region's size, and a coder compares where, not how much.
    """
    heat = np.asarray(heat)
    if normalise and heat.size and heat.max() > 0:
        heat = (heat.astype(np.float32) * (255.0 / float(heat.max()))).astype(np.uint8)
    rgba = np.empty(heat.shape + (4,), dtype=np.uint8)  # (h, w, 4)
    rgba[..., :3] = colour_lut()[heat]
    # sqrt ramp: weak attention stays faintly visible, strong attention covers the skin.
    alpha = np.sqrt(heat.astype(np.float32) / 255.0) * (255.0 * float(opacity))
    rgba[..., 3] = alpha.clip(0, 255).astype(np.uint8)
    return rgba


def region_fill_alpha(probability: float) -> int:
    """Fill alpha (0-255) of an AU region: transparent when unlikely, clearly tinted when likely."""
    p = float(np.clip(probability, 0.0, 1.0))
    return int(round(12 + 150 * p))


def region_au(key: str) -> str:
    """"AU12/R" -> "AU12"; "AU9" -> "AU9"."""
    return key.split("/", 1)[0]


def aligned_crop(rgb: np.ndarray, crop_to_img: np.ndarray, crop_size_px: int,
                 out_size_px: int) -> np.ndarray:
    """The stabilised face crop: the frame warped into the model's aligned crop, resized.

    crop_to_img maps model-crop px (0..crop_size_px) to image px; the output is out_size_px
    square so the crop view has the same sharpness whatever the model's input size.
    """
    scale = crop_size_px / float(out_size_px)
    out_to_crop = np.array([[scale, 0, 0], [0, scale, 0], [0, 0, 1]], dtype=np.float64)
    crop_to_img_3 = np.vstack([np.asarray(crop_to_img, dtype=np.float64), [0, 0, 1]])
    out_to_img = (crop_to_img_3 @ out_to_crop)[:2]  # (2, 3)
    return cv2.warpAffine(np.ascontiguousarray(rgb), out_to_img, (out_size_px, out_size_px),
                          flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_CONSTANT)


def grid_heatmap(pta_grid: np.ndarray, au_index: int | None, out_size_px: int) -> np.ndarray:
    """(out, out) uint8: the PTA patch grid of one AU (or the max over AUs) upsampled smoothly."""
    grid = pta_grid.max(axis=0) if au_index is None else pta_grid[au_index]  # (g, g)
    peak = float(grid.max())
    scaled = (grid / peak * 255.0) if peak > 0 else np.zeros_like(grid)
    return cv2.resize(scaled.astype(np.float32), (out_size_px, out_size_px),
                      interpolation=cv2.INTER_CUBIC).clip(0, 255).astype(np.uint8)
