"""AU regions: landmark polygons per facial area, in any coordinate space, and patch-grid masks.

Owns: the area polygons (MediaPipe Face Mesh indices), the left/right mirror table of the indices
they use, `au_polygons`, `region_polygons` and `region_masks`. May import core, numpy and OpenCV.

Each catalogue AU names an area (`core.au.AUInfo.area`). Lateral areas are written once for the
subject's right half; the left half is the same polygon through `MIRROR`. The polygons follow the
muscle's visible action (FACS manual), e.g. AU1 covers the forehead above the inner half of each
brow, AU6 the infraorbital cheek and crow's-feet corner, AU12 the lip corner and the cheek above
and lateral to it. A polygon is a list of landmark indices in drawing order.

Masks: the union of an AU's polygons is rasterised on the aligned crop and a patch of the ViT grid
belongs to the AU when the region covers at least `min_cover` of it. Every AU keeps at least the
patch it covers most, so PTA always has somewhere to look.
"""

from __future__ import annotations

import cv2
import numpy as np

from microau_gui.core.au import au_info

# Subject's right half for lateral areas; the whole polygon for midline areas.
AREA_POLYGONS: dict[str, tuple[int, ...]] = {
    "inner_brow": (9, 107, 66, 105, 104, 69, 108, 151),
    "outer_brow": (105, 52, 53, 46, 70, 71, 21, 54, 103, 104),
    "glabella": (168, 221, 55, 65, 66, 107, 9, 8),
    "upper_lid": (33, 246, 161, 160, 159, 158, 157, 173, 133, 190, 56, 28, 27, 29, 30, 247),
    "lower_lid": (33, 7, 163, 144, 145, 153, 154, 155, 133, 243, 112, 26, 22, 23, 24, 110, 25, 130),
    "eye": (33, 246, 161, 160, 159, 158, 157, 173, 133, 155, 154, 153, 145, 144, 163, 7),
    "cheek": (143, 31, 228, 229, 230, 231, 120, 100, 101, 50, 123, 116),
    "nose": (168, 417, 465, 412, 399, 456, 248, 195, 3, 236, 174, 188, 245, 193),
    "nostril": (4, 45, 220, 115, 48, 64, 98, 97, 2, 326, 327, 294, 278, 344, 440, 275),
    "nasolabial": (49, 64, 98, 165, 92, 216, 206, 203),
    "upper_lip": (164, 167, 165, 92, 186, 185, 40, 39, 37, 0),
    "lip_corner": (61, 185, 92, 206, 207, 214, 202, 43, 146),
    "dimple": (61, 185, 186, 216, 212, 57, 43, 146),
    "lip_stretch": (61, 185, 186, 216, 214, 210, 202, 43, 146),
    "lip_corner_low": (61, 57, 212, 202, 210, 204, 106, 91, 146),
    "lower_lip": (14, 87, 178, 88, 95, 78, 61, 146, 91, 106, 182, 83, 18, 17),
    "lips": (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 375, 321, 405, 314, 17, 84, 181,
             91, 146),
    "chin": (17, 84, 182, 194, 32, 140, 171, 175, 396, 369, 262, 418, 406, 314),
    "jaw": (61, 57, 212, 202, 210, 169, 150, 149, 176, 148, 152, 377, 400, 378, 379, 394, 430,
            422, 432, 287, 291, 375, 321, 405, 314, 17, 84, 181, 91, 146),
}
# Areas coded per side (L/R). Midline polygons above are already symmetric.
LATERAL_AREAS = frozenset({
    "inner_brow", "outer_brow", "glabella", "upper_lid", "lower_lid", "eye", "cheek",
    "nasolabial", "upper_lip", "lip_corner", "dimple", "lip_stretch", "lip_corner_low",
    "lower_lip",
})

# Subject's right -> left index for every lateral landmark used above (midline points map to
# themselves). tests/test_face.py checks the table against real detections of mirrored photos.
_MIRROR_PAIRS = (
    (107, 336), (66, 296), (105, 334), (104, 333), (69, 299), (108, 337), (52, 282), (53, 283),
    (46, 276), (70, 300), (71, 301), (21, 251), (54, 284), (103, 332), (221, 441), (55, 285),
    (65, 295), (33, 263), (246, 466), (161, 388), (160, 387), (159, 386), (158, 385), (157, 384),
    (173, 398), (133, 362), (190, 414), (56, 286), (28, 258), (27, 257), (29, 259), (30, 260),
    (247, 467), (143, 372), (31, 261), (228, 448), (229, 449), (230, 450), (231, 451), (120, 349),
    (100, 329), (101, 330), (50, 280), (123, 352), (116, 345), (7, 249), (163, 390), (144, 373),
    (145, 374), (153, 380), (154, 381), (155, 382), (243, 463), (112, 341), (26, 256), (22, 252),
    (23, 253), (24, 254), (110, 339), (25, 255), (130, 359), (193, 417), (245, 465), (188, 412),
    (174, 399), (3, 248), (236, 456), (37, 267), (39, 269), (40, 270), (185, 409), (186, 410),
    (92, 322), (165, 391), (167, 393), (61, 291), (206, 426), (207, 427), (214, 434), (202, 422),
    (43, 273), (146, 375), (216, 436), (212, 432), (57, 287), (91, 321), (210, 430), (204, 424),
    (106, 335), (84, 314), (182, 406), (194, 418), (32, 262), (140, 369), (171, 396), (87, 317),
    (178, 402), (88, 318), (95, 324), (78, 308), (181, 405), (83, 313), (45, 275), (220, 440),
    (115, 344), (48, 278), (64, 294), (98, 327), (97, 326), (49, 279), (203, 423), (169, 394),
    (150, 379), (149, 378), (176, 400), (148, 377),
)
MIDLINE = frozenset({0, 2, 4, 6, 8, 9, 14, 17, 18, 151, 152, 164, 168, 175, 195})
MIRROR: dict[int, int] = {**{i: i for i in MIDLINE},
                          **{r: l for r, l in _MIRROR_PAIRS}, **{l: r for r, l in _MIRROR_PAIRS}}


def mirror_indices(indices) -> tuple[int, ...]:
    return tuple(MIRROR[i] for i in indices)


def au_polygons(code: str | int, xy: np.ndarray) -> dict[str, np.ndarray]:
    """Polygons of one AU in the coordinate space of `xy` (478, 2).

    Returns {"R": (k, 2), "L": (k, 2)} for lateral areas (subject's right / left) and
    {"B": (k, 2)} for midline areas.
    """
    area = au_info(code).area
    indices = AREA_POLYGONS[area]
    if area in LATERAL_AREAS:
        return {"R": xy[list(indices)], "L": xy[list(mirror_indices(indices))]}
    return {"B": xy[list(indices)]}


def region_polygons(xy: np.ndarray, vocab) -> dict[str, list[np.ndarray]]:
    """AU code -> its polygons `[(k, 2), ...]` for every AU of `vocab`."""
    return {code: list(au_polygons(code, xy).values()) for code in vocab}


def region_masks(xy_crop: np.ndarray, size: int, grid: int, vocab,
                 min_cover: float = 0.25) -> np.ndarray:
    """Bool `(n_au, grid * grid)` patch masks, row-major patches, from crop-space landmarks.

    A patch belongs to an AU when the AU's region covers at least `min_cover` of its area.
    """
    # Rasterise at a resolution that divides evenly into patches, so coverage is a plain mean.
    cell = max(4, int(np.ceil(size / grid)))
    raster = grid * cell
    scale = raster / size
    canvas = np.zeros((len(vocab), raster, raster), np.uint8)
    for k, code in enumerate(vocab):
        for polygon in au_polygons(code, xy_crop).values():
            pts = np.round(np.asarray(polygon) * scale).astype(np.int32)
            cv2.fillPoly(canvas[k], [pts], 1)
    # Pixel counts per patch, summed as integers for every AU at once (one reduction instead of
    # a float mean per AU: pair preparation runs per analysed frame), then the same division.
    counts = canvas.reshape(len(vocab), grid, cell, grid, cell).sum(axis=(2, 4), dtype=np.int32)
    cover = counts.reshape(len(vocab), grid * grid) / float(cell * cell)  # (n_au, grid*grid)
    masks = cover >= min_cover
    for k, code in enumerate(vocab):
        if not masks[k].any():
            masks[k, _fallback_patch(cover[k], xy_crop, code, size, grid)] = True
    return masks


def _fallback_patch(cover: np.ndarray, xy_crop: np.ndarray, code, size: int, grid: int) -> int:
    """The patch an under-covered AU keeps: its best-covered one, else the one at its centroid."""
    if cover.max() > 0:
        return int(cover.argmax())
    centre = np.concatenate(list(au_polygons(code, xy_crop).values())).mean(0)
    col, row = np.clip((centre / size * grid).astype(int), 0, grid - 1)
    return int(row * grid + col)
