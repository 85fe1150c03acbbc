"""`make gpu-check`'s promise, checked on every machine: the model path's CUDA tests and the `cuda`
bench section import nothing of the GUI or media stack, so a bare CUDA machine (PyTorch, the
wheels of `make gpu-wheels`, no Qt, MediaPipe, PyAV or OpenCV) runs them.

Here the tests run on the CPU (`MICROAU_TEST_DEVICE=cpu`) in a child interpreter where those
packages cannot be imported. The whole recipe (wheels into a clean venv, offline install, tests
and bench) is `make gpu-check DEVICE=cpu`, too slow for the suite (ViT-B-16 on a CPU).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# What a bare CUDA machine lacks; scipy and scikit-image too, which only spotting and the
# synthetic data use; onnx, onnxruntime, openvino and nncf (the `fast` extra) are not among the
# GPU wheels either.
ABSENT = ("cv2", "mediapipe", "av", "PySide6", "pyqtgraph", "skimage", "matplotlib", "scipy",
          "sklearn", "openpyxl", "onnx", "onnxruntime", "openvino", "nncf")
# None in sys.modules: `import cv2` raises ImportError and `find_spec("cv2")` says absent, as
# where the package is not installed.
_BLOCKED_RUN = """
import sys
sys.modules.update(dict.fromkeys({absent!r}))
{body}
"""


def run_blocked(body: str, timeout: float = 300) -> subprocess.CompletedProcess:
    code = _BLOCKED_RUN.format(absent=set(ABSENT), body=body)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MICROAU_TEST_DEVICE": "cpu", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout,
                          cwd=ROOT, env=env)


def test_the_cuda_tests_run_without_the_gui_and_media_stack():
    out = run_blocked("import pytest; sys.exit(pytest.main(['-q', '-p', 'no:cacheprovider', "
                      "'-p', 'no:pytest-qt', 'tests/test_cuda.py']))")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "3 passed" in out.stdout


def test_the_cuda_bench_section_and_its_command_import_without_them():
    out = run_blocked("import microau_gui.cli.bench_cuda, microau_gui.cli.cmd_bench\n"
                      "from microau_gui.cli import build_parser\n"
                      "build_parser(only='bench').parse_args(['bench', '--only', 'cuda', '--device', 'cpu', "
                      "'--out', 'x.json'])\n"
                      "import microau_gui.cli.bench_report as r; r.machine_info()\n"
                      "print('imported')")
    assert out.returncode == 0 and "imported" in out.stdout, out.stderr[-3000:]
