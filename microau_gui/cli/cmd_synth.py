"""`python main.py synth`: synthetic micro-expression data from the real face photos.

Owns the `synth` subcommand. May import every layer; the work is in `synth.clips` and
`synth.long_video`.

    synth --out DIR [--subjects N] [--clips-per-subject N] [--size PX] [--fps F] [--seed S]
          clips in the CASME II layout plus DIR/coding.xlsx (CASME II 2019 columns)
    synth --long --out DIR [--videos N] [--seconds S] [--fps F] [--seed S]
          interview-like mp4 videos plus DIR/megc_gt.xlsx (micro and macro intervals)

See microau_gui/synth/clips.py and long_video.py for what is generated. Progress goes to stderr
(tqdm); the summary line to stdout.
"""

from __future__ import annotations


from microau_gui.core.errors import UserError

NAME = "synth"
HELP = "generate synthetic micro-expression clips (CASME II layout) or long videos (--long)"


def add_arguments(parser) -> None:
    parser.add_argument("--out", required=True, metavar="DIR", help="new or empty output folder")
    parser.add_argument("--long", action="store_true",
                        help="write long interview-like videos with MEGC ground truth instead of clips")
    parser.add_argument("--subjects", type=int, default=3,
                        help="clips: subjects, one per real face photo (1-3, default 3)")
    parser.add_argument("--clips-per-subject", type=int, default=20,
                        help="clips: per subject (default 20: enough for every model AU in every subject)")
    parser.add_argument("--size", type=int, default=None,
                        help="face size in px (default 224 for clips, 230 in the 640x480 long videos)")
    parser.add_argument("--fps", type=float, default=None,
                        help="frame rate (default 200 for clips like CASME II, 30 for long videos)")
    parser.add_argument("--videos", type=int, default=3, help="long: number of videos (default 3)")
    parser.add_argument("--seconds", type=float, default=60.0, help="long: length of each video (default 60)")
    parser.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives the same data")
    parser.add_argument("--combos", default=None,
                        help="clips: comma-separated AU combinations to draw from instead of the "
                             "built-in table, e.g. '12,6+12,4+7' ('none' = no movement)")


def run(args) -> int:
    from microau_gui.cli.progress import ProgressBar

    with ProgressBar("synth", "frame" if args.long else "clip") as progress:
        if args.long:
            return _run_long(args, progress)
        return _run_clips(args, progress)


def _run_clips(args, progress) -> int:
    from microau_gui.synth.clips import check_subjects, generate_clips
    from microau_gui.synth.combos import parse_combination

    check_subjects(args.subjects)
    combos = None
    if args.combos:
        combos = [parse_combination(text) for text in args.combos.split(",") if text.strip()]
        if not combos:
            raise UserError("--combos is empty; give AU combinations like 12,6+12,4+7")
    result = generate_clips(args.out, subjects=args.subjects, clips_per_subject=args.clips_per_subject,
                            size=args.size or 224, fps=args.fps or 200.0, seed=args.seed,
                            combinations=combos, progress=progress)
    n = len(result.clips)
    print(f"wrote {n} clips of {len(result.dataset.subjects)} subjects to {result.root} "
          f"and {result.sheet.name} in {result.seconds:.1f} s ({result.seconds / max(1, n):.2f} s per clip)")
    return 0


def _run_long(args, progress) -> int:
    from microau_gui.synth.long_video import generate_long_videos

    result = generate_long_videos(args.out, videos=args.videos, seconds=args.seconds,
                                  fps=args.fps or 30.0, face_px=args.size or 230, seed=args.seed,
                                  progress=progress)
    n_micro = sum(1 for s in result.samples if s.expression_type == "micro")
    n_macro = len(result.samples) - n_micro
    print(f"wrote {len(result.videos)} videos ({n_micro} micro, {n_macro} macro, "
          f"{len(result.blinks)} uncoded blinks) to {result.root} and {result.sheet.name} "
          f"in {result.seconds:.1f} s")
    return 0
