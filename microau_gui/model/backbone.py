"""The CLIP ViT visual backbone: open_clip model creation, pretrained weights, projected patch tokens.

Owns: `create_open_clip` (build an open_clip CLIP for a `MicroAUConfig`, loading weights by
open_clip tag or from a local file), `BackboneWeights` (where the weights came from), and
`VisualBackbone` (image -> patch tokens in the joint image-text space, and which blocks train).
May import core, torch and open_clip.

Stated by the paper: a CLIP ViT visual backbone gives patch-level visual tokens.
Our specification (DESIGN.md section 1):
- Tokens are taken after the last block, through `ln_post` and the visual projection `proj`, so
  they live in the joint space where the text embeddings are. open_clip's `output_tokens=True`
  returns them unprojected, so `VisualBackbone.forward` walks the tower itself.
- `train_backbone_blocks = k`: 0 freezes the whole tower (the joint space stays exactly CLIP's,
  which is what keeps the visual tokens comparable with the frozen text embeddings); k > 0 lets
  the last k blocks *and* `ln_post` and `proj` train, because the projection sits directly on the
  output of the last block and must follow it when that block moves; -1 trains everything (a
  backbone without pretrained weights, such as "tiny", is only useful that way).
- Weights: `pretrained="openai"` (or any open_clip tag) goes through `open_clip.create_model`,
  which downloads them once into the Hugging Face cache; a file path goes through
  `open_clip.load_checkpoint` (state dicts saved by open_clip / torch, read with
  `torch.load(weights_only=True)`, or safetensors); "none" initialises randomly and logs a loud
  warning. `BackboneWeights.loaded` records which happened so the CLI and the window can say it.
- Patch dropout is forced off: PTA needs every patch of the grid, every time.
"""

from __future__ import annotations

import copy
import logging
import pickle
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from microau_gui.core.errors import UserError
from microau_gui.model.config import SCRATCH_BACKBONES, MicroAUConfig, backbone_model_cfg

log = logging.getLogger(__name__)

_WEIGHT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors", ".ckpt")


@dataclass(frozen=True)
class BackboneWeights:
    """What `create_open_clip` built and where its weights came from."""

    source: str  # "openai" (an open_clip tag), "file:/abs/path", or "none"
    loaded: bool  # True only when pretrained weights were really loaded into the towers
    quick_gelu: bool  # activation the towers were built with (must match the weights)
    image_size: int  # crop side in px
    mean: tuple[float, float, float]  # per-channel normalisation the weights expect (RGB, 0-1)
    std: tuple[float, float, float]


def _resolve_source(config: MicroAUConfig) -> tuple[str, dict | None, Path | None]:
    """("none" | "tag" | "file", open_clip tag config, file path) for `config.pretrained`."""
    import open_clip

    value = config.pretrained.strip()
    if value.lower() == "none":
        return "none", None, None
    path = Path(value).expanduser()
    if path.is_file():
        return "file", None, path.resolve()
    if config.backbone in SCRATCH_BACKBONES:
        raise UserError(
            f"no weights file at {value!r}, and the {config.backbone} backbone has no published weights; "
            "pass a weights file saved from it, or 'none'"
        )
    tag_cfg = open_clip.get_pretrained_cfg(config.backbone, value)
    if tag_cfg:
        return "tag", tag_cfg, None
    if path.suffix in _WEIGHT_SUFFIXES or "/" in value or "\\" in value:
        raise UserError(f"pretrained weights file {value!r} does not exist; check the path")
    tags = open_clip.list_pretrained_tags_by_model(config.backbone)
    raise UserError(
        f"{value!r} is neither a weights file nor an open_clip tag for {config.backbone}; "
        f"known tags: {', '.join(tags) or 'none'} (or 'none')"
    )


def create_open_clip(config: MicroAUConfig, *, load_pretrained: bool = True) -> tuple[nn.Module, BackboneWeights]:
    """Build the open_clip CLIP model (both towers) that `config` describes.

    `load_pretrained=False` builds the same architecture with random weights and no download;
    checkpoint loading uses it before it overwrites the weights.
    Raises UserError when the weights cannot be fetched or do not fit the architecture.
    """
    import open_clip

    model_cfg = backbone_model_cfg(config.backbone)
    kind, tag_cfg, path = _resolve_source(config)
    if config.quick_gelu is not None:
        quick_gelu = config.quick_gelu
    elif tag_cfg is not None:
        quick_gelu = bool(tag_cfg.get("quick_gelu", False))
    else:
        quick_gelu = bool(model_cfg.get("quick_gelu", False))
    native_size = model_cfg["vision_cfg"].get("image_size", 224)
    image_size = int(config.image_size or (native_size if isinstance(native_size, int) else native_size[0]))
    mean = tuple((tag_cfg or {}).get("mean", open_clip.OPENAI_DATASET_MEAN))
    std = tuple((tag_cfg or {}).get("std", open_clip.OPENAI_DATASET_STD))

    loaded = False
    if kind == "tag" and load_pretrained:
        try:
            model = open_clip.create_model(
                config.backbone,
                pretrained=config.pretrained.strip(),
                force_image_size=image_size,
                force_patch_dropout=0.0,
                require_pretrained=True,
                # force_* sets the flag before open_clip compares it with the tag's; the keyword
                # also turns it off when a user overrides a quickgelu config.
                force_quick_gelu=quick_gelu,
                quick_gelu=quick_gelu,
            )
        except (RuntimeError, OSError, ValueError) as err:
            first_line = str(err).strip().splitlines()[0][:160] if str(err).strip() else type(err).__name__
            raise UserError(
                f"could not fetch open_clip weights {config.pretrained!r} for {config.backbone} "
                f"({first_line}); connect once to download them, or pass a local weights file "
                "or 'none'"
            ) from None
        loaded = True
    else:
        cfg = copy.deepcopy(model_cfg)
        cfg["quick_gelu"] = quick_gelu
        cfg["vision_cfg"]["image_size"] = image_size
        cfg["vision_cfg"]["patch_dropout"] = 0.0
        model = open_clip.CLIP(**cfg)
        if kind == "file" and load_pretrained:
            _load_weights_file(model, path, config.backbone)
            loaded = True

    model.eval()
    if kind == "tag":
        source = config.pretrained.strip()
    elif kind == "file":
        source = f"file:{path}"
    else:
        source = "none"
    if load_pretrained and not loaded:
        log.warning(
            "NO PRETRAINED WEIGHTS: the %s backbone is randomly initialised (pretrained=%r). "
            "Its predictions mean nothing until it is trained.",
            config.backbone, config.pretrained,
        )
    return model, BackboneWeights(source, loaded, quick_gelu, image_size, mean, std)


def _load_weights_file(model: nn.Module, path: Path, backbone: str) -> None:
    import open_clip
    from safetensors import SafetensorError

    try:
        open_clip.load_checkpoint(model, str(path), strict=True, weights_only=True)
    except pickle.UnpicklingError:
        raise UserError(
            f"{path} is not a plain tensor file (it holds pickled objects, which are never "
            "unpickled); save it with torch.save(model.state_dict()) or as safetensors"
        ) from None
    except (RuntimeError, KeyError, ValueError, OSError, EOFError, SafetensorError) as err:
        detail = str(err).strip().splitlines()[0][:160] if str(err).strip() else type(err).__name__
        raise UserError(
            f"{path} does not hold open_clip weights for the {backbone} backbone ({detail}); "
            "pass the file saved from that architecture"
        ) from None


class VisualBackbone(nn.Module):
    """An open_clip `VisionTransformer` that returns projected patch tokens `(B, P, D)`."""

    def __init__(self, visual: nn.Module):
        super().__init__()
        grid_h, grid_w = visual.grid_size
        if grid_h != grid_w:
            raise UserError(f"the backbone's patch grid must be square, got {grid_h} x {grid_w}")
        self.visual = visual
        self.grid_size = int(grid_h)  # patches per side
        self.image_size = int(visual.image_size[0])  # px
        self.embed_dim = int(visual.proj.shape[1])  # joint image-text dimension D
        self.n_blocks = len(visual.transformer.resblocks)

    @property
    def n_patches(self) -> int:
        return self.grid_size * self.grid_size

    def set_trainable_blocks(self, n_blocks: int) -> None:
        """Freeze the tower except its last `n_blocks` blocks (+ ln_post, proj); -1 trains all."""
        if n_blocks > self.n_blocks:
            raise UserError(
                f"train_backbone_blocks={n_blocks} but the backbone has only {self.n_blocks} blocks"
            )
        train_all = n_blocks == -1
        for param in self.visual.parameters():
            param.requires_grad_(train_all)
        if n_blocks > 0:
            for block in self.visual.transformer.resblocks[-n_blocks:]:
                block.requires_grad_(True)
            self.visual.ln_post.requires_grad_(True)
            self.visual.proj.requires_grad_(True)

    @property
    def trainable(self) -> bool:
        return any(p.requires_grad for p in self.visual.parameters())

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Normalised images `(B, 3, S, S)` -> patch tokens `(B, P, D)` in the joint space."""
        visual = self.visual
        x = visual.conv1(images)  # (B, W, g, g)
        x = x.flatten(2).transpose(1, 2)  # (B, P, W)
        cls = visual.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)  # (B, 1, W)
        x = torch.cat([cls, x], dim=1) + visual.positional_embedding.to(x.dtype)  # (B, 1 + P, W)
        x = visual.ln_pre(x)
        x = visual.transformer(x)  # (B, 1 + P, W)
        x = visual.ln_post(x[:, 1:])  # (B, P, W)
        return x @ visual.proj  # (B, P, D)
