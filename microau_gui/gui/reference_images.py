"""The pictures of the reference view: the frame on screen beside, blended with or subtracted from
the reference frame the model compares it against, optionally motion-magnified.

Owns: `MODES`, `MAGNIFIERS`, `magnify`, `compose`. May import numpy and OpenCV; no widgets, no
torch. Inputs are two RGB uint8 images of one size, already cut with one transform (the
reference view cuts both with the prediction's `crop_to_img`, as the model pairs them), so what
differs between them is motion, not alignment.

Magnification (our choice where issue 16 is silent): both amplify the motion between the
reference and the frame on screen, nothing else (there is no temporal band-pass: the "band" is
this frame minus its reference).
- Eulerian (linear, as Wu et al. 2012 amplify a band-passed intensity change):
  `ref + gain * (cur - ref)`. Exact at gain 1 and cheap; image noise is amplified by the same
  gain, so gains of about 2-10 are useful.
- Flow (Lagrangian, Liu et al. 2005 in its simplest form): dense Farneback flow from the
  reference to the frame, and the reference warped by `gain` times that flow. Edges move
  instead of ghosting and noise is not amplified, but errors of the flow are.
"""

from __future__ import annotations

import cv2
import numpy as np

MODES = (("difference", "difference"), ("side", "side by side"), ("blend", "blend"))
MAGNIFIERS = (("eulerian", "Eulerian"), ("flow", "flow"), ("off", "no magnification"))
SEPARATOR_PX = 2  # dark gap between the two images side by side


def _flow(ref: np.ndarray, cur: np.ndarray) -> np.ndarray:
    """(h, w, 2) float32 dense flow from `ref` to `cur`: ref(y, x) ~ cur(y + v, x + u)."""
    ref_grey = cv2.cvtColor(ref, cv2.COLOR_RGB2GRAY)
    cur_grey = cv2.cvtColor(cur, cv2.COLOR_RGB2GRAY)
    # Small windows and several levels: micro-movements are a pixel or two on a 256 px face.
    return cv2.calcOpticalFlowFarneback(ref_grey, cur_grey, None, pyr_scale=0.5, levels=3,
                                        winsize=9, iterations=3, poly_n=5, poly_sigma=1.1, flags=0)


def magnify(cur: np.ndarray, ref: np.ndarray, how: str, gain: float) -> np.ndarray:
    """(h, w, 3) uint8: the frame on screen with its motion since the reference times `gain`."""
    if how == "off" or gain == 1:
        return cur
    if how == "eulerian":
        ref_f = ref.astype(np.float32)
        return (ref_f + gain * (cur.astype(np.float32) - ref_f)).clip(0, 255).astype(np.uint8)
    if how == "flow":
        flow = _flow(ref, cur)  # (h, w, 2)
        h, w = ref.shape[:2]
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
        # Backward warp: the pixel that lands at x came from x - gain * u (smooth flow).
        return cv2.remap(ref, xs - gain * flow[..., 0], ys - gain * flow[..., 1],
                         interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    raise ValueError(f"unknown magnification {how!r}")


def compose(cur: np.ndarray, ref: np.ndarray, mode: str, how: str = "off",
            gain: float = 1.0) -> np.ndarray:
    """The reference view's picture. `cur`, `ref`: (h, w, 3) uint8 of one size.

    side: [reference | frame] with a dark gap; blend: their mean; difference: mid-grey where
    nothing changed, `128 + (frame - reference)` per channel. The frame is magnified first
    (`magnify`), so the difference with Eulerian gain g is `128 + g * (frame - reference)`.
    """
    if cur.shape != ref.shape:
        raise ValueError(f"the frame {cur.shape} and its reference {ref.shape} differ in size")
    shown = magnify(cur, ref, how, gain)
    if mode == "side":
        gap = np.full((ref.shape[0], SEPARATOR_PX, 3), 18, np.uint8)
        return np.ascontiguousarray(np.hstack([ref, gap, shown]))
    if mode == "blend":
        return ((ref.astype(np.uint16) + shown) // 2).astype(np.uint8)
    if mode == "difference":
        diff = shown.astype(np.int16) - ref.astype(np.int16)  # (h, w, 3)
        return (128 + diff).clip(0, 255).astype(np.uint8)
    raise ValueError(f"unknown reference view mode {mode!r}")
