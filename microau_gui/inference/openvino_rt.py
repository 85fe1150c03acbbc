"""The OpenVINO speed mode: the visual backbone's ONNX graph compiled by OpenVINO for the CPU.

Owns: `openvino_available`, `OpenVinoBackbone`, `build_openvino_network`. May import model,
core and `inference.ort` (the ONNX export and its cache; torch, numpy, openvino); no Qt.
`inference.speed` makes it the speed mode "openvino", which the start-up race may choose.

What runs: the same backbone graph "ort" runs (`ort.cached_export`: normalised images -> patch
tokens, batch axis dynamic), read from the export cache's file (OpenVINO maps its weights; read
from bytes in memory, ViT-B/16's load peaked 1 GB higher), compiled by OpenVINO's CPU plugin; the PTA/GDA heads stay torch fp32
(see `inference.ort` for why). Precision: OpenVINO's CPU plugin runs bf16 by default on CPUs
with bf16 units (AVX512-BF16/AMX), which would make this an approximate mode silently; the
inference precision is pinned to f32, so "openvino" is an exact mode (numeric class "fp32" in
the predictions cache, `speed.numerics_of`). Threads: one compiled model per torch thread count
(as `ort.OrtBackbone`), one stream, no core pinning (the cores are shared with the decoder,
MediaPipe and the window).

Optional dependency: openvino (the `fast` extra). Without it `openvino_available()` is False and
the mode is not offered.
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from torch import nn


def openvino_available() -> bool:
    """True when openvino imports here (the `fast` extra is installed)."""
    try:
        import openvino  # noqa: F401
    except ImportError:
        return False
    return True


class OpenVinoBackbone(nn.Module):
    """A backbone whose forward (normalised images -> patch tokens) runs an OpenVINO compiled model."""

    def __init__(self, onnx_model: Path | bytes, source: nn.Module, precision: str = "f32"):
        super().__init__()
        import io

        import openvino as ov

        # the sizes the network reads from its backbone, taken from the exported one
        self.image_size, self.grid_size = int(source.image_size), int(source.grid_size)
        self.n_patches, self.embed_dim = int(source.n_patches), int(source.embed_dim)
        self.precision = precision
        self._core = ov.Core()
        # A path is mapped, not parsed into memory (see the module docstring).
        self._graph = self._core.read_model(str(onnx_model) if isinstance(onnx_model, Path)
                                            else io.BytesIO(onnx_model))
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


def build_openvino_network(model: nn.Module, precision: str = "f32") -> nn.Module:
    """A copy of `model` (fp32 MicroAUCLIP, CPU) whose backbone runs under OpenVINO at
    `precision` ("f32": the speed mode; "bf16": measured by the bench only). The heads share
    their tensors with `model`; the copy does not hold its backbone weights."""
    from microau_gui.inference.ort import _images, cached_export
    from microau_gui.inference.speed import sample_batch

    model = model.float().eval().cpu()
    graph = cached_export(model, _images(sample_batch(model, 4, seed=1)))
    backbone = model.backbone
    memo = {id(backbone): OpenVinoBackbone(graph, backbone, precision)}
    memo.update({id(tensor): tensor for tensor in model.parameters()})
    memo.update({id(tensor): tensor for tensor in model.buffers()})
    return copy.deepcopy(model, memo).eval()
