"""Corpus analysis, engine-free: which videos a run covers, how each is cut into chunks, what one
chunk's analysis returns, the run manifest that lets a rerun skip finished work, and the one
writer that merges predictions into a project.

Owns: `find_videos`, `csv_names`, `model_entry`, `chunk_bounds`, `CorpusSettings`, `VideoPlan`, `plan_video`,
`ChunkTask`, `ChunkResult`, `analyze_chunk`, `FaultHook`, `CorpusOutput`, `ProjectMerge`.
May import inference (`analysis`, `pipeline`, `reference`; `predictor` only as a type), media,
store, model.card (torch-free) and core; no Qt, and no engine: Ray lives in `inference.corpus_ray`,
which drives these pieces, so nothing here needs the `cluster` extra.

Chunks (our specification). A video is cut at frame boundaries that are multiples of
`grid = batch_size * every`, so every chunk's model batches are exactly the batches of one
unchunked run (batch composition moves fp32 results by float rounding, which a 6-decimal CSV
could show), and placed just after a keyframe where the container lists them: a chunk starting at
`b` decodes from `b - lag` (its pre-roll: the sliding reference of its first target is `lag =
round(window_s * fps)` frames earlier), and `b` is the first grid multiple with `b - lag` at or
after a keyframe, so a worker's seek lands on the keyframe and decodes fewer than `grid` frames
it does not need. Chunks are about `chunk_s` long; when the keyframes are further apart than two
chunks (one keyframe for a whole interview), fixed grid-aligned ranges are used instead and each
chunk's seek decodes from the keyframe before it. The static landmarks (`inference.pipeline`)
carry no state from frame to frame, so with the pre-roll decoded a chunk's rows equal the rows
of an unchunked `analyze` byte for byte (same fp32 speed mode, same torch thread count).

The run folder (`--out DIR`):
- `<video stem>.csv` per video, the `analyze` CSV layout (`inference.analysis.CsvSink`), written
  atomically once every chunk of the video is done. Two inputs with one stem get
  `<stem>-<8 hex of the path's sha1>.csv`.
- `.parts/<csv stem>/<start>-<stop>.csv`: finished chunks' rows (atomic), removed when the CSV is
  assembled; a killed run keeps them.
- `manifest.json` (atomic, rewritten at most every `MANIFEST_EVERY_S` and at the end): `format`,
  `inputs`, `model` (version, name, checkpoint), `settings` (everything that changes a row, plus
  `chunk_s`), `engine`, `summary` and `videos`: path, csv, `content_hash`
  (`store.fingerprint`), n_frames, fps, status (done / failed / pending) and `chunks`: index,
  start, stop, frames, status, error, seconds, worker (host:pid), run (which run of the folder
  did it), n_undecodable (frames of a truncated video that get no row, as in `analyze`); `unreadable`: inputs that could not be opened (path, error), the others still run.
A rerun with the same model version and settings skips every video whose CSV is done and every
chunk whose part is kept, and redoes failed chunks and the chunks of videos whose content hash
changed. A video about to be (re)done loses its old CSV first, so no CSV ever disagrees with the
manifest.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
import socket
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from pydantic import BaseModel, ValidationError

from microau_gui.core.errors import UserError
from microau_gui.core.files import write_atomically
from microau_gui.inference.analysis import CSV_FIXED_COLUMNS, AnalysisOptions, csv_row
from microau_gui.inference.reference import DEFAULT_WINDOW_S, ReferencePolicy, sliding_offset_frames
from microau_gui.media.open import VIDEO_SUFFIXES

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = "microau-corpus/1"
PARTS_DIR = ".parts"
MANIFEST_EVERY_S = 2.0  # a corpus of many short chunks must not rewrite a large manifest per chunk
FAULT_ENV = "MICROAU_CORPUS_FAULT"


# -- inputs ------------------------------------------------------------------------------------


def find_videos(inputs: Sequence[str | Path]) -> list[Path]:
    """The videos named by INPUTS (absolute, in order, each once): a video file; a folder (the
    videos under it, recursively, sorted); any other file is a list of paths, one per line
    (blank lines and `#` comments skipped, relative paths taken from the list's folder), each a
    video or a folder. A missing path, an empty list or a folder without videos is a one-line
    UserError."""
    found: dict[Path, None] = {}
    for given in inputs:
        for video in _expand(Path(given).expanduser(), listed_in=None):
            found.setdefault(video.resolve(), None)
    if not found:
        raise UserError("no videos to analyse: give video files, folders of videos or a list file")
    return list(found)


def _expand(path: Path, listed_in: Path | None) -> list[Path]:
    where = f" (listed in {listed_in})" if listed_in is not None else ""
    if not path.exists():
        raise UserError(f"{path}: no such file or folder{where}")
    if path.is_dir():
        videos = sorted(p for p in path.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file()
                        and not any(part.startswith(".") for part in p.relative_to(path).parts))
        if not videos:
            raise UserError(f"{path}: no video files ({', '.join(VIDEO_SUFFIXES)}) in this folder{where}")
        return videos
    if path.suffix.lower() in VIDEO_SUFFIXES:
        return [path]
    if listed_in is not None:
        raise UserError(f"{path}{where}: not a video ({', '.join(VIDEO_SUFFIXES)}) or a folder; "
                        "a list file may not name another list")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: not a video and not a readable list of paths ({err})") from None
    lines = [line.strip() for line in text.splitlines()]
    entries = [line for line in lines if line and not line.startswith("#")]
    if not entries:
        raise UserError(f"{path}: the list of videos is empty (one path per line)")
    videos: list[Path] = []
    for entry in entries:
        listed = Path(entry).expanduser()
        videos += _expand(listed if listed.is_absolute() else path.parent / listed, listed_in=path)
    return videos


def csv_names(videos: Sequence[Path]) -> list[str]:
    """One CSV name per video: `<stem>.csv`, or `<stem>-<8 hex>.csv` for stems that repeat."""
    stems = [v.stem for v in videos]
    return [f"{v.stem}.csv" if stems.count(v.stem) == 1
            else f"{v.stem}-{hashlib.sha1(str(v).encode()).hexdigest()[:8]}.csv" for v in videos]


def model_entry(checkpoint: Path) -> dict:
    """The manifest's `model`: version, name, checkpoint, vocab, is_demo (the card, read torch-free)."""
    from microau_gui.model.card import read_card

    card = read_card(checkpoint)
    return {"version": card.version, "name": card.name, "checkpoint": str(checkpoint),
            "vocab": list(card.vocab), "is_demo": card.is_demo}


# -- settings and chunks -------------------------------------------------------------------------


@dataclass(frozen=True)
class CorpusSettings:
    """What every chunk of a run is analysed with, as plain values (sent to every worker)."""

    checkpoint: str  # checkpoint folder; the same path must hold it on every node
    model_version: str  # the card's version (name@hash of everything that changes outputs)
    every: int = 1  # analyse every n-th frame
    reference: str = ReferencePolicy.SLIDING.value  # "sliding" or "fixed"
    fixed_idx: int | None = None  # "fixed": the neutral frame
    window_s: float = DEFAULT_WINDOW_S  # sliding reference: seconds before the target
    batch_size: int = 8  # pairs per model call; chunk bounds are multiples of batch_size * every
    device: str = "cpu"  # "cpu" or "cuda", as resolved for the cluster
    speed: str = "fp32"  # speed mode, pinned: the auto race would make rows machine-dependent
    project: str | None = None  # project merged into (by the driver only)
    chunk_s: float = 10.0  # target chunk length in seconds (changes the cut, not a row)

    def outputs_key(self) -> dict:
        """The settings a finished chunk must share with this run to be kept."""
        key = asdict(self)
        key.pop("chunk_s")
        return key

    def options(self, start: int, stop: int) -> AnalysisOptions:
        """The analysis options of the frames [start, stop)."""
        return AnalysisOptions(every=self.every, start=start, stop=stop,
                               reference=ReferencePolicy(self.reference), fixed_idx=self.fixed_idx,
                               window_s=self.window_s, batch_size=self.batch_size)

    def lag(self, fps: float) -> int:
        """Pre-roll frames a chunk decodes before its first target."""
        if ReferencePolicy(self.reference) is ReferencePolicy.FIXED:
            return 0  # the fixed frame is read by random access, never streamed
        return sliding_offset_frames(fps, self.window_s)


def chunk_bounds(n_frames: int, keyframes: Sequence[int], lag: int, grid: int, target: int) -> list[tuple[int, int]]:
    """Half-open [start, stop) chunks covering 0..n_frames (see the module docstring): starts
    are multiples of `grid`, each the first with `start - lag` at or after a keyframe, about
    `target` frames apart (at most twice that), and the last chunk at least `grid` frames long."""
    grid = max(1, grid)
    step = -(-max(target, grid) // grid) * grid  # the target, rounded up to the grid
    candidates = sorted({-(-(k + lag) // grid) * grid for k in keyframes if k > 0})
    bounds = [0]
    while True:
        last = bounds[-1]
        after = [b for b in candidates if last + step <= b <= last + 2 * step]
        nxt = after[0] if after else last + step
        if nxt + grid > n_frames:
            break
        bounds.append(nxt)
    return [(a, b) for a, b in zip(bounds, bounds[1:] + [n_frames]) if a < b]


@dataclass(frozen=True)
class VideoPlan:
    """One video of the run: where its CSV goes and how it is cut."""

    path: Path  # absolute
    csv_name: str
    content_hash: str  # store.fingerprint.content_hash
    n_frames: int
    fps: float
    chunks: tuple[tuple[int, int], ...]  # [start, stop) frame_idx

    def frames_in(self, start: int, stop: int, every: int) -> int:
        return len(range(start, min(stop, self.n_frames), every))


def plan_video(path: Path, csv_name: str, settings: CorpusSettings) -> VideoPlan:
    """Open the video (its index: frame count, keyframes), fingerprint it and cut it."""
    from microau_gui.media import open_media
    from microau_gui.store.fingerprint import content_hash

    with open_media(path, cache_frames=1) as source:
        n_frames, fps = source.n_frames, source.fps
        keyframes = getattr(source, "keyframe_indices", range(n_frames))
        if settings.fixed_idx is not None:
            source.check_index(settings.fixed_idx)
    target = max(1, int(round(settings.chunk_s * fps)))
    grid = settings.batch_size * settings.every
    bounds = chunk_bounds(n_frames, keyframes, settings.lag(fps), grid, target)
    return VideoPlan(path=path, csv_name=csv_name, content_hash=content_hash(path), n_frames=n_frames,
                     fps=fps, chunks=tuple(bounds))


# -- one chunk, in a worker --------------------------------------------------------------------


@dataclass(frozen=True)
class ChunkTask:
    """What a worker is sent for one chunk (plain values)."""

    media: str  # absolute path, the same on every node
    content_hash: str  # the driver's fingerprint: a node holding another file refuses the chunk
    csv_name: str
    chunk_index: int
    start: int  # first frame_idx (inclusive)
    stop: int  # last frame_idx (exclusive)
    with_predictions: bool = False  # return the predictions (the driver merges them into a project)


@dataclass(frozen=True)
class ChunkResult:
    """What a worker returns for one chunk."""

    task: ChunkTask
    csv_text: str  # the chunk's CSV rows, no header, exactly as `analyze` writes them
    n_rows: int
    n_face: int
    n_undecodable: int  # requested frames of a truncated video that got no row
    seconds: float
    worker: str  # host:pid of the worker process
    predictions: tuple = ()  # FramePrediction rows, when the task asked for them
    numerics: str = "fp32"  # the numeric class of the rows (`Predictor.numerics`), the cache's key


class _RowSink:
    def __init__(self, keep: bool):
        self.text = io.StringIO()
        self._writer = csv.writer(self.text)  # the dialect CsvSink writes with
        self.keep = keep
        self.predictions: list = []

    def write(self, predictions, times_s) -> None:
        for pred, t_s in zip(predictions, times_s):
            self._writer.writerow(csv_row(pred, t_s))
        if self.keep:
            self.predictions += predictions


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def analyze_chunk(predictor, task: ChunkTask, settings: CorpusSettings,
                  hashes: dict[str, str] | None = None) -> ChunkResult:
    """Analyse one chunk with a loaded `inference.predictor.Predictor` (run in a worker).

    hashes: the worker's memo of content hashes by path, so a node fingerprints a video once.
    """
    from microau_gui.inference.pipeline import analyze_source
    from microau_gui.media import open_media
    from microau_gui.store.fingerprint import content_hash

    hashes = {} if hashes is None else hashes
    if task.media not in hashes:
        hashes[task.media] = content_hash(task.media)
    if hashes[task.media] != task.content_hash:
        raise UserError(f"{task.media} on {socket.gethostname()} is not the file the driver planned "
                        "(its content hash differs): every node must see the same media at the same path")
    sink = _RowSink(task.with_predictions)
    with open_media(task.media, cache_frames=4) as source:
        result = analyze_source(source, predictor, settings.options(task.start, task.stop), sink)
    return ChunkResult(task=task, csv_text=sink.text.getvalue(), n_rows=result.n_rows, n_face=result.n_face,
                       n_undecodable=result.n_undecodable, seconds=result.seconds, worker=worker_name(),
                       predictions=tuple(sink.predictions), numerics=predictor.numerics)


class ChunkFault(RuntimeError):
    """The failure `FaultHook` injects (tests and drills only)."""


class FaultHook:
    """Injected chunk failures, from `MICROAU_CORPUS_FAULT=VIDEO:CHUNK:TIMES[,...]`: chunk CHUNK
    (0-based) of the video whose file name or stem is VIDEO fails its first TIMES attempts
    (`always`: every attempt). The driver reads the variable and hands it to each worker; a
    worker counts attempts itself (an actor's retries run on that actor)."""

    def __init__(self, spec: str | None):
        self.spec = spec or ""
        self.faults: dict[tuple[str, int], int] = {}
        self.attempts: dict[tuple[str, int], int] = {}
        for item in filter(None, (part.strip() for part in self.spec.split(","))):
            parts = item.rsplit(":", 2)
            try:
                if len(parts) != 3:
                    raise ValueError
                times = -1 if parts[2] == "always" else int(parts[2])
                self.faults[(parts[0], int(parts[1]))] = times
            except ValueError:
                raise UserError(f"{FAULT_ENV}={self.spec!r}: use VIDEO:CHUNK:TIMES (TIMES a number or "
                                "always), comma-separated") from None

    def check(self, task: ChunkTask) -> None:
        """Raise `ChunkFault` when this attempt of the task is one to fail."""
        name = Path(task.media).name
        for video in (name, Path(name).stem, Path(task.csv_name).stem):
            times = self.faults.get((video, task.chunk_index))
            if times is None:
                continue
            key = (video, task.chunk_index)
            self.attempts[key] = attempt = self.attempts.get(key, 0) + 1
            if times < 0 or attempt <= times:
                raise ChunkFault(f"injected fault ({FAULT_ENV}): {name} chunk {task.chunk_index}, "
                                 f"attempt {attempt}")
            return


# -- the run folder: parts, CSVs, manifest (driver side) -----------------------------------------


@dataclass
class _Chunk:
    index: int
    start: int
    stop: int
    frames: int
    status: str = "pending"  # pending | done | failed
    error: str | None = None
    seconds: float | None = None
    worker: str | None = None
    run: int | None = None  # which run of this folder analysed it (1 = the first)
    n_undecodable: int = 0  # frames of a truncated video in this chunk that got no row


    def keep(self, was: "_ManifestChunk") -> None:
        """Take a previous run's finished chunk as done."""
        self.status, self.seconds, self.worker, self.run = "done", was.seconds, was.worker, was.run


class _ManifestChunk(BaseModel):
    """What a rerun reads back of a previous run's chunk (the manifest is checked against these
    schemas: a hand-edited or damaged one is treated as absent, so everything is redone)."""

    start: int
    stop: int
    status: str
    seconds: float | None = None
    worker: str | None = None
    run: int | None = None


class _ManifestVideo(BaseModel):
    path: str
    csv: str
    content_hash: str
    status: str
    chunks: list[_ManifestChunk]


class _Manifest(BaseModel):
    format: str
    created: str = ""
    run: int = 0
    settings: dict
    model: dict
    videos: list[_ManifestVideo]


@dataclass
class _Video:
    plan: VideoPlan
    chunks: list[_Chunk]
    status: str = "pending"  # pending | done | failed

    def as_dict(self) -> dict:
        p = self.plan
        return {"path": str(p.path), "csv": p.csv_name, "content_hash": p.content_hash,
                "n_frames": p.n_frames, "fps": p.fps, "status": self.status,
                "chunks": [asdict(c) for c in self.chunks]}


@dataclass
class CorpusOutput:
    """The run folder of one run: which chunks are still to do, and the writes as they finish."""

    out: Path
    settings: CorpusSettings
    inputs: list[str]
    model: dict  # version, name, checkpoint
    engine: dict = field(default_factory=dict)
    videos: list[_Video] = field(default_factory=list)
    created: str = ""
    run: int = 1  # runs of this folder so far, this one included
    unreadable: list[dict] = field(default_factory=list)  # inputs that could not be planned: path, error
    _written_at: float = 0.0

    @classmethod
    def open(cls, out: Path, settings: CorpusSettings, plans: Sequence[VideoPlan], *, inputs: Sequence[str],
             model: dict) -> "CorpusOutput":
        """The run folder (created when missing), with what a previous run finished kept (see the
        module docstring) and stale CSVs of videos to redo removed."""
        out.mkdir(parents=True, exist_ok=True)
        run = cls(out=out, settings=settings, inputs=[str(i) for i in inputs], model=model,
                  created=_now())
        previous = run._previous()
        for plan in plans:
            old = previous.get(str(plan.path))
            chunks = [_Chunk(i, a, b, plan.frames_in(a, b, settings.every)) for i, (a, b) in enumerate(plan.chunks)]
            video = _Video(plan, chunks)
            same = old is not None and old.content_hash == plan.content_hash and old.csv == plan.csv_name
            if same and old.status == "done" and (out / plan.csv_name).is_file() \
                    and [(c.start, c.stop) for c in old.chunks] == list(plan.chunks):
                for chunk, was in zip(chunks, old.chunks):
                    chunk.keep(was)
                video.status = "done"
            else:
                (out / plan.csv_name).unlink(missing_ok=True)  # it would disagree with this run
                kept = {(c.start, c.stop): c for c in old.chunks} if same else {}
                for chunk in chunks:
                    was = kept.get((chunk.start, chunk.stop))
                    if was is not None and was.status == "done" and run.part(plan, chunk).is_file():
                        chunk.keep(was)
                if not same:
                    shutil.rmtree(run.parts_dir(plan), ignore_errors=True)
            run.videos.append(video)
        return run

    def _previous(self) -> dict[str, _ManifestVideo]:
        """The previous manifest's videos by path, when its model and settings are this run's."""
        path = self.out / MANIFEST_NAME
        try:
            old = _Manifest.model_validate_json(path.read_bytes())
        except (OSError, ValidationError):
            return {}  # missing, unreadable or not ours: nothing is kept, the manifest is rewritten
        if old.format != MANIFEST_FORMAT:
            return {}
        self.created = old.created or self.created
        self.run = old.run + 1
        key = dict(old.settings)
        key.pop("chunk_s", None)
        if key != self.settings.outputs_key() or old.model.get("version") != self.model["version"]:
            return {}
        return {v.path: v for v in old.videos}

    # -- what to do ----------------------------------------------------------------------------

    def pending(self, with_predictions: bool = False) -> list[ChunkTask]:
        """The chunks still to run, video by video."""
        return [ChunkTask(media=str(v.plan.path), content_hash=v.plan.content_hash, csv_name=v.plan.csv_name,
                          chunk_index=c.index, start=c.start, stop=c.stop, with_predictions=with_predictions)
                for v in self.videos for c in v.chunks if c.status != "done"]

    def frames(self, status: str | None = None) -> int:
        return sum(c.frames for v in self.videos for c in v.chunks if status is None or c.status == status)

    def video_of(self, task: ChunkTask) -> _Video:
        return next(v for v in self.videos if str(v.plan.path) == task.media and v.plan.csv_name == task.csv_name)

    def parts_dir(self, plan: VideoPlan) -> Path:
        return self.out / PARTS_DIR / Path(plan.csv_name).stem

    def part(self, plan: VideoPlan, chunk: _Chunk) -> Path:
        return self.parts_dir(plan) / f"{chunk.start}-{chunk.stop}.csv"

    # -- as chunks finish ----------------------------------------------------------------------

    def chunk_done(self, result: ChunkResult) -> _Video:
        """Keep a finished chunk's rows; assemble the video's CSV when it was the last one."""
        video = self.video_of(result.task)
        chunk = video.chunks[result.task.chunk_index]
        part = self.part(video.plan, chunk)
        part.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(part, lambda tmp: tmp.write_text(result.csv_text, encoding="utf-8", newline=""))
        chunk.status, chunk.error, chunk.run = "done", None, self.run
        chunk.seconds, chunk.worker = round(result.seconds, 3), result.worker
        chunk.n_undecodable = result.n_undecodable
        if all(c.status == "done" for c in video.chunks):
            self._assemble(video)
        self.save(force=False)
        return video

    def chunk_failed(self, task: ChunkTask, error: str) -> _Video:
        video = self.video_of(task)
        chunk = video.chunks[task.chunk_index]
        chunk.status, chunk.error, chunk.run = "failed", error, self.run
        video.status = "failed"
        self.save(force=False)
        return video

    def _assemble(self, video: _Video) -> None:
        header = io.StringIO()
        csv.writer(header).writerow((*CSV_FIXED_COLUMNS, *self.model["vocab"]))
        parts = [self.part(video.plan, c) for c in video.chunks]

        def write(tmp: Path) -> None:
            with open(tmp, "w", encoding="utf-8", newline="") as handle:
                handle.write(header.getvalue())
                for part in parts:
                    with open(part, encoding="utf-8", newline="") as rows:  # keep csv's \r\n
                        handle.write(rows.read())

        write_atomically(self.out / video.plan.csv_name, write)
        video.status = "done"
        shutil.rmtree(self.parts_dir(video.plan), ignore_errors=True)

    def save(self, force: bool = True) -> None:
        """Rewrite the manifest (atomically); unless `force`, at most every MANIFEST_EVERY_S."""
        now = time.monotonic()
        if not force and now - self._written_at < MANIFEST_EVERY_S:
            return
        self._written_at = now
        parts = self.out / PARTS_DIR
        if parts.is_dir() and not any(parts.iterdir()):
            parts.rmdir()
        payload = {
            "format": MANIFEST_FORMAT, "created": self.created, "updated": _now(), "run": self.run,
            "inputs": self.inputs, "model": self.model,
            "settings": asdict(self.settings), "engine": self.engine,
            "summary": self.summary(),
            "videos": [v.as_dict() for v in self.videos],
            "unreadable": self.unreadable,
        }
        text = json.dumps(payload, indent=1)
        write_atomically(self.out / MANIFEST_NAME, lambda tmp: tmp.write_text(text, encoding="utf-8"))

    def summary(self) -> dict:
        chunks = [c for v in self.videos for c in v.chunks]
        return {"videos": len(self.videos), "videos_done": sum(v.status == "done" for v in self.videos),
                "videos_failed": sum(v.status == "failed" for v in self.videos),
                "chunks": len(chunks), "chunks_done": sum(c.status == "done" for c in chunks),
                "chunks_failed": sum(c.status == "failed" for c in chunks), "frames": self.frames(),
                "frames_undecodable": sum(c.n_undecodable for c in chunks)}

    def failures(self) -> list[tuple[VideoPlan, _Chunk]]:
        return [(v.plan, c) for v in self.videos for c in v.chunks if c.status == "failed"]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# -- the project's one writer (driver side) ----------------------------------------------------


class ProjectMerge:
    """Merges finished chunks' predictions into a project's predictions cache, from the driver
    process only: workers never open the project, so the SQLite file has one writer."""

    def __init__(self, project_path: Path, checkpoint: Path):
        from microau_gui.model.card import read_card
        from microau_gui.store.project import Project

        self.project = Project.open_or_create(project_path)
        try:
            if self.project.read_only:
                raise UserError(f"project {project_path} is read-only ({self.project.read_only_reason}); "
                                "analyze-corpus merges predictions into it: make it writable or drop --project")
            self.version = self.project.models.register(read_card(checkpoint), checkpoint)
        except BaseException:
            self.project.close()
            raise
        self._caches: dict[tuple[str, str], object] = {}  # (media, numerics) -> ProjectCache

    def merge(self, result: ChunkResult) -> None:
        from microau_gui.inference.analysis import ProjectCache
        from microau_gui.media import open_media

        media = result.task.media
        cache = self._caches.get((media, result.numerics))
        if cache is None:
            video = self.project.video_by_path(media)
            if video is None:
                with open_media(media, cache_frames=1) as source:
                    video = self.project.add_video(media, source)
            cache = self._caches[(media, result.numerics)] = ProjectCache(self.project, video.id, self.version.id,
                                                                          result.numerics)
        cache.store(list(result.predictions))

    def close(self) -> None:
        self.project.close()

