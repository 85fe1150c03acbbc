"""`python main.py experiment run NAME [--out FILE]`: regenerate a committed experiment report.

Owns the `experiment` subcommand. May import every layer; the work is in `cli.experiments` (AU
detection studies), `cli.spot_experiments` (spotting: no training, so `--threads`,
`--train-seeds`, `--variants` and `--fresh` are refused there) and `cli.finetune_experiments`
(fine-tuning a poor parent: `--variants` and `--fresh` refused).

`experiment list` names the studies; `experiment run NAME` runs one and writes
`docs/experiments/NAME.json` (or `--out`). `--data-seeds`, `--train-seeds` and `--variants` run a
reduced study, written to `docs/experiments/NAME-reduced.json` and marked `"reduced"`. Every accuracy figure in the README comes from one
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
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads of the AU studies (default 1)")
    parser.add_argument("--data-seeds", default=None, metavar="S,S",
                        help="run only these of the study's data seeds (a reduced study)")
    parser.add_argument("--train-seeds", default=None, metavar="S,S",
                        help="run only these of the study's training seeds (a reduced study)")
    parser.add_argument("--variants", default=None, metavar="NAME,NAME",
                        help="run only these of the study's variants (a reduced study)")
    parser.add_argument("--fresh", action="store_true",
                        help="run every run again instead of taking up finished runs kept in the "
                        "work folder (a run is taken up only when its training code, libraries, "
                        "data, settings and seed are unchanged)")


def _list(text: str | None, kind=str):
    from microau_gui.core.errors import UserError

    if text is None:
        return None
    try:
        values = [kind(t.strip()) for t in text.split(",") if t.strip()]
    except ValueError:
        raise UserError(f"{text!r}: give comma-separated values such as 1001,1002") from None
    if not values:
        raise UserError("an empty list; leave the option out to run them all")
    return values


def plan(args) -> tuple[Path, dict]:
    """(report path, the `run_study` subset) that `experiment run` with these options writes:
    a reduced study never lands on the full study's report."""
    from microau_gui.cli.experiments import REPO

    subset = dict(data_seeds=_list(args.data_seeds, int), train_seeds=_list(args.train_seeds, int),
                  variants=_list(args.variants))
    reduced = any(v is not None for v in subset.values())
    default = f"{args.name}-reduced.json" if reduced else f"{args.name}.json"
    return (Path(args.out) if args.out else REPO / "docs" / "experiments" / default), subset


def run(args) -> int:
    from microau_gui.cli.experiments import STUDIES, run_study
    from microau_gui.cli.finetune_experiments import FINETUNE_STUDIES, run_finetune_study
    from microau_gui.cli.spot_experiments import SPOT_STUDIES, run_spot_study
    from microau_gui.core.errors import UserError
    from microau_gui.core.paths import cache_dir

    if args.action == "list":
        for study in STUDIES.values():
            print(f"{study.name:10s} {study.description} ({len(study.data_seeds)} data seeds x "
                  f"{len(study.train_seeds)} training seeds, {study.subjects} x "
                  f"{study.clips_per_subject} clips, {len(study.variants)} variant(s))")
        for spot in SPOT_STUDIES.values():
            print(f"{spot.name:10s} {spot.description} ({len(spot.data_seeds)} data seeds x "
                  f"{spot.videos} videos of {spot.seconds:g} s; no training seed)")
        for tune in FINETUNE_STUDIES.values():
            print(f"{tune.name:10s} {tune.description} ({len(tune.data_seeds)} data seeds x "
                  f"{len(tune.train_seeds)} training seeds, {tune.subjects} x "
                  f"{tune.clips_per_subject} clips)")
        return 0
    if not args.name:
        raise UserError("name the study to run, e.g. `experiment run main` (see `experiment list`)")
    known = [*STUDIES, *SPOT_STUDIES, *FINETUNE_STUDIES]
    if args.name not in known:
        raise UserError(f"unknown study {args.name!r}; use one of {', '.join(known)}")
    out, subset = plan(args)
    work = Path(args.work) if args.work else cache_dir("experiments")
    threads = 1 if args.threads is None else args.threads
    if args.name in STUDIES:
        report = run_study(args.name, out, work, threads=threads, reuse=not args.fresh, **subset)
        print(f"wrote {out} ({report['seconds']:.0f} s)")
        return 0
    # The spotting and fine-tune studies keep no runs (minutes, not hours) and have no variants.
    refused = [f"--{name.replace('_', '-')}" for name in ("train_seeds", "variants")
               if subset[name] is not None and not (name == "train_seeds" and args.name in FINETUNE_STUDIES)]
    refused += ["--fresh"] * args.fresh
    if args.name in SPOT_STUDIES:
        refused += ["--threads"] * (args.threads is not None)
    if refused:
        raise UserError(f"{' and '.join(refused)}: study {args.name} does not take "
                        f"{'them' if len(refused) > 1 else 'it'} (it spots or fine-tunes with fixed "
                        "settings and keeps no runs); leave it out")
    if args.name in SPOT_STUDIES:
        report = run_spot_study(args.name, out, work, data_seeds=subset["data_seeds"])
    else:
        report = run_finetune_study(args.name, out, work, threads=threads,
                                    data_seeds=subset["data_seeds"], train_seeds=subset["train_seeds"])
    print(f"wrote {out} ({report['seconds']:.0f} s)")
    return 0
