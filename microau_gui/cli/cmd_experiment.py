"""`python main.py experiment run NAME [--out FILE]`: regenerate a committed experiment report.

Owns the `experiment` subcommand. May import every layer; the work is in `cli.experiments`.

`experiment list` names the studies; `experiment run NAME` runs one and writes
`docs/experiments/NAME.json` (or `--out`). Every accuracy figure in the README comes from one
of these reports; `make experiments` runs them all (slow: tens of minutes to hours on a CPU).
"""

from __future__ import annotations

from pathlib import Path

NAME = "experiment"
HELP = "run a named experiment (fresh synthetic data, several seeds) and write its JSON report"


def add_arguments(parser) -> None:
    parser.add_argument("action", choices=("run", "list"), help="run a study, or list them")
    parser.add_argument("name", nargs="?", default=None, help="the study to run (see `experiment list`)")
    parser.add_argument("--out", default=None, metavar="JSON",
                        help="report path (default docs/experiments/NAME.json)")
    parser.add_argument("--work", default=None, metavar="DIR",
                        help="where the synthetic data and prepared pairs go "
                        "(default ~/.cache/microau_studio/experiments)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")


def run(args) -> int:
    from microau_gui.cli.experiments import REPO, STUDIES, run_study
    from microau_gui.core.errors import UserError
    from microau_gui.core.paths import cache_dir

    if args.action == "list":
        for study in STUDIES.values():
            print(f"{study.name:10s} {study.description} ({len(study.data_seeds)} data seeds x "
                  f"{len(study.train_seeds)} training seeds, {study.subjects} x "
                  f"{study.clips_per_subject} clips, {len(study.variants)} variant(s))")
        return 0
    if not args.name:
        raise UserError("name the study to run, e.g. `experiment run main` (see `experiment list`)")
    out = Path(args.out) if args.out else REPO / "docs" / "experiments" / f"{args.name}.json"
    work = Path(args.work) if args.work else cache_dir("experiments")
    report = run_study(args.name, out, work, threads=args.threads)
    print(f"wrote {out} ({report['seconds']:.0f} s)")
    return 0
