"""`python main.py import {casme2,samm,casme3,megc,csv} SHEET MEDIA_ROOT [--report]`.

Reads a dataset coding sheet, resolves every row's clip under MEDIA_ROOT and maps the sheet's
frame numbers to frame indices (media.frame_index). Prints the sample count and subjects, and
with --report every row that was fixed or skipped and why. A bad path, an unreadable sheet or a
missing media folder is a one-line error and exit code 2.
"""

from __future__ import annotations

import sys

from microau_gui.core.errors import UserError

NAME = "import"
HELP = "import a dataset coding sheet (CASME II, SAMM, CAS(ME)^3, MEGC ground truth, our CSV)"


def add_arguments(parser) -> None:
    from microau_gui.store.importers import KINDS

    parser.add_argument("kind", choices=KINDS, help="sheet layout")
    parser.add_argument("sheet", help="coding sheet (.xlsx or .csv)")
    parser.add_argument("media_root", help="folder holding the dataset's clips")
    parser.add_argument("--report", action="store_true", help="list every fixed or skipped row")
    parser.add_argument("--fps", type=float,
                        help="megc: frame rate used to type rows without a type (default: the video's)")
    parser.add_argument("--project", metavar="P", help="add the samples to this project (.maus)")


def run(args) -> int:
    from tqdm import tqdm

    from microau_gui.media import frame_index
    from microau_gui.store.importers import import_dataset

    if args.project:
        raise UserError("--project is not available yet; import without it to check the sheet")
    with tqdm(desc="import", unit="row", leave=False, disable=not sys.stderr.isatty()) as bar:

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        dataset = import_dataset(args.kind, args.sheet, args.media_root, frame_index=frame_index,
                                 fps=args.fps, progress=progress)
    report = dataset.report
    subjects = dataset.subjects
    shown = ", ".join(subjects[:20]) + (" ..." if len(subjects) > 20 else "")
    print(f"{len(dataset.samples)} samples from {len(subjects)} subjects ({shown}) "
          f"[{dataset.kind}: {dataset.sheet.name}]")
    print(f"{report.n_rows} rows read: {len(report.fixed)} fixed, {len(report.skipped)} skipped")
    if args.report:
        for issue in report.issues:
            print(f"  {issue}")
    elif report.issues:
        print("run with --report to list them")
    return 0
