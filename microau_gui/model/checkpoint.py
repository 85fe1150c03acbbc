"""Checkpoints: a safetensors file for the tensors plus a JSON model card, saved atomically.

Owns: `save_checkpoint`, `load_checkpoint`, `update_card`, `architecture_fingerprint`. May
import core, torch, safetensors and the other `model` modules. The card itself (`ModelCard`,
`read_card`) is `model.card`, which reads without torch.

Layout (our specification; DESIGN.md section 2): a checkpoint is a folder `weights/NAME/` with
- `model.safetensors`: every tensor of the network except the text tower: backbone, fusion,
  PTA, GDA, tau, and the cached prompt embeddings `text_pos` / `text_neg`, the GDLoss prior and
  the pixel normalisation. Inference therefore never needs the text tower.
- `card.json`: config, vocabulary, prompts, loss weights, input mode, image / grid size,
  pretrained source and whether pretrained weights were really loaded, training-data hash,
  metrics, parent version, creation time, intended use and notes, the architecture fingerprint
  (SHA-256 of sorted tensor names and shapes) and the SHA-256 of `model.safetensors`.

Safety: tensors are read with safetensors only, never unpickled. Each file is written under a
temporary name, flushed to disk, then `os.replace`d, so a crash never leaves a half-written file
under the real name. The weights are replaced before the card; a crash between the two leaves a
card whose `weights_sha256` no longer matches, which loading reports instead of using a mixed
pair. Loading validates, with one-line `UserError`s: missing files, unreadable card, corrupted or
truncated weights (hash and format), vocabulary (which AUs differ) and architecture (which
tensors are missing, unexpected or of another shape).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from microau_gui.core.errors import UserError
from microau_gui.core.files import write_atomically
from microau_gui.model.card import (
    CARD_NAME,
    DEFAULT_INTENDED_USE,
    FORMAT_VERSION,
    WEIGHTS_NAME,
    ModelCard,
    checkpoint_folder,
    read_card,
)
from microau_gui.model.network import MicroAUCLIP

FILE_MARK = "microau-clip"  # the safetensors metadata key (and, in older files, the "format" value)
_TEXT_TOWER_PREFIX = "text_tower."


def architecture_fingerprint(shapes: dict[str, tuple[int, ...]]) -> str:
    """SHA-256 over sorted "name:shape" lines: equal iff the tensor layout is equal."""
    text = "\n".join(f"{name}:{tuple(shape)}" for name, shape in sorted(shapes.items()))
    return hashlib.sha256(text.encode()).hexdigest()


def _checkpoint_tensors(model: MicroAUCLIP) -> dict[str, torch.Tensor]:
    return {
        name: tensor.detach().to("cpu").contiguous()
        for name, tensor in model.state_dict().items()
        if not name.startswith(_TEXT_TOWER_PREFIX)
    }


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def save_checkpoint(
    model: MicroAUCLIP, out_dir: str | Path, *, training_data_hash: str | None = None,
    metrics: dict[str, Any] | None = None, parent: str | None = None, teacher: str | None = None,
    training_settings: dict[str, Any] | None = None, intended_use: str = DEFAULT_INTENDED_USE,
    notes: str = "",
) -> ModelCard:
    """Save `model` to the folder `out_dir` (created if needed) and return its card."""
    from safetensors.torch import save_file

    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"cannot create checkpoint folder {out}: {err.strerror}") from None
    tensors = _checkpoint_tensors(model)
    architecture = architecture_fingerprint({k: tuple(v.shape) for k, v in tensors.items()})
    # One metadata key: safetensors writes the metadata map in hash order, so several keys made
    # the file bytes (and so weights_sha256, the version string) differ between identical saves.
    metadata = {FILE_MARK: json.dumps({"format_version": FORMAT_VERSION, "architecture": architecture},
                                      sort_keys=True)}
    weights_path = out / WEIGHTS_NAME
    try:
        write_atomically(weights_path, lambda tmp: save_file(tensors, str(tmp), metadata=metadata),
                         durable=True)
        card = ModelCard(
            name=out.name, config=model.config,
            prompts={code: p for code, p in zip(model.vocab, model.prompts)},
            image_size=model.image_size, grid_size=model.grid_size,
            pretrained_source=model.pretrained_source, pretrained_loaded=model.pretrained_loaded,
            architecture=architecture, weights_sha256=_sha256(weights_path),
            created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            training_data_hash=training_data_hash, metrics=dict(metrics or {}), parent=parent,
            teacher=teacher, training_settings=dict(training_settings or {}), intended_use=intended_use, notes=notes,
        )
        _write_card(out / CARD_NAME, card)
    except OSError as err:
        raise UserError(f"cannot write checkpoint to {out}: {err.strerror or err}") from None
    _fsync_dir(out)
    return card


def _write_card(path: Path, card: ModelCard) -> None:
    text = json.dumps(card.to_dict(), indent=2, sort_keys=False) + "\n"
    write_atomically(path, lambda tmp: tmp.write_text(text, encoding="utf-8"), durable=True)


def update_card(path: str | Path, **changes) -> ModelCard:
    """Rewrite a checkpoint's card with some fields changed (e.g. `metrics`, `notes`)."""
    folder = checkpoint_folder(path)
    locked = {"config", "prompts", "architecture", "weights_sha256", "format_version"}
    if locked & set(changes):
        raise ValueError(f"these card fields describe the weights and cannot change: {sorted(locked & set(changes))}")
    card = replace(read_card(folder), **changes)
    _write_card(folder / CARD_NAME, card)
    return card


def _vocab_difference(have: tuple[str, ...], want: tuple[str, ...]) -> str:
    missing = [c for c in want if c not in have]
    extra = [c for c in have if c not in want]
    parts = []
    if missing:
        parts.append(f"lacks {', '.join(missing)}")
    if extra:
        parts.append(f"has extra {', '.join(extra)}")
    if not parts:
        parts.append(f"orders them {', '.join(have)} instead of {', '.join(want)}")
    return "; ".join(parts)


def load_checkpoint(
    path: str | Path, *, device: torch.device | str = "cpu", expected_vocab=None
) -> tuple[MicroAUCLIP, ModelCard]:
    """Load a checkpoint folder: the network (in eval mode, on `device`) and its card.

    `expected_vocab` (AU codes) makes a vocabulary mismatch an error naming the AUs that differ.
    The model has no text tower (call `attach_text_tower()` to add AUs to it).
    """
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file

    folder = checkpoint_folder(path)
    card = read_card(folder)  # validated and bounded (model.card), nothing built yet
    weights_path = folder / WEIGHTS_NAME
    if _sha256(weights_path) != card.weights_sha256:
        raise UserError(
            f"{weights_path} is corrupted, truncated or from another save (its SHA-256 does not "
            f"match {CARD_NAME}); re-save or re-train the model"
        )
    try:
        with safe_open(str(weights_path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            # The header alone (names and shapes), so a tampered card is refused before any
            # tensor is read or any layer is built.
            found = {name: tuple(handle.get_slice(name).get_shape()) for name in handle.keys()}
    except (SafetensorError, OSError, ValueError) as err:
        raise UserError(f"{weights_path} is corrupted or not a safetensors file ({err})") from None
    # Checkpoints saved before the single metadata key carry {"format": "microau-clip", ...}.
    if FILE_MARK not in metadata and metadata.get("format") != FILE_MARK:
        raise UserError(f"{weights_path} is not a MicroAU Studio checkpoint")

    if expected_vocab is not None:
        from microau_gui.model.config import normalise_vocab

        want = normalise_vocab(expected_vocab)
        if card.vocab != want:
            raise UserError(
                f"checkpoint {folder.name} predicts a different AU vocabulary: it "
                f"{_vocab_difference(card.vocab, want)}; pick a model trained for these AUs"
            )
    if tuple(card.prompts) != card.vocab:
        raise UserError(f"{folder / CARD_NAME} lists prompts for other AUs than its vocabulary; it is damaged")

    # The architecture the card describes, built on the meta device: shapes without memory (a
    # card claiming ViT-L-14 for a 3 MB file cost 2.65 GB and 11 s when built for real).
    # The same skeleton then takes the file's tensors as its own (`assign`): building real layers
    # and copying into them held both, a peak 0.8 GB higher for ViT-B-16 (1.69 against 0.86 GB
    # after the imports' 0.61, Intel Xeon, December 7), which put the gated analysis over 2 GB.
    with torch.device("meta"):
        model = MicroAUCLIP(card.config, load_pretrained=False, text_tower=False)
    expected = {name: tuple(tensor.shape) for name, tensor in model.state_dict().items()
                if not name.startswith(_TEXT_TOWER_PREFIX)}
    if (model.image_size, model.grid_size) != (card.image_size, card.grid_size):
        raise UserError(f"{folder / CARD_NAME} says {card.image_size} px crops on a {card.grid_size}-patch "
                        f"grid, its config builds {model.image_size} px on {model.grid_size}; it is damaged")
    if expected != found:
        raise UserError(
            f"checkpoint {folder.name} does not fit the architecture its card describes "
            f"({_architecture_difference(found, expected)}); it was saved by an incompatible version "
            "or its card was edited"
        )
    try:
        tensors = load_file(str(weights_path))
    except (SafetensorError, OSError, ValueError) as err:
        raise UserError(f"{weights_path} is corrupted or not a safetensors file ({err})") from None
    model.load_state_dict(tensors, strict=True, assign=True)
    unfilled = [name for name, tensor in (*model.named_parameters(), *model.named_buffers()) if tensor.is_meta]
    if unfilled:  # a tensor the file does not hold (a buffer left out of the state dict)
        raise RuntimeError(f"loading {folder.name} left tensors without memory: {', '.join(unfilled[:4])}")
    model.prompts = tuple(card.prompts[code] for code in card.vocab)
    model.pretrained_source = card.pretrained_source
    model.pretrained_loaded = card.pretrained_loaded
    return model.to(device).eval(), card


def _architecture_difference(found: dict, expected: dict) -> str:
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    reshaped = sorted(k for k in set(found) & set(expected) if found[k] != expected[k])
    parts = []
    for label, names in (("missing", missing), ("unexpected", unexpected)):
        if names:
            parts.append(f"{label} tensors {', '.join(names[:4])}" + (f" and {len(names) - 4} more" if len(names) > 4 else ""))
    if reshaped:
        shown = ", ".join(f"{k} {found[k]} vs {expected[k]}" for k in reshaped[:4])
        parts.append(f"shape mismatch {shown}" + (f" and {len(reshaped) - 4} more" if len(reshaped) > 4 else ""))
    return "; ".join(parts)
