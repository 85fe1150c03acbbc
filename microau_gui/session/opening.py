"""What a path given to the window opens: a project, or a video / image folder and its project.

Owns: `OpenTarget`, `resolve_target`, `project_path_for_media`, `open_or_create_project`,
`ensure_video`, `bundled_demo_path`, `demo_project_path`. May import store, media and core; no
Qt.

The demo (`python main.py` without a path) opens a working copy of the bundled `assets/demo`
folder in the user's data folder (`~/.local/share/microau_studio/demo-<8 hex of the bundle>/`),
made on first use: the repository's files stay as committed however the coder edits the demo,
and the edits persist between runs. A new bundle (another hash) gets a new copy; an older copy
is left as it is. When no copy can be written, the bundled project itself is opened.

Where the project of a bare video or image folder lives (the choice, also in the README):
- next to the media, named after it: `clip.mp4` -> `clip.maus` in the same folder, an image
  folder `EP02_01f/` -> `EP02_01f.maus` beside the folder (never inside it, where it would sit
  among the frames). Opening the same media again reuses that project, so edits are never split
  over several files;
- when that folder is not writable (a read-only dataset mount), in the user's data folder:
  `~/.local/share/microau_studio/projects/<name>-<8 hex of the media path hash>.maus`.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from microau_gui.core.errors import UserError
from microau_gui.core.files import atomic_dir
from microau_gui.core.paths import data_dir, install_root
from microau_gui.media import IMAGE_SUFFIXES, VIDEO_SUFFIXES, list_image_files, open_media
from microau_gui.store.db import SUFFIX, is_project_file
from microau_gui.store.project import Project
from microau_gui.store.records import Video

DEMO_PROJECT = install_root() / "assets" / "demo" / "demo.maus"


def bundled_demo_path() -> Path | None:
    """The demo project in the repository (`make demo-assets` builds it), or None when not built."""
    return DEMO_PROJECT if DEMO_PROJECT.is_file() else None


def demo_project_path() -> Path | None:
    """The demo project to open: the user's working copy of the bundle (see the module docstring)."""
    bundled = bundled_demo_path()
    if bundled is None:
        return None
    digest = hashlib.sha1(bundled.read_bytes()).hexdigest()[:8]
    copy = data_dir() / f"demo-{digest}"
    if (copy / bundled.name).is_file():
        return copy / bundled.name
    try:
        copy.parent.mkdir(parents=True, exist_ok=True)
        with atomic_dir(copy) as staging:
            shutil.copytree(bundled.parent, staging, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("*-wal", "*-shm"))
    except OSError:
        if (copy / bundled.name).is_file():  # another process made it meanwhile
            return copy / bundled.name
        return bundled
    return copy / bundled.name


def user_projects_dir() -> Path:
    return data_dir() / "projects"


@dataclass(frozen=True)
class OpenTarget:
    """A project to open and, for a bare media path, the media to show in it."""

    project_path: Path
    media_path: Path | None  # None: open the project on its first video


def project_path_for_media(media: Path) -> Path:
    """Where the project of a bare video or image folder lives (see the module docstring)."""
    media = media.absolute()
    beside = media.parent / (media.stem if media.is_file() else media.name)
    beside = beside.with_name(beside.name + SUFFIX)
    if beside.exists() or os.access(media.parent, os.W_OK):
        return beside
    digest = hashlib.sha1(str(media).encode()).hexdigest()[:8]
    return user_projects_dir() / f"{beside.stem}-{digest}{SUFFIX}"


def resolve_target(path: Path | str) -> OpenTarget:
    """Decide what `python main.py PATH` (or File > Open) opens; UserError for anything else."""
    path = Path(path).expanduser()
    if not path.exists():
        raise UserError(f"{path} does not exist; give a project (.maus), a video file or an "
                        "image folder")
    if path.is_file() and (path.suffix == SUFFIX or is_project_file(path)):
        return OpenTarget(path.absolute(), None)
    if path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES:
        return _media_target(path)
    if path.is_dir():
        if not list_image_files(path):
            raise UserError(f"{path} holds no images ({', '.join(IMAGE_SUFFIXES)}); open a folder "
                            "with one clip's frames, or import a dataset (File > Import dataset)")
        return _media_target(path)
    raise UserError(f"{path.name} is not a project (.maus), a video (mp4/avi/mov/mkv) or an "
                    "image folder")


def _media_target(media: Path) -> OpenTarget:
    """The target of a bare media path; media that would get a new project is opened first, so
    a file that cannot be decoded is refused before an empty project is left beside it."""
    project_path = project_path_for_media(media)
    if not project_path.exists():
        with open_media(media, cache_frames=1):
            pass
    return OpenTarget(project_path, media.absolute())


def open_or_create_project(path: Path) -> Project:
    """Open the project at `path`, creating it (and its folder) when it does not exist yet."""
    if path.exists():
        return Project.open(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return Project.create(path)


def ensure_video(project: Project, media: Path) -> Video:
    """The project's video for this media path, added (probed with the media layer) when new."""
    known = project.video_by_path(media)
    if known is not None:
        return known
    with open_media(media, cache_frames=1) as source:
        return project.add_video(media, source, name=media.stem if media.is_file() else media.name)
