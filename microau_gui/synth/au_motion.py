"""The written motion model of every synthetic action unit: which landmarks move, where, how much.

Owns: `Move`, `Close`, `AUMotion`, `AU_MOTIONS`, `BLINK`, `GLOBAL_ANCHORS`, `mirror_landmark`.
May import core and face (for the landmark mirror table); numpy only. Nothing here renders.

How to read a table. Each row moves one MediaPipe Face Mesh landmark of the subject's RIGHT half
(image left in a frontal photo) or of the midline:

- `Move(landmark, out, up)`: `out` > 0 is lateral (away from the face midline), `up` > 0 is
  towards the forehead, both along the face's own axes (x from the right to the left eye centre,
  y perpendicular to it), so head roll and mirrored photos need no special case. Values are
  weights relative to the other rows of the same AU; the largest is about 1. The renderer scales
  the whole AU so its peak displacement equals the amplitude drawn for the clip (0.5-3 px on a
  224 px face for micro-expressions).
- `Close(landmark, onto, fraction)`: the landmark travels `fraction` of the way to landmark
  `onto` (eyelid closure). Used by the absolute models (AU43 and the blink), whose size comes
  from the face's own geometry, not from an amplitude.
- `anchors`: landmarks held still for this AU besides `GLOBAL_ANCHORS` (the eye corners, which
  the face alignment relies on, and the nose tip). Anchors keep a motion from spilling into
  a neighbouring structure that the muscle does not move (the lid margin under a raised brow).

The left half is the mirror image: every right-half landmark maps through `mirror_landmark`
and `out` keeps its meaning (lateral), so the same table drives L, R and bilateral codes.
Midline rows (out = 0) are applied once. `sigma_u` is the radius, in face units, of the smooth
Gaussian neighbourhood each landmark drags along (one face unit is about the inter-ocular
distance of a frontal face; see `synth.faces.FaceFrame`).

The movements follow the FACS manual's description of each muscle's action (Ekman, Friesen &
Hager 2002); the landmark choice keeps each AU's motion inside the region that
`face.regions.AREA_POLYGONS` gives that AU, because the Micro-AU CLIP model looks for an AU only
inside its region.

Motion models exist for AUs 1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 16, 17, 20, 23, 24, 25, 26 and
43 (AU45, the blink, reuses AU43's closure). The other catalogue AUs (among them 18 and 38) have
none: the generator never renders them and `synth.combos.parse_combination` refuses them.
tests/test_synth.py measures the optical flow of AUs 1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 17 and
20 against those regions.
"""

from __future__ import annotations

from dataclasses import dataclass

from microau_gui.face.regions import MIRROR


@dataclass(frozen=True)
class Move:
    """One landmark's displacement direction and relative size (subject's right half or midline)."""

    landmark: int  # MediaPipe Face Mesh index
    out: float  # lateral, away from the midline (> 0), in relative units
    up: float  # towards the forehead (> 0), in relative units


@dataclass(frozen=True)
class Close:
    """A landmark that travels a fraction of the way onto another one (eyelid closure)."""

    landmark: int
    onto: int
    fraction: float  # 1.0 = all the way


@dataclass(frozen=True)
class AUMotion:
    """The motion model of one AU."""

    number: int  # FACS number
    action: str  # what moves, in words (FACS)
    sigma_u: float  # Gaussian neighbourhood radius of each moving landmark, face units
    moves: tuple  # Move / Close rows, subject's right half and midline
    anchors: tuple[int, ...] = ()  # landmarks held still (right half and midline; mirrored too)
    absolute: bool = False  # True: rows give real displacements (Close, or Move in face units)
    macro_max_px: float = 15.0  # largest macro-expression amplitude that still looks anatomical


def _moves(*rows: tuple[int, float, float]) -> tuple[Move, ...]:
    return tuple(Move(i, out, up) for i, out, up in rows)


# The eye corners define the face alignment (face.align) and no AU moves them; the nose tip is
# bone and cartilage that no AU here moves either.
GLOBAL_ANCHORS: tuple[int, ...] = (33, 133, 4)

# Lower-lid margin, right eye, outer -> inner, and the upper-lid margin point above each.
_LOWER_LID = (7, 163, 144, 145, 153, 154, 155)
_UPPER_LID = (246, 161, 160, 159, 158, 157, 173)

_TABLE: tuple[AUMotion, ...] = (
    AUMotion(
        1, "frontalis, pars medialis raises the inner brow and the forehead above it", 0.10,
        _moves(
            # forehead above the inner half of the brow: the skin the muscle lifts
            (108, 0.00, 1.00), (69, 0.05, 0.75), (104, 0.05, 0.40),
            # inner brow head, upper edge, and a little of its lower edge
            (107, 0.00, 0.95), (66, 0.02, 0.70), (105, 0.02, 0.30),
            (55, 0.00, 0.55), (65, 0.00, 0.40),
        ),
        anchors=(158, 159, 160, 157, 173, 46, 70, 63, 53),
    ),
    AUMotion(
        2, "frontalis, pars lateralis raises the outer brow and the temple skin above it", 0.10,
        _moves(
            (70, 0.10, 0.90), (63, 0.08, 1.00), (105, 0.05, 0.70), (46, 0.10, 0.80),
            (53, 0.08, 0.85), (52, 0.05, 0.45), (68, 0.08, 0.80), (104, 0.05, 0.55),
            (54, 0.10, 0.60), (103, 0.05, 0.50), (71, 0.10, 0.60), (21, 0.10, 0.45),
        ),
        anchors=(107, 66, 55, 65, 108, 246, 161, 160, 159, 30, 247),
    ),
    AUMotion(
        4, "corrugator and depressor supercilii lower the brows and draw them together", 0.09,
        _moves(
            # brow head: down and towards the midline (out < 0), bunching the glabella
            (55, -0.55, -0.80), (65, -0.45, -0.80), (107, -0.55, -0.85), (66, -0.35, -0.80),
            (52, -0.15, -0.45), (105, -0.15, -0.50), (221, -0.45, -0.45), (193, -0.30, -0.20),
            (8, 0.00, -0.30), (9, 0.00, -0.40),
        ),
        anchors=(159, 158, 160, 157, 173, 27, 28, 168, 6, 151, 108, 69),
        macro_max_px=10.0,
    ),
    AUMotion(
        5, "levator palpebrae superioris raises the upper lid and widens the eye", 0.055,
        _moves(
            (159, 0.00, 1.00), (160, 0.00, 0.90), (158, 0.00, 0.90), (161, 0.00, 0.60),
            (157, 0.00, 0.60), (246, 0.00, 0.30), (173, 0.00, 0.30),
            # the lid fold above the margin rides up with it
            (27, 0.00, 0.60), (28, 0.00, 0.50), (29, 0.00, 0.50), (56, 0.00, 0.30),
            (30, 0.00, 0.30),
        ),
        anchors=_LOWER_LID + (65, 52, 53, 55, 46),
        macro_max_px=4.0,
    ),
    AUMotion(
        6, "orbicularis oculi, pars orbitalis lifts the cheek and gathers skin to the eye corner",
        0.11,
        _moves(
            # infraorbital cheek moves up; its outer part also towards the eye (crow's feet)
            (228, -0.15, 0.95), (229, -0.05, 1.00), (230, 0.00, 0.90), (231, 0.00, 0.65),
            (117, -0.20, 0.85), (118, -0.05, 0.90), (119, 0.00, 0.75), (120, 0.00, 0.50),
            (31, -0.35, 0.70), (111, -0.40, 0.55), (143, -0.45, 0.35), (116, -0.35, 0.40),
            (50, -0.10, 0.55), (101, 0.00, 0.50), (100, 0.00, 0.40), (123, -0.25, 0.45),
        ),
        anchors=_LOWER_LID + (61, 206, 205, 36, 47),
        macro_max_px=8.0,
    ),
    AUMotion(
        7, "orbicularis oculi, pars palpebralis raises and straightens the lower lid", 0.055,
        _moves(
            (145, 0.00, 1.00), (144, 0.00, 0.95), (153, 0.00, 0.90), (163, 0.00, 0.70),
            (154, 0.00, 0.60), (7, 0.00, 0.35), (155, 0.00, 0.25),
            # the lid below the margin follows; the upper lid narrows the eye a little
            (24, 0.00, 0.70), (23, 0.00, 0.70), (110, 0.00, 0.50), (22, 0.00, 0.50),
            (159, 0.00, -0.25), (158, 0.00, -0.20), (160, 0.00, -0.20),
        ),
        anchors=(229, 230, 228, 231, 119, 118, 27, 28, 29),
        macro_max_px=4.0,
    ),
    AUMotion(
        9, "levator labii superioris alaeque nasi wrinkles the nose and lifts its sides", 0.10,
        _moves(
            # sides of the nose slide up towards the root, compressing the skin (wrinkles)
            (174, -0.15, 1.00), (236, -0.10, 1.00), (188, -0.15, 0.80), (196, -0.10, 0.85),
            (3, -0.05, 0.75), (122, -0.10, 0.55), (245, -0.10, 0.40), (198, -0.05, 0.70),
            (134, 0.00, 0.55), (131, 0.00, 0.50), (51, 0.00, 0.55),
            # the nasal wing and the midline skin of the bridge rise less
            (64, 0.00, 0.45), (48, 0.00, 0.50), (102, 0.00, 0.45),
            (195, 0.00, 0.55), (197, 0.00, 0.45), (5, 0.00, 0.30),
        ),
        anchors=(168, 55, 65, 155, 154, 153, 61, 0, 37, 206),
        macro_max_px=10.0,
    ),
    AUMotion(
        10, "levator labii superioris raises the upper lip and the skin above it", 0.09,
        _moves(
            (37, 0.00, 1.00), (39, 0.00, 0.95), (40, 0.05, 0.70), (185, 0.05, 0.40),
            (82, 0.00, 0.80), (81, 0.00, 0.80), (80, 0.00, 0.60),
            (167, 0.00, 0.60), (165, 0.05, 0.55), (92, 0.05, 0.40),
            (0, 0.00, 0.85), (13, 0.00, 0.60), (164, 0.00, 0.40),
        ),
        anchors=(61, 146, 91, 181, 84, 17, 14, 2, 98, 97),
        macro_max_px=10.0,
    ),
    AUMotion(
        12, "zygomaticus major pulls the lip corner up and back along the cheekbone", 0.11,
        _moves(
            # the corner and the cheek lateral to it travel up and out towards the cheekbone
            (61, 0.60, 0.75), (78, 0.45, 0.55), (57, 0.60, 0.65), (212, 0.60, 0.70),
            (216, 0.50, 0.70), (186, 0.45, 0.60), (185, 0.40, 0.55), (207, 0.50, 0.70),
            (214, 0.50, 0.55), (206, 0.30, 0.60), (92, 0.30, 0.55), (202, 0.35, 0.45),
            (43, 0.35, 0.40), (146, 0.35, 0.35), (40, 0.15, 0.25),
        ),
        anchors=(0, 13, 14, 17, 37, 84, 181, 91, 106, 18, 98, 164),
    ),
    AUMotion(
        14, "buccinator tightens the lip corner and pulls the skin beside it inwards (dimple)",
        0.075,
        _moves(
            (57, -1.00, 0.05), (212, -0.80, 0.05), (216, -0.60, -0.10), (186, -0.55, 0.00),
            (43, -0.55, 0.15), (61, -0.35, 0.20), (146, -0.30, 0.05), (185, -0.25, 0.05),
        ),
        anchors=(0, 17, 37, 84, 40, 91, 206, 202, 214),
        macro_max_px=8.0,
    ),
    AUMotion(
        15, "depressor anguli oris pulls the lip corner and the skin below it down", 0.09,
        _moves(
            (61, 0.10, -1.00), (146, 0.05, -0.90), (43, 0.05, -0.90), (57, 0.10, -0.80),
            (106, 0.00, -0.70), (202, 0.05, -0.70), (204, 0.00, -0.60), (91, 0.00, -0.60),
            (212, 0.05, -0.50), (210, 0.00, -0.40), (78, 0.05, -0.70), (181, 0.00, -0.30),
        ),
        anchors=(0, 37, 17, 18, 200, 92, 186, 206),
    ),
    AUMotion(
        16, "depressor labii inferioris pulls the lower lip down", 0.09,
        _moves(
            (84, 0.00, -1.00), (181, 0.00, -0.90), (91, 0.05, -0.50), (87, 0.00, -0.70),
            (178, 0.00, -0.60), (83, 0.00, -0.60), (182, 0.00, -0.50), (106, 0.00, -0.30),
            (17, 0.00, -1.00), (14, 0.00, -0.70), (18, 0.00, -0.60),
        ),
        anchors=(61, 0, 37, 13, 200, 152),
    ),
    AUMotion(
        17, "mentalis pushes the chin boss and the lower lip up", 0.11,
        _moves(
            (201, 0.00, 0.80), (83, 0.00, 0.80), (208, 0.00, 0.70), (194, 0.00, 0.60),
            (32, -0.05, 0.40), (171, 0.00, 0.40), (84, 0.00, 0.55), (87, 0.00, 0.35),
            (200, 0.00, 1.00), (199, 0.00, 0.90), (18, 0.00, 0.90), (175, 0.00, 0.60),
            (17, 0.00, 0.70), (14, 0.00, 0.35),
        ),
        anchors=(61, 0, 13, 37, 43, 202),
    ),
    AUMotion(
        20, "risorius and platysma stretch the lip corner and the skin beside it sideways", 0.11,
        _moves(
            (61, 0.90, -0.10), (78, 0.70, -0.05), (146, 0.70, -0.10), (185, 0.55, 0.00),
            (57, 0.90, -0.10), (186, 0.70, 0.00), (43, 0.75, -0.15), (212, 0.85, -0.10),
            (216, 0.70, 0.00), (202, 0.75, -0.10), (214, 0.75, -0.05), (210, 0.60, -0.10),
            (91, 0.35, -0.05), (40, 0.25, 0.00),
        ),
        anchors=(0, 13, 14, 17, 37, 84, 181, 206, 92),
    ),
    AUMotion(
        23, "orbicularis oris tightens and narrows the lips", 0.07,
        _moves(
            (37, 0.00, -0.70), (39, -0.05, -0.60), (40, -0.15, -0.40), (185, -0.30, -0.10),
            (61, -0.50, 0.00), (146, -0.30, 0.05), (91, -0.15, 0.30), (181, 0.00, 0.55),
            (84, 0.00, 0.70), (0, 0.00, -0.70), (17, 0.00, 0.65),
        ),
        anchors=(164, 2, 18, 200, 57, 43),
    ),
    AUMotion(
        24, "orbicularis oris presses the lips together", 0.08,
        _moves(
            (37, 0.00, -0.75), (39, 0.00, -0.65), (82, 0.00, -0.40), (84, 0.00, 0.75),
            (181, 0.00, 0.65), (87, 0.00, 0.40), (167, 0.00, -0.30), (83, 0.00, 0.35),
            (0, 0.00, -0.75), (13, 0.00, -0.40), (14, 0.00, 0.40), (17, 0.00, 0.75),
            (164, 0.00, -0.30), (18, 0.00, 0.40),
        ),
        anchors=(61, 2, 200),
    ),
    AUMotion(
        25, "the lips part: the lower lip drops, the upper lip lifts slightly", 0.07,
        _moves(
            (87, 0.00, -0.90), (178, 0.00, -0.70), (84, 0.00, -0.70), (181, 0.00, -0.50),
            (82, 0.00, 0.30), (81, 0.00, 0.25),
            (14, 0.00, -1.00), (17, 0.00, -0.70), (13, 0.00, 0.30),
        ),
        anchors=(61, 78, 0, 200),
    ),
    AUMotion(
        26, "the jaw drops, carrying the chin and the lower lip down", 0.14,
        _moves(
            (84, 0.00, -0.85), (181, 0.00, -0.80), (91, 0.00, -0.55), (106, 0.00, -0.70),
            (204, 0.00, -0.75), (194, 0.00, -0.90), (32, 0.00, -0.90), (140, 0.00, -0.90),
            (171, 0.00, -0.95), (148, 0.00, -0.90), (176, 0.00, -0.80), (149, 0.00, -0.65),
            (150, 0.00, -0.50), (169, 0.00, -0.50), (210, 0.00, -0.55), (61, 0.00, -0.35),
            (14, 0.00, -0.85), (17, 0.00, -0.90), (18, 0.00, -0.95), (200, 0.00, -1.00),
            (199, 0.00, -1.00), (175, 0.00, -1.00), (152, 0.00, -1.00),
        ),
        anchors=(0, 37, 13, 164, 206, 207),
    ),
    AUMotion(
        43, "the upper lid drops onto the lower lid and the eye closes", 0.05,
        tuple(Close(upper, lower, 0.95) for upper, lower in zip(_UPPER_LID, _LOWER_LID))
        + _moves((27, 0.00, -0.10), (28, 0.00, -0.09), (29, 0.00, -0.09), (56, 0.00, -0.05),
                 (30, 0.00, -0.05), (145, 0.00, 0.01), (144, 0.00, 0.01), (153, 0.00, 0.01)),
        anchors=(65, 52, 53, 55, 46, 23, 24, 22, 110),
        absolute=True,
    ),
)

AU_MOTIONS: dict[int, AUMotion] = {motion.number: motion for motion in _TABLE}

# A blink (AU45) is the same closure as AU43, only brief.
BLINK: AUMotion = AU_MOTIONS[43]

# Mirror partners of the landmarks above that face.regions.MIRROR does not list. From the
# left-right symmetry of MediaPipe's canonical face model; tests/test_synth.py checks every
# pair against detections of mirrored photos.
_EXTRA_MIRROR_PAIRS = (
    (63, 293), (68, 298), (117, 346), (118, 347), (119, 348), (111, 340), (47, 277),
    (129, 358), (102, 331), (198, 420), (131, 360), (134, 363), (196, 419), (122, 351),
    (188, 412), (80, 310), (81, 311), (82, 312), (201, 421), (208, 428), (199, 199),
    (200, 200), (5, 5), (197, 197), (13, 13), (1, 1), (51, 281), (36, 266), (205, 425),
)
_EXTRA_MIRROR: dict[int, int] = {**{r: l for r, l in _EXTRA_MIRROR_PAIRS},
                                 **{l: r for r, l in _EXTRA_MIRROR_PAIRS}}


def mirror_landmark(index: int) -> int:
    """The landmark at the mirror-image position across the face midline."""
    if index in MIRROR:
        return MIRROR[index]
    return _EXTRA_MIRROR[index]


def is_midline(index: int) -> bool:
    return mirror_landmark(index) == index


def used_landmarks() -> tuple[int, ...]:
    """Every right-half or midline landmark the tables mention (for the mirror-table test)."""
    found: set[int] = set(GLOBAL_ANCHORS)
    for motion in _TABLE:
        found.update(motion.anchors)
        for row in motion.moves:
            found.add(row.landmark)
            if isinstance(row, Close):
                found.add(row.onto)
    return tuple(sorted(found))
