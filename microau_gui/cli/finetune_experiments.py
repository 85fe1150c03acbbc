"""The fine-tune studies: how much `finetune` lifts a poor parent, with seeds and provenance.

Owns: `FINETUNE_STUDIES` (`cli.experiments.ClipStudy`s), `run_finetune_study`. May import
every layer (it drives `synth`, `store`, `model` and `training.finetune`); the command is
`cli/cmd_experiment.py`, beside the AU detection studies of `cli/experiments.py`.

For every data seed the study generates a synthetic coded set (`synth.generate_clips`, seeds no
test uses), imports its coding sheet into a new project with the real `import --project` command,
and snapshots the project's events, as the GUI and `finetune` do. For every training seed it
saves a poor parent (a freshly initialised tiny Micro-AU CLIP, `torch.manual_seed(seed)`: heads
and text side untrained) and fine-tunes it with `training.finetune.run_finetune`, leave one
subject out, the parent's own schedule and `seed`. "before" is the parent and "after" the
fine-tuned models on the same held-out pairs (`FinetuneResult`), so each run is a paired
comparison; the report gives both and their difference as mean +- std over every (data seed,
training seed) run, with a 95 % bootstrap CI of the mean difference over those runs (redrawn
within each data seed). The new checkpoints are thrown away; nothing is tuned on the held-out
subjects (the epochs are `finetune`'s documented test setting, fixed before the data seeds).
"""

from __future__ import annotations

import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from microau_gui.cli.experiments import ClipStudy, clip_dataset, code_version_now
from microau_gui.cli.reports import cpu_model, write_json
from microau_gui.core.errors import UserError


FINETUNE_STUDIES: dict[str, ClipStudy] = {s.name: s for s in (
    ClipStudy("smoke-finetune", "the fine-tune study's plumbing at the smallest size (a test "
                  "runs it)", data_seeds=(4001,), subjects=2, clips_per_subject=3,
                  train_seeds=(0,), epochs=1),
    ClipStudy("finetune", "fine-tuning a poor parent (freshly initialised tiny model) on a "
                  "project's 36 coded events, leave one subject out: before against after",
                  data_seeds=(4001, 4002), subjects=3, clips_per_subject=12,
                  train_seeds=(0, 1, 2, 3, 4), epochs=30),
)}


def _mean_difference_ci(differences: np.ndarray, groups: np.ndarray, n_boot: int = 2000,
                        seed: int = 0) -> list[float]:
    """95 % bootstrap CI of the mean of `differences`, runs redrawn within each group."""
    rng = np.random.default_rng(seed)
    draws = np.concatenate([
        rng.choice(np.flatnonzero(groups == g), size=(n_boot, int(np.sum(groups == g))))
        for g in np.unique(groups)], axis=1)
    means = differences[draws].mean(axis=1)
    return [round(float(v), 4) for v in np.percentile(means, [2.5, 97.5])]


def run_finetune_study(name: str, out: Path | str, work: Path | str, *, threads: int = 1,
                       data_seeds=None, train_seeds=None, log=print) -> dict:
    """Run fine-tune study `name`, writing its report to `out` (JSON); returns the report."""
    import torch

    from microau_gui.cli import main as cli_main
    from microau_gui.model.checkpoint import save_checkpoint
    from microau_gui.model.config import MicroAUConfig
    from microau_gui.model.network import MicroAUCLIP
    from microau_gui.store.project import Project
    from microau_gui.training.comparison import mean_std
    from microau_gui.training.finetune import FinetuneOptions, discard_result, run_finetune, snapshot_events

    defined = FINETUNE_STUDIES[name]
    study = defined.reduced(data_seeds, train_seeds)
    out, work = Path(out), Path(work)
    if not out.parent.is_dir():
        raise UserError(f"{out.parent}: folder does not exist; choose another output path")
    if threads < 1:
        raise UserError(f"--threads {threads}: use at least 1")
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    report: dict = {
        "study": study.name, "description": study.description, "complete": False,
        "code_version": code_version_now(), "machine": {"cpu": cpu_model(), "threads": threads},
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": f"python main.py experiment run {study.name}",
        "data": {"generator": "microau_gui.synth.generate_clips", "seeds": list(study.data_seeds),
                 "subjects": study.subjects, "clips_per_subject": study.clips_per_subject,
                 "size_px": study.size, "imported_with": "import casme2 --project"},
        "finetune": {"parent": "MicroAUCLIP(MicroAUConfig.tiny(train_backbone_blocks=0)) after "
                               "torch.manual_seed(training seed), saved unchanged",
                     "seeds": list(study.train_seeds), "epochs": study.epochs, "protocol": "loso",
                     "train_blocks": 0, "threshold": 0.5},
        "held_out": "nothing tuned: every subject is scored by a model that never saw it, the "
                    "parent on the same pairs; epochs and data seeds fixed in advance",
        "runs": [],
    }
    if study != defined:
        report["reduced"] = {
            "defined": {"data_seeds": list(defined.data_seeds), "train_seeds": list(defined.train_seeds)},
            "ran": {"data_seeds": list(study.data_seeds), "train_seeds": list(study.train_seeds)},
            "note": "a reduced run of the study: not the study's full report"}
        report["command"] += (f" --data-seeds {','.join(map(str, study.data_seeds))} "
                              f"--train-seeds {','.join(map(str, study.train_seeds))}")
    if threads != 1:
        report["command"] += f" --threads {threads}"
    for data_seed in study.data_seeds:
        root = clip_dataset(study, data_seed, work)
        with tempfile.TemporaryDirectory(dir=work, prefix="finetune-") as scratch:
            project_path = Path(scratch) / "lab.maus"
            if cli_main(["import", "casme2", str(root / "coding.xlsx"), str(root),
                         "--project", str(project_path)]) != 0:
                raise UserError(f"importing {root / 'coding.xlsx'} failed; see the message above")
            with Project.open(project_path) as project:
                snapshot = snapshot_events(project)
            for seed in study.train_seeds:
                torch.manual_seed(seed)
                parent = Path(scratch) / f"parent-seed{seed}"
                save_checkpoint(MicroAUCLIP(MicroAUConfig.tiny(train_backbone_blocks=0)), parent,
                                notes="freshly initialised: the poor parent")
                options = FinetuneOptions(epochs=study.epochs, seed=seed, threads=threads,
                                          pair_cache=work / "pairs",
                                          token_cache=Path(scratch) / "tokens")
                result = run_finetune(snapshot, parent, Path(scratch) / f"tuned-seed{seed}", options)
                report["runs"].append({
                    "data_seed": data_seed, "train_seed": seed, "events": result.n_events,
                    "pairs": result.n_pairs, "before": round(result.before.mean_f1, 4),
                    "after": round(result.after.mean_f1, 4), "seconds": round(result.seconds, 1),
                    "per_au_after": {a.code: (None if a.f1 is None else round(a.f1, 4))
                                     for a in result.after.per_au}})
                discard_result(result)
                log(f"finetune data {data_seed} seed {seed}: mean F1 {result.before.mean_f1:.3f} -> "
                    f"{result.after.mean_f1:.3f} ({result.seconds:.0f} s)")
                write_json(out, report)
    runs = report["runs"]
    before = np.array([r["before"] for r in runs])
    after = np.array([r["after"] for r in runs])
    groups = np.array([r["data_seed"] for r in runs])
    report["results"] = {
        "before": mean_std(before), "after": mean_std(after),
        "difference": {**mean_std(after - before),
                       "ci95": _mean_difference_ci(after - before, groups),
                       "lowest": round(float((after - before).min()), 4)},
        "ci": "95 % bootstrap of the mean difference over runs, redrawn within each data seed; "
              "the spread of the F1 over test clips inside a run is not in it"}
    report["complete"] = True
    report["seconds"] = round(time.perf_counter() - started, 1)
    write_json(out, report)
    return report
