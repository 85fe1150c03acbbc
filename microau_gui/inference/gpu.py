"""The GPU path: pinned-memory uploads, bf16 on CUDA, and batched throughput.

Owns: `pinned_upload`, `upload_pair_arrays`, `model_for_device`, `batched_throughput`. May
import model, face, media (its background `prefetch`) and core (torch, numpy); no Qt.

Our specification (the paper says nothing about devices):
- Device choice is `model.device.pick_device`: "auto" takes CUDA when present, else the CPU;
  `Predictor.from_checkpoint(path, device="auto")` goes through it.
- On CUDA the network runs with bf16 weights and inputs when the GPU supports bf16
  (`inference.speed`, mode "bf16", chosen by the same parity check as on the CPU), else fp32.
- Host -> device copies come from page-locked (pinned) host memory with `non_blocking=True`, so
  the copy of batch k + 1 overlaps the model on batch k. Crops travel as uint8 (4x fewer bytes
  than float) and are normalised on the device (`MicroAUCLIP.prepare_images`).
- Decoding and landmarks overlap the model in a producer thread of the analysis pipeline
  (`inference.pipeline.landmarked_frames`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import numpy as np
import torch


def pinned_upload(array: np.ndarray | torch.Tensor, device: torch.device | str) -> torch.Tensor:
    """A host array on `device`: through pinned memory and an asynchronous copy on CUDA."""
    device = torch.device(device)
    tensor = torch.as_tensor(np.ascontiguousarray(array) if isinstance(array, np.ndarray) else array)
    if device.type != "cuda":
        return tensor.to(device)
    return tensor.pin_memory().to(device, non_blocking=True)


def upload_pair_arrays(model, arrays: dict[str, np.ndarray]):
    """Host arrays of one batch -> a `PairBatch` on the model's device, in the model's dtype.

    `arrays`: "masks" bool `(B, n_au, P)` plus the uint8 crops `(B, S, S, 3)` the input mode
    needs under "target", "reference" and/or "flow" (the rendered flow image).
    """
    from microau_gui.model.network import PairBatch

    device = model.log_tau.device
    images = {name: model.prepare_images(pinned_upload(arrays[name], device))
              for name in ("target", "reference", "flow") if arrays.get(name) is not None}
    return PairBatch(masks=pinned_upload(arrays["masks"], device), **images)


def model_for_device(model, device: torch.device | str, speed_mode: str = "auto"):
    """(the network ready to run on `device`, `speed.SpeedChoice`) for an fp32 `model`.

    On CUDA "auto" races fp32 against bf16 weights with the parity check of `inference.speed`.
    """
    from microau_gui.inference.speed import select_speed_mode

    return select_speed_mode(model.to(device), speed_mode, device)


def batched_throughput(model, batches: Iterable[dict[str, np.ndarray]], depth: int = 2
                       ) -> tuple[int, float, np.ndarray]:
    """Run host batches (see `upload_pair_arrays`) produced in a background thread through
    `model`; returns (frames, seconds, probabilities `(frames, n_au)`).

    The producer prepares batch k + 1 while the model runs batch k; on CUDA the upload is
    asynchronous and the probabilities are copied back once, at the end.
    """
    from microau_gui.media.prefetch import prefetch

    device = model.log_tau.device
    outputs: list[torch.Tensor] = []
    n_frames = 0
    started = time.perf_counter()
    with torch.inference_mode():
        for arrays in prefetch(iter(batches), depth=depth):
            output = model(upload_pair_arrays(model, arrays))
            outputs.append(output.probs)
            n_frames += int(output.probs.shape[0])
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    seconds = time.perf_counter() - started
    probs = torch.cat(outputs).float().cpu().numpy() if outputs else np.zeros((0, model.config.n_au))
    return n_frames, seconds, probs
