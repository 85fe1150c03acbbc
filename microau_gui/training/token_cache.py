"""Backbone patch tokens kept on disk across training runs, for fine-tuning with a frozen backbone.

Owns: `TokenCache`, `backbone_key`, `default_token_dir`, `TOKEN_FORMAT`. May import model, core
and training's own modules (torch, numpy); no Qt.

Why: with a frozen backbone, a head-only fine-tune spends nearly all its time in the ViT if the
tokens of every pair are recomputed. `trainer.train_model` already encodes each pair once per
run; this cache keeps the tokens between runs (and between the folds of one run, the parent's
"before" scores and the validation curve), so a second fine-tune on the same events runs no
backbone pass for them.

Key (our specification):
- A *namespace* folder per backbone: the SHA-256 of every backbone tensor (names, dtypes,
  shapes, bytes), the pixel normalisation applied before it, the crop size, `TOKEN_FORMAT` (how
  tokens are read out of the ViT) and `samples.PREP_VERSION` (how pairs are aligned and their
  flow measured). Fine-tuned versions whose backbone stayed frozen share their parent's
  namespace; changed backbone weights or a new alignment version give a new one, so stale
  tokens are never read.
- Inside it, one file per *image content*: the BLAKE2b of the uint8 crop (target, reference or
  rendered flow, in either flip orientation) the backbone encodes. The content already reflects
  the frame pair, its alignment and the flow, so a re-cut pair can never hit an old entry.
Files are float32 `.npy` `(P, D)`, written to a temporary name and renamed, so a crash leaves no
half-written entry; an unreadable entry is recomputed. A namespace records when it was last
used; `prune` drops the least recently used namespaces beyond a count.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from microau_gui.core.files import write_atomically
from microau_gui.core.paths import cache_dir
from microau_gui.model.device import autocast_for
from microau_gui.model.network import MicroAUCLIP
from microau_gui.pairs.samples import PREP_VERSION

log = logging.getLogger(__name__)

# Bump when the way tokens are read out of the backbone changes (model.backbone.VisualBackbone).
TOKEN_FORMAT = "tokens-v1 (ln_post + proj patch tokens, float32)"
_USED_MARK = "last_used"
_CHUNK = 32  # images per backbone call


def default_token_dir() -> Path:
    """`$XDG_CACHE_HOME/microau_studio/tokens` (~/.cache by default), next to the pair cache."""
    return cache_dir("tokens")


def backbone_key(model: MicroAUCLIP) -> str:
    """Hex SHA-256 of what a patch token depends on besides the image (see the module docstring)."""
    digest = hashlib.sha256()
    digest.update(f"{TOKEN_FORMAT}\n{PREP_VERSION}\n{model.image_size}\n".encode())
    for name in ("pixel_mean", "pixel_std"):
        digest.update(getattr(model, name).detach().cpu().float().numpy().tobytes())
    for name, tensor in sorted(model.backbone.state_dict().items()):
        value = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{value.dtype}:{tuple(value.shape)}\n".encode())
        digest.update(value.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _image_key(image: np.ndarray) -> str:
    image = np.ascontiguousarray(image)
    digest = hashlib.blake2b(digest_size=20)
    digest.update(f"{image.shape}:{image.dtype}\n".encode())
    digest.update(image.tobytes())
    return digest.hexdigest()


class TokenCache:
    """Tokens of one backbone on disk; `tokens` is a `trainer.TokenSource`.

    `n_encoded` / `n_loaded` count images run through the backbone / read from disk since the
    cache was opened. `folder=None` keeps the tokens in memory only, for the life of the object.
    """

    def __init__(self, folder: Path | str | None, model: MicroAUCLIP):
        self.key = backbone_key(model)
        self.folder = None if folder is None else Path(folder).expanduser() / self.key[:24]
        self.n_encoded = 0
        self.n_loaded = 0
        self._writable = self.folder is not None
        self._memory: dict[str, np.ndarray] | None = {} if self.folder is None else None
        if self.folder is not None:
            self._touch()

    def _touch(self) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            (self.folder / _USED_MARK).write_text(f"{time.time():.0f}\n")
        except OSError as err:
            self._writable = False
            log.warning("cannot write the token cache in %s (%s); continuing without it",
                        self.folder, err.strerror or err)

    def _path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.npy"

    def _load(self, key: str, shape: tuple[int, int]) -> np.ndarray | None:
        if self._memory is not None:
            return self._memory.get(key)
        path = self._path(key)
        if not path.is_file():
            return None
        try:
            value = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError):
            log.warning("ignoring unreadable token cache entry %s", path)
            return None
        if value.shape != shape or value.dtype != np.float32:
            log.warning("ignoring token cache entry %s of shape %s", path, value.shape)
            return None
        return value

    def _store(self, key: str, value: np.ndarray) -> None:
        if self._memory is not None:
            self._memory[key] = value
            return
        if not self._writable:
            return
        path = self._path(key)

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as handle:
                np.save(handle, value, allow_pickle=False)

        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomically(path, write)
        except OSError as err:
            # A cache that cannot be written only costs time; training goes on.
            self._writable = False
            log.warning("cannot write the token cache in %s (%s); continuing without it",
                        self.folder, err.strerror or err)

    def encode(self, model: MicroAUCLIP, images: np.ndarray) -> torch.Tensor:
        """Tokens `(M, P, D)` float32 (CPU) of uint8 crops `(M, S, S, 3)`, from disk where known.

        `model`'s backbone must be the one the cache was opened for (same `backbone_key`).
        """
        shape = (model.n_patches, model.embed_dim)
        keys = [_image_key(image) for image in images]
        out = np.empty((len(images),) + shape, np.float32)  # (M, P, D)
        missing: dict[str, list[int]] = {}
        for row, key in enumerate(keys):
            if key in missing:
                missing[key].append(row)
                continue
            value = self._load(key, shape)
            if value is None:
                missing[key] = [row]
            else:
                out[row] = value
                self.n_loaded += 1
        todo = list(missing)
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad(), autocast_for(model.device):
                for start in range(0, len(todo), _CHUNK):
                    chunk = todo[start:start + _CHUNK]
                    batch = model.prepare_images(np.stack([images[missing[k][0]] for k in chunk]))
                    tokens = model.encode_tokens(batch).float().cpu().numpy()  # (B, P, D)
                    self.n_encoded += len(chunk)
                    for key, value in zip(chunk, tokens):
                        self._store(key, value)
                        out[missing[key]] = value
        finally:
            model.train(was_training)
        return torch.from_numpy(out)

    def tokens(self, model: MicroAUCLIP, images: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
        """`trainer.TokenSource`: uint8 images per kind `(N, O, S, S, 3)` -> tokens `(N, O, P, D)`."""
        out = {}
        for name, stack in images.items():
            n, n_orient = stack.shape[:2]
            flat = stack.reshape((n * n_orient,) + stack.shape[2:])  # (N * O, S, S, 3)
            out[name] = self.encode(model, flat).reshape(n, n_orient, model.n_patches, model.embed_dim)
        return out

    def prune(self, keep: int = 4) -> list[Path]:
        """Delete the least recently used namespaces beyond `keep` (never this one); returns them."""
        if self.folder is None or not self.folder.parent.is_dir():
            return []

        def last_used(folder: Path) -> float:
            try:
                return float((folder / _USED_MARK).read_text().strip())
            except (OSError, ValueError):
                return 0.0

        others = sorted((p for p in self.folder.parent.iterdir() if p.is_dir() and p != self.folder),
                        key=last_used, reverse=True)
        removed = others[max(0, keep - 1):]
        for folder in removed:
            shutil.rmtree(folder, ignore_errors=True)
        return removed
