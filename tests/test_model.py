"""Micro-AU CLIP network: shapes per input mode, PTA region masking, GDA, losses, freezing, dtypes.

Real open_clip towers throughout (the tiny config, random weights); nothing is mocked.
"""

from __future__ import annotations

import functools
import logging

import numpy as np
import pytest
import torch

from microau_gui.core.au import DEFAULT_VOCAB
from microau_gui.core.errors import UserError
from microau_gui.model.config import INPUT_MODES, MicroAUConfig
from microau_gui.model.device import autocast_for, pick_device
from microau_gui.model.losses import (
    cooccurrence_prior,
    gd_loss,
    miaucl,
    positive_class_weights,
)
from microau_gui.model.network import MicroAUCLIP, PairBatch, PairTokens

torch.set_num_threads(2)
N_AU = len(DEFAULT_VOCAB)


def tiny(**overrides) -> MicroAUCLIP:
    """A fresh tiny model, for tests that train, convert or change it."""
    torch.manual_seed(0)
    return MicroAUCLIP(MicroAUConfig.tiny(**overrides)).eval()


@functools.lru_cache(maxsize=None)
def shared(input_mode: str) -> MicroAUCLIP:
    """A tiny model per input mode that tests only run forward (building one costs ~1 s)."""
    return tiny(input_mode=input_mode)


def random_masks(batch: int, n_au: int = N_AU, n_patches: int = 196, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    masks = torch.rand(batch, n_au, n_patches, generator=gen) < 0.15
    masks[..., 0] |= ~masks.any(dim=-1)  # every AU keeps >= 1 patch, as the face layer guarantees
    return masks


def images(batch: int, seed: int) -> torch.Tensor:
    return torch.randn(batch, 3, 112, 112, generator=torch.Generator().manual_seed(seed))


def pair(batch: int = 3) -> PairBatch:
    return PairBatch(masks=random_masks(batch), target=images(batch, 1), reference=images(batch, 2),
                     flow=images(batch, 3))


@pytest.fixture
def model() -> MicroAUCLIP:
    return shared("apex")


@pytest.mark.parametrize("mode", INPUT_MODES)
def test_every_input_mode_returns_the_documented_shapes(mode):
    net = shared(mode)
    batch = 3
    out = net(pair(batch))
    assert out.logits.shape == (batch, N_AU)
    assert out.probs.shape == (batch, N_AU)
    assert bool(((out.probs > 0) & (out.probs < 1)).all())
    assert out.pta_attention.shape == (batch, N_AU, net.n_patches)
    assert out.gda_attention.shape == (batch, N_AU, N_AU)
    assert out.au_features.shape == (batch, N_AU, net.embed_dim)
    assert torch.allclose(out.gda_attention.sum(-1), torch.ones(batch, N_AU), atol=1e-5)
    assert torch.allclose(out.au_features.norm(dim=-1), torch.ones(batch, N_AU), atol=1e-5)
    assert torch.allclose(out.probs, torch.sigmoid(out.logits))


@pytest.mark.parametrize("mode, missing", [("diff", "reference"), ("flow", "flow"), ("apex+flow", "target")])
def test_a_missing_input_image_is_named(mode, missing):
    net = shared(mode)
    batch = pair(2)
    kept = {name: getattr(batch, name) for name in ("target", "reference", "flow") if name != missing}
    with pytest.raises(ValueError, match=missing):
        net(PairBatch(masks=batch.masks, **kept))


def test_the_input_mode_decides_which_images_matter():
    batch = pair(2)
    other = PairBatch(masks=batch.masks, target=batch.target, reference=images(2, 9), flow=images(2, 8))
    apex = shared("apex")
    assert torch.equal(apex(batch).logits, apex(other).logits)  # only the target is read
    diff = shared("diff")
    assert not torch.allclose(diff(batch).logits, diff(other).logits)
    flow = shared("flow")
    only_target_changed = PairBatch(masks=batch.masks, target=images(2, 7), flow=batch.flow)
    assert torch.equal(flow(batch).logits, flow(only_target_changed).logits)


@pytest.mark.parametrize("mode, kinds", [
    ("apex", ("target",)), ("diff", ("target", "reference")),
    ("apex+diff", ("target", "reference")), ("flow", ("flow",)), ("apex+flow", ("target", "flow")),
])
def test_image_kinds_names_exactly_the_images_a_mode_encodes(mode, kinds):
    net = shared(mode)
    assert net.config.image_kinds == kinds
    batch = pair(2)
    for missing in kinds:  # each named image is required ...
        with pytest.raises(ValueError, match=f"needs the {missing} image"):
            net.encode_pair(PairBatch(masks=batch.masks, **{
                name: getattr(batch, name) for name in kinds if name != missing}))
    # ... and the encoded tokens are exactly those images
    tokens = net.encode_pair(batch)
    assert {name for name in ("target", "reference", "flow") if getattr(tokens, name) is not None} == set(kinds)


def test_diff_mode_sees_no_motion_when_reference_equals_target():
    net = shared("diff")
    frame = images(2, 4)
    masks = random_masks(2)
    still = net.forward_tokens(net.encode_pair(PairBatch(masks=masks, target=frame, reference=frame)), masks)
    zero_tokens = torch.zeros(2, net.n_patches, net.embed_dim)
    direct = net.forward_tokens(PairTokens(target=zero_tokens, reference=zero_tokens), masks)
    assert torch.allclose(still.logits, direct.logits, atol=1e-5)


def test_pta_attention_is_exactly_zero_outside_each_region_and_sums_to_one_inside(model):
    batch = 4
    masks = random_masks(batch, seed=5)
    out = model(PairBatch(masks=masks, target=images(batch, 6)))
    attention = out.pta_attention
    assert bool((attention[~masks] == 0).all())
    assert bool((attention[masks] > 0).all())
    assert torch.allclose(attention.sum(-1), torch.ones(batch, N_AU), atol=1e-5)


def test_one_region_mask_can_serve_the_whole_batch(model):
    masks = random_masks(1, seed=7)[0]  # (n_au, P)
    out = model(PairBatch(masks=masks, target=images(3, 1)))
    assert bool((out.pta_attention[:, ~masks] == 0).all())


def test_an_au_feature_ignores_patches_outside_its_region():
    net = tiny(input_mode="apex", use_gda=False)  # without GDA, AU k sees only its own region
    masks = random_masks(1, seed=11)
    tokens = torch.randn(1, net.n_patches, net.embed_dim, generator=torch.Generator().manual_seed(0))
    changed = tokens.clone()
    outside = ~masks[0, 0]
    changed[0, outside] += torch.randn(int(outside.sum()), net.embed_dim)  # move every patch outside AU1
    before = net.forward_tokens(PairTokens(target=tokens), masks)
    after = net.forward_tokens(PairTokens(target=changed), masks)
    assert torch.allclose(before.logits[0, 0], after.logits[0, 0], atol=1e-6)
    assert not torch.allclose(before.logits[0, 1:], after.logits[0, 1:], atol=1e-3)


def test_an_empty_region_falls_back_to_the_whole_face_with_a_warning(model, caplog):
    masks = random_masks(1, seed=3)
    masks[0, 2] = False
    with caplog.at_level(logging.WARNING):
        out = model(PairBatch(masks=masks, target=images(1, 1)))
    assert torch.isfinite(out.logits).all()
    assert bool((out.pta_attention[0, 2] > 0).all())
    assert "cover no patch" in caplog.text


def test_masks_must_be_bool_and_sized_to_the_grid(model):
    with pytest.raises(TypeError, match="bool"):
        model(PairBatch(masks=random_masks(1).float(), target=images(1, 1)))
    with pytest.raises(ValueError, match=r"\(B, n_au, P\)"):
        model(PairBatch(masks=random_masks(1, n_patches=49), target=images(1, 1)))


def test_without_gda_the_dependency_matrix_is_the_identity_and_gdloss_is_zero():
    net = tiny(input_mode="apex", use_gda=False)
    assert net.gda is None
    out = net(PairBatch(masks=random_masks(2), target=images(2, 1)))
    assert torch.equal(out.gda_attention, torch.eye(N_AU).expand(2, -1, -1))
    parts = net.loss(out, torch.zeros(2, N_AU))
    assert parts.gdloss.item() == 0.0
    assert torch.allclose(parts.total, parts.bce + net.config.lambda_c * parts.miaucl)


def test_gdloss_is_zero_when_attention_equals_the_prior_and_positive_otherwise():
    labels = np.array([[1, 1, 0, 0], [1, 1, 0, 1], [0, 0, 1, 1], [1, 0, 0, 0]])
    prior = cooccurrence_prior(labels)
    attention = prior.expand(5, -1, -1).clone()
    assert gd_loss(attention, prior).item() == pytest.approx(0.0, abs=1e-6)
    uniform = torch.full((5, 4, 4), 0.25)
    assert gd_loss(uniform, prior).item() > 1e-3
    # The batch MEAN is compared: samples may differ as long as they average to the prior.
    shifted = torch.stack([prior + 0.01 * torch.eye(4) - 0.0025, prior - 0.01 * torch.eye(4) + 0.0025])
    assert gd_loss(shifted, prior).item() == pytest.approx(0.0, abs=1e-6)


def test_cooccurrence_prior_follows_the_training_labels():
    # AU1 and AU2 always together; AU4 alone.
    labels = np.array([[1, 1, 0]] * 8 + [[0, 0, 1]] * 8)
    prior = cooccurrence_prior(labels, laplace=1.0)
    assert torch.allclose(prior.sum(1), torch.ones(3))
    assert prior[0, 1] > 4 * prior[0, 2]  # given AU1, AU2 is far likelier than AU4
    assert prior[2, 2] > 4 * prior[2, 0]
    assert torch.allclose(cooccurrence_prior(np.zeros((0, 3))), torch.full((3, 3), 1 / 3))
    with pytest.raises(ValueError, match="0 and 1"):
        cooccurrence_prior(np.array([[0, 2]]))


def test_miaucl_is_lower_for_aligned_than_for_shuffled_features():
    gen = torch.Generator().manual_seed(0)
    n_au, dim, batch = 6, 32, 16
    text_pos = torch.nn.functional.normalize(torch.randn(n_au, dim, generator=gen), dim=-1)
    text_neg = torch.nn.functional.normalize(torch.randn(n_au, dim, generator=gen), dim=-1)
    targets = (torch.rand(batch, n_au, generator=gen) < 0.4).float()
    aligned = torch.where(targets.unsqueeze(-1) > 0, text_pos, text_neg)  # (B, n_au, D)
    aligned = aligned + 0.1 * torch.randn(batch, n_au, dim, generator=gen)
    shuffled = aligned[:, torch.randperm(n_au, generator=gen)]
    good = miaucl(aligned, targets, text_pos, text_neg, tau=0.07)
    bad = miaucl(shuffled, targets, text_pos, text_neg, tau=0.07)
    flipped = miaucl(aligned, 1 - targets, text_pos, text_neg, tau=0.07)
    assert good < 0.5 * bad
    assert good < 0.5 * flipped


def test_rare_aus_get_larger_positive_weights_up_to_the_cap():
    labels = np.zeros((100, 4))
    labels[:50, 0] = 1
    labels[:20, 1] = 1
    labels[:2, 2] = 1
    weights = positive_class_weights(labels, cap=10.0)
    assert weights[0] == pytest.approx(1.0)
    assert weights[1] == pytest.approx(81 / 21)
    assert weights[2] == 10.0  # 99 / 3 would be 33: capped
    assert weights[3] == 10.0  # never seen positive: capped, not infinite


def test_loss_parts_add_up_with_the_config_weights():
    net = tiny(input_mode="apex", lambda_c=0.3, lambda_g=0.7)
    net.set_dependency_prior(cooccurrence_prior(np.eye(N_AU)[:, :N_AU]))
    out = net(PairBatch(masks=random_masks(2), target=images(2, 1)))
    targets = torch.zeros(2, N_AU)
    targets[0, 3] = 1
    parts = net.loss(out, targets)
    assert parts.gdloss.item() > 0 and parts.miaucl.item() > 0 and parts.bce.item() > 0
    assert torch.allclose(parts.total, parts.bce + 0.3 * parts.miaucl + 0.7 * parts.gdloss)


def _backward(net: MicroAUCLIP) -> None:
    net.train()
    out = net(PairBatch(masks=random_masks(2), target=images(2, 1)))
    net.loss(out, (torch.rand(2, N_AU) < 0.3).float()).total.backward()


def test_a_frozen_backbone_receives_no_gradients_while_the_heads_do():
    net = tiny(input_mode="apex", train_backbone_blocks=0)
    assert not net.backbone_trainable
    _backward(net)
    assert all(p.grad is None for p in net.backbone.parameters())
    assert all(p.grad is None for p in net.text_tower.parameters())
    for head in (net.pta, net.gda):
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in head.parameters())
    assert net.log_tau.grad is not None


def test_train_backbone_blocks_1_trains_only_the_last_block_ln_post_and_proj():
    net = tiny(input_mode="apex", train_backbone_blocks=1)
    _backward(net)
    last = f"visual.transformer.resblocks.{net.backbone.n_blocks - 1}."
    for name, param in net.backbone.named_parameters():
        should_train = name.startswith(last) or name.startswith("visual.ln_post.") or name == "visual.proj"
        assert (param.grad is not None) == should_train, name
    with pytest.raises(UserError, match="only 4 blocks"):
        tiny(train_backbone_blocks=5)


def test_minus_one_trains_the_whole_backbone():
    net = tiny(input_mode="apex", train_backbone_blocks=-1)
    _backward(net)
    assert all(p.grad is not None for p in net.backbone.parameters())


def test_patch_tokens_are_projected_into_the_joint_space(model):
    x = images(2, 1)
    tokens = model.encode_tokens(x)
    visual = model.backbone.visual
    # open_clip's own path: last block output through ln_post, then the visual projection.
    reference = visual.forward_intermediates(
        x, indices=1, normalize_intermediates=True, intermediates_only=True, output_fmt="NLC"
    )["image_intermediates"][-1] @ visual.proj
    assert tokens.shape == (2, 196, model.embed_dim)
    assert torch.allclose(tokens, reference, atol=1e-5)


def test_text_embeddings_are_cached_and_recomputed_only_for_new_aus(monkeypatch):
    net = tiny(input_mode="apex")
    calls: list[int] = []
    original = net.text_tower.encode

    def counting_encode(prompts):
        calls.append(len(prompts))
        return original(prompts)

    monkeypatch.setattr(net.text_tower, "encode", counting_encode)
    before_pos = net.text_pos.clone()
    net.set_vocab(list(DEFAULT_VOCAB))
    net(PairBatch(masks=random_masks(1), target=images(1, 1)))
    assert calls == []  # unchanged vocabulary: nothing recomputed, forward never encodes text

    net.set_vocab(DEFAULT_VOCAB + ("AU20",))
    assert len(calls) == 1  # one encode call, only for the new AU's prompts
    assert calls[0] == len(net.prompts[-1].positive) + len(net.prompts[-1].negative)
    assert torch.equal(net.text_pos[:N_AU], before_pos)
    out = net(PairBatch(masks=random_masks(1, n_au=N_AU + 1), target=images(1, 1)))
    assert out.logits.shape == (1, N_AU + 1)

    net.set_vocab(DEFAULT_VOCAB[:4])
    assert len(calls) == 1  # removing AUs needs no text tower
    assert torch.equal(net.text_pos, before_pos[:4])


def test_adding_aus_without_a_text_tower_says_what_to_do():
    net = tiny(input_mode="apex")
    net.drop_text_tower()
    with pytest.raises(UserError, match="attach_text_tower"):
        net.set_vocab(DEFAULT_VOCAB + ("AU20",))


def test_bf16_weights_and_inputs_give_nearly_the_fp32_answer():
    net = tiny(input_mode="apex+diff")
    batch = pair(2)
    reference = net(batch)
    net16 = net.to(torch.bfloat16)
    out = net16(batch.to("cpu", torch.bfloat16))
    assert out.logits.dtype == torch.bfloat16
    assert bool((out.pta_attention[~batch.masks] == 0).all())
    assert torch.allclose(out.probs.float(), reference.probs, atol=0.08)


def test_prepare_images_normalises_uint8_crops_like_clip(model):
    crops = np.full((2, 112, 112, 3), 255, dtype=np.uint8)
    prepared = model.prepare_images(crops)
    assert prepared.shape == (2, 3, 112, 112)
    expected = (1.0 - model.pixel_mean.view(3)) / model.pixel_std.view(3)
    assert torch.allclose(prepared[0, :, 5, 5], expected)
    assert model.prepare_images(crops[0]).shape == (1, 3, 112, 112)
    with pytest.raises(ValueError, match="112"):
        model.prepare_images(np.zeros((1, 64, 64, 3), dtype=np.uint8))


def test_config_round_trips_through_json_and_rejects_bad_values():
    config = MicroAUConfig.tiny(input_mode="apex+flow", vocab=("au12", 4, "AU1"))
    assert config.vocab == ("AU12", "AU4", "AU1")
    assert MicroAUConfig.from_json(config.to_json()) == config
    with pytest.raises(UserError, match="input mode"):
        MicroAUConfig(input_mode="optical")
    with pytest.raises(UserError, match="AU99"):
        MicroAUConfig(vocab=("AU1", "AU99"))
    with pytest.raises(UserError, match="twice"):
        MicroAUConfig(vocab=("AU1", "1"))
    with pytest.raises(UserError, match="unknown fields"):
        MicroAUConfig.from_dict({"backbone": "tiny", "colour": "red"})
    with pytest.raises(UserError, match="unknown backbone"):
        MicroAUCLIP(MicroAUConfig.tiny(backbone="ViT-Q-99"))
    with pytest.raises(UserError, match="divide"):
        MicroAUCLIP(MicroAUConfig.tiny(pta_heads=3))


def test_device_choice():
    assert pick_device("cpu").type == "cpu"
    assert pick_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(UserError, match="unknown device"):
        pick_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(UserError, match="no CUDA"):
            pick_device("cuda")
    # CPU keeps fp32: no autocast of any device type, and a matmul stays float32.
    a = torch.randn(4, 4)
    with autocast_for("cpu"):
        assert not torch.is_autocast_enabled("cpu") and not torch.is_autocast_enabled("cuda")
        assert (a @ a).dtype == torch.float32
    with autocast_for(torch.device("cpu")):
        assert not torch.is_autocast_enabled("cpu")
    if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        b = a.cuda()
        with autocast_for("cuda"):
            assert torch.is_autocast_enabled("cuda") and not torch.is_autocast_enabled("cpu")
            assert (b @ b).dtype == torch.bfloat16
        assert (b @ b).dtype == torch.float32


@pytest.mark.slow
def test_the_default_vit_b_16_backbone_builds_and_runs_without_pretrained_weights():
    torch.manual_seed(0)
    net = MicroAUCLIP(MicroAUConfig(backbone="ViT-B-16", pretrained="none", input_mode="apex")).eval()
    assert (net.image_size, net.grid_size, net.embed_dim) == (224, 14, 512)
    assert not net.backbone_trainable and not net.pretrained_loaded
    masks = random_masks(1, n_patches=196)
    with torch.no_grad():
        out = net(PairBatch(masks=masks, target=torch.randn(1, 3, 224, 224)))
    assert out.logits.shape == (1, N_AU)
    assert bool((out.pta_attention[~masks] == 0).all())
