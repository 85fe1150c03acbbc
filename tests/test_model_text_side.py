"""The `--no-pta` ablation and the two text sides: learned prompts without pretrained weights,
the frozen tower with them (a small open_clip model whose weights this test saves itself)."""

from __future__ import annotations

import open_clip
import pytest
import torch
import torch.nn.functional as F

from microau_gui.core.au import DEFAULT_VOCAB
from microau_gui.model.checkpoint import load_checkpoint, save_checkpoint
from microau_gui.model.config import TINY_OPEN_CLIP_CFG, MicroAUConfig
from microau_gui.model.network import MicroAUCLIP, PairBatch
from microau_gui.model.text import au_prompts

torch.set_num_threads(2)
N_AU = len(DEFAULT_VOCAB)


def _tiny(**overrides) -> MicroAUCLIP:
    torch.manual_seed(0)
    return MicroAUCLIP(MicroAUConfig.tiny(input_mode="apex", **overrides)).eval()


def _batch(seed: int = 0, batch: int = 2) -> PairBatch:
    gen = torch.Generator().manual_seed(seed)
    masks = torch.rand(batch, N_AU, 196, generator=gen) < 0.15
    masks[..., 0] |= ~masks.any(dim=-1)
    return PairBatch(masks=masks, target=torch.randn(batch, 3, 112, 112, generator=gen))


def test_no_pta_region_mean_weights_every_region_patch_equally():
    net = _tiny(pta_pooling="region-mean")
    batch = _batch()
    out = net(batch)
    counts = batch.masks.sum(dim=-1, keepdim=True).float()  # (B, n_au, 1)
    expected = batch.masks.float() / counts
    assert torch.allclose(out.pta_attention, expected)
    # The feature is the mean of the region's values: moving a patch outside every region of
    # AU 0 changes nothing for AU 0.
    tokens = net.encode_pair(batch)
    outside = (~batch.masks[0, 0]).nonzero()[0, 0]
    bumped = tokens.target.clone()
    bumped[0, outside] += 5.0
    local_a, _ = net.pta(tokens.target, net.text_pos, batch.masks)
    local_b, _ = net.pta(bumped, net.text_pos, batch.masks)
    assert torch.allclose(local_a[0, 0], local_b[0, 0], atol=1e-6)


def test_no_pta_all_mean_gives_every_au_the_same_visual_feature():
    net = _tiny(pta_pooling="all-mean", use_gda=False)
    out = net(_batch())
    assert torch.allclose(out.pta_attention, torch.full_like(out.pta_attention, 1 / 196))
    local, _ = net.pta(net.encode_pair(_batch()).target, net.text_pos, _batch().masks)
    assert torch.allclose(local[:, 0], local[:, 5], atol=1e-6)
    # With attention the AU features differ.
    attn = _tiny()
    local_attn, _ = attn.pta(attn.encode_pair(_batch()).target, attn.text_pos, _batch().masks)
    assert not torch.allclose(local_attn[:, 0], local_attn[:, 5], atol=1e-3)


def test_without_pretrained_weights_the_text_side_is_learned_and_trains():
    net = _tiny(train_backbone_blocks=0)
    assert net.config.text_side == "learned"
    pos, neg = net.text_embeddings()
    assert pos.requires_grad and pos.shape == (N_AU, net.embed_dim)
    # Unlike a random frozen tower (cosine 0.80-0.96 between t+ and t-, and fixed), the learned
    # pair starts apart and moves with training: a few steps on two samples, one with every AU
    # and one with none, separate their probabilities.
    assert F.cosine_similarity(pos, neg, dim=-1).max() < 0.95
    batch = _batch()
    with torch.no_grad():
        tokens = net.encode_pair(batch)  # a frozen backbone: encode once
    net.train()
    optimiser = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=1e-2)
    targets = torch.stack([torch.ones(N_AU), torch.zeros(N_AU)])  # (2, n_au)
    for _ in range(8):
        loss = net.loss(net.forward_tokens(tokens, batch.masks), targets).total
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    net.eval()
    probs = net.forward_tokens(tokens, batch.masks).probs.detach()  # (2, n_au)
    assert bool((probs[0] > probs[1]).all())
    pos2, _ = net.text_embeddings()
    assert not torch.allclose(pos2, pos, atol=1e-3)


def test_learned_text_side_survives_a_checkpoint_and_the_card_says_so(tmp_path):
    net = _tiny()
    with torch.no_grad():
        net.prompt_learner.class_tokens.add_(0.3)
    save_checkpoint(net, tmp_path / "m", training_data_hash="x")
    loaded, card = load_checkpoint(tmp_path / "m")
    assert card.config.text_side == "learned"
    batch = _batch(5)
    assert torch.allclose(loaded(batch).logits, net(batch).logits, atol=1e-5)


def test_old_cards_without_a_text_side_mean_the_frozen_tower():
    values = MicroAUConfig.tiny().to_dict()
    del values["text_side"]
    assert MicroAUConfig.from_dict(values).text_side == "tower"


def test_pretrained_weights_keep_the_frozen_tower(tmp_path):
    torch.manual_seed(11)
    cfg = {**TINY_OPEN_CLIP_CFG, "vision_cfg": {**TINY_OPEN_CLIP_CFG["vision_cfg"], "patch_dropout": 0.0}}
    source = open_clip.CLIP(**cfg).eval()
    path = tmp_path / "tiny_clip.pt"
    torch.save(source.state_dict(), path)
    torch.manual_seed(999)  # another random init, which the file must overwrite
    net = MicroAUCLIP(MicroAUConfig.tiny(pretrained=str(path), input_mode="apex")).eval()
    assert net.pretrained_loaded and net.config.text_side == "tower"
    assert net.prompt_learner is None
    pos, neg = net.text_embeddings()
    assert not pos.requires_grad
    # t_k+ is the template ensemble of the saved model's own text encoder.
    prompts = au_prompts(DEFAULT_VOCAB[0]).positive
    tokenizer = open_clip.SimpleTokenizer(context_length=77)
    with torch.no_grad():
        encoded = F.normalize(source.encode_text(tokenizer(list(prompts))).float(), dim=-1)
    assert torch.allclose(pos[0], F.normalize(encoded.mean(dim=0), dim=-1), atol=1e-5)
    # Asking for the learned side with pretrained weights is allowed and trains prompts.
    learned = MicroAUCLIP(MicroAUConfig.tiny(pretrained=str(path), input_mode="apex",
                                             text_side="learned")).eval()
    assert learned.prompt_learner is not None
    assert torch.allclose(learned.prompt_learner.class_tokens[0], pos[0], atol=1e-5)
