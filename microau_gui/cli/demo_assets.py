"""`make demo-assets` (`python -m microau_gui.cli.demo_assets`): the bundled demo model and project.

Owns the demo build. May import every layer; it only composes synth, training (through its
"train on all subjects and save" API, `training.runs.train_all_and_save`), store and media.

What it builds, reproducibly (fixed seeds, fixed torch thread count):
1. A synthetic training set (`synth.generate_clips`: the three real photos animated with
   micro-movements, CASME II layout) in a temporary folder.
2. A tiny Micro-AU CLIP (`MicroAUConfig.tiny()`, the default input mode) trained on all of it
   by the training pipeline, saved as the checkpoint folder `weights/demo-tiny/`
   (`model.safetensors` + `card.json`, a few MB). Its card's `intended_use` and `notes` say it
   was trained on synthetic micro-movements of three photos and is not for real faces, and its
   `training_settings` carry `"is_demo": true` (read by `model.card.ModelCard.is_demo`).
3. `assets/demo/`: three short synthetic clips, one per photo (other seed; 480 px faces in
   600 px frames, so a coder can zoom in: about 19 MB of JPEGs; CASME II layout: `subNN/EPxx_yy/`
   image folders at 200 fps), their `coding.xlsx`, and `demo.maus`, a project holding the clips
   as expert events and the demo model as its active model version. The project stores every path
   relative to itself (`sub01/...`, `../../weights/demo-tiny`), so a clone anywhere opens it.
Each output is built under a temporary name next to its final place and swapped in at the end,
so an interrupted build leaves the previous demo intact.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

from microau_gui.core.files import atomic_dir

log = logging.getLogger(__name__)

DEMO_INTENDED_USE = (
    "Demonstration only: trained on synthetic micro-movements of three photos; not for real "
    "faces. Train on your data with `python main.py train ...`."
)
DEMO_NOTES = (
    "Built by `make demo-assets`: a tiny Micro-AU CLIP (112 px, 4-layer ViT from scratch) trained "
    "on synthetic micro-movements of three photos (scikit-image astronaut and camera, matplotlib "
    "grace_hopper); not for real faces. Train on your data with `python main.py train ...`."
)
TRAIN_SEED = 0  # synthetic training clips and model initialisation / shuffling
CLIPS_SEED = 1  # the demo clips shown in the window (other clips than the training ones)
DEMO_FPS = 200.0  # demo clips' frame rate, as CASME II records
DEMO_JPEG_QUALITY = (75, 85)  # demo clips' JPEG quality range (synth draws one per clip)
THREADS = 2  # torch threads: fixed, so the same machine gives the same weights



def _progress(label: str):
    def report(done: int, total: int) -> None:
        if done == total or done % max(1, total // 10) == 0:
            print(f"  {label}: {done}/{total}", file=sys.stderr, flush=True)
    return report


def train_demo_model(weights: Path, *, clips_per_subject: int, epochs: int) -> Path:
    """Steps 1-2: synthetic training data, a tiny model trained on it, saved as weights/demo-tiny."""
    from microau_gui.inference.checkpoints import DEMO_NAME
    from microau_gui.model.card import DEMO_FLAG, read_card
    from microau_gui.model.checkpoint import update_card
    from microau_gui.synth import generate_clips
    from microau_gui.training.datasets import DatasetSpec
    from microau_gui.training.runs import model_config, prepare_data, train_all_and_save, train_settings

    weights.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="demo-train-") as tmp:
        data_dir = Path(tmp) / "synth"
        print(f"generating {3 * clips_per_subject} synthetic training clips ...", file=sys.stderr)
        clips = generate_clips(data_dir, subjects=3, clips_per_subject=clips_per_subject,
                               seed=TRAIN_SEED, progress=_progress("clips"))
        config = model_config(backbone="tiny")
        data = prepare_data(DatasetSpec("casme2", clips.sheet, clips.root), config, cache=None)
        settings = train_settings(epochs=epochs, seed=TRAIN_SEED, threads=THREADS)
        final = weights / DEMO_NAME
        print(f"training {DEMO_NAME} on {len(data.prepared.pairs)} pairs, {epochs} epochs ...", file=sys.stderr)
        # Built beside the old one, which stays in place until the new one is complete.
        with atomic_dir(final, replace=True, named=True) as out:
            card, fit = train_all_and_save(data, config, settings, "cpu", out)
            training_settings = dict(card.training_settings)
            training_settings[DEMO_FLAG] = True
            # The temporary dataset paths mean nothing after the build; say what the data was instead.
            training_settings["dataset"] = {
                "kind": "casme2", "synthetic": True, "subjects": 3, "clips_per_subject": clips_per_subject,
                "seed": TRAIN_SEED, "made_by": "microau_gui.synth.generate_clips (make demo-assets)",
            }
            update_card(out, intended_use=DEMO_INTENDED_USE, notes=DEMO_NOTES,
                        training_settings=training_settings)
    print(f"demo model: mean F1 {fit.report.to_json().get('mean_f1', float('nan')):.2f} on its own "
          f"(synthetic) training pairs; card {read_card(final).version}", file=sys.stderr)
    return final


def build_demo_project(assets: Path, checkpoint: Path, *, subjects: int, clips_per_subject: int,
                       size: int) -> Path:
    """Step 3: assets/demo with a few clips, coding.xlsx and demo.maus (model registered, active)."""
    assets.mkdir(parents=True, exist_ok=True)
    final = assets / "demo"
    with atomic_dir(final, replace=True) as build:
        _build_demo_folder(build, checkpoint, subjects=subjects, clips_per_subject=clips_per_subject,
                           size=size)
    return final / "demo.maus"


def _build_demo_folder(build: Path, checkpoint: Path, *, subjects: int, clips_per_subject: int,
                       size: int) -> None:
    """Fill the empty folder `build` with the demo clips, coding.xlsx and demo.maus."""
    from microau_gui.media import frame_index, open_media
    from microau_gui.model.card import read_card
    from microau_gui.store.importers import import_dataset
    from microau_gui.store.project import Project
    from microau_gui.synth import generate_clips
    from microau_gui.synth.clips import ClipConfig

    print(f"generating {subjects * clips_per_subject} demo clips ...", file=sys.stderr)
    # A slightly lower JPEG quality than the training clips keeps the bundled folder small.
    clips = generate_clips(build, subjects=subjects, clips_per_subject=clips_per_subject, size=size,
                           fps=DEMO_FPS, seed=CLIPS_SEED, config=ClipConfig(jpeg_quality=DEMO_JPEG_QUALITY),
                           progress=_progress("clips"))
    dataset = import_dataset("casme2", clips.sheet, clips.root, frame_index=frame_index)
    card = read_card(checkpoint)
    with Project.create(build / "demo.maus") as project:
        # Image folders store no frame rate: record the clips' real one (CASME II's 200 fps).
        probe = partial(open_media, fps=DEMO_FPS)
        summary = project.import_dataset(dataset, probe, coder="synth (ground truth)")
        project.models.register(card, checkpoint, activate=True)
        project.set_meta("demo", json.dumps({"made_by": "make demo-assets", "clips_seed": CLIPS_SEED}))
    print(f"demo project: {summary}", file=sys.stderr)


def _size_mb(path: Path) -> float:
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files) / 1e6


def main(argv: list[str] | None = None) -> int:
    import torch

    from microau_gui.core.errors import UserError
    from microau_gui.core.paths import weights_dir

    parser = argparse.ArgumentParser(prog="python -m microau_gui.cli.demo_assets", description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, default=weights_dir().parent,
                        help="folder holding weights/ and assets/ (default: the checkout)")
    parser.add_argument("--train-clips-per-subject", type=int, default=20,
                        help="synthetic training clips per subject (default 20)")
    parser.add_argument("--epochs", type=int, default=60, help="training epochs (default 60)")
    parser.add_argument("--demo-subjects", type=int, default=3, help="subjects in the demo clip set (default 3)")
    parser.add_argument("--demo-clips-per-subject", type=int, default=1, help="demo clips per subject (default 1)")
    parser.add_argument("--demo-size", type=int, default=480,
                        help="demo clips' face size in px (default 480: a coder zooms in)")
    parser.add_argument("--skip-model", action="store_true",
                        help="keep the existing weights/demo-tiny and rebuild only assets/demo")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(THREADS)
    started = time.perf_counter()
    try:
        weights = args.root / "weights"
        checkpoint = weights / "demo-tiny"
        if not args.skip_model:
            checkpoint = train_demo_model(weights, clips_per_subject=args.train_clips_per_subject,
                                          epochs=args.epochs)
        elif not checkpoint.is_dir():
            raise UserError(f"--skip-model: {checkpoint} does not exist; build it first")
        model_done = time.perf_counter()
        project = build_demo_project(args.root / "assets", checkpoint, subjects=args.demo_subjects,
                                     clips_per_subject=args.demo_clips_per_subject, size=args.demo_size)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    seconds = time.perf_counter() - started
    print(f"demo assets built in {seconds:.0f} s (model {model_done - started:.0f} s): "
          f"{checkpoint} {_size_mb(checkpoint):.1f} MB, {project.parent} {_size_mb(project.parent):.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
