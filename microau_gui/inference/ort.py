"""ONNX Runtime speed modes: the visual path exported to ONNX, run by ONNX Runtime on the CPU.

Owns: `ort_available`, `export_onnx`, `cached_export`, `quantize_int8_static`, `OrtBackbone`, `build_ort_network`,
`compare_runtimes` (the figures a bench section prints). May import model and core (torch, numpy, onnx, onnxruntime); no Qt.
`inference.speed` turns these into speed modes the start-up race can choose.

What is exported: the backbone (normalised images -> patch tokens, batch axis dynamic), ~95% of
the FLOPs. The PTA/GDA heads stay torch fp32 in the same network object: the Predictor runs the
backbone and the heads apart (it reuses a reference frame's tokens across frames), and the heads
carry most of any reduced-precision error to the probabilities.

Variants:
- "ort" (a speed mode): the fp32 graph under ONNX Runtime (graph optimisations on: attention and
  GELU fused, constant folding); same numbers up to float rounding (max |dp| 3e-7). Whether it is
  faster is the start-up race's call per machine: on the AVX2 development machine (AMD EPYC,
  2 cores shared with other work, load ~8, tiny model, batch 8, 1 thread) it ran 130 vs 158 ms
  (flow) and 267 vs 249 ms (apex+flow) against torch eager fp32: within that machine's noise.
- "ort-int8" (measured by `compare_runtimes`, NOT a speed mode): static int8 quantisation (QDQ,
  per-channel weights) of the backbone's weight products (MLP, attention in-projection),
  activation ranges calibrated on prepared pairs (`speed.sample_batch` pairs from a real face
  photo by default). Dropped because it misses the parity bound: max |dp| 0.030-0.033 > 0.02 on
  the tiny model (torch's dynamic int8 keeps 0.001-0.003 on the same batches): static activation
  scales fixed at calibration lose more than per-call dynamic ones. Speed on the same machine:
  118-225 ms, no consistent gain over "ort" or torch int8. OpenVINO's int8 ("openvino-int8",
  `inference.openvino_rt`: NNCF's quantiser, which keeps softmax and layer norms float and
  corrects biases) keeps the bound on the same kind of calibration.

Optional dependency: onnx + onnxruntime (the `fast` extra). Without them `ort_available()` is
False and the modes are not offered (`speed.supported_modes`).
"""

from __future__ import annotations

import copy
import io
import logging
import warnings
from pathlib import Path

import torch
from torch import nn

log = logging.getLogger(__name__)



def ort_available() -> bool:
    """True when onnx and onnxruntime import here (the `fast` extra is installed)."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def export_onnx(model: nn.Module, images: torch.Tensor) -> bytes:
    """The serialised ONNX graph of fp32 `model`'s backbone: normalised images `(B, 3, S, S)` ->
    patch tokens `(B, P, D)`, traced on `images`, batch axis dynamic."""
    backbone = model.backbone.float().eval()
    buffer = io.BytesIO()
    fastpath = torch.backends.mha.get_fastpath_enabled()
    # The fused attention fast path has no ONNX symbolic; the plain path exports (same numbers).
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            # The TorchScript exporter warns about its own deprecation: it does not change the graph.
            warnings.simplefilter("ignore")
            torch.onnx.export(backbone, (images.float().contiguous(),), buffer, input_names=["images"],
                              output_names=["tokens"], opset_version=17, do_constant_folding=True,
                              dynamic_axes={"images": {0: "batch"}, "tokens": {0: "batch"}}, dynamo=False)
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
        backbone.eval()  # the exporter restores the mode it found; eval whatever happens
    return buffer.getvalue()


def quantize_int8_static(onnx_model: bytes, calibration: list[torch.Tensor]) -> bytes:
    """`onnx_model` (a backbone graph) with its weight products (MLPs, attention projections)
    statically quantised to int8 (QDQ, per-channel weights), activation ranges calibrated on
    `calibration` (normalised image batches)."""
    import tempfile
    from pathlib import Path

    import onnx
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.pending = [{"images": images.float().contiguous().numpy()} for images in calibration]

        def get_next(self):
            return self.pending.pop(0) if self.pending else None

    graph = onnx.load_from_string(onnx_model)
    # The attention's activation-by-activation products (softmax inputs) and the output
    # projection stay fp32.
    keep_float = [node.name for node in graph.graph.node
                  if node.op_type in ("MatMul", "Gemm") and not (
                      "/mlp/" in node.name or node.name.endswith("/attn/Gemm"))]
    # quantize_static works on files (its calibrator writes an augmented model beside them).
    with tempfile.TemporaryDirectory(prefix="microau-ort-") as folder:
        source, target = Path(folder, "fp32.onnx"), Path(folder, "int8.onnx")
        source.write_bytes(onnx_model)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            logging.getLogger().disabled, was = True, logging.getLogger().disabled
            try:  # it logs a pre-processing hint on the root logger every time
                quantize_static(str(source), str(target), Reader(), quant_format=QuantFormat.QDQ,
                                op_types_to_quantize=["MatMul", "Gemm"], per_channel=True,
                                activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                                calibrate_method=CalibrationMethod.MinMax, nodes_to_exclude=keep_float)
            finally:
                logging.getLogger().disabled = was
        return target.read_bytes()


class OrtBackbone(nn.Module):
    """A backbone whose forward (normalised images -> patch tokens) runs an ONNX Runtime session.

    One session per CPU thread count, made when first run at that count: an ONNX Runtime pool
    has a fixed size, and it follows torch's setting (`torch.set_num_threads`), so a race of
    thread counts (`speed.race`) times what it says and the count the race sets is the one used.
    The pool does not spin when idle: by default its threads busy-wait after each run, on a
    2-core machine taking the cores from the torch heads that run next and from other threads
    (this made fp32 runs interleaved with "ort" up to 3x slower, and "ort" won races it lost).
    """

    def __init__(self, onnx_model: bytes, source: nn.Module):
        super().__init__()
        # the sizes the network reads from its backbone, taken from the exported one
        self.image_size, self.grid_size = int(source.image_size), int(source.grid_size)
        self.n_patches, self.embed_dim = int(source.n_patches), int(source.embed_dim)
        self.onnx_model = onnx_model
        self.sessions: dict[int, object] = {}  # CPU threads -> onnxruntime.InferenceSession
        self.session(torch.get_num_threads())  # a graph ONNX Runtime cannot load fails here

    def session(self, threads: int):
        """The session whose intra-op pool has `threads` threads."""
        if threads not in self.sessions:
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            options.intra_op_num_threads = int(threads)
            options.inter_op_num_threads = 1
            options.log_severity_level = 3
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            self.sessions[threads] = ort.InferenceSession(self.onnx_model, options,
                                                          providers=["CPUExecutionProvider"])
        return self.sessions[threads]

    @property
    def trainable(self) -> bool:
        return False

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        array = images.detach().float().cpu().contiguous().numpy()  # (B, 3, S, S)
        session = self.session(torch.get_num_threads())
        return torch.from_numpy(session.run(["tokens"], {"images": array})[0])  # (B, P, D)


def _images(batch) -> torch.Tensor:
    return torch.cat([image for image in (batch.target, batch.reference, batch.flow) if image is not None])


def cached_export(model: nn.Module, images: torch.Tensor) -> Path | bytes:
    """`export_onnx`, kept in the "onnx" cache under a digest of the backbone's weights and the
    torch version: exporting ViT-B/16 takes ~15 s (AMD EPYC, loaded), which every start-up race
    would otherwise pay again. Returns the cached file's path, so a runtime can read the graph
    from disk (OpenVINO maps it: for ViT-B/16 its load peak rose by 0.2 GB from the path and by
    1.2 GB from the same bytes in memory, Intel Xeon, December 7); the bytes themselves only
    where the cache cannot be written, which then only costs the export's time."""
    import hashlib

    from microau_gui.core.files import write_atomically
    from microau_gui.core.paths import cache_dir

    digest = hashlib.blake2b(f"{torch.__version__} opset17 {model.config.backbone}".encode(), digest_size=20)
    for name, tensor in model.backbone.state_dict().items():
        digest.update(f"{name} {tuple(tensor.shape)} {tensor.dtype}".encode())
        digest.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
    path = cache_dir("onnx") / f"{digest.hexdigest()}.onnx"
    if path.is_file():
        return path
    graph = export_onnx(model, images)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, lambda tmp: tmp.write_bytes(graph))
    except OSError as err:
        log.info("ONNX graph not cached (%s)", err)
        return graph
    return path


def _cached_export_bytes(model: nn.Module, images: torch.Tensor) -> bytes:
    """`cached_export` as bytes (ONNX Runtime keeps them to open a session per thread count)."""
    graph = cached_export(model, images)
    return graph.read_bytes() if isinstance(graph, Path) else graph


def build_ort_network(model: nn.Module, mode: str, calibration: list | None = None) -> nn.Module:
    """A copy of `model` (fp32 MicroAUCLIP, CPU) whose backbone runs under ONNX Runtime; `mode`
    "ort" (fp32 graph) or "ort-int8" (static int8, for `compare_runtimes`).

    The heads stay torch fp32 and share their tensors with `model` (a few percent of the FLOPs;
    the Predictor runs backbone and heads apart to reuse a reference frame's tokens). The copy
    does not hold `model`'s backbone weights. `calibration`: `PairBatch`es whose images trace the
    export and calibrate int8 (default: two `sample_batch`es of 4 pairs)."""
    from microau_gui.inference.speed import sample_batch

    model = model.float().eval().cpu()
    calibration = calibration or [sample_batch(model, 4, seed=seed) for seed in (1, 2)]
    images = [_images(batch) for batch in calibration]
    graph = _cached_export_bytes(model, images[0])
    if mode == "ort-int8":
        graph = quantize_int8_static(graph, images)
    backbone = model.backbone
    # Copy without the backbone (the session replaces it); every other tensor is shared.
    memo = {id(backbone): OrtBackbone(graph, backbone)}
    memo.update({id(tensor): tensor for tensor in model.parameters()})
    memo.update({id(tensor): tensor for tensor in model.buffers()})
    return copy.deepcopy(model, memo).eval()


_NOT_MODES = {"ort-int8": "static int8: activation scales fixed at calibration missed the 0.02 "
                         "parity bound on other batches (0.030-0.033, see the module docstring)",
              "torch.compile": "not a speed mode: compiling costs tens of seconds to minutes per "
                               "start-up, which the start-up race would pay every time"}


def compare_runtimes(model: nn.Module, batch, repeats: int = 3, *, with_compile: bool = True) -> list[dict]:
    """Every CPU runtime of the visual path on `batch`, one network alive at a time: torch eager
    fp32 and int8, `torch.compile` (inductor, the whole network; its compile time is its own
    column), ONNX Runtime fp32 ("ort") and static int8 ("ort-int8"), OpenVINO f32, bf16 and
    NNCF int8 where installed. One row each with the median ms per forward, max |dp| from torch fp32, whether it
    is a speed mode and, if not, why. What the bench's runtime table prints; no thresholds."""
    import time

    from microau_gui.inference.openvino_rt import openvino_available, openvino_int8_available
    from microau_gui.inference.speed import apply_speed_mode, predict_probs, time_forward

    model = model.float().eval().cpu()
    reference = predict_probs(model, batch)  # (B, n_au)
    builders = {"torch fp32": lambda: model,
                "torch int8": lambda: apply_speed_mode(model, "int8", copy_model=True),
                "ort": lambda: build_ort_network(model, "ort"),
                "ort-int8": lambda: build_ort_network(model, "ort-int8")}
    if openvino_available():
        builders["openvino"] = lambda: apply_speed_mode(model, "openvino")
        builders["openvino-bf16"] = lambda: apply_speed_mode(model, "openvino-bf16")
    if openvino_int8_available():
        builders["openvino-int8"] = lambda: apply_speed_mode(model, "openvino-int8")
    if with_compile:
        builders["torch.compile"] = lambda: torch.compile(model)
    rows = []
    for name, build in builders.items():
        started = time.perf_counter()
        try:
            network = build()
            probs = predict_probs(network, batch)  # also the warm-up (and the compilation)
        except Exception as err:  # a runtime that cannot run here is reported, not fatal
            rows.append({"runtime": name, "ms": None, "max_dp": None, "speed_mode": False,
                         "why_not": f"failed: {type(err).__name__}: {str(err).strip()[:160]}"})
            continue
        build_s = time.perf_counter() - started
        diff = float((probs - reference).abs().max())
        times = sorted(time_forward(network, batch, repeats=repeats, warmup=0))
        row = {"runtime": name, "ms": times[len(times) // 2], "max_dp": diff,
               "speed_mode": name not in _NOT_MODES, "build_and_first_run_s": round(build_s, 2)}
        if name in _NOT_MODES:
            row["why_not"] = _NOT_MODES[name]
        rows.append(row)
        del network
    return rows
