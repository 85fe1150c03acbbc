"""Reference/target face pairs cut with ONE alignment transform.

Owns: `AlignedPair`, `align_pair`. May import core, numpy and OpenCV.

Micro-movements are 0.5-3 px. Aligning each frame by its own landmarks would add MediaPipe's
landmark jitter (about as large) to the motion, so both crops of a pair share one transform:
the reference frame's, or one computed from landmarks the caller smoothed over a window.
What remains of head motion between the two frames is removed from the optical flow by
`face.motion.remove_global_motion`, which is far more precise than landmarks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from microau_gui.face.align import estimate_alignment, invert_affine, transform_points, warp_to_crop


@dataclass(frozen=True, eq=False)
class AlignedPair:
    reference: np.ndarray  # (size, size, 3) uint8 RGB crop of the reference (onset / neutral) frame
    target: np.ndarray  # (size, size, 3) uint8 RGB crop of the target (apex / reviewed) frame
    img_to_crop: np.ndarray  # (2, 3) shared by both crops
    crop_to_img: np.ndarray  # (2, 3)
    xy_crop: np.ndarray  # (478, 2) float32 landmarks that defined the transform, crop pixels
    size: int


def align_pair(reference_rgb: np.ndarray, target_rgb: np.ndarray, xy_img: np.ndarray,
               size: int) -> AlignedPair:
    """Cut both frames with the similarity estimated from `xy_img` (478, 2).

    `xy_img` is normally the reference frame's landmarks; pass landmarks averaged over a window
    to smooth the transform.
    """
    img_to_crop = estimate_alignment(xy_img, size)
    return AlignedPair(
        reference=warp_to_crop(reference_rgb, img_to_crop, size),
        target=warp_to_crop(target_rgb, img_to_crop, size),
        img_to_crop=img_to_crop,
        crop_to_img=invert_affine(img_to_crop),
        xy_crop=transform_points(img_to_crop, xy_img).astype(np.float32),
        size=size,
    )
