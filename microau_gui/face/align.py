"""Similarity alignment of a face to a canonical crop of any size.

Owns: the canonical template, `estimate_alignment`, `AlignedFace`, `warp_to_crop`,
`transform_points`. May import core, numpy and OpenCV.

The similarity (rotation, uniform scale, translation) is set by landmarks that action units do
not move: the eye corners (through the two eye centres) fix roll and position, and the scale is
the larger of the inter-ocular distance and the eye-line-to-nose-tip drop. A frontal face is
scaled by its eyes, so they land on the template; a turned head (IOD shrinks with yaw while
the vertical drop does not) is scaled by the nose drop, so mouth and chin stay in the crop.
Lids, brows, cheeks and lips are left out on purpose, because an alignment that follows them
would cancel the very micro-movement we want to see. The template is left-right symmetric, so
the crop of a mirrored photo is the mirror of the original crop.

Coordinates: `xy_img` are image pixels, `xy_crop` crop pixels. `img_to_crop` and `crop_to_img`
are 2x3 affine matrices (cv2 convention: [x', y'] = M @ [x, y, 1]).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# Anchors, in units of the inter-ocular distance (IOD, between eye centres), origin at the
# midpoint between the eyes, y down: the two eye centres, each the midpoint of its eye corners
# (MediaPipe 33/133 and 362/263), which no AU moves. The nose bridge (168, 6) was tried as a
# further anchor and dropped: in a turned head it sits off the eye midpoint (0.4 IOD in
# scikit-image's three-quarter-view camera.png) and even at weight 0.05 dragged the eyes 3 px
# off the template on a 224 px crop.
_ANCHOR_IOD = np.array([[-0.5, 0.0], [0.5, 0.0]])

# Crop layout as fractions of the crop side: the IOD and where the eye midpoint sits. Chosen so a
# frontal face fits from mid-forehead (landmark 10, -0.75 IOD) to chin (152, +1.75 IOD) with margin.
IOD_FRAC = 0.357
EYE_MID_FRAC = (0.5, 0.32)

NOSE_TIP = 1
# Eye-line-to-nose-tip drop of a frontal face in IOD: astronaut 0.63, Grace Hopper 0.67. Set a
# little above both so frontal faces keep the exact eye scale; in scikit-image's three-quarter
# view camera.png the drop is 1.06 IOD and the nose drop takes over.
NOSE_DROP_IOD = 0.70

RIGHT_EYE_CORNERS = (33, 133)  # subject's right eye: outer, inner (image left in a frontal view)
LEFT_EYE_CORNERS = (362, 263)  # subject's left eye: inner, outer


def eye_centres(xy: np.ndarray) -> np.ndarray:
    """`(2, 2)`: subject's right and left eye centres (midpoints of the eye corners)."""
    # (a + b) / 2 is what .mean(0) of the two rows computes, bit for bit, at a quarter of the
    # cost; the spotter aligns every frame, twice per frame through `face_unit_px`.
    return np.stack([(xy[RIGHT_EYE_CORNERS[0]] + xy[RIGHT_EYE_CORNERS[1]]) / 2,
                     (xy[LEFT_EYE_CORNERS[0]] + xy[LEFT_EYE_CORNERS[1]]) / 2])


def template_eye_centres(size: int) -> np.ndarray:
    """Where `eye_centres` land in a perfectly aligned `size` x `size` crop: `(2, 2)`."""
    centre = np.array(EYE_MID_FRAC) * size
    return _ANCHOR_IOD * (IOD_FRAC * size) + centre


def face_unit_px(xy: np.ndarray) -> float:
    """The face's scale in image px: max(IOD, eye-line-to-nose-tip drop / NOSE_DROP_IOD)."""
    right, left = eye_centres(xy)
    iod = float(np.linalg.norm(left - right))
    if iod < 1e-6:
        raise ValueError("eye centres coincide; the landmarks are degenerate")
    axis_x = (left - right) / iod
    axis_y = np.array([-axis_x[1], axis_x[0]])
    drop = float((xy[NOSE_TIP] - (left + right) / 2) @ axis_y)
    return max(iod, drop / NOSE_DROP_IOD)


def invert_affine(matrix: np.ndarray) -> np.ndarray:
    return cv2.invertAffineTransform(np.asarray(matrix, dtype=np.float64))


def transform_points(matrix: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Apply a 2x3 affine to `(N, 2)` points."""
    xy = np.asarray(xy, dtype=np.float64)
    return xy @ matrix[:, :2].T + matrix[:, 2]


def estimate_alignment(xy_img: np.ndarray, size: int) -> np.ndarray:
    """2x3 `img_to_crop` similarity: eye line horizontal, eye midpoint on the template's, one face
    unit (`face_unit_px`) on the template IOD. Frontal eyes land exactly on the template."""
    xy = np.asarray(xy_img, np.float64)
    right, left = eye_centres(xy)
    # A similarity is multiplication by a complex number z plus a translation.
    eye_line = complex(*(left - right))
    z = (IOD_FRAC * size / face_unit_px(xy)) * abs(eye_line) / eye_line
    origin = complex(*((right + left) / 2))
    t = complex(*(np.array(EYE_MID_FRAC) * size)) - z * origin
    return np.array([[z.real, -z.imag, t.real], [z.imag, z.real, t.imag]])


def warp_to_crop(rgb: np.ndarray, img_to_crop: np.ndarray, size: int) -> np.ndarray:
    """Resample an image into the `size` x `size` crop (bilinear, border replicated)."""
    return cv2.warpAffine(rgb, img_to_crop, (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)


@dataclass(frozen=True, eq=False)
class AlignedFace:
    """A face crop with the transforms that relate it to the source image."""

    crop: np.ndarray  # (size, size, 3) uint8 RGB
    img_to_crop: np.ndarray  # (2, 3)
    crop_to_img: np.ndarray  # (2, 3)
    xy_crop: np.ndarray  # (478, 2) landmarks in crop pixels
    size: int


def align_face(rgb: np.ndarray, xy_img: np.ndarray, size: int,
               img_to_crop: np.ndarray | None = None) -> AlignedFace:
    """Aligned crop of `rgb`. Pass `img_to_crop` to reuse another frame's transform (pairs)."""
    if img_to_crop is None:
        img_to_crop = estimate_alignment(xy_img, size)
    crop = warp_to_crop(rgb, img_to_crop, size)
    return AlignedFace(
        crop=crop,
        img_to_crop=img_to_crop,
        crop_to_img=invert_affine(img_to_crop),
        xy_crop=transform_points(img_to_crop, xy_img).astype(np.float32),
        size=size,
    )
