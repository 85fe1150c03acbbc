"""`bench` figures of the media and face layers: decoding, random seeks, landmarks, pair preparation.

Owns: `write_720p_video`, `measure_decode`, `measure_seeks`, `measure_proxy_build`,
`measure_landmarks`, `measure_pair_prep`, `FLOW_STUDIES`, `flow_f1`. May import media, face,
training (pair preparation), inference (overlay warping) and core; the CLI layer may import
every layer.

Inputs are generated, never downloaded: a 1280x720 H.264 file of a real public-domain face
(matplotlib's grace_hopper.jpg) drifting slowly with sensor noise, written by `media.write_video`
with a chosen GOP, and the 640x480 synthetic long videos of `synth` for the face figures.

Random seeks open the file with no frame cache (`cache_frames=0`), so every request is decoded:
from the keyframe at or before the target, or onward from the decoder's position when the
target lies ahead of it in the same GOP (what `VideoSource` does for any caller).

The long-GOP file (keyframe every 250 frames) is measured twice: through `open_media` with its
seek proxy attached, which is the application's path (the window builds the proxy in the
background; `measure_proxy_build` builds it here into the bench work folder, never the user's
cache, and times it), and directly on the original (`use_proxy=False`), which is what every seek
costs until the proxy exists. The proxy is a lossless re-encoding verified frame-exact against
the original when built (media/proxy.py).
"""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np

from microau_gui.cli.bench_report import figure, percentile

FRAME_720P_WH = (1280, 720)


def _grace_hopper() -> np.ndarray:
    import matplotlib

    path = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)  # (H, W, 3)


def _frames_720p(n_frames: int, seed: int, n_noise: int = 8):
    """A face drifting by a few px on a grey backdrop, with sensor noise (a bank of `n_noise`
    noise frames, cycled: drawing fresh noise for every 720p frame costs more than encoding)."""
    width, height = FRAME_720P_WH
    photo = _grace_hopper()
    scale = 0.9 * height / photo.shape[0]
    photo = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    canvas = np.full((height, width, 3), 96, np.uint8)
    y0, x0 = (height - photo.shape[0]) // 2, (width - photo.shape[1]) // 2
    canvas[y0:y0 + photo.shape[0], x0:x0 + photo.shape[1]] = photo
    rng = np.random.default_rng(seed)
    noise = [np.rint(rng.normal(0, 2.0, canvas.shape)).astype(np.int16) for _ in range(n_noise)]
    raise_px = [np.clip(n, 0, 255).astype(np.uint8) for n in noise]  # the positive part
    lower_px = [np.clip(-n, 0, 255).astype(np.uint8) for n in noise]  # the negative part
    for k in range(n_frames):
        dx, dy = 6 * np.sin(k / 37.0), 4 * np.sin(k / 23.0)
        warp = np.float32([[1, 0, dx], [0, 1, dy]])
        frame = cv2.warpAffine(canvas, warp, (width, height), borderMode=cv2.BORDER_REPLICATE)
        yield cv2.subtract(cv2.add(frame, raise_px[k % n_noise]), lower_px[k % n_noise])


def write_720p_video(path: Path, n_frames: int, gop: int, fps: float = 30.0, seed: int = 0) -> Path:
    """A 1280x720 H.264 file with a keyframe every `gop` frames (reused when already written)."""
    from microau_gui.media import write_video

    if not path.exists():
        write_video(path, _frames_720p(n_frames, seed), fps, codec="h264", gop=gop)
    return path


def measure_decode(path: Path, max_frames: int) -> dict:
    """Sequential decoding to RGB arrays (`FrameSource.iter_frames`), frames per second."""
    from microau_gui.media import open_media

    with open_media(path, cache_frames=0) as source:
        stop = min(source.n_frames, max_frames)
        started = time.perf_counter()
        n = sum(1 for _ in source.iter_frames(0, stop))
        seconds = time.perf_counter() - started
        size = source.size
        codec = source.codec
    return figure(n / seconds, "fps", n_frames=n, size=f"{size[0]}x{size[1]}", codec=codec,
                  decoder_threads=1)


def measure_seeks(path: Path, n_seeks: int, gop: int, p95_target: str | None = None,
                  seed: int = 1, use_proxy: bool = False) -> tuple[dict, dict]:
    """p50 and p95 of `read(frame_idx)` at random frames, no cache (see the module docstring).
    use_proxy: attach the file's seek proxy (it must have been built); an error if there is none."""
    from microau_gui.media import open_media

    rng = np.random.default_rng(seed)
    times_ms = []
    with open_media(path, cache_frames=0, use_proxy=use_proxy) as source:
        if use_proxy and source.proxy_path is None:
            raise RuntimeError(f"{path.name} has no seek proxy to measure")
        targets = rng.integers(0, source.n_frames, size=n_seeks)
        source.read(0)  # open the decoder; the first read is not a seek
        for frame_idx in targets:
            started = time.perf_counter()
            source.read(int(frame_idx))
            times_ms.append((time.perf_counter() - started) * 1000.0)
        size, n_frames, max_gop = source.size, source.n_frames, source.max_gop
        decoded = {"frames_decoded_original": source.n_decoded,
                   "frames_decoded_proxy": source.n_decoded_proxy}
    detail = {"gop": gop, "max_gop_in_file": max_gop, "n_seeks": n_seeks, "n_frames": n_frames,
              "size": f"{size[0]}x{size[1]}", "bframes": 2, "decoder_threads": 1, **decoded}
    if use_proxy:
        from microau_gui.media.proxy import PROXY_GOP

        detail.update(seek_proxy=True, proxy_gop=PROXY_GOP,
                      note="the application's path: reads decode the seek proxy, a lossless libx264 "
                      "copy verified frame-exact against the original; seek_direct_* is without it")
    else:
        detail["seek_proxy"] = False
    return (figure(percentile(times_ms, 50), "ms", **detail),
            figure(percentile(times_ms, 95), "ms", p95_target, **detail))


def measure_proxy_build(path: Path, threads: int = 1) -> tuple[dict, dict]:
    """Build the seek proxy of `path` (into `media.proxy_dir()`, which the caller points at the
    work folder) and report its build speed (fps, verification included) and its size per minute
    of video."""
    import json

    from microau_gui.media import VideoSource, build_proxy
    from microau_gui.media.proxy import PROXY_GOP

    with VideoSource(path, cache_frames=0) as source:
        n_frames, fps, size = source.n_frames, source.fps, source.size
    started = time.perf_counter()
    proxy = build_proxy(path, threads=threads)
    seconds = time.perf_counter() - started
    n_bytes = proxy.stat().st_size
    verified = json.loads(proxy.with_suffix(".json").read_text())["verified_frames"]
    detail = {"n_frames": n_frames, "size": f"{size[0]}x{size[1]}", "proxy_gop": PROXY_GOP,
              "encoding": "libx264 qp 0 (lossless), ultrafast, no B-frames, source pixel format",
              "verified_exact_frames": len(verified)}
    return (figure(n_frames / seconds, "fps", seconds=seconds, encoder_threads=threads,
                   note="decode + lossless encode + exactness check", **detail),
            figure(n_bytes / 1e6 / (n_frames / fps / 60.0), "MB/min", kb_per_frame=n_bytes / 1e3 / n_frames,
                   fps=fps, **detail))


def measure_landmarks(video: Path, n_frames: int) -> tuple[dict, dict]:
    """MediaPipe Face Mesh per frame on 640x480 frames: tracking mode (analysis, playback) and
    static mode (random seeks, reference frames)."""
    from microau_gui.face.landmarks import FaceMesh
    from microau_gui.media import open_media

    with open_media(video, cache_frames=0) as source:
        frames = [rgb for _, rgb in source.iter_frames(0, min(n_frames, source.n_frames))]
        size = source.size
    results = []
    for static in (False, True):
        with FaceMesh(static=static) as mesh:
            mesh.detect(frames[0])  # graph start-up is not a per-frame cost
            started = time.perf_counter()
            found = sum(bool(mesh.detect(rgb)) for rgb in frames)
            ms = (time.perf_counter() - started) * 1000.0 / len(frames)
        results.append(figure(ms, "ms/frame", mode="static" if static else "tracking",
                              n_frames=len(frames), faces_found=found, size=f"{size[0]}x{size[1]}"))
    return results[0], results[1]


def measure_pair_prep(video: Path, n_pairs: int, size: int = 224, grid: int = 14) -> dict:
    """What the Predictor adds around the model per frame pair, ms: one-transform alignment of
    both crops and the head-motion-free flow (`pairs.samples.prepare_pair`, flow measured at
    224 px as `train` records by default), the flow image, the region masks, and for the frame
    on screen the overlays (PTA heatmaps warped into the image, region polygons).

    The figure is the default flow method's (`pairs.samples.DEFAULT_FLOW_METHOD`, what new
    training runs use); `by_flow_method` holds every method's, and `flow_f1` the mean F1 per
    method of the committed studies that compare flows (`FLOW_STUDIES`), so the cost sits beside
    what it buys."""
    from microau_gui.face.motion import FLOW_METHODS
    from microau_gui.pairs.samples import DEFAULT_FLOW_METHOD

    by_method = {method: _pair_prep(video, n_pairs, size, grid, method) for method in FLOW_METHODS}
    chosen = dict(by_method[DEFAULT_FLOW_METHOD])
    chosen.update(flow_method=DEFAULT_FLOW_METHOD, flow_f1=flow_f1(),
                  by_flow_method={m: f.get("value") for m, f in by_method.items()})
    return chosen


# The committed studies of the pairs' flow (docs/experiments/NAME.json): DIS ultrafast, and
# DIS refined to full resolution, each against Farneback on the same data and seeds.
FLOW_STUDIES: tuple[str, ...] = ("flow", "flow-fine")


def flow_f1(folder: Path | None = None) -> dict:
    """Per flow study in `folder` (docs/experiments by default): mean F1 (mean, std over runs)
    per variant and baseline, or None for a study whose report is missing or damaged (read
    through the schema of what is used)."""
    from pydantic import BaseModel, ValidationError

    class Method(BaseModel):
        mean_f1: dict | float | None = None

    class FlowStudy(BaseModel):
        complete: bool | None = None
        variants: dict[str, Method] = {}
        baselines: dict[str, Method] = {}

    folder = folder or Path(__file__).resolve().parents[2] / "docs" / "experiments"
    studies: dict[str, dict | None] = {}
    for name in FLOW_STUDIES:
        try:
            data = FlowStudy.model_validate_json((folder / f"{name}.json").read_bytes())
        except (OSError, ValidationError):
            studies[name] = None
            continue
        methods = {**data.variants, **data.baselines}
        studies[name] = {"study": f"docs/experiments/{name}.json", "complete": data.complete,
                         **{method: entry.mean_f1 for method, entry in methods.items()}}
    return studies


def _pair_prep(video: Path, n_pairs: int, size: int, grid: int, flow_method: str) -> dict:
    from microau_gui.core.au import DEFAULT_VOCAB
    from microau_gui.face.align import estimate_alignment, invert_affine
    from microau_gui.face.landmarks import FaceMesh
    from microau_gui.face.motion import flow_image
    from microau_gui.inference.predictor import regions_in_image, warp_grid_to_image
    from microau_gui.media import open_media
    from microau_gui.pairs.samples import PrepSettings, prepare_pair, sample_masks

    settings = PrepSettings(size=size, flow_size=max(size, 224), flow_method=flow_method)
    with open_media(video, cache_frames=0) as source:
        frames = [rgb for _, rgb in source.iter_frames(0, min(n_pairs + 6, source.n_frames))]
    with FaceMesh(static=True) as mesh:
        landmarks = mesh.detect(frames[0])
    if not landmarks:
        return figure(None, "ms/pair", "pair_prep_ms", error="no face found in the benchmark video")
    prep_ms, masks_ms, overlay_ms = [], [], []
    grid_map = np.random.default_rng(0).random((len(DEFAULT_VOCAB), grid, grid)).astype(np.float32)
    for k in range(min(n_pairs, len(frames) - 6)):
        reference, target = frames[k], frames[k + 6]
        started = time.perf_counter()
        _, _, flow, xy_crop = prepare_pair(reference, target, landmarks.xy_img, settings)
        flow_image(flow)
        middle = time.perf_counter()
        sample_masks(xy_crop, size, grid, DEFAULT_VOCAB)
        masked = time.perf_counter()
        crop_to_img = invert_affine(estimate_alignment(landmarks.xy_img, size))
        warp_grid_to_image(grid_map, crop_to_img, size, reference.shape[:2])
        regions_in_image(landmarks.xy_img, DEFAULT_VOCAB)
        done = time.perf_counter()
        prep_ms.append((middle - started) * 1000.0)
        masks_ms.append((masked - middle) * 1000.0)
        overlay_ms.append((done - masked) * 1000.0)
    total = [a + b for a, b in zip(prep_ms, masks_ms)]
    return figure(float(np.median(total)), "ms/pair", "pair_prep_ms", align_and_flow_ms=float(np.median(prep_ms)),
                  masks_ms=float(np.median(masks_ms)), overlays_ms=float(np.median(overlay_ms)),
                  crop_px=size, flow_px=settings.flow_side, n_pairs=len(total),
                  note="median; overlays are only drawn for the frame on screen, not in analysis")
