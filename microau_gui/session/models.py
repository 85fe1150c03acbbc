"""The model choices the window offers: the project's versions and the checkpoints in `weights/`.

Owns: `ModelChoice`, `model_choices`, `startup_choice`. May import inference's checkpoint listing
(`inference.checkpoints`), store and core; no Qt.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from microau_gui.inference.checkpoints import list_checkpoints
from microau_gui.store.project import Project


@dataclass(frozen=True)
class ModelChoice:
    """One entry of the model selector."""

    name: str  # label: the project's version name, or the card's name of a weights/ checkpoint
    checkpoint: Path
    model_version_id: int | None  # the project's id, None for a checkpoint not yet registered
    origin: str  # "project" or "weights"
    active: bool = False  # the project's active version
    version: str = ""  # identity (ModelVersion.version, ModelCard.version): ModelLoaded.model_version

    @property
    def label(self) -> str:
        where = "project" if self.origin == "project" else "weights/"
        return f"{self.name}  ({where})"

    @property
    def available(self) -> bool:
        return self.checkpoint.exists()


def model_choices(project: Project | None, weights: Path) -> list[ModelChoice]:
    """The project's versions (oldest first), then checkpoints in `weights` it does not list.

    A project version whose checkpoint file is gone (the project was copied or moved) but whose
    name is in `weights` points at that checkpoint instead, keeping the project's id.
    """
    in_weights, infos = {}, []
    if weights.is_dir():
        infos = list_checkpoints(weights)
        in_weights = {info.name: Path(info.path) for info in infos}
    choices: list[ModelChoice] = []
    if project is not None:
        for v in project.models.list():
            checkpoint = v.checkpoint
            if not checkpoint.exists() and v.name in in_weights:
                checkpoint = in_weights[v.name]
            choices.append(ModelChoice(v.name, checkpoint, v.id, "project", v.active, v.version))
    known = {c.name for c in choices}
    choices += [ModelChoice(info.name, Path(info.path), None, "weights", version=info.card.version)
                for info in infos if info.name not in known]
    return choices


def startup_choice(choices: list[ModelChoice], default_checkpoint: Path | None) -> ModelChoice | None:
    """The project's active version if its checkpoint exists, else the default checkpoint, else
    the newest available project version, else any available checkpoint."""
    available = [c for c in choices if c.available]
    for choice in available:
        if choice.active:
            return choice
    if default_checkpoint is not None:
        for choice in available:
            if choice.checkpoint.resolve() == default_checkpoint.resolve():
                return choice
    project_versions = [c for c in available if c.origin == "project"]
    if project_versions:
        return project_versions[-1]
    return available[0] if available else None
