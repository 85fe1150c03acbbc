"""Model cards: what a checkpoint is, where it came from and how good it is, without torch.

Owns: `ModelCard`, `AUPrompts`, `read_card`, `checkpoint_folder`, `checkpoint_guard`,
`CARD_NAME`, `WEIGHTS_NAME`, `FORMAT_VERSION`, `DEFAULT_INTENDED_USE`, `DEMO_FLAG`. May import
core and `model.config` only
(no torch, no open_clip), so every layer above the model reads cards as typed values: the GUI,
the session, the pipelines and the CLI pass a `ModelCard`, never its JSON as a dict.

A card is stored as `card.json` beside `model.safetensors` (see `model.checkpoint`, which
writes both and checks them against each other when loading the weights). `read_card` reads
the card alone, cheaply, for listings and model banners.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

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


# Bounds on every size a card may state (D7: `image_size 44800` made the loader try 16 GB). They
# are far above any model here (ViT-L-14 at 336 px: 336 px crops, a 24-patch grid, 16 heads).
MAX_IMAGE_PX = 1024
MAX_GRID = 128
MAX_AUS = 64
_Text = Field(max_length=10_000)
_Sha256 = Field(pattern=r"^[0-9a-f]{64}$")


class _Prompts(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    positive: list[str] = Field(min_length=1, max_length=64)
    negative: list[str] = Field(min_length=1, max_length=64)


class _ConfigFile(BaseModel):
    """The sizes of `config` (its meaning is `MicroAUConfig`'s to check)."""

    model_config = ConfigDict(extra="allow")
    backbone: str = Field(min_length=1, max_length=64)
    image_size: int | None = Field(default=None, ge=16, le=MAX_IMAGE_PX, strict=True)
    vocab: list[str] = Field(min_length=1, max_length=MAX_AUS)
    pta_heads: int = Field(default=4, ge=1, le=64, strict=True)
    gda_layers: int = Field(default=1, ge=1, le=16, strict=True)
    gda_heads: int = Field(default=4, ge=1, le=64, strict=True)
    gda_ffn_ratio: float = Field(default=2.0, gt=0, le=16)


class _CardFile(BaseModel):
    """card.json as stored: types and bounds, checked before anything is built from it."""

    model_config = ConfigDict(extra="allow")  # readable copies (loss_weights ...) are ignored
    name: str = Field(min_length=1, max_length=200)
    config: _ConfigFile
    prompts: dict[str, _Prompts] = Field(min_length=1, max_length=MAX_AUS)
    image_size: int = Field(ge=16, le=MAX_IMAGE_PX, strict=True)
    grid_size: int = Field(ge=1, le=MAX_GRID, strict=True)
    pretrained_source: str = _Text
    pretrained_loaded: bool = Field(strict=True)
    architecture: str = _Sha256
    weights_sha256: str = _Sha256
    created: str = Field(max_length=64)
    training_data_hash: str | None = Field(default=None, max_length=200)
    metrics: dict[str, Any] = {}
    parent: str | None = Field(default=None, max_length=300)
    teacher: str | None = Field(default=None, max_length=300)
    training_settings: dict[str, Any] = {}
    intended_use: str = _Text
    notes: str = _Text
    vocab: list[str] | None = Field(default=None, max_length=MAX_AUS)  # the readable copy

    @field_validator("vocab", mode="before")
    @classmethod
    def _copy_is_a_list(cls, value):
        if value is None:  # the copy may be left out, not nulled: `vocab: null` is an edit
            raise ValueError("must list the AU codes, not be null")
        return value


def _validation_error(err: ValidationError, where: str) -> UserError:
    first = err.errors()[0]
    field_path = ".".join(str(part) for part in first["loc"]) or "the card"
    message = first["msg"].removeprefix("Value error, ").lower()
    return UserError(f"{where}: {field_path} {message}; the checkpoint is damaged or was "
                     "edited by hand, re-save or re-train it")


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
    # A distilled student: the name@version of the teacher whose probabilities and PTA maps it
    # learned (`training.distill`); None for a model trained on labels
    teacher: str | None = None
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
    def is_student(self) -> bool:
        """Distilled from a teacher (`teacher` names it) rather than trained on labels."""
        return self.teacher is not None

    @property
    def is_demo(self) -> bool:
        """Trained on synthetic data for the bundled demo (`make demo-assets` sets the flag)."""
        return bool(self.training_settings.get(DEMO_FLAG))

    def output_fields(self) -> dict[str, Any]:
        """Everything in the card that changes what the model outputs for a frame: the weights
        (their hash; the pixel normalisation and the prompt embeddings are tensors in them), the
        whole config (vocabulary *in output order*, input mode, crop size, architecture), the
        crop and flow sizes and the preprocessing version the pairs are cut with, and the decision
        threshold. Not the metrics, notes, lineage or times."""
        prep = self.training_settings.get("prep") if isinstance(self.training_settings, dict) else None
        threshold = self.metrics.get("threshold") if isinstance(self.metrics, dict) else None
        return {"weights_sha256": self.weights_sha256, "config": self.config.to_dict(),
                "image_size": self.image_size, "grid_size": self.grid_size,
                "prep": prep if isinstance(prep, dict) else None, "threshold": threshold}

    @property
    def version(self) -> str:
        """Content-addressed version string, e.g. "demo@3f2a9c1b0d4e" (store key): equal iff the
        name and `output_fields()` are. An edited card.json (another input mode, a reordered
        vocabulary, another crop) is another version, so its predictions are never served from
        the old one's cache. Until December 2026 it hashed the weights alone."""
        text = json.dumps(self.output_fields(), sort_keys=True, separators=(",", ":"))
        return f"{self.name}@{hashlib.sha256(text.encode()).hexdigest()[:12]}"

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
        try:
            checked = _CardFile.model_validate(values)
        except ValidationError as err:
            raise _validation_error(err, where) from None
        if checked.vocab is not None and checked.vocab != checked.config.vocab:
            raise UserError(f"{where}: vocab {checked.vocab} differs from config.vocab {checked.config.vocab}; "
                            "the checkpoint is damaged or was edited by hand, re-save or re-train it")
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


def checkpoint_guard(path: Path | str) -> list[tuple[Path, str]]:
    """`[(path, "a checkpoint file")]` when `path` is the card or the weights of a complete
    checkpoint folder, else `[]`: what an output check adds so no command overwrites one."""
    path = Path(path).expanduser()
    folder = path.parent
    if path.name in (CARD_NAME, WEIGHTS_NAME) and (folder / CARD_NAME).is_file() \
            and (folder / WEIGHTS_NAME).is_file():
        return [(path, f"a file of checkpoint {folder.name}")]
    return []
