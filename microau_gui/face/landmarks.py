"""MediaPipe Face Mesh wrapper: 478 landmarks in image pixels, or an explicit "no face".

Owns: `FaceMesh`, `Landmarks`, `NO_FACE`. May import core, numpy, OpenCV and mediapipe; no torch, no Qt.

Two modes: static-image (every call detects from scratch; for photos, dataset frames and random
seeks) and tracking (MediaPipe reuses the previous frame's face; for sequential playback and
analysis). With several faces the largest one wins. MediaPipe's 478-point mesh (refined eyes and
irises) misses small faces that its detector still finds (scikit-image `camera.png` is one), so a
miss falls back to the full-range face detector, an upscaled crop around the largest detection,
and the mesh on that crop.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

N_LANDMARKS = 478
_FALLBACK_CROP_PX = 384  # the mesh model works best when the face fills a few hundred pixels


@dataclass(frozen=True, eq=False)
class Landmarks:
    """Face Mesh result for one image."""

    found: bool
    xy_img: np.ndarray | None = None  # (478, 2) float32, x right / y down, image pixels
    box: tuple[int, int, int, int] | None = None  # x0, y0, x1, y1 around the landmarks
    n_faces: int = 0  # faces MediaPipe saw; the largest is returned

    def __bool__(self) -> bool:
        return self.found


NO_FACE = Landmarks(found=False)


def _box_of(xy: np.ndarray) -> tuple[int, int, int, int]:
    x0, y0 = np.floor(xy.min(axis=0)).astype(int)
    x1, y1 = np.ceil(xy.max(axis=0)).astype(int)
    return int(x0), int(y0), int(x1), int(y1)


class FaceMesh:
    """One MediaPipe graph. Not thread-safe: give each thread its own instance."""

    def __init__(self, static: bool = True, max_faces: int = 4, min_confidence: float = 0.5):
        import mediapipe as mp

        self._mesh = mp.solutions.face_mesh.FaceMesh(
            static_image_mode=static,
            max_num_faces=max_faces,
            refine_landmarks=True,
            min_detection_confidence=min_confidence,
            min_tracking_confidence=min_confidence,
        )
        self.static = static
        self._crop_mesh = None  # static mesh for the small-face fallback, made on first need
        self._detector = None
        self._min_confidence = min_confidence
        self._mp = mp

    def __enter__(self) -> "FaceMesh":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        for graph in (self._mesh, self._crop_mesh, self._detector):
            if graph is not None:
                graph.close()
        self._mesh = self._crop_mesh = self._detector = None

    def detect(self, rgb: np.ndarray) -> Landmarks:
        """Landmarks of the largest face in an RGB uint8 image (H, W, 3), or NO_FACE."""
        rgb = _as_rgb(rgb)
        height, width = rgb.shape[:2]
        result = self._mesh.process(rgb)
        faces = [_to_px(f, width, height) for f in (result.multi_face_landmarks or [])]
        if not faces:
            return self._detect_small_face(rgb)
        areas = [(b[2] - b[0]) * (b[3] - b[1]) for b in map(_box_of, faces)]
        best = faces[int(np.argmax(areas))]
        return Landmarks(found=True, xy_img=best, box=_box_of(best), n_faces=len(faces))

    def _detect_small_face(self, rgb: np.ndarray) -> Landmarks:
        solutions = self._mp.solutions
        if self._detector is None:
            self._detector = solutions.face_detection.FaceDetection(
                model_selection=1, min_detection_confidence=self._min_confidence
            )
            self._crop_mesh = solutions.face_mesh.FaceMesh(
                static_image_mode=True, max_num_faces=1, refine_landmarks=True,
                min_detection_confidence=self._min_confidence,
            )
        detections = self._detector.process(rgb).detections or []
        if not detections:
            return NO_FACE
        height, width = rgb.shape[:2]
        boxes = []
        for det in detections:
            rel = det.location_data.relative_bounding_box
            boxes.append((rel.xmin * width, rel.ymin * height, rel.width * width, rel.height * height))
        x, y, w, h = max(boxes, key=lambda b: b[2] * b[3])
        # The detector's box is tight around eyes and mouth; the mesh wants forehead and chin too.
        side = 2.2 * max(w, h)
        cx, cy = x + w / 2, y + h / 2
        x0, y0 = int(max(0, cx - side / 2)), int(max(0, cy - side / 2))
        x1, y1 = int(min(width, cx + side / 2)), int(min(height, cy + side / 2))
        if x1 - x0 < 8 or y1 - y0 < 8:
            return NO_FACE
        scale = _FALLBACK_CROP_PX / max(x1 - x0, y1 - y0)
        import cv2

        crop = cv2.resize(rgb[y0:y1, x0:x1], None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
        result = self._crop_mesh.process(np.ascontiguousarray(crop))
        if not result.multi_face_landmarks:
            return NO_FACE
        xy_crop = _to_px(result.multi_face_landmarks[0], crop.shape[1], crop.shape[0])
        xy_img = (xy_crop / scale + np.array([x0, y0], np.float32)).astype(np.float32)
        return Landmarks(found=True, xy_img=xy_img, box=_box_of(xy_img), n_faces=len(detections))


def _as_rgb(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.shape[2] == 4:
        image = image[:, :, :3]
    if image.dtype != np.uint8:
        raise ValueError(f"expected a uint8 RGB image, got {image.dtype}")
    return np.ascontiguousarray(image)


def _to_px(face, width: int, height: int) -> np.ndarray:
    xy = np.array([(p.x * width, p.y * height) for p in face.landmark], dtype=np.float32)
    return xy  # (478, 2)


def load_rgb(path) -> np.ndarray:
    """Read an image file as RGB uint8; raises UserError when it is not a readable image."""
    import cv2

    from microau_gui.core.errors import UserError

    data = np.fromfile(str(path), dtype=np.uint8) if os.path.isfile(path) else None
    if data is None:
        raise UserError(f"{path}: no such image file; check the path")
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if bgr is None:
        raise UserError(f"{path}: not a readable image (expected png, jpg, bmp or tif)")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
