"""`bench` CUDA section: the device's GEMM roofline, ViT-B-16 throughput batched and at batch 1 on
synthetic tensors, and end-to-end `analyze --device cuda` where the media stack is installed.

Owns: `CUDA_KEYS`, `measure_cuda`. May import model and inference (speed modes) and, only for
the end-to-end figure, the analyze bench; the CLI layer may import every layer.

What it needs is deliberately little, so that a bare CUDA machine (Python, PyTorch with CUDA,
no network, no Qt, MediaPipe, PyAV or OpenCV) runs it from the wheels of `make gpu-wheels`
(`make gpu-check`): torch, numpy, open_clip (to build a random-weight ViT-B-16, nothing is
downloaded) and our model package. `device` is "cuda" for the real check; "cpu" runs the same
code on the CPU, which is how the recipe is tested on a machine without a GPU.

Figures: `cuda_gemm_{fp32,bf16}_gflops` (square products, n = 8192 on a GPU, the profile's
GEMM size on the CPU), `cuda_vitb16_b16_bf16_fps` (pinned uint8 uploads, normalised on the
device, the mode the parity race picks, bf16 where the device has it), `cuda_vitb16_b1_bf16_ms`
(median of 20), each with the roofline fields of `bench_roofline.with_roofline` against the
device's best dtype (on the CPU the "b16" figure runs batches of 2, and says so in `batch`);
`cuda_analyze_vitb16_fps` only where MediaPipe and PyAV are installed (the
full bench), else skipped saying so.
"""

from __future__ import annotations

import importlib.util
import statistics
import time
from pathlib import Path

import torch

from microau_gui.cli.bench_report import figure, skipped
from microau_gui.cli.bench_roofline import Roofline, model_gflop_per_frame, with_roofline

CUDA_KEYS = ("cuda_gemm_fp32_gflops", "cuda_gemm_bf16_gflops", "cuda_vitb16_b16_bf16_fps",
             "cuda_vitb16_b1_bf16_ms", "cuda_analyze_vitb16_fps")
_UNITS = {"cuda_gemm_fp32_gflops": "GFLOP/s", "cuda_gemm_bf16_gflops": "GFLOP/s",
          "cuda_vitb16_b16_bf16_fps": "fps", "cuda_vitb16_b1_bf16_ms": "ms/frame",
          "cuda_analyze_vitb16_fps": "fps"}
_GPU_GEMM_N = 8192
_MEDIA_MODULES = ("mediapipe", "av", "cv2")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _gemm(device: torch.device, n: int, dtype: torch.dtype, repeats: int = 5) -> float:
    """GFLOP/s of an n x n x n product in `dtype` on `device`, best of `repeats` after a warm-up."""
    generator = torch.Generator(device=device).manual_seed(0)
    a = torch.randn(n, n, generator=generator, device=device).to(dtype)
    b = torch.randn(n, n, generator=generator, device=device).to(dtype)
    torch.mm(a, b)
    _sync(device)
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        torch.mm(a, b)
        _sync(device)
        best = min(best, time.perf_counter() - started)
    return 2.0 * n ** 3 / best / 1e9


def _random_vitb16():
    """The bench's random-weight ViT-B-16 Micro-AU CLIP ("flow" input), built in memory."""
    from microau_gui.model.config import MicroAUConfig
    from microau_gui.model.network import MicroAUCLIP

    torch.manual_seed(0)
    config = MicroAUConfig(backbone="ViT-B-16", pretrained="none", input_mode="flow")
    model = MicroAUCLIP(config, load_pretrained=False, text_tower=False).eval()
    generator = torch.Generator().manual_seed(0)
    # Random prompt embeddings, as `bench_model.bench_checkpoint`: zeros would give every AU 0.5.
    model.text_pos = torch.randn(model.text_pos.shape, generator=generator)  # (n_au, D)
    model.text_neg = torch.randn(model.text_neg.shape, generator=generator)  # (n_au, D)
    return model


def _synthetic_batch(model, batch_size: int, device: torch.device, seed: int = 0):
    """A PairBatch of random uint8 crops uploaded from pinned memory (on CUDA) and normalised on
    the device, with random region masks; what `inference.gpu` feeds the network."""
    from microau_gui.model.network import PairBatch

    generator = torch.Generator().manual_seed(seed)
    size, grid, n_au = model.image_size, model.grid_size, model.config.n_au
    crops = torch.randint(0, 256, (batch_size, size, size, 3), dtype=torch.uint8, generator=generator)
    masks = torch.rand((batch_size, n_au, grid * grid), generator=generator) < 0.1
    masks[:, :, 0] = True  # every AU has at least one patch
    if device.type == "cuda":
        crops, masks = crops.pin_memory(), masks.pin_memory()
    crops = crops.to(device, non_blocking=True)
    masks = masks.to(device, non_blocking=True)
    return PairBatch(masks=masks, flow=model.prepare_images(crops))  # (B, 3, S, S) in the model dtype


def measure_cuda(device_name: str, n_batches: int, cpu_gemm_n: int,
                 analyze: tuple[Path, Path, Path, int] | None = None) -> dict[str, dict]:
    """The section's figures on `device_name` ("cuda" or "cpu"); see the module docstring.

    analyze: (checkpoint, video, work folder, frames) for the end-to-end figure, or None.
    """
    if device_name == "cuda" and not torch.cuda.is_available():
        return {key: skipped(_UNITS[key], "no CUDA device on this machine") for key in CUDA_KEYS}
    from microau_gui.inference.speed import select_speed_mode

    device = torch.device(device_name)
    on_gpu = device.type == "cuda"
    where = torch.cuda.get_device_name(device) if on_gpu else f"CPU ({device_name} requested)"
    n = _GPU_GEMM_N if on_gpu else cpu_gemm_n
    bf16 = (torch.cuda.is_bf16_supported() if on_gpu else False)
    roofline = Roofline(n=n)
    roofline.gflops["fp32"] = _gemm(device, n, torch.float32)
    figures = {"cuda_gemm_fp32_gflops": figure(roofline.gflops["fp32"], "GFLOP/s", n=n, device=where)}
    if bf16:
        roofline.gflops["bf16"] = _gemm(device, n, torch.bfloat16)
        figures["cuda_gemm_bf16_gflops"] = figure(roofline.gflops["bf16"], "GFLOP/s", n=n, device=where)
    else:
        figures["cuda_gemm_bf16_gflops"] = skipped(
            "GFLOP/s", "no bf16 on this device" if on_gpu else
            "not measured on the CPU here: the CPU's bf16 roofline is the model section's")

    model = _random_vitb16()
    gflop = model_gflop_per_frame(model, _synthetic_batch(model, 1, torch.device("cpu")), 1)
    mode = "bf16" if bf16 else "fp32"
    check = _synthetic_batch(model, 4, torch.device("cpu"), seed=99)  # bf16's parity with fp32
    fast, choice = select_speed_mode(model.to(device), mode, device, batch=check)
    # On the CPU (the recipe's test, `make gpu-check DEVICE=cpu`) batches of 2: a ViT-B-16 frame
    # costs ~1-2 s there, and 16 of them, twice, were most of the check's 4-minute limit.
    batch_size = 16 if on_gpu else 2
    with torch.inference_mode():
        fast(_synthetic_batch(fast, batch_size, device))  # warm-up: kernels, allocator
        _sync(device)
        started = time.perf_counter()
        for k in range(n_batches):
            fast(_synthetic_batch(fast, batch_size, device, seed=k + 1))
        _sync(device)
        seconds = time.perf_counter() - started
        single = _synthetic_batch(fast, 1, device)
        fast(single)
        times_ms = []
        for _ in range(20 if on_gpu else 3):
            _sync(device)
            begun = time.perf_counter()
            fast(single)
            _sync(device)
            times_ms.append((time.perf_counter() - begun) * 1000.0)
    fps = batch_size * n_batches / seconds
    per_frame = with_roofline(figure(1000.0 / fps, "ms/frame"), gflop, roofline)
    figures["cuda_vitb16_b16_bf16_fps"] = figure(
        fps, "fps", batch=batch_size, n_batches=n_batches, mode=choice.mode, prob_diff=choice.diffs.get(choice.mode),
        device=where, pinned=on_gpu, inputs="synthetic uint8 crops",
        **{k: per_frame[k] for k in ("gflop_per_frame", "achieved_gflops", "roofline_fraction", "roofline_dtype")})
    figures["cuda_vitb16_b1_bf16_ms"] = with_roofline(
        figure(statistics.median(times_ms), "ms/frame", batch=1, mode=choice.mode,
               prob_diff=choice.diffs.get(choice.mode), device=where, repeats=len(times_ms)), gflop, roofline)
    missing = [name for name in _MEDIA_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        figures["cuda_analyze_vitb16_fps"] = skipped(
            "fps", f"{', '.join(missing)} not installed here (a bare CUDA machine): run the full bench")
    elif analyze is None:
        figures["cuda_analyze_vitb16_fps"] = skipped("fps", "no checkpoint and video given")
    else:
        from microau_gui.cli.bench_analyze import measure_analyze

        checkpoint, video, work, frames = analyze
        figures["cuda_analyze_vitb16_fps"] = measure_analyze(video, checkpoint, work / "analyze_cuda.csv",
                                                             frames, None, device=device_name)
    return figures
