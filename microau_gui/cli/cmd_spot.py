"""`python main.py spot MEDIA --out CSV`: micro- and macro-expression candidates of one video.

Owns the `spot` subcommand. May import every layer; the work is in `spotting.spotter` and
`spotting.files`.

Writes one CSV row per candidate (`spotting.files.SPOT_COLUMNS`: video, onset, apex, offset
frame_idx, type micro|macro, score, regions) and prints a one-line summary with the speed.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from microau_gui.core.errors import UserError

NAME = "spot"
HELP = "spot micro- and macro-expression candidates in a video; one CSV row per candidate"


def add_arguments(parser) -> None:
    from microau_gui.face.motion import FLOW_METHODS
    from microau_gui.spotting.signals import SignalConfig

    parser.add_argument("media", help="video file or image-sequence folder")
    parser.add_argument("--out", required=True, metavar="CSV", help="candidate CSV to write")
    parser.add_argument("--micro-max-s", type=float, default=0.5,
                        help="longest micro-expression in seconds; longer candidates are macro "
                        "(default 0.5)")
    parser.add_argument("--threshold-p", type=float, default=None,
                        help="MEGC threshold T = mean + p (max - mean) of the motion score, in "
                        "noise units (default 0: --min-z alone; raise it to find less)")
    parser.add_argument("--min-z", type=float, default=None,
                        help="the threshold never drops below this many noise units (default 6; "
                        "lower finds fainter movements and more false ones)")
    parser.add_argument("--detect-every", type=int, default=None,
                        help="run the face mesh on every n-th frame (default 5)")
    parser.add_argument("--crop-px", type=int, default=None,
                        help="side of the aligned face crop motion is measured on (default 128)")
    parser.add_argument("--flow-method", default=None, metavar="METHOD",
                        help="optical flow the motion is measured with, one of "
                        f"{', '.join(FLOW_METHODS)} (default {SignalConfig().flow_method})")
    parser.add_argument("--fps", type=float, default=None,
                        help="frame rate of an image folder (files store none; e.g. 200 for CASME II)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _config(args):
    from microau_gui.spotting.spotter import SpotConfig, with_micro_max

    if not 0.04 <= args.micro_max_s <= 2.0:
        raise UserError(f"--micro-max-s {args.micro_max_s}: give a duration between 0.04 and 2 s")
    config = with_micro_max(SpotConfig(), args.micro_max_s)
    if args.threshold_p is not None:
        if not 0.0 <= args.threshold_p < 1.0:
            raise UserError(f"--threshold-p {args.threshold_p}: give a value in [0, 1)")
        config = replace(config, threshold_p=args.threshold_p)
    if args.min_z is not None:
        config = replace(config, min_z=args.min_z)
    signal = config.signal
    if args.detect_every is not None:
        if args.detect_every < 1:
            raise UserError("--detect-every must be at least 1")
        signal = replace(signal, detect_every=args.detect_every)
    if args.crop_px is not None:
        if args.crop_px < 32 or args.crop_px % signal.block_px:
            raise UserError(f"--crop-px {args.crop_px}: give a multiple of {signal.block_px}, "
                            "at least 32")
        signal = replace(signal, crop_px=args.crop_px)
    if args.flow_method is not None:
        signal = replace(signal, flow_method=args.flow_method)  # SignalConfig refuses unknown ones
    return replace(config, signal=signal)


def run(args) -> int:
    from microau_gui.cli.outputs import check_out
    from microau_gui.cli.progress import ProgressBar
    from microau_gui.spotting.files import write_candidates_csv
    from microau_gui.spotting.spotter import spot_media

    config = _config(args)
    if args.fps is not None and args.fps <= 0:
        raise UserError(f"--fps {args.fps}: give a positive frame rate")
    out = check_out(args.out, reads=[(args.media, "the input media")])
    with ProgressBar("spotting", "frame", enabled=not args.no_progress) as bar:
        result = spot_media(args.media, config, progress=bar, fps=args.fps)
    write_candidates_csv(out, Path(args.media).name, result.candidates)
    signals = result.signals
    if signals.n_frames <= 2 * signals.gap_frames:
        print(f"note: {signals.n_frames} frames at {signals.fps:g} fps is shorter than twice "
              f"--micro-max-s; nothing can be spotted (for an image folder, check --fps)")
    n_micro = sum(c.kind == "micro" for c in result.candidates)
    print(f"{len(result.candidates)} candidates ({n_micro} micro, {len(result.candidates) - n_micro} "
          f"macro) in {result.signals.n_frames} frames, {result.frames_per_s:.0f} frames/s -> {out}")
    return 0
