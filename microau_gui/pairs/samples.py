"""Prepared pairs: aligned onset/apex crops, optical flow, landmarks and labels, cached on disk.

Owns: `PrepSettings`, `PairSample`, `PreparedSet`, `prepare_pair`, `prepare_samples`,
`PairCache`, `au_labels`, `labels_matrix`, `sample_masks`, `training_data_hash`,
`checkpoint_prep_settings`, `save_npz`, `DEFAULT_FLOW_SIZE`, `DEFAULT_FLOW_METHOD`, `PREP_VERSION`. May import core, face and
media (numpy, OpenCV); no torch, no Qt. Training and inference both use it, so a pair is cut
and its motion measured exactly the same way in both.

What a sample is (DESIGN.md section 1, our specification): the coded expression's onset frame is
the *reference* and its apex frame the *target*. Face Mesh runs on the reference frame only and
its landmarks define ONE similarity transform that cuts both crops (`face.pair.align_pair`):
aligning each frame by its own landmarks would add MediaPipe jitter as large as the movement.
The onset-to-apex Farneback flow (`face.motion.dense_flow`) is measured between the two crops
and the residual head motion is removed by a similarity fit on the face
(`face.motion.remove_global_motion` weighted by the landmark hull), as the spotter and the
synthetic generator's realism test measure it. The flow-SVM baseline pools this same flow per
AU region, so every method sees the same motion. Methods in `face.motion.FACE_ONLY_FLOW_METHODS`
(the student's "farneback-fast") then keep motion only inside that hull: with one iteration per
level, Farneback sometimes diverges in a textureless background corner (a saturated blob up to
20 px), and the student, a ViT whose tokens all attend to one another, lost AU5 on 2 of the 8
held-out pairs where its teacher saw it (per-AU F1 against the teacher 0.86 -> 1.00, 40-clip
students on 120 held-out pairs of subject 03). Farneback's own pairs keep their background
(checkpoints were trained on them).

`flow_size`: the flow may be measured on a larger crop (cut with the same transform, scaled)
and then resampled to the model's crop, its vectors rescaled to model-crop pixels. Farneback
resolves sub-pixel motion better when the face is not downsampled first, which matters for
0.25-1.5 px movements on a 112 px crop.

Labels are bilateral occurrence over the model vocabulary: L12 and R12 both make AU12 positive
(the model predicts occurrence; laterality is an annotation attribute). AUs the coder marked
uncertain (SAMM `ref(..)`, `(X or Y)`) are not counted as positives.

Cache: MediaPipe and Farneback cost far more than a training epoch, so each prepared pair is
stored as an `.npz` named by the SHA-256 of (media path, its modification stamp, onset, apex,
sizes, `PREP_VERSION`). Bump `PREP_VERSION` whenever alignment or flow computation changes.
Labels are never cached: they come from the sample each run, so corrected labels take effect
without re-preparing.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from microau_gui.core.au import au_info
from microau_gui.core.aus import AUCode
from microau_gui.core.errors import UserError
from microau_gui.core.files import write_atomically
from microau_gui.core.progress import Progress, ShouldCancel, check_cancel
from microau_gui.core.types import Sample
from microau_gui.face.landmarks import FaceMesh
from microau_gui.face.motion import FACE_ONLY_FLOW_METHODS, FLOW_METHODS, dense_flow, remove_global_motion
from microau_gui.face.align import estimate_alignment, transform_points
from microau_gui.face.pair import align_pair
from microau_gui.face.regions import region_masks

log = logging.getLogger(__name__)

# Bump when anything that changes a prepared pair changes (alignment, flow parameters ...).
PREP_VERSION = "pair-v1 (face.align eye-centre similarity, Farneback + hull similarity removal)"

# The flow method new training runs use (`face.motion.FLOW_METHODS`); a checkpoint whose card
# names none was trained on Farneback pairs and keeps them (`checkpoint_prep_settings`).
DEFAULT_FLOW_METHOD = "farneback"

# Flow is measured on a crop of at least this side, then resampled to the model's crop (see
# `flow_size` above): sub-pixel movements survive better than when measured on a 112 px crop.
DEFAULT_FLOW_SIZE = 224


@dataclass(frozen=True)
class PrepSettings:
    """How pairs are cut and their motion measured; part of the cache key."""

    size: int  # side of the aligned crops, px (the model's image size)
    flow_size: int | None = None  # side of the crop the flow is measured on; None = `size`
    flow_method: str = "farneback"  # `face.motion.FLOW_METHODS`

    def __post_init__(self) -> None:
        if self.flow_method not in FLOW_METHODS:
            raise UserError(f"flow method {self.flow_method!r} is unknown; use one of {', '.join(FLOW_METHODS)}")
        if self.size < 16:
            raise UserError(f"crop size {self.size} px is too small; use at least 16")
        if self.flow_size is not None and self.flow_size < 16:
            raise UserError(f"flow size {self.flow_size} px is too small; use at least 16")

    @property
    def flow_side(self) -> int:
        return self.flow_size or self.size

    def record(self) -> dict:
        """These settings as a card records them (`training_settings["prep"]`, read back by
        `checkpoint_prep_settings`; the model version covers it). The flow method is written
        only when it is not Farneback, so a checkpoint made the old way keeps its version."""
        record = {"size": self.size, "flow_size": self.flow_side, "version": PREP_VERSION}
        if self.flow_method != "farneback":
            record["flow_method"] = self.flow_method
        return record


def checkpoint_prep_settings(card) -> PrepSettings:
    """How a checkpoint's training pairs were cut, so evaluation, inference and fine-tuning cut
    theirs the same way: the card's `training_settings["prep"]` (crop and flow size), else the
    model's crop with the flow measured as `train` does by default. `card` is a
    `model.card.ModelCard` (read by attribute; this floor does not import the model)."""
    prep = (card.training_settings or {}).get("prep") or {}
    if prep.get("version", PREP_VERSION) != PREP_VERSION:
        log.warning("checkpoint %s was trained on pairs prepared by %r; this version prepares them "
                    "by %r, so its scores may differ", card.name, prep.get("version"), PREP_VERSION)
    size = int(card.image_size)
    return PrepSettings(size=size, flow_size=int(prep.get("flow_size") or max(size, DEFAULT_FLOW_SIZE)),
                        flow_method=str(prep.get("flow_method") or "farneback"))


@dataclass(frozen=True, eq=False)
class PairSample:
    """One prepared expression: the pair the model sees plus the labels it learns."""

    sample: Sample  # the coded expression (subject, clip, AUs, emotion ...)
    reference: np.ndarray  # (S, S, 3) uint8 RGB onset crop
    target: np.ndarray  # (S, S, 3) uint8 RGB apex crop, same transform as `reference`
    flow: np.ndarray  # (S, S, 2) float32 onset->apex flow (u right, v down), crop px, head motion removed
    xy_crop: np.ndarray  # (478, 2) float32 onset landmarks in crop px

    @property
    def subject(self) -> str:
        return self.sample.subject

    @property
    def size(self) -> int:
        return int(self.reference.shape[0])


@dataclass(frozen=True, eq=False)
class PreparedSet:
    """Every prepared pair of a dataset and the samples that could not be prepared."""

    pairs: tuple[PairSample, ...]
    skipped: tuple[tuple[Sample, str], ...] = ()  # (sample, reason)
    n_cached: int = 0  # pairs read from the cache instead of computed
    settings: PrepSettings | None = None

    @property
    def subjects(self) -> tuple[str, ...]:
        return tuple(sorted({p.subject for p in self.pairs}))


def au_labels(aus: Sequence[AUCode], vocab: Sequence[str]) -> np.ndarray:
    """Bilateral occurrence `(n_au,)` uint8 of coded AUs over `vocab` (uncertain codes left out)."""
    index = {au_info(code).number: k for k, code in enumerate(vocab)}
    labels = np.zeros(len(vocab), np.uint8)
    for code in aus:
        if code.uncertain:
            continue
        k = index.get(code.number)
        if k is not None:
            labels[k] = 1
    return labels


def labels_matrix(pairs: Sequence[PairSample], vocab: Sequence[str]) -> np.ndarray:
    """`(N, n_au)` uint8 labels of prepared pairs."""
    if not pairs:
        return np.zeros((0, len(vocab)), np.uint8)
    return np.stack([au_labels(p.sample.aus, vocab) for p in pairs])


def sample_masks(xy_crop: np.ndarray, size: int, grid: int, vocab: Sequence[str]) -> np.ndarray:
    """Bool `(n_au, grid * grid)` region masks on the model's patch grid (see face.regions)."""
    return region_masks(xy_crop, size, grid, list(vocab))


def face_hull_mask(xy_crop: np.ndarray, size: int) -> np.ndarray:
    """uint8 `(size, size)`: 1 inside the convex hull of the landmarks."""
    mask = np.zeros((size, size), np.uint8)
    hull = cv2.convexHull(np.asarray(xy_crop, np.float32)).astype(np.int32).reshape(-1, 2)
    cv2.fillPoly(mask, [hull], 1)
    return mask


def measure_flow(reference: np.ndarray, target: np.ndarray, xy_crop: np.ndarray,
                 method: str = "farneback") -> np.ndarray:
    """Onset->apex flow `(S, S, 2)` between two crops of one transform, head motion removed."""
    flow = dense_flow(reference, target, method)
    hull = face_hull_mask(xy_crop, reference.shape[0])
    flow = remove_global_motion(flow, weight=hull)
    if method in FACE_ONLY_FLOW_METHODS:
        flow *= hull[..., None]
    return flow


def prepare_pair(reference_rgb: np.ndarray, target_rgb: np.ndarray, xy_img: np.ndarray,
                 settings: PrepSettings, *, crops: bool = True) -> tuple:
    """Crops, flow and landmarks of one frame pair; `xy_img` (478, 2) are the reference's landmarks.

    Returns (reference crop, target crop, flow, xy_crop) as stored in a `PairSample`.
    crops=False: the two crops at the model's size are not cut (None) when the flow is measured
    at another size, for a model that reads only the flow (dense traces cut a pair per frame);
    flow and xy_crop are the same either way.
    """
    size = settings.size
    flow_side = settings.flow_side
    if crops or flow_side == size:
        pair = align_pair(reference_rgb, target_rgb, xy_img, size)
        reference, target, xy_crop = pair.reference, pair.target, pair.xy_crop
    else:
        reference = target = None
        xy_crop = transform_points(estimate_alignment(xy_img, size), xy_img)
    if flow_side == size:
        flow = measure_flow(reference, target, xy_crop, settings.flow_method)
    else:
        large = align_pair(reference_rgb, target_rgb, xy_img, flow_side)
        flow_large = measure_flow(large.reference, large.target, large.xy_crop, settings.flow_method)
        flow = cv2.resize(flow_large, (size, size), interpolation=cv2.INTER_AREA)
        flow *= np.float32(size / flow_side)
    return reference, target, flow.astype(np.float32), np.asarray(xy_crop).astype(np.float32)


def save_npz(path: Path, arrays: dict) -> None:
    """`np.savez` of `arrays` at `path`, written atomically, its folder created (raises OSError).
    The on-disk caches of prepared pairs and of finished experiment runs both keep `.npz`s so."""
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            np.savez(handle, **arrays)

    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, write)


def _media_stamp(path: Path) -> str:
    try:
        stat = path.stat()
    except OSError:
        return "missing"
    return f"{stat.st_mtime_ns}:{stat.st_size}"


class PairCache:
    """Prepared pairs on disk, one `.npz` per (media, frames, sizes, version); writes are atomic."""

    def __init__(self, folder: Path | str):
        self.folder = Path(folder).expanduser()

    def key(self, sample: Sample, settings: PrepSettings) -> str:
        media = Path(sample.media_path).expanduser().resolve()
        identity = {
            "media": str(media), "stamp": _media_stamp(media), "onset": int(sample.onset),
            "apex": int(sample.apex), "size": settings.size, "flow_size": settings.flow_side,
            "version": PREP_VERSION,
        }
        if settings.flow_method != "farneback":  # Farneback pairs keep the keys they were cached under
            identity["flow_method"] = settings.flow_method
        if settings.flow_method in FACE_ONLY_FLOW_METHODS:  # pairs cut before the mask was added differ
            identity["face_only"] = True
        return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:40]

    def _path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.npz"

    def load(self, key: str) -> dict | None:
        """The stored arrays, `{"skip": reason}` for a pair known to fail, or None."""
        path = self._path(key)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                if "skip" in data:
                    return {"skip": str(data["skip"])}
                return {name: data[name] for name in ("reference", "target", "flow", "xy_crop")}
        except (OSError, ValueError, KeyError, EOFError):
            log.warning("ignoring unreadable cache entry %s", path)
            return None

    def store(self, key: str, **arrays) -> None:
        try:
            save_npz(self._path(key), arrays)
        except OSError as err:
            # A cache that cannot be written only costs time; training goes on.
            log.warning("cannot write the pair cache in %s (%s); continuing without it",
                        self.folder, err.strerror or err)


@dataclass
class _Readers:
    """Open frame sources, one clip at a time (clips are prepared in order)."""

    numbering: str = "file"
    path: Path | None = None
    source: object = None

    def read(self, media_path: Path, frame_idx: int) -> np.ndarray:
        from microau_gui.media import open_media

        if self.path != media_path:
            self.close()
            self.source = open_media(media_path, numbering=self.numbering, cache_frames=4)
            self.path = media_path
        return np.asarray(self.source.read(frame_idx))

    def close(self) -> None:
        if self.source is not None:
            self.source.close()
        self.source = None
        self.path = None


def prepare_samples(samples: Sequence[Sample], settings: PrepSettings, *,
                    cache_dir: Path | str | None = None, numbering: str = "file",
                    progress: Progress | None = None,
                    should_cancel: ShouldCancel | None = None) -> PreparedSet:
    """Prepare every sample (or read it from the cache). Samples without a face are skipped.

    numbering: how image folders number their files ("ordinal" for CAS(ME)^3 part A); it does
    not change which file a frame_idx is. A missing or undecodable frame raises UserError.
    """
    cache = PairCache(cache_dir) if cache_dir is not None else None
    pairs: list[PairSample] = []
    skipped: list[tuple[Sample, str]] = []
    n_cached = 0
    readers = _Readers(numbering=numbering)
    mesh: FaceMesh | None = None
    try:
        for done, sample in enumerate(samples):
            check_cancel(should_cancel)
            key = cache.key(sample, settings) if cache is not None else None
            arrays = cache.load(key) if cache is not None else None
            if arrays is not None:
                n_cached += 1
            else:
                reference_rgb = readers.read(Path(sample.media_path), sample.onset)
                target_rgb = readers.read(Path(sample.media_path), sample.apex)
                if mesh is None:
                    mesh = FaceMesh(static=True)
                found = mesh.detect(reference_rgb)
                if not found:
                    arrays = {"skip": f"no face found in onset frame {sample.onset}"}
                else:
                    reference, target, flow, xy_crop = prepare_pair(
                        reference_rgb, target_rgb, found.xy_img, settings)
                    arrays = {"reference": reference, "target": target, "flow": flow, "xy_crop": xy_crop}
                if cache is not None:
                    cache.store(key, **({"skip": np.array(arrays["skip"])} if "skip" in arrays else arrays))
            if "skip" in arrays:
                skipped.append((sample, arrays["skip"]))
            else:
                pairs.append(PairSample(sample=sample, **arrays))
            if progress is not None:
                progress(done + 1, len(samples))
    finally:
        readers.close()
        if mesh is not None:
            mesh.close()
    return PreparedSet(pairs=tuple(pairs), skipped=tuple(skipped), n_cached=n_cached, settings=settings)


def training_data_hash(pairs: Sequence[PairSample], vocab: Sequence[str]) -> str:
    """SHA-256 (first 16 hex) of what a model learned from: sample keys, media and labels."""
    digest = hashlib.sha256()
    digest.update(("|".join(vocab) + "\n" + PREP_VERSION + "\n").encode())
    rows = sorted(
        f"{p.sample.key}|{Path(p.sample.media_path).as_posix()}|{p.sample.apex}|"
        + "".join(map(str, au_labels(p.sample.aus, vocab)))
        for p in pairs
    )
    digest.update("\n".join(rows).encode())
    return digest.hexdigest()[:16]
