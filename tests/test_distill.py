"""The distilled student (issue #18): `distill`, `distill-report` and `analyze --student`.

Real parts, kept small: the bundled demo checkpoint (tiny, trained on synthetic clips) is the
teacher; the student is distilled on a few generated clips of synthetic subjects 01 and 02 and
scored on subject 03, which it never saw; the analysis runs on a copy of the demo project.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from microau_gui.cli import main

DEMO = Path(__file__).resolve().parents[1] / "weights" / "demo-tiny"
ASSETS = Path(__file__).resolve().parents[1] / "assets" / "demo"
CLIPS = "6"  # synthetic clips per subject for distillation (x 2 subjects)
EPOCHS = "40"


pytestmark = pytest.mark.skipif(not (DEMO / "card.json").is_file(), reason="demo checkpoint not built")


@pytest.fixture(scope="module")
def student(tmp_path_factory) -> dict:
    """A student distilled from the demo teacher by the real command (and its --json)."""
    base = tmp_path_factory.mktemp("distill")
    out, report = base / "student", base / "distill.json"
    code = main(["distill", "--teacher", str(DEMO), "--synthetic", CLIPS, "--pairs-per-clip", "3",
                 "--epochs", EPOCHS, "--threads", "1", "--out", str(out), "--json", str(report),
                 "--device", "cpu", "--no-progress"])
    assert code == 0
    return {"out": out, "json": json.loads(report.read_text()), "base": base}


def test_the_student_is_a_model_version_whose_card_names_its_teacher(student):
    from microau_gui.model.card import read_card

    teacher, card = read_card(DEMO), read_card(student["out"])
    assert card.is_student and card.teacher == teacher.version
    assert card.version != teacher.version and card.config.backbone == "tiny"
    # the teacher-initialised default schedule, resolved into the card
    assert card.training_settings["distill"]["init"] == "teacher"
    assert card.training_settings["initialised_from_teacher"]["copied"]
    # the student measures its own pairs with the cheap flow (#18), the card says so
    assert card.training_settings["prep"]["flow_method"] == "farneback-fast"
    assert card.training_settings["prep"]["flow_size"] == teacher.training_settings["prep"]["flow_size"]
    assert card.vocab == teacher.vocab and card.input_mode == teacher.input_mode
    assert card.training_settings["subjects"] == ["01", "02"]  # 03 stays unseen
    agreement = card.metrics["teacher_agreement"]
    assert agreement["held_out_sources"] and set(agreement["per_au"]) == set(teacher.vocab)
    assert student["json"]["teacher"] == teacher.version
    assert student["json"]["student"] == card.version


def test_the_tiny_student_backbone_is_cheaper_than_the_tiny_teacher():
    """#18: "tiny-student" is for a tiny teacher's dense traces, so it must cost less than the
    tiny network: fewer patch tokens per image (the cost of every block grows with them)."""
    from microau_gui.model.card import read_card
    from microau_gui.training.distill import student_config
    from microau_gui.training.trainer import build_model

    teacher = read_card(DEMO)
    student = build_model(student_config(teacher.config, "tiny-student"))
    teacher_net = build_model(teacher.config)
    assert student.image_size == teacher_net.image_size  # same crop, so the same pairs cut
    assert student.grid_size ** 2 * 3 <= teacher_net.grid_size ** 2  # 64 tokens against 196


def test_the_schedule_follows_the_initialisation_unless_given():
    from microau_gui.training.distill import INIT_DEFAULTS, DistillSettings

    assert (DistillSettings().epochs, DistillSettings().lr) == INIT_DEFAULTS["teacher"]
    assert (DistillSettings(init="random").epochs, DistillSettings(init="random").lr) == INIT_DEFAULTS["random"]
    assert DistillSettings(init="random", epochs=7).epochs == 7


def test_a_student_starts_from_its_teachers_weights():
    """`init_from_teacher`: a student of the teacher's own architecture becomes the teacher
    (same outputs on a real pair), and the default student keeps every block and head and gets
    the patch embedding and position grid resampled to its 14 px patches."""
    import numpy as np
    import torch

    from microau_gui.model.checkpoint import load_checkpoint
    from microau_gui.training.distill import init_from_teacher, student_config
    from microau_gui.training.trainer import build_model

    teacher, card = load_checkpoint(DEMO, device="cpu")
    teacher.eval()
    flow = np.random.default_rng(0).integers(0, 255, (2, teacher.image_size, teacher.image_size, 3), np.uint8)
    masks = torch.ones(2, len(card.vocab), teacher.grid_size ** 2, dtype=torch.bool)

    def probs(model, images):
        from microau_gui.model.network import PairTokens
        with torch.inference_mode():
            tokens = model.encode_tokens(model.prepare_images(torch.from_numpy(images)))
            return model.forward_tokens(PairTokens(target=None, reference=None, flow=tokens), masks).probs

    same = build_model(student_config(card.config, "tiny"), seed=5).eval()
    assert not torch.allclose(probs(same, flow), probs(teacher, flow))
    done = init_from_teacher(same, teacher)
    assert not done["resampled"]
    torch.testing.assert_close(probs(same, flow), probs(teacher, flow))

    small = build_model(student_config(card.config, "tiny-student"), seed=5)
    done = init_from_teacher(small, teacher)
    assert sorted(n.split(".")[-1] for n in done["resampled"]) == ["positional_embedding", "weight"]
    assert small.grid_size == 8 and small.state_dict()["backbone.visual.positional_embedding"].shape[0] == 65
    block = "backbone.visual.transformer.resblocks.3.mlp.c_proj.weight"
    assert block in done["copied"]
    torch.testing.assert_close(small.state_dict()[block], teacher.state_dict()[block])


def test_distill_report_scores_the_student_on_subjects_it_never_saw_and_a_random_student_fails(student, tmp_path):
    """The figures are computed on held-out subject 03, and they tell a distilled student from
    an untrained one of the same architecture that claims the same teacher."""
    from microau_gui.model.card import read_card
    from microau_gui.model.checkpoint import save_checkpoint
    from microau_gui.training.distill import student_config
    from microau_gui.training.trainer import build_model

    report_path = tmp_path / "report.json"
    assert main(["distill-report", "--teacher", str(DEMO), "--student", str(student["out"]),
                 "--synthetic", "6", "--json", str(report_path), "--device", "cpu", "--no-progress"]) == 0
    report = json.loads(report_path.read_text())
    assert report["subjects"] == ["03"] and report["n_samples"] >= 4
    scored = {code: f1 for code, f1 in report["agreement"]["per_au"].items() if f1 is not None}
    assert scored and all(0.0 <= f1 <= 1.0 for f1 in scored.values())
    for side in ("teacher_vs_truth", "student_vs_truth"):
        assert 0.0 <= report[side]["mean_f1"] <= 1.0
    assert report["mean_f1_gap"] == pytest.approx(report["teacher_vs_truth"]["mean_f1"]
                                                  - report["student_vs_truth"]["mean_f1"])
    assert set(report["met"]) == {"per_au_f1_vs_teacher", "mean_f1_gap"}

    teacher = read_card(DEMO)
    random_dir = tmp_path / "random"
    save_checkpoint(build_model(student_config(teacher.config), seed=3).eval(), random_dir,
                    teacher=teacher.version, training_settings={"subjects": ["01", "02"]})
    random_path = tmp_path / "random.json"
    assert main(["distill-report", "--teacher", str(DEMO), "--student", str(random_dir),
                 "--synthetic", "6", "--json", str(random_path), "--device", "cpu", "--no-progress"]) == 0
    untrained = json.loads(random_path.read_text())
    assert untrained["agreement"]["mean_f1"] < report["agreement"]["mean_f1"] - 0.1
    assert untrained["student_vs_truth"]["mean_f1"] < report["student_vs_truth"]["mean_f1"]


def test_flow_size_sets_the_crop_the_students_flow_is_measured_on(tmp_path):
    from microau_gui.model.card import read_card

    out = tmp_path / "student"
    assert main(["distill", "--teacher", str(DEMO), "--synthetic", "1", "--pairs-per-clip", "1",
                 "--epochs", "1", "--flow-size", "112", "--threads", "1", "--out", str(out),
                 "--device", "cpu", "--no-progress"]) == 0
    card = read_card(out)
    assert card.training_settings["prep"]["flow_size"] == 112
    assert card.training_settings["distill"]["flow_size"] == 112


@pytest.mark.parametrize("argv, message", [
    (["--synthetic", "0"], "nothing to distil on"),
    (["--synthetic", "2", "--synthetic-subjects", "09"], "synthetic subject 09"),
    (["--videos", "/nonexistent/clip.mp4"], "clip.mp4"),
    (["--synthetic", "2", "--backbone", "ViT-B-16"], "student backbone 'ViT-B-16'"),
    (["--synthetic", "2", "--flow-method", "lucas"], "flow method 'lucas'"),
    (["--synthetic", "2", "--flow-size", "8"], "--flow-size 8"),
    (["--synthetic", "2", "--init", "random", "--epochs", "0"], "--epochs 0"),
])
def test_distill_bad_input_is_one_line_and_leaves_nothing(tmp_path, capsys, argv, message):
    out = tmp_path / "student"
    code = main(["distill", "--teacher", str(DEMO), "--out", str(out), "--no-progress", *argv])
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and len(err.splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_distill_refuses_an_existing_folder_and_the_teachers_own_files(student, tmp_path, capsys):
    before = sorted(p.name for p in student["out"].iterdir())
    assert main(["distill", "--teacher", str(DEMO), "--synthetic", "1", "--out", str(student["out"])]) == 2
    assert "already exists" in capsys.readouterr().err
    assert sorted(p.name for p in student["out"].iterdir()) == before
    assert main(["distill", "--teacher", str(DEMO), "--synthetic", "1", "--out", str(DEMO / "card.json")]) == 2
    assert "would destroy it" in capsys.readouterr().err


def test_a_cancelled_distillation_leaves_no_folder(tmp_path):
    from microau_gui.core.progress import Cancelled
    from microau_gui.inference.reference import sliding_offset_frames
    from microau_gui.synth import generate_clips
    from microau_gui.training.distill import DistillSettings, clip_sources, distill

    made = generate_clips(tmp_path / "synth", subjects=1, clips_per_subject=2, size=112, seed=2)
    sources = clip_sources(made.clips, tmp_path / "synth", sliding_offset_frames(200.0), 1)
    steps = []

    def stage(what, done, total):
        steps.append(what)

    with pytest.raises(Cancelled):
        distill(DEMO, sources, tmp_path / "w" / "student", DistillSettings(epochs=3, holdout_fraction=0),
                stage=stage, should_cancel=lambda: "distilling" in steps)
    assert "distilling" in steps
    assert not (tmp_path / "w").exists() or list((tmp_path / "w").iterdir()) == []


def test_analyze_with_a_student_draws_the_dense_trace_and_runs_the_teacher_at_apexes(student, tmp_path):
    """Every frame gets a student row (cached under the student's version); the teacher runs
    only on the coded event's apex; each version's rows are apart in the cache."""
    from microau_gui.model.card import read_card
    from microau_gui.store.project import Project

    demo = tmp_path / "demo"
    shutil.copytree(ASSETS, demo)
    media = demo / "sub03" / "EP01_01"
    out, dense = tmp_path / "teacher.csv", tmp_path / "student.csv"
    assert main(["analyze", str(media), "--project", str(demo / "demo.maus"), "--model", str(DEMO),
                 "--student", str(student["out"]), "--student-out", str(dense), "--out", str(out),
                 "--device", "cpu", "--speed", "fp32", "--no-progress"]) == 0
    project = Project.open(demo / "demo.maus")
    try:
        video = project.video_by_path(media)
        apexes = [e.apex for e in project.events(video.id)]
        versions = {v.card_version: v for v in project.models.list()}
        teacher = versions.get(read_card(DEMO).version)
        learner = versions.get(read_card(student["out"]).version)
        assert teacher is not None and learner is not None and teacher.id != learner.id
        assert project.predictions.frames(video.id, teacher.id).tolist() == apexes
        assert project.predictions.frames(video.id, learner.id).tolist() == list(range(video.n_frames))
    finally:
        project.close()
    assert len(dense.read_text().splitlines()) == 1 + video.n_frames
    assert len(out.read_text().splitlines()) == 1 + len(apexes)
    sidecar = json.loads(Path(f"{out}.json").read_text())
    assert sidecar["student"]["version"] == read_card(student["out"]).version
    assert sidecar["gate"]["ranges"] == [[a, a + 1] for a in apexes]


def test_analyze_refuses_a_student_of_another_teacher(student, tmp_path, capsys):
    media = ASSETS / "sub03" / "EP01_01"
    code = main(["analyze", str(media), "--model", str(student["out"]), "--student", str(student["out"]),
                 "--out", str(tmp_path / "a.csv"), "--device", "cpu", "--no-progress"])
    assert code == 2 and "was distilled from" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
