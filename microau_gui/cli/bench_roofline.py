"""`bench` roofline: this machine's matrix-product throughput per dtype, each model's FLOPs, and
every model figure as a fraction of the best of them.

Owns: `GEMM_KEYS`, `Roofline`, `measure_roofline`, `model_gflop_per_frame`, `with_roofline`,
`gated_bound`. May import torch (and `inference.speed` for the int8 mode's own kernels); the CLI
layer may import every layer.

Why: absolute ms targets only mean something on the CPU they were written for (the ViT-B-16
targets assumed an AVX-512 + AMX Xeon; an AVX2 EPYC emulates bf16 and is 3-60x slower there).
What a runtime can improve is how much of the machine's own matrix throughput the model gets,
so every model figure carries `gflop_per_frame` (counted, not assumed), `achieved_gflops` and
`roofline_fraction` = achieved / the best dtype's GEMM throughput in the same run.

Our specification:
- GEMM: square n x n products (n = 2048 full, 1024 quick, 256 smoke) timed best of `repeats`
  after one warm-up, at every CPU thread count the model figures race; a dtype's roofline is its
  best over those counts. fp32 and bf16 are `torch.mm`; int8 is the kernel the "int8" speed mode
  runs, a dynamically quantised `nn.Linear` (fbgemm/x86: int8 weights, activations quantised per
  call, which the figure therefore includes), counted as 2 n^3 operations like the others. bf16
  is first timed at 256 x 256: where it is `GIVE_UP_FACTOR` times slower than fp32 (emulated on
  AVX2: 0.1-0.25 GFLOP/s on the development EPYC, 100-250x slower than fp32) that figure is
  reported and says so, since one 2048 product would take minutes.
- FLOPs: `torch.utils.flop_counter.FlopCounterMode` over one fp32 forward at batch 1 (matrix
  products, convolutions and attention; element-wise work is not counted, as in every
  roofline). FLOPs grow linearly with the batch but for a few products done once per batch (the
  text side: under 1% at batch 1), so the count per frame at batch 1 serves every batch size
  and every mode (int8 and bf16 do the same arithmetic in other types).
- The best dtype is the fastest GEMM measured in this run, whichever it is: a mode that cannot
  use it (fp32 on an AMX machine) shows how much the faster dtype would give.
- The spot-gated analysis's bound (`gated_bound`): the real-time factor the run would reach if
  ViT-B-16 ran its gated frames at the best dtype's GEMM throughput (fraction 1.0), with the
  start, model load and spotting as measured (the model section's GEMM figures and FLOP count;
  with `--only analyze` the analyze section measures them itself). Where that bound is under the
  target, no runtime can meet it on this machine: only less work (fewer gated frames, a smaller
  model) can.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field

import torch
from torch import nn

GEMM_KEYS: dict[str, str] = {"fp32": "gemm_fp32_gflops", "bf16": "gemm_bf16_gflops",
                             "int8": "gemm_int8_gops"}
GIVE_UP_FACTOR = 5.0
PROBE_N = 256  # side of the product that decides whether bf16 is emulated


@dataclass
class Roofline:
    """GEMM throughput of this run, GFLOP/s (int8: GOP/s) per dtype; `why` for those unmeasured."""

    gflops: dict[str, float] = field(default_factory=dict)  # dtype -> best over thread counts
    by_threads: dict[str, dict[int, float]] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)  # dtype -> what limited the measurement
    why: dict[str, str] = field(default_factory=dict)  # dtype -> why it was not measured
    n: int = 0

    @property
    def best_dtype(self) -> str | None:
        return max(self.gflops, key=self.gflops.get) if self.gflops else None

    @property
    def best_gflops(self) -> float | None:
        return self.gflops[self.best_dtype] if self.gflops else None


def _timed(run, repeats: int) -> tuple[float, int]:
    """Best seconds of `run()` over `repeats` after one warm-up, and how many were timed."""
    run()
    times = []
    for _ in range(max(1, repeats)):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times), len(times)


def _int8_linear(weight: torch.Tensor) -> nn.Module | None:
    """`weight` (out, in) as the int8 speed mode runs a Linear: dynamic int8 quantisation on the
    engine `inference.speed` picks (x86, else fbgemm, else qnnpack); None where there is none."""
    engine = next((e for e in ("x86", "fbgemm", "qnnpack") if e in torch.backends.quantized.supported_engines),
                  None)
    if engine is None:
        return None
    torch.backends.quantized.engine = engine
    linear = nn.Linear(weight.shape[1], weight.shape[0], bias=False)
    linear.weight.data.copy_(weight)
    with warnings.catch_warnings():  # torch.ao.quantization announces its move to torchao
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        return torch.ao.quantization.quantize_dynamic(nn.Sequential(linear), {nn.Linear}, dtype=torch.qint8)


def _bf16_emulated(supported: tuple[str, ...]) -> float | None:
    """bf16 GFLOP/s at `PROBE_N` when it is `GIVE_UP_FACTOR` times slower than fp32 there (no bf16
    units: a 2048 product would take minutes), else None (worth measuring at full size)."""
    if "bf16" not in supported:
        return None
    generator = torch.Generator().manual_seed(1)
    a = torch.randn(PROBE_N, PROBE_N, generator=generator)
    fp32_s, _ = _timed(lambda: torch.mm(a, a), 3)
    a16 = a.bfloat16()
    bf16_s, _ = _timed(lambda: torch.mm(a16, a16), 1)
    return 2.0 * PROBE_N ** 3 / bf16_s / 1e9 if bf16_s > GIVE_UP_FACTOR * fp32_s else None


def measure_roofline(n: int, thread_counts: tuple[int, ...], repeats: int = 3) -> Roofline:
    """GEMM throughput per dtype on the CPU (see the module docstring)."""
    from microau_gui.inference.speed import supported_modes

    generator = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=generator)
    b = torch.randn(n, n, generator=generator)
    flop = 2.0 * n ** 3
    roofline = Roofline(n=n)
    supported = supported_modes("cpu")
    quantized = _int8_linear(b.T.contiguous())
    original = torch.get_num_threads()
    try:
        with torch.inference_mode():
            for threads in thread_counts:
                torch.set_num_threads(threads)
                runs = {"fp32": flop / _timed(lambda: torch.mm(a, b), repeats)[0] / 1e9}
                emulated = _bf16_emulated(supported)
                if emulated is not None:
                    runs["bf16"] = emulated
                    roofline.notes["bf16"] = (f"measured at {PROBE_N}x{PROBE_N}: more than {GIVE_UP_FACTOR:g}x "
                                              "slower than fp32 there (no bf16 units: PyTorch emulates it)")
                elif "bf16" in supported:
                    a16, b16 = a.bfloat16(), b.bfloat16()
                    runs["bf16"] = flop / _timed(lambda: torch.mm(a16, b16), repeats)[0] / 1e9
                if quantized is not None:
                    runs["int8"] = flop / _timed(lambda: quantized(a), repeats)[0] / 1e9
                for dtype, gflops in runs.items():
                    roofline.by_threads.setdefault(dtype, {})[threads] = gflops
    finally:
        torch.set_num_threads(original)
    for dtype, per_threads in roofline.by_threads.items():
        roofline.gflops[dtype] = max(per_threads.values())
    if "bf16" not in supported:
        roofline.why["bf16"] = "this PyTorch build runs no bf16 on this CPU"
    if quantized is None:
        roofline.why["int8"] = "no int8 engine (x86/fbgemm/qnnpack) in this PyTorch build"
    return roofline


def roofline_figures(roofline: Roofline, figure, skipped) -> dict[str, dict]:
    """The `gemm_*` figures of a measured roofline (`figure`/`skipped` from bench_report)."""
    figures = {}
    for dtype, key in GEMM_KEYS.items():
        unit = "GOP/s" if dtype == "int8" else "GFLOP/s"
        if dtype not in roofline.gflops:
            figures[key] = skipped(unit, roofline.why.get(dtype, "not measured"))
            continue
        detail = {"n": roofline.n, "by_threads": {str(k): round(v, 1) for k, v in roofline.by_threads[dtype].items()},
                  "best_dtype": dtype == roofline.best_dtype}
        if dtype in roofline.notes:
            detail["note"] = roofline.notes[dtype]
        if dtype == "int8":
            detail["kernel"] = "dynamically quantised nn.Linear (the int8 speed mode's)"
        figures[key] = figure(roofline.gflops[dtype], unit, **detail)
    return figures


def model_gflop_per_frame(model: nn.Module, batch, batch_size: int) -> float:
    """GFLOP of one forward of `model` on `batch` (a PairBatch of `batch_size` pairs), per pair
    (module docstring)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    from microau_gui.inference.speed import predict_probs

    counter = FlopCounterMode(display=False)
    # The counter has no formula for nn.MultiheadAttention's fused inference fast path nor for
    # the CPU flash-attention kernel: with them it missed every attention projection and product
    # (ViT-B-16: 23 instead of 35 GFLOP per frame). Their plain forms do the same arithmetic.
    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with sdpa_kernel(SDPBackend.MATH), counter:
            predict_probs(model, batch)
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
    return counter.get_total_flops() / 1e9 / batch_size


def with_roofline(entry: dict, gflop_per_frame: float | None, roofline: Roofline | None) -> dict:
    """`entry` (a model figure in ms per frame) with achieved GFLOP/s and its roofline fraction."""
    ms = entry.get("value")
    if ms is None or not gflop_per_frame:
        return entry
    achieved = gflop_per_frame / (ms / 1000.0)
    entry = {**entry, "gflop_per_frame": round(gflop_per_frame, 3), "achieved_gflops": round(achieved, 2)}
    if roofline is not None and roofline.best_gflops:
        entry["roofline_fraction"] = round(achieved / roofline.best_gflops, 4)
        entry["roofline_dtype"] = roofline.best_dtype
    else:
        entry["roofline_fraction"] = None
        entry["roofline_why"] = "no GEMM throughput measured in this run"
    return entry


def gated_bound(gated: dict, gflop_per_frame: float | None, roofline: Roofline | None) -> dict:
    """Fields for the `analyze_gated_vitb16_x_realtime` figure `gated`: its bound at the best GEMM
    throughput of `roofline` (the run's own).

    `bound_x_realtime` = video seconds / (start, load and spotting as measured + gated frames x
    ViT-B-16's `gflop_per_frame` / the best dtype's GFLOP/s); `bound_why` where a part is missing.
    """
    if gated.get("value") is None:
        return {"bound_x_realtime": None, "bound_why": "the gated run was not measured"}
    if roofline is None or not roofline.best_gflops or not gflop_per_frame:
        return {"bound_x_realtime": None,
                "bound_why": "no GEMM throughput or ViT-B-16 FLOP count in this run"}
    model_s = gated["n_gated_frames"] * gflop_per_frame / roofline.best_gflops
    return {"bound_x_realtime": round(gated["video_s"] / (gated["spot_load_start_s"] + model_s), 3),
            "bound_model_s": round(model_s, 1), "bound_dtype": roofline.best_dtype,
            "bound_gflops": round(roofline.best_gflops, 1), "bound_gflop_per_frame": round(gflop_per_frame, 2)}
