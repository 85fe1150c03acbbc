"""`python main.py export --project P --format FORMAT --out FILE`: write what a project holds.

Owns the `export` subcommand. May import every layer; uses only the store.

- casme2: a CASME II coding sheet (`--layout 2019` with Objective Classes, or `2014`), frame
  numbers in the media's own numbering (img46.jpg -> 46), readable by `import casme2`.
- megc: MEGC spotting ground truth, one interval per event.
- json: everything (videos, subjects, model versions, events with AUs, notes), schema-versioned;
  see store/export.py.
- elan: one video's events as an ELAN .eaf (`--video`, optional `--model`/`--candidates` tiers).
- boris: BORIS tabular events (.csv or .tsv).
- frames / frames-wide: per-frame AU probabilities, long tidy or wide CSV.
  (the last three: microau_gui.interchange, through cli/interchange_io.py)
The output is written under a temporary name and renamed, so a failed export never leaves half a
file where a good one was. A missing project or an unwritable output is a one-line error.
"""

from __future__ import annotations

from pathlib import Path

from microau_gui.cli.interchange_io import EXPORT_FORMATS, add_export_arguments, run_export
from microau_gui.store.export import FORMATS, export_project
from microau_gui.store.project import Project
from microau_gui.store.records import SOURCES

NAME = "export"
HELP = ("write a project's events as a CASME II sheet, MEGC interval CSV, complete JSON, ELAN "
        ".eaf or BORIS table, or its per-frame AU probabilities as CSV")


def add_arguments(parser) -> None:
    parser.add_argument("--project", required=True, type=Path, metavar="P",
                        help="project file (.maus)")
    parser.add_argument("--format", required=True, choices=(*FORMATS, *EXPORT_FORMATS),
                        help="output format")
    parser.add_argument("--out", required=True, type=Path, metavar="FILE", help="file to write")
    parser.add_argument("--coder", help="only this coder's events (default: every coder)")
    parser.add_argument("--source", choices=SOURCES,
                        help="only expert events or only accepted predictions (default: both)")
    parser.add_argument("--layout", choices=("2019", "2014"), default="2019",
                        help="CASME II sheet layout (casme2 only; default 2019)")
    add_export_arguments(parser)


def run(args) -> int:
    if args.format in EXPORT_FORMATS:
        return run_export(args)
    with Project.open(args.project) as project:
        summary = export_project(project, args.format, args.out, coder=args.coder,
                                 source=args.source, layout=args.layout)
    print(summary)
    return 0
