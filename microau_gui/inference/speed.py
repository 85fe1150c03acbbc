"""Speed modes for Micro-AU CLIP inference, the parity check, and the start-up choice between them.

Owns: `SPEED_MODES`, `SPEED_CHOICES`, `DEFAULT_TOLERANCE`, `SECOND_RUNTIME_MODES`,
`RUNTIME_MIN_GAIN`, `MEMORY_BUDGET_MB`, `resident_mb`, `runtime_memory_veto`, `numerics_of`,
`SpeedChoice`, `supported_modes`, `apply_speed_mode`, `predict_probs`, `parity_check`,
`time_forward`, `thread_candidates`, `race`, `bf16_matmul_ratio`, `choose_fastest_mode`,
`select_speed_mode`, `sample_arrays`, `sample_batch`.
May import model, face and core (torch, numpy, OpenCV); no Qt.

All of this is our specification (the paper says nothing about speed).

Modes:
- "fp32": float32 weights and inputs; the reference every other mode is checked against.
- "bf16": bfloat16 weights *and* inputs (`prepare_images` casts inputs to the parameters'
  dtype). Plain autocast was slower than bf16 weights on the CPU the issue was written on;
  with bf16 weights nothing is cast per call. Fast only where the hardware has bf16 units
  (AVX512-BF16 / AMX CPUs, CUDA GPUs); on AVX2-only CPUs PyTorch emulates it and it is several
  times *slower* than fp32, which the start-up measurement sees and rejects.
- "int8": dynamic quantisation of the backbone's `nn.Linear` layers (int8 weights, activations
  quantised per call; `torch.ao.quantization.quantize_dynamic`, x86/fbgemm kernels, AVX2 is
  enough). In the open_clip ViT these are the MLPs, 2/3 of a block's FLOPs; the attention
  in-projection is a raw parameter of `nn.MultiheadAttention` and stays float. The heads (PTA,
  GDA, fusion, the detection head) stay fp32: they cost a few percent of the FLOPs but carry
  most of the quantisation error to the probabilities (random tiny network, batch 16: max
  |delta p| 0.026 with every Linear quantised, 0.004 with the backbone's only). CPU only.
- "ort": the fp32 network exported to ONNX and run by ONNX Runtime (`inference.ort`; fused
  attention and GELU, constant folding); same numbers up to float rounding. CPU only, offered
  only where the optional onnxruntime is installed. ONNX Runtime's static int8 (QDQ) was tried
  and is not a mode: see `inference.ort`.
- "openvino": the same fp32 graph compiled by OpenVINO (`inference.openvino_rt`), its inference
  precision pinned to f32 (OpenVINO's CPU default is bf16 where the CPU has it); same numbers up
  to float rounding (2e-7). CPU only, offered where the optional openvino is installed.
- "openvino-bf16": that graph at OpenVINO's bf16 precision: approximate (|dp| 8e-4 on the tiny
  network), raced only where a bf16 product is not far slower than fp32 (the bf16 probe).
- "openvino-int8": that graph quantised to int8 by NNCF, calibrated on prepared pairs
  (`inference.openvino_rt.quantized_graph`): approximate (|dp| 0.0025-0.004), offered where the
  optional nncf is installed too. The first start-up on a model quantises it (ViT-B-16: ~17 s)
  and caches the result.
Every mode stores the patch-embedding convolution (the only convolution of a ViT) in
channels-last layout and feeds it channels-last images: bit-identical results, no reorder in
oneDNN. On the AVX2 development machine the gain is within noise (ViT-B/16 patch embedding 3.3
vs 3.5 ms at batch 1); the transformer dominates. Every forward runs under
`torch.inference_mode()` (no autograd bookkeeping).

Parity: a mode is acceptable when its AU probabilities differ from fp32 by at most `tolerance`
(default `DEFAULT_TOLERANCE` = 0.02: max |delta p| over every AU of every sample of the check
batch). Measured on random-weight networks and a real face photo: int8 0.001-0.006, bf16
0.002-0.01.

The start-up choice (`choose_fastest_mode`): each faster mode is converted, checked for parity,
and raced against fp32 with the repeats interleaved (fp32, mode, fp32, mode ...), so a burst of
load from another process slows both alike; modes are compared by their time *relative to fp32
in their own race*, or to fp32 in the runs before and between the races where that was faster
(`_baseline_ms`: a mode that slows fp32 beside it must not win by it). Every mode must beat fp32
by `min_gain`; a mode of another runtime (ONNX Runtime, OpenVINO) must also beat the best torch
mode by `RUNTIME_MIN_GAIN`, because it holds a second copy of the weights, and it is not even
built where that copy would take the process over `MEMORY_BUDGET_MB` (ViT-B-16: the float
graphs of "ort" and "openvino" yes, the int8 weights of "openvino-int8" no; the tiny model: no). A mode whose first two runs (after its warm-up) are both `give_up_factor` times
slower than fp32's slower of two is not raced (bf16 on AVX2 costs seconds per ViT-B/16
forward). Only fp32, the best candidate so far and the one being raced are alive at a time,
and torch candidates share every tensor they do not convert with the fp32 network (no
transient second fp32 copy: ViT-B/16 is 350 MB and the peak-RSS target is 2 GB). Optionally
CPU thread counts race too: on a 2-core machine shared with other work, 2 torch threads were 10-40x
slower than 1 (OpenMP threads waiting for a descheduled sibling), on an idle one they are faster.
Which mode wins depends on the batch size, so the check batch should have the size the caller
runs (1 for the frame on screen, 8-16 for batch analysis).
"""

from __future__ import annotations

import copy
import logging
import statistics
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from microau_gui.core.cores import usable_cores
from microau_gui.core.errors import UserError

log = logging.getLogger(__name__)

SPEED_MODES: tuple[str, ...] = ("fp32", "bf16", "int8", "ort", "openvino", "openvino-bf16", "openvino-int8")
SPEED_CHOICES: tuple[str, ...] = ("auto", *SPEED_MODES)  # what `--speed` accepts
DEFAULT_TOLERANCE = 0.02  # max |delta p| from fp32 over all AUs of the check batch
# The numeric class of each mode's rows in the predictions cache (store.predictions): fp32 and
# ONNX Runtime's fp32 graph agree to float rounding (3e-7, far below the cache's float16 step),
# as fp32 on CPUs with different vector units does; bf16 and int8 are each up to the tolerance
# away and identify their own rows.
_NUMERICS: dict[str, str] = {"fp32": "fp32", "ort": "fp32", "openvino": "fp32", "bf16": "bf16",
                             "int8": "int8", "openvino-bf16": "openvino-bf16",
                             "openvino-int8": "openvino-int8"}


# Modes another runtime runs. They hold its graph and compiled network beside torch's weights:
# ViT-B-16's spot-gated analysis on the AMX Xeon peaked at 2.77 GB in openvino-bf16 against
# 1.76 GB in torch bf16 (docs/bench/analyze-2026-12-07-amx-meta-load.json), and took 204 s
# against 196 although its race had put it 5 % ahead (323 against 341 ms a batch of 8). A lead
# of that size does not carry from the check batch to the job, so `choose_fastest_mode` wants
# them to beat the best torch mode by `RUNTIME_MIN_GAIN` as well.
SECOND_RUNTIME_MODES = frozenset({"ort", "openvino", "openvino-bf16", "openvino-int8"})
RUNTIME_MIN_GAIN = 0.10
# The process's resident memory a start-up race may take a candidate to: issue #18's peak-RSS
# target (below 2 GB while analysing). A second runtime's network holds more than torch's own
# weights, per byte of the fp32 network's weights (`_RUNTIME_MEMORY_FACTOR`, measured on
# ViT-B-16, 344 MB of weights, AMD EPYC AVX2, December 7: ONNX Runtime's network +710 MB
# resident, its graph's bytes kept to open a session per thread count and the session's own
# copy; OpenVINO's +1010 MB; the AMX Xeon's openvino-bf16 job peaked 1.0 GB above torch bf16's).
# There ViT-B-16's race peaked at 3.4-3.7 GB with ONNX Runtime and OpenVINO built, and its
# spot-gated analysis in "ort" at 2.8 GB, whatever it chose: so a second runtime whose network
# would take the process over the budget is not built (`runtime_memory_veto`). The tiny model's
# weights (a few MB) leave its runtimes in the race. openvino-int8 holds int8 weights: its
# ViT-B-16 network read from the cache took the process from 1.19 to 1.57 GB (Zen 4, December 8;
# quantising runs in a child process, `openvino_rt.quantized_graph`).
MEMORY_BUDGET_MB = 2048.0
_RUNTIME_MEMORY_FACTOR = {"ort": 2.1, "openvino": 3.0, "openvino-bf16": 3.0, "openvino-int8": 1.2}


def resident_mb() -> float:
    """This process's resident memory now, in MB."""
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def return_freed_memory() -> None:
    """Collect garbage and give the heap's free pages back to the system (glibc `malloc_trim`;
    a no-op elsewhere), so a dropped candidate's network stops counting in the resident memory
    the next `runtime_memory_veto` reads."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def runtime_memory_veto(model: nn.Module, mode: str,
                        budget_mb: float | None = MEMORY_BUDGET_MB) -> str | None:
    """Why `mode`'s network must not be built beside `model` (fp32) within `budget_mb` of
    resident memory, or None: torch's own modes, no budget, or room enough."""
    if budget_mb is None or mode not in SECOND_RUNTIME_MODES:
        return None
    weights_mb = sum(t.numel() * t.element_size() for t in model.state_dict().values()) / 2**20
    extra_mb = _RUNTIME_MEMORY_FACTOR[mode] * weights_mb
    now_mb = resident_mb()
    if now_mb + extra_mb <= budget_mb:
        return None
    return (f"its network would hold about {extra_mb:.0f} MB beside torch's {weights_mb:.0f} MB of "
            f"weights, taking this process from {now_mb:.0f} to about {now_mb + extra_mb:.0f} MB, "
            f"over the {budget_mb:.0f} MB memory budget; not built")


def numerics_of(mode: str) -> str:
    """The numeric class ("fp32", "bf16", "int8") of the rows a speed mode makes."""
    return _NUMERICS[mode]



@dataclass(frozen=True, eq=False)
class SpeedChoice:
    """The outcome of a start-up speed choice (or of an explicitly requested mode)."""

    mode: str  # the mode chosen
    timings_ms: dict[str, float]  # mode -> median ms per forward of the check batch (best threads)
    diffs: dict[str, float]  # mode -> max |p - p_fp32| on the check batch (fp32: 0.0)
    tolerance: float  # the parity bound the modes were held to
    rejected: dict[str, str] = field(default_factory=dict)  # mode -> why it was not chosen
    batch_size: int = 1  # samples in the check batch
    threads: int | None = None  # CPU threads the chosen mode runs best with (None on CUDA)
    timings_by_threads: dict[str, dict[int, float]] = field(default_factory=dict)  # mode -> {threads: ms}
    # mode -> its time / fp32's in the same interleaved race: what the choice compares (the
    # medians in `timings_ms` pool fp32's runs of every race, so they can disagree slightly)
    relative: dict[str, float] = field(default_factory=dict)
    timed_once: tuple[str, ...] = ()  # modes timed by one run only (too slow to repeat)
    model: nn.Module | None = None  # the network converted for `mode`, ready to run
    remembered: bool = False  # taken from an earlier race of this model here (speed_memory)

    def summary(self) -> str:
        """One line for logs and sidecars, e.g. "int8 (fp32 520 ms, int8 430 ms |dp| 0.004 ...)"."""
        parts = []
        for mode, ms in self.timings_ms.items():
            diff = self.diffs.get(mode)
            shown_diff = f" |dp| {diff:.2g}" if mode != "fp32" and diff is not None else ""
            shown_relative = f" = {self.relative[mode]:.2f} x fp32" if mode in self.relative else ""
            parts.append(f"{mode} {ms:.0f} ms{shown_relative}{shown_diff}")
        parts += [f"{mode} not run" for mode in self.rejected if mode not in self.timings_ms]
        threads = f", {self.threads} thread(s)" if self.threads else ""
        origin = ", remembered from an earlier race on this machine" if self.remembered else ""
        return (f"{self.mode} ({', '.join(parts)}; batch {self.batch_size}{threads}, "
                f"tolerance {self.tolerance:g}{origin})")


# -- modes ---------------------------------------------------------------------------------------


def _int8_engine() -> str | None:
    """The quantised-kernel engine dynamic int8 uses here, or None when there is none."""
    engines = torch.backends.quantized.supported_engines
    for engine in ("x86", "fbgemm", "qnnpack"):
        if engine in engines:
            return engine
    return None


def supported_modes(device: torch.device | str = "cpu") -> tuple[str, ...]:
    """The modes that run on `device` (whether they are *fast* there is for the measurement)."""
    device = torch.device(device)
    if device.type == "cuda":
        return ("fp32", "bf16") if torch.cuda.is_bf16_supported() else ("fp32",)
    modes = ["fp32", "bf16"]
    if _int8_engine() is not None and hasattr(torch.ao.quantization, "quantize_dynamic"):
        modes.append("int8")
    from microau_gui.inference.ort import ort_available

    if ort_available():
        modes.append("ort")
    from microau_gui.inference.openvino_rt import openvino_available, openvino_int8_available

    if openvino_available():
        modes += ["openvino", "openvino-bf16"]
    if openvino_int8_available():
        modes.append("openvino-int8")
    return tuple(modes)


def _check_mode(mode: str, device: torch.device) -> str:
    mode = (mode or "").strip().lower()
    if mode not in SPEED_MODES:
        raise UserError(f"speed mode {mode!r} is unknown; use one of {', '.join(SPEED_CHOICES)}")
    if mode not in supported_modes(device):
        raise UserError(f"speed mode {mode!r} does not run on {device.type} here; use one of "
                        f"auto, {', '.join(supported_modes(device))}")
    return mode


def _copy_sharing(model: nn.Module, convert: Callable[[torch.Tensor], torch.Tensor]) -> nn.Module:
    """A deep copy of `model` whose tensors are `convert(tensor)`; where `convert` returns the
    tensor unchanged the copy shares it with `model` (no memory). Convolution weights are always
    copied, since `_channels_last_convs` changes their layout in place."""
    memo: dict[int, object] = {}
    for module in model.modules():
        own_copy = isinstance(module, nn.Conv2d)
        for param in module.parameters(recurse=False):
            converted = convert(param.detach())
            if own_copy or converted.data_ptr() != param.data_ptr():
                converted = converted.clone() if converted.data_ptr() == param.data_ptr() else converted
                memo[id(param)] = nn.Parameter(converted, requires_grad=param.requires_grad)
            else:
                memo[id(param)] = param
        for buffer in module.buffers(recurse=False):
            memo[id(buffer)] = convert(buffer)
    return copy.deepcopy(model, memo)


def _to_bf16(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.to(torch.bfloat16) if tensor.is_floating_point() else tensor


def _channels_last_convs(model: nn.Module) -> None:
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            module.to(memory_format=torch.channels_last)


def apply_speed_mode(model: nn.Module, mode: str, device: torch.device | str | None = None,
                     *, copy_model: bool = False) -> nn.Module:
    """`model` (an fp32 MicroAUCLIP) converted for `mode`, in eval mode, on `device`.

    Converts in place unless `copy_model`: the copy shares with `model` every tensor it does not
    convert (read-only use is safe; training either one would change both). int8 always returns
    a new module (quantised layers replace the float ones). UserError for a mode `device` cannot
    run.
    """
    device = torch.device(device) if device is not None else model.log_tau.device
    mode = _check_mode(mode, device)
    model = model.to(device).float().eval()
    if mode == "ort":  # a new module by construction: `model` is only read
        from microau_gui.inference.ort import build_ort_network

        return build_ort_network(model, mode).eval()
    if mode in ("openvino", "openvino-bf16", "openvino-int8"):  # likewise
        from microau_gui.inference.openvino_rt import build_openvino_network

        precision = {"openvino": "f32", "openvino-bf16": "bf16", "openvino-int8": "int8"}[mode]
        return build_openvino_network(model, precision).eval()
    if mode == "bf16":
        model = _copy_sharing(model, _to_bf16) if copy_model else model.to(torch.bfloat16)
    elif mode == "int8":
        if copy_model:
            model = _copy_sharing(model, lambda tensor: tensor)
        torch.backends.quantized.engine = _int8_engine()
        with warnings.catch_warnings():
            # torch.ao.quantization announces its move to torchao; the eager API still works.
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", UserWarning)
            torch.ao.quantization.quantize_dynamic(model.backbone, {nn.Linear}, dtype=torch.qint8,
                                                   inplace=True)
    elif copy_model:
        model = _copy_sharing(model, lambda tensor: tensor)
    _channels_last_convs(model)
    return model.eval()


# -- running and timing --------------------------------------------------------------------------


def _inputs_for(model: nn.Module, batch):
    """`batch` on the model's device, cast to its dtype, images in channels-last layout."""
    moved = batch.to(model.log_tau.device, model.log_tau.dtype)
    return type(moved)(**{
        name: (value.contiguous(memory_format=torch.channels_last)
               if name != "masks" and value is not None else value)
        for name, value in vars(moved).items()
    })


def predict_probs(model: nn.Module, batch) -> torch.Tensor:
    """AU probabilities `(B, n_au)` (float32, CPU) of a `PairBatch` run through `model`."""
    with torch.inference_mode():
        return model(_inputs_for(model, batch)).probs.float().cpu()  # (B, n_au)


def parity_check(model_fp32: nn.Module, model_fast: nn.Module, batch) -> float:
    """max |p_fast - p_fp32| over every AU of every sample of `batch` (a `PairBatch`)."""
    reference = predict_probs(model_fp32, batch)  # (B, n_au)
    fast = predict_probs(model_fast, batch)  # (B, n_au)
    return float((fast - reference).abs().max())


def _sync(model: nn.Module) -> None:
    if model.log_tau.device.type == "cuda":
        torch.cuda.synchronize(model.log_tau.device)


def time_forward(model: nn.Module, batch, repeats: int = 3, warmup: int = 1) -> list[float]:
    """Wall milliseconds of `repeats` forwards of `batch` after `warmup` untimed ones."""
    inputs = _inputs_for(model, batch)
    times_ms = []
    with torch.inference_mode():
        for k in range(warmup + repeats):
            started = time.perf_counter()
            model(inputs)
            _sync(model)
            if k >= warmup:
                times_ms.append((time.perf_counter() - started) * 1000.0)
    return times_ms


def thread_candidates() -> tuple[int, ...]:
    """CPU thread counts worth racing: 1, half the usable cores and all of them (deduplicated)."""
    cores = usable_cores()
    return tuple(sorted({1, max(1, cores // 2), cores}))


def race(models: dict[str, nn.Module], batch, repeats: int = 3,
         threads: tuple[int, ...] | None = None) -> dict[tuple[str, int], list[float]]:
    """Milliseconds per forward of `batch`, per (mode, CPU threads), the repeats interleaved
    across modes and thread counts. `threads=None` keeps the current setting; it is restored."""
    original = torch.get_num_threads()
    counts = tuple(threads) if threads else (original,)
    times: dict[tuple[str, int], list[float]] = {(mode, n): [] for mode in models for n in counts}
    try:
        for _ in range(max(1, repeats)):
            for n_threads in counts:
                torch.set_num_threads(n_threads)
                for mode, model in models.items():
                    times[(mode, n_threads)].extend(time_forward(model, batch, repeats=1, warmup=0))
    finally:
        torch.set_num_threads(original)
    return times


def bf16_matmul_ratio(repeats: int = 5) -> float:
    """How many times slower a transformer-sized matrix product is in bf16 than in fp32 on this
    CPU: ~1 or less with bf16 units, tens of times more where it is emulated (58x on the AVX2
    development machine). Each dtype is timed best of `repeats`, a few milliseconds in all even
    where bf16 is emulated. Not one run: giving up after one slow bf16 run read over 2x in 8 of
    300 probes on the AMX Xeon (one at 29x; median 0.89), so a December 7 bench raced the tiny
    model without bf16; best of 5 read at most 1.33 in 300. The width is 256, not ViT-B/16's
    768: the ratio is the same (58x vs 71x there) for a tenth of the cost."""
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(64, 256, generator=generator)  # tokens x width
    b = torch.randn(256, 256, generator=generator)
    best = {}
    for dtype in (torch.float32, torch.bfloat16):
        x, y = a.to(dtype), b.to(dtype)
        x @ y  # warm-up: kernel selection, buffers
        times = []
        for _ in range(max(1, repeats)):
            started = time.perf_counter()
            x @ y
            times.append(time.perf_counter() - started)
        best[dtype] = min(times)
    return best[torch.bfloat16] / max(best[torch.float32], 1e-9)


def _medians(times: dict[tuple[str, int], list[float]], mode: str) -> dict[int, float]:
    return {n: statistics.median(values) for (m, n), values in times.items() if m == mode}


# -- the start-up choice -------------------------------------------------------------------------


def _baseline_ms(own: dict[int, float], earlier: dict[int, list[float]]) -> dict[int, float]:
    """fp32's ms per thread count that a candidate is judged against: its own race's median, or
    the median of every earlier fp32 run at that count where that is lower.

    A race's own fp32 runs cancel load that hits fp32 and the candidate alike. They do not
    cancel load the candidate itself causes: ONNX Runtime's idle pool used to spin on the cores
    after each run, so only the fp32 runs interleaved with "ort" took up to 3x longer, and ort
    (25 ms) beat fp32 (16.5 ms) and int8 (14.4 ms) relative to its own race. A candidate must
    therefore also beat fp32 as it ran without it. The cost: when load rises during a race, a
    faster mode may lose to fp32, the exact mode; within doubt the exact mode is kept anyway.
    """
    return {n: min(ms, statistics.median(earlier[n])) if earlier.get(n) else ms for n, ms in own.items()}



def _takes_over(mode: str, relative: float, best_mode: str, best_relative: float,
                best_torch_relative: float, min_gain: float, runtime_gain: float) -> bool:
    """Whether `mode`, at `relative` x fp32, replaces the best mode so far.

    Within `min_gain` of fp32 the exact mode is kept; within `runtime_gain` of the best torch
    mode the mode without a second runtime's copy of the weights is kept
    (`SECOND_RUNTIME_MODES`), whichever of the two raced first.
    """
    if relative >= 1.0 - min_gain:
        return False
    if mode in SECOND_RUNTIME_MODES:
        return relative < min(best_relative, best_torch_relative * (1.0 - runtime_gain))
    if best_mode in SECOND_RUNTIME_MODES:
        return relative * (1.0 - runtime_gain) <= best_relative
    return relative < best_relative


def choose_fastest_mode(model: nn.Module, batch, tolerance: float = DEFAULT_TOLERANCE, *,
                        modes: tuple[str, ...] | None = None, repeats: int = 3,
                        threads: tuple[int, ...] | None = None, give_up_factor: float = 2.0,
                        probe_bf16: bool = True, budget_s: float | None = None,
                        min_gain: float = 0.05,
                        runtime_gain: float = RUNTIME_MIN_GAIN,
                        memory_budget_mb: float | None = MEMORY_BUDGET_MB) -> SpeedChoice:
    """Choose the fastest supported mode whose probabilities stay within `tolerance` of fp32.

    `model` is the fp32 network; it is not modified. `choice.model` is the chosen mode's network.
    `threads` (CPU only, e.g. `thread_candidates()`) races CPU thread counts too and then sets
    the winner's with `torch.set_num_threads`, a process-wide setting: leave it None where
    another part of the process owns it (the window's inference worker keeps a core for
    display). Warm-ups and the give-up check run at the smallest count, the least load-sensitive.
    `probe_bf16` first times one matrix product in bf16 and fp32 on the CPU (`bf16_matmul_ratio`,
    well under a second) and skips converting and running the network in bf16 when the product
    is already `give_up_factor` times slower (one bf16 ViT-B/16 forward takes seconds there).
    `budget_s` bounds the race: `repeats` is cut (to no fewer than one) so that racing every
    candidate against fp32 takes about that long, judged from fp32's own time; the fixed part
    (fp32's warm-up and two timed runs, each candidate's conversion, warm-up and first run)
    comes on top. A faster mode must beat fp32 by at least `min_gain` (a fraction) to be
    chosen: within race noise the exact mode is kept. A mode of another runtime
    (`SECOND_RUNTIME_MODES`) must also beat the best torch mode by `runtime_gain`: short of that
    the mode that holds one copy of the weights is kept. Nor is a mode of another runtime
    built where its network would take the process over `memory_budget_mb` of resident memory
    (`runtime_memory_veto`; None: no bound).
    """
    device = model.log_tau.device
    model = model.float().eval()
    if device.type != "cpu":
        threads = None
    runnable = supported_modes(device)
    candidates = [m for m in (modes or runnable) if m != "fp32" and m in runnable]
    original_threads = torch.get_num_threads()
    warm_threads = min(threads) if threads else original_threads
    diffs: dict[str, float] = {"fp32": 0.0}
    rejected: dict[str, str] = {}
    fp32_times: dict[int, list[float]] = {}
    by_threads: dict[str, dict[int, float]] = {}
    relative: dict[str, float] = {}
    slow: list[str] = []
    best_mode, best_model, best_relative = "fp32", model, 1.0
    best_torch_relative = 1.0  # the fastest mode torch itself runs, relative to fp32
    torch.set_num_threads(warm_threads)
    try:
        reference = predict_probs(model, batch)  # (B, n_au), also fp32's warm-up
        fp32_alone_ms = time_forward(model, batch, repeats=2, warmup=0)
        # The slowest of two runs: a give-up decision must not rest on one lucky fp32 run.
        fp32_ref_ms = max(fp32_alone_ms)
    finally:
        torch.set_num_threads(original_threads)
    # Every fp32 run so far per thread count, the runs before any candidate existed included:
    # the baseline a race's own fp32 runs are checked against (see `_baseline_ms`).
    fp32_runs: dict[int, list[float]] = {warm_threads: list(fp32_alone_ms)}
    if budget_s is not None and candidates:
        # one repeat of a race runs fp32 and the candidate once each, at every thread count
        per_repeat_s = 2 * fp32_ref_ms / 1000.0 * len(threads or (1,)) * len(candidates)
        repeats = max(1, min(repeats, int(budget_s / max(per_repeat_s, 1e-6))))
    for mode in candidates:
        fast = None  # the last candidate, unless it is `best_model`
        if mode in SECOND_RUNTIME_MODES and best_model is not model and best_mode not in SECOND_RUNTIME_MODES:
            # A torch copy is cheap to convert again (seconds), so it does not sit beside
            # another runtime's network: ViT-B-16's spot-gated run peaked at 2,048 MB with its
            # bf16 copy alive while openvino-int8 raced, 172 MB of it the copy.
            best_model = None
        veto = runtime_memory_veto(model, mode, memory_budget_mb)
        if veto is not None:  # dropped copies may still hold pages: give them back, ask again
            return_freed_memory()  # a garbage collection: 0.1-0.2 s, so only where it matters
            veto = runtime_memory_veto(model, mode, memory_budget_mb)
        if veto is not None:
            log.info("speed mode %s: %s", mode, veto)  # the summary only says "not run"
            rejected[mode] = veto
            continue
        if mode in ("bf16", "openvino-bf16") and device.type == "cpu" and probe_bf16:
            ratio = bf16_matmul_ratio()
            if ratio > give_up_factor:
                rejected[mode] = (f"a bf16 matrix product is {ratio:.1f}x slower than fp32 on this "
                                  "CPU (no bf16 units); the network was not run in bf16")
                continue
        torch.set_num_threads(warm_threads)
        try:
            fast = apply_speed_mode(model, mode, device, copy_model=True)
            probs = predict_probs(fast, batch)  # (B, n_au), the candidate's warm-up
            first_ms = time_forward(fast, batch, repeats=1, warmup=0)[0]
            if first_ms > give_up_factor * fp32_ref_ms:  # confirm before giving up: load is bursty
                first_ms = min(first_ms, time_forward(fast, batch, repeats=1, warmup=0)[0])
        except (RuntimeError, NotImplementedError) as err:
            rejected[mode] = f"failed: {str(err).strip().splitlines()[0][:120]}"
            continue
        finally:
            torch.set_num_threads(original_threads)
        diffs[mode] = float((probs - reference).abs().max())
        if first_ms > give_up_factor * fp32_ref_ms:
            slow.append(mode)
            by_threads[mode] = {warm_threads: first_ms}
            rejected[mode] = (f"slower than fp32 ({first_ms:.0f} vs {fp32_ref_ms:.0f} ms at "
                              f"{warm_threads} thread(s), not raced)")
            continue
        times = race({"fp32": model, mode: fast}, batch, repeats, threads)
        baseline = _baseline_ms(_medians(times, "fp32"), fp32_runs)
        for (name, n_threads), values in times.items():
            if name == "fp32":
                fp32_times.setdefault(n_threads, []).extend(values)
                fp32_runs.setdefault(n_threads, []).extend(values)
        by_threads[mode] = _medians(times, mode)
        relative[mode] = min(by_threads[mode].values()) / min(baseline.values())
        if diffs[mode] > tolerance:
            rejected[mode] = f"|dp| {diffs[mode]:.3g} > tolerance {tolerance:g}"
            continue
        if _takes_over(mode, relative[mode], best_mode, best_relative, best_torch_relative,
                       min_gain, runtime_gain):
            best_mode, best_model, best_relative = mode, fast, relative[mode]
        if mode not in SECOND_RUNTIME_MODES:
            best_torch_relative = min(best_torch_relative, relative[mode])
    fast = None
    if best_model is None:  # a torch mode kept its lead over the runtime it was dropped for
        best_model = apply_speed_mode(model, best_mode, device, copy_model=True)
    if not fp32_times:  # no candidate raced: time fp32 alone
        fp32_times = {n: v for (_, n), v in race({"fp32": model}, batch, repeats, threads).items()}
    by_threads = {"fp32": {n: statistics.median(v) for n, v in fp32_times.items()}, **by_threads}
    timings = {mode: min(per.values()) for mode, per in by_threads.items()}
    for mode in relative:
        if mode in rejected or mode == best_mode:
            continue
        if best_mode == "fp32" and relative[mode] >= 1.0 - min_gain:
            rejected[mode] = f"not {min_gain:.0%} faster than fp32 ({relative[mode]:.2f} x fp32)"
        elif mode in SECOND_RUNTIME_MODES and relative[mode] < best_relative:
            rejected[mode] = (f"not {runtime_gain:.0%} faster than the best torch mode "
                              f"({relative[mode]:.2f} vs {best_torch_relative:.2f} x fp32), and "
                              "it holds a second copy of the weights")
        else:
            rejected[mode] = f"slower ({relative[mode]:.2f} x fp32 vs {best_relative:.2f} x for {best_mode})"
    if best_mode != "fp32":
        rejected["fp32"] = f"slower than {best_mode} ({best_relative:.2f} x fp32)"
    best_per_threads = by_threads[best_mode]
    chosen_threads = min(best_per_threads, key=best_per_threads.get) if device.type == "cpu" else None
    if threads:
        torch.set_num_threads(chosen_threads)
    choice = SpeedChoice(mode=best_mode, timings_ms=timings, diffs=diffs, tolerance=tolerance,
                         rejected=rejected, batch_size=int(reference.shape[0]), threads=chosen_threads,
                         timings_by_threads=by_threads, relative=relative, timed_once=tuple(slow),
                         model=best_model)
    log.info("speed mode: %s", choice.summary())
    return choice


def select_speed_mode(model: nn.Module, speed_mode: str = "auto", device: torch.device | str | None = None,
                      *, batch=None, batch_size: int = 1, tolerance: float = DEFAULT_TOLERANCE,
                      threads: tuple[int, ...] | None = None,
                      budget_s: float | None = None) -> tuple[nn.Module, SpeedChoice]:
    """What the Predictor calls after loading a checkpoint: (the network to run, how it was chosen).

    "auto" measures (`choose_fastest_mode` on `batch`, default `sample_batch(model, batch_size)`;
    CPU thread counts too when `threads` is given; `budget_s` bounds the race). An explicit
    faster mode is applied without a race; its parity with fp32 is still measured, and a mode
    outside `tolerance` is logged as a warning (the user asked for it). "fp32" is applied as is
    (nothing to check). The fp32 `model` may be dropped by the caller afterwards.
    """
    device = torch.device(device) if device is not None else model.log_tau.device
    requested = (speed_mode or "auto").strip().lower()
    if requested not in SPEED_CHOICES:
        raise UserError(f"speed mode {speed_mode!r} is unknown; use one of {', '.join(SPEED_CHOICES)}")
    if requested != "auto":
        _check_mode(requested, device)
    model = model.to(device).float().eval()
    if requested == "fp32":
        fast = apply_speed_mode(model, "fp32", device)
        return fast, SpeedChoice("fp32", {}, {"fp32": 0.0}, tolerance, batch_size=batch_size, model=fast)
    check = batch if batch is not None else sample_batch(model, batch_size)
    if requested == "auto":
        choice = choose_fastest_mode(model, check, tolerance, threads=threads, budget_s=budget_s)
        return choice.model, choice
    fast = apply_speed_mode(model, requested, device, copy_model=True)
    diff = parity_check(model, fast, check)
    if diff > tolerance:
        log.warning("speed mode %s differs from fp32 by |dp| %.3g (> %g) on the check batch",
                    requested, diff, tolerance)
    return fast, SpeedChoice(requested, {}, {"fp32": 0.0, requested: diff}, tolerance,
                             batch_size=_batch_size(check), model=fast)


def _batch_size(batch) -> int:
    for name in ("target", "flow", "reference"):
        value = getattr(batch, name)
        if value is not None:
            return int(value.shape[0])
    return int(batch.masks.shape[0]) if batch.masks.dim() == 3 else 1


# -- check batches -------------------------------------------------------------------------------


def _face_photo(size: int) -> np.ndarray:
    """A real face (scikit-image's astronaut, public domain) resized to `size` px, uint8 RGB."""
    from pathlib import Path

    import cv2
    from skimage import data

    # Read by Pillow, not `data.astronaut()` (~170 ms of imports at start-up); not by OpenCV,
    # whose libpng prints a warning about the file's colour profile on every start.
    from PIL import Image

    path = Path(data.__file__).parent / "astronaut.png"
    rgb = np.asarray(Image.open(path).convert("RGB")) if path.is_file() else data.astronaut()
    rgb = rgb[20:260, 130:370]  # (240, 240, 3) around the face
    return cv2.resize(rgb, (size, size), interpolation=cv2.INTER_AREA)


def sample_arrays(model: nn.Module, batch_size: int = 1, seed: int = 0) -> dict[str, np.ndarray]:
    """Deterministic host arrays of one batch shaped for `model`: uint8 crops `(B, S, S, 3)` under
    "target", "reference", "flow" (those its input mode needs) and bool "masks" `(B, n_au, P)`.

    Images: a real face photo (target), the same face moved by a fraction of a pixel
    (reference), and a smooth motion field rendered as a flow image, each sample of the batch
    shifted a little differently. Masks: each AU a random rectangle of patches (>= 1 patch). Not
    aligned with MediaPipe: the checks need realistic pixel statistics, not anatomy.
    """
    import cv2

    from microau_gui.face.motion import flow_image

    size, grid, n_au = model.image_size, model.grid_size, model.config.n_au
    rng = np.random.default_rng(seed)
    photo = _face_photo(size)
    targets, references, flows = [], [], []
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    for _ in range(batch_size):
        dx, dy = rng.uniform(-0.8, 0.8, size=2)
        warp = np.float32([[1, 0, dx], [0, 1, dy]])
        references.append(cv2.warpAffine(photo, warp, (size, size), borderMode=cv2.BORDER_REFLECT))
        targets.append(photo)
        flow = np.stack([np.sin(6 * yy + dx), np.cos(5 * xx + dy)], axis=-1) * 0.02 * size  # (S, S, 2)
        flows.append(flow_image(flow.astype(np.float32)))
    masks = np.zeros((batch_size, n_au, grid, grid), dtype=bool)
    for b in range(batch_size):
        for k in range(n_au):
            y0, x0 = rng.integers(0, grid - 2, size=2)
            h, w = rng.integers(2, max(3, grid // 3), size=2)
            masks[b, k, y0:y0 + h, x0:x0 + w] = True
    config = model.config
    arrays = {"masks": masks.reshape(batch_size, n_au, grid * grid)}
    images = {"target": targets, "reference": references, "flow": flows}
    for name in config.image_kinds:
        arrays[name] = np.stack(images[name])  # (B, S, S, 3)
    return arrays


def sample_batch(model: nn.Module, batch_size: int = 1, seed: int = 0):
    """`sample_arrays` as a float32 `PairBatch` on the CPU, normalised for `model`."""
    from microau_gui.model.network import PairBatch

    arrays = sample_arrays(model, batch_size, seed)

    def image(name: str) -> torch.Tensor | None:
        if name not in arrays:
            return None
        images01 = torch.from_numpy(arrays[name]).permute(0, 3, 1, 2).float() / 255.0  # (B, 3, S, S)
        return model.normalize_images(images01)

    return PairBatch(masks=torch.from_numpy(arrays["masks"]), target=image("target"),
                     reference=image("reference"), flow=image("flow"))
