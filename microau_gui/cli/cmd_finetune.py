"""`python main.py finetune --project P --out weights/NAME ...`: fine-tune a model on a project's
coded events and register the new version.

Owns the `finetune` subcommand. May import every layer; the work is `training.finetune`.

    finetune --project P --out weights/NAME [--holdout SUBJECTS] [--epochs N] [--train-blocks K]
             [--activate] [--json REPORT] [--model M] [--events all|expert|accepted]
             [--seed S] [--threads N] [--device auto] [--cache DIR] [--no-cache] [--nproc N]

The parent is `--model` (a checkpoint folder or one of the project's version names), else the
project's active version, else the bundled demo checkpoint (and the command says so). Training
uses the project's expert and accepted micro-expression events (`--events` narrows that).
Evaluation (see `training.finetune`): `--holdout 01,02` trains on the other subjects and scores
parent and new model on those; without it, leave-one-subject-out folds give the before/after
estimate and the saved model is then trained on every subject. The per-AU F1 table (before,
after, change, support) is printed; the checkpoint is written to `--out` with its card and
registered in the project (active only with `--activate`).

`--nproc N` fine-tunes in N torchrun workers with DDP (`cli.launch`); rank 0 saves, registers
the version (the project keeps one writer), prints and writes the JSON.

JSON (DESIGN.md section 3), exactly these keys: {"parent", "model", "holdout_subjects",
"seconds", "before": {"mean_f1", "per_au"}, "after": {"mean_f1", "per_au"}}; "parent" and
"model" are version strings (`name@weights-hash`), "holdout_subjects" the subjects the scores
were measured on (every subject under leave-one-subject-out), "per_au" as in `train` / `eval`.
"""

from __future__ import annotations

from pathlib import Path

from microau_gui.cli import launch
from microau_gui.cli.outputs import check_out
from microau_gui.cli.progress import ProgressBar
from microau_gui.cli.reports import write_json
from microau_gui.core.errors import UserError

NAME = "finetune"
HELP = "fine-tune a model on a project's coded events; prints before/after per-AU F1"

EVENT_CHOICES = {"all": ("expert", "accepted"), "expert": ("expert",), "accepted": ("accepted",)}


def add_arguments(parser) -> None:
    parser.add_argument("--project", required=True, metavar="P", help="the project (.maus) holding the coded events")
    parser.add_argument("--out", required=True, metavar="weights/NAME",
                        help="new checkpoint folder (must not exist); its name becomes the version name")
    parser.add_argument("--holdout", default=None, metavar="SUBJECTS",
                        help="comma-separated subjects to evaluate on (default: leave one subject out per fold)")
    parser.add_argument("--epochs", type=int, default=None, help="fine-tuning epochs per stage (default 20)")
    parser.add_argument("--train-blocks", type=int, default=0,
                        help="last backbone blocks that train: 0 = heads only (default, fast), -1 = all")
    parser.add_argument("--activate", action="store_true", help="make the new version the project's active model")
    parser.add_argument("--json", metavar="REPORT", default=None, help="write the before/after report as JSON here")
    parser.add_argument("--model", default=None,
                        help="parent: a checkpoint folder or a project version name (default: the "
                        "active version, else the bundled demo)")
    parser.add_argument("--events", default="all", choices=tuple(EVENT_CHOICES),
                        help="which events train: all (default), expert (the coders') or accepted predictions")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: the parent's)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda or auto")
    parser.add_argument("--cache", metavar="DIR", default=None,
                        help="cache folder for prepared pairs (DIR/pairs) and backbone tokens (DIR/tokens) "
                        "(default ~/.cache/microau_studio)")
    parser.add_argument("--no-cache", action="store_true", help="do not read or write the caches")
    launch.add_nproc_argument(parser)


def run(args) -> int:
    _check_arguments(args)
    if args.nproc is not None:
        return launch.relaunch(args, args.nproc)
    with launch.worker(args.device) as world:
        return _run(args, world)


def _check_arguments(args) -> None:
    """What can be refused before any process starts."""
    if args.holdout is not None and not any(s.strip() for s in args.holdout.split(",")):
        raise UserError("--holdout is empty; name subjects such as 01,02, or leave it out")
    if args.threads is not None and args.threads < 1:
        raise UserError(f"--threads {args.threads}: use at least 1")
    if args.json:
        check_out(args.json, project=args.project, flag="--json")
    if not Path(args.project).expanduser().is_file():
        raise UserError(f"--project {args.project}: no such project file")


def _run(args, world) -> int:
    from microau_gui.inference.checkpoints import resolve_checkpoint
    from microau_gui.store.project import Project
    from microau_gui.training.finetune import (DEFAULT_EPOCHS, EventSelection, FinetuneOptions,
                                               check_output, finetune_project, snapshot_events)

    holdout = tuple(s.strip() for s in (args.holdout or "").split(",") if s.strip())
    cache = Path(args.cache).expanduser() if args.cache else None
    options = FinetuneOptions(
        holdout_subjects=holdout, epochs=DEFAULT_EPOCHS if args.epochs is None else args.epochs, train_blocks=args.train_blocks,
        seed=args.seed, threads=args.threads, device=args.device if world is None else str(world.device),
        pair_cache=cache / "pairs" if cache else None, token_cache=cache / "tokens" if cache else None,
        use_cache=not args.no_cache)
    json_path = check_out(args.json, project=args.project, flag="--json") if args.json else None
    project_path = Path(args.project).expanduser()
    with Project.open(project_path) as project:
        if project.read_only:
            raise UserError(f"project {project_path} is read-only ({project.read_only_reason}); the "
                            "new version is registered in it, so make it writable")
        snapshot = snapshot_events(project, EventSelection(sources=EVENT_CHOICES[args.events]))
        check_output(args.out, snapshot.version_names)
        unknown = sorted(set(holdout) - set(snapshot.subjects))
        if unknown:
            raise UserError(f"--holdout: subject {', '.join(unknown)} has no selected events "
                            f"(subjects: {', '.join(snapshot.subjects)})")
        parent = resolve_checkpoint(args.model, project)
        if args.model is None and project.models.active() is None:
            print(f"no active model in the project: fine-tuning the bundled demo checkpoint {parent.name}")
        print(f"fine-tuning {parent.name} on {len(snapshot.samples)} events of "
              f"{len(snapshot.subjects)} subjects ({', '.join(snapshot.subjects)}), "
              f"{options.epochs} epochs, " + ("heads only" if options.train_blocks == 0 else
                                              f"backbone blocks {options.train_blocks} and heads"))
        bar = _Bar()
        try:
            result, version = finetune_project(project, parent, args.out, options, activate=args.activate,
                                               snapshot=snapshot, progress=bar.update)
        finally:
            bar.close()
    if world is not None and world.rank != 0:
        return 0  # rank 0 registered the version and reports
    _print_result(result, version)
    if json_path is not None:
        write_json(json_path, result.to_json())
    return 0




def _print_result(result, version) -> None:
    from microau_gui.training.finetune import format_comparison

    for event_id, reason in result.skipped[:10]:
        print(f"  skipped event {event_id}: {reason}")
    if len(result.skipped) > 10:
        print(f"  ... and {len(result.skipped) - 10} more skipped")
    if result.out_of_vocab:
        listed = ", ".join(f"{code} ({n})" for code, n in result.out_of_vocab.items())
        print(f"  not in the model's vocabulary, not learned: {listed}")
    print()
    if result.protocol == "holdout":
        print(f"per-AU F1 on held-out subjects {', '.join(result.holdout_subjects)} "
              f"(before = {result.parent_card.name}, after = the new model, trained on "
              f"{', '.join(result.train_subjects)}):")
    else:
        print("per-AU F1, leave one subject out (before = the parent on every subject; after = "
              "fine-tuned without the scored subject, pooled over folds; the saved model was then "
              "trained on every subject):")
    print(format_comparison(result))
    if result.parent_seen_subjects:
        print(f"note: the parent was trained on subjects named {', '.join(result.parent_seen_subjects)}; "
              "its 'before' scores there may be optimistic")
    state = "active" if version.active else "not active; activate it in the window or rerun with --activate"
    print(f"saved {result.checkpoint} ({result.card.version}) in {result.seconds:.1f} s; registered as "
          f"version {version.name!r} ({state})")


class _Bar(ProgressBar):
    """One bar over the whole fine-tune (`FinetuneProgress.fraction`), its message beside it."""

    def __init__(self):
        super().__init__("fine-tune")

    def update(self, progress) -> None:
        self(int(progress.fraction * 1000), 1000)
        self.note(progress.message)