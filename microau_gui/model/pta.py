"""Patch Token Attention (PTA): one feature per AU, pooled from the patches of that AU's region.

Owns: `PatchTokenAttention` and `check_region_masks`. May import core and torch.

Stated by the paper (LSI, local semantic independence): PTA learns each AU's feature from the
patch tokens inside that AU's facial region (regions come from facial landmarks), mapping the
local features of every AU into one shared feature space.
Our specification (DESIGN.md section 1):
- Query of AU k = Linear(t_k+) + a learned per-AU offset, where t_k+ is the AU's positive prompt
  embedding; keys and values are Linear maps of the (layer-normed) patch tokens, shared by every
  AU: that sharing is what puts all AU features in "the same feature space".
- Softmax over patches with the region mask applied as -inf outside the region, so the attention
  (and therefore the AU feature) is exactly zero outside it. Multi-head; the reported attention
  `(B, n_au, P)` is the head average, which the GUI draws as the PTA heatmap.
- The AU feature is Linear(attended values) with no residual from the query: it carries only what
  the region's patches say (the "independence"); context comes later from GDA.
- Masks are bool `(B, n_au, P)` or `(n_au, P)` for the whole batch. The face layer guarantees
  >= 1 patch per AU; an empty row would make the softmax undefined, so it falls back to the whole
  grid and a warning is logged (the GUI still draws a frame instead of failing).
- Ablation (`pooling`, config `pta_pooling`): "region-mean" replaces the attention by the plain
  mean of the values over the AU's region patches, "all-mean" by the mean over every patch (no
  locality: all AUs then share one visual feature and differ only through their text). The
  reported attention is then that uniform weighting.
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from microau_gui.core.errors import UserError
from microau_gui.model.attention import attend, merge_heads, split_heads

log = logging.getLogger(__name__)


def check_region_masks(masks: torch.Tensor, batch: int, n_au: int, n_patches: int) -> torch.Tensor:
    """Validate region masks and return them as bool `(B, n_au, P)` (empty rows -> whole grid)."""
    if masks.dtype != torch.bool:
        raise TypeError(f"region masks must be bool tensors, got {masks.dtype}")
    if masks.dim() == 2:
        masks = masks.unsqueeze(0).expand(batch, -1, -1)  # (B, n_au, P)
    if tuple(masks.shape) != (batch, n_au, n_patches):
        raise ValueError(
            f"region masks must be (B, n_au, P) = ({batch}, {n_au}, {n_patches}) or "
            f"(n_au, P), got {tuple(masks.shape)}"
        )
    empty = ~masks.any(dim=-1)  # (B, n_au)
    if bool(empty.any()):
        samples, aus = torch.nonzero(empty, as_tuple=True)
        log.warning(
            "%d AU region mask(s) cover no patch (sample, AU index: %s); those AUs attend to "
            "the whole face", len(aus), list(zip(samples.tolist(), aus.tolist()))[:5],
        )
        masks = masks | empty.unsqueeze(-1)  # (B, n_au, P)
    return masks


class PatchTokenAttention(nn.Module):
    """Region-masked cross-attention from per-AU text-derived queries to patch tokens."""

    def __init__(self, n_au: int, dim: int, n_heads: int, dropout: float = 0.0,
                 pooling: str = "attention"):
        super().__init__()
        self.pooling = pooling
        if dim % n_heads:
            raise UserError(f"pta_heads={n_heads} does not divide the embedding dim {dim}")
        self.n_heads = n_heads
        self.token_norm = nn.LayerNorm(dim)
        self.query_from_text = nn.Linear(dim, dim)
        self.query_offset = nn.Parameter(torch.zeros(n_au, dim))
        self.key = nn.Linear(dim, dim)
        self.value = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)
        self.dropout = nn.Dropout(dropout)

    def forward(
        self, tokens: torch.Tensor, text_pos: torch.Tensor, masks: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """tokens `(B, P, D)`, text_pos `(n_au, D)`, masks bool `(B, n_au, P)` or `(n_au, P)`.

        Returns AU features `(B, n_au, D)` and head-averaged attention `(B, n_au, P)` whose rows
        sum to 1 inside the region and are exactly 0 outside it.
        """
        batch, n_patches, _ = tokens.shape
        n_au = text_pos.shape[0]
        masks = check_region_masks(masks, batch, n_au, n_patches)
        tokens = self.token_norm(tokens)
        if self.pooling != "attention":
            if self.pooling == "all-mean":
                masks = torch.ones_like(masks)
            weights = masks.to(tokens.dtype)  # (B, n_au, P)
            weights = weights / weights.sum(dim=-1, keepdim=True)
            pooled = torch.einsum("bkp,bpd->bkd", weights, self.value(tokens))  # (B, n_au, D)
            return self.dropout(self.out(pooled)), weights
        query = self.query_from_text(text_pos.to(tokens.dtype)) + self.query_offset  # (n_au, D)
        query = split_heads(query.unsqueeze(0), self.n_heads)  # (1, H, n_au, Dh)
        key = split_heads(self.key(tokens), self.n_heads)  # (B, H, P, Dh)
        value = split_heads(self.value(tokens), self.n_heads)  # (B, H, P, Dh)
        attended, weights = attend(query, key, value, masks.unsqueeze(1))  # (B, H, n_au, Dh)
        features = self.dropout(self.out(merge_heads(attended)))  # (B, n_au, D)
        return features, weights.mean(dim=1)  # (B, n_au, P)

    def reindex_queries(self, keep: list[int | None]) -> None:
        """New vocabulary: row i takes old offset `keep[i]`, or zeros for a new AU (None)."""
        old = self.query_offset.data
        rows = [old[i] if i is not None else torch.zeros_like(old[0]) for i in keep]
        self.query_offset = nn.Parameter(torch.stack(rows))  # (n_au_new, D)
