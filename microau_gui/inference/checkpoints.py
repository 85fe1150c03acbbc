"""Which checkpoint to run: the bundled demo, the checkpoints in `weights/`, a project's versions.

Owns: `CheckpointInfo`, `default_checkpoint`, `list_checkpoints`, `resolve_checkpoint`. May
import `model.card` (cards only, no torch), store and core; no Qt.

A checkpoint is a folder `weights/NAME/` holding `model.safetensors` and `card.json` (see
`model.checkpoint`). The rule `analyze` (and any other headless command) follows to pick one:
1. `--model M` given: M is a checkpoint folder (or its card.json), else the name of one of the
   project's model versions, else the name of a folder in `weights/`.
2. No `--model`: the project's active model version.
3. No project (or a project without an active version): the bundled demo checkpoint
   `weights/demo-tiny`, built by `make demo-assets`.
A project version whose checkpoint moved away (the project was copied) is looked up by its name
in `weights/`, as the window does.

The demo flag: `make demo-assets` writes `"is_demo": true` into the card's `training_settings`;
`ModelCard.is_demo` reads it, and the window shows a "demo model" banner for such a checkpoint.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from microau_gui.core.errors import UserError
from microau_gui.core.paths import weights_dir
from microau_gui.model.card import CARD_NAME, WEIGHTS_NAME, ModelCard, read_card

log = logging.getLogger(__name__)

DEMO_NAME = "demo-tiny"


@dataclass(frozen=True)
class CheckpointInfo:
    """One checkpoint folder found in a weights folder."""

    name: str  # the model card's "name" (the folder name when saved)
    path: Path  # the checkpoint folder
    card: ModelCard


def default_checkpoint() -> Path:
    """The bundled demo checkpoint folder `weights/demo-tiny` (it may not be built yet)."""
    return weights_dir() / DEMO_NAME


def list_checkpoints(weights: Path) -> list[CheckpointInfo]:
    """Every readable checkpoint folder directly inside `weights`, sorted by name.

    Folders with a missing or damaged card are left out (and logged), so one bad folder does
    not hide the others.
    """
    weights = Path(weights)
    if not weights.is_dir():
        return []
    found = []
    for folder in sorted(p for p in weights.iterdir() if p.is_dir()):
        if not ((folder / CARD_NAME).is_file() and (folder / WEIGHTS_NAME).is_file()):
            continue
        try:
            card = read_card(folder)
        except UserError as err:
            log.warning("skipping checkpoint %s: %s", folder, err)
            continue
        found.append(CheckpointInfo(name=card.name, path=folder, card=card))
    return found


def _is_checkpoint(path: Path) -> bool:
    return (path / CARD_NAME).is_file() or (path.is_file() and path.name == CARD_NAME)


def resolve_checkpoint(model: str | None, project=None, weights: Path | None = None) -> Path:
    """The checkpoint folder to run, by the rule in the module docstring.

    `project` is an open `store.project.Project` or None. Raises UserError naming what is missing.
    """
    weights = weights_dir() if weights is None else Path(weights)
    if model:
        path = Path(model).expanduser()
        if path.exists():
            if not _is_checkpoint(path):
                raise UserError(f"--model {model}: not a checkpoint folder (it needs card.json and "
                                "model.safetensors); train one with `python main.py train ...`")
            return path.parent if path.is_file() else path
        if project is not None:
            version = project.models.find(model)
            if version is not None:
                return _version_checkpoint(version, weights)
        if (weights / model).is_dir():
            return weights / model
        known = [info.name for info in list_checkpoints(weights)]
        if project is not None:
            known += [v.name for v in project.models.list()]
        raise UserError(f"--model {model}: no such checkpoint folder or model version "
                        f"(known: {', '.join(sorted(set(known))) or 'none'})")
    if project is not None:
        active = project.models.active()
        if active is not None:
            return _version_checkpoint(active, weights)
    demo = default_checkpoint()
    if not demo.is_dir():
        raise UserError(f"no model to run: the bundled demo checkpoint {demo} is not built; run "
                        "`make demo-assets`, or pass --model weights/NAME")
    return demo


def _version_checkpoint(version, weights: Path) -> Path:
    if version.checkpoint.exists():
        return version.checkpoint
    if (weights / version.name).is_dir():
        return weights / version.name
    raise UserError(f"model version {version.name!r}: its checkpoint {version.checkpoint} is "
                    "missing; copy it back or pass --model")
