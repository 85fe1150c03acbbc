"""`python main.py export --project P --format casme2|megc|json --out FILE`: write a project's events.

Owns the `export` subcommand. May import every layer; uses only the store.

- casme2: a CASME II coding sheet (`--layout 2019` with Objective Classes, or `2014`), frame
  numbers in the media's own numbering (img46.jpg -> 46), readable by `import casme2`.
- megc: MEGC spotting ground truth, one interval per event.
- json: everything (videos, subjects, model versions, events with AUs, notes), schema-versioned;
  see store/export.py.
The output is written under a temporary name and renamed, so a failed export never leaves half a
file where a good one was. A missing project or an unwritable output is a one-line error.
"""

from __future__ import annotations

from pathlib import Path

from microau_gui.store.export import FORMATS, export_project
from microau_gui.store.project import Project
from microau_gui.store.records import SOURCES

NAME = "export"
HELP = "write a project's events as a CASME II sheet, MEGC interval CSV or complete JSON"


def add_arguments(parser) -> None:
    parser.add_argument("--project", required=True, type=Path, metavar="P",
                        help="project file (.maus)")
    parser.add_argument("--format", required=True, choices=FORMATS, help="output format")
    parser.add_argument("--out", required=True, type=Path, metavar="FILE", help="file to write")
    parser.add_argument("--coder", help="only this coder's events (default: every coder)")
    parser.add_argument("--source", choices=SOURCES,
                        help="only expert events or only accepted predictions (default: both)")
    parser.add_argument("--layout", choices=("2019", "2014"), default="2019",
                        help="CASME II sheet layout (casme2 only; default 2019)")


def run(args) -> int:
    with Project.open(args.project) as project:
        summary = export_project(project, args.format, args.out, coder=args.coder,
                                 source=args.source, layout=args.layout)
    print(summary)
    return 0
