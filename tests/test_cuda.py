"""The model path on a CUDA device, from synthetic tensors only, so that `make gpu-check` runs it
on a bare CUDA machine (PyTorch with CUDA, the wheels of `make gpu-wheels`, no Qt, MediaPipe,
PyAV or OpenCV).

`MICROAU_TEST_DEVICE` names the device (default "cuda"; the tests skip where it is missing).
`MICROAU_TEST_DEVICE=cpu` runs the same tests on the CPU: `test_gpu_check.py` does, in CI, with
the media and GUI packages blocked, and `make gpu-check DEVICE=cpu` does in a clean venv.
Real parts: a real open_clip tiny Micro-AU CLIP and the real speed modes and bench section.
"""

from __future__ import annotations

import copy
import os

import numpy as np
import pytest
import torch

from microau_gui.inference.speed import DEFAULT_TOLERANCE, SPEED_MODES, predict_probs, select_speed_mode
from microau_gui.model.network import PairBatch

DEVICE = os.environ.get("MICROAU_TEST_DEVICE", "cuda").strip().lower() or "cuda"
pytestmark = pytest.mark.skipif(DEVICE == "cuda" and not torch.cuda.is_available(),
                                reason="needs a CUDA device (MICROAU_TEST_DEVICE=cpu runs these on the CPU)")


def host_arrays(model, batch_size: int, seed: int = 0) -> dict[str, np.ndarray]:
    """uint8 crops and region masks as the analysis hands them over: smooth random images (a
    network sees structure, not white noise) and a few patches per AU."""
    rng = np.random.default_rng(seed)
    size, grid, n_au = model.image_size, model.grid_size, model.config.n_au
    coarse = rng.integers(0, 256, (batch_size, 2, size // 8, size // 8, 3)).astype(np.float32)
    images = np.repeat(np.repeat(coarse, 8, axis=2), 8, axis=3)  # (B, 2, S, S, 3)
    images = np.clip(images + rng.normal(0, 4, images.shape), 0, 255).astype(np.uint8)
    masks = rng.random((batch_size, n_au, grid * grid)) < 0.1
    masks[:, :, 0] = True
    return {"target": images[:, 0], "flow": images[:, 1], "masks": masks}


def on(model, arrays: dict[str, np.ndarray]) -> PairBatch:
    """The arrays as the model's PairBatch on its device (pinned, asynchronous copies on CUDA)."""
    from microau_gui.inference.gpu import upload_pair_arrays

    return upload_pair_arrays(model, arrays)


def test_pinned_upload_lands_on_the_device_unchanged():
    from microau_gui.inference.gpu import pinned_upload

    array = np.random.default_rng(0).integers(0, 255, (4, 32, 32, 3), dtype=np.uint8)
    tensor = pinned_upload(array, DEVICE)
    assert tensor.device.type == DEVICE
    np.testing.assert_array_equal(tensor.cpu().numpy(), array)


def test_fp32_on_the_device_equals_fp32_on_the_cpu(tiny_model):
    arrays = host_arrays(tiny_model, 4)
    with torch.inference_mode():
        expected = tiny_model(on(tiny_model, arrays)).probs.numpy()  # (4, n_au)
        moved, choice = select_speed_mode(copy.deepcopy(tiny_model), "fp32", DEVICE)
        assert moved.log_tau.device.type == DEVICE and choice.mode == "fp32"
        got = moved(on(moved, arrays)).probs.float().cpu().numpy()
    # TF32 may be on for CUDA matrix products; 1e-3 in probability is far below any decision.
    np.testing.assert_allclose(got, expected, atol=1e-3)
    assert expected.std() > 0.01  # the probabilities spread: the comparison means something


def test_the_auto_mode_agrees_with_fp32_within_the_parity_tolerance(tiny_model):
    arrays = host_arrays(tiny_model, 4, seed=1)
    check = on(tiny_model, host_arrays(tiny_model, 2, seed=2))
    fast, choice = select_speed_mode(copy.deepcopy(tiny_model), "auto", DEVICE, batch=check)
    assert choice.mode in SPEED_MODES
    with torch.inference_mode():
        expected = tiny_model(on(tiny_model, arrays)).probs.numpy()
        got = fast(on(fast, arrays)).probs.float().cpu().numpy()
    assert np.abs(got - expected).max() <= DEFAULT_TOLERANCE


@pytest.mark.skipif(DEVICE != "cuda" or not torch.cuda.is_available() or not torch.cuda.is_bf16_supported(),
                    reason="bf16 weights are checked on a CUDA device with bf16")
def test_bf16_weights_on_cuda_agree_with_fp32(tiny_model):
    batch = on(tiny_model, host_arrays(tiny_model, 2, seed=3))
    fast, choice = select_speed_mode(copy.deepcopy(tiny_model), "bf16", "cuda", batch=batch)
    assert {p.dtype for p in fast.parameters()} == {torch.bfloat16}
    diff = (predict_probs(fast, batch) - predict_probs(tiny_model, batch)).abs().max()
    assert float(diff) <= DEFAULT_TOLERANCE == choice.tolerance
