"""Model cards: what a checkpoint is, where it came from and how good it is, without torch.

Owns: `ModelCard`, `AUPrompts`, `read_card`, `checkpoint_folder`, `CARD_NAME`, `WEIGHTS_NAME`,
`FORMAT_VERSION`, `DEFAULT_INTENDED_USE`, `DEMO_FLAG`. May import core and `model.config` only
(no torch, no open_clip), so every layer above the model reads cards as typed values: the GUI,
the session, the pipelines and the CLI pass a `ModelCard`, never its JSON as a dict.

A card is stored as `card.json` beside `model.safetensors` (see `model.checkpoint`, which
writes both and checks them against each other when loading the weights). `read_card` reads
the card alone, cheaply, for listings and model banners.
"""

from __future__ import annotations

import json
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any

from microau_gui.core.errors import UserError
from microau_gui.model.config import MicroAUConfig

FORMAT_VERSION = 1
CARD_NAME = "card.json"
WEIGHTS_NAME = "model.safetensors"
DEMO_FLAG = "is_demo"  # key in the card's training_settings of the bundled demo checkpoint
DEFAULT_INTENDED_USE = (
    "Research aid for reviewing micro-expression action units. Predictions support, and never "
    "replace, a certified FACS coder; not for clinical, forensic or hiring decisions."
)


@dataclass(frozen=True)
class AUPrompts:
    """The prompt texts whose ensembled embeddings are t_k+ and t_k- of one AU."""

    positive: tuple[str, ...]
    negative: tuple[str, ...]


@dataclass(frozen=True)
class ModelCard:
    """What a checkpoint is, where it came from and how good it is. Stored as `card.json`."""

    name: str  # checkpoint folder name
    config: MicroAUConfig  # resolved config: rebuilds exactly this architecture
    prompts: dict[str, AUPrompts]  # AU code -> prompts behind its cached text embeddings
    image_size: int  # crop side the model expects, px
    grid_size: int  # patches per side (region masks have grid_size ** 2 columns)
    pretrained_source: str  # "openai", "file:/path" or "none"
    pretrained_loaded: bool  # False: the backbone started from random weights
    architecture: str  # SHA-256 of sorted tensor names and shapes
    weights_sha256: str  # SHA-256 of model.safetensors
    created: str  # ISO 8601 UTC time of saving
    training_data_hash: str | None = None  # hash of the label snapshot it was trained on
    metrics: dict[str, Any] = field(default_factory=dict)  # e.g. the train/eval JSON report
    parent: str | None = None  # version of the checkpoint it was fine-tuned from
    training_settings: dict[str, Any] = field(default_factory=dict)  # epochs, lr, seed, pos weights ...
    intended_use: str = DEFAULT_INTENDED_USE
    notes: str = ""
    format_version: int = FORMAT_VERSION

    @property
    def vocab(self) -> tuple[str, ...]:
        return self.config.vocab

    @property
    def input_mode(self) -> str:
        return self.config.input_mode

    @property
    def is_demo(self) -> bool:
        """Trained on synthetic data for the bundled demo (`make demo-assets` sets the flag)."""
        return bool(self.training_settings.get(DEMO_FLAG))

    @property
    def version(self) -> str:
        """Content-addressed version string, e.g. "demo@3f2a9c1b0d4e" (store and GUI key)."""
        return f"{self.name}@{self.weights_sha256[:12]}"

    def to_dict(self) -> dict[str, Any]:
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values["config"] = self.config.to_dict()
        values["prompts"] = {
            code: {"positive": list(p.positive), "negative": list(p.negative)}
            for code, p in self.prompts.items()
        }
        # Readable copies of what the config already holds, for people and scripts.
        values["vocab"] = list(self.vocab)
        values["input_mode"] = self.input_mode
        values["loss_weights"] = {"lambda_c": self.config.lambda_c, "lambda_g": self.config.lambda_g}
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any], where: str = "model card") -> "ModelCard":
        if not isinstance(values, dict):
            raise UserError(f"{where} is not a JSON object; the checkpoint is damaged")
        version = values.get("format_version")
        if version != FORMAT_VERSION:
            raise UserError(
                f"{where} has format version {version!r}, this application reads {FORMAT_VERSION}; "
                "use a matching MicroAU Studio version"
            )
        known = {f.name for f in fields(cls)}
        required = [f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING]
        missing = [name for name in required if name not in values]
        if missing:
            raise UserError(f"{where} lacks {', '.join(missing)}; the checkpoint is damaged")
        kept = {k: v for k, v in values.items() if k in known}
        kept["config"] = MicroAUConfig.from_dict(values["config"])
        try:
            kept["prompts"] = {
                code: AUPrompts(tuple(p["positive"]), tuple(p["negative"]))
                for code, p in values["prompts"].items()
            }
        except (AttributeError, KeyError, TypeError):
            raise UserError(f"{where} has malformed prompts; the checkpoint is damaged") from None
        return cls(**kept)


def checkpoint_folder(path: str | Path) -> Path:
    """The checkpoint folder `path` names (the folder, or one of its two files); UserError when
    it is not a complete checkpoint."""
    folder = Path(path).expanduser()
    if folder.is_file() and folder.name in (CARD_NAME, WEIGHTS_NAME):
        folder = folder.parent
    if not folder.is_dir():
        raise UserError(f"no checkpoint at {path}: expected a folder holding {CARD_NAME} and {WEIGHTS_NAME}")
    for name in (CARD_NAME, WEIGHTS_NAME):
        if not (folder / name).is_file():
            raise UserError(f"checkpoint {folder} has no {name}; it is incomplete, re-save or re-train it")
    return folder


def read_card(path: str | Path) -> ModelCard:
    """The model card of a checkpoint folder (no tensors are read)."""
    card_path = checkpoint_folder(path) / CARD_NAME
    try:
        values = json.loads(card_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise UserError(f"{card_path} is not valid JSON; the checkpoint is damaged") from None
    return ModelCard.from_dict(values, where=str(card_path))
