"""Micro-AU CLIP losses: BCE with positive-class weights, MiAUCL, GDLoss and their sum.

Owns: `cooccurrence_prior`, `positive_class_weights`, `detection_bce`, `miaucl`, `gd_loss`,
`micro_au_loss` and the `LossParts` it returns. May import core and torch. Pure functions of
tensors: the network passes its own text embeddings, temperature and prior.

Stated by the paper: MiAUCL aligns each AU's visual feature with text features at a fine grain;
GDLoss supervises the dependency that GDA models.
Our specification (DESIGN.md section 1):
- MiAUCL: for sample b and AU k, InfoNCE of z_k over the candidate texts {t_k+, t_k-} plus the
  positive prompts t_j+ of every other AU j; the target is t_k+ when AU k is active, else t_k-.
  Logits are cosines / tau with the network's learnable tau. Mean over samples and AUs.
- GDLoss: row-wise KL(prior_i || A_i) between the dependency prior and the batch-mean GDA
  attention A, averaged over rows. Zero exactly when A equals the prior.
- Prior: P(AU_j | AU_i) from the training split's 0/1 labels only (the caller passes only the
  training split: it must never see held-out subjects), Laplace-smoothed as
  (n_ij + a) / (n_i + 2a), then each row normalised to sum to 1 so it is comparable with an
  attention row. The diagonal (j = i) is kept: a token attending to itself is expected.
- BCE on the detection logits with per-AU positive-class weights (n_neg + 1) / (n_pos + 1),
  capped, so rare AUs are not drowned by negatives.
- Total = BCE + lambda_c * MiAUCL + lambda_g * GDLoss (lambdas in `MicroAUConfig`).
- Unknown labels (an AU a pooled dataset does not code): an optional bool mask `(B, n_au)`
  makes BCE and MiAUCL average over the known labels only, so "not coded" is never "absent".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

_EPS = 1e-8


def _binary_labels(labels) -> torch.Tensor:
    labels = torch.as_tensor(np.asarray(labels) if not torch.is_tensor(labels) else labels)
    if labels.dim() != 2:
        raise ValueError(f"labels must be a (N, n_au) 0/1 matrix, got shape {tuple(labels.shape)}")
    labels = labels.to(torch.float64)
    if bool(((labels != 0) & (labels != 1)).any()):
        raise ValueError("labels must contain only 0 and 1")
    return labels


def cooccurrence_prior(labels, laplace: float = 1.0) -> torch.Tensor:
    """Dependency prior `(n_au, n_au)`: row i is P(AU_j | AU_i), smoothed, rows summing to 1.

    `labels` is the (N, n_au) 0/1 matrix of the TRAINING split only (numpy or torch).
    With no positives for AU i its row is uniform.
    """
    if laplace < 0:
        raise ValueError(f"laplace must be >= 0, got {laplace}")
    y = _binary_labels(labels)  # (N, n_au)
    n_au = y.shape[1]
    both = y.T @ y  # (n_au, n_au): n_ij, samples with AU i and AU j active
    active = torch.diagonal(both)  # (n_au,): n_i
    conditional = (both + laplace) / (active.unsqueeze(1) + 2 * laplace).clamp_min(_EPS)  # (n_au, n_au)
    row_sums = conditional.sum(dim=1, keepdim=True)
    prior = torch.where(row_sums > 0, conditional / row_sums.clamp_min(_EPS), 1.0 / n_au)
    return prior.to(torch.float32)


def positive_class_weights(labels, cap: float = 10.0) -> torch.Tensor:
    """BCE `pos_weight` per AU `(n_au,)`: (n_neg + 1) / (n_pos + 1), at most `cap`."""
    y = _binary_labels(labels)  # (N, n_au)
    n_pos = y.sum(dim=0)
    n_neg = y.shape[0] - n_pos
    return ((n_neg + 1) / (n_pos + 1)).clamp(max=cap).to(torch.float32)  # (n_au,)


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of `values` over the True entries of `mask` (same shape)."""
    mask = mask.to(values)
    return (values * mask).sum() / mask.sum().clamp_min(1.0)


def detection_bce(logits: torch.Tensor, targets: torch.Tensor, pos_weight: torch.Tensor | None = None,
                  mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean binary cross-entropy of detection logits `(B, n_au)` against 0/1 targets.

    mask: bool `(B, n_au)`, the labels that are known (an AU the sample's dataset codes); the
    mean runs over those only. None: every label is known.
    """
    logits = logits.float()
    weight = pos_weight.to(logits.device, torch.float32) if pos_weight is not None else None
    if mask is None:
        return F.binary_cross_entropy_with_logits(logits, targets.to(logits), pos_weight=weight)
    per_label = F.binary_cross_entropy_with_logits(logits, targets.to(logits), pos_weight=weight,
                                                   reduction="none")  # (B, n_au)
    return _masked_mean(per_label, mask)


def miaucl(
    au_features: torch.Tensor, targets: torch.Tensor, text_pos: torch.Tensor, text_neg: torch.Tensor,
    tau: torch.Tensor | float, mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Micro-AU contrastive loss (mean over the known labels of `mask` `(B, n_au)` when given).

    au_features z `(B, n_au, D)` (normalised here), targets `(B, n_au)` 0/1, text_pos / text_neg
    `(n_au, D)`, tau the temperature. Candidate column j < n_au is t_j+ (own positive at j = k),
    column n_au is the AU's own t_k-.
    """
    z = F.normalize(au_features.float(), dim=-1)  # (B, n_au, D)
    t_pos = F.normalize(text_pos.float(), dim=-1)  # (n_au, D)
    t_neg = F.normalize(text_neg.float(), dim=-1)  # (n_au, D)
    sim_pos = torch.einsum("bkd,jd->bkj", z, t_pos)  # (B, n_au, n_au)
    sim_neg = (z * t_neg.unsqueeze(0)).sum(dim=-1, keepdim=True)  # (B, n_au, 1)
    logits = torch.cat([sim_pos, sim_neg], dim=-1) / tau  # (B, n_au, n_au + 1)
    n_au = z.shape[1]
    own = torch.arange(n_au, device=z.device).expand_as(targets)  # (B, n_au)
    target_idx = torch.where(targets.to(z.device) > 0.5, own, torch.full_like(own, n_au))  # (B, n_au)
    if mask is None:
        return F.cross_entropy(logits.reshape(-1, n_au + 1), target_idx.reshape(-1))
    per_label = F.cross_entropy(logits.reshape(-1, n_au + 1), target_idx.reshape(-1), reduction="none")
    return _masked_mean(per_label.reshape(target_idx.shape), mask.to(z.device))


def gd_loss(attention: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
    """Mean over rows of KL(prior_i || mean_b attention_b,i); attention `(B, n_au, n_au)`."""
    mean_attention = attention.float().mean(dim=0)  # (n_au, n_au)
    prior = prior.to(mean_attention)
    kl_rows = (torch.xlogy(prior, prior) - prior * torch.log(mean_attention.clamp_min(_EPS))).sum(dim=-1)
    return kl_rows.mean()


@dataclass(frozen=True)
class LossParts:
    """The total training loss and its unweighted parts (tensors; `.item()` them to log)."""

    total: torch.Tensor
    bce: torch.Tensor
    miaucl: torch.Tensor
    gdloss: torch.Tensor


def micro_au_loss(
    *, logits: torch.Tensor, au_features: torch.Tensor, gda_attention: torch.Tensor | None,
    targets: torch.Tensor, text_pos: torch.Tensor, text_neg: torch.Tensor, tau: torch.Tensor | float,
    prior: torch.Tensor, lambda_c: float, lambda_g: float, pos_weight: torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
) -> LossParts:
    """BCE + lambda_c * MiAUCL + lambda_g * GDLoss. `gda_attention=None` (no GDA) gives GDLoss 0.

    mask: bool `(B, n_au)` of known labels (pooled sets with a union vocabulary); BCE and MiAUCL
    average over those only. GDLoss reads no label.
    """
    bce = detection_bce(logits, targets, pos_weight, mask)
    contrastive = miaucl(au_features, targets, text_pos, text_neg, tau, mask)
    if gda_attention is None:
        dependency = torch.zeros((), device=bce.device)
    else:
        dependency = gd_loss(gda_attention, prior)
    total = bce + lambda_c * contrastive + lambda_g * dependency
    return LossParts(total=total, bce=bce, miaucl=contrastive, gdloss=dependency)
