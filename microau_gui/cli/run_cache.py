"""Finished cross-validation runs of the experiment studies, kept on disk and reused only when
everything that decides their result is unchanged.

Owns `RunCache`, `training_code_digest`, `pairs_digest`, `cpu_arithmetic`, `RUN_CACHE_VERSION`. May import every layer below the
CLI (it stores `training.experiment.MethodRun`s); used by `cli.experiments` only.

Why: a study's model runs are deterministic and cost 1.5-3 minutes each on a 2-core CPU, and the
defined studies have 20-80 of them. A study interrupted at a session's end (or a reduced study
later widened) then starts over unless its finished runs can be taken up again. A run is reused
only when its *identity* is the same, and the identity holds everything that decides its scores:
- the data it learns from, byte for byte: a digest of every prepared pair's crops, flow and
  landmarks and of its sample (keys, AUs, labels; not the media path, which names the work
  folder), plus the data seed, sizes and pair preparation settings. So a change to the decoder,
  the generator or the pair preparation that alters a pair makes a miss, and one that does not
  (a faster decoder) keeps the runs;
- the source of every package that turns those pairs into scores (`TRAINING_PACKAGES`: a
  changed line anywhere in them makes every old run a miss; the GUI, session, CLI, media,
  store, synth and spotting code take no part), and the versions of the libraries that
  compute it;
- the method, the network config, every training setting (seed and torch threads included:
  reductions may round differently with another thread count) and the threshold policy;
- the CPU's arithmetic: torch's CPU capability and the instruction-set extensions. The same
  seeds, data and code gave the full model 0.7788 on an AVX2-only AMD EPYC and 0.7815 on an
  AVX-512/AMX Intel Xeon (December 7, data seed 1001, training seed 0): a work folder carried to
  another kind of CPU would otherwise hand back runs this machine does not reproduce.

A stored run holds the test pairs' keys in scoring order, the scores (and, for nested
thresholds, the raw scores and each fold's thresholds) and its wall time; the metrics are
recomputed from them by `training.experiment.score_predictions`, as `cross_validate` computes
them. The report marks each reused run with the commit and date that computed it. (That a
nested run is built from its kept fixed twin is `cli.experiments`' business.)
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, replace
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import numpy as np

from microau_gui.pairs.samples import save_npz

log = logging.getLogger(__name__)

# Bump when what a stored run holds, or how it is read back, changes.
RUN_CACHE_VERSION = 1
# The packages that turn prepared pairs into scores: training, the network, the pairs' labels and
# region masks (pairs, face.regions) and the core types (face is hashed whole: simpler than
# telling its modules apart, and a miss only costs time).
TRAINING_PACKAGES = ("core", "face", "pairs", "model", "training")
_LIBRARIES = ("torch", "numpy", "opencv-contrib-python", "scikit-learn", "open_clip_torch", "mediapipe")
_PACKAGE_ROOT = Path(__file__).resolve().parents[1]


def training_code_digest(root: Path = _PACKAGE_ROOT) -> str:
    """SHA-256 (first 16 hex) over the path and bytes of every `.py` file of `TRAINING_PACKAGES`
    under the package folder `root`."""
    digest = hashlib.sha256()
    for package in TRAINING_PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            digest.update(path.relative_to(root).as_posix().encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def pairs_digest(pairs) -> str:
    """SHA-256 (first 16 hex) of prepared pairs as training sees them: each pair's sample (all
    but its media path) and its crops, flow and landmarks, in sample-key order."""
    digest = hashlib.sha256()
    for pair in sorted(pairs, key=lambda p: p.sample.key):
        sample = {k: v for k, v in asdict(pair.sample).items() if k != "media_path"}
        digest.update(json.dumps(sample, sort_keys=True, default=str).encode() + b"\0")
        for array in (pair.reference, pair.target, pair.flow, pair.xy_crop):
            array = np.ascontiguousarray(array)
            digest.update(f"{array.dtype}{array.shape}".encode() + array.tobytes())
    return digest.hexdigest()[:16]


def cpu_arithmetic() -> dict:
    """What decides the float kernels on this CPU (see the module docstring)."""
    import torch

    from microau_gui.cli.bench_report import isa_flags

    return {"torch_capability": torch.backends.cpu.get_cpu_capability(), "isa": isa_flags()}


def _library_versions() -> dict[str, str]:
    versions = {}
    for name in _LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions


class RunCache:
    """Finished runs under `folder`, one `.npz` per identity; writes are atomic."""

    def __init__(self, folder: Path | str, commit: str):
        self.folder = Path(folder)
        self.commit = commit
        self.code = training_code_digest()
        self.libraries = _library_versions()
        self.cpu = cpu_arithmetic()

    def key(self, *, method: str, data: dict, config, settings, prep: dict, policy: str) -> str:
        """The identity of one run as a hex key (see the module docstring)."""
        identity = {
            "version": RUN_CACHE_VERSION, "code": self.code, "libraries": self.libraries, "cpu": self.cpu,
            "method": method, "data": data, "config": config.to_dict(), "settings": asdict(settings),
            "prep": prep, "thresholds": policy,
        }
        text = json.dumps(identity, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:40]

    def _path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.npz"

    def load(self, key: str, pairs, vocab):
        """The stored run rebuilt on `pairs` (a `MethodRun`, plus its provenance dict), or
        (None, None) when there is none or it does not fit these pairs."""
        from microau_gui.training.experiment import score_predictions

        path = self._path(key)
        if not path.is_file():
            return None, None
        try:
            with np.load(path, allow_pickle=False) as stored:
                meta = json.loads(str(stored["meta"]))
                keys = [str(k) for k in stored["keys"]]
                scores = stored["scores"]
                raw = stored["raw_scores"] if "raw_scores" in stored else None
        except (OSError, ValueError, KeyError, EOFError):
            log.warning("ignoring unreadable stored run %s", path)
            return None, None
        by_key = {p.sample.key: p for p in pairs}
        if len(by_key) != len(pairs) or any(k not in by_key for k in keys) or scores.shape[0] != len(keys):
            log.warning("stored run %s does not fit the prepared pairs; running it again", path)
            return None, None
        ordered = [by_key[k] for k in keys]
        run = score_predictions(meta["method"], meta["protocol"], ordered, scores, vocab, meta["seconds"])
        thresholds = meta.get("thresholds")
        if thresholds:
            run = replace(run, thresholds={fold: np.asarray(v) for fold, v in thresholds.items()},
                          raw_scores=raw)
        return run, {"commit": meta["commit"], "created": meta["created"]}

    def store(self, key: str, run) -> None:
        meta = {
            "method": run.method, "protocol": run.protocol, "seconds": run.seconds,
            "thresholds": ({fold: [float(t) for t in v] for fold, v in run.thresholds.items()}
                           if run.thresholds else None),
            "commit": self.commit, "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        arrays = {"meta": np.array(json.dumps(meta)), "keys": np.array([p.sample.key for p in run.pairs]),
                  "scores": np.asarray(run.scores)}
        if run.raw_scores is not None:
            arrays["raw_scores"] = np.asarray(run.raw_scores)
        try:
            save_npz(self._path(key), arrays)
        except OSError as err:
            # A run that cannot be kept only costs time if the study is interrupted.
            log.warning("cannot keep the finished run in %s (%s); continuing", self.folder, err.strerror or err)
