"""Opening, creating and transacting on a project's SQLite file; one connection per thread.

Owns: `Database` (safe open with integrity check, atomic create, read-only detection, per-thread
connections, nested write transactions, change notification), `is_project_file`, and how paths
are stored (`store_path`, `resolve_path`: relative to the project's folder). May import only the
standard library and `core`; `Project` builds on it.

Guarantees:
- Opening never modifies a file it rejects. The header is read with plain file I/O first (SQLite
  magic, our application id); then `PRAGMA quick_check` runs on a read-only connection before
  any read-write connection exists (so not even a WAL checkpoint touches the file). A corrupt
  file raises UserError saying it was not modified.
- A file or folder without write permission (by its mode bits, so also when running as root)
  opens read-only; `read_only_reason` says why, and every write raises UserError.
- Every `write()` block is one transaction (`BEGIN IMMEDIATE` ... `COMMIT`, synchronous=FULL in
  WAL mode), so an acknowledged edit survives a crash or power loss. Nested blocks are savepoints.
- Each thread gets its own connection, lazily; WAL lets readers proceed while another thread
  writes. Listeners registered with `subscribe` are called after each outermost commit, on the
  committing thread, with the `Change` it made.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from microau_gui.core.errors import UserError
from microau_gui.core.files import atomic_path
from microau_gui.store import schema
from microau_gui.store.records import Change

log = logging.getLogger(__name__)

SUFFIX = ".maus"
_SQLITE_MAGIC = b"SQLite format 3\x00"
_BUSY_TIMEOUT_MS = 10_000  # a worker's batch commit takes milliseconds; wait rather than fail


class ChangeBuilder:
    """Collects what a transaction touches; frozen into a `Change` on commit."""

    def __init__(self):
        self.events: set[int] = set()
        self.videos: set[int] = set()
        self.subjects: set[int] = set()
        self.notes: set[int] = set()
        self.models: set[int] = set()
        self.predictions: set[tuple[int, int]] = set()

    def freeze(self) -> Change:
        return Change(
            events=frozenset(self.events), videos=frozenset(self.videos),
            subjects=frozenset(self.subjects), notes=frozenset(self.notes),
            models=frozenset(self.models), predictions=frozenset(self.predictions),
        )

    def absorb(self, other: ChangeBuilder) -> None:
        self.events |= other.events
        self.videos |= other.videos
        self.subjects |= other.subjects
        self.notes |= other.notes
        self.models |= other.models
        self.predictions |= other.predictions


def _has_write_bits(path: Path) -> bool:
    mode = path.stat().st_mode
    return bool(mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)) and os.access(path, os.W_OK)


def read_only_reason(path: Path) -> str | None:
    """Why the project at `path` cannot be written, or None when it can."""
    if not _has_write_bits(path):
        return "the project file is not writable"
    if not _has_write_bits(path.parent):
        return "the folder holding the project is not writable"
    return None


def is_project_file(path: Path | str) -> bool:
    """True when `path` is an SQLite file carrying our application id (cheap header check)."""
    try:
        with Path(path).open("rb") as handle:
            header = handle.read(100)
    except OSError:
        return False
    return (len(header) == 100 and header.startswith(_SQLITE_MAGIC)
            and int.from_bytes(header[68:72], "big") == schema.APPLICATION_ID)


def store_path(project_dir: Path, path: Path | str) -> str:
    """A path as stored: relative to the project folder when possible, '/' separators."""
    path = Path(path)
    if not path.is_absolute():
        path = Path.cwd() / path
    try:
        return Path(os.path.relpath(path, project_dir)).as_posix()
    except ValueError:  # another drive on Windows: keep it absolute
        return path.as_posix()


def resolve_path(project_dir: Path, stored: str) -> Path:
    return Path(os.path.normpath(project_dir / stored))


def _remove_empty(path: Path) -> None:
    """Remove a -wal file that holds no frames, or a -shm index (rebuilt from the -wal on open)."""
    try:
        if path.name.endswith("-shm") or path.stat().st_size == 0:
            path.unlink()
    except OSError:
        pass


def _corrupt(path: Path, detail: str) -> UserError:
    return UserError(
        f"project {path} is corrupt ({detail}); it was not modified: restore it from a backup, "
        "or try `sqlite3 FILE .recover` on a copy"
    )


class Database:
    """An open project file. Use `Database.open` / `Database.create`, then `conn()` and `write()`."""

    def __init__(self, path: Path, uri: str, read_only_reason: str | None):
        self.path = path
        self.read_only_reason = read_only_reason  # None when writable
        self._uri = uri
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        self._listeners: list[Callable[[Change], None]] = []
        self._closed = False

    @property
    def read_only(self) -> bool:
        return self.read_only_reason is not None

    # -- opening -------------------------------------------------------------------------------

    @classmethod
    def create(cls, path: Path | str) -> Path:
        """Write a new, empty project at `path` atomically (never over an existing file)."""
        path = Path(path).absolute()
        if path.exists():
            raise UserError(f"{path} already exists; open it instead, or choose another name")
        if not path.parent.is_dir():
            raise UserError(f"folder {path.parent} does not exist; create it first")
        if not _has_write_bits(path.parent):
            raise UserError(f"cannot create a project in {path.parent}: the folder is not writable")
        partial = path.with_name(f".{path.name}.creating-{os.getpid()}")
        for leftover in (partial, Path(f"{partial}-wal"), Path(f"{partial}-shm")):
            leftover.unlink(missing_ok=True)
        try:
            conn = sqlite3.connect(partial, isolation_level=None)
            try:
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute(f"PRAGMA application_id = {schema.APPLICATION_ID}")
                schema.migrate(conn)
                conn.executemany(
                    "INSERT INTO project_meta (key, value) VALUES (?, ?)",
                    [("created_at", schema.utc_now()), ("file_format", "microau-project")],
                )
            finally:
                conn.close()
            try:
                os.link(partial, path)  # fails if someone created `path` meanwhile: no clobbering
            except FileExistsError as err:
                raise UserError(f"{path} already exists; open it instead, or choose another name") from err
            except OSError:
                if path.exists():
                    raise UserError(f"{path} already exists; open it instead") from None
                os.replace(partial, path)
        except sqlite3.Error as err:
            raise UserError(f"cannot create project {path}: {err}") from err
        finally:
            partial.unlink(missing_ok=True)
        return path

    @classmethod
    def open(cls, path: Path | str, read_only: bool | None = None) -> Database:
        """Open an existing project after checking it (see the module docstring).

        read_only: None decides from the file's permissions; True never writes; False raises
        UserError when the file cannot be written.
        """
        path = Path(path).absolute()
        if not path.exists():
            raise UserError(f"no project at {path}; check the path or create one with --project")
        if path.is_dir():
            raise UserError(f"{path} is a folder, not a project file ({SUFFIX})")
        try:
            with path.open("rb") as handle:
                header = handle.read(100)
        except OSError as err:
            raise UserError(f"cannot read project {path}: {err.strerror or err}") from err
        if not header.startswith(_SQLITE_MAGIC):
            raise UserError(f"{path} is not a MicroAU project (not an SQLite database)")
        if len(header) < 100:
            raise _corrupt(path, "the file is truncated")
        if int.from_bytes(header[68:72], "big") != schema.APPLICATION_ID:
            raise UserError(
                f"{path} is an SQLite database but not a MicroAU project (application id "
                f"{int.from_bytes(header[68:72], 'big'):#x}); open a {SUFFIX} file"
            )
        reason = read_only_reason(path)
        if read_only is False and reason is not None:
            raise UserError(f"cannot open {path} for writing: {reason}")
        if read_only and reason is None:
            reason = "opened read-only on request"
        db = cls(path, cls._uri_for(path, reason), reason)
        sidecars = [Path(f"{path}-wal"), Path(f"{path}-shm")]
        existed = [p.exists() for p in sidecars]
        try:
            db._check()
            db._upgrade()
        except BaseException:
            db.close()
            # SQLite makes empty -wal/-shm files just to look at a WAL-mode file; a file we
            # refuse must not leave them behind (ones that were there before are kept).
            for sidecar, was_there in zip(sidecars, existed):
                if not was_there:
                    _remove_empty(sidecar)
            raise
        return db

    @staticmethod
    def _uri_for(path: Path, reason: str | None) -> str:
        uri = path.as_uri()
        if reason is None:
            return uri + "?mode=rw"  # never create: a vanished file must not come back empty
        wal = Path(f"{path}-wal")
        if reason != "opened read-only on request" and not (wal.exists() and wal.stat().st_size):
            # Nothing to recover and nobody can write it: read without locks or -shm files,
            # which a read-only folder could not hold anyway.
            return uri + "?mode=ro&immutable=1"
        return uri + "?mode=ro"

    def _check(self) -> None:
        """quick_check on a separate read-only connection: closing a read-write connection
        would checkpoint a -wal file into a file we are about to reject."""
        uri = self._uri if self.read_only else self._uri.replace("?mode=rw", "?mode=ro")
        try:
            conn = sqlite3.connect(uri, uri=True, isolation_level=None)
        except sqlite3.Error as err:
            raise UserError(f"cannot open project {self.path}: {err}") from err
        try:
            rows = [r[0] for r in conn.execute("PRAGMA quick_check").fetchall()]
        except sqlite3.DatabaseError as err:
            if "unable to open" in str(err) and self.read_only:
                raise UserError(
                    f"cannot open read-only project {self.path}: it holds unsaved recovery data "
                    "(a -wal file) that needs a writable folder; copy the folder somewhere "
                    "writable and open it there"
                ) from err
            raise _corrupt(self.path, str(err)) from err
        finally:
            conn.close()
        if rows != ["ok"]:
            raise _corrupt(self.path, "; ".join(rows[:3]))

    def _upgrade(self) -> None:
        conn = self.conn()
        version = schema.user_version(conn)
        latest = schema.latest_version()
        if version > latest:
            raise UserError(
                f"project {self.path} uses schema {version}, newer than this program's {latest}; "
                "update MicroAU Studio to open it"
            )
        if version == latest:
            return
        if self.read_only:
            raise UserError(
                f"project {self.path} uses schema {version} and must be upgraded to {latest}, "
                f"but {self.read_only_reason}; copy it somewhere writable and open the copy"
            )
        conn.execute("PRAGMA journal_mode = WAL")
        if version >= 1:
            self._backup(version)
        applied = schema.migrate(conn)
        log.info("upgraded project %s from schema %d to %d", self.path, version, applied[-1])

    def _backup(self, version: int) -> None:
        """Copy the file before a migration touches stored data (kept beside it)."""
        target = self.path.with_name(f"{self.path.name}.schema{version}.bak")
        if target.exists():
            return
        with atomic_path(target, durable=True) as partial:
            dest = sqlite3.connect(partial)
            try:
                self.conn().backup(dest)
            finally:
                dest.close()

    # -- connections ---------------------------------------------------------------------------

    def conn(self) -> sqlite3.Connection:
        """This thread's connection (created on first use)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        if self._closed:
            raise RuntimeError(f"project {self.path} is closed")
        try:
            conn = sqlite3.connect(self._uri, uri=True, isolation_level=None,
                                   check_same_thread=False)
        except sqlite3.Error as err:
            raise UserError(f"cannot open project {self.path}: {err}") from err
        conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA foreign_keys = ON")
        if not self.read_only:
            conn.execute("PRAGMA synchronous = FULL")
        self._local.conn = conn
        self._local.depth = 0
        self._local.builders = []
        with self._lock:
            self._connections.append(conn)
        return conn

    def close_thread_connection(self) -> None:
        """Close the calling thread's connection (workers call this before their thread ends)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            return
        self._local.conn = None
        with self._lock:
            if conn in self._connections:
                self._connections.remove(conn)
        conn.close()

    def close(self) -> None:
        """Close every thread's connection. The last close checkpoints and removes the -wal file."""
        with self._lock:
            self._closed = True
            connections, self._connections = self._connections, []
        for conn in connections:
            try:
                conn.close()
            except sqlite3.Error as err:  # closing must not hide the caller's own error
                log.warning("closing %s: %s", self.path, err)
        self._local = threading.local()

    # -- writing -------------------------------------------------------------------------------

    def require_writable(self) -> None:
        if self.read_only:
            raise UserError(
                f"project {self.path} is open read-only ({self.read_only_reason}); "
                "edits are not possible: make the file writable or save a copy"
            )

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """One consistent snapshot for several SELECTs (joins the open transaction, if any)."""
        conn = self.conn()
        if conn.in_transaction:
            yield conn
            return
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            conn.execute("COMMIT")

    @contextmanager
    def write(self) -> Iterator[ChangeBuilder]:
        """One transaction (a savepoint when nested). Yields the builder to record changes in."""
        self.require_writable()
        conn = self.conn()
        depth = self._local.depth
        builder = ChangeBuilder()
        try:
            conn.execute("BEGIN IMMEDIATE" if depth == 0 else f"SAVEPOINT level{depth}")
        except sqlite3.OperationalError as err:
            raise (self._write_error(err) or err) from err
        self._local.depth = depth + 1
        builders = self._local.builders
        builders.append(builder)
        try:
            yield builder
        except BaseException as err:
            builders.pop()
            self._local.depth = depth
            conn.execute("ROLLBACK" if depth == 0 else f"ROLLBACK TO level{depth}")
            if depth:
                conn.execute(f"RELEASE level{depth}")
            if isinstance(err, sqlite3.OperationalError) and self._write_error(err):
                raise self._write_error(err) from err
            raise
        builders.pop()
        self._local.depth = depth
        if depth:
            conn.execute(f"RELEASE level{depth}")
            builders[-1].absorb(builder)
            return
        try:
            conn.execute("COMMIT")
        except sqlite3.OperationalError as err:
            conn.execute("ROLLBACK")
            raise (self._write_error(err) or err) from err
        self._notify(builder.freeze())

    def _write_error(self, err: sqlite3.OperationalError) -> UserError | None:
        """The UserError a failed write means for the user, or None for a programming error."""
        text = str(err)
        if "readonly" in text:
            return UserError(f"project {self.path} cannot be written ({text}); nothing was saved "
                             "from this edit")
        if "locked" in text or "busy" in text:
            return UserError(f"project {self.path} is busy (another program is writing it); "
                             "try again, or close the other program")
        if "full" in text:
            return UserError(f"the disk holding {self.path} is full; nothing was saved from this "
                             "edit: free some space and retry")
        return None

    # -- change notification -------------------------------------------------------------------

    def subscribe(self, listener: Callable[[Change], None]) -> Callable[[], None]:
        """Call `listener(change)` after every commit; returns a function that unsubscribes."""
        with self._lock:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return unsubscribe

    def _notify(self, change: Change) -> None:
        if not change:
            return
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(change)
            except Exception:  # the data is committed; a broken view must not undo that
                log.exception("project change listener %r failed", listener)
