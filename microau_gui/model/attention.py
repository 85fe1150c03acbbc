"""Scaled dot-product attention that returns its weights, shared by PTA and GDA.

Owns: `attend`, `split_heads`, `merge_heads`. May import torch. An implementation detail of our
specification of PTA and GDA (DESIGN.md section 1); the paper does not describe it.

Why not `nn.MultiheadAttention`: in training mode it returns the attention weights *after*
dropout, so rows no longer sum to 1 and GDLoss would compare the prior with noise. Here dropout
is never applied to the weights; they are exactly the softmax, and masked entries are exactly 0.
"""

from __future__ import annotations

import torch


def attend(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, allowed: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Multi-head attention given per-head projections.

    query `(B, H, Nq, Dh)`, key / value `(B, H, Nk, Dh)`, `allowed` a bool mask broadcastable to
    `(B, H, Nq, Nk)` (False = -inf before the softmax). Every query row must allow >= 1 key.
    Returns the attended values `(B, H, Nq, Dh)` and the weights `(B, H, Nq, Nk)`.
    """
    scores = torch.matmul(query, key.transpose(-1, -2)) * query.shape[-1] ** -0.5  # (B, H, Nq, Nk)
    if allowed is not None:
        scores = scores.masked_fill(~allowed, float("-inf"))
    weights = torch.softmax(scores, dim=-1)  # (B, H, Nq, Nk)
    return torch.matmul(weights, value), weights  # (B, H, Nq, Dh)


def split_heads(x: torch.Tensor, n_heads: int) -> torch.Tensor:
    """`(B, N, D)` -> `(B, H, N, D / H)`."""
    batch, n_tokens, dim = x.shape
    return x.view(batch, n_tokens, n_heads, dim // n_heads).transpose(1, 2)  # (B, H, N, Dh)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """`(B, H, N, Dh)` -> `(B, N, H * Dh)`."""
    batch, n_heads, n_tokens, head_dim = x.shape
    return x.transpose(1, 2).reshape(batch, n_tokens, n_heads * head_dim)  # (B, N, D)
