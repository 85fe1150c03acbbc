"""Per-frame AU tables for R, SPSS and pandas: a long (tidy) layout and a wide one.

Owns: `export_frames`, `LONG_COLUMNS`, `LAYOUTS`. May import `core`, `store`, numpy and the
standard library. Written with the `csv` module (streamed row by row, so a corpus of hours
never sits in memory); the layout is plain CSV, which `pandas.read_csv` and R's `read.csv`
load with no options.

Rows come from our model's cached predictions (one source per model version) and, with
`traces=True`, from the comparison traces imported from other tools.

- long: `video, frame, time_s, au, probability, source, model_version`, one row per frame and
  AU. `frame` is the video's own frame number (CASME II `img46.jpg` -> 46, a video's decode
  index otherwise), `time_s` = (frame - first frame number) / fps, the time its number means
  (interchange.clock). `source` is `model` for ours (`model_version`
  its name) or the tool (`openface`, `imotions`, `pyfeat`; `model_version` the trace's name).
  `probability` is empty where the frame had no face (or the tool masked it). For a trace it is
  the tool's own decision channel: OpenFace presence (0/1), py-feat probability, iMotions
  probability from evidence (see interchange.traces); intensities and raw evidence are not in
  this column, by design: it holds probabilities only.
- wide: `video, frame, time_s, source, model_version, AU1, AU2, ...`, one row per frame and
  source, the AU columns the union of all sources' AUs (empty where a source has none).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from microau_gui.core.au import au_number
from microau_gui.core.errors import UserError
from microau_gui.core.files import atomic_path
from microau_gui.core.outputs import check_output, project_guard
from microau_gui.core.progress import Progress, ShouldCancel, check_cancel
from microau_gui.interchange.clock import FrameClock
from microau_gui.store.project import Project

LONG_COLUMNS = ("video", "frame", "time_s", "au", "probability", "source", "model_version")
LAYOUTS = ("long", "wide")
CANCEL_EVERY_FRAMES = 5000  # frames between two cancel polls (~0.1 s of writing)


def _cell(value: float) -> str:
    return "" if np.isnan(value) else f"{value:.6g}"


def _sources(project: Project, model: str | None, traces: bool
             ) -> Iterator[tuple[object, str, str, np.ndarray, tuple[str, ...], np.ndarray]]:
    """(video, source, version, frame_idx (n,), aus, values (n, n_au)) per video and source."""
    versions = project.models.list()
    if model is not None:
        versions = [v for v in versions if v.name == model]
        if not versions:
            raise UserError(f"no model version {model!r} in this project (it has "
                            f"{', '.join(v.name for v in project.models.list()) or 'none'})")
    for video in project.videos():
        for version in versions:
            trace = project.predictions.probs(video.id, version.id)
            if trace.frame_idx.size:
                yield video, "model", version.name, trace.frame_idx, trace.vocab, trace.probs
        if traces:
            for info in project.traces.list(video.id):
                trace = project.traces.get(info.id)
                channel = trace.decision_channel()
                if channel is None:
                    continue
                aus, values = trace.channel(channel)
                yield video, trace.tool, trace.name, trace.frame_idx, aus, values


def export_frames(project: Project, out: Path | str, *, layout: str = "long",
                  model: str | None = None, traces: bool = True,
                  progress: Progress | None = None,
                  should_cancel: ShouldCancel | None = None) -> tuple[Path, int]:
    """Write the per-frame table; returns (path, rows written).

    progress(frames written, frames in all sources); `should_cancel` is polled every
    CANCEL_EVERY_FRAMES frames, and a cancelled export leaves no file (Cancelled is raised)."""
    if layout not in LAYOUTS:
        raise UserError(f"layout must be long or wide, not {layout!r}")
    out = Path(out).absolute()
    if out.suffix.lower() != ".csv":
        raise UserError(f"a per-frame table is written as .csv, not {out.name}")
    out = check_output(out, project_guard(project.path))
    sources = list(_sources(project, model, traces))
    if not sources:
        raise UserError("the project holds no per-frame predictions or comparison traces yet; "
                        "run analyze (or import an OpenFace/iMotions/py-feat file) first")
    all_aus = sorted({au for *_, aus, _ in sources for au in aus}, key=au_number)
    n_rows = n_done = 0
    n_total = sum(len(frame_idx) for _, _, _, frame_idx, _, _ in sources)
    clocks: dict[int, FrameClock] = {}
    try:
        with atomic_path(out) as partial, partial.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(LONG_COLUMNS if layout == "long" else
                            ("video", "frame", "time_s", "source", "model_version", *all_aus))
            for video, source, version, frame_idx, aus, values in sources:
                clock = clocks.setdefault(video.id, FrameClock.of(project, video))
                column = {au: i for i, au in enumerate(aus)}
                for row, f in enumerate(frame_idx.tolist()):
                    if n_done % CANCEL_EVERY_FRAMES == 0:
                        check_cancel(should_cancel, "export cancelled")
                        if progress is not None:
                            progress(n_done, n_total)
                    n_done += 1
                    head = (video.name, clock.number(f), f"{clock.start_s(f):.6f}")
                    if layout == "long":
                        for au in aus:
                            writer.writerow((*head, au, _cell(values[row, column[au]]), source,
                                             version))
                            n_rows += 1
                    else:
                        writer.writerow((*head, source, version,
                                         *(_cell(values[row, column[au]]) if au in column else ""
                                           for au in all_aus)))
                        n_rows += 1
    except OSError as err:
        raise UserError(f"cannot write {out}: {err.strerror or err}") from None
    if progress is not None:
        progress(n_total, n_total)
    return out, n_rows
