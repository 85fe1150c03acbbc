"""Backbone weights: the real open_clip loading paths (local files; a tag that cannot be fetched).

The tests save real open_clip weights of the tiny architecture themselves, then build Micro-AU
CLIP with `pretrained=PATH` and check that exactly those weights are what it runs.
"""

from __future__ import annotations

import copy
import logging

import open_clip
import pytest
import torch
from safetensors.torch import save_file

from microau_gui.core.errors import UserError
from microau_gui.model.config import TINY_OPEN_CLIP_CFG, MicroAUConfig
from microau_gui.model.network import MicroAUCLIP

torch.set_num_threads(2)


@pytest.fixture(scope="module")
def source_clip() -> open_clip.CLIP:
    """A tiny open_clip CLIP with weights unlike any fresh init (as if trained elsewhere)."""
    torch.manual_seed(123)
    clip = open_clip.CLIP(**copy.deepcopy(TINY_OPEN_CLIP_CFG)).eval()
    with torch.no_grad():
        clip.visual.proj.mul_(3.0)
        clip.visual.ln_post.bias.add_(0.5)
    return clip


def _visual_tokens(clip: open_clip.CLIP, images: torch.Tensor) -> torch.Tensor:
    """Projected patch tokens computed with open_clip's own forward path."""
    visual = clip.visual
    last = visual.forward_intermediates(
        images, indices=1, normalize_intermediates=True, intermediates_only=True, output_fmt="NLC"
    )["image_intermediates"][-1]
    return last @ visual.proj  # (B, P, D)


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_pretrained_path_loads_exactly_the_saved_open_clip_weights(source_clip, tmp_path, suffix, caplog):
    path = tmp_path / f"tiny_clip{suffix}"
    state = source_clip.state_dict()
    if suffix == ".pt":
        torch.save(state, path)
    else:
        save_file({k: v.contiguous() for k, v in state.items()}, str(path))

    torch.manual_seed(999)  # a different random init, which the file must overwrite
    with caplog.at_level(logging.WARNING):
        model = MicroAUCLIP(MicroAUConfig.tiny(pretrained=str(path), input_mode="apex")).eval()
    assert model.pretrained_loaded
    assert model.pretrained_source == f"file:{path.resolve()}"
    assert "NO PRETRAINED WEIGHTS" not in caplog.text

    images = torch.randn(2, 3, 112, 112, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.allclose(model.encode_tokens(images), _visual_tokens(source_clip, images), atol=1e-5)
        # The text embeddings come from the loaded text tower too.
        token_ids = open_clip.SimpleTokenizer()([model.prompts[0].positive[0]])
        expected = torch.nn.functional.normalize(source_clip.encode_text(token_ids), dim=-1)
    assert torch.allclose(model.text_tower.encode([model.prompts[0].positive[0]]), expected, atol=1e-5)


def test_no_pretrained_weights_warns_loudly_and_says_so(caplog):
    with caplog.at_level(logging.WARNING):
        model = MicroAUCLIP(MicroAUConfig.tiny(input_mode="apex"))
    assert not model.pretrained_loaded
    assert model.pretrained_source == "none"
    assert "NO PRETRAINED WEIGHTS" in caplog.text


def test_weights_of_another_architecture_are_refused_clearly(tmp_path):
    cfg = copy.deepcopy(TINY_OPEN_CLIP_CFG)
    cfg["vision_cfg"]["layers"] = 2
    path = tmp_path / "two_layers.pt"
    torch.save(open_clip.CLIP(**cfg).state_dict(), path)
    with pytest.raises(UserError, match="does not hold open_clip weights for the tiny backbone"):
        MicroAUCLIP(MicroAUConfig.tiny(pretrained=str(path)))


def test_pickled_objects_are_never_unpickled(tmp_path):
    path = tmp_path / "whole_model.pt"
    torch.save({"state_dict": object()}, path)  # not plain tensors
    with pytest.raises(UserError, match="never unpickled"):
        MicroAUCLIP(MicroAUConfig.tiny(pretrained=str(path)))


def test_a_missing_weights_file_or_unknown_tag_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        MicroAUCLIP(MicroAUConfig(backbone="ViT-B-16", pretrained=str(tmp_path / "nope.pt")))
    with pytest.raises(UserError, match="known tags: openai"):
        MicroAUCLIP(MicroAUConfig(backbone="ViT-B-16", pretrained="imagenet-hopes"))
    with pytest.raises(UserError, match="tiny backbone has no published weights"):
        MicroAUCLIP(MicroAUConfig.tiny(pretrained="openai"))


def test_openai_weights_that_cannot_be_fetched_give_a_clear_error(monkeypatch, tmp_path):
    # The real path: open_clip.create_model -> Hugging Face hub. Offline mode makes it fail at
    # once instead of retrying for a minute, exactly as on a machine without internet.
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))  # empty cache
    with pytest.raises(UserError, match="could not fetch open_clip weights 'openai' for ViT-B-16"):
        MicroAUCLIP(MicroAUConfig(backbone="ViT-B-16", pretrained="openai"))
