"""Seek proxies (media/proxy.py) on real H.264 files the tests write: every frame read through the
proxy equals the original's, `open_media` picks a built proxy up and decodes from it, a changed
original never reuses a stale proxy, and cancelling, a full disk or an inexact copy leave no file.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from microau_gui.core.errors import UserError
from microau_gui.core.progress import Cancelled
from microau_gui.media import (
    PROXY_MIN_GOP,
    VideoSource,
    build_proxy,
    find_proxy,
    open_media,
    proxy_path_for,
    wants_proxy,
    write_video,
)
from microau_gui.media import proxy as proxy_module
from microau_gui.media.proxy import (
    PROXY_CACHE_ENV,
    PROXY_DIR_ENV,
    cached_proxies,
    proxy_cache_cap,
    proxy_unsupported_reason,
)

MAIN = Path(__file__).resolve().parents[1] / "main.py"
N_FRAMES = 80
LONG_GOP = 60


def moving_frames(n: int, seed: int = 0) -> list[np.ndarray]:
    """A textured scene panning a pixel per frame, with a bright square that moves and fresh noise:
    a lossy re-encoding of it would differ from the original in many pixels."""
    rng = np.random.default_rng(seed)
    texture = rng.integers(0, 256, (240, 400, 3), dtype=np.uint8)
    frames = []
    for k in range(n):
        rgb = texture[:, k:k + 320].copy()
        rgb[40 + k % 100:80 + k % 100, 60:100] = (250, 30, 30)
        rgb = np.clip(rgb.astype(np.int16) + rng.integers(-6, 7, rgb.shape), 0, 255).astype(np.uint8)
        frames.append(rgb)
    return frames


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Path]:
    """A long-GOP video and its proxy, built once for the tests that only read."""
    folder = tmp_path_factory.mktemp("proxy")
    video = folder / "interview.mp4"
    write_video(video, moving_frames(N_FRAMES), 25, codec="h264", gop=LONG_GOP)
    proxies = folder / "proxies"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(PROXY_DIR_ENV, str(proxies))
        proxy = build_proxy(video)
    return {"video": video, "proxies": proxies, "proxy": proxy}


@pytest.fixture
def proxy_env(built, monkeypatch) -> Path:
    monkeypatch.setenv(PROXY_DIR_ENV, str(built["proxies"]))
    return built["proxies"]


@pytest.fixture
def fresh(tmp_path, monkeypatch) -> dict[str, Path]:
    """A private long-GOP video and an empty proxy folder, for the tests that build or break."""
    video = tmp_path / "session.mp4"
    write_video(video, moving_frames(N_FRAMES, seed=1), 25, codec="h264", gop=LONG_GOP)
    proxies = tmp_path / "proxies"
    monkeypatch.setenv(PROXY_DIR_ENV, str(proxies))
    return {"video": video, "proxies": proxies}


def test_every_frame_read_through_the_proxy_equals_the_original(built, proxy_env):
    assert built["proxy"].parent == proxy_env and built["proxy"].stat().st_size > 0
    with open_media(built["video"], cache_frames=0, use_proxy=False) as original, \
            open_media(built["video"], cache_frames=0) as proxied:
        assert proxied.proxy_path == built["proxy"] and original.proxy_path is None
        for frame_idx in range(N_FRAMES):
            assert np.array_equal(proxied.read(frame_idx), original.read(frame_idx)), frame_idx
        # The proxy did the decoding, the original's decoder did none.
        assert proxied.n_decoded == 0 and proxied.n_decoded_proxy >= N_FRAMES
        assert original.n_decoded >= N_FRAMES


def write_bt709_full_range(path: Path, frames: list[np.ndarray]) -> None:
    """An H.264 file tagged BT.709, full range (what many cameras write); write_video tags none."""
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuvj420p"
        ctx = stream.codec_context
        ctx.colorspace, ctx.color_range, ctx.color_primaries, ctx.color_trc = 1, 2, 1, 1  # BT.709, full
        stream.options = {"g": str(LONG_GOP), "crf": "18", "preset": "veryfast", "sc_threshold": "0"}
        for k, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(
                format="yuvj420p", dst_colorspace="ITU709", dst_color_range="JPEG")
            frame.pts = k
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def test_colour_tags_are_carried_so_rgb_stays_identical(fresh):
    video = fresh["video"].with_name("camera.mp4")
    write_bt709_full_range(video, moving_frames(N_FRAMES, seed=5))
    proxy = build_proxy(video)
    with av.open(str(video)) as original, av.open(str(proxy)) as copy:
        first_original, first_copy = next(original.decode(video=0)), next(copy.decode(video=0))
        tags = ("colorspace", "color_range", "format")
        assert [str(getattr(first_copy, t)) for t in tags] == [str(getattr(first_original, t)) for t in tags]
        assert first_original.colorspace == 1  # BT.709: a copy without it would convert differently
    with open_media(video, cache_frames=0, use_proxy=False) as plain, open_media(video, cache_frames=0) as proxied:
        assert proxied.proxy_path == proxy
        for frame_idx in range(N_FRAMES):
            assert np.array_equal(proxied.read(frame_idx), plain.read(frame_idx)), frame_idx


def test_random_order_reads_equal_sequential_decoding(built, proxy_env):
    with open_media(built["video"], cache_frames=0) as source:
        assert source.proxy_path is not None
        sequential = [rgb for _, rgb in source.iter_frames()]
        order = np.random.default_rng(7).permutation(N_FRAMES)
        for frame_idx in order:
            assert np.array_equal(source.read(int(frame_idx)), sequential[frame_idx]), frame_idx
        assert source.n_decoded == N_FRAMES  # only iter_frames decoded the original


def test_open_media_keeps_the_originals_description(built, proxy_env):
    with open_media(built["video"], use_proxy=False) as plain, open_media(built["video"]) as proxied:
        for attr in ("n_frames", "fps", "size", "codec", "keyframe_indices", "max_gop", "frame_numbers"):
            assert getattr(proxied, attr) == getattr(plain, attr), attr
        assert [proxied.time_s(k) for k in range(N_FRAMES)] == [plain.time_s(k) for k in range(N_FRAMES)]
        assert proxied.max_gop == LONG_GOP and proxied.keyframe_indices == (0, LONG_GOP)
        # A frame well inside the original's long GOP costs the proxy a few frames, not ~50.
        proxied.read(LONG_GOP - 1)
        assert proxied.n_decoded == 0 and 1 <= proxied.n_decoded_proxy <= 4


def test_no_proxy_is_attached_without_one_or_when_asked_not_to(built, tmp_path, monkeypatch):
    monkeypatch.setenv(PROXY_DIR_ENV, str(tmp_path / "empty"))
    assert find_proxy(built["video"]) is None
    with open_media(built["video"], cache_frames=0) as source:
        assert source.proxy_path is None
        source.read(LONG_GOP - 1)
        # Without it the seek decodes from keyframe 0 (B-frames skipped): tens of frames.
        assert source.n_decoded >= LONG_GOP // 2 and source.n_decoded_proxy == 0


def test_a_mismatched_proxy_falls_back_to_the_original(built, tmp_path):
    other = tmp_path / "short.mp4"
    write_video(other, moving_frames(20, seed=3), 25, codec="h264", gop=10)
    with VideoSource(built["video"], cache_frames=0, proxy=other) as source:
        assert source.proxy_path == other
        with VideoSource(built["video"], cache_frames=0) as plain:
            assert np.array_equal(source.read(5), plain.read(5))
        assert source.proxy_path is None and source.n_decoded > 0


def test_a_changed_original_never_reuses_its_stale_proxy(fresh):
    video, proxies = fresh["video"], fresh["proxies"]
    old_proxy = build_proxy(video)
    assert find_proxy(video, n_frames=N_FRAMES) == old_proxy
    assert find_proxy(video, n_frames=N_FRAMES + 1) is None  # recorded for another frame count

    # Same name, new content (a re-export): the fingerprint changes, the old proxy is ignored.
    write_video(video, moving_frames(N_FRAMES, seed=9), 25, codec="h264", gop=LONG_GOP)
    assert proxy_path_for(video) != old_proxy
    assert find_proxy(video) is None
    with open_media(video, cache_frames=0) as source, VideoSource(old_proxy, cache_frames=0) as stale:
        assert source.proxy_path is None
        assert not np.array_equal(source.read(10), stale.read(10))

    # Rebuilding replaces the stale proxy and its sidecar instead of piling up copies.
    new_proxy = build_proxy(video)
    assert files_in(proxies) == sorted([new_proxy.name, new_proxy.with_suffix(".json").name])

    # Only touching the file (a new mtime) is enough to distrust the proxy too.
    os.utime(video, ns=(video.stat().st_atime_ns, video.stat().st_mtime_ns + 10**9))
    assert find_proxy(video) is None


def test_an_incomplete_proxy_without_its_sidecar_is_not_used(fresh):
    proxy = build_proxy(fresh["video"])
    proxy.with_suffix(".json").unlink()
    assert find_proxy(fresh["video"]) is None


@pytest.mark.parametrize("damage", ['"n_frames": "thirty"', '"format_version": null', '"source": 7'])
def test_a_damaged_sidecar_makes_its_proxy_unusable(fresh, damage):
    """The sidecar is read through its schema (#15 D16): a field of the wrong type means the proxy
    is not trusted (it is rebuilt), and no reader stops on it."""
    proxy = build_proxy(fresh["video"])
    sidecar = proxy.with_suffix(".json")
    meta = json.loads(sidecar.read_text())
    key = damage.split(":")[0].strip('"')
    meta[key] = json.loads(damage.split(":", 1)[1])
    sidecar.write_text(json.dumps(meta))
    assert find_proxy(fresh["video"]) is None
    assert proxy not in [entry.path for entry in cached_proxies(fresh["proxies"])]


def test_cancelling_leaves_no_file(fresh):
    seen = []

    def progress(done: int, total: int) -> None:
        seen.append((done, total))

    with pytest.raises(Cancelled):
        build_proxy(fresh["video"], progress=progress, should_cancel=lambda: bool(seen))
    assert seen == [(30, N_FRAMES)]
    assert files_in(fresh["proxies"]) == []
    assert find_proxy(fresh["video"]) is None


def test_progress_reaches_the_total(fresh):
    seen = []
    build_proxy(fresh["video"], progress=lambda done, total: seen.append((done, total)))
    assert seen == [(30, N_FRAMES), (60, N_FRAMES), (N_FRAMES, N_FRAMES)]


def test_a_full_disk_is_refused_up_front_and_during_the_build(fresh, monkeypatch):
    monkeypatch.setattr(proxy_module, "_free_bytes", lambda folder: 10**9)
    with pytest.raises(UserError, match=f"free some space or set {PROXY_DIR_ENV}"):
        build_proxy(fresh["video"])
    assert files_in(fresh["proxies"]) == []

    # Enough by the estimate, then the disk fills up while the proxy is written.
    calls = []

    def shrinking(folder: Path) -> int:
        calls.append(folder)
        return 10**12 if len(calls) == 1 else proxy_module.FREE_SPACE_MARGIN_BYTES + 1000

    monkeypatch.setattr(proxy_module, "_free_bytes", shrinking)
    with pytest.raises(UserError, match="free some space"):
        build_proxy(fresh["video"])
    assert len(calls) == 2 and files_in(fresh["proxies"]) == []


def test_a_copy_that_is_not_exact_is_rejected(fresh, monkeypatch):
    lossy = {**proxy_module._X264_OPTIONS, "qp": "30"}
    monkeypatch.setattr(proxy_module, "_X264_OPTIONS", lossy)
    with pytest.raises(UserError, match="could not make an exact seek proxy"):
        build_proxy(fresh["video"])
    assert files_in(fresh["proxies"]) == []


def test_which_videos_want_a_proxy(built, tmp_path):
    short = tmp_path / "short.mp4"
    write_video(short, moving_frames(40), 25, codec="h264", gop=10)
    vfr = tmp_path / "phone.mp4"
    write_video(vfr, moving_frames(N_FRAMES), 30, codec="h264", gop=LONG_GOP,
                times_s=[k / 30 + (0.05 if k > 40 else 0.0) for k in range(N_FRAMES)])
    with VideoSource(built["video"]) as long_gop, VideoSource(short) as short_gop, VideoSource(vfr) as phone:
        assert long_gop.max_gop > PROXY_MIN_GOP and wants_proxy(long_gop)
        assert short_gop.max_gop <= PROXY_MIN_GOP and not wants_proxy(short_gop)
        assert proxy_unsupported_reason(short_gop) is None  # it could have one, it needs none
        assert not wants_proxy(phone) and "variable frame rate" in proxy_unsupported_reason(phone)
    with pytest.raises(UserError, match="variable frame rate"):
        build_proxy(vfr)


def run_main(*args: str, proxies: Path, cap: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, PROXY_DIR_ENV: str(proxies)}
    if cap is not None:
        env[PROXY_CACHE_ENV] = cap
    return subprocess.run([sys.executable, str(MAIN), *map(str, args)], capture_output=True, text=True,
                          timeout=120, env=env)


def test_proxy_command_end_to_end(built, tmp_path):
    video = tmp_path / "interview.mp4"
    shutil.copy2(built["video"], video)
    proxies = tmp_path / "proxies"
    out = run_main("proxy", video, "--threads", "1", proxies=proxies)
    assert out.returncode == 0, out.stderr
    proxy = find_proxy_in(proxies)
    assert str(proxy) in out.stdout and "verified exact" in out.stdout and " MB" in out.stdout
    assert "fps" in out.stdout and f"{N_FRAMES}/{N_FRAMES} frames" in out.stderr
    with VideoSource(video, cache_frames=0) as original, VideoSource(proxy, cache_frames=0) as copy:
        assert np.array_equal(original.read(N_FRAMES - 1), copy.read(N_FRAMES - 1))

    again = run_main("proxy", video, proxies=proxies)
    assert again.returncode == 0 and "already built" in again.stdout
    assert find_proxy_in(proxies).stat().st_mtime_ns == proxy.stat().st_mtime_ns

    short = tmp_path / "short.mp4"
    write_video(short, moving_frames(40), 25, codec="h264", gop=10)
    out = run_main("proxy", short, proxies=proxies)
    assert out.returncode == 0 and "no proxy needed" in out.stdout
    assert len(list(proxies.glob("*.mp4"))) == 1

    out = run_main("proxy", tmp_path / "missing.mp4", proxies=proxies)
    assert out.returncode == 2 and out.stderr.startswith("error: ") and "Traceback" not in out.stderr


def age(proxy: Path, seconds: float) -> None:
    """Make a proxy's last use `seconds` ago (its sidecar's mtime is when it was last used)."""
    when = proxy.with_suffix(".json").stat().st_mtime - seconds
    os.utime(proxy.with_suffix(".json"), (when, when))


def test_the_cache_cap_evicts_the_least_recently_used_proxy(fresh, tmp_path, monkeypatch):
    # Each proxy here is ~5 MB; a 12 MB cap holds two of them.
    monkeypatch.setenv(PROXY_CACHE_ENV, "0.012")
    videos = {}
    for name, seed in (("a", 1), ("b", 2), ("c", 3)):
        videos[name] = tmp_path / f"{name}.mp4"
        write_video(videos[name], moving_frames(N_FRAMES, seed=seed), 25, codec="h264", gop=LONG_GOP)
    first, second = build_proxy(videos["a"]), build_proxy(videos["b"])
    age(first, 200)
    age(second, 100)
    assert find_proxy(videos["a"]) == first  # using "a" makes "b" the least recently used
    third = build_proxy(videos["c"])
    assert [e.path for e in cached_proxies()] == [first, third]
    assert find_proxy(videos["b"]) is None and not second.with_suffix(".json").exists()
    assert sum(e.n_bytes for e in cached_proxies()) <= proxy_cache_cap() == 12 * 10**6


def test_a_proxy_that_cannot_fit_under_the_cap_is_refused(fresh, monkeypatch):
    # Up front: the estimate (2.3 MB for this clip) alone exceeds the cap.
    monkeypatch.setenv(PROXY_CACHE_ENV, "0.002")
    with pytest.raises(UserError, match=f"more than the seek-proxy cache may hold .*{PROXY_CACHE_ENV}"):
        build_proxy(fresh["video"])
    assert files_in(fresh["proxies"]) == []
    # During the build: noise compresses worse than estimated (~5 MB written), past a 4 MB cap.
    polled = []  # cancelled() is asked once per encoded frame
    monkeypatch.setenv(PROXY_CACHE_ENV, "0.004")
    with pytest.raises(UserError, match="more than the seek-proxy cache may hold"):
        build_proxy(fresh["video"], should_cancel=lambda: bool(polled.append(1)))
    assert len(polled) == 30 and files_in(fresh["proxies"]) == []
    # 0 keeps no proxy at all.
    monkeypatch.setenv(PROXY_CACHE_ENV, "0")
    with pytest.raises(UserError, match="seeks stay on the original"):
        build_proxy(fresh["video"])


@pytest.mark.parametrize("value", ["lots", "-1", "nan", "10GB"])
def test_a_cap_setting_that_is_not_a_size_is_one_line(value, monkeypatch):
    monkeypatch.setenv(PROXY_CACHE_ENV, value)
    with pytest.raises(UserError, match=f"{PROXY_CACHE_ENV}=.* is not a size; set it to"):
        proxy_cache_cap()


def test_proxy_gc_removes_orphans_stale_and_crashed_leftovers_only(built, tmp_path):
    proxies = tmp_path / "proxies"
    kept, deleted, changed = (tmp_path / f"{name}.mp4" for name in ("kept", "deleted", "changed"))
    for video in (kept, deleted, changed):
        shutil.copy2(built["video"], video)
        assert run_main("proxy", video, "--threads", "1", proxies=proxies).returncode == 0
    names = {video: find_proxy_name(proxies, video) for video in (kept, deleted, changed)}
    deleted.unlink()
    write_video(changed, moving_frames(N_FRAMES, seed=5), 25, codec="h264", gop=LONG_GOP)
    old = 3600.0
    crashed = proxies / f".{names[kept].replace('kept', 'other')}.x1y2z3.tmp"
    crashed.write_bytes(b"half a proxy")
    os.utime(crashed, (os.path.getmtime(crashed) - old,) * 2)
    building = proxies / f".{names[kept].replace('kept', 'busy')}.a1b2c3.tmp"  # a build under way
    building.write_bytes(b"being written")
    users_own = proxies / "holiday.mp4"  # not ours: a cache folder may be shared
    users_own.write_bytes(b"not a proxy")
    os.utime(users_own, (os.path.getmtime(users_own) - old,) * 2)

    out = run_main("proxy", "--gc", proxies=proxies)
    assert out.returncode == 0, out.stderr
    assert "removed 1 of deleted videos, 1 of changed videos, 1 incomplete" in out.stdout
    assert "1 proxies" in out.stdout and "GB cap" in out.stdout
    assert files_in(proxies) == sorted([names[kept], names[kept].replace(".mp4", ".json"),
                                        building.name, users_own.name])

    out = run_main("proxy", "--gc", kept, proxies=proxies)
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "without a video" in out.stderr
    out = run_main("proxy", proxies=proxies)
    assert out.returncode == 2 and "--gc" in out.stderr and "Traceback" not in out.stderr
    out = run_main("proxy", "--gc", proxies=proxies, cap="big")
    assert out.returncode == 2 and "is not a size" in out.stderr and "Traceback" not in out.stderr


def find_proxy_name(folder: Path, video: Path) -> str:
    (proxy,) = folder.glob(f"{video.stem}-*.mp4")
    return proxy.name


def find_proxy_in(folder: Path) -> Path:
    (proxy,) = folder.glob("*.mp4")
    return proxy
