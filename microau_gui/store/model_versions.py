"""The project's model versions: checkpoints, lineage, metrics and which one is active.

Owns: `ModelRegistry` (`project.models`), with `register`, the one way a checkpoint becomes a
version. May import only the standard library, `core` and the store's own modules.

Versions are append-only records: name, checkpoint path, AU vocabulary and lineage never change
after `add` (the predictions cache relies on that); only the metrics and the active flag do. At
most one version is active (a partial unique index enforces it). Rolling back is
`set_active(older_id)`; the older version's cached predictions are still there.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from microau_gui.core.au import au_number
from microau_gui.core.errors import UserError
from microau_gui.store import schema
from microau_gui.store.db import Database, resolve_path, store_path
from microau_gui.store.records import ModelVersion, stored_json

_COLUMNS = "id, name, checkpoint, vocab, parent_id, data_hash, metrics, created_at, active, card_version"


class Card(Protocol):
    """What registering reads from a model card (`model.card.ModelCard`, which this floor does
    not import)."""

    name: str
    vocab: tuple[str, ...]
    training_data_hash: str | None
    metrics: Mapping[str, Any]
    created: str
    version: str  # name@hash of the weights and every card field that changes outputs


class ModelRegistry:
    def __init__(self, db: Database):
        self._db = db
        self._dir = db.path.parent

    def _row(self, row) -> ModelVersion:
        return ModelVersion(
            id=row[0], name=row[1], checkpoint=resolve_path(self._dir, row[2]),
            vocab=tuple(stored_json(row[3], list, f"the vocabulary of model version {row[1]}")),
            parent_id=row[4], data_hash=row[5],
            metrics_json=row[6], created_at=row[7], active=bool(row[8]), card_version=row[9],
        )

    @staticmethod
    def _vocab(name: str, vocab) -> tuple[str, ...]:
        """`vocab` as stored ("AU12", ...); UserError for an empty or unknown one."""
        vocab = tuple(vocab)
        if not vocab:
            raise UserError(f"model version {name!r} has an empty AU vocabulary")
        try:
            return tuple(f"AU{au_number(code)}" for code in vocab)
        except KeyError as err:
            raise UserError(f"model version {name!r}: {err.args[0]}") from err

    def add(self, name: str, checkpoint: Path | str, vocab: tuple[str, ...], *,
            parent_id: int | None = None, data_hash: str = "",
            metrics: Mapping[str, Any] | None = None, activate: bool = False,
            created_at: str | None = None, card_version: str | None = None) -> ModelVersion:
        """Register a checkpoint as a new version (and make it active when `activate`)."""
        name = name.strip()
        if not name:
            raise UserError("a model version needs a name")
        vocab = self._vocab(name, vocab)
        with self._db.write() as changes:
            conn = self._db.conn()
            if conn.execute("SELECT 1 FROM model_versions WHERE name = ?", (name,)).fetchone():
                raise UserError(f"a model version named {name!r} already exists; pick another name")
            if parent_id is not None:
                self.get(parent_id)
            if activate:
                conn.execute("UPDATE model_versions SET active = 0 WHERE active = 1")
            cursor = conn.execute(
                "INSERT INTO model_versions (name, checkpoint, vocab, parent_id, data_hash, "
                "metrics, created_at, active, card_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (name, store_path(self._dir, checkpoint), json.dumps(list(vocab)), parent_id,
                 data_hash, json.dumps(dict(metrics or {}), sort_keys=True),
                 created_at or schema.utc_now(), int(activate), card_version),
            )
            changes.models.add(cursor.lastrowid)
            return self.get(cursor.lastrowid)

    def list(self) -> list[ModelVersion]:
        """Every version, oldest first."""
        rows = self._db.conn().execute(f"SELECT {_COLUMNS} FROM model_versions ORDER BY id")
        return [self._row(r) for r in rows]

    def get(self, model_version_id: int) -> ModelVersion:
        row = self._db.conn().execute(
            f"SELECT {_COLUMNS} FROM model_versions WHERE id = ?", (model_version_id,)
        ).fetchone()
        if row is None:
            raise UserError(f"model version {model_version_id} is not in this project")
        return self._row(row)

    def find(self, name: str) -> ModelVersion | None:
        """The version named `name`, or None."""
        row = self._db.conn().execute(
            f"SELECT {_COLUMNS} FROM model_versions WHERE name = ?", (name,)
        ).fetchone()
        return None if row is None else self._row(row)

    def find_version(self, version: str) -> ModelVersion | None:
        """The version whose identity (`ModelVersion.version`, a card's full version) is
        `version`, or None."""
        row = self._db.conn().execute(
            f"SELECT {_COLUMNS} FROM model_versions WHERE COALESCE(card_version, name) = ?",
            (version,)).fetchone()
        return None if row is None else self._row(row)

    def register(self, card: Card, checkpoint: Path | str, *, parent_id: int | None = None,
                 activate: bool = False) -> ModelVersion:
        """The version of the checkpoint `checkpoint` described by `card`, added when the project
        lacks it: the one door through which the window, `analyze` and `finetune` register models.

        Idempotent: registering the same checkpoint again returns its version (made active when
        `activate`). A clash is refused with a UserError, because predictions are cached per
        version and must never mix two models: a version of that name whose checkpoint is another
        existing folder, or that predicts other AUs. A stored checkpoint that no longer resolves
        (a project copied elsewhere, the demo's working copy) is not a clash: the name and the
        vocabulary identify it.
        """
        checkpoint = Path(checkpoint)
        with self._db.write() as changes:
            version = self.find(card.name)
            name = card.name
            if version is not None and version.card_version not in (None, card.version):
                # The same folder with other weights or an edited card: another model. It gets
                # its own version (named by its card version), so the old cache is never served.
                name = card.version
                version = self.find(name)
            if version is None:
                return self.add(name, checkpoint, card.vocab, parent_id=parent_id,
                                data_hash=card.training_data_hash or "", metrics=card.metrics,
                                activate=activate, created_at=card.created or None,
                                card_version=card.version)
            if version.checkpoint.exists() and version.checkpoint.resolve() != checkpoint.resolve():
                raise UserError(f"the project already has a model version named {version.name!r} for "
                                f"another checkpoint ({version.checkpoint}); rename the checkpoint "
                                "folder or choose that version")
            if tuple(version.vocab) != self._vocab(version.name, card.vocab):
                raise UserError(f"model version {version.name!r} in the project predicts other AUs "
                                f"than {checkpoint}; rename the checkpoint folder")
            if version.card_version is None:  # registered before card versions were recorded
                self._db.conn().execute("UPDATE model_versions SET card_version = ? WHERE id = ?",
                                        (card.version, version.id))
                changes.models.add(version.id)
                version = self.get(version.id)
            if activate and not version.active:
                return self.set_active(version.id)
            return version

    def active(self) -> ModelVersion | None:
        row = self._db.conn().execute(
            f"SELECT {_COLUMNS} FROM model_versions WHERE active = 1"
        ).fetchone()
        return None if row is None else self._row(row)

    def set_active(self, model_version_id: int | None) -> ModelVersion | None:
        """Make one version active (None: no active version); returns it."""
        with self._db.write() as changes:
            conn = self._db.conn()
            previous = self.active()
            if model_version_id is not None:
                self.get(model_version_id)
            conn.execute("UPDATE model_versions SET active = 0 WHERE active = 1")
            if model_version_id is not None:
                conn.execute("UPDATE model_versions SET active = 1 WHERE id = ?",
                             (model_version_id,))
                changes.models.add(model_version_id)
            if previous is not None:
                changes.models.add(previous.id)
        return None if model_version_id is None else self.get(model_version_id)

    def remove(self, model_version_id: int) -> None:
        """Delete a version and its cached predictions; refused while active or a parent."""
        with self._db.write() as changes:
            version = self.get(model_version_id)
            if version.active:
                raise UserError(f"model version {version.name!r} is active; activate another first")
            children = [r[0] for r in self._db.conn().execute(
                "SELECT name FROM model_versions WHERE parent_id = ?", (model_version_id,))]
            if children:
                raise UserError(f"model version {version.name!r} is the parent of "
                                f"{', '.join(children)}; it is kept for their lineage")
            changes.events.update(r[0] for r in self._db.conn().execute(
                "SELECT id FROM events WHERE model_version_id = ?", (model_version_id,)))
            self._db.conn().execute("DELETE FROM model_versions WHERE id = ?", (model_version_id,))
            changes.models.add(model_version_id)
