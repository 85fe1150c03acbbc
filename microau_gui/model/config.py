"""Micro-AU CLIP configuration: the `MicroAUConfig` dataclass and the backbone registry.

Owns: every hyper-parameter of the network and of its loss weights, their validation, JSON
(de)serialisation, and the registry of backbone architectures (open_clip's built-in configs plus
our `SCRATCH_BACKBONES`, "tiny" and the dense-trace "tiny-student"). May import core and
open_clip (lazily, so reading a config stays cheap); no torch.

Paper vs. our specification (DESIGN.md section 1): the paper (Wei et al., 2026, known from its
abstract) states a CLIP ViT visual backbone, a CLIP text backbone, PTA, GDA, GDLoss and MiAUCL.
Everything quantitative here (input modes, head counts, tau 0.07 init, loss weights, what trains)
is our specification, chosen where the paper is silent.

A config is frozen: change it with `dataclasses.replace`, which re-validates. The network stores
a *resolved* copy (image size and activation filled in from the backbone) so a checkpoint
rebuilds exactly the same architecture.
"""

from __future__ import annotations

import copy
import json
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from microau_gui.core.au import DEFAULT_VOCAB, au_info
from microau_gui.core.errors import UserError

INPUT_MODES: tuple[str, ...] = ("apex", "diff", "apex+diff", "flow", "apex+flow")
# How PTA pools an AU's feature: region-masked attention (the method), or, as ablations, the mean
# over the AU's region patches or over every patch (`train --no-pta region|all`).
PTA_POOLINGS: tuple[str, ...] = ("attention", "region-mean", "all-mean")
# Where t_k+ / t_k- come from: "tower" = a frozen CLIP text tower (pretrained weights), "learned"
# = CoOp-style context vectors and per-AU class tokens trained with the visual side
# (`model.text.LearnedPrompts`), "auto" = tower when pretrained weights exist, else learned.
TEXT_SIDES: tuple[str, ...] = ("auto", "tower", "learned")

TINY_BACKBONE = "tiny"

# Our tiny CLIP: 112 px, 8 px patches -> a 14 x 14 grid, like ViT-B/16 at 224 px, so region masks
# rasterise onto the same grid shape. Small enough to train from scratch on a CPU in minutes and
# to ship as the bundled demo checkpoint (a few MB). The text tower keeps CLIP's real BPE
# vocabulary (the tokenizer is bundled with open_clip) but is only 2 narrow layers: it is never
# saved in checkpoints (only its cached prompt embeddings are), so its size does not matter there.
TINY_OPEN_CLIP_CFG: dict[str, Any] = {
    "embed_dim": 128,
    "vision_cfg": {
        "image_size": 112,
        "patch_size": 8,
        "width": 128,
        "layers": 4,
        "head_width": 32,
        "mlp_ratio": 2.0,
    },
    "text_cfg": {
        "context_length": 77,
        "vocab_size": 49408,
        "width": 64,
        "heads": 2,
        "layers": 2,
    },
}


# The dense-trace student's backbone (issue #18, `training.distill`): the tiny CLIP with 14 px
# patches, an 8 x 8 grid of 64 tokens instead of 196, so one 112 px image costs about a third of
# the tiny network's time (2.6 against 8.5 ms per frame at batch 8, one AVX2 thread, fp32). It
# draws the per-frame trace of every frame; the teacher runs where a coder looks. Its PTA maps
# are coarser (8 x 8), which the teacher's maps, resampled by area, train.
STUDENT_BACKBONE = "tiny-student"
STUDENT_OPEN_CLIP_CFG: dict[str, Any] = copy.deepcopy(TINY_OPEN_CLIP_CFG)
STUDENT_OPEN_CLIP_CFG["vision_cfg"]["patch_size"] = 14

# Our backbones: trained from scratch, no published weights, built from these configs.
SCRATCH_BACKBONES: dict[str, dict[str, Any]] = {TINY_BACKBONE: TINY_OPEN_CLIP_CFG,
                                                STUDENT_BACKBONE: STUDENT_OPEN_CLIP_CFG}


def backbone_model_cfg(name: str) -> dict[str, Any]:
    """The open_clip model config (`embed_dim`, `vision_cfg`, `text_cfg`) of a backbone name.

    "tiny" and "tiny-student" are ours (`SCRATCH_BACKBONES`); anything else must be an
    open_clip built-in name such as "ViT-B-16".
    Raises UserError for unknown names and for backbones that are not plain ViTs (timm towers,
    ResNets, attentional pooling, HF text towers): PTA needs one token per image patch.
    """
    import open_clip

    if name in SCRATCH_BACKBONES:
        model_cfg = copy.deepcopy(SCRATCH_BACKBONES[name])
    else:
        model_cfg = open_clip.get_model_config(name)
        if model_cfg is None:
            vits = [m for m in open_clip.list_models() if m.startswith("ViT-")][:8]
            raise UserError(
                f"unknown backbone {name!r}; use 'tiny' or an open_clip ViT name such as "
                + ", ".join(vits)
            )
    vision = model_cfg.get("vision_cfg", {})
    text = model_cfg.get("text_cfg", {})
    not_plain = (
        vision.get("timm_model_name")
        or isinstance(vision.get("layers"), (list, tuple))
        or vision.get("attentional_pool")
        or text.get("hf_model_name")
        or model_cfg.get("custom_text")
        or "multimodal_cfg" in model_cfg
    )
    if not_plain:
        raise UserError(
            f"backbone {name!r} is not a plain open_clip ViT with an open_clip text tower; "
            "choose e.g. ViT-B-16 or ViT-B-32"
        )
    return model_cfg


def normalise_vocab(vocab) -> tuple[str, ...]:
    """AU codes as `("AU1", "AU12", ...)`; raises UserError for unknown or repeated AUs."""
    codes: list[str] = []
    for item in vocab:
        try:
            code = au_info(item).code
        except KeyError as err:
            raise UserError(f"vocabulary: {err.args[0]}") from None
        if au_info(code).area is None:  # core.au.MODEL_AUS: only AUs with a face region
            raise UserError(f"vocabulary: {code} ({au_info(code).name}) is a FACS code for "
                            "annotation only; a model learns AUs with a face region, e.g. AU12")
        if code in codes:
            raise UserError(f"vocabulary lists {code} twice; list each AU once")
        codes.append(code)
    if not codes:
        raise UserError("the AU vocabulary is empty; list at least one AU, e.g. AU12")
    return tuple(codes)


@dataclass(frozen=True)
class MicroAUConfig:
    """Every choice that shapes a Micro-AU CLIP network or its loss. Saved in each model card."""

    backbone: str = "ViT-B-16"  # "tiny" (ours) or an open_clip ViT name, e.g. "ViT-B-16"
    pretrained: str = "openai"  # open_clip tag ("openai", ...), a local weights file, or "none"
    image_size: int | None = None  # crop side in px; None = the backbone's native size
    quick_gelu: bool | None = None  # QuickGELU activations; None = what the pretrained tag used
    input_mode: str = "flow"  # one of INPUT_MODES; "flow" won the DESIGN.md probe, LOSO decides
    vocab: tuple[str, ...] = DEFAULT_VOCAB  # AU codes the model predicts, in output order
    pta_heads: int = 4  # PTA attention heads; must divide the joint embedding dim
    gda_layers: int = 1  # GDA blocks; the last block's attention is reported and supervised
    gda_heads: int = 4  # GDA attention heads; must divide the joint embedding dim
    gda_ffn_ratio: float = 2.0  # GDA feed-forward width / embedding dim
    use_gda: bool = True  # False: ablation without GDA (AU tokens pass through, identity attention)
    dropout: float = 0.1  # dropout on PTA/GDA outputs and GDA feed-forward (not on attention maps)
    tau_init: float = 0.07  # initial detection / MiAUCL temperature (learnable, log-parametrised)
    tau_min: float = 0.01  # lower clamp on tau, as CLIP clamps its logit scale at 100
    lambda_c: float = 0.5  # weight of MiAUCL in the total loss (0 = ablation without it)
    lambda_g: float = 0.1  # weight of GDLoss in the total loss (0 = ablation without it)
    prior_laplace: float = 1.0  # Laplace smoothing of the GDLoss co-occurrence prior
    pos_weight_cap: float = 10.0  # upper bound on BCE positive-class weights for rare AUs
    train_backbone_blocks: int = 0  # last ViT blocks that fine-tune; 0 frozen; -1 whole backbone
    pta_pooling: str = "attention"  # one of PTA_POOLINGS; the others are ablations
    text_side: str = "auto"  # one of TEXT_SIDES; the network stores the resolved value
    prompt_context: int = 4  # learned context vectors per polarity (text_side "learned")

    def __post_init__(self) -> None:
        object.__setattr__(self, "vocab", normalise_vocab(self.vocab))
        if self.input_mode not in INPUT_MODES:
            raise UserError(
                f"input mode {self.input_mode!r} is unknown; use one of {', '.join(INPUT_MODES)}"
            )
        if not self.backbone:
            raise UserError("backbone is empty; use 'tiny' or an open_clip name like ViT-B-16")
        if not self.pretrained:
            raise UserError("pretrained is empty; use 'openai', a weights file path, or 'none'")
        if self.image_size is not None and self.image_size <= 0:
            raise UserError(f"image size must be positive, got {self.image_size}")
        for name in ("pta_heads", "gda_layers", "gda_heads"):
            if getattr(self, name) < 1:
                raise UserError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not 0.0 <= self.dropout < 1.0:
            raise UserError(f"dropout must be in [0, 1), got {self.dropout}")
        if not 0.0 < self.tau_min <= self.tau_init:
            raise UserError(f"need 0 < tau_min <= tau_init, got {self.tau_min} and {self.tau_init}")
        for name in ("lambda_c", "lambda_g", "prior_laplace"):
            if getattr(self, name) < 0:
                raise UserError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.pos_weight_cap < 1.0:
            raise UserError(f"pos_weight_cap must be >= 1, got {self.pos_weight_cap}")
        if self.pta_pooling not in PTA_POOLINGS:
            raise UserError(f"pta_pooling {self.pta_pooling!r} is unknown; use one of {', '.join(PTA_POOLINGS)}")
        if self.text_side not in TEXT_SIDES:
            raise UserError(f"text_side {self.text_side!r} is unknown; use one of {', '.join(TEXT_SIDES)}")
        if self.prompt_context < 1:
            raise UserError(f"prompt_context must be at least 1, got {self.prompt_context}")
        if self.train_backbone_blocks < -1:
            raise UserError(
                "train_backbone_blocks is a count of last blocks (0 = frozen, -1 = all), "
                f"got {self.train_backbone_blocks}"
            )

    @classmethod
    def tiny(cls, **overrides) -> "MicroAUConfig":
        """The tiny backbone (or, with `backbone=`, another of `SCRATCH_BACKBONES`), trained from
        scratch (no pretrained weights exist for it)."""
        values = {"backbone": TINY_BACKBONE, "pretrained": "none", "train_backbone_blocks": -1}
        values.update(overrides)
        return cls(**values)

    @property
    def n_au(self) -> int:
        return len(self.vocab)

    @property
    def needs_target(self) -> bool:
        """The target (apex / reviewed) crop is an input."""
        return self.input_mode in ("apex", "diff", "apex+diff", "apex+flow")

    @property
    def needs_reference(self) -> bool:
        """The reference (onset / neutral) crop is an input."""
        return self.input_mode in ("diff", "apex+diff")

    @property
    def needs_flow(self) -> bool:
        """The rendered reference-to-target optical-flow image is an input."""
        return self.input_mode in ("flow", "apex+flow")

    @property
    def image_kinds(self) -> tuple[str, ...]:
        """The images `input_mode` feeds the backbone, in the order they are encoded: a subset of
        ("target", "reference", "flow"). The one place that says which images a mode needs."""
        needed = (("target", self.needs_target), ("reference", self.needs_reference),
                  ("flow", self.needs_flow))
        return tuple(name for name, used in needed if used)

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["vocab"] = list(self.vocab)
        return values

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "MicroAUConfig":
        """Inverse of `to_dict`. Unknown keys raise UserError (a card from a newer version)."""
        if not isinstance(values, dict):
            raise UserError("model config must be a JSON object")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise UserError(
                f"model config has unknown fields {', '.join(unknown)}; "
                "it was written by a newer MicroAU Studio, update the application"
            )
        values = dict(values)
        # Cards written before the learned text side existed used the frozen tower.
        values.setdefault("text_side", "tower")
        if "vocab" in values:
            values["vocab"] = tuple(values["vocab"])
        try:
            return cls(**values)
        except TypeError as err:
            raise UserError(f"model config is malformed: {err}") from None

    @classmethod
    def from_json(cls, text: str) -> "MicroAUConfig":
        try:
            values = json.loads(text)
        except json.JSONDecodeError as err:
            raise UserError(f"model config is not valid JSON: {err}") from None
        return cls.from_dict(values)

    def with_vocab(self, vocab) -> "MicroAUConfig":
        return replace(self, vocab=tuple(vocab))
