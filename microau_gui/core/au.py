"""The FACS catalogue: every code a coder may write, and the smaller set a model may learn.

Owns: FACS code names, muscle actions, prompt texts, display colours, which facial area each AU
moves, `MODEL_AUS` and the default model vocabulary. May import only the standard library.

`CATALOGUE` holds the whole FACS 2002 code set: action units 1-46 (the main codes and the
miscellaneous ones such as 21 neck tightener and 31 jaw clencher), 40 sniff, the head (51-60),
eye (61-69) and visibility (70-74) codes, and the gross-behaviour codes (50, 80-98). An import
never drops a code a coder wrote. Codes with an `area` have a landmark region and prompt texts
the model can use (`MODEL_AUS`); the rest have `area=None` and exist for annotation only. A
model's vocabulary (its card) is a separate, smaller list drawn from `MODEL_AUS`.

The face layer turns `AUInfo.area` into landmark polygons; the model layer turns the prompt
texts into text embeddings. Laterality (L/R) and intensity (A-E) are annotation attributes
(see `core.aus`); the model predicts bilateral occurrence only.
"""

from __future__ import annotations

from dataclasses import dataclass

# Templates averaged by the text tower ("template ensembling", as in CLIP's zero-shot recipe).
# {name} is the FACS name in lower case, {action} the visible muscle action.
POSITIVE_TEMPLATES: tuple[str, ...] = (
    "a face with {name}: {action}.",
    "a close-up photo of a face showing {name}, {action}.",
    "a subtle facial movement where {action}.",
)
NEGATIVE_TEMPLATES: tuple[str, ...] = (
    "a face without {name}: {neutral}.",
    "a close-up photo of a face showing no {name}, {neutral}.",
    "a still face where {neutral}.",
)


@dataclass(frozen=True)
class AUInfo:
    """One FACS action unit."""

    number: int  # FACS number, e.g. 12
    name: str  # FACS name, e.g. "Lip Corner Puller"
    muscle: str  # muscular basis from the FACS manual
    action: str  # what visibly moves when the AU is on (used in the positive prompt)
    neutral: str  # the same area at rest (used in the negative prompt)
    area: str | None  # facial area key understood by face.regions; None: no region (not a model AU)
    lateral: bool  # True when left and right halves are coded separately (L/R prefix)
    colour: tuple[int, int, int]  # display colour, RGB 0-255
    group: str = "face"  # "face", "head", "eyes", "visibility" or "gross" (FACS chapter)

    @property
    def code(self) -> str:
        return f"AU{self.number}"

    @property
    def positive_prompts(self) -> tuple[str, ...]:
        return tuple(
            t.format(name=self.name.lower(), action=self.action) for t in POSITIVE_TEMPLATES
        )

    @property
    def negative_prompts(self) -> tuple[str, ...]:
        return tuple(
            t.format(name=self.name.lower(), neutral=self.neutral) for t in NEGATIVE_TEMPLATES
        )


def _au(number, name, muscle, action, neutral, area, lateral, colour):
    return AUInfo(number, name, muscle, action, neutral, area, lateral, colour)


_CATALOGUE: tuple[AUInfo, ...] = (
    _au(1, "Inner Brow Raiser", "frontalis, pars medialis",
        "the inner ends of the eyebrows are pulled up", "the inner eyebrows rest level",
        "inner_brow", True, (230, 25, 75)),
    _au(2, "Outer Brow Raiser", "frontalis, pars lateralis",
        "the outer ends of the eyebrows are pulled up", "the outer eyebrows rest level",
        "outer_brow", True, (245, 130, 48)),
    _au(4, "Brow Lowerer", "corrugator supercilii, depressor glabellae, depressor supercilii",
        "the eyebrows are lowered and drawn together", "the eyebrows are apart and relaxed",
        "glabella", True, (255, 225, 25)),
    _au(5, "Upper Lid Raiser", "levator palpebrae superioris",
        "the upper eyelids are raised and the eyes widen", "the upper eyelids rest",
        "upper_lid", True, (210, 245, 60)),
    _au(6, "Cheek Raiser", "orbicularis oculi, pars orbitalis",
        "the cheeks are raised and crow's feet form", "the cheeks rest",
        "cheek", True, (60, 180, 75)),
    _au(7, "Lid Tightener", "orbicularis oculi, pars palpebralis",
        "the eyelids tighten and narrow the eye opening", "the eyelids are relaxed",
        "lower_lid", True, (70, 240, 240)),
    _au(9, "Nose Wrinkler", "levator labii superioris alaeque nasi",
        "the skin of the nose wrinkles upward", "the nose is smooth",
        "nose", False, (0, 130, 200)),
    _au(10, "Upper Lip Raiser", "levator labii superioris",
        "the upper lip is raised", "the upper lip rests",
        "upper_lip", True, (145, 30, 180)),
    _au(11, "Nasolabial Deepener", "zygomaticus minor",
        "the nasolabial furrow deepens", "the nasolabial furrow is shallow",
        "nasolabial", True, (128, 128, 0)),
    _au(12, "Lip Corner Puller", "zygomaticus major",
        "the lip corners are pulled up and back", "the lip corners rest",
        "lip_corner", True, (240, 50, 230)),
    _au(13, "Sharp Lip Puller", "levator anguli oris (caninus)",
        "the lip corners are pulled sharply up", "the lip corners rest",
        "lip_corner", True, (170, 110, 40)),
    _au(14, "Dimpler", "buccinator",
        "the lip corners tighten and dimples form", "the lip corners are loose",
        "dimple", True, (250, 190, 212)),
    _au(15, "Lip Corner Depressor", "depressor anguli oris (triangularis)",
        "the lip corners are pulled down", "the lip corners rest",
        "lip_corner_low", True, (0, 128, 128)),
    _au(16, "Lower Lip Depressor", "depressor labii inferioris",
        "the lower lip is pulled down", "the lower lip rests",
        "lower_lip", True, (220, 190, 255)),
    _au(17, "Chin Raiser", "mentalis",
        "the chin boss is pushed up and the lower lip rises", "the chin is smooth",
        "chin", False, (154, 99, 36)),
    _au(18, "Lip Pucker", "incisivii labii superioris and inferioris",
        "the lips are pushed forward into a pucker", "the lips rest",
        "lips", False, (255, 250, 200)),
    _au(20, "Lip Stretcher", "risorius with platysma",
        "the lip corners are stretched sideways", "the lip corners rest",
        "lip_stretch", True, (128, 0, 0)),
    _au(22, "Lip Funneler", "orbicularis oris",
        "the lips are funnelled outward", "the lips rest",
        "lips", False, (170, 255, 195)),
    _au(23, "Lip Tightener", "orbicularis oris",
        "the lips tighten and narrow", "the lips are relaxed",
        "lips", False, (255, 215, 180)),
    _au(24, "Lip Pressor", "orbicularis oris",
        "the lips are pressed together", "the lips are relaxed",
        "lips", False, (0, 0, 128)),
    _au(25, "Lips Part", "depressor labii inferioris; relaxed mentalis or orbicularis oris",
        "the lips part", "the lips are closed",
        "lips", False, (128, 128, 128)),
    _au(26, "Jaw Drop", "masseter; relaxed temporalis and internal pterygoid",
        "the jaw drops open", "the jaw is closed",
        "jaw", False, (100, 100, 255)),
    _au(27, "Mouth Stretch", "pterygoids, digastric",
        "the mouth is stretched wide open", "the mouth is closed",
        "jaw", False, (60, 60, 160)),
    _au(28, "Lip Suck", "orbicularis oris",
        "the lips are sucked in", "the lips rest",
        "lips", False, (200, 80, 120)),
    _au(38, "Nostril Dilator", "nasalis, pars alaris",
        "the nostrils flare", "the nostrils rest",
        "nostril", False, (80, 200, 120)),
    _au(39, "Nostril Compressor", "nasalis, pars transversa and depressor septi nasi",
        "the nostrils are compressed", "the nostrils rest",
        "nostril", False, (120, 160, 200)),
    _au(41, "Lid Droop", "relaxed levator palpebrae superioris",
        "the upper eyelids droop", "the upper eyelids rest",
        "upper_lid", True, (180, 180, 60)),
    _au(42, "Slit", "orbicularis oculi",
        "the eyes narrow to a slit", "the eyes are open",
        "eye", True, (60, 120, 60)),
    _au(43, "Eyes Closed", "relaxed levator palpebrae superioris",
        "the eyes are closed", "the eyes are open",
        "eye", True, (90, 90, 90)),
    _au(44, "Squint", "orbicularis oculi, pars palpebralis",
        "the eyes squint", "the eyes are relaxed",
        "lower_lid", True, (160, 90, 200)),
    _au(45, "Blink", "relaxed levator palpebrae superioris; orbicularis oculi",
        "the eyes blink", "the eyes stay open",
        "eye", False, (40, 40, 40)),
    _au(46, "Wink", "orbicularis oculi",
        "one eye winks", "both eyes stay open",
        "eye", True, (200, 200, 200)),
)



def _code(number: int, name: str, group: str, muscle: str = "") -> AUInfo:
    """A FACS code that has no landmark region: annotation only, never in a model vocabulary."""
    shade = 90 + (number * 37) % 120  # distinct greys, darker than nothing the model shows
    return AUInfo(number, name, muscle or f"{group} code (FACS chapter on {group} behaviour)",
                  name.lower(), f"no {name.lower()}", None, False, (shade, shade, shade + 20),
                  group)


_ANNOTATION_ONLY: tuple[AUInfo, ...] = (
    _code(8, "Lips Toward Each Other", "face", "orbicularis oris"),
    _code(19, "Tongue Show", "face", "genioglossus (tongue)"),
    _code(21, "Neck Tightener", "face", "platysma"),
    _code(29, "Jaw Thrust", "face", "lateral pterygoid"),
    _code(30, "Jaw Sideways", "face", "pterygoids, temporalis"),
    _code(31, "Jaw Clencher", "face", "masseter"),
    _code(32, "Lip Bite", "face", "teeth on lip"),
    _code(33, "Cheek Blow", "face", "air in the cheeks"),
    _code(34, "Cheek Puff", "face", "buccinator"),
    _code(35, "Cheek Suck", "face", "buccinator"),
    _code(36, "Tongue Bulge", "face", "tongue"),
    _code(37, "Lip Wipe", "face", "tongue"),
    _code(40, "Sniff", "gross"),
    _code(50, "Speech", "gross"),
    _code(51, "Head Turn Left", "head"),
    _code(52, "Head Turn Right", "head"),
    _code(53, "Head Up", "head"),
    _code(54, "Head Down", "head"),
    _code(55, "Head Tilt Left", "head"),
    _code(56, "Head Tilt Right", "head"),
    _code(57, "Head Forward", "head"),
    _code(58, "Head Back", "head"),
    _code(59, "Head Shake Up and Down", "head"),
    _code(60, "Head Shake Side to Side", "head"),
    _code(61, "Eyes Turn Left", "eyes"),
    _code(62, "Eyes Turn Right", "eyes"),
    _code(63, "Eyes Up", "eyes"),
    _code(64, "Eyes Down", "eyes"),
    _code(65, "Walleye", "eyes"),
    _code(66, "Cross-eye", "eyes"),
    _code(68, "Upward Rolling of Eyes", "eyes"),
    _code(69, "Eyes Positioned to Look at Other Person", "eyes"),
    _code(70, "Brows and Forehead Not Visible", "visibility"),
    _code(71, "Eyes Not Visible", "visibility"),
    _code(72, "Lower Face Not Visible", "visibility"),
    _code(73, "Entire Face Not Visible", "visibility"),
    _code(74, "Unscorable", "visibility"),
    _code(80, "Swallow", "gross"),
    _code(81, "Chewing", "gross"),
    _code(82, "Shoulder Shrug", "gross"),
    _code(83, "Head Upward and to the Side", "head"),
    _code(84, "Head Shake Back and Forth", "gross"),
    _code(85, "Head Nod Up and Down", "gross"),
    _code(91, "Flash", "gross"),
    _code(92, "Partial Flash", "gross"),
    _code(97, "Shiver/Tremble", "gross"),
    _code(98, "Fast Up-Down Look", "gross"),
)

CATALOGUE: dict[int, AUInfo] = {info.number: info
                                 for info in sorted(_CATALOGUE + _ANNOTATION_ONLY,
                                                    key=lambda i: i.number)}
# AUs with a landmark region and prompts: the only codes a model vocabulary may hold.
MODEL_AUS: frozenset[int] = frozenset(n for n, info in CATALOGUE.items() if info.area is not None)

# The 12 AUs of the cross-dataset micro-AU protocol (DESIGN.md section 1).
DEFAULT_VOCAB: tuple[str, ...] = (
    "AU1", "AU2", "AU4", "AU5", "AU6", "AU7", "AU9", "AU10", "AU12", "AU14", "AU15", "AU17",
)


def au_number(code: str | int) -> int:
    """`"AU12"`, `"12"` or `12` -> 12. Raises KeyError naming the AU when it is not catalogued."""
    text = str(code).strip().upper()
    if text.startswith("AU"):
        text = text[2:]
    if not text.isdigit() or int(text) not in CATALOGUE:
        raise KeyError(f"{code!r} is not a FACS code in the catalogue (known: AU1 ... AU46, "
                       "head, eye and visibility codes 51-74, gross behaviour 50 and 80-98)")
    return int(text)


def au_info(code: str | int) -> AUInfo:
    """Catalogue entry of an AU given as `"AU12"`, `"12"` or `12`."""
    return CATALOGUE[au_number(code)]
