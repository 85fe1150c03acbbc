"""The Predictor: a (reference, target) frame pair -> `core.types.FramePrediction`, ready to draw.

Owns: `Predictor`, `FramePair`, `warp_grid_to_image`, `regions_in_image`. May import training
(its pair preparation), model, face, core, inference's own `speed` and `gpu`, torch and numpy;
no Qt. This is the API the session's inference worker and the CLI call
(/work/helpers/CONTRACT_inference.md).

Preparation is training's, call for call, or the trained model would see other inputs than it
learned from: MediaPipe on the reference frame gives the landmarks; `pairs.samples.prepare_pair`
cuts both crops with the ONE similarity those landmarks define and measures the head-motion-free
Farneback flow between them (at the card's recorded flow crop size, `pairs.samples.checkpoint_prep_settings`); `pairs.samples.sample_masks`
rasterises the AU regions on the patch grid; `face.motion.flow_image` renders the flow; and
`MicroAUCLIP.prepare_images` normalises every image. Only then does the model run, under
`torch.inference_mode`.

Reuse across frames (our specification): many target frames share one reference (the onset of
an event, a fixed neutral frame, or the same sliding reference while scrubbing), so the
reference's landmarks and, for input modes that encode the reference ("diff", "apex+diff"), its
backbone tokens are kept in small LRU caches. They are keyed by the reference frame's content
(frame_idx plus a fingerprint of a pixel subsample, so the same index in another video is a miss)
and, for tokens, by the alignment transform too (tokens depend on the crop).

What comes back, in image coordinates of the *target* frame: AU probabilities; the GDA matrix;
the PTA attention as its patch grid (`pta_grid`) and warped into the image (`heatmap_box` + uint8
`heatmaps`, each AU scaled so its hottest pixel is 255); AU region polygons ("AU12/R", "AU12/L"
for the two halves of a lateral AU, "AU9" for a midline AU); the landmarks, face box and
`crop_to_img` of the alignment. Landmarks, regions and the face box are the *reference* frame's,
because that is where MediaPipe runs (as in training); the reference is at most a fraction of a
second away, so they sit within a micro-movement of the target's. No face in the reference ->
`FramePrediction(face_found=False)`, never an exception.

Speed modes are `inference.speed`'s ("fp32", "bf16", "int8", "ort"; `speed.SPEED_CHOICES` adds "auto").
`from_checkpoint(..., speed_mode="auto")`, what the window's inference worker uses, runs the
start-up choice `speed.choose_fastest_mode` on the loaded network: each faster mode is
converted, held to the parity check (max |delta p| from fp32 at most `speed.DEFAULT_TOLERANCE`
on a real face photo) and raced against fp32; the fastest mode that passes is kept and the fp32
network dropped. Bounded start-up cost: the check batch has the size the caller runs
(`check_batch_size`, 1 for the frame on screen), bf16 is not even run where one bf16 matrix
product is already more than twice slower than fp32 (CPUs without bf16 units), and the race's
repeats shrink to fit `_CHOICE_BUDGET_S` (the tiny demo model's whole choice takes well under a
second; ViT-B-16 on a 2-core AVX2 CPU a few seconds, on top of its load). The chosen mode is
`predictor.speed_mode` and how it was chosen `predictor.speed_choice` (`speed.SpeedChoice`).
The winner of an "auto" race is remembered per model version and machine
(`inference.speed_memory`), so later starts use the same arithmetic and find their cached rows,
unless it is another runtime's mode whose network the memory budget now refuses
(`speed.runtime_memory_veto`): then the race runs again.
An explicit mode is applied as asked (its parity is still measured and logged). Every forward
runs under `torch.inference_mode`, images in channels-last layout; on CUDA the crops travel
through pinned memory (`inference.gpu.pinned_upload`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from microau_gui.core.errors import UserError
from microau_gui.core.types import FramePrediction
from microau_gui.face.align import estimate_alignment, invert_affine, transform_points
from microau_gui.face.landmarks import FaceMesh, Landmarks
from microau_gui.face.motion import flow_image
from microau_gui.face.regions import au_polygons
from microau_gui.inference.speed import (SPEED_CHOICES, SpeedChoice, numerics_of, runtime_memory_veto,
                                         select_speed_mode)
from microau_gui.inference.speed_memory import memory_key, recall_mode, remember_mode
from microau_gui.model.card import ModelCard
from microau_gui.pairs.samples import checkpoint_prep_settings, prepare_pair, sample_masks

log = logging.getLogger(__name__)

_LANDMARK_CACHE = 16  # references whose landmarks are kept (events, fixed frames, scrubbing)
_TOKEN_CACHE = 8  # references whose backbone tokens are kept ("diff" input modes)
_FINGERPRINT_STEP = 8  # pixel stride of the subsample that identifies a reference frame
# Heatmaps are drawn at most this many px a side and stretched over their box by the views: the
# attention is a 7x7 to 14x14 grid, so more pixels add nothing but time (a 480 px face took
# ~40 ms per frame at full size on 2 cores, too slow to redraw cached frames while playing).
HEATMAP_MAX_PX = 192
# Time the "auto" race may take beyond its fixed part (one fp32 warm-up and two timed runs,
# each candidate's conversion, warm-up and first run): repeats are cut to fit, at least one.
_CHOICE_BUDGET_S = 2.0


@dataclass(frozen=True, eq=False)
class FramePair:
    """One prediction request for `Predictor.predict_batch`."""

    target_rgb: np.ndarray  # (H, W, 3) uint8 full frame being reviewed
    reference_rgb: np.ndarray  # (H, W, 3) uint8 full frame the motion is measured against
    frame_idx: int
    reference_idx: int
    reference_landmarks: Landmarks | None = None  # None: the predictor runs MediaPipe (cached)
    # the target's own landmarks when the caller has them (batch analysis tracks every frame):
    # a target without a face then gets face_found=False; None: the target is not checked
    target_landmarks: Landmarks | None = None


@dataclass(frozen=True, eq=False)
class _Prepared:
    """A pair cut and measured exactly as in training."""

    landmarks: Landmarks  # reference landmarks in image px
    reference: np.ndarray | None  # (S, S, 3) uint8 crop; None when the mode reads only the flow
    target: np.ndarray | None  # (S, S, 3) uint8 crop, same transform; None likewise
    flow_rgb: np.ndarray | None  # (S, S, 3) uint8 rendered flow; None when the mode needs none
    masks: np.ndarray  # (n_au, P) bool
    img_to_crop: np.ndarray  # (2, 3)
    reference_key: tuple


class Predictor:
    """Maps a (reference, target) frame pair to a FramePrediction (see the module docstring).

    Not thread-safe: create and use one per worker thread. torch and open_clip load on creation.
    """

    def __init__(self, model, card, checkpoint: Path, device, speed_choice: SpeedChoice):
        self.model = model
        self.checkpoint = Path(checkpoint)
        self.card: ModelCard = card
        # The one version identity (#15 D6): the card's full version, "name@hash" over every
        # output-changing field, as the store's registry keys it (ModelVersion.version).
        self.model_version: str = card.version
        self.vocab: tuple[str, ...] = tuple(card.vocab)
        self.device: str = device.type
        self.speed_mode: str = speed_choice.mode  # the mode the network runs in ("fp32", "bf16", "int8")
        self.speed_choice: SpeedChoice = speed_choice  # how it was chosen (timings, parity), no network
        # the class of arithmetic its rows are cached under (store.predictions): "fp32" or the
        # approximate mode's name
        self.numerics: str = numerics_of(speed_choice.mode)
        self.pretrained_loaded: bool = bool(card.pretrained_loaded)
        self.is_demo: bool = card.is_demo
        self.prep = checkpoint_prep_settings(card)
        self._torch_device = device
        self._mesh: FaceMesh | None = None
        self._landmarks: OrderedDict[tuple, Landmarks] = OrderedDict()
        self._reference_tokens: OrderedDict[tuple, object] = OrderedDict()

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, device: str = "auto", speed_mode: str = "auto",
                        *, check_batch_size: int = 1) -> "Predictor":
        """Load a checkpoint folder; UserError (one line) for a missing, corrupt or wrong one, or
        an unknown speed mode.

        speed_mode: "auto" (the fastest mode that passes the parity check, see the module
        docstring) or one of `speed.SPEED_MODES`. check_batch_size: pairs per model call the
        caller will run (1 for the frame on screen, the `--batch` of an analysis), the size the
        "auto" race is run at.
        """
        from microau_gui.model.checkpoint import load_checkpoint
        from microau_gui.model.device import pick_device

        requested = (speed_mode or "auto").strip().lower()
        if requested not in SPEED_CHOICES:
            raise UserError(f"speed mode {speed_mode!r} is unknown; use one of {', '.join(SPEED_CHOICES)}")
        torch_device = pick_device(device)
        model, card = load_checkpoint(path, device=torch_device)
        batch_size = max(1, int(check_batch_size))
        choice = None
        if requested == "auto":  # one machine keeps one arithmetic per model: see speed_memory
            key = memory_key(card.version, torch_device, batch_size)
            remembered = recall_mode(key)
            if remembered is not None and runtime_memory_veto(model, remembered) is not None:
                remembered = None  # remembered before the memory budget, or memory is short now
            if remembered is not None:
                fast, choice = select_speed_mode(model, remembered, torch_device, batch_size=batch_size)
                if choice.diffs.get(remembered, 0.0) > choice.tolerance:
                    choice = None  # its parity no longer holds on this check: race again
                else:
                    model, choice = fast, dataclasses.replace(choice, remembered=True)
        if choice is None:
            model, choice = select_speed_mode(model, requested, torch_device,
                                              batch_size=batch_size, budget_s=_CHOICE_BUDGET_S)
            if requested == "auto":
                remember_mode(key, choice.mode)
        folder = Path(path)
        # The choice keeps no network: the Predictor owns the one it runs, and close() frees it.
        return cls(model.eval(), card, folder.parent if folder.is_file() else folder, torch_device,
                   dataclasses.replace(choice, model=None))

    # -- sizes -------------------------------------------------------------------------------

    @property
    def image_size(self) -> int:
        return int(self.model.image_size)

    @property
    def grid_size(self) -> int:
        return int(self.model.grid_size)

    # -- public prediction API ---------------------------------------------------------------

    def predict(self, target_rgb: np.ndarray, reference_rgb: np.ndarray, frame_idx: int,
                reference_idx: int) -> FramePrediction:
        """One pair, everything filled in for drawing (see the module docstring)."""
        return self.predict_batch([FramePair(target_rgb, reference_rgb, frame_idx, reference_idx)])[0]

    def predict_batch(self, pairs: Sequence[FramePair], with_overlays: bool = True) -> list[FramePrediction]:
        """Several pairs through the model in one batch, in order.

        with_overlays=False leaves out `heatmap_box`/`heatmaps` and `regions_img` (they are derived
        from `pta_grid`, `crop_to_img` and the landmarks, and not kept by the predictions cache),
        which is what batch analysis wants.
        """
        return self.predict_prepared(pairs, self.prepare_batch(pairs), with_overlays)

    def prepare_batch(self, pairs: Sequence[FramePair]) -> list:
        """The CPU half of `predict_batch`: each pair's crops, flow image and region masks (None
        where no face was found). Touches no state the model half uses, so the analysis pipeline
        prepares the next batch on another thread while the model runs this one (its pairs carry
        their landmarks, so the predictor's own landmark cache is not touched)."""
        return [self._prepare(pair) for pair in pairs]

    def predict_prepared(self, pairs: Sequence[FramePair], prepared: list,
                         with_overlays: bool = True) -> list[FramePrediction]:
        """The model half of `predict_batch`, on `prepare_batch(pairs)`."""
        ready = [p for p in prepared if p is not None]
        outputs = self._run_model(ready) if ready else None
        results = []
        row = 0
        for pair, prep in zip(pairs, prepared):
            if prep is None:
                results.append(FramePrediction(
                    frame_idx=int(pair.frame_idx), reference_idx=int(pair.reference_idx),
                    model_version=self.model_version, vocab=self.vocab, face_found=False))
                continue
            results.append(self._prediction(pair, prep, outputs, row, with_overlays))
            row += 1
        return results

    def close(self) -> None:
        """Release MediaPipe and the caches; the predictor cannot be used afterwards."""
        if self._mesh is not None:
            self._mesh.close()
            self._mesh = None
        self._landmarks.clear()
        self._reference_tokens.clear()
        self.model = None

    def __enter__(self) -> "Predictor":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- preparation (training's functions) ------------------------------------------------

    def _reference_key(self, reference_rgb: np.ndarray, reference_idx: int) -> tuple:
        sample = np.ascontiguousarray(reference_rgb[::_FINGERPRINT_STEP, ::_FINGERPRINT_STEP])
        digest = hashlib.blake2b(sample.tobytes(), digest_size=12).digest()
        return int(reference_idx), reference_rgb.shape, digest

    def reference_landmarks(self, reference_rgb: np.ndarray, reference_idx: int) -> Landmarks:
        """MediaPipe landmarks of a reference frame (static mode), from the cache when known."""
        key = self._reference_key(reference_rgb, reference_idx)
        return self._cached_landmarks(key, reference_rgb)

    def _cached_landmarks(self, key: tuple, reference_rgb: np.ndarray) -> Landmarks:
        known = self._landmarks.get(key)
        if known is not None:
            self._landmarks.move_to_end(key)
            return known
        if self._mesh is None:
            self._mesh = FaceMesh(static=True)
        found = self._mesh.detect(np.asarray(reference_rgb))
        self._landmarks[key] = found
        while len(self._landmarks) > _LANDMARK_CACHE:
            self._landmarks.popitem(last=False)
        return found

    def _prepare(self, pair: FramePair) -> _Prepared | None:
        target_rgb, reference_rgb = np.asarray(pair.target_rgb), np.asarray(pair.reference_rgb)
        if target_rgb.shape != reference_rgb.shape:
            raise ValueError(f"target {target_rgb.shape} and reference {reference_rgb.shape} frames "
                             "differ in size; they must come from one video")
        key = self._reference_key(reference_rgb, pair.reference_idx)
        landmarks = pair.reference_landmarks
        if landmarks is None:
            landmarks = self._cached_landmarks(key, reference_rgb)
        if not landmarks or (pair.target_landmarks is not None and not pair.target_landmarks):
            return None
        config = self.model.config
        reference, target, flow, xy_crop = prepare_pair(reference_rgb, target_rgb, landmarks.xy_img, self.prep,
                                                        crops=config.needs_target or config.needs_reference)
        size, grid = self.image_size, self.grid_size
        return _Prepared(
            landmarks=landmarks, reference=reference, target=target,
            flow_rgb=flow_image(flow) if config.needs_flow else None,
            masks=sample_masks(xy_crop, size, grid, self.vocab),
            # the transform prepare_pair cut both crops with (it returns only the crops)
            img_to_crop=estimate_alignment(landmarks.xy_img, size),
            reference_key=key,
        )

    # -- the model ---------------------------------------------------------------------------

    def _run_model(self, ready: list[_Prepared]):
        import torch

        from microau_gui.model.network import PairTokens

        from microau_gui.inference.gpu import pinned_upload

        model = self.model
        config = model.config
        device = self._torch_device

        def images(crops: list[np.ndarray]) -> torch.Tensor:
            # uint8 crops travel (pinned on CUDA) and are normalised on the device
            return model.prepare_images(pinned_upload(np.stack(crops), device))  # (B, 3, S, S)

        with torch.inference_mode():
            masks = pinned_upload(np.stack([p.masks for p in ready]), device)  # (B, n_au, P)
            parts: list[tuple[str, torch.Tensor]] = []
            if config.needs_target:
                parts.append(("target", images([p.target for p in ready])))
            if config.needs_flow:
                parts.append(("flow", images([p.flow_rgb for p in ready])))
            missing: dict[tuple, np.ndarray] = {}
            if config.needs_reference:
                for p in ready:
                    token_key = self._token_key(p)
                    if token_key not in self._reference_tokens and token_key not in missing:
                        missing[token_key] = p.reference
                if missing:
                    parts.append(("reference", images(list(missing.values()))))
            # channels-last: the layout the speed modes store the patch embedding in
            batch_images = torch.cat([image for _, image in parts], dim=0).contiguous(
                memory_format=torch.channels_last)  # (sum of B_i, 3, S, S)
            tokens = model.encode_tokens(batch_images)  # (sum of B_i, P, D)
            split = dict(zip([name for name, _ in parts],
                             tokens.split([image.shape[0] for _, image in parts], dim=0)))
            reference_tokens = None
            if config.needs_reference:
                for token_key, new_tokens in zip(missing, split.get("reference", ())):
                    self._reference_tokens[token_key] = new_tokens
                for p in ready:
                    self._reference_tokens.move_to_end(self._token_key(p))
                reference_tokens = torch.stack(
                    [self._reference_tokens[self._token_key(p)] for p in ready])  # (B, P, D)
                while len(self._reference_tokens) > max(_TOKEN_CACHE, len(missing)):
                    self._reference_tokens.popitem(last=False)
            output = model.forward_tokens(
                PairTokens(target=split.get("target"), reference=reference_tokens, flow=split.get("flow")),
                masks)
            n_au, grid = len(self.vocab), self.grid_size
            pta = output.pta_attention.float().cpu().numpy()  # (B, n_au, P)
            return {
                "probs": output.probs.float().cpu().numpy(),  # (B, n_au)
                "gda": output.gda_attention.float().cpu().numpy(),  # (B, n_au, n_au)
                "pta": pta.reshape(len(ready), n_au, grid, grid),  # (B, n_au, g, g)
            }

    @staticmethod
    def _token_key(prepared: _Prepared) -> tuple:
        return prepared.reference_key, np.round(prepared.img_to_crop, 6).tobytes()

    # -- back to image coordinates -----------------------------------------------------------

    def _prediction(self, pair: FramePair, prep: _Prepared, outputs: dict, row: int,
                    with_overlays: bool) -> FramePrediction:
        crop_to_img = invert_affine(prep.img_to_crop)
        pta_grid = outputs["pta"][row].astype(np.float32)  # (n_au, g, g)
        heatmap_box = heatmaps = None
        regions: dict[str, np.ndarray] = {}
        if with_overlays:
            height, width = np.asarray(pair.target_rgb).shape[:2]
            heatmap_box, heatmaps = warp_grid_to_image(pta_grid, crop_to_img, self.image_size, (height, width))
            regions = regions_in_image(prep.landmarks.xy_img, self.vocab)
        return FramePrediction(
            frame_idx=int(pair.frame_idx), reference_idx=int(pair.reference_idx),
            model_version=self.model_version, vocab=self.vocab, face_found=True,
            probs=outputs["probs"][row].astype(np.float32), gda=outputs["gda"][row].astype(np.float32),
            pta_grid=pta_grid, heatmap_box=heatmap_box, heatmaps=heatmaps, regions_img=regions,
            landmarks_img=np.asarray(prep.landmarks.xy_img, np.float32), face_box=prep.landmarks.box,
            crop_to_img=crop_to_img,
        )


def warp_grid_to_image(grid: np.ndarray, crop_to_img: np.ndarray, size: int,
                       image_hw: tuple[int, int]) -> tuple[tuple[int, int, int, int] | None, np.ndarray | None]:
    """Patch-grid maps `(n_au, g, g)` -> (box x0, y0, x1, y1 in image px, uint8 `(n_au, h, w)`).

    The box is the aligned crop's bounding box, clipped to the image. The maps cover the box at
    one scale `s = w / (x1 - x0) = h / (y1 - y0)` (about), 1 unless the box is larger than
    HEATMAP_MAX_PX: map pixel (u, v) is centred on image px (x0 + (u + 0.5) / s - 0.5, ...).
    Values are interpolated bilinearly between patch centres, zero outside the crop square, and
    each AU's map is scaled so its largest pixel is 255. (None, None) when the crop lies outside
    the image.
    """
    n_au, g = grid.shape[0], grid.shape[1]
    height, width = image_hw
    corners_crop = np.array([[-0.5, -0.5], [size - 0.5, -0.5], [size - 0.5, size - 0.5], [-0.5, size - 0.5]])
    corners_img = transform_points(crop_to_img, corners_crop)  # (4, 2)
    x0, y0 = np.floor(corners_img.min(axis=0)).astype(int)
    x1, y1 = np.ceil(corners_img.max(axis=0)).astype(int)
    x0, y0, x1, y1 = max(0, int(x0)), max(0, int(y0)), min(width, int(x1)), min(height, int(y1))
    if x1 <= x0 or y1 <= y0:
        return None, None
    scale = min(1.0, HEATMAP_MAX_PX / max(x1 - x0, y1 - y0))  # map px per image px
    out_w, out_h = max(1, round((x1 - x0) * scale)), max(1, round((y1 - y0) * scale))
    cell = size / g
    # Cell j covers crop px [j*cell - 0.5, (j+1)*cell - 0.5]; its centre is j*cell + (cell-1)/2.
    grid_to_crop = np.array([[cell, 0, (cell - 1) / 2], [0, cell, (cell - 1) / 2], [0, 0, 1]])
    crop_to_box = np.vstack([crop_to_img, [0, 0, 1]])
    crop_to_box[:2, 2] -= (x0, y0)
    # Box px x (a pixel centre) -> map px (x + 0.5) * scale - 0.5; the identity at scale 1.
    box_to_map = np.array([[scale, 0, 0.5 * scale - 0.5], [0, scale, 0.5 * scale - 0.5], [0, 0, 1]])
    grid_to_map = (box_to_map @ crop_to_box @ grid_to_crop)[:2]  # (2, 3)
    warped = cv2.warpAffine(np.ascontiguousarray(grid.transpose(1, 2, 0), np.float32), grid_to_map,
                            (out_w, out_h), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_REPLICATE)  # (h, w, n_au)
    warped = warped.reshape(out_h, out_w, n_au)
    # Zero outside the crop square (replicated borders only fill the half cell at its edge).
    vs, us = np.mgrid[0:out_h, 0:out_w].astype(np.float32)
    xs, ys = x0 + (us + 0.5) / scale - 0.5, y0 + (vs + 0.5) / scale - 0.5  # (h, w) image px
    img_to_crop = invert_affine(crop_to_img)
    xs_crop = img_to_crop[0, 0] * xs + img_to_crop[0, 1] * ys + img_to_crop[0, 2]  # (h, w)
    ys_crop = img_to_crop[1, 0] * xs + img_to_crop[1, 1] * ys + img_to_crop[1, 2]
    inside = (xs_crop >= -0.5) & (xs_crop <= size - 0.5) & (ys_crop >= -0.5) & (ys_crop <= size - 0.5)
    warped = np.clip(warped, 0, None) * inside[:, :, None]  # (h, w, n_au)
    peak = warped.reshape(-1, n_au).max(axis=0)  # (n_au,)
    heat = np.rint(warped / np.where(peak > 0, peak, 1) * 255).astype(np.uint8)  # (h, w, n_au)
    return (x0, y0, x1, y1), np.ascontiguousarray(heat.transpose(2, 0, 1))


def regions_in_image(xy_img: np.ndarray, vocab: Sequence[str]) -> dict[str, np.ndarray]:
    """AU region polygons in image px: "AU12/R", "AU12/L" for lateral AUs, "AU9" for midline ones."""
    regions: dict[str, np.ndarray] = {}
    for code in vocab:
        for side, polygon in au_polygons(code, xy_img).items():
            key = code if side == "B" else f"{code}/{side}"
            regions[key] = np.asarray(polygon, np.float32)
    return regions
