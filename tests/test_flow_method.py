"""The pairs' optical flow method is a preparation setting that a checkpoint's card carries: a
checkpoint trained before DIS existed keeps Farneback, a DIS-trained one gets DIS pairs at
inference, and the choice changes the model version and the pair-cache key.

Real parts: OpenCV's Farneback and DIS flows, training's pair preparation, real card records.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from microau_gui.core.errors import UserError
from microau_gui.core.types import Sample
from microau_gui.face.motion import FLOW_METHODS, dense_flow
from microau_gui.pairs.samples import PairCache, PrepSettings, checkpoint_prep_settings


def _card(prep: dict) -> SimpleNamespace:
    return SimpleNamespace(name="m", image_size=112, training_settings={"prep": prep})


@pytest.mark.parametrize("method", FLOW_METHODS)
def test_each_flow_method_measures_a_known_shift(method):
    """A textured image moved by (1.5, -0.75) px: every method finds it inside the frame."""
    rng = np.random.default_rng(0)
    import cv2

    texture = cv2.GaussianBlur(rng.integers(0, 256, (112, 112)).astype(np.float32), (0, 0), 2)
    texture = cv2.normalize(texture, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    moved = cv2.warpAffine(texture, np.float32([[1, 0, 1.5], [0, 1, -0.75]]), (112, 112),
                           borderMode=cv2.BORDER_REFLECT)
    flow = dense_flow(texture, moved, method)  # (H, W, 2)
    inner = flow[24:-24, 24:-24].reshape(-1, 2)
    np.testing.assert_allclose(np.median(inner, axis=0), [1.5, -0.75], atol=0.25)


def test_an_unknown_flow_method_is_a_user_error():
    with pytest.raises(UserError, match="flow method 'tvl1'"):
        PrepSettings(size=112, flow_method="tvl1")
    with pytest.raises(ValueError, match="unknown flow method"):
        dense_flow(np.zeros((16, 16), np.uint8), np.zeros((16, 16), np.uint8), "tvl1")


def test_the_card_carries_the_flow_method_and_old_cards_keep_farneback():
    farneback = PrepSettings(size=112, flow_size=224)
    dis = PrepSettings(size=112, flow_size=224, flow_method="dis")
    # an old card (no flow method written) reads back as Farneback, and a Farneback run still
    # writes exactly what old cards hold, so their model versions do not move
    assert "flow_method" not in farneback.record()
    assert checkpoint_prep_settings(_card(farneback.record())).flow_method == "farneback"
    assert checkpoint_prep_settings(_card(dis.record())).flow_method == "dis"
    assert checkpoint_prep_settings(_card(dis.record())).flow_side == 224


def test_the_flow_method_changes_the_model_version_and_the_pair_cache_key(tmp_path):
    from dataclasses import replace

    from test_inference_fixtures import save_tiny_checkpoint

    from microau_gui.model.card import read_card

    card = read_card(save_tiny_checkpoint(tmp_path / "m", "flow") / "card.json")
    versions = {replace(card, training_settings={"prep": settings.record()}).version
                for settings in (PrepSettings(112, 224), PrepSettings(112, 224, flow_method="dis"))}
    assert len(versions) == 2
    sample = Sample(subject="01", clip="c", media_path=tmp_path, onset=0, apex=3, offset=6)
    cache = PairCache(tmp_path / "pairs")
    assert cache.key(sample, PrepSettings(112, 224)) != cache.key(sample, PrepSettings(112, 224, flow_method="dis"))
