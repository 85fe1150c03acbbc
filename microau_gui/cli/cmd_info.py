"""`python main.py info MEDIA`: frame count, fps, size and the variable-frame-rate flag.

Owns the `info` subcommand. May import every layer; the work is in `media.probe_media`.

MEDIA is a video file or an image-sequence folder. Prints a readable block, or one JSON object
with `--json` (the keys of `media.MediaInfo`). A bad path or unreadable media is a one-line
error and exit code 2.
"""

from __future__ import annotations

import json

NAME = "info"
HELP = "describe a video or image folder: frame count, fps, size, variable frame rate"

# Beyond this many frames between keyframes, jumping to a random frame gets sluggish (~1.5 ms
# of decoding per 720p frame on one core).
LONG_GOP_FRAMES = 60


def add_arguments(parser) -> None:
    parser.add_argument("media", help="video file (mp4/avi/mov/mkv) or folder of images")
    parser.add_argument("--numbering", choices=("file", "ordinal"), default="file",
                        help="image folders: frame number from each file name (default) or 1..N "
                             "in sorted order (CAS(ME)^3 Part C)")
    parser.add_argument("--fps", type=float, help="frame rate of an image folder (files store none)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead")


def run(args) -> int:
    from microau_gui.media import probe_media

    info = probe_media(args.media, numbering=args.numbering, fps=args.fps)
    if args.json:
        print(json.dumps(info.as_dict(), indent=2))
        return 0
    fps_note = " (nominal: image files store no frame rate; pass --fps)" if info.fps_is_nominal else ""
    rate = "variable" if info.is_vfr else "constant"
    lines = [
        f"media:     {info.path}",
        f"kind:      {'video' if info.kind == 'video' else 'image sequence'} ({info.codec})",
        f"frames:    {info.n_frames} (numbered {info.first_number}-{info.last_number})",
        f"fps:       {info.fps:.6g}{fps_note}",
        f"size:      {info.width} x {info.height} px",
        f"duration:  {info.duration_s:.3f} s",
        f"variable frame rate: {'yes' if info.is_vfr else 'no'} ({rate})",
    ]
    if info.kind == "video":
        lines.append(f"keyframes: at most every {info.max_gop} frames")
    if info.n_decodable < info.n_frames:
        lines.append(f"WARNING: truncated: frames {info.n_decodable}-{info.n_frames - 1} cannot be decoded")
    if info.max_gop > LONG_GOP_FRAMES:
        lines.append("note: long keyframe interval; for snappy random access re-encode, e.g. "
                     "`ffmpeg -i IN -c:v libx264 -g 30 -crf 18 OUT.mp4`")
    print("\n".join(lines))
    return 0
