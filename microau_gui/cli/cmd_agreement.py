"""`python main.py agreement A B --out CSV`: inter-coder (or coder-versus-model) agreement.

Owns the `agreement` subcommand. May import every layer; the work is in `spotting.agreement`
and `spotting.files`.

With `--project P`, A and B name sources inside the project instead: `coder:NAME`,
`model:NAME`, `trace:NAME` (an OpenFace/iMotions/py-feat trace imported with `import openface`
etc.) or `spotted` (session.agreement says how each becomes events). Otherwise A and B are our
event CSVs (video, onset, apex, offset, aus[, coder]), `spot` output, `analyze`
per-frame CSVs (thresholded into events), project JSON exports, or dataset sheets read through
their importer (`--kind-a/--kind-b`). Reports per-AU frame-level Cohen's kappa, Krippendorff's
alpha and Gwet's AC1 with 95 % block-bootstrap CIs, event-level F1 at IoU >= 0.5 and mean
absolute onset/apex/offset errors in frames (see `spotting.agreement`), prints a summary and
writes the long-format CSV. Further coders (`--more C ...`, our event CSVs or exports) add
Fleiss' kappa, alpha and AC1 over all coders (rows `fleiss_kappa`, ..., with au and CIs).
"""

from __future__ import annotations

import math

from microau_gui.core.errors import UserError
from microau_gui.core.types import DECISION_THRESHOLD

NAME = "agreement"
HELP = ("per-AU frame kappa, Krippendorff's alpha and Gwet's AC1 (with CIs), event F1 and timing "
        "errors between two coders (or a coder and the model), Fleiss' kappa for more coders")


def add_arguments(parser) -> None:
    parser.add_argument("a", metavar="A", help="coder A's events (the reference)")
    parser.add_argument("b", metavar="B", help="coder B's events, or the model's")
    parser.add_argument("--out", required=True, metavar="CSV", help="agreement table to write")
    parser.add_argument("--n-frames", default=None, metavar="N|VIDEO=N,...",
                        help="video length(s) in frames for kappa: one number for every video, or "
                        "VIDEO=N pairs; default: from JSON exports and sheets, else the last "
                        "marked offset")
    parser.add_argument("--kind-a", default=None, help="importer for A when it is a dataset sheet")
    parser.add_argument("--kind-b", default=None, help="importer for B when it is a dataset sheet")
    parser.add_argument("--media-root", default=None, help="media folder for dataset sheets")
    parser.add_argument("--coder-a", default=None, help="keep only this coder's events from A")
    parser.add_argument("--coder-b", default=None, help="keep only this coder's events from B")
    parser.add_argument("--video", default=None,
                        help="video key for per-frame CSVs, which name none (default: the other file's)")
    parser.add_argument("--threshold", type=float, default=DECISION_THRESHOLD,
                        help="probability at which a per-frame AU counts as present (default 0.5)")
    parser.add_argument("--min-iou", type=float, default=0.5, help="IoU for matched events (default 0.5)")
    parser.add_argument("--more", nargs="+", default=None, metavar="C",
                        help="further coders' event files: adds Fleiss' kappa, Krippendorff's alpha "
                        "and Gwet's AC1 over all coders (A, B and these)")
    parser.add_argument("--project", default=None, metavar="P",
                        help="compare sources inside a project: A and B (and --more) are then "
                        "coder:NAME, model:NAME, trace:NAME (an imported OpenFace/iMotions/py-feat "
                        "trace) or spotted; --video limits it to one video")
    parser.add_argument("--block-frames", type=int, default=50,
                        help="bootstrap block length in frames for the CIs (default 50)")
    parser.add_argument("--bootstrap", type=int, default=1000,
                        help="bootstrap resamples for the CIs (default 1000; 0: no CIs)")


def _lengths(text: str | None, videos: list[str]) -> dict[str, int]:
    if not text:
        return {}
    try:
        if "=" not in text:
            n = int(text)
            if n <= 0:
                raise ValueError
            return {v: n for v in videos}
        out = {}
        for item in text.split(","):
            video, _, n = item.rpartition("=")
            out[video.strip()] = int(n)
            if out[video.strip()] <= 0:
                raise ValueError
        return out
    except ValueError:
        raise UserError(f"--n-frames {text!r}: give a positive frame count or VIDEO=N pairs") from None


def _project_sources(args) -> tuple[list, list, dict[str, int], list[list]]:
    """Events of the project sources named by A, B and --more, over the videos all of them
    cover (video keys are video ids; see session.agreement)."""
    from microau_gui.session.agreement import agreement_sources, coded_events
    from microau_gui.store.project import Project

    with Project.open(args.project, read_only=True) as project:
        specs = {}
        for found in agreement_sources(project):
            key = found.label.removeprefix("model ") if found.kind == "model" else found.key
            specs[found.kind if found.kind == "spotted" else f"{found.kind}:{key}"] = found

        def source(spec: str):
            if spec not in specs:
                raise UserError(f"{spec!r} is not a source in {args.project}; it has: "
                                f"{', '.join(specs) or 'none'}")
            return specs[spec]

        chosen = [source(spec) for spec in (args.a, args.b, *(args.more or ()))]
        sets, covered = [], None
        for spec in chosen:
            events, videos = coded_events(project, spec, args.threshold)
            sets.append(events)
            covered = videos if covered is None else covered & videos
        if args.video is not None:
            covered &= {v.id for v in project.videos() if v.name == args.video}
        if not covered:
            raise UserError("the sources cover no video in common"
                            + (f" named {args.video!r}" if args.video else "")
                            + "; code, analyse or import traces for the same video first")
        keys = {str(v) for v in covered}
        sets = [[e for e in events if e.video in keys] for events in sets]
        lengths = {str(v.id): v.n_frames for v in project.videos() if v.id in covered}
    return sets[0], sets[1], lengths, sets[2:]


def run(args) -> int:
    from microau_gui.cli.outputs import check_out
    from microau_gui.spotting.agreement import compare_coders, compare_many, write_agreement_csv
    from microau_gui.spotting.files import match_video_keys, read_event_table, rename_videos

    if not 0.0 <= args.threshold <= 1.0:
        raise UserError(f"--threshold {args.threshold}: give a probability in [0, 1]")
    check_out(args.out, project=args.project,
              reads=[(args.a, "coder A's events"), (args.b, "coder B's events"),
                     *((path, "a coder's events") for path in args.more or ())])
    if args.project:
        events_a, events_b, lengths, more_sets = _project_sources(args)
    else:
        table_a = read_event_table(args.a, kind=args.kind_a, media_root=args.media_root,
                                   video=args.video, coder=args.coder_a, threshold=args.threshold)
        table_b = read_event_table(args.b, kind=args.kind_b, media_root=args.media_root,
                                   video=args.video, coder=args.coder_b, threshold=args.threshold)
        if not table_a.events and not table_b.events:
            raise UserError("neither file holds any event; check the files (and "
                            "--coder-a/--coder-b)")
        table_b = rename_videos(table_b, match_video_keys([e.video for e in table_a.events] or
                                                          list(table_a.n_frames),
                                                          [e.video for e in table_b.events],
                                                          reference_named=table_a.named,
                                                          other_named=table_b.named))
        events_a, events_b, more_sets = table_a.events, table_b.events, None
        lengths = {**table_b.n_frames, **table_a.n_frames}
    videos = sorted({e.video for e in (*events_a, *events_b)})
    lengths.update(_lengths(args.n_frames, videos))
    if args.block_frames < 1 or args.bootstrap < 0:
        raise UserError("--block-frames must be >= 1 and --bootstrap >= 0")
    result = compare_coders(events_a, events_b, n_frames=lengths, min_iou=args.min_iou,
                            block_frames=args.block_frames, n_boot=args.bootstrap)
    if args.more and not args.project:
        more_sets = []
        for path in args.more:
            table = read_event_table(path, video=args.video, threshold=args.threshold)
            table = rename_videos(table, match_video_keys(videos, [e.video for e in table.events],
                                                          other_named=table.named))
            more_sets.append(table.events)
    extra_rows = []
    if more_sets:
        for k in compare_many([events_a, events_b, *more_sets], n_frames=lengths,
                              block_frames=args.block_frames, n_boot=max(1, args.bootstrap)):
            for name, value, ci in (("fleiss_kappa", k.fleiss_kappa, k.fleiss_kappa_ci),
                                    ("all_coders_alpha", k.alpha, k.alpha_ci),
                                    ("all_coders_ac1", k.ac1, k.ac1_ci)):
                extra_rows += [{"measure": name, "au": k.au, "value": value, "count": k.n_frames},
                               {"measure": f"{name}_ci_low", "au": k.au, "value": ci[0], "count": k.n_frames},
                               {"measure": f"{name}_ci_high", "au": k.au, "value": ci[1], "count": k.n_frames}]
    write_agreement_csv(result, args.out, extra_rows=extra_rows)

    def fmt(value: float) -> str:
        return "n/a" if math.isnan(value) else f"{value:.3f}"

    print(f"{result.n_videos} video(s), {result.n_events_a} events in A, {result.n_events_b} in B")
    if not result.per_au:
        print("  no kappa: one side codes no AUs (e.g. spotted candidates); events and timing only")
    for k in result.per_au:
        print(f"  {k.au:5s} kappa {fmt(k.kappa):>6s}  alpha {fmt(k.alpha):>6s}  AC1 {fmt(k.ac1):>6s} "
              f"[{fmt(k.ac1_ci[0])}, {fmt(k.ac1_ci[1])}]  frames A {k.frames_a:6d}  B {k.frames_b:6d}")
    ev, tm = result.events, result.timing
    print(f"events: F1 {fmt(ev.f1)} (precision {fmt(ev.precision)}, recall {fmt(ev.recall)}; "
          f"tp {ev.tp}, fp {ev.fp}, fn {ev.fn})")
    print(f"timing over {tm.n_matched} matched events (frames): onset {fmt(tm.onset)}, "
          f"apex {fmt(tm.apex)}, offset {fmt(tm.offset)}")
    if not result.lengths_known:
        print("note: some video lengths were unknown; kappa counted frames up to the last marked "
              "offset (pass --n-frames)")
    print(f"wrote {args.out}")
    return 0
