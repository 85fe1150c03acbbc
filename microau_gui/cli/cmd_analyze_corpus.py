"""`python main.py analyze-corpus INPUTS... --out DIR`: `analyze` over many videos, in chunks, on Ray.

    analyze-corpus INPUTS... --out DIR [--project P] [--engine local|ray] [--address ADDR]
                   [--workers N] [--model M] [--every N] [--reference sliding|fixed:N]
                   [--window-s S] [--batch N] [--device auto|cpu|cuda] [--chunk-s S] [--retries N]

Owns the `analyze-corpus` subcommand: it checks the arguments, plans the run
(`inference.corpus`: the videos, their chunks, the run folder and its manifest) and drives it on
Ray (`inference.corpus_ray`). May import every layer; Ray is imported only when a run starts, so
a missing `cluster` extra is a one-line error.

INPUTS are video files, folders (their videos, recursively) or text files listing one path per
line. `--out DIR` receives one CSV per video, byte-identical to what `analyze VIDEO --out CSV
--speed fp32` writes (the speed mode is pinned to fp32 here, never raced), and `manifest.json`
(inputs, content hashes, model version, settings, per-chunk status and errors). Rerunning the
same command skips what is done and redoes what failed or changed.

`--engine local` (default) starts Ray inside this process with this machine's cores (`--workers`
caps them); `--engine ray` joins the cluster at `--address` (default: the one `ray start` runs
on this machine). Every node must see the media and the checkpoint at the same paths, with the
same venv. `--project P` merges all predictions into P's cache from this process alone (the
workers never open P). Exit 0 when every chunk finished, 1 when some failed (each failure is one
line on stderr and in the manifest), 2 for bad input.

`MICROAU_CORPUS_FAULT=VIDEO:CHUNK:TIMES` makes a chunk fail (tests and drills: see
`inference.corpus.FaultHook`).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from microau_gui.cli.outputs import check_out
from microau_gui.cli.progress import ProgressBar
from microau_gui.core.errors import UserError

NAME = "analyze-corpus"
HELP = "analyze many videos in chunks on Ray (local or a cluster) -> one CSV per video + manifest"


def add_arguments(parser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="INPUTS",
                        help="video files, folders of videos, or text files listing one path per line")
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="folder for the per-video CSVs and manifest.json (created when missing)")
    parser.add_argument("--project", metavar="P",
                        help="project (.maus) to merge every prediction into (one writer: this process); "
                        "its active model is the default model")
    parser.add_argument("--engine", choices=("local", "ray"), default="local",
                        help="local: Ray started in this process on this machine's cores (default); "
                        "ray: join a running cluster")
    parser.add_argument("--address", metavar="ADDR",
                        help="--engine ray: the head's address, e.g. 10.0.0.1:6379 (default: auto)")
    parser.add_argument("--workers", type=int, metavar="N",
                        help="worker processes (default: one per CPU, or per GPU, of the engine)")
    parser.add_argument("--model", metavar="M",
                        help="checkpoint folder, project model version or weights/ name "
                        "(default: the project's active version, else the bundled demo model)")
    parser.add_argument("--every", type=int, default=1, metavar="N", help="analyse every N-th frame (default 1)")
    parser.add_argument("--reference", default="sliding", metavar="POLICY",
                        help="sliding (t - 0.2 s, default) or fixed:N (onset needs one video's events: "
                        "use analyze)")
    parser.add_argument("--window-s", type=float, default=0.2,
                        help="sliding reference: seconds between reference and frame (default 0.2)")
    parser.add_argument("--batch", type=int, default=8, metavar="N", help="frames per model call (default 8)")
    parser.add_argument("--device", default="auto",
                        help="auto (GPU workers when the cluster has GPUs), cpu or cuda")
    parser.add_argument("--chunk-s", type=float, default=10.0, metavar="S",
                        help="chunk length in seconds of video (default 10; cut at keyframes)")
    parser.add_argument("--retries", type=int, default=2, metavar="N",
                        help="retries of a failed chunk before it is reported (default 2)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args, should_cancel=None) -> int:
    """The command; `should_cancel` (a callable) stops the run as Ctrl-C does (tests)."""
    from microau_gui.inference.corpus import FAULT_ENV, FaultHook, csv_names, find_videos
    from microau_gui.inference.reference import ReferencePolicy, parse_reference

    policy, fixed_idx = parse_reference(args.reference)
    if policy is ReferencePolicy.ONSET:
        raise UserError("--reference onset compares frames with one video's coded events; use analyze "
                        "per video, or sliding / fixed:N here")
    if not 0 < args.window_s <= 5:
        raise UserError(f"--window-s {args.window_s}: give a positive number of seconds (at most 5)")
    if not 0 < args.chunk_s <= 3600:
        raise UserError(f"--chunk-s {args.chunk_s}: give 0 to 3600 seconds")
    if args.every < 1 or args.batch < 1:
        raise UserError(f"--every {args.every} / --batch {args.batch}: use 1 or more")
    if args.retries < 0:
        raise UserError(f"--retries {args.retries}: use 0 or more")
    if args.engine == "local" and args.address:
        raise UserError("--address joins a cluster: use it with --engine ray")
    videos = find_videos(args.inputs)
    out = check_out(args.out, project=args.project, folder=True,
                    reads=[(v, "an input video") for v in videos])
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {args.out} is a file; give a folder for the CSVs and the manifest")
    fault = os.environ.get(FAULT_ENV) or None
    FaultHook(fault)  # a malformed spec fails here, before anything starts
    checkpoint, model = _model(args)
    try:
        from microau_gui.inference.corpus_ray import RayEngine
    except ImportError as err:
        raise UserError(f"analyze-corpus needs Ray ({err}); install the cluster extra: "
                        "pip install -e '.[cluster]'") from None
    with RayEngine(args.engine, args.address, args.workers) as engine:
        device = engine.device(args.device)
        return _run(args, engine, device, videos, csv_names(videos), out, checkpoint, model, fault,
                    policy.value, fixed_idx, should_cancel)


def _model(args) -> tuple[Path, dict]:
    """The checkpoint folder and the manifest's `model` entry (card read torch-free)."""
    from microau_gui.inference.checkpoints import resolve_checkpoint
    from microau_gui.inference.corpus import model_entry
    from microau_gui.store.project import Project

    project = None
    if args.project and Path(args.project).expanduser().exists():
        project = Project.open(args.project, read_only=True)
    try:
        checkpoint = resolve_checkpoint(args.model, project).resolve()
    finally:
        if project is not None:
            project.close()
    return checkpoint, model_entry(checkpoint)


def _run(args, engine, device, videos, names, out, checkpoint, model, fault, reference, fixed_idx,
         should_cancel) -> int:
    from microau_gui.inference.corpus import CorpusSettings, ProjectMerge, plan_video

    settings = CorpusSettings(checkpoint=str(checkpoint), model_version=model["version"], every=args.every,
                              reference=reference, fixed_idx=fixed_idx, window_s=args.window_s,
                              batch_size=args.batch, device=device, speed="fp32",
                              project=str(Path(args.project).expanduser().resolve()) if args.project else None,
                              chunk_s=args.chunk_s)
    plans, unreadable = [], []
    for video, name in zip(videos, names):
        try:
            plans.append(plan_video(video, name, settings))
        except (UserError, OSError) as err:  # one unreadable video never stops the others
            unreadable.append({"path": str(video), "error": str(err).splitlines()[0]})
            print(f"error: {video}: {unreadable[-1]['error']}", file=sys.stderr)
    if not plans:
        raise UserError(f"none of the {len(videos)} videos can be read (see above)")
    merge = ProjectMerge(Path(settings.project), checkpoint) if settings.project else None
    try:
        return _drive(args, engine, settings, plans, unreadable, out, model, merge, fault, device, should_cancel)
    finally:
        if merge is not None:
            merge.close()


def _drive(args, engine, settings, plans, unreadable, out, model, merge, fault, device, should_cancel) -> int:
    from microau_gui.core.progress import Cancelled
    from microau_gui.inference.corpus import CorpusOutput
    from microau_gui.inference.corpus_ray import run_corpus

    output = CorpusOutput.open(out, settings, plans, inputs=args.inputs, model=model)
    output.unreadable = unreadable
    workers = engine.n_workers(device)
    output.engine = engine.describe(device, workers)
    skipped = sum(c.status == "done" for v in output.videos for c in v.chunks)
    if model["is_demo"]:
        print(f"model {model['name']}: the bundled DEMO model, trained on synthetic micro-movements; "
              "not for real faces", file=sys.stderr)

    def report(task, error: str) -> None:
        print(f"error: {Path(task.media).name} chunk {task.chunk_index} (frames {task.start}-{task.stop - 1}) "
              f"failed after {args.retries} retries: {error}", file=sys.stderr)

    try:
        with ProgressBar("corpus", "frame", enabled=not args.no_progress) as bar:
            result = run_corpus(output, engine, workers=workers, retries=args.retries, fault_spec=fault,
                                merge=merge, progress=bar, on_failure=report,
                                should_cancel=should_cancel)
    except (KeyboardInterrupt, Cancelled):
        summary = output.summary()
        print(f"interrupted: {summary['chunks_done']} of {summary['chunks']} chunks done; rerun the same "
              "command to finish", file=sys.stderr)
        raise
    summary = output.summary()
    for video in output.videos:
        lost = sum(c.n_undecodable for c in video.chunks)
        if lost:
            print(f"warning: {video.plan.path.name} is truncated: {lost} requested frames cannot be decoded "
                  "and have no row; re-copy or re-export the video to analyse them", file=sys.stderr)
    print(f"analysed {summary['videos_done']} of {summary['videos'] + len(unreadable)} videos "
          f"({len(unreadable)} unreadable): {result.n_chunks_run} chunks "
          f"run, {skipped} kept from before, {summary['chunks_failed']} failed; {result.n_frames} frames in "
          f"{result.seconds:.1f} s ({result.frames_per_s:.1f} frames/s) on {workers} {device} workers (ready in "
          f"{result.startup_s:.1f} s) "
          f"-> {out} (+ manifest.json)")
    return 1 if summary["chunks_failed"] or unreadable else 0
