"""`python main.py eval-spot --pred CSV --gt SHEET [--json R]`: MEGC scores of spotted intervals.

Owns the `eval-spot` subcommand. May import every layer; the work is in `spotting.intervals`
and `spotting.files`.

A prediction is a hit when its IoU with a ground-truth interval of the same type is >= 0.5;
matching is one-to-one, greedy by IoU (see `spotting.intervals`). Prints precision, recall and F1
overall and for micro and macro; `--json` writes `{"overall": {...}, "micro": {...}, "macro":
{...}}` with precision, recall, f1, tp, fp, fn.
"""

from __future__ import annotations

from pathlib import Path

from microau_gui.cli.reports import write_json
from microau_gui.core.errors import UserError

NAME = "eval-spot"
HELP = "score spotted intervals against ground truth (MEGC protocol, IoU >= 0.5)"


def add_arguments(parser) -> None:
    parser.add_argument("--pred", required=True, metavar="CSV", help="candidates written by `spot`")
    parser.add_argument("--gt", required=True, metavar="SHEET",
                        help="ground truth: a MEGC sheet (xlsx/csv) or our spotting CSV")
    parser.add_argument("--kind", default=None,
                        help="importer for the ground-truth sheet (megc, csv, casme2, samm, casme3); "
                        "default: our spotting CSV when its header has onset/offset, else megc")
    parser.add_argument("--media-root", default=None,
                        help="folder holding the sheet's videos (default: the sheet's folder)")
    parser.add_argument("--json", metavar="R", default=None, help="write the scores as JSON here")
    parser.add_argument("--min-iou", type=float, default=0.5, help="IoU for a hit (default 0.5)")
    parser.add_argument("--fps", type=float, default=None,
                        help="frame rate, to type intervals whose type is not written (by duration)")
    parser.add_argument("--micro-max-s", type=float, default=0.5,
                        help="longest micro-expression when typing by duration (default 0.5 s)")


def run(args) -> int:
    from microau_gui.spotting.files import match_video_keys, read_event_table, rename_videos
    from microau_gui.spotting.intervals import evaluate_spotting

    if not 0.0 < args.min_iou <= 1.0:
        raise UserError(f"--min-iou {args.min_iou}: give a value in (0, 1]")
    if args.json and not Path(args.json).parent.is_dir():
        raise UserError(f"{Path(args.json).parent}: folder does not exist; choose another --json path")
    truth = read_event_table(args.gt, kind=args.kind, media_root=args.media_root)
    pred = read_event_table(args.pred)
    for issue in truth.skipped:
        print(f"warning: {Path(args.gt).name}: {issue}")
    pred = rename_videos(pred, match_video_keys([e.video for e in truth.events],
                                                [e.video for e in pred.events]))
    micro_max = None if args.fps is None else int(round(args.micro_max_s * args.fps))
    result = evaluate_spotting(pred.typed_intervals(micro_max), truth.typed_intervals(micro_max),
                               min_iou=args.min_iou)
    report = result.as_dict()
    print(f"{'':8s} {'precision':>9s} {'recall':>7s} {'f1':>6s} {'tp':>5s} {'fp':>5s} {'fn':>5s}")
    for name, row in report.items():
        print(f"{name:8s} {row['precision']:9.3f} {row['recall']:7.3f} {row['f1']:6.3f} "
              f"{row['tp']:5d} {row['fp']:5d} {row['fn']:5d}")
    if args.json:
        write_json(args.json, report)
    return 0
