"""`python main.py proxy VIDEO [--force]`: build the seek proxy of a long-GOP video;
`python main.py proxy --gc`: clean the proxy cache.

Owns the `proxy` subcommand. May import every layer; the work is in `media.proxy`.

A seek proxy is a lossless copy of the video with a keyframe every few frames, verified to decode
to the same frames bit for bit, which makes random seeks fast (see media/proxy.py). The window
builds one in the background on its own; this command builds it ahead of time, e.g. for a batch
of interviews. Videos whose keyframes are already close together need none: the command says so
and exits 0, unless --force. An existing proxy is kept unless --force. Progress is one line on
stderr; the result (where, size, build speed) on stdout.

The cache is capped (`MICROAU_PROXY_CACHE_GB`, default 10): building evicts the least recently
used proxies, and refuses a proxy that alone would exceed the cap. `--gc` removes proxies of
deleted or changed originals and leftovers of crashed builds, then enforces the cap.
"""

from __future__ import annotations

import sys
import time

NAME = "proxy"
HELP = "build the lossless seek proxy of a long-GOP video (fast exact random access)"


def add_arguments(parser) -> None:
    parser.add_argument("video", nargs="?", help="video file (mp4/avi/mov/mkv)")
    parser.add_argument("--gc", action="store_true",
                        help="remove proxies of deleted or changed videos and leftovers of crashed "
                             "builds, then evict the least recently used ones above the cache cap "
                             "(MICROAU_PROXY_CACHE_GB, default 10)")
    parser.add_argument("--force", action="store_true",
                        help="build even when the video seeks fast already, and rebuild an existing proxy")
    parser.add_argument("--threads", type=int, default=0, metavar="N",
                        help="encoder threads (default 0: libx264 picks, about 1.5 per core)")


def _show_progress(done: int, total: int, started: float) -> None:
    rate = done / max(time.perf_counter() - started, 1e-6)
    print(f"\rproxy: {done}/{total} frames ({100.0 * done / total:.0f} %), {rate:.0f} fps",
          end="", file=sys.stderr, flush=True)


def _collect_garbage() -> int:
    from microau_gui.media.proxy import collect_garbage, proxy_dir

    report = collect_garbage()
    print(f"seek-proxy cache {proxy_dir()}: removed {report.orphans} of deleted videos, {report.stale} "
          f"of changed videos, {report.incomplete} incomplete and {report.evicted} least recently used; "
          f"freed {report.freed_bytes / 1e6:.0f} MB\n  {report.kept} proxies, {report.kept_bytes / 1e6:.0f} MB "
          f"of the {report.cap_bytes / 1e9:.1f} GB cap (MICROAU_PROXY_CACHE_GB)")
    return 0


def run(args) -> int:
    from microau_gui.core.errors import UserError
    from microau_gui.media import PROXY_MIN_GOP, VideoSource, build_proxy, find_proxy, open_media

    if args.gc:
        if args.video is not None:
            raise UserError("--gc cleans the whole proxy cache; run it without a video")
        return _collect_garbage()
    if args.video is None:
        raise UserError("give the video to build a seek proxy of, or --gc to clean the proxy cache")
    if args.threads < 0:
        raise UserError(f"--threads {args.threads}: use 0 (automatic) or more")
    with open_media(args.video, cache_frames=0, use_proxy=False) as source:
        if not isinstance(source, VideoSource):
            raise UserError(f"{source.name} is an image folder; its frames are read directly, no proxy is needed")
        name, max_gop, n_frames, fps = source.name, source.max_gop, source.n_frames, source.fps
        existing = find_proxy(source.path, n_frames=n_frames)
    if max_gop <= PROXY_MIN_GOP and not args.force:
        print(f"{name}: keyframes at most every {max_gop} frames (<= {PROXY_MIN_GOP}), seeks are "
              "already fast; no proxy needed (--force builds one anyway)")
        return 0
    if existing is not None and not args.force:
        print(f"{name}: seek proxy already built: {existing} ({existing.stat().st_size / 1e6:.0f} MB); "
              "--force rebuilds it")
        return 0
    started = time.perf_counter()
    try:
        path = build_proxy(args.video, progress=lambda done, total: _show_progress(done, total, started),
                           threads=args.threads)
    finally:
        print(file=sys.stderr, flush=True)  # end the progress line
    seconds = time.perf_counter() - started
    size_mb = path.stat().st_size / 1e6
    minutes = n_frames / fps / 60.0 if fps > 0 else 0.0
    per_min = f", {size_mb / minutes:.0f} MB per minute of video" if minutes > 0 else ""
    print(f"{name}: seek proxy {path}\n  {size_mb:.0f} MB{per_min}; built at {n_frames / seconds:.0f} fps "
          f"in {seconds:.1f} s; lossless, verified exact")
    return 0
