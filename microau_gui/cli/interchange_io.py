"""The interchange formats on the command line: `import elan|openface|imotions|pyfeat` and
`export --format elan|boris|frames|frames-wide`.

Owns: `IMPORT_KINDS`, `EXPORT_FORMATS`, `add_import_arguments`, `add_export_arguments`,
`run_import`, `run_export` (called by cmd_import / cmd_export). May import every layer; the work
is in `microau_gui.interchange`.

Which video: a trace or ELAN file belongs to one video of the project. `VIDEO` (the positional
after the file, or `--video`) is the video's name in the project or its media path; a path not
yet in the project is added (its frame count and rate read by the media layer). An ELAN file
without it is matched through its media descriptor.
"""

from __future__ import annotations

from pathlib import Path

from microau_gui.core.errors import UserError
from microau_gui.core.types import DECISION_THRESHOLD

IMPORT_KINDS = ("elan", "openface", "imotions", "pyfeat")
EXPORT_FORMATS = ("elan", "boris", "frames", "frames-wide")


def add_import_arguments(parser) -> None:
    parser.add_argument("--video", default=None,
                        help="elan/openface/imotions/pyfeat: the project video the file belongs "
                        "to (name or media path; default: the second positional, or for elan the "
                        "video its media descriptor links)")
    parser.add_argument("--align", choices=("frame", "time"), default="frame",
                        help="openface/imotions/pyfeat: match rows to frames by the tool's frame "
                        "number (default) or by its timestamps at the video's frame rate")
    parser.add_argument("--name", default=None,
                        help="openface/imotions/pyfeat: the trace's name in the timeline "
                        "(default: the file name; a trace of the same name is replaced)")
    parser.add_argument("--min-confidence", type=float, default=None,
                        help="openface: rows below this tracking confidence are masked "
                        "(default 0.8)")
    parser.add_argument("--tiers", default=None, metavar="TIER=ROLE[:CODER],...",
                        help="elan: tier map, e.g. 'Smile=AU12:anna,Events=events:anna' "
                        "(default: our export layout, 'events [CODER]', 'AU12 [CODER]')")


def add_export_arguments(parser) -> None:
    parser.add_argument("--video", default=None,
                        help="elan: the video to export (name or media path; default: the "
                        "project's only video)")
    parser.add_argument("--model", default=None,
                        help="elan: add thresholded spans of this model version's cached "
                        "predictions; frames/frames-wide: only this model version")
    parser.add_argument("--threshold", type=float, default=DECISION_THRESHOLD,
                        help="elan: probability from which a model AU span is written (0.5)")
    parser.add_argument("--candidates", action="store_true",
                        help="elan: add the spotted candidates the project keeps")
    parser.add_argument("--no-traces", action="store_true",
                        help="frames/frames-wide: leave out imported comparison traces")


def _find_video(project, text: str | None, *, add: bool):
    videos = project.videos()
    if text is None:
        if len(videos) == 1:
            return videos[0]
        raise UserError(f"the project has {len(videos)} videos; name one with --video "
                        f"({', '.join(v.name for v in videos[:8]) or 'none'})")
    by_name = [v for v in videos if v.name == text]
    if len(by_name) == 1:
        return by_name[0]
    path = Path(text)
    if path.exists():
        known = project.video_by_path(path)
        if known is not None:
            return known
        if add:
            from microau_gui.media import open_media

            with open_media(path) as source:
                return project.add_video(path, source)
    if len(by_name) > 1:
        raise UserError(f"{len(by_name)} videos are named {text!r}; give the media path instead")
    raise UserError(f"no video {text!r} in the project, and no media file at that path")


def run_import(args) -> int:
    """An ELAN file's events or a tool's trace into a project (created when missing). The video
    is added in the same transaction as what is imported, so a refused file leaves the project as
    it was, and a project this run created is removed again (cli.cmd_import.import_target)."""
    from microau_gui.cli.cmd_import import import_target

    if not args.project:
        raise UserError(f"import {args.kind} needs --project P: the project to add it to")
    video_text = args.video or args.media_root
    with import_target(args.project) as (project, outcome):
        if args.kind == "elan":
            from microau_gui.interchange.elan import import_elan, parse_tier_map

            with project.transaction():
                video = _find_video(project, video_text, add=True) if video_text else None
                summary = import_elan(project, args.sheet, video.id if video else None,
                                      parse_tier_map(args.tiers) if args.tiers else None)
                if not summary.events_added and not summary.duplicates:
                    raise UserError(f"no event of {Path(args.sheet).name} could be imported "
                                    f"({len(summary.issues)} annotations skipped, e.g. "
                                    f"{summary.issues[0] if summary.issues else '-'}); "
                                    "nothing was changed")
            outcome["added"] = True
            print(f"project {args.project}: {summary}")
            for issue in summary.issues[:20]:
                print(f"  skipped: {issue}")
            return 0
        from microau_gui.interchange.traces import DEFAULT_MIN_CONFIDENCE, read_trace

        if video_text is None:
            raise UserError(f"import {args.kind} needs the video the file was made from: "
                            f"import {args.kind} FILE VIDEO --project P")
        with project.transaction():
            video = _find_video(project, video_text, add=True)
            trace = read_trace(args.kind, args.sheet, fps=video.fps, n_frames=video.n_frames,
                               align=args.align, name=args.name,
                               min_confidence=args.min_confidence or DEFAULT_MIN_CONFIDENCE,
                               numbers=project.frame_numbers(video.id))
            project.traces.put(video.id, trace)
        outcome["added"] = True
    meta = trace.meta
    print(f"project {args.project}: comparison trace {trace.name!r} on video {video.name}: "
          f"{len(trace.frame_idx)} frames, {len(trace.aus)} AUs ({', '.join(trace.channels)}); "
          f"{meta['masked']} masked, {meta['outside_video']} outside the video")
    return 0


def run_export(args) -> int:
    from microau_gui.store.project import Project

    with Project.open(args.project) as project:
        if args.format == "elan":
            from microau_gui.interchange.elan import ModelSpans, export_elan

            video = _find_video(project, args.video, add=False)
            model = None
            if args.model:
                version = next((m for m in project.models.list() if m.name == args.model), None)
                if version is None:
                    raise UserError(f"no model version {args.model!r} in the project")
                trace = project.predictions.probs(video.id, version.id)
                model = ModelSpans(version.name, trace.frame_idx, trace.probs, trace.vocab,
                                   args.threshold)
            candidates = []
            if args.candidates:
                from microau_gui.session.review import stored_candidates

                candidates = [(c.onset, c.offset) for c in stored_candidates(project, video.id)]
            print(export_elan(project, video.id, args.out, coder=args.coder, source=args.source,
                              candidates=candidates, model=model))
        elif args.format == "boris":
            from microau_gui.interchange.boris import export_boris

            path, n_events = export_boris(project, args.out, coder=args.coder, source=args.source)
            print(f"wrote {n_events} events to {path}")
        else:
            from microau_gui.interchange.framewise import export_frames

            path, n_rows = export_frames(project, args.out,
                                         layout="wide" if args.format == "frames-wide" else "long",
                                         model=args.model, traces=not args.no_traces)
            print(f"wrote {n_rows} rows to {path}")
    return 0
