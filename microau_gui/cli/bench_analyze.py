"""`bench` figures of whole `analyze` runs: end-to-end frames per second, spot-gated time, peak RSS.

Owns: `long_video`, `measure_analyze`, `measure_gated` (and with it `spot_fps`: the gate's
spotting of the whole video, timed by `analyze` into its sidecar). May import synth, inference and core;
the CLI layer may import every layer.

- The video is a synthetic long video (`synth.generate_long_videos`: 640x480, 30 fps, H.264,
  micro- and macro-expressions, blinks, head motion), reused from the work folder when present.
- "Every frame" figures run the job `analyze` runs (`inference.analysis_job`, the same
  analysis pipeline, CSV included) on a frame range in this process and take its report's
  frames per second: decode + landmarks + alignment + flow + model + CSV writing, after the
  model is loaded.
- The spot-gated figure runs `python main.py analyze --gate spot` in a child process whose
  wall time is the figure (interpreter start, model load and spotting included, as a user
  waits for it) and whose maximum resident set size, read by a small wrapper process with
  `getrusage(RUSAGE_CHILDREN)`, is the peak-RSS figure.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from microau_gui.cli.bench_report import figure, skipped

REPO_MAIN = Path(__file__).resolve().parents[2] / "main.py"

# Runs argv[1:] as a child and prints its exit code and maximum RSS (kB on Linux).
_RSS_WRAPPER = (
    "import resource, subprocess, sys\n"
    "code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE).returncode\n"
    "print(code, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
)


def long_video(folder: Path, seconds: float, seed: int = 0) -> Path:
    """The synthetic long video of `seconds` in `folder` (written when missing)."""
    from microau_gui.synth import generate_long_videos
    from microau_gui.synth.long_video import SHEET_NAME

    videos = sorted(folder.glob("s*/*.mp4"))
    if (folder / SHEET_NAME).is_file() and videos:
        return videos[0]
    return generate_long_videos(folder, videos=1, seconds=seconds, fps=30.0, seed=seed).videos[0]


def measure_analyze(media: Path, checkpoint: Path, out: Path, n_frames: int, target: str | None,
                    device: str = "cpu") -> dict:
    """`analyze` on every frame of the first `n_frames` frames; frames per second after loading."""
    from microau_gui.cli.cmd_analyze import torch_threads
    from microau_gui.inference.analysis import AnalysisOptions
    from microau_gui.inference.analysis_job import AnalysisJob, open_analysis

    job = AnalysisJob(media=media, options=AnalysisOptions(start=0, stop=n_frames), out=out,
                      model=str(checkpoint), device=device)
    started = time.perf_counter()
    with torch_threads(None), open_analysis(job) as analysis:  # analyze's default --threads
        report = analysis.execute()
    wall_s = time.perf_counter() - started
    result, media_info, model = report.result, report.media, report.model
    return figure(round(result.frames_per_s, 2), "fps", target, n_frames=result.n_rows,
                  n_face=result.n_face, analysis_s=round(result.seconds, 3), wall_s=wall_s,
                  size=f"{media_info['width']}x{media_info['height']}",
                  backbone=model["card"]["config"]["backbone"], speed_mode=model["speed_mode"],
                  device=model["device"], batch=report.options.batch_size,
                  reference=report.options.reference.value,
                  note="wall_s adds model loading to analysis_s")


def measure_gated(media: Path, checkpoint: Path, out: Path,
                  timeout_s: float) -> tuple[dict, dict, dict, dict, dict]:
    """`analyze --gate spot` in a child process: (seconds, x real time, gated fraction, peak RSS,
    spotting fps)."""
    import torch

    from microau_gui.inference.speed_memory import MEMORY_ENV

    argv = [sys.executable, "-c", _RSS_WRAPPER, sys.executable, str(REPO_MAIN), "analyze", str(media),
            "--model", str(checkpoint), "--out", str(out), "--device", "cpu", "--gate", "spot",
            "--no-progress"]
    # The child uses the bench's CPU thread count (torch reads it from the environment), and
    # races its speed mode afresh, as a first analysis does: the in-process analyses before it
    # race beside everything the bench holds (1.7 GB and more), where the 2 GB memory budget
    # vetoes another runtime's mode for the bench's size, and their winner would be recalled
    # (December 8, Zen 4: bf16 for ViT-B-16, where the child alone picks openvino-int8).
    choices = out.with_name(out.name + ".speed-choices.json")
    choices.unlink(missing_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads()), MEMORY_ENV: str(choices)}
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s, env=env)
    wall_s = time.perf_counter() - started
    code, peak_kb = done.stdout.split()
    if code != "0":
        raise RuntimeError(f"analyze --gate spot exited {code}: {done.stderr.strip()[-300:]}")
    sidecar = json.loads(Path(f"{out}.json").read_text())
    n_frames, fps = sidecar["media"]["n_frames"], sidecar["media"]["fps"]
    video_s = n_frames / fps
    ranges = (sidecar.get("gate") or {}).get("ranges") or []
    n_gated = sum(b - a for a, b in ranges)
    result = sidecar["result"]
    detail = {"video_s": video_s, "n_frames": n_frames, "n_gated_frames": n_gated,
              "n_ranges": len(ranges), "analysis_s": result["seconds"],
              "spot_load_start_s": wall_s - result["seconds"],
              "backbone": sidecar["model"]["card"]["config"]["backbone"],
              "speed_mode": sidecar["model"]["speed_mode"], "batch": sidecar["options"]["batch"]}
    # The seconds target is written for a 10-minute video; at any length the real-time factor
    # below carries it (1x, or 4x with bf16 units: `bench_report.TARGETS`).
    seconds = figure(wall_s, "s", "gated_seconds" if abs(video_s - 600) < 1 else None, **detail)
    realtime = figure(video_s / wall_s, "x real time", "gated_x_realtime", **detail)
    fraction = figure(n_gated / max(1, n_frames), "fraction of frames", n_gated_frames=n_gated,
                      n_frames=n_frames)
    rss = figure(int(peak_kb) / 1024.0, "MB", "peak_rss_mb", run="analyze --gate spot (child process)",
                 video_s=video_s, backbone=detail["backbone"])
    gate = sidecar.get("gate") or {}
    spot_s = gate.get("spot_seconds")
    spot = (figure(n_frames / spot_s, "fps", "spot_fps", n_frames=n_frames, spot_seconds=spot_s,
                   flow_method=gate.get("spot_flow_method"),
                   note="spotting the whole video, the gate of `analyze --gate spot` (decoding included)")
            if spot_s else skipped("fps", "the gated run's sidecar has no spot_seconds"))
    return seconds, realtime, fraction, rss, spot
