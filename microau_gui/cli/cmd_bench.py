"""`python main.py bench [--quick] --out JSON`: speed and memory figures of the whole application.

    bench [--quick] [--work DIR] [--only SECTIONS] [--threads N] --out JSON

Owns the `bench` subcommand: the profiles (`BenchProfile`, `FULL`, `QUICK`), the sections and
their order. May import every layer; the measurements live in `cli/bench_*.py`.

Everything is measured on generated inputs (nothing is downloaded): 720p H.264 files of a real
face for decoding and seeking, a synthetic 640x480 long video (`synth`) for landmarks, analysis,
the window and fine-tuning, and random-weight networks (tiny and ViT-B-16) saved as
checkpoints. Seeks in the long-GOP file (`seek_p50_ms`, `seek_p95_ms`) go through its lossless,
verified-exact seek proxy, as in the application; the proxy is built into the work folder (never
the user's cache) and timed (`seek_proxy_build_fps`, `seek_proxy_mb_per_min`), and
`seek_direct_*` measures the original alone, what seeks cost until the proxy exists.

The model section starts with the machine's GEMM roofline (`bench_roofline`: fp32, bf16 and
int8 products in the same run) and reports every model figure with its counted FLOPs, achieved
GFLOP/s and fraction of the best dtype's roofline; `model_vitb16_b{1,16}_roofline_fraction`
carry the ratio targets that replace machine-dependent ms targets. `chosen_modes` records the
speed mode the start-up race picked per backbone and batch, `machine.isa_flags` the CPU flags.

The corpus section (`bench_corpus`) runs `analyze-corpus`'s local Ray engine on the same short
synthetic videos with 1 and then 2 workers: `corpus_1w_fps`, `corpus_2w_fps` and their scaling
efficiency `corpus_scaling_efficiency` (a ratio, 1.0 = perfect).

The JSON (`bench_report`): `{"machine": {...}, "profile": {...}, "figures": {NAME: {"value",
"unit", "target"?, "met"?, ...}}}`; every name of `bench_report.FIGURE_KEYS` is always written, a
figure that could not be measured says why. A short table is printed too.

Profiles: the full one measures the issue's conditions (a 10-minute video for the spot-gated
figure, ViT-B-16 at batch 1 and 16, 100 seeks ...) and takes tens of minutes on a busy 2-core
CPU; `--quick` shrinks every size and repeat count (ViT-B-16 at batch 1 only, an 8-second
long video, the tiny model and 64 events for fine-tuning) to finish in about 2 minutes on an
idle 2-core machine (3 minutes measured with a load average of 4.5 from other jobs). Each
figure records the sizes it was measured with.

CPU threads: `--threads N` sets torch's thread count for the whole run (the spot-gated child
process gets it through OMP_NUM_THREADS, the model figures race only that count); by default
torch takes one per core and the model figures race 1 thread against all cores. On a 2-core
machine busy with other work, 2 threads were 10-40x slower than 1 (see the `model_*` figures'
`forward_ms_by_threads`), so on such a machine `--threads 1` measures the code, not the
contention. `machine.torch_threads` records the setting.

The test suite sets `MICROAU_BENCH_QUICK_PROFILE=smoke`, which makes `--quick` smaller still
(`SMOKE`): same sections and keys, minimal sizes.

`--work DIR` keeps the generated videos and checkpoints there and reuses them next time (the
10-minute video takes ~15 minutes to render); without it a temporary folder is used and removed.
`--only` runs some sections (media, model, analyze, corpus, gui, finetune, cuda, student); the
others' figures are written as skipped. The student section (`bench_student`) distils a student
of the demo model, scores it against its teacher on a held-out synthetic subject and times its
dense traces. The cuda section (`bench_cuda`) needs only torch, numpy, open_clip and our
model package, so `make gpu-check` runs it on a bare CUDA machine; `--device cpu` runs it on the
CPU to test that recipe here.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from microau_gui.cli.reports import write_json
from microau_gui.core.errors import UserError

NAME = "bench"
HELP = "measure speed and memory (decode, seek, landmarks, model, analyze, GUI, fine-tune, RSS) -> JSON"

SECTIONS = ("media", "model", "runtimes", "analyze", "corpus", "gui", "finetune", "cuda", "student")


@dataclass(frozen=True)
class BenchProfile:
    """Sizes and repeat counts of one benchmark run."""

    name: str  # "full", "quick" or "smoke"
    long_gop: int  # keyframe interval of the "long GOP" 720p file (x264's default keyint)
    long_gop_frames: int  # frames in that file
    short_gop: int  # keyframe interval of the comparison file (media.write_video's default)
    short_gop_frames: int
    n_seeks: int  # random seeks per file
    decode_frames: int  # frames decoded sequentially for decode fps
    landmark_frames: int  # frames for the landmark figures
    prep_pairs: int  # pairs for the pair-preparation figure
    model_repeats: int  # timed forwards per mode (interleaved)
    tiny_batches: tuple[int, ...]  # batch sizes measured for the tiny model
    vit_batches: tuple[int, ...]  # batch sizes measured for ViT-B-16
    long_seconds: float  # length of the synthetic long video (spot-gated figure, RSS)
    analyze_tiny_frames: int  # frames of the every-frame analyze figure, tiny model
    analyze_vit_frames: int  # frames of the every-frame analyze figure, ViT-B-16
    gui_steps: int  # playhead steps while inference runs
    gui_step_ms: int  # interval between steps (40 ms = holding the arrow key at 25 frames/s)
    finetune_backbone: str  # "tiny" or "ViT-B-16"
    finetune_events: int
    finetune_epochs: int  # the full profile uses `finetune`'s default (20)
    cuda_batches: int  # batches of 16 for the CUDA throughput
    gated_timeout_s: float  # the spot-gated child process is stopped after this long
    gemm_n: int  # side of the square products of the GEMM roofline (bench_roofline)
    corpus_videos: int  # synthetic videos of the corpus figures (bench_corpus)
    corpus_seconds: float  # length of each
    corpus_chunk_s: float  # analyze-corpus --chunk-s


FULL = BenchProfile(
    name="full", long_gop=250, long_gop_frames=600, short_gop=30, short_gop_frames=300, n_seeks=100,
    decode_frames=300, landmark_frames=150, prep_pairs=60, model_repeats=3, tiny_batches=(1, 16),
    vit_batches=(1, 16), long_seconds=600.0, analyze_tiny_frames=300, analyze_vit_frames=120,
    gui_steps=300, gui_step_ms=40, finetune_backbone="ViT-B-16", finetune_events=200,
    finetune_epochs=20, cuda_batches=20, gated_timeout_s=7200.0, gemm_n=2048,
    corpus_videos=4, corpus_seconds=20.0, corpus_chunk_s=5.0,
)
QUICK = BenchProfile(
    name="quick", long_gop=250, long_gop_frames=260, short_gop=30, short_gop_frames=60, n_seeks=20,
    decode_frames=120, landmark_frames=20, prep_pairs=8, model_repeats=2, tiny_batches=(1, 16),
    vit_batches=(1,), long_seconds=8.0, analyze_tiny_frames=40, analyze_vit_frames=4,
    gui_steps=40, gui_step_ms=40, finetune_backbone="tiny", finetune_events=64,
    finetune_epochs=5, cuda_batches=5, gated_timeout_s=600.0, gemm_n=1024,
    corpus_videos=2, corpus_seconds=4.0, corpus_chunk_s=1.0,
)

# The test suite's profile (MICROAU_BENCH_QUICK_PROFILE=smoke with --quick): every section and
# every figure, at the smallest sizes that still exercise them, so the "every key" test finishes
# in about 2 minutes on a 2-core machine that other jobs are loading.
SMOKE = BenchProfile(
    name="smoke", long_gop=250, long_gop_frames=252, short_gop=30, short_gop_frames=32, n_seeks=4,
    decode_frames=30, landmark_frames=3, prep_pairs=2, model_repeats=1, tiny_batches=(1, 16),
    vit_batches=(1,), long_seconds=4.0, analyze_tiny_frames=10, analyze_vit_frames=2,
    gui_steps=8, gui_step_ms=40, finetune_backbone="tiny", finetune_events=32,
    finetune_epochs=1, cuda_batches=2, gated_timeout_s=600.0, gemm_n=256,
    corpus_videos=1, corpus_seconds=1.0, corpus_chunk_s=0.5,
)
QUICK_PROFILE_ENV = "MICROAU_BENCH_QUICK_PROFILE"


def add_arguments(parser) -> None:
    parser.add_argument("--out", required=True, metavar="JSON", help="report to write")
    parser.add_argument("--quick", action="store_true",
                        help="small sizes and few repeats (about 2 minutes on an idle 2-core CPU)")
    parser.add_argument("--work", metavar="DIR",
                        help="keep generated videos and checkpoints here and reuse them (default: a "
                        "temporary folder, removed afterwards)")
    parser.add_argument("--only", metavar="SECTIONS",
                        help=f"comma-separated sections to run ({', '.join(SECTIONS)}); default all")
    parser.add_argument("--threads", type=int, metavar="N",
                        help="torch CPU threads (default: torch's own choice, one per core)")
    parser.add_argument("--device", default="cuda", choices=("cuda", "cpu"),
                        help="where the cuda section runs (default cuda; cpu runs the same code on "
                        "the CPU, to test `make gpu-check` without a GPU)")


def _sections(text: str | None) -> tuple[str, ...]:
    if not text:
        return SECTIONS
    chosen = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [name for name in chosen if name not in SECTIONS]
    if unknown or not chosen:
        raise UserError(f"--only {text!r}: choose from {', '.join(SECTIONS)}")
    return chosen


@contextmanager
def _proxy_dir(folder: Path):
    """Seek proxies go to `folder` (the bench work folder), never the user's cache."""
    from microau_gui.media.proxy import PROXY_DIR_ENV

    before = os.environ.get(PROXY_DIR_ENV)
    os.environ[PROXY_DIR_ENV] = str(folder)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(PROXY_DIR_ENV, None)
        else:
            os.environ[PROXY_DIR_ENV] = before


class _Bench:
    """One run: the work folder, shared inputs made on first use, and the figures so far."""

    def __init__(self, profile: BenchProfile, work: Path, threads: int | None = None,
                 device: str = "cuda"):
        self.profile = profile
        self.work = work
        self.threads = threads  # `--threads`, None when not given
        self.device = device  # where the CUDA section runs (`--device`; "cpu" tests the recipe)
        self.figures: dict[str, dict] = {}
        self.started = time.perf_counter()

    def say(self, text: str) -> None:
        print(f"bench [{time.perf_counter() - self.started:6.1f} s] {text}", file=sys.stderr, flush=True)

    def long_video(self) -> Path:
        from microau_gui.cli.bench_analyze import long_video

        seconds = self.profile.long_seconds
        folder = self.work / f"long-{seconds:g}s"
        if not folder.exists():
            self.say(f"rendering a {seconds:g} s synthetic 640x480 video")
        return long_video(folder, seconds)

    def checkpoint(self, backbone: str) -> Path:
        from microau_gui.cli.bench_model import bench_checkpoint

        key = "tiny" if backbone == "tiny" else "vitb16"
        # One checkpoint per weights folder: the window loads the only one it finds there.
        folder = self.work / f"weights-{key}" / f"bench-{key}"
        if not folder.exists():
            self.say(f"building a random-weight {backbone} checkpoint")
        return bench_checkpoint(folder, backbone)

    # -- sections --------------------------------------------------------------------------

    def media(self) -> None:
        from microau_gui.cli import bench_media

        p = self.profile
        long_gop = bench_media.write_720p_video(
            self.work / f"seek-gop{p.long_gop}-{p.long_gop_frames}f.mp4", p.long_gop_frames, p.long_gop)
        short_gop = bench_media.write_720p_video(
            self.work / f"seek-gop{p.short_gop}-{p.short_gop_frames}f.mp4", p.short_gop_frames, p.short_gop)
        self.say("decode and seeks (720p H.264)")
        self.figures["decode_fps"] = bench_media.measure_decode(long_gop, p.decode_frames)
        self.figures["seek_direct_p50_ms"], self.figures["seek_direct_p95_ms"] = bench_media.measure_seeks(
            long_gop, p.n_seeks, p.long_gop)
        self.figures["seek_short_gop_p50_ms"], self.figures["seek_short_gop_p95_ms"] = \
            bench_media.measure_seeks(short_gop, p.n_seeks, p.short_gop)
        self.say("seek proxy of the long-GOP file: build, then seeks through it")
        with _proxy_dir(self.work / "proxies"):
            self.figures["seek_proxy_build_fps"], self.figures["seek_proxy_mb_per_min"] = \
                bench_media.measure_proxy_build(long_gop)
            self.figures["seek_p50_ms"], self.figures["seek_p95_ms"] = bench_media.measure_seeks(
                long_gop, p.n_seeks, p.long_gop, p95_target="seek_p95_ms", use_proxy=True)
        video = self.long_video()
        self.say("landmarks and pair preparation (640x480)")
        self.figures["landmarks_ms"], self.figures["landmarks_static_ms"] = \
            bench_media.measure_landmarks(video, p.landmark_frames)
        self.figures["pair_prep_ms"] = bench_media.measure_pair_prep(video, p.prep_pairs)

    def model(self) -> None:
        from microau_gui.cli.bench_model import measure_model, roofline_ratio
        from microau_gui.cli.bench_report import BACKBONES, MODEL_BATCHES, figure, skipped
        from microau_gui.cli.bench_roofline import measure_roofline, roofline_figures
        from microau_gui.inference.speed import DEFAULT_TOLERANCE, thread_candidates

        threads = (self.threads,) if self.threads else thread_candidates()
        self.say(f"GEMM roofline: {self.profile.gemm_n}^2 products in fp32, bf16 and int8")
        roofline = measure_roofline(self.profile.gemm_n, threads)
        self.figures.update(roofline_figures(roofline, figure, skipped))
        for key, backbone in BACKBONES:
            checkpoint = self.checkpoint(backbone)
            batches = self.profile.tiny_batches if key == "tiny" else self.profile.vit_batches
            self.say(f"model {backbone}, batch {', '.join(map(str, batches))}, every speed mode")
            self.figures.update(measure_model(checkpoint, key, batches, MODEL_BATCHES,
                                              self.profile.model_repeats, DEFAULT_TOLERANCE,
                                              (self.threads,) if self.threads else None, roofline))
        for batch in MODEL_BATCHES:
            self.figures[f"model_vitb16_b{batch}_roofline_fraction"] = roofline_ratio(
                self.figures[f"model_vitb16_b{batch}_auto_ms"], batch)

    def runtimes(self) -> None:
        """`runtimes_{tiny,vitb16}_b8_ms`: every CPU runtime of the visual path on one batch of 8
        (`inference.ort.compare_runtimes`): torch eager fp32/int8, torch.compile, ONNX Runtime
        fp32/int8, OpenVINO f32/bf16; the value is the fastest speed mode within the parity
        bound, `rows` has them all (ms per frame, |dp|, build time, why a runtime is no mode).
        The quick profiles run the tiny network only, without torch.compile (minutes of compiling).
        Each figure carries its roofline fraction against a GEMM roofline measured in this section
        at the thread count it runs (the model section's may be skipped with --only)."""
        import torch

        from microau_gui.cli.bench_report import figure, skipped
        from microau_gui.inference.ort import compare_runtimes
        from microau_gui.inference.speed import DEFAULT_TOLERANCE, sample_batch
        from microau_gui.model.checkpoint import load_checkpoint

        from microau_gui.cli.bench_roofline import measure_roofline, model_gflop_per_frame, with_roofline

        batch, full = 8, self.profile.name == "full"
        roofline = measure_roofline(self.profile.gemm_n, (torch.get_num_threads(),))
        for key, backbone in (("tiny", "tiny"), ("vitb16", "ViT-B-16")):
            if not full and key == "vitb16":
                self.figures[f"runtimes_{key}_b{batch}_ms"] = skipped(
                    "ms/frame", "quick profile: the runtime table runs the tiny network only")
                continue
            self.say(f"runtimes, {backbone}, batch {batch}: eager, compile, ORT, OpenVINO")
            model, _ = load_checkpoint(self.checkpoint(backbone), device="cpu")
            rows = compare_runtimes(model, sample_batch(model, batch), repeats=self.profile.model_repeats,
                                    with_compile=full)
            for row in rows:
                row["ms_per_frame"] = None if row["ms"] is None else row["ms"] / batch
            kept = [r for r in rows if r["speed_mode"] and r["max_dp"] is not None
                    and r["max_dp"] <= DEFAULT_TOLERANCE]
            best = min(kept, key=lambda r: r["ms"])
            gflop = model_gflop_per_frame(model, sample_batch(model, 1), 1)
            self.figures[f"runtimes_{key}_b{batch}_ms"] = with_roofline(figure(
                best["ms_per_frame"], "ms/frame", batch=batch, best=best["runtime"],
                threads=torch.get_num_threads(), tolerance=DEFAULT_TOLERANCE, rows=rows), gflop, roofline)

    def analyze(self) -> None:
        from microau_gui.cli.bench_analyze import measure_analyze, measure_gated

        p = self.profile
        video = self.long_video()
        out = self.work / "out"
        out.mkdir(exist_ok=True)
        self.say(f"analyze every frame, tiny ({p.analyze_tiny_frames} frames)")
        self.figures["analyze_tiny_fps"] = measure_analyze(
            video, self.checkpoint("tiny"), out / "tiny.csv", p.analyze_tiny_frames, None)
        self.say(f"analyze every frame, ViT-B-16 ({p.analyze_vit_frames} frames)")
        self.figures["analyze_vitb16_fps"] = measure_analyze(
            video, self.checkpoint("ViT-B-16"), out / "vitb16.csv", p.analyze_vit_frames, "analyze_fps_vit")
        self.say(f"analyze --gate spot, ViT-B-16, {p.long_seconds:g} s video (child process)")
        seconds, realtime, fraction, rss, spot = measure_gated(
            video, self.checkpoint("ViT-B-16"), out / "gated.csv", p.gated_timeout_s)
        self.figures["analyze_gated_vitb16_seconds"] = seconds
        self.figures["analyze_gated_vitb16_x_realtime"] = {**realtime, **self._gated_bound(realtime)}
        self.figures["analyze_gated_fraction"] = fraction
        self.figures["peak_rss_mb"] = rss
        self.figures["spot_fps"] = spot

    def _gated_bound(self, gated: dict) -> dict:
        """`bench_roofline.gated_bound` of the gated run: the model section's GEMM throughput and
        the model or runtimes section's ViT-B-16 FLOP count where they ran in this process, else
        measured here (a few seconds)."""
        import torch

        from microau_gui.cli.bench_roofline import (GEMM_KEYS, Roofline, gated_bound, measure_roofline,
                                                    model_gflop_per_frame)
        from microau_gui.inference.speed import sample_batch
        from microau_gui.model.checkpoint import load_checkpoint

        if gated.get("value") is None:
            return gated_bound(gated, None, None)
        rates = {dtype: (self.figures.get(key) or {}).get("value") for dtype, key in GEMM_KEYS.items()}
        roofline = Roofline(gflops={dtype: rate for dtype, rate in rates.items() if rate})
        # ViT-B-16's count per frame, from the model or runtimes section where either ran.
        gflop = next((self.figures[k]["gflop_per_frame"]
                      for k in ("model_vitb16_b1_auto_ms", "runtimes_vitb16_b8_ms")
                      if (self.figures.get(k) or {}).get("gflop_per_frame")), None)
        if not roofline.gflops:
            roofline = measure_roofline(self.profile.gemm_n, (torch.get_num_threads(),))
        if not gflop:
            model, _ = load_checkpoint(self.checkpoint("ViT-B-16"), device="cpu")
            gflop = model_gflop_per_frame(model, sample_batch(model, 1), 1)
        return gated_bound(gated, gflop, roofline)

    def corpus(self) -> None:
        from microau_gui.cli.bench_corpus import corpus_videos, measure_corpus

        p = self.profile
        videos = corpus_videos(self.work / f"corpus-{p.corpus_videos}x{p.corpus_seconds:g}s", p.corpus_videos,
                               p.corpus_seconds)
        self.say(f"analyze-corpus (local Ray), tiny, {p.corpus_videos} x {p.corpus_seconds:g} s videos, "
                 "1 then 2 workers")
        self.figures.update(measure_corpus(videos, self.checkpoint("tiny"), self.work, p.corpus_chunk_s))

    def gui(self) -> None:
        from microau_gui.cli.bench_gui import measure_gui_latency

        p = self.profile
        video, weights = self.long_video(), self.checkpoint("tiny").parent
        self.say(f"GUI frame display while inference runs ({p.gui_steps} steps forward, then back)")
        self.figures.update(measure_gui_latency(video, weights, p.gui_steps, p.gui_step_ms,
                                                timeout_s=300.0))

    def finetune(self) -> None:
        from microau_gui.cli.bench_finetune import measure_finetune

        p = self.profile
        self.say(f"fine-tune {p.finetune_backbone}, {p.finetune_events} events, {p.finetune_epochs} epochs")
        self.figures["finetune_seconds"] = measure_finetune(
            self.checkpoint(p.finetune_backbone), self.long_video(), p.finetune_events, p.finetune_epochs,
            self.work / "finetune" / p.name)

    def student(self) -> None:
        from microau_gui.cli.bench_student import measure_student

        self.figures.update(measure_student(self.profile.name, self.long_video(), self.work, self.say))

    def cuda(self) -> None:
        import importlib.util

        import torch

        from microau_gui.cli.bench_cuda import measure_cuda

        self.say(f"CUDA section on {self.device}: GEMM roofline, ViT-B-16 on synthetic tensors")
        analyze = None
        media_stack = all(importlib.util.find_spec(name) for name in ("mediapipe", "av", "cv2"))
        if media_stack and self.device == "cuda" and torch.cuda.is_available():
            analyze = (self.checkpoint("ViT-B-16"), self.long_video(), self.work,
                       self.profile.analyze_vit_frames * 10)
        self.figures.update(measure_cuda(self.device, self.profile.cuda_batches, self.profile.gemm_n,
                                         analyze))


def _keys_of(section: str) -> tuple[str, ...]:
    from microau_gui.cli.bench_report import FIGURE_KEYS
    from microau_gui.cli.bench_student import STUDENT_KEYS

    if section == "student":
        return STUDENT_KEYS
    prefixes = {
        "media": ("decode_", "seek_", "landmarks_", "pair_prep_"),
        "model": ("model_", "gemm_"),
        "runtimes": ("runtimes_",),
        "analyze": ("analyze_", "peak_rss_", "spot_"),
        "corpus": ("corpus_",),
        "gui": ("gui_",),
        "finetune": ("finetune_",),
        "cuda": ("cuda_",),
    }[section]
    return tuple(k for k in FIGURE_KEYS if k.startswith(prefixes))


_UNITS = {"fps": "fps", "ms": "ms", "seconds": "s", "x_realtime": "x real time",
          "fraction": "fraction of frames", "mb": "MB", "mb_per_min": "MB/min", "efficiency": "ratio"}


def _unit_of(key: str) -> str:
    from microau_gui.cli.bench_student import STUDENT_KEYS, unit_of

    if key in STUDENT_KEYS:
        return unit_of(key)
    if "gemm_" in key:
        return "GOP/s" if key.endswith("_gops") else "GFLOP/s"
    if key.endswith("_roofline_fraction"):
        return "fraction of roofline"
    if key.startswith("model_") or key.startswith("landmarks_") or key == "pair_prep_ms":
        return "ms/frame" if key != "pair_prep_ms" else "ms/pair"
    for suffix, unit in _UNITS.items():
        if key.endswith(suffix):
            return unit
    return ""


def _target_of(key: str) -> str | None:
    from microau_gui.cli.bench_student import STUDENT_TARGETS

    if key in STUDENT_TARGETS:
        return key
    if key == "model_vitb16_b1_roofline_fraction":
        return "vit_b1_roofline_fraction"
    if key == "model_vitb16_b16_roofline_fraction":
        return "vit_roofline_fraction"
    if key.startswith("model_tiny_"):
        return "model_tiny_ms"
    return {"seek_p95_ms": "seek_p95_ms", "analyze_vitb16_fps": "analyze_fps_vit",
            "analyze_gated_vitb16_seconds": "gated_seconds",
            "analyze_gated_vitb16_x_realtime": "gated_x_realtime", "gui_display_p95_ms": "gui_p95_ms",
            "gui_display_back_p95_ms": "gui_p95_ms", "peak_rss_mb": "peak_rss_mb",
            "pair_prep_ms": "pair_prep_ms"}.get(key)


def _by_cpu_class(figures: dict[str, dict], machine: dict) -> None:
    """#18 sets the spot-gated targets by CPU class: 1x real time on AVX2, 4x with bf16 units."""
    from microau_gui.cli.bench_report import TARGETS, has_bf16_units

    if not has_bf16_units(machine):
        return
    for key, rule in (("analyze_gated_vitb16_x_realtime", "gated_x_realtime_bf16"),
                      ("analyze_gated_vitb16_seconds", "gated_seconds_bf16")):
        entry = figures[key]
        if "target" in entry:
            entry["target"] = TARGETS[rule].as_dict()
            entry["met"] = TARGETS[rule].met(entry["value"])


def run(args) -> int:
    import torch

    from microau_gui.cli.outputs import check_out
    from microau_gui.inference.speed_memory import MEMORY_ENV
    from microau_gui.cli.bench_report import (FIGURE_KEYS, failed, format_table, load_average,
                                              machine_info, skipped)

    out = check_out(args.out)
    sections = _sections(args.only)
    if args.threads is not None:
        if args.threads < 1:
            raise UserError(f"--threads {args.threads}: use at least 1")
        torch.set_num_threads(args.threads)
    profile = FULL
    if args.quick:
        profile = SMOKE if os.environ.get(QUICK_PROFILE_ENV, "").strip().lower() == "smoke" else QUICK
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="microau-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    # The analyze figures race their speed mode afresh, at this run's thread count, with a memory
    # of their own: a winner remembered from the user's runs would decide them instead, and its
    # key has no thread count (`inference.speed_memory`). December 7: int8, remembered from a
    # one-thread race, ran the spot-gated ViT-B-16 figure on two threads, where the same bench's
    # runtimes section timed int8 at 307 ms a frame and fp32 at 246 (batch 8).
    memory = work / "speed-choices.json"
    memory.unlink(missing_ok=True)
    users_memory = os.environ.get(MEMORY_ENV)
    os.environ[MEMORY_ENV] = str(memory)
    bench = _Bench(profile, work, args.threads, args.device)
    report = {"machine": machine_info(), "profile": asdict(profile), "figures": {}}
    bench.say(f"profile {profile.name}, work folder {work}")
    try:
        for section in SECTIONS:
            if section not in sections:
                for key in _keys_of(section):
                    bench.figures[key] = skipped(_unit_of(key), "not selected with --only", _target_of(key))
                continue
            try:
                report["machine"].setdefault("load_avg_by_section", {})[section] = load_average()
                getattr(bench, section)()
            except Exception as err:  # a failed section is reported, the others still run
                first_line = str(err).strip().splitlines()[0][:200] if str(err).strip() else ""
                message = f"{type(err).__name__}: {first_line}"
                bench.say(f"{section} failed: {message}")
                for key in _keys_of(section):
                    if key not in bench.figures:
                        bench.figures[key] = failed(_unit_of(key), message, _target_of(key))
    finally:
        if users_memory is None:
            os.environ.pop(MEMORY_ENV, None)
        else:
            os.environ[MEMORY_ENV] = users_memory
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    for key in FIGURE_KEYS:
        if key not in bench.figures:
            bench.figures[key] = failed(_unit_of(key), "not produced by its section", _target_of(key))
    report["figures"] = {key: bench.figures[key] for key in FIGURE_KEYS}
    _by_cpu_class(report["figures"], report["machine"])
    report["chosen_modes"] = {key[len("model_"):-len("_auto_ms")]: entry.get("mode")
                              for key, entry in report["figures"].items()
                              if key.endswith("_auto_ms") and entry.get("value") is not None}
    report["machine"]["load_avg_end"] = load_average()
    report["seconds"] = round(time.perf_counter() - bench.started, 1)
    write_json(out, report)
    print(format_table(report))
    missed = [k for k, v in report["figures"].items() if v.get("met") is False]
    print(f"{len(FIGURE_KEYS)} figures in {report['seconds']:.0f} s -> {out}"
          + (f"; {len(missed)} targets missed" if missed else ""))
    return 0
