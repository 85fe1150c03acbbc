"""Static drawings of landmarks and AU regions (for `python main.py face --draw` and reports).

Owns: `draw_regions`. May import core, numpy and OpenCV. The GUI draws its own live overlays.
"""

from __future__ import annotations

import cv2
import numpy as np

from microau_gui.core.au import au_info
from microau_gui.face.regions import au_polygons

_OUTPUT_SIDE_PX = 760  # faces are often ~100 px in a photo: zoom so labels stay readable


def draw_regions(rgb: np.ndarray, xy_img: np.ndarray, vocab, fill_alpha: float = 0.28,
                 margin: float = 0.3) -> np.ndarray:
    """RGB picture of the face area with every AU region of `vocab` in its colour and label.

    The face box (plus `margin` of its size) is cut out and scaled so its longer side is about
    760 px, then the regions are filled translucently, outlined, and labelled at their centroids;
    landmarks are drawn as small dots.
    """
    height, width = rgb.shape[:2]
    x0, y0 = xy_img.min(0)
    x1, y1 = xy_img.max(0)
    pad = margin * max(x1 - x0, y1 - y0)
    x0, y0 = int(max(0, x0 - pad)), int(max(0, y0 - pad))
    x1, y1 = int(min(width, x1 + pad)), int(min(height, y1 + pad))
    scale = _OUTPUT_SIDE_PX / max(x1 - x0, y1 - y0)
    canvas = cv2.resize(rgb[y0:y1, x0:x1], None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    canvas = np.ascontiguousarray(canvas)
    xy = (xy_img - np.array([x0, y0])) * scale  # (478, 2) canvas pixels

    overlay = canvas.copy()
    polygons = [(code, side, poly) for code in vocab for side, poly in au_polygons(code, xy).items()]
    for code, _, poly in polygons:
        cv2.fillPoly(overlay, [np.round(poly).astype(np.int32)], au_info(code).colour)
    canvas = cv2.addWeighted(overlay, fill_alpha, canvas, 1 - fill_alpha, 0)
    for code, _, poly in polygons:
        cv2.polylines(canvas, [np.round(poly).astype(np.int32)], True, au_info(code).colour, 2,
                      cv2.LINE_AA)
    for x, y in np.round(xy).astype(int):
        cv2.circle(canvas, (int(x), int(y)), 1, (235, 235, 235), -1, cv2.LINE_AA)
    placed: list[tuple[int, int, int, int]] = []
    for code, side, poly in polygons:
        label = code if side == "B" else f"{side}{code[2:]}"
        _label(canvas, label, poly.mean(0), au_info(code).colour, placed)
    return canvas


def _label(canvas: np.ndarray, text: str, centre: np.ndarray, colour, placed: list) -> None:
    """Draw `text` centred near `centre`, nudged down until it overlaps no earlier label."""
    font, font_scale, thickness = cv2.FONT_HERSHEY_SIMPLEX, 0.45, 1
    (w, h), _ = cv2.getTextSize(text, font, font_scale, thickness)
    x, y = int(centre[0] - w / 2), int(centre[1] + h / 2)
    while any(x < bx1 and x + w > bx0 and y - h < by1 and y > by0 for bx0, by0, bx1, by1 in placed):
        y += h + 3
    placed.append((x, y - h, x + w, y))
    org = (x, y)
    cv2.putText(canvas, text, org, font, font_scale, (0, 0, 0), thickness + 2, cv2.LINE_AA)
    cv2.putText(canvas, text, org, font, font_scale, tuple(int(c) for c in colour), thickness,
                cv2.LINE_AA)
