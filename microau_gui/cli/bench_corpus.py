"""`bench` figures of `analyze-corpus`: frames per second with 1 and 2 local Ray workers, and
the scaling efficiency between them.

Owns: `corpus_videos`, `measure_corpus`. May import synth, inference (`corpus`, `corpus_ray`)
and core; the CLI layer may import every layer.

Both figures run the corpus engine `analyze-corpus --engine local` runs (`inference.corpus_ray`,
one Ray instance in this process, started once for both) on the same synthetic videos with
the tiny model, into a fresh run folder each, so nothing is skipped. `corpus_Nw_fps` is the
frames analysed over the seconds from the first chunk handed out (every worker started and its
model loaded) to the last result: the throughput that scales. The workers' start-up
(`startup_s`) and Ray's (`ray_start_s`) are recorded beside it; a corpus run pays them once. `corpus_scaling_efficiency` is
`corpus_2w_fps / (2 x corpus_1w_fps)`: 1.0 is perfect scaling. One worker already keeps about
two threads busy (the pipeline's producer thread decodes and runs MediaPipe while the model runs,
`inference.pipeline`), so on a 2-core machine a second worker mostly takes turns with the first
and the ratio cannot approach 1; there it says as much about the machine's load
(`load_avg_by_section` in the report) as about the code.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from microau_gui.cli.bench_report import figure


def corpus_videos(folder: Path, videos: int, seconds: float) -> list[Path]:
    """`videos` synthetic long videos of `seconds` in `folder` (written when missing)."""
    from microau_gui.synth import generate_long_videos

    found = sorted(folder.glob("s*/*.mp4"))
    if len(found) == videos:
        return found
    shutil.rmtree(folder, ignore_errors=True)
    return sorted(generate_long_videos(folder, videos=videos, seconds=seconds, fps=30.0, seed=3).videos)


def measure_corpus(videos: list[Path], checkpoint: Path, work: Path, chunk_s: float) -> dict[str, dict]:
    """{"corpus_1w_fps", "corpus_2w_fps", "corpus_scaling_efficiency"} on the same videos."""
    from microau_gui.inference.corpus import CorpusOutput, CorpusSettings, csv_names, model_entry, plan_video
    from microau_gui.inference.corpus_ray import RayEngine, run_corpus

    model = model_entry(checkpoint)
    settings = CorpusSettings(checkpoint=str(checkpoint), model_version=model["version"], device="cpu",
                              chunk_s=chunk_s)
    plans = [plan_video(v, name, settings) for v, name in zip(videos, csv_names(videos))]
    n_chunks = sum(len(p.chunks) for p in plans)
    started = time.perf_counter()
    figures: dict[str, dict] = {}
    with RayEngine("local", workers=2) as engine:
        ray_start_s = time.perf_counter() - started
        fps = {}
        for workers in (1, 2):
            out = work / f"corpus-{workers}w"
            shutil.rmtree(out, ignore_errors=True)
            output = CorpusOutput.open(out, settings, plans, inputs=[str(v) for v in videos], model=model)
            run = run_corpus(output, engine, workers=workers, retries=0)
            if run.n_chunks_failed:
                raise RuntimeError(f"{run.n_chunks_failed} corpus chunks failed: "
                                   f"{output.failures()[0][1].error}")
            fps[workers] = run.frames_per_s
            figures[f"corpus_{workers}w_fps"] = figure(
                round(run.frames_per_s, 2), "fps", n_frames=run.n_frames, seconds=run.seconds,
                workers=workers, n_videos=len(videos), n_chunks=n_chunks, chunk_s=chunk_s,
                backbone="tiny", speed_mode="fp32", startup_s=run.startup_s, ray_start_s=ray_start_s,
                note="after every worker loaded its model; start-ups beside it")
    figures["corpus_scaling_efficiency"] = figure(
        round(fps[2] / (2 * fps[1]), 3) if fps[1] > 0 else None, "ratio",
        note="corpus_2w_fps / (2 x corpus_1w_fps); 1.0 = perfect scaling")
    return figures
