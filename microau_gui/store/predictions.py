"""The per-frame predictions cache: compact blobs keyed by (model version, video, frame).

Owns: `encode_prediction`, `decode_prediction`, `ProbTrace`, `PredictionCache`. May import only
the standard library, numpy, `core` and the store's own modules.

Predictions are not events: they live in their own table, are never edited by the coder, and are
dropped with their model version or video. One blob per frame (little-endian):

    header  8 bytes: b"MP", format 1, flags, n_au (uint16), grid_h (uint8), grid_w (uint8)
    probs   float16[n_au]                                  (flag HAS_PROBS)
    tail    (zlib-compressed when that is smaller, flag COMPRESSED):
            gda        float16[n_au * n_au]                (flag HAS_GDA)
            pta        float32[n_au] per-AU max, then uint8[n_au * grid_h * grid_w] as a fraction
                       of that max                          (flag HAS_PTA)
            face_box   int32[4]                            (flag HAS_FACE_BOX)
            crop_to_img float32[6]                         (flag HAS_CROP_TO_IMG)
            landmarks  uint16 count, float32[2] origin, float32 step, int16[count * 2]
                       as (xy_img - origin) / step          (flag HAS_LANDMARKS)

Probabilities sit at a fixed offset so `PredictionCache.probs` reads the timeline trace of a whole
video with SQL `substr` without decoding anything else. Round-trip error: probs and GDA within
float16 precision (<= 5e-4 on [0, 1]); a PTA cell within max/510 of its AU's row; box exact;
transform within float32 precision; landmarks within step/2, where step = (largest distance from
their mean) / 32767, i.e. < 0.02 px for a face 1000 px wide. Not cached: `heatmaps` (re-warped from
`pta_grid` with `crop_to_img`) and `regions_img` (derived from the landmarks by the face layer).

The cache key has no reference frame: the blob's `reference_idx` column says which one was used,
and `get(..., reference_idx=R)` treats a different one as a miss.

Nor has it the speed mode, but each row records its numeric class (`numerics`: "fp32" for fp32
and ONNX Runtime's fp32 graph, which agree to float rounding, far below the float16 storage
step; "int8" or "bf16" for the approximate modes, up to the 0.02 parity tolerance away), and an
analysis asks for its own class (`frames`/`get(..., numerics=)`): a row of another class is a
miss, recomputed and replaced, so the rows one run reads and writes never mix classes, and two
machines whose start-up races chose different modes cannot serve each other rows that differ by
up to the tolerance under one model version. NULL: cached before the class was recorded (schema
8); no analysis takes it. Trace readers (timeline, suggestions, agreement, exports) read every
row, whatever its class.
"""

from __future__ import annotations

import struct
import threading
import zlib
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from microau_gui.core.errors import UserError
from microau_gui.core.types import FramePrediction
from microau_gui.store.db import Database
from microau_gui.store.records import stored_json

_MAGIC = b"MP"
_FORMAT = 1
_HEADER = struct.Struct("<2sBBHBB")

FACE_FOUND = 1
HAS_GDA = 2
HAS_PTA = 4
HAS_FACE_BOX = 8
HAS_CROP_TO_IMG = 16
HAS_LANDMARKS = 32
COMPRESSED = 64
HAS_PROBS = 128


def encode_prediction(pred: FramePrediction) -> bytes:
    """FramePrediction -> blob (see the module docstring for the layout)."""
    n_au = len(pred.vocab)
    flags = FACE_FOUND if pred.face_found else 0
    grid_h = grid_w = 0
    head = []
    tail = []
    if pred.probs is not None:
        probs = np.asarray(pred.probs, dtype=np.float32).reshape(-1)  # (n_au,)
        if probs.size != n_au:
            raise ValueError(f"probs has {probs.size} values for a vocabulary of {n_au} AUs")
        flags |= HAS_PROBS
        head.append(probs.astype("<f2").tobytes())
    if pred.gda is not None:
        gda = np.asarray(pred.gda, dtype=np.float32).reshape(n_au, n_au)
        flags |= HAS_GDA
        tail.append(gda.astype("<f2").tobytes())
    if pred.pta_grid is not None:
        pta = np.asarray(pred.pta_grid, dtype=np.float32)  # (n_au, grid_h, grid_w)
        if pta.ndim != 3 or pta.shape[0] != n_au or max(pta.shape[1:]) > 255:
            raise ValueError(f"pta_grid must be (n_au={n_au}, h<=255, w<=255), not {pta.shape}")
        grid_h, grid_w = pta.shape[1:]
        scale = pta.reshape(n_au, -1).max(axis=1).clip(min=0).astype(np.float32)  # (n_au,)
        safe = np.where(scale > 0, scale, 1).astype(np.float32)[:, None, None]
        quantised = np.rint(pta.clip(min=0) / safe * 255).clip(0, 255).astype(np.uint8)
        flags |= HAS_PTA
        tail.append(scale.astype("<f4").tobytes() + quantised.tobytes())
    if pred.face_box is not None:
        flags |= HAS_FACE_BOX
        tail.append(np.asarray(pred.face_box, dtype="<i4").reshape(4).tobytes())
    if pred.crop_to_img is not None:
        flags |= HAS_CROP_TO_IMG
        tail.append(np.asarray(pred.crop_to_img, dtype="<f4").reshape(6).tobytes())
    if pred.landmarks_img is not None:
        landmarks = np.asarray(pred.landmarks_img, dtype=np.float64).reshape(-1, 2)  # (k, 2) xy_img
        origin = landmarks.mean(axis=0).astype(np.float32)  # (2,)
        offsets = landmarks - origin
        step = np.float32(max(float(np.abs(offsets).max(initial=0)) / 32767, 1e-6))
        fixed = np.rint(offsets / step).clip(-32767, 32767).astype("<i2")  # (k, 2)
        flags |= HAS_LANDMARKS
        tail.append(struct.pack("<H2ff", landmarks.shape[0], origin[0], origin[1], step)
                    + fixed.tobytes())
    tail_bytes = b"".join(tail)
    packed = zlib.compress(tail_bytes, 1)
    if len(packed) < len(tail_bytes):
        flags |= COMPRESSED
        tail_bytes = packed
    header = _HEADER.pack(_MAGIC, _FORMAT, flags, n_au, grid_h, grid_w)
    return header + b"".join(head) + tail_bytes


def decode_prediction(blob: bytes, frame_idx: int, reference_idx: int, model_version: str,
                      vocab: tuple[str, ...]) -> FramePrediction:
    """Blob -> FramePrediction (float32 arrays; `heatmaps` and `regions_img` left empty)."""
    magic, fmt, flags, n_au, grid_h, grid_w = _HEADER.unpack_from(blob, 0)
    if magic != _MAGIC or fmt != _FORMAT:
        raise ValueError(f"not a cached prediction (format {magic!r} {fmt})")
    if n_au != len(vocab):
        raise ValueError(f"cached prediction has {n_au} AUs, the model version has {len(vocab)}")
    pos = _HEADER.size
    probs = gda = pta = face_box = crop_to_img = landmarks = None
    if flags & HAS_PROBS:
        probs = np.frombuffer(blob, "<f2", n_au, pos).astype(np.float32)  # (n_au,)
        pos += 2 * n_au
    tail = blob[pos:]
    if flags & COMPRESSED:
        tail = zlib.decompress(tail)
    pos = 0
    if flags & HAS_GDA:
        gda = np.frombuffer(tail, "<f2", n_au * n_au, pos).astype(np.float32).reshape(n_au, n_au)
        pos += 2 * n_au * n_au
    if flags & HAS_PTA:
        scale = np.frombuffer(tail, "<f4", n_au, pos)  # (n_au,)
        pos += 4 * n_au
        cells = np.frombuffer(tail, np.uint8, n_au * grid_h * grid_w, pos)
        pos += n_au * grid_h * grid_w
        pta = (cells.reshape(n_au, grid_h, grid_w).astype(np.float32) / 255
               * scale[:, None, None])  # (n_au, grid_h, grid_w)
    if flags & HAS_FACE_BOX:
        face_box = tuple(int(v) for v in np.frombuffer(tail, "<i4", 4, pos))
        pos += 16
    if flags & HAS_CROP_TO_IMG:
        crop_to_img = np.frombuffer(tail, "<f4", 6, pos).astype(np.float64).reshape(2, 3)
        pos += 24
    if flags & HAS_LANDMARKS:
        count, origin_x, origin_y, step = struct.unpack_from("<H2ff", tail, pos)
        pos += 14
        fixed = np.frombuffer(tail, "<i2", count * 2, pos).reshape(count, 2)
        landmarks = (fixed.astype(np.float32) * np.float32(step)
                     + np.array([origin_x, origin_y], dtype=np.float32))  # (count, 2) xy_img
    return FramePrediction(
        frame_idx=frame_idx, reference_idx=reference_idx, model_version=model_version,
        vocab=tuple(vocab), face_found=bool(flags & FACE_FOUND), probs=probs, gda=gda,
        pta_grid=pta, face_box=face_box, landmarks_img=landmarks, crop_to_img=crop_to_img,
    )


@dataclass(frozen=True, eq=False)
class ProbTrace:
    """Cached AU probabilities of one video under one model version, for timeline lanes."""

    frame_idx: np.ndarray  # (n,) int64, ascending: the cached frames in the requested range
    probs: np.ndarray  # (n, n_au) float32; NaN rows where no face was found
    vocab: tuple[str, ...]  # AU codes, column order


class PredictionCache:
    """`project.predictions`: put and get cached FramePredictions per (video, model version)."""

    def __init__(self, db: Database):
        self._db = db
        self._versions: dict[int, tuple[str, tuple[str, ...]]] = {}
        self._lock = threading.Lock()

    def _version(self, model_version_id: int) -> tuple[str, tuple[str, ...]]:
        """(identity, vocab) of a model version: `ModelVersion.version`, the card's full version
        the Predictor gives its rows (the name when it has none), so a cached row and a fresh
        one carry the same `model_version`. Both are immutable once recorded."""
        with self._lock:
            known = self._versions.get(model_version_id)
        if known is not None:
            return known
        row = self._db.conn().execute(
            "SELECT COALESCE(card_version, name), vocab, card_version FROM model_versions "
            "WHERE id = ?", (model_version_id,)
        ).fetchone()
        if row is None:
            raise UserError(f"model version {model_version_id} is not in this project")
        known = (row[0], tuple(stored_json(row[1], list, f"the vocabulary of model version {row[0]}")))
        if row[2] is not None:  # a version registered before card versions gets one later
            with self._lock:
                self._versions[model_version_id] = known
        return known

    def put_many(self, video_id: int, model_version_id: int,
                 predictions: Iterable[FramePrediction], numerics: str = "fp32") -> int:
        """Store (or replace) predictions for frames of one video, in one transaction;
        `numerics`: the class of arithmetic that made them (see the module docstring)."""
        name, vocab = self._version(model_version_id)
        rows = []
        for pred in predictions:
            if tuple(pred.vocab) != vocab:
                raise ValueError(f"prediction vocabulary {pred.vocab} differs from model version "
                                 f"{name}'s {vocab}")
            rows.append((model_version_id, video_id, int(pred.frame_idx), int(pred.reference_idx),
                         int(bool(pred.face_found)), encode_prediction(pred), numerics))
        if not rows:
            return 0
        with self._db.write() as changes:
            self._db.conn().executemany(
                "INSERT OR REPLACE INTO predictions (model_version_id, video_id, frame_idx, "
                "reference_idx, face_found, data, numerics) VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
            changes.predictions.add((video_id, model_version_id))
        return len(rows)

    def get(self, video_id: int, model_version_id: int, frame_idx: int,
            reference_idx: int | None = None, numerics: str | None = None) -> FramePrediction | None:
        """The cached prediction, or None (also when it used another reference frame, or when
        `numerics` is given and the row was made in another numeric class)."""
        name, vocab = self._version(model_version_id)
        row = self._db.conn().execute(
            "SELECT reference_idx, data, numerics FROM predictions "
            "WHERE model_version_id = ? AND video_id = ? AND frame_idx = ?",
            (model_version_id, video_id, frame_idx),
        ).fetchone()
        if row is None or (reference_idx is not None and row[0] != reference_idx):
            return None
        if numerics is not None and row[2] != numerics:
            return None
        return decode_prediction(row[1], frame_idx, row[0], name, vocab)

    def get_range(self, video_id: int, model_version_id: int, start: int,
                  stop: int) -> list[FramePrediction]:
        """Cached predictions for start <= frame_idx < stop, in frame order (gaps skipped)."""
        name, vocab = self._version(model_version_id)
        rows = self._db.conn().execute(
            "SELECT frame_idx, reference_idx, data FROM predictions WHERE model_version_id = ? "
            "AND video_id = ? AND frame_idx >= ? AND frame_idx < ? ORDER BY frame_idx",
            (model_version_id, video_id, start, stop),
        ).fetchall()
        return [decode_prediction(data, f, r, name, vocab) for f, r, data in rows]

    def has(self, video_id: int, model_version_id: int, frame_idx: int) -> bool:
        return self._db.conn().execute(
            "SELECT 1 FROM predictions WHERE model_version_id = ? AND video_id = ? "
            "AND frame_idx = ?", (model_version_id, video_id, frame_idx),
        ).fetchone() is not None

    def frames(self, video_id: int, model_version_id: int, numerics: str | None = None) -> np.ndarray:
        """(n,) int64 ascending frame indices cached for this video and version (only those of
        one numeric class when `numerics` is given)."""
        rows = self._db.conn().execute(
            "SELECT frame_idx FROM predictions WHERE model_version_id = ? AND video_id = ? "
            "AND (? IS NULL OR numerics = ?) ORDER BY frame_idx",
            (model_version_id, video_id, numerics, numerics),
        ).fetchall()
        return np.array([r[0] for r in rows], dtype=np.int64)

    def probs(self, video_id: int, model_version_id: int, start: int = 0,
              stop: int | None = None) -> ProbTrace:
        """Probabilities only (no blob decoding), for start <= frame_idx < stop."""
        _, vocab = self._version(model_version_id)
        n_au = len(vocab)
        rows = self._db.conn().execute(
            "SELECT frame_idx, substr(data, 1, ?) FROM predictions WHERE model_version_id = ? "
            "AND video_id = ? AND frame_idx >= ? AND frame_idx < ? ORDER BY frame_idx",
            (_HEADER.size + 2 * n_au, model_version_id, video_id, start,
             2**62 if stop is None else stop),
        ).fetchall()
        frame_idx = np.array([r[0] for r in rows], dtype=np.int64)
        probs = np.full((len(rows), n_au), np.nan, dtype=np.float32)  # (n, n_au)
        for i, (_, raw) in enumerate(rows):
            if raw[3] & HAS_PROBS:  # the flags byte of the header
                probs[i] = np.frombuffer(raw, "<f2", n_au, _HEADER.size).astype(np.float32)
        return ProbTrace(frame_idx=frame_idx, probs=probs, vocab=vocab)

    def clear(self, model_version_id: int, video_id: int | None = None) -> int:
        """Drop the cached predictions of a version (for one video, or all); returns the count."""
        with self._db.write() as changes:
            if video_id is None:
                videos = [r[0] for r in self._db.conn().execute(
                    "SELECT DISTINCT video_id FROM predictions WHERE model_version_id = ?",
                    (model_version_id,))]
                cursor = self._db.conn().execute(
                    "DELETE FROM predictions WHERE model_version_id = ?", (model_version_id,))
            else:
                videos = [video_id]
                cursor = self._db.conn().execute(
                    "DELETE FROM predictions WHERE model_version_id = ? AND video_id = ?",
                    (model_version_id, video_id))
            changes.predictions.update((v, model_version_id) for v in videos)
            return cursor.rowcount
