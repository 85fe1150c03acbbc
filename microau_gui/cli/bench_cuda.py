"""`bench` CUDA section: ViT-B-16 throughput in bf16 on the GPU, batched and at batch 1, and
end-to-end `analyze --device cuda`. Reported as skipped when no CUDA device is present.

Owns: `measure_cuda`. May import inference (speed modes, the GPU path) and model; the CLI layer
may import every layer.
"""

from __future__ import annotations

import statistics
from pathlib import Path

import torch

from microau_gui.cli.bench_report import figure, skipped

CUDA_KEYS = ("cuda_vitb16_b16_bf16_fps", "cuda_vitb16_b1_bf16_ms", "cuda_analyze_vitb16_fps")
_UNITS = {"cuda_vitb16_b16_bf16_fps": "fps", "cuda_vitb16_b1_bf16_ms": "ms/frame",
          "cuda_analyze_vitb16_fps": "fps"}


def measure_cuda(checkpoint: Path | None, video: Path | None, work: Path, n_batches: int,
                 analyze_frames: int) -> dict[str, dict]:
    """The CUDA figures (see the module docstring)."""
    if not torch.cuda.is_available():
        return {key: skipped(_UNITS[key], "no CUDA device on this machine") for key in CUDA_KEYS}
    from microau_gui.cli.bench_analyze import measure_analyze
    from microau_gui.inference.gpu import batched_throughput, model_for_device
    from microau_gui.inference.speed import sample_arrays, sample_batch, time_forward
    from microau_gui.model.checkpoint import load_checkpoint

    model, _ = load_checkpoint(checkpoint, device="cpu")
    mode = "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    fast, choice = model_for_device(model.float(), "cuda", mode)
    device_name = torch.cuda.get_device_name(0)
    arrays = sample_arrays(fast, 16)
    batched_throughput(fast, [arrays])  # warm-up: kernels, allocator
    n_frames, seconds, _ = batched_throughput(fast, (arrays for _ in range(n_batches)))
    figures = {
        "cuda_vitb16_b16_bf16_fps": figure(n_frames / seconds, "fps", batch=16, mode=choice.mode,
                                           prob_diff=choice.diffs.get(choice.mode), device=device_name,
                                           pinned=True, producer_thread=True),
    }
    single = sample_batch(fast, 1)
    times_ms = time_forward(fast, single, repeats=20, warmup=3)
    figures["cuda_vitb16_b1_bf16_ms"] = figure(statistics.median(times_ms), "ms/frame", batch=1,
                                               mode=choice.mode, device=device_name)
    figures["cuda_analyze_vitb16_fps"] = measure_analyze(video, checkpoint, work / "analyze_cuda.csv",
                                                         analyze_frames, None, device="cuda")
    return figures
