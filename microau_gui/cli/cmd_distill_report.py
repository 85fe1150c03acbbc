"""`python main.py distill-report --teacher T --student S (--synthetic N | --dataset K:S:R)`.

Owns the `distill-report` subcommand. May import every layer; the work is
`training.distill.distill_report`.

The student's quality, measured rather than assumed, on subjects it never saw: its per-AU F1
against the teacher's labels (thresholded at the decision threshold), and its and the teacher's
mean F1 against the coding sheet, beside the issue's targets (per-AU F1 >= 0.90 against the
teacher; mean F1 within 0.03 of the teacher's). `--synthetic N` generates N fresh clips per
synthetic subject (seed `--seed`, default 1000, so not the distillation's clips) and keeps the
subjects the student's card does not list; `--dataset` scores a coded dataset's unseen subjects.
JSON (`--json`): `{"teacher", "student", "subjects", "n_samples", "threshold", "agreement":
{"mean_f1", "min_f1", "per_au", "support"}, "teacher_vs_truth": {...}, "student_vs_truth": {...},
"mean_f1_gap", "targets", "met", "note"}`.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from microau_gui.core.errors import UserError

NAME = "distill-report"
HELP = "score a distilled student against its teacher and the ground truth on held-out subjects"


def add_arguments(parser) -> None:
    parser.add_argument("--teacher", required=True, metavar="CKPT", help="the teacher's checkpoint folder")
    parser.add_argument("--student", required=True, metavar="CKPT", help="the student's checkpoint folder")
    parser.add_argument("--synthetic", type=int, default=None, metavar="N",
                        help="generate N synthetic clips per subject and score the unseen subjects")
    parser.add_argument("--dataset", default=None, metavar="KIND:SHEET:ROOT",
                        help="score a coded dataset's subjects the student never saw")
    parser.add_argument("--seed", type=int, default=1000, help="--synthetic: generator seed (default 1000)")
    parser.add_argument("--json", metavar="REPORT", default=None, help="write the report as JSON here")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args) -> int:
    from microau_gui.cli.outputs import check_out, dataset_files
    from microau_gui.cli.progress import ProgressBar
    from microau_gui.cli.reports import write_json
    from microau_gui.model.card import read_card
    from microau_gui.training.distill import distill_report
    from microau_gui.training.runs import pick_device

    if (args.synthetic is None) == (args.dataset is None):
        raise UserError("give either --synthetic N or --dataset KIND:SHEET:ROOT")
    if args.synthetic is not None and args.synthetic < 1:
        raise UserError(f"--synthetic {args.synthetic}: generate at least 1 clip per subject")
    if args.json:
        check_out(args.json, flag="--json", reads=[(args.teacher, "the teacher checkpoint"),
                                                   (args.student, "the student checkpoint"),
                                                   *dataset_files(args.dataset or [])])
    teacher = read_card(args.teacher)
    device = pick_device(args.device)
    with ProgressBar("report", enabled=not args.no_progress) as bar, \
            tempfile.TemporaryDirectory(prefix="microau-distill-report-") as scratch:
        def stage(what: str, done: int, total: int) -> None:
            bar.stage(what)
            bar(done, total)

        if args.synthetic is not None:
            from microau_gui.synth import generate_clips
            from microau_gui.synth.faces import PHOTOS

            made = generate_clips(Path(scratch) / "synth", subjects=len(PHOTOS),
                                  clips_per_subject=args.synthetic, size=teacher.image_size,
                                  seed=args.seed, progress=lambda d, t: stage("generating clips", d, t))
            samples = made.dataset.samples
        else:
            from microau_gui.training.datasets import load_dataset, parse_dataset_spec

            samples = load_dataset(parse_dataset_spec(args.dataset)).samples
        report = distill_report(args.teacher, args.student, samples, device=device, stage=stage)
    _print(report)
    if args.json:
        write_json(args.json, report)
    return 0


def _fmt(value) -> str:
    return "  -  " if value is None else f"{value:.3f}"


def _print(report: dict) -> None:
    agreement, teacher, student = (report["agreement"], report["teacher_vs_truth"],
                                   report["student_vs_truth"])
    print(f"student {report['student']} vs teacher {report['teacher']} on held-out subjects "
          f"{', '.join(report['subjects'])} ({report['n_samples']} coded pairs)")
    print(f"{'AU':<6}{'F1 vs teacher':>14}{'teacher F1':>12}{'student F1':>12}")
    for code in agreement["per_au"]:
        print(f"{code:<6}{_fmt(agreement['per_au'][code]):>14}{_fmt(teacher['per_au'][code]):>12}"
              f"{_fmt(student['per_au'][code]):>12}")
    met = report["met"]
    print(f"mean  {_fmt(agreement['mean_f1']):>13} {_fmt(teacher['mean_f1']):>11} {_fmt(student['mean_f1']):>11}")
    print(f"targets: per-AU F1 vs teacher >= {report['targets']['per_au_f1_vs_teacher']} "
          f"(min {_fmt(agreement['min_f1'])}: {'met' if met['per_au_f1_vs_teacher'] else 'NOT met'}); "
          f"mean F1 gap <= {report['targets']['max_mean_f1_gap']} "
          f"(gap {_fmt(report['mean_f1_gap'])}: {'met' if met['mean_f1_gap'] else 'NOT met'})")
