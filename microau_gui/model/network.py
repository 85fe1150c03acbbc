"""The Micro-AU CLIP network: input pair -> AU logits, PTA heatmaps, AU-to-AU dependencies.

Owns: `MicroAUCLIP` (the nn.Module), its typed input `PairBatch`, the intermediate `PairTokens`
and its typed output `MicroAUOutput`. May import core, torch and open_clip (through the other
`model` modules); never face, media, store, pipelines or Qt.

Stated by the paper: CLIP ViT patch tokens; PTA for local semantic independence; GDA + GDLoss
for global semantic dependency; MiAUCL aligning AU features with text; AU detection from these
text-aligned AU features.
Our specification (DESIGN.md section 1):
- Input is a pair of crops cut with ONE alignment transform (the data pipeline's job): a
  *reference* (onset / neutral) and a *target* (apex / reviewed frame), or the rendered
  reference-to-target optical-flow image (3 channels u, v, magnitude). `input_mode`:
  "apex" target tokens; "diff" target minus reference tokens; "apex+diff" both, fused by a
  linear layer; "flow" the flow image's tokens; "apex+flow" target and flow tokens, fused.
  Fusion is Linear(2D -> D) initialised to the mean of the two token sets, so fused tokens start
  in the joint space. All images share one backbone and one normalisation
  (`normalize_images` / `prepare_images`), flow images included.
- Detection: logit_k = (cos(z_k, t_k+) - cos(z_k, t_k-)) / tau with z_k the GDA output of AU k,
  tau = exp(log_tau) learnable, initialised at 0.07 and clamped at `tau_min`.
- `use_gda=False` (ablation) skips GDA: z_k is the PTA feature and the reported dependency
  matrix is the identity.
- The GDLoss prior is a buffer (`dependency_prior`, uniform until `set_dependency_prior`), so it
  is saved with the checkpoint and the GUI can show it next to the learned matrix.
- Split APIs for speed: `encode_tokens` (backbone only) and `forward_tokens` (heads only), so a
  frozen backbone's tokens can be cached during fine-tuning and a reference frame's tokens reused
  across a clip at inference. `forward(batch)` = `forward_tokens(encode_pair(batch), masks)`.
- Dtype-agnostic: after `model.to(torch.bfloat16)` it runs on bf16 inputs (masks stay bool).
- Text side (`config.text_side`, resolved at build time and stored resolved, so the card says
  which): "tower" uses the frozen tower's cached t+ / t- buffers; "learned" computes them from
  `text.LearnedPrompts` on every forward (trained with the rest). "auto" is "tower" when the
  backbone's pretrained weights were loaded, else "learned". `text_embeddings()` is the one
  place every head and loss reads t+ / t- from.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from microau_gui.core.errors import UserError
from microau_gui.model.backbone import VisualBackbone, create_open_clip
from microau_gui.model.card import AUPrompts
from microau_gui.model.config import MicroAUConfig, backbone_model_cfg, normalise_vocab
from microau_gui.model.gda import GlobalDependencyAttention
from microau_gui.model.losses import LossParts, micro_au_loss
from microau_gui.model.pta import PatchTokenAttention
from microau_gui.model.text import LearnedPrompts, TextTower, au_prompts


@functools.lru_cache(maxsize=4)
def _clip_tokenizer(context_length: int):
    """open_clip's bundled BPE tokenizer (stateless once built; building it reads the vocabulary)."""
    import open_clip

    return open_clip.SimpleTokenizer(context_length=context_length)


@dataclass(frozen=True)
class PairBatch:
    """Network input: already-normalised float images `(B, 3, S, S)` and region masks.

    Which images are required depends on `input_mode` (see `MicroAUConfig.needs_*`); the others
    may be None. Masks are bool `(B, n_au, P)` or `(n_au, P)`, P = grid_size ** 2, rasterised in
    the same aligned crop as the images.
    """

    masks: torch.Tensor  # bool (B, n_au, P) or (n_au, P)
    target: torch.Tensor | None = None  # apex / reviewed frame
    reference: torch.Tensor | None = None  # onset / neutral frame, same alignment as target
    flow: torch.Tensor | None = None  # reference -> target flow rendered as an image

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> "PairBatch":
        """Move images (and cast them to `dtype`) and masks to `device`; masks stay bool."""

        def move(image):
            return None if image is None else image.to(device=device, dtype=dtype or image.dtype)

        return PairBatch(
            masks=self.masks.to(device), target=move(self.target),
            reference=move(self.reference), flow=move(self.flow),
        )


@dataclass(frozen=True)
class PairTokens:
    """Backbone tokens `(B, P, D)` of the images a `PairBatch` held (None where not needed)."""

    target: torch.Tensor | None = None
    reference: torch.Tensor | None = None
    flow: torch.Tensor | None = None


@dataclass(frozen=True)
class MicroAUOutput:
    """Everything one forward pass says about a batch."""

    logits: torch.Tensor  # (B, n_au) detection logits
    probs: torch.Tensor  # (B, n_au) sigmoid(logits)
    pta_attention: torch.Tensor  # (B, n_au, P) head-averaged PTA weights, 0 outside regions
    gda_attention: torch.Tensor  # (B, n_au, n_au) AU-to-AU attention, rows sum to 1
    au_features: torch.Tensor  # (B, n_au, D) unit-norm z_k, the text-aligned AU features
    gda_used: bool = True  # False when GDA is ablated (gda_attention is then the identity)


class MicroAUCLIP(nn.Module):
    """Micro-AU CLIP. Build with a `MicroAUConfig`; see the module docstring for the method.

    `load_pretrained=False` skips downloading/reading the backbone weights and `text_tower=False`
    skips the text tower; checkpoint loading uses both, then restores weights and text buffers.
    Attributes `pretrained_source` / `pretrained_loaded` say where the backbone weights came from.
    """

    def __init__(self, config: MicroAUConfig, *, load_pretrained: bool = True, text_tower: bool = True):
        super().__init__()
        clip, weights = create_open_clip(config, load_pretrained=load_pretrained)
        text_side = config.text_side
        if text_side == "auto":
            text_side = "tower" if config.pretrained.strip().lower() != "none" else "learned"
        self.config = replace(config, image_size=weights.image_size, quick_gelu=weights.quick_gelu,
                              text_side=text_side)
        self.pretrained_source = weights.source
        self.pretrained_loaded = weights.loaded

        self.backbone = VisualBackbone(clip.visual)
        del clip.visual
        self.backbone.set_trainable_blocks(config.train_backbone_blocks)
        self.text_tower = TextTower(clip, self._tokenizer()) if text_tower else None

        dim = self.backbone.embed_dim
        n_au = self.config.n_au
        self.register_buffer("pixel_mean", torch.tensor(weights.mean, dtype=torch.float32).view(3, 1, 1))
        self.register_buffer("pixel_std", torch.tensor(weights.std, dtype=torch.float32).view(3, 1, 1))
        self.register_buffer("text_pos", torch.zeros(n_au, dim))  # (n_au, D) t_k+
        self.register_buffer("text_neg", torch.zeros(n_au, dim))  # (n_au, D) t_k-
        self.register_buffer("dependency_prior", torch.full((n_au, n_au), 1.0 / n_au))

        if self.config.input_mode in ("apex+diff", "apex+flow"):
            self.fuse = nn.Linear(2 * dim, dim)
            with torch.no_grad():
                eye = torch.eye(dim)
                self.fuse.weight.copy_(torch.cat([eye, eye], dim=1) / 2)
                self.fuse.bias.zero_()
        else:
            self.fuse = None
        self.pta = PatchTokenAttention(n_au, dim, config.pta_heads, config.dropout, config.pta_pooling)
        if config.use_gda:
            self.gda = GlobalDependencyAttention(
                dim, config.gda_layers, config.gda_heads, config.gda_ffn_ratio, config.dropout
            )
        else:
            self.gda = None
        self.log_tau = nn.Parameter(torch.tensor(math.log(config.tau_init)))
        # The prompts behind text_pos / text_neg, in vocabulary order (saved in the model card).
        self.prompts: tuple[AUPrompts, ...] = tuple(au_prompts(code) for code in self.vocab)
        if self.text_tower is not None:
            self.refresh_text_embeddings()
        self.prompt_learner = None
        if self.config.text_side == "learned":
            init = self.text_pos if self.text_tower is not None else None
            self.prompt_learner = LearnedPrompts(n_au, dim, config.prompt_context, init)

    # -- sizes the data pipeline needs ---------------------------------------------------------

    @property
    def vocab(self) -> tuple[str, ...]:
        return self.config.vocab

    @property
    def image_size(self) -> int:
        """Side of the square crops the network expects, px."""
        return self.backbone.image_size

    @property
    def grid_size(self) -> int:
        """Patches per side; region masks have grid_size ** 2 columns."""
        return self.backbone.grid_size

    @property
    def n_patches(self) -> int:
        return self.backbone.n_patches

    @property
    def embed_dim(self) -> int:
        return self.backbone.embed_dim

    @property
    def device(self) -> torch.device:
        """Where the network's parameters live."""
        return self.log_tau.device

    @property
    def dtype(self) -> torch.dtype:
        """The network's parameter dtype (float32, or bfloat16 after `.to(torch.bfloat16)`)."""
        return self.log_tau.dtype

    @property
    def tau(self) -> torch.Tensor:
        return self.log_tau.exp().clamp(min=self.config.tau_min)

    @property
    def backbone_trainable(self) -> bool:
        """False when the backbone is frozen, i.e. its tokens can be cached."""
        return self.backbone.trainable

    def _tokenizer(self):
        context_length = backbone_model_cfg(self.config.backbone)["text_cfg"].get("context_length", 77)
        return _clip_tokenizer(context_length)

    # -- image preparation ---------------------------------------------------------------------

    def normalize_images(self, images: torch.Tensor) -> torch.Tensor:
        """Float RGB images in [0, 1], `(B, 3, S, S)` -> the backbone's normalised input."""
        mean = self.pixel_mean.to(images)
        std = self.pixel_std.to(images)
        return (images - mean) / std

    def prepare_images(self, images) -> torch.Tensor:
        """uint8 RGB crops `(B, S, S, 3)` or `(S, S, 3)` (numpy or torch) -> normalised `(B, 3, S, S)`.

        Returned on the model's device and in its parameter dtype. Raises ValueError when the crops
        are not S x S (the data pipeline must cut them at `image_size`).
        """
        array = torch.as_tensor(np.ascontiguousarray(images) if not torch.is_tensor(images) else images)
        if array.dim() == 3:
            array = array.unsqueeze(0)  # (1, S, S, 3)
        size = self.image_size
        if array.dim() != 4 or tuple(array.shape[1:]) != (size, size, 3):
            raise ValueError(f"expected RGB crops (B, {size}, {size}, 3), got {tuple(array.shape)}")
        if array.dtype != torch.uint8:
            raise ValueError(f"expected uint8 crops, got {array.dtype}")
        images01 = array.to(self.device).permute(0, 3, 1, 2).to(self.dtype) / 255.0  # (B, 3, S, S)
        return self.normalize_images(images01)

    # -- text embeddings -------------------------------------------------------------------------

    def text_embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(t+, t-) `(n_au, D)` each: learned prompts' output, or the tower's cached buffers."""
        if self.prompt_learner is not None:
            return self.prompt_learner()
        return self.text_pos, self.text_neg

    def refresh_text_embeddings(self) -> None:
        """Recompute t+ / t- for the whole vocabulary with the text tower."""
        self._require_text_tower(self.vocab)
        pos, neg = self.text_tower.au_embeddings(self.vocab)  # (n_au, D) each
        self.text_pos = pos.to(self.text_pos)
        self.text_neg = neg.to(self.text_neg)
        self.prompts = tuple(au_prompts(code) for code in self.vocab)

    def set_vocab(self, vocab) -> None:
        """Switch the AUs the model predicts; a no-op when unchanged.

        AUs already in the vocabulary keep their text embeddings and PTA offsets (no text tower
        call); only new AUs are encoded, which needs the text tower. The dependency prior resets
        to uniform (the trainer recomputes it from its training split). Call this before
        building an optimiser: the PTA offset parameter is replaced.
        """
        vocab = normalise_vocab(vocab)
        if vocab == self.vocab:
            return
        old_index = {code: i for i, code in enumerate(self.vocab)}
        new_codes = [code for code in vocab if code not in old_index]
        dim = self.embed_dim
        pos = torch.zeros(len(vocab), dim, dtype=self.text_pos.dtype, device=self.text_pos.device)
        neg = torch.zeros_like(pos)
        if new_codes:
            self._require_text_tower(new_codes)
            new_pos, new_neg = self.text_tower.au_embeddings(new_codes)  # (n_new, D) each
        keep: list[int | None] = []
        prompts: list[AUPrompts] = []
        for row, code in enumerate(vocab):
            if code in old_index:
                keep.append(old_index[code])
                prompts.append(self.prompts[old_index[code]])
                pos[row] = self.text_pos[old_index[code]]
                neg[row] = self.text_neg[old_index[code]]
            else:
                keep.append(None)
                prompts.append(au_prompts(code))
                pos[row] = new_pos[new_codes.index(code)].to(pos)
                neg[row] = new_neg[new_codes.index(code)].to(neg)
        self.prompts = tuple(prompts)
        self.text_pos = pos
        self.text_neg = neg
        n_au = len(vocab)
        self.dependency_prior = torch.full(
            (n_au, n_au), 1.0 / n_au, dtype=self.dependency_prior.dtype, device=self.dependency_prior.device
        )
        self.pta.reindex_queries(keep)
        if self.prompt_learner is not None:
            fresh = pos[[i for i, k in enumerate(keep) if k is None]]  # (n_new, D) tower init
            self.prompt_learner.reindex(keep, fresh)
        self.config = replace(self.config, vocab=vocab)

    def _require_text_tower(self, codes) -> None:
        if self.text_tower is None:
            raise UserError(
                f"encoding prompts for {', '.join(codes)} needs the CLIP text tower, which this "
                "model was loaded without; call attach_text_tower() first"
            )

    def attach_text_tower(self) -> None:
        """Build the text tower of `config.backbone` / `config.pretrained` (may download once)."""
        if self.text_tower is not None:
            return
        clip, _ = create_open_clip(self.config, load_pretrained=True)
        del clip.visual
        self.text_tower = TextTower(clip.to(self.device), self._tokenizer())

    def drop_text_tower(self) -> None:
        """Free the text tower's memory; the cached embeddings stay."""
        self.text_tower = None

    def set_dependency_prior(self, prior: torch.Tensor) -> None:
        """Install the GDLoss prior `(n_au, n_au)` (from `losses.cooccurrence_prior`)."""
        prior = torch.as_tensor(prior, dtype=torch.float32)
        n_au = self.config.n_au
        if tuple(prior.shape) != (n_au, n_au):
            raise ValueError(f"prior must be ({n_au}, {n_au}), got {tuple(prior.shape)}")
        if not torch.allclose(prior.sum(dim=1), torch.ones(n_au), atol=1e-4) or bool((prior < 0).any()):
            raise ValueError("prior rows must be probability distributions (>= 0, summing to 1)")
        self.dependency_prior = prior.to(self.dependency_prior)

    # -- forward -----------------------------------------------------------------------------------

    def encode_tokens(self, images: torch.Tensor) -> torch.Tensor:
        """Normalised images `(B, 3, S, S)` -> projected patch tokens `(B, P, D)` (backbone only)."""
        size = self.image_size
        if images.dim() != 4 or tuple(images.shape[1:]) != (3, size, size):
            raise ValueError(f"expected images (B, 3, {size}, {size}), got {tuple(images.shape)}")
        return self.backbone(images)

    def encode_pair(self, batch: PairBatch) -> PairTokens:
        """Backbone tokens of the images `input_mode` needs, in one backbone call."""
        names = self.config.image_kinds
        images = []
        for name in names:
            image = getattr(batch, name)
            if image is None:
                raise ValueError(f"input mode {self.config.input_mode!r} needs the {name} image")
            images.append(image)
        if len({image.shape[0] for image in images}) != 1:
            raise ValueError(f"all images of a batch need the same batch size, got {[i.shape[0] for i in images]}")
        tokens = self.encode_tokens(torch.cat(images, dim=0))  # (len(names) * B, P, D)
        return PairTokens(**dict(zip(names, tokens.chunk(len(names), dim=0))))

    def fuse_tokens(self, tokens: PairTokens) -> torch.Tensor:
        """The token set `(B, P, D)` PTA reads, per `input_mode`."""
        mode = self.config.input_mode
        needed = {
            "apex": ("target",), "diff": ("target", "reference"),
            "apex+diff": ("target", "reference"), "flow": ("flow",), "apex+flow": ("target", "flow"),
        }[mode]
        for name in needed:
            if getattr(tokens, name) is None:
                raise ValueError(f"input mode {mode!r} needs {name} tokens")
        if mode == "apex":
            return tokens.target
        if mode == "flow":
            return tokens.flow
        if mode == "diff":
            return tokens.target - tokens.reference  # (B, P, D)
        second = tokens.target - tokens.reference if mode == "apex+diff" else tokens.flow
        return self.fuse(torch.cat([tokens.target, second], dim=-1))  # (B, P, D)

    def forward_tokens(self, tokens: PairTokens, masks: torch.Tensor) -> MicroAUOutput:
        """Heads only: backbone tokens + region masks -> `MicroAUOutput`."""
        patch_tokens = self.fuse_tokens(tokens)  # (B, P, D)
        text_pos, text_neg = self.text_embeddings()  # (n_au, D) each
        text_pos = text_pos.to(patch_tokens.dtype)
        text_neg = text_neg.to(patch_tokens.dtype)
        local, pta_attention = self.pta(patch_tokens, text_pos, masks)  # (B, n_au, D), (B, n_au, P)
        if self.gda is not None:
            enhanced, gda_attention = self.gda(local)  # (B, n_au, D), (B, n_au, n_au)
        else:
            enhanced = local
            batch, n_au = local.shape[:2]
            gda_attention = torch.eye(n_au, dtype=local.dtype, device=local.device).expand(batch, -1, -1)
        z = F.normalize(enhanced, dim=-1)  # (B, n_au, D)
        cos_pos = (z * F.normalize(text_pos, dim=-1)).sum(dim=-1)  # (B, n_au)
        cos_neg = (z * F.normalize(text_neg, dim=-1)).sum(dim=-1)  # (B, n_au)
        logits = (cos_pos - cos_neg) / self.tau.to(z.dtype)  # (B, n_au)
        return MicroAUOutput(
            logits=logits, probs=torch.sigmoid(logits), pta_attention=pta_attention,
            gda_attention=gda_attention, au_features=z, gda_used=self.gda is not None,
        )

    def forward(self, batch: PairBatch) -> MicroAUOutput:
        return self.forward_tokens(self.encode_pair(batch), batch.masks)

    def loss(self, output: MicroAUOutput, targets: torch.Tensor, pos_weight: torch.Tensor | None = None,
             mask: torch.Tensor | None = None) -> LossParts:
        """BCE + lambda_c MiAUCL + lambda_g GDLoss with this model's text, tau, prior and lambdas.

        targets `(B, n_au)` 0/1 in vocabulary order; pos_weight `(n_au,)` from
        `losses.positive_class_weights` on the training split; mask bool `(B, n_au)`: the known
        labels (None: all).
        """
        text_pos, text_neg = self.text_embeddings()
        return micro_au_loss(
            logits=output.logits, au_features=output.au_features,
            gda_attention=output.gda_attention if output.gda_used else None,
            targets=targets, text_pos=text_pos, text_neg=text_neg, tau=self.tau.float(),
            prior=self.dependency_prior, lambda_c=self.config.lambda_c, lambda_g=self.config.lambda_g,
            pos_weight=pos_weight, mask=mask,
        )
