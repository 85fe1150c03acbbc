"""`python main.py eval --model weights/NAME --dataset KIND:SHEET:ROOT [--task au|emotion] [--json R]`.

Owns the `eval` subcommand. May import every layer; the work is in `training.runs` and
`training.emotion`.

Scores a saved Micro-AU CLIP checkpoint on a coded dataset. Pairs are prepared exactly as the
model's training prepared them (crop and flow sizes from its card).
- `--task au` (default): the per-AU table (F1, macro-F1, AUC, support) and the JSON report of
  DESIGN.md section 3 with method "micro-au-clip" and protocol "eval".
- `--task emotion`: emotion-label-free recognition (training.emotion): each sample's class is the
  objective class / emotion whose prototype AUs best match its predicted AU probabilities; the
  dataset's labels are used only for scoring. JSON `{"uf1", "uar", "n_samples"}` plus "labels",
  "classes" and the confusion counts.
A subject the model was trained on is named in a warning: those scores are not held out.
"""

from __future__ import annotations

from microau_gui.cli.reports import write_json
from microau_gui.core.paths import cache_dir

NAME = "eval"
HELP = "score a saved model on a coded dataset: AU detection or emotion-label-free recognition"


def add_arguments(parser) -> None:
    parser.add_argument("--model", required=True, metavar="weights/NAME", help="checkpoint folder")
    parser.add_argument("--dataset", required=True, metavar="KIND:SHEET:ROOT",
                        help="importer (casme2, samm, casme3, megc, csv), coding sheet and media root")
    parser.add_argument("--task", default="au", choices=("au", "emotion"),
                        help="au: per-AU detection scores (default); emotion: UF1/UAR of label-free recognition")
    parser.add_argument("--labels", default="auto", choices=("auto", "objective", "emotion"),
                        help="emotion task: score against objective classes or emotion words "
                        "(auto: objective classes when the sheet has them)")
    parser.add_argument("--json", metavar="REPORT", default=None, help="write the report as JSON here")
    parser.add_argument("--subjects", default=None, help="score only these subjects, e.g. 03")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--cache", metavar="DIR", default=None,
                        help="prepared-pair cache (default ~/.cache/microau_studio/pairs)")
    parser.add_argument("--no-cache", action="store_true", help="do not read or write the pair cache")


def run(args) -> int:
    from microau_gui.cli.outputs import check_out, dataset_files
    from microau_gui.cli.progress import ProgressBar
    from microau_gui.training import runs
    from microau_gui.training.metrics import format_au_table

    if args.json:
        check_out(args.json, flag="--json", reads=dataset_files(args.dataset))
    device = runs.pick_device(args.device)
    with ProgressBar("prepare", "pair") as progress:
        result = runs.evaluate_checkpoint(
            args.model, args.dataset, task=args.task, labels=args.labels,
            subjects=args.subjects.split(",") if args.subjects else None,
            cache=None if args.no_cache else (args.cache or cache_dir("pairs")),
            device=device, progress=progress)
    card = result.card
    print(f"model {card.version} ({card.config.backbone}, input {card.input_mode}"
          f"{'' if card.pretrained_loaded else ', no pretrained weights'})")
    if result.seen_subjects:
        print(f"warning: subjects {', '.join(result.seen_subjects)} were in this model's training "
              "data; these scores are not held out")
    if args.task == "au":
        print(format_au_table(result.run.report))
        report = result.run.to_json()
        report["model"] = card.version
        report["trained_on_subjects"] = list(result.seen_subjects)
    else:
        rec = result.recognition
        print(f"emotion-label-free recognition against {rec['labels']} labels, {rec['n_samples']} samples: "
              f"UF1 {rec['uf1']:.3f}  UAR {rec['uar']:.3f}")
        report = dict(rec)
        report["model"] = card.version
        report["trained_on_subjects"] = list(result.seen_subjects)
    if args.json:
        write_json(args.json, report)
    return 0
