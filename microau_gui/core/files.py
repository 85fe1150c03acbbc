"""Writing files and folders so that a crash never leaves a half-written one where a complete one was.

Owns: `PendingFile`, `atomic_path`, `atomic_dir`, `write_atomically`, `partials_of`. Imports nothing of ours
(standard library only). Every file and folder the program writes goes through here.

- The data is written under a temporary name beside the target,
  `.<stem>.<host>-<pid>-<random>.partial<suffix>` (the suffix is kept: PyAV picks a container by
  it). The name is unique per writer, so two processes writing the same output never write into
  one file; the last one to finish wins, whole.
- On success the temporary is renamed into place (`os.replace`, atomic within a folder); on any
  exception it is removed.
- A writer that is killed (SIGKILL, power loss) cannot clean up. The next successful write of
  the same output removes the partials whose writer is gone (its process no longer runs on this
  host, or, from another host, the partial is a day old), so they never add up.
- New files and folders get the mode a plain `open()` / `mkdir()` gives them, 0666 / 0777 less
  the umask, so a lab group can read shared checkpoints, sidecars, reports and proxies (a umask
  of 027 or 002 says so). `tempfile.mkstemp` would make them 0600.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

_MARK = "partial"
_FOREIGN_STALE_S = 24 * 3600.0  # a partial from another host this old has lost its writer


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9]", "", socket.gethostname())[:16] or "host"


def _temporary(path: Path) -> Path:
    token = f"{_host()}-{os.getpid()}-{secrets.token_hex(4)}"
    return path.with_name(f".{path.stem}.{token}.{_MARK}{path.suffix}")


def _pattern(path: Path) -> re.Pattern:
    return re.compile(rf"\.{re.escape(path.stem)}\.(?P<host>[A-Za-z0-9]+)-(?P<pid>\d+)-[0-9a-f]{{8}}"
                      rf"\.{_MARK}{re.escape(path.suffix)}")


def partials_of(path: Path | str) -> list[Path]:
    """The temporaries of writers of `path` that have not finished (running or killed)."""
    path = Path(path)
    pattern = _pattern(path)
    try:
        names = os.listdir(path.parent)
    except OSError:
        return []
    return sorted(path.parent / name for name in names if pattern.fullmatch(name))


def _writer_gone(partial: Path, pattern: re.Pattern) -> bool:
    match = pattern.fullmatch(partial.name)
    if match is None:
        return False
    if match["host"] != _host():
        try:
            return time.time() - partial.lstat().st_mtime > _FOREIGN_STALE_S
        except OSError:
            return False
    pid = int(match["pid"])
    if pid == os.getpid():
        return False  # another thread of ours may be writing it
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # exists under another user
        return False
    return False


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _remove_stale_partials(path: Path) -> None:
    pattern = _pattern(path)
    for partial in partials_of(path):
        if _writer_gone(partial, pattern):
            try:
                _remove(partial)
            except OSError:
                pass  # not ours to remove (permissions): it costs disk space, nothing else


def _fsync(path: Path) -> None:
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())


class PendingFile:
    """A fresh temporary file beside `path` (empty, umask mode) that `commit()` puts in place of
    `path` and `discard()` removes; for writers that live longer than one block (a CSV filled
    batch by batch). Writers may truncate, overwrite or recreate `tmp`.

    durable: fsync the data before the rename (checkpoints, projects); caches skip it, since a
    lost entry only costs time. OSError from creating or renaming propagates.
    """

    def __init__(self, path: Path | str, *, durable: bool = False):
        self.path = Path(path)
        self.durable = durable
        self.tmp = _temporary(self.path)
        os.close(os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))

    def commit(self) -> None:
        try:
            if self.durable:
                _fsync(self.tmp)
            os.replace(self.tmp, self.path)
        except BaseException:
            self.discard()
            raise
        _remove_stale_partials(self.path)

    def discard(self) -> None:
        self.tmp.unlink(missing_ok=True)


@contextmanager
def atomic_path(path: Path | str, *, durable: bool = False) -> Iterator[Path]:
    """Yield a `PendingFile`'s temporary to write; leaving the block without an exception
    commits it (replaces `path`), an exception discards it."""
    pending = PendingFile(path, durable=durable)
    try:
        yield pending.tmp
    except BaseException:
        pending.discard()
        raise
    pending.commit()


@contextmanager
def atomic_dir(path: Path | str, *, replace: bool = False, named: bool = False) -> Iterator[Path]:
    """Yield a fresh empty folder beside `path` to fill; on leaving the block without an
    exception it is renamed to `path`, otherwise removed with its contents.

    An existing `path` is an error (FileExistsError) unless `replace`: then the old folder is
    moved aside, the new one put in place and the old one deleted, so `path` is never a mix.
    named: yield `<staging>/<path.name>` instead (not yet created), for writers that take the
    name of what they write from its folder (a checkpoint's card names its folder).
    """
    path = Path(path)
    staging = _temporary(path)
    os.mkdir(staging, 0o777)
    built = staging / path.name if named else staging
    try:
        yield built
        if path.exists() and not replace:
            raise FileExistsError(f"{path} already exists")
        if replace and path.exists():
            aside = _temporary(path)  # a partial name: removed as stale if we die before the end
            os.rename(path, aside)
            os.rename(built, path)
            _remove(aside)
        else:
            os.rename(built, path)
    finally:
        _remove(staging)  # the whole folder on failure; only the emptied wrapper when `named`
    _remove_stale_partials(path)


def write_atomically(path: Path | str, write: Callable[[Path], None], *, durable: bool = False) -> None:
    """`write(tmp)` inside `atomic_path(path, durable=durable)`, for writers that are one call."""
    with atomic_path(path, durable=durable) as tmp:
        write(tmp)
