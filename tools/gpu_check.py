"""`make gpu-wheels` and `make gpu-check`: the model path's CUDA check on a bare CUDA machine.

    python tools/gpu_check.py wheels [--python-version 3.12] [--dest .gpu-wheels]
    python tools/gpu_check.py check [--device cuda|cpu] [--wheels .gpu-wheels] [--out DIR]

Such a machine has Python and PyTorch with CUDA, but no network and no Qt, MediaPipe, PyAV,
OpenCV or open_clip. `wheels` (run where pip reaches the package index) downloads the wheels the
model path needs beside torch (REQUIREMENTS, binary wheels for the target's Python, no
dependencies resolved: the list is complete) into an ignored folder, and refuses more than
`MAX_WHEELS_MB`. `check` (run on the machine, offline) installs from that folder only what the
interpreter lacks, into `.gpu-site` (never into the system's packages, so a preinstalled numpy
or torchvision is never replaced), then runs `tests/test_cuda.py` and `bench --quick --only cuda`
on synthetic tensors and reports the time against `TIME_LIMIT_S`. `--device cpu` runs the same
on the CPU, which is how the recipe is tested without a GPU (in a venv holding only torch).

Standard library only: it runs before anything is installed.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Distribution name -> version. torch itself is the machine's. torchvision must match its torch
# (0.29.x <-> torch 2.14; `--torchvision` for another); where one is installed, it is kept.
REQUIREMENTS = {
    "open_clip_torch": "3.3.0",  # the ViT backbones (pure Python)
    "ftfy": "6.3.1",  # open_clip's tokenizer (pure Python)
    "wcwidth": "0.9.4",  # ftfy's
    "regex": "2026.12.2",  # open_clip's tokenizer
    "torchvision": "0.29.1",  # open_clip imports its transforms
    "pillow": "13.0.0",  # torchvision's
    "numpy": "1.26.4",  # our model package
    "safetensors": "0.8.0",  # checkpoints
    "pydantic": "2.14.3",  # model cards are validated before anything is built from them
    "pydantic_core": "2.50.4",  # pydantic's
    "annotated_types": "0.8.0",  # pydantic's
    "typing_inspection": "0.4.5",  # pydantic's
    "typing_extensions": "4.16.0",  # pydantic's (torch brings it too)
    "tqdm": "4.70.1",  # open_clip's
    "psutil": "7.2.2",  # the bench's machine block
    "pytest": "9.2.0",  # the CUDA tests
    "pluggy": "1.7.0",  # pytest's
    "iniconfig": "2.3.1",  # pytest's
    "packaging": "26.4",  # pytest's
    "pygments": "2.21.0",  # pytest's
}
# open_clip also names huggingface-hub and timm: it imports them only to fetch pretrained weights
# and for timm towers, neither of which the check does (random weights, plain ViTs).
IMPORT_NAMES = {"open_clip_torch": "open_clip", "pillow": "PIL"}
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64",
             "manylinux2014_x86_64", "manylinux1_x86_64")
MAX_WHEELS_MB = 60.0
TIME_LIMIT_S = 240.0
SITE = ROOT / ".gpu-site"


def _say(text: str) -> None:
    print(f"gpu-check: {text}", flush=True)


def download(python_version: str, dest: Path, torchvision: str | None) -> int:
    dest.mkdir(parents=True, exist_ok=True)
    pins = {**REQUIREMENTS, **({"torchvision": torchvision} if torchvision else {})}
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
               "--python-version", python_version, "--implementation", "cp", "--dest", str(dest)]
    for platform in PLATFORMS:
        command += ["--platform", platform]
    command += [f"{name}=={version}" for name, version in pins.items()]
    if subprocess.run(command).returncode != 0:
        _say("pip could not download the wheels (is the package index reachable?)")
        return 1
    wheels = sorted(dest.glob("*.whl"))
    size_mb = sum(w.stat().st_size for w in wheels) / 1e6
    _say(f"{len(wheels)} wheels for Python {python_version}, {size_mb:.1f} MB, in {dest}")
    if size_mb > MAX_WHEELS_MB:
        _say(f"more than {MAX_WHEELS_MB:g} MB: remove old versions from {dest}")
        return 1
    return 0


def _installed(name: str) -> bool:
    try:
        importlib.metadata.distribution(name)
        return True
    except importlib.metadata.PackageNotFoundError:
        return False


def install(wheels: Path) -> int:
    sys.path.insert(0, str(SITE))  # what an earlier run installed there counts as installed
    missing = [name for name in REQUIREMENTS if not _installed(name)]
    if not missing:
        _say("every package the model path needs is installed")
        return 0
    if not wheels.is_dir() or not any(wheels.glob("*.whl")):
        _say(f"no wheels in {wheels}: run `make gpu-wheels` where the package index is reachable "
             "and copy the folder here")
        return 1
    _say(f"installing offline into {SITE.name}: {', '.join(missing)}")
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps",
               "--no-compile", "--disable-pip-version-check", "--find-links", str(wheels),
               "--target", str(SITE), "--upgrade", *missing]
    return subprocess.run(command).returncode


def check(device: str, wheels: Path, out: Path) -> int:
    started = time.perf_counter()
    if install(wheels) != 0:
        return 1
    phases = {"install": time.perf_counter() - started}
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(SITE), str(ROOT),
                                                                     os.environ.get("PYTHONPATH")])),
           "MICROAU_TEST_DEVICE": device, "PYTHONUNBUFFERED": "1"}
    threads = []
    if device == "cpu":  # the recipe's test: the smallest sizes (ViT-B-16 on a CPU is slow)
        env["MICROAU_BENCH_QUICK_PROFILE"] = "smoke"
        threads = ["--threads", "1"]  # a shared CPU; 2 threads thrashed there
    import torch  # the machine's; only now, so a missing torch is the first thing reported

    _say(f"torch {torch.__version__}, CUDA {'available: ' + torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'not available'}, device {device}")
    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                            str(ROOT / "tests" / "test_cuda.py")], cwd=ROOT, env=env)
    phases["tests"] = time.perf_counter() - started - sum(phases.values())
    out.mkdir(parents=True, exist_ok=True)
    report = out / f"gpu-bench-{device}.json"
    bench = subprocess.run([sys.executable, str(ROOT / "main.py"), "bench", "--quick", "--only", "cuda",
                            "--device", device, "--out", str(report), *threads], cwd=ROOT, env=env)
    seconds = time.perf_counter() - started
    phases["bench"] = seconds - sum(phases.values())
    ok = tests.returncode == 0 and bench.returncode == 0
    if bench.returncode == 0:
        figures = json.loads(report.read_text())["figures"]
        for key, entry in figures.items():
            if key.startswith("cuda_"):
                shown = entry["value"] if entry["value"] is not None else f"- ({entry.get('skipped') or entry.get('error')})"
                _say(f"  {key}: {shown} {entry['unit']}")
                if entry.get("error"):
                    ok = False
    in_time = seconds <= TIME_LIMIT_S
    verdict = "passed" if ok and in_time else ("FAILED" if not ok else "FAILED: too slow")
    shown = ", ".join(f"{name} {s:.0f} s" for name, s in phases.items())
    load = f"; load average {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else ""
    _say(f"{verdict} in {seconds:.0f} s ({shown}; limit {TIME_LIMIT_S:.0f} s{load}); bench report {report}")
    return 0 if ok and in_time else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="step", required=True)
    wheels = sub.add_parser("wheels", help="download the wheels (needs the package index)")
    wheels.add_argument("--python-version", default="3.12", help="the CUDA machine's Python (default 3.12)")
    wheels.add_argument("--dest", type=Path, default=ROOT / ".gpu-wheels")
    wheels.add_argument("--torchvision", help="torchvision version matching the machine's torch")
    run = sub.add_parser("check", help="install offline and run the CUDA tests and bench section")
    run.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    run.add_argument("--wheels", type=Path, default=ROOT / ".gpu-wheels")
    run.add_argument("--out", type=Path, default=ROOT / ".gpu-site" / "reports")
    args = parser.parse_args()
    if args.step == "wheels":
        return download(args.python_version, args.dest, args.torchvision)
    return check(args.device, args.wheels, args.out)


if __name__ == "__main__":
    sys.exit(main())
