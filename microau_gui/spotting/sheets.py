"""Coding sheets as event tables, through the dataset importers (MEGC ground truth and others).

Owns: `read_sheet_events`. May import store, media, core and `spotting.agreement` (never
`spotting.files`, which calls in here: the two would import each other). No Qt.

Video keys are the media path relative to the media root (`s15/15_0101.mp4`), so the spot CSV's
`video` (the media file name) pairs with them through `files.match_video_keys`. Every video's
length comes from its frame index, so kappa counts all its frames.
"""

from __future__ import annotations

from pathlib import Path

from microau_gui.core.errors import UserError
from microau_gui.spotting.agreement import CodedEvent


def _key(media_path: Path, media_root: Path) -> str:
    try:
        return media_path.resolve().relative_to(media_root.resolve()).as_posix()
    except ValueError:
        return media_path.name


def read_sheet_events(path: Path, kind: str, media_root: Path | None, coder: str | None = None):
    """Events of a dataset sheet of `kind` (e.g. "megc"); media_root defaults to the sheet's folder.

    Returns (events, kinds, n_frames by video key, skipped rows with the reason); `files` makes
    the `EventTable` of them.
    """
    from microau_gui.media import frame_index
    from microau_gui.store.importers import KINDS, import_dataset

    if kind not in KINDS:
        raise UserError(f"unknown sheet kind {kind!r}; use one of {', '.join(KINDS)}")
    media_root = Path(media_root) if media_root is not None else Path(path).parent
    if not media_root.is_dir():
        raise UserError(f"{media_root}: media root folder does not exist; pass --media-root")
    indexes = {}

    def cached_index(media_path: Path):
        if media_path not in indexes:
            indexes[media_path] = frame_index(media_path)
        return indexes[media_path]

    dataset = import_dataset(kind, path, media_root, frame_index=cached_index)
    skipped = tuple(str(issue) for issue in dataset.report.skipped)
    if not dataset.samples:
        detail = f" ({skipped[0]})" if skipped else ""
        raise UserError(f"{Path(path).name}: no usable {kind} rows{detail}; check the sheet and "
                        "--media-root")
    events, kinds, n_frames = [], [], {}
    for sample in dataset.samples:
        key = _key(sample.media_path, media_root)
        events.append(CodedEvent(video=key, onset=sample.onset, offset=sample.offset,
                                 apex=sample.apex, aus=frozenset(f"AU{n}" for n in sample.au_numbers),
                                 coder=coder or "", emotion=(sample.emotion or "").strip().lower()))
        kinds.append(sample.expression_type if sample.expression_type in ("micro", "macro") else "")
        n_frames[key] = len(cached_index(sample.media_path).frame_numbers)
    return tuple(events), tuple(kinds), n_frames, skipped
