"""Synthetic micro-expression data from real photos shipped in installed packages. No Qt.

Owns: synthetic identities, the AU motion models, rendering, clip and long-video generation and
the realism measurement.
May import face, media, store and core (numpy, OpenCV, MediaPipe through face).

Public API:
- `generate_clips(out_dir, subjects=3, clips_per_subject=20, size=224, fps=200, seed=0,
  combinations=None, config=None, progress=None, should_cancel=None) -> SynthClips`: CASME II layout
  clips plus coding.xlsx (2019 columns); `SynthClips.dataset` is a `core.types.Dataset`.
- `generate_long_videos(out_dir, videos=3, seconds=60, fps=30, face_px=230, seed=0,
  config=None, progress=None, should_cancel=None) -> SynthLong`: mp4 videos plus MEGC ground truth.
- `plan_clips(...) -> [ClipSpec]` and `render_clip(spec, config, maker) -> frames`: one clip in
  memory (tests, benchmarks, a clip without AU via `combinations=[parse_combination("none")]`).
- `measure_motion(reference, target, xy_img, vocab) -> RegionMotion`: the realism measurement.

Modules: faces (identities, sessions, plates), au_motion (the written motion model of every AU),
fields (dense displacement fields, time courses), combos (AU combinations, emotions, objective
classes), render (warping, head motion, nuisances), clips, long_video, measure.
"""

from microau_gui.synth.clips import ClipConfig, ClipSpec, SynthClips, generate_clips, plan_clips, render_clip
from microau_gui.synth.combos import COMBINATIONS, MACRO_COMBINATIONS, Combination, parse_combination
from microau_gui.synth.faces import PHOTOS, PlateMaker
from microau_gui.synth.long_video import LongConfig, SynthLong, generate_long_videos
from microau_gui.synth.measure import RegionMotion, measure_motion

__all__ = [
    "COMBINATIONS",
    "MACRO_COMBINATIONS",
    "PHOTOS",
    "ClipConfig",
    "ClipSpec",
    "Combination",
    "LongConfig",
    "PlateMaker",
    "RegionMotion",
    "SynthClips",
    "SynthLong",
    "generate_clips",
    "generate_long_videos",
    "measure_motion",
    "parse_combination",
    "plan_clips",
    "render_clip",
]
