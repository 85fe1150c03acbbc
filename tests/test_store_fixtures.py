"""Helpers shared by the store, command and export tests (no tests here).

Media is real: small JPEG sequences cut from a real face photo, opened by the real media layer.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from microau_gui.core.aus import parse_au_string
from microau_gui.media import open_media, write_image_sequence
from microau_gui.store.project import Project


def face_frames(photo: Path, n_frames: int, size_px: int = 48) -> list[np.ndarray]:
    """n_frames RGB crops of a real photo, shifted by one pixel per frame so frames differ."""
    import cv2

    bgr = cv2.imread(str(photo))
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    h, w = rgb.shape[:2]
    side = min(h, w) // 2
    frames = []
    for k in range(n_frames):
        crop = rgb[k % 8: k % 8 + side, k % 8: k % 8 + side]
        frames.append(cv2.resize(crop, (size_px, size_px), interpolation=cv2.INTER_AREA))
    return frames


def write_clip(folder: Path, photo: Path, n_frames: int, first_number: int = 1) -> Path:
    """A CASME II-style clip folder `img{first_number}.jpg ...`."""
    write_image_sequence(folder, face_frames(photo, n_frames), pattern="img{n}.jpg",
                         first_number=first_number)
    return folder


def aus(text: str):
    parsed = parse_au_string(text)
    assert parsed.ok, parsed.unparsed
    return parsed.codes


def small_project(tmp_path: Path, photo: Path) -> Project:
    """A project with two clips of one subject, three events, AUs and a note."""
    project = Project.create(tmp_path / "study.maus")
    clip_a = write_clip(tmp_path / "media" / "sub01" / "EP01_01", photo, 20, first_number=46)
    clip_b = write_clip(tmp_path / "media" / "sub01" / "EP02_03f", photo, 12, first_number=1)
    with open_media(clip_a) as source:
        video_a = project.add_video(clip_a, source, name="EP01_01", subject="01")
    with open_media(clip_b) as source:
        video_b = project.add_video(clip_b, source, name="EP02_03f", subject="01")
    first = project.add_event(video_a.id, 2, 5, 9, aus("4+7+L10"), emotion="disgust",
                              objective_class="III", coder="ann")
    project.add_event(video_a.id, 11, 12, 18, aus("A12B+ref(43)"), emotion="happiness",
                      coder="ann")
    project.add_event(video_b.id, 0, 3, 11, aus("R14C"), expression_type="macro", coder="bob")
    project.add_note("brow movement starts before onset", event_id=first.id, author="ann")
    project.add_note("lighting flicker", video_id=video_b.id, frame_idx=4, author="bob")
    return project


# What turns a schema-9 file back into the schema-8 file (tests of older migrations undo it).
UNDO_SHEET_APEX_NUMBER = (
    "ALTER TABLE events DROP COLUMN apex_number",
    "DELETE FROM schema_migrations WHERE version = 9",
    "PRAGMA user_version = 8",
)

# What turns a schema-9 file back into the schema-7 file.
UNDO_PREDICTION_NUMERICS = (
    *UNDO_SHEET_APEX_NUMBER,
    "ALTER TABLE predictions DROP COLUMN numerics",
    "DELETE FROM schema_migrations WHERE version = 8",
    "PRAGMA user_version = 7",
)

# What turns a schema-9 file back into the schema-6 file.
UNDO_BLIND_AND_AU_TIMING = (
    *UNDO_PREDICTION_NUMERICS,
    "ALTER TABLE events DROP COLUMN blind",
    "ALTER TABLE event_aus DROP COLUMN onset_idx",
    "ALTER TABLE event_aus DROP COLUMN apex_idx",
    "ALTER TABLE event_aus DROP COLUMN offset_idx",
    "DELETE FROM schema_migrations WHERE version = 7",
    "PRAGMA user_version = 6",
)
