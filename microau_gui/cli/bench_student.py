"""The bench's student section (issue #18): dense traces with a distilled student, and its quality.

Owns: `STUDENT_KEYS`, `STUDENT_TARGETS`, `STUDENT_SIZES`, `measure_student`. May import every
layer (it is part of the CLI), all of it lazily: `bench_report` imports the names and targets
from here (they join `FIGURE_KEYS` and `TARGETS`), so the section's figure names, targets and
sizes live in this one module.

What is measured, on this machine, in one run:
- `student_distill_seconds`: `training.distill.distill` of the bundled demo checkpoint (the
  teacher) on generated clips of synthetic subjects 01 and 02 (sizes per profile below).
- `student_agreement_min_f1` / `student_agreement_mean_f1`: the student's per-AU F1 against the
  teacher's thresholded labels on held-out subject 03 (`distill_report`), lowest and mean over
  the AUs the teacher fires there; target: every AU >= 0.90.
- `student_mean_f1_gap`: the teacher's mean F1 against the ground truth minus the student's,
  same held-out pairs; target <= 0.03. `student_mean_f1` / `student_teacher_mean_f1` (the
  teacher's) beside it.
- `student_dense_fps`: `analyze` end to end (decode, landmarks, pair preparation, model, CSV) of
  every frame of the bench's 640x480 synthetic long video with that student, one torch thread
  (analyze's default); target >= 60 fps on 2 cores, AVX2 included.
Caveat written into every quality figure: the teacher here is the tiny demo model (a ViT-B-16
teacher trained on real data is not available offline). The student is `distill`'s default, the
default student: the tiny backbone (so, here, the teacher's own architecture), started from the
teacher's weights, on pairs whose flow one Farneback iteration per level measures (the
teacher's take four). The figures test the distillation and the cheaper dense path, not the
100x compression a ViT-B-16 teacher would give.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

# figure name -> (bound, op, text) of its `bench_report.Target`
STUDENT_TARGETS: dict[str, tuple[float, str, str]] = {
    "student_dense_fps": (60.0, ">=", "dense traces with the student, end to end, 640x480, "
                          "2 cores: at least 60 fps, on AVX2 too"),
    "student_agreement_min_f1": (0.90, ">=", "student per-AU F1 at least 0.90 against the "
                                 "teacher's labels on held-out subjects"),
    "student_mean_f1_gap": (0.03, "<=", "student mean F1 against ground truth within "
                            "0.03 of the teacher's on held-out subjects"),
}
STUDENT_KEYS: tuple[str, ...] = (
    "student_distill_seconds", "student_agreement_min_f1", "student_agreement_mean_f1",
    "student_mean_f1", "student_teacher_mean_f1", "student_mean_f1_gap", "student_dense_fps",
)
UNITS = {"student_distill_seconds": "s", "student_dense_fps": "fps"}  # the others are F1 (0-1)
# profile name -> (clips per synthetic subject, pairs per clip, epochs, report clips, dense frames)
STUDENT_SIZES: dict[str, tuple[int, int, int | None, int, int]] = {
    # full: 120 held-out clips (with 40, one pair moved a rare AU's F1 by 0.1-0.3); 40 clips a
    # subject to distil on (12 left AU5 at 0.77-0.94 against the teacher); 1200 dense frames,
    # so the landmark child's start (about a second) weighs on the figure as little as it does
    # on a long interview. epochs None: distill's default for a teacher-initialised student
    "full": (40, 6, None, 120, 1200), "quick": (4, 3, None, 4, 40), "smoke": (1, 1, 1, 3, 10),
}
TEACHER_NOTE = ("teacher: the bundled tiny demo model (no ViT-B-16 teacher trained on real data "
                "exists offline); student: distill's default, the tiny backbone (the teacher's "
                "own architecture here) started from the teacher's weights, on farneback-fast pairs")


def unit_of(key: str) -> str:
    return UNITS.get(key, "F1")


def _entry(key: str, value, **detail) -> dict:
    from microau_gui.cli.bench_report import figure

    return figure(value, unit_of(key), key if key in STUDENT_TARGETS else None, **detail)


def measure_student(profile: str, long_video: Path, work: Path, say=print) -> dict[str, dict]:
    """Every `STUDENT_KEYS` figure (see the module docstring); sizes from `STUDENT_SIZES`."""
    from microau_gui.cli.bench_analyze import measure_analyze
    from microau_gui.cli.cmd_distill import synthetic
    from microau_gui.inference.checkpoints import default_checkpoint
    from microau_gui.model.card import read_card
    from microau_gui.synth import generate_clips
    from microau_gui.synth.faces import PHOTOS
    from microau_gui.training.distill import DistillSettings, distill, distill_report

    clips, pairs_per_clip, epochs, report_clips, dense_frames = STUDENT_SIZES[profile]
    teacher = default_checkpoint()
    if not (teacher / "card.json").is_file():
        raise RuntimeError(f"the demo teacher {teacher} is not built (make demo-assets)")
    size = read_card(teacher).image_size
    figures: dict[str, dict] = {}
    student = work / f"student-{profile}"
    with tempfile.TemporaryDirectory(prefix="microau-bench-student-") as scratch:
        if not student.exists():
            settings = DistillSettings(epochs=epochs, threads=1)
            epochs = settings.epochs
            say(f"distilling a student of {teacher.name}: {clips} clips x 2 subjects, {epochs} epochs")
            started = time.perf_counter()
            sources = synthetic(Path(scratch) / "train", clips, ["01", "02"], size, pairs_per_clip, seed=0)
            result = distill(teacher, sources, student, settings)
            figures["student_distill_seconds"] = _entry(
                "student_distill_seconds", time.perf_counter() - started, n_train_pairs=result.n_train,
                epochs=epochs, clips_per_subject=clips, note=TEACHER_NOTE)
        else:
            figures["student_distill_seconds"] = _entry("student_distill_seconds", None,
                                                        skipped=f"reused {student} from --work")
        say(f"student vs teacher on held-out subject 03 ({report_clips} clips)")
        made = generate_clips(Path(scratch) / "report", subjects=len(PHOTOS), clips_per_subject=report_clips,
                              size=size, seed=1000)
        report = distill_report(teacher, student, made.dataset.samples)
    detail = {"subjects": report["subjects"], "n_samples": report["n_samples"], "note": TEACHER_NOTE}
    agreement = report["agreement"]
    figures["student_agreement_min_f1"] = _entry("student_agreement_min_f1", agreement["min_f1"],
                                                 per_au=agreement["per_au"], **detail)
    figures["student_agreement_mean_f1"] = _entry("student_agreement_mean_f1", agreement["mean_f1"], **detail)
    figures["student_mean_f1"] = _entry("student_mean_f1", report["student_vs_truth"]["mean_f1"], **detail)
    figures["student_teacher_mean_f1"] = _entry("student_teacher_mean_f1", report["teacher_vs_truth"]["mean_f1"], **detail)
    figures["student_mean_f1_gap"] = _entry("student_mean_f1_gap", report["mean_f1_gap"],
                                                    **detail)
    say(f"dense traces with the student ({dense_frames} frames of the 640x480 video)")
    dense = measure_analyze(long_video, student, work / "student-dense.csv", dense_frames, None)
    figures["student_dense_fps"] = _entry("student_dense_fps", dense["value"],
                                          **{k: v for k, v in dense.items() if k not in ("value", "unit")})
    return figures
