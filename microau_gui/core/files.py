"""Writing a file so that a crash never leaves a half-written one where a complete one was.

Owns: `write_atomically`. Imports nothing of ours (standard library only).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def write_atomically(path: Path, write: Callable[[Path], None], *, durable: bool = False) -> None:
    """Write `path` through `write(tmp_path)` into a hidden temporary file in the same folder,
    then rename it into place; the temporary file is removed whatever happens.

    durable: fsync the data before the rename (checkpoints); caches skip it, since a lost entry
    only costs time. OSError from creating, writing or renaming propagates.
    """
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        if durable:
            with open(tmp, "rb+") as handle:
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
