"""Global Dependency Attention (GDA): AU tokens exchange context; the AU-to-AU attention is kept.

Owns: `GlobalDependencyAttention` and its `GDABlock`. May import core and torch.

Stated by the paper (GSD, global semantic dependency): GDA models dependencies between AUs and
propagates global context into each AU feature; GDLoss (see `losses.py`) supervises it.
Our specification (DESIGN.md section 1):
- Pre-norm transformer blocks over the n_au AU tokens: multi-head self-attention with a residual,
  then a GELU feed-forward with a residual. No positional embedding: each token already carries
  its AU identity through its PTA query and region.
- The returned dependency matrix `(B, n_au, n_au)` is the head-averaged attention of the *last*
  block (rows sum to 1); it is what GDLoss supervises and what the GUI shows.
- Dropout acts on the block outputs, never on the attention weights.
"""

from __future__ import annotations

import torch
from torch import nn

from microau_gui.core.errors import UserError
from microau_gui.model.attention import attend, merge_heads, split_heads


class GDABlock(nn.Module):
    """One pre-norm self-attention + feed-forward block over AU tokens."""

    def __init__(self, dim: int, n_heads: int, ffn_ratio: float, dropout: float):
        super().__init__()
        if dim % n_heads:
            raise UserError(f"gda_heads={n_heads} does not divide the embedding dim {dim}")
        self.n_heads = n_heads
        self.norm_attn = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.norm_ffn = nn.LayerNorm(dim)
        hidden = int(round(dim * ffn_ratio))
        self.ffn = nn.Sequential(
            nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, dim)
        )
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x `(B, n_au, D)` -> enhanced `(B, n_au, D)`, attention `(B, n_au, n_au)`."""
        query, key, value = self.qkv(self.norm_attn(x)).chunk(3, dim=-1)  # 3 x (B, n_au, D)
        attended, weights = attend(
            split_heads(query, self.n_heads), split_heads(key, self.n_heads),
            split_heads(value, self.n_heads),
        )  # (B, H, n_au, Dh), (B, H, n_au, n_au)
        x = x + self.dropout(self.out(merge_heads(attended)))  # (B, n_au, D)
        x = x + self.dropout(self.ffn(self.norm_ffn(x)))  # (B, n_au, D)
        return x, weights.mean(dim=1)  # (B, n_au, n_au)


class GlobalDependencyAttention(nn.Module):
    """A stack of `GDABlock`s; reports the last block's AU-to-AU attention."""

    def __init__(self, dim: int, n_layers: int, n_heads: int, ffn_ratio: float, dropout: float):
        super().__init__()
        self.blocks = nn.ModuleList(GDABlock(dim, n_heads, ffn_ratio, dropout) for _ in range(n_layers))

    def forward(self, au_tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = au_tokens
        for block in self.blocks:
            x, attention = block(x)
        return x, attention
