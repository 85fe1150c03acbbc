"""`python main.py distill --teacher CKPT [--videos V ...] [--synthetic N] --out DIR`: a student.

Owns the `distill` subcommand. May import every layer; the work is in `training.distill`.

The teacher (any Micro-AU CLIP checkpoint) labels frame pairs of the user's own unlabelled
videos (`--videos`, `--pairs-per-video` targets spread over each, each against its sliding
reference as `analyze` pairs them) and of `--synthetic N` generated clips per synthetic subject
(`--synthetic-subjects`, default 01,02: subject 03 stays unseen, so `distill-report` can score
the student on it). A tiny student learns the teacher's probabilities and PTA maps and is saved
to `--out` (a new folder, written whole or not at all); its card names the teacher
(`teacher`: name@version) and the agreement measured on the sources it was not trained on.
Prints that agreement; `--json` writes it with the student's card.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from microau_gui.core.errors import UserError

NAME = "distill"
HELP = "distil a tiny student from a teacher model on unlabelled videos and synthetic clips"

DEFAULT_SYNTHETIC_SUBJECTS = "01,02"  # 03 is left for distill-report's held-out subject


def add_arguments(parser) -> None:
    parser.add_argument("--teacher", required=True, metavar="CKPT", help="the teacher's checkpoint folder")
    parser.add_argument("--videos", nargs="+", default=[], metavar="V",
                        help="the user's own videos or image folders (no labels needed)")
    parser.add_argument("--synthetic", type=int, default=0, metavar="N",
                        help="also generate N synthetic clips per synthetic subject")
    parser.add_argument("--synthetic-subjects", default=DEFAULT_SYNTHETIC_SUBJECTS, metavar="IDS",
                        help="synthetic subjects to generate (default 01,02; 03 stays held out)")
    parser.add_argument("--pairs-per-video", type=int, default=200, metavar="N",
                        help="frame pairs taken from each video, spread evenly (default 200)")
    parser.add_argument("--pairs-per-clip", type=int, default=6, metavar="N",
                        help="sliding pairs per synthetic clip, besides its onset-apex pair (default 6)")
    parser.add_argument("--out", required=True, metavar="DIR", help="the student's checkpoint folder (new)")
    parser.add_argument("--json", metavar="REPORT", default=None, help="write the result as JSON here")
    parser.add_argument("--epochs", type=int, default=None,
                        help="distillation epochs (default 5 from the teacher's weights, 30 from random ones)")
    parser.add_argument("--batch-size", type=int, default=None, help="pairs per step (default 16)")
    parser.add_argument("--lr", type=float, default=None,
                        help="peak learning rate (default 2e-4 from the teacher's weights, 2e-3 from random ones)")
    parser.add_argument("--pta-weight", type=float, default=None, help="weight of the PTA map loss (default 1)")
    parser.add_argument("--holdout", type=float, default=None, metavar="SHARE",
                        help="share of sources kept out to measure agreement (default 0.2)")
    parser.add_argument("--backbone", default=None, metavar="NAME",
                        help="the student's backbone: tiny (default) or tiny-student (64 tokens: faster, less faithful)")
    parser.add_argument("--flow-method", default=None, metavar="M",
                        help="how the student's pairs measure flow: farneback-fast (default), farneback, "
                             "dis or dis-fine")
    parser.add_argument("--flow-size", type=int, default=None, metavar="PX",
                        help="side of the crop the student's flow is measured on (default: the teacher's)")
    parser.add_argument("--init", default=None, choices=("teacher", "random"),
                        help="start from the teacher's weights where the shapes allow (default) or at random")
    parser.add_argument("--seed", type=int, default=0, help="random seed (same seed, same student)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def settings_from(args):
    """The `DistillSettings` the options ask for (defaults for those not given)."""
    from microau_gui.training.distill import DistillSettings

    given = {"epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr,
             "pta_weight": args.pta_weight, "holdout_fraction": args.holdout,
             "backbone": args.backbone, "flow_method": args.flow_method, "flow_size": args.flow_size,
             "init": args.init}
    # built in one go, not replaced: epochs and lr left out resolve by the chosen init
    return DistillSettings(seed=args.seed, threads=args.threads,
                           **{k: v for k, v in given.items() if v is not None})


def run(args) -> int:
    from microau_gui.cli.outputs import check_out
    from microau_gui.cli.progress import ProgressBar
    from microau_gui.cli.reports import write_json
    from microau_gui.inference.reference import sliding_offset_frames
    from microau_gui.model.card import read_card
    from microau_gui.training import distill as lib
    from microau_gui.training.runs import pick_device

    teacher = read_card(args.teacher)
    reads = [(args.teacher, "the teacher checkpoint"), *((v, "a video this run reads") for v in args.videos)]
    out = check_out(args.out, reads=reads, folder=True)
    if out.exists():
        raise UserError(f"--out {args.out} already exists; choose a new folder for the student")
    if args.json:
        check_out(args.json, flag="--json", reads=reads)
    if args.synthetic < 0 or args.pairs_per_video < 1 or args.pairs_per_clip < 0:
        raise UserError("--synthetic, --pairs-per-video and --pairs-per-clip take counts (>= 0, >= 1, >= 0)")
    if not args.videos and not args.synthetic:
        raise UserError("nothing to distil on: give --videos V ... and/or --synthetic N")
    settings = settings_from(args)
    device = pick_device(args.device)
    with ProgressBar("distil", enabled=not args.no_progress) as bar, \
            tempfile.TemporaryDirectory(prefix="microau-distill-") as scratch:
        def stage(what: str, done: int, total: int) -> None:
            bar.stage(what)
            bar(done, total)

        sources = lib.video_sources([Path(v) for v in args.videos], sliding_offset_frames,
                                    args.pairs_per_video)
        if args.synthetic:
            sources += synthetic(Path(scratch) / "synth", args.synthetic,
                                 [s.strip() for s in args.synthetic_subjects.split(",") if s.strip()],
                                 teacher.image_size, args.pairs_per_clip, args.seed,
                                 lambda done, total: stage("generating clips", done, total))
        result = lib.distill(args.teacher, sources, out, settings, device=device, stage=stage)
    card = result.card
    print(f"student {card.version} distilled from {card.teacher} on {result.n_train} pairs "
          f"({result.n_holdout} held out) in {result.seconds:.1f} s")
    agreement = card.metrics.get("teacher_agreement", {})
    if result.agreement is not None:
        scored = {s.code: s.f1 for s in result.agreement.per_au if s.f1 is not None}
        print(f"agreement with the teacher on held-out sources: mean F1 {result.agreement.mean_f1:.3f} "
              + " ".join(f"{code} {f1:.2f}" for code, f1 in scored.items()))
    else:
        print(agreement.get("note", ""), file=sys.stderr)
    if args.json:
        write_json(args.json, {"student": card.version, "teacher": card.teacher, "checkpoint": str(out),
                               "n_train": result.n_train, "n_holdout": result.n_holdout,
                               "seconds": round(result.seconds, 1), "teacher_agreement": agreement,
                               "card": card.to_dict()})
    return 0


def synthetic(root: Path, clips: int, subjects: list[str], size: int, pairs_per_clip: int, seed: int,
              progress=None, should_cancel=None):
    """Distillation sources from `clips` generated clips of each synthetic subject under `root`."""
    from microau_gui.core.progress import Cancelled
    from microau_gui.inference.reference import sliding_offset_frames
    from microau_gui.synth import generate_clips
    from microau_gui.synth.faces import PHOTOS
    from microau_gui.training.distill import clip_sources

    known = [photo.subject for photo in PHOTOS]
    unknown = [s for s in subjects if s not in known]
    if unknown or not subjects:
        raise UserError(f"synthetic subject {unknown[0] if unknown else '(none)'} does not exist; "
                        f"use some of {', '.join(known)}")
    fps = 200.0  # the generator's CASME II rate
    made = generate_clips(root, subjects=max(known.index(s) for s in subjects) + 1,
                          clips_per_subject=clips, size=size, fps=fps, seed=seed,
                          progress=progress, should_cancel=should_cancel)
    if made.cancelled:
        raise Cancelled("cancelled")
    return clip_sources(made.clips, root, sliding_offset_frames(fps), pairs_per_clip, subjects)
