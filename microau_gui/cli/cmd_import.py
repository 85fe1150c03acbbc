"""`python main.py import {casme2,samm,casme3,megc,csv} SHEET MEDIA_ROOT [--report] [--project P]`.

Owns the `import` subcommand. May import every layer; the work is in `store.importers`,
`store.project` and `store.export`.

Reads a dataset coding sheet, resolves every row's clip under MEDIA_ROOT and maps the sheet's
frame numbers to frame indices (media.frame_index). Prints the sample count and subjects, and
with --report every row that was fixed or skipped and why. With --project the samples are stored
as expert events in that project (created when missing), in committed batches, so an interrupted
import keeps what it reported and re-running it adds only what is missing.
`python main.py import json EXPORT.json --project P` reads back our own JSON export.
`import elan FILE.eaf [VIDEO] --project P [--tiers MAP]` adds an ELAN file's events;
`import openface|imotions|pyfeat FILE VIDEO --project P [--align frame|time]` stores another
tool's per-frame AU output as a comparison trace (cli/interchange_io.py).
A bad path, an unreadable sheet or a missing media folder is a one-line error and exit code 2.
So is a sheet whose rows are all skipped, or an import that stores nothing: a project that
this run created is then removed again, so a failed import leaves no file behind.
`import json` only accepts media paths under the export's folder, the project's folder or a
`--media-root`; `--allow-outside-media` lifts that.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

from microau_gui.core.errors import UserError

NAME = "import"
HELP = "import a dataset coding sheet (CASME II, SAMM, CAS(ME)^3, MEGC ground truth, our CSV)"


def add_arguments(parser) -> None:
    from microau_gui.cli.interchange_io import IMPORT_KINDS, add_import_arguments
    from microau_gui.store.importers import KINDS

    parser.add_argument("kind", choices=(*KINDS, "json", *IMPORT_KINDS),
                        help="sheet layout, json for our own project export, elan, or another "
                        "tool's AU output (openface, imotions, pyfeat)")
    parser.add_argument("sheet", help="coding sheet (.xlsx or .csv) or JSON export")
    parser.add_argument("media_root", nargs="?",
                        help="folder holding the dataset's clips (not used for json)")
    parser.add_argument("--report", action="store_true", help="list every fixed or skipped row")
    parser.add_argument("--fps", type=float,
                        help="frame rate of image-folder clips (default: the dataset's, CASME II and "
                        "SAMM 200, CAS(ME)^3 30); megc: also types rows that state no type")
    parser.add_argument("--project", metavar="P",
                        help="store the samples as expert events in this project (.maus; created if missing)")
    parser.add_argument("--coder", default="", help="coder name recorded on the imported events")
    add_import_arguments(parser)
    parser.add_argument("--media-root", dest="media_root_allowed", action="append", default=None,
                        metavar="DIR",
                        help="json: a folder the export's media may lie under (repeatable; "
                        "default: the export's folder and the project's folder)")
    parser.add_argument("--allow-outside-media", action="store_true",
                        help="json: accept media paths outside the media roots")


def run(args) -> int:
    from microau_gui.cli.progress import ProgressBar
    from microau_gui.media import frame_index
    from microau_gui.store.importers import import_dataset

    if args.kind == "json":
        return _import_json(args)
    from microau_gui.cli.interchange_io import IMPORT_KINDS, run_import

    if args.kind in IMPORT_KINDS:
        return run_import(args)
    if args.media_root is None:
        raise UserError(f"import {args.kind} needs MEDIA_ROOT, the folder that holds the clips")
    with ProgressBar("import", "row") as progress:
        dataset = import_dataset(args.kind, args.sheet, args.media_root, frame_index=frame_index,
                                 fps=args.fps, progress=progress)
    report = dataset.report
    subjects = dataset.subjects
    shown = ", ".join(subjects[:20]) + (" ..." if len(subjects) > 20 else "")
    print(f"{len(dataset.samples)} samples from {len(subjects)} subjects ({shown}) "
          f"[{dataset.kind}: {dataset.sheet.name}]")
    print(f"{report.n_rows} rows read: {len(report.fixed)} fixed, {len(report.skipped)} skipped"
          + (f", {len(report.noted)} notes (e.g. gaps in a clip's numbering)" if report.noted else ""))
    if args.report:
        for issue in report.issues:
            print(f"  {issue}")
    elif report.issues:
        print("run with --report to list them")
    if not dataset.samples:
        raise UserError(f"no row of {dataset.sheet.name} could be imported ({report.n_rows} rows "
                        "read, all skipped); run with --report to see why"
                        + ("; no project was created or changed" if args.project else ""))
    if args.project:
        _store(args, dataset)
    return 0


@contextmanager
def import_target(path: str):
    """Open (or create) the project; a project this run created is removed again if the run
    fails or adds nothing, so a bad import leaves no file behind. Yields (project, outcome):
    set `outcome["added"]` once something was committed."""
    from microau_gui.store.project import Project

    target = Path(path).expanduser().absolute()
    created = not target.exists()
    project = Project.open_or_create(target)
    outcome = {"added": False}
    try:
        yield project, outcome
    finally:
        project.close()
        # `created` can be wrong: a second import started at the same moment also found no file.
        # If that one added rows, this run's "nothing added" must not delete them with the file.
        if created and not outcome["added"] and _holds_nothing(target):
            for leftover in (target, Path(f"{target}-wal"), Path(f"{target}-shm")):
                leftover.unlink(missing_ok=True)


def _holds_nothing(project: Path) -> bool:
    """No video, subject or event in the project file (read-only; True if it is gone)."""
    import sqlite3

    if not project.exists():
        return True
    try:
        conn = sqlite3.connect(f"file:{project}?mode=ro", uri=True)
        try:
            return not any(conn.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone()
                           for table in ("videos", "subjects", "events"))
        finally:
            conn.close()
    except sqlite3.Error:
        return False  # unreadable now: never delete what might be another writer's


def _store(args, dataset) -> None:
    from functools import partial

    from microau_gui.cli.progress import ProgressBar
    from microau_gui.media import open_media
    from microau_gui.store.importers import DATASET_FPS

    fps = args.fps or DATASET_FPS.get(args.kind)
    with import_target(args.project) as (project, outcome), ProgressBar("store", "event") as progress:
        summary = project.import_dataset(dataset, partial(open_media, fps=fps, cache_frames=1),
                                         coder=args.coder, progress=progress)
        outcome["added"] = bool(summary.events_added or summary.videos_added)
    print(f"project {args.project}: {summary}")
    for reason in summary.skipped:
        print(f"  skipped: {reason}")
    if not summary.events_added and not summary.duplicates:
        raise UserError(f"no event could be stored in {args.project} (every sample was skipped, "
                        "see above); fix the media and import again")


def _import_json(args) -> int:
    from microau_gui.store.export import import_json

    if not args.project:
        raise UserError("import json needs --project P: the project to add the export to")
    with import_target(args.project) as (project, outcome):
        summary = import_json(project, args.sheet, media_roots=args.media_root_allowed,
                              allow_outside=args.allow_outside_media)
        outcome["added"] = True
    print(f"project {args.project}: {summary}")
    return 0
