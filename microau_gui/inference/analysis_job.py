"""One whole analysis of one media file, from plain values: the recipe `analyze` and the bench run.

Owns: `AnalysisJob`, `AnalysisReport`, `OpenAnalysis`, `open_analysis`. May import inference
(`analysis`, `pipeline`, `predictor`, `checkpoints`, `reference`), store, media and core; no Qt.

`open_analysis(job)` opens (or creates) the project, resolves and loads the checkpoint, opens the
media, and registers both in the project's predictions cache; `execute()` steps the one analysis
pipeline (`inference.pipeline`) to its end, writing the CSV when `job.out` is set, and returns
an `AnalysisReport` (what ran, on what, with which result), which the CLI writes as its JSON
sidecar and the bench reads as its figures. A failed or cancelled run removes the project it
created if nothing was put in it, and never leaves a partial CSV.

With a distilled student (`job.student`, DESIGN.md section 5 "Teacher and student") the work is
split by where a coder looks: the student draws the dense trace of every planned frame (the gate
ignored; rows cached under the student's version, CSV `job.student_out`), then the teacher runs
only on the gated frames and on the apex of every coded event of the video (rows cached under
the teacher's version, CSV `job.out`); without a gate and without events the teacher has nothing
to run on. The student must have been distilled from this teacher (its card says so), and the
two never share a cache version, so every cached row says which model produced it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from microau_gui.core.errors import UserError
from microau_gui.core.progress import Progress
from microau_gui.inference.analysis import (CSV_FIXED_COLUMNS, AnalysisOptions, AnalysisResult, CsvSink,
                                            open_project_cache)
from microau_gui.inference.pipeline import analyze_source
from microau_gui.inference.reference import ReferencePolicy


@dataclass(frozen=True)
class AnalysisJob:
    """Everything one analysis needs, as plain values (paths, numbers, names)."""

    media: Path  # video file or image-sequence folder
    options: AnalysisOptions = field(default_factory=AnalysisOptions)  # onset events are filled from the project
    out: Path | None = None  # CSV to write; None: rows only go to the project cache
    project: Path | None = None  # project to cache predictions in (created when missing)
    model: str | None = None  # checkpoint folder, project version or weights/ name; None: the default
    fps: float | None = None  # image folders: frame rate (None: the project's record, else 30)
    device: str = "auto"  # "auto", "cpu" or "cuda"
    speed: str = "auto"  # speed mode (inference.speed)
    student: str | None = None  # a distilled student of `model` draws the dense trace (see above)
    student_out: Path | None = None  # CSV of the student's dense trace


@dataclass(frozen=True)
class AnalysisReport:
    """What an analysis ran, on what, and what came out."""

    job: AnalysisJob
    options: AnalysisOptions  # as the teacher ran (onset events filled in; with a student, its gate)
    columns: tuple[str, ...]  # CSV columns
    model: dict  # version, checkpoint, device, speed_mode, is_demo, pretrained_loaded, card
    media: dict  # path, kind, n_frames, fps, width, height, is_vfr, codec
    result: AnalysisResult  # the teacher's (the only model's) rows
    student: dict | None = None  # version, checkpoint, result (AnalysisResult) of the dense pass


class OpenAnalysis:
    """A job with its project, model and media open; `execute()` runs it once. Close it (or use
    it as a context manager) to release them."""

    def __init__(self, job: AnalysisJob):
        from microau_gui.inference.checkpoints import resolve_checkpoint
        from microau_gui.inference.predictor import Predictor
        from microau_gui.media import open_media, probe_media
        from microau_gui.store.project import Project

        self.job = job
        self.project = None
        self.predictor = None
        self.student = None
        self.source = None
        self._created = bool(job.project) and not Path(job.project).expanduser().exists()
        try:
            self.project = Project.open_or_create(job.project) if job.project else None
            fps = job.fps
            if fps is None and self.project is not None and Path(job.media).is_dir():
                video = self.project.video_by_path(job.media)
                fps = video.fps if video is not None else None
            self.info = probe_media(job.media, fps=fps)
            checkpoint = resolve_checkpoint(job.model, self.project)
            self.predictor = Predictor.from_checkpoint(checkpoint, device=job.device, speed_mode=job.speed,
                                                       check_batch_size=job.options.batch_size)
            if job.student is not None:
                self.student = self._open_student(Predictor, resolve_checkpoint(job.student, self.project))
            self.source = open_media(job.media, cache_frames=4, fps=fps)
            options = job.options
            if options.reference is ReferencePolicy.ONSET:
                options = AnalysisOptions(**{**options.__dict__, "events": self._events()})
            if options.fixed_idx is not None:
                self.source.check_index(options.fixed_idx)
            self.options = options
        except BaseException:
            self.close(failed=True)
            raise

    def _open_student(self, predictor_type, checkpoint):
        student = predictor_type.from_checkpoint(checkpoint, device=self.job.device, speed_mode=self.job.speed,
                                                 check_batch_size=self.job.options.batch_size)
        teacher = self.predictor.card.version
        if student.card.teacher != teacher:
            student.close()
            what = f"was distilled from {student.card.teacher}" if student.card.is_student else \
                "is not a distilled student (its card names no teacher)"
            raise UserError(f"--student {self.job.student} {what}; the teacher running is {teacher}")
        return student

    def _apexes(self) -> tuple[int, ...]:
        """Apex frame_idx of the coded events of this video in the project (none without one)."""
        if self.project is None:
            return ()
        video = self.project.video_by_path(self.job.media)
        return tuple(sorted({e.apex for e in self.project.events(video.id)})) if video is not None else ()

    def _teacher_gate(self) -> tuple[tuple[int, int], ...]:
        """With a student: the teacher's frames, the gate's ranges plus one range per event apex."""
        ranges = [*(self.options.gate or ()), *((a, a + 1) for a in self._apexes())]
        merged: list[tuple[int, int]] = []
        for lo, hi in sorted(ranges):
            if merged and lo <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
            else:
                merged.append((lo, hi))
        return tuple(merged)

    def _events(self) -> tuple[tuple[int, int], ...]:
        if self.project is None:
            raise UserError("--reference onset needs --project P holding coded events of this video")
        video = self.project.video_by_path(self.job.media)
        events = self.project.events(video.id) if video is not None else []
        if not events:
            raise UserError(f"--reference onset: project {self.project.path.name} has no coded events "
                            f"for {Path(self.job.media).name}; import its coding sheet or use "
                            "--reference sliding")
        return tuple((e.onset, e.offset) for e in events)

    def execute(self, progress: Progress | None = None, should_cancel=None) -> AnalysisReport:
        """Run the pipeline over every requested frame (see the module docstring)."""
        predictor, job = self.predictor, self.job
        student = None
        try:
            options = self.options
            if self.student is not None:
                dense = AnalysisOptions(**{**options.__dict__, "gate": None})
                student_result = self._run(self.student, dense, job.student_out, progress, should_cancel)
                student = {"version": self.student.model_version, "checkpoint": str(self.student.checkpoint),
                           "speed_mode": self.student.speed_mode, "result": student_result}
                options = AnalysisOptions(**{**options.__dict__, "gate": self._teacher_gate()})
            result = self._run(predictor, options, job.out, progress, should_cancel)
        except BaseException:
            self.close(failed=True)
            raise
        info = self.info
        return AnalysisReport(
            job=job, options=options, columns=(*CSV_FIXED_COLUMNS, *predictor.vocab),
            model={"version": predictor.model_version, "checkpoint": str(predictor.checkpoint),
                   "device": predictor.device, "speed_mode": predictor.speed_mode,
                   "is_demo": predictor.is_demo, "pretrained_loaded": predictor.pretrained_loaded,
                   "card": predictor.card.to_dict()},
            media={"path": info.path, "kind": info.kind, "n_frames": info.n_frames, "fps": info.fps,
                   "width": info.width, "height": info.height, "is_vfr": info.is_vfr,
                   "codec": info.codec},
            result=result, student=student)

    def _run(self, predictor, options: AnalysisOptions, out: Path | None, progress, should_cancel) -> AnalysisResult:
        """One pipeline pass of one model, cached under its version, rows to the CSV `out`."""
        cache = (open_project_cache(self.project, Path(self.job.media), self.source, predictor)
                 if self.project is not None else None)
        sink = CsvSink(out, predictor.vocab) if out is not None else _NoSink()
        try:
            result = analyze_source(self.source, predictor, options, sink, cache=cache,
                                    progress=progress, should_cancel=should_cancel)
            sink.commit()
        finally:
            sink.discard()
        return result

    def close(self, failed: bool = False) -> None:
        """Release the media, model and project; after a failure, remove a project this job
        created and put no video in (with its WAL files)."""
        if self.source is not None:
            self.source.close()
            self.source = None
        for predictor in (self.predictor, self.student):
            if predictor is not None:
                predictor.close()
        self.predictor = self.student = None
        project, self.project = self.project, None
        if project is None:
            return
        remove = failed and self._created and not project.videos()
        path = Path(project.path)
        project.close()
        if remove:
            for extra in ("", "-wal", "-shm"):
                Path(f"{path}{extra}").unlink(missing_ok=True)

    def __enter__(self) -> "OpenAnalysis":
        return self

    def __exit__(self, exc_type, *exc) -> None:
        self.close(failed=exc_type is not None)


def open_analysis(job: AnalysisJob) -> OpenAnalysis:
    """The job with its project, model and media open (UserError, one line, for bad input)."""
    return OpenAnalysis(job)


class _NoSink:
    """Rows of a run that writes no CSV (they only go to the project cache)."""

    def write(self, predictions, times_s) -> None:
        pass

    def commit(self) -> None:
        pass

    def discard(self) -> None:
        pass
