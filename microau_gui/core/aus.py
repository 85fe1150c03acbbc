"""AU codes with laterality and intensity, and the parser for dataset AU strings.

Owns: `AUCode`, `Side`, `parse_au_string` and `format_au_codes`. May import only the standard
library and `core.au`.

Dataset coding sheets write AUs in many ways. The parser accepts, case-insensitively:

    4+7+L10     R12     AU4 + R12C     7B     A12B     ref(43)     (R6 or R12)     1,2     1，2     ?

- `L`/`R` prefix: left/right side only; no prefix: bilateral.
- `A` prefix (SAMM, e.g. `A12B`): asymmetric, i.e. both sides moving unequally; stored as
  bilateral with `asymmetric=True`.
- `A`-`E` suffix: FACS intensity (trace ... maximum).
- `ref(43)`: SAMM's marker for an AU the coder only referred to (not certain); kept with
  `uncertain=True`.
- `(X or Y)`: the coder could not decide between X and Y; both are kept with `uncertain=True`.
- `T` / `B` prefix on a lip AU (`T28`, `B24`): FACS's top / bottom lip scoring; kept in
  `AUCode.lip`.
- `M` prefix on a head or eye code (`M59`, `M61`): FACS's movement variant; stored as the code
  itself (the original cell text keeps the `M`).
- `?`: CASME II 2014 writes it when the AUs are unknown. Nothing is guessed; it is reported.

Every FACS code of `core.au.CATALOGUE` is accepted (e.g. `21`, `31`, `61`, `L20+21`). Importers
keep the cell as written beside the parsed codes; `au_cell_text` gives it back for an export
while the codes are unchanged.

Anything else is returned in `ParsedAUs.unparsed` with a reason, never silently dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from microau_gui.core.au import CATALOGUE


class Side(str, Enum):
    BOTH = "B"  # bilateral (no prefix in FACS notation)
    LEFT = "L"
    RIGHT = "R"


INTENSITIES = ("A", "B", "C", "D", "E")
LIPS = ("T", "B")  # FACS top / bottom lip prefixes
# AUs FACS lets a coder score on one lip only (T22, B28 ...): those acting on the lips themselves.
LIP_AUS = frozenset({8, 10, 16, 18, 22, 23, 24, 25, 28, 32, 37})


@dataclass(frozen=True, order=True)
class AUCode:
    """One coded AU as a FACS coder writes it."""

    number: int  # FACS number, e.g. 12
    side: Side = Side.BOTH
    intensity: str | None = None  # "A" (trace) ... "E" (maximum), None when not coded
    asymmetric: bool = False  # SAMM "A" prefix: both sides, unequal
    uncertain: bool = False  # "ref(..)" or one of "(X or Y)"
    lip: str | None = None  # FACS "T" (top lip) / "B" (bottom lip) prefix, lip AUs only

    def __post_init__(self):
        if self.intensity is not None and self.intensity not in INTENSITIES:
            raise ValueError(f"intensity must be one of A-E, not {self.intensity!r}")
        if self.asymmetric and self.side is not Side.BOTH:
            raise ValueError("an asymmetric AU involves both sides; it cannot also be L or R")
        if self.lip is not None and self.lip not in LIPS:
            raise ValueError(f"lip must be T (top) or B (bottom), not {self.lip!r}")

    @property
    def code(self) -> str:
        return f"AU{self.number}"

    def __str__(self) -> str:
        return format_au_codes((self,))


@dataclass(frozen=True)
class ParsedAUs:
    """Result of parsing one AU cell."""

    codes: tuple[AUCode, ...]
    unparsed: tuple[tuple[str, str], ...] = ()  # (token, reason) for everything not understood

    @property
    def ok(self) -> bool:
        return not self.unparsed

    @property
    def numbers(self) -> tuple[int, ...]:
        """Distinct AU numbers, sorted (laterality and intensity dropped)."""
        return tuple(sorted({c.number for c in self.codes}))


_SINGLE = re.compile(r"^(?:AU)?\s*([LRAMTB])?\s*(\d{1,2})\s*([A-E])?$", re.IGNORECASE)
_REF = re.compile(r"^REF\s*\((.*)\)$", re.IGNORECASE)
_OR = re.compile(r"^\((.*\bOR\b.*)\)$", re.IGNORECASE)
# "+" and ASCII/full-width commas, semicolons and "/" separate AUs; "or" only inside parentheses.
_SEPARATORS = re.compile(r"[+,;，、/]")


def _parse_single(token: str, uncertain: bool) -> AUCode | str:
    """One AU token -> AUCode, or the reason it is not one."""
    match = _SINGLE.match(token)
    if match is None:
        return "not an AU code"
    prefix, number_text, intensity = match.groups()
    number = int(number_text)
    if number not in CATALOGUE:
        return f"AU{number} is not in the catalogue"
    prefix = (prefix or "").upper()
    if prefix == "M" and CATALOGUE[number].group not in ("head", "eyes"):
        return f"the M (movement) prefix is for head and eye codes, not AU{number}"
    if prefix in LIPS and number not in LIP_AUS:
        return f"the {prefix} ({'top' if prefix == 'T' else 'bottom'}) lip prefix is for lip AUs, not AU{number}"
    side = {"L": Side.LEFT, "R": Side.RIGHT}.get(prefix, Side.BOTH)
    return AUCode(
        number=number,
        side=side,
        intensity=intensity.upper() if intensity else None,
        asymmetric=prefix == "A",
        uncertain=uncertain,
        lip=prefix if prefix in LIPS else None,
    )


def _split_top_level(text: str) -> list[str]:
    """Split on separators that are not inside parentheses."""
    parts, depth, current = [], 0, []
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth = max(0, depth - 1)
        if depth == 0 and _SEPARATORS.match(char):
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


def parse_au_string(text: object) -> ParsedAUs:
    """Parse a coding-sheet AU cell (string or number) into AU codes plus what was not understood."""
    if text is None:
        return ParsedAUs(codes=())
    if isinstance(text, float) and text.is_integer():
        text = int(text)
    raw = str(text).strip()
    if not raw:
        return ParsedAUs(codes=())
    codes: list[AUCode] = []
    unparsed: list[tuple[str, str]] = []
    for token in _split_top_level(raw):
        if token == "?":
            unparsed.append((token, "AUs marked unknown ('?') by the coder"))
            continue
        ref = _REF.match(token)
        alternatives = _OR.match(token)
        if ref:
            inner, uncertain = [ref.group(1).strip()], True
        elif alternatives:
            inner = [t.strip() for t in re.split(r"\bOR\b", alternatives.group(1), flags=re.I)]
            uncertain = True
        else:
            inner, uncertain = [token], False
        for piece in inner:
            result = _parse_single(piece, uncertain)
            if isinstance(result, AUCode):
                if result not in codes:
                    codes.append(result)
            else:
                unparsed.append((piece or token, result))
    return ParsedAUs(codes=tuple(codes), unparsed=tuple(unparsed))


def format_au_codes(codes) -> str:
    """Canonical FACS string, e.g. `4+7+L10+A12B+ref(43)`. `parse_au_string` inverts it."""
    pieces = []
    for code in codes:
        prefix = "A" if code.asymmetric else ("" if code.side is Side.BOTH else code.side.value)
        prefix = code.lip or prefix
        text = f"{prefix}{code.number}{code.intensity or ''}"
        pieces.append(f"ref({text})" if code.uncertain else text)
    return "+".join(pieces)


def au_cell_text(codes, original: str | None) -> str:
    """The AU cell to write for `codes`: the coder's `original` text while it still parses to
    exactly these codes (so an export reproduces the sheet, unparsed tokens included), else the
    canonical string."""
    codes = tuple(codes)
    if original is not None and parse_au_string(original).codes == codes:
        return original
    return format_au_codes(codes)
