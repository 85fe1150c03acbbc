"""`analyze` streams: twice the frames, the same peak memory (within 20%).

Each run is a real `python main.py analyze` subprocess started by a small wrapper process that
reports its child's maximum resident set size (`resource.getrusage(RUSAGE_CHILDREN)`), so the
two measurements never mix. The issue's criterion is "within 20%"; but importing torch, open_clip
and MediaPipe alone takes ~1 GB, so 20% would let ~250 MB of growth through. Holding every
decoded 640 x 480 frame would add ~0.9 MB per frame (~140 MB for the 150 extra frames), so the
test also bounds the growth at 64 MB. Repeated runs of one range differ by up to 75 MB in the
full suite (1026 against 1101 MB on an AMD EPYC Zen 4, where one low short run failed the bound
with no leak at all), so each range runs twice and the growth is measured from the higher short
run to the lower long one. Noise can then only hide growth, not make it: the ~140 MB of a
frame leak still crosses the bound unless the noise takes more than 75 MB off it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from test_inference_fixtures import save_tiny_checkpoint

REPO = Path(__file__).resolve().parent.parent
_WRAPPER = (
    "import resource, subprocess, sys\n"
    "code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode\n"
    "print(code, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
)


def peak_rss_kb(*args) -> int:
    """Run `python main.py analyze ARGS` in a child and return its maximum RSS in kB."""
    result = subprocess.run(
        [sys.executable, "-c", _WRAPPER, sys.executable, str(REPO / "main.py"), "analyze",
         *map(str, args), "--no-progress"],
        capture_output=True, text=True, timeout=600)
    code, peak = result.stdout.split()
    assert code == "0", result.stderr[-2000:]
    return int(peak)


@pytest.mark.slow
def test_peak_memory_does_not_grow_with_the_number_of_frames(tmp_path):
    from microau_gui.synth import generate_long_videos

    video = generate_long_videos(tmp_path / "long", videos=1, seconds=10.0, seed=7).videos[0]
    checkpoint = save_tiny_checkpoint(tmp_path / "weights" / "flow-tiny", "flow")
    common = ("--model", checkpoint, "--every", 2, "--device", "cpu", "--speed", "fp32")
    short = max(peak_rss_kb(video, *common, "--range", "0:150", "--out", tmp_path / "short.csv")
                for _ in range(2))
    long = min(peak_rss_kb(video, *common, "--range", "0:300", "--out", tmp_path / "long.csv")
               for _ in range(2))
    assert sum(1 for _ in open(tmp_path / "long.csv")) == 151  # header + every 2nd of 300 frames
    message = f"peak RSS {short / 1024:.0f} MB for 150 frames, {long / 1024:.0f} MB for 300"
    assert long <= 1.2 * short, message
    assert long - short <= 64 * 1024, message
