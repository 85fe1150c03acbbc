"""Which frame a target frame's motion is measured against: the reference policy.

Owns: `ReferencePolicy`, `reference_frame`, `parse_reference`. May import core only (standard
library); no torch, no Qt.

The model sees a (reference, target) pair (DESIGN.md section 1). In training the reference is the
coded onset; at review time the coder chooses (our specification):
- ONSET: the selected event's onset frame, so every frame of the event is compared with the
  face before the movement started, as in training.
- SLIDING: `frame_idx - round(window_s * fps)`, clamped at 0. With the default 0.2 s window the
  reference sits just before the fastest micro-expression's onset (0.2-0.5 s long), so a
  movement shows at its rise and a slow macro-expression or drift does not.
- FIXED: a neutral frame the coder picked once for the whole video.

ONSET without an onset (no event selected) and FIXED without a frame fall back to SLIDING, so a
request from a view that has no event or no chosen frame still gets a sensible pair.
"""

from __future__ import annotations

from enum import Enum

from microau_gui.core.errors import UserError

DEFAULT_WINDOW_S = 0.2  # sliding reference: this many seconds before the target


class ReferencePolicy(str, Enum):
    ONSET = "onset"  # the selected event's onset frame
    SLIDING = "sliding"  # frame_idx - round(window_s * fps), clamped at 0
    FIXED = "fixed"  # a user-chosen neutral frame


def sliding_offset_frames(fps: float, window_s: float = DEFAULT_WINDOW_S) -> int:
    """How many frames the sliding reference lags behind its target (>= 1 for any positive fps)."""
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    return max(1, int(round(window_s * fps)))


def reference_frame(frame_idx: int, policy: ReferencePolicy, fps: float,
                    onset_idx: int | None = None, fixed_idx: int | None = None,
                    window_s: float = DEFAULT_WINDOW_S) -> int:
    """The reference frame_idx for target `frame_idx` under `policy` (see the module docstring)."""
    policy = ReferencePolicy(policy)
    if policy is ReferencePolicy.ONSET and onset_idx is not None:
        return int(onset_idx)
    if policy is ReferencePolicy.FIXED and fixed_idx is not None:
        return int(fixed_idx)
    return max(0, int(frame_idx) - sliding_offset_frames(fps, window_s))


def parse_reference(text: str) -> tuple[ReferencePolicy, int | None]:
    """`--reference` value: "sliding", "onset" or "fixed:N" -> (policy, fixed frame_idx or None)."""
    value = (text or "").strip().lower()
    if value in (ReferencePolicy.SLIDING.value, ReferencePolicy.ONSET.value):
        return ReferencePolicy(value), None
    if value.startswith("fixed:"):
        number = value.split(":", 1)[1]
        if number.isdigit():
            return ReferencePolicy.FIXED, int(number)
    raise UserError(f"--reference {text!r}: use sliding, onset or fixed:N (N = a neutral frame_idx)")
