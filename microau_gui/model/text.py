"""The text side: the frozen CLIP text tower and its AU prompt embeddings, or learned prompts.

Owns: `TextTower` (open_clip text encoder, frozen, tokenizer included), `au_prompts` (the
positive / negative prompt texts of an AU, as a `model.card.AUPrompts`), `LearnedPrompts` (the
learnable text side). May import core, torch, open_clip and `model.card`.

Stated by the paper: a CLIP text backbone encodes AU-related text prompts.
Our specification (DESIGN.md section 1):
- Each AU has several positive prompts ("a face with {AU name}: {muscle action}" ...) and several
  negative prompts ("a face without {AU name} ..."), from `core.au.AUInfo`. Each prompt is
  encoded and L2-normalised, the templates are averaged and the mean is normalised again
  (CLIP's template ensembling), giving one unit vector t_k+ and one t_k- per AU.
- The tower is frozen. The network keeps the resulting embeddings as buffers, recomputes them
  only when its vocabulary changes (and then only for the AUs it has not seen), and saves them in
  every checkpoint: inference and fine-tuning with an unchanged vocabulary never need the text
  tower (for ViT-B-16 that is 63 M parameters not loaded).
- Without pretrained weights (the tiny backbone) the tower is random: one AU's positive and
  negative prompts then have cosine 0.80-0.96, so a frozen random tower gives MiAUCL and the
  prompt head nothing to align with. There the text side is learned instead (`LearnedPrompts`,
  config `text_side`), in the manner of CoOp (Zhou et al. 2022): M context vectors per polarity
  ("a face with" / "a face without", learned, shared by all AUs) and one class token per AU
  (learned, initialised from the tower's t_k+ when a tower is there). CoOp feeds such tokens
  through the pretrained text encoder; with no pretrained encoder to keep, ours is a small MLP
  on [mean context; class token] added to both: t_k^p = norm(c_k + ctx_p + MLP([ctx_p; c_k])),
  ctx_p the mean of polarity p's context vectors (initialised at about unit norm each, so t+ and
  t- of an AU start apart, cosine about 0.8, and the detection logit has a gradient).
  Everything trains with the visual side and is saved in the checkpoint.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from microau_gui.core.au import au_info
from microau_gui.model.card import AUPrompts


def au_prompts(code: str) -> AUPrompts:
    """The catalogue's prompts of one AU, e.g. "AU12"."""
    info = au_info(code)
    return AUPrompts(info.positive_prompts, info.negative_prompts)


class TextTower(nn.Module):
    """A frozen open_clip text encoder. Build it from a CLIP model whose visual tower was removed."""

    def __init__(self, clip_without_visual: nn.Module, tokenizer):
        super().__init__()
        self.clip = clip_without_visual
        self.tokenizer = tokenizer
        self.clip.requires_grad_(False)
        self.clip.eval()

    def train(self, mode: bool = True) -> "TextTower":
        # Frozen means frozen: a model.train() call on the network must not change the tower.
        return super().train(False)

    @torch.no_grad()
    def encode(self, prompts: Sequence[str]) -> torch.Tensor:
        """Prompts -> unit-norm text embeddings `(N, D)`, float32."""
        device = next(self.clip.parameters()).device
        token_ids = self.tokenizer(list(prompts)).to(device)  # (N, context_length)
        features = self.clip.encode_text(token_ids)  # (N, D)
        return F.normalize(features.float(), dim=-1)

    def au_embeddings(self, codes: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Template-ensembled (t+, t-) for each AU code: two `(n_au, D)` unit-norm tensors."""
        prompts = [au_prompts(code) for code in codes]
        positives = [p.positive for p in prompts]
        negatives = [p.negative for p in prompts]
        flat = [p for group in positives for p in group] + [n for group in negatives for n in group]
        embedded = self.encode(flat)  # (n_prompts, D)
        n_pos = sum(len(group) for group in positives)
        pos_rows = _ensemble(embedded[:n_pos], [len(g) for g in positives])  # (n_au, D)
        neg_rows = _ensemble(embedded[n_pos:], [len(g) for g in negatives])  # (n_au, D)
        return pos_rows, neg_rows


def _ensemble(embedded: torch.Tensor, group_sizes: list[int]) -> torch.Tensor:
    rows = [chunk.mean(dim=0) for chunk in torch.split(embedded, group_sizes)]
    return F.normalize(torch.stack(rows), dim=-1)  # (n_groups, D)


class LearnedPrompts(nn.Module):
    """CoOp-style learnable t+ / t- (see the module docstring)."""

    def __init__(self, n_au: int, dim: int, n_context: int = 4, init: torch.Tensor | None = None):
        super().__init__()
        self.context = nn.Parameter(torch.randn(2, n_context, dim) / dim ** 0.5)  # (2 polarities, M, D)
        start = F.normalize(torch.randn(n_au, dim), dim=-1) if init is None else init.detach().float()
        self.class_tokens = nn.Parameter(start.clone())  # (n_au, D)
        self.mix = nn.Sequential(nn.Linear(2 * dim, dim), nn.GELU(), nn.Linear(dim, dim))

    def forward(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(t+, t-): two unit-norm `(n_au, D)` tensors."""
        n_au = self.class_tokens.shape[0]
        out = []
        for polarity in range(2):
            context = self.context[polarity].mean(dim=0).expand(n_au, -1)  # (n_au, D)
            mixed = self.mix(torch.cat([context, self.class_tokens], dim=-1))  # (n_au, D)
            out.append(F.normalize(self.class_tokens + context + mixed, dim=-1))
        return out[0], out[1]

    def reindex(self, keep: list[int | None], new_tokens: torch.Tensor) -> None:
        """New vocabulary: row i keeps old class token `keep[i]`, or the next row of `new_tokens`."""
        old = self.class_tokens.data
        fresh = iter(new_tokens.to(old))
        rows = [old[i] if i is not None else next(fresh) for i in keep]
        self.class_tokens = nn.Parameter(torch.stack(rows))  # (n_au_new, D)
