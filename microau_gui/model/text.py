"""The frozen CLIP text tower and the AU prompt embeddings it produces.

Owns: `TextTower` (open_clip text encoder, frozen, tokenizer included), `AUPrompts` and
`au_prompts` (the positive / negative prompt texts of an AU). May import core, torch and open_clip.

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
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from microau_gui.core.au import au_info


@dataclass(frozen=True)
class AUPrompts:
    """The prompt texts whose ensembled embeddings are t_k+ and t_k- of one AU."""

    positive: tuple[str, ...]
    negative: tuple[str, ...]


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
