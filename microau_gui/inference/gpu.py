"""The GPU path: pinned-memory uploads, a decode + landmark producer overlapped with the model,
bf16 on CUDA, and batched throughput.

Owns: `pinned_upload`, `upload_pair_arrays`, `LandmarkedFrame`, `landmark_producer`,
`model_for_device`, `batched_throughput`. May import spotting (its background `prefetch`), model,
face, media and core (torch, numpy); no Qt.

Our specification (the paper says nothing about devices):
- Device choice is `model.device.pick_device`: "auto" takes CUDA when present, else the CPU;
  `Predictor.from_checkpoint(path, device="auto")` goes through it.
- On CUDA the network runs with bf16 weights and inputs when the GPU supports bf16
  (`inference.speed`, mode "bf16", chosen by the same parity check as on the CPU), else fp32.
- Host -> device copies come from page-locked (pinned) host memory with `non_blocking=True`, so
  the copy of batch k + 1 overlaps the model on batch k. Crops travel as uint8 (4x fewer bytes
  than float) and are normalised on the device (`MicroAUCLIP.prepare_images`).
- `landmark_producer` decodes frames and runs MediaPipe (tracking mode, its own graph) in a
  background thread, a bounded number of frames ahead, while the consumer thread runs the
  model: on a GPU the CPU work then hides behind the model, and on a 2-core CPU decoding and
  landmarks take one core while the model takes the other. Decoding (PyAV), MediaPipe and
  OpenCV release the GIL.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

from microau_gui.face.landmarks import Landmarks


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


@dataclass(frozen=True, eq=False)
class LandmarkedFrame:
    """A decoded frame and, when it was asked for, its tracking-mode landmarks."""

    frame_idx: int
    rgb: np.ndarray  # (H, W, 3) uint8, read-only
    landmarks: Landmarks | None  # None: not asked for this frame


def landmark_producer(frames: Iterable[tuple[int, np.ndarray]], needs: Callable[[int], bool] | None = None,
                      depth: int = 8) -> Iterator[LandmarkedFrame]:
    """Decode `frames` ((frame_idx, rgb) in stream order, e.g. `FrameSource.iter_frames`) and
    track the face in a background thread, at most `depth` frames ahead of the consumer.

    `needs(frame_idx)` says which frames get landmarks (default: all); it is called on the
    producer thread, so it may only read state the consumer does not rebind meanwhile (a set
    membership test is fine). The tracking graph lives on the producer thread too (MediaPipe
    graphs are not thread-safe). The producer's exception is
    re-raised in the consumer; leaving the loop early stops the producer and closes the graph.
    """
    from microau_gui.face.landmarks import FaceMesh
    from microau_gui.spotting.signals import prefetch

    def produce() -> Iterator[LandmarkedFrame]:
        mesh = FaceMesh(static=False)
        try:
            for frame_idx, rgb in frames:
                wanted = needs is None or needs(frame_idx)
                yield LandmarkedFrame(frame_idx, rgb, mesh.detect(rgb) if wanted else None)
        finally:
            mesh.close()

    return prefetch(produce(), depth=depth)


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
    from microau_gui.spotting.signals import prefetch

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
