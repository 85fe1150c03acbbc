"""`python main.py eval-spot --pred CSV --gt SHEET [--mode corrected|strs] [--json R]`: MEGC scores.

Owns the `eval-spot` subcommand. May import every layer; the work is in `spotting.intervals`
and `spotting.files`.

A prediction is a hit when its IoU with a ground-truth interval of the same type is >= 0.5.
`--mode corrected` (default) matches one-to-one, greedy by IoU; `--mode strs` counts as the
published MEGC STRS tool does (see `spotting.intervals`). When both files carry an `emotion` per
interval, spot-then-recognise scores follow (analysis F1, UF1, UAR, STRS). Prints precision,
recall and F1 overall and for micro and macro; `--json` writes `{"mode", "overall": {...},
"micro": {...}, "macro": {...}}` with precision, recall, f1, tp, fp, fn, plus `"analysis"` when
emotions were scored.
"""

from __future__ import annotations

from pathlib import Path

from microau_gui.cli.reports import write_json
from microau_gui.core.errors import UserError

NAME = "eval-spot"
HELP = "score spotted intervals against ground truth (MEGC protocol, IoU >= 0.5; STRS counting)"


def add_arguments(parser) -> None:
    parser.add_argument("--pred", required=True, metavar="CSV",
                        help="candidates written by `spot` (an `emotion` column adds STRS scores); "
                        "an empty file means no predictions")
    parser.add_argument("--gt", required=True, metavar="SHEET",
                        help="ground truth: a MEGC sheet (xlsx/csv) or our spotting CSV")
    parser.add_argument("--kind", default=None,
                        help="importer for the ground-truth sheet (megc, csv, casme2, samm, casme3); "
                        "default: our spotting CSV when its header has onset/offset, else megc")
    parser.add_argument("--media-root", default=None,
                        help="folder holding the sheet's videos (default: the sheet's folder)")
    parser.add_argument("--mode", choices=("corrected", "strs"), default="corrected",
                        help="corrected (default): one-to-one matching, every video counts. strs: "
                        "the published MEGC STRS tool's counting (first prediction in file order "
                        "takes each ground truth, a prediction may take two, only ground-truth "
                        "videos of subjects with predictions count), so figures compare with MEGC "
                        "papers")
    parser.add_argument("--strs-tool-defects", action="store_true",
                        help="also reproduce the STRS tool's known defects in the recognition "
                        "scores: UAR computed as the mean precision instead of the mean recall, and "
                        "a class scored 0 when every analysed pair is that class and predicted as "
                        "it. Only for comparing with published figures; needs --mode strs")
    parser.add_argument("--classes", default=None, metavar="A,B,...",
                        help="emotions to analyse in spot-then-recognise scoring (default: every "
                        "emotion in the ground truth)")
    parser.add_argument("--json", metavar="R", default=None, help="write the scores as JSON here")
    parser.add_argument("--min-iou", type=float, default=0.5, help="IoU for a hit (default 0.5)")
    parser.add_argument("--fps", type=float, default=None,
                        help="frame rate, to type intervals whose type is not written (by duration)")
    parser.add_argument("--micro-max-s", type=float, default=0.5,
                        help="longest micro-expression when typing by duration (default 0.5 s)")


def run(args) -> int:
    from microau_gui.spotting.files import EventTable, match_video_keys, read_event_table, rename_videos
    from microau_gui.spotting.intervals import evaluate_spotting, score_analysis

    if not 0.0 < args.min_iou <= 1.0:
        raise UserError(f"--min-iou {args.min_iou}: give a value in (0, 1]")
    if args.strs_tool_defects and args.mode != "strs":
        raise UserError("--strs-tool-defects reproduces the STRS tool; use it with --mode strs")
    if args.json and not Path(args.json).parent.is_dir():
        raise UserError(f"{Path(args.json).parent}: folder does not exist; choose another --json path")
    truth = read_event_table(args.gt, kind=args.kind, media_root=args.media_root)
    pred_path = Path(args.pred)
    if pred_path.is_file() and pred_path.stat().st_size == 0:
        pred = EventTable(pred_path, (), (), {}, "csv", named=False)  # a spotter that found nothing
    else:
        pred = read_event_table(pred_path)
    for issue in truth.skipped:
        print(f"warning: {Path(args.gt).name}: {issue}")
    pred = rename_videos(pred, match_video_keys([e.video for e in truth.events],
                                                [e.video for e in pred.events],
                                                reference_named=truth.named, other_named=pred.named))
    analyse = truth.has_emotions and (pred.has_emotions or not pred.events)
    if (args.classes or args.strs_tool_defects) and not analyse:
        raise UserError("spot-then-recognise scoring needs an `emotion` for every interval of both "
                        "files; add the column or drop --classes/--strs-tool-defects")
    micro_max = None if args.fps is None else int(round(args.micro_max_s * args.fps))
    pairs: list = []
    result = evaluate_spotting(pred.typed_intervals(micro_max), truth.typed_intervals(micro_max),
                               min_iou=args.min_iou, mode=args.mode, pairs_out=pairs)
    report = {"mode": args.mode, **result.as_dict()}
    print(f"{'':8s} {'precision':>9s} {'recall':>7s} {'f1':>6s} {'tp':>5s} {'fp':>5s} {'fn':>5s}"
          f"   ({args.mode} counting)")
    for name in ("overall", "micro", "macro"):
        row = report[name]
        print(f"{name:8s} {row['precision']:9.3f} {row['recall']:7.3f} {row['f1']:6.3f} "
              f"{row['tp']:5d} {row['fp']:5d} {row['fn']:5d}")
    if analyse:
        classes = ([c.strip().lower() for c in args.classes.split(",") if c.strip()] if args.classes
                   else sorted({e.emotion for e in truth.events}))
        analysis = score_analysis([(p[3], g[3]) for p, g, _ in pairs], classes,
                                  tool_defects=args.strs_tool_defects)
        report["analysis"] = analysis.as_dict(result.overall.f1)
        print(f"analysis over {analysis.n_pairs} spotted TPs ({', '.join(classes)}): F1 "
              f"{analysis.f1:.3f}, UF1 {analysis.uf1:.3f}, UAR {analysis.uar:.3f}"
              f"{' (tool defects: UAR is the mean precision)' if analysis.tool_defects else ''}; "
              f"STRS {report['analysis']['strs']:.3f}")
    if args.json:
        write_json(args.json, report)
    return 0
