"""The session builds a seek proxy for a long-GOP video in the background and reads through it.

Real H.264 files written by the test, real QThreads (pytest-qt, offscreen), the real proxy
encoder of `media.proxy` (its exactness and cancellation are tested in test_media_proxy.py).
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from test_session_fixtures import session  # noqa: F401

from microau_gui.media import open_media, write_video
from microau_gui.media.proxy import PROXY_MIN_GOP, find_proxy

pytestmark = pytest.mark.qt_log_ignore(r"This plugin does not support propagateSizeHints")


def _write_clip(path, astronaut_path, n_frames: int, gop: int):
    face = cv2.cvtColor(cv2.imread(str(astronaut_path)), cv2.COLOR_BGR2RGB)[0:400, 60:460]
    face = cv2.resize(face, (240, 240), interpolation=cv2.INTER_AREA)
    rng = np.random.default_rng(0)

    def frames():
        for i in range(n_frames):
            warp = np.float32([[1, 0, 3 * np.sin(i / 5)], [0, 1, 2 * np.cos(i / 7)]])
            moved = cv2.warpAffine(face, warp, (240, 240), borderMode=cv2.BORDER_REFLECT)
            noise = rng.integers(-3, 4, moved.shape)
            yield np.clip(moved.astype(np.int16) + noise, 0, 255).astype(np.uint8)

    write_video(path, frames(), 30.0, codec="h264", gop=gop)
    return path


def test_a_long_gop_video_gets_a_proxy_and_frames_stay_exact(qtbot, session, tmp_path,
                                                              astronaut_path, proxies_in_tmp):
    video = _write_clip(tmp_path / "interview.mp4", astronaut_path, n_frames=90, gop=80)
    statuses = []
    session.status_posted.connect(statuses.append)
    with qtbot.waitSignal(session.proxies.finished, timeout=60000) as blocker:
        session.open_path(video)
    done = blocker.args[0].result
    assert done.built and done.proxy == find_proxy(video) and done.proxy.parent == proxies_in_tmp
    assert any("seek proxy of interview.mp4 ready" in line for line in statuses)
    # The loader reopens the media with the proxy attached, and what it shows is still the
    # original's frame bit for bit (a cleared cache forces real reads).
    session.playhead.decoded.clear()
    with open_media(video, cache_frames=0, use_proxy=False) as original:
        for frame_idx in (85, 3, 61, 40):
            with qtbot.waitSignal(session.frame_loaded, timeout=10000) as loaded:
                session.seek(frame_idx)
            assert np.array_equal(loaded.args[0].rgb, original.read(frame_idx))
    assert session.playhead.loader.worker._media.source(session.media).proxy_path == done.proxy


def test_a_short_gop_video_gets_no_proxy(qtbot, session, tmp_path, astronaut_path, proxies_in_tmp):
    video = _write_clip(tmp_path / "short.mp4", astronaut_path, n_frames=60, gop=PROXY_MIN_GOP // 2)
    with qtbot.waitSignal(session.proxies.finished, timeout=30000) as blocker:
        session.open_path(video)
    assert blocker.args[0].result.proxy is None and not blocker.args[0].result.built
    assert not proxies_in_tmp.exists() or not any(proxies_in_tmp.iterdir())


def test_closing_during_a_build_cancels_it_and_leaves_no_file(qtbot, session, tmp_path,
                                                              astronaut_path, proxies_in_tmp):
    video = _write_clip(tmp_path / "long.mp4", astronaut_path, n_frames=600, gop=300)
    started = []
    session.proxies.progressed.connect(started.append)
    session.open_path(video)
    qtbot.waitUntil(lambda: bool(started), timeout=30000)
    assert session.proxies.running
    session.close_project()
    assert not session.proxies.running
    assert find_proxy(video) is None
    assert not any(proxies_in_tmp.glob("*.mp4")) and not any(proxies_in_tmp.glob("*.json"))
