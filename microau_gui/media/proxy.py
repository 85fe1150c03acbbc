"""Seek proxies: lossless short-GOP copies of long-GOP videos, so random seeks stay fast.

Owns: `build_proxy`, `find_proxy`, `wants_proxy`, `proxy_unsupported_reason`, `proxy_path_for`,
`estimate_proxy_bytes`, `check_disk_space`, `PROXY_MIN_GOP`, and the cache around them (in
`core.paths.proxy_dir()`): `proxy_cache_cap`, `cached_proxies`, `collect_garbage`, `GarbageReport`.
May import core and the other media modules (plus numpy, PyAV, and pydantic for the sidecar's
schema). No torch, no Qt.

Why: `VideoSource.read(N)` decodes from the keyframe before N. In a file with a keyframe every 250
frames (x264's default) a random 720p seek decodes up to 250 frames, ~300 ms at p95 on one core.
Editing tools answer with a proxy; ours must be exact, since every label is keyed to a frame and
the model sees the pixels. So the proxy re-encodes the original's decoded frames, in the same
pixel format and with the same colour tags, with libx264 in lossless mode (qp 0), a keyframe
every `PROXY_GOP` frames and no B-frames, and preset ultrafast (CAVLC: decoding CABAC at qp 0 was
~4x slower to seek). Decoded, frame k of the proxy is frame k of the original bit for bit, and
`to_ndarray(format="rgb24")` turns both into the same array. On the 720p benchmark file: a GOP of
4 costs ~160 KB per frame and seeks at p95 ~26 ms (GOP 8: ~140 KB, p95 ~40-47 ms on a loaded
machine; GOP 1: ~290 KB, ~13 ms).

Exactness is checked, not assumed: while encoding, the RGB array of a sample of the original's
frames (the first, the last, the frames around up to 16 of its keyframes, 16 random ones) is
hashed (BLAKE2b of the array bytes); after writing, the proxy is opened as a `VideoSource` and
`read()` of every sampled frame must hash the same, and the original's own `read()` (its random-
access path) of the last and one random frame must too. Any difference and no proxy is kept.

Frame k of the proxy has pts k in a 1/fps time base; the original's timestamps stay the truth
for `time_s` (the proxy is only ever addressed by frame index).

Where: `core.paths.proxy_dir()` (`$MICROAU_PROXY_DIR`, else `$XDG_CACHE_HOME/microau_studio/proxies`), one
`<stem>-<fingerprint>.mp4` per original plus a `.json` sidecar (format version, the original's
frame count, size, pixel format, what was verified). The fingerprint covers the original's
resolved path, size, mtime and a hash of its first and last MiB, so an edited or replaced file
never reuses a stale proxy; building a new proxy deletes older ones of the same path. Both files
are written to a temporary name and renamed, the proxy first: a proxy is complete iff its sidecar
exists.

The cache is bounded (a proxy holds about 16x its lossy original: ~300 MB per minute at 720p,
~1.8 GB at 4K). `proxy_cache_cap()`: `$MICROAU_PROXY_CACHE_GB` (decimal GB; 0 keeps no proxy),
else `DEFAULT_PROXY_CACHE_BYTES`, 10 GB: half an hour of 720p, a few minutes of 4K, a small share
of a laptop's disk. Least recently used proxies go first: `find_proxy` touches the sidecar, so
its mtime is the last use. Before a build, a proxy whose estimate alone exceeds the cap is
refused (seeks stay on the original), and older proxies are evicted until the estimate fits;
the build stops when its bytes so far project past that room, and the cap is enforced again
after it. A proxy evicted while a reader has it open stays readable through the open file on
POSIX systems; elsewhere the unlink fails and the proxy stays until the next eviction.
`collect_garbage()` (`proxy --gc`) removes proxies of deleted or changed originals, sidecars
without a proxy, proxies without a sidecar and temporaries of crashed builds, then enforces the
cap. Only files named as we name them are touched, whatever folder `$MICROAU_PROXY_DIR` names.

Which files get one (`wants_proxy`): a longest GOP above `PROXY_MIN_GOP` frames, and nothing
that would keep the copy from being exact or simply addressable:
- 8-bit planar YUV (yuv420p/422p/444p and their full-range "j" forms), even width and height:
  what libx264 encodes losslessly and what the original's decoder hands over unchanged.
- not truncated: missing frames would shift the copy's frame numbering;
- constant frame rate: frame mapping is by index, so variable timing would not break it, but
  variable-rate files (phones, screen recorders) are where demuxers and decoders disagree most
  about which frames exist (dropped or duplicated frames, edit lists), and the sampled check is
  weakest there; they seek in the original until that is tested.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
import math
import os
import time
from contextlib import nullcontext
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from pydantic import BaseModel, ValidationError

from microau_gui.core.errors import UserError
from microau_gui.core.files import write_atomically
from microau_gui.core.paths import PROXY_DIR_ENV, proxy_dir
from microau_gui.core.progress import Progress, ShouldCancel, check_cancel
from microau_gui.media.video import VideoSource
from microau_gui.media.writer import rate_fraction

log = logging.getLogger(__name__)

PROXY_MIN_GOP = 30  # longest GOP (frames) at or below which seeks are already short: no proxy
PROXY_GOP = 4  # keyframe interval of the proxy
PROXY_FORMAT_VERSION = 1  # bump when the encoding changes; older proxies are then rebuilt
PROXY_CACHE_ENV = "MICROAU_PROXY_CACHE_GB"
DEFAULT_PROXY_CACHE_BYTES = 10 * 10**9
PROXY_PIX_FMTS = frozenset({"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p"})
FREE_SPACE_MARGIN_BYTES = 1 << 30  # left free on the disk, for the project and everything else
# Lossless H.264 size / raw YUV size. The 720p benchmark file (a face, mild sensor noise) gives
# ~0.12; grainy camera footage compresses worse, so plan for 0.25; the build re-checks the space
# from the bytes actually written every 30 frames.
_PROXY_RAW_RATIO = 0.25
_RAW_BYTES_PER_PX = {"420": 1.5, "422": 2.0, "444": 3.0}
_FINGERPRINT_CHUNK = 1 << 20  # bytes hashed at each end of the original
# qp 0: lossless. ultrafast: CAVLC, the fastest to decode. Keyframes exactly every PROXY_GOP.
_X264_OPTIONS = {"qp": "0", "preset": "ultrafast", "bf": "0", "g": str(PROXY_GOP),
                 "keyint_min": str(PROXY_GOP), "sc_threshold": "0"}
_PROGRESS_EVERY = 30  # frames between progress calls
_N_KEYFRAME_SAMPLES = 16  # original keyframes whose neighbourhood is verified
_N_RANDOM_SAMPLES = 16
_STALE_TMP_S = 600.0  # a temporary proxy untouched this long is left over from a crashed build
# `<stem>-<32 hex>.mp4` (proxy_path_for) and its `.json`: the only names the cache ever deletes.
_PROXY_NAME = re.compile(r"^.+-[0-9a-f]{32}\.(mp4|json)$")
_TMP_NAME = re.compile(r"^\..+-[0-9a-f]{32}\.(mp4|json)\..+\.tmp$")


def proxy_cache_cap() -> int:
    """Bytes the proxy folder may hold: `$MICROAU_PROXY_CACHE_GB` (GB, 10^9 bytes), else
    DEFAULT_PROXY_CACHE_BYTES. UserError for a value that is not a number >= 0."""
    configured = os.environ.get(PROXY_CACHE_ENV, "").strip()
    if not configured:
        return DEFAULT_PROXY_CACHE_BYTES
    try:
        gb = float(configured)
    except ValueError:
        gb = math.nan
    if not math.isfinite(gb) or gb < 0:
        raise UserError(f"{PROXY_CACHE_ENV}={configured!r} is not a size; set it to the seek-proxy cache "
                        f"size in GB, e.g. {PROXY_CACHE_ENV}=10 (0 keeps no proxy)")
    return int(gb * 1e9)


@dataclass(frozen=True)
class CachedProxy:
    """A complete proxy in the cache folder (proxy file plus sidecar)."""

    path: Path  # the proxy .mp4
    n_bytes: int  # proxy + sidecar
    last_used: float  # sidecar mtime, s since the epoch (find_proxy touches it)
    source: Path | None  # the original it copies, as recorded when it was built


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def cached_proxies(folder: Path | None = None) -> list[CachedProxy]:
    """The complete proxies in `folder` (default `proxy_dir()`), least recently used first."""
    folder = proxy_dir() if folder is None else folder
    entries = []
    for sidecar in folder.glob("*.json") if folder.is_dir() else ():
        proxy = sidecar.with_suffix(".mp4")
        meta = _read_sidecar(proxy)
        if not _PROXY_NAME.match(sidecar.name) or meta is None or not proxy.is_file():
            continue
        try:
            last_used = sidecar.stat().st_mtime
        except OSError:
            continue  # evicted by another process meanwhile
        entries.append(CachedProxy(proxy, _size(proxy) + _size(sidecar), last_used,
                                   Path(meta.source) if meta.source is not None else None))
    return sorted(entries, key=lambda entry: entry.last_used)


def _delete(proxy: Path) -> int:
    """Delete a proxy and its sidecar (the proxy first: a sidecar alone is never "complete");
    return the bytes freed."""
    freed = 0
    for path in (proxy, _sidecar(proxy)):
        size = _size(path)
        try:
            path.unlink()
            freed += size
        except FileNotFoundError:
            pass
        except OSError as err:  # e.g. open in a reader on Windows; the next eviction retries
            log.info("could not delete %s (%s)", path, err)
    return freed


def _evict(folder: Path, n_bytes: int, cap: int, keep: Path | None = None) -> int:
    """Delete least recently used proxies (never `keep`) until the cache plus `n_bytes` fits in
    `cap`; return the bytes the cache then holds besides `keep`."""
    entries = [e for e in cached_proxies(folder) if e.path != keep]
    used = sum(e.n_bytes for e in entries)
    for entry in entries:
        if used + n_bytes <= cap:
            break
        used -= _delete(entry.path)
        log.info("evicted the least recently used seek proxy %s (cache cap %s)", entry.path.name, _gb(cap))
    return used


@dataclass(frozen=True)
class GarbageReport:
    """What `collect_garbage` removed and what the cache holds afterwards."""

    orphans: int  # proxies whose original no longer exists
    stale: int  # proxies of an original that changed since (another fingerprint)
    incomplete: int  # sidecars without a proxy, proxies without a sidecar, crashed temporaries
    evicted: int  # least recently used proxies removed to get under the cap
    freed_bytes: int
    kept: int  # proxies left
    kept_bytes: int
    cap_bytes: int


def collect_garbage(folder: Path | None = None, now: float | None = None) -> GarbageReport:
    """Clean the proxy folder (default `proxy_dir()`): see the module docstring."""
    folder = proxy_dir() if folder is None else folder
    cap = proxy_cache_cap()
    now = time.time() if now is None else now
    orphans = stale = incomplete = freed = 0
    if not folder.is_dir():
        return GarbageReport(0, 0, 0, 0, 0, 0, 0, cap)
    for entry in cached_proxies(folder):
        if entry.source is None or not entry.source.is_file():
            orphans += 1
        else:
            try:
                current = proxy_path_for(entry.source).name
            except UserError:  # unreadable now: keep the proxy, the original may come back
                continue
            if current == entry.path.name:
                continue
            stale += 1
        freed += _delete(entry.path)
    for path in folder.iterdir():
        old = now - _mtime(path) > _STALE_TMP_S  # a build may be between its two renames
        lone_sidecar = path.suffix == ".json" and not path.with_suffix(".mp4").exists()
        lone_proxy = path.suffix == ".mp4" and not _sidecar(path).exists()
        if ((_PROXY_NAME.match(path.name) and (lone_sidecar or lone_proxy) and old)
                or (_TMP_NAME.match(path.name) and old)):
            size = _size(path)
            path.unlink(missing_ok=True)
            incomplete += 1
            freed += size
    before = cached_proxies(folder)
    used = _evict(folder, 0, cap)
    after = cached_proxies(folder)
    freed += sum(e.n_bytes for e in before) - used
    return GarbageReport(orphans, stale, incomplete, len(before) - len(after), freed, len(after), used, cap)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return math.inf  # gone already: never "old"


def _fingerprint(video_path: Path) -> str:
    resolved = video_path.expanduser().resolve()
    try:
        stat = resolved.stat()
        digest = hashlib.blake2b(digest_size=16)
        digest.update(f"{resolved}\0{stat.st_size}\0{stat.st_mtime_ns}\0".encode())
        with open(resolved, "rb") as handle:
            digest.update(handle.read(_FINGERPRINT_CHUNK))
            handle.seek(max(0, stat.st_size - _FINGERPRINT_CHUNK))
            digest.update(handle.read(_FINGERPRINT_CHUNK))
    except OSError as err:
        raise UserError(f"cannot read {video_path} ({err.strerror or err}); check the path") from None
    return digest.hexdigest()


def proxy_path_for(video_path: Path | str) -> Path:
    """The proxy file this exact version of `video_path` has (whether built or not)."""
    video_path = Path(video_path)
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", video_path.stem)[:40] or "video"
    return proxy_dir() / f"{stem}-{_fingerprint(video_path)}.mp4"


def _sidecar(proxy_path: Path) -> Path:
    return proxy_path.with_suffix(".json")


class _Sidecar(BaseModel):
    """What a proxy's sidecar must hold for the proxy to be used or matched to its original. It is
    read through this schema: a damaged or hand-edited sidecar (a count that is text, a source that
    is a number) makes its proxy unusable, so it is rebuilt, never trusted."""

    format_version: int
    source: str | None = None
    n_frames: int | None = None


def _read_sidecar(proxy_path: Path) -> _Sidecar | None:
    try:
        return _Sidecar.model_validate_json(_sidecar(proxy_path).read_bytes())
    except (OSError, ValidationError):
        return None


def find_proxy(video_path: Path | str, n_frames: int | None = None) -> Path | None:
    """The complete proxy of this version of `video_path`, or None. n_frames: the original's frame
    count when the caller knows it; a proxy recorded with another count is not returned."""
    path = proxy_path_for(video_path)
    if not path.is_file():
        return None
    meta = _read_sidecar(path)
    if meta is None or meta.format_version != PROXY_FORMAT_VERSION:
        return None
    if n_frames is not None and meta.n_frames != n_frames:
        return None
    try:
        os.utime(_sidecar(path))  # the sidecar's mtime is the last use (least-recently-used eviction)
    except OSError:
        pass  # a read-only cache still serves its proxies; they just age as built
    return path


def proxy_unsupported_reason(source: VideoSource) -> str | None:
    """Why no exact proxy can be made of this video (see the module docstring); None if one can."""
    width, height = source.size
    if source.pix_fmt not in PROXY_PIX_FMTS:
        return (f"its pixel format {source.pix_fmt or 'unknown'} has no lossless re-encoding here "
                f"(supported: {', '.join(sorted(PROXY_PIX_FMTS))})")
    if width % 2 or height % 2:
        return f"its size {width}x{height} is odd; lossless H.264 needs an even width and height"
    if source.is_truncated:
        return "it is truncated, so frames of the copy would not line up with the original"
    if source.is_vfr:
        return "it has a variable frame rate"
    return None


def wants_proxy(source: VideoSource) -> bool:
    """Whether this video seeks slowly (longest GOP above PROXY_MIN_GOP) and an exact proxy can
    be made of it (`proxy_unsupported_reason`)."""
    return source.max_gop > PROXY_MIN_GOP and proxy_unsupported_reason(source) is None


def estimate_proxy_bytes(source: VideoSource) -> int:
    """A planning estimate of the proxy's size in bytes (`_PROXY_RAW_RATIO` of raw YUV)."""
    width, height = source.size
    fmt = source.pix_fmt or "yuv420p"
    chroma = next((c for c in _RAW_BYTES_PER_PX if c in fmt), "420")
    raw = source.n_decodable * width * height * _RAW_BYTES_PER_PX[chroma]
    return int(raw * _PROXY_RAW_RATIO)


def _free_bytes(folder: Path) -> int:
    return shutil.disk_usage(folder).free


def _gb(n_bytes: float) -> str:
    return f"{n_bytes / 1e9:.1f} GB"


def _space_error(n_bytes: float, free: int, folder: Path) -> UserError:
    return UserError(
        f"a seek proxy needs about {_gb(n_bytes)} more but {folder} has {_gb(free)} free (1 GB is kept "
        f"spare); free some space or set {PROXY_DIR_ENV} to a folder on a larger disk"
    )


def _cap_error(name: str, n_bytes: float, cap: int) -> UserError:
    return UserError(
        f"a seek proxy of {name} needs about {_gb(n_bytes)}, more than the seek-proxy cache may hold "
        f"({_gb(cap)}, {PROXY_CACHE_ENV}); seeks stay on the original (exact, slower): raise "
        f"{PROXY_CACHE_ENV} to build one"
    )


def check_disk_space(n_bytes: int, folder: Path) -> None:
    """Raise UserError unless `n_bytes` fit in `folder` with FREE_SPACE_MARGIN_BYTES to spare."""
    free = _free_bytes(folder)
    if n_bytes > free - FREE_SPACE_MARGIN_BYTES:
        raise _space_error(n_bytes, free, folder)


def _rgb_digest(rgb: np.ndarray) -> str:
    digest = hashlib.blake2b(np.ascontiguousarray(rgb).data, digest_size=16)
    digest.update(repr(rgb.shape).encode())
    return digest.hexdigest()


def _sample_frames(source: VideoSource) -> list[int]:
    """Frames whose RGB arrays are compared between the original and the proxy."""
    n = source.n_decodable
    keyframes = [k for k in source.keyframe_indices if 0 < k < n]
    if len(keyframes) > _N_KEYFRAME_SAMPLES:
        picks = np.linspace(0, len(keyframes) - 1, _N_KEYFRAME_SAMPLES).round().astype(int)
        keyframes = [keyframes[i] for i in picks]
    chosen = {0, n - 1}
    for k in keyframes:
        chosen.update(i for i in (k - 1, k, k + 1) if 0 <= i < n)
    rng = np.random.default_rng(n)
    chosen.update(int(i) for i in rng.integers(0, n, size=min(_N_RANDOM_SAMPLES, n)))
    return sorted(chosen)


def _remove_leftovers(target: Path) -> None:
    """Delete older proxies of the same original path and temporaries of crashed builds."""
    now = time.time()
    for tmp in target.parent.glob(".*.tmp"):
        try:
            if now - tmp.stat().st_mtime > _STALE_TMP_S:
                tmp.unlink()
        except OSError:
            pass  # another build removed or renamed it meanwhile
    meta = _read_sidecar(target)
    if meta is None:
        return
    for sidecar in target.parent.glob("*.json"):
        older = sidecar.with_suffix(".mp4")
        if older == target:
            continue
        other = _read_sidecar(older)
        if other is not None and meta.source is not None and other.source == meta.source:
            older.unlink(missing_ok=True)
            sidecar.unlink(missing_ok=True)
            log.info("deleted the stale seek proxy %s", older)


class _Encoder:
    """One proxy encoding pass: the original decoded in order, re-encoded losslessly."""

    def __init__(self, source: VideoSource, tmp: Path, threads: int,
                 progress: Progress | None, should_cancel: ShouldCancel | None,
                 target: Path, cap: int, room: int):
        self.source = source
        self.target = target  # the proxy's final name
        self.cap = cap  # proxy_cache_cap() when the build started
        self.room = room  # bytes the other proxies leave under the cap
        self.tmp = tmp
        self.threads = threads
        self.progress = progress
        self.should_cancel = should_cancel
        self.samples = set(_sample_frames(source))
        self.digests: dict[int, str] = {}  # frame_idx -> RGB digest of the original's frame

    def _check_cancelled(self) -> None:
        check_cancel(self.should_cancel, f"seek proxy of {self.source.name} cancelled")

    def _check_space(self, done: int, total: int) -> None:
        """Stop early when the size so far projects past the free space (FREE_SPACE_MARGIN_BYTES
        kept; a full disk would also stop the project from saving) or past the cache cap."""
        written = self.tmp.stat().st_size
        rest = written / done * (total - done)
        free = _free_bytes(self.tmp.parent)
        if rest > free - FREE_SPACE_MARGIN_BYTES:
            raise _space_error(rest, free, self.tmp.parent)
        if written + rest > self.room:  # the estimate was low: evict more, if that is enough
            self.room = self.cap - _evict(self.target.parent, written + rest, self.cap, keep=self.target)
            if written + rest > self.room:
                raise _cap_error(self.source.name, written + rest, self.cap)

    def _configure(self, stream, first: av.VideoFrame) -> None:
        ctx = stream.codec_context
        stream.width, stream.height = first.width, first.height
        stream.pix_fmt = first.format.name
        # The decoder tags its frames from these, and to_ndarray's YUV->RGB reads the tags.
        ctx.colorspace = first.colorspace
        ctx.color_range = first.color_range
        ctx.color_primaries = first.color_primaries
        ctx.color_trc = first.color_trc
        ctx.thread_type = "FRAME" if self.threads != 1 else "NONE"
        ctx.thread_count = self.threads
        stream.options = dict(_X264_OPTIONS)

    def encode(self) -> None:
        source = self.source
        total = source.n_decodable
        rate = rate_fraction(source.fps) if source.fps > 0 else Fraction(30)
        with av.open(str(self.tmp), mode="w", format="mp4") as out:
            stream = out.add_stream("libx264", rate=rate)
            done = 0
            for idx, frame in source.iter_av_frames(0, total):
                self._check_cancelled()
                if idx == 0:  # before to_ndarray, which resets the frame's trc/primaries tags
                    self._configure(stream, frame)
                if idx in self.samples:
                    self.digests[idx] = _rgb_digest(frame.to_ndarray(format="rgb24"))  # (H, W, 3)
                frame.pts = idx
                frame.time_base = 1 / rate
                # The decoder's picture types would otherwise force I/P/B types on libx264.
                frame.pict_type = av.video.frame.PictureType.NONE
                for packet in stream.encode(frame):
                    out.mux(packet)
                done = idx + 1
                if done % _PROGRESS_EVERY == 0:
                    self._check_space(done, total)
                    if self.progress is not None:
                        self.progress(done, total)
            for packet in stream.encode(None):
                out.mux(packet)
        if done != total:
            raise UserError(f"could not make a seek proxy of {source.name}: decoding stopped at frame "
                            f"{done} of {total}; re-copy or re-export the video")
        if self.progress is not None and total % _PROGRESS_EVERY:
            self.progress(total, total)

    def verify(self) -> list[int]:
        """Compare the sampled frames of the written proxy with the original; return them."""
        source = self.source
        name = source.name

        def inexact(what: str) -> UserError:
            return UserError(f"could not make an exact seek proxy of {name} ({what}); seeks stay on the "
                             "original, which is exact but slower")

        with VideoSource(self.tmp, cache_frames=0) as proxy:
            if (proxy.n_frames, proxy.size) != (source.n_decodable, source.size):
                raise inexact(f"the copy holds {proxy.n_frames} frames of {proxy.size[0]}x{proxy.size[1]}")
            for idx in sorted(self.digests):
                self._check_cancelled()
                if _rgb_digest(proxy.read(idx)) != self.digests[idx]:
                    raise inexact(f"frame {idx} (0-based) differs after lossless re-encoding")
        checked = sorted(self.digests)
        # The original's random-access path must agree with its sequential decode too.
        for idx in (checked[-1], checked[len(checked) // 2]):
            if _rgb_digest(source.read(idx)) != self.digests[idx]:
                raise inexact(f"frame {idx} (0-based) of the original reads differently at random "
                              "and in order")
        return checked


def build_proxy(video_path: Path | str, progress: Progress | None = None,
                should_cancel: ShouldCancel | None = None, threads: int = 1,
                source: VideoSource | None = None) -> Path:
    """Build (or rebuild) the seek proxy of `video_path` in `proxy_dir()`; return its path.

    progress(done_frames, total_frames) is called every ~30 frames and once at the end;
    should_cancel() is polled every frame and, when it returns True, `core.progress.Cancelled` is raised and no
    file is left behind. threads: libx264 threads (1 leaves the other core to inference; 0 lets
    libx264 choose). Builds regardless of the GOP (`wants_proxy` says whether one is worth it);
    evicts least recently used proxies to stay under `proxy_cache_cap()`; raises UserError when
    no exact proxy can be made, when it would not fit under the cap or on the disk, or when the
    written copy does not verify as exact. source: `video_path` already open as a VideoSource
    (used and left open), so a caller that opened it to ask `wants_proxy` does not index the
    original twice.
    """
    video_path = Path(video_path).expanduser()
    started = time.perf_counter()
    opened = nullcontext(source) if source is not None else VideoSource(video_path, cache_frames=0)
    with opened as source:
        reason = proxy_unsupported_reason(source)
        if reason is not None:
            raise UserError(f"no seek proxy can be made of {source.name}: {reason}; it is read from the "
                            "original (exact, slower to seek)")
        target = proxy_path_for(video_path)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise UserError(f"cannot create the proxy folder {target.parent} ({err.strerror or err}); "
                            f"set {PROXY_DIR_ENV} to a writable folder") from None
        cap = proxy_cache_cap()
        estimate = estimate_proxy_bytes(source)
        if estimate > cap:
            raise _cap_error(source.name, estimate, cap)
        check_disk_space(estimate, target.parent)
        room = cap - _evict(target.parent, estimate, cap, keep=target)
        verified: list[int] = []

        def write(tmp: Path) -> None:
            encoder = _Encoder(source, tmp, threads, progress, should_cancel, target, cap, room)
            encoder.encode()
            verified.extend(encoder.verify())

        try:
            write_atomically(target, write)
        except (OSError, av.error.FFmpegError) as err:
            raise UserError(f"could not write the seek proxy of {source.name} to {target.parent} ({err}); "
                            f"free some space or set {PROXY_DIR_ENV} to another folder") from None
        meta = {
            "format_version": PROXY_FORMAT_VERSION,
            "source": str(video_path.resolve()),
            "n_frames": source.n_decodable,
            "size": list(source.size),
            "pix_fmt": source.pix_fmt,
            "gop": PROXY_GOP,
            "encoding": "libx264 lossless (qp 0, ultrafast, no B-frames)",
            "verified_frames": verified,
            "bytes": target.stat().st_size,
            "build_s": round(time.perf_counter() - started, 2),
        }
        write_atomically(_sidecar(target), lambda tmp: tmp.write_text(json.dumps(meta, indent=1)))
    _remove_leftovers(target)
    _evict(target.parent, 0, cap, keep=target)
    log.debug("seek proxy of %s: %s (%.0f MB, %d frames verified exact)", video_path.name, target,
              meta["bytes"] / 1e6, len(verified))
    return target
