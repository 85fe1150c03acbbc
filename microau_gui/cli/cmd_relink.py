"""`python main.py relink --project P [VIDEO NEW_PATH] [--force]`: point a video whose media moved
at its new place.

Owns the `relink` subcommand. May import every layer; the work is `store.Project.relink_video`
(the same door as the window's File > Relink video…).

VIDEO is the video's id or name in the project. Without VIDEO and NEW_PATH it lists the videos
whose media is missing. The new file must hold the same media (its content hash is compared);
`--force` relinks anyway. A wrong project, video or path is a one-line error and exit code 2,
and the project is left unchanged.
"""

from __future__ import annotations

from pathlib import Path

from microau_gui.core.errors import UserError

NAME = "relink"
HELP = "point a video of a project at its moved media file or image folder"


def add_arguments(parser) -> None:
    parser.add_argument("--project", required=True, help="project file (.maus)")
    parser.add_argument("video", nargs="?", help="the video's id or name (none: list missing media)")
    parser.add_argument("new_path", nargs="?", help="where its video file or image folder is now")
    parser.add_argument("--force", action="store_true",
                        help="relink even when the new media's content differs")


def _find_video(project, key: str):
    videos = project.videos()
    if key.isdigit():
        found = [v for v in videos if v.id == int(key)]
    else:
        found = [v for v in videos if v.name == key]
    if not found:
        raise UserError(f"no video {key!r} in {project.path.name}; run `relink --project "
                        f"{project.path}` to list the ones whose media is missing")
    if len(found) > 1:
        ids = ", ".join(str(v.id) for v in found)
        raise UserError(f"several videos are named {key!r} (ids {ids}); pass the id instead")
    return found[0]


def run(args) -> int:
    from microau_gui.store.project import Project

    project_path = Path(args.project)
    if not project_path.is_file():
        raise UserError(f"{project_path}: no such project file")
    if (args.video is None) != (args.new_path is None):
        raise UserError("pass both VIDEO and NEW_PATH (or neither, to list missing media)")
    with Project.open(project_path) as project:
        if args.video is None:
            missing = [v for v in project.videos() if not v.path.exists()]
            for video in missing:
                print(f"{video.id}\t{video.name}\t{video.path}")
            if not missing:
                print("every video's media is in place")
            return 0
        new_path = Path(args.new_path)
        if not new_path.exists():
            raise UserError(f"{new_path}: no such file or folder")
        video = _find_video(project, args.video)
        old = video.path
        relinked = project.relink_video(video.id, new_path, force=args.force)
        print(f"relinked {relinked.name}: {old} -> {relinked.path}")
    return 0
