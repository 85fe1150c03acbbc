"""Augmentation of prepared pairs: horizontal flip (crops, flow, landmarks, AU sides) and colour jitter.

Owns: `FLIP_PERMUTATION`, `flip_landmarks`, `swap_sides`, `flip_pair`, `jitter_pair`. May import
core and face (numpy); no torch, no Qt.

Flip (our specification). A horizontally mirrored face is a plausible face of another person, so
it doubles the few training pairs, but only if every part of the sample is mirrored together:
- both crops are mirrored (`x -> S - 1 - x`, the pixel-centre convention of cv2 warps);
- the flow field is mirrored and its horizontal component negated (a movement to the image right
  becomes one to the image left);
- the landmarks are mirrored *and renumbered* through `face.regions.MIRROR`: after the flip,
  the point at the subject's right eye corner is the old left eye corner, so mesh index 33 must
  take the mirrored position of index 263. Region masks computed from these landmarks then put
  each lateral AU's halves where the mirrored image has them;
- L/R AU codes swap sides (R12 becomes L12). Bilateral occurrence labels do not change.
Mesh points absent from `MIRROR` (no AU region uses them) keep their index.

Colour jitter: one random gain and offset per pair, applied to both crops alike, so the
onset-apex difference stays pure motion. Flow images are never jittered: they are measurements.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from microau_gui.core.aus import AUCode, Side
from microau_gui.face.landmarks import N_LANDMARKS
from microau_gui.face.regions import MIRROR
from microau_gui.pairs.samples import PairSample

# New index i takes the mirrored position of old index FLIP_PERMUTATION[i].
FLIP_PERMUTATION: np.ndarray = np.array([MIRROR.get(i, i) for i in range(N_LANDMARKS)], np.int64)

_SWAPPED = {Side.LEFT: Side.RIGHT, Side.RIGHT: Side.LEFT, Side.BOTH: Side.BOTH}


def flip_landmarks(xy_crop: np.ndarray, size: int) -> np.ndarray:
    """Landmarks `(478, 2)` of the horizontally mirrored `size` px crop, renumbered by side."""
    mirrored = np.array(xy_crop, np.float32, copy=True)
    mirrored[:, 0] = (size - 1) - mirrored[:, 0]
    return mirrored[FLIP_PERMUTATION]


def swap_sides(aus: Sequence[AUCode]) -> tuple[AUCode, ...]:
    """AU codes of the mirrored face: L and R exchanged, bilateral codes unchanged."""
    return tuple(replace(code, side=_SWAPPED[code.side]) for code in aus)


def flip_flow(flow: np.ndarray) -> np.ndarray:
    """Flow `(S, S, 2)` of the mirrored crops: mirrored, u negated."""
    flipped = np.ascontiguousarray(flow[:, ::-1])
    flipped[..., 0] *= -1
    return flipped


def flip_pair(pair: PairSample) -> PairSample:
    """The whole pair mirrored left-right (see the module docstring)."""
    return PairSample(
        sample=replace(pair.sample, aus=swap_sides(pair.sample.aus)),
        reference=np.ascontiguousarray(pair.reference[:, ::-1]),
        target=np.ascontiguousarray(pair.target[:, ::-1]),
        flow=flip_flow(pair.flow),
        xy_crop=flip_landmarks(pair.xy_crop, pair.size),
    )


def jitter_pair(reference: np.ndarray, target: np.ndarray, rng: np.random.Generator,
                strength: float) -> tuple[np.ndarray, np.ndarray]:
    """Both uint8 crops with one random gain in [1 - s, 1 + s] and offset in [-s/2, s/2] * 255."""
    gain = 1.0 + rng.uniform(-strength, strength)
    offset = 255.0 * rng.uniform(-strength / 2, strength / 2)

    def apply(image: np.ndarray) -> np.ndarray:
        return np.clip(image.astype(np.float32) * gain + offset, 0, 255).astype(np.uint8)

    return apply(reference), apply(target)
