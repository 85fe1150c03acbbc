"""The GPU path: batched runs (CPU), and CUDA itself (CUDA only).

Real parts: a real H.264 file written by the media layer from a real face photo, MediaPipe,
a real open_clip tiny Micro-AU CLIP. The CUDA tests run only where a CUDA device exists.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from microau_gui.face.landmarks import FaceMesh
from microau_gui.inference.gpu import batched_throughput, model_for_device, pinned_upload, upload_pair_arrays
from microau_gui.inference.speed import DEFAULT_TOLERANCE, predict_probs, sample_arrays

torch.set_num_threads(1)
cuda_only = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def test_batched_runs_with_a_producer_give_the_direct_forward_probabilities(tiny_model):
    batches = [sample_arrays(tiny_model, 3, seed=s) for s in range(3)]
    n_frames, seconds, probs = batched_throughput(tiny_model, iter(batches))
    assert n_frames == 9 and seconds > 0
    with torch.inference_mode():
        direct = torch.cat([tiny_model(upload_pair_arrays(tiny_model, b)).probs for b in batches])
    np.testing.assert_allclose(probs, direct.numpy(), atol=1e-6)


@cuda_only
def test_pinned_upload_lands_on_the_gpu_unchanged():
    array = np.random.default_rng(0).integers(0, 255, (4, 32, 32, 3), dtype=np.uint8)
    tensor = pinned_upload(array, "cuda")
    assert tensor.device.type == "cuda"
    np.testing.assert_array_equal(tensor.cpu().numpy(), array)


@cuda_only
def test_cuda_auto_mode_agrees_with_cpu_fp32_within_tolerance(tiny_model):
    import copy

    cpu_arrays = sample_arrays(tiny_model, 4)
    with torch.inference_mode():
        expected = tiny_model(upload_pair_arrays(tiny_model, cpu_arrays)).probs.numpy()
    gpu_model, choice = model_for_device(copy.deepcopy(tiny_model), "cuda", "auto")
    assert choice.mode in ("fp32", "bf16") and gpu_model.log_tau.device.type == "cuda"
    n_frames, _, probs = batched_throughput(gpu_model, iter([cpu_arrays]))
    assert n_frames == 4
    assert np.abs(probs - expected).max() <= DEFAULT_TOLERANCE


@cuda_only
def test_bf16_weights_on_cuda_agree_with_fp32(tiny_model):
    import copy

    from microau_gui.inference.speed import sample_batch

    gpu_model, choice = model_for_device(copy.deepcopy(tiny_model), "cuda", "bf16")
    assert {p.dtype for p in gpu_model.parameters()} == {torch.bfloat16}
    batch = sample_batch(tiny_model, 2)
    diff = (predict_probs(gpu_model, batch) - predict_probs(tiny_model, batch)).abs().max()
    assert float(diff) <= DEFAULT_TOLERANCE


@cuda_only
def test_the_predictor_on_cuda_agrees_with_the_cpu_fp32_predictor(tmp_path, grace_hopper_path):
    from test_inference_fixtures import brow_raise, read_rgb, save_tiny_checkpoint

    from microau_gui.inference.predictor import Predictor

    checkpoint = save_tiny_checkpoint(tmp_path / "diff", "apex+diff", seed=4)
    reference = read_rgb(grace_hopper_path)
    with FaceMesh(static=True) as mesh:
        box = mesh.detect(reference).box
    target = brow_raise(reference, box, px=2.0)
    with Predictor.from_checkpoint(checkpoint, device="cpu", speed_mode="fp32") as cpu:
        expected = cpu.predict(target, reference, 1, 0).probs
    with Predictor.from_checkpoint(checkpoint, device="auto", speed_mode="auto") as gpu:
        assert gpu.device == "cuda" and gpu.speed_mode in ("fp32", "bf16")
        got = gpu.predict(target, reference, 1, 0).probs
    assert np.abs(got - expected).max() <= DEFAULT_TOLERANCE
