"""`python main.py analyze MEDIA --out CSV`: AU probabilities for every (n-th) frame of a video.

    analyze MEDIA [--project P] [--model M] [--fps F] [--every N] [--range A:B] [--device auto]
            [--reference sliding|onset|fixed:N] [--batch N] [--threads N] [--gate spot] --out CSV
            [--student CKPT --student-out CSV]

Owns the `analyze` subcommand: it maps the arguments to an `inference.analysis_job.AnalysisJob`
(spotting the gate first) and writes the sidecar. May import every layer.

Output:
- CSV: one row per analysed frame, in frame order. Columns `frame_idx` (0-based), `t_s`
  (presentation time in seconds from the first frame), `face_found` (1/0), then one column per
  AU of the model's vocabulary (`AU1`, `AU2`, ...) holding its probability with 6 decimals, empty
  when no face was found in the reference frame.
- JSON sidecar `CSV + ".json"` (e.g. `a.csv.json`): `model` (version name, checkpoint, device,
  speed mode, is_demo, pretrained_loaded and the full model `card`), `media` (path, kind, frame
  count, fps, size, variable-frame-rate flag), `options` (every, range, reference, window,
  batch, gate), `gate` (the analysed ranges, `spot_seconds` and `spot_flow_method` of the
  spotting that chose them, or null), `project`, `columns` and `result` (rows, rows with a face,
  rows from the project cache, seconds, frames per second, and for a truncated video the frames
  that cannot be decoded, `undecodable` [first, last], and how many requested frames lie there,
  `n_undecodable`; those get no row and a warning on stderr).
Both are written under temporary names and renamed at the end: an interrupted run leaves no
half file where a complete one was.

Model choice (inference.checkpoints): `--model` (a checkpoint folder, a project version name or
a name in weights/); without it the project's active version; without a project the bundled demo
checkpoint weights/demo-tiny.

Reference frame (inference.reference): `sliding` (default) compares frame t with t - round(0.2 s
x fps); `onset` compares frames inside a coded event of the project with that event's onset (the
others use the sliding reference); `fixed:N` compares every frame with frame N.

`--gate spot` first spots micro- and macro-expression candidates (`spotting.spot_media`) and
runs the model only inside them, widened by `--gate-margin-s` (`spotting.gate_ranges`: a whole
micro interval, a macro-expression's apex only). Frames outside the gate get NO row, so the CSV
lists exactly the analysed frames; the sidecar's `gate.ranges` says which spans those were.

`--student CKPT` (a student `distill` made from the running model): the student draws the dense
trace of every requested frame (`--student-out`, same columns), and the teacher runs only on the
gated frames and on the apexes of the project's coded events of the video (`--out`); the sidecar
adds `student` (version, checkpoint, result). See `inference.analysis_job`.

With `--project P` the video (and the model version) are registered in P when new, predictions
are cached per model version, and frames already cached with the same reference are reused.
"""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from microau_gui.cli.outputs import check_out
from microau_gui.cli.progress import ProgressBar
from microau_gui.cli.reports import write_json
from microau_gui.core.errors import UserError

NAME = "analyze"
HELP = "AU probabilities per frame of a video -> CSV (+ JSON sidecar with the model card)"


def add_arguments(parser) -> None:
    parser.add_argument("media", help="video file or image-sequence folder")
    parser.add_argument("--out", required=True, metavar="CSV", help="CSV to write (sidecar: CSV.json)")
    parser.add_argument("--project", metavar="P",
                        help="project (.maus) to cache predictions in and to take the active model "
                        "and coded events from (created when missing)")
    parser.add_argument("--model", metavar="M",
                        help="checkpoint folder, project model version or weights/ name "
                        "(default: the project's active version, else the bundled demo model)")
    parser.add_argument("--fps", type=float, default=None,
                        help="frame rate of an image folder (files store none; default: the "
                        "project's record of it, else 30); ignored for videos")
    parser.add_argument("--every", type=int, default=1, metavar="N", help="analyse every N-th frame (default 1)")
    parser.add_argument("--range", dest="frame_range", metavar="A:B",
                        help="frame_idx range, A inclusive, B exclusive; either may be left out")
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    parser.add_argument("--speed", default="auto",
                        help="speed mode: auto (the fastest mode that passes a parity check with "
                        "fp32), fp32, bf16, int8, or with the `fast` extra ort, openvino, "
                        "openvino-bf16, openvino-int8")
    parser.add_argument("--reference", default="sliding", metavar="POLICY",
                        help="sliding (t - 0.2 s, default), onset (coded events of --project) or fixed:N")
    parser.add_argument("--window-s", type=float, default=0.2,
                        help="sliding reference: seconds between reference and frame (default 0.2)")
    parser.add_argument("--batch", type=int, default=8, metavar="N", help="frames per model call (default 8)")
    parser.add_argument("--threads", type=int, default=None, metavar="N",
                        help="torch CPU threads (default: torch's own, one per core)")
    parser.add_argument("--gate", choices=("spot",),
                        help="spot: analyse only spotted expression candidates (plus a margin)")
    parser.add_argument("--gate-margin-s", type=float, default=0.2,
                        help="--gate spot: seconds added before and after each candidate (default 0.2)")
    parser.add_argument("--student", metavar="CKPT", default=None,
                        help="a distilled student of the model: it draws the dense trace, the model runs "
                        "only on gated frames and event apexes")
    parser.add_argument("--student-out", metavar="CSV", default=None,
                        help="with --student: the CSV of the student's dense trace")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def parse_range(text: str | None) -> tuple[int, int | None]:
    """`--range A:B` -> (start, stop or None)."""
    if not text:
        return 0, None
    parts = text.split(":")
    try:
        if len(parts) != 2:
            raise ValueError
        start = int(parts[0]) if parts[0].strip() else 0
        stop = int(parts[1]) if parts[1].strip() else None
    except ValueError:
        raise UserError(f"--range {text!r}: give A:B as frame indices, e.g. 100:400 (either may be empty)") from None
    if start < 0 or (stop is not None and stop <= start):
        raise UserError(f"--range {text!r}: need 0 <= A < B")
    return start, stop


def run(args) -> int:
    from microau_gui.inference.reference import parse_reference
    from microau_gui.media import probe_media

    out = check_out(args.out, project=args.project, reads=[(args.media, "the input media")])
    check_out(f"{out}.json", project=args.project, reads=[(args.media, "the input media")],
              flag="--out (its JSON sidecar)")
    student_out = None
    if args.student_out and not args.student:
        raise UserError("--student-out needs --student CKPT")
    if args.student_out:
        student_out = check_out(args.student_out, project=args.project, flag="--student-out",
                                reads=[(args.media, "the input media"), (out, "the --out CSV")])
    args.student_out = student_out
    start, stop = parse_range(args.frame_range)
    policy, fixed_idx = parse_reference(args.reference)
    if not 0 < args.window_s <= 5:
        raise UserError(f"--window-s {args.window_s}: give a positive number of seconds (at most 5)")
    if args.threads is not None and args.threads < 1:
        raise UserError(f"--threads {args.threads}: use at least 1")
    if args.fps is not None and not 0 < args.fps <= 10000:
        raise UserError(f"--fps {args.fps}: give a positive frame rate")
    if args.gate and not 0 <= args.gate_margin_s <= 5:
        raise UserError(f"--gate-margin-s {args.gate_margin_s}: give 0 to 5 seconds")
    media_path = Path(args.media)
    probe_media(media_path)  # a missing or unreadable media fails here, before anything is loaded
    with torch_threads(args.threads):
        return _analyze(args, analysis_job(args, out, media_path, start, stop, policy, fixed_idx))


def analysis_job(args, out: Path, media_path: Path, start: int, stop: int | None, policy,
                 fixed_idx: int | None):
    """The arguments as an `inference.analysis_job.AnalysisJob` (the gate is spotted here)."""
    from microau_gui.inference.analysis import AnalysisOptions
    from microau_gui.inference.analysis_job import AnalysisJob

    gate = _gate(args, media_path) if args.gate else None
    options = AnalysisOptions(every=args.every, start=start, stop=stop, reference=policy,
                              fixed_idx=fixed_idx, window_s=args.window_s, batch_size=args.batch,
                              gate=gate)
    return AnalysisJob(media=media_path, options=options, out=out,
                       project=Path(args.project) if args.project else None, model=args.model,
                       fps=args.fps, device=args.device, speed=args.speed, student=args.student,
                       student_out=args.student_out)


def _analyze(args, job) -> int:
    from microau_gui.inference.analysis_job import open_analysis

    with open_analysis(job) as analysis:
        _announce_model(analysis.predictor)
        with ProgressBar("analyze", "frame", enabled=not args.no_progress) as bar:
            report = analysis.execute(progress=bar)
    out = job.out
    write_json(Path(f"{out}.json"), sidecar(args, report))
    result, gate = report.result, report.options.gate
    if result.undecodable is not None:
        first, last = result.undecodable
        print(f"warning: {job.media.name} is truncated: frames {first}-{last} cannot be decoded, so "
              f"{result.n_undecodable} requested frames have no row; re-copy or re-export the video "
              "to analyse them", file=sys.stderr)
    if report.student is not None:
        dense = report.student["result"]
        print(f"student {report.student['version']}: dense trace of {dense.n_rows} frames in "
              f"{dense.seconds:.1f} s, {dense.frames_per_s:.1f} frames/s"
              + (f" -> {job.student_out}" if job.student_out else " (project cache only)"))
    gated = f", gate {len(gate)} ranges" if gate is not None else ""
    print(f"analysed {result.n_rows} frames ({result.n_face} with a face, {result.n_from_cache} from "
          f"the project cache{gated}) in {result.seconds:.1f} s, {result.frames_per_s:.1f} frames/s "
          f"-> {out} (+ {out.name}.json)")
    return 0


@contextmanager
def torch_threads(threads: int | None):
    """Torch CPU threads for the run, restored after (the CLI may run inside a longer process);
    None keeps torch's own setting (one thread per core), `analyze`'s default.

    Measured on a 2-core AMD EPYC (AVX2 only), Dec 2026, same process, runs alternated: every
    frame of the bench's 640x480 video with ViT-B-16 (int8) ran at 4.26 frames/s on two threads
    against 2.23 on one, since the model is the slow stage and the other stages (decoding,
    MediaPipe in its child process, pair preparation) leave most of the second core idle; the
    tiny model ran at 40.7 / 40.6 against 39.8 / 43.5 frames/s, no difference beyond the noise.
    (In November, before the analysis was pipelined, one thread had been 2.3x faster on the
    tiny model, which is why the default was 1 until then.)"""
    import torch

    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _announce_model(predictor) -> None:
    if predictor.is_demo:
        print(f"model {predictor.model_version}: the bundled DEMO model, trained on synthetic "
              "micro-movements; not for real faces", file=sys.stderr)
    elif not predictor.pretrained_loaded:
        print(f"model {predictor.model_version}: NO PRETRAINED BACKBONE (trained from random "
              "weights); treat its predictions with care", file=sys.stderr)


def _gate(args, media_path: Path) -> tuple[tuple[int, int], ...]:
    from microau_gui.media import probe_media
    from microau_gui.spotting.intervals import gate_ranges
    from microau_gui.spotting.spotter import GATE_CONFIG, spot_media

    info = probe_media(media_path, fps=args.fps)
    started = time.perf_counter()
    with ProgressBar("spotting", "frame", enabled=not args.no_progress) as bar:
        spotted = spot_media(media_path, GATE_CONFIG, progress=bar)
    args.spot_seconds = time.perf_counter() - started  # the sidecar's gate.spot_seconds
    args.spot_flow_method = GATE_CONFIG.signal.flow_method  # and gate.spot_flow_method
    ranges = gate_ranges(spotted.candidates, info.n_frames, info.fps, margin_s=args.gate_margin_s)
    n_gated = sum(b - a for a, b in ranges)
    print(f"gate: {len(spotted.candidates)} spotted candidates -> {n_gated} of {info.n_frames} "
          f"frames ({100 * n_gated / max(1, info.n_frames):.1f}%)", file=sys.stderr)
    return tuple(ranges)


def sidecar(args, report) -> dict:
    """The JSON sidecar of a CSV (its keys: see the module docstring)."""
    options, result = report.options, report.result
    return {
        "csv": report.job.out.name,
        "columns": list(report.columns),
        "model": report.model,
        "media": report.media,
        "options": {
            "every": options.every, "range": [options.start, options.stop],
            "reference": options.reference.value, "fixed_idx": options.fixed_idx,
            "window_s": options.window_s, "batch": options.batch_size, "gate": args.gate,
            "gate_margin_s": args.gate_margin_s if args.gate else None,
        },
        "gate": None if options.gate is None else {
            "ranges": [list(r) for r in options.gate],
            "spot_seconds": round(getattr(args, "spot_seconds", float("nan")), 3),
            "spot_flow_method": getattr(args, "spot_flow_method", None)},
        "project": str(report.job.project) if report.job.project is not None else None,
        "result": {
            "n_requested": result.n_requested, "n_rows": result.n_rows, "n_face": result.n_face,
            "n_from_cache": result.n_from_cache, "seconds": round(result.seconds, 3),
            "frames_per_s": round(result.frames_per_s, 2),
            "undecodable": list(result.undecodable) if result.undecodable else None,
            "n_undecodable": result.n_undecodable,
        },
        "student": None if report.student is None else {
            "version": report.student["version"], "checkpoint": report.student["checkpoint"],
            "csv": str(report.job.student_out) if report.job.student_out else None,
            "result": {"n_rows": report.student["result"].n_rows,
                       "seconds": round(report.student["result"].seconds, 3),
                       "frames_per_s": round(report.student["result"].frames_per_s, 2)}},
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
