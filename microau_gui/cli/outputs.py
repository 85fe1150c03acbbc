"""The command line's side of the one output check (`core.outputs.check_output`).

Owns: `check_out`, `dataset_files`. May import core, model.card (torch-free) and the standard library.

A command names what it reads (its project, its media, its sheets); `check_out` adds the
project's `-wal` / `-shm` files and refuses a path that is a checkpoint's card or weights, then
runs the core check. It is called before any work, so a refused path costs nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from microau_gui.core.outputs import check_output, project_guard
from microau_gui.model.card import checkpoint_guard


def check_out(out: Path | str, *, project: Path | str | None = None,
              reads: Iterable[tuple[Path | str | None, str]] = (), flag: str = "--out",
              folder: bool = False) -> Path:
    """`out` as an absolute path, or a one-line UserError (see `core.outputs.check_output`).

    project: the project the command opens; reads: (path, what it is) of every other input.
    """
    protected: list[tuple[Path | str, str]] = [(p, what) for p, what in reads if p is not None]
    if project is not None:
        protected += project_guard(project)
    protected += checkpoint_guard(out)
    return check_output(out, protected, flag=flag, folder=folder)


def dataset_files(specs: Iterable[str] | str) -> list[tuple[Path, str]]:
    """The coding sheets named by `KIND:SHEET:ROOT` dataset arguments, as `reads` entries."""
    specs = [specs] if isinstance(specs, str) else list(specs)
    return [(Path(parts[1]), "a dataset sheet this run reads")
            for parts in (spec.split(":", 2) for spec in specs) if len(parts) == 3]
