"""The one check of an output path, before anything is written to it.

Owns: `check_output`, `project_guard`. May import core only (standard library otherwise).

Every command that writes a file (`--out`, `--json`) and every export of the window checks its
path here first: an existing folder, a missing or read-only parent folder, and above all a path
that resolves to something the run reads or keeps (reliability issue D1: `export --out P.maus`
and `analyze --project P --out P` used to exit 0 and overwrite the project). Paths are compared
resolved (symbolic links, `..`) and, when both exist, as files (hard links), so no spelling of
the project, its `-wal` / `-shm` files, the input media or a checkpoint file gets through.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from microau_gui.core.errors import UserError


def project_guard(project: Path | str) -> list[tuple[Path, str]]:
    """(path, what) of a project file and of the SQLite files beside it that hold its latest
    changes, for `check_output`'s `protected`."""
    project = Path(project)
    return [(project, "the project"), *((project.with_name(project.name + s), f"the project's {s} file")
                                         for s in ("-wal", "-shm", "-journal"))]


def _same(a: Path, b: Path) -> bool:
    if a == b:
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def check_output(out: Path | str, protected: Iterable[tuple[Path | str, str]] = (), *,
                 flag: str = "--out", folder: bool = False) -> Path:
    """`out` as an absolute path, or a one-line UserError saying why it cannot be written.

    protected: (path, what it is) pairs the output must not be, e.g. (project, "the project").
    folder: the output is a folder to create with its parents (a checkpoint), not a file.
    """
    given = Path(out).expanduser()
    resolved = given.resolve()
    for path, what in protected:
        if path is not None and _same(resolved, Path(path).expanduser().resolve()):
            raise UserError(f"{flag} {given} is {what}; writing there would destroy it, choose "
                            "another path")
    if folder:
        return given.absolute()  # its parents are created with it
    if resolved.is_dir():
        raise UserError(f"{flag} {given} is a folder; give a file name")
    if not resolved.parent.is_dir():
        raise UserError(f"{flag} {given}: the folder does not exist ({resolved.parent}); create "
                        f"it or choose another {flag}")
    if not os.access(resolved.parent, os.W_OK):
        raise UserError(f"{flag} {given}: folder {resolved.parent} is not writable; choose "
                        f"another {flag}")
    return given.absolute()
