"""Pure helpers behind the annotation keys and views: AU toggles, event navigation, co-occurrence.

Owns: `toggle_au`, `with_au_side`, `with_au_intensity`, `digit_aus`, `event_at`, `neighbour_event`,
`cooccurrence`, `PendingMark`, the I/A/O marking state machine (`mark_step`, `MarkStep`) and the
order of boundary moves (`boundary_move_order`), and an AU's own span moved key by key
(`moved_span`). May import core and store records only; no Qt,
so every rule here is tested without a window.

Digit keys: 1..9 then 0 toggle the first ten AUs of the model vocabulary (the default vocabulary
when no model is loaded): with the default 12-AU vocabulary 1=AU1, 2=AU2, 3=AU4, 4=AU5, 5=AU6,
6=AU7, 7=AU9, 8=AU10, 9=AU12, 0=AU14. Other AUs are toggled in the AU panel.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from microau_gui.core.au import au_number
from microau_gui.core.aus import AUCode, Side
from microau_gui.store.records import Boundary, Event

DIGIT_KEYS = ("1", "2", "3", "4", "5", "6", "7", "8", "9", "0")


@dataclass(frozen=True)
class PendingMark:
    """A new event being marked with I / A / O; it enters the store when the offset is marked."""

    video_id: int
    onset: int  # frame_idx
    apex: int | None = None  # frame_idx; the middle frame when never marked


def digit_aus(vocab: Sequence[str]) -> dict[str, str]:
    """Digit key -> AU code: "1".."9", "0" map to the first ten AUs of `vocab`."""
    return dict(zip(DIGIT_KEYS, vocab))


def toggle_au(aus: Sequence[AUCode], code: str | int) -> tuple[AUCode, ...]:
    """Remove the AU (on any side) if coded, else add it bilateral without intensity."""
    number = au_number(code)
    if any(a.number == number for a in aus):
        return tuple(a for a in aus if a.number != number)
    return tuple(aus) + (AUCode(number),)


def with_au_side(aus: Sequence[AUCode], code: str | int, side: Side | str) -> tuple[AUCode, ...]:
    """The AU coded on `side` (added when missing); a lateral code drops the asymmetric flag.

    `side` may be the Side or its letter ("B", "L", "R"): Qt hands a combo box's item data back
    as the plain string, and the store needs the Side."""
    side = Side(side)
    number = au_number(code)
    found = [a for a in aus if a.number == number]
    if not found:
        return tuple(aus) + (AUCode(number, side=side),)
    return tuple(dataclasses.replace(a, side=side, asymmetric=a.asymmetric and side is Side.BOTH)
                 if a.number == number else a for a in aus)


def with_au_intensity(aus: Sequence[AUCode], code: str | int,
                      intensity: str | None) -> tuple[AUCode, ...]:
    """The AU with FACS intensity A-E (None: not coded); added bilateral when missing."""
    number = au_number(code)
    if not any(a.number == number for a in aus):
        return tuple(aus) + (AUCode(number, intensity=intensity),)
    return tuple(dataclasses.replace(a, intensity=intensity) if a.number == number else a
                 for a in aus)


def event_at(events: Sequence[Event], frame_idx: int) -> Event | None:
    """The event whose span holds `frame_idx` (the latest onset when several overlap)."""
    inside = [e for e in events if e.onset <= frame_idx <= e.offset]
    return max(inside, key=lambda e: (e.onset, e.id)) if inside else None


def neighbour_event(events: Sequence[Event], frame_idx: int, step: int,
                    current_id: int | None = None) -> Event | None:
    """The next (step=+1) or previous (step=-1) event by onset, from the selected one or the playhead.

    From a selected event the order is by (onset, id), so overlapping events are all reachable.
    """
    ordered = sorted(events, key=lambda e: (e.onset, e.id))
    if not ordered:
        return None
    ids = [e.id for e in ordered]
    if current_id in ids:
        pos = ids.index(current_id) + step
        return ordered[pos] if 0 <= pos < len(ordered) else None
    if step > 0:
        return next((e for e in ordered if e.onset > frame_idx), None)
    return next((e for e in reversed(ordered) if e.onset < frame_idx), None)


def cooccurrence(events: Sequence[Event], vocab: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """P(AU_j | AU_i) over the events, side and intensity ignored.

    Returns (cond (n, n) float32 with NaN rows for AUs never coded, support (n,) int64 events per
    AU). The diagonal is 1 for every coded AU.
    """
    numbers = [au_number(code) for code in vocab]
    present = np.zeros((len(events), len(numbers)), dtype=np.float32)  # (n_events, n_au)
    for row, event in enumerate(events):
        coded = {a.number for a in event.aus}
        present[row] = [n in coded for n in numbers]
    joint = present.T @ present  # (n_au, n_au) events with both AU_i and AU_j
    support = np.diag(joint).astype(np.int64)  # (n_au,)
    with np.errstate(invalid="ignore", divide="ignore"):
        cond = joint / support[:, None]  # (n_au, n_au) row i: P(AU_j | AU_i)
    cond[support == 0] = np.nan
    return cond.astype(np.float32), support


@dataclass(frozen=True)
class MarkStep:
    """What one I / A / O key press does to the event being marked."""

    pending: PendingMark | None  # the marking state afterwards
    status: str  # one line for the status bar ("" when the event is added)
    new_event: tuple[int, int, int] | None = None  # (onset, apex, offset) to add, on O
    deselect: bool = False  # I starts a new event: the selection is dropped


def mark_step(pending: PendingMark | None, boundary: Boundary, frame_idx: int,
              video_id: int, label: Callable[[int], str] = str) -> MarkStep:
    """I starts a new event at `frame_idx`, A sets its apex, O its offset and hands back the
    event to add (apex = middle frame when not marked); out-of-order marks are refused with
    the reason, leaving the state as it was. `label` writes a frame_idx as the coder's chosen
    numbering (session.numbering) in the status line."""
    if boundary is Boundary.ONSET:
        return MarkStep(PendingMark(video_id, frame_idx),
                        f"onset marked at frame {label(frame_idx)}: go to the apex (A) and the "
                        "offset (O); Esc cancels", deselect=True)
    if pending is None:
        return MarkStep(None, f"press I at the onset first (Shift+{boundary.value[0].upper()} "
                              f"moves the selected event's {boundary.value})")
    if frame_idx < pending.onset:
        return MarkStep(pending, f"the {boundary.value} (frame {label(frame_idx)}) cannot come "
                                 f"before the onset (frame {label(pending.onset)})")
    if boundary is Boundary.APEX:
        return MarkStep(PendingMark(pending.video_id, pending.onset, frame_idx),
                        f"apex marked at frame {label(frame_idx)}: go to the offset (O)")
    apex = pending.apex if pending.apex is not None else (pending.onset + frame_idx) // 2
    if apex > frame_idx:
        return MarkStep(pending, f"the offset (frame {label(frame_idx)}) cannot come before the "
                                 f"apex (frame {label(apex)})")
    return MarkStep(pending, "", (pending.onset, apex, frame_idx))


def boundary_move_order(event: Event, onset: int, apex: int,
                        offset: int) -> list[tuple[Boundary, int]]:
    """The boundary moves that take `event` to (onset, apex, offset), in an order whose every
    intermediate state keeps onset <= apex <= offset (shrinking 2-5-9 to 6-6-6 must move the
    apex first; the plain order when none does, so the store names what is wrong with the
    target itself); boundaries already in place are left out."""
    target = {Boundary.ONSET: onset, Boundary.APEX: apex, Boundary.OFFSET: offset}
    plain = (Boundary.ONSET, Boundary.APEX, Boundary.OFFSET)
    chosen = plain
    for order in itertools.permutations(plain):
        frames = {b: event.frame(b) for b in plain}
        valid = True
        for boundary in order:
            frames[boundary] = target[boundary]
            valid = valid and frames[Boundary.ONSET] <= frames[Boundary.APEX] <= frames[Boundary.OFFSET]
        if valid:
            chosen = order
            break
    return [(b, int(target[b])) for b in chosen if event.frame(b) != target[b]]


def moved_span(span: tuple[int, int, int], boundary: Boundary,
               frame_idx: int) -> tuple[int, int, int]:
    """(onset, apex, offset) with one boundary moved to `frame_idx`; the others follow only as
    far as keeps onset <= apex <= offset (an AU's own timing, set key by key)."""
    onset, apex, offset = span
    if boundary is Boundary.ONSET:
        return frame_idx, max(apex, frame_idx), max(offset, frame_idx)
    if boundary is Boundary.APEX:
        return min(onset, frame_idx), frame_idx, max(offset, frame_idx)
    return min(onset, frame_idx), min(apex, frame_idx), frame_idx
