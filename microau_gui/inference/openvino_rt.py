"""The OpenVINO speed mode: the visual backbone's ONNX graph compiled by OpenVINO for the CPU.

Owns: `openvino_available`, `openvino_int8_available`, `OpenVinoBackbone`, `quantized_graph`,
`build_openvino_network`. May import model, core and `inference.ort` (the ONNX export and its
cache; torch, numpy, openvino, nncf); no Qt. `inference.speed` makes these the speed modes
"openvino", "openvino-bf16" and "openvino-int8", which the start-up race may choose.

What runs: the same backbone graph "ort" runs (`ort.cached_export`: normalised images -> patch
tokens, batch axis dynamic), read from the export cache's file (OpenVINO maps its weights; read
from bytes in memory, ViT-B/16's load peaked 1 GB higher), compiled by OpenVINO's CPU plugin; the PTA/GDA heads stay torch fp32
(see `inference.ort` for why). Precision: OpenVINO's CPU plugin runs bf16 by default on CPUs
with bf16 units (AVX512-BF16/AMX), which would make this an approximate mode silently; the
inference precision is pinned to f32, so "openvino" is an exact mode (numeric class "fp32" in
the predictions cache, `speed.numerics_of`). Threads: one compiled model per torch thread count
(as `ort.OrtBackbone`), one stream, no core pinning (the cores are shared with the decoder,
MediaPipe and the window).

"openvino-int8" (a speed mode, approximate): the same graph quantised to int8 by NNCF's
post-training quantisation (`quantized_graph`: model type "transformer", which keeps softmax,
layer norms and the attention's scaling in float; symmetric int8 weights per channel, activations
per tensor), activation ranges calibrated on prepared pairs (`speed.sample_batch` pairs from a
real face photo, seeds 1 and 2), run by OpenVINO at f32 inference precision for what stays float.
Unlike ONNX Runtime's static int8 (`inference.ort`, 0.030-0.033 |dp|), it keeps the parity bound:
|dp| 0.004 (tiny) and 0.0025 (ViT-B-16) on a batch of 8 other pairs (random-weight bench
networks, Zen 4, December 8). Its gain is the CPU's int8 dot products (VNNI): ViT-B-16 at batch 8
ran 55 ms a frame there against 92 in openvino-bf16 and 103 in torch bf16. Quantising ViT-B-16
takes ~17 s, so the quantised graph is kept in the "openvino-int8" cache (OpenVINO IR, weights
uncompressed) under the ONNX graph's name and the quantiser's versions; later start-ups read it.

Optional dependencies: openvino, and nncf for "openvino-int8" (the `fast` extra). Without
openvino `openvino_available()` is False and no OpenVINO mode is offered; without nncf
`openvino_int8_available()` is False and "openvino-int8" is not.
"""

from __future__ import annotations

import copy
import io
import logging
from pathlib import Path

import torch
from torch import nn

log = logging.getLogger(__name__)


def openvino_available() -> bool:
    """True when openvino imports here (the `fast` extra is installed)."""
    try:
        import openvino  # noqa: F401
    except ImportError:
        return False
    return True


def openvino_int8_available() -> bool:
    """True when openvino and nncf (its post-training quantiser) are installed here. nncf is
    only looked up, not imported: importing it takes seconds, and only quantising needs it."""
    import importlib.util

    return importlib.util.find_spec("nncf") is not None and openvino_available()


class OpenVinoBackbone(nn.Module):
    """A backbone whose forward (normalised images -> patch tokens) runs an OpenVINO compiled model."""

    def __init__(self, graph, source: nn.Module, precision: str = "f32"):
        super().__init__()
        import openvino as ov

        # the sizes the network reads from its backbone, taken from the exported one
        self.image_size, self.grid_size = int(source.image_size), int(source.grid_size)
        self.n_patches, self.embed_dim = int(source.n_patches), int(source.embed_dim)
        self.precision = precision
        self._core = ov.Core()
        # `graph`: a file (ONNX or OpenVINO IR), mapped rather than parsed into memory (see the
        # module docstring), the ONNX graph's bytes, or an openvino.Model built here.
        if isinstance(graph, Path):
            graph = self._core.read_model(str(graph))
        elif isinstance(graph, bytes):
            graph = self._core.read_model(io.BytesIO(graph))
        self._graph = graph
        self.compiled: dict[int, object] = {}  # CPU threads -> openvino.CompiledModel
        self.compiled_for(torch.get_num_threads())  # a graph OpenVINO cannot compile fails here

    def compiled_for(self, threads: int):
        """The model compiled to run on `threads` CPU threads."""
        if threads not in self.compiled:
            config = {"INFERENCE_PRECISION_HINT": self.precision, "INFERENCE_NUM_THREADS": int(threads),
                      "NUM_STREAMS": 1, "PERFORMANCE_HINT": "LATENCY", "ENABLE_CPU_PINNING": False}
            self.compiled[threads] = self._core.compile_model(self._graph, "CPU", config)
        return self.compiled[threads]

    @property
    def trainable(self) -> bool:
        return False

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        array = images.detach().float().cpu().contiguous().numpy()  # (B, 3, S, S)
        compiled = self.compiled_for(torch.get_num_threads())
        return torch.from_numpy(compiled(array)[0].copy())  # (B, P, D)


# What `quantized_graph` does, in the cache key: a change of recipe must not reuse old graphs.
_INT8_RECIPE = "nncf transformer performance-preset, calibration sample_batch(4, seeds 1 2) v1"


def quantized_graph(onnx_graph: Path | bytes, calibration: list[torch.Tensor]):
    """`onnx_graph` (the backbone's ONNX graph) quantised to int8 by NNCF, calibrated on
    `calibration` (normalised image batches): the path of its cached OpenVINO IR, or the
    openvino.Model itself where the cache cannot be written.

    A cached ONNX graph (a path) is quantised in a child process: NNCF's statistics for ViT-B-16
    took the process from 1.2 GB to a 2.9 GB peak and left it at 2.3 GB (Zen 4, December 8),
    over the 2 GB the analysis must stay under (`speed.MEMORY_BUDGET_MB`); the child's memory
    goes back when it ends, and reading its IR adds 0.4 GB. RuntimeError if quantising fails."""
    import hashlib
    import os
    import subprocess
    import sys
    import tempfile

    import numpy as np
    import openvino as ov

    from microau_gui.core.paths import cache_dir

    if not isinstance(onnx_graph, Path):  # the ONNX cache could not be written, nor can this one
        return _quantize(onnx_graph, _arrays(calibration), None)
    digest = hashlib.blake2b(f"{ov.__version__} {_nncf_version()} {_INT8_RECIPE}".encode(), digest_size=20)
    digest.update(onnx_graph.name.encode())  # a cached ONNX graph is named by its weights' digest
    folder = cache_dir("openvino-int8") / digest.hexdigest()
    if (folder / "backbone.xml").is_file():
        return folder / "backbone.xml"
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = tempfile.TemporaryDirectory(dir=folder.parent, prefix=".calibration-")
    except OSError as err:
        log.info("int8 graph not cached (%s); quantised in this process", err)
        return _quantize(onnx_graph, _arrays(calibration), None)
    with staging as tmp:
        np.savez(Path(tmp) / "calibration.npz", *_arrays(calibration))
        root = str(Path(__file__).resolve().parents[2])  # the folder that holds microau_gui
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))
        done = subprocess.run([sys.executable, "-m", __name__, str(onnx_graph),
                               str(Path(tmp) / "calibration.npz"), str(folder)],
                              capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0 or not (folder / "backbone.xml").is_file():
        lines = [line for line in done.stderr.splitlines() if line.strip()] or ["no message"]
        raise RuntimeError(f"int8 quantisation failed (exit {done.returncode}): {lines[-1][:200]}")
    return folder / "backbone.xml"


def _arrays(calibration: list[torch.Tensor]) -> list:
    return [images.detach().float().cpu().contiguous().numpy() for images in calibration]


def _nncf_version() -> str:
    from importlib.metadata import version

    return version("nncf")


def _quantize(onnx_graph: Path | bytes, arrays: list, folder: Path | None):
    """NNCF's int8 quantisation of `onnx_graph` calibrated on `arrays`; saved as `folder`'s
    OpenVINO IR (atomically: a reader sees all of it or none) when `folder` is given, else
    returned as an openvino.Model."""
    import nncf
    import openvino as ov

    from microau_gui.core.files import atomic_dir

    nncf.set_log_level(logging.ERROR)  # its progress bars would land in the CLI's output
    graph = ov.Core().read_model(str(onnx_graph) if isinstance(onnx_graph, Path) else io.BytesIO(onnx_graph))
    quantized = nncf.quantize(graph, nncf.Dataset(arrays), subset_size=len(arrays),
                              model_type=nncf.ModelType.TRANSFORMER)
    if folder is None:
        return quantized
    try:
        with atomic_dir(folder) as staging:
            ov.save_model(quantized, str(staging / "backbone.xml"), compress_to_fp16=False)
    except FileExistsError:  # another process cached the same graph meanwhile
        pass
    return folder / "backbone.xml"


def build_openvino_network(model: nn.Module, precision: str = "f32") -> nn.Module:
    """A copy of `model` (fp32 MicroAUCLIP, CPU) whose backbone runs under OpenVINO: `precision`
    "f32" (the "openvino" mode), "bf16" (OpenVINO's bf16) or "int8" (the NNCF-quantised graph
    at f32 precision for the float rest). The heads share their tensors with `model`; the copy
    does not hold its backbone weights."""
    from microau_gui.inference.ort import _images, cached_export
    from microau_gui.inference.speed import sample_batch

    model = model.float().eval().cpu()
    traced = _images(sample_batch(model, 4, seed=1))
    graph = cached_export(model, traced)
    if precision == "int8":  # calibrated on the traced pairs and on as many others
        graph = quantized_graph(graph, [traced, _images(sample_batch(model, 4, seed=2))])
        precision = "f32"
    backbone = model.backbone
    memo = {id(backbone): OpenVinoBackbone(graph, backbone, precision)}
    memo.update({id(tensor): tensor for tensor in model.parameters()})
    memo.update({id(tensor): tensor for tensor in model.buffers()})
    return copy.deepcopy(model, memo).eval()


if __name__ == "__main__":  # `quantized_graph`'s child process: ONNX path, calibration .npz, IR folder
    import sys

    import numpy as np

    with np.load(sys.argv[2]) as saved:
        _quantize(Path(sys.argv[1]), [saved[name] for name in saved.files], Path(sys.argv[3]))
