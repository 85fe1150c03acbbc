"""Fast content fingerprints of media, so a project can tell a moved video from a different one.

Owns: `content_hash`. May import only the standard library.

A video file is hashed from its size and its first and last MiB; an image folder from its sorted
file names and sizes plus the first and last MiB of its first and last file. Reading at most a few
MiB keeps this fast on hour-long interviews; a changed frame in the middle of a file is not
detected (that is the trade-off for speed).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from microau_gui.core.errors import UserError

_CHUNK_BYTES = 1 << 20


def _hash_file_ends(digest, path: Path) -> None:
    size = path.stat().st_size
    digest.update(str(size).encode())
    with path.open("rb") as handle:
        digest.update(handle.read(_CHUNK_BYTES))
        if size > _CHUNK_BYTES:
            handle.seek(max(_CHUNK_BYTES, size - _CHUNK_BYTES))
            digest.update(handle.read(_CHUNK_BYTES))


def content_hash(path: Path | str) -> str:
    """`"sha1:<hex>"` of a video file or image folder (see the module docstring)."""
    path = Path(path)
    digest = hashlib.sha1()
    try:
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
            for item in files:
                digest.update(f"{item.name}\0{item.stat().st_size}\0".encode())
            for item in dict.fromkeys(files[:1] + files[-1:]):  # first and last, once each
                _hash_file_ends(digest, item)
        else:
            _hash_file_ends(digest, path)
    except OSError as err:
        raise UserError(f"cannot read media {path}: {err.strerror or err}; check the path") from err
    return "sha1:" + digest.hexdigest()
