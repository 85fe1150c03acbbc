"""`python main.py face IMAGE --draw OUT.png`: landmarks and AU regions on one photo.

Owns the `face` subcommand. May import every layer; the work is in `face` (landmarks, align,
regions, draw).

Prints a JSON summary on stdout (face found, box, eye centres, each region's centroid and area in
image pixels). No face or an unreadable image is a one-line error and exit code 2.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from microau_gui.core.au import DEFAULT_VOCAB, au_number
from microau_gui.core.errors import UserError

NAME = "face"
HELP = "find the face in an image, draw landmarks and AU regions, print a JSON summary"


def add_arguments(parser) -> None:
    parser.add_argument("image", help="photo or video frame (png, jpg, ...)")
    parser.add_argument("--draw", metavar="OUT.png", help="write the drawing here")
    parser.add_argument("--aus", default=",".join(DEFAULT_VOCAB),
                        help="comma-separated AUs to draw (default: the 12 model AUs)")


def run(args) -> int:
    from microau_gui.face.align import eye_centres
    from microau_gui.face.draw import draw_regions
    from microau_gui.face.landmarks import FaceMesh, load_rgb
    from microau_gui.face.regions import au_polygons

    vocab = _parse_vocab(args.aus)
    rgb = load_rgb(args.image)
    with FaceMesh(static=True) as mesh:
        face = mesh.detect(rgb)
    if not face.found:
        raise UserError(f"{args.image}: no face found; use a frontal photo where the face is "
                        "at least ~40 px wide")
    regions = {}
    for code in vocab:
        polys = au_polygons(code, face.xy_img)
        regions[code] = {
            "sides": sorted(polys),
            "centroid_img": _rounded(np.concatenate(list(polys.values())).mean(0)),
            "area_px": round(float(sum(abs(cv2.contourArea(p.astype(np.float32)))
                                       for p in polys.values())), 1),
        }
    summary = {
        "image": str(args.image),
        "size": [int(rgb.shape[1]), int(rgb.shape[0])],
        "face_found": True,
        "n_faces": face.n_faces,
        "n_landmarks": int(face.xy_img.shape[0]),
        "box": list(face.box),
        "eye_centres_img": _rounded(eye_centres(face.xy_img)),
        "regions": regions,
    }
    if args.draw:
        out = Path(args.draw)
        picture = draw_regions(rgb, face.xy_img, vocab)
        if not out.parent.exists():
            raise UserError(f"{out.parent}: folder does not exist; create it or choose another --draw path")
        if not cv2.imwrite(str(out), cv2.cvtColor(picture, cv2.COLOR_RGB2BGR)):
            raise UserError(f"{out}: could not write the picture; use a .png or .jpg path you can write")
        summary["drawing"] = str(out)
    print(json.dumps(summary, indent=2))
    return 0


def _rounded(values: np.ndarray) -> list:
    """Pixel coordinates to 0.1 px as JSON numbers. Rounding happens in float64: a float32
    0.1-multiple such as 204.3 would print as 204.3000030517578."""
    return np.round(np.asarray(values, np.float64), 1).tolist()


def _parse_vocab(text: str) -> tuple[str, ...]:
    try:
        return tuple(f"AU{au_number(t)}" for t in text.split(",") if t.strip())
    except KeyError as err:
        raise UserError(f"--aus: {err.args[0]}") from None
