"""Helpers shared by the inference and analyze tests: tiny real checkpoints and the direct model call.

No test here; pytest collects the module only for what the other files import. Checkpoints are
real tiny Micro-AU CLIP networks (random weights, real open_clip towers) saved by the model
layer's own checkpoint API. `direct_probs` runs the model the way training feeds it, calling
training's pair preparation and the model's forward directly, without the Predictor.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from microau_gui.face.motion import flow_image
from microau_gui.model.checkpoint import save_checkpoint
from microau_gui.model.config import MicroAUConfig
from microau_gui.model.network import MicroAUCLIP, PairBatch
from microau_gui.pairs.samples import PREP_VERSION, PrepSettings, prepare_pair, sample_masks

torch.set_num_threads(2)


FLOW_SIZE = 160  # recorded in the test cards like `train` records its flow crop


def save_tiny_checkpoint(folder: Path, input_mode: str, seed: int = 0) -> Path:
    """A tiny random Micro-AU CLIP saved as a checkpoint folder, its card recording how pairs are
    prepared as `train` records it; returns the folder."""
    torch.manual_seed(seed)
    model = MicroAUCLIP(MicroAUConfig.tiny(input_mode=input_mode)).eval()
    prep = {"size": model.image_size, "flow_size": FLOW_SIZE, "version": PREP_VERSION}
    save_checkpoint(model, folder, training_settings={"prep": prep})
    return folder


def direct_probs(model: MicroAUCLIP, reference_rgb: np.ndarray, target_rgb: np.ndarray,
                 xy_img: np.ndarray) -> np.ndarray:
    """(n_au,) probabilities from model.forward on training's preparation of one pair."""
    size, grid = model.image_size, model.grid_size
    settings = PrepSettings(size=size, flow_size=FLOW_SIZE)
    reference, target, flow, xy_crop = prepare_pair(reference_rgb, target_rgb, xy_img, settings)
    masks = torch.from_numpy(sample_masks(xy_crop, size, grid, model.vocab))[None]
    config = model.config
    batch = PairBatch(
        masks=masks,
        target=model.prepare_images(target) if config.needs_target else None,
        reference=model.prepare_images(reference) if config.needs_reference else None,
        flow=model.prepare_images(flow_image(flow)) if config.needs_flow else None,
    )
    with torch.no_grad():
        return model(batch).probs[0].numpy()


def read_rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def shifted(rgb: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """The image moved by (dx, dy) px: a whole-head movement the flow must cancel."""
    warp = np.array([[1, 0, dx], [0, 1, dy]], dtype=np.float32)
    return cv2.warpAffine(rgb, warp, (rgb.shape[1], rgb.shape[0]), borderMode=cv2.BORDER_REFLECT)


def brow_raise(rgb: np.ndarray, box: tuple[int, int, int, int], px: float = 2.0) -> np.ndarray:
    """A local upward shift of the upper third of the face box: a crude AU1+2-like movement."""
    x0, y0, x1, y1 = box
    out = rgb.copy()
    band = slice(y0, y0 + (y1 - y0) // 3)
    region = np.ascontiguousarray(rgb[band, x0:x1])
    warp = np.array([[1, 0, 0], [0, 1, -px]], dtype=np.float32)
    out[band, x0:x1] = cv2.warpAffine(region, warp, (region.shape[1], region.shape[0]),
                                      borderMode=cv2.BORDER_REPLICATE)
    return out
